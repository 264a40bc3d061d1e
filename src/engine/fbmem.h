/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fbmem: the sub-allocator of one vGPU's framebuffer. Allocations are 256-byte aligned ranges of
 * the framebuffer's device addresses, each tagged with its owner (session, context). Lookups that
 * check a guest's pointer against its own allocations are safe from any thread (a rwlock).
 */
#ifndef VGPU_ENGINE_FBMEM_H
#define VGPU_ENGINE_FBMEM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define FBMEM_ALIGN 256u

struct fbmem_block {
        uint64_t base;
        uint64_t size;  /* as requested, rounded up to FBMEM_ALIGN */
        uint64_t owner; /* (session id << 32) | context index */
        uint32_t dirty; /* written since fbmem_take_dirty last looked (new blocks: 1) */
};

struct fbmem {
        pthread_rwlock_t lock;
        uint64_t base; /* device address of the framebuffer */
        uint64_t size;
        uint64_t used;
        struct fbmem_block *blocks; /* sorted by base */
        size_t n, cap;
};

/* fbmem_init - an empty allocator over [base, base + size). */
void fbmem_init(struct fbmem *m, uint64_t base, uint64_t size);

/* fbmem_destroy - free the allocator's own memory. */
void fbmem_destroy(struct fbmem *m);

/*
 * fbmem_alloc - first fit of size bytes (rounded up to FBMEM_ALIGN) for owner. Returns 0 and
 * *ret_base, -ENOMEM when no gap is large enough (the framebuffer is full), -EINVAL for size 0.
 */
int fbmem_alloc(struct fbmem *m, uint64_t size, uint64_t owner, uint64_t *ret_base);

/*
 * fbmem_alloc_at - the block [base, base + size rounded up) for owner, where another allocator
 * (a worker's main engine) placed it. 0, -EEXIST when it overlaps a block, -EINVAL outside.
 */
int fbmem_alloc_at(struct fbmem *m, uint64_t base, uint64_t size, uint64_t owner);

/* fbmem_free - free the block starting at base owned by owner; -EINVAL when there is none. */
int fbmem_free(struct fbmem *m, uint64_t base, uint64_t owner);

/* fbmem_free_owner - free every block whose owner matches (owner & mask) == (want & mask). */
void fbmem_free_owner(struct fbmem *m, uint64_t want, uint64_t mask);

/*
 * fbmem_find - the block of owner that contains [addr, addr + len) whole (len 0: addr inside).
 * Returns 0 and *ret, or -EFAULT.
 */
int fbmem_find(struct fbmem *m, uint64_t addr, uint64_t len, uint64_t owner,
               struct fbmem_block *ret);

/* fbmem_free_bytes - bytes not allocated. */
uint64_t fbmem_free_bytes(struct fbmem *m);

/*
 * Write tracking, for pre-copy migration (docs/migration.md). A writer calls fbmem_mark once
 * its write is done: the blocks [addr, addr + len) overlaps, or fbmem_mark_owner: every block of
 * owner (a kernel may write any of its context's memory). Safe from any thread.
 */
void fbmem_mark(struct fbmem *m, uint64_t addr, uint64_t len);
void fbmem_mark_owner(struct fbmem *m, uint64_t owner);

/*
 * fbmem_take_dirty - the blocks written since the last call (all blocks when all), their marks
 * cleared, as a malloc'd array in *ret (caller frees); returns how many, or -ENOMEM.
 */
long fbmem_take_dirty(struct fbmem *m, bool all, struct fbmem_block **ret);

#endif
