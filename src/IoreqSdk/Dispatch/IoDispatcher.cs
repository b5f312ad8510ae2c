using System;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Threading;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Memory;

namespace IoreqSdk.Dispatch;

/// <summary>
/// Serves one request: validates it, finds its target in immutable sorted range tables, calls the device (adapting
/// access widths) and returns the response data. A device's exception from a single-element access propagates to the
/// caller, which contains it with <see cref="ContainFault"/>; rep elements, PCI_CONFIG and buffered writes are
/// contained here. Rep/string forms go through guest memory
/// with x86's semantics. Allocation-free and lock-free; called from the server's event loop (and, for the accesses
/// <see cref="TryRouteConcurrent"/> routes, from request loops, which count into their own counters).
/// </summary>
internal sealed class IoDispatcher
{
    /// <summary>
    /// The most bytes one request may move. Xen truncates a string request so that its RAM side covers at most one
    /// page, or one element spanning two (<c>hvmemul_do_io</c>); anything larger was not sent by Xen.
    /// </summary>
    internal const ulong MaxRepBytes = 2 * 4096;

    private readonly IGuestMemory _memory;
    private readonly DispatchCounters _statistics;
    private readonly Action<IDeviceModel, Exception> _onDeviceFault;
    private RangeTable<DeviceRegion> _mmio = RangeTable<DeviceRegion>.Empty;
    private RangeTable<DeviceRegion> _ports = RangeTable<DeviceRegion>.Empty;
    private RangeTable<IPciConfigSpace> _pci = RangeTable<IPciConfigSpace>.Empty;

    public IoDispatcher(IGuestMemory memory, DispatchCounters statistics, Action<IDeviceModel, Exception> onDeviceFault)
    {
        _memory = memory;
        _statistics = statistics;
        _onDeviceFault = onDeviceFault;
    }

    /// <summary>Routes <c>[start, end]</c> of an address space to a region; publishes a new table.</summary>
    /// <exception cref="InvalidOperationException">The range overlaps one the space routes already.</exception>
    public void AddRange(RegionKind kind, ulong start, ulong end, DeviceRegion region)
    {
        // Volatile.Write publishes the fully built table: a loop thread reading the field sees all of it or the old one.
        if (kind == RegionKind.Mmio)
        {
            Volatile.Write(ref _mmio, _mmio.With(start, end, region));
        }
        else
        {
            Volatile.Write(ref _ports, _ports.With(start, end, region));
        }
    }

    /// <summary>As <see cref="AddRange"/>, but a range that overlaps one the space routes already is not added.</summary>
    /// <returns>Whether the range was added.</returns>
    public bool TryAddRange(RegionKind kind, ulong start, ulong end, DeviceRegion region)
    {
        ref RangeTable<DeviceRegion> space = ref kind == RegionKind.Mmio ? ref _mmio : ref _ports;
        if (!space.TryWith(start, end, region, out RangeTable<DeviceRegion> table, out _))
        {
            return false;
        }

        // As in AddRange: the fully built table is published at once.
        Volatile.Write(ref space, table);
        return true;
    }

    /// <summary>Stops routing anything to a region, in whichever space it was mapped (a port region may live in MMIO
    /// space behind a PIO aperture).</summary>
    public void RemoveRange(DeviceRegion region)
    {
        Volatile.Write(ref _mmio, _mmio.Without(region));
        Volatile.Write(ref _ports, _ports.Without(region));
    }

    /// <summary>Routes <c>PCI_CONFIG</c> requests for a function to its configuration space.</summary>
    public void AddPciFunction(PciSbdf sbdf, IPciConfigSpace config) =>
        Volatile.Write(ref _pci, _pci.With(sbdf.Value, sbdf.Value, config));

    /// <summary>Stops routing a function's configuration requests.</summary>
    public void RemovePciFunction(IPciConfigSpace config) => Volatile.Write(ref _pci, _pci.Without(config));

