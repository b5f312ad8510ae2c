/*
 * The C baseline for IoreqSdk's virtio-blk read, end to end over the loopback Xen: a guest thread and a device model
 * of three threads, doing what IoreqSdk's VirtioBlkDevice on VirtioMmioTransport on an IoreqServer does, with the
 * same system calls on the same kind of buffers (Paired/PairedBlk.cs runs both sides in one process).
 *
 *   guest (the benchmark thread, "vCPU 0"): fill a virtio-blk IN header (a sector of a page-cached image), set the
 *         status byte to 0xFF, put head 0 of a 3-descriptor chain (header, data, status) in the available ring,
 *         release-store avail->idx; kick: a QueueNotify MMIO write through ioreq slot 0 (Xen's slot protocol, as
 *         slot_roundtrip.c's producer); wait for the interrupt; read InterruptStatus and write it to InterruptACK
 *         (two more MMIO round trips: what Linux's vm_interrupt does); take the used entry, check status, length
 *         and the data's first and last words against the image's pattern.
 *   server ("the event loop"): wait for the slot or for a completion; on QueueNotify answer the slot first
 *         (IORESP_READY, notify), then pass over the queue: used->flags = NO_NOTIFY, pop each chain (head from the
 *         available ring, each descriptor copied once and validated: index, flags, buffer inside RAM, readable before
 *         writable, chain no longer than the queue), read the header, check type and sector range, hand the request
 *         to the worker; then used->flags = 0, a full fence, look at avail->idx again. On a completion: write the
 *         status byte, the used entry, release-store used->idx, and unless the driver set NO_INTERRUPT raise the
 *         line (InterruptStatus |= 1; inject only when the line goes 0 -> 1, as the SDK's InterruptLine does).
 *   worker ("the device's I/O thread"): take a request, preadv() it from the image straight into guest RAM (one
 *         iovec per data descriptor: zero copy, as the SDK's pinned path), hand it back.
 *
 * Hand-offs, matching the SDK's (src/IoreqSdk/Server/OffLoopWorker.cs, LoopWork.cs): server -> worker is a mutex +
 * condition variable (the SDK: lock + Monitor.Pulse/Wait, futexes underneath); worker -> server is a mutex held
 * around the enqueue and the wake (the SDK: its worker lock, a lock-free completion queue and the loop's wake lock)
 * and the wake itself: the server's eventfd (the loopback's event channel interrupt) or, busy-polling, a flag the
 * server spins on. Guest -> server: the server's eventfd, or the slot's state byte. Server -> guest: the vCPU's
 * eventfd for the slot, and for the interrupt an injection counter plus (eventfd mode) an interrupt eventfd.
 *
 * Several queues (blk_mq_guest_*, blk_floor_start_mq): the same device model with a queue per guest vCPU and one slot
 * per vCPU, driven by a guest of a thread per queue and one more that takes the interrupt (see there).
 *
 * Built as a shared library only (-DBLK_ROUNDTRIP_LIBRARY): the paired runner loads it, and its guests (blk_guest_init
 * and blk_guest_run; blk_mq_guest_*) drive the SDK's loopback too, so both sides run the same guest code.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>
#include "bench.h"
#include <xen/xen.h>
#include <xen/hvm/ioreq.h>

#ifndef BLK_ROUNDTRIP_LIBRARY
#error "blk_roundtrip.c is built as a library for the paired runner (-DBLK_ROUNDTRIP_LIBRARY)"
#endif

#define EXPORT __attribute__((visibility("default")))

/* The layout; Blk/VirtioBlkLoopback.cs mirrors it. */
#define RAM_BASE 0x40000000ull
#define RAM_SIZE (1u << 20)
#define QUEUE_SIZE 128u
#define DESC_AREA 0x0000u
#define AVAIL_AREA 0x1000u
#define USED_AREA 0x2000u
#define HEADER 0x3000u
#define STATUS 0x3010u
#define DATA 0x10000u
/* Several queues (the multi-queue pairs): queue q's rings, header and status at q * QUEUE_SPAN from the above, its data
 * at DATA + q * DATA_SPAN; queue 0's layout is the single queue's. One vCPU per queue, and one more that takes the
 * interrupt (the last slot). */
#define MAX_QUEUES 4u
#define QUEUE_SPAN 0x4000u
#define DATA_SPAN 0x10000u
#define MAX_VCPUS (MAX_QUEUES + 1u)
#define MMIO_BASE 0x02000000ull       /* GUEST_VIRTIO_MMIO_BASE: the first virtio-mmio slot of an Arm guest */
#define REG_QUEUE_NOTIFY 0x050u
#define REG_INTERRUPT_STATUS 0x060u
#define REG_INTERRUPT_ACK 0x064u
#define IMAGE_SIZE (64ull << 20)

#define F_NEXT 1u
#define F_WRITE 2u
#define AVAIL_F_NO_INTERRUPT 1u
#define USED_F_NO_NOTIFY 1u
#define BLK_T_IN 0u
#define BLK_S_OK 0u
#define BLK_S_IOERR 1u
#define BLK_S_UNSUPP 2u
#define STATE_BYTE 30 /* state:4, data_is_ptr:1, dir:1, df:1 share one byte (as slot_roundtrip.c) */

