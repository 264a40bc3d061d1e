// SPDX-License-Identifier: Apache-2.0
// A session's memory handlers (calls.def): allocations, copies through the staging area, memset,
// and the host blocks a guest shares (its cuMemAllocHost memory), mapped here and copied from and
// to directly. Device memory is reached only inside the allocations of the context that asks.
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "engine/session.h"
#include "engine/session_int.h"

/* ---- write tracking (pre-copy migration) ---------------------------------------------------- */

/* After a write to [addr, addr + len) is done: while a migration copies, it is copied again. */
static int wrote(struct session *s, int r, uint64_t addr, uint64_t len)
{
        if (r >= 0 && __atomic_load_n(&s->dev->track_writes, __ATOMIC_ACQUIRE))
                fbmem_mark(&s->dev->mem, addr, len);
        return r;
}

int session_op_mem_alloc(struct session *s, const void *req, uint32_t len, void *rep,
                         uint32_t *rep_len)
{
        const struct vgpu_req_mem_alloc *q = req;
        struct vgpu_rep_mem_alloc *r = rep;
        uint64_t base;
        int e;

        (void)len;
        WITH_CTX(s, q->ctx, idx, c);
        e = session_dev_alloc(s->dev, q->size, owner_of(s, idx), &base);
        if (e < 0)
                return e;
        r->dptr = base;
        r->size = q->size;
        *rep_len = sizeof(*r);
        return 0;
}

int session_op_mem_free(struct session *s, const void *req, uint32_t len, void *rep,
                        uint32_t *rep_len)
{
        const struct vgpu_req_mem_free *q = req;
        struct sctx *c;
        uint32_t idx;

        (void)len, (void)rep, (void)rep_len;
        if (!(c = session_get_ctx(s, q->ctx, &idx)))
                return -EBADF;
        session_drain(s, c);
        return session_dev_free(s->dev, q->dptr, owner_of(s, idx));
}

int session_op_mem_info(struct session *s, const void *req, uint32_t len, void *rep,
                        uint32_t *rep_len)
{
        const struct vgpu_req_ctx *q = req;
        struct vgpu_rep_mem_info *r = rep;
        uint32_t idx;

        (void)len;
        if (!session_get_ctx(s, q->ctx, &idx))
                return -EBADF;
        r->free = session_dev_free_bytes(s->dev);
        r->total = s->dev->fb.size;
        *rep_len = sizeof(*r);
        return 0;
}

int session_op_mem_range(struct session *s, const void *req, uint32_t len, void *rep,
                         uint32_t *rep_len)
{
        const struct vgpu_req_mem_free *q = req;
        struct vgpu_rep_mem_alloc *r = rep;
        struct fbmem_block b;
        uint32_t idx;

        (void)len;
        if (!session_get_ctx(s, q->ctx, &idx))
                return -EBADF;
        if (fbmem_find(&s->dev->mem, q->dptr, 0, owner_of(s, idx), &b) < 0)
                return -EFAULT;
        r->dptr = b.base;
        r->size = b.size;
        *rep_len = sizeof(*r);
        return 0;
}

bool session_stage_ok(const struct session *s, uint64_t off, uint64_t len)
{
        return off <= s->v.stage_size && len <= s->v.stage_size - off;
}

int session_op_copy_htod(struct session *s, const void *req, uint32_t len, void *rep,
                         uint32_t *rep_len)
{
        const struct vgpu_req_copy *q = req;

        (void)len, (void)rep, (void)rep_len;
        WITH_CTX(s, q->ctx, idx, c);
        if (!session_stage_ok(s, q->src, q->len) || !session_region_ok(s, idx, q->dst, q->len))
                return -EFAULT;
        return wrote(s, s->dev->ops->copy_htod(s->q, q->dst, s->v.stage + q->src, q->len), q->dst,
                     q->len);
}

int session_op_copy_dtoh(struct session *s, const void *req, uint32_t len, void *rep,
                         uint32_t *rep_len)
{
        const struct vgpu_req_copy *q = req;

        (void)len, (void)rep, (void)rep_len;
        WITH_CTX(s, q->ctx, idx, c);
        if (!session_stage_ok(s, q->dst, q->len) || !session_region_ok(s, idx, q->src, q->len))
                return -EFAULT;
        return s->dev->ops->copy_dtoh(s->q, s->v.stage + q->dst, q->src, q->len);
}

int session_op_copy_dtod(struct session *s, const void *req, uint32_t len, void *rep,
                         uint32_t *rep_len)
{
        const struct vgpu_req_copy *q = req;

        (void)len, (void)rep, (void)rep_len;
        WITH_CTX(s, q->ctx, idx, c);
        if (!session_region_ok(s, idx, q->src, q->len) ||
            !session_region_ok(s, idx, q->dst, q->len))
                return -EFAULT;
        return wrote(s, s->dev->ops->copy_dtod(s->q, q->dst, q->src, q->len), q->dst, q->len);
}

int session_op_memset(struct session *s, const void *req, uint32_t len, void *rep,
                      uint32_t *rep_len)
{
        const struct vgpu_req_memset *q = req;
        uint64_t row, span;

        (void)len, (void)rep, (void)rep_len;
        WITH_CTX(s, q->ctx, idx, c);
        if (q->elem_size != 1 && q->elem_size != 2 && q->elem_size != 4)
                return -EINVAL;
        if (!q->width || !q->height)
                return 0;
        if (q->width > UINT64_MAX / q->elem_size)
                return -EINVAL;
        row = q->width * q->elem_size;
        if (q->height > 1 && (q->pitch < row || q->height - 1 > (UINT64_MAX - row) / q->pitch))
                return -EINVAL;
        span = (q->height - 1) * q->pitch + row;
        if (!session_region_ok(s, idx, q->dst, span))
                return -EFAULT;
        return wrote(s,
                     s->dev->ops->memset(s->q, q->dst, q->height > 1 ? q->pitch : row, q->value,
                                         q->elem_size, q->width, q->height),
                     q->dst, span);
}

