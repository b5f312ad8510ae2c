/*
 * The C floor for IoreqSdk's synchronous round trip: both sides of Xen's slot protocol over one shared 4 KiB page
 * (Xen's own shared_iopage_t from <xen/hvm/ioreq.h>), between two threads.
 *
 *   producer ("Xen", the benchmark thread): fill the slot, release-store state = IOREQ_READY, notify, wait for
 *            IORESP_READY, read data, store state = NONE;
 *   consumer ("device model"): wait, acquire-load state, copy the request out, state = INPROCESS, look the address up
 *            and read a register, write data, release-store state = IORESP_READY, notify.
 *
 * Notification is busy-polling on the state byte (the floor this machine allows) or a pair of eventfds (what a
 * kernel event channel costs at best). Prints "scenario ns_per_op".
 *
 *   slot_roundtrip busy|eventfd [iterations]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include "bench.h"
#include <xen/xen.h>
#include <xen/hvm/ioreq.h>

_Static_assert(sizeof(ioreq_t) == 32, "ioreq_t is 32 bytes");
#define STATE_BYTE 30 /* state:4, data_is_ptr:1, dir:1, df:1 share one byte (the SDK's ABI tests prove the offset) */

static shared_iopage_t *page;
static int busy;
static int to_dm, from_dm;
static volatile int stop;
static uint32_t registers[1024];

static uint8_t *state_of(ioreq_t *p) { return (uint8_t *)p + STATE_BYTE; }

static void set_state(ioreq_t *p, uint8_t state, int order)
{
    uint8_t *b = state_of(p);
    uint8_t v = (uint8_t)((__atomic_load_n(b, __ATOMIC_RELAXED) & 0xF0) | state);
    __atomic_store_n(b, v, order);
}

static uint8_t get_state(ioreq_t *p) { return __atomic_load_n(state_of(p), __ATOMIC_ACQUIRE) & 0x0F; }

static void notify(int fd)
{
    uint64_t one = 1;
    if (!busy && write(fd, &one, sizeof one) != sizeof one) { perror("write"); exit(1); }
}

static void wait_state(ioreq_t *p, uint8_t state, int fd)
{
    if (busy) {
        while (get_state(p) != state && !stop) { }
        return;
    }
    uint64_t n;
    while (get_state(p) != state && !stop) {
        if (read(fd, &n, sizeof n) != sizeof n && errno != EINTR) { perror("read"); exit(1); }
    }
}

static void *device_model(void *arg)
{
    (void)arg;
    ioreq_t *slot = &page->vcpu_ioreq[0];
    while (!stop) {
        wait_state(slot, STATE_IOREQ_READY, to_dm);
        if (stop) break;
        ioreq_t req = *slot;                          /* one copy; never re-read from shared memory */
        set_state(slot, STATE_IOREQ_INPROCESS, __ATOMIC_RELAXED);
        uint64_t data = ~0ULL;
        if (req.type == IOREQ_TYPE_COPY && req.size == 4 && req.count == 1 && !req.data_is_ptr
            && req.addr >= 0xE0000000u && req.addr < 0xE0001000u) {
            data = registers[(req.addr - 0xE0000000u) >> 2];
        }
        slot->data = data;
        set_state(slot, STATE_IORESP_READY, __ATOMIC_RELEASE);
        notify(from_dm);
    }
    return NULL;
}


int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "busy") && strcmp(argv[1], "eventfd"))) {
        fprintf(stderr, "usage: %s busy|eventfd [iterations]\n", argv[0]);
        return 2;
    }
    busy = !strcmp(argv[1], "busy");
    long iterations = argc > 2 ? atol(argv[2]) : (busy ? 2000000 : 200000);
    if (posix_memalign((void **)&page, 4096, 4096)) return 1;
    memset(page, 0, 4096);
    registers[4] = 0x600D;
    to_dm = eventfd(0, EFD_CLOEXEC);
    from_dm = eventfd(0, EFD_CLOEXEC);

    pthread_t dm;
    pthread_create(&dm, NULL, device_model, NULL);
    ioreq_t *slot = &page->vcpu_ioreq[0];
    double runs[BENCH_RUNS];
    uint64_t sum = 0;
    for (int r = -1; r < BENCH_RUNS; r++) {                    /* run -1 warms up */
        double start = bench_now_ns();
        for (long i = 0; i < iterations; i++) {
            slot->addr = 0xE0000010u;
            slot->size = 4;
            slot->count = 1;
            slot->type = IOREQ_TYPE_COPY;
            slot->data = 0;
            *state_of(slot) = (uint8_t)(IOREQ_READ << 5);  /* dir = read, data_is_ptr = 0, df = 0, state = NONE */
            set_state(slot, STATE_IOREQ_READY, __ATOMIC_RELEASE);
            notify(to_dm);
            wait_state(slot, STATE_IORESP_READY, from_dm);
            sum += slot->data;
            set_state(slot, STATE_IOREQ_NONE, __ATOMIC_RELAXED);
        }
        if (r >= 0) runs[r] = (bench_now_ns() - start) / (double)iterations;
    }
    stop = 1;
    notify(to_dm);
    if (busy) { /* the consumer sees stop while spinning */ }
    pthread_join(dm, NULL);
    if (sum != (uint64_t)0x600D * (uint64_t)iterations * (BENCH_RUNS + 1)) {
        fprintf(stderr, "wrong data: %" PRIu64 "\n", sum);
        return 1;
    }
    printf("roundtrip-%s %.1f\n", argv[1], bench_median(runs));
    return 0;
}