struct desc { uint64_t addr; uint32_t len; uint16_t flags; uint16_t next; };
struct used_elem { uint32_t id; uint32_t len; };
struct blk_header { uint32_t type; uint32_t reserved; uint64_t sector; };

/* The image's content: the 64-bit word at byte offset o; Blk/VirtioBlkLoopback.cs writes the file with it. */
static inline uint64_t pattern(uint64_t offset) { return (offset + 1) * 0x9E3779B97F4A7C15ull; }

static inline uint8_t *state_of(ioreq_t *p) { return (uint8_t *)p + STATE_BYTE; }

static inline void set_state(ioreq_t *p, uint8_t state, int order)
{
    uint8_t *b = state_of(p);
    uint8_t v = (uint8_t)((__atomic_load_n(b, __ATOMIC_RELAXED) & 0xF0) | state);
    __atomic_store_n(b, v, order);
}

static inline uint8_t get_state(ioreq_t *p) { return __atomic_load_n(state_of(p), __ATOMIC_ACQUIRE) & 0x0F; }

static void post(int fd)
{
    uint64_t one = 1;
    if (write(fd, &one, sizeof one) != sizeof one) { perror("write"); exit(1); }
}

static void take(int fd)
{
    uint64_t n;
    if (read(fd, &n, sizeof n) != sizeof n && errno != EINTR) { perror("read"); exit(1); }
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

/* ---------------------------------------------------------------------------------------------------------------
 * The guest. Its state is mirrored by Paired/PairedBlk.cs (struct BlkGuest), field for field.
 */
struct blk_guest {
    uint8_t *ram;                /* guest RAM at RAM_BASE */
    shared_iopage_t *page;       /* the ioreq page: slot 0 is this vCPU's */
    uint32_t *irq_count;         /* injections so far (the "interrupt controller") */
    int32_t busy;                /* spin on the slot and the counter instead of sleeping on eventfds */
    int32_t to_server;           /* the server's eventfd (eventfd mode) */
    int32_t from_server;         /* this vCPU's eventfd: the slot was answered */
    int32_t irq_fd;              /* the interrupt eventfd */
    uint32_t irq_seen;
    uint32_t block;              /* bytes per read: 4096 or 65536 */
    int32_t random;              /* random sectors (else sequential) */
    uint16_t avail_idx;
    uint16_t last_used;
    uint32_t pad;
    uint64_t rng;                /* xorshift64 state (random) */
    uint64_t next;               /* the next block (sequential) */
};

/* One MMIO access of 4 bytes by vCPU `vcpu`, through its slot, as Xen sends it; returns the response's data. */
static uint64_t mmio_on(shared_iopage_t *page, unsigned vcpu, int busy, int to_server, int from_server, uint64_t address,
                        int write, uint64_t data)
{
    ioreq_t *slot = &page->vcpu_ioreq[vcpu];
    slot->addr = address;
    slot->size = 4;
    slot->count = 1;
    slot->type = IOREQ_TYPE_COPY;
    slot->data = data;
    *state_of(slot) = (uint8_t)((write ? IOREQ_WRITE : IOREQ_READ) << 5);  /* data_is_ptr = 0, df = 0, state = NONE */
    set_state(slot, STATE_IOREQ_READY, __ATOMIC_RELEASE);                 /* the fields before READY (Xen's smp_wmb) */
    if (!busy) post(to_server);
    while (get_state(slot) != STATE_IORESP_READY) {
        if (!busy) take(from_server);
    }
    uint64_t result = slot->data;
    set_state(slot, STATE_IOREQ_NONE, __ATOMIC_RELAXED);
    return result;
}

static uint64_t mmio(struct blk_guest *g, uint64_t address, int write, uint64_t data)
{
    return mmio_on(g->page, 0, g->busy, g->to_server, g->from_server, address, write, data);
}

/* Continues from whatever the rings say now (the C# side may have run requests on the same queue first). */
EXPORT void blk_guest_init(struct blk_guest *g, uint8_t *ram, void *page, uint32_t *irq_count, int busy, int to_server,
                           int from_server, int irq_fd, uint32_t block, int random)
{
    g->ram = ram;
    g->page = page;
    g->irq_count = irq_count;
    g->busy = busy;
    g->to_server = to_server;
    g->from_server = from_server;
    g->irq_fd = irq_fd;
    g->irq_seen = __atomic_load_n(irq_count, __ATOMIC_ACQUIRE);
    g->block = block;
    g->random = random;
    g->avail_idx = __atomic_load_n((uint16_t *)(ram + AVAIL_AREA + 2), __ATOMIC_RELAXED);
    g->last_used = __atomic_load_n((uint16_t *)(ram + USED_AREA + 2), __ATOMIC_ACQUIRE);
    g->rng = 0x2545F4914F6CDD1Dull;
    g->next = 0;
    struct desc *table = (struct desc *)(ram + DESC_AREA);
    table[0] = (struct desc){ RAM_BASE + HEADER, sizeof(struct blk_header), F_NEXT, 1 };
    table[1] = (struct desc){ RAM_BASE + DATA, block, F_WRITE | F_NEXT, 2 };
    table[2] = (struct desc){ RAM_BASE + STATUS, 1, F_WRITE, 0 };
}

/* A fixed pseudo-random sequence (xorshift64): the next of `blocks` blocks. Blk/VirtioBlkLoopback.cs has its twin. */
static uint64_t random_block(uint64_t *state, uint64_t blocks)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return (x >> 11) % blocks;
}

