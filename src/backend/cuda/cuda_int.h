/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The inside of the cuda backend, shared by cuda_backend.c (devices, framebuffers, queues,
 * copies) and cuda_module.c (modules and launches). Nothing else includes this.
 */
#ifndef VGPU_BACKEND_CUDA_CUDA_INT_H
#define VGPU_BACKEND_CUDA_CUDA_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "backend/cuda/cuda_drv.h"

struct backend_dev {
        CUdevice dev;
        CUcontext ctx;
        int lost; /* the first kernel fault: the context is unusable from then on */
};

#define TIMED 256 /* launches timed by events, in flight at most */
#define AHEAD 2   /* while gated, launches queued beyond the last one measured */

struct backend_queue {
        struct backend_dev *d;
        CUstream stream;
        /* the scheduler's GPU time: an event pair around each launch, oldest first */
        bool timing;
        bool untimed; /* its events could not be made: the slices charge nothing */
        unsigned untimed_calls;
        CUevent start[TIMED], end[TIMED];
        unsigned head, tail; /* pairs [head, tail) are in flight; indices mod TIMED */
        uint64_t carry;      /* measured while making room, not yet returned */
};

/* cuda_make_current - make d's context current on the calling thread (cached per thread). */
void cuda_make_current(struct backend_dev *d);

/* cuda_result - a driver result as a backend code; a kernel fault is remembered as d's end. */
int cuda_result(struct backend_dev *d, CUresult r);

/* cuda_lost - the kernel fault that lost d's context, or 0. */
int cuda_lost(struct backend_dev *d);

/* cuda_collect - the GPU time of q's finished timed launches (drain: of all, waiting), in ns. */
uint64_t cuda_collect(struct backend_queue *q, bool drain);

/* The module and launch operations of backend.h (cuda_module.c). */
int cuda_module_load(struct backend_dev *d, const void *image, size_t len,
                     const struct backend_allocator *alloc, struct backend_module **ret,
                     uint64_t *ret_globals, char *log, size_t log_len);
void cuda_module_free(struct backend_module *m);
int cuda_module_function(struct backend_module *m, const char *name, struct backend_func **ret);
int cuda_module_global(struct backend_module *m, const char *name, uint64_t *ret_addr,
                       uint64_t *ret_size);
void cuda_func_info(const struct backend_func *f, struct backend_func_info *ret);
int cuda_func_param(const struct backend_func *f, uint32_t i, uint32_t *ret_off,
                    uint32_t *ret_size);
const char *cuda_func_name(const struct backend_func *f);
int cuda_launch(struct backend_queue *q, const struct backend_func *f,
                const struct backend_launch *l, struct backend_launch_stats *ret_stats);

#endif
