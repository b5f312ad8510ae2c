using System;
using System.Threading;
using IoreqSdk.Devices;

namespace IoreqSdk.Server;

/// <summary>
/// The off-loop work of <see cref="IDeviceContext.TryRunOffLoop{TResult}"/>: a delegate producing a
/// <typeparamref name="TResult"/> and a completion consuming it, one item per call (the convenient form; a device that
/// must not allocate per request subclasses <see cref="OffLoopWork"/> itself).
/// </summary>
internal sealed class DelegateOffLoopWork<TResult> : OffLoopWork
{
    private readonly Func<CancellationToken, TResult> _work;
    private readonly Action<TResult> _completion;
    private TResult _result = default!;

    public DelegateOffLoopWork(Func<CancellationToken, TResult> work, Action<TResult> completion)
    {
        _work = work;
        _completion = completion;
    }

    protected override void Execute(CancellationToken cancellationToken) => _result = _work(cancellationToken);

    protected override void Complete() => _completion(_result);
}
