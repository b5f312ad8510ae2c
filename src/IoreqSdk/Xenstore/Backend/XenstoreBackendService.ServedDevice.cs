using System;
using System.Threading;
using IoreqSdk.Hypervisor;
using IoreqSdk.Server;

namespace IoreqSdk.Xenstore.Backend;

public sealed partial class XenstoreBackendService
{
    /// <summary>A device being served, owned by the service's loop.</summary>
    private sealed class ServedDevice
    {
        public ServedDevice(string key, string kind, string frontendName, ushort frontend, uint deviceId, string type, string path, IHypervisor hypervisor, IoreqServer server, IDisposable? resources, CancellationTokenSource stop, long serial)
        {
            Key = key;
            Kind = kind;
            FrontendName = frontendName;
            Frontend = frontend;
            DeviceId = deviceId;
            Type = type;
            Path = path;
            Hypervisor = hypervisor;
            Server = server;
            Resources = resources;
            Stop = stop;
            Serial = serial;
        }

        public string Key { get; }

        /// <summary>How many loop threads its server runs: the service's setting, at most one a vCPU of the guest.</summary>
        public int Loops { get; init; } = 1;

        public string Kind { get; }

        public string FrontendName { get; }

        public ushort Frontend { get; }

        public uint DeviceId { get; }

        public string Type { get; }

        public string Path { get; }

        public IHypervisor Hypervisor { get; }

        public IoreqServer Server { get; }

        public IDisposable? Resources { get; }

        public CancellationTokenSource Stop { get; }

        /// <summary>Tells this device's end apart from an earlier device's under the same path.</summary>
        public long Serial { get; }

        public XenbusState State { get; set; }

        public string? FrontendPath { get; init; }

        public bool FrontendSeen { get; set; }

        public BackendDeviceStatus Status(string? reason) =>
            new(Kind, Frontend, DeviceId, Path, Type, reason is null ? State : XenbusState.Closed, reason is null ? Server.Id : null, reason);
    }
}
