/*
 * The C baseline for IoreqSdk's virtqueue consumer: a device's side of a virtio 1.2 split ring (§2.7) in one block
 * of "guest RAM" — take each available chain (read the head from the available ring, walk its descriptors, copying
 * each once and validating index, flags, length and that its buffer lies inside RAM, the chain no longer than the
 * queue), read the 16-byte request header from the readable part, write a status byte at the end of the writable
 * part, return the chain in the used ring — with the barriers the spec asks for (acquire on avail->idx, release on
 * used->idx). Each chain is three descriptors, as a virtio-blk request: header (readable, 16 B), data (writable,
 * 512 B), status (writable, 1 B). The driver posts 85 chains per round (all a 256-entry table holds) with
 * VRING_AVAIL_F_NO_INTERRUPT set, and reaps them after the device is done.
 *
 * Built as a shared library (-DVIRTQUEUE_LIBRARY) for the paired runner (Paired/PairedVirtqueue.cs), which times the
 * SDK's VirtioQueue on a ring of its own, driven by this file's driver functions, against vq_floor_run. Alone it
 * prints "virtqueue-pop-push ns_per_chain".
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bench.h"

#define QUEUE_SIZE 256u
#define CHAINS 85u                   /* 3 descriptors each: 255 of the table's 256 */
#define RAM_SIZE (1u << 20)
#define DESC_AREA 0x0000u
#define AVAIL_AREA 0x1000u
#define USED_AREA 0x2000u
#define HEADERS 0x10000u
#define DATA 0x20000u
#define STATUS 0x80000u

#define F_NEXT 1u
#define F_WRITE 2u
#define F_INDIRECT 4u
#define AVAIL_F_NO_INTERRUPT 1u

#define EXPORT __attribute__((visibility("default")))

struct desc { uint64_t addr; uint32_t len; uint16_t flags; uint16_t next; };
struct used_elem { uint32_t id; uint32_t len; };

/* The driver's state; its layout is mirrored by Paired/PairedVirtqueue.cs. */
struct vq_driver { uint8_t *ram; uint64_t base; uint16_t avail_idx; uint16_t last_used; uint32_t reaped; };

struct segment { uint64_t addr; uint32_t len; };
struct chain { uint16_t head; int readable, writable; struct segment seg[QUEUE_SIZE]; };

struct consumer { uint8_t *ram; uint64_t base; uint16_t last_avail; uint16_t used_idx; int broken; };

static inline uint16_t *avail_flags(uint8_t *ram) { return (uint16_t *)(ram + AVAIL_AREA); }
static inline uint16_t *avail_idx(uint8_t *ram) { return (uint16_t *)(ram + AVAIL_AREA + 2); }
static inline uint16_t *avail_ring(uint8_t *ram) { return (uint16_t *)(ram + AVAIL_AREA + 4); }
static inline uint16_t *used_idx(uint8_t *ram) { return (uint16_t *)(ram + USED_AREA + 2); }
static inline struct used_elem *used_ring(uint8_t *ram) { return (struct used_elem *)(ram + USED_AREA + 4); }

EXPORT void vq_driver_init(struct vq_driver *d, uint8_t *ram, uint64_t base)
{
    memset(ram, 0, USED_AREA + 0x1000);
    d->ram = ram;
    d->base = base;
    d->avail_idx = 0;
    d->last_used = 0;
    d->reaped = 0;
    struct desc *table = (struct desc *)(ram + DESC_AREA);
    for (unsigned c = 0; c < CHAINS; c++) {
        table[3 * c] = (struct desc){ base + HEADERS + 16u * c, 16, F_NEXT, (uint16_t)(3 * c + 1) };
        table[3 * c + 1] = (struct desc){ base + DATA + 512u * c, 512, F_WRITE | F_NEXT, (uint16_t)(3 * c + 2) };
        table[3 * c + 2] = (struct desc){ base + STATUS + c, 1, F_WRITE, 0 };
        memset(ram + HEADERS + 16u * c, (int)c, 16);
    }
    *avail_flags(ram) = AVAIL_F_NO_INTERRUPT;
}

/* Makes the CHAINS chains available, then publishes the index: the ring entries must be visible before it. */
EXPORT __attribute__((noinline)) void vq_driver_post(struct vq_driver *d)
{
    uint16_t *ring = avail_ring(d->ram);
    for (unsigned c = 0; c < CHAINS; c++)
        ring[(uint16_t)(d->avail_idx + c) & (QUEUE_SIZE - 1)] = (uint16_t)(3 * c);
    d->avail_idx = (uint16_t)(d->avail_idx + CHAINS);
    __atomic_store_n(avail_idx(d->ram), d->avail_idx, __ATOMIC_RELEASE);
}

/* Takes what the device used; returns how many, or -1 when an id or a status byte is not what was posted. */
EXPORT __attribute__((noinline)) int vq_driver_reap(struct vq_driver *d)
{
    uint16_t end = __atomic_load_n(used_idx(d->ram), __ATOMIC_ACQUIRE);
    int n = 0;
    for (; d->last_used != end; d->last_used++, n++) {
        struct used_elem e = used_ring(d->ram)[d->last_used & (QUEUE_SIZE - 1)];
        if (e.id % 3 != 0 || e.id >= 3 * CHAINS || e.len != 513 || d->ram[STATUS + e.id / 3] != (uint8_t)(e.id / 3))
            return -1;
    }
    d->reaped += (uint32_t)n;
    return n;
}