/* The next block to read: the random sequence's, or the next one. */
static uint64_t next_block(struct blk_guest *g)
{
    uint64_t blocks = IMAGE_SIZE / g->block;
    if (!g->random) return g->next++ % blocks;
    return random_block(&g->rng, blocks);
}

/* Posts a read of `offset` on the queue whose rings, header and status are at `base`: the header, status 0xFF, head 0
 * (the descriptor table is written once) in the available ring, and the index. */
static void post_read(uint8_t *ram, uint32_t base, uint16_t *avail_idx, uint64_t offset)
{
    *(struct blk_header *)(ram + base + HEADER) = (struct blk_header){ BLK_T_IN, 0, offset >> 9 };
    ram[base + STATUS] = 0xFF;
    ((uint16_t *)(ram + base + AVAIL_AREA + 4))[*avail_idx & (QUEUE_SIZE - 1)] = 0;
    (*avail_idx)++;
    /* Release: the descriptors, header and ring entry before the index (the spec's write barrier). */
    __atomic_store_n((uint16_t *)(ram + base + AVAIL_AREA + 2), *avail_idx, __ATOMIC_RELEASE);
}

/* One read, end to end; 0, or -1 when anything came back wrong. */
static int guest_read(struct blk_guest *g)
{
    uint8_t *ram = g->ram;
    uint64_t offset = next_block(g) * g->block;
    post_read(ram, 0, &g->avail_idx, offset);
    mmio(g, MMIO_BASE + REG_QUEUE_NOTIFY, 1, 0);

    /* The interrupt: acquire pairs with the injector's release, so the used ring it announces is visible. */
    uint32_t count;
    while ((count = __atomic_load_n(g->irq_count, __ATOMIC_ACQUIRE)) == g->irq_seen) {
        if (!g->busy) take(g->irq_fd);
    }
    g->irq_seen = count;
    uint32_t isr = (uint32_t)mmio(g, MMIO_BASE + REG_INTERRUPT_STATUS, 0, 0);
    mmio(g, MMIO_BASE + REG_INTERRUPT_ACK, 1, isr);

    uint16_t used = __atomic_load_n((uint16_t *)(ram + USED_AREA + 2), __ATOMIC_ACQUIRE);
    if (used != (uint16_t)(g->last_used + 1) || !(isr & 1)) return -1;
    struct used_elem e = ((struct used_elem *)(ram + USED_AREA + 4))[g->last_used & (QUEUE_SIZE - 1)];
    g->last_used++;
    uint64_t *data = (uint64_t *)(ram + DATA);
    uint64_t last = offset + g->block - 8;
    if (e.id != 0 || e.len != g->block + 1 || ram[STATUS] != BLK_S_OK || data[0] != pattern(offset)
        || data[g->block / 8 - 1] != pattern(last))
        return -1;
    return 0;
}

/* iterations reads; ns per read, or -1 when one came back wrong. */
EXPORT double blk_guest_run(struct blk_guest *g, long iterations)
{
    double start = bench_now_ns();
    for (long i = 0; i < iterations; i++) {
        if (guest_read(g)) return -1;
    }
    return (bench_now_ns() - start) / (double)iterations;
}

/* ---------------------------------------------------------------------------------------------------------------
 * The multi-queue guest: one vCPU thread per queue, each with its own slot, posting one 4 KiB random read at a time on
 * its own queue and kicking it (QueueNotify = its queue); and the interrupt's vCPU — the calling thread, with the last
 * slot — doing what Linux's vm_interrupt does for the one virtio-mmio line: read InterruptStatus, write it to
 * InterruptACK, then look at every queue's used ring and complete what came (here: wake the queue's vCPU thread, as
 * blk-mq completes a request on the CPU that sent it). Every thread on one CPU; eventfds only (no busy polling).
 * Opaque to the C# side: created, attached to a device model's RAM and fds, run, destroyed.
 */
struct mq_vcpu {
    struct blk_mq_guest *g;
    unsigned queue;
    uint16_t avail_idx, last_used;
    uint16_t seen_used;          /* the used index the interrupt's vCPU last looked at (its thread only) */
    int done_fd;                 /* the interrupt's vCPU wakes this queue's vCPU */
    int failed;
    uint64_t rng;
    long iterations;
    pthread_t thread;
};

struct blk_mq_guest {
    uint8_t *ram;
    shared_iopage_t *page;
    uint32_t *irq_count;
    int irq_fd;
    unsigned queues;
    int cpu;
    int to_server[MAX_VCPUS];
    int from_server[MAX_VCPUS];
    uint32_t irq_seen;
    int running;                 /* queue vCPUs not finished (atomic) */
    pthread_barrier_t start;
    struct mq_vcpu v[MAX_QUEUES];
};

