// SPDX-License-Identifier: Apache-2.0
// A session's state as bytes, for a migration to another engine (docs/migration.md): its
// contexts, modules (the image the guest loaded and where its variables were placed), functions
// and the commands waiting in its streams. The other side builds the session again with the same
// handles, and trusts none of it: every count, index, length and reference is checked.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/log.h"
#include "engine/session.h"
#include "engine/session_int.h"

#define SES_MAGIC     0x53455356u /* "VSES" */
#define SES_VERSION   1u
#define SES_IMAGE_MAX (UINT64_C(256) << 20) /* a module image, at most */
#define SES_NAME_MAX  255u
#define SES_TOTAL_MAX (UINT64_C(1) << 30)

/* ---- writing ------------------------------------------------------------------------------ */

struct wbuf {
        uint8_t *p;
        size_t len, cap;
        bool failed;
};

static void put(struct wbuf *w, const void *p, size_t len)
{
        if (w->failed)
                return;
        if (w->len + len > w->cap) {
                size_t cap = w->cap ? w->cap : 4096;
                uint8_t *np;

                while (cap < w->len + len)
                        cap *= 2;
                np = realloc(w->p, cap);
                if (!np) {
                        w->failed = true;
                        return;
                }
                w->p = np;
                w->cap = cap;
        }
        memcpy(w->p + w->len, p, len);
        w->len += len;
}

static void put32(struct wbuf *w, uint32_t v)
{
        put(w, &v, sizeof(v));
}

static void put64(struct wbuf *w, uint64_t v)
{
        put(w, &v, sizeof(v));
}

int session_export(struct session *s, uint8_t **ret, size_t *ret_len)
{
        struct wbuf w = {0};
        uint32_t n_queued = 0;

        if (getrandom(s->token, sizeof(s->token), 0) != (ssize_t)sizeof(s->token))
                return -EIO;
        put32(&w, SES_MAGIC);
        put32(&w, SES_VERSION);
        put32(&w, s->id);
        put32(&w, (uint32_t)s->pid);
        put32(&w, (uint32_t)s->uid);
        put32(&w, (uint32_t)s->deferred);
        put64(&w, s->last_seq);
        put64(&w, s->work);
        put(&w, s->token, sizeof(s->token));
        for (uint32_t i = 0; i < 64; i++) {
                put32(&w, s->ctxs[i].gen);
                put32(&w, s->ctxs[i].live);
                put32(&w, (uint32_t)s->ctxs[i].sticky);
                put32(&w, (uint32_t)s->ctxs[i].deferred);
        }
        put32(&w, s->n_mods);
        for (uint32_t i = 0; i < s->n_mods; i++) {
                const struct smod *m = &s->mods[i];

                put32(&w, m->gen);
                put32(&w, m->live);
                if (!m->live)
                        continue;
                if (m->n_vars) {
                        /* variables a backend placed outside the allocator (cuda) cannot be
                         * placed again by the other side */
                        free(w.p);
                        return -ENOTSUP;
                }
                put32(&w, m->ctx);
                put64(&w, m->image_len);
                put(&w, m->image, m->image_len);
                put32(&w, m->ga->n_allocs);
                for (uint32_t k = 0; k < m->ga->n_allocs; k++) {
                        put64(&w, m->ga->allocs[k].base);
                        put64(&w, m->ga->allocs[k].size);
                        /* the load writes their initial values on the other side: what the
                         * guest made of them goes again in the last round */
                        fbmem_mark(&s->dev->mem, m->ga->allocs[k].base, m->ga->allocs[k].size);
                }
        }
        put32(&w, s->n_funcs);
        for (uint32_t i = 0; i < s->n_funcs; i++) {
                const struct sfunc *f = &s->funcs[i];
                uint32_t nl = f->live && f->name ? (uint32_t)strlen(f->name) : 0;

                put32(&w, f->gen);
                put32(&w, f->live);
                if (!f->live)
                        continue;
                put32(&w, f->mod);
                put32(&w, nl);
                put(&w, f->name, nl);
        }
        for (uint32_t slot = 0; slot < VGPU_STREAMS; slot++) {
                for (const struct scmd *c = s->streams[slot].head; c; c = c->next)
                        n_queued++;
        }
        put32(&w, n_queued);
        for (uint32_t slot = 0; slot < VGPU_STREAMS; slot++) {
                for (const struct scmd *c = s->streams[slot].head; c; c = c->next) {
                        put(&w, &c->m, sizeof(c->m));
                        put(&w, c->req, c->m.len);
                }
        }
        put32(&w, s->next_slot);
        put32(&w, SES_MAGIC);
        if (w.failed) {
                free(w.p);
                return -ENOMEM;
        }
        *ret = w.p;
        *ret_len = w.len;
        return 0;
}

