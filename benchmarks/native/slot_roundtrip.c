/*
 * The C floor for IoreqSdk's synchronous round trip: both sides of Xen's slot protocol over one shared 4 KiB page
 * (Xen's own shared_iopage_t from <xen/hvm/ioreq.h>), between two threads.
 *
 *   producer ("Xen", the benchmark thread): fill the slot, release-store state = IOREQ_READY, notify, wait for
 *            IORESP_READY, read data, store state = NONE;
 *   consumer ("device model"): wait, acquire-load state, copy the request out, state = INPROCESS, look the address up
 *            and read a register, write data, release-store state = IORESP_READY, notify.
 *
 * Notification is busy-polling on the state byte (the floor this machine allows), a pair of eventfds (what a
 * kernel event channel costs at best), or "polled": the consumer busy-polls for POLL_NS after each request before it
 * sleeps, over a model of Xen's event channel as Linux's evtchn device presents it (struct xen_port: a delivered port
 * is masked until the consumer unmasks it, a notification to a masked port only sets it pending, and an unmask
 * delivers what is pending), so a producer's notification costs a system call only when the consumer sleeps; the
 * producer spins for the response, as in busy mode. Prints "scenario ns_per_op".
 *
 * Where the two threads run decides the result more than either side's code does, so each can be pinned to a CPU:
 * busy-polling needs one core per side; an eventfd wake-up on the waker's own core is a context switch, while one
 * on another core is an inter-processor interrupt that, in a virtual machine, wakes a halted vCPU through the host.
 *
 *   slot_roundtrip busy|eventfd|polled [iterations [producer-cpu consumer-cpu]]
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

enum { MODE_EVENTFD = 0, MODE_BUSY = 1, MODE_POLLED = 2 };
#define POLL_NS 50000.0   /* the polled consumer's spin after a request (the SDK side runs with BusyPoll = 50 us) */

/* One port of the event-channel model (the SDK's benchmark mirrors the layout: Loopback/LoopbackChannel.cs). */
struct xen_port {
    int masked;      /* delivered and not unmasked yet: a notification only sets pending */
    int pending;     /* notified while masked */
    int delivered;   /* in the consumer's queue (Linux's evtchn ring), taken by its wait */
    int fd;          /* the eventfd a delivery posts */
};

static shared_iopage_t *page;
static int mode;
static int to_dm, from_dm;
static struct xen_port floor_port;
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

static void post(int fd)
{
    uint64_t one = 1;
    if (write(fd, &one, sizeof one) != sizeof one) { perror("write"); exit(1); }
}

static void notify(int fd)
{
    if (mode == MODE_EVENTFD) post(fd);
}

/* Xen's upcall and Linux's evtchn interrupt handler in one: the port is masked, its pending bit cleared, and it is
 * queued for the consumer, whose wait the post ends. Only one side's compare-and-swap of the mask wins. */
static void deliver(struct xen_port *port)
{
    int unmasked = 0;
    if (__atomic_compare_exchange_n(&port->masked, &unmasked, 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
        __atomic_store_n(&port->pending, 0, __ATOMIC_SEQ_CST);
        __atomic_store_n(&port->delivered, 1, __ATOMIC_SEQ_CST);
        post(port->fd);
    }
}

/* notify_via_xen_event_channel: pending, then delivered unless masked. Sequentially consistent with unmask's store and
 * load, so that a notification racing an unmask is delivered by one of the two. */
static void xen_notify(struct xen_port *port)
{
    __atomic_store_n(&port->pending, 1, __ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&port->masked, __ATOMIC_SEQ_CST)) deliver(port);
}

/* xenevtchn_unmask: what came while masked is delivered now. */
static void xen_unmask(struct xen_port *port)
{
    __atomic_store_n(&port->masked, 0, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&port->pending, __ATOMIC_SEQ_CST)) deliver(port);
}