EXPORT struct blk_mq_guest *blk_mq_guest_create(unsigned queues)
{
    if (queues < 1 || queues > MAX_QUEUES) return NULL;
    struct blk_mq_guest *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->queues = queues;
    for (unsigned q = 0; q < queues; q++) {
        g->v[q].g = g;
        g->v[q].queue = q;
        g->v[q].rng = 0x2545F4914F6CDD1Dull + q;   /* each queue its own sequence; the same on both sides */
        if ((g->v[q].done_fd = eventfd(0, EFD_CLOEXEC)) < 0) {
            while (q-- > 0) close(g->v[q].done_fd);
            free(g);
            return NULL;
        }
    }
    return g;
}

EXPORT void blk_mq_guest_destroy(struct blk_mq_guest *g)
{
    for (unsigned q = 0; q < g->queues; q++) close(g->v[q].done_fd);
    free(g);
}

/* Attaches to a device model's RAM, slots and fds (queue q's vCPU is q, the interrupt's is `queues`), continuing from
 * whatever the rings say now; writes each queue's descriptor table. */
EXPORT void blk_mq_guest_attach(struct blk_mq_guest *g, uint8_t *ram, void *page, uint32_t *irq_count,
                                const int *to_server, const int *from_server, int irq_fd)
{
    g->ram = ram;
    g->page = page;
    g->irq_count = irq_count;
    g->irq_fd = irq_fd;
    g->irq_seen = __atomic_load_n(irq_count, __ATOMIC_ACQUIRE);
    for (unsigned v = 0; v <= g->queues; v++) {
        g->to_server[v] = to_server[v];
        g->from_server[v] = from_server[v];
    }
    for (unsigned q = 0; q < g->queues; q++) {
        struct mq_vcpu *v = &g->v[q];
        uint32_t base = q * QUEUE_SPAN;
        v->avail_idx = __atomic_load_n((uint16_t *)(ram + base + AVAIL_AREA + 2), __ATOMIC_RELAXED);
        v->last_used = v->seen_used = __atomic_load_n((uint16_t *)(ram + base + USED_AREA + 2), __ATOMIC_ACQUIRE);
        struct desc *table = (struct desc *)(ram + base + DESC_AREA);
        table[0] = (struct desc){ RAM_BASE + base + HEADER, sizeof(struct blk_header), F_NEXT, 1 };
        table[1] = (struct desc){ RAM_BASE + DATA + q * DATA_SPAN, 4096, F_WRITE | F_NEXT, 2 };
        table[2] = (struct desc){ RAM_BASE + base + STATUS, 1, F_WRITE, 0 };
    }
}

static int mq_read(struct mq_vcpu *v)
{
    struct blk_mq_guest *g = v->g;
    uint8_t *ram = g->ram;
    uint32_t base = v->queue * QUEUE_SPAN;
    uint64_t offset = random_block(&v->rng, IMAGE_SIZE / 4096) * 4096;
    post_read(ram, base, &v->avail_idx, offset);
    mmio_on(g->page, v->queue, 0, g->to_server[v->queue], g->from_server[v->queue], MMIO_BASE + REG_QUEUE_NOTIFY, 1,
            v->queue);

    /* Woken by the interrupt's vCPU once it saw this queue's used index move (acquire: the entry and the data). */
    uint16_t used;
    while ((used = __atomic_load_n((uint16_t *)(ram + base + USED_AREA + 2), __ATOMIC_ACQUIRE)) == v->last_used) {
        take(v->done_fd);
    }
    if (used != (uint16_t)(v->last_used + 1)) return -1;
    struct used_elem e = ((struct used_elem *)(ram + base + USED_AREA + 4))[v->last_used & (QUEUE_SIZE - 1)];
    v->last_used++;
    uint64_t *data = (uint64_t *)(ram + DATA + v->queue * DATA_SPAN);
    if (e.id != 0 || e.len != 4096 + 1 || ram[base + STATUS] != BLK_S_OK || data[0] != pattern(offset)
        || data[4096 / 8 - 1] != pattern(offset + 4096 - 8))
        return -1;
    return 0;
}

static void *mq_vcpu_thread(void *arg)
{
    struct mq_vcpu *v = arg;
    pin(v->g->cpu);
    pthread_barrier_wait(&v->g->start);
    for (long i = 0; i < v->iterations && !v->failed; i++) {
        if (mq_read(v)) v->failed = 1;
    }
    /* The last one to finish wakes the interrupt's vCPU, which then returns. */
    if (__atomic_sub_fetch(&v->g->running, 1, __ATOMIC_ACQ_REL) == 0) post(v->g->irq_fd);
    return NULL;
}

