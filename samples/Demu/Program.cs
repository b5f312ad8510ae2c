using System.Threading.Tasks;
using Demu;
using Demu.Serve;

// demu serve / demu describe: the xenstore backend daemon and its helper (samples/Demu/Serve).
if (ServeCommands.TryInvoke(args) is Task<int> serving)
{
    return await serving.ConfigureAwait(false);
}

// demu: one process emulates one PCI device for one guest, as DEMU does. See DemuCommand for the options.
return await DemuCommand.InvokeAsync(args).ConfigureAwait(false);
