// SPDX-License-Identifier: Apache-2.0
// The virtual memory management calls, on host memory of this process at the device addresses:
// an address reservation is an inaccessible anonymous mapping, physical memory a sparse memfd
// (exported and imported as a file descriptor), a mapping that memfd mapped over the reservation,
// access an mprotect. The table of mapped ranges (and of module variables) is what copies and
// kernels may touch; see vmm_reachable and vmm_region.
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_cuda.h"

/* Physical memory: what a CUmemGenericAllocationHandle names. */
struct alloc {
        int fd;             /* the memfd */
        uint64_t size;      /* bytes */
        struct fc_dev *dev; /* where it was created (NULL: imported from a device not seen) */
        bool exportable;    /* created with CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR */
        bool imported;      /* counted by the process that created it, not here */
        bool released;      /* cuMemRelease was called: freed when its last mapping goes */
        unsigned maps;      /* mappings of it */
};

/* Device memory: a mapping, or a module's variables (alloc NULL). */
struct area {
        uint64_t base, size;
        struct alloc *alloc;
        uint64_t access; /* bit per device ordinal that may read and write it */
};

struct resv {
        uint64_t base, size;
};

static pthread_mutex_t vmm_lock = PTHREAD_MUTEX_INITIALIZER;
/* Writers first: an unmap must not wait for ever behind a stream of copies. */
static pthread_rwlock_t use_lock = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
static struct area *areas; /* sorted by base, never overlapping */
static size_t n_areas, cap_areas;
static struct resv *resvs;
static size_t n_resvs, cap_resvs;

void vmm_use_begin(void)
{
        pthread_rwlock_rdlock(&use_lock);
}

void vmm_use_end(void)
{
        pthread_rwlock_unlock(&use_lock);
}

void vmm_change_begin(void)
{
        pthread_rwlock_wrlock(&use_lock);
}

void vmm_change_end(void)
{
        pthread_rwlock_unlock(&use_lock);
}

static void *at(uint64_t addr)
{
        return (void *)(uintptr_t)addr;
}

