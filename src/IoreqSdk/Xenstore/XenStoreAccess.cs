using System;

namespace IoreqSdk.Xenstore;

/// <summary>What a domain may do to a node (xenstore.txt's permission letters n, r, w, b; XS_PERM_* in xenstore_lib.h).</summary>
[Flags]
public enum XenStoreAccess
{
    /// <summary><c>n</c>: nothing.</summary>
    None = 0,

    /// <summary><c>r</c>: read the node and list its children.</summary>
    Read = 1,

    /// <summary><c>w</c>: write or remove the node, create children.</summary>
    Write = 2,

    /// <summary><c>b</c>: both.</summary>
    ReadWrite = Read | Write,
}
