// SPDX-License-Identifier: Apache-2.0
// Device memory: allocations (sub-allocated by the engine inside the vGPU's framebuffer), host
// allocations, and every copy and fill. Bulk data streams through the staging area in chunks: the
// guest fills one while the engine drains the previous, so both sides overlap. cuMemAllocHost
// memory is shared with the engines instead (a sealed memfd each maps too), so copies from and to
// it need no staging: one command, and on a GPU the DMA reads the guest's pages directly.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "guest/guest.h"

/* Whether [p, p + len) lies inside the device range of c's vGPU, or in a module variable. */
static bool in_device(const struct gctx *c, CUdeviceptr p, size_t len)
{
        const struct gdev *d = c->dev;

        return (p >= d->device_address && p - d->device_address <= d->fb_size &&
                len <= d->fb_size - (p - d->device_address)) ||
               guest_var_range(d, p, len);
}

/* A synchronous copy's end: its stream reached it; then the errors of the context. */
static CUresult error_query(struct gctx *c, struct gstream *st)
{
        struct vgpu_req_ctx q = {.ctx = c->handle};
        CUresult r = guest_wait_stream(c, st);

        if (r != CUDA_SUCCESS)
                return r;
        if (c->sticky)
                return (CUresult)c->sticky;
        return guest_call(c->dev, VGPU_OP_ERROR_QUERY, &q, sizeof(q), NULL, 0, NULL, 0);
}

static bool host_shared(struct gdev *d, const void *p, size_t len, uint64_t *ret_id,
                        uint64_t *ret_off);

/* One command for a copy between device memory and shared host memory. */
static CUresult copy_host(struct gctx *c, uint16_t op, CUdeviceptr dptr, uint64_t id, uint64_t off,
                          size_t len, struct gstream *st, uint64_t *ret_seq)
{
        struct vgpu_req_copy_host q = {
                .ctx = c->handle, .dptr = dptr, .host = id, .off = off, .len = len};
        struct gdev *d = c->dev;
        CUresult r;

        pthread_mutex_lock(&d->lock);
        r = guest_push_stream_locked(c, st, op, &q, sizeof(q), NULL, 0, ret_seq);
        pthread_mutex_unlock(&d->lock);
        return r;
}

CUresult guest_copy_htod(struct gctx *c, CUdeviceptr dst, const void *src, size_t len, bool sync,
                         struct gstream *st)
{
        struct gdev *d = c->dev;
        uint64_t chunk = guest_stage_chunk_size(d), seq = 0;
        CUresult r = CUDA_SUCCESS;

        if (!len)
                return CUDA_SUCCESS;
        if (!src || !in_device(c, dst, len))
                return CUDA_ERROR_INVALID_VALUE;
        if (c->sticky)
                return (CUresult)c->sticky;
        {
                uint64_t id, hoff;

                if (host_shared(d, src, len, &id, &hoff)) {
                        r = copy_host(c, VGPU_OP_COPY_HTOD_HOST, dst, id, hoff, len, st, &seq);
                        return r == CUDA_SUCCESS && sync ? error_query(c, st) : r;
                }
        }
        pthread_mutex_lock(&d->lock);
        for (size_t off = 0; off < len && r == CUDA_SUCCESS; off += chunk) {
                size_t n = len - off < chunk ? len - off : chunk;
                struct vgpu_req_copy q;
                unsigned idx;
                uint64_t soff;

                r = guest_stage_chunk_locked(d, &idx, &soff);
                if (r != CUDA_SUCCESS)
                        break;
                memcpy(d->v.stage + soff, (const uint8_t *)src + off, n);
                q = (struct vgpu_req_copy){
                        .ctx = c->handle, .dst = dst + off, .src = soff, .len = n};
                r = guest_push_stream_locked(c, st, VGPU_OP_COPY_HTOD, &q, sizeof(q), NULL, 0,
                                             &seq);
                if (r != CUDA_SUCCESS)
                        break;
                d->stage_seq[idx] = seq;
                d->stage_slot[idx] = guest_stream_of(c, st)->slot;
        }
        pthread_mutex_unlock(&d->lock);
        if (r == CUDA_SUCCESS && sync)
                r = error_query(c, st);
        return r;
}

