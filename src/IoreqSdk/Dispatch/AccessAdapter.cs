using System.Runtime.CompilerServices;
using IoreqSdk.Devices;

namespace IoreqSdk.Dispatch;

/// <summary>
/// Adapts an access to the widths a region declared (what QEMU's memory API and DEMU's byte handlers do):
/// a supported width goes straight through; otherwise the access is split into the widest narrower supported
/// accesses, or — when only wider widths exist — served from the aligned wider access that contains it
/// (reads extract the bytes; writes read, merge and write back). Little-endian throughout.
/// </summary>
internal static class AccessAdapter
{
    /// <summary>Reads <paramref name="size"/> bytes at <paramref name="offset"/> of a region, in whatever widths it takes.</summary>
    // Inlined into the dispatcher: a width the region takes (nearly every access) costs one test before the device's call.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Read(DeviceRegion region, ulong offset, int size) =>
        ((int)region.Widths & size) != 0 ? region.Device.Read(region, offset, size) : ReadAdapted(region, offset, size);

    /// <summary>Writes <paramref name="size"/> bytes at <paramref name="offset"/> of a region, in whatever widths it takes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write(DeviceRegion region, ulong offset, int size, ulong value)
    {
        if (((int)region.Widths & size) != 0)
        {
            region.Device.Write(region, offset, size, value);
        }
        else
        {
            WriteAdapted(region, offset, size, value);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ulong ReadAdapted(DeviceRegion region, ulong offset, int size)
    {
        AccessWidths widths = region.Widths;
        int narrower = Narrower(widths, size);
        if (narrower != 0)
        {
            ulong value = 0;
            for (int done = 0; done < size; done += narrower)
            {
                ulong part = region.Device.Read(region, offset + (ulong)done, narrower) & IoDispatcher.Mask(narrower);
                value |= part << (done * 8);
            }

            return value;
        }

        int wider = Wider(widths, size);
        ulong aligned = offset & ~(ulong)(wider - 1);
        int shift = (int)(offset - aligned);
        if (shift + size <= wider && aligned + (ulong)wider <= region.Size)
        {
            return (region.Device.Read(region, aligned, wider) >> (shift * 8)) & IoDispatcher.Mask(size);
        }

        // Straddles two wide units (or the region's end): assemble byte by byte, each from its own wide access.
        ulong result = 0;
        for (int i = 0; i < size; i++)
        {
            result |= (Read(region, offset + (ulong)i, 1) & 0xFF) << (i * 8);
        }

        return result;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void WriteAdapted(DeviceRegion region, ulong offset, int size, ulong value)
    {
        AccessWidths widths = region.Widths;
        int narrower = Narrower(widths, size);
        if (narrower != 0)
        {
            for (int done = 0; done < size; done += narrower)
            {
                region.Device.Write(region, offset + (ulong)done, narrower, (value >> (done * 8)) & IoDispatcher.Mask(narrower));
            }

            return;
        }

        int wider = Wider(widths, size);
        ulong aligned = offset & ~(ulong)(wider - 1);
        int shift = (int)(offset - aligned);
        if (shift + size <= wider && aligned + (ulong)wider <= region.Size)
        {
            ulong mask = IoDispatcher.Mask(size) << (shift * 8);
            ulong current = region.Device.Read(region, aligned, wider);
            region.Device.Write(region, aligned, wider, ((current & ~mask) | ((value << (shift * 8)) & mask)) & IoDispatcher.Mask(wider));
            return;
        }

        for (int i = 0; i < size; i++)
        {
            Write(region, offset + (ulong)i, 1, (value >> (i * 8)) & 0xFF);
        }
    }

    /// <summary>The widest supported width below <paramref name="size"/>, or 0.</summary>
    private static int Narrower(AccessWidths widths, int size)
    {
        for (int w = size >> 1; w >= 1; w >>= 1)
        {
            if (((int)widths & w) != 0)
            {
                return w;
            }
        }

        return 0;
    }

    /// <summary>The narrowest supported width above <paramref name="size"/> (one exists when no narrower one does).</summary>
    private static int Wider(AccessWidths widths, int size)
    {
        for (int w = size << 1; w <= 8; w <<= 1)
        {
            if (((int)widths & w) != 0)
            {
                return w;
            }
        }

        return 8;
    }
}