    /// <summary>Serves a synchronous request; returns what goes into the response's <c>data</c>.</summary>
    /// <param name="request">A private copy of the request (never the shared slot).</param>
    /// <returns>For reads without a pointer, the value masked to the access size; otherwise the request's own data.</returns>
    /// <remarks>
    /// An exception of the device a single-element port or MMIO access reaches (nearly every request) propagates: the
    /// caller contains it with <see cref="ContainFault"/>, as the event loop does around each request. Rep and string
    /// requests and <c>PCI_CONFIG</c> contain each device call here (one element's fault must not abandon the others).
    /// </remarks>
    // Why the single-element path has no handler of its own: a method with one keeps the values live across its
    // protected region on the stack and saves every callee-saved register in its prologue; around the device call
    // that cost a write ~1.5 ns, a third of the C dispatcher's whole time. The event loop's frame around a request
    // exists anyway, and its handler costs nothing until a device throws.
    public ulong Dispatch(in IoRequest request)
    {
        switch (request.Type)
        {
            case IoreqType.Pio:
                _statistics.Pio++;
                return Access(Volatile.Read(ref _ports), in request, maxSize: 4, stepsAddress: false);
            case IoreqType.Copy:
                _statistics.Mmio++;
                return Access(Volatile.Read(ref _mmio), in request, maxSize: 8, stepsAddress: true);
            case IoreqType.PciConfig:
                _statistics.PciConfig++;
                return PciConfig(in request);
            case IoreqType.TimeOffset:
                // Only ever buffered; a synchronous one is answered and otherwise ignored.
                _statistics.TimeOffset++;
                return request.Data;
            default:
                _statistics.Unknown++;
                return request.IsRead && !request.DataIsPointer ? ulong.MaxValue : request.Data;
        }
    }

    /// <summary>
    /// For a request loop: finds the region a synchronous request reaches when a request loop may serve it itself — a
    /// single-element port or MMIO access without a pointer, of a width the space allows, inside one region its device
    /// declared concurrent (<see cref="DeviceRegion.IsConcurrent"/>). Anything else goes to the event loop.
    /// </summary>
    /// <param name="request">A private copy of the request.</param>
    /// <param name="region">The region, when found.</param>
    /// <param name="offset">The offset in it.</param>
    /// <returns>Whether the request loop serves it (with <see cref="ServeConcurrent"/>).</returns>
    /// <remarks>Reads the published tables only (a lookup's hint is the one field written, and it tolerates races).</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryRouteConcurrent(in IoRequest request, out DeviceRegion region, out ulong offset)
    {
        uint size = request.Size;
        uint maxSize;
        RangeTable<DeviceRegion> table;
        if (request.Type == IoreqType.Copy)
        {
            table = Volatile.Read(ref _mmio);
            maxSize = 8;
        }
        else if (request.Type == IoreqType.Pio)
        {
            table = Volatile.Read(ref _ports);
            maxSize = 4;
        }
        else
        {
            region = null!;
            offset = 0;
            return false;
        }

        if (request.Count != 1 || request.DataIsPointer || size - 1 >= maxSize || (size & (size - 1)) != 0 ||
            !table.TryFind(request.Address, (int)size, out region, out offset))
        {
            region = null!;
            offset = 0;
            return false;
        }

        return region.IsConcurrent;
    }

    /// <summary>Serves a request <see cref="TryRouteConcurrent"/> routed, counting in a request loop's own counters;
    /// the device's exception propagates (the request loop contains it).</summary>
    /// <param name="region">The region found.</param>
    /// <param name="offset">The offset in it.</param>
    /// <param name="request">The request.</param>
    /// <param name="counters">The request loop's counters (never the event loop's: each loop writes its own).</param>
    /// <returns>What goes into the response's <c>data</c>.</returns>
    public static ulong ServeConcurrent(DeviceRegion region, ulong offset, in IoRequest request, DispatchCounters counters)
    {
        int size = (int)request.Size;
        if (request.Type == IoreqType.Pio)
        {
            counters.Pio++;
        }
        else
        {
            counters.Mmio++;
        }

        if (request.IsRead)
        {
            return AccessAdapter.Read(region, offset, size, counters) & Mask(size);
        }

        AccessAdapter.Write(region, offset, size, request.Data & Mask(size), counters);
        return request.Data;
    }

