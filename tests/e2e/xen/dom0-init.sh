#!/bin/busybox sh
# dom0's /init: bring up the Xen toolstack and demu serve (the SDK's xenstore backend service), create the HVM guest
# paused, attach one demu per device (edu at 00:05.0, serial at 00:06.0, virtio-blk at 00:07.0) and describe
# virtio-rng at 00:08.0 in the SDK's xenstore namespace for the service to serve (demu describe, which waits for
# InitWait), unpause, talk to the guest over the emulated UART, and check that every demu ends cleanly and the service
# closes its device when the guest is gone. Prints one "=== E2E: PASS|FAIL" line per check, then the guest's own lines.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin:/usr/lib/xen-4.17/bin
export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu:/usr/lib/xen-4.17/lib
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run; mkdir -p /dev/pts /run/xen /run/xenstored /var/run /var/log/xen /var/lib/xen /tmp
mount -t devpts devpts /dev/pts; ln -s /run/xenstored /var/run/xenstored 2>/dev/null; ln -s /run/xen /var/run/xen 2>/dev/null
say() { echo "=== dom0 $(cut -d' ' -f1 /proc/uptime)s: $*"; }
. /lib/e2e-dom0.sh   # check, wait_for, check_restricted, stop_edu_on_request, serial_demu_ends (tests/e2e/lib/dom0.sh)
. /lib/e2e-virtio.sh # vdisk_create, vdisk_image_checks, demu_ends (tests/e2e/lib/virtio.sh)
finish() {
    say "dmesg of Xen (ioreq, crashes):"; xl dmesg | grep -iE "ioreq|crash|fatal|unhandled|d[1-9]v[0-9]" | tail -40 | sed 's/^/=== xen: /'
    echo "----- demu (edu) stderr:"; cat /tmp/demu-edu.err
    echo "----- demu (serial) stderr:"; cat /tmp/demu-serial.err
    echo "----- demu (virtio-blk) stderr:"; cat /tmp/demu-blk.err
    echo "----- demu serve (virtio-rng) stderr:"; cat /tmp/demu-serve.err
    echo "----- demu describe:"; cat /tmp/demu-describe.err
    # The guest serial log was streamed as it came (stream_log); its checks are printed below.
    echo "----- qemu-dm log (tail):"; tail -20 /var/log/xen/qemu-dm-e2e-guest.log 2>/dev/null
    echo "----- dom0 kernel: faults"; dmesg | grep -iE "segfault|traps:|oom|killed process" | tail -20
    say "done"; sync; poweroff -f
}

say "/init reached"
for m in xen-privcmd xenfs xen-evtchn xen-gntdev xen-gntalloc; do insmod /lib/modules/$m.ko; done
mount -t xenfs xenfs /proc/xen
xenstored --pid-file /run/xenstored.pid; sleep 1
xen-init-dom0 >/dev/null
xenconsoled --pid-file=/run/xenconsoled.pid --log=none
export LIBXL_DEVICE_MODEL_START_TIMEOUT=300

# The backend service first: it serves whatever is described in xenstore from then on, for every guest.
serve_start /tmp/demu-serve.err
check $? "demu serve (the xenstore backend service) starts in dom0 and is $(grep -o 'watching [^ ]*' /tmp/demu-serve.err | head -n 1)"

say "xl create -p (QEMU becomes ioreq server 0)"
xl create -p /guest/hvm.cfg > /tmp/xl-create.log 2>&1
created=$?
check $created "xl creates the HVM guest paused"
[ $created = 0 ] || { cat /tmp/xl-create.log; finish; }
D=$(xl domid e2e-guest)
# Where each vCPU may run (run.sh pins dom0 to CPUs 0-1 and the guest to CPU 2): in the log, so a boot that faulted
# shows whether the separation held.
xl vcpu-list | sed 's/^/=== dom0: vcpu-list: /'

mkfifo /tmp/serial-in
exec 3<>/tmp/serial-in      # held open for writing: demu's stdin stays open until dom0 closes it
demu --domain $D --device edu --bdf 00:05.0 > /tmp/demu-edu.out 2> /tmp/demu-edu.err &
EDU=$!
demu --domain $D --device serial --bdf 00:06.0 --serial-output /tmp/serial-out.txt < /tmp/serial-in 2> /tmp/demu-serial.err &
SERIAL=$!
wait_for 60 grep -q "ioreq server" /tmp/demu-edu.err && wait_for 60 grep -q "ioreq server" /tmp/demu-serial.err
check $? "both demu processes attach to domain $D as ioreq servers ($(grep -ho 'ioreq server [0-9]*' /tmp/demu-*.err | tr '\n' ' '))"

