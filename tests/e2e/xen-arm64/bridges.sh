# The two demu processes of the Arm64 run, one PCI function and one host bridge each (DEMU's model: one device per
# process, and so one bridge per backend, as EPAM's Arm virtio-pci proposal has it). Sourced by run.sh, which asks
# demu for each bridge's device-tree node with the same options, and by dom0-init.sh, which starts the two demu.
#
# Each bridge has its own PCI segment (Linux refuses two bridges that claim one linux,pci-domain), ECAM window,
# memory windows and PIO aperture, none overlapping. INTx: Xen 4.17's libxl gives an Arm guest only the SPIs that
# its virtio disks need (no nr_spis option before 4.18): with the one virtio disk of guest.cfg, SPIs 32 (the vpl011
# SPI, free without vuart=) and 33 (the disk's, idle while the guest leaves virtio_mmio unloaded). So each function
# sits at device 4, whose INTA is the bridge's SPI base itself (swizzle (4 + 1 - 1) mod 4 = 0).
EDU_ARGS="--platform arm64 --device edu --bdf 0000:00:04.0 --intx-spi-base 32 \
 --ecam-base 0x10000000 --mmio-base 0x23000000 --mmio-size 0x1000000 \
 --prefetch-base 0x100000000 --prefetch-size 0x80000000 --pio-base 0x3eff0000"
SERIAL_ARGS="--platform arm64 --device serial --bdf 0001:00:04.0 --intx-spi-base 33 \
 --ecam-base 0x10100000 --mmio-base 0x24000000 --mmio-size 0x1000000 \
 --prefetch-base 0x180000000 --prefetch-size 0x80000000 --pio-base 0x3efe0000"
