// SPDX-License-Identifier: Apache-2.0
// The vGPU image format (snapshot.h): a header, the allocator's blocks, data records, an end.
#include "engine/snapshot.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <zstd.h>

#define SNAP_MAGIC "VGPUSNAP"
#define TAG_DATA   0x41544144u /* "DATA": a zstd frame */
#define TAG_RAW    0x44574152u /* "RAWD": the bytes as they are, then their CRC-32C */
#define TAG_END    0x20444e45u /* "END " */
#define TAG_SESS   0x53534553u /* "SESS": a session's bytes (version 2), then their CRC-32C */
#define HDR_SIZE   128u
#define TABLE_ROWS 64u /* table rows written at a time */

/* On disk, little-endian (the only byte order vgpu runs on: x86-64 and arm64). */
struct snap_hdr {
        char magic[8];
        uint32_t version;
        uint32_t hdr_size;
        char uuid[40];
        char type[32];
        uint64_t device_address;
        uint64_t fb_size;
        uint64_t created_ns;
        uint32_t n_blocks;
        uint32_t crc; /* of the header with crc 0 */
        uint64_t reserved;
};
_Static_assert(sizeof(struct snap_hdr) == HDR_SIZE, "image header layout");

struct snap_block {
        uint64_t base, size, owner;
};

/* The block table is followed by this. */
struct snap_table_end {
        uint32_t crc; /* of the table's rows */
        uint32_t pad;
};

struct snap_rec {
        uint32_t tag;
        uint32_t crc; /* of the record with crc 0 */
        uint64_t addr;
        uint64_t len;  /* DATA: bytes of framebuffer; END: total data bytes */
        uint64_t zlen; /* DATA: bytes of the zstd frame after it; RAWD: len + 4; END: number of
                          data records */
};
_Static_assert(sizeof(struct snap_rec) == 32, "image record layout");

static void say(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *err, size_t len, const char *fmt, ...)
{
        va_list ap;

        if (!len)
                return;
        va_start(ap, fmt);
        vsnprintf(err, len, fmt, ap);
        va_end(ap);
}

/* ---- CRC-32C ------------------------------------------------------------------------------ */

static uint32_t crc_table[256];

static void crc_init(void)
{
        for (uint32_t i = 0; i < 256; i++) {
                uint32_t c = i;

                for (int k = 0; k < 8; k++)
                        c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
                crc_table[i] = c;
        }
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *b, size_t len)
{
        while (len--)
                crc = crc_table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
        return crc;
}

#if defined(__x86_64__)
/* SSE 4.2's crc32 instruction computes CRC-32C: 8 bytes a step, for data records' checks. */
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *b, size_t len)
{
        uint64_t c = crc;

        for (; len >= 8; b += 8, len -= 8) {
                uint64_t v;

                memcpy(&v, b, 8);
                c = __builtin_ia32_crc32di(c, v);
        }
        crc = (uint32_t)c;
        for (; len; b++, len--)
                crc = __builtin_ia32_crc32qi(crc, *b);
        return crc;
}
#endif

static bool have_hw;

static void crc_setup(void)
{
        crc_init();
#if defined(__x86_64__)
        have_hw = __builtin_cpu_supports("sse4.2");
#endif
}

uint32_t snap_crc32c(uint32_t crc, const void *p, size_t len)
{
        static pthread_once_t once = PTHREAD_ONCE_INIT;

        pthread_once(&once, crc_setup);
#if defined(__x86_64__)
        if (have_hw)
                return ~crc_hw(~crc, p, len);
#endif
        return ~crc_sw(~crc, p, len);
}

static uint32_t rec_crc(struct snap_rec r)
{
        r.crc = 0;
        return snap_crc32c(0, &r, sizeof(r));
}

static uint32_t hdr_crc(struct snap_hdr h)
{
        h.crc = 0;
        return snap_crc32c(0, &h, sizeof(h));
}

/* ---- writing ------------------------------------------------------------------------------ */