    /// <summary>Contains the exception a device threw from <see cref="Dispatch"/>: counts and reports it, and gives the
    /// answer an unclaimed access gets (all-ones for a read, the request's own data for anything else).</summary>
    /// <param name="request">The request <see cref="Dispatch"/> was serving.</param>
    /// <param name="exception">What the device threw.</param>
    /// <returns>What goes into the response's <c>data</c>.</returns>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public ulong ContainFault(in IoRequest request, Exception exception)
    {
        // The region is found again by the address, in the table published now: the path keeps no note of the region
        // it called (a reference store per request would cost a write barrier). Tables are immutable and only a
        // remapping publishes another, so this is the region the request reached — unless its handler remapped the
        // space before throwing, when the address may name no region (reported as such) or another device's (reported
        // instead). Only the single-element port and MMIO path lets a fault out (the others contain their own).
        int size = (int)Math.Min(Math.Max(request.Size, 1u), 8u);
        ReportFault(request.Type == IoreqType.Pio ? Volatile.Read(ref _ports) : request.Type == IoreqType.Copy ? Volatile.Read(ref _mmio) : RangeTable<DeviceRegion>.Empty, request.Address, size, exception);
        return request.IsRead && !request.DataIsPointer ? Mask(size) : request.Data;
    }

    /// <summary>Serves one buffered write (always a single, non-pointer write).</summary>
    public void DispatchBufferedWrite(IoreqType type, ulong address, int size, ulong value)
    {
        if (type == IoreqType.Copy)
        {
            _statistics.Mmio++;
            _ = WriteContained(Volatile.Read(ref _mmio), address, size, value);
        }
        else
        {
            _statistics.Unknown++;
        }
    }

    /// <summary>Serves a port or MMIO request: the single-element form inline, everything else in <see cref="AccessMany"/>.</summary>
    // Nearly every request is one element without a pointer (a guest's mov to or from a register). Inlined into
    // Dispatch, that form reaches the device through Read or Write alone; AccessMany's frame (a stackalloc'd element
    // buffer, loops) is paid only by string and rep requests.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ulong Access(RangeTable<DeviceRegion> table, in IoRequest request, int maxSize, bool stepsAddress)
    {
        uint size = request.Size;
        if (request.Count == 1 && !request.DataIsPointer && size - 1 < (uint)maxSize && (size & (size - 1)) == 0)
        {
            return request.IsRead
                ? Read(table, request.Address, (int)size)
                : Write(table, request.Address, (int)size, request.Data);
        }

        return AccessMany(table, in request, maxSize, stepsAddress);
    }

