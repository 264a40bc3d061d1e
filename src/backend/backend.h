/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The backend ops table: the only way an engine reaches a physical GPU. One constant table per
 * backend (sim, cuda), with designated initialisers; backend_find() picks one by name.
 *
 * The engine checks every guest input (handles, pointers, sizes) before it calls an op: ops trust
 * their arguments. Ops return 0 or a negative code: an errno, or a PTX_E* code of ptx/ptx.h,
 * which is also the wire's vocabulary for module and kernel errors (the cuda backend translates
 * CUresults into it). Kernel faults (backend_is_fault) poison the guest context they happened in.
 */
#ifndef VGPU_BACKEND_BACKEND_H
#define VGPU_BACKEND_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A vGPU's framebuffer, reserved whole at creation and mapped at its fixed device address. */
struct backend_fb {
        uint64_t device_address; /* where the framebuffer lives in the vGPU's address space */
        uint64_t size;           /* bytes */
        uint64_t phys_offset;    /* offset in the physical GPU's framebuffer */
        void *host;              /* sim: the host mapping (== device_address); cuda: NULL */
        int fd;                  /* sim: the memfd holding the contents; -1 otherwise */
        void *priv;              /* the backend's own state */
};

struct backend_fb_req {
        const char *vgpu_uuid;   /* for names the backend gives its objects */
        uint32_t gpu_index;      /* physical GPU */
        uint64_t device_address; /* fixed address to map at */
        uint64_t size;
        uint64_t phys_offset;
        /*
         * cuda: size is the most to reserve; take less when the device has less free (less a
         * headroom for the contexts of the engine's workers), as on a MIG device, whose memory
         * is below its profile's nominal size. fb_reserve's result says how much it took.
         */
        bool fit;
};

/* What an engine asks of the backend for its physical GPU. */
struct backend_dev_req {
        uint32_t gpu_index;
        /* cuda: the device to open, by its UUID ("GPU-..." or, for a MIG device, "MIG-..."),
         * whatever the driver numbers it; NULL or "": by gpu_index */
        const char *gpu_uuid;
        unsigned sim_workers;     /* sim: worker threads that run blocks (1..64) */
        uint64_t sim_work_budget; /* sim: warp-instructions one launch may run; 0: unlimited */
};

/* A physical GPU as the backend finds it. */
struct backend_gpu {
        char name[96];          /* "NVIDIA H100 80GB HBM3" */
        char uuid[64];          /* "GPU-..." */
        char bus_id[32];        /* "00000000:41:00.0" */
        uint32_t pci_device_id; /* 0x2330; 0 if unknown */
        uint64_t mem_total;     /* bytes */
        uint32_t sm_count;
        int cc_major, cc_minor;
};

struct backend_dev;    /* the backend's hold on one physical GPU (cuda: a context) */
struct backend_queue;  /* an in-order queue of device work (sim: runs at once; cuda: a stream) */
struct backend_module; /* a loaded module image */
struct backend_func;   /* a kernel of a module; lives as long as its module */

/* One allocation of device memory, as the engine's allocator knows it. */
struct backend_region {
        uint64_t base, size;
};

/*
 * The engine's view of the memory a launch may touch: the allocation holding [addr, addr+len)
 * if the launching context owns it. The sim confines every access of a kernel to these; a real
 * GPU cannot, and the cuda backend does not call it.
 */
typedef int (*backend_find_fn)(void *ctx, uint64_t addr, uint64_t len, struct backend_region *ret);

/* Device memory for a module's variables, from the engine's allocator (the sim uses it). */
struct backend_allocator {
        int (*alloc)(void *ctx, uint64_t size, uint64_t *ret_addr);
        void (*free)(void *ctx, uint64_t addr);
        void *ctx;
};

struct backend_func_info {
        uint32_t n_params;      /* kernel parameters */
        uint32_t param_size;    /* bytes of the parameter buffer */
        uint32_t static_shared; /* bytes of static shared memory */
        uint32_t max_threads;   /* most threads per block it can be launched with */
};

struct backend_launch {
        uint32_t grid[3], block[3];
        uint32_t shared;            /* dynamic shared memory, bytes */
        const void *params;         /* the parameter buffer, laid out as func_param says */
        size_t params_size;         /* >= backend_func_info.param_size */
        backend_find_fn find;       /* sim: the memory the kernel may touch */
        void *find_ctx;             /* passed to find */
        const volatile int *cancel; /* sim: set nonzero, the launch stops soon */
};

struct backend_launch_stats {
        uint64_t work;       /* deterministic work units (sim: warp-instructions); 0 if unknown */
        uint64_t fault_addr; /* sim: where a faulting kernel went wrong, and its PTX line */
        uint32_t fault_line;
};

