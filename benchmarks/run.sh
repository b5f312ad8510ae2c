#!/usr/bin/env bash
# IoreqSdk against native C, side by side in one run on this machine: builds and runs the C baselines in
# benchmarks/native, runs the BenchmarkDotNet suite, and prints one table (scenario, C ns/op, IoreqSdk ns/op, ratio,
# bytes/op). Exits non-zero if any IoreqSdk fast path allocates.
#
#   benchmarks/run.sh            the full run (3 warm-up and 10 measured iterations per case; about 5 minutes)
#   benchmarks/run.sh --short    CI's version: fewer C iterations, BenchmarkDotNet's dry-plus job; for the allocation check
#
# Run it on an otherwise idle machine: both sides of a busy-poll round trip need a core each.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${BENCH_OUT:-$here/../artifacts/benchmarks}
short=0
[ "${1:-}" = --short ] && short=1
rm -rf "$out"
mkdir -p "$out"

echo "==> native baselines (gcc -O2)"
gcc -O2 -std=gnu11 -pthread -Wall -Wextra -Werror "$here/native/slot_roundtrip.c" -o "$out/slot_roundtrip"
gcc -O2 -std=gnu11 -Wall -Wextra -Werror "$here/native/dispatch.c" -o "$out/dispatch"
if [ $short = 1 ]; then
    { "$out/slot_roundtrip" busy 100000; "$out/slot_roundtrip" eventfd 20000; "$out/dispatch" 1000000; } | tee "$out/native.txt"
else
    { "$out/slot_roundtrip" busy; "$out/slot_roundtrip" eventfd; "$out/dispatch"; } | tee "$out/native.txt"
fi

echo "==> IoreqSdk (BenchmarkDotNet)"
# Short: a few iterations, enough for the memory diagnoser to measure steady state (the dry job would count JIT work).
job=(--warmupCount 3 --iterationCount 10 --launchCount 1)
[ $short = 1 ] && job=(--warmupCount 2 --iterationCount 2 --launchCount 1 --iterationTime 100)
dotnet run -c Release --project "$here/IoreqSdk.Benchmarks" -- \
    --filter '*DispatchBenchmarks*' '*LoopbackRoundTripBenchmarks*' '*PciBenchmarks*' '*VcpuScalingBenchmarks*' \
             '*BufferedDrainBenchmarks*' '*.RoundTripBenchmarks*' \
    "${job[@]}" --exporters json --artifacts "$out/bdn" > "$out/bdn.log" 2>&1 \
    || { tail -40 "$out/bdn.log"; echo "BenchmarkDotNet failed"; exit 1; }

echo "==> results ($(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'))"
python3 "$here/report.py" "$out/native.txt" "$out/bdn" | tee "$out/table.md"
