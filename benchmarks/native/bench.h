/* Timing shared by the native baselines: a monotonic clock and the median of several measured runs. */
#ifndef IOREQSDK_BENCH_H
#define IOREQSDK_BENCH_H

#include <stdlib.h>
#include <time.h>

#define BENCH_RUNS 7

static inline double bench_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static inline int bench_compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of BENCH_RUNS per-operation times (the array is sorted in place). */
static inline double bench_median(double *runs)
{
    qsort(runs, BENCH_RUNS, sizeof runs[0], bench_compare);
    return runs[BENCH_RUNS / 2];
}

#endif
