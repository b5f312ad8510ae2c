# Shared by tests/e2e/*/run.sh (bash): e2e_results LOG EXPECTED QEMU-RC TIMEOUT prints the checks, counts a stage that
# never ran as failed checks, shows the serial log's tail on failure, and ends with "N passed, N failed". Sets
# passed and failed; returns non-zero when a check failed.
e2e_results() {
    local log=$1 expected=$2 qemu_rc=$3 timeout_s=$4
    # -a: a serial log with a stray NUL or torn byte is still text; without it grep prints "binary file matches"
    # instead of the checks.
    passed=$(grep -ac "=== E2E: PASS" "$log")
    failed=$(grep -ac "=== E2E: FAIL" "$log")
    grep -aE "=== (E2E|dom0|guest|xen):" "$log"
    if [ "$qemu_rc" = 124 ]; then echo "timed out after ${timeout_s}s"; fi
    if [ $(( passed + failed )) -lt "$expected" ]; then
        echo "only $(( passed + failed )) of $expected checks reported"
        failed=$(( failed + expected - passed - failed ))
    fi
    if [ "$failed" -gt 0 ]; then
        echo "----- serial log tail:"; tail -n 150 "$log"
        [ -n "${IOREQSDK_E2E_KEEP_LOG:-}" ] && cp "$log" "$IOREQSDK_E2E_KEEP_LOG"
    fi
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
