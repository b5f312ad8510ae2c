#!/bin/busybox sh
# The HVM guest's /init: find both demu devices as Linux enumerated them, drive the 16550A through the in-kernel
# 8250_pci driver and edu through /dev/mem and uio_pci_generic, and print one "=== E2E: PASS|FAIL" line per check.
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev; mkdir -p /tmp
. /lib/e2e-guest.sh   # check, find_dev, irq_count, serial_link, ask_dom0_to_stop_edu (tests/e2e/lib/guest.sh)
. /lib/e2e-virtio.sh  # virtio_modules, vdisk_checks, rng_checks, vdisk_flush_then_hammer (tests/e2e/lib/virtio.sh)

echo "=== guest: /init at $(cut -d' ' -f1 /proc/uptime)s"
for d in /sys/bus/pci/devices/*; do echo "=== guest: $(basename $d) $(cat $d/vendor):$(cat $d/device) class $(cat $d/class) irq $(cat $d/irq)"; done

# ---- serial: 1b36:0002, bound by 8250_pci -------------------------------------------------------------------
S=$(find_dev 0x1b36 0x0002)
[ -n "$S" ]; check $? "guest enumerates the serial device 1b36:0002 ($(basename "$S"))"
SBAR=$(head -1 $S/resource 2>/dev/null | cut -d' ' -f1)
[ -n "$S" ] && [ $((SBAR)) -ne 0 ]; check $? "hvmloader assigned the serial device's I/O BAR ($SBAR)"
serial_link "$S"

# ---- edu: 1234:11e8, through /dev/mem --------------------------------------------------------------------------
E=$(find_dev 0x1234 0x11e8)
[ -n "$E" ]; check $? "guest enumerates the edu device 1234:11e8 ($(basename "$E"))"
EBAR=$(head -1 $E/resource 2>/dev/null | cut -d' ' -f1)
[ -n "$E" ] && [ $((EBAR)) -ne 0 ]; check $? "hvmloader assigned edu's BAR0 ($EBAR)"
if [ -n "$E" ] && [ $((EBAR)) -ne 0 ]; then
    at() { printf '0x%x' $((EBAR + $1)); }
    edu_registers

    # DMA both ways through demu's guest-memory mapping: 64 bytes of the BIOS area (e820-reserved, so /dev/mem shows
    # its real contents) into edu's buffer, then out again 4 KiB further on; the two areas must then read the same.
    dma() { devmem $(at 0x80) 64 $1; devmem $(at 0x88) 64 $2; devmem $(at 0x90) 64 64; devmem $(at 0x98) 64 $3
            i=0; while [ $(( $(devmem $(at 0x98) 64) & 1 )) -ne 0 ] && [ $i -lt 100 ]; do i=$((i + 1)); done; }
    dma 0xf0000 0x40000 1
    dma 0x40000 0xf1000 3
    same=0; nonzero=0
    for off in 0 8 16 24 32 40 48 56; do
        a=$(devmem $((0xf0000 + off)) 64); b=$(devmem $((0xf1000 + off)) 64)
        [ "$a" = "$b" ] && same=$((same + 1)); [ "$a" != 0x0000000000000000 ] && nonzero=$((nonzero + 1))
    done
    [ $same = 8 ] && [ $nonzero -gt 0 ]; check $? "edu DMA copies guest memory both ways (0xf0000 -> buffer -> 0xf1000: $same/8 words equal)"

    # An interrupt, counted by the kernel: uio_pci_generic requests edu's INTx (and masks it with the command
    # register's INTx-disable bit in its handler), so a raise at +0x60 must show in /proc/interrupts.
    insmod /lib/modules/uio.ko; insmod /lib/modules/uio_pci_generic.ko
    echo "1234 11e8" > /sys/bus/pci/drivers/uio_pci_generic/new_id
    EIRQ=$(cat $E/irq)
    [ "$(basename "$(readlink $E/driver 2>/dev/null)")" = uio_pci_generic ]; check $? "uio_pci_generic binds edu (INTx masking through the command register works)"
    before=$(irq_count $EIRQ)
    devmem $(at 0x60) 32 0x1; sleep 1
    after=$(irq_count $EIRQ)
    status=$(devmem $(at 0x24) 32)
    [ -n "$before" ] && [ -n "$after" ] && [ "$after" -gt "$before" ]; check $? "edu's interrupt is counted after a raise (irq $EIRQ: $before -> $after, status $status)"
    grep -E "^ *$EIRQ:" /proc/interrupts | sed 's/^/=== guest: /'
    devmem $(at 0x64) 32 0x1

    # dom0 sends edu's demu SIGTERM while this guest runs: its ioreq server must be destroyed, so the next access no
    # longer reaches it — QEMU, ioreq server 0, answers unclaimed memory with all-ones — and this vCPU runs on.
    if [ -n "$CAT" ]; then
        ask_dom0_to_stop_edu; asked=$?
        gone=$(devmem $(at 0) 32)
        [ $asked = 0 ] && [ "$gone" = 0xFFFFFFFF ]
        check $? "after SIGTERM to edu's demu, the guest's next access reaches no demu (reads ${gone:-nothing}) and the guest runs on"
    fi
fi

# ---- virtio over virtio-pci: blk (1af4:1042, an image file in dom0) and rng (1af4:1044), by the stock drivers ---------
virtio_modules
VB=$(find_dev 0x1af4 0x1042); VR=$(find_dev 0x1af4 0x1044)
blk_driver=$(basename "$(readlink $VB/driver 2>/dev/null)"); rng_driver=$(basename "$(readlink $VR/driver 2>/dev/null)")
[ -n "$VB" ] && [ -n "$VR" ] && [ "$blk_driver" = virtio-pci ] && [ "$rng_driver" = virtio-pci ]
check $? "virtio_pci binds both virtio functions (blk ${VB##*/} -> ${blk_driver:-none}, rng ${VR##*/} -> ${rng_driver:-none})"
if [ -n "$VB" ] && vdisk_checks "virtio-pci, MSI-X"; then
    # MSI-X: vectors in msi_irqs and the queue's /proc/interrupts lines of an MSI-X chip (PCI-MSIX natively, xen-pirq's
    # msi-x when Linux routes them through Xen's event channels), their counts rising with the pattern's I/O.
    vectors=$(ls $VB/msi_irqs 2>/dev/null | wc -l)
    lines=$(virtio_irq_lines $VBLK | tr '\n' ';')
    [ "$vectors" -gt 0 ] && echo "$lines" | grep -qiE "msi-?x" && [ "$IRQ_AFTER" -gt "$IRQ_BEFORE" ]
    check $? "virtio-blk's interrupts arrive as MSI-X ($vectors vectors; $IRQ_BEFORE -> $IRQ_AFTER with the pattern's I/O; $lines)"
    vdisk_bench "over virtio-pci with MSI-X"

    # INTx: MSI and MSI-X refused for the function's next driver (msi_bus 0), virtio_pci bound again (a device reset
    # and a new negotiation), the same pattern read back through the legacy interrupt.
    bdf=${VB##*/}
    echo $bdf > /sys/bus/pci/drivers/virtio-pci/unbind; echo 0 > $VB/msi_bus; echo $bdf > /sys/bus/pci/drivers/virtio-pci/bind
    if wait_vda; then
        vdisk_reread "virtio-blk with MSI-X off (msi_bus 0, virtio_pci bound again)"
        lines=$(virtio_irq_lines $VBLK | tr '\n' ';')
        [ -n "$lines" ] && ! echo "$lines" | grep -qi msi && [ "$IRQ_AFTER" -gt "$IRQ_BEFORE" ]
        check $? "with MSI-X off, virtio-blk's interrupts arrive as INTx (irq $(cat $VB/irq): $IRQ_BEFORE -> $IRQ_AFTER; $lines)"
    else
        check 1 "virtio_blk creates /dev/vda again with MSI-X off"
    fi
fi
[ -n "$VR" ] && rng_checks

echo "=== guest: done at $(cut -d' ' -f1 /proc/uptime)s"
# Last, the flush: the guest writes a range, fsyncs /dev/vda, tells dom0 over the serial link and writes on without end;
# dom0 destroys it there and then, and finds the flushed range in the image file.
if [ -b /dev/vda ] && [ -n "$CAT" ]; then
    vdisk_flush_then_hammer 4
fi
serial_close
poweroff -f
