using System;
using System.Collections.Generic;
using System.IO;
using System.Threading.Tasks;
using Demu.Serve;
using IoreqSdk.Hypervisor;
using IoreqSdk.Abi;
using IoreqSdk.Platforms;
using IoreqSdk.Simulation;
using IoreqSdk.Tests.Xenstore;
using IoreqSdk.Xenstore;
using IoreqSdk.Xenstore.Backend;
using NUnit.Framework;

namespace IoreqSdk.Tests.Samples;

/// <summary><c>demu serve</c> and <c>demu describe</c>: the daemon's simulated run, its refusal off Xen, the helper's device and wait.</summary>
[TestFixture]
public sealed class DemuServeTests
{
    [Test]
    public void Serve_simulate_once_serves_the_toolstacks_virtio_disk_and_exits_when_it_closes()
    {
        var (exitCode, output, error) = Run("serve", "--simulate", "--once");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(exitCode, Is.Zero, output + error);
            Assert.That(output, Does.Contain("toolstack wrote /local/domain/0/backend/virtio_disk/1/51712 (state 1)"));
            Assert.That(output, Does.Contain("InitWait; the guest reads magic 0x74726976, device id 2 at 0x2000000"));
            Assert.That(error, Does.Contain("virtio_disk 1/51712 (virtio_disk): Closed").And.Contain("--once: stopping"));
        }
    }

    [Test]
    public void Serve_runs_with_loop_threads_and_refuses_a_count_no_server_can_run_with_exit_code_two()
    {
        var (exitCode, output, error) = Run("serve", "--simulate", "--once", "--loop-threads", "2");
        var (refused, _, refusal) = DemuCommandTests.Run("serve", "--simulate", "--loop-threads", "0");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(exitCode, Is.Zero, output + error);
            Assert.That(output, Does.Contain("InitWait; the guest reads magic 0x74726976, device id 2 at 0x2000000"));
            Assert.That(refused, Is.EqualTo(2));
            Assert.That(refusal, Does.StartWith("demu: --loop-threads: '0' is not a thread count; give 1 to 128."));
        }
    }

    [Test]
    public void Serve_off_Xen_says_where_to_run()
    {
        Assume.That(File.Exists("/dev/xen/privcmd"), Is.False, "this machine runs on Xen");
        var (exitCode, _, error) = Run("serve");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(exitCode, Is.EqualTo(2));
            Assert.That(error, Does.Contain("not a Xen host").And.Contain("--simulate"));
        }
    }

    [Test]
    public async Task Describe_writes_an_x86_guests_virtio_pci_device_the_service_serves_and_reports_InitWait()
    {
        using var rig = new BackendRig();
        SimulatedHypervisor guest = rig.AddGuest(6, GuestArchitecture.X86);
        rig.StartService();
        using IXenStore store = rig.Store.Connect(0);
        using var output = new StringWriter();
        using var error = new StringWriter();

        int exitCode = await Describe.RunAsync(store, 0, 6, 0, "virtio-rng", new Dictionary<string, string> { ["transport"] = "pci", ["bdf"] = "0000:00:05.0" },
            rig.Clock.Delay(BackendDeviceDescription.InitTimeout), output, error, rig.Guard);

        var pci = new GuestPci(guest.Vcpu(0), new X86Platform());
        using (Assert.EnterMultipleScope())
        {
            Assert.That(exitCode, Is.Zero, error.ToString());
            Assert.That(output.ToString().Trim(), Is.EqualTo("/local/domain/0/backend/ioreq-sdk/6/0"));
            Assert.That(error.ToString(), Does.Contain("(state InitWait); xl unpause the guest"));
            Assert.That(pci.ReadConfig(new PciSbdf(0, 0, 5, 0), 0, 4), Is.EqualTo(0x1044_1AF4u), "the guest finds virtio-rng (1af4:1044) at 00:05.0");
            Assert.That(store.GetPermissions("/local/domain/0/backend/ioreq-sdk/6/0"), Is.EqualTo(new[] { new XenStorePermissionEntry(0, XenStoreAccess.None), new XenStorePermissionEntry(6, XenStoreAccess.Read) }),
                "owned by the backend, readable by the guest, as libxl's device directories");
        }
    }

    /// <summary>Runs a demu command line as Program.cs does (serve and describe first).</summary>
    private static (int ExitCode, string Output, string Error) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var configuration = new System.CommandLine.InvocationConfiguration { Output = output, Error = error, ProcessTerminationTimeout = null };
        int exitCode = (ServeCommands.TryInvoke(args, configuration) ?? Demu.DemuCommand.InvokeAsync(args, configuration)).GetAwaiter().GetResult();
        return (exitCode, output.ToString(), error.ToString());
    }

    [Test]
    public async Task Describe_without_a_backend_gives_up_after_libxls_10_s()
    {
        using var rig = new BackendRig();
        rig.AddGuest(6, GuestArchitecture.X86);
        using IXenStore store = rig.Store.Connect(0);
        using var output = new StringWriter();
        using var error = new StringWriter();

        Task<int> describe = Describe.RunAsync(store, 0, 6, 0, "virtio-rng", new Dictionary<string, string> { ["transport"] = "pci", ["bdf"] = "0000:00:05.0" },
            rig.Clock.Delay(BackendDeviceDescription.InitTimeout), output, error, rig.Guard);
        rig.Clock.Advance(BackendDeviceDescription.InitTimeout);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(await describe, Is.EqualTo(1));
            Assert.That(error.ToString(), Does.Contain("no backend reported InitWait").And.Contain("is demu serve running"));
        }
    }
}
