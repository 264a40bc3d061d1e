/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PTX interpreter's public API: load a module image (fatbinary, PTX text), look up its kernels
 * and their parameter layout, and launch a kernel over a grid on a pool of worker threads. It knows
 * nothing of vGPUs: device memory is reached only through the caller's memory callback.
 */
#ifndef VGPU_PTX_PTX_H
#define VGPU_PTX_PTX_H

#include <stddef.h>
#include <stdint.h>

/*
 * Error codes, negative, in a range of their own (errno values are above -1000, VGPU_E* around
 * -1000..-1999). The engine maps them to CUresult: ILLEGAL_ADDRESS, MISALIGNED to
 * CUDA_ERROR_MISALIGNED_ADDRESS, TRAP to CUDA_ERROR_ASSERT, TIMEOUT to CUDA_ERROR_LAUNCH_TIMEOUT,
 * the load errors to CUDA_ERROR_INVALID_IMAGE / CUDA_ERROR_NO_BINARY_FOR_GPU / INVALID_PTX.
 * Functions may also return -ENOMEM or -EINVAL.
 */
#define PTX_ERROR_LIST(X)                                                                          \
        X(PTX_EFORMAT, 2001, "the module image is not a fatbinary, PTX text or cubin")             \
        X(PTX_ENOPTX, 2002,                                                                        \
          "no PTX for the sim; rebuild with PTX, e.g. -gencode arch=compute_75,code=compute_75")   \
        X(PTX_EDECOMPRESS, 2003, "a compressed fatbinary entry could not be decompressed")         \
        X(PTX_EPARSE, 2004, "the PTX text has a syntax error")                                     \
        X(PTX_EUNSUPPORTED, 2005, "the PTX uses an instruction or feature the sim does not know")  \
        X(PTX_ENOTFOUND, 2006, "no kernel or variable of that name in the module")                 \
        X(PTX_ELAUNCH, 2007, "invalid launch configuration (grid, block, shared memory, params)")  \
        X(PTX_EILLEGAL_ADDRESS, 2008, "the kernel accessed an address outside mapped memory")      \
        X(PTX_EMISALIGNED, 2009, "the kernel made a misaligned memory access")                     \
        X(PTX_ETRAP, 2010, "the kernel executed trap or a failed assertion")                       \
        X(PTX_ETIMEOUT, 2011, "the launch exceeded its work budget")                               \
        X(PTX_ESTACK, 2012, "the kernel's call depth exceeded the sim's stack")                    \
        X(PTX_EILLEGAL_INSN, 2013, "the kernel executed an invalid operation")                     \
        X(PTX_ECANCELED, 2014, "the launch was canceled")

enum ptx_error {
#define PTX_ERROR_ENUM(name, num, msg) name = -(num),
        PTX_ERROR_LIST(PTX_ERROR_ENUM)
#undef PTX_ERROR_ENUM
};

/* ptx_strerror - a sentence for a PTX_E* code or a negative errno. Static string, never NULL. */
const char *ptx_strerror(int err);

/* A loaded module: immutable after ptx_module_load except for its globals' storage. */
struct ptx_module;
/* A kernel (.entry) of a module; valid as long as its module. */
struct ptx_kernel;

/* Size of the error message buffer that fits every message ptx_module_load writes. */
#define PTX_ERRMSG_SIZE 256

/*
 * ptx_module_load - parse a module image: a fatbinary (0xBA55ED50, zstd-compressed entries or
 * not), a fatbinary preceded inline by nvcc's 0x466243B1 wrapper, NUL-terminated or sized PTX
 * text, or a cubin (ELF; it carries no PTX and is refused with PTX_ENOPTX). size bounds every
 * read. The image is not kept. On success *ret_mod owns everything it needs; free it with
 * ptx_module_free. On failure returns a PTX_E* code, -ENOMEM, or -EINVAL (no image), leaves
 * *ret_mod untouched, and, when errmsg is not NULL,
 * writes a NUL-terminated message naming the line and instruction into errmsg[0..errmsg_len).
 * Thread-safe (no shared state).
 */
int ptx_module_load(const void *image, size_t size, struct ptx_module **ret_mod, char *errmsg,
                    size_t errmsg_len);

/* ptx_module_free - free a module; NULL does nothing. No launch of it may be running. */
void ptx_module_free(struct ptx_module *mod);

