using System;

namespace IoreqSdk.Xen;

internal static partial class XenLibraries
{
    private static unsafe bool CanLoad(string soname)
    {
        if (!NativeText.TryEncodeTerminated(soname, out byte[] name))
        {
            return false;
        }

        try
        {
            fixed (byte* file = name)
            {
                nint library = Interop.LibDl.DlOpen(file, Interop.LibDl.RTLD_NOW);
                if (library == 0)
                {
                    return false;
                }

                _ = Interop.LibDl.DlClose(library);
                return true;
            }
        }
        catch (DllNotFoundException)
        {
            return false;
        }
    }
}
