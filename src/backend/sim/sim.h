/* SPDX-License-Identifier: Apache-2.0 */
/* The sim backend's parts, joined into backend_sim_ops by sim_exec.c. */
#ifndef VGPU_BACKEND_SIM_SIM_H
#define VGPU_BACKEND_SIM_SIM_H

#include "backend/backend.h"

int sim_fb_reserve(struct backend_dev *d, const struct backend_fb_req *req, struct backend_fb *ret);
void sim_fb_release(struct backend_dev *d, struct backend_fb *fb);
uint64_t sim_fb_resident(const struct backend_fb *fb);
int sim_fb_remap(struct backend_dev *d, struct backend_fb *fb, uint64_t addr);
int sim_fb_export(struct backend_dev *d, const struct backend_fb *fb, int *fds, size_t max,
                  size_t *ret_n);
int sim_fb_import(struct backend_dev *d, const struct backend_fb_req *req, const int *fds, size_t n,
                  struct backend_fb *ret);

#endif
