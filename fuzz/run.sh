#!/usr/bin/env bash
# Coverage-guided fuzzing of the SDK's guest-facing surface with AFL++ and SharpFuzz.
#
#   fuzz/run.sh TARGET SECONDS     build, instrument the SDK's assemblies, fuzz TARGET for SECONDS
#   fuzz/run.sh --all SECONDS      every target in turn, SECONDS each
#   fuzz/run.sh --list             the targets
#
# Targets: ioreq (the shared ioreq page and the buffered ring), pci (config space and BARs through both platforms'
# host bridges), virtqueue (split and packed rings against virtio-blk, -rng and -console on mmio and pci), registers
# (the 16550 and edu register files), xenstore (what the toolstack and guests write to xenstore, against the backend
# service). Seeds: fuzz/corpus/TARGET/. Findings: artifacts/fuzz/TARGET/ (crashes/ and
# hangs/ under default/). Prints per target: executions, exec/s, paths, bitmap density, crashes, hangs; exits 1 if any
# target found a crash or a hang. Runs one afl-fuzz instance at nice 19 (the machine is shared).
#
# Environment: FUZZ_SKIP_BUILD=1 reuses the last instrumented build; FUZZ_RESUME=1 continues a target's previous
# run (its queue) instead of starting from the seeds.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# The SDK's targets, run by --all; a target added to fuzz/Harness/FuzzTargets.cs runs by name too.
targets=(ioreq pci virtqueue registers xenstore)
usage() { echo "usage: fuzz/run.sh TARGET SECONDS | --all SECONDS | --list (targets: ${targets[*]})" >&2; exit 2; }

[ $# -ge 1 ] || usage
if [ "$1" = "--list" ]; then printf '%s\n' "${targets[@]}"; exit 0; fi
[ $# -eq 2 ] || usage
seconds=$2
[[ "$seconds" =~ ^[0-9]+$ ]] || usage
if [ "$1" = "--all" ]; then
    run=("${targets[@]}")
else
    [[ "$1" =~ ^[a-z0-9-]+$ ]] || usage
    run=("$1")
fi

command -v afl-fuzz >/dev/null || { echo "afl-fuzz not found: apt-get install afl++" >&2; exit 2; }

out="$root/artifacts/fuzz"
bin="$out/bin"
if [ "${FUZZ_SKIP_BUILD:-0}" != 1 ] || [ ! -f "$bin/IoreqSdk.Fuzz.dll" ]; then
    # A fresh copy of the build each time: sharpfuzz rewrites assemblies in place and refuses an instrumented one.
    dotnet tool restore >/dev/null || exit 2
    rm -rf "$bin"; mkdir -p "$out"
    dotnet build fuzz/IoreqSdk.Fuzz.csproj -c Release -o "$bin" -nologo -v quiet > "$out/build.log" 2>&1 \
        || { tail -n 30 "$out/build.log"; echo "building the harness failed" >&2; exit 2; }
    # The SDK's guest-facing code only: not the harness, not the simulated Xen that plays the guest, and not the
    # server's loop machinery (the event loop, the stall sampler, the off-loop workers, the lifecycle), whose branch
    # counts follow thread timing rather than the input and would make every run's coverage differ (AFL's
    # "stability"). Kept: what guest-written data flows through — the ABI pages, dispatch, the ring consumer, the
    # region map and device context, guest memory, PCI and the platforms, virtio and the devices.
    # The xenstore side (the backend service, its paths and watch queue) is what the toolstack's data flows through.
    sdk=(IoreqSdk.Abi IoreqSdk.Dispatch IoreqSdk.Pci IoreqSdk.Platforms IoreqSdk.Memory IoreqSdk.Devices
         IoreqSdk.Server.BufferedRingConsumer IoreqSdk.Server.RegionMap IoreqSdk.Server.DeviceContext IoreqSdk.Xenstore)
    dotnet tool run sharpfuzz "$bin/IoreqSdk.dll" "${sdk[@]}" >/dev/null || { echo "instrumenting IoreqSdk failed" >&2; exit 2; }
    for assembly in IoreqSdk.Virtio IoreqSdk.Devices; do
        dotnet tool run sharpfuzz "$bin/$assembly.dll" "$assembly" >/dev/null || { echo "instrumenting $assembly failed" >&2; exit 2; }
    done
fi

known=$(dotnet "$bin/IoreqSdk.Fuzz.dll" --list) || exit 2
for target in "${run[@]}"; do
    grep -qx "$target" <<<"$known" || { echo "no fuzz target $target (the harness has: $(echo $known))" >&2; exit 2; }
    [ -d "fuzz/corpus/$target" ] || { echo "no seeds for $target: add fuzz/corpus/$target/" >&2; exit 2; }
done

# This machine: no CPU frequency governor to check, core dumps go nowhere, and no CPU binding (shared cores).
export AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1 AFL_NO_UI=1
# dotnet is not an AFL-instrumented binary; the SDK's assemblies inside it are (SharpFuzz's fork server).
export AFL_SKIP_BIN_CHECK=1
# .NET's runtime threads make the first executions slow: a generous start-up, and an execution timeout (ms) far above
# the harness's own 2 s hang watchdog, so that a hang shows as the harness's crash with its reason.
export AFL_FORKSRV_INIT_TMOUT=60000

status=0
for target in "${run[@]}"; do
    dir="$out/$target"
    seeds="$root/fuzz/corpus/$target"
    if [ "${FUZZ_RESUME:-0}" = 1 ] && [ -d "$dir/default/queue" ]; then
        seeds=-
    else
        rm -rf "$dir"
    fi
    mkdir -p "$dir"
    echo "==> $target: afl-fuzz for ${seconds}s (findings in ${dir#"$root"/})"
    # The harness's own account of each failure (which oracle, where), for triage: AFL keeps only the input.
    export FUZZ_FAILURE_LOG="$dir/failures.log"
    nice -n 19 afl-fuzz -i "$seeds" -o "$dir" -V "$seconds" -t 10000 -m none -- \
        dotnet "$bin/IoreqSdk.Fuzz.dll" "$target" > "$dir/afl.log" 2>&1
    stats="$dir/default/fuzzer_stats"
    if [ ! -f "$stats" ]; then
        echo "$target: afl-fuzz did not start (see ${dir#"$root"/}/afl.log)"; tail -n 20 "$dir/afl.log"
        status=1
        continue
    fi

    stat() { grep -E "^$1 *:" "$stats" | sed 's/.*: *//'; }
    crashes=$(stat saved_crashes); crashes=${crashes:-$(stat unique_crashes)}
    hangs=$(stat saved_hangs); hangs=${hangs:-$(stat unique_hangs)}
    echo "$target: executions $(stat execs_done), exec/s $(stat execs_per_sec), paths $(stat corpus_count), bitmap $(stat bitmap_cvg), stability $(stat stability), crashes ${crashes:-0}, hangs ${hangs:-0}, run time $(stat run_time)s"
    if [ "${crashes:-0}" -ne 0 ] || [ "${hangs:-0}" -ne 0 ]; then
        status=1
        ls "$dir"/default/crashes/id:* "$dir"/default/hangs/id:* 2>/dev/null | sed 's/^/    /'
        [ -f "$dir/failures.log" ] && grep -A3 -- '^---' "$dir/failures.log" | head -n 40
    fi
done
exit $status