    /// <summary>Serves what <see cref="Access"/> does not: rep forms, string I/O through guest RAM, malformed sizes.</summary>
    private ulong AccessMany(RangeTable<DeviceRegion> table, in IoRequest request, int maxSize, bool stepsAddress)
    {
        uint size = request.Size;
        if (size == 0 || size > (uint)maxSize || (size & (size - 1)) != 0)
        {
            _statistics.Malformed++;
            return request.IsRead && !request.DataIsPointer ? ulong.MaxValue : request.Data;
        }

        int width = (int)size;
        uint count = request.Count;
        if (!request.DataIsPointer)
        {
            if (request.IsRead)
            {
                // Not one element (Access served that): Xen generates no such reads; like QEMU, repeat them and keep
                // the last value (none for count 0: all-ones).
                ulong value = ulong.MaxValue;
                uint repeats = Math.Min(count, (uint)(MaxRepBytes / size));
                for (uint i = 0; i < repeats; i++)
                {
                    value = ReadContained(table, Step(request.Address, i, width, request.DirectionFlag, stepsAddress), width);
                }

                return value & Mask(width);
            }

            // rep stos: the same value at every element.
            ulong masked = request.Data & Mask(width);
            if ((ulong)count * size > MaxRepBytes)
            {
                _statistics.Malformed++;
                return request.Data;
            }

            for (uint i = 0; i < count; i++)
            {
                _ = WriteContained(table, Step(request.Address, i, width, request.DirectionFlag, stepsAddress), width, masked);
            }

            return request.Data;
        }

        // String I/O through guest RAM: data is a guest-physical address.
        if ((ulong)count * size > MaxRepBytes)
        {
            _statistics.Malformed++;
            return request.Data;
        }

        Span<byte> element = stackalloc byte[8];
        element = element.Slice(0, width);
        for (uint i = 0; i < count; i++)
        {
            ulong ram = Step(request.Data, i, width, request.DirectionFlag, steps: true);
            ulong device = Step(request.Address, i, width, request.DirectionFlag, stepsAddress);
            if (request.IsRead)
            {
                ulong value = ReadContained(table, device, width);
                WriteLittleEndian(element, value);
                if (!_memory.TryWrite(ram, element))
                {
                    _statistics.GuestMemoryFault++;
                    break;
                }
            }
            else
            {
                if (!_memory.TryRead(ram, element))
                {
                    _statistics.GuestMemoryFault++;
                    break;
                }

                _ = WriteContained(table, device, width, ReadLittleEndian(element));
            }
        }

        return request.Data;
    }

    private ulong PciConfig(in IoRequest request)
    {
        uint size = request.Size;
        uint register = PciConfigAddress.GetRegister(request.Address);
        if ((size != 1 && size != 2 && size != 4) || request.Count != 1 || register > 0xFFF || ((register & (size - 1)) != 0))
        {
            _statistics.Malformed++;
            return request.IsRead ? ulong.MaxValue : request.Data;
        }

        PciSbdf sbdf = PciConfigAddress.GetSbdf(request.Address);
        if (!Volatile.Read(ref _pci).TryFind(sbdf.Value, 1, out IPciConfigSpace config, out _))
        {
            if (request.IsRead)
            {
                _statistics.UnclaimedRead++;
                return Mask((int)size);
            }

            _statistics.UnclaimedWrite++;
            return request.Data;
        }

        // data_is_ptr with count 1 (accepted by QEMU): the value lives in guest RAM.
        try
        {
            if (request.IsRead)
            {
                uint value = config.ReadConfig((int)register, (int)size) & (uint)Mask((int)size);
                if (!request.DataIsPointer)
                {
                    return value;
                }

                Span<byte> buffer = stackalloc byte[4];
                BinaryPrimitives.WriteUInt32LittleEndian(buffer, value);
                if (!_memory.TryWrite(request.Data, buffer.Slice(0, (int)size)))
                {
                    _statistics.GuestMemoryFault++;
                }

                return request.Data;
            }

            uint data = (uint)(request.Data & Mask((int)size));
            if (request.DataIsPointer)
            {
                Span<byte> buffer = stackalloc byte[4];
                buffer.Clear();
                if (!_memory.TryRead(request.Data, buffer.Slice(0, (int)size)))
                {
                    _statistics.GuestMemoryFault++;
                    return request.Data;
                }

                data = BinaryPrimitives.ReadUInt32LittleEndian(buffer);
            }

            config.WriteConfig((int)register, (int)size, data);
        }
        catch (Exception e)
        {
            _statistics.DeviceFault++;
            _onDeviceFault(config as IDeviceModel ?? UnknownDevice.Instance, e);
            return request.IsRead && !request.DataIsPointer ? Mask((int)size) : request.Data;
        }

        return request.Data;
    }

