using System;
using System.Collections.Generic;
using System.Globalization;
using IoreqSdk.Simulation;
using IoreqSdk.Virtio.Mmio;
using IoreqSdk.Xenstore;
using IoreqSdk.Xenstore.Backend;

namespace IoreqSdk.Fuzzing;

/// <summary>
/// Xenstore input to the backend service: what the toolstack and the guests can do to xenstore — libxl's virtio_disk
/// directories and the SDK namespace's, written whole (with some keys changed) or key by key, any key among the real
/// ones and random ones, values from <see cref="XenstoreVocabulary"/>; backend and frontend state writes; removals at
/// any depth; domains created, introduced, released and destroyed; permission changes; transactions; guest accesses
/// to the devices served — against a <see cref="XenstoreBackendService"/> on the simulated xenstore and simulated Xen.
/// </summary>
/// <remarks>
/// Input: a header byte (the service's watch-queue bound, so that some inputs overflow it; its device limit), then
/// operations until the input ends. After each operation the harness waits until the service has handled it
/// (<see cref="SettlingXenStore"/>), so an input replays the same way. The oracles (<see cref="XenstoreRig"/>): the
/// service never faults and never stops serving; a device reported served has its state and a live ioreq server, one
/// reported closed has neither; after every guest is destroyed no device, server, handle or mapping is left; a
/// well-formed device added at the end is served (state 2) and its guest reaches it; the stop finishes; bounded memory;
/// each wait bounded (a hang is a failure).
/// </remarks>
public static class XenstoreTarget
{
    private const int MaxOperations = 32;

    private static readonly XenStorePermissionEntry[][] s_permissions =
    [
        [new(0, XenStoreAccess.None)],
        [new(0, XenStoreAccess.None), new(1, XenStoreAccess.Read)],
        [new(1, XenStoreAccess.None)],
        [new(1, XenStoreAccess.ReadWrite)],
        [new(0, XenStoreAccess.Read), new(2, XenStoreAccess.Write)],
        [new(9, XenStoreAccess.None), new(0, XenStoreAccess.ReadWrite)],
    ];

    /// <summary>Runs one input.</summary>
    /// <param name="bytes">The input.</param>
    /// <param name="device">
    /// A device author's own backend device type to serve and fuzz too: the toolstack then also writes devices of its
    /// type in the SDK's namespace, with its well-formed keys and its key names among those the fuzzer changes.
    /// </param>
    public static void Run(ReadOnlySpan<byte> bytes, XenstoreFuzzDevice? device = null)
    {
        var input = new FuzzInput(bytes);
        byte header = input.U8();
        int capacity = (header & 3) == 3 ? 4 + ((header >> 2) & 7) : WatchEventQueueCapacity;
        int maxDevices = ((header >> 5) & 3) switch { 0 => 64, int n => n };
        using var rig = new XenstoreRig(capacity, maxDevices, device?.Factory);
        var state = new State { Device = device };
        for (int i = 0; i < MaxOperations && input.HasMore; i++)
        {
            int operation = input.Choose(12);

            // Adding a device (its frontend directory, its backend directory, libxl's record), a state with online, a
            // burst, a domain's creation or destruction: more than one write, which the service races.
            rig.BeginOperation(writesMoreThanOnce: operation is 0 or 1 or 3 or 6 or 10);
            try
            {
                Operate(rig, ref input, operation, state);
            }
            catch (XenStoreException)
            {
                // The store refused the toolstack or a guest (a permission, a malformed path or value, a quota): as
                // xenstored would. What the service makes of the store that is left is what is fuzzed.
            }

            rig.Settle(FormattableString.Invariant($"operation {i} ({operation})"));
        }

        if (state.Transaction.IsTransaction)
        {
            _ = rig.Dom0.EndTransaction(state.Transaction, abort: true);
        }

        rig.Finish();
    }

    /// <summary>The service's own default (WatchEventQueue.DefaultCapacity).</summary>
    private const int WatchEventQueueCapacity = 1024;

