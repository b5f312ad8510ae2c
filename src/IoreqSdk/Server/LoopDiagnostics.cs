using System;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Threading;
using IoreqSdk.Abi;
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
    private readonly ILogger _logger;
    private readonly IoreqServerStatistics _statistics;
    private readonly long _stallMilliseconds;
    private readonly double _thresholdMilliseconds;
    private long _lastFaultLog;
    private long _suppressedFaults;
    private long _lastOverrunLog;
    private long _suppressedOverruns;
    private readonly object _overrunGate = new();

    public LoopDiagnostics(ILogger logger, IoreqServerStatistics statistics, TimeSpan stallThreshold)
    {
        _logger = logger;
        _statistics = statistics;
        _stallMilliseconds = (long)Math.Ceiling(stallThreshold.TotalMilliseconds);
        _thresholdMilliseconds = stallThreshold.TotalMilliseconds;
    }

    /// <summary>How long (in milliseconds of <see cref="LoopClock"/>) a callback may hold the loop.</summary>
    public long StallMilliseconds => _stallMilliseconds;

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
                ServerLog.DeviceFault(_logger, source, _suppressedFaults, exception);
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

    /// <summary>A request held the loop at least <paramref name="held"/> ms (seen by the <see cref="RequestWatchdog"/>, on its timer).</summary>
    public void OnWatchedRequestOverrun(IoreqType type, ulong address, int size, bool isRead, long held)
    {
        // The description is built only when it is logged (at most once a second, and only with a logger that takes
        // warnings).
        if (CountOverrun() && _logger.IsEnabled(LogLevel.Warning))
        {
            string what = type == IoreqType.PciConfig
                ? FormattableString.Invariant($"a PCI_CONFIG {(isRead ? "read" : "write")} of 0x{address:x}")
                : FormattableString.Invariant($"a {type} {(isRead ? "read" : "write")} at 0x{address:x} ({size} bytes)");
            LogOverrun(what, held);
        }
    }

    public void OnOverrun(string what, long held)
    {
        if (CountOverrun())
        {
            LogOverrun(what, held);
        }
    }

    /// <summary>
    /// Counts an overrun; whether to log it (at most once a second, the ones in between are counted). The loop (for
    /// posted work, completions, the ring) and the request watchdog's timer both count: under a lock, which only an
    /// overrun ever takes.
    /// </summary>
    private bool CountOverrun()
    {
        Interlocked.Increment(ref _statistics.LoopOverrun);
        lock (_overrunGate)
        {
            long now = LoopClock.Now;
            if (LoopClock.Elapsed(_lastOverrunLog, now) < 1000 && _lastOverrunLog != 0)
            {
                _suppressedOverruns++;
                return false;
            }

            _lastOverrunLog = now;
            return true;
        }
    }

    private void LogOverrun(string what, long held)
    {
        lock (_overrunGate)
        {
            try
            {
                if (_logger.IsEnabled(LogLevel.Warning))
                {
                    ServerLog.LoopOverrun(_logger, what, (double)held, _thresholdMilliseconds, _suppressedOverruns);
                }
            }
            catch (Exception)
            {
                // As in ReportFault: the logger is user code.
            }

            _suppressedOverruns = 0;
        }
    }
}
