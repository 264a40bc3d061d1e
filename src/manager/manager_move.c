// SPDX-License-Identifier: Apache-2.0
// Moving a vGPU's framebuffer with its engine doing the work and the manager's lock let go:
// suspend to an image and resume (where it was or on another GPU), migration between GPUs, and
// the manager's side of migration between vgpuds (migrate_peer.c does the talking).
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "manager/engine_proc.h"
#include "manager/manager.h"
#include "manager/manager_int.h"
#include "vgpu/errors.h"

/* ---- suspend, resume, migration between GPUs (docs/migration.md) -------------------------- */

#define ENGINE_SUSPEND_MS 600000 /* writing or reading an image of many GiB takes a while */

void manager_image_path(const struct manager *m, const struct mgr_vgpu *v, char *buf, size_t len)
{
        snprintf(buf, len, "%s/images/%s.img", m->state_dir, v->uuid);
}

/*
 * Where v's last suspend wrote its image, kept beside the default one (UUID.where): a fresh
 * engine restores from there when the one that suspended it is gone.
 */
static void where_path(const struct manager *m, const struct mgr_vgpu *v, char *buf, size_t len)
{
        snprintf(buf, len, "%s/images/%s.where", m->state_dir, v->uuid);
}

static void image_note(const struct manager *m, const struct mgr_vgpu *v, const char *image)
{
        char where[4200], tmp[4300];
        int fd;

        where_path(m, v, where, sizeof(where));
        snprintf(tmp, sizeof(tmp), "%s.tmp", where);
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || write(fd, image, strlen(image)) != (ssize_t)strlen(image) || fsync(fd) < 0 ||
            rename(tmp, where) < 0)
                vgpu_log(VGPU_LOG_WARN, "vGPU %s: cannot note where its image is (%s)", v->uuid,
                         strerror(errno));
        if (fd >= 0)
                close(fd);
        unlink(tmp);
}

/* The image a fresh engine restores v from: the noted one, or the default. */
void manager_image_of(const struct manager *m, const struct mgr_vgpu *v, char *buf, size_t len)
{
        char where[4200];
        ssize_t n = -1;
        int fd;

        where_path(m, v, where, sizeof(where));
        fd = open(where, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0) {
                n = read(fd, buf, len - 1);
                close(fd);
        }
        if (n > 1 && buf[0] == '/')
                buf[n] = '\0';
        else
                manager_image_path(m, v, buf, len);
}

void manager_image_forget(const struct manager *m, const struct mgr_vgpu *v)
{
        char where[4200];

        where_path(m, v, where, sizeof(where));
        unlink(where);
}

/*
 * Ask *vp's engine to do req, with the manager's lock let go meanwhile and the vGPU marked busy
 * (an image of many GiB takes seconds). *vp is looked up again afterwards: the table may have
 * grown. An engine that died meanwhile (the watcher marked the vGPU faulted) is VGPU_EENGINE.
 */
static int engine_op(struct manager *m, struct mgr_vgpu **vp, json_t *req, json_t **ret, char *err,
                     size_t len)
{
        struct mgr_vgpu *v = *vp;
        char control[256], uuid[40];
        int r;

        manager_engine_path(m, v->uuid, "sock", control, sizeof(control));
        snprintf(uuid, sizeof(uuid), "%s", v->uuid);
        v->busy = true;
        manager_unlock(m);
        r = engine_request(control, req, ENGINE_SUSPEND_MS, ret, err, len);
        manager_lock(m);
        json_decref(req);
        *vp = v = manager_vgpu_locked(m, uuid); /* a busy vGPU is never destroyed */
        v->busy = false;
        if (r == 0 && v->state == MGR_FAILED) {
                json_decref(*ret);
                snprintf(err, len, "its engine died");
                r = -EIO;
        }
        return r < 0 ? VGPU_EENGINE : 0;
}

int manager_suspend_locked(struct manager *m, struct mgr_vgpu *v, const char *path, json_t **ret,
                           char *err, size_t len)
{
        char def[4096], dir[4096];
        int r;

        err[0] = '\0';
        if (v->busy)
                return VGPU_EBUSY;
        if (v->state == MGR_SUSPENDED)
                return VGPU_ESUSPENDED;
        if (v->state != MGR_RUNNING || m->no_engines)
                return VGPU_ENOT_RUNNING;
        if (!path) {
                snprintf(dir, sizeof(dir), "%s/images", m->state_dir);
                if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                        snprintf(err, len, "%s: %s", dir, strerror(errno));
                        return -errno;
                }
                manager_image_path(m, v, def, sizeof(def));
                unlink(def); /* an old image of this vGPU: the new one replaces it */
                path = def;
        }
        r = engine_op(m, &v, json_pack("{s:s, s:s}", "op", "suspend", "path", path), ret, err, len);
        if (r < 0)
                return r;
        v->state = MGR_SUSPENDED;
        if (manager_persist_vgpu(m, v, NULL) < 0)
                vgpu_log(VGPU_LOG_WARN, "vGPU %s: state not updated", v->uuid);
        image_note(m, v, path);
        json_object_set_new(*ret, "image", json_string(path));
        vgpu_log(VGPU_LOG_INFO, "vGPU %s suspended to %s", v->uuid, path);
        return 0;
}

