/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A vGPU's image: what suspend writes and resume reads (docs/migration.md). Version 1 holds the
 * vGPU's identity, its allocator's blocks and the contents of its framebuffer's allocated
 * ranges, in chunks compressed with zstd (each frame carries its content checksum) or stored
 * with a CRC-32C; each record header and the block table carry a CRC-32C; an end record closes
 * the image. Ranges that were
 * never written (holes of the sim's framebuffer) are not stored: they read back as zeros.
 *
 * The reader trusts nothing: every field is checked before it is used, and an image that is
 * truncated, corrupt, has anything after its end record, or describes another vGPU is refused
 * with a message saying why.
 */
#ifndef VGPU_ENGINE_SNAPSHOT_H
#define VGPU_ENGINE_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/fbmem.h"

#define SNAP_VERSION     2 /* 2: the guests' sessions too; version 1 images still read */
#define SNAP_SESSION_MAX (UINT64_C(1) << 30) /* bytes of one session, at most */
#define SNAP_CHUNK       (UINT64_C(4) << 20) /* bytes of framebuffer per data record, at most */
#define SNAP_MAX_BLOCKS  (UINT32_C(1) << 22)

/* What the image says about its vGPU. */
struct snap_meta {
        char uuid[40];
        char type[32];
        uint64_t device_address;
        uint64_t fb_size;
        uint64_t created_ns; /* CLOCK_REALTIME when written */
};

/* How the writer reaches the framebuffer. */
struct snap_source {
        void *ctx;
        /* read - copy len bytes of the framebuffer at device address addr into buf. 0 or -errno */
        int (*read)(void *ctx, uint64_t addr, void *buf, uint64_t len);
        /*
         * next_data - the first address >= addr (below end) that may hold data, or end when
         * [addr, end) is known to be all zeros. NULL: everything may hold data.
         */
        uint64_t (*next_data)(void *ctx, uint64_t addr, uint64_t end);
        /* next_hole - the first address >= addr that is known to read as zeros, or end. */
        uint64_t (*next_hole)(void *ctx, uint64_t addr, uint64_t end);
        /* the guests' sessions (engine/session_image.c), written before the data */
        const uint8_t *const *sessions;
        const size_t *session_len;
        size_t n_sessions;
};

/* What the reader does with a valid image's parts, in file order. */
struct snap_sink {
        void *ctx;
        /* blocks - the allocator's blocks (sorted, checked); 0 or a negative errno to stop */
        int (*blocks)(void *ctx, const struct snap_meta *meta, const struct fbmem_block *b,
                      size_t n);
        /* write - len bytes of contents for device address addr (inside a block). 0 or -errno */
        int (*write)(void *ctx, uint64_t addr, const void *data, uint64_t len);
        /* session - a session's bytes (checked against their CRC only), after blocks, before
         * the data. NULL: skipped. 0 or -errno */
        int (*session)(void *ctx, const void *p, size_t len);
};

/* Totals of a write or read, for logs and benchmarks. */
struct snap_stats {
        uint64_t data_bytes;   /* framebuffer bytes stored (not counting holes) */
        uint64_t stored_bytes; /* bytes the image takes */
        uint64_t records;
};

/*
 * snap_write - write the image of a vGPU (meta, the n blocks of its allocator, their contents
 * from src) to fd, from its current offset. level: zstd's compression level (negative: faster),
 * or 0: stored as they are, each record with a CRC-32C (fastest, for moves within a host).
 * Returns 0 (and *stats when not NULL) or a negative errno; err (len bytes) says why.
 */
int snap_write(int fd, const struct snap_meta *meta, const struct fbmem_block *b, size_t n,
               const struct snap_source *src, int level, struct snap_stats *stats, char *err,
               size_t len);

/*
 * snap_read - read and check the image in fd (from its current offset), calling sink as its
 * parts are read. want (may be NULL) gives the uuid, device address and framebuffer size the
 * image must have. Returns 0 for a whole, valid image; -EBADMSG (malformed or corrupt),
 * -ESTALE (another vGPU), or the error of a read or of the sink; err says why. The sink may
 * already have been called when it fails: callers undo what it did.
 */
int snap_read(int fd, const struct snap_meta *want, const struct snap_sink *sink,
              struct snap_stats *stats, char *err, size_t len);

/*
 * Where an image goes to or comes from when it is not a file: a migration's connection.
 * write: 0 or -errno. read: 1 when len bytes were read, 0 at a clean end of input before any
 * byte, or -errno. stream: input goes on after the image (its end record ends it; the reader
 * does not look for trailing bytes).
 */
struct snap_io {
        void *ctx;
        int (*write)(void *ctx, const void *p, size_t len);
        int (*read)(void *ctx, void *p, size_t len);
        bool stream;
};

/* snap_write_io, snap_read_io - snap_write and snap_read through io. */
int snap_write_io(const struct snap_io *io, const struct snap_meta *meta,
                  const struct fbmem_block *b, size_t n, const struct snap_source *src, int level,
                  struct snap_stats *stats, char *err, size_t len);
int snap_read_io(const struct snap_io *io, const struct snap_meta *want,
                 const struct snap_sink *sink, struct snap_stats *stats, char *err, size_t len);

/*
 * snap_read_mem - snap_read over a buffer (size bytes), for the fuzz target and tests.
 */
int snap_read_mem(const void *buf, size_t size, const struct snap_meta *want,
                  const struct snap_sink *sink, struct snap_stats *stats, char *err, size_t len);

/* snap_crc32c - CRC-32C (Castagnoli) of len bytes, continuing from crc (start with 0). */
uint32_t snap_crc32c(uint32_t crc, const void *p, size_t len);

#endif
