#!/bin/busybox sh
# The second Arm64 guest's /init (rdinit=/disk-init): its one device, the toolstack's virtio disk served by demu serve.
# virtio_mmio binds libxl's node, virtio_blk makes /dev/vda, the pattern is written, synced, read back, the last range
# is written and fsynced (a flush), and the guest powers off; dom0 then compares the image file. Prints one
# "=== E2E: PASS|FAIL" line per check on the console (hvc0).
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev; mkdir -p /tmp
. /lib/e2e-guest.sh   # check
. /lib/e2e-virtio.sh  # virtio_modules, vdisk_checks, vdisk_flush

echo "=== guest: /init at $(cut -d' ' -f1 /proc/uptime)s, Linux $(uname -r)"
virtio_modules
M=/sys/bus/platform/devices/2000000.virtio
i=0; while [ ! -e $M/driver ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
mmio_driver=$(basename "$(readlink $M/driver 2>/dev/null)")
[ "$mmio_driver" = virtio-mmio ]
check $? "second guest: virtio_mmio binds libxl's virtio disk node 2000000.virtio (${mmio_driver:-none}), served by demu serve"
# The disk checks (and every child of this shell) on vCPU 1: its requests reach demu serve's second loop thread.
cpus=$(nproc); taskset -p 2 $$ >/dev/null 2>&1; pinned=$?
[ "$cpus" = 2 ] && [ $pinned = 0 ]
check $? "second guest: $cpus vCPUs, its disk checks pinned to vCPU 1 (taskset: $(taskset -p $$ 2>&1 | sed 's/.*: //'))"
if vdisk_checks "second guest, virtio-mmio at libxl's slot 0x2000000, served by demu serve"; then
    vdisk_flush
fi
echo "=== guest: done at $(cut -d' ' -f1 /proc/uptime)s"
sync
poweroff -f
