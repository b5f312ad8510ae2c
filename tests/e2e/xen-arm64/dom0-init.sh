#!/bin/busybox sh
# The Arm64 dom0's /init: bring up the Xen toolstack and demu serve (the SDK's xenstore backend service, which serves
# every virtio disk libxl describes), create the first guest paused, attach one demu per PCI device (each with its own
# host bridge, see bridges.sh), unpause, talk to the guest over the PCI 16550, stop edu's demu with SIGTERM when the
# guest asks, and check that the PCI demu end cleanly and the service closes the disks when the guest is gone. Then a
# second guest with only a toolstack disk, created without -p, served by the same service. Prints one
# "=== E2E: PASS|FAIL" line per check, then the guests' own lines.
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
    echo "----- demu serve (virtio-blk over virtio-mmio, the toolstack's disks) stderr:"; cat /tmp/demu-serve.err 2>/dev/null
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

# The standalone virtio backend of Xen 4.17's libxl is the SDK's xenstore backend service, started before any guest:
# libxl waits up to 10 s for InitWait (2) at create and for Closed (6) after it writes Closing (5) at destroy. It serves
# every virtio disk libxl describes: the first guest's three (xvda the real one; xvdb and xvdc only size the guest's
# SPIs, see guest.cfg) and the second guest's one.
vdisk_create /run/vdisk.img
vdisk_create /run/vdisk-toolstack.img
dd if=/dev/zero of=/run/vdisk-spi34.img bs=1k count=64 2>/dev/null
dd if=/dev/zero of=/run/vdisk-spi35.img bs=1k count=64 2>/dev/null
# Two loop threads for every device's server: a guest with one vCPU runs one (the first guest), the second guest's two
# vCPUs are served by one each (vCPU 1 by a request loop on an event-channel handle of its own).
serve_start /tmp/demu-serve.err --loop-threads 2
check $? "demu serve (the xenstore backend service) starts in dom0 and is $(grep -o 'watching [^ ]*' /tmp/demu-serve.err | head -n 1)"

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

# The toolstack's virtio disk, served by demu serve over virtio-mmio where libxl put it (base, in decimal, and irq from
# the backend's xenstore directory); xl create returned, so libxl saw InitWait. And virtio-rng over virtio-pci behind a
# third bridge, started by hand (the bridge's INTx routing is demu's own).
vbd=/local/domain/0/backend/virtio_disk/$D/51712
base=$(xenstore-read $vbd/base); irq=$(xenstore-read $vbd/irq); vstate=$(xenstore-read $vbd/state)
say "libxl's virtio disk xvda: base $base, irq $irq, transport $(xenstore-read $vbd/transport), params $(xenstore-read $vbd/params), state $vstate, ioreq-server $(xenstore-read $vbd/ioreq-server)"
served=$(grep -c "domain $D device [0-9]*: serving virtio_disk on ioreq server [0-9]*; state InitWait" /tmp/demu-serve.err)
[ "$vstate" = 2 ] && [ "$served" = 3 ]
check $? "demu serve serves the guest's three virtio disks over virtio-mmio at libxl's slots, xvda at base $base, SPI $irq (state $vstate, InitWait; $served served: $(grep -o "domain $D device [0-9]*: serving virtio_disk on ioreq server [0-9]*" /tmp/demu-serve.err | sed 's/.*device //' | tr '\n' ' '))"
# shellcheck disable=SC2086
demu --domain $D $VIRTIO_PCI_ARGS > /dev/null 2> /tmp/demu-rng.err &
RNG=$!
restricted="handles restricted to domain $D (a call for domain 32751 now fails: EPERM"
wait_for 60 grep -q "$restricted" /tmp/demu-rng.err
check $? "virtio-rng over virtio-pci attaches to domain $D, handles restricted ($(grep -ho 'ioreq server [0-9]*' /tmp/demu-rng.err | tr '\n' ' '))"

say "unpause"
watch_progress
stream_log $CONSOLE "[guest]"
xl unpause $GUEST
# Also ends when the guest is gone (as on x86): a guest that died on its way would otherwise hold the run here.
wait_for 300 sh -c "grep -q HELLO-FROM-GUEST /tmp/serial-out.txt || ! xl list $GUEST"
grep -q HELLO-FROM-GUEST /tmp/serial-out.txt
check $? "text the guest writes to its tty reaches demu's output"
echo HELLO-FROM-DEMU >&3

stop_edu_on_request $GUEST $EDU

# The guest's last act: a range written and fsynced, then writes without end. Destroyed right then, mid-I/O, it must
# leave the flushed range in the image, the virtio-rng demu must see it go and exit cleanly, and the service must close
# the guest's disks.
wait_for 200 sh -c "grep -q VDISK-FLUSHED /tmp/serial-out.txt || ! xl list $GUEST"
if grep -q VDISK-FLUSHED /tmp/serial-out.txt; then
    demu_memory serial $SERIAL; demu_memory virtio-rng $RNG
    xl destroy $GUEST; check $? "dom0 destroys the guest right after its flush, while it writes to /dev/vda"
