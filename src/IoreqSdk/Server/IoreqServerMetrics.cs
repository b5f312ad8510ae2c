using System.Collections.Generic;
using System.Diagnostics.Metrics;

namespace IoreqSdk.Server;

/// <summary>
/// The SDK's <see cref="Meter"/>, named <c>IoreqSdk</c>. Its instruments are observable: a listener's collection
/// reads each server's <see cref="IoreqServerStatistics"/>, so the request path itself does no metrics work at all.
/// </summary>
/// <remarks>
/// Instruments (each tagged with <c>ioreq.domain</c> and <c>ioreq.server</c>): <c>ioreq.requests</c> (tagged
/// <c>ioreq.type</c> = pio, mmio, pci_config, invalidate, timeoffset, unknown, malformed), <c>ioreq.unclaimed</c>
/// (tagged <c>ioreq.direction</c>), <c>ioreq.device_faults</c>, <c>ioreq.guest_memory_faults</c>,
/// <c>ioreq.buffered_entries</c>, <c>ioreq.refused_widths</c>, <c>ioreq.loop_overruns</c>, <c>ioreq.refused_work</c>
/// (tagged <c>ioreq.queue</c> = posted, off_loop), <c>ioreq.polled_requests</c> (found by busy polling), and the gauge
/// <c>ioreq.ring_depth</c>.
/// </remarks>
public static class IoreqServerMetrics
{
    /// <summary>The meter's name, for <c>MeterListener</c>s and OpenTelemetry's <c>AddMeter</c>.</summary>
    public const string MeterName = "IoreqSdk";

    private static readonly Meter s_meter = new(MeterName);
    private static readonly List<IoreqServer> s_servers = new();

#pragma warning disable CA1823 // The instruments live as long as the meter; the fields keep them reachable.
    private static readonly ObservableCounter<long> s_requests = s_meter.CreateObservableCounter("ioreq.requests", ObserveRequests, "{request}", "Requests served, by type");
    private static readonly ObservableCounter<long> s_unclaimed = s_meter.CreateObservableCounter("ioreq.unclaimed", ObserveUnclaimed, "{request}", "Accesses no device claimed");
    private static readonly ObservableCounter<long> s_faults = s_meter.CreateObservableCounter("ioreq.device_faults", () => Observe(s => s.DeviceFaults), "{fault}", "Exceptions thrown by devices (contained)");
    private static readonly ObservableCounter<long> s_memoryFaults = s_meter.CreateObservableCounter("ioreq.guest_memory_faults", () => Observe(s => s.GuestMemoryFaults), "{fault}", "String I/O elements whose RAM side was not guest RAM");
    private static readonly ObservableCounter<long> s_buffered = s_meter.CreateObservableCounter("ioreq.buffered_entries", () => Observe(s => s.BufferedEntries), "{entry}", "Buffered-ring entries consumed");
    private static readonly ObservableGauge<long> s_depth = s_meter.CreateObservableGauge("ioreq.ring_depth", () => Observe(s => s.RingDepth), "{entry}", "Buffered-ring depth at the last drain");
    private static readonly ObservableCounter<long> s_widths = s_meter.CreateObservableCounter("ioreq.refused_widths", () => Observe(s => s.RefusedWidthAccesses), "{request}", "Accesses of a width the region does not accept (refused)");
    private static readonly ObservableCounter<long> s_overruns = s_meter.CreateObservableCounter("ioreq.loop_overruns", () => Observe(s => s.LoopOverruns), "{overrun}", "Device callbacks that held a loop longer than the stall threshold");
    private static readonly ObservableCounter<long> s_refusedWork = s_meter.CreateObservableCounter("ioreq.refused_work", ObserveRefusedWork, "{item}", "Work refused because its queue was full or the server had stopped");
    private static readonly ObservableCounter<long> s_polled = s_meter.CreateObservableCounter("ioreq.polled_requests", () => Observe(s => s.PolledRequests), "{request}", "Requests a loop found by busy polling and served");
#pragma warning restore CA1823

    internal static void Register(IoreqServer server)
    {
        lock (s_servers)
        {
            s_servers.Add(server);
        }
    }

    internal static void Unregister(IoreqServer server)
    {
        lock (s_servers)
        {
            s_servers.Remove(server);
        }
    }

    private static IEnumerable<Measurement<long>> ObserveRequests()
    {
        foreach (IoreqServer server in Snapshot())
        {
            IoreqServerStatistics s = server.Statistics;
            yield return Measure(server, s.PioRequests, "ioreq.type", "pio");
            yield return Measure(server, s.MmioRequests, "ioreq.type", "mmio");
            yield return Measure(server, s.PciConfigRequests, "ioreq.type", "pci_config");
            yield return Measure(server, s.InvalidateRequests, "ioreq.type", "invalidate");
            yield return Measure(server, s.TimeOffsetRequests, "ioreq.type", "timeoffset");
            yield return Measure(server, s.UnknownRequests, "ioreq.type", "unknown");
            yield return Measure(server, s.MalformedRequests, "ioreq.type", "malformed");
        }
    }

    private static IEnumerable<Measurement<long>> ObserveUnclaimed()
    {
        foreach (IoreqServer server in Snapshot())
        {
            yield return Measure(server, server.Statistics.UnclaimedReads, "ioreq.direction", "read");
            yield return Measure(server, server.Statistics.UnclaimedWrites, "ioreq.direction", "write");
        }
    }

    private static IEnumerable<Measurement<long>> ObserveRefusedWork()
    {
        foreach (IoreqServer server in Snapshot())
        {
            yield return Measure(server, server.Statistics.RefusedPosts, "ioreq.queue", "posted");
            yield return Measure(server, server.Statistics.RefusedOffLoopWork, "ioreq.queue", "off_loop");
        }
    }

    private static IEnumerable<Measurement<long>> Observe(System.Func<IoreqServerStatistics, long> value)
    {
        foreach (IoreqServer server in Snapshot())
        {
            yield return Measure(server, value(server.Statistics), null, null);
        }
    }

    private static Measurement<long> Measure(IoreqServer server, long value, string? tag, string? tagValue)
    {
        var tags = new List<KeyValuePair<string, object?>>(3)
        {
            new("ioreq.domain", (int)server.Domain),
            new("ioreq.server", (int)server.Id),
        };
        if (tag is not null)
        {
            tags.Add(new(tag, tagValue));
        }

        return new Measurement<long>(value, tags);
    }

    private static IoreqServer[] Snapshot()
    {
        lock (s_servers)
        {
            return s_servers.ToArray();
        }
    }
}