CUresult guest_copy_dtoh(struct gctx *c, void *dst, CUdeviceptr src, size_t len, struct gstream *st)
{
        struct gdev *d = c->dev;
        uint64_t chunk = guest_stage_chunk_size(d);
        struct {
                uint64_t seq, soff;
                size_t off, n;
        } q[VGPU_STAGE_CHUNKS];
        size_t issued = 0, drained = 0, nchunks;
        CUresult r = CUDA_SUCCESS;

        if (!len)
                return CUDA_SUCCESS;
        if (!dst || !in_device(c, src, len))
                return CUDA_ERROR_INVALID_VALUE;
        if (c->sticky)
                return (CUresult)c->sticky;
        {
                uint64_t id, hoff, seq;

                if (host_shared(d, dst, len, &id, &hoff)) {
                        r = copy_host(c, VGPU_OP_COPY_DTOH_HOST, src, id, hoff, len, st, &seq);
                        return r == CUDA_SUCCESS ? error_query(c, st) : r;
                }
        }
        nchunks = (len + chunk - 1) / chunk;
        pthread_mutex_lock(&d->lock);
        /* Keep every staging chunk busy: issue ahead, drain in order, refill the drained one. */
        while (drained < nchunks && r == CUDA_SUCCESS) {
                while (issued < nchunks && issued - drained < VGPU_STAGE_CHUNKS &&
                       r == CUDA_SUCCESS) {
                        unsigned idx;
                        uint64_t soff;
                        struct vgpu_req_copy rq;
                        size_t off = issued * chunk;
                        size_t n = len - off < chunk ? len - off : chunk;

                        r = guest_stage_chunk_locked(d, &idx, &soff);
                        if (r != CUDA_SUCCESS)
                                break;
                        rq = (struct vgpu_req_copy){
                                .ctx = c->handle, .dst = soff, .src = src + off, .len = n};
                        r = guest_push_stream_locked(c, st, VGPU_OP_COPY_DTOH, &rq, sizeof(rq),
                                                     NULL, 0, &q[issued % VGPU_STAGE_CHUNKS].seq);
                        if (r != CUDA_SUCCESS)
                                break;
                        d->stage_seq[idx] = q[issued % VGPU_STAGE_CHUNKS].seq;
                        d->stage_slot[idx] = guest_stream_of(c, st)->slot;
                        q[issued % VGPU_STAGE_CHUNKS].soff = soff;
                        q[issued % VGPU_STAGE_CHUNKS].off = off;
                        q[issued % VGPU_STAGE_CHUNKS].n = n;
                        issued++;
                }
                if (r != CUDA_SUCCESS)
                        break;
                r = guest_wait_slot(d, guest_stream_of(c, st)->slot,
                                    q[drained % VGPU_STAGE_CHUNKS].seq);
                if (r == CUDA_SUCCESS)
                        memcpy((uint8_t *)dst + q[drained % VGPU_STAGE_CHUNKS].off,
                               d->v.stage + q[drained % VGPU_STAGE_CHUNKS].soff,
                               q[drained % VGPU_STAGE_CHUNKS].n);
                drained++;
        }
        pthread_mutex_unlock(&d->lock);
        if (r == CUDA_SUCCESS)
                r = error_query(c, st);
        return r;
}

static CUresult copy_dtod(struct gctx *c, CUdeviceptr dst, CUdeviceptr src, size_t len, bool sync,
                          struct gstream *st)
{
        struct vgpu_req_copy q = {.ctx = c->handle, .dst = dst, .src = src, .len = len};
        uint64_t seq;
        CUresult r;

        if (!len)
                return CUDA_SUCCESS;
        if (!in_device(c, dst, len) || !in_device(c, src, len))
                return CUDA_ERROR_INVALID_VALUE;
        if (c->sticky)
                return (CUresult)c->sticky;
        pthread_mutex_lock(&c->dev->lock);
        r = guest_push_stream_locked(c, st, VGPU_OP_COPY_DTOD, &q, sizeof(q), NULL, 0, &seq);
        pthread_mutex_unlock(&c->dev->lock);
        if (r == CUDA_SUCCESS && sync)
                r = error_query(c, st);
        return r;
}

/* A copy between two vGPUs of this process goes through host memory. */
static CUresult copy_peer(struct gctx *dc, CUdeviceptr dst, struct gctx *sc, CUdeviceptr src,
                          size_t len)
{
        void *tmp = malloc(len ? len : 1);
        CUresult r;

        if (!tmp)
                return CUDA_ERROR_OUT_OF_MEMORY;
        r = guest_copy_dtoh(sc, tmp, src, len, NULL);
        if (r == CUDA_SUCCESS)
                r = guest_copy_htod(dc, dst, tmp, len, true, NULL);
        free(tmp);
        return r;
}