/* ---- reading ------------------------------------------------------------------------------ */

struct rbuf {
        const uint8_t *p;
        size_t len, off;
        bool bad;
};

static const void *take(struct rbuf *r, size_t len)
{
        const void *p;

        if (r->bad || r->len - r->off < len) {
                r->bad = true;
                return NULL;
        }
        p = r->p + r->off;
        r->off += len;
        return p;
}

static uint32_t get32(struct rbuf *r)
{
        const void *p = take(r, 4);
        uint32_t v = 0;

        if (p)
                memcpy(&v, p, 4);
        return v;
}

static uint64_t get64(struct rbuf *r)
{
        const void *p = take(r, 8);
        uint64_t v = 0;

        if (p)
                memcpy(&v, p, 8);
        return v;
}

static int fail(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t len, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(err, len, fmt, ap);
        va_end(ap);
        return -EBADMSG;
}

/*
 * What import_module took for a module it did not load: session_free frees only the live
 * modules, so a module refused half-way gives back its image and allocator here.
 */
static void module_drop(struct smod *m)
{
        if (m->ga)
                free(m->ga->allocs);
        free(m->ga);
        free(m->image);
        m->ga = NULL;
        m->image = NULL;
        m->image_len = 0;
}

static int import_module(struct session *s, struct rbuf *r, uint32_t i, char *err, size_t len)
{
        struct smod *m = &s->mods[i];
        struct backend_allocator alloc;
        uint64_t globals = 0, image_len;
        const void *image;
        char log[256] = "";
        uint32_t n;
        int e;

        m->ctx = get32(r);
        image_len = get64(r);
        if (r->bad || m->ctx >= 64 || !s->ctxs[m->ctx].live || image_len == 0 ||
            image_len > SES_IMAGE_MAX)
                return fail(err, len, "session %u: module %u is malformed", s->id, i);
        image = take(r, image_len);
        n = get32(r);
        if (r->bad || n > MAX_OBJS)
                return fail(err, len, "session %u: module %u is malformed", s->id, i);
        m->ga = calloc(1, sizeof(*m->ga));
        m->image = malloc(image_len);
        if (!m->ga || !m->image) {
                e = -ENOMEM;
                goto err_drop;
        }
        memcpy(m->image, image, image_len);
        m->image_len = image_len;
        *m->ga = (struct galloc){.s = s, .owner = owner_of(s, m->ctx), .replay = true};
        m->ga->allocs = calloc(n ? n : 1, sizeof(*m->ga->allocs));
        if (!m->ga->allocs) {
                e = -ENOMEM;
                goto err_drop;
        }
        for (uint32_t k = 0; k < n; k++) {
                m->ga->allocs[k].base = get64(r);
                m->ga->allocs[k].size = get64(r);
        }
        m->ga->n_allocs = n;
        if (r->bad) {
                e = fail(err, len, "session %u: module %u is malformed", s->id, i);
                goto err_drop;
        }
        alloc = (struct backend_allocator){
                .alloc = session_galloc_alloc, .free = session_galloc_free, .ctx = m->ga};
        e = s->dev->ops->module_load(s->dev->bdev, m->image, image_len, &alloc, &m->mod, &globals,
                                     log, sizeof(log));
        if (e < 0 || m->ga->next != m->ga->n_allocs) {
                if (e >= 0)
                        s->dev->ops->module_free(m->mod);
                m->mod = NULL;
                snprintf(err, len, "session %u: module %u does not load here as it did there%s%s",
                         s->id, i, log[0] ? ": " : "", log);
                e = e < 0 && e != -EPROTO ? e : -EBADMSG;
                goto err_drop;
        }
        m->ga->replay = false; /* from now on, as any module's */
        m->live = true;
        return 0;

err_drop:
        module_drop(m);
        return e;
}

