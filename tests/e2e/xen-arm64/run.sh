#!/usr/bin/env bash
# End-to-end on Arm64: demu on real Xen 4.17 for Arm, booted under qemu-system-aarch64's software emulation. Debian's
# arm64 hypervisor is built without CONFIG_IOREQ_SERVER, so this run builds the hypervisor from Debian's own source
# package (the same version as the tools) with it switched on, and caches the result. dom0 runs Debian's arm64 Xen
# tools and NativeAOT demu processes for linux-arm64: `demu serve`, the SDK's xenstore backend service, started before
# any guest, serves every virtio disk libxl describes over virtio-mmio (virtio-blk, image files in dom0); three more
# demu serve one PCI function each behind its own ECAM host bridge, which the first guest learns of from a partial
# device tree made by demu itself (edu, the PCI 16550, virtio-rng over virtio-pci with INTx). A second guest has only a
# toolstack disk and is created without -p: libxl waits for the service's InitWait. The guests' stock Linux drivers
# use them: pci-host-generic, 8250_pci (through an I/O BAR in the PIO aperture), uio_pci_generic, virtio_pci,
# virtio_mmio, virtio_blk, virtio-rng. Nothing arm64 is installed on the host: its packages are downloaded and
# unpacked. Ends with "N passed, N failed".
#
#   tests/e2e/xen-arm64/run.sh [path to a demu published for linux-arm64]   (default: publishes samples/Demu)
#
# Environment: IOREQSDK_E2E_CACHE (download and build cache), IOREQSDK_E2E_TIMEOUT (seconds for the boot, default 420),
# IOREQSDK_E2E_KEEP_LOG (a path: keep the full serial log there when a check fails).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
cache=${IOREQSDK_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ioreqsdk-e2e-xen-arm64}
timeout_s=${IOREQSDK_E2E_TIMEOUT:-420}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
started=$(date +%s)
say() { printf '[e2e-arm64 %4ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }
fail() { echo "e2e setup failed: $*"; echo "0 passed, 1 failed"; exit 1; }
export DEBIAN_FRONTEND=noninteractive

# ---- host tools ---------------------------------------------------------------------------------------------------
# The cross compiler builds the hypervisor, the guest's DMA probe and demu's native link; qemu-user runs the arm64
# demu on the host (its own simulated run, and the device-tree nodes); dtc compiles the partial device tree.
need=()
for pkg in qemu-system-arm qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross device-tree-compiler cpio flex bison bc make python3 perl xz-utils; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    say "apt-get install ${need[*]}"
    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
        || fail "apt-get install ${need[*]}"
fi
if ! grep -qx arm64 <<<"$(dpkg --print-foreign-architectures)"; then   # no "producer | grep -q" under pipefail
    say "dpkg --add-architecture arm64 (package lists only: nothing arm64 is installed)"
    dpkg --add-architecture arm64 && apt-get update -qq >/dev/null || fail "adding the arm64 package lists"
fi

# ---- the Xen version: bookworm main's, for tools and hypervisor alike ----------------------------------------------
# The tools come as Debian's arm64 binaries and the hypervisor is built from the source of the same version (the
# lab's proven pairing; bookworm-security's newer tools are not mixed with it).
xen_version() { apt-cache madison xen-utils-4.17 2>/dev/null | awk -F'|' '$3 ~ /bookworm\/main/ { gsub(/ /, "", $2); print $2; exit }'; }
xv=$(xen_version)
[ -n "$xv" ] || { apt-get update -qq >/dev/null; xv=$(xen_version); }
[ -n "$xv" ] || fail "no xen-utils-4.17 in bookworm main"

# ---- the hypervisor, built from Debian's source with IOREQ ---------------------------------------------------------
config=$'CONFIG_DEBUG=n\nCONFIG_EXPERT=y\nCONFIG_IOREQ_SERVER=y'
key=$(printf '%s\n%s\n' "$xv" "$config" | sha256sum | cut -c1-16)
xen_image="$cache/xen-$key/xen"
if [ ! -s "$xen_image" ]; then
    # A private deb-src list (the system's own mirror) in the cache: the host's apt configuration is left alone.
    src="$cache/apt-src"
    mkdir -p "$src/sources" "$src/lists/partial" "$cache/source"
    uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null)
    [ -n "$uri" ] || uri=$(awk '/^deb / { print $2; exit }' /etc/apt/sources.list 2>/dev/null)
    [ -n "$uri" ] || fail "no Debian mirror in the apt configuration"
    printf 'Types: deb-src\nURIs: %s\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" > "$src/sources/xen-src.sources"
    apt_src=(-o "Dir::Etc::SourceParts=$src/sources" -o Dir::Etc::SourceList=/dev/null -o "Dir::State::Lists=$src/lists")
    orig="$cache/source/xen_${xv%-*}.orig.tar.xz"
    if [ ! -s "$orig" ]; then
        say "apt-get source --download-only xen=$xv"
        apt-get "${apt_src[@]}" update -qq >/dev/null 2>&1 || fail "updating the private deb-src list"
        (cd "$cache/source" && apt-get "${apt_src[@]}" source --download-only -qq "xen=$xv" >/dev/null 2>&1) || fail "apt-get source xen=$xv"
    fi
    say "building Xen $xv for arm64 with CONFIG_IOREQ_SERVER=y"
    tree="$work/xen-src"
    mkdir -p "$tree" && tar xf "$orig" -C "$tree" --strip-components=1 || fail "unpacking $orig"
    printf '%s\n' "$config" > "$tree/xen/.config"
    make -C "$tree/xen" XEN_TARGET_ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- olddefconfig >"$work/xen-build.log" 2>&1 \
        && grep -qx CONFIG_IOREQ_SERVER=y "$tree/xen/.config" \
        && make -C "$tree/xen" XEN_TARGET_ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- -j"$(nproc)" >>"$work/xen-build.log" 2>&1 \
        || { tail -30 "$work/xen-build.log"; fail "building the hypervisor"; }
    mkdir -p "$(dirname "$xen_image")" && cp "$tree/xen/xen" "$xen_image.tmp" && mv "$xen_image.tmp" "$xen_image"
    rm -rf "$tree"