/* ---- allocation --------------------------------------------------------------------------- */

CUresult CUDAAPI cuMemAlloc(CUdeviceptr *dptr, size_t bytesize)
{
        struct vgpu_req_mem_alloc q;
        struct vgpu_rep_mem_alloc rep = {0};
        struct gctx *c;
        CUresult r = guest_ctx_get(NULL, &c);

        if (r != CUDA_SUCCESS)
                return r;
        if (!dptr || !bytesize)
                return CUDA_ERROR_INVALID_VALUE;
        q = (struct vgpu_req_mem_alloc){.ctx = c->handle, .size = bytesize};
        r = guest_call(c->dev, VGPU_OP_MEM_ALLOC, &q, sizeof(q), NULL, 0, &rep, sizeof(rep));
        if (r == CUDA_SUCCESS)
                *dptr = rep.dptr;
        return r;
}

CUresult CUDAAPI cuMemAllocPitch(CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes,
                                 size_t Height, unsigned int ElementSizeBytes)
{
        size_t pitch;
        CUresult r;

        if (!pPitch || !WidthInBytes || !Height ||
            (ElementSizeBytes != 4 && ElementSizeBytes != 8 && ElementSizeBytes != 16))
                return CUDA_ERROR_INVALID_VALUE;
        pitch = (WidthInBytes + 511) & ~(size_t)511;
        if (Height > SIZE_MAX / pitch)
                return CUDA_ERROR_INVALID_VALUE;
        r = cuMemAlloc(dptr, pitch * Height);
        if (r == CUDA_SUCCESS)
                *pPitch = pitch;
        return r;
}

CUresult CUDAAPI cuMemFree(CUdeviceptr dptr)
{
        struct vgpu_req_mem_free q;
        struct gctx *c;
        struct gdev *d;
        CUresult r = guest_ctx_get(NULL, &c);

        if (r != CUDA_SUCCESS)
                return r;
        if (!dptr)
                return CUDA_SUCCESS;
        d = guest_device_of(dptr);
        if (!d)
                return CUDA_ERROR_INVALID_VALUE;
        if (d != c->dev)
                return CUDA_ERROR_INVALID_VALUE;
        /* Freeing waits for the work that may still use the memory, as a GPU driver does. */
        guest_wait_ctx(c);
        q = (struct vgpu_req_mem_free){.ctx = c->handle, .dptr = dptr};
        r = guest_call(d, VGPU_OP_MEM_FREE, &q, sizeof(q), NULL, 0, NULL, 0);
        return r;
}

CUresult CUDAAPI cuMemGetInfo(size_t *free_bytes, size_t *total)
{
        struct vgpu_req_ctx q;
        struct vgpu_rep_mem_info rep = {0};
        struct gctx *c;
        CUresult r = guest_ctx_get(NULL, &c);

        if (r != CUDA_SUCCESS)
                return r;
        if (!free_bytes || !total)
                return CUDA_ERROR_INVALID_VALUE;
        q.ctx = c->handle;
        r = guest_call(c->dev, VGPU_OP_MEM_INFO, &q, sizeof(q), NULL, 0, &rep, sizeof(rep));
        if (r == CUDA_SUCCESS) {
                *free_bytes = rep.free;
                *total = rep.total;
        }
        return r;
}

CUresult CUDAAPI cuMemGetAddressRange(CUdeviceptr *pbase, size_t *psize, CUdeviceptr dptr)
{
        struct vgpu_req_mem_free q;
        struct vgpu_rep_mem_alloc rep = {0};
        struct gctx *c;
        CUresult r = guest_ctx_get(NULL, &c);

        if (r != CUDA_SUCCESS)
                return r;
        q = (struct vgpu_req_mem_free){.ctx = c->handle, .dptr = dptr};
        r = guest_call(c->dev, VGPU_OP_MEM_RANGE, &q, sizeof(q), NULL, 0, &rep, sizeof(rep));
        if (r == CUDA_ERROR_INVALID_VALUE)
                r = CUDA_ERROR_NOT_FOUND;
        if (r == CUDA_SUCCESS) {
                if (pbase)
                        *pbase = rep.dptr;
                if (psize)
                        *psize = rep.size;
        }
        return r;
}

