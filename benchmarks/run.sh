#!/usr/bin/env bash
# IoreqSdk against native C, side by side in one run on this machine: builds the C baselines in benchmarks/native
# (as programs to run alone, and as libraries), runs the benchmark project's paired runner — batches of C and of
# IoreqSdk alternating in one process, a ratio per pair — then the BenchmarkDotNet suite, and prints one table
# (scenario, C ns/op, IoreqSdk ns/op, ratio, bytes/op). Exits non-zero if any IoreqSdk fast path allocates.
#
#   benchmarks/run.sh            the full run (30-100 pairs per ratio; BenchmarkDotNet: 3 warm-up and 10 measured
#                                iterations per case; about 8 minutes)
#   benchmarks/run.sh --short    CI's version: fewer iterations and pairs; for the allocation check
#
# Run it on an otherwise idle machine: both sides of a busy-poll round trip need a core each.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${BENCH_OUT:-$here/../artifacts/benchmarks}
short=0
[ "${1:-}" = --short ] && short=1
rm -rf "$out"
mkdir -p "$out"

echo "==> native baselines (gcc -O2): the programs, and the same code as libraries for the paired runner"
cflags=(-O2 -std=gnu11 -pthread -Wall -Wextra -Werror)
gcc "${cflags[@]}" "$here/native/slot_roundtrip.c" -o "$out/slot_roundtrip"
gcc "${cflags[@]}" "$here/native/dispatch.c" -o "$out/dispatch"
gcc "${cflags[@]}" "$here/native/virtqueue.c" -o "$out/virtqueue"
gcc "${cflags[@]}" -fPIC -shared -fvisibility=hidden -DSLOT_ROUNDTRIP_LIBRARY "$here/native/slot_roundtrip.c" -o "$out/libslot_roundtrip.so"
gcc "${cflags[@]}" -fPIC -shared -fvisibility=hidden -DDISPATCH_LIBRARY "$here/native/dispatch.c" -o "$out/libdispatch.so"
gcc "${cflags[@]}" -fPIC -shared -fvisibility=hidden -DVIRTQUEUE_LIBRARY "$here/native/virtqueue.c" -o "$out/libvirtqueue.so"
# virtio-blk end to end: a library only (its guest drives both sides; the image is the C# side's).
gcc "${cflags[@]}" -fPIC -shared -fvisibility=hidden -DBLK_ROUNDTRIP_LIBRARY "$here/native/blk_roundtrip.c" -o "$out/libblk_roundtrip.so"

echo "==> ratios against C, in alternating pairs (same thread, same pinned CPUs; round trips with the same C producer)"
dotnet build -c Release "$here/IoreqSdk.Benchmarks" > "$out/build.log" 2>&1 || { tail -40 "$out/build.log"; echo "build failed"; exit 1; }
paired=()
[ $short = 1 ] && paired=(--short)
dotnet run -c Release --no-build --project "$here/IoreqSdk.Benchmarks" -- paired "$out" "${paired[@]}" | tee "$out/native.txt"

echo "==> IoreqSdk (BenchmarkDotNet)"
# Short: a few iterations, enough for the memory diagnoser to measure steady state (the dry job would count JIT work).
job=(--warmupCount 3 --iterationCount 10 --launchCount 1)
[ $short = 1 ] && job=(--warmupCount 2 --iterationCount 2 --launchCount 1 --iterationTime 100)
dotnet run -c Release --no-build --project "$here/IoreqSdk.Benchmarks" -- \
    --filter '*DispatchBenchmarks*' '*LoopbackRoundTripBenchmarks*' '*PciBenchmarks*' '*VcpuScalingBenchmarks*' \
             '*BufferedDrainBenchmarks*' '*.RoundTripBenchmarks*' '*VirtqueueBenchmarks*' '*VirtioBlkBenchmarks*' \
    "${job[@]}" --exporters json --artifacts "$out/bdn" > "$out/bdn.log" 2>&1 \
    || { tail -40 "$out/bdn.log"; echo "BenchmarkDotNet failed"; exit 1; }

echo "==> results ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'))"
python3 "$here/report.py" "$out/native.txt" "$out/bdn" | tee "$out/table.md"