/*
 * Place v on GPU g for a move: its handle and device address stay; the layout decides the
 * offset. 0 and *ret, or the layout's code.
 */
static int place_on(struct manager *m, struct mgr_vgpu *v, struct mgr_gpu *g,
                    const struct vgpu_type **ret_type, struct layout_vgpu *ret)
{
        const struct gpu_model *from = m->gpus[v->gpu].model;
        const struct vgpu_type *t = NULL;
        int r = VGPU_ETYPE_MODEL;

        /* the smallest type that fits and the layout takes: one that fits, then a bigger one */
        for (uint64_t min = v->fb_bytes;; min = catalog_type_fb_bytes(t) + 1) {
                t = manager_target_type(from, v->type, g->model, min);
                if (!t)
                        return r;
                r = layout_create(&g->layout, t, &LAYOUT_REQ_ANY, v->handle, ret);
                if (r == 0) {
                        *ret_type = t;
                        return 0;
                }
                if (from == g->model)
                        return r;
        }
}

const struct vgpu_type *manager_target_type(const struct gpu_model *from, const struct vgpu_type *t,
                                            const struct gpu_model *to, uint64_t min_bytes)
{
        const struct vgpu_type *best = NULL;

        if (from == to)
                return catalog_type_fb_bytes(t) >= min_bytes ? t : NULL;
        /* the guests' code (PTX, or binaries for the source) runs on an equal or newer GPU */
        if (t->cls != CATALOG_TIME_SLICED ||
            to->cc_major * 10 + to->cc_minor < from->cc_major * 10 + from->cc_minor)
                return NULL;
        for (size_t i = 0; i < to->n_types; i++) {
                const struct vgpu_type *c = &to->types[i];

                if (c->cls == t->cls && c->media_ext == t->media_ext &&
                    catalog_type_fb_bytes(c) >= min_bytes && (!best || c->fb_gib < best->fb_gib))
                        best = c;
        }
        return best;
}

/* v now lives at place p of GPU g: the old place goes, the scheduler follows, the row too. */
static void moved(struct manager *m, struct mgr_vgpu *v, struct mgr_gpu *g,
                  const struct vgpu_type *t, const struct layout_vgpu *p)
{
        manager_sched_detach(m, v);
        layout_destroy(&m->gpus[v->gpu].layout, v->handle);
        if (t != v->type)
                vgpu_log(VGPU_LOG_INFO, "vGPU %s: %s on %s becomes %s on %s", v->uuid,
                         v->type->name, m->gpus[v->gpu].model->id, t->name, g->model->id);
        v->gpu = g->index;
        v->type = t;
        v->place = *p;
        manager_sched_attach(m, v);
}

static json_t *place_req(const char *op, const struct mgr_gpu *g, const struct layout_vgpu *p)
{
        return json_pack("{s:s, s:i, s:I}", "op", op, "gpu_index", (int)g->index, "fb_offset",
                         (json_int_t)p->fb_offset);
}

/*
 * A suspended vGPU whose engine is gone: a fresh engine (on g, when given) restores it from its
 * image, the guests' sessions too; the guests that are still there re-attach (docs/migration.md).
 * On failure it stays suspended, without an engine.
 */
