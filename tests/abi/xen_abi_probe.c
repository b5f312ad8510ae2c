/*
 * xen_abi_probe: the C side of IoreqSdk's ABI conformance test.
 *
 * Compiled by the test run against Debian's libxen-dev headers, so every number below comes from Xen's own
 * definitions, not from our reading of them.
 *
 *   xen_abi_probe layout          print "name=value" for every size, offset, bit position and constant the SDK mirrors
 *   xen_abi_probe samples         print sample ioreq_t / buf_ioreq_t values: their fields, then their bytes as C lays them out
 *   xen_abi_probe decode FILE     read byte images written by the C# side and print the fields C reads from them
 *
 * Bit positions of bitfields are measured, not assumed: a field is set to all-ones in a zeroed struct and the
 * set bits of the image are located.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>

#define __XEN_TOOLS__ 1
#include <xen/xen.h>
#include <xen/hvm/ioreq.h>
#include <xen/hvm/dm_op.h>
#include <xen/hvm/hvm_op.h>
#include <xen/memory.h>
#include <xenctrl.h> /* XC_PAGE_SIZE: the ABI's frame size */
#include <xenstore.h>
#include <xen/io/xenbus.h>
#include <xen/io/xs_wire.h>

#define P(name, value) printf("%s=%llu\n", name, (unsigned long long)(value))
/* XEN_DMOP_PCI_SBDF computes in int; the DMOP field it fills is a uint32_t. */
#define SBDF(s, b, d, f) P("XEN_DMOP_PCI_SBDF(" #s "," #b "," #d "," #f ")", (uint32_t)XEN_DMOP_PCI_SBDF(s, b, d, f))
#define SIZE(t) P("sizeof." #t, sizeof(t))
#define ALIGN(t) P("alignof." #t, _Alignof(t))
#define OFF(t, f) P("offsetof." #t "." #f, offsetof(t, f))
#define CONST(c) P(#c, c)

/* Lowest set bit and number of set bits of a little-endian image (bit n = bit n%8 of byte n/8). */
static void bits(const char *name, const unsigned char *img, size_t len)
{
    int low = -1, width = 0;
    for (size_t i = 0; i < len * 8; i++) {
        if (img[i / 8] & (1u << (i % 8))) {
            if (low < 0)
                low = (int)i;
            width++;
        }
    }
    printf("bit.%s=%d\n", name, low);
    printf("width.%s=%d\n", name, width);
}

#define IOREQ_BITS(field)                                               \
    do {                                                                \
        ioreq_t r;                                                      \
        memset(&r, 0, sizeof r);                                        \
        r.field = 0;                                                    \
        r.field--; /* unsigned wrap: every bit of the field set */      \
        bits("ioreq_t." #field, (const unsigned char *)&r, sizeof r);   \
    } while (0)

#define BUF_BITS(field)                                                     \
    do {                                                                    \
        buf_ioreq_t b;                                                      \
        memset(&b, 0, sizeof b);                                            \
        b.field = 0;                                                        \
        b.field--;                                                          \
        bits("buf_ioreq_t." #field, (const unsigned char *)&b, sizeof b);   \
    } while (0)

static void layout(void)
{
    SIZE(ioreq_t); ALIGN(ioreq_t);
    OFF(ioreq_t, addr); OFF(ioreq_t, data); OFF(ioreq_t, count); OFF(ioreq_t, size);
    OFF(ioreq_t, vp_eport); OFF(ioreq_t, _pad0); OFF(ioreq_t, type);
    IOREQ_BITS(addr); IOREQ_BITS(data); IOREQ_BITS(count); IOREQ_BITS(size); IOREQ_BITS(vp_eport); IOREQ_BITS(_pad0);
    IOREQ_BITS(state); IOREQ_BITS(data_is_ptr); IOREQ_BITS(dir); IOREQ_BITS(df); IOREQ_BITS(_pad1);
    IOREQ_BITS(type);

    SIZE(buf_ioreq_t); ALIGN(buf_ioreq_t);
    OFF(buf_ioreq_t, type); OFF(buf_ioreq_t, data);
    BUF_BITS(type); BUF_BITS(pad); BUF_BITS(dir); BUF_BITS(size); BUF_BITS(addr); BUF_BITS(data);

    P("slots_per_page.shared_iopage_t", XC_PAGE_SIZE / sizeof(ioreq_t));
    SIZE(buffered_iopage_t);
    OFF(buffered_iopage_t, read_pointer); OFF(buffered_iopage_t, write_pointer); OFF(buffered_iopage_t, buf_ioreq);
    P("XC_PAGE_SIZE", XC_PAGE_SIZE);

    CONST(IOREQ_TYPE_PIO); CONST(IOREQ_TYPE_COPY); CONST(IOREQ_TYPE_PCI_CONFIG);
    CONST(IOREQ_TYPE_TIMEOFFSET); CONST(IOREQ_TYPE_INVALIDATE);
    CONST(STATE_IOREQ_NONE); CONST(STATE_IOREQ_READY); CONST(STATE_IOREQ_INPROCESS); CONST(STATE_IORESP_READY);
    CONST(IOREQ_READ); CONST(IOREQ_WRITE);
    CONST(IOREQ_BUFFER_SLOT_NUM);
    CONST(HVM_IOREQSRV_BUFIOREQ_OFF); CONST(HVM_IOREQSRV_BUFIOREQ_LEGACY); CONST(HVM_IOREQSRV_BUFIOREQ_ATOMIC);
    CONST(XEN_DMOP_IO_RANGE_PORT); CONST(XEN_DMOP_IO_RANGE_MEMORY); CONST(XEN_DMOP_IO_RANGE_PCI);
    CONST(XENMEM_resource_ioreq_server);
    CONST(XENMEM_resource_ioreq_server_frame_bufioreq);
    P("XENMEM_resource_ioreq_server_frame_ioreq(0)", XENMEM_resource_ioreq_server_frame_ioreq(0));
    P("XENMEM_resource_ioreq_server_frame_ioreq(1)", XENMEM_resource_ioreq_server_frame_ioreq(1));

    /* libxenstore: the permission entry xs_get/set_permissions exchange, its bits, the watch vector, xenbus states. */
    SIZE(struct xs_permissions); ALIGN(struct xs_permissions);
    OFF(struct xs_permissions, id); OFF(struct xs_permissions, perms);
    CONST(XS_PERM_NONE); CONST(XS_PERM_READ); CONST(XS_PERM_WRITE);
    CONST(XBT_NULL); CONST(XS_WATCH_PATH); CONST(XS_WATCH_TOKEN);
    CONST(XENSTORE_ABS_PATH_MAX); CONST(XENSTORE_PAYLOAD_MAX);
    CONST(XenbusStateUnknown); CONST(XenbusStateInitialising); CONST(XenbusStateInitWait); CONST(XenbusStateInitialised);
    CONST(XenbusStateConnected); CONST(XenbusStateClosing); CONST(XenbusStateClosed);
    CONST(XenbusStateReconfiguring); CONST(XenbusStateReconfigured);

    /* The SBDF encoding, probed one field at a time and all together. */
    SBDF(1, 0, 0, 0); SBDF(0, 1, 0, 0); SBDF(0, 0, 1, 0); SBDF(0, 0, 0, 1); SBDF(1, 2, 3, 4); SBDF(65535, 255, 31, 7);
}

static void hex(const void *p, size_t len)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++)
        printf("%02x", b[i]);
}