static int import_func(struct session *s, struct rbuf *r, uint32_t i, char *err, size_t len)
{
        struct sfunc *f = &s->funcs[i];
        struct backend_func *k;
        const char *name;
        uint32_t nl;
        int e;

        f->mod = get32(r);
        nl = get32(r);
        if (r->bad || f->mod >= s->n_mods || !s->mods[f->mod].live || nl == 0 || nl > SES_NAME_MAX)
                return fail(err, len, "session %u: function %u is malformed", s->id, i);
        name = take(r, nl);
        if (!name || memchr(name, '\0', nl))
                return fail(err, len, "session %u: function %u is malformed", s->id, i);
        f->name = strndup(name, nl);
        if (!f->name)
                return -ENOMEM;
        e = s->dev->ops->module_function(s->mods[f->mod].mod, f->name, &k);
        if (e < 0)
                return fail(err, len, "session %u: function %s is not in its module here", s->id,
                            f->name);
        f->k = k;
        s->dev->ops->func_info(k, &f->info);
        /* what op_module_function would not have given the guest a handle for */
        if (f->info.n_params > VGPU_MAX_PARAMS || f->info.param_size > VGPU_MAX_PARAM_BYTES)
                return fail(err, len, "session %u: function %s takes too many parameters", s->id,
                            f->name);
        for (uint32_t p = 0; p < f->info.n_params; p++) {
                uint32_t off, size;

                if (s->dev->ops->func_param(k, p, &off, &size) < 0 || off > f->info.param_size ||
                    size > f->info.param_size - off)
                        return fail(err, len, "session %u: function %s has a bad parameter", s->id,
                                    f->name);
        }
        f->live = true;
        return 0;
}

static int import_queue(struct session *s, struct rbuf *r, char *err, size_t len)
{
        uint32_t n = get32(r);

        if (r->bad || n > QUEUED_MAX)
                return fail(err, len, "session %u: its queued commands are malformed", s->id);
        for (uint32_t i = 0; i < n; i++) {
                const struct vgpu_msg *mp = take(r, sizeof(struct vgpu_msg));
                struct vgpu_msg m;
                struct sstream *st;
                struct scmd *c;
                const void *req;

                if (!mp)
                        break;
                memcpy(&m, mp, sizeof(m));
                if (m.stream >= VGPU_STREAMS || m.len > MSG_CAP || m.seq == 0 ||
                    m.seq > s->last_seq || s->queued_bytes + m.len > QUEUED_BYTES_MAX ||
                    !(req = take(r, m.len)))
                        return fail(err, len, "session %u: queued command %u is malformed", s->id,
                                    i);
                c = malloc(sizeof(*c) + m.len);
                if (!c)
                        return -ENOMEM;
                c->next = NULL;
                c->m = m;
                memcpy(c->req, req, m.len);
                st = &s->streams[m.stream];
                /* each stream's commands in the order the guest queued them */
                if (st->tail && st->tail->m.seq >= m.seq) {
                        free(c);
                        return fail(err, len, "session %u: queued commands out of order", s->id);
                }
                if (st->tail)
                        st->tail->next = c;
                else
                        st->head = c;
                st->tail = c;
                s->active |= UINT64_C(1) << m.stream;
                s->n_queued++;
                s->queued_bytes += m.len;
        }
        return r->bad ? fail(err, len, "session %u: truncated", s->id) : 0;
}

int session_image_peek(const void *p, size_t len, struct session_image_head *ret)
{
        struct rbuf r = {.p = p, .len = len};
        struct session_image_head h = {0};
        const void *tok;

        if (len > SES_TOTAL_MAX || get32(&r) != SES_MAGIC || get32(&r) != SES_VERSION)
                return -EBADMSG;
        h.id = get32(&r);
        h.pid = (pid_t)get32(&r);
        h.uid = (uid_t)get32(&r);
        get32(&r); /* deferred */
        get64(&r); /* last_seq */
        get64(&r); /* work */
        tok = take(&r, sizeof(h.token));
        if (r.bad || !tok || h.id == 0)
                return -EBADMSG;
        memcpy(h.token, tok, sizeof(h.token));
        *ret = h;
        return 0;
}