/* The interrupt's vCPU (the last slot) reads InterruptStatus and writes it to InterruptACK, as vm_interrupt does. */
static void acknowledge(struct blk_mq_guest *g)
{
    unsigned v = g->queues;
    uint32_t isr = (uint32_t)mmio_on(g->page, v, 0, g->to_server[v], g->from_server[v], MMIO_BASE + REG_INTERRUPT_STATUS,
                                     0, 0);
    mmio_on(g->page, v, 0, g->to_server[v], g->from_server[v], MMIO_BASE + REG_INTERRUPT_ACK, 1, isr);
}

/* `each` reads per queue, every queue at once; ns per read over all of them, or -1 when one came back wrong. */
EXPORT double blk_mq_guest_run(struct blk_mq_guest *g, long each, int cpu)
{
    g->cpu = cpu;
    pin(cpu);
    /* The last injection of the previous run may not have been acknowledged (its read's vCPU saw the used entry and
     * finished first): the line would stay up and never inject again. So, untimed, as a driver's probe does, one read
     * of InterruptStatus and its ACK; the counter is read first, so a raise the device was still doing only makes the
     * loop below look once more. */
    g->irq_seen = __atomic_load_n(g->irq_count, __ATOMIC_ACQUIRE);
    acknowledge(g);
    g->running = (int)g->queues;
    if (pthread_barrier_init(&g->start, NULL, g->queues + 1)) return -1;
    for (unsigned q = 0; q < g->queues; q++) {
        g->v[q].iterations = each;
        g->v[q].failed = 0;
        if (pthread_create(&g->v[q].thread, NULL, mq_vcpu_thread, &g->v[q])) { perror("pthread_create"); exit(1); }
    }
    pthread_barrier_wait(&g->start);
    double start = bench_now_ns();
    while (__atomic_load_n(&g->running, __ATOMIC_ACQUIRE) != 0) {
        uint32_t count = __atomic_load_n(g->irq_count, __ATOMIC_ACQUIRE);
        if (count == g->irq_seen) {
            take(g->irq_fd);   /* an injection, or the last vCPU's finish */
            continue;
        }
        g->irq_seen = count;
        acknowledge(g);
        /* After the ACK, every queue's used ring: a completion after the status read raised no new injection (the
         * line was up) but is in its ring before the ACK's answer (the device's one thread did both). */
        for (unsigned q = 0; q < g->queues; q++) {
            struct mq_vcpu *v = &g->v[q];
            uint16_t used = __atomic_load_n((uint16_t *)(g->ram + q * QUEUE_SPAN + USED_AREA + 2), __ATOMIC_ACQUIRE);
            if (used != v->seen_used) {
                v->seen_used = used;
                post(v->done_fd);
            }
        }
    }
    double ns = (bench_now_ns() - start) / (double)(each * (long)g->queues);
    int failed = 0;
    for (unsigned q = 0; q < g->queues; q++) {
        pthread_join(g->v[q].thread, NULL);
        failed |= g->v[q].failed;
    }
    pthread_barrier_destroy(&g->start);
    return failed ? -1 : ns;
}

/* ---------------------------------------------------------------------------------------------------------------
 * The device model: server thread and worker thread, one queue or several (one vCPU slot each, and the interrupt's).
 */
#define SLOTS 8u   /* requests in flight per queue at most (the SDK's MaxRequestsInFlight, 8 by default) */
#define IN_FLIGHT (SLOTS * MAX_QUEUES)   /* a power of two: the hand-off rings' size */

struct request {
    uint16_t head;
    uint8_t status;
    uint8_t queue;
    uint32_t length;             /* data bytes */
    uint64_t offset;             /* in the image */
    uint64_t status_addr;
    int iovs;
    struct iovec iov[QUEUE_SIZE];
};

/* One queue's device side (server thread only). */
struct queue {
    uint32_t base;               /* its rings' offset in RAM: q * QUEUE_SPAN */
    uint16_t last_avail, used_idx;
    int free_count;
    int completed;               /* completions since the last look at the driver's flags */
    struct request *free_slots[SLOTS];
    struct request slots[SLOTS];
};

static struct floor {
    shared_iopage_t *page;
    uint8_t *ram;
    uint32_t irq_count;
    int busy, cpu, worker_cpu, image;
    unsigned queues, vcpus;
    int to_dm, irq_fd;
    int from_dm[MAX_VCPUS];
    volatile int stop;
    int started;                 /* threads running: 0, 1 (server) or 2 (and worker) */
    int open_fds;                /* whether image, to_dm, irq_fd and from_dm[0 .. vcpus) may be open */
    pthread_t server, worker;

    /* The device (server thread only). */
    uint32_t isr;
    int line;
    struct queue q[MAX_QUEUES];

    /* server -> worker: under lock, signalled on cond. */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct request *work[IN_FLIGHT];
    unsigned work_head, work_tail;

    /* worker -> server: written under lock by the worker, read lock-free by the server (one producer, one consumer). */
    struct request *done[IN_FLIGHT];
    unsigned done_head, done_tail;  /* done_tail: release by the worker, acquire by the server */
} f;

static inline struct desc read_desc(const struct queue *q, uint16_t index)
{
    struct desc d;
    memcpy(&d, f.ram + q->base + DESC_AREA + 16u * index, sizeof d);   /* copied once: the guest may rewrite it */
    return d;
}