/* Guest address to host pointer, for [addr, addr+len) entirely inside RAM (no wrap), else NULL. */
static inline uint8_t *translate(const struct consumer *q, uint64_t addr, uint64_t len)
{
    uint64_t offset = addr - q->base;
    if (addr < q->base || offset > RAM_SIZE || len > RAM_SIZE - offset)
        return NULL;
    return q->ram + offset;
}

static __attribute__((noinline)) int pop(struct consumer *q, struct chain *c)
{
    uint16_t avail = __atomic_load_n(avail_idx(q->ram), __ATOMIC_ACQUIRE);
    if (q->last_avail == avail)
        return 0;
    if ((uint16_t)(avail - q->last_avail) > QUEUE_SIZE)
        return q->broken = -1;
    uint16_t head = avail_ring(q->ram)[q->last_avail & (QUEUE_SIZE - 1)];
    q->last_avail++;
    if (head >= QUEUE_SIZE)
        return q->broken = -1;
    c->head = head;
    c->readable = c->writable = 0;
    const struct desc *table = (const struct desc *)(q->ram + DESC_AREA);
    uint16_t index = head;
    for (unsigned n = 0;; n++) {
        if (n >= QUEUE_SIZE)
            return q->broken = -1;
        struct desc d;
        memcpy(&d, &table[index], sizeof d);   /* read once: the driver may rewrite it */
        if ((d.flags & F_INDIRECT) || d.len == 0 || translate(q, d.addr, d.len) == NULL)
            return q->broken = -1;
        if (d.flags & F_WRITE)
            c->seg[c->readable + c->writable++] = (struct segment){ d.addr, d.len };
        else if (c->writable)
            return q->broken = -1;             /* a readable descriptor after a writable one */
        else
            c->seg[c->readable++] = (struct segment){ d.addr, d.len };
        if (!(d.flags & F_NEXT))
            break;
        if (d.next >= QUEUE_SIZE)
            return q->broken = -1;
        index = d.next;
    }
    return 1;
}

static __attribute__((noinline)) void push(struct consumer *q, const struct chain *c, uint32_t written)
{
    used_ring(q->ram)[q->used_idx & (QUEUE_SIZE - 1)] = (struct used_elem){ c->head, written };
    q->used_idx++;
}

/* One round: the driver posts, the device serves every chain, publishes the used index, the driver reaps. */
static int serve(struct vq_driver *d, struct consumer *q, struct chain *c)
{
    vq_driver_post(d);
    int served = 0;
    uint8_t header[16];
    while (pop(q, c) > 0) {
        /* The device's work: the request header in, one status byte out at the end of the writable part. */
        const struct segment *h = &c->seg[0];
        memcpy(header, translate(q, h->addr, sizeof header), sizeof header);
        const struct segment *s = &c->seg[c->readable + c->writable - 1];
        *translate(q, s->addr + s->len - 1, 1) = header[0];
        push(q, c, 513);
        served++;
    }
    /* The used elements before the index (release); then the spec's interrupt decision (the driver said none). */
    __atomic_store_n(used_idx(q->ram), q->used_idx, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    static volatile int interrupts;
    if (!(__atomic_load_n(avail_flags(q->ram), __ATOMIC_RELAXED) & AVAIL_F_NO_INTERRUPT))
        interrupts++;
    return q->broken ? -1 : (vq_driver_reap(d) == served ? served : -1);
}

static struct vq_driver floor_driver;
static struct consumer floor_consumer;
static struct chain floor_chain;
static uint8_t *floor_ram;

/* ns per chain over `rounds` rounds of CHAINS chains, or -1 when a chain came back wrong. */
EXPORT double vq_floor_run(long rounds)
{
    if (floor_ram == NULL) {
        floor_ram = aligned_alloc(4096, RAM_SIZE);
        if (floor_ram == NULL)
            return -1;
        vq_driver_init(&floor_driver, floor_ram, 0x40000000u);
        floor_consumer = (struct consumer){ floor_ram, 0x40000000u, 0, 0, 0 };
    }
    double start = bench_now_ns();
    for (long r = 0; r < rounds; r++)
        if (serve(&floor_driver, &floor_consumer, &floor_chain) != (int)CHAINS)
            return -1;
    return (bench_now_ns() - start) / ((double)rounds * CHAINS);
}

#ifndef VIRTQUEUE_LIBRARY
int main(int argc, char **argv)
{
    long rounds = argc > 1 ? atol(argv[1]) : 200000;
    double runs[BENCH_RUNS];
    for (int r = -1; r < BENCH_RUNS; r++) {     /* run -1 warms up */
        double ns = vq_floor_run(rounds);
        if (ns < 0)
            return 1;
        if (r >= 0)
            runs[r] = ns;
    }
    printf("virtqueue-pop-push %.2f\n", bench_median(runs));
    return 0;
}
#endif
