namespace IoreqSdk.Hypervisor;

/// <summary>The Linux <c>errno</c> values Xen's device-model calls report.</summary>
public static class Errno
{
    /// <summary><c>EPERM</c>: not the server's creator, or mixing GFN and resource mapping.</summary>
    public const int EPERM = 1;

    /// <summary><c>ENOENT</c>: no such server, range or frame.</summary>
    public const int ENOENT = 2;

    /// <summary><c>ENOMEM</c>: out of memory.</summary>
    public const int ENOMEM = 12;

    /// <summary><c>EEXIST</c>: the range overlaps one the server already has.</summary>
    public const int EEXIST = 17;

    /// <summary><c>EINVAL</c>: a bad argument (e.g. a buffered ring on Arm).</summary>
    public const int EINVAL = 22;

    /// <summary><c>ENOSPC</c>: no free server slot, or too many ranges.</summary>
    public const int ENOSPC = 28;

    /// <summary><c>EOPNOTSUPP</c>: the operation does not exist on this architecture.</summary>
    public const int EOPNOTSUPP = 95;

    /// <summary><c>ESRCH</c>: No such process: on Xen, no such domain.</summary>
    public const int ESRCH = 3;

    /// <summary><c>EINTR</c>: Interrupted system call.</summary>
    public const int EINTR = 4;

    /// <summary><c>EAGAIN</c>: Try again.</summary>
    public const int EAGAIN = 11;

    /// <summary><c>EACCES</c>: Permission denied.</summary>
    public const int EACCES = 13;

    /// <summary><c>ENODEV</c>: No such device.</summary>
    public const int ENODEV = 19;
}
