/* edu-dma: the Arm64 guest's check of edu's DMA engine on real Xen, both ways, through guest RAM.
 *
 * On Arm64 /dev/mem refuses RAM (STRICT_DEVMEM), so the x86 run's trick of copying a BIOS area does not apply: this
 * program takes two locked pages of its own, finds their guest-physical addresses in /proc/self/pagemap (root sees
 * the frame numbers), and programs edu through its BAR (mapped from /dev/mem) to copy page A into the device's
 * buffer and the buffer out into page B. Page B must then equal page A, which only holds if demu in dom0 mapped the
 * guest's frames (foreign mapping) and moved the bytes.
 *
 *   edu-dma /sys/bus/pci/devices/SSSS:BB:DD.F
 *
 * Prints one line and exits 0 when the bytes crossed both ways.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096u
#define EDU_DMA_SOURCE 0x80
#define EDU_DMA_DESTINATION 0x88
#define EDU_DMA_COUNT 0x90
#define EDU_DMA_COMMAND 0x98
#define EDU_DMA_BUFFER 0x40000u
#define DMA_RUN 1u
#define DMA_TO_RAM 2u

static int fail(const char *what)
{
    printf("edu-dma: %s\n", what);
    return 1;
}

static uint64_t physical(const void *p)
{
    uint64_t entry = 0;
    int fd = open("/proc/self/pagemap", O_RDONLY);
    if (fd < 0 || pread(fd, &entry, sizeof entry, (off_t)((uintptr_t)p / PAGE) * 8) != sizeof entry) {
        entry = 0;
    }
    if (fd >= 0) {
        close(fd);
    }
    /* Bit 63: present; bits 0-54: the frame number (zero unless root). */
    return (entry >> 63) && (entry & ((1ull << 55) - 1)) ? (entry & ((1ull << 55) - 1)) * PAGE : 0;
}

static int transfer(volatile uint64_t *regs, uint64_t from, uint64_t to, uint64_t command)
{
    regs[EDU_DMA_SOURCE / 8] = from;
    regs[EDU_DMA_DESTINATION / 8] = to;
    regs[EDU_DMA_COUNT / 8] = PAGE;
    regs[EDU_DMA_COMMAND / 8] = command | DMA_RUN;
    for (int i = 0; i < 100000; i++) {
        if ((regs[EDU_DMA_COMMAND / 8] & DMA_RUN) == 0) {
            return 0;
        }
        usleep(100);
    }
    return -1;
}

int main(int argc, char **argv)
{
    char path[256];
    unsigned long long bar = 0, end = 0, flags = 0;
    if (argc != 2) {
        return fail("usage: edu-dma /sys/bus/pci/devices/<address>");
    }

    snprintf(path, sizeof path, "%s/resource", argv[1]);
    FILE *resource = fopen(path, "r");
    if (!resource || fscanf(resource, "%llx %llx %llx", &bar, &end, &flags) != 3 || bar == 0) {
        return fail("BAR0 not assigned");
    }
    fclose(resource);

    /* Memory decode and bus mastering on (no driver is bound to do it): command register bits 1 and 2. */
    snprintf(path, sizeof path, "%s/config", argv[1]);
    int config = open(path, O_RDWR);
    uint16_t command = 0;
    if (config < 0 || pread(config, &command, 2, 4) != 2) {
        return fail("cannot read the command register");
    }
    command |= 0x6;
    if (pwrite(config, &command, 2, 4) != 2) {
        return fail("cannot write the command register");
    }
    close(config);

    int mem = open("/dev/mem", O_RDWR | O_SYNC);
    volatile uint64_t *regs = mem < 0 ? MAP_FAILED : mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mem, (off_t)bar);
    if (regs == MAP_FAILED) {
        return fail("cannot map BAR0 through /dev/mem");
    }

    uint8_t *pages = NULL;
    if (posix_memalign((void **)&pages, PAGE, 2 * PAGE) != 0 || mlock(pages, 2 * PAGE) != 0) {
        return fail("cannot lock two pages");
    }
    uint8_t *a = pages, *b = pages + PAGE;
    for (unsigned i = 0; i < PAGE; i++) {
        a[i] = (uint8_t)(i * 7 + 0x5a);
        b[i] = 0;
    }
    uint64_t pa = physical(a), pb = physical(b);
    if (pa == 0 || pb == 0) {
        return fail("no frame numbers in /proc/self/pagemap");
    }

    if (transfer(regs, pa, EDU_DMA_BUFFER, 0) != 0 || transfer(regs, EDU_DMA_BUFFER, pb, DMA_TO_RAM) != 0) {
        return fail("a transfer never finished");
    }
    if (memcmp(a, b, PAGE) != 0) {
        unsigned same = 0;
        for (unsigned i = 0; i < PAGE; i++) {
            same += a[i] == b[i];
        }
        printf("edu-dma: page B differs from page A (%u of %u bytes equal; RAM 0x%llx -> edu -> RAM 0x%llx)\n", same, PAGE,
               (unsigned long long)pa, (unsigned long long)pb);
        return 1;
    }

    printf("edu-dma: %u bytes RAM 0x%llx -> edu buffer -> RAM 0x%llx, equal\n", PAGE, (unsigned long long)pa,
           (unsigned long long)pb);
    return 0;
}
