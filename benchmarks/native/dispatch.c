/*
 * The C baseline for IoreqSdk's dispatcher: the same work per request as the SDK's IoDispatcher on the same mix —
 * validate the request, binary-search a sorted table of MMIO ranges, call the device through a function pointer
 * with the region-relative offset, mask and return the response — for one 4-byte MMIO read or write with 1, 16 or
 * 256 regions mapped (the target is the last one, so the search walks its full depth). Prints "scenario ns_per_op".
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

static uint64_t reg_read(struct device *d, uint64_t offset, unsigned size) { (void)size; return d->registers[(offset >> 2) & 1023]; }
static void reg_write(struct device *d, uint64_t offset, unsigned size, uint64_t value) { (void)size; d->registers[(offset >> 2) & 1023] = (uint32_t)value; }

static __attribute__((noinline)) const struct range *lookup(uint64_t address)
{
    int lo = 0, hi = ranges - 1;
    while (lo <= hi) {
        int mid = lo + ((hi - lo) >> 1);
        if (address < table[mid].start) hi = mid - 1;
        else if (address > table[mid].end) lo = mid + 1;
        else return &table[mid];
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
    return 0;
}


int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 20000000;
    static struct device devices[256];
    int counts[] = { 1, 16, 256 };
    uint64_t sink = 0;
    for (int c = 0; c < 3; c++) {
        ranges = counts[c];
        for (int i = 0; i < ranges; i++) {
            devices[i].read = reg_read;
            devices[i].write = reg_write;
            table[i] = (struct range){ 0xE0000000ULL + (uint64_t)i * 0x10000, 0xE0000000ULL + (uint64_t)i * 0x10000 + 0xFFF, &devices[i] };
        }
        uint64_t target = table[ranges - 1].start;
        ioreq_t reqs[2];
        memset(reqs, 0, sizeof reqs);
        for (int k = 0; k < 2; k++) {
            reqs[k].type = IOREQ_TYPE_COPY;
            reqs[k].addr = target + 0x10;
            reqs[k].size = 4;
            reqs[k].count = 1;
            reqs[k].dir = k == 0 ? IOREQ_READ : IOREQ_WRITE;
            reqs[k].data = 0x12345678;
        }
        for (int k = 0; k < 2; k++) {
            double runs[BENCH_RUNS];
            for (int r = -1; r < BENCH_RUNS; r++) {
                double start = bench_now_ns();
                for (long i = 0; i < iterations; i++) {
                    sink += dispatch(&reqs[k]);
                    __asm__ volatile("" ::: "memory");   /* one request per iteration: no hoisting across them */
                }
                if (r >= 0) runs[r] = (bench_now_ns() - start) / (double)iterations;
            }
            printf("dispatch-%s-%d %.2f\n", k == 0 ? "read" : "write", ranges, bench_median(runs));
        }
    }
    return sink == 42 ? 3 : 0;
}