/* Host allocations and registrations, so frees and pointer queries can be checked. */
struct host_range {
        void *p;
        size_t size;
        bool registered;
        /* cuMemAllocHost memory: the memfd behind it, its id, the devices that mapped it */
        int fd;
        size_t map_size;
        uint64_t id;
        uint32_t mapped;
};
static uint64_t next_host_id = 1;
static struct host_range *hosts;
static size_t n_hosts;
static pthread_mutex_t hosts_lock = PTHREAD_MUTEX_INITIALIZER;

static CUresult host_add_shared(void *p, size_t size, int fd, size_t map_size);

static CUresult host_add(void *p, size_t size, bool registered)
{
        struct host_range *nh;

        pthread_mutex_lock(&hosts_lock);
        nh = realloc(hosts, (n_hosts + 1) * sizeof(*hosts));
        if (!nh) {
                pthread_mutex_unlock(&hosts_lock);
                return CUDA_ERROR_OUT_OF_MEMORY;
        }
        hosts = nh;
        hosts[n_hosts++] =
                (struct host_range){.p = p, .size = size, .registered = registered, .fd = -1};
        pthread_mutex_unlock(&hosts_lock);
        return CUDA_SUCCESS;
}

static CUresult host_add_shared(void *p, size_t size, int fd, size_t map_size)
{
        CUresult r = host_add(p, size, false);

        if (r == CUDA_SUCCESS) {
                pthread_mutex_lock(&hosts_lock);
                hosts[n_hosts - 1].fd = fd;
                hosts[n_hosts - 1].map_size = map_size;
                hosts[n_hosts - 1].id = next_host_id++;
                pthread_mutex_unlock(&hosts_lock);
        }
        return r;
}

/* Tell d's engine about a shared block: a JSON line with the memfd attached. */
static bool host_announce(struct gdev *d, const char *op, const struct host_range *h)
{
        char line[128], cbuf[CMSG_SPACE(sizeof(int))] = {0};
        struct iovec iov = {.iov_base = line};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        int n = snprintf(line, sizeof(line), "{\"op\":\"%s\",\"id\":%llu,\"size\":%zu}\n", op,
                         (unsigned long long)h->id, h->map_size);

        iov.iov_len = (size_t)n;
        if (strcmp(op, "host_map") == 0) {
                struct cmsghdr *cm;

                mh.msg_control = cbuf;
                mh.msg_controllen = sizeof(cbuf);
                cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(cm), &h->fd, sizeof(int));
        }
        return sendmsg(d->sock, &mh, MSG_NOSIGNAL) == n;
}

void guest_host_reannounce(struct gdev *d)
{
        pthread_mutex_lock(&hosts_lock);
        for (size_t i = 0; i < n_hosts; i++) {
                struct host_range *h = &hosts[i];

                if (h->fd >= 0 && (h->mapped & (1u << d->ordinal)) &&
                    !host_announce(d, "host_map", h))
                        h->mapped &= ~(1u << d->ordinal); /* announced again at its next use */
        }
        pthread_mutex_unlock(&hosts_lock);
}

/*
 * Whether [p, p+len) lies in one shared host block, mapped in d's engine (announced on first
 * use): then *ret_id and *ret_off name it. Otherwise copies go through the staging area.
 */
static bool host_shared(struct gdev *d, const void *p, size_t len, uint64_t *ret_id,
                        uint64_t *ret_off)
{
        const uint8_t *b = p;
        bool ok = false;

        if (d->remote)
                return false; /* over TCP: the engine cannot map this process's memory */
        pthread_mutex_lock(&hosts_lock);
        for (size_t i = 0; i < n_hosts; i++) {
                struct host_range *h = &hosts[i];
                const uint8_t *a = h->p;

                if (h->fd < 0 || b < a || b - a > (ptrdiff_t)h->size ||
                    len > h->size - (size_t)(b - a))
                        continue;
                if (!(h->mapped & (1u << d->ordinal)) && host_announce(d, "host_map", h))
                        h->mapped |= 1u << d->ordinal;
                if (h->mapped & (1u << d->ordinal)) {
                        *ret_id = h->id;
                        *ret_off = (uint64_t)(b - a);
                        ok = true;
                }
                break;
        }
        pthread_mutex_unlock(&hosts_lock);
        return ok;
}

static bool host_remove(void *p, bool registered)
{
        bool found = false;

        pthread_mutex_lock(&hosts_lock);
        for (size_t i = 0; i < n_hosts; i++) {
                if (hosts[i].p == p && hosts[i].registered == registered) {
                        hosts[i] = hosts[--n_hosts];
                        found = true;
                        break;
                }
        }
        pthread_mutex_unlock(&hosts_lock);
        return found;
}