check_restricted $D

# The virtio functions, two more ioreq servers: virtio-blk over an image file in dom0's RAM, started by hand, and
# virtio-rng, described in the SDK's xenstore namespace (libxl knows no virtio-pci device on x86) and served by demu
# serve; demu describe returns once the service reports InitWait, as libxl waits for its own devices.
vdisk_create /run/vda.img
demu --domain $D --device virtio-blk --bdf 00:07.0 --disk /run/vda.img > /dev/null 2> /tmp/demu-blk.err &
BLK=$!
demu describe --domain $D --type virtio-rng --transport pci --bdf 0000:00:08.0 > /tmp/demu-describe.out 2> /tmp/demu-describe.err
described=$?
rng=$(cat /tmp/demu-describe.out)
# Bounded and event-driven beyond describe's own 10 s: the state key, polled.
wait_for 30 sh -c "[ \"\$(xenstore-read $rng/state)\" = 2 ]"
rstate=$(xenstore-read $rng/state 2>/dev/null)
[ $described = 0 ] && [ "$rstate" = 2 ] && grep -q "domain $D device 0: serving virtio-rng on ioreq server [0-9]*; state InitWait" /tmp/demu-serve.err
check $? "demu describe puts virtio-rng at 0000:00:08.0 in xenstore and demu serve serves it (describe exit $described; ${rng:-no path} state ${rstate:-none}, ioreq server $(xenstore-read $rng/ioreq-server 2>/dev/null))"
restricted="handles restricted to domain $D (a call for domain 32751 now fails: EPERM"
wait_for 60 grep -q "$restricted" /tmp/demu-blk.err
check $? "the virtio-blk demu attaches to domain $D over virtio-pci, handles restricted ($(grep -ho 'ioreq server [0-9]*' /tmp/demu-blk.err | tr '\n' ' '))"

say "unpause"
stream_log /var/log/xen/guest-serial.log "[guest]"
watch_progress
xl unpause e2e-guest
# Also ends when the guest is gone: a guest that died on its way (its firmware triple-faulting, say) would otherwise
# hold the run here until QEMU's timeout, and run.sh's one more boot for that case could never start.
wait_for 900 sh -c "grep -q HELLO-FROM-GUEST /tmp/serial-out.txt || ! xl list e2e-guest"
grep -q HELLO-FROM-GUEST /tmp/serial-out.txt
check $? "text the guest writes to its tty reaches demu's output"
echo HELLO-FROM-DEMU >&3

stop_edu_on_request e2e-guest $EDU

# The guest's last act: a range written and fsynced, then writes without end. Destroyed right then, mid-I/O, it must
# leave the flushed range in the image, and both virtio demu must see it go and exit cleanly.
wait_for 600 sh -c "grep -q VDISK-FLUSHED /tmp/serial-out.txt || ! xl list e2e-guest"
if grep -q VDISK-FLUSHED /tmp/serial-out.txt; then
    demu_memory serial $SERIAL; demu_memory virtio-blk $BLK
    xl destroy e2e-guest; check $? "dom0 destroys the guest right after its flush, while it writes to /dev/vda"
else
    check 1 "the guest never reported its flushed write"
fi
XEN_ERRORS='domain_crash|fatal|unhandled|ioreq.*(fail|error)' serial_demu_ends e2e-guest $SERIAL
demu_ends virtio-blk $BLK /tmp/demu-blk.err
# libxl knows nothing of the SDK's namespace: the service sees the guest go (its server gone, or @releaseDomain) and
# writes Closed where the device's node still exists (libxl leaves it; a toolstack that removes it leaves no state).
wait_for 60 grep -q "domain $D device 0: closed virtio-rng" /tmp/demu-serve.err
closed=$(grep -o "domain $D device 0: closed virtio-rng.*" /tmp/demu-serve.err)
rstate=$(xenstore-read $rng/state 2>/dev/null)
[ -n "$closed" ] && { [ "$rstate" = 6 ] || ! xenstore-exists $rng; }
check $? "when the guest is gone demu serve tears virtio-rng down, Closed (${closed:-no line}; xenstore state ${rstate:-node gone})"
grep -hE "(serving|closed|refused|destroyed) " /tmp/demu-serve.err | sed 's/^.*\] //; s/^/=== dom0: serve: /'
serve_stop
vdisk_image_checks /run/vda.img

grep -E "^=== (E2E|guest)" /var/log/xen/guest-serial.log
finish
