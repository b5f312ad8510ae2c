namespace IoreqSdk.Xenstore;

/// <summary>A watch event: the path that changed (or the watched path, for the initial fire) and the watch's token.</summary>
public sealed class XenStoreWatchEvent
{
    /// <summary>An event for <paramref name="path"/> from the watch registered with <paramref name="token"/>.</summary>
    public XenStoreWatchEvent(string path, string token)
    {
        Path = path;
        Token = token;
    }

    private XenStoreWatchEvent()
    {
        Path = string.Empty;
        Token = string.Empty;
        IsOverflow = true;
    }

    /// <summary>
    /// Stands for events lost because the bounded queue was full: whoever reads it must read again what its watches
    /// cover (a backend: list its devices again), since any change may have been missed.
    /// </summary>
    public static XenStoreWatchEvent Overflow { get; } = new();

    /// <summary>The path that changed, absolute; for the initial fire, the watched path as it was registered.</summary>
    public string Path { get; }

    /// <summary>The token the watch was registered with.</summary>
    public string Token { get; }

    /// <summary>Whether this is <see cref="Overflow"/>.</summary>
    public bool IsOverflow { get; }

    /// <inheritdoc/>
    public override string ToString() => IsOverflow ? "(watch events lost)" : Path + " [" + Token + "]";
}
