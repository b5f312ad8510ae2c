#!/usr/bin/env bash
# End-to-end: demu on Debian's real Xen 4.17, booted under QEMU's software emulation (no hardware virtualization).
# dom0 runs the Xen toolstack and demu (NativeAOT), each device one more ioreq server next to QEMU for an HVM guest:
# edu, the PCI 16550 and virtio-blk (an image file in dom0) by demu processes of their own, and virtio-rng by demu serve
# (the SDK's xenstore backend service), described in xenstore after xl create -p; virtio over virtio-pci with MSI-X.
# The guest's Linux drives them all with its own drivers, and dom0 checks the image once the guest is gone. Everything
# comes from Debian's registry (apt-get download + dpkg -x, never installed into the host) and is cached between runs.
# Ends with "N passed, N failed".
#
#   tests/e2e/xen/run.sh [path to a published demu]     (default: publishes samples/Demu for linux-x64)
#
# Environment: IOREQSDK_E2E_CACHE (download cache), IOREQSDK_E2E_TIMEOUT (seconds for the Xen boot, default 600),
# IOREQSDK_E2E_BOOT_BUDGET (seconds of boots again after a platform fault, default 2700, below),
# IOREQSDK_E2E_KEEP_LOG (a path: keep the full serial log there when a check fails).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
cache=${IOREQSDK_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ioreqsdk-e2e-xen}
timeout_s=${IOREQSDK_E2E_TIMEOUT:-600}
boot_budget_s=${IOREQSDK_E2E_BOOT_BUDGET:-2700}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
started=$(date +%s)
say() { printf '[e2e %4ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }
fail() { echo "e2e setup failed: $*"; echo "0 passed, 1 failed"; exit 1; }

# ---- host tools and downloads -----------------------------------------------------------------------------------
need=()
for pkg in qemu-system-x86 cpio libxen-dev gcc libc6-dev; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
if [ ${#need[@]} -gt 0 ]; then
    say "apt-get install ${need[*]}"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
        || fail "apt-get install ${need[*]}"
fi

mkdir -p "$cache/debs"
kernel_pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-6/ { print $2; exit }')
[ -n "$kernel_pkg" ] || { apt-get update -qq >/dev/null; kernel_pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-6/ { print $2; exit }'); }
[ -n "$kernel_pkg" ] || fail "no Debian linux-image-6.1 package found"
packages=(xen-hypervisor-4.17-amd64 xen-utils-4.17 xen-utils-common xenstore-utils qemu-system-xen busybox-static "$kernel_pkg")
missing=()
for p in "${packages[@]}"; do ls "$cache/debs/${p}_"*.deb >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    say "apt-get download ${missing[*]}"
    (cd "$cache/debs" && apt-get download "${missing[@]}" >/dev/null 2>&1) \
        || { apt-get update -qq >/dev/null; (cd "$cache/debs" && apt-get download "${missing[@]}" >/dev/null); } || fail "apt-get download"
fi
x="$work/x"
mkdir -p "$x"
for p in "${packages[@]}"; do dpkg -x "$(ls "$cache/debs/${p}_"*.deb | tail -n 1)" "$x"; done
kver=$(ls "$x/lib/modules" | head -n 1)
zcat "$x/boot/xen-4.17-amd64.gz" > "$work/xen.elf"
say "Xen 4.17 and Linux $kver unpacked"

# ---- demu ---------------------------------------------------------------------------------------------------------
demu=${1:-}
if [ -z "$demu" ]; then
    say "publishing demu (NativeAOT)"
    dotnet publish "$repo/samples/Demu/Demu.csproj" -c Release -r linux-x64 -o "$work/demu" >"$work/publish.log" 2>&1 \
        || { tail -20 "$work/publish.log"; fail "dotnet publish demu"; }
    demu="$work/demu/demu"
fi
[ -x "$demu" ] || fail "$demu is not an executable"

# ---- initramfs builders -------------------------------------------------------------------------------------------
# copy_elf ROOT FILE...: the files and every shared library they need (resolved on the host, with the unpacked
# packages' libraries first), at the same paths.
copy_elf() {
    local root=$1; shift
    local libpath="$x/usr/lib/x86_64-linux-gnu:$x/usr/lib/xen-4.17/lib"
    for f in "$@"; do
        LD_LIBRARY_PATH=$libpath ldd "$f" 2>/dev/null | grep -oE '(/[^ ]+)' | while read -r lib; do
            local dest="$root${lib#$x}"
            [ -e "$dest" ] || { mkdir -p "$(dirname "$dest")"; cp -L "$lib" "$dest"; }
        done
    done
}
pack() { (cd "$1" && find . | cpio -o -H newc --quiet | gzip -1) > "$2"; }
modules="$x/lib/modules/$kver/kernel"

# The guest: busybox, uio for edu's interrupt, and its checks as /init.
g="$work/guest"
mkdir -p "$g/bin" "$g/lib/modules" "$g/proc" "$g/sys" "$g/dev"
cp "$x/bin/busybox" "$g/bin/busybox"
cp "$modules/drivers/uio/uio.ko" "$modules/drivers/uio/uio_pci_generic.ko" "$g/lib/modules/"
# The stock virtio drivers (modules in Debian's kernel) and the pattern tool, shared with dom0 (which checks the image).
for m in virtio/virtio_ring virtio/virtio virtio/virtio_pci_modern_dev virtio/virtio_pci_legacy_dev virtio/virtio_pci \
         block/virtio_blk char/hw_random/virtio-rng; do
    cp "$modules/drivers/$m.ko" "$g/lib/modules/" || fail "module $m"
done
gcc -static -O2 -Wall -Wextra -Werror -o "$work/blk-probe" "$here/../lib/blk-probe.c" || fail "compiling blk-probe.c"
cp "$work/blk-probe" "$g/bin/blk-probe"
cp "$here/guest-init.sh" "$g/init"
cp "$here/../lib/guest.sh" "$g/lib/e2e-guest.sh"
cp "$here/../lib/virtio.sh" "$g/lib/e2e-virtio.sh"
pack "$g" "$work/guest.gz"

# dom0: busybox, the Xen kernel modules, the toolstack, QEMU for the guest, demu and the guest's files.
d="$work/dom0"
mkdir -p "$d/bin" "$d/usr/bin" "$d/lib/modules" "$d/guest" "$d/usr/lib/x86_64-linux-gnu" "$d/usr/libexec" "$d/usr/share/qemu" "$d/usr/share/seabios" \
         "$d/proc" "$d/sys" "$d/dev" "$d/run" "$d/tmp" "$d/var/log/xen" "$d/var/lib/xen" "$d/etc/xen" "$d/root"
cp "$x/bin/busybox" "$d/bin/busybox"
for m in xen/xen-privcmd xen/xenfs/xenfs xen/xen-evtchn xen/xen-gntdev xen/xen-gntalloc; do
    cp "$modules/drivers/$m.ko" "$d/lib/modules/" || fail "module $m"
done
cp -a "$x/usr/lib/xen-4.17" "$d/usr/lib/"
cp -a "$x/etc/xen/." "$d/etc/xen/" 2>/dev/null
cp "$x/usr/libexec/xen-qemu-system-i386" "$d/usr/libexec/"
cp /usr/share/seabios/bios-256k.bin "$d/usr/share/seabios/"
cp -a /usr/share/qemu/keymaps /usr/share/qemu/kvmvapic.bin /usr/share/qemu/linuxboot*.bin "$d/usr/share/qemu/" 2>/dev/null
cp "$demu" "$d/usr/bin/demu"
cp -a "$x"/usr/bin/xenstore "$x"/usr/bin/xenstore-* "$d/usr/bin/"   # xenstore-read: dom0 polls the service's state key
copy_elf "$d" "$d"/usr/lib/xen-4.17/bin/{xl,xenstored,xen-init-dom0,xenconsoled} "$d/usr/libexec/xen-qemu-system-i386" "$d/usr/bin/demu" "$d/usr/bin/xenstore" \
    /usr/lib/x86_64-linux-gnu/libxendevicemodel.so.1 /usr/lib/x86_64-linux-gnu/libxenevtchn.so.1 /usr/lib/x86_64-linux-gnu/libxenforeignmemory.so.1
# demu loads Xen's libraries at run time (not in its ELF needs; libxenstore for demu serve and describe); xl needs
# libgcc_s for pthread_cancel.
for lib in libxendevicemodel.so.1 libxenevtchn.so.1 libxenforeignmemory.so.1 libxenstore.so.4 libgcc_s.so.1; do
    cp -L "/usr/lib/x86_64-linux-gnu/$lib" "$d/usr/lib/x86_64-linux-gnu/" 2>/dev/null || cp -L "/lib/x86_64-linux-gnu/$lib" "$d/usr/lib/x86_64-linux-gnu/"
done
cp "$x/boot/vmlinuz-$kver" "$d/guest/vmlinuz"
cp "$work/guest.gz" "$d/guest/initrd.gz"
cp "$here/hvm.cfg" "$d/guest/hvm.cfg"
cp "$here/dom0-init.sh" "$d/init"
mkdir -p "$d/lib" && cp "$here/../lib/dom0.sh" "$d/lib/e2e-dom0.sh"
cp "$here/../lib/virtio.sh" "$d/lib/e2e-virtio.sh"
cp "$work/blk-probe" "$d/usr/bin/blk-probe"
pack "$d" "$work/dom0.gz"
say "initramfs: dom0 $(du -h "$work/dom0.gz" | cut -f1), guest $(du -h "$work/guest.gz" | cut -f1)"

# ---- boot ---------------------------------------------------------------------------------------------------------
# The recipe's QEMU workarounds: -smap (TCG's SMAP vs a PV dom0), -rdtscp (TCG's RDTSCP intercept breaks HVM guests),
# -cpu max rather than a model with MONITOR/MWAIT, which TCG lacks. And -avx,-avx2: TCG's AVX emulation is new in
# QEMU 7.2, and glibc picks its AVX2 string functions when the CPU has it (dom0's busybox faults at its first
# thread-local read, as if the thread-local image it copied at start were wrong: a suspicion, not proven). On
# 2 December, on an Intel host of this kind, 11 boots in a row faulted outside demu with AVX and 3 of 5 passed every
# check without it (on the AMD host of 1 December, hiding AVX had not visibly helped: faults remain, fewer; the boots
# again below still retry them).
# -smp 3 with dom0_max_vcpus=2 dom0_vcpus_pin, and the guest's cpus = "2" (hvm.cfg): dom0's two vCPUs stay on
# physical CPUs 0 and 1 and the HVM guest's one vCPU alone on CPU 2, so no emulated CPU ever switches between the PV
# dom0 and the HVM guest. The processes' corruption below came with such switches: on 3 December, on an Intel host of
# this kind, unpinned boots kept faulting (a guest segfault in the day's first) and pinned ones passed (see
# docs/real-xen.md for the counts). The boots again below stay as the net for what pinning does not catch.
log="$work/serial.log"
expected=38   # 16 dom0 checks + 22 guest checks; fewer lines means a stage never ran
boot() {
    say "booting Xen under QEMU (TCG), at most ${timeout_s}s"
    boot_started=$(date +%s)
    timeout "$timeout_s" qemu-system-x86_64 -machine q35 -accel tcg -cpu max,-smap,-rdtscp,-avx,-avx2 -m 2048 -smp 3 \
        -nographic -monitor none -serial stdio -no-reboot \
        -kernel "$work/xen.elf" \
        -append "console=com1 com1=115200 dom0_mem=1024M,max:1024M loglvl=all guest_loglvl=all smap=0 dom0_max_vcpus=2 dom0_vcpus_pin" \
        -initrd "$x/boot/vmlinuz-$kver console=hvc0 earlyprintk=xen quiet,$work/dom0.gz" </dev/null >"$log" 2>&1
    qemu_rc=$?
    say "QEMU exited ($qemu_rc)"
    # The serial log can hold a stray NUL or a torn byte (a process's output cut by a fault, QEMU's own): grep would
    # then call the whole log binary and print "binary file matches" on stderr instead of the lines, so the fault
    # below went unseen and no boot again started (CI's run of 2 December). -a reads it as text, as it is.
    tr -d '\r\000' < "$log" > "$log.txt"
    passed=$(grep -ac "=== E2E: PASS" "$log.txt")
    failed=$(grep -ac "=== E2E: FAIL" "$log.txt")
    took=$(( $(date +%s) - boot_started ))
    if [ "$took" -gt "$longest" ]; then longest=$took; fi
}
longest=0
boot
first_boot=$boot_started

# Boots again when the emulated machine itself broke a process: the guest's kernel or firmware (a triple
# fault: this guest only ever powers off), a program in the guest, or a dom0 program that is not demu (xl, busybox,
# the dynamic loader). Under QEMU's TCG this nested setup (Xen's HVM inside software emulation, a PV dom0) corrupts
# processes' state at random. On 1 December 2026, on a quiet machine of this kind, 13 of 20 boots failed, 12 with
# such a fault: with the previous stop's demu as with this one's, virtio-blk's zero copy on or off, one vCPU or two,
# AVX, FSGSBASE or PCID hidden from the CPU, the guest's RAM in a memfd. dom0's busybox tools crashed at the same
# thread-local read (mov %fs:-0x90, then through it), xl in ld.so or libc, the guest's kernel triple-faulted while
# its devices were idle; the 13th was glibc aborting on a corrupted heap in a demu that served only edu's registers.
# A control boot with no demu at all (each one a stand-in that sleeps) faulted the same way — xl in libc, busybox at
# that read — from the moment the HVM guest ran (none in the four minutes before its unpause): the machine, not the
# SDK. A device that broke the guest would do so on every boot, and the last would fail the same way; a demu's own
# crash is never a reason to boot again. Every boot's fault and failed checks are printed. That evening a CI run's four
# boots all faulted so (busybox at that read, then a guest segfault), and the bound went from three boots more to six.
# On 2 December, on an Intel host of this kind, 11 boots in a row faulted so (CI runs of 1, 7 and 1 boots, lab boots
# with QEMU's TCG on one thread, with Xen's ASIDs off), and with AVX hidden (above) 2 of 5 still did: so the boots
# again are bounded by time, not by a count. Another boot starts only while the boots so far and one more as long as
# the longest fit in IOREQSDK_E2E_BOOT_BUDGET (45 minutes by default; .ci/run's other steps take about 10, its bound
# is 90). Only a boot that passes every check counts.
platform_fault() {
    # dom0's faults by the kernel's lines, and only those of the toolstack's and busybox's processes: the line names
    # the faulting thread, and a demu's threads have names of their own (.NET's, the server's), so "not demu" would
    # not do. The guest's by its own lines.
    grep -aE "d1v0 Triple fault|^\[guest\].*(Segmentation fault|Attempted to kill init)|[ :](exe|busybox|sh|xl|top|grep|sed|awk|cat|sleep|xenstore[a-z-]*|xenstored|xenconsoled|xen-qemu-system[a-z0-9_-]*)\[[0-9]+\]:? (segfault at|general protection)" \
        "$log.txt" | head -n 1
}
boots=1
while [ "$failed" != 0 ] || [ "$passed" -lt $expected ]; do
    fault=$(platform_fault)
    [ -n "$fault" ] || break
    echo "----- boot $boots: $passed of $expected checks passed, $failed failed; the emulated machine faulted outside demu: $fault"
    grep -a "=== E2E: FAIL" "$log.txt" | sed "s/^/----- boot $boots: /"
    spent=$(( $(date +%s) - first_boot ))
    if [ $(( spent + longest )) -gt "$boot_budget_s" ]; then
        echo "----- no boot $((boots + 1)): $spent s of boots so far and one more as long as the longest (${longest} s) would pass the ${boot_budget_s} s budget"
        break
    fi
    boots=$((boots + 1))
    boot
done

# ---- results ------------------------------------------------------------------------------------------------------
# shellcheck source=../lib/results.sh
. "$here/../lib/results.sh"
say "finished"
e2e_results "$log.txt" "$expected" "$qemu_rc" "$timeout_s"
