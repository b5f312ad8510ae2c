#!/usr/bin/env python3
"""Joins the native C baselines and BenchmarkDotNet's JSON results into one table (run by benchmarks/run.sh).

usage: report.py NATIVE_RESULTS BDN_RESULTS_DIR
NATIVE_RESULTS holds "paired scenario c_ns sdk_ns ratio q1 q3 pairs" lines from the paired runner (C and IoreqSdk
batches alternating; the ratio is the median of the per-pair ratios, q1-q3 their interquartile range); every C
figure comes from there. Prints a Markdown table (scenario, C ns/op, IoreqSdk ns/op, ratio, bytes/op) and exits 1 if any IoreqSdk fast path
allocated or was not measured.
"""
import glob
import json
import sys

paired = {}
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) == 8 and parts[0] == "paired":
        paired[parts[1]] = tuple(float(p) for p in parts[2:7]) + (int(parts[7]),)

sdk = {}
for path in glob.glob(f"{sys.argv[2]}/**/*.json", recursive=True):
    for b in json.load(open(path)).get("Benchmarks", []):
        stats = b.get("Statistics") or {}
        if "Mean" not in stats:
            continue
        params = b.get("Parameters") or ""
        key = f"{b['Type']}.{b['Method']}" + (f"({params})" if params else "")
        sdk[key] = (stats["Mean"], (b.get("Memory") or {}).get("BytesAllocatedPerOperation", 0))

rows = [
    ("Round trip, busy-poll, producer and server on 2 cores (paired)", "roundtrip-busy-2cores", "LoopbackRoundTripBenchmarks.MmioRead(Notification=BusyPoll)"),
    ("Round trip, server busy-polling over Xen's event-channel semantics, 2 cores (paired)", "roundtrip-polled-2cores", "LoopbackRoundTripBenchmarks.MmioRead(Notification=ServerPolls)"),
    ("Round trip, eventfd, both on 1 core (paired)", "roundtrip-eventfd-1core", "LoopbackRoundTripBenchmarks.MmioRead(Notification=EventFd)"),
    ("Round trip, eventfd, across 2 cores (paired)", "roundtrip-eventfd-2cores", None),
]
for n in (1, 16, 256):
    rows.append((f"Dispatch, MMIO read, {n} region(s)", f"dispatch-read-{n}", f"DispatchBenchmarks.MmioRead(Regions={n})"))
    rows.append((f"Dispatch, MMIO write, {n} region(s)", f"dispatch-write-{n}", f"DispatchBenchmarks.MmioWrite(Regions={n})"))
    rows.append((f"Dispatch, MMIO read, {n} region(s), each read another region", f"dispatch-scattered-{n}", f"DispatchBenchmarks.MmioReadScattered(Regions={n})"))
rows += [
    ("Virtqueue: pop a 3-descriptor chain, read its header, write its status, push used (split ring, per chain)", "virtqueue-pop-push", "VirtqueueBenchmarks.PopPush"),
]
# virtio-blk end to end over the loopback Xen (paired: the C guest drives both device models); bytes/op from
# BenchmarkDotNet's run of the same path (C# guest, eventfd, one core).
blk_bdn = {"4k-random": "VirtioBlkBenchmarks.RandomRead4K", "64k-seq": "VirtioBlkBenchmarks.SequentialRead64K"}
blk_title = {"4k-random": "virtio-blk 4 KiB random read", "64k-seq": "virtio-blk 64 KiB sequential read"}
for placement, where in (("busy-3cores", "busy-poll, 3 cores"), ("eventfd-1core", "eventfd, 1 core"), ("eventfd-2cores", "eventfd, across 2 cores")):
    for kind in ("4k-random", "64k-seq"):
        key = f"blk-{kind}-{placement}"
        if placement == "busy-3cores" and key not in paired:
            continue   # needs three CPUs (PairedBlk.cs)
        rows.append((f"{blk_title[kind]}, end to end, {where} (paired)", key, blk_bdn[kind] if placement == "eventfd-1core" else None))
for n in (1, 2, 4):
    # PairedBlk.RunQueues: blk_roundtrip.c's multi-queue guest (a vCPU thread per queue and the interrupt's vCPU) on
    # CPU 0, the device on CPU 1; per read over all queues; no BenchmarkDotNet case of its own.
    rows.append((f"virtio-blk 4 KiB random read, {n} queue(s) at once (a vCPU each), eventfd, across 2 cores, per read (paired)", f"blk-mq-4k-random-{n}queues-eventfd-2cores", None))
