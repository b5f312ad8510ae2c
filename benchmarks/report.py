#!/usr/bin/env python3
"""Joins the native C baselines and BenchmarkDotNet's JSON results into one table (run by benchmarks/run.sh).

usage: report.py NATIVE_RESULTS BDN_RESULTS_DIR
Prints a Markdown table (scenario, C ns/op, IoreqSdk ns/op, ratio, bytes/op) and exits 1 if any IoreqSdk fast path
allocated.
"""
import glob
import json
import sys

native = {}
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) == 2:
        native[parts[0]] = float(parts[1])

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
    ("Round trip, busy-poll (slot protocol + server)", "roundtrip-busy", "LoopbackRoundTripBenchmarks.MmioRead(Notification=BusyPoll)"),
    ("Round trip, eventfd", "roundtrip-eventfd", "LoopbackRoundTripBenchmarks.MmioRead(Notification=EventFd)"),
]
for n in (1, 16, 256):
    rows.append((f"Dispatch, MMIO read, {n} region(s)", f"dispatch-read-{n}", f"DispatchBenchmarks.MmioRead(Regions={n})"))
    rows.append((f"Dispatch, MMIO write, {n} region(s)", f"dispatch-write-{n}", f"DispatchBenchmarks.MmioWrite(Regions={n})"))
rows += [
    ("PCI config read, x86 PCI_CONFIG (round trip)", None, "PciBenchmarks.ConfigRead(Platform=X86)"),
    ("PCI config read, Arm64 ECAM (round trip)", None, "PciBenchmarks.ConfigRead(Platform=Arm64)"),
    ("MSI-X table read, x86 (round trip)", None, "PciBenchmarks.MsixTableRead(Platform=X86)"),
    ("Buffered drain, per entry", None, "BufferedDrainBenchmarks.FillAndDrain"),
    ("Round trip over the simulated Xen (semaphores)", None, "RoundTripBenchmarks.MmioReadRoundTrip"),
]
for n in (1, 4, 16):
    rows.append((f"{n} vCPU(s) at once, eventfd, per request", None, f"VcpuScalingBenchmarks.MmioReads(Vcpus={n})"))

print("| scenario | C ns/op | IoreqSdk ns/op | ratio | bytes/op |")
print("|---|---:|---:|---:|---:|")
allocating = []
for title, c_key, sdk_key in rows:
    c = native.get(c_key) if c_key else None
    match = sdk.get(sdk_key)
    if match is None:
        # Parameter spellings vary between BenchmarkDotNet versions: fall back to a prefix match on type and method.
        candidates = [v for k, v in sdk.items() if k.split("(")[0] == sdk_key.split("(")[0] and all(p in k for p in sdk_key[len(sdk_key.split("(")[0]):].strip("()").split(", ") if p)]
        match = candidates[0] if candidates else None
    mean, allocated = match if match else (None, None)
    ratio = f"{mean / c:.2f}" if (mean is not None and c) else "—"
    print(f"| {title} | {f'{c:.1f}' if c else '—'} | {f'{mean:.1f}' if mean is not None else 'not run'} | {ratio} | {allocated if allocated is not None else '—'} |")
    if allocated:
        allocating.append(title)

if allocating:
    print(f"\nALLOCATING FAST PATHS: {', '.join(allocating)}")
    sys.exit(1)
