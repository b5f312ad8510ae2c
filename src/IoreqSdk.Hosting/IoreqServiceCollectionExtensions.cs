using System;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace IoreqSdk.Hosting;

/// <summary>Registers an ioreq server with the Generic Host.</summary>
public static class IoreqServiceCollectionExtensions
{
    /// <summary>
    /// Registers one ioreq server — one guest, as a device model process serves — run by <see cref="IoreqServerHost"/>,
    /// a hosted service: started with the host, torn down on its shutdown, and the application stopped when the guest
    /// is gone. On .NET, under systemd, the host reports readiness once the server is up and logs in the journal's
    /// format (Microsoft.Extensions.Hosting.Systemd; outside systemd, and on netstandard2.0, that changes nothing).
    /// </summary>
    /// <param name="services">The application's services.</param>
    /// <param name="configuration">
    /// The section to bind <see cref="IoreqServerHostOptions"/> from: usually <c>builder.Configuration.GetSection("Ioreq")</c>.
    /// Without it, the options are only what <c>services.Configure&lt;IoreqServerHostOptions&gt;(...)</c> sets.
    /// </param>
    /// <returns>The builder that adds the devices.</returns>
    /// <exception cref="InvalidOperationException">An ioreq server is registered already.</exception>
    public static IoreqServerBuilder AddIoreqServer(this IServiceCollection services, IConfiguration? configuration = null)
    {
        if (services is null)
        {
            throw new ArgumentNullException(nameof(services));
        }

        foreach (ServiceDescriptor descriptor in services)
        {
            if (descriptor.ServiceType == typeof(IoreqServerBuilder))
            {
                throw new InvalidOperationException("An ioreq server is registered already: a host serves one guest with one server (run one process per guest).");
            }
        }

        var builder = new IoreqServerBuilder(services);
        services.AddSingleton(builder);
        var options = services.AddOptions<IoreqServerHostOptions>();
        if (configuration is not null)
        {
            // Intercepted by the configuration binder's source generator (EnableConfigurationBindingGenerator): no reflection.
            options.Bind(configuration);
        }

#if NET
        services.AddSystemd();
#endif
        services.TryAddSingleton<IoreqServerHost>();
        services.AddHostedService(provider => provider.GetRequiredService<IoreqServerHost>());
        return builder;
    }
}