    private static void Operate(XenstoreRig rig, ref FuzzInput input, int operation, State state)
    {
        IXenStore dom0 = rig.Dom0;
        switch (operation)
        {
            case 0:
            case 1:
                AddDevice(rig, ref input, state.Device);
                break;

            case 2:
                {
                    // Any key of a device's backend or frontend directory, or of a guest's home, with any value.
                    (string path, string frontend, string deviceId) = KeyPath(ref input);
                    dom0.Write(path, XenstoreVocabulary.Value(ref input, frontend, deviceId), state.Transaction);
                    break;
                }

            case 3:
                {
                    // The toolstack's side of a device's state (Closing for a detach, anything else).
                    (string device, _, _) = DevicePath(ref input);
                    string value = XenstoreVocabulary.States[input.Choose(XenstoreVocabulary.States.Length)];
                    dom0.Write(device + "/state", value, state.Transaction);
                    if (input.Bool())
                    {
                        dom0.Write(device + "/online", input.Bool() ? "0" : "1", state.Transaction);
                    }

                    break;
                }

            case 4:
                {
                    // The frontend's side, from the guest's own connection (which owns its frontend directory).
                    string frontend = XenstoreVocabulary.Frontends[input.Choose(XenstoreVocabulary.Frontends.Length)];
                    string deviceId = XenstoreVocabulary.DeviceIds[input.Choose(XenstoreVocabulary.DeviceIds.Length)];
                    string value = XenstoreVocabulary.States[input.Choose(XenstoreVocabulary.States.Length)];
                    rig.GuestStore(DomainOf(frontend)).Write(XenstoreVocabulary.FrontendPath(frontend, deviceId) + "/state", value);
                    break;
                }

            case 5:
                {
                    // A removal at any depth of a key's path: the key, the device, the frontend's directory, the kind, up
                    // to the whole backend tree and /local.
                    (string path, _, _) = KeyPath(ref input);
                    _ = dom0.Remove(Truncate(path, 2 + input.Choose(7)), state.Transaction);
                    break;
                }

            case 6:
                DomainOperation(rig, ref input);
                break;

            case 7:
                {
                    (string path, _, _) = KeyPath(ref input);
                    dom0.SetPermissions(Truncate(path, 3 + input.Choose(6)), s_permissions[input.Choose(s_permissions.Length)], state.Transaction);
                    break;
                }

            case 8:
                if (!state.Transaction.IsTransaction)
                {
                    state.Transaction = dom0.BeginTransaction();
                }
                else
                {
                    XenStoreTransaction open = state.Transaction;
                    state.Transaction = default;
                    _ = dom0.EndTransaction(open, abort: input.Choose(4) == 0);
                }

                break;

            case 9:
                GuestAccess(rig, ref input);
                break;

            case 10:
                {
                    // A burst of writes under one device: more events than a small watch queue holds.
                    (string device, string frontend, string deviceId) = DevicePath(ref input);
                    int count = 1 + input.Choose(24);
                    for (int i = 0; i < count; i++)
                    {
                        dom0.Write(device + "/" + XenstoreVocabulary.Name(ref input, XenstoreVocabulary.Keys), XenstoreVocabulary.Value(ref input, frontend, deviceId));
                    }

                    break;
                }

            case 11:
                {
                    // A guest writes where it should not (a backend directory, another guest's frontend) or where it
                    // was given rights by a permission change.
                    ushort guest = XenstoreVocabulary.Domains[input.Choose(XenstoreVocabulary.Domains.Length)];
                    (string path, string frontend, string deviceId) = KeyPath(ref input);
                    if (input.Choose(4) == 0)
                    {
                        _ = rig.GuestStore(guest).Remove(path);
                    }
                    else
                    {
                        rig.GuestStore(guest).Write(path, XenstoreVocabulary.Value(ref input, frontend, deviceId));
                    }

                    break;
                }

            default:
                break;
        }
    }

    /// <summary>
    /// A device written whole by the toolstack, in one transaction as libxl does: a libxl virtio disk (with its frontend
    /// directory), an SDK-namespace virtio-blk or virtio-rng, a disk in a kind the service does not watch, or a device
    /// author's own type; then up to three keys changed or removed.
    /// </summary>
    private static void AddDevice(XenstoreRig rig, ref FuzzInput input, XenstoreFuzzDevice? own)
    {
        int shape = input.Choose(own is null ? 4 : 5);
        string frontend = XenstoreVocabulary.Frontends[input.Choose(XenstoreVocabulary.Frontends.Length)];
        string deviceId = XenstoreVocabulary.DeviceIds[input.Choose(XenstoreVocabulary.DeviceIds.Length)];
        int slot = input.Choose(4);
        bool pci = input.Bool();
        (string mmioBase, string irq) = XenstoreVocabulary.MmioSlot(slot);
        string kind = shape switch { 0 => XenstoreBackendService.VirtioDiskKind, 3 => "vbd", _ => XenstoreBackendService.SdkKind };
        ushort guest = DomainOf(frontend);
        var keys = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["frontend-id"] = frontend,
            ["online"] = "1",
            ["state"] = "1",
        };
        if (shape == 4)
        {
            keys["type"] = own!.Factory.Type;
            foreach (KeyValuePair<string, string> key in own.Keys)
            {
                keys[key.Key] = key.Value;
            }
        }
        else if (shape == 2)
        {
            keys["type"] = "virtio-rng";
        }
        else
        {
            keys["type"] = shape == 1 ? "virtio-blk" : "standalone";
            keys["params"] = XenstoreVocabulary.Image;
            keys["mode"] = input.Bool() ? "w" : "r";
        }

