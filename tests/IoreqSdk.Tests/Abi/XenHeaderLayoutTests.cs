using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using IoreqSdk.Abi;
using IoreqSdk.Tests.Infrastructure;
using NUnit.Framework;

namespace IoreqSdk.Tests.Abi;

/// <summary>
/// Every size, offset, bit position and constant the SDK mirrors, compared with what a C program compiled against
/// Xen's own public headers prints. Bit positions are measured on both sides: C sets a bitfield to all-ones, C#
/// sets the property, and both locate the bits in the byte image.
/// </summary>
[TestFixture]
public sealed class XenHeaderLayoutTests
{
    private static IReadOnlyDictionary<string, ulong>? s_fromC;

    /// <summary>What C# says for each name the probe prints.</summary>
    private static readonly Dictionary<string, Func<ulong>> s_fromCSharp = new(StringComparer.Ordinal)
    {
        ["sizeof.ioreq_t"] = () => IoRequest.SizeInBytes,
        ["alignof.ioreq_t"] = () => IoRequest.Alignment,
        ["offsetof.ioreq_t.addr"] = () => IoRequest.AddressOffset,
        ["offsetof.ioreq_t.data"] = () => IoRequest.DataOffset,
        ["offsetof.ioreq_t.count"] = () => IoRequest.CountOffset,
        ["offsetof.ioreq_t.size"] = () => IoRequest.SizeOffset,
        ["offsetof.ioreq_t.vp_eport"] = () => IoRequest.VcpuEventPortOffset,
        ["offsetof.ioreq_t._pad0"] = () => IoRequest.PaddingOffset,
        ["offsetof.ioreq_t.type"] = () => IoRequest.TypeOffset,
        ["bit.ioreq_t.addr"] = () => Measure((ref IoRequest r) => r.Address = ulong.MaxValue).Low,
        ["width.ioreq_t.addr"] = () => Measure((ref IoRequest r) => r.Address = ulong.MaxValue).Width,
        ["bit.ioreq_t.data"] = () => Measure((ref IoRequest r) => r.Data = ulong.MaxValue).Low,
        ["width.ioreq_t.data"] = () => Measure((ref IoRequest r) => r.Data = ulong.MaxValue).Width,
        ["bit.ioreq_t.count"] = () => Measure((ref IoRequest r) => r.Count = uint.MaxValue).Low,
        ["width.ioreq_t.count"] = () => Measure((ref IoRequest r) => r.Count = uint.MaxValue).Width,
        ["bit.ioreq_t.size"] = () => Measure((ref IoRequest r) => r.Size = uint.MaxValue).Low,
        ["width.ioreq_t.size"] = () => Measure((ref IoRequest r) => r.Size = uint.MaxValue).Width,
        ["bit.ioreq_t.vp_eport"] = () => Measure((ref IoRequest r) => r.VcpuEventPort = uint.MaxValue).Low,
        ["width.ioreq_t.vp_eport"] = () => Measure((ref IoRequest r) => r.VcpuEventPort = uint.MaxValue).Width,
        ["bit.ioreq_t._pad0"] = () => Measure((ref IoRequest r) => r.Padding = ushort.MaxValue).Low,
        ["width.ioreq_t._pad0"] = () => Measure((ref IoRequest r) => r.Padding = ushort.MaxValue).Width,
        ["bit.ioreq_t.state"] = () => Measure((ref IoRequest r) => r.State = (IoreqState)0xF).Low,
        ["width.ioreq_t.state"] = () => Measure((ref IoRequest r) => r.State = (IoreqState)0xF).Width,
        ["bit.ioreq_t.data_is_ptr"] = () => Measure((ref IoRequest r) => r.DataIsPointer = true).Low,
        ["width.ioreq_t.data_is_ptr"] = () => Measure((ref IoRequest r) => r.DataIsPointer = true).Width,
        ["bit.ioreq_t.dir"] = () => Measure((ref IoRequest r) => r.Direction = IoreqDirection.Read).Low,
        ["width.ioreq_t.dir"] = () => Measure((ref IoRequest r) => r.Direction = IoreqDirection.Read).Width,
        ["bit.ioreq_t.df"] = () => Measure((ref IoRequest r) => r.DirectionFlag = true).Low,
        ["width.ioreq_t.df"] = () => Measure((ref IoRequest r) => r.DirectionFlag = true).Width,
        ["bit.ioreq_t._pad1"] = () => Measure((ref IoRequest r) => r.Flags = IoRequestFlags.WithBit(0, IoRequestFlags.PaddingBit, true)).Low,
        ["width.ioreq_t._pad1"] = () => Measure((ref IoRequest r) => r.Flags = IoRequestFlags.WithBit(0, IoRequestFlags.PaddingBit, true)).Width,
        ["bit.ioreq_t.type"] = () => Measure((ref IoRequest r) => r.Type = (IoreqType)0xFF).Low,
        ["width.ioreq_t.type"] = () => Measure((ref IoRequest r) => r.Type = (IoreqType)0xFF).Width,

        ["sizeof.buf_ioreq_t"] = () => BufferedIoRequest.SizeInBytes,
        ["alignof.buf_ioreq_t"] = () => BufferedIoRequest.Alignment,
        ["offsetof.buf_ioreq_t.type"] = () => BufferedIoRequest.HeaderOffset,
        ["offsetof.buf_ioreq_t.data"] = () => BufferedIoRequest.DataOffset,
        ["bit.buf_ioreq_t.type"] = () => Measure(BufferedIoRequest.Create((IoreqType)0xFF, IoreqDirection.Write, 1, 0, 0)).Low,
        ["width.buf_ioreq_t.type"] = () => Measure(BufferedIoRequest.Create((IoreqType)0xFF, IoreqDirection.Write, 1, 0, 0)).Width,
        ["bit.buf_ioreq_t.pad"] = () => Measure(new BufferedIoRequest(1u << BufferedIoRequest.PaddingBit, 0)).Low,
        ["width.buf_ioreq_t.pad"] = () => Measure(new BufferedIoRequest(1u << BufferedIoRequest.PaddingBit, 0)).Width,
        ["bit.buf_ioreq_t.dir"] = () => Measure(BufferedIoRequest.Create(0, IoreqDirection.Read, 1, 0, 0)).Low,
        ["width.buf_ioreq_t.dir"] = () => Measure(BufferedIoRequest.Create(0, IoreqDirection.Read, 1, 0, 0)).Width,
        ["bit.buf_ioreq_t.size"] = () => Measure(BufferedIoRequest.Create(0, IoreqDirection.Write, 8, 0, 0)).Low,
        ["width.buf_ioreq_t.size"] = () => Measure(BufferedIoRequest.Create(0, IoreqDirection.Write, 8, 0, 0)).Width,
        ["bit.buf_ioreq_t.addr"] = () => Measure(BufferedIoRequest.Create(0, IoreqDirection.Write, 1, BufferedIoRequest.MaxAddress, 0)).Low,
        ["width.buf_ioreq_t.addr"] = () => Measure(BufferedIoRequest.Create(0, IoreqDirection.Write, 1, BufferedIoRequest.MaxAddress, 0)).Width,
        ["bit.buf_ioreq_t.data"] = () => Measure(BufferedIoRequest.Create(0, IoreqDirection.Write, 1, 0, uint.MaxValue)).Low,
        ["width.buf_ioreq_t.data"] = () => Measure(BufferedIoRequest.Create(0, IoreqDirection.Write, 1, 0, uint.MaxValue)).Width,

        ["slots_per_page.shared_iopage_t"] = () => SharedIoPage.SlotCount,
        ["sizeof.buffered_iopage_t"] = () => BufferedIoPage.SizeInBytes,
        ["offsetof.buffered_iopage_t.read_pointer"] = () => BufferedIoPage.ReadPointerOffset,
        ["offsetof.buffered_iopage_t.write_pointer"] = () => BufferedIoPage.WritePointerOffset,
        ["offsetof.buffered_iopage_t.buf_ioreq"] = () => BufferedIoPage.SlotsOffset,
        ["XC_PAGE_SIZE"] = () => IoreqServerResource.PageSize,

        ["IOREQ_TYPE_PIO"] = () => (ulong)IoreqType.Pio,
        ["IOREQ_TYPE_COPY"] = () => (ulong)IoreqType.Copy,
        ["IOREQ_TYPE_PCI_CONFIG"] = () => (ulong)IoreqType.PciConfig,
        ["IOREQ_TYPE_TIMEOFFSET"] = () => (ulong)IoreqType.TimeOffset,
        ["IOREQ_TYPE_INVALIDATE"] = () => (ulong)IoreqType.Invalidate,
        ["STATE_IOREQ_NONE"] = () => (ulong)IoreqState.None,
        ["STATE_IOREQ_READY"] = () => (ulong)IoreqState.Ready,
        ["STATE_IOREQ_INPROCESS"] = () => (ulong)IoreqState.InProcess,
        ["STATE_IORESP_READY"] = () => (ulong)IoreqState.ResponseReady,
        ["IOREQ_READ"] = () => (ulong)IoreqDirection.Read,
        ["IOREQ_WRITE"] = () => (ulong)IoreqDirection.Write,
        ["IOREQ_BUFFER_SLOT_NUM"] = () => BufferedIoPage.SlotCount,
        ["HVM_IOREQSRV_BUFIOREQ_OFF"] = () => (ulong)BufferedIoreqMode.Off,
        ["HVM_IOREQSRV_BUFIOREQ_LEGACY"] = () => (ulong)BufferedIoreqMode.Legacy,
        ["HVM_IOREQSRV_BUFIOREQ_ATOMIC"] = () => (ulong)BufferedIoreqMode.Atomic,
        ["XEN_DMOP_IO_RANGE_PORT"] = () => (ulong)IoRangeType.Port,
        ["XEN_DMOP_IO_RANGE_MEMORY"] = () => (ulong)IoRangeType.Memory,
        ["XEN_DMOP_IO_RANGE_PCI"] = () => (ulong)IoRangeType.Pci,
        ["XENMEM_resource_ioreq_server"] = () => IoreqServerResource.ResourceType,
        ["XENMEM_resource_ioreq_server_frame_bufioreq"] = () => IoreqServerResource.BufferedIoreqFrame,
        ["XENMEM_resource_ioreq_server_frame_ioreq(0)"] = () => IoreqServerResource.IoreqFrame(0),
        ["XENMEM_resource_ioreq_server_frame_ioreq(1)"] = () => IoreqServerResource.IoreqFrame(1),
        ["XEN_DMOP_PCI_SBDF(1,0,0,0)"] = () => new PciSbdf(1, 0, 0, 0).Value,
        ["XEN_DMOP_PCI_SBDF(0,1,0,0)"] = () => new PciSbdf(0, 1, 0, 0).Value,
        ["XEN_DMOP_PCI_SBDF(0,0,1,0)"] = () => new PciSbdf(0, 0, 1, 0).Value,
        ["XEN_DMOP_PCI_SBDF(0,0,0,1)"] = () => new PciSbdf(0, 0, 0, 1).Value,
        ["XEN_DMOP_PCI_SBDF(1,2,3,4)"] = () => new PciSbdf(1, 2, 3, 4).Value,
        ["XEN_DMOP_PCI_SBDF(65535,255,31,7)"] = () => new PciSbdf(65535, 255, 31, 7).Value,

        ["sizeof.struct xs_permissions"] = () => (ulong)Unsafe.SizeOf<Interop.XenStore.XsPermissions>(),
        ["alignof.struct xs_permissions"] = () => sizeof(uint),
        ["offsetof.struct xs_permissions.id"] = () => (ulong)Marshal.OffsetOf<Interop.XenStore.XsPermissions>(nameof(Interop.XenStore.XsPermissions.Id)),
        ["offsetof.struct xs_permissions.perms"] = () => (ulong)Marshal.OffsetOf<Interop.XenStore.XsPermissions>(nameof(Interop.XenStore.XsPermissions.Perms)),
        ["XS_PERM_NONE"] = () => (ulong)IoreqSdk.Xenstore.XenStoreAccess.None,
        ["XS_PERM_READ"] = () => (ulong)IoreqSdk.Xenstore.XenStoreAccess.Read,
        ["XS_PERM_WRITE"] = () => (ulong)IoreqSdk.Xenstore.XenStoreAccess.Write,
        ["XBT_NULL"] = () => IoreqSdk.Xenstore.XenStoreTransaction.None.Id,
        ["XS_WATCH_PATH"] = () => Interop.XenStore.XS_WATCH_PATH,
        ["XS_WATCH_TOKEN"] = () => Interop.XenStore.XS_WATCH_TOKEN,
        ["XENSTORE_ABS_PATH_MAX"] = () => IoreqSdk.Xenstore.XenStorePaths.MaxAbsolutePathLength,
        ["XENSTORE_PAYLOAD_MAX"] = () => IoreqSdk.Xenstore.XenStorePaths.MaxValueLength,
        ["XenbusStateUnknown"] = () => (ulong)IoreqSdk.Xenstore.XenbusState.Unknown,
        ["XenbusStateInitialising"] = () => (ulong)IoreqSdk.Xenstore.XenbusState.Initialising,
        ["XenbusStateInitWait"] = () => (ulong)IoreqSdk.Xenstore.XenbusState.InitWait,
        ["XenbusStateInitialised"] = () => (ulong)IoreqSdk.Xenstore.XenbusState.Initialised,
        ["XenbusStateConnected"] = () => (ulong)IoreqSdk.Xenstore.XenbusState.Connected,
        ["XenbusStateClosing"] = () => (ulong)IoreqSdk.Xenstore.XenbusState.Closing,
        ["XenbusStateClosed"] = () => (ulong)IoreqSdk.Xenstore.XenbusState.Closed,
        ["XenbusStateReconfiguring"] = () => (ulong)IoreqSdk.Xenstore.XenbusState.Reconfiguring,
        ["XenbusStateReconfigured"] = () => (ulong)IoreqSdk.Xenstore.XenbusState.Reconfigured,
    };