fi
say "hypervisor: Xen $xv with IOREQ ($(du -h "$xen_image" | cut -f1), cached)"

# ---- arm64 packages: downloaded and unpacked, never installed -----------------------------------------------------
kernel_pkg=$(apt-cache depends linux-image-arm64:arm64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { sub(/:arm64$/, "", $2); print $2; exit }')
[ -n "$kernel_pkg" ] || fail "no Debian arm64 linux-image-6.1 package found"
packages=("$kernel_pkg" busybox-static libc6 libyajl2 zlib1g liblzma5 libzstd1 libuuid1 libgcc-s1 libfdt1)
xen_packages=(xen-utils-4.17 xen-utils-common xenstore-utils libxenmisc4.17 libxenstore4 libxencall1 libxendevicemodel1
              libxenevtchn1 libxenforeignmemory1 libxengnttab1 libxenhypfs1 libxentoolcore1 libxentoollog1)
mkdir -p "$cache/debs"
missing=()
for p in "${packages[@]}"; do ls "$cache/debs/${p}_"*_arm64.deb >/dev/null 2>&1 || missing+=("$p:arm64"); done
for p in "${xen_packages[@]}"; do ls "$cache/debs/${p}_${xv//:/%3a}_arm64.deb" >/dev/null 2>&1 || missing+=("$p:arm64=$xv"); done
if [ ${#missing[@]} -gt 0 ]; then
    say "apt-get download ${#missing[@]} arm64 packages"
    (cd "$cache/debs" && apt-get download -qq "${missing[@]}" >/dev/null 2>&1) \
        || { apt-get update -qq >/dev/null; (cd "$cache/debs" && apt-get download -qq "${missing[@]}" >/dev/null); } || fail "apt-get download"
fi
x="$work/x"
mkdir -p "$x"
for p in "${packages[@]}"; do dpkg -x "$(ls "$cache/debs/${p}_"*_arm64.deb | tail -n 1)" "$x"; done
for p in "${xen_packages[@]}"; do dpkg -x "$cache/debs/${p}_${xv//:/%3a}_arm64.deb" "$x"; done
kver=$(ls "$x/lib/modules" | head -n 1)
[ -f "$x/boot/vmlinuz-$kver" ] || fail "no arm64 kernel image in $kernel_pkg"
say "arm64 Xen tools $xv and Linux $kver unpacked"

# ---- demu for linux-arm64 -----------------------------------------------------------------------------------------
demu=${1:-}
if [ -z "$demu" ]; then
    say "publishing demu for linux-arm64 (NativeAOT, cross-linked)"
    dotnet publish "$repo/samples/Demu/Demu.csproj" -c Release -r linux-arm64 -o "$work/demu" >"$work/publish.log" 2>&1 \
        || { tail -20 "$work/publish.log"; fail "dotnet publish demu -r linux-arm64"; }
    demu="$work/demu/demu"
fi
[ -x "$demu" ] || fail "$demu is not an executable"
demu_host() { qemu-aarch64 -L "$x" "$demu" "$@"; }

# Host-side checks, counted with the guest's: the arm64 binary runs its own simulated Arm64 guest under qemu-user.
host_checks="$work/host-checks.txt"
: > "$host_checks"
check() { if [ "$1" = 0 ]; then echo "=== E2E: PASS $2"; else echo "=== E2E: FAIL $2"; fi >> "$host_checks"; }
sim=$(demu_host --device serial --platform arm64 2>&1)
grep -q "6 passed, 0 failed" <<<"$sim"; check $? "the linux-arm64 demu passes its simulated Arm64 serial run under qemu-user ($(grep -oE '[0-9]+ passed, [0-9]+ failed' <<<"$sim" | tail -n 1))"

# ---- the guest's partial device tree: the two bridges' nodes, as demu describes them -------------------------------
# shellcheck source=bridges.sh
. "$here/bridges.sh"
# shellcheck disable=SC2086
{ demu_host $EDU_ARGS --device-tree && demu_host $SERIAL_ARGS --device-tree && demu_host $VIRTIO_PCI_ARGS --device-tree; } > "$work/bridges.dtsi" || fail "demu --device-tree"
{
    echo '/dts-v1/;'
    echo '/* Made by tests/e2e/xen-arm64/run.sh from demu --device-tree: libxl copies /passthrough into the guest. */'
    echo '/ {'
    echo '	#address-cells = <2>;'
    echo '	#size-cells = <2>;'
    echo '	passthrough {'
    echo '		compatible = "simple-bus";'
    echo '		ranges;'
    echo '		#address-cells = <2>;'
    echo '		#size-cells = <2>;'
    sed 's/^/		/' "$work/bridges.dtsi"
    echo '	};'
    echo '};'
} > "$work/pci.dts"
dtc -q -I dts -O dtb -o "$work/pci.dtb" "$work/pci.dts" || { cat "$work/pci.dts"; fail "dtc"; }
[ "$(grep -c 'compatible = "pci-host-ecam-generic"' "$work/pci.dts")" = 3 ]; check $? "demu --device-tree describes all three host bridges; dtc compiles the partial device tree ($(stat -c %s "$work/pci.dtb") bytes)"

# ---- initramfs images ---------------------------------------------------------------------------------------------
pack() { (cd "$1" && find . | cpio -o -H newc --quiet | gzip -1) > "$2"; }
modules="$x/lib/modules/$kver/kernel"

# The guest: busybox, uio for edu's interrupt, the DMA probe, and its checks as /init.
g="$work/guest"
mkdir -p "$g/bin" "$g/lib/modules" "$g/proc" "$g/sys" "$g/dev" "$g/tmp"
cp "$x/bin/busybox" "$g/bin/busybox"
cp "$modules/drivers/uio/uio.ko" "$modules/drivers/uio/uio_pci_generic.ko" "$g/lib/modules/"
# The stock virtio drivers this kernel builds as modules (virtio and virtio_ring are built in on arm64), and the
# pattern tool, shared with dom0 (which checks the image).
for m in virtio/virtio_pci_modern_dev virtio/virtio_pci_legacy_dev virtio/virtio_pci virtio/virtio_mmio block/virtio_blk char/hw_random/virtio-rng; do
    cp "$modules/drivers/$m.ko" "$g/lib/modules/" || fail "module $m"
done
aarch64-linux-gnu-gcc -static -O2 -Wall -Wextra -Werror -o "$g/bin/edu-dma" "$here/edu-dma.c" || fail "compiling edu-dma.c"
aarch64-linux-gnu-gcc -static -O2 -Wall -Wextra -Werror -o "$work/blk-probe" "$here/../lib/blk-probe.c" || fail "compiling blk-probe.c"
cp "$work/blk-probe" "$g/bin/blk-probe"
cp "$here/guest-init.sh" "$g/init"
cp "$here/disk-guest-init.sh" "$g/disk-init"
cp "$here/../lib/guest.sh" "$g/lib/e2e-guest.sh"
cp "$here/../lib/virtio.sh" "$g/lib/e2e-virtio.sh"
cp "$here/bridges.sh" "$g/lib/bridges.sh"
chmod +x "$g/init" "$g/disk-init"
pack "$g" "$work/guest.gz"

# dom0: the unpacked tools and libraries (no usrmerge: both lib trees), busybox, the Xen modules, demu, the guest.
d="$work/dom0"
mkdir -p "$d"/{bin,sbin,proc,sys,dev,run,tmp,root,lib/modules,guest,var/log/xen,var/lib/xen,var/run,etc,usr/bin}
cp -a "$x/usr" "$d/"; cp -a "$x/lib/." "$d/lib/"; cp -a "$x/etc/." "$d/etc/"
[ -d "$x/var" ] && cp -a "$x/var/." "$d/var/"
rm -rf "$d/lib/modules/$kver" "$d"/usr/lib/linux-image-* "$d/usr/lib/aarch64-linux-gnu/gconv" "$d"/usr/share/{doc,man,locale} "$d/usr/include"
find "$d" -name '*.a' -delete
cp "$x/bin/busybox" "$d/bin/busybox"
for m in xen-privcmd xenfs/xenfs xen-evtchn xen-gntdev xen-gntalloc; do
    cp "$modules/drivers/xen/$m.ko" "$d/lib/modules/" || fail "module $m"
done
cp "$demu" "$d/usr/bin/demu"
cp "$x/boot/vmlinuz-$kver" "$d/guest/Image"
cp "$work/guest.gz" "$d/guest/initrd.gz"
cp "$work/pci.dtb" "$d/guest/pci.dtb"
cp "$here/guest.cfg" "$here/disk-guest.cfg" "$here/bridges.sh" "$d/guest/"
cp "$here/dom0-init.sh" "$d/init"
cp "$here/../lib/dom0.sh" "$d/lib/e2e-dom0.sh"
cp "$here/../lib/virtio.sh" "$d/lib/e2e-virtio.sh"
cp "$work/blk-probe" "$d/usr/bin/blk-probe"
chmod +x "$d/init"
pack "$d" "$work/dom0.gz"
say "initramfs: dom0 $(du -h "$work/dom0.gz" | cut -f1), guest $(du -h "$work/guest.gz" | cut -f1)"

# ---- boot ---------------------------------------------------------------------------------------------------------
# QEMU's guest-loader devices write the /chosen multiboot nodes Xen reads: no bootloader. Modules sit clear of Xen
# (loaded at the start of RAM) and of the DTB QEMU builds.
log="$work/serial.log"
expected=51   # 2 host + 21 dom0 + 23 first-guest + 5 second-guest checks; fewer lines means a stage never ran
say "booting Xen under qemu-system-aarch64 (TCG), at most ${timeout_s}s"
timeout "$timeout_s" qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu cortex-a57 -smp 2 -m 2G -accel tcg \
    -nographic -monitor none -serial stdio -no-reboot \
    -kernel "$xen_image" \
    -append "console=dtuart dom0_mem=1024M loglvl=all guest_loglvl=all" \
    -device guest-loader,addr=0x50000000,kernel="$x/boot/vmlinuz-$kver",bootargs="console=hvc0 earlycon=xenboot quiet" \
    -device guest-loader,addr=0x58000000,initrd="$work/dom0.gz" </dev/null >"$log" 2>&1
qemu_rc=$?
say "QEMU exited ($qemu_rc)"
tr -d '\r\000' < "$log" > "$log.txt"   # a stray NUL would make grep call the log binary (results.sh reads it with -a too)
cat "$host_checks" >> "$log.txt"

# ---- results ------------------------------------------------------------------------------------------------------
# shellcheck source=../lib/results.sh
. "$here/../lib/results.sh"
say "finished"
e2e_results "$log.txt" "$expected" "$qemu_rc" "$timeout_s"
