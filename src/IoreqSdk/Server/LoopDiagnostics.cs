using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using IoreqSdk.Abi;
using IoreqSdk.Devices;
using Microsoft.Extensions.Logging;

namespace IoreqSdk.Server;

/// <summary>
/// What the loop reports of the callbacks it contains: faults (exceptions) and overruns (a callback holding the loop
/// past the stall threshold), each counted and logged at most once a second, the ones in between counted and reported
/// with the next. Loop thread only (plain fields), except <see cref="ReportFault"/> of a device, which the dispatcher
/// calls on the loop too.
/// </summary>
internal sealed class LoopDiagnostics
{
    /// <summary>How the logs name the event loop (a request loop is "request loop N").</summary>
    public const string EventLoopName = "the event loop";

    private readonly ILogger _logger;
    private readonly string _loop;
    private readonly IoreqServerStatistics _statistics;
    private readonly long _stallMilliseconds;
    private readonly double _thresholdMilliseconds;
    private long _lastFaultLog;
    private long _suppressedFaults;
    private long _lastOverrunLog;
    private long _suppressedOverruns;

    /// <summary>Diagnostics of one loop (the event loop's, or a request loop's), whose logs name it <paramref name="loop"/>
    /// (<see cref="EventLoopName"/> or "request loop N").</summary>
    public LoopDiagnostics(ILogger logger, IoreqServerStatistics statistics, TimeSpan stallThreshold, string loop)
    {
        _loop = loop;
        _logger = logger;
        _statistics = statistics;
        _stallMilliseconds = (long)Math.Ceiling(stallThreshold.TotalMilliseconds);
        _thresholdMilliseconds = stallThreshold.TotalMilliseconds;
    }

    /// <summary>How long (in milliseconds of <see cref="LoopClock"/>) a callback may hold the loop.</summary>
    public long StallMilliseconds => _stallMilliseconds;

    /// <summary>
    /// Logs a device's contained exception under its name (<see cref="ReportFault"/>). The name is the device's code too
    /// (an <see cref="IDeviceModel"/> may compute it): a throwing getter falls back to the type's name, so a contained
    /// fault never turns into one that leaves the loop with the vCPU unanswered.
    /// </summary>
    public void ReportDeviceFault(IDeviceModel device, Exception exception)
    {
        string name;
        try
        {
            name = device.Name;
        }
        catch (Exception)
        {
            name = device.GetType().Name;
        }

        ReportFault(name, exception);
    }

    /// <summary>Logs a contained exception, at most once a second; the ones in between are counted and reported with the next.</summary>
    public void ReportFault(string source, Exception exception)
    {
        long now = LoopClock.Now;
        if (LoopClock.Elapsed(_lastFaultLog, now) < 1000 && _lastFaultLog != 0)
        {
            _suppressedFaults++;
            return;
        }

        _lastFaultLog = now;
        try
        {
            if (_logger.IsEnabled(LogLevel.Warning))
            {
                ServerLog.DeviceFault(_logger, source, _loop, _suppressedFaults, exception);
            }
        }
        catch (Exception)
        {
            // The logger is user code too: a throwing provider must not take the loop down with it.
        }

        _suppressedFaults = 0;
    }

    public void CheckCallbackOverrun(long start, string what)
    {
        long held = LoopClock.Elapsed(start, LoopClock.Now);
        if (held > _stallMilliseconds)
        {
            OnOverrun(what, held);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    public void OnRequestOverrun(in IoRequest request, long held)
    {
        // The description is built only when it is logged (at most once a second, and only with a logger that takes
        // warnings): an overrun on a loaded machine must not make the request path allocate (the benchmarks' 0 B/op
        // check saw 28 B/op under load when the string was built for a logger that discards it).
        if (CountOverrun() && _logger.IsEnabled(LogLevel.Warning))
        {
            string what = request.Type == IoreqType.PciConfig
                ? FormattableString.Invariant($"a PCI_CONFIG {(request.IsRead ? "read" : "write")} of 0x{request.Address:x}")
                : FormattableString.Invariant($"a {request.Type} {(request.IsRead ? "read" : "write")} at 0x{request.Address:x} ({request.Size} bytes)");
            LogOverrun(what, held);
        }
    }

    /// <summary>A request's handler overran (<paramref name="watch"/>'s <see cref="RequestStallWatch.Exit"/> said so): counts and logs it.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public void OnRequestOverrun(RequestStallWatch watch, in IoRequest request, long sequence)
    {
        if (watch.TakeOverrun(sequence, out long held))
        {
            OnRequestOverrun(in request, held);
        }
        else
        {
            // Flagged just as that handler returned: the sampler's flag was seen at this later exit.
            OnOverrun("an earlier request's handler", held);
        }
    }

    public void OnOverrun(string what, long held)
    {
        if (CountOverrun())
        {
            LogOverrun(what, held);
        }
    }

    /// <summary>Counts an overrun; whether to log it (at most once a second, the ones in between are counted).</summary>
    private bool CountOverrun()
    {
        _statistics.LoopOverrun++;
        long now = LoopClock.Now;
        if (LoopClock.Elapsed(_lastOverrunLog, now) < 1000 && _lastOverrunLog != 0)
        {
            _suppressedOverruns++;
            return false;
        }

        _lastOverrunLog = now;
        return true;
    }

    private void LogOverrun(string what, long held)
    {
        try
        {
            if (_logger.IsEnabled(LogLevel.Warning))
            {
                ServerLog.LoopOverrun(_logger, what, _loop, (double)held, _thresholdMilliseconds, _suppressedOverruns);
            }
        }
        catch (Exception)
        {
            // As in ReportFault: the logger is user code.
        }

        _suppressedOverruns = 0;
    }
}