static void wait_state(ioreq_t *p, uint8_t state, int fd)
{
    if (mode != MODE_EVENTFD) {
        while (get_state(p) != state && !stop) { }
        return;
    }
    uint64_t n;
    while (get_state(p) != state && !stop) {
        if (read(fd, &n, sizeof n) != sizeof n && errno != EINTR) { perror("read"); exit(1); }
    }
}

static void pin(int cpu)
{
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    int error = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    if (error) { fprintf(stderr, "cannot pin to cpu %d: %s\n", cpu, strerror(error)); exit(1); }
}

static int consumer_cpu = -1;
static pthread_t consumer;

static void serve(ioreq_t *slot)
{
    ioreq_t req = *slot;                              /* one copy; never re-read from shared memory */
        set_state(slot, STATE_IOREQ_INPROCESS, __ATOMIC_RELAXED);
        uint64_t data = ~0ULL;
        if (req.type == IOREQ_TYPE_COPY && req.size == 4 && req.count == 1 && !req.data_is_ptr
            && req.addr >= 0xE0000000u && req.addr < 0xE0001000u) {
            data = registers[(req.addr - 0xE0000000u) >> 2];
        }
        slot->data = data;
        set_state(slot, STATE_IORESP_READY, __ATOMIC_RELEASE);
}

/* The polled consumer's spin after a request: serves what becomes ready until nothing came for POLL_NS (the clock read
 * every 64 idle turns, never per request). */
static void poll_slot(ioreq_t *slot)
{
    unsigned idle = 0;
    double since = 0;
    while (!stop) {
        if (get_state(slot) == STATE_IOREQ_READY) {
            serve(slot);
            idle = 0;
            continue;
        }
        if ((++idle & 63) == 0) {
            double now = bench_now_ns();
            if (idle == 64) since = now;
            else if (now - since >= POLL_NS) return;
        }
    }
}

/* Sleeps until the port is delivered, serves, spins with the port still masked, unmasks before sleeping again. */
static void polled_device_model(void)
{
    ioreq_t *slot = &page->vcpu_ioreq[0];
    uint64_t n;
    while (!stop) {
        if (!__atomic_exchange_n(&floor_port.delivered, 0, __ATOMIC_SEQ_CST)) {
            if (read(floor_port.fd, &n, sizeof n) != sizeof n && errno != EINTR) { perror("read"); exit(1); }
            continue;
        }
        if (stop) break;
        if (get_state(slot) == STATE_IOREQ_READY) {
            serve(slot);
            poll_slot(slot);
        }
        xen_unmask(&floor_port);
    }
}

static void *device_model(void *arg)
{
    (void)arg;
    pin(consumer_cpu);
    if (mode == MODE_POLLED) {
        polled_device_model();
        return NULL;
    }
    ioreq_t *slot = &page->vcpu_ioreq[0];
    while (!stop) {
        wait_state(slot, STATE_IOREQ_READY, to_dm);
        if (stop) break;
        serve(slot);
        notify(from_dm);
    }
    return NULL;
}


/* Starts the consumer thread (pinned to consumer_cpu, or anywhere when it is negative). */
/* What either consumer needs first: the page (allocated once, cleared each start), the register it serves, and the
 * eventfd it waits on; 0 on success. */
static int prepare_floor(void)
{
    if (!page) {
        if (posix_memalign((void **)&page, 4096, 4096)) return -1;
        registers[4] = 0x600D;
    }
    memset(page, 0, 4096);
    stop = 0;
    to_dm = eventfd(0, EFD_CLOEXEC);
    return to_dm < 0 ? -1 : 0;
}

static int start_consumer(void)
{
    if (prepare_floor()) return -1;
    from_dm = eventfd(0, EFD_CLOEXEC);
    if (from_dm < 0) return -1;
    memset(&floor_port, 0, sizeof floor_port);
    floor_port.fd = to_dm;
    return pthread_create(&consumer, NULL, device_model, NULL) ? -1 : 0;
}

