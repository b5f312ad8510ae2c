# The virtio checks, shared by both runs' guests and dom0 (busybox sh; copied into each initramfs as /lib/e2e-virtio.sh,
# next to blk-probe, tests/e2e/lib/blk-probe.c). The guest drives the disk with its stock virtio_blk; dom0 checks the
# image file the disk's demu served once the guest is gone. Both sides use the same sizes and pattern ranges below.

VDISK_MIB=32
# The pattern ranges, "seed offset length" a line: each starts inside a 4 KiB page and crosses many (the first ends
# beyond 1 MiB, the last sits in the disk's final MiB), 6 MiB in all.
VDISK_RANGES="1 512 2098176
1 5255680 3145728
1 32502784 1048576"
# Written and flushed (fsync of /dev/vda) last, right before dom0 destroys the guest: it must be in the image anyway.
VDISK_FLUSHED="2 20971520 1052672"
# Rewritten with O_DIRECT without end while dom0 destroys the guest (I/O in flight): its contents are not checked.
VDISK_HAMMERED="3 25165824 2097152"
VDISK_SOFTWARE="software emulation (QEMU TCG under Xen, no hardware virtualization): indicative only"

# ---- guest ------------------------------------------------------------------------------------------------------
# virtio_modules: the stock drivers, in their dependency order (Debian's kernels build them as modules).
virtio_modules() {
    for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_mmio virtio_blk virtio-rng; do
        [ -f /lib/modules/$m.ko ] && insmod /lib/modules/$m.ko
    done
}

# virtio_irqs NAME: the sum of the counts of the /proc/interrupts lines of virtio device NAME (virtio0, virtio0-config,
# virtio0-req.0, ...); virtio_irq_lines NAME: those lines.
virtio_irqs() { awk -v n="$1" '$NF == n || index($NF, n "-") == 1 { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i } END { print s + 0 }' /proc/interrupts; }
virtio_irq_lines() { awk -v n="$1" '$NF == n || index($NF, n "-") == 1' /proc/interrupts | tr -s ' '; }

# wait_vda: /dev/vda appears (virtio_blk probes as the driver binds); sets VBLK to its virtio device's name.
wait_vda() {
    i=0; while [ ! -b /dev/vda ] && [ $i -lt 300 ]; do sleep 0.2; i=$((i + 1)); done
    VBLK=$(basename "$(readlink /sys/block/vda/device 2>/dev/null)")
    [ -b /dev/vda ]
}

# vdisk_pattern OP: blk-probe OP (write or verify) over every pattern range of /dev/vda; prints the ranges that failed.
vdisk_pattern() {
    echo "$VDISK_RANGES" | while read -r seed offset length; do
        blk-probe "$1" /dev/vda "$seed" "$offset" "$length" >/dev/null || echo "$1 failed at $offset+$length;"
    done
}

# vdisk_checks WHAT: virtio_blk's /dev/vda with the image's capacity, the pattern written, synced, caches dropped and
# read back. Sets VBLK, IRQ_BEFORE and IRQ_AFTER (its interrupt counts around the pattern's I/O).
vdisk_checks() {
    wait_vda
    sectors=$(cat /sys/block/vda/size 2>/dev/null)
    [ -b /dev/vda ] && [ "$sectors" = $((VDISK_MIB * 2048)) ]
    check $? "virtio_blk creates /dev/vda ($1, ${VBLK:-no device}) with the image's capacity ($sectors sectors of 512 bytes; the image has $((VDISK_MIB * 2048)))"
    dmesg | grep -E "virtio_blk|vda" | sed 's/^/=== guest: dmesg: /'
    [ -b /dev/vda ] || return 1
    IRQ_BEFORE=$(virtio_irqs $VBLK)
    wrote=$(vdisk_pattern write)
    sync; echo 3 > /proc/sys/vm/drop_caches
    read_back=$(vdisk_pattern verify)
    IRQ_AFTER=$(virtio_irqs $VBLK)
    [ -z "$wrote$read_back" ]
    check $? "a 6 MiB pattern written to /dev/vda at 3 offsets (inside pages, across 4 KiB pages, beyond 1 MiB), synced, caches dropped, reads back equal${wrote:+ $wrote}${read_back:+ $read_back}"
}

