#!/bin/busybox sh
# dom0's /init: bring up the Xen toolstack, create the HVM guest paused, attach one demu per device (edu at 00:05.0,
# serial at 00:06.0), unpause, talk to the guest over the emulated UART, and check that both demu processes end
# cleanly when the guest is gone. Prints one "=== E2E: PASS|FAIL" line per check, then the guest's own lines.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin:/usr/lib/xen-4.17/bin
export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu:/usr/lib/xen-4.17/lib
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run; mkdir -p /dev/pts /run/xen /run/xenstored /var/run /var/log/xen /var/lib/xen /tmp
mount -t devpts devpts /dev/pts; ln -s /run/xenstored /var/run/xenstored 2>/dev/null; ln -s /run/xen /var/run/xen 2>/dev/null
say() { echo "=== dom0 $(cut -d' ' -f1 /proc/uptime)s: $*"; }
check() { if [ "$1" = 0 ]; then echo "=== E2E: PASS $2"; else echo "=== E2E: FAIL $2"; fi; }
wait_for() { # seconds, command...: poll once a second
    n=$1; shift; i=0
    while ! "$@" >/dev/null 2>&1; do i=$((i + 1)); [ $i -ge $n ] && return 1; sleep 1; done
}
finish() {
    say "dmesg of Xen (ioreq, crashes):"; xl dmesg | grep -iE "ioreq|crash|fatal|unhandled|d[1-9]v[0-9]" | tail -40 | sed 's/^/=== xen: /'
    echo "----- demu (edu) stderr:"; cat /tmp/demu-edu.err
    echo "----- demu (serial) stderr:"; cat /tmp/demu-serial.err
    echo "----- guest serial log (checks above):"; grep -v "=== E2E:" /var/log/xen/guest-serial.log
    echo "----- qemu-dm log (tail):"; tail -20 /var/log/xen/qemu-dm-e2e-guest.log 2>/dev/null
    say "done"; sync; poweroff -f
}

say "/init reached"
for m in xen-privcmd xenfs xen-evtchn xen-gntdev xen-gntalloc; do insmod /lib/modules/$m.ko; done
mount -t xenfs xenfs /proc/xen
xenstored --pid-file /run/xenstored.pid; sleep 1
xen-init-dom0 >/dev/null
xenconsoled --pid-file=/run/xenconsoled.pid --log=none
export LIBXL_DEVICE_MODEL_START_TIMEOUT=300

say "xl create -p (QEMU becomes ioreq server 0)"
xl create -p /guest/hvm.cfg > /tmp/xl-create.log 2>&1
created=$?
check $created "xl creates the HVM guest paused"
[ $created = 0 ] || { cat /tmp/xl-create.log; finish; }
D=$(xl domid e2e-guest)

mkfifo /tmp/serial-in
exec 3<>/tmp/serial-in      # held open for writing: demu's stdin stays open until dom0 closes it
demu --domain $D --device edu --bdf 00:05.0 > /tmp/demu-edu.out 2> /tmp/demu-edu.err &
EDU=$!
demu --domain $D --device serial --bdf 00:06.0 --serial-output /tmp/serial-out.txt < /tmp/serial-in 2> /tmp/demu-serial.err &
SERIAL=$!
wait_for 60 grep -q "ioreq server" /tmp/demu-edu.err && wait_for 60 grep -q "ioreq server" /tmp/demu-serial.err
check $? "both demu processes attach to domain $D as ioreq servers ($(grep -ho 'ioreq server [0-9]*' /tmp/demu-*.err | tr '\n' ' '))"

# Deprivileged by default: each demu restricted its Xen handles to the guest, and proved it with a call for another
# domain that the kernel now refuses (EPERM; ESRCH from Xen when unrestricted).
wait_for 30 grep -q "demu: handles restricted to domain $D (a call for domain 32751 now fails: EPERM" /tmp/demu-edu.err \
    && wait_for 30 grep -q "demu: handles restricted to domain $D (a call for domain 32751 now fails: EPERM" /tmp/demu-serial.err
check $? "both demu processes restrict their Xen handles to domain $D (a call for another domain fails with EPERM)"

say "unpause"
xl unpause e2e-guest
wait_for 300 grep -q HELLO-FROM-GUEST /tmp/serial-out.txt
check $? "text the guest writes to its tty reaches demu's output"
echo HELLO-FROM-DEMU >&3

# The guest asks for edu's demu to be stopped once it is done with edu; SIGTERM must destroy the server, at once.
# A guest whose /init died before asking reports no check here (run.sh boots once more in that case).
wait_for 400 sh -c 'grep -q STOP-EDU /tmp/serial-out.txt || ! xl list e2e-guest'
if grep -q STOP-EDU /tmp/serial-out.txt; then
    kill -TERM $EDU
    (sleep 20; kill -KILL $EDU 2>/dev/null) &
    KILLER=$!
    wait $EDU; edu_rc=$?
    kill $KILLER 2>/dev/null
    [ $edu_rc = 0 ] && grep -q "ioreq server destroyed" /tmp/demu-edu.err
    check $? "SIGTERM to edu's demu while the guest runs destroys its ioreq server (exit code $edu_rc)"
    echo EDU-STOPPED >&3
elif xl list e2e-guest >/dev/null 2>&1; then
    check 1 "the guest never asked for edu's demu to stop"
else
    say "the guest ended before asking for edu's demu to stop"; (sleep 30; kill $EDU 2>/dev/null) & wait $EDU
fi

wait_for 400 sh -c '! xl list e2e-guest'
check $? "the guest ran its checks and powered off"
# demu notices the guest's end by itself (Xen answers ESRCH); the killer only bounds a hang.
(sleep 30; kill $SERIAL 2>/dev/null) &
KILLER=$!
wait $SERIAL; serial_rc=$?
kill $KILLER 2>/dev/null
[ $serial_rc = 0 ] && grep -q "is gone" /tmp/demu-serial.err && grep -q "ioreq server destroyed" /tmp/demu-serial.err
check $? "the serial demu sees the guest go and exits cleanly (exit code $serial_rc)"
! xl dmesg | grep -iE "domain_crash|fatal|unhandled|ioreq.*(fail|error)" >/dev/null
check $? "no errors in xl dmesg"

grep -E "^=== (E2E|guest)" /var/log/xen/guest-serial.log
finish
