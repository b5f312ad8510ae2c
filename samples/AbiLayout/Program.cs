using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using IoreqSdk.Abi;

// Prints the Xen ioreq ABI as IoreqSdk lays it out in memory, measured on this machine: each field is set in a
// zeroed struct and its bits are located in the byte image. Compare with xen/hvm/ioreq.h, or run the tests, which
// compare it with a C program compiled against Xen's headers.

int failures = 0;

Console.WriteLine($"IoreqSdk ABI self-check ({RuntimeInformation.FrameworkDescription}, {RuntimeInformation.ProcessArchitecture})");
Console.WriteLine();
Console.WriteLine($"ioreq_t: {Unsafe.SizeOf<IoRequest>()} bytes (Xen: 32)");
Field("addr", IoRequest.AddressOffset, 64, Bits(static (ref IoRequest r) => r.Address = ulong.MaxValue));
Field("data", IoRequest.DataOffset, 64, Bits(static (ref IoRequest r) => r.Data = ulong.MaxValue));
Field("count", IoRequest.CountOffset, 32, Bits(static (ref IoRequest r) => r.Count = uint.MaxValue));
Field("size", IoRequest.SizeOffset, 32, Bits(static (ref IoRequest r) => r.Size = uint.MaxValue));
Field("vp_eport", IoRequest.VcpuEventPortOffset, 32, Bits(static (ref IoRequest r) => r.VcpuEventPort = uint.MaxValue));
Field("state:4", IoRequest.FlagsOffset, 4, Bits(static (ref IoRequest r) => r.State = (IoreqState)0xF));
Field("data_is_ptr:1", IoRequest.FlagsOffset, 1, Bits(static (ref IoRequest r) => r.DataIsPointer = true), IoRequestFlags.DataIsPointerBit);
Field("dir:1", IoRequest.FlagsOffset, 1, Bits(static (ref IoRequest r) => r.Direction = IoreqDirection.Read), IoRequestFlags.DirectionBit);
Field("df:1", IoRequest.FlagsOffset, 1, Bits(static (ref IoRequest r) => r.DirectionFlag = true), IoRequestFlags.DirectionFlagBit);
Field("type", IoRequest.TypeOffset, 8, Bits(static (ref IoRequest r) => r.Type = (IoreqType)0xFF));

Console.WriteLine();
Console.WriteLine($"buf_ioreq_t: {Unsafe.SizeOf<BufferedIoRequest>()} bytes (Xen: 8)");
var sample = BufferedIoRequest.Create(IoreqType.Copy, IoreqDirection.Write, 4, 0xA0000, 0xDEADBEEF);
string bytes = Convert.ToHexString(MemoryMarshal.AsBytes(MemoryMarshal.CreateReadOnlySpan(ref sample, 1)));
Console.WriteLine($"  type=COPY size=4 addr=0xa0000 data=0xdeadbeef -> {bytes} (Xen: 010800A0EFBEADDE)");
failures += bytes == "010800A0EFBEADDE" ? 0 : 1;
Console.WriteLine($"buffered_iopage_t: read_pointer@{BufferedIoPage.ReadPointerOffset} write_pointer@{BufferedIoPage.WritePointerOffset} " +
    $"{BufferedIoPage.SlotCount} slots@{BufferedIoPage.SlotsOffset} = {BufferedIoPage.SlotsOffset + (BufferedIoPage.SlotCount * BufferedIoRequest.SizeInBytes)} bytes");
Console.WriteLine($"shared_iopage_t: {SharedIoPage.SlotCount} vCPU slots per 4 KiB page");
Console.WriteLine($"PCI SBDF 0001:02:03.4 = 0x{new PciSbdf(1, 2, 3, 4).Value:x} (Xen: 0x1021c)");
failures += new PciSbdf(1, 2, 3, 4).Value == 0x1021C ? 0 : 1;

Console.WriteLine();
Console.WriteLine(failures == 0 ? "layout OK" : $"{failures} mismatches");
return failures == 0 ? 0 : 1;

void Field(string name, int byteOffset, int width, (int Low, int Width) measured, int bitInByte = 0)
{
    int expectedLow = (byteOffset * 8) + bitInByte;
    bool ok = measured.Low == expectedLow && measured.Width == width;
    failures += ok ? 0 : 1;
    Console.WriteLine($"  {name,-14} byte {measured.Low / 8,2} bit {measured.Low % 8} width {measured.Width,2}  {(ok ? "ok" : "MISMATCH")}");
}

static (int Low, int Width) Bits(Setter set)
{
    IoRequest request = default;
    set(ref request);
    ReadOnlySpan<byte> image = MemoryMarshal.AsBytes(MemoryMarshal.CreateReadOnlySpan(ref request, 1));
    int low = -1, width = 0;
    for (int bit = 0; bit < image.Length * 8; bit++)
    {
        if ((image[bit / 8] & (1 << (bit % 8))) != 0)
        {
            low = low < 0 ? bit : low;
            width++;
        }
    }

    return (low, width);
}

internal delegate void Setter(ref IoRequest request);
