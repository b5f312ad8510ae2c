namespace IoreqSdk.Xen;

/// <summary>Whether Xen's user-space libraries are installed, probed before any call into them.</summary>
internal static partial class XenLibraries
{
    /// <summary>The three libraries the backend calls, by SONAME.</summary>
    public static readonly string[] Required =
    [
        Interop.Libraries.XenDeviceModel,
        Interop.Libraries.XenEventChannel,
        Interop.Libraries.XenForeignMemory,
    ];

    /// <summary>What to install when a library is missing.</summary>
    public const string InstallHint =
        "install Xen's tool libraries (Debian and Ubuntu: apt-get install libxendevicemodel1 libxenevtchn1 libxenforeignmemory1, "
        + "all three come with libxen-dev; other distributions: the xen-libs or xen-tools package)";

    /// <summary>The first library of <paramref name="sonames"/> that cannot be loaded, or null when all load.</summary>
    public static string? FindMissing(string[] sonames)
    {
        foreach (string soname in sonames)
        {
            if (!CanLoad(soname))
            {
                return soname;
            }
        }

        return null;
    }
}
