using System;
using System.Globalization;

namespace IoreqSdk.Xenstore;

/// <summary>
/// One entry of a node's permission list (<c>struct xs_permissions</c>). In a list the first entry names the node's owner
/// (who may do anything, as may dom0) and the access of every domain not listed; each further entry the access of one domain.
/// </summary>
public readonly struct XenStorePermissionEntry : IEquatable<XenStorePermissionEntry>
{
    /// <summary>An entry for <paramref name="domain"/>.</summary>
    public XenStorePermissionEntry(ushort domain, XenStoreAccess access)
    {
        Domain = domain;
        Access = access;
    }

    /// <summary>The domain (the owner, in a list's first entry).</summary>
    public ushort Domain { get; }

    /// <summary>Its access (for the first entry: everyone else's).</summary>
    public XenStoreAccess Access { get; }

    /// <inheritdoc/>
    public bool Equals(XenStorePermissionEntry other) => Domain == other.Domain && Access == other.Access;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is XenStorePermissionEntry other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => (Domain << 2) | (int)Access;

    /// <summary>xenstore-ls' notation: the letter, then the domain (<c>n0</c>, <c>r5</c>).</summary>
    public override string ToString() => Letter(Access) + Domain.ToString(CultureInfo.InvariantCulture);

    /// <summary>Whether two entries are the same.</summary>
    public static bool operator ==(XenStorePermissionEntry left, XenStorePermissionEntry right) => left.Equals(right);

    /// <summary>Whether two entries differ.</summary>
    public static bool operator !=(XenStorePermissionEntry left, XenStorePermissionEntry right) => !left.Equals(right);

    private static string Letter(XenStoreAccess access) => access switch
    {
        XenStoreAccess.Read => "r",
        XenStoreAccess.Write => "w",
        XenStoreAccess.ReadWrite => "b",
        _ => "n",
    };
}