static void stop_consumer(void)
{
    stop = 1;
    if (mode != MODE_BUSY) post(to_dm);   /* busy: the consumer sees stop while spinning; otherwise this wakes it */
    pthread_join(consumer, NULL);
    close(to_dm);
    close(from_dm);
}

/* The producer ("Xen"): iterations round trips of one 4-byte MMIO read through the page's slot of vcpu, notifying the
 * consumer on to_consumer and waiting on from_consumer (eventfd mode), or notifying port (polled mode); returns ns per
 * round trip, or -1 when a response carried the wrong data. */
static double produce(shared_iopage_t *shared, int vcpu, int to_consumer, int from_consumer, struct xen_port *port, long iterations)
{
    ioreq_t *slot = &shared->vcpu_ioreq[vcpu];
    uint64_t sum = 0;
    double start = bench_now_ns();
    for (long i = 0; i < iterations; i++) {
        slot->addr = 0xE0000010u;
        slot->size = 4;
        slot->count = 1;
        slot->type = IOREQ_TYPE_COPY;
        slot->data = 0;
        *state_of(slot) = (uint8_t)(IOREQ_READ << 5);  /* dir = read, data_is_ptr = 0, df = 0, state = NONE */
        set_state(slot, STATE_IOREQ_READY, __ATOMIC_RELEASE);
        if (mode == MODE_POLLED) xen_notify(port);
        else notify(to_consumer);
        wait_state(slot, STATE_IORESP_READY, from_consumer);
        sum += slot->data;
        set_state(slot, STATE_IOREQ_NONE, __ATOMIC_RELAXED);
    }
    double elapsed = bench_now_ns() - start;
    return sum == (uint64_t)0x600D * (uint64_t)iterations ? elapsed / (double)iterations : -1;
}

#ifdef SLOT_ROUNDTRIP_LIBRARY
/*
 * Built as a shared library (-DSLOT_ROUNDTRIP_LIBRARY -shared) for the benchmark project's paired runner, which
 * alternates batches of this floor with batches through IoreqSdk in one process, on the same pinned CPUs, so that
 * both sides of each ratio meet the same machine — and the same producer: slot_produce drives the SDK's loopback
 * page with this file's producer, so the only difference left is the consumer. Pin the calling thread first.
 */
__attribute__((visibility("default"))) int slot_floor_start(int notification, int cpu)
{
    mode = notification;
    consumer_cpu = cpu;
    return start_consumer();
}

__attribute__((visibility("default"))) double slot_floor_run(long iterations) { return produce(page, 0, to_dm, from_dm, &floor_port, iterations); }

__attribute__((visibility("default"))) void slot_floor_stop(void) { stop_consumer(); }

/* Round trips through another consumer's page. The C floor's consumer must be stopped: mode and stop are shared
 * (and stop, left set by slot_floor_stop, would end every wait at once). */
__attribute__((visibility("default"))) double slot_produce(void *shared, int notification, int to_consumer, int from_consumer, long iterations)
{
    if (notification == MODE_POLLED) return -1;   /* it needs a port: slot_produce_polled */
    mode = notification;
    stop = 0;
    return produce(shared, 0, to_consumer, from_consumer, NULL, iterations);
}

/* The same through another consumer's page and event-channel port (polled mode). */
__attribute__((visibility("default"))) double slot_produce_polled(void *shared, struct xen_port *port, long iterations)
{
    mode = MODE_POLLED;
    stop = 0;
    return produce(shared, 0, -1, -1, port, iterations);
}

/*
 * Several vCPUs at once, eventfd: consumer threads ("loops") serving the slots of the page, loop k the slots v with
 * v % loops == k (Xen's one event channel per vCPU, as one eventfd each loop waits on and one per vCPU it answers
 * on), and one producer thread per vCPU, each making its round trips on its own slot and posting its loop's eventfd.
 * What a consumer does per request is serve() as above; per wake-up it looks at each of its slots, as the SDK's loops
 * take every pending port. Loop 0 is pinned to the consumer CPU, the others are left to the scheduler (as the SDK's
 * request loops are in the paired run).
 */