    private static IEnumerable<string> Names => s_fromCSharp.Keys;

    private static IReadOnlyDictionary<string, ulong> FromC => s_fromC ??= XenAbiProbe.Layout();

    [TestCaseSource(nameof(Names))]
    public void CSharpMatchesXenHeader(string name)
    {
        Assert.That(FromC, Does.ContainKey(name), "the C probe does not print this name");
        Assert.That(s_fromCSharp[name](), Is.EqualTo(FromC[name]), name);
    }

    [Test]
    public void EveryValueTheProbePrintsIsMirrored()
    {
        string[] unmirrored = FromC.Keys.Where(k => !s_fromCSharp.ContainsKey(k)).ToArray();
        Assert.That(unmirrored, Is.Empty);
    }

    [Test]
    public void ManagedSizesMatchTheDeclaredSizes()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(Unsafe.SizeOf<IoRequest>(), Is.EqualTo(IoRequest.SizeInBytes));
            Assert.That(Marshal.SizeOf<IoRequest>(), Is.EqualTo(IoRequest.SizeInBytes));
            Assert.That(Unsafe.SizeOf<BufferedIoRequest>(), Is.EqualTo(BufferedIoRequest.SizeInBytes));
            Assert.That(Marshal.SizeOf<BufferedIoRequest>(), Is.EqualTo(BufferedIoRequest.SizeInBytes));
            Assert.That(BufferedIoPage.SlotsOffset + (BufferedIoPage.SlotCount * BufferedIoRequest.SizeInBytes), Is.EqualTo(BufferedIoPage.SizeInBytes));
        }
    }

    private delegate void Setter(ref IoRequest request);

    /// <summary>Sets one property of a zeroed request and locates the bits it set in the 32-byte image.</summary>
    private static (ulong Low, ulong Width) Measure(Setter set)
    {
        IoRequest request = default;
        set(ref request);
        return SetBits(MemoryMarshal.AsBytes(MemoryMarshal.CreateReadOnlySpan(ref request, 1)));
    }

    private static (ulong Low, ulong Width) Measure(BufferedIoRequest entry) =>
        SetBits(MemoryMarshal.AsBytes(MemoryMarshal.CreateReadOnlySpan(ref entry, 1)));

    private static (ulong Low, ulong Width) SetBits(ReadOnlySpan<byte> image)
    {
        long low = -1;
        ulong width = 0;
        for (int bit = 0; bit < image.Length * 8; bit++)
        {
            if ((image[bit / 8] & (1 << (bit % 8))) != 0)
            {
                if (low < 0)
                {
                    low = bit;
                }

                width++;
            }
        }

        return ((ulong)low, width);
    }
}
