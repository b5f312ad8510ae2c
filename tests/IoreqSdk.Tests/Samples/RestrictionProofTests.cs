using Demu;
using IoreqSdk.Server;
using IoreqSdk.Simulation;
using NUnit.Framework;

namespace IoreqSdk.Tests.Samples;

/// <summary>
/// The line demu prints once its handles are restricted (the real-Xen e2e greps it), and its refusal to go on when the
/// restriction does not hold.
/// </summary>
[TestFixture]
public sealed class RestrictionProofTests
{
    [Test]
    public void AfterRestrictingACallForAnotherDomainFailsWithEpermAndDemuSaysSo()
    {
        using var xen = new SimulatedHypervisor();
        using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain, RestrictHandlesToDomain = true });
        string unrestricted = RestrictionProof.CallFor(xen, RestrictionProof.Witness(xen.Domain));
        server.Start();

        bool holds = RestrictionProof.Check(xen, xen.Domain, unrestricted, out string line);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(unrestricted, Is.EqualTo("ENOENT"), "before: the simulation's answer for a domain that does not exist (Xen's is ESRCH)");
            Assert.That(holds, Is.True);
            Assert.That(line, Is.EqualTo("demu: handles restricted to domain 1 (a call for domain 32751 now fails: EPERM; unrestricted: ENOENT)"));
        }
    }

    [Test]
    public void AnUnrestrictedBackendIsCaught()
    {
        using var xen = new SimulatedHypervisor();
        using var server = new IoreqServer(xen, new IoreqServerOptions { Domain = xen.Domain });
        server.Start();

        bool holds = RestrictionProof.Check(xen, xen.Domain, "ENOENT", out string line);

        using (Assert.EnterMultipleScope())
        {
            Assert.That(holds, Is.False);
            Assert.That(line, Does.Contain("the restriction does not hold; stopping"));
        }
    }

    [Test]
    public void TheWitnessIsNeverTheGuestItself()
    {
        using (Assert.EnterMultipleScope())
        {
            Assert.That(RestrictionProof.Witness(5), Is.EqualTo((ushort)32751));
            Assert.That(RestrictionProof.Witness(32751), Is.EqualTo((ushort)32750));
        }
    }
}
