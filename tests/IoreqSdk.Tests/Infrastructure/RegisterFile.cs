using System;
using System.Collections.Generic;
using IoreqSdk.Devices;

namespace IoreqSdk.Tests.Infrastructure;

/// <summary>A test device: one region of byte-addressed storage, recording every call it receives.</summary>
internal sealed class RegisterFile : DeviceModel
{
    private readonly byte[] _bytes;

    public RegisterFile(RegionKind kind, ulong size, ulong? address, AccessWidths widths = AccessWidths.All, AccessWidths accepted = AccessWidths.None, bool concurrent = false)
        : base("registers")
    {
        _bytes = new byte[size];
        Region = kind == RegionKind.Mmio ? AddMmioRegion(size, address, widths, accepted) : AddPortRegion(size, (ushort?)address, widths, accepted);
        if (concurrent)
        {
            ServeConcurrently(Region);
        }
    }

    public DeviceRegion Region { get; }

    public List<(bool Write, ulong Offset, int Size, ulong Value)> Calls { get; } = new();

    public bool RecordCalls { get; set; } = true;

    public Action<ulong, int>? OnRead { get; set; }

    public Action<ulong, int>? OnWrite { get; set; }

    public Func<ulong, bool>? ThrowAt { get; set; }

    public new IDeviceContext Context => base.Context;

    public override ulong Read(DeviceRegion region, ulong offset, int size)
    {
        OnRead?.Invoke(offset, size);
        if (ThrowAt?.Invoke(offset) == true)
        {
            throw new InvalidOperationException("device bug");
        }

        ulong value = 0;
        for (int i = size - 1; i >= 0; i--)
        {
            value = (value << 8) | _bytes[offset + (ulong)i];
        }

        if (RecordCalls)
        {
            Calls.Add((false, offset, size, value));
        }

        return value;
    }

    public override void Write(DeviceRegion region, ulong offset, int size, ulong value)
    {
        OnWrite?.Invoke(offset, size);
        if (ThrowAt?.Invoke(offset) == true)
        {
            throw new InvalidOperationException("device bug");
        }

        if (RecordCalls)
        {
            Calls.Add((true, offset, size, value));
        }

        for (int i = 0; i < size; i++)
        {
            _bytes[offset + (ulong)i] = (byte)(value >> (i * 8));
        }
    }
}