/*
 * Free a cuMemAllocHost block: the engines that mapped it finish what they were given first (as
 * cuMemFreeHost synchronises on a GPU), then forget it.
 */
static bool host_free(void *p)
{
        struct host_range h;
        bool found = false;

        pthread_mutex_lock(&hosts_lock);
        for (size_t i = 0; i < n_hosts; i++) {
                if (hosts[i].p == p && !hosts[i].registered) {
                        h = hosts[i];
                        hosts[i] = hosts[--n_hosts];
                        found = true;
                        break;
                }
        }
        pthread_mutex_unlock(&hosts_lock);
        if (!found)
                return false;
        for (int i = 0; i < guest_ndevs; i++) {
                struct gdev *d = guest_devs[i];
                uint64_t seq;

                if (!(h.mapped & (1u << d->ordinal)))
                        continue;
                pthread_mutex_lock(&d->lock);
                seq = d->seq;
                pthread_mutex_unlock(&d->lock);
                guest_wait(d, seq);
                host_announce(d, "host_unmap", &h);
        }
        munmap(h.p, h.map_size);
        close(h.fd);
        return true;
}

CUresult CUDAAPI cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags)
{
        void *p = NULL;
        struct gctx *c;
        CUresult r = guest_ctx_get(NULL, &c);

        if (r != CUDA_SUCCESS)
                return r;
        if (!pp || !bytesize ||
            (Flags & ~(unsigned)(CU_MEMHOSTALLOC_PORTABLE | CU_MEMHOSTALLOC_DEVICEMAP |
                                 CU_MEMHOSTALLOC_WRITECOMBINED)))
                return CUDA_ERROR_INVALID_VALUE;
        {
                size_t page = (size_t)sysconf(_SC_PAGESIZE);
                size_t map_size = (bytesize + page - 1) / page * page;
                int fd = memfd_create("vgpu-host", MFD_CLOEXEC | MFD_ALLOW_SEALING);

                /* Sealed against shrinking: an engine that maps it must never fault on it. */
                if (fd < 0 || ftruncate(fd, (off_t)map_size) < 0 ||
                    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
                        if (fd >= 0)
                                close(fd);
                        return CUDA_ERROR_OUT_OF_MEMORY;
                }
                p = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                if (p == MAP_FAILED) {
                        close(fd);
                        return CUDA_ERROR_OUT_OF_MEMORY;
                }
                r = host_add_shared(p, bytesize, fd, map_size);
                if (r != CUDA_SUCCESS) {
                        munmap(p, map_size);
                        close(fd);
                        return r;
                }
        }
        *pp = p;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuMemAllocHost(void **pp, size_t bytesize)
{
        return cuMemHostAlloc(pp, bytesize, 0);
}

CUresult CUDAAPI cuMemFreeHost(void *p)
{
        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        return host_free(p) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult CUDAAPI cuMemHostRegister(void *p, size_t bytesize, unsigned int Flags)
{
        struct gctx *c;
        CUresult r = guest_ctx_get(NULL, &c);

        (void)Flags;
        if (r != CUDA_SUCCESS)
                return r;
        if (!p || !bytesize)
                return CUDA_ERROR_INVALID_VALUE;
        pthread_mutex_lock(&hosts_lock);
        for (size_t i = 0; i < n_hosts; i++) {
                uint8_t *a = hosts[i].p, *b = p;

                if (b < a + hosts[i].size && a < b + bytesize) {
                        pthread_mutex_unlock(&hosts_lock);
                        return CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
                }
        }
        pthread_mutex_unlock(&hosts_lock);
        return host_add(p, bytesize, true);
}

CUresult CUDAAPI cuMemHostUnregister(void *p)
{
        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        return host_remove(p, true) ? CUDA_SUCCESS : CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
}

CUresult CUDAAPI cuMemHostGetFlags(unsigned int *pFlags, void *p)
{
        bool found = false;

        pthread_mutex_lock(&hosts_lock);
        for (size_t i = 0; i < n_hosts; i++)
                found = found || (hosts[i].p == p && !hosts[i].registered);
        pthread_mutex_unlock(&hosts_lock);
        if (!pFlags || !found)
                return CUDA_ERROR_INVALID_VALUE;
        *pFlags = 0;
        return CUDA_SUCCESS;
}

/* ---- copies ------------------------------------------------------------------------------- */

static CUresult stream_ctx(CUstream s, struct gctx **c, struct gstream **st)
{
        return guest_stream_get(s, c, st);
}

CUresult CUDAAPI cuMemcpyHtoD(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount)
{
        struct gctx *c;
        CUresult r = guest_ctx_get(NULL, &c);

        return r != CUDA_SUCCESS ? r
                                 : guest_copy_htod(c, dstDevice, srcHost, ByteCount, true, NULL);
}

CUresult CUDAAPI cuMemcpyDtoH(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount)
{
        struct gctx *c;
        CUresult r = guest_ctx_get(NULL, &c);

        return r != CUDA_SUCCESS ? r : guest_copy_dtoh(c, dstHost, srcDevice, ByteCount, NULL);
}

CUresult CUDAAPI cuMemcpyDtoD(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount)
{
        struct gctx *c;
        CUresult r = guest_ctx_get(NULL, &c);

        return r != CUDA_SUCCESS ? r : copy_dtod(c, dstDevice, srcDevice, ByteCount, true, NULL);
}

CUresult CUDAAPI cuMemcpyHtoDAsync(CUdeviceptr dstDevice, const void *srcHost, size_t ByteCount,
                                   CUstream hStream)
{
        struct gctx *c;
        struct gstream *st;
        CUresult r = stream_ctx(hStream, &c, &st);

        return r != CUDA_SUCCESS ? r : guest_copy_htod(c, dstDevice, srcHost, ByteCount, false, st);
}

CUresult CUDAAPI cuMemcpyDtoHAsync(void *dstHost, CUdeviceptr srcDevice, size_t ByteCount,
                                   CUstream hStream)
{
        struct gctx *c;
        struct gstream *st;
        CUresult r = stream_ctx(hStream, &c, &st);

        /* Into pageable memory the copy completes before the call returns, as on a GPU. */
        return r != CUDA_SUCCESS ? r : guest_copy_dtoh(c, dstHost, srcDevice, ByteCount, st);
}

CUresult CUDAAPI cuMemcpyDtoDAsync(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount,
                                   CUstream hStream)
{
        struct gctx *c;
        struct gstream *st;
        CUresult r = stream_ctx(hStream, &c, &st);

        return r != CUDA_SUCCESS ? r : copy_dtod(c, dstDevice, srcDevice, ByteCount, false, st);
}

/* Unified addressing: which vGPU (if any) a pointer belongs to decides the direction. */
static CUresult copy_any(CUdeviceptr dst, CUdeviceptr src, size_t n, bool sync, CUstream hs)
{
        struct gdev *dd = guest_device_of(dst), *sd = guest_device_of(src);
        struct gctx *c, *pc;
        struct gstream *st;
        CUresult r = stream_ctx(hs, &c, &st);

        if (r != CUDA_SUCCESS)
                return r;
        if (!dd && !sd) {
                memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
                return CUDA_SUCCESS;
        }
        if (dd && sd && dd == sd && dd == c->dev)
                return copy_dtod(c, dst, src, n, sync, st);
        if (dd && !sd && dd == c->dev)
                return guest_copy_htod(c, dst, (const void *)(uintptr_t)src, n, sync, st);
        if (sd && !dd && sd == c->dev)
                return guest_copy_dtoh(c, (void *)(uintptr_t)dst, src, n, st);
        /* Another vGPU of this process: its primary context carries that side. */
        if (dd && sd) {
                struct gdev *other = dd == c->dev ? sd : dd;

                if (!other->primary)
                        return CUDA_ERROR_INVALID_CONTEXT;
                pc = other->primary;
                return dd == c->dev ? copy_peer(c, dst, pc, src, n) : copy_peer(pc, dst, c, src, n);
        }
        return CUDA_ERROR_INVALID_VALUE;
}

CUresult CUDAAPI cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount)
{
        return copy_any(dst, src, ByteCount, true, NULL);
}

CUresult CUDAAPI cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount, CUstream hStream)
{
        return copy_any(dst, src, ByteCount, false, hStream);
}