# vdisk_reread WHAT: the pattern still reads back (caches dropped first), counting VBLK's interrupts around it.
vdisk_reread() {
    echo 3 > /proc/sys/vm/drop_caches
    IRQ_BEFORE=$(virtio_irqs $VBLK)
    read_back=$(vdisk_pattern verify)
    IRQ_AFTER=$(virtio_irqs $VBLK)
    [ -z "$read_back" ]; check $? "$1: the pattern reads back equal${read_back:+ $read_back}"
}

vdisk_bench() { echo "=== guest: /dev/vda $1, $VDISK_SOFTWARE: $(blk-probe bench /dev/vda 2>&1)"; }

# rng_checks: /dev/hwrng, with virtio_rng the current source, returns the bytes asked for.
rng_checks() {
    current=$(cat /sys/class/misc/hw_random/rng_current 2>/dev/null)
    head -c 4096 /dev/hwrng > /tmp/rng 2>/dev/null
    got=$(wc -c < /tmp/rng); nonzero=$(tr -d '\000' < /tmp/rng | wc -c)
    case "$current" in virtio_rng*) ok=0 ;; *) ok=1 ;; esac
    [ $ok = 0 ] && [ "$got" = 4096 ] && [ "$nonzero" -gt 0 ]
    check $? "/dev/hwrng with ${current:-no rng} current returns the 4096 bytes asked for ($got read, $nonzero non-zero)"
}

# vdisk_flush: the flushed range written and fsynced (a flush request: /sys/block/vda/stat's flush count rises).
vdisk_flush() {
    flushes() { awk '{ print $16 + 0 }' /sys/block/vda/stat; }
    before=$(flushes)
    set -- $VDISK_FLUSHED
    blk-probe write /dev/vda "$1" "$2" "$3" && sync /dev/vda; rc=$?
    after=$(flushes)
    [ $rc = 0 ] && [ "$after" -gt "$before" ]
    check $? "the last range written and fsynced: virtio_blk sends a flush and the device completes it (flushes $before -> $after)"
}

# vdisk_flush_then_hammer FD: vdisk_flush, then O_DIRECT writes without end; "VDISK-FLUSHED" on FD tells dom0 to destroy
# the guest now. Never returns while the writes go on.
vdisk_flush_then_hammer() {
    fd=$1
    vdisk_flush
    set -- $VDISK_HAMMERED
    blk-probe hammer /dev/vda "$1" "$2" "$3" | while read -r _; do echo "VDISK-FLUSHED" >&$fd; echo "=== guest: writing to /dev/vda without end, for dom0 to destroy the guest"; done
}

# ---- dom0 -------------------------------------------------------------------------------------------------------
vdisk_create() { dd if=/dev/zero of="$1" bs=1M count=0 seek=$VDISK_MIB 2>/dev/null; }

# vdisk_image_checks IMAGE [HOW]: once the guest is gone (HOW it went: by default destroyed mid-write), the image file
# holds every pattern range and the flushed one (their hashes against blk-probe gen's).
vdisk_image_checks() {
    bad=
    printf '%s\n%s\n' "$VDISK_RANGES" "$VDISK_FLUSHED" > /tmp/vdisk-ranges
    while read -r seed offset length; do
        have=$(tail -c +$((offset + 1)) "$1" | head -c "$length" | sha256sum | cut -c1-16)
        want=$(blk-probe gen "$seed" "$offset" "$length" | sha256sum | cut -c1-16)
        echo "=== dom0: image $offset+$length: sha256 $have, pattern $want"
        [ "$have" = "$want" ] || bad="$bad $offset+$length"
    done < /tmp/vdisk-ranges
    [ -z "$bad" ]; check $? "the image file in dom0 holds the guest's pattern and its last flushed range, ${2:-though the guest was destroyed mid-write} (sha256 per range)${bad:+; differs:$bad}"
}

# demu_ends NAME PID LOG: a demu notices the guest's end by itself and exits cleanly, its ioreq server destroyed.
demu_ends() {
    (sleep 30; kill $2 2>/dev/null) &
    killer=$!
    wait $2; rc=$?
    kill $killer 2>/dev/null
    [ $rc = 0 ] && grep -q "is gone" $3 && grep -q "ioreq server destroyed" $3
    check $? "the $1 demu sees the guest go and exits cleanly, its ioreq server destroyed (exit code $rc)"
    grep -hE "^demu: .*(stopped|gone)" $3 | sed "s/^/=== dom0: $1: /"
}
