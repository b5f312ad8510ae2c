using System.IO;
using IoreqSdk.Xen.Store;
using NUnit.Framework;

namespace IoreqSdk.Tests.Xenstore;

/// <summary>The libxenstore-backed store where there is no xenstored (this machine, CI): opening fails with a reason, nothing leaks.</summary>
[TestFixture]
public sealed class XenStoreTests
{
    [Test]
    public void WithoutXenstoredOpeningFailsWithAReason()
    {
        Assume.That(File.Exists("/dev/xen/xenbus") || File.Exists("/var/run/xenstored/socket"), Is.False, "this machine runs xenstored");
        Assume.That(System.Runtime.InteropServices.NativeLibrary.TryLoad("libxenstore.so.4", out _), Is.True, "libxenstore is not installed");

        Assert.That(XenStore.TryOpen(out XenStore? store, out string? reason), Is.False);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(store, Is.Null);
            Assert.That(reason, Does.StartWith("xs_open failed"));
        }
    }
}