CUresult CUDAAPI cuMemcpyPeer(CUdeviceptr dstDevice, CUcontext dstContext, CUdeviceptr srcDevice,
                              CUcontext srcContext, size_t ByteCount)
{
        struct gctx *dc, *sc;
        CUresult r = guest_ctx_get(dstContext, &dc);

        if (r == CUDA_SUCCESS)
                r = guest_ctx_get(srcContext, &sc);
        if (r != CUDA_SUCCESS)
                return r;
        if (dc->dev == sc->dev)
                return copy_dtod(dc, dstDevice, srcDevice, ByteCount, true, NULL);
        return copy_peer(dc, dstDevice, sc, srcDevice, ByteCount);
}

CUresult CUDAAPI cuMemcpyPeerAsync(CUdeviceptr dstDevice, CUcontext dstContext,
                                   CUdeviceptr srcDevice, CUcontext srcContext, size_t ByteCount,
                                   CUstream hStream)
{
        (void)hStream;
        return cuMemcpyPeer(dstDevice, dstContext, srcDevice, srcContext, ByteCount);
}

/* 2D copies, row by row, with each side host or device as the descriptor says. */
static CUresult copy_2d(const CUDA_MEMCPY2D *p, bool sync, CUstream hs)
{
        struct gctx *c;
        struct gstream *st;
        CUresult r = stream_ctx(hs, &c, &st);

        if (r != CUDA_SUCCESS)
                return r;
        if (!p)
                return CUDA_ERROR_INVALID_VALUE;
        if (p->Height > 1 && ((p->srcPitch && p->srcPitch < p->WidthInBytes) ||
                              (p->dstPitch && p->dstPitch < p->WidthInBytes)))
                return CUDA_ERROR_INVALID_VALUE;
        for (size_t y = 0; y < p->Height && r == CUDA_SUCCESS; y++) {
                uint64_t so = p->srcXInBytes + (p->srcY + y) * p->srcPitch;
                uint64_t dof = p->dstXInBytes + (p->dstY + y) * p->dstPitch;
                uint64_t s, d;
                bool sdev, ddev;

                sdev = p->srcMemoryType == CU_MEMORYTYPE_DEVICE ||
                       (p->srcMemoryType == CU_MEMORYTYPE_UNIFIED && guest_device_of(p->srcDevice));
                ddev = p->dstMemoryType == CU_MEMORYTYPE_DEVICE ||
                       (p->dstMemoryType == CU_MEMORYTYPE_UNIFIED && guest_device_of(p->dstDevice));
                if (p->srcMemoryType == CU_MEMORYTYPE_ARRAY ||
                    p->dstMemoryType == CU_MEMORYTYPE_ARRAY)
                        return guest_unsupported("cuMemcpy2D with CUDA arrays");
                s = (sdev || p->srcMemoryType == CU_MEMORYTYPE_UNIFIED
                             ? p->srcDevice
                             : (uint64_t)(uintptr_t)p->srcHost) +
                    so;
                d = (ddev || p->dstMemoryType == CU_MEMORYTYPE_UNIFIED
                             ? p->dstDevice
                             : (uint64_t)(uintptr_t)p->dstHost) +
                    dof;
                if (sdev && ddev)
                        r = copy_dtod(c, d, s, p->WidthInBytes, false, st);
                else if (ddev)
                        r = guest_copy_htod(c, d, (const void *)(uintptr_t)s, p->WidthInBytes,
                                            false, st);
                else if (sdev)
                        r = guest_copy_dtoh(c, (void *)(uintptr_t)d, s, p->WidthInBytes, st);
                else
                        memmove((void *)(uintptr_t)d, (const void *)(uintptr_t)s, p->WidthInBytes);
        }
        if (r == CUDA_SUCCESS && sync)
                r = error_query(c, st);
        return r;
}