        if (shape != 4)
        {
            // Where the SDK's devices sit (an author's own keys say where theirs does): libxl's disks on virtio-mmio,
            // the SDK namespace's on either transport.
            keys["transport"] = shape is 0 or 3 || !pci ? "mmio" : "pci";
            if (shape is 0 or 3)
            {
                keys["frontend"] = XenstoreVocabulary.FrontendPath(frontend, deviceId);
                keys["specification"] = "virtio";
            }

            if (keys["transport"] == "pci")
            {
                keys["bdf"] = "0000:00:0" + (3 + slot).ToString(CultureInfo.InvariantCulture) + ".0";
            }
            else
            {
                keys["base"] = mmioBase;
                keys["irq"] = irq;
            }
        }

        int changes = input.Choose(4);
        for (int i = 0; i < changes; i++)
        {
            string key = own is not null && input.Bool() ? own.KeyNames[input.Choose(own.KeyNames.Length)] : XenstoreVocabulary.Name(ref input, XenstoreVocabulary.Keys);
            if (input.Choose(4) == 0)
            {
                _ = keys.Remove(key);
            }
            else
            {
                keys[key] = XenstoreVocabulary.Value(ref input, frontend, deviceId);
            }
        }

        string backend = XenstoreVocabulary.BackendPath(kind, frontend, deviceId);
        if (shape == 0)
        {
            BackendDeviceDescription.WriteDevice(rig.Dom0, XenstoreVocabulary.FrontendPath(frontend, deviceId), [new(guest, XenStoreAccess.None), new(0, XenStoreAccess.Read)], new Dictionary<string, string>
            {
                ["backend"] = backend,
                ["backend-id"] = "0",
                ["state"] = "1",
                ["virtual-device"] = deviceId,
                ["device-type"] = "disk",
            });
        }

