using System.Threading.Tasks;
using Demu;

// demu: one process emulates one device for one guest, as DEMU does; demu serve runs the xenstore backend daemon and
// demu describe its helper (samples/Demu/Serve). See DemuCommand for the options.
return await DemuCommand.InvokeAsync(args).ConfigureAwait(false);
