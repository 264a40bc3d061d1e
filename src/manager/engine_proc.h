/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpud's side of engine processes: start one and wait until it holds its framebuffer, ask one
 * for its status over its control socket, stop one. Engines run in their own session so that they
 * outlive vgpud; a restarted vgpud finds them again by their control sockets.
 */
#ifndef VGPU_MANAGER_ENGINE_PROC_H
#define VGPU_MANAGER_ENGINE_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

struct engine_spec {
        const char *engine_path; /* the vgpu-engine binary */
        const char *backend;     /* "sim" */
        const char *uuid;
        const char *type;
        const char *control;      /* its control socket path */
        const char *guest_socket; /* where guests attach */
        const char *model;        /* catalog id of the physical GPU */
        uint32_t sm_count;        /* SMs the vGPU presents */
        int64_t owner_uid;        /* the only uid (besides root) that may attach */
        const char *log_path;     /* its stdout and stderr go here (appended) */
        uint32_t gpu_index;
        uint64_t device_address;
        uint64_t fb_size;
        uint64_t fb_offset;
        const char *sched_path; /* its scheduler page (NULL: never gated) */
        /* cuda: the device it runs on, by UUID (a GPU's, or a MIG device's); NULL: gpu_index */
        const char *gpu_uuid;
        /* cuda: CUDA_VISIBLE_DEVICES for it (a MIG device must be named so to be used); NULL:
         * vgpud's own environment */
        const char *cuda_visible;
        /* cuda: fb_size is the most; the engine takes less when the device has less free */
        bool fb_fit;
};

/*
 * engine_spawn - start an engine for spec and wait up to timeout_ms until it reports that it holds
 * its framebuffer. Returns 0 and *ret_pid, or a negative errno; then *err (len bytes) holds the
 * engine's last words, and no engine is left running.
 */
int engine_spawn(const struct engine_spec *spec, int timeout_ms, pid_t *ret_pid, char *err,
                 size_t len);

/*
 * engine_status - ask the engine on control for its status. Returns 0 and *ret (a JSON object
 * with at least uuid, pid, fb_size; caller decrefs), -ECONNREFUSED/-ENOENT when no engine answers,
 * -ETIMEDOUT, or -EPROTO for a malformed answer.
 */
int engine_status(const char *control, int timeout_ms, json_t **ret);

/*
 * engine_request - send req (a JSON object) to the engine on control and wait up to timeout_ms
 * for its reply. Returns 0 and *ret (its "ok" reply; caller decrefs), -EIO when the engine
 * refused (its words in err), or another negative errno (said in err).
 */
int engine_request(const char *control, json_t *req, int timeout_ms, json_t **ret, char *err,
                   size_t len);

/* engine_request_fd - engine_request with fd passed along (SCM_RIGHTS): a migration's socket. */
int engine_request_fd(const char *control, json_t *req, int fd, int timeout_ms, json_t **ret,
                      char *err, size_t len);

/*
 * engine_stop - stop engine pid (asked over control, then SIGTERM, then SIGKILL after
 * timeout_ms), wait until it has exited and reap it if it is our child. Returns 0 or -errno.
 */
int engine_stop(const char *control, pid_t pid, int timeout_ms);

/*
 * engine_find - call fn(ctx, pid, uuid, control) for every live vgpu-engine process whose control
 * socket lies in dir (found by their command lines in /proc, so an engine that has not yet opened
 * its socket is found too). Returns the number found.
 */
int engine_find(const char *dir,
                void (*fn)(void *ctx, pid_t pid, const char *uuid, const char *control), void *ctx);

/* engine_reap - collect the exit status of pid if it is an exited child of ours. */
void engine_reap(pid_t pid);

/* engine_alive - whether process pid exists (and is not a zombie). */
bool engine_alive(pid_t pid);

#endif