/*
 * ptx_fatbin_find_ptx - find the PTX text in a fatbinary image (the container reader alone, as
 * ptx_module_load uses it). On success *ret_text is a malloc'd NUL-terminated copy the caller
 * frees, *ret_len its length. Returns PTX_EFORMAT, PTX_ENOPTX, PTX_EDECOMPRESS or -ENOMEM.
 */
int ptx_fatbin_find_ptx(const void *image, size_t size, char **ret_text, size_t *ret_len);

/* ptx_module_kernel_count - number of kernels (.entry) in the module. */
unsigned ptx_module_kernel_count(const struct ptx_module *mod);

/* ptx_module_kernel_at - the index-th kernel, or NULL when index is out of range. */
const struct ptx_kernel *ptx_module_kernel_at(const struct ptx_module *mod, unsigned index);

/* ptx_module_get_kernel - find a kernel by its (mangled) name; 0 or PTX_ENOTFOUND. */
int ptx_module_get_kernel(const struct ptx_module *mod, const char *name,
                          const struct ptx_kernel **ret_kernel);

/* ptx_kernel_name - the kernel's name, owned by the module. */
const char *ptx_kernel_name(const struct ptx_kernel *k);

/* ptx_kernel_param_count - number of parameters of the kernel. */
unsigned ptx_kernel_param_count(const struct ptx_kernel *k);

/*
 * ptx_kernel_param_info - offset and size in bytes of parameter index within the parameter
 * buffer a launch takes (the layout cuFuncGetParamInfo reports: each parameter at its natural
 * alignment, or its .align). Returns 0 or -EINVAL for an index out of range.
 */
int ptx_kernel_param_info(const struct ptx_kernel *k, unsigned index, size_t *ret_offset,
                          size_t *ret_size);

/* ptx_kernel_param_size - total size in bytes of the kernel's parameter buffer. */
size_t ptx_kernel_param_size(const struct ptx_kernel *k);

/*
 * ptx_kernel_static_shared - bytes of static .shared memory the kernel uses, as a GPU reports it:
 * its own function-scope .shared variables and the module-scope ones that it, or a .func it
 * calls, names, laid out alone. Variables it does not reach do not count. Launches are charged
 * this plus their dynamic shared memory.
 */
size_t ptx_kernel_static_shared(const struct ptx_kernel *k);

/* What cuFuncGetAttribute reports, as far as the sim knows it. */
struct ptx_kernel_attrs {
        unsigned max_threads; /* per block: 1024, or less by .maxntid / .reqntid */
        size_t static_shared; /* bytes of static shared memory */
        size_t local_bytes;   /* bytes of local memory per thread (the kernel's own frame) */
        size_t param_bytes;   /* bytes of the parameter buffer */
        unsigned num_regs;    /* PTX registers the kernel declares */
        unsigned ptx_version; /* e.g. 90 for PTX ISA 9.0 */
        unsigned sm;          /* the .target, e.g. 75 */
};

/* ptx_kernel_get_attrs - fill *ret_attrs for kernel k. Always succeeds (returns 0). */
int ptx_kernel_get_attrs(const struct ptx_kernel *k, struct ptx_kernel_attrs *ret_attrs);

/*
 * Module variables (.global and .const, with their initialisers) live in device memory, as on a
 * GPU. By default the module keeps them in storage of its own, at device addresses from
 * PTX_GLOBALS_DEFAULT_BASE; ptx_module_global reads and writes reach it through ret_host.
 * An engine that wants them in its framebuffer allocates ptx_module_globals_size bytes there,
 * copies ptx_module_globals_image into it and calls ptx_module_bind_globals: from then on the
 * variables are at base + offset and every access goes through the launch's memory callback.
 */
#define PTX_GLOBALS_DEFAULT_BASE 0xfc00000000000000ull

/*
 * ptx_module_global - find a module variable by name: its device address, size, and (while the
 * module uses its own storage) a host pointer to it (else NULL). 0 or PTX_ENOTFOUND.
 */
int ptx_module_global(const struct ptx_module *mod, const char *name, uint64_t *ret_addr,
                      size_t *ret_size, void **ret_host);

/* ptx_module_globals_size - bytes all module variables take, laid out at their alignments. */
size_t ptx_module_globals_size(const struct ptx_module *mod);

/* ptx_module_globals_image - the initial contents, ptx_module_globals_size bytes, module-owned. */
const void *ptx_module_globals_image(const struct ptx_module *mod);

/*
 * ptx_module_bind_globals - place the module variables at device address base (aligned to 256),
 * reached through the memory callback from then on. Not while a launch of the module runs.
 * Returns 0 or -EINVAL.
 */
