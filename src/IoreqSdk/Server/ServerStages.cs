using System;
using System.Collections.Generic;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using IoreqSdk.Dispatch;
using IoreqSdk.Hypervisor;
using IoreqSdk.Memory;
using IoreqSdk.Platforms;
using Microsoft.Extensions.Logging;

namespace IoreqSdk.Server;

/// <summary>
/// The server's life in the hypervisor: bring-up in Xen's order (create, map pages, claim ranges, enable, bind ports)
/// and teardown in mirror order (disable, unbind, unmap, destroy) from whichever stage was reached. The server calls
/// both under its lifecycle lock; who may call what from which thread is the server's business.
/// </summary>
internal sealed class ServerStages
{
    private readonly IHypervisor _hypervisor;
    private readonly IoreqServerOptions _options;
    private readonly GuestPlatform _platform;
    private readonly ILogger _logger;
    private readonly IoDispatcher _dispatcher;
    private readonly RegionMap _regions;
    private readonly EventLoop _eventLoop;
    private readonly GuestMemoryCache _memory;
    private readonly List<IDeviceModel> _devices;
    private readonly List<(PciSbdf Sbdf, IPciConfigSpace Config)> _pciFunctions;
    private Stage _stage;
    private ushort _id;
    private IoreqServerPages? _pages;

    public ServerStages(IHypervisor hypervisor, IoreqServerOptions options, GuestPlatform platform, ILogger logger, IoDispatcher dispatcher, RegionMap regions, EventLoop eventLoop, GuestMemoryCache memory, List<IDeviceModel> devices, List<(PciSbdf Sbdf, IPciConfigSpace Config)> pciFunctions)
    {
        _devices = devices;
        _pciFunctions = pciFunctions;
        _hypervisor = hypervisor;
        _options = options;
        _platform = platform;
        _logger = logger;
        _dispatcher = dispatcher;
        _regions = regions;
        _eventLoop = eventLoop;
        _memory = memory;
    }

    /// <summary>The stages of bring-up, in order; teardown undoes them from the last reached.</summary>
    public enum Stage
    {
        None,
        Created,
        PagesMapped,
        RangesClaimed,
        Enabled,
        PortsBound,
        Running,
    }

    public Stage Current => _stage;

    public ushort Id => _id;

    public bool IsRunning => _stage == Stage.Running;

    /// <summary>The loop thread is about to start: the server serves from now on.</summary>
    public void MarkRunning() => _stage = Stage.Running;

    /// <summary>Brings the server up in Xen's order, to its ports bound (and the handles restricted); the server then
    /// starts the loop. A failure leaves the stage reached, for <see cref="TearDown"/>.</summary>
    public void BringUp()
    {
        ushort domain = _options.Domain;
        BufferedIoreqMode mode = _options.BufferedMode ?? _platform.BufferedMode;

        _id = _hypervisor.CreateIoreqServer(domain, mode);
        _stage = Stage.Created;
        _regions.ClaimIn(_id);

        // Pages first: enabling a server whose pages were never acquired has crashed Xen 4.17.
        bool hasRing = mode != BufferedIoreqMode.Off;
        _pages = _hypervisor.AcquireIoreqServerPages(domain, _id, hasRing);
        _eventLoop.UsePages(new SharedIoPage(_pages.IoreqPage), hasRing ? new BufferedIoPage(_pages.BufferedPage) : default, hasRing);
        _stage = Stage.PagesMapped;

        foreach (IDeviceModel device in _devices)
        {
            foreach (DeviceRegion region in device.Regions)
            {
                if (region.InitialAddress is ulong address)
                {
                    _regions.Map(region, region.Kind, address);
                }
            }
        }

        foreach ((PciSbdf sbdf, IPciConfigSpace config) in _pciFunctions)
        {
            _dispatcher.AddPciFunction(sbdf, config);
            _hypervisor.MapIoRange(domain, _id, IoRangeType.Pci, sbdf.Value, sbdf.Value);
        }

        _stage = Stage.RangesClaimed;

        _hypervisor.SetIoreqServerState(domain, _id, enabled: true);
        _stage = Stage.Enabled;

        // vp_eport is filled in by Xen when the server is enabled: bind only now.
        int vcpus = _hypervisor.GetVcpuCount(domain);
        if (vcpus <= 0 || vcpus > SharedIoPage.SlotCount)
        {
            throw new HypervisorException($"The guest reports {vcpus} vCPUs; an ioreq page serves 1 to {SharedIoPage.SlotCount}.");
        }

        _eventLoop.OpenChannel(_hypervisor);
        _stage = Stage.PortsBound;
        _eventLoop.BindPorts(_hypervisor, domain, _id, vcpus);

        // Deprivilege before the guest can reach any device: everything above (and all the loop does) acts on this
        // guest only, so it works the same on restricted handles. A failure fails Start, and the server is torn down.
        if (_options.RestrictHandlesToDomain)
        {
            _hypervisor.Restrict(domain);
        }

        ServerLog.Started(_logger, domain, _id, vcpus, mode);
    }

    /// <summary>Undoes bring-up from the last stage reached. Called under the lifecycle lock once the loop has exited
    /// (or by the loop itself, as its last act), so nothing serves a request meanwhile.</summary>
    public void TearDown()
    {
        ushort domain = _options.Domain;
        if (_stage == Stage.Running)
        {
            _stage = Stage.PortsBound;
        }

        // Work of this run never runs: drop what waits (and free the worker's places).
        _eventLoop.EndRun();

        if (_stage >= Stage.Enabled)
        {
            Attempt(() => _hypervisor.SetIoreqServerState(domain, _id, enabled: false), "disable");
        }

        if (_stage >= Stage.PortsBound)
        {
            _eventLoop.ReleasePorts(Attempt);
        }

        if (_stage >= Stage.PagesMapped)
        {
            // Ranges go with the server (destroy deregisters them); the dispatcher forgets them now.
            _regions.ForgetAll();
            foreach ((_, IPciConfigSpace config) in _pciFunctions)
            {
                _dispatcher.RemovePciFunction(config);
            }

            _memory.Invalidate();
            _pages?.Dispose();
            _pages = null;
        }

        if (_stage >= Stage.Created)
        {
            Attempt(() => _hypervisor.DestroyIoreqServer(domain, _id), "destroy");
            ushort id = _id;
            ServerLog.Safely(() => ServerLog.Stopped(_logger, domain, id));
        }

        _stage = Stage.None;
        _regions.StopClaiming();
    }

    /// <summary>Runs a teardown step; a failure is logged and the teardown goes on.</summary>
    public void Attempt(Action step, string what)
    {
        try
        {
            step();
        }
        catch (Exception e) when (e is HypervisorException or InvalidOperationException or ObjectDisposedException)
        {
            // Teardown goes on: every later step still has to run for the server not to leak.
            ServerLog.Safely(() => ServerLog.TeardownStepFailed(_logger, what, e));
        }
    }
}
