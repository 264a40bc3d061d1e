// SPDX-License-Identifier: Apache-2.0
// The sim backend's framebuffer: a sparse memfd of the vGPU's size, mapped shared at the vGPU's
// fixed device address, so device pointers are host pointers in the engine and pages cost memory
// only once written.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/sim/sim.h"

int sim_fb_reserve(struct backend_dev *d, const struct backend_fb_req *req, struct backend_fb *ret)
{
        char name[64];
        void *p;
        int fd, r;

        (void)d;
        if (req->size == 0 || req->device_address % (uint64_t)sysconf(_SC_PAGESIZE))
                return -EINVAL;
        snprintf(name, sizeof(name), "vgpu-fb-%.36s", req->vgpu_uuid ? req->vgpu_uuid : "");
        fd = memfd_create(name, MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (ftruncate(fd, (off_t)req->size) < 0) {
                r = -errno;
                goto err_close;
        }
        p = mmap((void *)(uintptr_t)req->device_address, req->size, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_NORESERVE | MAP_FIXED_NOREPLACE, fd, 0);
        if (p == MAP_FAILED) {
                r = -errno;
                goto err_close;
        }
        if ((uintptr_t)p != req->device_address) {
                /* An old kernel that ignores MAP_FIXED_NOREPLACE placed it elsewhere. */
                munmap(p, req->size);
                r = -EEXIST;
                goto err_close;
        }
        *ret = (struct backend_fb){
                .device_address = req->device_address,
                .size = req->size,
                .phys_offset = req->phys_offset,
                .host = p,
                .fd = fd,
        };
        return 0;

err_close:
        close(fd);
        return r;
}

void sim_fb_release(struct backend_dev *d, struct backend_fb *fb)
{
        (void)d;
        if (fb->host)
                munmap(fb->host, fb->size);
        if (fb->fd >= 0)
                close(fb->fd);
        fb->host = NULL;
        fb->fd = -1;
}

/* The page tables move with the mapping: no page is copied, faulted or freed. */
int sim_fb_remap(struct backend_dev *d, struct backend_fb *fb, uint64_t addr)
{
        void *p;

        (void)d;
        if (!fb->host || addr % (uint64_t)sysconf(_SC_PAGESIZE))
                return -EINVAL;
        /* MREMAP_FIXED would replace a mapping there: refuse to, as fb_reserve does */
        p = mmap((void *)(uintptr_t)addr, fb->size, PROT_NONE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
        if (p == MAP_FAILED)
                return errno == EEXIST ? -EEXIST : -errno;
        if ((uintptr_t)p != addr) {
                munmap(p, fb->size);
                return -EEXIST;
        }
        p = mremap(fb->host, fb->size, fb->size, MREMAP_MAYMOVE | MREMAP_FIXED, p);
        if (p == MAP_FAILED) {
                int r = -errno;

                munmap((void *)(uintptr_t)addr, fb->size);
                return r;
        }
        fb->host = p;
        fb->device_address = addr;
        return 0;
}

uint64_t sim_fb_resident(const struct backend_fb *fb)
{
        struct stat st;

        if (fb->fd < 0 || fstat(fb->fd, &st) < 0)
                return 0;
        return (uint64_t)st.st_blocks * 512;
}

int sim_fb_export(struct backend_dev *d, const struct backend_fb *fb, int *fds, size_t max,
                  size_t *ret_n)
{
        (void)d;
        if (max < 1 || fb->fd < 0)
                return -EINVAL;
        fds[0] = fcntl(fb->fd, F_DUPFD_CLOEXEC, 3);
        if (fds[0] < 0)
                return -errno;
        *ret_n = 1;
        return 0;
}

int sim_fb_import(struct backend_dev *d, const struct backend_fb_req *req, const int *fds, size_t n,
                  struct backend_fb *ret)
{
        struct stat st;
        void *p;
        int fd;

        (void)d;
        if (n != 1 || req->size == 0 || fstat(fds[0], &st) < 0 || (uint64_t)st.st_size < req->size)
                return -EINVAL;
        fd = fcntl(fds[0], F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        p = mmap((void *)(uintptr_t)req->device_address, req->size, PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_NORESERVE | MAP_FIXED_NOREPLACE, fd, 0);
        if (p == MAP_FAILED || (uintptr_t)p != req->device_address) {
                int r = p == MAP_FAILED ? -errno : -EEXIST;

                if (p != MAP_FAILED)
                        munmap(p, req->size);
                close(fd);
                return r;
        }
        *ret = (struct backend_fb){.device_address = req->device_address,
                                   .size = req->size,
                                   .phys_offset = req->phys_offset,
                                   .host = p,
                                   .fd = fd};
        return 0;
}
