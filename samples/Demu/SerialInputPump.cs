using System;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Devices.PciSerial;
using Microsoft.Extensions.Hosting;

namespace Demu;

/// <summary>
/// Standard input to the serial device's receiver, a read at a time, on a thread of its own, as a hosted service of the
/// real-Xen run (started once the ioreq server serves). Standard input's read blocks and nothing can cancel it, so the
/// host's stop does not wait for the thread: it is a background thread, and ends with the process.
/// </summary>
internal sealed class SerialInputPump(PciSerialDevice serial, TextWriter error) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var ended = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                Pump(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                // The run is stopping while the guest's queue was full.
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
            {
                // An unhandled exception here would end the process without tearing the server down: the guest
                // simply gets no more input.
                error.WriteLine($"demu: standard input closed for the guest: {e.Message}");
            }
            finally
            {
                ended.TrySetResult(true);
            }
        })
        {
            IsBackground = true,
            Name = "demu stdin",
        };
        thread.Start();
        return Task.WhenAny(ended.Task, Task.Delay(Timeout.Infinite, stoppingToken));
    }

    private void Pump(CancellationToken stop)
    {
        using Stream input = Console.OpenStandardInput();
        byte[] buffer = new byte[256];
        int read;

        // Read no more than the guest takes: SendToGuest waits while the device's bounded host queue is full, so a
        // guest that stops reading holds standard input off instead of growing demu's memory.
        while (!stop.IsCancellationRequested && (read = input.Read(buffer, 0, buffer.Length)) > 0)
        {
            serial.SendToGuest(buffer.AsSpan(0, read), stop);
        }
    }
}