/* The index of the first area that ends after addr (n_areas if none). */
static size_t area_after_locked(uint64_t addr)
{
        size_t lo = 0, hi = n_areas;

        while (lo < hi) {
                size_t mid = (lo + hi) / 2;

                if (areas[mid].base + areas[mid].size <= addr)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

/* The area holding addr, or NULL. */
static struct area *area_at_locked(uint64_t addr)
{
        size_t i = area_after_locked(addr);

        return i < n_areas && areas[i].base <= addr ? &areas[i] : NULL;
}

static int area_insert_locked(struct area a)
{
        size_t i = area_after_locked(a.base);

        if (n_areas == cap_areas) {
                size_t cap = cap_areas ? cap_areas * 2 : 64;
                struct area *na = realloc(areas, cap * sizeof(*na));

                if (!na)
                        return -ENOMEM;
                areas = na;
                cap_areas = cap;
        }
        memmove(&areas[i + 1], &areas[i], (n_areas - i) * sizeof(*areas));
        areas[i] = a;
        n_areas++;
        return 0;
}

static void area_remove_locked(struct area *a)
{
        size_t i = (size_t)(a - areas);

        memmove(&areas[i], &areas[i + 1], (n_areas - i - 1) * sizeof(*areas));
        n_areas--;
}

static bool may_use(const struct area *a, const struct fc_dev *dev)
{
        return a->access & (UINT64_C(1) << dev->ordinal);
}

bool vmm_reachable(const struct fc_dev *dev, uint64_t addr, uint64_t len)
{
        uint64_t end = addr + len;
        bool ok = end >= addr;

        pthread_mutex_lock(&vmm_lock);
        for (uint64_t cur = addr; ok && cur < end;) {
                const struct area *a = area_at_locked(cur);

                ok = a && may_use(a, dev);
                if (ok)
                        cur = a->base + a->size;
        }
        pthread_mutex_unlock(&vmm_lock);
        return ok;
}

int vmm_region(const struct fc_dev *dev, uint64_t addr, uint64_t len, struct ptx_mem_region *ret)
{
        size_t first, last;
        int r = -EFAULT;

        pthread_mutex_lock(&vmm_lock);
        first = area_after_locked(addr);
        if (first < n_areas && areas[first].base <= addr && may_use(&areas[first], dev)) {
                /* adjacent reachable ranges (the chunks of one framebuffer) are one region */
                last = first;
                while (first > 0 && may_use(&areas[first - 1], dev) &&
                       areas[first - 1].base + areas[first - 1].size == areas[first].base)
                        first--;
                while (last + 1 < n_areas && may_use(&areas[last + 1], dev) &&
                       areas[last].base + areas[last].size == areas[last + 1].base)
                        last++;
                if (addr + len >= addr && addr + len <= areas[last].base + areas[last].size) {
                        *ret = (struct ptx_mem_region){
                                .base = areas[first].base,
                                .size = areas[last].base + areas[last].size - areas[first].base,
                                .host = at(areas[first].base),
                        };
                        r = 0;
                }
        }
        pthread_mutex_unlock(&vmm_lock);
        return r;
}

int vmm_var_add(const struct fc_dev *dev, uint64_t base, uint64_t size)
{
        int r;

        pthread_mutex_lock(&vmm_lock);
        r = area_insert_locked(
                (struct area){.base = base, .size = size, .access = UINT64_C(1) << dev->ordinal});
        pthread_mutex_unlock(&vmm_lock);
        return r;
}

void vmm_var_del(uint64_t base)
{
        struct area *a;

        pthread_mutex_lock(&vmm_lock);
        a = area_at_locked(base);
        if (a && !a->alloc && a->base == base)
                area_remove_locked(a);
        pthread_mutex_unlock(&vmm_lock);
}

/* Memory released and no longer mapped is freed (outside vmm_lock: it writes the accounting). */
static void alloc_free(struct alloc *m)
{
        close(m->fd);
        if (!m->imported && m->dev)
                acct_uncharge(m->dev, m->size);
        free(m);
}

static struct fc_dev *location_dev(const CUmemLocation *l)
{
        return l->type == CU_MEM_LOCATION_TYPE_DEVICE ? fc_device(l->id) : NULL;
}

VGPU_EXPORT CUresult cuMemGetAllocationGranularity(size_t *granularity,
                                                   const CUmemAllocationProp *prop,
                                                   CUmemAllocationGranularity_flags option)
{
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        if (!granularity || !prop ||
            (option != CU_MEM_ALLOC_GRANULARITY_MINIMUM &&
             option != CU_MEM_ALLOC_GRANULARITY_RECOMMENDED))
                return CUDA_ERROR_INVALID_VALUE;
        if (!location_dev(&prop->location))
                return CUDA_ERROR_INVALID_DEVICE;
        *granularity = (size_t)FC_GRANULARITY;
        return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total)
{
        struct fc_ctx *ctx;
        uint64_t used;
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        ctx = fc_current();
        if (!ctx)
                return CUDA_ERROR_INVALID_CONTEXT;
        if (!free_bytes || !total)
                return CUDA_ERROR_INVALID_VALUE;
        used = acct_used(ctx->dev);
        *free_bytes = (size_t)(used < ctx->dev->total ? ctx->dev->total - used : 0);
        *total = (size_t)ctx->dev->total;
        return CUDA_SUCCESS;
}

/* An inaccessible range of size at addr if that is free, else anywhere aligned to align. */
static void *reserve(uint64_t addr, uint64_t size, uint64_t align)
{
        const int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
        uint8_t *p, *start;

        if (addr && addr % align == 0) {
                p = mmap(at(addr), size, PROT_NONE, flags | MAP_FIXED_NOREPLACE, -1, 0);
                if (p != MAP_FAILED && (uintptr_t)p == addr)
                        return p;
                if (p != MAP_FAILED) /* a kernel that took the address as a hint */
                        munmap(p, size);
        }
        /* Elsewhere: over-reserve, then trim to the alignment. */
        if (size + align < size)
                return NULL;
        p = mmap(NULL, size + align, PROT_NONE, flags, -1, 0);
        if (p == MAP_FAILED)
                return NULL;
        start = (uint8_t *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
        if (start > p)
                munmap(p, (size_t)(start - p));
        munmap(start + size, (size_t)(p + size + align - (start + size)));
        return start;
}

VGPU_EXPORT CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment,
                                         CUdeviceptr addr, unsigned long long flags)
{
        uint64_t align = alignment > FC_GRANULARITY ? alignment : FC_GRANULARITY;
        void *p;
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        /* the hint, like the size, a multiple of the host page size; alignment a power of two */
        if (!ptr || size == 0 || size % FC_GRANULARITY || flags || (alignment & (alignment - 1)) ||
            addr % (uint64_t)sysconf(_SC_PAGESIZE))
                return CUDA_ERROR_INVALID_VALUE;
        p = reserve(addr, size, align);
        if (!p)
                return CUDA_ERROR_OUT_OF_MEMORY;
        pthread_mutex_lock(&vmm_lock);
        if (n_resvs == cap_resvs) {
                size_t cap = cap_resvs ? cap_resvs * 2 : 16;
                struct resv *nr = realloc(resvs, cap * sizeof(*nr));

                if (!nr) {
                        pthread_mutex_unlock(&vmm_lock);
                        munmap(p, size);
                        return CUDA_ERROR_OUT_OF_MEMORY;
                }
                resvs = nr;
                cap_resvs = cap;
        }
        resvs[n_resvs++] = (struct resv){.base = (uintptr_t)p, .size = size};
        pthread_mutex_unlock(&vmm_lock);
        *ptr = (CUdeviceptr)(uintptr_t)p;
        return CUDA_SUCCESS;
}

VGPU_EXPORT CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
        CUresult r = fc_ready();
        size_t i;

        if (r != CUDA_SUCCESS)
                return r;
        pthread_mutex_lock(&vmm_lock);
        for (i = 0; i < n_resvs; i++) {
                if (resvs[i].base == ptr && resvs[i].size == size)
                        break;
        }
        /* the whole reservation, with nothing mapped in it any more */
        if (i == n_resvs || size == 0) {
                r = CUDA_ERROR_INVALID_VALUE;
        } else {
                size_t k = area_after_locked(ptr);

                if (k < n_areas && areas[k].base < ptr + size)
                        r = CUDA_ERROR_INVALID_VALUE;
        }
        if (r == CUDA_SUCCESS) {
                munmap(at(ptr), size);
                resvs[i] = resvs[--n_resvs];
        }
        pthread_mutex_unlock(&vmm_lock);
        return r != CUDA_SUCCESS ? r : fc_sticky();
}

VGPU_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size,
                                 const CUmemAllocationProp *prop, unsigned long long flags)
{
        struct fc_dev *dev;
        struct alloc *m;
        char name[80];
        int e;
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        if (!handle || !prop || size == 0 || size % FC_GRANULARITY || flags ||
            prop->type != CU_MEM_ALLOCATION_TYPE_PINNED)
                return CUDA_ERROR_INVALID_VALUE;
        if (prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
                return CUDA_ERROR_NOT_SUPPORTED; /* host (NUMA) memory: not here */
        dev = location_dev(&prop->location);
        if (!dev)
                return CUDA_ERROR_INVALID_DEVICE;
        if (prop->requestedHandleTypes & ~CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
                return CUDA_ERROR_NOT_SUPPORTED;
        m = calloc(1, sizeof(*m));
        if (!m)
                return CUDA_ERROR_OUT_OF_MEMORY;
        e = acct_charge(dev, size);
        if (e < 0) {
                free(m);
                return e == -ENOMEM ? CUDA_ERROR_OUT_OF_MEMORY : CUDA_ERROR_OPERATING_SYSTEM;
        }
        /* The name says whose memory it is, for an importer (see import_dev). */
        snprintf(name, sizeof(name), "fakecuda:%s", dev->key);
        m->fd = memfd_create(name, MFD_CLOEXEC);
        if (m->fd < 0 || ftruncate(m->fd, (off_t)size) < 0) {
                if (m->fd >= 0)
                        close(m->fd);
                acct_uncharge(dev, size);
                free(m);
                return CUDA_ERROR_OUT_OF_MEMORY;
        }
        m->size = size;
        m->dev = dev;
        m->exportable = prop->requestedHandleTypes & CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
        if (handle_add(m, FC_ALLOC, NULL) < 0) {
                alloc_free(m);
                return CUDA_ERROR_OUT_OF_MEMORY;
        }
        *handle = (CUmemGenericAllocationHandle)(uintptr_t)m;
        return CUDA_SUCCESS;
}

static struct alloc *alloc_of(CUmemGenericAllocationHandle h)
{
        struct alloc *m = (struct alloc *)(uintptr_t)h;

        return handle_is(m, FC_ALLOC, NULL) ? m : NULL;
}

VGPU_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle)
{
        struct alloc *m, *dead = NULL;
        CUresult r = fc_ready();

        if (r != CUDA_SUCCESS)
                return r;
        pthread_mutex_lock(&vmm_lock);
        m = alloc_of(handle);
        if (m) {
                handle_del(m, FC_ALLOC);
                m->released = true;
                if (m->maps == 0)
                        dead = m;
        }
        pthread_mutex_unlock(&vmm_lock);
        if (!m)
                return CUDA_ERROR_INVALID_VALUE;
        if (dead)
                alloc_free(dead);
        return fc_sticky();
}

VGPU_EXPORT CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                              CUmemGenericAllocationHandle handle, unsigned long long flags)
{
        struct alloc *m;
        bool inside = false;
        size_t k;
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        if (offset || flags || size == 0 || ptr % FC_GRANULARITY || ptr + size < ptr)
                return CUDA_ERROR_INVALID_VALUE;
        pthread_mutex_lock(&vmm_lock);
        m = alloc_of(handle);
        for (size_t i = 0; i < n_resvs && !inside; i++)
                inside = ptr >= resvs[i].base && ptr + size <= resvs[i].base + resvs[i].size;
        k = area_after_locked(ptr);
        /* the whole handle, inside one reservation, over nothing mapped yet */
        if (!m || m->size != size || !inside || (k < n_areas && areas[k].base < ptr + size)) {
                r = CUDA_ERROR_INVALID_VALUE;
        } else if (mmap(at(ptr), size, PROT_NONE, MAP_SHARED | MAP_FIXED | MAP_NORESERVE, m->fd,
                        0) == MAP_FAILED) {
                r = CUDA_ERROR_OUT_OF_MEMORY;
        } else if (area_insert_locked((struct area){.base = ptr, .size = size, .alloc = m}) < 0) {
                mmap(at(ptr), size, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
                r = CUDA_ERROR_OUT_OF_MEMORY;
        } else {
                m->maps++;
        }
        pthread_mutex_unlock(&vmm_lock);
        return r;
}

/*
 * The mapping areas that exactly cover [ptr, ptr + size), one after another: [*first, *last],
 * or false.
 */
static bool mapped_run_locked(uint64_t ptr, uint64_t size, size_t *first, size_t *last)
{
        size_t i = area_after_locked(ptr);
        uint64_t cur = ptr;

        if (size == 0 || ptr + size < ptr || i == n_areas || areas[i].base != ptr)
                return false;
        *first = i;
        for (; i < n_areas && areas[i].base == cur && areas[i].alloc; i++) {
                cur += areas[i].size;
                if (cur >= ptr + size) {
                        *last = i;
                        return cur == ptr + size;
                }
        }
        return false;
}

VGPU_EXPORT CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
        struct alloc *dead[64];
        size_t first, last, n_dead = 0;
        CUresult r = fc_ready();

        if (r != CUDA_SUCCESS)
                return r;
        vmm_change_begin(); /* no copy or kernel is using it */
        pthread_mutex_lock(&vmm_lock);
        if (!mapped_run_locked(ptr, size, &first, &last)) {
                r = CUDA_ERROR_INVALID_VALUE;
        } else {
                /* back to a reservation: the range stays the caller's */
                mmap(at(ptr), size, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
                for (size_t i = last + 1; i-- > first;) {
                        struct alloc *m = areas[i].alloc;

                        area_remove_locked(&areas[i]);
                        if (--m->maps == 0 && m->released) {
                                if (n_dead < sizeof(dead) / sizeof(dead[0]))
                                        dead[n_dead++] = m;
                                else
                                        alloc_free(m); /* rare: under the lock */
                        }
                }
        }
        pthread_mutex_unlock(&vmm_lock);
        vmm_change_end();
        for (size_t i = 0; i < n_dead; i++)
                alloc_free(dead[i]);
        return r != CUDA_SUCCESS ? r : fc_sticky();
}

VGPU_EXPORT CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc,
                                    size_t count)
{
        uint64_t grant = 0, revoke = 0;
        size_t first, last;
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        if (!desc || count == 0)
                return CUDA_ERROR_INVALID_VALUE;
        for (size_t i = 0; i < count; i++) {
                struct fc_dev *dev = location_dev(&desc[i].location);
                uint64_t bit;

                if (!dev)
                        return desc[i].location.type == CU_MEM_LOCATION_TYPE_DEVICE
                                       ? CUDA_ERROR_INVALID_DEVICE
                                       : CUDA_ERROR_INVALID_VALUE;
                bit = UINT64_C(1) << dev->ordinal;
                if (desc[i].flags == CU_MEM_ACCESS_FLAGS_PROT_READWRITE) {
                        grant |= bit;
                        revoke &= ~bit;
                } else if (desc[i].flags == CU_MEM_ACCESS_FLAGS_PROT_NONE) {
                        revoke |= bit;
                        grant &= ~bit;
                } else if (desc[i].flags == CU_MEM_ACCESS_FLAGS_PROT_READ) {
                        return CUDA_ERROR_NOT_SUPPORTED; /* kernels could not be kept to reads */
                } else {
                        return CUDA_ERROR_INVALID_VALUE;
                }
        }
        vmm_change_begin();
        pthread_mutex_lock(&vmm_lock);
        if (!mapped_run_locked(ptr, size, &first, &last)) {
                r = CUDA_ERROR_INVALID_VALUE;
        } else {
                for (size_t i = first; i <= last; i++) {
                        struct area *a = &areas[i];

                        a->access = (a->access | grant) & ~revoke;
                        if (mprotect(at(a->base), a->size,
                                     a->access ? PROT_READ | PROT_WRITE : PROT_NONE) < 0)
                                r = CUDA_ERROR_OUT_OF_MEMORY;
                }
        }
        pthread_mutex_unlock(&vmm_lock);
        vmm_change_end();
        return r;
}

