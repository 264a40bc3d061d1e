/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Write tracking by write protection, for pre-copy migration of a sim framebuffer (the sim's
 * framebuffer is this process's memory). The range is made read-only; the first write to each
 * page faults, the fault handler notes the page and lets the write go on. Each take hands out
 * the pages written since the last one and protects them again. One range per process at a time.
 *
 * Writes the kernel makes into the range (a read(2) into it) would fail with EFAULT instead of
 * faulting: nothing of the engine does that. When the kernel cannot split the mapping further
 * (too many protected pieces), tracking gives up: the range is made writable again and the next
 * take says so, and the caller copies everything instead.
 */
#ifndef VGPU_ENGINE_WPTRACK_H
#define VGPU_ENGINE_WPTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WPTRACK_PAGE 4096u

/* wptrack_start - protect [base, base + len) (page aligned) and track writes. 0 or -errno. */
int wptrack_start(void *base, uint64_t len);

/*
 * wptrack_take - the pages written since the start or the last take, as a bitmap (bit i: the
 * page at base + i * WPTRACK_PAGE) the caller frees, *ret_pages pages long; they are protected
 * again first. 0, -EOVERFLOW (tracking gave up: treat everything as written), or -ENOMEM.
 */
int wptrack_take(uint64_t **ret_bits, size_t *ret_pages);

/* wptrack_stop - make the range writable again and stop tracking. */
void wptrack_stop(void);

/* wptrack_dirty - bit i of a bitmap of wptrack_take. */
static inline bool wptrack_dirty(const uint64_t *bits, size_t i)
{
        return (bits[i / 64] >> (i % 64)) & 1;
}

#endif
