using IoreqSdk.Hypervisor;

namespace Demu;

/// <summary>
/// demu's proof that its handles are restricted: one harmless device-model call for a witness domain, before and after.
/// The witness is a domain that does not exist, so unrestricted handles get ESRCH from Xen and restricted ones EPERM
/// from the kernel, which refuses the call before Xen sees it. (Domain 0 would prove nothing: Xen refuses dom0 a
/// device-model call on itself with EPERM either way.)
/// </summary>
internal static class RestrictionProof
{
    /// <summary>The witness for a run serving <paramref name="domain"/>: the highest guest id, or the one below it.</summary>
    public static ushort Witness(ushort domain) =>
        domain == DemuCommand.DomidFirstReserved - 1 ? (ushort)(domain - 1) : (ushort)(DemuCommand.DomidFirstReserved - 1);

    /// <summary>Makes one harmless device-model call for <paramref name="other"/> (its vCPU count) and names how it ended.</summary>
    public static string CallFor(IHypervisor hypervisor, ushort other)
    {
        try
        {
            _ = hypervisor.GetVcpuCount(other);
            return "succeeded";
        }
        catch (HypervisorException e)
        {
            return e.ErrorNumber switch
            {
                Errno.EPERM => "EPERM",
                Errno.ESRCH => "ESRCH",
                Errno.EACCES => "EACCES",
                Errno.ENOENT => "ENOENT",
                Errno.EINVAL => "EINVAL",
                _ => $"errno {e.ErrorNumber}",
            };
        }
    }

    /// <summary>
    /// Checks, after the restriction, that the witness call now fails with EPERM; <paramref name="line"/> is what demu
    /// prints on standard error either way.
    /// </summary>
    /// <param name="hypervisor">The restricted backend.</param>
    /// <param name="domain">The guest the handles are restricted to.</param>
    /// <param name="unrestricted">How the witness call ended before the restriction.</param>
    /// <param name="line">The line to print.</param>
    /// <returns>Whether the restriction holds.</returns>
    public static bool Check(IHypervisor hypervisor, ushort domain, string unrestricted, out string line)
    {
        ushort witness = Witness(domain);
        string restricted = CallFor(hypervisor, witness);
        bool holds = restricted == "EPERM";
        line = holds
            ? $"demu: handles restricted to domain {domain} (a call for domain {witness} now fails: EPERM; unrestricted: {unrestricted})"
            : $"demu: handles restricted to domain {domain}, yet a call for domain {witness} gives {restricted}, not EPERM: the restriction does not hold; stopping.";
        return holds;
    }
}
