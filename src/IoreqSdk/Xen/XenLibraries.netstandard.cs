using System;
using System.Text;

namespace IoreqSdk.Xen;

internal static partial class XenLibraries
{
    private static unsafe bool CanLoad(string soname)
    {
        byte[] name = Encoding.UTF8.GetBytes(soname + "\0");
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