int ptx_module_bind_globals(struct ptx_module *mod, uint64_t base);

/* A contiguous device address range mapped to host memory. */
struct ptx_mem_region {
        uint64_t base; /* device address of the first byte */
        uint64_t size; /* bytes */
        void *host;    /* where base lives in this process */
};

/*
 * ptx_mem_fn - the launch's view of device memory. Called with a device address addr and a
 * length, from any worker thread and concurrently: fill *ret_region with the whole mapped region
 * that contains [addr, addr + len) (the interpreter caches it and checks later accesses against
 * it without calling again), and return 0; or return a negative value: the access faults and the
 * launch ends with PTX_EILLEGAL_ADDRESS. Regions must stay mapped until the launch returns.
 */
typedef int (*ptx_mem_fn)(void *ctx, uint64_t addr, uint64_t len,
                          struct ptx_mem_region *ret_region);

/* A pool of worker threads that runs the blocks of launches. */
struct ptx_pool;

/*
 * ptx_pool_new - start a pool of workers threads (1..256). The pool is shared by launches made
 * from any thread; launches made concurrently run one after another. 0, -EINVAL or -ENOMEM.
 */
int ptx_pool_new(unsigned workers, struct ptx_pool **ret_pool);

/* ptx_pool_free - stop and join the workers; NULL does nothing. No launch may be running. */
void ptx_pool_free(struct ptx_pool *pool);

/*
 * ptx_print_fn - where device printf output goes: one call per printf, with its formatted text
 * (not NUL-terminated, at most 4096 bytes). Called from any worker thread, concurrently.
 */
typedef void (*ptx_print_fn)(void *ctx, const char *text, size_t len);

/* What a launch runs. Unused fields must be zero. */
struct ptx_launch {
        const struct ptx_kernel *kernel;
        uint32_t grid[3];        /* blocks in x, y, z; each >= 1 */
        uint32_t block[3];       /* threads in x, y, z; product 1..1024 */
        uint32_t dynamic_shared; /* bytes of extern .shared memory */
        const void *params;      /* the parameter buffer, laid out as ptx_kernel_param_info says */
        size_t params_size;      /* must be >= ptx_kernel_param_size */
        ptx_mem_fn mem;          /* device memory; NULL: only module variables are mapped */
        void *mem_ctx;           /* passed to mem */
        struct ptx_pool *pool;   /* workers; NULL runs every block on the calling thread */
        unsigned workers;        /* use at most this many of the pool's workers; 0: all */
        uint64_t work_budget;    /* warp-instructions before PTX_ETIMEOUT; 0: unlimited (a
                                    kernel that never ends then runs until canceled) */
        const volatile int *cancel; /* when not NULL and set nonzero, the launch stops soon */
        ptx_print_fn print;         /* device printf output; NULL discards it */
        void *print_ctx;            /* passed to print */
        /*
         * Run only blocks first_block .. first_block + block_count - 1 of the grid (in linear
         * order, x fastest); block_count 0: the whole grid. The engine can run one launch as
         * several slices, between which its scheduler may run other work: blocks of a grid do
         * not wait for each other, so the result is that of one launch.
         */
        uint64_t first_block;
        uint64_t block_count;
};

/* What a launch did; filled in success and failure alike. */
struct ptx_launch_stats {
        uint64_t warp_insns;   /* warp-instructions issued: the deterministic work unit */
        uint64_t thread_insns; /* the same counted per active thread */
        /* on a fault: the faulting address, the block and thread, and the PTX line */
        uint64_t fault_addr;
        uint32_t fault_block[3];
        uint32_t fault_thread[3];
        uint32_t fault_line;
};

/*
 * ptx_launch - run a kernel over its grid and wait for it. Blocks are spread over the pool's
 * workers; each block runs its warps of 32 threads. The first fault ends the launch: blocks not
 * yet started are skipped and its code is returned (PTX_EILLEGAL_ADDRESS, PTX_EMISALIGNED,
 * PTX_ETRAP, PTX_ETIMEOUT, PTX_ESTACK, PTX_EILLEGAL_INSN, PTX_ECANCELED); PTX_ELAUNCH for a bad
 * configuration (including a block larger than the kernel's .maxntid or other than its
 * .reqntid), -ENOMEM. Writes done before a fault stay done, as on a GPU. ret_stats may be NULL.
 * warp_insns is the same in every run of a deterministic kernel whatever the worker count.
 */
int ptx_launch(const struct ptx_launch *launch, struct ptx_launch_stats *ret_stats);

#endif