static inline int in_ram(uint64_t addr, uint32_t len) { return addr >= RAM_BASE && len <= RAM_SIZE && addr - RAM_BASE <= RAM_SIZE - len; }

/* Pops and validates one chain into r; 0, or -1 for a chain the device cannot use (answered IOERR when it can be). */
static int pop_chain(const struct queue *q, uint16_t head, struct request *r)
{
    r->head = head;
    r->iovs = 0;
    r->status_addr = 0;
    if (head >= QUEUE_SIZE) return -1;
    uint64_t header_addr = 0;
    uint32_t header_len = 0, writable = 0;
    uint64_t last_addr = 0;
    uint32_t last_len = 0;
    uint16_t index = head;
    for (unsigned n = 0;; n++) {
        if (n == QUEUE_SIZE) return -1;                        /* longer than the queue: a loop */
        struct desc d = read_desc(q, index);
        if (!in_ram(d.addr, d.len) || d.len == 0) return -1;
        if (d.flags & F_WRITE) {
            if (writable++) {
                r->iov[r->iovs].iov_base = f.ram + (last_addr - RAM_BASE);
                r->iov[r->iovs++].iov_len = last_len;
            }
            last_addr = d.addr;
            last_len = d.len;
        } else {
            if (writable || header_len) return -1;             /* readable after writable; one header descriptor here */
            header_addr = d.addr;
            header_len = d.len;
        }
        if (!(d.flags & F_NEXT)) break;
        if (d.next >= QUEUE_SIZE) return -1;
        index = d.next;
    }
    if (!writable) return -1;
    /* The status byte is the last writable one; the rest of that descriptor is data. */
    r->status_addr = last_addr + last_len - 1;
    if (last_len > 1) {
        r->iov[r->iovs].iov_base = f.ram + (last_addr - RAM_BASE);
        r->iov[r->iovs++].iov_len = last_len - 1;
    }
    struct blk_header h;
    if (header_len < sizeof h) return -1;
    memcpy(&h, f.ram + (header_addr - RAM_BASE), sizeof h);
    uint64_t length = 0;
    for (int i = 0; i < r->iovs; i++) length += r->iov[i].iov_len;
    if (h.type != BLK_T_IN) { r->status = BLK_S_UNSUPP; return -1; }
    if ((length & 511) || h.sector > (IMAGE_SIZE >> 9) || length > IMAGE_SIZE - (h.sector << 9)) return -1;
    r->offset = h.sector << 9;
    r->length = (uint32_t)length;
    return 0;
}

static void raise_interrupt(void)
{
    f.isr |= 1;
    if (f.line) return;                                         /* asserting an asserted line changes nothing */
    f.line = 1;
    __atomic_add_fetch(&f.irq_count, 1, __ATOMIC_RELEASE);      /* the used ring before the injection */
    if (!f.busy) post(f.irq_fd);
}

static void complete(struct request *r, uint8_t status, uint32_t written)
{
    struct queue *q = &f.q[r->queue];
    if (r->status_addr) f.ram[r->status_addr - RAM_BASE] = status;
    struct used_elem *ring = (struct used_elem *)(f.ram + q->base + USED_AREA + 4);
    ring[q->used_idx & (QUEUE_SIZE - 1)] = (struct used_elem){ r->head, r->status_addr ? written + 1 : 0 };
    q->used_idx++;
    /* Release: the status, the data (the worker's, ordered by the hand-over) and the entry before the index. */
    __atomic_store_n((uint16_t *)(f.ram + q->base + USED_AREA + 2), q->used_idx, __ATOMIC_RELEASE);
    q->free_slots[q->free_count++] = r;
    q->completed = 1;
}

/* The queue's completions announced: the line raised unless the driver set NO_INTERRUPT (one line for every queue). */
static void signal_used(struct queue *q)
{
    if (!q->completed) return;
    q->completed = 0;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);                   /* used->idx before reading the driver's flags */
    if (!(__atomic_load_n((uint16_t *)(f.ram + q->base + AVAIL_AREA), __ATOMIC_RELAXED) & AVAIL_F_NO_INTERRUPT)) raise_interrupt();
}

static void submit(struct request *r)
{
    pthread_mutex_lock(&f.lock);
    f.work[f.work_tail++ % IN_FLIGHT] = r;
    pthread_cond_signal(&f.cond);
    pthread_mutex_unlock(&f.lock);
}

/* A pass over a queue, as the SDK's Drain: notifications off, pop what fits, notifications on, look again. */
static void drain(struct queue *q)
{
    uint8_t *avail = f.ram + q->base + AVAIL_AREA;
    uint16_t *used_flags = (uint16_t *)(f.ram + q->base + USED_AREA);
    for (;;) {
        __atomic_store_n(used_flags, USED_F_NO_NOTIFY, __ATOMIC_RELAXED);
        while (q->free_count > 0) {
            uint16_t idx = __atomic_load_n((uint16_t *)(avail + 2), __ATOMIC_ACQUIRE);
            if (idx == q->last_avail) break;
            if ((uint16_t)(idx - q->last_avail) > QUEUE_SIZE) { f.stop = 1; return; }   /* needs reset */
            uint16_t head = ((uint16_t *)(avail + 4))[q->last_avail & (QUEUE_SIZE - 1)];
            q->last_avail++;
            struct request *r = q->free_slots[--q->free_count];
            r->queue = (uint8_t)(q - f.q);
            r->status = BLK_S_IOERR;
            if (pop_chain(q, head, r)) {
                complete(r, r->status, 0);
            } else {
                submit(r);
            }
        }
        if (q->free_count == 0) break;
        __atomic_store_n(used_flags, 0, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);                /* flags cleared before avail->idx is read again */
        if (__atomic_load_n((uint16_t *)(avail + 2), __ATOMIC_ACQUIRE) == q->last_avail) break;
    }
    signal_used(q);
}

