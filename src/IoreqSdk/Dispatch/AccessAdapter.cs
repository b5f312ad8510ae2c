using System.Runtime.CompilerServices;
using IoreqSdk.Devices;

namespace IoreqSdk.Dispatch;

/// <summary>
/// Serves an access in the widths a region declared. A width the handlers implement goes straight through. A width
/// the region does not accept is refused: reads return all-ones, writes are dropped, both are counted. A width it
/// accepts but does not implement (the device opted in) is adapted, as QEMU's memory API does: split into the widest
/// narrower implemented accesses, or — when only wider widths exist — served from the aligned wider units that contain
/// it (reads extract the bytes; writes read, merge and write back each unit once). Little-endian throughout.
/// </summary>
/// <remarks>
/// Nothing here recurses: a byte whose containing wider unit does not fit in the region (a region whose size is not
/// a multiple of the width) cannot be served by the device at all, and reads as all-ones or is dropped.
/// </remarks>
internal static class AccessAdapter
{
    /// <summary>Reads <paramref name="size"/> bytes at <paramref name="offset"/> of a region.</summary>
    // Inlined into the dispatcher: a width the region implements (nearly every access) costs one test before the call.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Read(DeviceRegion region, ulong offset, int size, DispatchCounters statistics) =>
        ((int)region.Widths & size) != 0 ? region.Device.Read(region, offset, size) : ReadOther(region, offset, size, statistics);

    /// <summary>Writes <paramref name="size"/> bytes at <paramref name="offset"/> of a region.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write(DeviceRegion region, ulong offset, int size, ulong value, DispatchCounters statistics)
    {
        if (((int)region.Widths & size) != 0)
        {
            region.Device.Write(region, offset, size, value);
        }
        else
        {
            WriteOther(region, offset, size, value, statistics);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static ulong ReadOther(DeviceRegion region, ulong offset, int size, DispatchCounters statistics)
    {
        if (((int)region.AcceptedWidths & size) == 0)
        {
            statistics.RefusedWidth++;
            return ulong.MaxValue;
        }

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

        // Only wider widths: the access lies in one aligned unit, or straddles two (it is narrower than a unit).
        int wider = Wider(widths, size);
        ulong unitMask = ~(ulong)(wider - 1);
        ulong first = offset & unitMask;
        ulong last = (offset + (ulong)(size - 1)) & unitMask;
        ulong result = 0;
        for (ulong unit = first; ; unit += (ulong)wider)
        {
            // The unit's bytes that belong to the access, and where they go in the result.
            ulong from = unit > offset ? unit : offset;
            ulong to = unit + (ulong)wider < offset + (ulong)size ? unit + (ulong)wider : offset + (ulong)size;
            ulong bytes = UnitFits(region, unit, wider)
                ? region.Device.Read(region, unit, wider) >> (int)((from - unit) * 8)
                : ulong.MaxValue;
            result |= (bytes & IoDispatcher.Mask((int)(to - from))) << (int)((from - offset) * 8);
            if (unit == last)
            {
                return result;
            }
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void WriteOther(DeviceRegion region, ulong offset, int size, ulong value, DispatchCounters statistics)
    {
        if (((int)region.AcceptedWidths & size) == 0)
        {
            statistics.RefusedWidth++;
            return;
        }

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
        ulong unitMask = ~(ulong)(wider - 1);
        ulong first = offset & unitMask;
        ulong last = (offset + (ulong)(size - 1)) & unitMask;
        for (ulong unit = first; ; unit += (ulong)wider)
        {
            ulong from = unit > offset ? unit : offset;
            ulong to = unit + (ulong)wider < offset + (ulong)size ? unit + (ulong)wider : offset + (ulong)size;

            // Bytes of a unit that does not fit in the region are dropped: the device has no access that reaches them.
            if (UnitFits(region, unit, wider))
            {
                int shift = (int)((from - unit) * 8);
                ulong mask = IoDispatcher.Mask((int)(to - from)) << shift;
                ulong part = (value >> (int)((from - offset) * 8)) << shift;
                ulong current = region.Device.Read(region, unit, wider);
                region.Device.Write(region, unit, wider, ((current & ~mask) | (part & mask)) & IoDispatcher.Mask(wider));
            }

            if (unit == last)
            {
                return;
            }
        }
    }

    private static bool UnitFits(DeviceRegion region, ulong unit, int wider) => unit <= region.Size - (ulong)wider && (ulong)wider <= region.Size;

    /// <summary>The widest implemented width below <paramref name="size"/>, or 0.</summary>
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

    /// <summary>The narrowest implemented width above <paramref name="size"/> (one exists when no narrower one does).</summary>
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
