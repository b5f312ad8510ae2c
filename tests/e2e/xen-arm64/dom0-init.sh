#!/bin/busybox sh
# The Arm64 dom0's /init: bring up the Xen toolstack, create the guest paused, attach one demu per device (each with
# its own host bridge, see bridges.sh), unpause, talk to the guest over the PCI 16550, stop edu's demu with SIGTERM
# when the guest asks, and check that the serial demu ends cleanly when the guest is gone. Prints one
# "=== E2E: PASS|FAIL" line per check, then the guest's own lines.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin:/usr/lib/xen-4.17/bin
# The packages were unpacked without usrmerge: libraries live in both trees.
export LD_LIBRARY_PATH=/lib/aarch64-linux-gnu:/usr/lib/aarch64-linux-gnu
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run; mkdir -p /dev/pts; mount -t devpts devpts /dev/pts
mkdir -p /run/xen /run/xenstored /var/run/xen /var/lib/xen /var/log/xen/console /var/lib/xenstored /tmp
say() { echo "=== dom0 $(cut -d' ' -f1 /proc/uptime)s: $*"; }
. /lib/e2e-dom0.sh   # check, wait_for, check_restricted, stop_edu_on_request, serial_demu_ends (tests/e2e/lib/dom0.sh)
. /lib/e2e-virtio.sh # vdisk_create, vdisk_image_checks, demu_ends (tests/e2e/lib/virtio.sh)
GUEST=e2e-arm-guest
CONSOLE=/var/log/xen/console/guest-$GUEST.log
finish() {
    say "dmesg of Xen (ioreq, crashes, guest lines):"; xl dmesg | grep -iE "ioreq|crash|fatal|unhandled|\(XEN\) d[1-9]" | tail -40 | sed 's/^/=== xen: /'
    echo "----- demu (edu) stderr:"; cat /tmp/demu-edu.err 2>/dev/null
    echo "----- demu (serial) stderr:"; cat /tmp/demu-serial.err 2>/dev/null
    echo "----- demu (virtio-blk over virtio-mmio) stderr:"; cat /tmp/demu-blk.err 2>/dev/null
    echo "----- demu (virtio-rng over virtio-pci) stderr:"; cat /tmp/demu-rng.err 2>/dev/null
    # The guest console was streamed as it came (stream_log); its checks are printed below.
    say "done"; sync; poweroff -f
}

say "/init reached ($(uname -r))"
for m in xen-privcmd xenfs xen-evtchn xen-gntdev xen-gntalloc; do insmod /lib/modules/$m.ko; done
mount -t xenfs xenfs /proc/xen
xenstored --pid-file /run/xenstored.pid; sleep 1
xen-init-dom0 >/dev/null
xenconsoled --pid-file=/run/xenconsoled.pid --log=guest --log-dir=/var/log/xen/console

# The standalone virtio backend of Xen 4.17's libxl: it waits up to 10 s for the backend to reach InitWait (2) at
# create, and for Closed (6) after it writes Closing (5) at destroy. Until the SDK's xenstore backend service exists,
# this loop plays that backend's states for the guest's three virtio disks (demu serves the first; see guest.cfg).
vdisk_create /run/vdisk.img
dd if=/dev/zero of=/run/vdisk-spi34.img bs=1k count=64 2>/dev/null
dd if=/dev/zero of=/run/vdisk-spi35.img bs=1k count=64 2>/dev/null
( while :; do
    for dom in $(xenstore-list /local/domain/0/backend/virtio_disk 2>/dev/null); do
        for dev in $(xenstore-list /local/domain/0/backend/virtio_disk/$dom 2>/dev/null); do
            p=/local/domain/0/backend/virtio_disk/$dom/$dev
            case "$(xenstore-read $p/state 2>/dev/null)" in
                1) xenstore-write $p/state 2 ;;
                5) xenstore-write $p/state 6 ;;
            esac
        done
    done
    sleep 0.2
  done ) &
BACKEND=$!

say "xl create -p"
xl create -p /guest/guest.cfg > /tmp/xl-create.log 2>&1
created=$?
check $created "xl creates the Arm64 guest paused, with the partial device tree of its three bridges"
[ $created = 0 ] || { cat /tmp/xl-create.log; finish; }
D=$(xl domid $GUEST)