static int resume_fresh(struct manager *m, struct mgr_vgpu *v, struct mgr_gpu *g, json_t **ret,
                        char *err, size_t len)
{
        const struct vgpu_type *nt;
        struct layout_vgpu np;
        char img[4096];
        int r;

        manager_image_of(m, v, img, sizeof(img));
        if (access(img, R_OK) < 0) {
                snprintf(err, len, "its engine is gone and its image %s is not there", img);
                return VGPU_EENGINE;
        }
        if (g) {
                r = place_on(m, v, g, &nt, &np);
                if (r < 0)
                        return r;
                moved(m, v, g, nt, &np);
                manager_sched_detach(m, v);
        }
        r = manager_start_engine(m, v, err, len);
        if (r < 0)
                return r;
        r = engine_op(m, &v, json_pack("{s:s, s:s}", "op", "restore", "path", img), ret, err, len);
        if (r < 0) {
                manager_stop_engine(m, v->uuid, v->engine_pid);
                v->engine_pid = 0;
                return r;
        }
        v->state = MGR_RUNNING;
        manager_sched_attach(m, v);
        if (manager_persist_vgpu(m, v, NULL) < 0)
                vgpu_log(VGPU_LOG_WARN, "vGPU %s: state not updated", v->uuid);
        manager_image_forget(m, v);
        manager_image_path(m, v, img, sizeof(img));
        unlink(img); /* the default image is spent; one the user named stays theirs */
        vgpu_log(VGPU_LOG_INFO, "vGPU %s restored from %s by a fresh engine on GPU %u", v->uuid,
                 img, v->gpu);
        return 0;
}

int manager_resume_locked(struct manager *m, struct mgr_vgpu *v, struct mgr_gpu *g, json_t **ret,
                          char *err, size_t len)
{
        struct layout_vgpu np;
        const struct vgpu_type *nt = v->type;
        char img[4096];
        bool move = g && g->index != v->gpu;
        int r;

        err[0] = '\0';
        if (v->busy)
                return VGPU_EBUSY;
        if (v->state != MGR_SUSPENDED)
                return VGPU_ENOT_SUSPENDED;
        if (!m->no_engines && !engine_alive(v->engine_pid))
                return resume_fresh(m, v, move ? g : NULL, ret, err, len);
        if (!move) {
                g = &m->gpus[v->gpu];
                np = v->place;
        } else {
                r = place_on(m, v, g, &nt, &np);
                if (r < 0)
                        return r;
        }
        r = engine_op(m, &v, place_req("resume", g, &np), ret, err, len);
        if (r < 0) {
                if (move)
                        layout_destroy(&g->layout, v->handle);
                return r;
        }
        if (move)
                moved(m, v, g, nt, &np);
        v->state = MGR_RUNNING;
        if (manager_persist_vgpu(m, v, NULL) < 0)
                vgpu_log(VGPU_LOG_WARN, "vGPU %s: state not updated", v->uuid);
        manager_image_path(m, v, img, sizeof(img));
        unlink(img); /* the default image is spent; one the user named stays theirs */
        manager_image_forget(m, v);
        vgpu_log(VGPU_LOG_INFO, "vGPU %s resumed on GPU %u", v->uuid, v->gpu);
        return 0;
}

/* ---- migration between vgpuds (migrate_peer.c) ------------------------------------------- */

