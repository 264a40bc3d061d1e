// SPDX-License-Identifier: Apache-2.0
// Migration between vgpuds (migrate_peer.h). After the handshake of common/migwire.h:
//   source: {"op": "offer", "uuid", "model", "type", "fb_bytes", "device_address", "owner_uid"}
//   target: {"ok": true, "gpu", "type"} once it placed the vGPU and started its engine, or
//           {"ok": false, "error", "code"}
// then each vgpud hands the connection (its fd, key and sequence numbers) to its engine, which
// go on with engine/transfer.c. The target's vGPU stays "creating" until its engine says the
// source committed; a failure or a crash before that removes it, and the source runs on.
#include "manager/migrate_peer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/log.h"
#include "common/migwire.h"
#include "core/catalog.h"
#include "manager/engine_proc.h"
#include "vgpu/errors.h"

#define PEER_AUTH_MS      10000
#define PEER_ENGINE_MS    900000 /* a transfer of many GiB, with pre-copy rounds */
#define PEER_MAX_INCOMING 4

struct migrate_peer {
        struct manager *m;
        uint8_t secret[MW_SECRET_MAX];
        size_t secret_len;
        int listen_fd;
        int stop_pipe[2];
        pthread_t thread;
        bool listening;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        unsigned incoming; /* connections being served */
        bool guests;       /* a listener for remote guests, not migrations */
        int guest_port;    /* where this vgpud takes remote guests (told to migrating peers) */
};

struct incoming {
        struct migrate_peer *p;
        int fd;
};

