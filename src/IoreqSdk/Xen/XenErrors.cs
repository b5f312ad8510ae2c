using System.Globalization;
using System.Runtime.InteropServices;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Xen;

/// <summary>Turns a failed native call's errno into a <see cref="HypervisorException"/> that names the call and says what to do.</summary>
internal static class XenErrors
{
    public static HypervisorException LastError(string operation, ushort? domain = null) =>
        Create(operation, Marshal.GetLastWin32Error(), domain);

    /// <summary>Throws the last errno of <paramref name="operation"/> when the library call returned non-zero.</summary>
    public static void ThrowIfFailed(int result, string operation, ushort domain)
    {
        if (result != 0)
        {
            throw LastError(operation, domain);
        }
    }

    public static HypervisorException Create(string operation, int errno, ushort? domain = null)
    {
        string guest = domain is ushort d ? string.Format(CultureInfo.InvariantCulture, "domain {0}", d) : "the guest";
        string hint = errno switch
        {
            Errno.ESRCH => $"{guest} does not exist; 'xl list' shows the running guests and their ids.",
            Errno.EPERM or Errno.EACCES => $"this domain may not act as {guest}'s device model: run in dom0 as root (or in a driver domain made the guest's target).",
            Errno.ENOSPC => $"{guest} already has the most ioreq servers Xen allows (8) or no room for another range.",
            Errno.EEXIST => "the range is already claimed by an ioreq server of this guest.",
            Errno.EOPNOTSUPP => "this Xen or kernel does not support the operation on this architecture.",
            Errno.ENOENT => "no such object (for resource mappings: the ioreq server or frame does not exist).",
            _ => string.Empty,
        };
        string message = string.Format(CultureInfo.InvariantCulture, "{0} failed: {1} (errno {2}).{3}", operation, Describe(errno), errno, hint.Length == 0 ? string.Empty : " " + hint);
        return new HypervisorException(operation, errno, message);
    }

    private static string Describe(int errno) => errno switch
    {
        Errno.EPERM => "operation not permitted",
        Errno.ENOENT => "no such file or directory",
        Errno.ESRCH => "no such domain",
        Errno.EINTR => "interrupted",
        Errno.EAGAIN => "try again",
        Errno.ENOMEM => "out of memory",
        Errno.EACCES => "permission denied",
        Errno.EEXIST => "already exists",
        Errno.ENODEV => "no such device",
        Errno.EINVAL => "invalid argument",
        Errno.ENOSPC => "no space left",
        Errno.EOPNOTSUPP => "operation not supported",
        _ => "error",
    };
}