static void serve_slot(unsigned vcpu)
{
    ioreq_t *slot = &f.page->vcpu_ioreq[vcpu];
    ioreq_t req = *slot;                                        /* one copy; never re-read from shared memory */
    set_state(slot, STATE_IOREQ_INPROCESS, __ATOMIC_RELAXED);
    struct queue *notified = NULL;
    uint64_t data = ~0ull;
    if (req.type == IOREQ_TYPE_COPY && req.size == 4 && req.count == 1 && !req.data_is_ptr
        && req.addr >= MMIO_BASE && req.addr < MMIO_BASE + 0x200) {
        uint64_t reg = req.addr - MMIO_BASE;
        if (req.dir == IOREQ_READ) {
            data = reg == REG_INTERRUPT_STATUS ? f.isr : 0;
        } else if (reg == REG_QUEUE_NOTIFY) {
            if ((uint32_t)req.data < f.queues) notified = &f.q[(uint32_t)req.data];
        } else if (reg == REG_INTERRUPT_ACK) {
            f.isr &= ~(uint32_t)req.data;
            if (!f.isr) f.line = 0;
        }
    }
    if (req.dir == IOREQ_READ) slot->data = data;
    set_state(slot, STATE_IORESP_READY, __ATOMIC_RELEASE);
    if (!f.busy) post(f.from_dm[vcpu]);
    if (notified) drain(notified);                              /* the doorbell is answered before the pass */
}

static void *server_thread(void *arg)
{
    (void)arg;
    pin(f.cpu);
    while (!f.stop) {
        /* Every slot, then the completions; sleep only after a pass that found nothing (no system call while work
         * waits: slot_roundtrip.c's consumer of many slots does the same). */
        int served = 0;
        for (unsigned v = 0; v < f.vcpus; v++) {
            if (get_state(&f.page->vcpu_ioreq[v]) == STATE_IOREQ_READY) {
                serve_slot(v);
                served = 1;
            }
        }
        unsigned tail = __atomic_load_n(&f.done_tail, __ATOMIC_ACQUIRE);
        if (tail != f.done_head) {
            while (f.done_head != tail) {
                struct request *r = f.done[f.done_head++ % IN_FLIGHT];
                complete(r, r->status, r->status == BLK_S_OK ? r->length : 0);
            }
            for (unsigned i = 0; i < f.queues; i++) {
                if (f.q[i].completed) drain(&f.q[i]);           /* freed room: what waits in the ring, then the line */
            }
            served = 1;
        }
        if (!served && !f.busy) take(f.to_dm);
    }
    return NULL;
}

static void *worker_thread(void *arg)
{
    (void)arg;
    pin(f.worker_cpu);
    for (;;) {
        pthread_mutex_lock(&f.lock);
        while (f.work_head == f.work_tail && !f.stop) pthread_cond_wait(&f.cond, &f.lock);
        if (f.stop) { pthread_mutex_unlock(&f.lock); return NULL; }
        struct request *r = f.work[f.work_head++ % IN_FLIGHT];
        pthread_mutex_unlock(&f.lock);

        ssize_t n = preadv(f.image, r->iov, r->iovs, (off_t)r->offset);
        r->status = n == (ssize_t)r->length ? BLK_S_OK : BLK_S_IOERR;

        pthread_mutex_lock(&f.lock);
        f.done[f.done_tail % IN_FLIGHT] = r;
        __atomic_store_n(&f.done_tail, f.done_tail + 1, __ATOMIC_RELEASE);  /* the request before the index */
        if (!f.busy) post(f.to_dm);
        pthread_mutex_unlock(&f.lock);
    }
}

/* Stops the threads that run and closes what is open: a stop, or a start that failed half-way. */
static void undo_floor(void)
{
    if (f.started) {
        pthread_mutex_lock(&f.lock);
        f.stop = 1;
        pthread_cond_signal(&f.cond);
        pthread_mutex_unlock(&f.lock);
        post(f.to_dm);   /* busy: the server sees stop while spinning; eventfd: this wakes it */
        pthread_join(f.server, NULL);
        if (f.started > 1) pthread_join(f.worker, NULL);
        pthread_mutex_destroy(&f.lock);
        pthread_cond_destroy(&f.cond);
    }
    if (f.open_fds) {
        if (f.image >= 0) close(f.image);
        if (f.to_dm >= 0) close(f.to_dm);
        if (f.irq_fd >= 0) close(f.irq_fd);
        for (unsigned v = 0; v < f.vcpus; v++) {
            if (f.from_dm[v] >= 0) close(f.from_dm[v]);
        }
    }
    f.started = f.open_fds = 0;
}

