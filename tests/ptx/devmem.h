/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A stand-in framebuffer for the PTX interpreter's tests and benchmark: one host buffer mapped at
 * a fixed device address, a bump allocator, and the memory callback that exposes only it.
 */
#ifndef VGPU_TESTS_PTX_DEVMEM_H
#define VGPU_TESTS_PTX_DEVMEM_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ptx/ptx.h"

#define DEVMEM_BASE 0x7f0000000000ull

struct devmem {
        uint8_t *host;
        uint64_t size;
        uint64_t used;
};

/* devmem_init - a framebuffer of size bytes; 0 or -1 when out of memory. */
static inline int devmem_init(struct devmem *d, uint64_t size)
{
        d->host = aligned_alloc(4096, size);
        d->size = size;
        d->used = 0;
        if (!d->host)
                return -1;
        memset(d->host, 0xcd, size);
        return 0;
}

static inline void devmem_fini(struct devmem *d)
{
        free(d->host);
        d->host = NULL;
}

/* devmem_alloc - device address of n fresh bytes (256-aligned), or 0 when full. */
static inline uint64_t devmem_alloc(struct devmem *d, uint64_t n)
{
        uint64_t off = (d->used + 255) & ~255ull;
        if (off + n > d->size)
                return 0;
        d->used = off + n;
        return DEVMEM_BASE + off;
}

/* devmem_ptr - host pointer of a device address from devmem_alloc. */
static inline void *devmem_ptr(struct devmem *d, uint64_t addr)
{
        return d->host + (addr - DEVMEM_BASE);
}

/* devmem_map - the ptx_mem_fn: the whole buffer is one region; anything else faults. */
static inline int devmem_map(void *ctx, uint64_t addr, uint64_t len, struct ptx_mem_region *ret)
{
        struct devmem *d = ctx;
        if (addr < DEVMEM_BASE || addr - DEVMEM_BASE > d->size ||
            d->size - (addr - DEVMEM_BASE) < len)
                return -1;
        ret->base = DEVMEM_BASE;
        ret->size = d->size;
        ret->host = d->host;
        return 0;
}

#endif
