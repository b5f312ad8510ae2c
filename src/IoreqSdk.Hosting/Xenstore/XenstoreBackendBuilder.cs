using System;
using System.Collections.Generic;
using IoreqSdk.Xenstore;
using IoreqSdk.Xenstore.Backend;
using Microsoft.Extensions.DependencyInjection;

namespace IoreqSdk.Hosting.Xenstore;

/// <summary>
/// What the hosted xenstore backend serves and over what, as
/// <see cref="XenstoreBackendServiceCollectionExtensions.AddXenstoreBackend"/> returns it. By default it connects to
/// the host's xenstore (libxenstore) and gives every device Xen handles of its own; the device types come from
/// <see cref="ConfigureBackend"/> (IoreqSdk.Devices' <c>AddStandardDevices()</c>, or factories of the application's).
/// The callbacks run when the host starts, in the order they were added, with the application's services.
/// </summary>
public sealed class XenstoreBackendBuilder
{
    private readonly List<Action<IServiceProvider, XenstoreBackendOptions>> _configure = new();
    private readonly List<Action<IServiceProvider, XenstoreBackendService>> _created = new();

    internal XenstoreBackendBuilder(IServiceCollection services) => Services = services;

    /// <summary>The application's services, to register what the device factories need.</summary>
    public IServiceCollection Services { get; }

    internal IReadOnlyList<Action<IServiceProvider, XenstoreBackendOptions>> Configure => _configure;

    internal IReadOnlyList<Action<IServiceProvider, XenstoreBackendService>> Created => _created;

    internal Func<IServiceProvider, IXenStore>? StoreFactory { get; private set; }

    internal Func<IServiceProvider, IBackendHypervisors>? HypervisorsFactory { get; private set; }

    /// <summary>
    /// Sets up the service's options when the host starts (after <see cref="XenstoreBackendHostOptions"/> are applied
    /// and the host's logging is set): add the device factories here.
    /// </summary>
    /// <param name="configure">Gets the application's services and the options.</param>
    /// <returns>This builder.</returns>
    public XenstoreBackendBuilder ConfigureBackend(Action<IServiceProvider, XenstoreBackendOptions> configure)
    {
        _configure.Add(configure ?? throw new ArgumentNullException(nameof(configure)));
        return this;
    }

    /// <summary>
    /// Runs <paramref name="callback"/> once the service is created, before it watches xenstore: subscribe to its
    /// <see cref="XenstoreBackendService.DeviceServed"/> and <see cref="XenstoreBackendService.DeviceClosed"/> events here.
    /// </summary>
    /// <param name="callback">Gets the application's services and the service.</param>
    /// <returns>This builder.</returns>
    public XenstoreBackendBuilder OnCreated(Action<IServiceProvider, XenstoreBackendService> callback)
    {
        _created.Add(callback ?? throw new ArgumentNullException(nameof(callback)));
        return this;
    }

    /// <summary>Serves over a xenstore connection of the caller's (a simulated one, a store opened and checked by the application). The host does not dispose it.</summary>
    /// <param name="create">Creates it, once, when the host starts.</param>
    /// <returns>This builder.</returns>
    public XenstoreBackendBuilder UseStore(Func<IServiceProvider, IXenStore> create)
    {
        StoreFactory = create ?? throw new ArgumentNullException(nameof(create));
        return this;
    }

    /// <summary>Gives the devices hypervisor access of the caller's (the simulated guests) instead of real Xen handles of their own.</summary>
    /// <param name="create">Creates it, once, when the host starts.</param>
    /// <returns>This builder.</returns>
    public XenstoreBackendBuilder UseHypervisors(Func<IServiceProvider, IBackendHypervisors> create)
    {
        HypervisorsFactory = create ?? throw new ArgumentNullException(nameof(create));
        return this;
    }
}
