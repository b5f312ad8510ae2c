#!/usr/bin/env bash
# demu's footprint: the maximum RSS of the NativeAOT demu serving one device on the simulated guest (the default edu,
# x86; GNU time's figure, as /usr/bin/time -v prints it), its start-up time to the "server enabled" line, and what each
# further device costs one process serving many (benchmarks/IoreqSdk.Footprint: N virtio-blk disks, one simulated guest
# and one ioreq server each, the xenstore backend daemon's shape; the simulated guests' RAM left out). Fails if the
# maximum RSS or the per-device cost exceeds benchmarks/footprint-baseline.txt by more than 20%.
#
#   benchmarks/footprint.sh [DEMU]                     measure and check (DEMU: a published demu, default artifacts/demu/demu)
#   benchmarks/footprint.sh [DEMU] --update-baseline   measure and write the baseline (do it on the machine CI runs on)
#
# Needs GNU time (Debian's time package), python3 (the line timing) and clang/zlib for the harness's NativeAOT publish.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
demu=$root/artifacts/demu/demu
update=0
for arg in "$@"; do
    case "$arg" in
        --update-baseline) update=1 ;;
        *) demu=$arg ;;
    esac
done
baseline=$here/footprint-baseline.txt
out=${FOOTPRINT_OUT:-$root/artifacts/footprint}
mkdir -p "$out"
[ -x /usr/bin/time ] || { echo "footprint: GNU time is missing (apt-get install time)"; exit 1; }
[ -x "$demu" ] || { echo "footprint: no published demu at $demu (dotnet publish samples/Demu/Demu.csproj -c Release -r linux-x64 -o artifacts/demu)"; exit 1; }

# run_timed PATTERN CMD...: "MAXRSS_KB MS_TO_PATTERN EXIT" for one run (MS is -1 when the line never came). GNU time
# measures: Linux carries a process's maximum RSS across exec, so a child forked from python would report python's.
run_timed() {
    python3 - "$out/time.txt" "$@" <<'PY'
import subprocess, sys, time
report, pattern, cmd = sys.argv[1], sys.argv[2].encode(), sys.argv[3:]
start = time.monotonic()
child = subprocess.Popen(["/usr/bin/time", "-f", "%M", "-o", report] + cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
seen = -1.0
for line in child.stdout:
    if seen < 0 and pattern in line:
        seen = (time.monotonic() - start) * 1000
code = child.wait()
print(f"{open(report).read().split()[-1]} {seen:.1f} {code}")
PY
}
# The median of the runs: the maximum RSS moves by a couple of hundred kB from run to run, the start-up time by more.
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "==> demu (NativeAOT) serving one device on the simulated guest: maximum RSS, start-up to 'server enabled'"
: > "$out/demu.txt"
for _ in 1 2 3 4 5; do
    read -r rss ms code < <(run_timed "enabled, event channels bound" "$demu" --device edu)
    [ "$code" = 0 ] || { echo "footprint: demu --device edu exited $code"; exit 1; }
    echo "$rss $ms" >> "$out/demu.txt"
done
demu_rss=$(cut -d' ' -f1 "$out/demu.txt" | median)
demu_ms=$(cut -d' ' -f2 "$out/demu.txt" | median)
echo "demu --device edu: maximum RSS $demu_rss kB (median of 5), server enabled $demu_ms ms after exec"

echo "==> one process serving N devices (benchmarks/IoreqSdk.Footprint, NativeAOT)"
dotnet publish "$here/IoreqSdk.Footprint/IoreqSdk.Footprint.csproj" -c Release -r linux-x64 -o "$out/harness" > "$out/publish.log" 2>&1 \
    || { tail -30 "$out/publish.log"; echo "footprint: the harness did not publish"; exit 1; }
served() {
    local n=$1 line
    for _ in 1 2 3; do
        line=$("$out/harness/footprint" "$n") || { echo "footprint: the harness failed with $n devices" >&2; exit 1; }
        echo "$line" >> "$out/devices.txt"
        awk '{ for (i = 1; i < NF; i++) if ($i == "served_kb") print $(i + 1) }' <<<"$line"
    done | median
}
: > "$out/devices.txt"
one=$(served 1); sixteen=$(served 16); many=$(served 64)
per_device=$(( (many - one) / 63 ))
echo "served RSS (RSS less the simulated guests' RAM): 1 device $one kB, 16 devices $sixteen kB, 64 devices $many kB"
echo "per further device: $per_device kB ((64 devices - 1 device) / 63)"

if [ $update = 1 ]; then
    {
        echo "# benchmarks/footprint.sh --update-baseline, $(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
        echo "demu_max_rss_kb $demu_rss"
        echo "per_device_kb $per_device"
    } > "$baseline"
    echo "baseline written: $baseline"
    exit 0
fi

[ -f "$baseline" ] || { echo "footprint: no baseline ($baseline); run with --update-baseline"; exit 1; }
status=0
check() {
    local name=$1 value=$2 base limit
    base=$(awk -v k="$name" '$1 == k { print $2 }' "$baseline")
    limit=$(( base * 120 / 100 ))
    if [ "$value" -gt "$limit" ]; then
        echo "FAIL $name: $value kB, more than 20% over the baseline's $base kB (limit $limit kB)"; status=1
    else
        echo "ok   $name: $value kB (baseline $base kB, limit $limit kB)"
    fi
}
check demu_max_rss_kb "$demu_rss"
check per_device_kb "$per_device"
exit $status
