using System;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace IoreqSdk.Hosting.Xenstore;

/// <summary>Registers a xenstore backend daemon with the Generic Host.</summary>
public static class XenstoreBackendServiceCollectionExtensions
{
    /// <summary>
    /// Registers a <see cref="IoreqSdk.Xenstore.Backend.XenstoreBackendService"/> run by <see cref="XenstoreBackendHost"/>,
    /// a hosted service: watching xenstore before the host reports started, every device torn down on the host's
    /// shutdown, the application stopped when the service ends by itself. On .NET, under systemd, the host reports
    /// readiness (READY=1) once the service watches, STOPPING=1 when it stops, and logs in the journal's format
    /// (Microsoft.Extensions.Hosting.Systemd; outside systemd, and on netstandard2.0, that changes nothing).
    /// </summary>
    /// <param name="services">The application's services.</param>
    /// <param name="configuration">
    /// The section to bind <see cref="XenstoreBackendHostOptions"/> from: usually <c>builder.Configuration.GetSection("XenstoreBackend")</c>.
    /// Without it, the options are only what <c>services.Configure&lt;XenstoreBackendHostOptions&gt;(...)</c> sets.
    /// </param>
    /// <returns>The builder that adds the device types.</returns>
    /// <exception cref="InvalidOperationException">A xenstore backend is registered already.</exception>
    public static XenstoreBackendBuilder AddXenstoreBackend(this IServiceCollection services, IConfiguration? configuration = null)
    {
        if (services is null)
        {
            throw new ArgumentNullException(nameof(services));
        }

        foreach (ServiceDescriptor descriptor in services)
        {
            if (descriptor.ServiceType == typeof(XenstoreBackendBuilder))
            {
                throw new InvalidOperationException("A xenstore backend is registered already: one service serves every guest's devices of its backend domain.");
            }
        }

        var builder = new XenstoreBackendBuilder(services);
        services.AddSingleton(builder);
        var options = services.AddOptions<XenstoreBackendHostOptions>();
        if (configuration is not null)
        {
            // Intercepted by the configuration binder's source generator (EnableConfigurationBindingGenerator): no reflection.
            options.Bind(configuration);
        }

#if NET
        services.AddSystemd();
#endif
        services.TryAddSingleton<XenstoreBackendHost>();
        services.AddHostedService(provider => provider.GetRequiredService<XenstoreBackendHost>());
        return builder;
    }
}
