using System;
using System.Buffers.Binary;
using IoreqSdk.Virtio;

namespace IoreqSdk.Devices.Virtio.Blk;

/// <summary>A request's way through the device: validated on the loop, its I/O off it, answered on the loop.</summary>
public sealed partial class VirtioBlkDevice
{
    /// <summary>Reads and validates a popped request; answers it at once, or starts its first off-loop step.</summary>
    private void Start(VirtioBlkRequest request)
    {
        VirtioDescriptorChain chain = request.Chain;
        request.Epoch = _epoch;

        // The slot's last request may have been a pinned read or write: only StartData pins, so every other request
        // (a flush, a discard, write-zeroes) must not run as one — its worker would move the slot's empty pinned
        // buffers and skip the operation itself, yet answer OK.
        request.Pinned = false;
        if (chain.WritableLength == 0)
        {
            Reject(request);
            return;
        }

        request.StatusOffset = chain.WritableLength - 1;
        Span<byte> header = stackalloc byte[VirtioBlk.HeaderSize];
        if (chain.ReadableLength < VirtioBlk.HeaderSize
            || !chain.TryRead(0, header)
            || chain.Readable.Length + chain.Writable.Length > _options.MaxSegments + 2)
        {
            // Header and status take a descriptor each beside the seg_max data segments.
            Finish(request, VirtioBlk.StatusIoError, 0);
            return;
        }

        uint type = BinaryPrimitives.ReadUInt32LittleEndian(header);
        ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(header.Slice(8));
        switch (type)
        {
            case VirtioBlk.TypeIn:
                StartData(request, BlkOperation.Read, sector, chain.WritableLength - 1);
                break;
            case VirtioBlk.TypeOut:
                if (IsReadOnly)
                {
                    Finish(request, VirtioBlk.StatusIoError, 0);
                }
                else
                {
                    StartData(request, BlkOperation.Write, sector, chain.ReadableLength - VirtioBlk.HeaderSize);
                }

                break;
            case VirtioBlk.TypeFlush:
                request.Operation = BlkOperation.Flush;
                Submit(request);
                break;
            case VirtioBlk.TypeGetId:
                int length = (int)Math.Min(VirtioBlk.IdBytes, chain.WritableLength - 1);
                bool written = chain.TryWrite(0, _id.AsSpan(0, length));
                Finish(request, written ? VirtioBlk.StatusOk : VirtioBlk.StatusIoError, written ? (uint)length : 0);
                break;
            case VirtioBlk.TypeDiscard:
                StartRanges(request, BlkOperation.Discard, VirtioBlkFeatures.Discard);
                break;
            case VirtioBlk.TypeWriteZeroes:
                StartRanges(request, BlkOperation.WriteZeroes, VirtioBlkFeatures.WriteZeroes);
                break;
            default:
                Finish(request, VirtioBlk.StatusUnsupported, 0);
                break;
        }
    }

    private void StartData(VirtioBlkRequest request, BlkOperation operation, ulong sector, ulong length)
    {
        ulong sectors = length >> VirtioBlk.SectorShift;
        if ((length & (VirtioBlk.SectorSize - 1)) != 0
            || length >= uint.MaxValue
            || sector > CapacitySectors
            || sectors > CapacitySectors - sector)
        {
            // Capacity is the image's length in sectors, below 2^54: sector × 512 cannot overflow past this check.
            Finish(request, VirtioBlk.StatusIoError, 0);
            return;
        }

        if (length == 0)
        {
            Finish(request, VirtioBlk.StatusOk, 0);
            return;
        }

        request.Operation = operation;
        request.Offset = (long)(sector << VirtioBlk.SectorShift);
        request.Length = (long)length;
        request.Done = 0;
        request.WriteThrough = operation == BlkOperation.Write && !IsNegotiated(VirtioBlkFeatures.Flush);
        VirtioDescriptorChain chain = request.Chain;
        request.Pinned = _options.ZeroCopy
            && (operation == BlkOperation.Read
                ? chain.TryPinWritable(0, length)
                : chain.TryPinReadable(VirtioBlk.HeaderSize, length));
        if (request.Pinned)
        {
            // One step for the whole request: the worker moves it in place, and releases the pins when its I/O is done.
            ZeroCopyRequests++;
            request.HoldPins();
            request.Step = (int)length;
            Submit(request);
            return;
        }

        NextStep(request);
    }

