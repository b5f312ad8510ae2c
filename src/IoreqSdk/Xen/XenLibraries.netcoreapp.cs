using System.Runtime.InteropServices;

namespace IoreqSdk.Xen;

internal static partial class XenLibraries
{
    private static bool CanLoad(string soname)
    {
        if (!NativeLibrary.TryLoad(soname, out nint library))
        {
            return false;
        }

        NativeLibrary.Free(library);
        return true;
    }
}