rows += [
    # Both columns IoreqSdk (PairedPci.cs): x86's PCI_CONFIG decode where the others have C, Arm64's ECAM decode beside it.
    ("PCI config read, dispatch: Arm64 ECAM against x86 PCI_CONFIG (paired; the C column is x86)", "pci-config-ecam", None),
    ("PCI config read, x86 PCI_CONFIG (round trip)", None, "PciBenchmarks.ConfigRead(Platform=X86)"),
    ("PCI config read, Arm64 ECAM (round trip)", None, "PciBenchmarks.ConfigRead(Platform=Arm64)"),
    ("MSI-X table read, x86 (round trip)", None, "PciBenchmarks.MsixTableRead(Platform=X86)"),
    ("Buffered drain, per entry", None, "BufferedDrainBenchmarks.FillAndDrain"),
    ("Round trip over the simulated Xen (semaphores)", None, "RoundTripBenchmarks.MmioReadRoundTrip"),
]
for n in (1, 4, 16):
    # Paired (PairedScaling.cs: producers on CPU 0, the consumer on CPU 1); bytes/op from BenchmarkDotNet's unpinned run.
    rows.append((f"{n} vCPU(s) at once, eventfd, one loop, per request (paired)", f"scaling-eventfd-{n}vcpus", f"VcpuScalingBenchmarks.MmioReads(Vcpus={n})"))
for n in (4, 16):
    # Two loops (IoreqServerOptions.LoopThreads = 2) against two C consumer threads; no BenchmarkDotNet case of its own.
    rows.append((f"{n} vCPUs at once, eventfd, two loops, per request (paired)", f"scaling-eventfd-{n}vcpus-2loops", None))

print("| scenario | C ns/op | IoreqSdk ns/op | ratio | bytes/op |")
print("|---|---:|---:|---:|---:|")
allocating = []
def bdn(sdk_key):
    """BenchmarkDotNet's (mean, bytes/op) for a case, or None."""
    if not sdk_key:
        return None
    match = sdk.get(sdk_key)
    if match is None:
        # Parameter spellings vary between BenchmarkDotNet versions: fall back to a prefix match on type and method.
        method = sdk_key.split("(")[0]
        params = [p for p in sdk_key[len(method):].strip("()").split(", ") if p]
        candidates = [v for k, v in sdk.items() if k.split("(")[0] == method and all(p in k for p in params)]
        match = candidates[0] if candidates else None
    return match


missing = []
for title, c_key, sdk_key in rows:
    mean, allocated = bdn(sdk_key) or (None, None)
    if sdk_key and allocated is None:
        missing.append(title)
    if c_key in paired:
        # Both sides from the paired runner; bytes/op from BenchmarkDotNet's run of the same case.
        c, mean, ratio, q1, q3, pairs = paired[c_key]
        print(f"| {title} | {c:.1f} | {mean:.1f} | {ratio:.2f} ({q1:.2f}–{q3:.2f}, {pairs} pairs) | {allocated if allocated is not None else '—'} |")
    else:
        print(f"| {title} | — | {f'{mean:.1f}' if mean is not None else 'not run'} | — | {allocated if allocated is not None else '—'} |")
    if allocated:
        allocating.append(title)

# 64 KiB sequential reads as bandwidth too: 65,536 bytes per read.
bandwidth = [(k, v) for k, v in sorted(paired.items()) if k.startswith("blk-64k-seq-")]
if bandwidth:
    print("\n| virtio-blk 64 KiB sequential, one request in flight | C MB/s | IoreqSdk MB/s |")
    print("|---|---:|---:|")
    for key, (c, mean, *_rest) in bandwidth:
        print(f"| {key[len('blk-64k-seq-'):]} | {65536e3 / c:.0f} | {65536e3 / mean:.0f} |")

if allocating:
    print(f"\nALLOCATING FAST PATHS: {', '.join(allocating)}")
if missing:
    # A case BenchmarkDotNet did not measure would pass the allocation check unseen.
    print(f"\nNOT MEASURED BY BENCHMARKDOTNET: {', '.join(missing)}")
if allocating or missing:
    sys.exit(1)
