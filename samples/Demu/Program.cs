using System.Threading.Tasks;
using Demu;

// demu: one process emulates one PCI device for one guest, as DEMU does. See DemuCommand for the options.
return await DemuCommand.InvokeAsync(args).ConfigureAwait(false);