int manager_incoming_locked(struct manager *m, const struct mgr_incoming *in, struct mgr_vgpu **ret,
                            char *err, size_t len)
{
        struct mgr_vgpu v = {0}, *slot = NULL;
        int r = VGPU_ETYPE_MODEL;

        err[0] = '\0';
        if (!manager_uuid_valid(in->uuid))
                return -EINVAL;
        if (manager_vgpu_locked(m, in->uuid))
                return VGPU_EEXIST;
        if (m->no_engines)
                return VGPU_ENOT_RUNNING;
        /* an address this vgpud could have given: in the GPUs' windows, 2 MiB aligned */
        if (in->fb_bytes == 0 || in->device_address % (UINT64_C(2) << 20) ||
            in->device_address < LAYOUT_VA_BASE ||
            in->device_address + in->fb_bytes < in->device_address ||
            in->device_address + in->fb_bytes >
                    layout_device_address((VA_ALIASES + 1) * VA_WINDOWS_PER_ALIAS, 0)) {
                snprintf(err, len,
                         "its device addresses 0x%" PRIx64 "..+%" PRIu64 " are not a vGPU's",
                         in->device_address, in->fb_bytes);
                return -EINVAL;
        }
        /*
         * Another vGPU here may have the same addresses (each vgpud gives them from its GPUs'
         * windows): that is allowed, their engines keep them apart; one process just cannot use
         * both (the guest driver refuses the second, docs/migration.md).
         */
        if (manager_address_taken(m, in->device_address, in->fb_bytes))
                vgpu_log(VGPU_LOG_WARN,
                         "incoming vGPU %s shares device addresses with a vGPU here: a process "
                         "can use only one of them",
                         in->uuid);
        snprintf(v.uuid, sizeof(v.uuid), "%s", in->uuid);
        for (char *p = v.uuid; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        v.handle = m->next_handle;
        /* the first GPU with a type that holds its framebuffer, and room for it */
        for (size_t i = 0; i < m->n_gpus && !v.type; i++) {
                struct mgr_gpu *g = &m->gpus[i];
                const struct vgpu_type *t = NULL;

                for (uint64_t min = in->fb_bytes;; min = catalog_type_fb_bytes(t) + 1) {
                        t = manager_target_type(in->from, in->type, g->model, min);
                        if (!t)
                                break;
                        r = layout_create(&g->layout, t, &LAYOUT_REQ_ANY, v.handle, &v.place);
                        if (r == 0) {
                                v.type = t;
                                v.gpu = g->index;
                                break;
                        }
                        if (in->from == g->model)
                                break;
                }
        }
        if (!v.type) {
                snprintf(err, len,
                         "no GPU here has room for a time-sliced type with at least %" PRIu64
                         " MiB and compute capability %u.%u or newer",
                         in->fb_bytes >> 20, in->from->cc_major, in->from->cc_minor);
                return r < 0 ? r : VGPU_ETYPE_MODEL;
        }
        v.owner_uid = in->owner_uid;
        v.device_address = in->device_address;
        v.fb_bytes = in->fb_bytes;
        v.state = MGR_CREATING; /* a crash before the commit: the next start removes it */
        v.busy = true;
        manager_utc_now(v.created_at, sizeof(v.created_at));
        r = manager_persist_vgpu(m, &v, NULL);
        if (r == 0)
                r = manager_start_engine(m, &v, err, len);
        if (r == 0 && !(slot = manager_vgpu_append(m)))
                r = -ENOMEM;
        if (r < 0) {
                if (v.engine_pid)
                        manager_stop_engine(m, v.uuid, v.engine_pid);
                manager_unpersist_vgpu(m, &v, false);
                layout_destroy(&m->gpus[v.gpu].layout, v.handle);
                return r;
        }
        *slot = v;
        m->next_handle++;
        *ret = slot;
        vgpu_log(VGPU_LOG_INFO, "incoming vGPU %s (%s) on GPU %u at 0x%" PRIx64, v.uuid,
                 v.type->name, v.gpu, v.device_address);
        return 0;
}

void manager_incoming_end_locked(struct manager *m, struct mgr_vgpu *v, bool commit)
{
        v->busy = false;
        if (commit) {
                v->state = MGR_RUNNING;
                if (manager_persist_vgpu(m, v, NULL) < 0)
                        vgpu_log(VGPU_LOG_WARN, "vGPU %s: state not updated", v->uuid);
                manager_sched_attach(m, v);
                vgpu_log(VGPU_LOG_INFO, "vGPU %s moved here from another vgpud", v->uuid);
                return;
        }
        manager_stop_engine(m, v->uuid, v->engine_pid);
        manager_unpersist_vgpu(m, v, false);
        layout_destroy(&m->gpus[v->gpu].layout, v->handle);
        vgpu_log(VGPU_LOG_INFO, "incoming vGPU %s dropped", v->uuid);
        manager_vgpu_remove(m, v);
}

int manager_moved_away_locked(struct manager *m, struct mgr_vgpu *v)
{
        vgpu_log(VGPU_LOG_INFO, "vGPU %s moved to another vgpud", v->uuid);
        v->busy = false;
        return manager_destroy_locked(m, v, true);
}

int manager_migrate_gpu_locked(struct manager *m, struct mgr_vgpu *v, struct mgr_gpu *g,
                               bool precopy, json_t **ret, char *err, size_t len)
{
        struct layout_vgpu np;
        const struct vgpu_type *nt = NULL;
        json_t *req;
        int r;

        err[0] = '\0';
        if (v->busy)
                return VGPU_EBUSY;
        if (v->state == MGR_SUSPENDED)
                return manager_resume_locked(m, v, g, ret, err, len);
        if (v->state != MGR_RUNNING || m->no_engines)
                return VGPU_ENOT_RUNNING;
        if (g->index == v->gpu)
                return VGPU_ESAME_GPU;
        r = place_on(m, v, g, &nt, &np);
        if (r < 0)
                return r;
        req = place_req("move", g, &np);
        json_object_set_new(req, "precopy", json_boolean(precopy));
        r = engine_op(m, &v, req, ret, err, len);
        if (r < 0) {
                layout_destroy(&g->layout, v->handle);
                return r;
        }
        moved(m, v, g, nt, &np);
        if (manager_persist_vgpu(m, v, NULL) < 0)
                vgpu_log(VGPU_LOG_WARN, "vGPU %s: state not updated", v->uuid);
        vgpu_log(VGPU_LOG_INFO, "vGPU %s migrated to GPU %u", v->uuid, v->gpu);
        return 0;
}