CUresult CUDAAPI cuMemcpy2D(const CUDA_MEMCPY2D *pCopy)
{
        return copy_2d(pCopy, true, NULL);
}

CUresult CUDAAPI cuMemcpy2DUnaligned(const CUDA_MEMCPY2D *pCopy)
{
        return copy_2d(pCopy, true, NULL);
}

CUresult CUDAAPI cuMemcpy2DAsync(const CUDA_MEMCPY2D *pCopy, CUstream hStream)
{
        return copy_2d(pCopy, false, hStream);
}

/* ---- fills -------------------------------------------------------------------------------- */

static CUresult fill(CUdeviceptr dst, size_t pitch, uint32_t value, unsigned elem, size_t width,
                     size_t height, CUstream hs)
{
        struct vgpu_req_memset q;
        struct gctx *c;
        struct gstream *st;
        uint64_t seq;
        CUresult r = stream_ctx(hs, &c, &st);

        if (r != CUDA_SUCCESS)
                return r;
        if (!width || !height)
                return CUDA_SUCCESS;
        if (dst % elem || (height > 1 && pitch < width * elem) ||
            !in_device(c, dst, (height - 1) * pitch + width * elem))
                return CUDA_ERROR_INVALID_VALUE;
        if (c->sticky)
                return (CUresult)c->sticky;
        q = (struct vgpu_req_memset){.ctx = c->handle,
                                     .dst = dst,
                                     .pitch = pitch,
                                     .width = width,
                                     .height = height,
                                     .value = value,
                                     .elem_size = elem};
        pthread_mutex_lock(&c->dev->lock);
        r = guest_push_stream_locked(c, st, VGPU_OP_MEMSET, &q, sizeof(q), NULL, 0, &seq);
        pthread_mutex_unlock(&c->dev->lock);
        return r;
}