int session_import(struct vgpu_dev *dev, const void *p, size_t len, struct session **ret, char *err,
                   size_t errlen)
{
        struct rbuf r = {.p = p, .len = len};
        struct session *s = NULL;
        uint32_t id, pid, uid, n;
        const void *tok;
        int e;

        if (len > SES_TOTAL_MAX || get32(&r) != SES_MAGIC || get32(&r) != SES_VERSION)
                return fail(err, errlen, "not a session image of this version");
        id = get32(&r);
        pid = get32(&r);
        uid = get32(&r);
        if (r.bad || id == 0)
                return fail(err, errlen, "session image is malformed");
        e = session_create(dev, id, (pid_t)pid, (uid_t)uid, &s);
        if (e < 0) {
                snprintf(err, errlen, "session %u: %s", id, strerror(-e));
                return e;
        }
        s->deferred = (int)get32(&r);
        if (s->deferred > 0)
                r.bad = true;
        s->last_seq = get64(&r);
        s->work = get64(&r);
        tok = take(&r, sizeof(s->token));
        if (tok)
                memcpy(s->token, tok, sizeof(s->token));
        for (uint32_t i = 0; i < 64; i++) {
                uint32_t live;

                s->ctxs[i].gen = get32(&r);
                live = get32(&r);
                s->ctxs[i].sticky = (int)get32(&r);
                s->ctxs[i].deferred = (int)get32(&r);
                /* a context's sticky error is a kernel fault, its deferred one an error */
                if (live > 1 || (s->ctxs[i].sticky != 0 && !backend_is_fault(s->ctxs[i].sticky)) ||
                    s->ctxs[i].deferred > 0)
                        r.bad = true;
                s->ctxs[i].live = live == 1;
        }
        n = get32(&r);
        if (r.bad || n > MAX_OBJS) {
                e = fail(err, errlen, "session %u: malformed contexts or module table", id);
                goto out;
        }
        s->mods = calloc(n ? n : 1, sizeof(*s->mods));
        if (!s->mods) {
                e = -ENOMEM;
                goto out;
        }
        s->n_mods = n;
        for (uint32_t i = 0; i < n; i++) {
                uint32_t live;

                s->mods[i].gen = get32(&r);
                live = get32(&r);
                if (r.bad || live > 1) {
                        e = fail(err, errlen, "session %u: module %u is malformed", id, i);
                        goto out;
                }
                if (live && (e = import_module(s, &r, i, err, errlen)) < 0)
                        goto out;
        }
        n = get32(&r);
        if (r.bad || n > MAX_OBJS) {
                e = fail(err, errlen, "session %u: malformed function table", id);
                goto out;
        }
        s->funcs = calloc(n ? n : 1, sizeof(*s->funcs));
        if (!s->funcs) {
                e = -ENOMEM;
                goto out;
        }
        s->n_funcs = n;
        for (uint32_t i = 0; i < n; i++) {
                uint32_t live;

                s->funcs[i].gen = get32(&r);
                live = get32(&r);
                if (r.bad || live > 1) {
                        e = fail(err, errlen, "session %u: function %u is malformed", id, i);
                        goto out;
                }
                if (live && (e = import_func(s, &r, i, err, errlen)) < 0)
                        goto out;
        }
        e = import_queue(s, &r, err, errlen);
        if (e < 0)
                goto out;
        s->next_slot = get32(&r) % VGPU_STREAMS;
        if (get32(&r) != SES_MAGIC || r.bad || r.off != r.len) {
                e = fail(err, errlen, "session %u: malformed end", id);
                goto out;
        }
        *ret = s;
        return 0;
out:
        if (e == -ENOMEM)
                snprintf(err, errlen, "session %u: out of memory", id);
        session_free(s);
        return e;
}
