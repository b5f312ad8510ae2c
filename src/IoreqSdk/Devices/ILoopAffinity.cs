namespace IoreqSdk.Devices;

/// <summary>A context whose services belong to one thread (the server's event loop) while the server runs.</summary>
internal interface ILoopAffinity
{
    /// <summary>Throws <see cref="System.InvalidOperationException"/> when called off the loop while the server runs.</summary>
    /// <param name="what">What was used, for the message.</param>
    void ThrowIfOffLoop(string what);
}