VGPU_EXPORT CUresult cuMemExportToShareableHandle(void *shareableHandle,
                                                  CUmemGenericAllocationHandle handle,
                                                  CUmemAllocationHandleType handleType,
                                                  unsigned long long flags)
{
        struct alloc *m;
        int fd = -1;
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        if (!shareableHandle || flags)
                return CUDA_ERROR_INVALID_VALUE;
        if (handleType != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
                return CUDA_ERROR_NOT_SUPPORTED;
        pthread_mutex_lock(&vmm_lock);
        m = alloc_of(handle);
        /* only memory created exportable as a file descriptor */
        if (!m || !m->exportable)
                r = CUDA_ERROR_INVALID_VALUE;
        else if ((fd = fcntl(m->fd, F_DUPFD_CLOEXEC, 0)) < 0)
                r = CUDA_ERROR_OUT_OF_MEMORY;
        pthread_mutex_unlock(&vmm_lock);
        if (r == CUDA_SUCCESS)
                *(int *)shareableHandle = fd;
        return r;
}

/* Whose memory a file descriptor is: the stand-in's memfds are named "fakecuda:<device-key>". */
static int import_dev(int fd, struct fc_dev **ret)
{
        char path[64], link[256];
        const char *prefix = "/memfd:fakecuda:";
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        n = readlink(path, link, sizeof(link) - 1);
        if (n < 0)
                return -1;
        link[n] = '\0';
        if (strncmp(link, prefix, strlen(prefix)) != 0)
                return -1;
        *ret = NULL;
        for (int i = 0; i < fc.n_devs; i++) {
                size_t k = strlen(fc.devs[i].key);

                if (strncmp(link + strlen(prefix), fc.devs[i].key, k) == 0 &&
                    (link[strlen(prefix) + k] == '\0' || link[strlen(prefix) + k] == ' '))
                        *ret = &fc.devs[i];
        }
        return 0;
}

VGPU_EXPORT CUresult cuMemImportFromShareableHandle(CUmemGenericAllocationHandle *handle,
                                                    void *osHandle,
                                                    CUmemAllocationHandleType shHandleType)
{
        int fd = (int)(intptr_t)osHandle;
        struct fc_dev *dev = NULL;
        struct alloc *m;
        struct stat st;
        CUresult r = fc_check();

        if (r != CUDA_SUCCESS)
                return r;
        if (!handle)
                return CUDA_ERROR_INVALID_VALUE;
        if (shHandleType != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
                return CUDA_ERROR_NOT_SUPPORTED;
        if (fd < 0 || fstat(fd, &st) < 0 || import_dev(fd, &dev) < 0 || st.st_size <= 0 ||
            (uint64_t)st.st_size % FC_GRANULARITY)
                return CUDA_ERROR_INVALID_VALUE;
        m = calloc(1, sizeof(*m));
        if (!m)
                return CUDA_ERROR_OUT_OF_MEMORY;
        *m = (struct alloc){
                .size = (uint64_t)st.st_size, .dev = dev, .exportable = true, .imported = true};
        m->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0); /* the caller keeps its descriptor */
        if (m->fd < 0) {
                free(m);
                return CUDA_ERROR_OUT_OF_MEMORY;
        }
        if (handle_add(m, FC_ALLOC, NULL) < 0) {
                alloc_free(m);
                return CUDA_ERROR_OUT_OF_MEMORY;
        }
        *handle = (CUmemGenericAllocationHandle)(uintptr_t)m;
        return CUDA_SUCCESS;
}
