using System;
using System.Buffers.Binary;
using IoreqSdk.Hypervisor;
using IoreqSdk.Memory;
using IoreqSdk.Simulation;
using IoreqSdk.Simulation.Virtio;
using IoreqSdk.Virtio;
using IoreqSdk.Virtio.Pci;

namespace IoreqSdk.Tests.Virtio.Pci;

/// <summary>The simulated guest's RAM as the guest's driver writes its rings and buffers, with 32-bit helpers.</summary>
internal sealed class SimulatedGuestRam : IGuestMemory
{
    private readonly SimulatedGuestMemory _memory;

    public SimulatedGuestRam(SimulatedHypervisor xen) => _memory = new SimulatedGuestMemory(xen);

    public bool TryRead(ulong address, Span<byte> destination) => _memory.TryRead(address, destination);

    public bool TryWrite(ulong address, ReadOnlySpan<byte> source) => _memory.TryWrite(address, source);

    public uint U32(ulong address) => BinaryPrimitives.ReadUInt32LittleEndian(_memory.Span(address, 4));

    public void SetU32(ulong address, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(_memory.Span(address, 4), value);
}

/// <summary>
/// A virtio device behind <see cref="VirtioPciTransport"/> on a simulated guest, and the guest's driver of it
/// (<see cref="GuestVirtioPci"/>), with helpers that walk the driver's steps as Linux does.
/// </summary>
internal sealed class VirtioPciRig : IDisposable
{
    public const ushort QueueSize = 16;

    public VirtioPciRig(GuestArchitecture architecture, VirtioDevice? device = null, bool useMsix = true)
    {
        Device = device ?? new PciEchoDevice();
        Transport = new VirtioPciTransport(Device);
        Guest = SimulatedPciGuest.Create(Transport, architecture);
        Driver = new GuestVirtioPci(Guest, useMsix);
        Ram = new SimulatedGuestRam(Guest.Xen);
    }

    public VirtioDevice Device { get; }

    public VirtioPciTransport Transport { get; }

    public SimulatedPciGuest Guest { get; }

    public GuestVirtioPci Driver { get; }

    public SimulatedGuestRam Ram { get; }

    public ulong RamBase => Guest.Xen.RamBase;

    public ulong DescriptorArea(int queue) => RamBase + 0x10_0000 + ((ulong)queue * 0x1_0000);

    public ulong DriverArea(int queue) => DescriptorArea(queue) + 0x1000;

    public ulong DeviceArea(int queue) => DescriptorArea(queue) + 0x2000;

    public ulong Buffers => RamBase + 0x40_0000;

    /// <summary>ACKNOWLEDGE, DRIVER, the device's features accepted (with VERSION_1), FEATURES_OK; returns the status read back.</summary>
    public byte Negotiate(ulong features = VirtioFeatures.Version1)
    {
        Driver.WriteStatus(0);
        Driver.WriteStatus(1);
        Driver.WriteStatus(1 | 2);
        Driver.WriteDriverFeatures(Driver.ReadDeviceFeatures() & features);
        Driver.WriteStatus(1 | 2 | 8);
        return Driver.ReadStatus();
    }

    /// <summary>Sets up split queue <paramref name="queue"/> at its fixed addresses and enables it.</summary>
    public GuestSplitVirtqueue StartQueue(int queue, bool eventIndex = false)
    {
        Driver.ConfigureQueue(queue, QueueSize, DescriptorArea(queue), DriverArea(queue), DeviceArea(queue));
        Driver.EnableQueue(queue);
        return new GuestSplitVirtqueue(Ram, QueueSize, DescriptorArea(queue), DriverArea(queue), DeviceArea(queue), eventIndex);
    }

    /// <summary>Negotiates, starts queue 0 and sets DRIVER_OK.</summary>
    public GuestSplitVirtqueue Start()
    {
        Negotiate();
        GuestSplitVirtqueue queue = StartQueue(0);
        Driver.WriteStatus(1 | 2 | 8 | 4);
        return queue;
    }

    /// <summary>One echo: a sequence number out, the device copies it back; whether it came back through an interrupt.</summary>
    public bool EchoOnce(GuestSplitVirtqueue queue, uint value, out GuestVirtioInterrupts causes)
    {
        ulong output = Buffers;
        ulong input = Buffers + 0x100;
        Ram.SetU32(output, value);
        Ram.SetU32(input, 0);
        ushort id = queue.Post([new GuestBuffer(output, 4, false), new GuestBuffer(input, 4, true)]);
        if (queue.KickPrepare())
        {
            Driver.Notify(0);
        }

        causes = GuestVirtioInterrupts.None;
        if (!SimulatedPciGuest.WaitUntil(() => Driver.InterruptPending))
        {
            return false;
        }

        causes = Driver.TakeInterrupts();
        return queue.TryTakeUsed(out ushort used, out uint length) && used == id && length == 4 && Ram.U32(input) == value;
    }

    public void Dispose() => Guest.Dispose();
}

/// <summary>
/// <see cref="EchoDevice"/>'s echo (each chain's readable bytes copied into its writable part) under a device type
/// virtio-pci can carry (0x3F: modern device ids stop at 0x107F), with an 8-byte config space and two queues.
/// A notification of queue 1 changes config byte 1 instead (on the loop, as a device changes its config).
/// </summary>
internal sealed class PciEchoDevice : VirtioDevice
{
    public const ushort TypeId = 0x3F;

    private readonly byte[] _buffer = new byte[4096];
    private readonly VirtioDescriptorChain _chain = new();

    public PciEchoDevice(ulong features = 0, int queues = 2, int configSize = 8)
        : base(TypeId, features, Sizes(queues), configSize)
    {
        Config[0] = 0xA5;
        Config[4] = 0x5A;
    }

    public int Notified { get; private set; }

    public int Resets { get; private set; }

    public byte[] LastConfigWrite { get; private set; } = [];

    protected override void OnQueueNotified(VirtioQueue queue)
    {
        Notified++;
        if (queue.Index == 1)
        {
            ChangeConfig(1, new[] { (byte)Notified });
            return;
        }

        do
        {
            queue.DisableNotifications();
            while (queue.TryPop(_chain))
            {
                int length = (int)Math.Min((ulong)_buffer.Length, Math.Min(_chain.ReadableLength, _chain.WritableLength));
                Span<byte> data = _buffer.AsSpan(0, length);
                if (!_chain.TryRead(0, data) || !_chain.TryWrite(0, data))
                {
                    queue.Push(_chain, 0);
                    SetNeedsReset();
                    return;
                }

                queue.Push(_chain, (uint)length);
            }
        }
        while (queue.EnableNotifications());

        queue.SignalUsed();
    }

    protected override void OnReset() => Resets++;

    protected override void OnConfigWrite(int offset, ReadOnlySpan<byte> data)
    {
        LastConfigWrite = data.ToArray();
        data.CopyTo(Config.Slice(offset));
    }

    private static ushort[] Sizes(int queues)
    {
        var sizes = new ushort[queues];
        Array.Fill(sizes, (ushort)256);
        return sizes;
    }
}
