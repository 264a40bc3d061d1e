// SPDX-License-Identifier: Apache-2.0
// The engine's suspend, resume and move within a host (docs/migration.md): the image written
// whole or not at all, the framebuffer released and taken back at another place, the workers'
// sessions paused, exported and remapped with it.
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "common/log.h"
#include "engine/vgpu_engine.h"

size_t engine_sessions(struct engine *e, struct session **ret)
{
        size_t n = 0;

        for (int i = 0; i < ENGINE_MAX_GUESTS; i++) {
                if (e->guests[i].s)
                        ret[n++] = e->guests[i].s;
        }
        return n;
}

struct snap_meta engine_meta(const struct engine *e)
{
        struct snap_meta m = {.device_address = e->fb_req.device_address,
                              .fb_size = e->fb_req.size};

        snprintf(m.uuid, sizeof(m.uuid), "%s", e->uuid);
        snprintf(m.type, sizeof(m.type), "%s", e->type);
        return m;
}

json_t *engine_op_error(const char *fmt, ...)
{
        char msg[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

json_t *engine_op_done(const struct snap_stats *st, uint64_t t0)
{
        return json_pack("{s:b, s:I, s:I, s:f}", "ok", 1, "data_bytes", (json_int_t)st->data_bytes,
                         "image_bytes", (json_int_t)st->stored_bytes, "seconds",
                         (double)(chan_now_ns() - t0) / 1e9);
}

/* Suspend to path: write the image beside it and rename it into place once whole. */
static json_t *do_suspend(struct engine *e, const char *path, int level)
{
        struct session *ss[ENGINE_MAX_GUESTS];
        size_t n = engine_sessions(e, ss), n_blob = 0;
        uint8_t *blob[ENGINE_MAX_GUESTS] = {0};
        size_t blen[ENGINE_MAX_GUESTS] = {0};
        struct snap_meta meta = engine_meta(e);
        struct snap_stats st = {0};
        uint64_t t0 = chan_now_ns();
        char tmp[4200], err[512] = "";
        bool anonymous = false;
        int fd, r;

        if (path[0] != '/' || strlen(path) >= sizeof(e->image))
                return engine_op_error("suspend: the image path must be absolute");
        if (lstat(path, &(struct stat){0}) == 0)
                return engine_op_error("suspend: %s: a file of that name exists (the vGPU runs on)",
                                       path);
        /*
         * The image has no name until it is whole (O_TMPFILE): an engine that dies while writing
         * leaves nothing behind. Where the file system cannot, a temporary name beside it.
         */
        snprintf(tmp, sizeof(tmp), "%s", path);
        {
                char *slash = strrchr(tmp, '/');

                if (slash == tmp)
                        slash[1] = '\0';
                else
                        *slash = '\0';
        }
        fd = open(tmp, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
        if (fd >= 0) {
                anonymous = true;
        } else if (errno == EOPNOTSUPP || errno == EISDIR) {
                snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid());
                fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        }
        if (fd < 0)
                return engine_op_error("suspend: cannot create the image in %s: %s", tmp,
                                       strerror(errno));
        r = vdev_pause(ss, n);
        if (r < 0) {
                snprintf(err, sizeof(err), "a guest's command did not end within %g s",
                         (double)session_pause_limit_ns() / 1e9);
        } else if (e->isolate) {
                r = engine_workers_do(e, WORKER_PAUSE, 0, NULL, 0);
                if (r == -ETIMEDOUT)
                        snprintf(err, sizeof(err), "a guest's command did not end within %g s",
                                 (double)session_pause_limit_ns() / 1e9);
                else if (r < 0)
                        snprintf(err, sizeof(err), "a worker did not stop: %s", strerror(-r));
        }
        /*
         * The guests' sessions go into the image too (a worker's from its worker, worker_export),
         * and each guest's channel learns where it re-attaches, and with which token, should this
         * engine be gone when the vGPU is resumed (docs/migration.md).
         */
        if (r == 0 && e->isolate)
                r = engine_workers_export(e, blob, blen, &n_blob, true, err, sizeof(err));
        for (size_t i = 0; r == 0 && !e->isolate && i < n; i++) {
                r = session_export(ss[i], &blob[i], &blen[i]);
                if (r < 0)
                        snprintf(err, sizeof(err), "guest %d: %s", (int)session_pid(ss[i]),
                                 r == -ENOTSUP ? "its modules' variables cannot be saved"
                                               : strerror(-r));
                else
                        n_blob++;
        }
        if (r == 0)
                r = vdev_save(&e->dev, &meta, fd, level, (const uint8_t *const *)blob, blen, n_blob,
                              &st, err, sizeof(err));
        for (size_t i = 0; i < n_blob; i++) {
                if (r == 0 && !e->isolate)
                        session_note_home(ss[i], e->guest_path);
                free(blob[i]);
        }
        for (int i = 0; r == 0 && e->isolate && i < ENGINE_MAX_GUESTS; i++) {
                /* where its guest re-attaches, with the token of the image's session */
                if (e->guests[i].exported && e->guests[i].ctl >= 0)
                        worker_call(e->guests[i].ctl, WORKER_HOME, 0, WORKER_WAIT_MS);
        }
        if (r == 0 && fsync(fd) < 0) {
                r = -errno;
                snprintf(err, sizeof(err), "writing the image: %s", strerror(errno));
        }
        /* link, not rename: an image never replaces a file that is there */
        if (r == 0) {
                char self[64];

                snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
                if ((anonymous ? linkat(AT_FDCWD, self, AT_FDCWD, path, AT_SYMLINK_FOLLOW)
                               : link(tmp, path)) < 0) {
                        r = -errno;
                        snprintf(err, sizeof(err), "%s: %s", path,
                                 errno == EEXIST ? "a file of that name exists" : strerror(errno));
                }
        }
        if (close(fd) < 0 && r == 0) {
                r = -errno;
                snprintf(err, sizeof(err), "writing the image: %s", strerror(errno));
                unlink(path);
        }
        if (!anonymous)
                unlink(tmp);
        if (r < 0) {
                if (e->isolate)
                        engine_workers_do(e, WORKER_UNPAUSE, 0, NULL, 0);
                vdev_unpause(ss, n);
                return engine_op_error("suspend: %s (the vGPU runs on)", err);
        }
        if (e->isolate) {
                /* the workers' mappings and the fds for new ones hold the memory too */
                engine_workers_do(e, WORKER_RELEASE, 0, NULL, 0);
                for (size_t k = 0; k < e->n_fb_fds; k++)
                        close(e->fb_fds[k]);
                e->n_fb_fds = 0;
        }
        vdev_release(&e->dev);
        e->suspended = true;
        snprintf(e->image, sizeof(e->image), "%s", path);
        vgpu_log(VGPU_LOG_INFO, "vGPU %s: suspended to %s (%llu bytes of data, %llu in the image)",
                 e->uuid, path, (unsigned long long)st.data_bytes,
                 (unsigned long long)st.stored_bytes);
        return engine_op_done(&st, t0);
}

/* The framebuffer request for a place (GPU, offset); the address and size never change. */
static int place_of(struct engine *e, json_t *req, struct backend_fb_req *ret, const char **why)
{
        json_t *g = json_object_get(req, "gpu_index"), *o = json_object_get(req, "fb_offset");

        *ret = e->fb_req;
        if ((g &&
             (!json_is_integer(g) || json_integer_value(g) < 0 || json_integer_value(g) > 1023)) ||
            (o && (!json_is_integer(o) || json_integer_value(o) < 0))) {
                *why = "gpu_index and fb_offset must be non-negative integers";
                return -EINVAL;
        }
        if (g)
                ret->gpu_index = (uint32_t)json_integer_value(g);
        if (o)
                ret->phys_offset = (uint64_t)json_integer_value(o);
        /* A device of the backend holds one GPU; the sim's devices are all alike. */
        if (ret->gpu_index != e->gpu_index && strcmp(e->ops->name, "sim") != 0) {
                *why = "moving a vGPU to another GPU is not supported on this backend yet";
                return -ENOTSUP;
        }
        return 0;
}

static void placed(struct engine *e, const struct backend_fb_req *req)
{
        e->fb_req = *req;
        e->gpu_index = req->gpu_index;
}

static json_t *do_resume(struct engine *e, const char *path, json_t *req)
{
        struct session *ss[ENGINE_MAX_GUESTS];
        size_t n = engine_sessions(e, ss);
        struct snap_meta meta = engine_meta(e);
        struct snap_stats st = {0};
        struct backend_fb_req fr;
        const char *why = NULL;
        uint64_t t0 = chan_now_ns();
        char err[512] = "";
        int fd, r;

        if (!e->suspended)
                return engine_op_error("resume: the vGPU is not suspended");
        if (place_of(e, req, &fr, &why) < 0)
                return engine_op_error("resume: %s", why);
        if (!path)
                path = e->image;
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return engine_op_error(
                        "resume: cannot open the image %s: %s (the vGPU stays suspended)", path,
                        strerror(errno));
        r = vdev_restore(&e->dev, &meta, &fr, fd, &st, err, sizeof(err));
        close(fd);
        if (r < 0)
                return engine_op_error("resume: %s: %s (the vGPU stays suspended)", path, err);
        placed(e, &fr);
        e->suspended = false;
        e->image[0] = '\0';
        if (e->isolate)
                engine_workers_remap(e);
        vdev_unpause(ss, n);
        vgpu_log(VGPU_LOG_INFO, "vGPU %s: resumed from %s on GPU %u", e->uuid, path, e->gpu_index);
        return engine_op_done(&st, t0);
}

/*
 * Move the running vGPU to another place (GPU, offset): its framebuffer is copied there (with
 * pre-copy while the guests run, when asked) and takes over the device address.
 */
static json_t *do_move(struct engine *e, json_t *req)
{
        struct session *ss[ENGINE_MAX_GUESTS];
        size_t n = engine_sessions(e, ss);
        struct backend_fb_req fr;
        struct move_stats st;
        const char *why = NULL;
        uint64_t t0 = chan_now_ns();
        bool precopy = json_is_true(json_object_get(req, "precopy"));
        struct engine_peers mp;
        char err[512] = "";
        int r;

        if (e->suspended)
                return engine_op_error(
                        "move: the vGPU is suspended (resume it with --gpu instead)");
        if (place_of(e, req, &fr, &why) < 0)
                return engine_op_error("move: %s", why);
        engine_peers_init(&mp, e, fr.gpu_index, NULL);
        r = vdev_move(&e->dev, ss, n, &e->fb_req, &fr, precopy, e->isolate ? &mp.vp : NULL, &st,
                      err, sizeof(err));
        if (r < 0 && !e->dev.fb.size) {
                vgpu_log(VGPU_LOG_ERROR, "vGPU %s: move failed and lost the framebuffer: %s",
                         e->uuid, err);
                return engine_op_error("move: %s", err);
        }
        if (r < 0)
                return engine_op_error("move: %s (the vGPU runs on where it was)", err);
        placed(e, &fr);
        vgpu_log(VGPU_LOG_INFO,
                 "vGPU %s: moved to GPU %u offset %llu (%s: %u rounds, %llu bytes live, %llu "
                 "stopped, paused %.1f ms)",
                 e->uuid, e->gpu_index, (unsigned long long)e->fb_req.phys_offset,
                 precopy ? "pre-copy" : "stop and copy", st.rounds,
                 (unsigned long long)st.live_bytes, (unsigned long long)st.stopped_bytes,
                 (double)st.stun_ns / 1e6);
        return json_pack("{s:b, s:s, s:i, s:I, s:I, s:I, s:f, s:f}", "ok", 1, "mode",
                         precopy ? "precopy" : "stop-and-copy", "rounds", (int)st.rounds,
                         "data_bytes", (json_int_t)(st.live_bytes + st.stopped_bytes), "live_bytes",
                         (json_int_t)st.live_bytes, "stopped_bytes", (json_int_t)st.stopped_bytes,
                         "stun_ms", (double)st.stun_ns / 1e6, "seconds",
                         (double)(chan_now_ns() - t0) / 1e9);
}

json_t *engine_suspend_op(struct engine *e, const char *op, json_t *req)
{
        json_t *p = json_object_get(req, "path"), *lv = json_object_get(req, "level");
        int level = 1;

        if (p && !json_is_string(p))
                return engine_op_error("%s: path must be a string", op);
        if (lv &&
            (!json_is_integer(lv) || json_integer_value(lv) < -7 || json_integer_value(lv) > 19))
                return engine_op_error("%s: level must be an integer from -7 to 19", op);
        if (lv)
                level = (int)json_integer_value(lv);
        if (strcmp(op, "suspend") == 0) {
                if (e->suspended)
                        return engine_op_error("suspend: the vGPU is already suspended");
                if (!p)
                        return engine_op_error("suspend: which path? (\"path\")");
                return do_suspend(e, json_string_value(p), level);
        }
        if (strcmp(op, "resume") == 0)
                return do_resume(e, p ? json_string_value(p) : NULL, req);
        return do_move(e, req);
}
