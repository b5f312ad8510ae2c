# Shared by the x86 and Arm64 dom0 /init (busybox sh; copied into each dom0 initramfs as /lib/e2e-dom0.sh).

check() { if [ "$1" = 0 ]; then echo "=== E2E: PASS $2"; else echo "=== E2E: FAIL $2"; fi; }
wait_for() { # seconds, command...: poll until the command succeeds or the seconds (of uptime: a count of polls would
    # stretch the bound when each poll is slow, under a loaded host) have passed. Five times a second for the first
    # 2 s, then once a second: a fork per poll costs much in a PV dom0 under emulation, and a dom0 busy polling through
    # a guest's minutes-long boot answers that guest's ioreqs (QEMU's, demu's) late. The clock is read with the shell's
    # own read.
    read -r up _ < /proc/uptime; end=$(( ${1%.*} + ${up%.*} )); shift; polls=0
    while ! "$@" >/dev/null 2>&1; do
        read -r up _ < /proc/uptime; [ "${up%.*}" -ge $end ] && return 1
        if [ $polls -lt 10 ]; then polls=$((polls + 1)); sleep 0.2; else sleep 1; fi
    done
}

# stream_log FILE TAG: FILE's lines on the console as they come, tagged and with "=== " turned into "--- " (the run counts
# only the checks printed at the end), so a run that times out still shows how far the guest got.
# watch_progress: every 20 s, the domains' states, new kernel faults in dom0 and each demu's last words, tagged "---"
# like stream_log's lines: what a run that times out leaves to read.
watch_progress() {
    ( while sleep 20; do
        echo "--- dom0 watch $(cut -d' ' -f1 /proc/uptime)s: $(xl list 2>/dev/null | awk 'NR > 1 { printf "%s %s %ss of CPU; ", $1, $5, $6 }')"
        dmesg -c | grep -iE "segfault|traps:|oom|killed process|general protection" | tail -n 5 | sed 's/^/--- dom0 watch: /'
        top -b -n 1 2>/dev/null | awk 'NR > 4 && NR <= 10' | cut -c1-120 | sed 's/^/--- dom0 watch: top: /'
        for f in /tmp/demu-*.err; do tail -n 1 "$f" | cut -c1-200 | sed "s|^|--- dom0 watch: ${f#/tmp/}: |"; done
      done ) &
}

stream_log() { (tail -f "$1" 2>/dev/null | awk -v t="$2" '{ sub(/^=== /, "--- "); print t " " $0; fflush() }') & }

# check_restricted DOMID: each demu restricted its Xen handles to the guest, and proved it with a call for another
# domain that the kernel now refuses (EPERM; ESRCH from Xen when unrestricted).
check_restricted() {
    wait_for 30 grep -q "demu: handles restricted to domain $1 (a call for domain 32751 now fails: EPERM" /tmp/demu-edu.err \
        && wait_for 30 grep -q "demu: handles restricted to domain $1 (a call for domain 32751 now fails: EPERM" /tmp/demu-serial.err
    check $? "both demu processes restrict their Xen handles to domain $1 (a call for another domain fails with EPERM)"
}

# stop_edu_on_request GUEST EDU-PID: the guest asks, over the serial link, for edu's demu to be stopped once it is done
# with edu; SIGTERM must destroy the server at once. Answers EDU-STOPPED on fd 3 (the serial demu's stdin). A guest
# whose /init died before asking reports no check here.
stop_edu_on_request() {
    wait_for 400 sh -c "grep -q STOP-EDU /tmp/serial-out.txt || ! xl list $1"
    if grep -q STOP-EDU /tmp/serial-out.txt; then
        demu_memory edu $2
        kill -TERM $2
        (sleep 20; kill -KILL $2 2>/dev/null) &
        killer=$!
        wait $2; edu_rc=$?
        kill $killer 2>/dev/null
        [ $edu_rc = 0 ] && grep -q "ioreq server destroyed" /tmp/demu-edu.err
        check $? "SIGTERM to edu's demu while the guest runs destroys its ioreq server (exit code $edu_rc)"
        echo EDU-STOPPED >&3
    elif xl list $1 >/dev/null 2>&1; then
        check 1 "the guest never asked for edu's demu to stop"
    else
        echo "=== dom0: the guest ended before asking for edu's demu to stop"; (sleep 30; kill $2 2>/dev/null) & wait $2
    fi
}

# serial_demu_ends GUEST SERIAL-PID: after the guest is gone, the serial demu notices by itself and exits cleanly.
serial_demu_ends() {
    wait_for 400 sh -c "! xl list $1"
    check $? "the guest ran its checks and ended (powered off, or destroyed by dom0 after its last write)"
    (sleep 30; kill $2 2>/dev/null) &   # demu notices the guest's end by itself; the killer only bounds a hang
    killer=$!
    wait $2; serial_rc=$?
    kill $killer 2>/dev/null
    [ $serial_rc = 0 ] && grep -q "is gone" /tmp/demu-serial.err && grep -q "ioreq server destroyed" /tmp/demu-serial.err
    check $? "the serial demu sees the guest go and exits cleanly (exit code $serial_rc)"
    # XEN_ERRORS: what counts as an error in the hypervisor's log (x86 adds "unhandled"; Arm's log has harmless ones).
    ! xl dmesg | grep -iE "${XEN_ERRORS:-domain_crash|fatal|ioreq.*(fail|error)}" >/dev/null
    check $? "no errors in xl dmesg"
}

# demu_memory NAME PID: the process's peak and current resident size (VmHWM, VmRSS in /proc/PID/status), printed and
# not asserted, just before it is stopped (figures for the footprint work; under emulation they are what dom0 sees).
demu_memory() {
    hwm=$(awk '/^VmHWM:/ { print $2 }' /proc/$2/status 2>/dev/null); rss=$(awk '/^VmRSS:/ { print $2 }' /proc/$2/status 2>/dev/null)
    echo "=== dom0: demu ($1) VmHWM ${hwm:-?} kB, VmRSS ${rss:-?} kB"
}

# serve_start LOG [OPTION...]: demu serve (the xenstore backend service) with the options given, in the background,
# stderr to LOG; sets SERVE to its pid and returns once it watches the backend directories (it must, before a guest's
# xl create: libxl waits only 10 s).
serve_start() {
    serve_log=$1; shift
    demu serve "$@" > /dev/null 2> "$serve_log" &
    SERVE=$!
    wait_for 60 grep -q "watching .*virtio_disk" "$serve_log"
}

# serve_stop LOG: SIGTERM to demu serve; it tears down what it still serves and exits 0.
serve_stop() {
    demu_memory serve $SERVE
    kill -TERM $SERVE
    (sleep 30; kill -KILL $SERVE 2>/dev/null) &
    killer=$!
    wait $SERVE; serve_rc=$?
    kill $killer 2>/dev/null
    [ $serve_rc = 0 ]; check $? "SIGTERM stops demu serve cleanly (exit code $serve_rc)"
}
