/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The backend ops table: the only way an engine reaches a physical GPU. One constant table per
 * backend (sim, cuda), with designated initialisers; backend_find() picks one by name.
 */
#ifndef VGPU_BACKEND_BACKEND_H
#define VGPU_BACKEND_BACKEND_H

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
};

struct backend_ops {
        const char *name;
        /*
         * fb_reserve - reserve and map the whole framebuffer described by req. On success fills
         * *ret and returns 0; the range is the vGPU's until fb_release. Fails with -EEXIST when
         * the address range is taken, -ENOMEM when memory cannot be reserved, -ENODEV when the
         * backend has no such GPU; *ret untouched on failure.
         */
        int (*fb_reserve)(const struct backend_fb_req *req, struct backend_fb *ret);
        /* fb_release - unmap and free a reserved framebuffer. */
        void (*fb_release)(struct backend_fb *fb);
        /* fb_resident - bytes of the framebuffer that hold data (sim: touched pages). */
        uint64_t (*fb_resident)(const struct backend_fb *fb);
};

extern const struct backend_ops backend_sim_ops;

/* backend_find - the ops table named name ("sim"), or NULL. */
const struct backend_ops *backend_find(const char *name);

#endif
