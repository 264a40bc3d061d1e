// SPDX-License-Identifier: Apache-2.0
// First-fit sub-allocation of a vGPU framebuffer over a sorted array of blocks, with owners, so
// every guest pointer can be checked against the allocations of the context that uses it.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/fbmem.h"

void fbmem_init(struct fbmem *m, uint64_t base, uint64_t size)
{
        memset(m, 0, sizeof(*m));
        pthread_rwlock_init(&m->lock, NULL);
        m->base = base;
        m->size = size;
}

void fbmem_destroy(struct fbmem *m)
{
        free(m->blocks);
        pthread_rwlock_destroy(&m->lock);
}

int fbmem_alloc(struct fbmem *m, uint64_t size, uint64_t owner, uint64_t *ret_base)
{
        uint64_t want, at;
        size_t i;
        int r = -ENOMEM;

        if (size == 0 || size > m->size)
                return size == 0 ? -EINVAL : -ENOMEM;
        want = (size + FBMEM_ALIGN - 1) & ~(uint64_t)(FBMEM_ALIGN - 1);
        pthread_rwlock_wrlock(&m->lock);
        at = m->base;
        for (i = 0; i <= m->n; i++) {
                uint64_t gap_end = i < m->n ? m->blocks[i].base : m->base + m->size;

                if (gap_end - at >= want) {
                        r = 0;
                        break;
                }
                if (i < m->n)
                        at = m->blocks[i].base + m->blocks[i].size;
        }
        if (r == 0 && m->n == m->cap) {
                size_t cap = m->cap ? m->cap * 2 : 64;
                struct fbmem_block *nb = realloc(m->blocks, cap * sizeof(*nb));

                if (nb) {
                        m->blocks = nb;
                        m->cap = cap;
                } else {
                        r = -ENOMEM;
                }
        }
        if (r == 0) {
                memmove(&m->blocks[i + 1], &m->blocks[i], (m->n - i) * sizeof(*m->blocks));
                m->blocks[i] =
                        (struct fbmem_block){.base = at, .size = want, .owner = owner, .dirty = 1};
                m->n++;
                m->used += want;
                *ret_base = at;
        }
        pthread_rwlock_unlock(&m->lock);
        return r;
}

int fbmem_alloc_at(struct fbmem *m, uint64_t base, uint64_t size, uint64_t owner)
{
        uint64_t want;
        size_t i = 0;
        int r = 0;

        if (size == 0 || size > m->size)
                return -EINVAL;
        want = (size + FBMEM_ALIGN - 1) & ~(uint64_t)(FBMEM_ALIGN - 1);
        if (base < m->base || base % FBMEM_ALIGN || want > m->size - (base - m->base))
                return -EINVAL;
        pthread_rwlock_wrlock(&m->lock);
        while (i < m->n && m->blocks[i].base + m->blocks[i].size <= base)
                i++;
        if (i < m->n && m->blocks[i].base < base + want)
                r = -EEXIST;
        if (r == 0 && m->n == m->cap) {
                size_t cap = m->cap ? m->cap * 2 : 64;
                struct fbmem_block *nb = realloc(m->blocks, cap * sizeof(*nb));

                if (nb) {
                        m->blocks = nb;
                        m->cap = cap;
                } else {
                        r = -ENOMEM;
                }
        }
        if (r == 0) {
                memmove(&m->blocks[i + 1], &m->blocks[i], (m->n - i) * sizeof(*m->blocks));
                m->blocks[i] = (struct fbmem_block){
                        .base = base, .size = want, .owner = owner, .dirty = 1};
                m->n++;
                m->used += want;
        }
        pthread_rwlock_unlock(&m->lock);
        return r;
}

/* Index of the block containing addr, or -1. The caller holds the lock. */
static long find_locked(const struct fbmem *m, uint64_t addr)
{
        size_t lo = 0, hi = m->n;

        while (lo < hi) {
                size_t mid = (lo + hi) / 2;

                if (addr < m->blocks[mid].base)
                        hi = mid;
                else if (addr >= m->blocks[mid].base + m->blocks[mid].size)
                        lo = mid + 1;
                else
                        return (long)mid;
        }
        return -1;
}

int fbmem_free(struct fbmem *m, uint64_t base, uint64_t owner)
{
        long i;
        int r = -EINVAL;

        pthread_rwlock_wrlock(&m->lock);
        i = find_locked(m, base);
        if (i >= 0 && m->blocks[i].base == base && m->blocks[i].owner == owner) {
                m->used -= m->blocks[i].size;
                memmove(&m->blocks[i], &m->blocks[i + 1],
                        (m->n - (size_t)i - 1) * sizeof(*m->blocks));
                m->n--;
                r = 0;
        }
        pthread_rwlock_unlock(&m->lock);
        return r;
}

void fbmem_free_owner(struct fbmem *m, uint64_t want, uint64_t mask)
{
        size_t out = 0;

        pthread_rwlock_wrlock(&m->lock);
        for (size_t i = 0; i < m->n; i++) {
                if ((m->blocks[i].owner & mask) == (want & mask))
                        m->used -= m->blocks[i].size;
                else
                        m->blocks[out++] = m->blocks[i];
        }
        m->n = out;
        pthread_rwlock_unlock(&m->lock);
}

int fbmem_find(struct fbmem *m, uint64_t addr, uint64_t len, uint64_t owner,
               struct fbmem_block *ret)
{
        long i;
        int r = -EFAULT;

        pthread_rwlock_rdlock(&m->lock);
        i = find_locked(m, addr);
        if (i >= 0 && m->blocks[i].owner == owner &&
            len <= m->blocks[i].base + m->blocks[i].size - addr) {
                *ret = m->blocks[i];
                r = 0;
        }
        pthread_rwlock_unlock(&m->lock);
        return r;
}

uint64_t fbmem_free_bytes(struct fbmem *m)
{
        uint64_t f;

        pthread_rwlock_rdlock(&m->lock);
        f = m->size - m->used;
        pthread_rwlock_unlock(&m->lock);
        return f;
}

void fbmem_mark(struct fbmem *m, uint64_t addr, uint64_t len)
{
        long i;

        pthread_rwlock_rdlock(&m->lock);
        i = find_locked(m, addr);
        for (size_t k = i < 0 ? m->n : (size_t)i;
             k < m->n && m->blocks[k].base < addr + (len ? len : 1); k++)
                __atomic_store_n(&m->blocks[k].dirty, 1, __ATOMIC_RELEASE);
        pthread_rwlock_unlock(&m->lock);
}

void fbmem_mark_owner(struct fbmem *m, uint64_t owner)
{
        pthread_rwlock_rdlock(&m->lock);
        for (size_t i = 0; i < m->n; i++) {
                if (m->blocks[i].owner == owner)
                        __atomic_store_n(&m->blocks[i].dirty, 1, __ATOMIC_RELEASE);
        }
        pthread_rwlock_unlock(&m->lock);
}

long fbmem_take_dirty(struct fbmem *m, bool all, struct fbmem_block **ret)
{
        struct fbmem_block *out;
        size_t n = 0;

        pthread_rwlock_rdlock(&m->lock);
        out = malloc((m->n ? m->n : 1) * sizeof(*out));
        for (size_t i = 0; out && i < m->n; i++) {
                if (__atomic_exchange_n(&m->blocks[i].dirty, 0, __ATOMIC_ACQ_REL) || all)
                        out[n++] = m->blocks[i];
        }
        pthread_rwlock_unlock(&m->lock);
        if (!out)
                return -ENOMEM;
        *ret = out;
        return (long)n;
}
