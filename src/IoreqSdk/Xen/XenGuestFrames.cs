using System;
using System.Buffers;
using IoreqSdk.Hypervisor;

namespace IoreqSdk.Xen;

/// <summary>
/// Guest RAM mapped into this process with <c>xenforeignmemory_map</c>: a run of guest frames, with the per-frame
/// error list the library fills in. Called on the guest-memory cache's misses only (the request path reuses a
/// mapping until INVALIDATE), so the frame and error lists are rented, not kept.
/// </summary>
internal static class XenGuestFrames
{
    private const int ProtRead = 1;
    private const int ProtWrite = 2;

    public static unsafe IMappedPages Map(SafeXenForeignMemoryHandle foreignMemory, ushort domain, ulong firstFrame, int count, bool writable)
    {
        if (count <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(count), "At least one frame.");
        }

        ulong[] frames = ArrayPool<ulong>.Shared.Rent(count);
        int[] errors = ArrayPool<int>.Shared.Rent(count);
        try
        {
            for (int i = 0; i < count; i++)
            {
                frames[i] = firstFrame + (ulong)i;
                errors[i] = 0;
            }

            using var lease = new HandleLease(foreignMemory);
            void* address;
            fixed (ulong* frameList = frames)
            fixed (int* errorList = errors)
            {
                address = Interop.XenForeignMemory.Map(lease.Value, domain, ProtRead | (writable ? ProtWrite : 0), (nuint)count, frameList, errorList);
            }

            if (address == null)
            {
                throw XenErrors.LastError("xenforeignmemory_map", domain);
            }

            var mapping = new XenForeignMapping(foreignMemory, (nint)address, count);
            for (int i = 0; i < count; i++)
            {
                if (errors[i] != 0)
                {
                    // One frame failed (not RAM, or not the guest's): the whole window is unusable.
                    mapping.Dispose();
                    throw XenErrors.Create("xenforeignmemory_map", -errors[i] > 0 ? -errors[i] : errors[i], domain);
                }
            }

            return mapping;
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(frames);
            ArrayPool<int>.Shared.Return(errors);
        }
    }
}
