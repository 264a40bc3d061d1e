// SPDX-License-Identifier: Apache-2.0
// Contexts: each is an engine-side context (its own allocations, modules and sticky error) plus
// the thread-local current-context stack; primary contexts are reference-counted per device.
#include <stdlib.h>
#include <string.h>

#include "guest/guest.h"

static __thread struct gctx *ctx_stack[GUEST_CTX_STACK];
static __thread int ctx_depth;

struct gctx *guest_current(void)
{
        return ctx_depth ? ctx_stack[ctx_depth - 1] : NULL;
}

void guest_set_current(struct gctx *c)
{
        if (ctx_depth)
                ctx_stack[ctx_depth - 1] = c;
        else if (c)
                ctx_stack[ctx_depth++] = c;
}

static bool ctx_valid(const struct gctx *c)
{
        return c && c->magic == MAGIC_CTX;
}

CUresult guest_ctx_get(CUcontext ctx, struct gctx **ret)
{
        struct gctx *c = ctx ? (struct gctx *)ctx : guest_current();

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!ctx_valid(c))
                return CUDA_ERROR_INVALID_CONTEXT;
        *ret = c;
        return CUDA_SUCCESS;
}

static CUresult ctx_new(struct gdev *d, unsigned flags, bool primary, struct gctx **ret)
{
        struct vgpu_req_ctx_create q = {.flags = flags};
        struct vgpu_rep_handle r = {0};
        struct gctx *c = guest_alloc(sizeof(*c));
        CUresult e;

        if (!c)
                return CUDA_ERROR_OUT_OF_MEMORY;
        e = guest_call(d, VGPU_OP_CTX_CREATE, &q, sizeof(q), NULL, 0, &r, sizeof(r));
        if (e != CUDA_SUCCESS) {
                guest_unalloc(c);
                return e;
        }
        c->magic = MAGIC_CTX;
        c->dev = d;
        c->legacy.ctx = c;
        c->handle = r.handle;
        c->primary = primary;
        c->flags = flags;
        c->limits[CU_LIMIT_STACK_SIZE] = 1024;
        c->limits[CU_LIMIT_PRINTF_FIFO_SIZE] = 1 << 20;
        c->limits[CU_LIMIT_MALLOC_HEAP_SIZE] = 8 << 20;
        c->limits[CU_LIMIT_DEV_RUNTIME_SYNC_DEPTH] = 2;
        c->limits[CU_LIMIT_DEV_RUNTIME_PENDING_LAUNCH_COUNT] = 2048;
        c->limits[CU_LIMIT_MAX_L2_FETCH_GRANULARITY] = 32;
        *ret = c;
        return CUDA_SUCCESS;
}

static void ctx_delete(struct gctx *c)
{
        struct vgpu_req_ctx q = {.ctx = c->handle};

        guest_call(c->dev, VGPU_OP_CTX_DESTROY, &q, sizeof(q), NULL, 0, NULL, 0);
        pthread_mutex_lock(&c->dev->lock);
        guest_stream_release(c->dev, &c->legacy);
        pthread_mutex_unlock(&c->dev->lock);
        c->magic = MAGIC_DEAD;
        /* Left allocated: a stale CUcontext must fail its magic check, not touch freed memory.
         * It leaves this thread's stack, as destroying the current context pops it. */
        int out = 0;

        for (int i = 0; i < ctx_depth; i++) {
                if (ctx_stack[i] != c)
                        ctx_stack[out++] = ctx_stack[i];
        }
        ctx_depth = out;
}