/*
 * The shared host block id covering [off, off+len), held locked in *ret (unlock with
 * host_put). The guest announces a block on its socket just before its first use, so a block not
 * yet known is waited for, briefly.
 */
unsigned session_host_wait_ms = 2000;

static int host_get(struct session *s, uint64_t id, uint64_t off, uint64_t len, uint8_t **ret)
{
        struct timespec until;

        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)(session_host_wait_ms % 1000) * 1000000;
        until.tv_sec += session_host_wait_ms / 1000 + until.tv_nsec / 1000000000;
        until.tv_nsec %= 1000000000;
        pthread_mutex_lock(&s->host_lock);
        for (;;) {
                for (uint32_t i = 0; i < s->n_hosts; i++) {
                        const struct shost *h = &s->hosts[i];

                        if (h->id != id)
                                continue;
                        if (off > h->size || len > h->size - off) {
                                pthread_mutex_unlock(&s->host_lock);
                                return -EFAULT;
                        }
                        *ret = h->p + off;
                        return 0;
                }
                if (s->stop || pthread_cond_timedwait(&s->host_cond, &s->host_lock, &until))
                        break;
        }
        pthread_mutex_unlock(&s->host_lock);
        return -EBADF;
}

static void host_put(struct session *s)
{
        pthread_mutex_unlock(&s->host_lock);
}

/* A copy between device memory and a shared host block, either way. */
static int copy_host(struct session *s, const struct vgpu_req_copy_host *q, bool to_device)
{
        uint8_t *p;
        int e;

        WITH_CTX(s, q->ctx, idx, c);
        if (!session_region_ok(s, idx, q->dptr, q->len))
                return -EFAULT;
        e = host_get(s, q->host, q->off, q->len, &p);
        if (e < 0)
                return e;
        e = to_device ? wrote(s, s->dev->ops->copy_htod(s->q, q->dptr, p, q->len), q->dptr, q->len)
                      : s->dev->ops->copy_dtoh(s->q, p, q->dptr, q->len);
        host_put(s);
        return e;
}

int session_op_copy_htod_host(struct session *s, const void *req, uint32_t len, void *rep,
                              uint32_t *rep_len)
{
        (void)len, (void)rep, (void)rep_len;
        return copy_host(s, req, true);
}

int session_op_copy_dtoh_host(struct session *s, const void *req, uint32_t len, void *rep,
                              uint32_t *rep_len)
{
        (void)len, (void)rep, (void)rep_len;
        return copy_host(s, req, false);
}

int session_host_map(struct session *s, uint64_t id, int fd, uint64_t size)
{
        struct stat st;
        struct shost *nh;
        void *p;

        /* It must not shrink under the mapping: the engine would die of SIGBUS. */
        if (!size || size > SESSION_HOST_MAX || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
            (uint64_t)st.st_size < size || fcntl(fd, F_GET_SEALS) < 0 ||
            !(fcntl(fd, F_GET_SEALS) & F_SEAL_SHRINK))
                return -EINVAL;
        pthread_mutex_lock(&s->host_lock);
        for (uint32_t i = 0; i < s->n_hosts; i++) {
                if (s->hosts[i].id == id) {
                        pthread_mutex_unlock(&s->host_lock);
                        return -EEXIST;
                }
        }
        if (s->n_hosts >= SESSION_HOST_BLOCKS) {
                pthread_mutex_unlock(&s->host_lock);
                return -ENOSPC;
        }
        pthread_mutex_unlock(&s->host_lock);
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return -errno;
        pthread_mutex_lock(&s->host_lock);
        nh = realloc(s->hosts, (s->n_hosts + 1) * sizeof(*nh));
        if (!nh) {
                pthread_mutex_unlock(&s->host_lock);
                munmap(p, size);
                return -ENOMEM;
        }
        s->hosts = nh;
        nh[s->n_hosts] = (struct shost){.id = id, .p = p, .size = size};
        /* Page-locked for the GPU where the backend can; plain copies work either way. */
        nh[s->n_hosts].registered = s->dev->ops->host_register(s->dev->bdev, p, size) == 0;
        s->n_hosts++;
        pthread_cond_broadcast(&s->host_cond);
        pthread_mutex_unlock(&s->host_lock);
        return 0;
}

void session_host_release(struct session *s, struct shost *h)
{
        if (h->registered)
                s->dev->ops->host_unregister(s->dev->bdev, h->p);
        munmap(h->p, h->size);
}

int session_host_unmap(struct session *s, uint64_t id)
{
        pthread_mutex_lock(&s->host_lock);
        for (uint32_t i = 0; i < s->n_hosts; i++) {
                if (s->hosts[i].id == id) {
                        struct shost h = s->hosts[i];

                        s->hosts[i] = s->hosts[--s->n_hosts];
                        pthread_mutex_unlock(&s->host_lock);
                        session_host_release(s, &h);
                        return 0;
                }
        }
        pthread_mutex_unlock(&s->host_lock);
        return -ENOENT;
}