#define MAX_VCPUS 64
#define MAX_LOOPS 8

static int many_vcpus;
static int many_loops;
static int many_from[MAX_VCPUS];
static int many_to[MAX_VCPUS];
static int loop_to[MAX_LOOPS];
static int loop_index[MAX_LOOPS];
static pthread_t many_consumer[MAX_LOOPS];

static void *many_device_model(void *arg)
{
    int loop = *(int *)arg;
    if (loop == 0) pin(consumer_cpu);
    int to = loop_to[loop];
    uint64_t n;
    while (!stop) {
        int served = 0;
        for (int v = loop; v < many_vcpus; v += many_loops) {
            if (get_state(&page->vcpu_ioreq[v]) == STATE_IOREQ_READY) {
                serve(&page->vcpu_ioreq[v]);
                post(many_from[v]);
                served = 1;
            }
        }
        /* After a pass that served, another before sleeping: requests made meanwhile are taken without a system call
         * (the SDK's loopback, too, looks at its slots before it waits). Every producer posts after its READY store,
         * so a request made after the last pass leaves a count, and the read returns at once to look again. */
        if (served) continue;
        if (read(to, &n, sizeof n) != sizeof n && errno != EINTR) { perror("read"); exit(1); }
    }
    return NULL;
}

/* What slot_floor_start_many made so far, for its failure path and slot_floor_stop_many to undo exactly that. */
static int many_loop_fds, many_vcpu_fds, many_threads;

static void undo_many(void)
{
    stop = 1;
    for (int k = 0; k < many_threads; k++) post(loop_to[k]);
    for (int k = 0; k < many_threads; k++) pthread_join(many_consumer[k], NULL);
    for (int k = 0; k < many_loop_fds; k++) close(loop_to[k]);   /* loop_to[0] is prepare_floor's to_dm */
    for (int v = 0; v < many_vcpu_fds; v++) close(many_from[v]);
    many_loop_fds = many_vcpu_fds = many_threads = 0;
}

/* Starts `loops` consumers of vcpus slots (eventfd), loop 0 pinned to cpu (or anywhere when negative); 0 on success. */
__attribute__((visibility("default"))) int slot_floor_start_many(int vcpus, int loops, int cpu)
{
    /* A start while started (no stop between) would reuse the running consumers' descriptors: refused. */
    if (many_threads || many_loop_fds || many_vcpu_fds) return -1;
    if (vcpus < 1 || vcpus > MAX_VCPUS || loops < 1 || loops > MAX_LOOPS || loops > vcpus || prepare_floor()) return -1;
    mode = MODE_EVENTFD;
    consumer_cpu = cpu;
    many_vcpus = vcpus;
    many_loops = loops;
    loop_to[0] = to_dm;
    many_loop_fds = 1;
    for (; many_loop_fds < loops; many_loop_fds++)
        if ((loop_to[many_loop_fds] = eventfd(0, EFD_CLOEXEC)) < 0) goto failed;
    for (; many_vcpu_fds < vcpus; many_vcpu_fds++) {
        if ((many_from[many_vcpu_fds] = eventfd(0, EFD_CLOEXEC)) < 0) goto failed;
        many_to[many_vcpu_fds] = loop_to[many_vcpu_fds % loops];
    }
    for (; many_threads < loops; many_threads++) {
        loop_index[many_threads] = many_threads;
        if (pthread_create(&many_consumer[many_threads], NULL, many_device_model, &loop_index[many_threads])) goto failed;
    }
    return 0;
failed:
    undo_many();
    return -1;
}

__attribute__((visibility("default"))) void slot_floor_stop_many(void) { undo_many(); }

struct producer {
    pthread_t thread;
    shared_iopage_t *page;
    int vcpu, to_consumer, from_consumer, cpu;
    long iterations;
    pthread_barrier_t *start;
    double result;
};

