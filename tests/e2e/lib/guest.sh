# Shared by the x86 and Arm64 guests' /init (busybox sh; copied into each guest initramfs as /lib/e2e-guest.sh).
# One "=== E2E: PASS|FAIL" line per check, on the console the run reads.

check() { if [ "$1" = 0 ]; then echo "=== E2E: PASS $2"; else echo "=== E2E: FAIL $2"; fi; }
find_dev() { for d in /sys/bus/pci/devices/*; do [ "$(cat $d/vendor)" = "$1" ] && [ "$(cat $d/device)" = "$2" ] && echo $d; done; }
irq_count() { awk -v n="$1:" '$1 == n { s = 0; for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i; print s }' /proc/interrupts; }

# serial_link DEVICE-DIR: 8250_pci's tty for the PCI 16550 — binds, text both ways with dom0's demu, interrupts
# counted. Leaves TTY set, fd 4 open on it and CAT recording everything it receives into /tmp/rx (for later
# handshakes with dom0; stop it with serial_close).
serial_link() {
    S=$1
    TTY=$(ls $S/tty 2>/dev/null | head -1)
    CAT=
    [ "$(basename "$(readlink $S/driver 2>/dev/null)")" = serial ] && [ -n "$TTY" ]; check $? "8250_pci binds the serial device as ${TTY:-no tty}"
    [ -n "$TTY" ] || return
    dmesg | grep -E "$(basename $S)|$TTY" | sed 's/^/=== guest: dmesg: /'
    stty -F /dev/$TTY 115200 raw -echo -echoe -echok
    exec 4<>/dev/$TTY
    IRQ=$(cat $S/irq)
    before=$(irq_count $IRQ)
    # Everything the tty receives goes to a file from before the guest speaks, so nothing can arrive unobserved.
    cat <&4 > /tmp/rx &
    CAT=$!
    printf 'HELLO-FROM-GUEST\n' >&4
    i=0
    while ! grep -q HELLO-FROM-DEMU /tmp/rx && [ $i -lt 120 ]; do sleep 1; i=$((i + 1)); done
    got=$(od -An -c /tmp/rx | tr -s ' \n' ' ' | cut -c1-120)
    grep -q HELLO-FROM-DEMU /tmp/rx; check $? "text demu sends arrives in the guest's $TTY (received:$got)"
    after=$(irq_count $IRQ)
    [ -n "$before" ] && [ -n "$after" ] && [ "$after" -gt "$before" ]; check $? "$TTY's interrupt count rises (irq $IRQ: $before -> $after)"
    grep -E "^ *$IRQ:" /proc/interrupts | sed 's/^/=== guest: /'
}

# edu_registers: edu.rst's identification, liveness and factorial registers through /dev/mem; the caller defines
# at OFFSET (the BAR's address plus OFFSET, in hex).
edu_registers() {
    id=$(devmem $(at 0) 32)
    [ "$id" = 0x010000ED ]; check $? "edu identification reads $id"
    devmem $(at 4) 32 0x12345678; live=$(devmem $(at 4) 32)
    [ "$live" = 0xEDCBA987 ]; check $? "edu liveness check: ~0x12345678 reads $live"
    devmem $(at 8) 32 10; i=0
    while [ $(( $(devmem $(at 0x20) 32) & 1 )) -ne 0 ] && [ $i -lt 100 ]; do i=$((i + 1)); done
    fact=$(devmem $(at 8) 32)
    [ "$fact" = 0x00375F00 ]; check $? "edu factorial: 10! reads $fact (3628800 = 0x00375F00)"
}

serial_close() { [ -n "$CAT" ] && { kill $CAT 2>/dev/null; exec 4<&-; }; }

# ask_dom0_to_stop_edu: dom0 sends edu's demu SIGTERM while this guest runs (its server must be destroyed); returns
# once dom0 says so, or fails after a minute.
ask_dom0_to_stop_edu() {
    printf 'STOP-EDU\n' >&4
    i=0
    while ! grep -q EDU-STOPPED /tmp/rx && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
    grep -q EDU-STOPPED /tmp/rx
}
