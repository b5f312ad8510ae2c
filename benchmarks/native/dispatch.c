/*
 * The C baseline for IoreqSdk's dispatcher: the same work per request as the SDK's IoDispatcher on the same mix —
 * validate the request, look the address up in a sorted table of MMIO ranges (the range the previous lookup found
 * first, then a binary search), call the device through a function pointer with the region-relative offset, mask
 * and return the response — with 1, 16 or 256 regions mapped, for:
 *   read, write   one 4-byte MMIO read or write of the last region, again and again (a driver at its registers:
 *                 the previous range matches);
 *   scattered     4-byte reads that each go to another region than the one before (the previous range never
 *                 matches: the binary search walks its full depth every time).
 * Prints "scenario ns_per_op".
 *
 *   dispatch [iterations]
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "bench.h"
#include <xen/xen.h>
#include <xen/hvm/ioreq.h>

struct device {
    uint32_t registers[1024];
    uint64_t (*read)(struct device *, uint64_t offset, unsigned size);
    void (*write)(struct device *, uint64_t offset, unsigned size, uint64_t value);
};

struct range { uint64_t start, end; struct device *device; };

static struct range table[256];
static int ranges;
static int hint;   /* the index the previous lookup found */

static uint64_t reg_read(struct device *d, uint64_t offset, unsigned size) { (void)size; return d->registers[(offset >> 2) & 1023]; }
static void reg_write(struct device *d, uint64_t offset, unsigned size, uint64_t value) { (void)size; d->registers[(offset >> 2) & 1023] = (uint32_t)value; }

static __attribute__((noinline)) const struct range *lookup(uint64_t address)
{
    if (hint < ranges && table[hint].start <= address && address <= table[hint].end)
        return &table[hint];
    int lo = 0, hi = ranges - 1;
    while (lo <= hi) {
        int mid = lo + ((hi - lo) >> 1);
        if (address < table[mid].start) hi = mid - 1;
        else if (address > table[mid].end) lo = mid + 1;
        else { hint = mid; return &table[mid]; }
    }
    return NULL;
}

/* One request, as the SDK's dispatcher handles a COPY: checks, lookup (whole access inside the range), call, mask. */
static __attribute__((noinline)) uint64_t dispatch(const ioreq_t *req)
{
    if (req->type != IOREQ_TYPE_COPY || req->data_is_ptr || req->count != 1
        || (req->size != 1 && req->size != 2 && req->size != 4 && req->size != 8))
        return ~0ULL;
    uint64_t mask = req->size == 8 ? ~0ULL : (1ULL << (req->size * 8)) - 1;
    const struct range *r = lookup(req->addr);
    if (!r || req->addr + req->size - 1 > r->end)
        return req->dir == IOREQ_READ ? mask : 0;
    uint64_t offset = req->addr - r->start;
    if (req->dir == IOREQ_READ)
        return r->device->read(r->device, offset, req->size) & mask;
    r->device->write(r->device, offset, req->size, req->data & mask);
    return req->data;   /* a write's response carries its own data, as the SDK answers */
}


/* How many requests the scattered walk cycles through (a power of two: the index is masked). */
#define SCATTER 64

static struct device devices[256];
static ioreq_t requests[2];          /* read, write of the last region */
static ioreq_t scattered[SCATTER];

/* Maps n regions and builds the requests: the last region's register, and the walk over region (i * 7) mod n (a
 * stride coprime to 16 and 256, so consecutive reads differ). */
static void setup(int n)
{
    ranges = n;
    hint = 0;
    for (int i = 0; i < ranges; i++) {
        devices[i].read = reg_read;
        devices[i].write = reg_write;
        table[i] = (struct range){ 0xE0000000ULL + (uint64_t)i * 0x10000, 0xE0000000ULL + (uint64_t)i * 0x10000 + 0xFFF, &devices[i] };
    }
    memset(requests, 0, sizeof requests);
    for (int k = 0; k < 2; k++) {
        requests[k].type = IOREQ_TYPE_COPY;
        requests[k].addr = table[ranges - 1].start + 0x10;
        requests[k].size = 4;
        requests[k].count = 1;
        requests[k].dir = k == 0 ? IOREQ_READ : IOREQ_WRITE;
        requests[k].data = 0x12345678;
    }
    for (int i = 0; i < SCATTER; i++) {
        scattered[i] = requests[0];
        scattered[i].addr = table[(i * 7) % ranges].start + 0x10;
    }
}

/* kind 0 read, 1 write, 2 scattered: iterations requests; returns ns per request. */
static double run(int kind, long iterations, uint64_t *sink)
{
    double start = bench_now_ns();
    for (long i = 0; i < iterations; i++) {
        *sink += dispatch(kind < 2 ? &requests[kind] : &scattered[i & (SCATTER - 1)]);
        __asm__ volatile("" ::: "memory");   /* one request per iteration: no hoisting across them */
    }
    return (bench_now_ns() - start) / (double)iterations;
}

#ifdef DISPATCH_LIBRARY
/* Built as a shared library (-DDISPATCH_LIBRARY -shared) for the benchmark project's paired runner, which alternates
 * batches of this dispatcher with batches of IoDispatcher in one process (see Paired/PairedDispatch.cs). */
__attribute__((visibility("default"))) double dispatch_floor_run(int regions, int kind, long iterations)
{
    static uint64_t sink;
    if (regions < 1 || regions > 256 || kind < 0 || kind > 2) return -1;
    if (regions != ranges) setup(regions);
    return run(kind, iterations, &sink);
}
#else
int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 20000000;
    static const int counts[] = { 1, 16, 256 };
    static const char *names[] = { "read", "write", "scattered" };
    uint64_t sink = 0;
    for (int c = 0; c < 3; c++) {
        setup(counts[c]);
        for (int k = 0; k < 3; k++) {
            double runs[BENCH_RUNS];
            for (int r = -1; r < BENCH_RUNS; r++) {     /* run -1 warms up */
                double ns = run(k, iterations, &sink);
                if (r >= 0) runs[r] = ns;
            }
            printf("dispatch-%s-%d %.2f\n", names[k], ranges, bench_median(runs));
        }
    }
    return sink == 42 ? 3 : 0;
}
#endif