static void *producer_thread(void *arg)
{
    struct producer *p = arg;
    pin(p->cpu);
    pthread_barrier_wait(p->start);
    p->result = produce(p->page, p->vcpu, p->to_consumer, p->from_consumer, NULL, p->iterations);
    return NULL;
}

/* vcpus producer threads (pinned to producer_cpu, or anywhere when negative), vCPU v on slot v making `each` round
 * trips, notifying to_consumer[v] and waiting on from_consumer[v]; ns per request over all of them (the batch's wall
 * time from the common start over vcpus * each), or -1 when an answer was wrong or a thread did not start. */
static double produce_many(shared_iopage_t *shared, int vcpus, const int *to_consumer, const int *from_consumer, long each, int producer_cpu)
{
    struct producer producers[MAX_VCPUS];
    pthread_barrier_t start;
    if (vcpus < 1 || vcpus > MAX_VCPUS || pthread_barrier_init(&start, NULL, (unsigned)vcpus + 1)) return -1;
    mode = MODE_EVENTFD;
    stop = 0;
    for (int v = 0; v < vcpus; v++) {
        producers[v] = (struct producer){ .page = shared, .vcpu = v, .to_consumer = to_consumer[v],
            .from_consumer = from_consumer[v], .cpu = producer_cpu, .iterations = each, .start = &start };
        if (pthread_create(&producers[v].thread, NULL, producer_thread, &producers[v])) { perror("pthread_create"); exit(1); }
    }
    pthread_barrier_wait(&start);
    double begin = bench_now_ns();
    int ok = 1;
    for (int v = 0; v < vcpus; v++) {
        pthread_join(producers[v].thread, NULL);
        ok &= producers[v].result >= 0;
    }
    double elapsed = bench_now_ns() - begin;
    pthread_barrier_destroy(&start);
    return ok ? elapsed / ((double)vcpus * (double)each) : -1;
}

__attribute__((visibility("default"))) double slot_floor_run_many(long each, int producer_cpu)
{
    return produce_many(page, many_vcpus, many_to, many_from, each, producer_cpu);
}

/* The same producers through another consumer's page and eventfds (the SDK's loopback; to_consumer[v]: the eventfd of
 * vCPU v's loop). */
__attribute__((visibility("default"))) double slot_produce_many(void *shared, int vcpus, const int *to_consumer, const int *from_consumer, long each, int producer_cpu)
{
    return produce_many(shared, vcpus, to_consumer, from_consumer, each, producer_cpu);
}
#else
int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "busy") && strcmp(argv[1], "eventfd") && strcmp(argv[1], "polled"))) {
        fprintf(stderr, "usage: %s busy|eventfd|polled [iterations [producer-cpu consumer-cpu]]\n", argv[0]);
        return 2;
    }
    mode = !strcmp(argv[1], "busy") ? MODE_BUSY : !strcmp(argv[1], "polled") ? MODE_POLLED : MODE_EVENTFD;
    long iterations = argc > 2 ? atol(argv[2]) : (mode != MODE_EVENTFD ? 2000000 : 200000);
    int producer_cpu = argc > 4 ? atoi(argv[3]) : -1;
    consumer_cpu = argc > 4 ? atoi(argv[4]) : -1;
    pin(producer_cpu);
    if (start_consumer()) { perror("start"); return 1; }
    double runs[BENCH_RUNS];
    for (int r = -1; r < BENCH_RUNS; r++) {                    /* run -1 warms up */
        double ns = produce(page, 0, to_dm, from_dm, &floor_port, iterations);
        if (ns < 0) { fprintf(stderr, "wrong data\n"); return 1; }
        if (r >= 0) runs[r] = ns;
    }
    stop_consumer();
    if (producer_cpu < 0)
        printf("roundtrip-%s %.1f\n", argv[1], bench_median(runs));
    else
        printf("roundtrip-%s-%s %.1f\n", argv[1], producer_cpu == consumer_cpu ? "1core" : "2cores", bench_median(runs));
    return 0;
}
#endif