static void ioreq_sample(uint64_t addr, uint64_t data, uint32_t count, uint32_t size, uint32_t port,
                         unsigned state, unsigned ptr, unsigned dir, unsigned df, unsigned pad1, uint8_t type)
{
    ioreq_t r;
    memset(&r, 0, sizeof r);
    r.addr = addr; r.data = data; r.count = count; r.size = size; r.vp_eport = port;
    r.state = state; r.data_is_ptr = ptr; r.dir = dir; r.df = df; r._pad1 = pad1; r.type = type;
    printf("ioreq %llu %llu %u %u %u %u %u %u %u %u %u ", (unsigned long long)r.addr, (unsigned long long)r.data,
           r.count, r.size, r.vp_eport, r.state, r.data_is_ptr, r.dir, r.df, r._pad1, r.type);
    hex(&r, sizeof r);
    printf("\n");
}

static void buf_sample(uint8_t type, unsigned pad, unsigned dir, unsigned size, uint32_t addr, uint32_t data)
{
    buf_ioreq_t b;
    memset(&b, 0, sizeof b);
    b.type = type; b.pad = pad; b.dir = dir; b.size = size; b.addr = addr; b.data = data;
    printf("buf %u %u %u %u %u %u ", b.type, b.pad, b.dir, b.size, b.addr, b.data);
    hex(&b, sizeof b);
    printf("\n");
}

/* An 8-byte buffered value as Xen's ioreq_send_buffered() writes it: two slots, same header, low then high. */
static void buf_pair_sample(uint8_t type, uint32_t addr, uint64_t value)
{
    buf_ioreq_t b[2];
    memset(b, 0, sizeof b);
    b[0].type = type; b[0].dir = IOREQ_WRITE; b[0].size = 3; b[0].addr = addr; b[0].data = (uint32_t)value;
    b[1] = b[0];
    b[1].data = (uint32_t)(value >> 32);
    printf("bufpair %u %u %llu ", b[0].type, b[0].addr, (unsigned long long)value);
    hex(b, sizeof b);
    printf("\n");
}