/* The engine's request that takes over c: the connection's fd travels alongside. */
static json_t *handover(const char *op, const struct mw_conn *c)
{
        char hex[65];

        for (int i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", c->key[i]);
        return json_pack("{s:s, s:s, s:I, s:I, s:b}", "op", op, "key", hex, "tx_seq",
                         (json_int_t)c->tx_seq, "rx_seq", (json_int_t)c->rx_seq, "server",
                         mw_conn_is_server(c));
}

/* ---- the target --------------------------------------------------------------------------- */

static json_t *refusal(int code, const char *msg)
{
        return json_pack("{s:b, s:s, s:s}", "ok", 0, "error", msg, "code",
                         code < 0 ? vgpu_error_name(code) : "INTERNAL");
}

/* Check an offer and place its vGPU. 0 and *ret_uuid's vGPU made, or a refusal in *ret_no. */
static int take_offer(struct migrate_peer *p, json_t *o, char *uuid, size_t uuid_len, char *control,
                      size_t control_len, json_t **ret_no)
{
        const char *u = NULL, *model = NULL, *type = NULL;
        json_int_t fb = 0, addr = 0, owner = -1;
        struct mgr_incoming in = {0};
        struct mgr_vgpu *v = NULL;
        char err[512] = "", msg[600];
        int r;

        if (json_unpack(o, "{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "op", &(const char *){0}, "uuid",
                        &u, "model", &model, "type", &type, "fb_bytes", &fb, "device_address",
                        &addr, "owner_uid", &owner) != 0 ||
            strcmp(json_string_value(json_object_get(o, "op")), "offer") != 0 || fb <= 0 ||
            addr <= 0 || owner < 0) {
                *ret_no = refusal(-EINVAL, "malformed offer");
                return -EINVAL;
        }
        in.from = catalog_find_model(model);
        if (!in.from)
                in.from = catalog_parse_generic(model);
        in.type = in.from ? catalog_find_type(in.from, type) : NULL;
        if (!in.type) {
                snprintf(msg, sizeof(msg), "unknown GPU model or vGPU type here: %s %s", model,
                         type);
                *ret_no = refusal(VGPU_EUNKNOWN_TYPE, msg);
                return VGPU_EUNKNOWN_TYPE;
        }
        in.uuid = u;
        in.fb_bytes = (uint64_t)fb;
        in.device_address = (uint64_t)addr;
        in.owner_uid = owner;
        manager_lock(p->m);
        r = manager_incoming_locked(p->m, &in, &v, err, sizeof(err));
        if (r == 0) {
                snprintf(uuid, uuid_len, "%s", v->uuid);
                manager_control_socket(p->m, v, control, control_len);
                *ret_no = json_pack("{s:b, s:i, s:s, s:i}", "ok", 1, "gpu", (int)v->gpu, "type",
                                    v->type->name, "guest_port", p->guest_port);
        }
        manager_unlock(p->m);
        if (r < 0) {
                snprintf(msg, sizeof(msg), "vGPU %s: %s", u, err[0] ? err : vgpu_strerror(r));
                *ret_no = refusal(r, msg);
        }
        return r;
}

/*
 * A remote guest (docs/remote.md): {"op": "attach", "uuid"} or {"op": "reattach", "uuid",
 * "token"} after its vGPU moved here. Its engine takes the connection and says hello; a refusal
 * before that is answered here.
 */
static void take_guest(struct migrate_peer *p, json_t *o, struct mw_conn *c)
{
        const char *op = json_string_value(json_object_get(o, "op"));
        const char *uuid = json_string_value(json_object_get(o, "uuid"));
        const char *tok = json_string_value(json_object_get(o, "token"));
        struct mgr_vgpu *v = NULL;
        json_t *req, *info = NULL;
        char control[256], err[512] = "";
        int r = -EINVAL;

        if (!op || !uuid || (strcmp(op, "attach") != 0 && strcmp(op, "reattach") != 0) ||
            (strcmp(op, "reattach") == 0 && !tok)) {
                snprintf(err, sizeof(err), "expected {\"op\": \"attach\", \"uuid\": ...}");
        } else {
                manager_lock(p->m);
                v = manager_vgpu_locked(p->m, uuid);
                if (!v)
                        snprintf(err, sizeof(err), "no vGPU %s here", uuid);
                else if (!tok && (v->state != MGR_RUNNING || v->busy))
                        snprintf(err, sizeof(err), "vGPU %s is %s", uuid,
                                 v->busy ? "busy" : manager_state_name(v->state));
                else if (tok && v->state != MGR_RUNNING && v->state != MGR_CREATING)
                        /* a guest whose vGPU is arriving: its engine answers once it came */
                        snprintf(err, sizeof(err), "vGPU %s is %s", uuid,
                                 manager_state_name(v->state));
                else
                        manager_control_socket(p->m, v, control, sizeof(control));
                r = v && !err[0] ? 0 : -ENOENT;
                manager_unlock(p->m);
        }
        if (r == 0) {
                req = handover("guest_tcp", c);
                if (tok)
                        json_object_set_new(req, "token", json_string(tok));
                /* a re-attach copies the guest's channel (tens of MiB) meanwhile */
                r = engine_request_fd(control, req, c->fd, tok ? PEER_ENGINE_MS : PEER_AUTH_MS,
                                      &info, err, sizeof(err));
                json_decref(req);
                json_decref(info);
                if (r == 0) {
                        vgpu_log(VGPU_LOG_INFO, "vGPU %s: a remote guest %s", uuid,
                                 tok ? "re-attached" : "attached");
                        return;
                }
                if (r == -ETIMEDOUT) {
                        /* the engine may be using the connection: nothing more from here */
                        vgpu_log(VGPU_LOG_WARN, "remote guest of vGPU %s: %s", uuid, err);
                        return;
                }
        }
        vgpu_log(VGPU_LOG_WARN, "remote guest refused: %s", err);
        req = json_pack("{s:b, s:s}", "ok", 0, "error", err);
        mw_send_json(c, req, err, sizeof(err));
        json_decref(req);
}

static void *serve_incoming(void *arg)
{
        struct incoming *in = arg;
        struct migrate_peer *p = in->p;
        struct mw_conn c;
        json_t *offer = NULL, *answer = NULL, *info = NULL;
        char err[512] = "", uuid[40] = "", control[256];
        int r;

        r = mw_auth_server(&c, in->fd, p->secret, p->secret_len, PEER_AUTH_MS, err, sizeof(err));
        if (r < 0) {
                vgpu_log(VGPU_LOG_WARN, "migration: refused a peer: %s", err);
                close(in->fd);
                goto out;
        }
        r = mw_recv_json(&c, &offer, err, sizeof(err));
        if (r == 0 && p->guests) {
                take_guest(p, offer, &c);
                r = -ECANCELED; /* nothing more of it here */
                err[0] = '\0';
        } else if (r == 0) {
                r = take_offer(p, offer, uuid, sizeof(uuid), control, sizeof(control), &answer);
                if (mw_send_json(&c, answer, err, sizeof(err)) < 0 && r == 0)
                        r = -EPIPE;
        }
        if (r == 0 && c.rlen != c.roff)
                r = -EPROTO; /* nothing may wait in our buffer: the engine reads from here on */
        if (r == 0) {
                json_t *req = handover("migrate_in", &c);

                r = engine_request_fd(control, req, c.fd, PEER_ENGINE_MS, &info, err, sizeof(err));
                json_decref(req);
                if (r < 0)
                        vgpu_log(VGPU_LOG_WARN, "migration: vGPU %s did not come: %s", uuid, err);
        } else if (err[0]) {
                vgpu_log(VGPU_LOG_WARN, "migration: %s", err);
        }
        if (uuid[0]) {
                struct mgr_vgpu *v;

                manager_lock(p->m);
                v = manager_vgpu_locked(p->m, uuid);
                if (v)
                        manager_incoming_end_locked(p->m, v, r == 0);
                manager_unlock(p->m);
        }
        json_decref(info);
        json_decref(answer);
        json_decref(offer);
        mw_close(&c);
out:
        free(in);
        pthread_mutex_lock(&p->lock);
        p->incoming--;
        pthread_cond_broadcast(&p->cond);
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

static void *listen_main(void *arg)
{
        struct migrate_peer *p = arg;

        for (;;) {
                struct pollfd pfd[2] = {{.fd = p->listen_fd, .events = POLLIN},
                                        {.fd = p->stop_pipe[0], .events = POLLIN}};
                struct incoming *in;
                pthread_t th;
                int fd;

                if (poll(pfd, 2, -1) < 0 && errno != EINTR)
                        break;
                if (pfd[1].revents)
                        break;
                if (!(pfd[0].revents & POLLIN))
                        continue;
                fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        continue;
                pthread_mutex_lock(&p->lock);
                if (p->incoming >= PEER_MAX_INCOMING) {
                        pthread_mutex_unlock(&p->lock);
                        vgpu_log(VGPU_LOG_WARN, "migration: too many at once; a peer is refused");
                        close(fd);
                        continue;
                }
                p->incoming++;
                pthread_mutex_unlock(&p->lock);
                in = malloc(sizeof(*in));
                if (in)
                        *in = (struct incoming){.p = p, .fd = fd};
                if (!in || pthread_create(&th, NULL, serve_incoming, in) != 0) {
                        free(in);
                        close(fd);
                        pthread_mutex_lock(&p->lock);
                        p->incoming--;
                        pthread_mutex_unlock(&p->lock);
                        continue;
                }
                pthread_detach(th);
        }
        return NULL;
}

int migrate_peer_new(struct manager *m, const char *listen, const char *secret_path, bool guests,
                     struct migrate_peer **ret, char *err, size_t len)
{
        struct migrate_peer *p = calloc(1, sizeof(*p));
        int r;

        if (!p)
                return -ENOMEM;
        p->m = m;
        p->guests = guests;
        p->listen_fd = -1;
        p->stop_pipe[0] = p->stop_pipe[1] = -1;
        pthread_mutex_init(&p->lock, NULL);
        pthread_cond_init(&p->cond, NULL);
        r = mw_secret_load(secret_path, p->secret, sizeof(p->secret), &p->secret_len, err, len);
        if (r < 0)
                goto fail;
        if (listen) {
                p->listen_fd = mw_listen(listen, 16, err, len);
                if (p->listen_fd < 0) {
                        r = p->listen_fd;
                        goto fail;
                }
                if (pipe2(p->stop_pipe, O_CLOEXEC) < 0 ||
                    pthread_create(&p->thread, NULL, listen_main, p) != 0) {
                        r = -errno;
                        snprintf(err, len, "cannot start the listener: %s", strerror(errno));
                        goto fail;
                }
                p->listening = true;
        }
        *ret = p;
        return 0;
fail:
        migrate_peer_free(p);
        return r;
}

void migrate_peer_set_guest_port(struct migrate_peer *p, int port)
{
        if (p)
                p->guest_port = port;
}

int migrate_peer_port(const struct migrate_peer *p)
{
        return p && p->listen_fd >= 0 ? mw_listen_port(p->listen_fd) : 0;
}

void migrate_peer_free(struct migrate_peer *p)
{
        if (!p)
                return;
        if (p->listening) {
                (void)!write(p->stop_pipe[1], "x", 1);
                pthread_join(p->thread, NULL);
        }
        pthread_mutex_lock(&p->lock);
        while (p->incoming)
                pthread_cond_wait(&p->cond, &p->lock);
        pthread_mutex_unlock(&p->lock);
        if (p->listen_fd >= 0)
                close(p->listen_fd);
        for (int i = 0; i < 2; i++) {
                if (p->stop_pipe[i] >= 0)
                        close(p->stop_pipe[i]);
        }
        OPENSSL_cleanse(p->secret, sizeof(p->secret));
        free(p);
}

/* ---- the source --------------------------------------------------------------------------- */

/* Connect, prove the secret, offer v (described by offer): 0 with *c ready for the engine. */
static int offer_to(struct migrate_peer *p, const char *to, json_t *offer, struct mw_conn *c,
                    int *ret_guest_port, char *err, size_t len)
{
        json_t *a = NULL;
        int fd, r;

        fd = mw_connect(to, PEER_AUTH_MS, err, len);
        if (fd < 0)
                return fd;
        r = mw_auth_client(c, fd, p->secret, p->secret_len, PEER_AUTH_MS, err, len);
        if (r < 0) {
                close(fd);
                return r;
        }
        c->timeout_ms = PEER_ENGINE_MS; /* the target starts an engine meanwhile */
        r = mw_send_json(c, offer, err, len);
        if (r == 0)
                r = mw_recv_json(c, &a, err, len);
        c->timeout_ms = MW_TIMEOUT_DEFAULT;
        if (r == 0 && !json_is_true(json_object_get(a, "ok"))) {
                const char *why = json_string_value(json_object_get(a, "error"));

                snprintf(err, len, "%s refused: %s", to, why ? why : "no reason given");
                r = -EREMOTEIO;
        }
        if (r == 0 && c->rlen != c->roff)
                r = -EPROTO;
        if (r == 0)
                *ret_guest_port = (int)json_integer_value(json_object_get(a, "guest_port"));
        json_decref(a);
        if (r < 0)
                mw_close(c);
        return r;
}

int migrate_to_locked(struct migrate_peer *p, struct mgr_vgpu *v, const char *to, bool precopy,
                      json_t **ret, char *err, size_t len)
{
        struct manager *m;
        struct mw_conn c;
        char uuid[40], control[256];
        json_t *offer, *req, *info = NULL;
        int guest_port = 0, r;

        err[0] = '\0';
        if (!p) {
                snprintf(err, len,
                         "this vgpud has no --migrate-secret: it cannot migrate to "
                         "another vgpud");
                return -ENOTSUP;
        }
        m = p->m;
        if (v->busy)
                return VGPU_EBUSY;
        if (v->state == MGR_SUSPENDED)
                return VGPU_ESUSPENDED;
        if (v->state != MGR_RUNNING)
                return VGPU_ENOT_RUNNING;
        offer = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "op", "offer", "uuid", v->uuid,
                          "model", m->gpus[v->gpu].model->id, "type", v->type->name, "fb_bytes",
                          (json_int_t)v->fb_bytes, "device_address", (json_int_t)v->device_address,
                          "owner_uid", (json_int_t)v->owner_uid);
        snprintf(uuid, sizeof(uuid), "%s", v->uuid);
        manager_control_socket(m, v, control, sizeof(control));
        v->busy = true;
        manager_unlock(m);
        r = offer ? offer_to(p, to, offer, &c, &guest_port, err, len) : -ENOMEM;
        json_decref(offer);
        if (r == 0) {
                req = handover("migrate_out", &c);
                json_object_set_new(req, "precopy", json_boolean(precopy));
                if (guest_port > 0 && guest_port < 65536) {
                        /* remote guests follow to the same host, at its guest port */
                        char addr[300];
                        const char *colon = strrchr(to, ':');

                        snprintf(addr, sizeof(addr), "%.*s:%d", (int)(colon - to), to, guest_port);
                        json_object_set_new(req, "guest_tcp", json_string(addr));
                }
                r = engine_request_fd(control, req, c.fd, PEER_ENGINE_MS, &info, err, len);
                json_decref(req);
                mw_close(&c);
        }
        manager_lock(m);
        v = manager_vgpu_locked(m, uuid); /* a busy vGPU is never destroyed */
        if (r < 0) {
                v->busy = false;
                return VGPU_EPEER;
        }
        manager_moved_away_locked(m, v);
        json_object_set_new(info, "to", json_string(to));
        *ret = info;
        return 0;
}