CUresult CUDAAPI cuCtxCreate(CUcontext *pctx, CUctxCreateParams *params, unsigned int flags,
                             CUdevice dev)
{
        struct gdev *d;
        struct gctx *c;
        CUresult r;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!pctx)
                return CUDA_ERROR_INVALID_VALUE;
        if (!(d = guest_dev(dev)))
                return CUDA_ERROR_INVALID_DEVICE;
        if (params && (params->execAffinityParams || params->cigParams))
                return guest_unsupported("cuCtxCreate with execution affinity or CIG");
        r = ctx_new(d, flags, false, &c);
        if (r != CUDA_SUCCESS)
                return r;
        if (ctx_depth == GUEST_CTX_STACK) {
                ctx_delete(c);
                return CUDA_ERROR_INVALID_VALUE;
        }
        ctx_stack[ctx_depth++] = c;
        *pctx = (CUcontext)c;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxDestroy(CUcontext ctx)
{
        struct gctx *c = (struct gctx *)ctx;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!ctx_valid(c))
                return CUDA_ERROR_INVALID_CONTEXT;
        if (c->primary)
                return CUDA_ERROR_INVALID_CONTEXT;
        guest_ctx_sync(c);
        ctx_delete(c);
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxPushCurrent(CUcontext ctx)
{
        struct gctx *c = (struct gctx *)ctx;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!ctx_valid(c))
                return CUDA_ERROR_INVALID_CONTEXT;
        if (ctx_depth == GUEST_CTX_STACK)
                return CUDA_ERROR_INVALID_VALUE;
        ctx_stack[ctx_depth++] = c;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxPopCurrent(CUcontext *pctx)
{
        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!ctx_depth)
                return CUDA_ERROR_INVALID_CONTEXT;
        ctx_depth--;
        if (pctx)
                *pctx = (CUcontext)ctx_stack[ctx_depth];
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxSetCurrent(CUcontext ctx)
{
        struct gctx *c = (struct gctx *)ctx;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (c && !ctx_valid(c))
                return CUDA_ERROR_INVALID_CONTEXT;
        if (!c) {
                if (ctx_depth)
                        ctx_depth--;
                return CUDA_SUCCESS;
        }
        guest_set_current(c);
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetCurrent(CUcontext *pctx)
{
        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!pctx)
                return CUDA_ERROR_INVALID_VALUE;
        *pctx = (CUcontext)guest_current();
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetDevice(CUdevice *device)
{
        struct gctx *c;
        CUresult r = guest_ctx_get(NULL, &c);

        if (r != CUDA_SUCCESS)
                return r;
        if (!device)
                return CUDA_ERROR_INVALID_VALUE;
        *device = c->dev->ordinal;
        return CUDA_SUCCESS;
}

/* A fault's error is the context's for good, as on a GPU. */
static CUresult note_sticky(struct gctx *c, CUresult r)
{
        if (r == CUDA_ERROR_ILLEGAL_ADDRESS || r == CUDA_ERROR_MISALIGNED_ADDRESS ||
            r == CUDA_ERROR_ASSERT || r == CUDA_ERROR_LAUNCH_TIMEOUT ||
            r == CUDA_ERROR_ILLEGAL_INSTRUCTION || r == CUDA_ERROR_LAUNCH_FAILED ||
            r == CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES)
                c->sticky = (int)r;
        return r;
}

CUresult guest_stream_sync(struct gctx *c, struct gstream *st)
{
        struct vgpu_req_event q = {.ctx = c->handle, .slot = guest_stream_of(c, st)->slot};

        if (c->sticky)
                return (CUresult)c->sticky;
        return note_sticky(
                c, guest_call(c->dev, VGPU_OP_STREAM_SYNC, &q, sizeof(q), NULL, 0, NULL, 0));
}

CUresult guest_ctx_sync(struct gctx *c)
{
        struct vgpu_req_ctx q = {.ctx = c->handle};
        CUresult r;

        if (c->sticky)
                return (CUresult)c->sticky;
        /* Every stream of the context first; then the engine finishes their device work. */
        r = guest_wait_ctx(c);
        if (r != CUDA_SUCCESS)
                return r;
        r = guest_call(c->dev, VGPU_OP_CTX_SYNC, &q, sizeof(q), NULL, 0, NULL, 0);
        if (r == CUDA_ERROR_ILLEGAL_ADDRESS || r == CUDA_ERROR_MISALIGNED_ADDRESS ||
            r == CUDA_ERROR_ASSERT || r == CUDA_ERROR_LAUNCH_TIMEOUT ||
            r == CUDA_ERROR_ILLEGAL_INSTRUCTION || r == CUDA_ERROR_LAUNCH_FAILED ||
            r == CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES)
                c->sticky = (int)r;
        return r;
}

CUresult CUDAAPI cuCtxSynchronize(void)
{
        struct gctx *c;
        CUresult r = guest_ctx_get(NULL, &c);

        return r != CUDA_SUCCESS ? r : guest_ctx_sync(c);
}

CUresult CUDAAPI cuCtxGetApiVersion(CUcontext ctx, unsigned int *version)
{
        struct gctx *c;
        CUresult r = guest_ctx_get(ctx, &c);

        if (r != CUDA_SUCCESS)
                return r;
        if (!version)
                return CUDA_ERROR_INVALID_VALUE;
        *version = 13000;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetFlags(unsigned int *flags)
{
        struct gctx *c;
        CUresult r = guest_ctx_get(NULL, &c);

        if (r != CUDA_SUCCESS)
                return r;
        if (!flags)
                return CUDA_ERROR_INVALID_VALUE;
        *flags = c->flags;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetLimit(size_t *value, CUlimit limit)
{
        struct gctx *c;
        CUresult r = guest_ctx_get(NULL, &c);

        if (r != CUDA_SUCCESS)
                return r;
        if (!value || (unsigned)limit >= CU_LIMIT_MAX)
                return CUDA_ERROR_INVALID_VALUE;
        *value = c->limits[limit];
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxSetLimit(CUlimit limit, size_t value)
{
        struct gctx *c;
        CUresult r = guest_ctx_get(NULL, &c);

        if (r != CUDA_SUCCESS)
                return r;
        if ((unsigned)limit >= CU_LIMIT_MAX)
                return CUDA_ERROR_INVALID_VALUE;
        c->limits[limit] = value;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuCtxGetStreamPriorityRange(int *leastPriority, int *greatestPriority)
{
        struct gctx *c;
        CUresult r = guest_ctx_get(NULL, &c);

        if (r != CUDA_SUCCESS)
                return r;
        if (leastPriority)
                *leastPriority = 0;
        if (greatestPriority)
                *greatestPriority = -5;
        return CUDA_SUCCESS;
}

/* ---- primary contexts --------------------------------------------------------------------- */

static pthread_mutex_t primary_lock = PTHREAD_MUTEX_INITIALIZER;

CUresult CUDAAPI cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
        struct gdev *d;
        CUresult r = CUDA_SUCCESS;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!pctx)
                return CUDA_ERROR_INVALID_VALUE;
        if (!(d = guest_dev(dev)))
                return CUDA_ERROR_INVALID_DEVICE;
        pthread_mutex_lock(&primary_lock);
        if (!d->primary)
                r = ctx_new(d, d->primary_flags, true, &d->primary);
        if (r == CUDA_SUCCESS) {
                d->primary_refs++;
                *pctx = (CUcontext)d->primary;
        }
        pthread_mutex_unlock(&primary_lock);
        return r;
}

CUresult CUDAAPI cuDevicePrimaryCtxRelease(CUdevice dev)
{
        struct gdev *d;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!(d = guest_dev(dev)))
                return CUDA_ERROR_INVALID_DEVICE;
        pthread_mutex_lock(&primary_lock);
        if (d->primary_refs > 0 && --d->primary_refs == 0) {
                ctx_delete(d->primary);
                d->primary = NULL;
        }
        pthread_mutex_unlock(&primary_lock);
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDevicePrimaryCtxReset(CUdevice dev)
{
        struct gdev *d;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!(d = guest_dev(dev)))
                return CUDA_ERROR_INVALID_DEVICE;
        pthread_mutex_lock(&primary_lock);
        if (d->primary) {
                ctx_delete(d->primary);
                d->primary = NULL;
                d->primary_refs = 0;
        }
        pthread_mutex_unlock(&primary_lock);
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active)
{
        struct gdev *d;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!(d = guest_dev(dev)))
                return CUDA_ERROR_INVALID_DEVICE;
        if (!flags || !active)
                return CUDA_ERROR_INVALID_VALUE;
        *flags = d->primary_flags;
        *active = d->primary != NULL;
        return CUDA_SUCCESS;
}

CUresult CUDAAPI cuDevicePrimaryCtxSetFlags(CUdevice dev, unsigned int flags)
{
        struct gdev *d;

        if (guest_ensure_init() != CUDA_SUCCESS)
                return CUDA_ERROR_NOT_INITIALIZED;
        if (!(d = guest_dev(dev)))
                return CUDA_ERROR_INVALID_DEVICE;
        d->primary_flags = flags;
        if (d->primary)
                d->primary->flags = flags;
        return CUDA_SUCCESS;
}