static void samples(void)
{
    /* Every state value the 4-bit field can hold, alone. */
    for (unsigned s = 0; s < 16; s++)
        ioreq_sample(0, 0, 0, 0, 0, s, 0, 0, 0, 0, 0);
    /* Every flag alone, then all together, and with each state. */
    ioreq_sample(0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0);
    ioreq_sample(0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0);
    ioreq_sample(0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0);
    ioreq_sample(0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0);
    for (unsigned s = 0; s < 16; s++)
        ioreq_sample(0, 0, 0, 0, 0, s, 1, 1, 1, 1, 0xff);
    /* Every type Xen defines, and an unknown one. */
    ioreq_sample(0xfed00000, 0, 1, 4, 5, STATE_IOREQ_READY, 0, IOREQ_READ, 0, 0, IOREQ_TYPE_PIO);
    ioreq_sample(0xfed00000, 0x12345678, 1, 4, 5, STATE_IOREQ_READY, 0, IOREQ_WRITE, 0, 0, IOREQ_TYPE_COPY);
    ioreq_sample(((uint64_t)XEN_DMOP_PCI_SBDF(0, 0, 3, 0) << 32) | 0x10, 0xffffffff, 1, 4, 7, STATE_IOREQ_READY, 0,
                 IOREQ_WRITE, 0, 0, IOREQ_TYPE_PCI_CONFIG);
    ioreq_sample(0, (uint64_t)-3600, 1, 8, 0, STATE_IOREQ_READY, 0, IOREQ_WRITE, 0, 0, IOREQ_TYPE_TIMEOFFSET);
    ioreq_sample(0, ~0ull, 0, 4, 9, STATE_IOREQ_READY, 0, IOREQ_WRITE, 0, 0, IOREQ_TYPE_INVALIDATE);
    ioreq_sample(1, 2, 3, 4, 5, STATE_IOREQ_READY, 0, 0, 0, 0, 0x63);
    /* Rep forms and extreme field values. */
    ioreq_sample(0x3f8, 0x7ffff000, 4096, 1, 11, STATE_IOREQ_READY, 1, IOREQ_READ, 1, 0, IOREQ_TYPE_PIO);
    ioreq_sample(0xffffffffffffffffull, 0xffffffffffffffffull, 0xffffffffu, 0xffffffffu, 0xffffffffu,
                 STATE_IORESP_READY, 1, 1, 1, 0, 0xff);
    ioreq_sample(0x8000000000000000ull, 0x0123456789abcdefull, 0x80000000u, 8, 0x10000, STATE_IOREQ_INPROCESS,
                 0, IOREQ_READ, 0, 1, IOREQ_TYPE_COPY);

    /* buf_ioreq_t: every size code, each flag, and the 20-bit address at its edges. */
    for (unsigned sz = 0; sz < 4; sz++)
        buf_sample(IOREQ_TYPE_COPY, 0, IOREQ_WRITE, sz, 0xa0000, 0xdeadbeef);
    buf_sample(IOREQ_TYPE_COPY, 1, 0, 0, 0, 0);
    buf_sample(IOREQ_TYPE_COPY, 0, 1, 0, 0, 0);
    buf_sample(0xff, 1, 1, 3, 0xfffff, 0xffffffff);
    uint32_t addrs[] = { 0, 1, 0xfff, 0x1000, 0x12345, 0x7ffff, 0x80000, 0xa0000, 0xbffff, 0xffffe, 0xfffff };
    for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++)
        buf_sample(IOREQ_TYPE_COPY, 0, IOREQ_WRITE, 2, addrs[i], (uint32_t)i * 0x11111111u);
    buf_sample(IOREQ_TYPE_TIMEOFFSET, 0, IOREQ_WRITE, 3, 0, 0xfffff1f0);

    /* 8-byte entries as slot pairs. */
    buf_pair_sample(IOREQ_TYPE_COPY, 0xa0000, 0x0123456789abcdefull);
    buf_pair_sample(IOREQ_TYPE_COPY, 0xfffff, 0xffffffff00000000ull);
    buf_pair_sample(IOREQ_TYPE_TIMEOFFSET, 0, (uint64_t)-3600);
}

static int unhex(const char *s, unsigned char *out, size_t len)
{
    if (strlen(s) != len * 2)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    return 0;
}

/* Lines "ioreq HEX" (64 digits) or "buf HEX" (16 digits): print the fields C's bitfield accessors see. */
static int decode(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return 2;
    }
    char kind[16], img[256];
    int rc = 0;
    while (fscanf(f, "%15s %255s", kind, img) == 2) {
        if (!strcmp(kind, "ioreq")) {
            ioreq_t r;
            if (unhex(img, (unsigned char *)&r, sizeof r)) { rc = 3; break; }
            printf("ioreq %llu %llu %u %u %u %u %u %u %u %u %u\n", (unsigned long long)r.addr,
                   (unsigned long long)r.data, r.count, r.size, r.vp_eport, r.state, r.data_is_ptr, r.dir, r.df,
                   r._pad1, r.type);
        } else if (!strcmp(kind, "buf")) {
            buf_ioreq_t b;
            if (unhex(img, (unsigned char *)&b, sizeof b)) { rc = 3; break; }
            printf("buf %u %u %u %u %u %u\n", b.type, b.pad, b.dir, b.size, b.addr, b.data);
        } else {
            rc = 3;
            break;
        }
    }
    fclose(f);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "layout")) {
        layout();
        return 0;
    }
    if (argc == 2 && !strcmp(argv[1], "samples")) {
        samples();
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "decode"))
        return decode(argv[2]);
    fprintf(stderr, "usage: %s layout | samples | decode FILE\n", argv[0]);
    return 1;
}