/* Starts the device model of `queues` queues and `vcpus` slots; 0, or -1 with nothing left running or open. */
static int floor_start(int busy_poll, int cpu, int worker_cpu, const char *image_path, unsigned queues, unsigned vcpus)
{
    /* A start while started (no stop between) would reuse the running threads' descriptors: refused. */
    if (f.started || f.open_fds) return -1;
    if (queues < 1 || queues > MAX_QUEUES || vcpus < 1 || vcpus > MAX_VCPUS) return -1;
    if (!f.page) {
        if (posix_memalign((void **)&f.page, 4096, 4096) || posix_memalign((void **)&f.ram, 4096, RAM_SIZE)) return -1;
    }
    memset(f.page, 0, 4096);
    memset(f.ram, 0, RAM_SIZE);
    f.busy = busy_poll;
    f.cpu = cpu;
    f.worker_cpu = worker_cpu;
    f.queues = queues;
    f.vcpus = vcpus;
    f.stop = 0;
    f.irq_count = 0;
    f.isr = 0;
    f.line = 0;
    f.work_head = f.work_tail = f.done_head = f.done_tail = 0;
    for (unsigned i = 0; i < queues; i++) {
        struct queue *q = &f.q[i];
        q->base = i * QUEUE_SPAN;
        q->last_avail = q->used_idx = 0;
        q->completed = 0;
        q->free_count = SLOTS;
        for (unsigned k = 0; k < SLOTS; k++) q->free_slots[k] = &q->slots[k];
    }
    f.open_fds = 1;
    f.image = open(image_path, O_RDONLY | O_CLOEXEC);
    f.to_dm = eventfd(0, EFD_CLOEXEC);
    f.irq_fd = eventfd(0, EFD_CLOEXEC);
    int failed = f.image < 0 || f.to_dm < 0 || f.irq_fd < 0;
    for (unsigned v = 0; v < f.vcpus; v++) {
        failed |= (f.from_dm[v] = eventfd(0, EFD_CLOEXEC)) < 0;
    }
    if (failed) goto undo;
    pthread_mutex_init(&f.lock, NULL);
    pthread_cond_init(&f.cond, NULL);
    if (pthread_create(&f.server, NULL, server_thread, NULL)) {
        pthread_mutex_destroy(&f.lock);
        pthread_cond_destroy(&f.cond);
        goto undo;
    }
    f.started = 1;
    if (pthread_create(&f.worker, NULL, worker_thread, NULL)) goto undo;
    f.started = 2;
    return 0;
undo:
    undo_floor();
    return -1;
}

static struct blk_guest floor_guest;
static uint64_t floor_rng = 0x2545F4914F6CDD1Dull, floor_next;

/* Starts the device model (server and worker pinned to their CPUs, or anywhere when negative) over a fresh queue. */
EXPORT int blk_floor_start(int busy_poll, int cpu, int worker_cpu, const char *image_path, uint32_t block, int random)
{
    if (floor_start(busy_poll, cpu, worker_cpu, image_path, 1, 1)) return -1;
    blk_guest_init(&floor_guest, f.ram, f.page, &f.irq_count, busy_poll, f.to_dm, f.from_dm[0], f.irq_fd, block, random);
    floor_guest.rng = floor_rng;    /* the sequence goes on from the previous batch, as the SDK side's does */
    floor_guest.next = floor_next;
    return 0;
}

EXPORT double blk_floor_run(long iterations)
{
    double ns = blk_guest_run(&floor_guest, iterations);
    floor_rng = floor_guest.rng;
    floor_next = floor_guest.next;
    return ns;
}

EXPORT void blk_floor_stop(void) { undo_floor(); }

/* The device model for the multi-queue guest (eventfds): `queues` queues, a vCPU each and the interrupt's, its threads
 * started on `cpu` and `worker_cpu` over fresh queues. */
EXPORT int blk_floor_start_mq(int cpu, int worker_cpu, const char *image_path, unsigned queues)
{
    return floor_start(0, cpu, worker_cpu, image_path, queues, queues + 1);
}

/* A multi-queue guest's run on the device model blk_floor_start_mq started: one eventfd in, one per vCPU out. */
EXPORT double blk_floor_run_mq(struct blk_mq_guest *g, long each, int cpu)
{
    if (g->queues + 1 != f.vcpus) return -1;   /* the guest's vCPUs are the model's slots */
    int to[MAX_VCPUS];
    for (unsigned v = 0; v < f.vcpus; v++) to[v] = f.to_dm;
    blk_mq_guest_attach(g, f.ram, f.page, &f.irq_count, to, f.from_dm, f.irq_fd);
    return blk_mq_guest_run(g, each, cpu);
}

/* The image's pattern, for the C# side's check (one definition of it). */
EXPORT uint64_t blk_pattern(uint64_t offset) { return pattern(offset); }