. /guest/bridges.sh
mkfifo /tmp/serial-in
exec 3<>/tmp/serial-in      # held open for writing: demu's stdin stays open until dom0 closes it
# shellcheck disable=SC2086
demu --domain $D $EDU_ARGS > /tmp/demu-edu.out 2> /tmp/demu-edu.err &
EDU=$!
# shellcheck disable=SC2086
demu --domain $D $SERIAL_ARGS --serial-output /tmp/serial-out.txt < /tmp/serial-in 2> /tmp/demu-serial.err &
SERIAL=$!
# Both bridges must be served before the guest runs: an ECAM read nobody claims is a data abort, and Linux panics.
wait_for 60 grep -q "ioreq server" /tmp/demu-edu.err && wait_for 60 grep -q "ioreq server" /tmp/demu-serial.err
check $? "both demu processes attach to domain $D as ioreq servers ($(grep -ho 'ioreq server [0-9]*' /tmp/demu-*.err | tr '\n' ' '))"

check_restricted $D

# The toolstack's virtio disk, served over virtio-mmio where libxl put it: its base and SPI, from the backend's
# xenstore directory (base in decimal, as libxl writes it). And virtio-rng over virtio-pci behind a third bridge.
vbd=/local/domain/0/backend/virtio_disk/$D/51712
base=$(xenstore-read $vbd/base); irq=$(xenstore-read $vbd/irq)
say "libxl's virtio disk xvda: base $base, irq $irq, transport $(xenstore-read $vbd/transport), params $(xenstore-read $vbd/params)"
demu --domain $D --platform arm64 --device virtio-blk --transport mmio --disk /run/vdisk.img \
    --virtio-mmio-base "$base" --virtio-mmio-irq "$irq" > /dev/null 2> /tmp/demu-blk.err &
BLK=$!
# shellcheck disable=SC2086
demu --domain $D $VIRTIO_PCI_ARGS > /dev/null 2> /tmp/demu-rng.err &
RNG=$!
restricted="handles restricted to domain $D (a call for domain 32751 now fails: EPERM"
wait_for 60 grep -q "$restricted" /tmp/demu-blk.err && wait_for 60 grep -q "$restricted" /tmp/demu-rng.err
check $? "virtio-blk over virtio-mmio at libxl's slot (base $base, SPI $irq, from xenstore) and virtio-rng over virtio-pci attach to domain $D, handles restricted ($(grep -ho 'ioreq server [0-9]*' /tmp/demu-blk.err /tmp/demu-rng.err | tr '\n' ' '))"

say "unpause"
watch_progress
stream_log $CONSOLE "[guest]"
xl unpause $GUEST
wait_for 300 grep -q HELLO-FROM-GUEST /tmp/serial-out.txt
check $? "text the guest writes to its tty reaches demu's output"
echo HELLO-FROM-DEMU >&3

stop_edu_on_request $GUEST $EDU

# The guest's last act: a range written and fsynced, then writes without end. Destroyed right then, mid-I/O, it must
# leave the flushed range in the image, and both virtio demu must see it go and exit cleanly.
wait_for 200 sh -c "grep -q VDISK-FLUSHED /tmp/serial-out.txt || ! xl list $GUEST"
if grep -q VDISK-FLUSHED /tmp/serial-out.txt; then
    xl destroy $GUEST; check $? "dom0 destroys the guest right after its flush, while it writes to /dev/vda"
else
    check 1 "the guest never reported its flushed write"
fi
serial_demu_ends $GUEST $SERIAL
demu_ends virtio-blk $BLK /tmp/demu-blk.err
demu_ends virtio-rng $RNG /tmp/demu-rng.err
kill $BACKEND 2>/dev/null
vdisk_image_checks /run/vdisk.img

# What each demu said of itself: its bridge's place, requests served, the teardown.
grep -hE "^demu: .*(ioreq server|stopped|gone|restricted)" /tmp/demu-edu.err | sed 's/^/=== dom0: edu: /'
grep -hE "^demu: .*(ioreq server|stopped|gone|restricted)" /tmp/demu-serial.err | sed 's/^/=== dom0: serial: /'
grep -hE "^demu: .*(ioreq server|restricted)" /tmp/demu-blk.err | sed 's/^/=== dom0: virtio-blk: /'
grep -hE "^demu: .*(ioreq server|restricted)" /tmp/demu-rng.err | sed 's/^/=== dom0: virtio-rng: /'
sleep 1   # xenconsoled writes the guest's log in chunks
tr -d '\r' < $CONSOLE | grep -E "^=== (E2E|guest)"
finish
