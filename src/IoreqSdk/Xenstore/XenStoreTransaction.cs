using System;
using System.Globalization;

namespace IoreqSdk.Xenstore;

/// <summary>A transaction's id (<c>xs_transaction_t</c>); <c>default</c> is none (<c>XBT_NULL</c>): the call stands alone.</summary>
public readonly struct XenStoreTransaction : IEquatable<XenStoreTransaction>
{
    /// <summary>The transaction xenstored numbered <paramref name="id"/>.</summary>
    public XenStoreTransaction(uint id) => Id = id;

    /// <summary>No transaction.</summary>
    public static XenStoreTransaction None => default;

    /// <summary>The id on the wire; 0 for none.</summary>
    public uint Id { get; }

    /// <summary>Whether this is a transaction (not <see cref="None"/>).</summary>
    public bool IsTransaction => Id != 0;

    /// <inheritdoc/>
    public bool Equals(XenStoreTransaction other) => Id == other.Id;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is XenStoreTransaction other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => (int)Id;

    /// <inheritdoc/>
    public override string ToString() => Id.ToString(CultureInfo.InvariantCulture);

    /// <summary>Whether two ids are the same.</summary>
    public static bool operator ==(XenStoreTransaction left, XenStoreTransaction right) => left.Equals(right);

    /// <summary>Whether two ids differ.</summary>
    public static bool operator !=(XenStoreTransaction left, XenStoreTransaction right) => !left.Equals(right);
}