static int fd_write(void *ctx, const void *p, size_t len)
{
        int fd = *(int *)ctx;
        const uint8_t *b = p;

        while (len) {
                ssize_t n = write(fd, b, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -EIO;
                b += n;
                len -= (size_t)n;
        }
        return 0;
}

struct writer {
        const struct snap_io *io;
        ZSTD_CCtx *cc;
        uint8_t *raw, *z;
        size_t zcap;
        bool raw_records; /* level 0: store, with a CRC-32C */
        struct snap_stats st;
};

static int put_data(struct writer *w, const struct snap_source *src, uint64_t addr, uint64_t len,
                    char *err, size_t errlen)
{
        struct snap_rec r = {.tag = TAG_DATA, .addr = addr, .len = len};
        uint32_t dcrc = 0;
        size_t z;
        int e = src->read(src->ctx, addr, w->raw, len);

        if (e < 0) {
                say(err, errlen, "reading the framebuffer at 0x%llx: %s", (unsigned long long)addr,
                    strerror(-e));
                return e;
        }
        if (w->raw_records) {
                r.tag = TAG_RAW;
                z = len + sizeof(dcrc);
                dcrc = snap_crc32c(0, w->raw, len);
        } else {
                z = ZSTD_compress2(w->cc, w->z, w->zcap, w->raw, len);
                if (ZSTD_isError(z)) {
                        say(err, errlen, "compressing: %s", ZSTD_getErrorName(z));
                        return -EIO;
                }
        }
        r.zlen = z;
        r.crc = rec_crc(r);
        e = w->io->write(w->io->ctx, &r, sizeof(r));
        if (e == 0 && w->raw_records) {
                e = w->io->write(w->io->ctx, w->raw, len);
                if (e == 0)
                        e = w->io->write(w->io->ctx, &dcrc, sizeof(dcrc));
        } else if (e == 0) {
                e = w->io->write(w->io->ctx, w->z, z);
        }
        if (e < 0) {
                say(err, errlen, "writing the image: %s", strerror(-e));
                return e;
        }
        w->st.data_bytes += len;
        w->st.stored_bytes += sizeof(r) + z;
        w->st.records++;
        return 0;
}

/* The contents of one block: its runs of data, in chunks. */
static int put_block(struct writer *w, const struct snap_source *src, const struct fbmem_block *b,
                     char *err, size_t errlen)
{
        uint64_t end = b->base + b->size, a = b->base;

        while (a < end) {
                uint64_t run_end = end;
                int e;

                if (src->next_data) {
                        a = src->next_data(src->ctx, a, end);
                        if (a >= end)
                                break;
                        run_end = src->next_hole ? src->next_hole(src->ctx, a, end) : end;
                        if (run_end <= a || run_end > end)
                                run_end = end;
                }
                while (a < run_end) {
                        uint64_t n = run_end - a < SNAP_CHUNK ? run_end - a : SNAP_CHUNK;

                        e = put_data(w, src, a, n, err, errlen);
                        if (e < 0)
                                return e;
                        a += n;
                }
        }
        return 0;
}

int snap_write(int fd, const struct snap_meta *meta, const struct fbmem_block *b, size_t n,
               const struct snap_source *src, int level, struct snap_stats *stats, char *err,
               size_t len)
{
        struct snap_io io = {.ctx = &fd, .write = fd_write};

        return snap_write_io(&io, meta, b, n, src, level, stats, err, len);
}

int snap_write_io(const struct snap_io *io, const struct snap_meta *meta,
                  const struct fbmem_block *b, size_t n, const struct snap_source *src, int level,
                  struct snap_stats *stats, char *err, size_t len)
{
        struct snap_hdr h = {.version = SNAP_VERSION, .hdr_size = HDR_SIZE};
        struct writer w = {.io = io, .raw_records = level == 0};
        struct snap_table_end te = {0};
        struct snap_rec end = {.tag = TAG_END};
        struct timespec ts;
        uint32_t crc = 0;
        int e;

        if (n > SNAP_MAX_BLOCKS) {
                say(err, len, "too many allocations (%zu) for an image", n);
                return -E2BIG;
        }
        memcpy(h.magic, SNAP_MAGIC, sizeof(h.magic));
        snprintf(h.uuid, sizeof(h.uuid), "%s", meta->uuid);
        snprintf(h.type, sizeof(h.type), "%s", meta->type);
        h.device_address = meta->device_address;
        h.fb_size = meta->fb_size;
        clock_gettime(CLOCK_REALTIME, &ts);
        h.created_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        h.n_blocks = (uint32_t)n;
        h.crc = hdr_crc(h);

        w.cc = ZSTD_createCCtx();
        w.raw = malloc(SNAP_CHUNK);
        w.zcap = ZSTD_compressBound(SNAP_CHUNK);
        w.z = malloc(w.zcap);
        if (!w.cc || !w.raw || !w.z) {
                say(err, len, "out of memory");
                e = -ENOMEM;
                goto out;
        }
        ZSTD_CCtx_setParameter(w.cc, ZSTD_c_compressionLevel, level);
        ZSTD_CCtx_setParameter(w.cc, ZSTD_c_checksumFlag, 1);

        e = io->write(io->ctx, &h, sizeof(h));
        for (size_t i = 0; e == 0 && i < n; i += TABLE_ROWS) {
                struct snap_block rows[TABLE_ROWS];
                size_t k = 0;

                for (; k < TABLE_ROWS && i + k < n; k++)
                        rows[k] = (struct snap_block){b[i + k].base, b[i + k].size, b[i + k].owner};
                crc = snap_crc32c(crc, rows, k * sizeof(rows[0]));
                e = io->write(io->ctx, rows, k * sizeof(rows[0]));
        }
        te.crc = crc;
        if (e == 0)
                e = io->write(io->ctx, &te, sizeof(te));
        if (e < 0) {
                say(err, len, "writing the image: %s", strerror(-e));
                goto out;
        }
        w.st.stored_bytes = sizeof(h) + n * sizeof(struct snap_block) + sizeof(te);
        /* the sessions before the data: their modules' loads come before the data is back */
        for (size_t i = 0; src->n_sessions && i < src->n_sessions; i++) {
                struct snap_rec r = {.tag = TAG_SESS,
                                     .addr = i,
                                     .len = src->session_len[i],
                                     .zlen = src->session_len[i] + 4};
                uint32_t dcrc = snap_crc32c(0, src->sessions[i], src->session_len[i]);

                r.crc = rec_crc(r);
                e = io->write(io->ctx, &r, sizeof(r));
                if (e == 0)
                        e = io->write(io->ctx, src->sessions[i], src->session_len[i]);
                if (e == 0)
                        e = io->write(io->ctx, &dcrc, sizeof(dcrc));
                if (e < 0) {
                        say(err, len, "writing the image: %s", strerror(-e));
                        goto out;
                }
                w.st.stored_bytes += sizeof(r) + r.zlen;
        }
        for (size_t i = 0; i < n; i++) {
                e = put_block(&w, src, &b[i], err, len);
                if (e < 0)
                        goto out;
        }
        end.addr = src->n_sessions;
        end.len = w.st.data_bytes;
        end.zlen = w.st.records;
        end.crc = rec_crc(end);
        e = io->write(io->ctx, &end, sizeof(end));
        if (e < 0) {
                say(err, len, "writing the image: %s", strerror(-e));
                goto out;
        }
        w.st.stored_bytes += sizeof(end);
        if (stats)
                *stats = w.st;
out:
        ZSTD_freeCCtx(w.cc);
        free(w.raw);
        free(w.z);
        return e;
}

/* ---- reading ------------------------------------------------------------------------------ */

struct reader {
        int fd; /* or -1: read from buf (or io) */
        const struct snap_io *io;
        const uint8_t *buf;
        size_t size, off;
};

/* Exactly len bytes: 1; 0 at a clean end of input before any byte; -EBADMSG when cut short. */
static int get(struct reader *r, void *p, size_t len)
{
        uint8_t *b = p;
        size_t got = 0;

        if (r->io)
                return r->io->read(r->io->ctx, p, len);
        if (r->fd < 0) {
                if (r->size - r->off < len)
                        return r->off == r->size ? 0 : -EBADMSG;
                memcpy(p, r->buf + r->off, len);
                r->off += len;
                return 1;
        }
        while (got < len) {
                ssize_t n = read(r->fd, b + got, len - got);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return got == 0 ? 0 : -EBADMSG;
                got += (size_t)n;
        }
        return 1;
}

/* Read exactly len bytes or fail: a cut-short image is malformed. */
static int need(struct reader *r, void *p, size_t len, const char *what, char *err, size_t errlen)
{
        int e = get(r, p, len);

        if (e == 1)
                return 0;
        if (e == 0 || e == -EBADMSG) {
                say(err, errlen, "image truncated in %s", what);
                return -EBADMSG;
        }
        say(err, errlen, "reading the image: %s", strerror(-e));
        return e;
}

static int check_hdr(const struct snap_hdr *h, const struct snap_meta *want, char *err, size_t len)
{
        if (memcmp(h->magic, SNAP_MAGIC, sizeof(h->magic)) != 0) {
                say(err, len, "not a vgpu image (bad magic)");
                return -EBADMSG;
        }
        if (h->version < 1 || h->version > SNAP_VERSION || h->hdr_size != HDR_SIZE) {
                say(err, len, "image version %u is not supported (this vgpu reads 1 to %u)",
                    h->version, SNAP_VERSION);
                return -EBADMSG;
        }
        if (h->crc != hdr_crc(*h)) {
                say(err, len, "image header is corrupt (checksum mismatch)");
                return -EBADMSG;
        }
        if (!memchr(h->uuid, 0, sizeof(h->uuid)) || !memchr(h->type, 0, sizeof(h->type))) {
                say(err, len, "image header is malformed (unterminated name)");
                return -EBADMSG;
        }
        if (h->n_blocks > SNAP_MAX_BLOCKS || h->n_blocks > h->fb_size / FBMEM_ALIGN ||
            h->fb_size == 0 || h->device_address + h->fb_size < h->device_address) {
                say(err, len, "image header is malformed (sizes)");
                return -EBADMSG;
        }
        if (want && (strcasecmp(h->uuid, want->uuid) != 0 ||
                     h->device_address != want->device_address || h->fb_size != want->fb_size)) {
                say(err, len,
                    "image is of vGPU %s (framebuffer 0x%llx, %llu bytes), not of this one "
                    "(%s, 0x%llx, %llu bytes)",
                    h->uuid, (unsigned long long)h->device_address, (unsigned long long)h->fb_size,
                    want->uuid, (unsigned long long)want->device_address,
                    (unsigned long long)want->fb_size);
                return -ESTALE;
        }
        return 0;
}

static int check_blocks(const struct snap_hdr *h, const struct fbmem_block *b, size_t n, char *err,
                        size_t len)
{
        uint64_t lo = h->device_address, hi = h->device_address + h->fb_size;

        for (size_t i = 0; i < n; i++) {
                if (b[i].size == 0 || b[i].base % FBMEM_ALIGN || b[i].size % FBMEM_ALIGN ||
                    b[i].base < lo || b[i].base > hi || b[i].size > hi - b[i].base ||
                    (i && b[i].base < b[i - 1].base + b[i - 1].size)) {
                        say(err, len, "image's allocation %zu (0x%llx, %llu bytes) is invalid", i,
                            (unsigned long long)b[i].base, (unsigned long long)b[i].size);
                        return -EBADMSG;
                }
        }
        return 0;
}

/* The block holding [addr, addr + len) whole, by binary search; NULL if none. */
static const struct fbmem_block *block_of(const struct fbmem_block *b, size_t n, uint64_t addr,
                                          uint64_t len)
{
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (b[mid].base + b[mid].size <= addr)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        if (lo == n || addr < b[lo].base || len > b[lo].size - (addr - b[lo].base))
                return NULL;
        return &b[lo];
}

/*
 * One zstd frame of exactly zlen bytes that says it holds len bytes and carries a checksum of
 * them (bit 2 of its frame header descriptor, RFC 8878 3.1.1.1.1), which decompression checks.
 */
static int check_frame(const uint8_t *z, uint64_t zlen, uint64_t len)
{
        static const uint8_t magic[4] = {0x28, 0xb5, 0x2f, 0xfd};

        if (zlen < 5 || memcmp(z, magic, 4) != 0 || !(z[4] & 0x04) ||
            ZSTD_getFrameContentSize(z, zlen) != len)
                return -EBADMSG;
        if (ZSTD_findFrameCompressedSize(z, zlen) != zlen)
                return -EBADMSG;
        return 0;
}

static int read_image(struct reader *rd, const struct snap_meta *want, const struct snap_sink *sink,
                      struct snap_stats *stats, char *err, size_t len)
{
        struct snap_hdr h;
        struct snap_meta meta = {0};
        struct snap_table_end te;
        struct snap_stats st = {0};
        struct fbmem_block *blocks = NULL;
        ZSTD_DCtx *dc = NULL;
        uint8_t *raw = NULL, *z = NULL; /* at the first data record */
        uint64_t next = 0;              /* data records come in address order, none overlapping */
        uint64_t n_sess = 0;            /* session records read */
        uint32_t crc = 0;
        int e;

        e = need(rd, &h, sizeof(h), "its header", err, len);
        if (e < 0)
                goto out;
        e = check_hdr(&h, want, err, len);
        if (e < 0)
                goto out;
        memcpy(meta.uuid, h.uuid, sizeof(meta.uuid));
        memcpy(meta.type, h.type, sizeof(meta.type));
        meta.device_address = h.device_address;
        meta.fb_size = h.fb_size;
        meta.created_ns = h.created_ns;

        blocks = calloc(h.n_blocks ? h.n_blocks : 1, sizeof(*blocks));
        if (!blocks) {
                say(err, len, "out of memory for %u allocations", h.n_blocks);
                e = -ENOMEM;
                goto out;
        }
        for (uint32_t i = 0; i < h.n_blocks; i++) {
                struct snap_block row;

                e = need(rd, &row, sizeof(row), "its allocation table", err, len);
                if (e < 0)
                        goto out;
                crc = snap_crc32c(crc, &row, sizeof(row));
                blocks[i] = (struct fbmem_block){
                        .base = row.base, .size = row.size, .owner = row.owner};
        }
        e = need(rd, &te, sizeof(te), "its allocation table", err, len);
        if (e < 0)
                goto out;
        if (te.crc != crc || te.pad) {
                say(err, len, "image's allocation table is corrupt (checksum mismatch)");
                e = -EBADMSG;
                goto out;
        }
        e = check_blocks(&h, blocks, h.n_blocks, err, len);
        if (e < 0)
                goto out;
        st.stored_bytes = sizeof(h) + (uint64_t)h.n_blocks * sizeof(struct snap_block) + sizeof(te);
        if (sink && sink->blocks) {
                e = sink->blocks(sink->ctx, &meta, blocks, h.n_blocks);
                if (e < 0) {
                        if (err && !*err)
                                say(err, len, "the image's allocations do not match: %s",
                                    strerror(-e));
                        goto out;
                }
        }
        for (;;) {
                struct snap_rec r;
                const uint8_t *data;
                size_t got;

                e = need(rd, &r, sizeof(r), "a data record (no end record)", err, len);
                if (e < 0)
                        goto out;
                if (r.crc != rec_crc(r)) {
                        say(err, len, "image record %llu is corrupt (checksum mismatch)",
                            (unsigned long long)st.records);
                        e = -EBADMSG;
                        goto out;
                }
                if (r.tag == TAG_SESS) {
                        uint8_t *sb;
                        uint32_t dcrc;

                        /* version 2: the sessions, numbered, all before any data */
                        if (h.version < 2 || r.addr != n_sess || st.records || r.len == 0 ||
                            r.len > SNAP_SESSION_MAX || r.zlen != r.len + 4) {
                                say(err, len, "image session record %llu is invalid",
                                    (unsigned long long)n_sess);
                                e = -EBADMSG;
                                goto out;
                        }
                        sb = malloc(r.len);
                        if (!sb) {
                                say(err, len, "out of memory for a session");
                                e = -ENOMEM;
                                goto out;
                        }
                        e = need(rd, sb, r.len, "a session", err, len);
                        if (e == 0)
                                e = need(rd, &dcrc, sizeof(dcrc), "a session", err, len);
                        if (e == 0 && dcrc != snap_crc32c(0, sb, r.len)) {
                                say(err, len, "image session %llu is corrupt (checksum mismatch)",
                                    (unsigned long long)n_sess);
                                e = -EBADMSG;
                        }
                        if (e == 0 && sink && sink->session) {
                                e = sink->session(sink->ctx, sb, r.len);
                                if (e < 0 && err && !*err)
                                        say(err, len, "image session %llu: %s",
                                            (unsigned long long)n_sess, strerror(-e));
                        }
                        free(sb);
                        if (e < 0)
                                goto out;
                        n_sess++;
                        st.stored_bytes += sizeof(r) + r.zlen;
                        continue;
                }
                if (r.tag == TAG_END) {
                        uint8_t extra;

                        if (r.addr != n_sess || r.len != st.data_bytes || r.zlen != st.records) {
                                say(err, len, "image's end record does not match its contents");
                                e = -EBADMSG;
                                goto out;
                        }
                        /* a stream goes on after the image: nothing to look for */
                        e = rd->io && rd->io->stream ? 0 : get(rd, &extra, 1);
                        if (e != 0) {
                                say(err, len,
                                    e < 0 && e != -EBADMSG ? "reading the image failed"
                                                           : "image has data after its end record");
                                e = e < 0 && e != -EBADMSG ? e : -EBADMSG;
                                goto out;
                        }
                        st.stored_bytes += sizeof(r);
                        break;
                }
                if ((r.tag != TAG_DATA && r.tag != TAG_RAW) || r.len == 0 || r.len > SNAP_CHUNK ||
                    r.zlen == 0 || r.zlen > ZSTD_compressBound(r.len) ||
                    (r.tag == TAG_RAW && r.zlen != r.len + 4) || r.addr < next ||
                    !block_of(blocks, h.n_blocks, r.addr, r.len)) {
                        say(err, len, "image record %llu is invalid (tag 0x%x, 0x%llx, %llu bytes)",
                            (unsigned long long)st.records, r.tag, (unsigned long long)r.addr,
                            (unsigned long long)r.len);
                        e = -EBADMSG;
                        goto out;
                }
                if (!z) {
                        dc = ZSTD_createDCtx();
                        raw = malloc(SNAP_CHUNK);
                        z = malloc(ZSTD_compressBound(SNAP_CHUNK));
                        if (!dc || !raw || !z) {
                                say(err, len, "out of memory");
                                e = -ENOMEM;
                                goto out;
                        }
                }
                e = need(rd, z, r.zlen, "a data record", err, len);
                if (e < 0)
                        goto out;
                data = raw;
                if (r.tag == TAG_RAW) {
                        uint32_t dcrc;

                        memcpy(&dcrc, z + r.len, sizeof(dcrc));
                        got = dcrc == snap_crc32c(0, z, r.len) ? r.len : (size_t)-1;
                        data = z;
                } else {
                        got = check_frame(z, r.zlen, r.len) == 0
                                      ? ZSTD_decompressDCtx(dc, raw, SNAP_CHUNK, z, r.zlen)
                                      : (size_t)-1;
                }
                if (ZSTD_isError(got) || got != r.len) {
                        say(err, len,
                            "image record %llu (0x%llx) is corrupt: its data does not "
                            "decompress to what it says",
                            (unsigned long long)st.records, (unsigned long long)r.addr);
                        e = -EBADMSG;
                        goto out;
                }
                if (sink && sink->write) {
                        e = sink->write(sink->ctx, r.addr, data, r.len);
                        if (e < 0) {
                                say(err, len, "restoring 0x%llx: %s", (unsigned long long)r.addr,
                                    strerror(-e));
                                goto out;
                        }
                }
                next = r.addr + r.len;
                st.data_bytes += r.len;
                st.stored_bytes += sizeof(r) + r.zlen;
                st.records++;
        }
        if (stats)
                *stats = st;
        e = 0;
out:
        free(blocks);
        free(raw);
        free(z);
        ZSTD_freeDCtx(dc);
        return e;
}

int snap_read(int fd, const struct snap_meta *want, const struct snap_sink *sink,
              struct snap_stats *stats, char *err, size_t len)
{
        struct reader r = {.fd = fd};

        if (len)
                err[0] = '\0';
        return read_image(&r, want, sink, stats, err, len);
}

int snap_read_io(const struct snap_io *io, const struct snap_meta *want,
                 const struct snap_sink *sink, struct snap_stats *stats, char *err, size_t len)
{
        struct reader r = {.fd = -1, .io = io};

        if (len)
                err[0] = '\0';
        return read_image(&r, want, sink, stats, err, len);
}

int snap_read_mem(const void *buf, size_t size, const struct snap_meta *want,
                  const struct snap_sink *sink, struct snap_stats *stats, char *err, size_t len)
{
        struct reader r = {.fd = -1, .buf = buf, .size = size};

        if (len)
                err[0] = '\0';
        return read_image(&r, want, sink, stats, err, len);
}
