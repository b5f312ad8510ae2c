#!/bin/busybox sh
# The Arm64 guest's /init: find both demu host bridges and their functions as Linux enumerated them, drive the 16550A
# through the in-kernel 8250_pci driver (its I/O BAR lives in a bridge's PIO aperture) and edu through /dev/mem, a DMA
# probe and uio_pci_generic, then ask dom0 to stop edu's demu and check that the device is gone. Prints one
# "=== E2E: PASS|FAIL" line per check on the console (hvc0).
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev; mkdir -p /tmp
. /lib/e2e-guest.sh   # check, find_dev, irq_count, serial_link, ask_dom0_to_stop_edu (tests/e2e/lib/guest.sh)
. /lib/e2e-virtio.sh  # virtio_modules, vdisk_checks, rng_checks, vdisk_flush_then_hammer (tests/e2e/lib/virtio.sh)
. /lib/bridges.sh     # VIRTIO_MMIO_SPI, VIRTIO_UNPROBED_SLOTS (and the bridges' layout)

echo "=== guest: /init at $(cut -d' ' -f1 /proc/uptime)s, Linux $(uname -r)"
dmesg | grep -E "pci-host-generic|pci 000[01]:|PCI host bridge|pci_bus 000[01]" | sed 's/^/=== guest: dmesg: /'
for d in /sys/bus/pci/devices/*; do echo "=== guest: $(basename $d) $(cat $d/vendor):$(cat $d/device) class $(cat $d/class) resource0 $(head -1 $d/resource)"; done
bridges=$(dmesg | grep -c "pci-host-generic.*ECAM at")
[ "$bridges" = 3 ]; check $? "pci-host-generic finds all three SDK host bridges ($bridges ECAM windows)"

# ---- serial: 1b36:0002 behind bridge 0001, bound by 8250_pci through its I/O BAR ---------------------------------
S=$(find_dev 0x1b36 0x0002)
[ -n "$S" ]; check $? "guest enumerates the serial device 1b36:0002 ($(basename "$S"))"
read -r sstart send sflags < "$S/resource" 2>/dev/null
# IORESOURCE_IO (0x100): Linux placed BAR0 in the bridge's I/O window, which the device tree maps onto the PIO aperture.
[ -n "$S" ] && [ $((sstart)) -ne 0 ] && [ $(( sflags & 0x100 )) -ne 0 ]; check $? "Linux assigned the serial device's I/O BAR (ports $sstart-$send, flags $sflags)"
serial_link "$S"

# ---- edu: 1234:11e8 behind bridge 0000 ---------------------------------------------------------------------------
E=$(find_dev 0x1234 0x11e8)
[ -n "$E" ]; check $? "guest enumerates the edu device 1234:11e8 ($(basename "$E"))"
read -r estart eend eflags < "$E/resource" 2>/dev/null
[ -n "$E" ] && [ $((estart)) -ne 0 ] && [ $(( eflags & 0x200 )) -ne 0 ]; check $? "Linux assigned edu's memory BAR0 ($estart-$eend)"
if [ -n "$E" ] && [ $((estart)) -ne 0 ]; then
    # No driver is bound yet, and arm64 Linux leaves decoding off until one asks: turn memory decode on.
    echo 1 > $E/enable
    at() { printf '0x%x' $((estart + $1)); }
    edu_registers

    dma=$(edu-dma $E 2>&1)
    check $? "edu DMA both ways through the guest's RAM (demu's foreign mapping): $dma"

    # An interrupt, counted by the kernel: uio_pci_generic requests edu's INTx, which the bridge raises as SPI 32
    # (the interrupt-map of demu's device-tree node), and masks it with the command register's INTx-disable bit.
    insmod /lib/modules/uio.ko; insmod /lib/modules/uio_pci_generic.ko
    echo "1234 11e8" > /sys/bus/pci/drivers/uio_pci_generic/new_id
    EIRQ=$(cat $E/irq)
    [ "$(basename "$(readlink $E/driver 2>/dev/null)")" = uio_pci_generic ]; check $? "uio_pci_generic binds edu (irq $EIRQ)"
    before=$(irq_count $EIRQ)
    devmem $(at 0x60) 32 0x1; sleep 1
    after=$(irq_count $EIRQ)
    line=$(grep -E "^ *$EIRQ:" /proc/interrupts | tr -s ' ')
    [ -n "$before" ] && [ -n "$after" ] && [ "$after" -gt "$before" ] && echo "$line" | grep -q "GICv3 *32 Level"
    check $? "edu's INTx arrives as SPI 32 through the bridge's routing (irq $EIRQ: $before -> $after;$line)"
    devmem $(at 0x64) 32 0x1

    # dom0 sends edu's demu SIGTERM while this guest runs: its ioreq server must be destroyed, so the next access no
    # longer reaches a device model (Xen injects a data abort, which arm64 Linux answers by killing devmem: exit 137)
    # and this vCPU runs on.
    if [ -n "$CAT" ]; then
        ask_dom0_to_stop_edu; asked=$?
        gone=$(devmem $(at 0) 32 2>&1); rc=$?
        [ $asked = 0 ] && [ "$rc" -ne 0 ] && [ "$gone" != 0x010000ED ]
        check $? "after SIGTERM to edu's demu, the guest's next access reaches no device model (devmem exit $rc, '${gone:-nothing}') and the guest runs on"
        dmesg | tail -n 3 | sed 's/^/=== guest: dmesg: /'
    fi
fi


# ---- virtio: rng over virtio-pci behind bridge 0002 (INTx, no MSI without an ITS), blk over virtio-mmio ------------
# The slots of the two SPI-only disks (guest.cfg) are left to no driver: nothing serves them.
for slot in $VIRTIO_UNPROBED_SLOTS; do echo none > /sys/bus/platform/devices/$slot/driver_override; done
virtio_modules
VR=$(find_dev 0x1af4 0x1044)
rng_driver=$(basename "$(readlink $VR/driver 2>/dev/null)")
[ -n "$VR" ] && [ "$rng_driver" = virtio-pci ]
check $? "virtio_pci binds the virtio-rng function behind the SDK's host bridge (${VR:-none} -> ${rng_driver:-none})"
if [ -n "$VR" ]; then
    VRNG=$(basename "$(ls -d $VR/virtio* 2>/dev/null | head -n 1)")
    before=$(virtio_irqs $VRNG)
    rng_checks
    after=$(virtio_irqs $VRNG); lines=$(virtio_irq_lines $VRNG | tr '\n' ';')
    echo "$lines" | grep -qE "GICv3 *35 Level" && [ "$after" -gt "$before" ]
    check $? "virtio-rng's interrupts arrive as INTx, SPI 35 through the bridge's routing ($before -> $after; $lines)"
fi

M=/sys/bus/platform/devices/2000000.virtio
mmio_driver=$(basename "$(readlink $M/driver 2>/dev/null)")
unprobed=; for slot in $VIRTIO_UNPROBED_SLOTS; do [ -e /sys/bus/platform/devices/$slot/driver ] || unprobed="$unprobed $slot"; done
[ "$mmio_driver" = virtio-mmio ] && [ "$unprobed" = " $VIRTIO_UNPROBED_SLOTS" ]
check $? "virtio_mmio binds libxl's virtio disk node 2000000.virtio (${mmio_driver:-none}); the SPI-only slots stay unbound:$unprobed"
if vdisk_checks "virtio-mmio at libxl's slot 0x2000000, SPI $VIRTIO_MMIO_SPI"; then
    lines=$(virtio_irq_lines $VBLK | tr '\n' ';')
    echo "$lines" | grep -qE "GICv3 *$VIRTIO_MMIO_SPI Edge" && [ "$IRQ_AFTER" -gt "$IRQ_BEFORE" ]
    check $? "virtio-blk's interrupts arrive on SPI $VIRTIO_MMIO_SPI, edge, as libxl's node says ($IRQ_BEFORE -> $IRQ_AFTER with the pattern's I/O; $lines)"
    vdisk_bench "over virtio-mmio"
fi

echo "=== guest: done at $(cut -d' ' -f1 /proc/uptime)s"
# Last, the flush: the guest writes a range, fsyncs /dev/vda, tells dom0 over the serial link and writes on without end;
# dom0 destroys it there and then, and finds the flushed range in the image file.
if [ -b /dev/vda ] && [ -n "$CAT" ]; then
    vdisk_flush_then_hammer 4
fi
serial_close
poweroff -f
