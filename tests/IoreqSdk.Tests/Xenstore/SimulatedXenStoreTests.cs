using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using IoreqSdk.Hypervisor;
using IoreqSdk.Simulation.Store;
using IoreqSdk.Xenstore;
using NUnit.Framework;

namespace IoreqSdk.Tests.Xenstore;

/// <summary>The simulated xenstore keeps Xen's rules (docs/misc/xenstore.txt) that a backend relies on, one test a rule.</summary>
[TestFixture]
public sealed class SimulatedXenStoreTests
{
    private SimulatedXenStore _store = null!;
    private IXenStore _dom0 = null!;

    [SetUp]
    public void SetUp()
    {
        _store = new SimulatedXenStore();
        _dom0 = _store.Connect(0);
    }

    [TearDown]
    public void TearDown() => _dom0.Dispose();

    [Test]
    public void A_missing_node_reads_as_null_and_a_written_one_reads_back()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_dom0.Read("/local/domain/0/x"), Is.Null);
            Assert.That(_dom0.List("/local/domain/0/x"), Is.Null);
            Assert.That(_dom0.Remove("/local/domain/0/x"), Is.False);
        }

        _dom0.Write("/local/domain/0/a/b/c", "value");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_dom0.Read("/local/domain/0/a/b/c"), Is.EqualTo("value"));
            Assert.That(_dom0.Read("/local/domain/0/a/b"), Is.Empty, "missing parents are created, empty");
            Assert.That(_dom0.List("/local/domain/0/a"), Is.EqualTo(new[] { "b" }));
        }
    }

    [Test]
    public void A_relative_path_is_under_the_callers_own_domain_path()
    {
        _dom0.Write("/local/domain/7", string.Empty);
        _dom0.SetPermissions("/local/domain/7", [new XenStorePermissionEntry(7, XenStoreAccess.None)]);
        using IXenStore guest = _store.Connect(7);
        guest.Write("data/x", "1");
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_dom0.Read("/local/domain/7/data/x"), Is.EqualTo("1"));
            Assert.That(guest.Read("data/x"), Is.EqualTo("1"));
            Assert.That(_dom0.GetDomainPath(7), Is.EqualTo("/local/domain/7"));
        }
    }

    [Test]
    public void Malformed_paths_and_oversized_values_are_EINVAL()
    {
        foreach (string bad in new[] { "/a//b", "/a/", "/a b", "@other", "/" + new string('a', XenStorePaths.MaxAbsolutePathLength) })
        {
            var error = Assert.Throws<XenStoreException>(() => _dom0.Write(bad, "v"));
            Assert.That(error!.ErrorNumber, Is.EqualTo(Errno.EINVAL), bad);
        }

        var big = Assert.Throws<XenStoreException>(() => _dom0.Write("/v", new string('v', XenStorePaths.MaxValueLength + 1)));
        Assert.That(big!.ErrorNumber, Is.EqualTo(Errno.EINVAL));
    }

    [Test]
    public void Permissions_owner_others_and_per_domain_entries_decide_who_reads_and_writes()
    {
        _dom0.Write("/shared/node", "v");
        _dom0.SetPermissions("/shared/node", [new XenStorePermissionEntry(0, XenStoreAccess.None), new XenStorePermissionEntry(5, XenStoreAccess.Read)]);
        using IXenStore reader = _store.Connect(5);
        using IXenStore stranger = _store.Connect(6);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(reader.Read("/shared/node"), Is.EqualTo("v"), "domain 5 is granted read");
            Assert.That(Assert.Throws<XenStoreException>(() => reader.Write("/shared/node", "x"))!.ErrorNumber, Is.EqualTo(Errno.EACCES), "but not write");
            Assert.That(Assert.Throws<XenStoreException>(() => stranger.Read("/shared/node"))!.ErrorNumber, Is.EqualTo(Errno.EACCES), "everyone else: n");
            Assert.That(Assert.Throws<XenStoreException>(() => reader.SetPermissions("/shared/node", [new XenStorePermissionEntry(5, XenStoreAccess.ReadWrite)]))!.ErrorNumber,
                Is.EqualTo(Errno.EACCES), "only the owner or dom0 changes permissions");
        }

        _dom0.SetPermissions("/shared/node", [new XenStorePermissionEntry(6, XenStoreAccess.Read)]);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(stranger.Read("/shared/node"), Is.EqualTo("v"), "the owner may do anything");
            Assert.That(() => stranger.Write("/shared/node", "mine"), Throws.Nothing);
            Assert.That(reader.Read("/shared/node"), Is.EqualTo("mine"), "the first entry's access is everyone else's");
            Assert.That(_dom0.GetPermissions("/shared/node"), Is.EqualTo(new[] { new XenStorePermissionEntry(6, XenStoreAccess.Read) }));
        }
    }

    [Test]
    public void New_nodes_inherit_their_parents_permissions_and_an_unprivileged_creator_owns_them()
    {
        _dom0.Write("/local/domain/4", string.Empty);
        _dom0.SetPermissions("/local/domain/4", [new XenStorePermissionEntry(0, XenStoreAccess.None), new XenStorePermissionEntry(4, XenStoreAccess.ReadWrite)]);
        using IXenStore guest = _store.Connect(4);
        guest.Write("/local/domain/4/made/by/guest", "1");
        _dom0.Write("/local/domain/4/made/by/dom0", "1");

        using (Assert.EnterMultipleScope())
        {
            Assert.That(_dom0.GetPermissions("/local/domain/4/made/by/guest")![0], Is.EqualTo(new XenStorePermissionEntry(4, XenStoreAccess.None)));
            Assert.That(_dom0.GetPermissions("/local/domain/4/made/by/dom0")![0].Domain, Is.EqualTo(4), "dom0 creating keeps the inherited owner");
            Assert.That(_dom0.GetPermissions("/local/domain/4/made/by/dom0"), Is.EqualTo(_dom0.GetPermissions("/local/domain/4/made/by")), "the parent's list, whole");
            Assert.That(Assert.Throws<XenStoreException>(() => guest.Write("/local/domain/0/intrude", "x"))!.ErrorNumber, Is.EqualTo(Errno.EACCES));
        }
    }

    [Test]
    public async Task A_watch_fires_once_on_registration_then_on_creation_change_and_removal_of_any_descendant()
    {
        _dom0.Watch("/local/domain/0/backend", "t");
        Assert.That((await Next(_dom0)).Path, Is.EqualTo("/local/domain/0/backend"), "the initial fire, although the node does not exist");

        _dom0.Write("/local/domain/0/backend/vbd/1/0/state", "1");
        Assert.That((await Next(_dom0)).Path, Is.EqualTo("/local/domain/0/backend/vbd/1/0/state"));
        _dom0.Write("/local/domain/0/backend/vbd/1/0/state", "2");
        Assert.That((await Next(_dom0)).Path, Is.EqualTo("/local/domain/0/backend/vbd/1/0/state"));
        _dom0.SetPermissions("/local/domain/0/backend/vbd", [new XenStorePermissionEntry(0, XenStoreAccess.Read)]);
        Assert.That((await Next(_dom0)).Path, Is.EqualTo("/local/domain/0/backend/vbd"), "a permission change is a change");
        _dom0.Write("/local/domain/0/elsewhere", "x");
        _dom0.Remove("/local/domain/0/backend/vbd/1");
        XenStoreWatchEvent removal = await Next(_dom0);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(removal.Path, Is.EqualTo("/local/domain/0/backend/vbd/1"), "nothing for the unwatched write; the removal names the removed node");
            Assert.That(removal.Token, Is.EqualTo("t"));
        }
    }

    [Test]
    public async Task Removing_a_parent_fires_a_watch_on_a_node_below_it()
    {
        _dom0.Write("/a/b/c", "1");
        _dom0.Watch("/a/b/c", "deep");
        _ = await Next(_dom0);
        _dom0.Remove("/a");
        Assert.That((await Next(_dom0)).Path, Is.EqualTo("/a/b/c"));
    }

    [Test]
    public async Task A_watch_is_only_told_of_nodes_its_domain_may_read()
    {
        _dom0.Write("/local/domain/3", string.Empty);
        _dom0.SetPermissions("/local/domain/3", [new XenStorePermissionEntry(3, XenStoreAccess.None)]);
        using IXenStore guest = _store.Connect(3);
        guest.Watch("/local", "g");
        _ = await Next(guest);
        _dom0.Write("/local/domain/0/secret", "x");
        _dom0.Write("/local/domain/3/visible", "y");
        Assert.That((await Next(guest)).Path, Is.EqualTo("/local/domain/3/visible"), "dom0's private node was not announced");
    }

    [Test]
    public async Task A_relative_watch_reports_relative_paths()
    {
        _dom0.Watch("backend", "rel");
        Assert.That((await Next(_dom0)).Path, Is.EqualTo("backend"));
        _dom0.Write("/local/domain/0/backend/x", "1");
        Assert.That((await Next(_dom0)).Path, Is.EqualTo("backend/x"));
    }

    [Test]
    public async Task Introduce_and_release_domain_fire_their_special_watches()
    {
        _dom0.Watch(XenStorePaths.IntroduceDomain, "in");
        _dom0.Watch(XenStorePaths.ReleaseDomain, "out");
        Assert.That((await Next(_dom0)).Path, Is.EqualTo(XenStorePaths.IntroduceDomain));
        Assert.That((await Next(_dom0)).Path, Is.EqualTo(XenStorePaths.ReleaseDomain));

        _store.IntroduceDomain(9);
        Assert.That((await Next(_dom0)).Token, Is.EqualTo("in"));
        Assert.That(_store.IsDomainIntroduced(9), Is.True);
        _store.ReleaseDomain(9);
        Assert.That((await Next(_dom0)).Token, Is.EqualTo("out"));
        Assert.That(_store.IsDomainIntroduced(9), Is.False);
    }

    [Test]
    public void A_transaction_sees_its_own_writes_and_applies_them_only_at_commit()
    {
        XenStoreTransaction t = _dom0.BeginTransaction();
        _dom0.Write("/t/a", "1", t);
        using (Assert.EnterMultipleScope())
        {
            Assert.That(_dom0.Read("/t/a", t), Is.EqualTo("1"));
            Assert.That(_dom0.Read("/t/a"), Is.Null, "not visible outside before the commit");
            Assert.That(_dom0.EndTransaction(t), Is.True);
            Assert.That(_dom0.Read("/t/a"), Is.EqualTo("1"));
        }

        XenStoreTransaction aborted = _dom0.BeginTransaction();
        _dom0.Write("/t/b", "1", aborted);
        Assert.That(_dom0.EndTransaction(aborted, abort: true), Is.True);
        Assert.That(_dom0.Read("/t/b"), Is.Null, "an abort applies nothing");
    }

    [Test]
    public void A_transaction_fails_with_EAGAIN_when_a_node_it_read_changed_and_applies_nothing()
    {
        _dom0.Write("/t/counter", "1");
        using IXenStore other = _store.Connect(0);
        XenStoreTransaction t = _dom0.BeginTransaction();
        Assert.That(_dom0.Read("/t/counter", t), Is.EqualTo("1"));
        other.Write("/t/counter", "2");
        _dom0.Write("/t/counter", "100", t);
        _dom0.Write("/t/other", "x", t);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(_dom0.EndTransaction(t), Is.False, "EAGAIN: start again");
            Assert.That(_dom0.Read("/t/counter"), Is.EqualTo("2"));
            Assert.That(_dom0.Read("/t/other"), Is.Null);
        }
    }

    [Test]
    public void A_transaction_conflicts_with_a_node_created_where_it_saw_none_but_not_with_unrelated_changes()
    {
        using IXenStore other = _store.Connect(0);
        XenStoreTransaction t = _dom0.BeginTransaction();
        Assert.That(_dom0.Read("/t/device", t), Is.Null);
        other.Write("/elsewhere", "1");
        Assert.That(_dom0.EndTransaction(t), Is.True, "an unrelated write does not conflict");

        XenStoreTransaction u = _dom0.BeginTransaction();
        Assert.That(_dom0.Read("/t/device", u), Is.Null);
        other.Write("/t/device", "created");
        _dom0.Write("/t/device", "mine", u);
        Assert.That(_dom0.EndTransaction(u), Is.False);
        Assert.That(_dom0.Read("/t/device"), Is.EqualTo("created"));
    }

    [Test]
    public async Task A_committed_transaction_fires_its_watches_then_and_not_before()
    {
        _dom0.Watch("/w", "w");
        _ = await Next(_dom0);
        XenStoreTransaction t = _dom0.BeginTransaction();
        _dom0.Write("/w/a", "1", t);
        Task<XenStoreWatchEvent> pending = _dom0.ReadWatchAsync(CancellationToken.None);
        Assert.That(pending.IsCompleted, Is.False, "nothing fires inside the transaction");
        Assert.That(_dom0.EndTransaction(t), Is.True);
        Assert.That((await pending).Path, Is.EqualTo("/w/a"));
    }

    [Test]
    public void Open_transactions_are_bounded_per_connection()
    {
        for (int i = 0; i < SimulatedXenStore.MaxTransactionsPerConnection; i++)
        {
            _ = _dom0.BeginTransaction();
        }

        Assert.That(Assert.Throws<XenStoreException>(() => _dom0.BeginTransaction())!.ErrorNumber, Is.EqualTo(Errno.ENOSPC));
    }

    [Test]
    public async Task A_full_watch_queue_drops_events_and_says_so_once()
    {
        using IXenStore small = _store.Connect(0, watchQueueCapacity: 4);
        small.Watch("/q", "q");
        for (int i = 0; i < 10; i++)
        {
            _dom0.Write("/q/" + i, "x");
        }

        XenStoreWatchEvent first = await small.ReadWatchAsync(CancellationToken.None);
        Assert.That(first.IsOverflow, Is.True, "the reader learns first that it must rescan");
        _dom0.Write("/q/after", "x");
        Assert.That((await Next(small)).Path, Is.EqualTo("/q/after"));
    }

    [Test]
    public async Task Reading_a_watch_of_a_closed_connection_ends_instead_of_hanging()
    {
        IXenStore connection = _store.Connect(0);
        Task<XenStoreWatchEvent> pending = connection.ReadWatchAsync(CancellationToken.None);
        connection.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await pending);
        using var cancelled = new CancellationTokenSource();
        Task<XenStoreWatchEvent> waiting = _dom0.ReadWatchAsync(cancelled.Token);
        await cancelled.CancelAsync();
        await Assert.CatchAsync<OperationCanceledException>(async () => await waiting);
    }

    private static async Task<XenStoreWatchEvent> Next(IXenStore store)
    {
        using var guard = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        return await store.ReadWatchAsync(guard.Token);
    }
}