struct backend_ops {
        const char *name;
        /*
         * dev_open - take hold of physical GPU req->gpu_index. 0 and *ret, or -ENODEV (no such
         * GPU, no driver) with the reason in err, or another negative errno.
         */
        int (*dev_open)(const struct backend_dev_req *req, struct backend_dev **ret, char *err,
                        size_t err_len);
        /*
         * gpus - the physical GPUs of this host, up to max; *ret_n how many. 0, or -ENODEV with
         * the reason in err. NULL for the sim, whose GPUs are configured, not found.
         */
        int (*gpus)(struct backend_gpu *ret, size_t max, size_t *ret_n, char *err, size_t err_len);
        /* dev_close - let go of the GPU; every queue and module of it must be freed first. */
        void (*dev_close)(struct backend_dev *d);
        /*
         * dev_lost - 0 while the GPU context works; else the kernel fault that ended it (cuda:
         * a fault ends every context of the process). NULL: never lost (sim).
         */
        int (*dev_lost)(struct backend_dev *d);
        /*
         * fb_reserve - reserve and map the whole framebuffer described by req. On success fills
         * *ret and returns 0; the range is the vGPU's until fb_release. Fails with -EEXIST when
         * the address range is taken, -ENOMEM when memory cannot be reserved, -ENODEV when the
         * backend has no such GPU; *ret untouched on failure.
         */
        int (*fb_reserve)(struct backend_dev *d, const struct backend_fb_req *req,
                          struct backend_fb *ret);
        /* fb_release - unmap and free a reserved framebuffer. */
        void (*fb_release)(struct backend_dev *d, struct backend_fb *fb);
        /*
         * fb_export - file descriptors that give another process the framebuffer's memory (sim:
         * the memfd; cuda: one per physical chunk), up to max; *ret_n how many. The caller closes
         * them. 0 or a negative errno.
         */
        int (*fb_export)(struct backend_dev *d, const struct backend_fb *fb, int *fds, size_t max,
                         size_t *ret_n);
        /*
         * fb_import - map memory another process exported with fb_export at req's address, in
         * this process: the same framebuffer, seen from here. fb_release undoes it. The fds stay
         * the caller's. Errors as fb_reserve.
         */
        int (*fb_import)(struct backend_dev *d, const struct backend_fb_req *req, const int *fds,
                         size_t n, struct backend_fb *ret);
        /*
         * fb_remap - map framebuffer fb at device address addr instead (nothing may be mapped
         * there), moving its memory's mapping rather than copying it; fb changes to say so.
         * 0 or a negative errno (then fb is as it was). NULL: not offered (a move then maps the
         * memory anew through fb_export and fb_import).
         */
        int (*fb_remap)(struct backend_dev *d, struct backend_fb *fb, uint64_t addr);
        /* fb_resident - bytes of the framebuffer that hold data (sim: touched pages). */
        uint64_t (*fb_resident)(const struct backend_fb *fb);

        /* host_register - make host memory [p, p+len) fast for copies (cuda: page-locked). */
        int (*host_register)(struct backend_dev *d, void *p, size_t len);
        void (*host_unregister)(struct backend_dev *d, void *p);

        int (*queue_new)(struct backend_dev *d, struct backend_queue **ret);
        /* queue_free - waits for the queue's work, then frees it. NULL does nothing. */
        void (*queue_free)(struct backend_queue *q);
        /* queue_sync - wait until everything queued on q is done; the first error of it. */
        int (*queue_sync)(struct backend_queue *q);
        /*
         * queue_gpu_time - GPU time, in ns measured on the device, of q's launches that finished
         * since the last call (drain: wait for all of them first). The first call starts the
         * measuring (cuda: an event before and after each launch). NULL when the backend
         * accounts time otherwise (the sim: its deterministic work count).
         */
        uint64_t (*queue_gpu_time)(struct backend_queue *q, bool drain);

        /*
         * Copies and fills, in queue order. Copies to and from host memory are complete when
         * they return (the engine reuses the staging area next); the others may still run.
         */
        int (*copy_htod)(struct backend_queue *q, uint64_t dst, const void *src, uint64_t len);
        int (*copy_dtoh)(struct backend_queue *q, void *dst, uint64_t src, uint64_t len);
        int (*copy_dtod)(struct backend_queue *q, uint64_t dst, uint64_t src, uint64_t len);
        /* memset - height rows of width elements of elem_size (1, 2, 4) bytes, pitch apart. */
        int (*memset)(struct backend_queue *q, uint64_t dst, uint64_t pitch, uint32_t value,
                      uint32_t elem_size, uint64_t width, uint64_t height);

        /*
         * module_load - load a fatbinary, PTX text or cubin image of len bytes (a private copy
         * the backend may keep). Variables the module needs in device memory come from alloc;
         * *ret_globals is their base (0: none, or the backend placed them itself). The reason
         * of a failure goes to log.
         */
        int (*module_load)(struct backend_dev *d, const void *image, size_t len,
                           const struct backend_allocator *alloc, struct backend_module **ret,
                           uint64_t *ret_globals, char *log, size_t log_len);
        /* module_free - unload; its variables go back through the allocator of module_load. */
        void (*module_free)(struct backend_module *m);
        /* module_function - a kernel by its (mangled) name; PTX_ENOTFOUND if none. */
        int (*module_function)(struct backend_module *m, const char *name,
                               struct backend_func **ret);
        /* module_global - a variable's device address and size; PTX_ENOTFOUND if none. */
        int (*module_global)(struct backend_module *m, const char *name, uint64_t *ret_addr,
                             uint64_t *ret_size);
        void (*func_info)(const struct backend_func *f, struct backend_func_info *ret);
        /* func_param - offset and size of parameter i; -ENOENT past the last. */
        int (*func_param)(const struct backend_func *f, uint32_t i, uint32_t *ret_off,
                          uint32_t *ret_size);
        const char *(*func_name)(const struct backend_func *f);
        /*
         * launch - queue a launch of f. The sim runs it to completion and returns its fault; the
         * cuda backend returns launch errors at once and kernel faults at the next sync.
         */
        int (*launch)(struct backend_queue *q, const struct backend_func *f,
                      const struct backend_launch *l, struct backend_launch_stats *ret_stats);
};

extern const struct backend_ops backend_sim_ops;
extern const struct backend_ops backend_cuda_ops;

/* backend_find - the ops table named name ("sim", "cuda"), or NULL. */
const struct backend_ops *backend_find(const char *name);

/* backend_is_fault - whether code r is a kernel fault, which poisons its context. */
bool backend_is_fault(int r);

#endif