        BackendDeviceDescription.WriteDevice(rig.Dom0, backend, [new(0, XenStoreAccess.None), new(guest, XenStoreAccess.Read)], keys);
        if (shape == 0)
        {
            // libxl's own record, which xl destroy finds the device by.
            BackendDeviceDescription.WriteDevice(rig.Dom0, "/libxl/" + frontend + "/device/" + kind + "/" + deviceId, [new(0, XenStoreAccess.None)], new Dictionary<string, string>
            {
                ["frontend"] = XenstoreVocabulary.FrontendPath(frontend, deviceId),
                ["backend"] = backend,
            });
        }
    }

    private static void DomainOperation(XenstoreRig rig, ref FuzzInput input)
    {
        ushort domain = XenstoreVocabulary.Domains[input.Choose(XenstoreVocabulary.Domains.Length)];
        switch (input.Choose(4))
        {
            case 0:
                rig.Toolstack.CreateDomain(domain);
                break;
            case 1:
                rig.Store.IntroduceDomain(domain);
                break;
            case 2:
                // xenstored's word that the domain died, with its directories still there (the toolstack not done yet).
                rig.Store.ReleaseDomain(domain);
                break;
            default:
                rig.Toolstack.DestroyDomain(domain);
                break;
        }
    }

    /// <summary>The guests touch the devices: the Arm64 guest's virtio-mmio slots, the x86 guest's PCI configuration space.</summary>
    private static void GuestAccess(XenstoreRig rig, ref FuzzInput input)
    {
        int slot = input.Choose(4);
        int register = input.Choose(4) switch { 0 => 0x000, 1 => 0x008, 2 => 0x070, _ => 0x100 };
        bool write = input.Bool();
        uint value = input.U8();
        if (input.Bool())
        {
            SimulatedHypervisor arm = rig.Guest(1)!;
            ulong address = VirtioMmioTransport.Arm64WindowBase + ((ulong)slot * VirtioMmioTransport.Size) + (ulong)register;
            try
            {
                if (write)
                {
                    arm.Vcpu(0).WriteMmio(address, 4, value);
                }
                else
                {
                    _ = arm.Vcpu(0).ReadMmio(address, 4);
                }
            }
            catch (GuestDataAbortException)
            {
                // No device there (not served, or served elsewhere): the guest takes a data abort, as on Xen.
            }
        }
        else
        {
            SimulatedVcpu x86 = rig.Guest(2)!.Vcpu(0);
            x86.Out(0xCF8, 4, 0x8000_0000u | ((uint)(3 + slot) << 11) | (uint)(register & 0xFC));
            if (write)
            {
                x86.Out(0xCFC, 4, value);
            }
            else
            {
                _ = x86.In(0xCFC, 4);
            }
        }
    }

    /// <summary>A device's backend directory (its kind, frontend and id drawn from the vocabulary).</summary>
    private static (string Path, string Frontend, string DeviceId) DevicePath(ref FuzzInput input)
    {
        string kind = XenstoreVocabulary.Kinds[input.Choose(XenstoreVocabulary.Kinds.Length)];
        string frontend = XenstoreVocabulary.Frontends[input.Choose(XenstoreVocabulary.Frontends.Length)];
        string deviceId = XenstoreVocabulary.DeviceIds[input.Choose(XenstoreVocabulary.DeviceIds.Length)];
        return (XenstoreVocabulary.BackendPath(kind, frontend, deviceId), frontend, deviceId);
    }

    /// <summary>A key of a backend directory (mostly), of a frontend directory, or of a guest's home.</summary>
    private static (string Path, string Frontend, string DeviceId) KeyPath(ref FuzzInput input)
    {
        int where = input.Choose(4);
        (string device, string frontend, string deviceId) = DevicePath(ref input);
        string key = XenstoreVocabulary.Name(ref input, XenstoreVocabulary.Keys);
        string path = where switch
        {
            2 => XenstoreVocabulary.FrontendPath(frontend, deviceId) + "/" + key,
            3 => "/local/domain/" + frontend + "/" + key,
            _ => device + "/" + key,
        };
        return (path, frontend, deviceId);
    }

    /// <summary>The first <paramref name="components"/> components of <paramref name="path"/> (all of it if it has fewer).</summary>
    private static string Truncate(string path, int components)
    {
        int at = 0;
        for (int i = 0; i < components; i++)
        {
            at = path.IndexOf('/', at + 1);
            if (at < 0)
            {
                return path;
            }
        }

        return path.Substring(0, at);
    }

    /// <summary>The domain a frontend name is (the guest whose connection writes its side), or 9 for a name that is none of ours.</summary>
    private static ushort DomainOf(string frontend) =>
        ushort.TryParse(frontend, NumberStyles.None, CultureInfo.InvariantCulture, out ushort domain) && Array.IndexOf(XenstoreVocabulary.Domains, domain) >= 0 ? domain : (ushort)9;

    private sealed class State
    {
        public XenStoreTransaction Transaction { get; set; }

        public XenstoreFuzzDevice? Device { get; init; }
    }
}

/// <summary>A device author's backend device type for <see cref="XenstoreTarget"/>: the factory, and the keys of a well-formed device of its type (besides <c>type</c>, <c>frontend-id</c>, <c>online</c> and <c>state</c>).</summary>
public sealed class XenstoreFuzzDevice
{
    /// <summary>Creates the description.</summary>
    /// <param name="factory">The factory the service builds the device with.</param>
    /// <param name="keys">A well-formed device's keys, e.g. <c>transport</c>, <c>base</c>, <c>irq</c> and the device's own.</param>
    public XenstoreFuzzDevice(IBackendDeviceFactory factory, IReadOnlyDictionary<string, string> keys)
    {
        Factory = factory ?? throw new ArgumentNullException(nameof(factory));
        Keys = keys ?? throw new ArgumentNullException(nameof(keys));
        var names = new List<string>(keys.Keys);
        KeyNames = names.Count == 0 ? ["type"] : [.. names];
    }

    /// <summary>The factory.</summary>
    public IBackendDeviceFactory Factory { get; }

    /// <summary>The well-formed keys.</summary>
    public IReadOnlyDictionary<string, string> Keys { get; }

    internal string[] KeyNames { get; }
}
