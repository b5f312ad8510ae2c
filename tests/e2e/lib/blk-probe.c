// blk-probe: the virtio-blk checks' pattern and timing tool, built static for the guest and dom0 of both real-Xen runs.
//
//   blk-probe gen    SEED OFFSET LENGTH        the pattern's bytes for [OFFSET, OFFSET+LENGTH) on standard output
//   blk-probe write  PATH SEED OFFSET LENGTH   write them into PATH at OFFSET (buffered: reaching the disk is sync's job)
//   blk-probe verify PATH SEED OFFSET LENGTH   read PATH there and compare; exit 1 at the first difference
//   blk-probe hammer PATH SEED OFFSET LENGTH   rewrite that range with O_DIRECT until killed; says "writing" after the first pass
//   blk-probe bench  PATH                      indicative figures: O_DIRECT 4 KiB random-read latency, sequential bandwidth
//
// The pattern is a function of SEED and each byte's absolute offset, so any part of it can be made or checked on its own:
// the guest writes and reads it back, and dom0 hashes the image file against "gen" of the same ranges.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1u << 20)

static uint64_t mix(uint64_t x)   // splitmix64's finalizer: neighbouring words get unrelated values
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void fill(unsigned char *buffer, uint64_t seed, uint64_t offset, size_t length)
{
    for (size_t i = 0; i < length; i++) {
        uint64_t at = offset + i;
        buffer[i] = (unsigned char)(mix(seed * 0x100000001b3ull ^ (at >> 3)) >> (8 * (at & 7)));
    }
}

static uint64_t number(const char *text)
{
    char *end;
    errno = 0;
    uint64_t value = strtoull(text, &end, 0);
    if (errno != 0 || *end != '\0') {
        fprintf(stderr, "blk-probe: '%s' is not a number\n", text);
        exit(2);
    }
    return value;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

// transfer: the whole range in chunks, written or compared; returns 0, or 1 at the first difference.
static int transfer(int fd, int writing, uint64_t seed, uint64_t offset, uint64_t length)
{
    static unsigned char want[CHUNK], got[CHUNK];
    for (uint64_t done = 0; done < length;) {
        size_t n = length - done < CHUNK ? (size_t)(length - done) : CHUNK;
        fill(want, seed, offset + done, n);
        ssize_t r = writing ? pwrite(fd, want, n, (off_t)(offset + done)) : pread(fd, got, n, (off_t)(offset + done));
        if (r <= 0) {
            fprintf(stderr, "blk-probe: %s at %" PRIu64 ": %s\n", writing ? "write" : "read", offset + done, r < 0 ? strerror(errno) : "end of file");
            return 1;
        }
        if (!writing && memcmp(want, got, (size_t)r) != 0) {
            for (ssize_t i = 0; i < r; i++) {
                if (want[i] != got[i]) {
                    printf("differs at byte %" PRIu64 " (0x%02x, expected 0x%02x)\n", offset + done + (uint64_t)i, got[i], want[i]);
                    return 1;
                }
            }
        }
        done += (uint64_t)r;
    }
    return 0;
}

static int hammer(int fd, uint64_t seed, uint64_t offset, uint64_t length)
{
    unsigned char *buffer;
    if ((offset | length) % 4096 != 0 || posix_memalign((void **)&buffer, 4096, 65536) != 0) {
        fprintf(stderr, "blk-probe: hammer takes a 4 KiB-aligned range\n");
        return 2;
    }
    for (int pass = 0;; pass++) {
        for (uint64_t done = 0; done < length; done += 65536) {
            size_t n = length - done < 65536 ? (size_t)(length - done) : 65536;
            fill(buffer, seed + (uint64_t)pass, offset + done, n);
            if (pwrite(fd, buffer, n, (off_t)(offset + done)) != (ssize_t)n) {
                fprintf(stderr, "blk-probe: hammer write: %s\n", strerror(errno));
                return 1;
            }
        }
        if (pass == 0) {
            printf("writing\n");
            fflush(stdout);
        }
    }
}

static int bench(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECT);
    unsigned char *buffer;
    if (fd < 0 || posix_memalign((void **)&buffer, 4096, CHUNK) != 0) {
        fprintf(stderr, "blk-probe: %s: %s\n", path, strerror(errno));
        return 1;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    uint64_t pages = (uint64_t)size / 4096, state = 12345;
    const int reads = 100;
    double start = now();
    for (int i = 0; i < reads; i++) {
        state = mix(state);
        if (pread(fd, buffer, 4096, (off_t)((state % pages) * 4096)) != 4096) {
            fprintf(stderr, "blk-probe: random read: %s\n", strerror(errno));
            return 1;
        }
    }
    double random = (now() - start) / reads;
    uint64_t total = (uint64_t)size < 8u * CHUNK ? (uint64_t)size : 8u * CHUNK;
    start = now();
    for (uint64_t at = 0; at < total; at += CHUNK) {
        if (pread(fd, buffer, CHUNK, (off_t)at) != (ssize_t)CHUNK) {
            fprintf(stderr, "blk-probe: sequential read: %s\n", strerror(errno));
            return 1;
        }
    }
    double sequential = now() - start;
    printf("4 KiB random read %.0f us mean over %d; sequential read %.1f MiB/s over %" PRIu64 " MiB (1 MiB requests)\n",
           random * 1e6, reads, (double)total / CHUNK / sequential, total / CHUNK);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "bench") == 0 && argc == 3) {
        return bench(argv[2]);
    }
    if (strcmp(mode, "gen") == 0 && argc == 5) {
        static unsigned char buffer[CHUNK];
        uint64_t seed = number(argv[2]), offset = number(argv[3]), length = number(argv[4]);
        for (uint64_t done = 0; done < length;) {
            size_t n = length - done < CHUNK ? (size_t)(length - done) : CHUNK;
            fill(buffer, seed, offset + done, n);
            if (fwrite(buffer, 1, n, stdout) != n) {
                return 1;
            }
            done += n;
        }
        return fflush(stdout) == 0 ? 0 : 1;
    }
    int writing = strcmp(mode, "write") == 0, hammering = strcmp(mode, "hammer") == 0;
    if ((writing || hammering || strcmp(mode, "verify") == 0) && argc == 6) {
        int fd = open(argv[2], writing ? O_WRONLY : hammering ? O_WRONLY | O_DIRECT : O_RDONLY);
        if (fd < 0) {
            fprintf(stderr, "blk-probe: %s: %s\n", argv[2], strerror(errno));
            return 1;
        }
        uint64_t seed = number(argv[3]), offset = number(argv[4]), length = number(argv[5]);
        int rc = hammering ? hammer(fd, seed, offset, length) : transfer(fd, writing, seed, offset, length);
        return close(fd) == 0 ? rc : 1;
    }
    fprintf(stderr, "usage: blk-probe gen SEED OFFSET LENGTH | write|verify|hammer PATH SEED OFFSET LENGTH | bench PATH\n");
    return 2;
}