    /// <summary>One read of a region's device; the device's exception propagates (see <see cref="Dispatch"/>).</summary>
    private ulong Read(RangeTable<DeviceRegion> table, ulong address, int size)
    {
        if (!table.TryFind(address, size, out DeviceRegion region, out ulong offset))
        {
            _statistics.UnclaimedRead++;
            return Mask(size);
        }

        return AccessAdapter.Read(region, offset, size, _statistics) & Mask(size);
    }

    /// <summary>One write to a region's device; the device's exception propagates (see <see cref="Dispatch"/>).</summary>
    /// <returns><paramref name="value"/> as given: the response to a write carries its own data back, and returning it
    /// lets the single-element path tail-call here (one frame per request, as for reads).</returns>
    private ulong Write(RangeTable<DeviceRegion> table, ulong address, int size, ulong value)
    {
        if (!table.TryFind(address, size, out DeviceRegion region, out ulong offset))
        {
            _statistics.UnclaimedWrite++;
            return value;
        }

        AccessAdapter.Write(region, offset, size, value & Mask(size), _statistics);
        return value;
    }

    /// <summary>As <see cref="Read"/>, containing the device's exception: for the elements of a rep request.</summary>
    private ulong ReadContained(RangeTable<DeviceRegion> table, ulong address, int size)
    {
        try
        {
            return Read(table, address, size);
        }
        catch (Exception e)
        {
            ReportFault(table, address, size, e);
            return Mask(size);
        }
    }

    /// <summary>As <see cref="Write"/>, containing the device's exception: for rep elements and buffered writes.</summary>
    private ulong WriteContained(RangeTable<DeviceRegion> table, ulong address, int size, ulong value)
    {
        try
        {
            return Write(table, address, size, value);
        }
        catch (Exception e)
        {
            ReportFault(table, address, size, e);
            return value;
        }
    }

    /// <summary>Counts a device's fault and reports it against the device <paramref name="table"/> routes the access
    /// to (the table is immutable: the lookup finds the region the access reached).</summary>
    private void ReportFault(RangeTable<DeviceRegion> table, ulong address, int size, Exception exception)
    {
        _statistics.DeviceFault++;
        _onDeviceFault(table.TryFind(address, size, out DeviceRegion region, out _) ? region.Device : UnknownDevice.Remapped, exception);
    }

    /// <summary>Element <paramref name="index"/>'s address: <c>base ± index * size</c>, wrapping modulo 2^64 as x86 does.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong Step(ulong address, uint index, int size, bool down, bool steps)
    {
        if (!steps)
        {
            return address;
        }

        ulong delta = (ulong)index * (ulong)size;
        return down ? address - delta : address + delta;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static ulong Mask(int size) => size >= 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1;

    private static ulong ReadLittleEndian(ReadOnlySpan<byte> bytes)
    {
        ulong value = 0;
        for (int i = bytes.Length - 1; i >= 0; i--)
        {
            value = (value << 8) | bytes[i];
        }

        return value;
    }

    private static void WriteLittleEndian(Span<byte> bytes, ulong value)
    {
        for (int i = 0; i < bytes.Length; i++)
        {
            bytes[i] = (byte)(value >> (i * 8));
        }
    }

    /// <summary>Stands for a configuration space that is not itself a device, or for a device whose region the fault's
    /// address no longer names (its handler remapped the space before throwing), when a fault is reported.</summary>
    private sealed class UnknownDevice : DeviceModel
    {
        public static readonly UnknownDevice Instance = new("pci-config");

        public static readonly UnknownDevice Remapped = new("(a device whose region moved)");

        private UnknownDevice(string name)
            : base(name)
        {
        }

        public override ulong Read(DeviceRegion region, ulong offset, int size) => 0;

        public override void Write(DeviceRegion region, ulong offset, int size, ulong value)
        {
        }
    }
}
