using System;
using System.Runtime.CompilerServices;
using System.Threading;

namespace IoreqSdk.Abi;

/// <summary>
/// A view of Xen's <c>shared_iopage_t</c>: one 4 KiB page holding one <see cref="IoRequest"/> slot per vCPU,
/// slot <c>i</c> at byte <c>32 * i</c>.
/// </summary>
/// <remarks>
/// <para>The page is shared with the hypervisor and, through it, with an untrusted guest. The rules this view
/// supports are Xen's: the consumer reads <c>state</c> with acquire semantics before any other field
/// (Xen publishes the fields, then a full barrier, then <c>state</c> = READY), copies the request out, and
/// answers by writing <c>data</c> and then <c>state</c> with release semantics, so that Xen — which reads
/// <c>state</c> and then issues <c>smp_rmb</c> before reading <c>data</c> — never sees the new state with the
/// old data. Nothing but <c>data</c> and <c>state</c> is ever written by a device model.</para>
/// <para>The view does not own the memory; whoever mapped the page keeps it alive.</para>
/// </remarks>
public readonly unsafe struct SharedIoPage
{
    /// <summary>The page size.</summary>
    public const int SizeInBytes = IoreqServerResource.PageSize;

    /// <summary>How many vCPU slots one page holds (Xen guests have at most 128 vCPUs).</summary>
    public const int SlotCount = SizeInBytes / IoRequest.SizeInBytes;

    private readonly byte* _page;

    /// <summary>Creates a view of a mapped page.</summary>
    /// <param name="page">The page's address; must be 8-byte aligned and stay mapped while the view is used.</param>
    public SharedIoPage(nint page)
    {
        if (page == 0 || ((long)page & 7) != 0)
        {
            ThrowHelper.ThrowArgument(nameof(page), "The ioreq page must be mapped at a non-null, 8-byte aligned address.");
        }

        _page = (byte*)page;
    }

    /// <summary>The page's address.</summary>
    public nint Address => (nint)_page;

    /// <summary>The slot of a vCPU, as a reference into shared memory.</summary>
    /// <param name="vcpu">The vCPU id.</param>
    /// <returns>A reference to the slot; read it only as the class remarks describe.</returns>
    public ref IoRequest Slot(int vcpu)
    {
        if ((uint)vcpu >= SlotCount)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(vcpu), "A vCPU id is 0 to 127.");
        }

        return ref Unsafe.AsRef<IoRequest>(_page + (vcpu * IoRequest.SizeInBytes));
    }

    /// <summary>Reads a slot's state with acquire semantics: fields read after it are at least as new.</summary>
    /// <param name="vcpu">The vCPU id.</param>
    /// <returns>The state bits (possibly a value Xen never writes).</returns>
    public IoreqState ReadStateAcquire(int vcpu)
    {
        // Acquire pairs with the producer's barrier-then-state store: every field written before READY
        // was published is visible to the reads that follow this one (Xen's consumer uses smp_rmb here).
        return IoRequestFlags.GetState(Volatile.Read(ref FlagsByte(vcpu)));
    }

    /// <summary>
    /// Copies a request out of its slot. Call after <see cref="ReadStateAcquire"/> returned
    /// <see cref="IoreqState.Ready"/>; the copy is what gets handled, so a guest rewriting the slot meanwhile
    /// changes nothing.
    /// </summary>
    /// <param name="vcpu">The vCPU id.</param>
    /// <returns>The copy.</returns>
    public IoRequest ReadRequest(int vcpu) => Slot(vcpu);

    /// <summary>
    /// Answers a request: writes <c>data</c>, then the new state with release semantics, keeping every other bit
    /// of the state's byte.
    /// </summary>
    /// <param name="vcpu">The vCPU id.</param>
    /// <param name="data">The response data (for reads, the value in its low bytes).</param>
    public void WriteResponse(int vcpu, ulong data)
    {
        ref IoRequest slot = ref Slot(vcpu);
        slot.Data = data;
        WriteStateRelease(vcpu, IoreqState.ResponseReady);
    }

    /// <summary>Writes a slot's state with release semantics; the other bits of the byte are kept.</summary>
    /// <param name="vcpu">The vCPU id.</param>
    /// <param name="state">The new state.</param>
    public void WriteStateRelease(int vcpu, IoreqState state)
    {
        ref byte flags = ref FlagsByte(vcpu);

        // The byte also holds data_is_ptr/dir/df. Xen does not write it while the slot is not NONE, so a
        // plain read-modify-write is safe (it is what GCC emits for QEMU's bitfield store). Release ordering
        // makes every earlier store (data) visible before the new state — Xen's xen_wmb() before the state.
        byte updated = IoRequestFlags.WithState(flags, state);
        Volatile.Write(ref flags, updated);
    }

    private ref byte FlagsByte(int vcpu)
    {
        if ((uint)vcpu >= SlotCount)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(vcpu), "A vCPU id is 0 to 127.");
        }

        return ref Unsafe.AsRef<byte>(_page + (vcpu * IoRequest.SizeInBytes) + IoRequest.FlagsOffset);
    }
}
