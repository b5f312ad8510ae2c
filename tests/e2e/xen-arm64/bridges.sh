# The PCI demu processes of the Arm64 run, one PCI function and one host bridge each (DEMU's model: one device per
# process, and so one bridge per backend, as EPAM's Arm virtio-pci proposal has it). Sourced by run.sh, which asks
# demu for each bridge's device-tree node with the same options, and by dom0-init.sh, which starts them.
#
# Each bridge has its own PCI segment (Linux refuses two bridges that claim one linux,pci-domain), ECAM window,
# memory windows and PIO aperture, none overlapping. INTx: Xen 4.17's libxl gives an Arm guest only the SPIs that
# its virtio disks need (no nr_spis option before 4.18): guest.cfg's three virtio disks give SPIs 32 (the vpl011 SPI,
# free without vuart=) to 35. SPI 33 is the first disk's, served over virtio-mmio (virtio-blk); 34 and 35 are the
# other two's, whose slots the guest leaves unprobed (demu serve serves them too; undriven, they never drive the line).
# So each function sits at device 4, whose INTA is the bridge's SPI base itself (swizzle (4 + 1 - 1) mod 4 = 0): edu
# on 32, the serial device on 34, virtio-rng over virtio-pci on 35.
EDU_ARGS="--platform arm64 --device edu --bdf 0000:00:04.0 --intx-spi-base 32 \
 --ecam-base 0x10000000 --mmio-base 0x23000000 --mmio-size 0x1000000 \
 --prefetch-base 0x100000000 --prefetch-size 0x40000000 --pio-base 0x3eff0000"
SERIAL_ARGS="--platform arm64 --device serial --bdf 0001:00:04.0 --intx-spi-base 34 \
 --ecam-base 0x10100000 --mmio-base 0x24000000 --mmio-size 0x1000000 \
 --prefetch-base 0x140000000 --prefetch-size 0x40000000 --pio-base 0x3efe0000"
VIRTIO_PCI_ARGS="--platform arm64 --device virtio-rng --transport pci --bdf 0002:00:04.0 --intx-spi-base 35 \
 --ecam-base 0x10200000 --mmio-base 0x25000000 --mmio-size 0x1000000 \
 --prefetch-base 0x180000000 --prefetch-size 0x40000000 --pio-base 0x3efd0000"
# The virtio-mmio disk's SPI and the SPIs of the two slots that only size the guest's SPIs (see guest.cfg).
VIRTIO_MMIO_SPI=33
VIRTIO_UNPROBED_SLOTS="2000200.virtio 2000400.virtio"
