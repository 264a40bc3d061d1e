// SPDX-License-Identifier: Apache-2.0
// Mapping a vGPU's scheduler page (schedpage.h), for vgpud and for the engine alike: a page either
// side can drive, or a refusal.
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/schedpage.h"

int vgpu_sched_page_map(const char *path, struct vgpu_sched_page **ret)
{
        int fd = open(path, O_RDWR | O_CLOEXEC);
        struct vgpu_sched_page *p;
        struct stat st;
        void *m;

        if (fd < 0)
                return -errno;
        /* a short page would fault (SIGBUS) on first touch */
        if (fstat(fd, &st) < 0 || st.st_size < VGPU_SCHED_SIZE) {
                close(fd);
                return -EPROTO;
        }
        m = mmap(NULL, VGPU_SCHED_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (m == MAP_FAILED)
                return -errno;
        p = m;
        if (p->magic != VGPU_SCHED_MAGIC || p->version != VGPU_SCHED_VERSION) {
                munmap(m, VGPU_SCHED_SIZE);
                return -EPROTO;
        }
        *ret = p;
        return 0;
}
