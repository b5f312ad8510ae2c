using System;
using System.IO;
using System.Runtime.InteropServices;
using IoreqSdk.Devices.Virtio.Rng;
using NUnit.Framework;

namespace IoreqSdk.Tests.Devices.Virtio.Rng;

/// <summary>
/// The default entropy source reads the kernel's device itself. Found on real Xen: through .NET's
/// RandomNumberGenerator it needed OpenSSL, and in a dom0 without libssl the runtime aborted demu at the guest's first
/// request, its ioreq server left claiming the function.
/// </summary>
public sealed class SystemRandomSourceTests
{
    [Test]
    public void On_Linux_the_default_source_is_the_kernels_urandom_device()
    {
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux))
        {
            Assert.Ignore("The kernel device is Linux's.");
        }

        Assert.That(SystemRandomSource.Instance.DevicePath, Is.EqualTo("/dev/urandom"));
        byte[] bytes = new byte[4096];
        SystemRandomSource.Instance.Fill(bytes);
        Assert.That(Array.Exists(bytes, b => b != 0), Is.True, "4096 bytes of the kernel's generator are not all zero");
    }

    [Test]
    public void A_fill_takes_the_devices_bytes_in_order_across_calls()
    {
        string path = Path.GetTempFileName();
        try
        {
            byte[] content = new byte[10000];
            for (int i = 0; i < content.Length; i++)
            {
                content[i] = (byte)((i * 7) + 3);
            }

            File.WriteAllBytes(path, content);
            var source = new SystemRandomSource(path);
            byte[] first = new byte[6000];
            byte[] second = new byte[4000];
            source.Fill(first);
            source.Fill(second);

            Assert.That(first, Is.EqualTo(content.AsSpan(0, 6000).ToArray()));
            Assert.That(second, Is.EqualTo(content.AsSpan(6000, 4000).ToArray()));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void A_device_that_ends_is_an_error_not_a_short_or_endless_fill()
    {
        string path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, new byte[] { 1, 2, 3 });
            var source = new SystemRandomSource(path);

            Assert.That(() => source.Fill(new byte[8]), Throws.TypeOf<IOException>());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void A_device_that_cannot_be_opened_leaves_the_runtimes_generator()
    {
        var source = new SystemRandomSource(Path.Combine(Path.GetTempPath(), "no-such-dir-" + Guid.NewGuid().ToString("N"), "urandom"));
        byte[] bytes = new byte[256];

        source.Fill(bytes);

        Assert.That(Array.Exists(bytes, b => b != 0), Is.True);
    }
}