CUresult CUDAAPI cuMemsetD8(CUdeviceptr d, unsigned char uc, size_t N)
{
        return fill(d, 0, uc, 1, N, 1, NULL);
}

CUresult CUDAAPI cuMemsetD16(CUdeviceptr d, unsigned short us, size_t N)
{
        return fill(d, 0, us, 2, N, 1, NULL);
}

CUresult CUDAAPI cuMemsetD32(CUdeviceptr d, unsigned int ui, size_t N)
{
        return fill(d, 0, ui, 4, N, 1, NULL);
}

CUresult CUDAAPI cuMemsetD2D8(CUdeviceptr d, size_t pitch, unsigned char uc, size_t w, size_t h)
{
        return fill(d, pitch, uc, 1, w, h, NULL);
}

CUresult CUDAAPI cuMemsetD2D16(CUdeviceptr d, size_t pitch, unsigned short us, size_t w, size_t h)
{
        return fill(d, pitch, us, 2, w, h, NULL);
}

CUresult CUDAAPI cuMemsetD2D32(CUdeviceptr d, size_t pitch, unsigned int ui, size_t w, size_t h)
{
        return fill(d, pitch, ui, 4, w, h, NULL);
}

CUresult CUDAAPI cuMemsetD8Async(CUdeviceptr d, unsigned char uc, size_t N, CUstream s)
{
        return fill(d, 0, uc, 1, N, 1, s);
}

CUresult CUDAAPI cuMemsetD16Async(CUdeviceptr d, unsigned short us, size_t N, CUstream s)
{
        return fill(d, 0, us, 2, N, 1, s);
}

CUresult CUDAAPI cuMemsetD32Async(CUdeviceptr d, unsigned int ui, size_t N, CUstream s)
{
        return fill(d, 0, ui, 4, N, 1, s);
}

CUresult CUDAAPI cuMemsetD2D8Async(CUdeviceptr d, size_t pitch, unsigned char uc, size_t w,
                                   size_t h, CUstream s)
{
        return fill(d, pitch, uc, 1, w, h, s);
}

CUresult CUDAAPI cuMemsetD2D16Async(CUdeviceptr d, size_t pitch, unsigned short us, size_t w,
                                    size_t h, CUstream s)
{
        return fill(d, pitch, us, 2, w, h, s);
}

CUresult CUDAAPI cuMemsetD2D32Async(CUdeviceptr d, size_t pitch, unsigned int ui, size_t w,
                                    size_t h, CUstream s)
{
        return fill(d, pitch, ui, 4, w, h, s);
}

CUresult CUDAAPI cuPointerGetAttribute(void *data, CUpointer_attribute attribute, CUdeviceptr ptr)
{
        struct gdev *d = guest_device_of(ptr);
        struct gctx *c;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!data)
                return CUDA_ERROR_INVALID_VALUE;
        if (!d)
                return CUDA_ERROR_INVALID_VALUE;
        switch (attribute) {
        case CU_POINTER_ATTRIBUTE_MEMORY_TYPE:
                *(unsigned *)data = CU_MEMORYTYPE_DEVICE;
                return CUDA_SUCCESS;
        case CU_POINTER_ATTRIBUTE_DEVICE_POINTER:
                *(CUdeviceptr *)data = ptr;
                return CUDA_SUCCESS;
        case CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL:
                *(int *)data = d->ordinal;
                return CUDA_SUCCESS;
        case CU_POINTER_ATTRIBUTE_CONTEXT:
                c = guest_current();
                *(CUcontext *)data = (CUcontext)(c && c->dev == d ? c : d->primary);
                return CUDA_SUCCESS;
        case CU_POINTER_ATTRIBUTE_IS_MANAGED:
                *(int *)data = 0;
                return CUDA_SUCCESS;
        default:
                return guest_unsupported("cuPointerGetAttribute with this attribute");
        }
}