else
    check 1 "the guest never reported its flushed write"
fi
serial_demu_ends $GUEST $SERIAL
demu_ends virtio-rng $RNG /tmp/demu-rng.err
# xl destroy writes Closing (5) to each disk's backend state and waits for Closed (6): the service closes all three.
wait_for 60 sh -c "[ \$(grep -c 'domain $D device [0-9]*: closed virtio_disk' /tmp/demu-serve.err) = 3 ]"
closed=$(grep -o "domain $D device [0-9]*: closed virtio_disk.*" /tmp/demu-serve.err)
[ "$(echo "$closed" | grep -c 'state Closed')" = 3 ]
check $? "at xl destroy demu serve closes the guest's three virtio disks, state Closed ($(echo "$closed" | sed 's/.*device //' | tr '\n' ';'))"
vdisk_image_checks /run/vdisk.img

# A second guest, created WITHOUT -p: its only device is the toolstack's virtio disk, so nothing needs attaching between
# create and unpause. xl create returns only once libxl saw the service's InitWait (10 s at most), then runs the guest.
GUEST2=e2e-arm-disk-guest
CONSOLE2=/var/log/xen/console/guest-$GUEST2.log
say "xl create (without -p) of $GUEST2"
read -r t0 _ < /proc/uptime
xl create /guest/disk-guest.cfg > /tmp/xl-create2.log 2>&1
created=$?
read -r t1 _ < /proc/uptime
D2=$(xl domid $GUEST2 2>/dev/null)
vbd2=/local/domain/0/backend/virtio_disk/$D2/51712
vstate2=$(xenstore-read $vbd2/state 2>/dev/null)
[ $created = 0 ] && [ "$vstate2" = 2 ] && grep -q "domain $D2 device 51712: serving virtio_disk on ioreq server [0-9]*; state InitWait" /tmp/demu-serve.err
check $? "xl create without -p: demu serve reaches InitWait within libxl's 10 s and the guest runs (xl create took ${t0%.*}s -> ${t1%.*}s of dom0 uptime; domain $D2, state ${vstate2:-none}, base $(xenstore-read $vbd2/base 2>/dev/null), irq $(xenstore-read $vbd2/irq 2>/dev/null))"
[ $created = 0 ] || cat /tmp/xl-create2.log
stream_log $CONSOLE2 "[guest2]"
# The guest writes the pattern and the flushed range, checks them and powers off; xl's own monitor then destroys it.
wait_for 400 sh -c "! xl list $GUEST2"
check $? "the second guest ran its disk checks and powered off (it ran from ${t1%.*}s to $(cut -d. -f1 /proc/uptime)s of dom0 uptime)"
wait_for 60 grep -q "domain $D2 device 51712: closed virtio_disk" /tmp/demu-serve.err
closed=$(grep -o "domain $D2 device 51712: closed virtio_disk.*" /tmp/demu-serve.err)
echo "$closed" | grep -q "state Closed"
check $? "at its shutdown demu serve closes the second guest's virtio disk, state Closed (${closed:-no line})"
# Its guest pinned its disk checks to vCPU 1 (disk-guest-init.sh): Xen signalled those requests on the port demu serve
# bound on the request loop's own handle; virtio-blk declares no region thread-safe, so the request loop handed each to
# the event loop, which answered it on that handle. Counted by the server, said by the service at teardown.
answered=$(grep -o "domain $D2 device 51712: its ioreq server answered .*" /tmp/demu-serve.err)
handed=$(echo "$answered" | sed -n 's/.*with 2 loop thread(s) (\([0-9]*\) came to a request loop.*/\1/p')
[ "${handed:-0}" -gt 0 ]
check $? "demu serve --loop-threads 2 served the second guest's two vCPUs on two loop threads, vCPU 1's requests through the request loop's own event-channel handle (${answered#*: })"
vdisk_image_checks /run/vdisk-toolstack.img "written by the second guest before it powered off"
serve_stop

# What each demu said of itself: its bridge's place, requests served, the teardown.
grep -hE "^demu: .*(ioreq server|stopped|gone|restricted)" /tmp/demu-edu.err | sed 's/^/=== dom0: edu: /'
grep -hE "^demu: .*(ioreq server|stopped|gone|restricted)" /tmp/demu-serial.err | sed 's/^/=== dom0: serial: /'
grep -hE "(serving|closed|refused|destroyed) " /tmp/demu-serve.err | sed 's/^.*\] //; s/^/=== dom0: serve: /'
grep -hE "^demu: .*(ioreq server|restricted)" /tmp/demu-rng.err | sed 's/^/=== dom0: virtio-rng: /'
sleep 1   # xenconsoled writes the guest's log in chunks
tr -d '\r' < $CONSOLE | grep -E "^=== (E2E|guest)"
tr -d '\r' < $CONSOLE2 | grep -E "^=== (E2E|guest)" | sed 's/^=== guest: /=== guest: (second guest) /'
finish
