/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The manager's internals, shared by its files: manager.c (the vGPU table, creation and
 * destruction, state rows, engines), manager_restore.c (the GPUs and the state at startup),
 * manager_start.c (saved vGPUs and their engines, the watchers, manager_new) and manager_move.c
 * (suspend, resume, migration). Other modules use manager.h. All of these expect
 * the manager's lock held (or, in manager_new, the manager not yet shared).
 */
#ifndef VGPU_MANAGER_MANAGER_INT_H
#define VGPU_MANAGER_MANAGER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "manager/manager.h"

#define ENGINE_STATUS_MS 2000 /* how long an engine has to answer a status request */

/*
 * Device addresses: a new vGPU takes the same offset in a spare window above the GPUs' when a
 * vGPU that moved holds its own (layout.h: 96 windows of 1 TiB, 16 GPUs at most); a vGPU that
 * comes from another vgpud must lie within these windows.
 */
#define VA_WINDOWS_PER_ALIAS 16u
#define VA_ALIASES           5u

/* manager_state_parse - the state manager_state_name calls s; MGR_FAILED for an unknown name. */
enum mgr_vgpu_state manager_state_parse(const char *s);

/* manager_random_uuid - a new random (version 4) UUID, lower case, into out. */
void manager_random_uuid(char out[37]);

/* manager_uuid_valid - whether s is a UUID (36 characters: hex digits, dashes where they go). */
bool manager_uuid_valid(const char *s);

/* manager_utc_now - the time now as "YYYY-MM-DDTHH:MM:SSZ" into buf. */
void manager_utc_now(char *buf, size_t len);

/* manager_engine_path - the file of vGPU uuid's engine with extension ext: DIR/engines/UUID.ext. */
void manager_engine_path(const struct manager *m, const char *uuid, const char *ext, char *buf,
                         size_t len);

/* manager_persist_vgpu - commit v's row, and gi's (NULL: none), in one transaction; VGPU_ESTATE. */
int manager_persist_vgpu(struct manager *m, const struct mgr_vgpu *v, const struct layout_gi *gi);

/* manager_unpersist_vgpu - remove v's row, and its GPU instance's when implicit_gi; VGPU_ESTATE. */
int manager_unpersist_vgpu(struct manager *m, const struct mgr_vgpu *v, bool implicit_gi);

/* manager_persist_gpu - commit g's row (UUID, model, mode, PCI bus id); 0 or VGPU_ESTATE. */
int manager_persist_gpu(struct manager *m, const struct mgr_gpu *g);

/* manager_sched_attach - put time-sliced v under its GPU's scheduler (failure: logged, ungated). */
void manager_sched_attach(struct manager *m, const struct mgr_vgpu *v);

/* manager_sched_detach - take v from its GPU's scheduler. */
void manager_sched_detach(struct manager *m, const struct mgr_vgpu *v);

/*
 * manager_start_engine - start v's engine at its place; sets v->engine_pid (and v->fb_bytes on a
 * MIG device). 0, VGPU_EMIG_DEVICE, or VGPU_EENGINE with the engine's words in err.
 */
int manager_start_engine(struct manager *m, struct mgr_vgpu *v, char *err, size_t len);

/* manager_stop_engine - stop uuid's engine pid; remove its socket, log, guest socket, page. */
void manager_stop_engine(struct manager *m, const char *uuid, pid_t pid);

/* manager_vgpu_append - a new last entry of the table (the table may move), or NULL: no memory. */
struct mgr_vgpu *manager_vgpu_append(struct manager *m);

/* manager_vgpu_remove - take v out of the table; the entries after it move down. */
void manager_vgpu_remove(struct manager *m, struct mgr_vgpu *v);

/* manager_address_taken - whether a vGPU here has a device address in [a, a + size). */
bool manager_address_taken(const struct manager *m, uint64_t a, uint64_t size);

/* manager_real_gi_unmake - destroy GPU instance gi (0: none) of real GPU g; a refusal is logged. */
void manager_real_gi_unmake(struct manager *m, struct mgr_gpu *g, uint32_t gi, bool layout_done);

/* manager_image_of - the image a fresh engine restores v from: the last suspend's, or default. */
void manager_image_of(const struct manager *m, const struct mgr_vgpu *v, char *buf, size_t len);

/* manager_image_forget - forget where v's last suspend wrote its image. */
void manager_image_forget(const struct manager *m, const struct mgr_vgpu *v);

struct state_vgpu;
struct vgpu_nvml_gpu;

/*
 * manager_setup_gpus - the GPUs of cfg (nvml_found: what NVML found, real GPUs) numbered, their
 * modes and GPU instances and then their vGPUs restored from the state, stray engines stopped.
 * 0 or a negative code (a vgpud that must not start: logged).
 */
int manager_setup_gpus(struct manager *m, const struct manager_config *cfg,
                       const struct vgpu_nvml_gpu *nvml_found, size_t n_found);

/*
 * manager_restore_vgpu - put saved vGPU row back into its layout and the table, its engine
 * adopted (or a fresh one started, or the vGPU marked faulted). 0 or a negative code.
 */
int manager_restore_vgpu(struct manager *m, const struct state_vgpu *row);

/* manager_find_engine - the live engine of vGPU uuid started from this state directory, or 0. */
pid_t manager_find_engine(struct manager *m, const char *uuid);

/* manager_stop_strays - stop engines of vGPUs not in the table; remove files nobody owns. */
void manager_stop_strays(struct manager *m);

#endif