    /// <summary>DISCARD and WRITE_ZEROES: the ranges are copied into the slot and checked here, applied off the loop.</summary>
    private void StartRanges(VirtioBlkRequest request, BlkOperation operation, ulong feature)
    {
        if (!IsNegotiated(feature))
        {
            Finish(request, VirtioBlk.StatusUnsupported, 0);
            return;
        }

        VirtioDescriptorChain chain = request.Chain;
        ulong payload = chain.ReadableLength - VirtioBlk.HeaderSize;
        ulong count = payload / VirtioBlk.RangeSize;
        if (IsReadOnly || payload == 0 || payload % VirtioBlk.RangeSize != 0 || count > _options.MaxRanges)
        {
            Finish(request, VirtioBlk.StatusIoError, 0);
            return;
        }

        Span<byte> ranges = request.Bounce.AsSpan(0, (int)payload);
        if (!chain.TryRead(VirtioBlk.HeaderSize, ranges))
        {
            Finish(request, VirtioBlk.StatusIoError, 0);
            return;
        }

        // Any flag but unmap is reserved; unmap is for WRITE_ZEROES only (a discard always may unmap): UNSUPP.
        uint allowedFlags = operation == BlkOperation.WriteZeroes ? VirtioBlk.FlagUnmap : 0;
        byte status = VirtioBlk.StatusOk;
        for (int i = 0; i < (int)count; i++)
        {
            ReadOnlySpan<byte> range = ranges.Slice(i * VirtioBlk.RangeSize, VirtioBlk.RangeSize);
            ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(range);
            uint sectors = BinaryPrimitives.ReadUInt32LittleEndian(range.Slice(8));
            uint flags = BinaryPrimitives.ReadUInt32LittleEndian(range.Slice(12));
            if ((flags & ~allowedFlags) != 0)
            {
                status = VirtioBlk.StatusUnsupported;
                break;
            }

            if (sectors > _options.MaxRangeSectors || sector > CapacitySectors || sectors > CapacitySectors - sector)
            {
                status = VirtioBlk.StatusIoError;
                break;
            }
        }

        if (status != VirtioBlk.StatusOk)
        {
            Finish(request, status, 0);
            return;
        }

        request.Operation = operation;
        request.Length = (long)count;
        Submit(request);
    }

    /// <summary>The next step of a data request: at most a bounce buffer of it; a write's data is copied in here, on the loop.</summary>
    private void NextStep(VirtioBlkRequest request)
    {
        int step = (int)Math.Min(request.Bounce.Length, request.Length - request.Done);
        request.Step = step;
        if (request.Operation == BlkOperation.Write
            && !request.Chain.TryRead(VirtioBlk.HeaderSize + (ulong)request.Done, request.Bounce.AsSpan(0, step)))
        {
            Finish(request, VirtioBlk.StatusIoError, 0);
            return;
        }

        Submit(request);
    }

    private void Submit(VirtioBlkRequest request)
    {
        IOffLoopWorker? worker = _worker;
        IDeviceContext? context = _context;
        bool accepted = worker is not null ? worker.TryRun(request) : context is not null && context.TryRunOffLoop(request);
        if (!accepted)
        {
            RefusedRequests++;
            Finish(request, VirtioBlk.StatusIoError, 0);
        }
    }

    /// <summary>A step's I/O finished (on the loop): copy a read out, go on, or answer.</summary>
    internal void OnStepDone(VirtioBlkRequest request)
    {
        BlkQueue slots = request.Queue;
        VirtioDescriptorChain chain = request.Chain;
        if (request.Epoch != _epoch || !chain.IsCurrent)
        {
            // The driver reset the device or the queue meanwhile: the buffer is no longer the device's. Push drops a
            // stale chain without touching the ring; the slot is free again.
            DroppedCompletions++;
            if (chain.IsOutstanding)
            {
                slots.Queue.Push(chain, 0);
            }

            request.Operation = BlkOperation.None;
            slots.Return(request);
        }
        else if (request.Failed)
        {
            Finish(request, VirtioBlk.StatusIoError, 0);
        }
        else
        {
            switch (request.Operation)
            {
                case BlkOperation.Read:
                    if (!request.Pinned && !chain.TryWrite((ulong)request.Done, request.Bounce.AsSpan(0, request.Step)))
                    {
                        Finish(request, VirtioBlk.StatusIoError, 0);
                        break;
                    }

                    request.Done += request.Step;
                    if (request.Done < request.Length)
                    {
                        NextStep(request);
                    }
                    else
                    {
                        Finish(request, VirtioBlk.StatusOk, (uint)request.Length);
                    }

                    break;
                case BlkOperation.Write:
                    request.Done += request.Step;
                    if (request.Done < request.Length)
                    {
                        NextStep(request);
                    }
                    else
                    {
                        Finish(request, VirtioBlk.StatusOk, 0);
                    }

                    break;
                default:
                    Finish(request, VirtioBlk.StatusOk, 0);
                    break;
            }
        }

        // A slot may be free now: start what waits in the ring (and signal what was answered).
        Drain(slots);
    }
}
