// SPDX-License-Identifier: Apache-2.0
// The engine's side of moves between vgpuds (docs/migration.md) and of remote guests
// (docs/remote.md): sending and taking a vGPU over the connection vgpud authenticated, restoring
// a suspended vGPU's image in a fresh engine, and sessions that wait for their guests.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/log.h"
#include "engine/link.h"
#include "engine/vgpu_engine.h"

static int hexval(char ch)
{
        return ch >= '0' && ch <= '9'   ? ch - '0'
               : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
               : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                        : -1;
}

/* n bytes from 2n hex digits. 0 or -1. */
int engine_unhex(const char *s, uint8_t *out, size_t n)
{
        if (!s || strlen(s) != 2 * n)
                return -1;
        for (size_t i = 0; i < n; i++) {
                int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

                if (hi < 0 || lo < 0)
                        return -1;
                out[i] = (uint8_t)(hi << 4 | lo);
        }
        return 0;
}

/*
 * The connection vgpud authenticated and passed along (fd), as it left it: the session key and
 * both sequence numbers are in the request.
 */
static int conn_of(json_t *req, int fd, struct mw_conn *c)
{
        json_t *tx = json_object_get(req, "tx_seq"), *rx = json_object_get(req, "rx_seq");
        json_t *server = json_object_get(req, "server"); /* which end it is */
        uint8_t key[32];

        *c = (struct mw_conn){.fd = -1};
        if (fd < 0 || engine_unhex(json_string_value(json_object_get(req, "key")), key, 32) < 0 ||
            !json_is_integer(tx) || !json_is_integer(rx) || json_integer_value(tx) < 0 ||
            json_integer_value(rx) < 0 || !json_is_boolean(server))
                return -1;
        return mw_conn_restore(c, fd, key, (uint64_t)json_integer_value(tx),
                               (uint64_t)json_integer_value(rx), json_is_true(server));
}

static bool any_waiting(const struct engine *e)
{
        for (int i = 0; i < ENGINE_MAX_GUESTS; i++) {
                if ((e->guests[i].s && !session_started(e->guests[i].s)) || e->guests[i].wait.p)
                        return true;
        }
        return false;
}

/*
 * The slot of the session that token names, waiting for its guest (an engine's own session, or
 * with workers, its bytes): its index, or -1.
 */
int engine_waiting_slot(const struct engine *e, const uint8_t token[16])
{
        for (int i = 0; i < ENGINE_MAX_GUESTS; i++) {
                const struct engine_guest *g = &e->guests[i];

                if (g->s && session_token_is(g->s, token))
                        return i;
                if (g->wait.p && CRYPTO_memcmp(g->wait.head.token, token, 16) == 0)
                        return i;
        }
        return -1;
}

static json_t *do_migrate_out(struct engine *e, json_t *req, struct mw_conn *c)
{
        struct session *ss[ENGINE_MAX_GUESTS];
        size_t n = engine_sessions(e, ss);
        struct snap_meta meta = engine_meta(e);
        struct transfer_stats st;
        uint64_t t0 = chan_now_ns();
        char err[512] = "";
        int r;

        if (e->suspended)
                return engine_op_error("migrate: the vGPU is suspended: resume it first");
        if (engine_lost_code(e))
                return engine_op_error("migrate: the vGPU's GPU context was lost");
        if (any_waiting(e))
                return engine_op_error(
                        "migrate: guests have not re-attached since the vGPU last moved "
                        "here; try again once they made a call");
        bool precopy = json_is_true(json_object_get(req, "precopy"));

        const char *guest_tcp = json_string_value(json_object_get(req, "guest_tcp"));

        for (int i = 0; i < ENGINE_MAX_GUESTS; i++) {
                if ((e->guests[i].link || e->guests[i].remote) && !guest_tcp)
                        return engine_op_error(
                                "migrate: it has a remote guest, and the target takes "
                                "none (vgpud --guest-listen there)");
        }
        if (e->isolate) {
                /* the workers' sessions go too, each exported by its worker once parked */
                struct engine_peers mp;

                engine_peers_init(&mp, e, e->gpu_index, guest_tcp);
                r = transfer_send_peers(&e->dev, ss, n, &mp.tp, &meta, precopy, c, &st, err,
                                        sizeof(err));
                if (r < 0)
                        return engine_op_error("migrate: %s (the vGPU runs on here)", err);
                n = (size_t)engine_guest_count(e);
                /* the workers' mappings and the fds for new ones hold the memory too */
                engine_workers_do(e, WORKER_RELEASE, 0, NULL, 0);
                for (size_t k = 0; k < e->n_fb_fds; k++)
                        close(e->fb_fds[k]);
                e->n_fb_fds = 0;
        } else {
                r = transfer_send(&e->dev, ss, n, &meta, precopy, c, &st, err, sizeof(err));
                if (r < 0)
                        return engine_op_error("migrate: %s (the vGPU runs on here)", err);
        }
        /* remote guests follow over TCP, to the target's guest listener */
        for (int i = 0; i < ENGINE_MAX_GUESTS; i++) {
                uint8_t token[16];

                if (!e->guests[i].link)
                        continue;
                session_token(e->guests[i].s, token);
                link_moved(e->guests[i].link, token, guest_tcp);
        }
        vdev_release(&e->dev);
        e->moved = true;
        vgpu_log(VGPU_LOG_INFO,
                 "vGPU %s: moved to another vgpud (%u rounds, %llu bytes live, %llu stopped, "
                 "%.1f ms pause)",
                 e->uuid, st.rounds, (unsigned long long)st.live_bytes,
                 (unsigned long long)st.stopped_bytes, (double)st.stun_ns / 1e6);
        return json_pack("{s:b, s:s, s:i, s:I, s:I, s:I, s:I, s:f, s:f, s:i}", "ok", 1, "mode",
                         precopy ? "precopy" : "stop-and-copy", "rounds", (int)st.rounds,
                         "data_bytes", (json_int_t)(st.live_bytes + st.stopped_bytes), "live_bytes",
                         (json_int_t)st.live_bytes, "stopped_bytes", (json_int_t)st.stopped_bytes,
                         "wire_bytes", (json_int_t)st.wire_bytes, "stun_ms",
                         (double)st.stun_ns / 1e6, "seconds", (double)(chan_now_ns() - t0) / 1e9,
                         "guests", (int)n);
}

/* Sessions that came without their guests (a move, a restore): they wait in free slots. */
static void adopt_sessions(struct engine *e, struct session **ses, size_t n)
{
        size_t k = 0;

        for (size_t i = 0; i < n; i++) {
                while (k < ENGINE_MAX_GUESTS && engine_slot_used(&e->guests[k]))
                        k++;
                if (k == ENGINE_MAX_GUESTS) {
                        session_free(ses[i]); /* cannot happen: as many slots as the source */
                        continue;
                }
                e->guests[k].s = ses[i];
                e->guests[k].fd = -1; /* until its guest re-attaches */
                e->guests[k].guest_pid = session_pid(ses[i]);
                if (session_id(ses[i]) > e->next_session)
                        e->next_session = session_id(ses[i]);
        }
}

/*
 * The same for an engine with workers: the sessions' bytes wait in free slots until their guests
 * re-attach, each then in a worker of its own that imports them (guest_reattach, do_guest_tcp).
 */
static void adopt_blobs(struct engine *e, struct transfer_blob *b, size_t n)
{
        size_t k = 0;

        for (size_t i = 0; i < n; i++) {
                while (k < ENGINE_MAX_GUESTS && engine_slot_used(&e->guests[k]))
                        k++;
                if (k == ENGINE_MAX_GUESTS) {
                        free(b[i].p); /* cannot happen: as many slots as the source */
                        continue;
                }
                e->guests[k].wait = b[i];
                e->guests[k].sid = b[i].head.id;
                e->guests[k].guest_pid = b[i].head.pid;
                if (b[i].head.id > e->next_session)
                        e->next_session = b[i].head.id;
        }
        free(b);
}

/*
 * A suspended vGPU whose engine went (it died, or the host restarted): this fresh engine reads
 * the image, sessions and all (docs/migration.md); the guests that are still there re-attach.
 */
json_t *engine_restore(struct engine *e, const char *path)
{
        struct snap_meta meta = engine_meta(e);
        struct session **ses = NULL;
        uint64_t t0 = chan_now_ns();
        char err[512] = "";
        size_t n = 0;
        int fd, r;

        if (!path || path[0] != '/')
                return engine_op_error("restore: which image? (an absolute \"path\")");
        if (e->suspended || engine_any_guest(e) || e->dev.mem.n)
                return engine_op_error("restore: this engine is in use: only a fresh one restores");
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return engine_op_error("restore: cannot open the image %s: %s", path,
                                       strerror(errno));
        if (e->isolate) {
                struct transfer_blob *b = NULL;

                r = transfer_restore_bytes(&e->dev, &meta, fd, &b, &n, err, sizeof(err));
                if (r == 0)
                        adopt_blobs(e, b, n);
        } else {
                r = transfer_restore(&e->dev, &meta, fd, &ses, &n, err, sizeof(err));
                if (r == 0)
                        adopt_sessions(e, ses, n);
                free(ses);
        }
        close(fd);
        if (r < 0)
                return engine_op_error("restore: %s: %s", path, err);
        vgpu_log(VGPU_LOG_INFO, "vGPU %s: restored from %s with %zu guests' sessions", e->uuid,
                 path, n);
        return json_pack("{s:b, s:i, s:f}", "ok", 1, "guests", (int)n, "seconds",
                         (double)(chan_now_ns() - t0) / 1e9);
}

static json_t *do_migrate_in(struct engine *e, struct mw_conn *c)
{
        struct snap_meta meta = engine_meta(e);
        struct session **ses = NULL;
        uint64_t t0 = chan_now_ns();
        char err[512] = "";
        size_t n = 0;
        int r;

        if (e->suspended || engine_any_guest(e) || e->dev.mem.n)
                return engine_op_error(
                        "migrate: this vGPU is in use: it cannot take another's state");
        if (e->isolate) {
                /* each session in a worker of its own, once its guest re-attaches */
                struct transfer_blob *b = NULL;

                r = transfer_recv_bytes(&e->dev, &meta, e->guest_path, c, &b, &n, err, sizeof(err));
                if (r == 0)
                        adopt_blobs(e, b, n);
        } else {
                r = transfer_recv(&e->dev, &meta, e->guest_path, c, &ses, &n, err, sizeof(err));
                if (r == 0)
                        adopt_sessions(e, ses, n);
                free(ses);
        }
        if (r < 0)
                return engine_op_error("migrate: %s", err);
        e->arrived = true;
        vgpu_log(VGPU_LOG_INFO, "vGPU %s: moved here from another vgpud with %zu guests", e->uuid,
                 n);
        return json_pack("{s:b, s:i, s:f}", "ok", 1, "guests", (int)n, "seconds",
                         (double)(chan_now_ns() - t0) / 1e9);
}

/*
 * A guest over TCP (docs/remote.md), its connection passed by vgpud: a new session, or (with a
 * token) the session of a guest whose vGPU moved here, whose channel comes first. The engine
 * says hello on the connection; then a link serves it.
 */
static json_t *do_guest_tcp(struct engine *e, json_t *req, struct mw_conn *c)
{
        const char *tok = json_string_value(json_object_get(req, "token"));
        struct link *link = NULL;
        struct session *s = NULL;
        uint8_t token[16];
        char err[256] = "";
        int slot = -1, pfd[2], chan_fd, r;

        if (e->moved || e->suspended || engine_lost_code(e))
                return engine_op_error("guest: the vGPU is %s", e->moved       ? "moving away"
                                                                : e->suspended ? "suspended"
                                                                               : "lost");
        if (tok) {
                slot = engine_unhex(tok, token, 16) == 0 ? engine_waiting_slot(e, token) : -1;
        } else {
                for (int i = 0; i < ENGINE_MAX_GUESTS && slot < 0; i++) {
                        if (!engine_slot_used(&e->guests[i]))
                                slot = i;
                }
        }
        if (slot < 0)
                return engine_op_error(tok ? "guest: no session of this vGPU waits for that token"
                                           : "guest: too many guests attached to this vGPU");
        if (e->isolate) {
                /* its own worker, as a local guest's: it says hello and runs the link */
                struct ucred cred = {.pid = 0, .uid = (uid_t)e->owner_uid};
                struct transfer_blob b = e->guests[slot].wait;

                /* with a token: the worker imports the session and takes its channel */
                r = engine_worker_start(e, &e->guests[slot], c->fd, &cred, c, tok ? &b : NULL);
                if (r < 0)
                        return engine_op_error("guest: cannot start its worker: %s", strerror(-r));
                free(b.p);
                /* the engine keeps the socket to see the guest go, and never uses it */
                c->fd = -1;
                return json_pack("{s:b}", "ok", 1);
        }
        if (tok) {
                s = e->guests[slot].s;
        } else {
                r = session_new(&e->dev, ++e->next_session, 0, (uid_t)e->owner_uid, &s, &chan_fd);
                if (r < 0)
                        return engine_op_error("guest: %s", strerror(-r));
        }
        {
                json_t *hello = engine_hello_json(e);

                r = mw_send_json(c, hello, err, sizeof(err));
                json_decref(hello);
        }
        if (r == 0 && tok)
                r = link_receive_channel(s, c, err, sizeof(err));
        if (r == 0 && pipe2(pfd, O_CLOEXEC | O_NONBLOCK) < 0) {
                r = -errno;
                snprintf(err, sizeof(err), "%s", strerror(errno));
        }
        if (r == 0) {
                r = link_start(s, c, pfd[1], &link);
                *c = (struct mw_conn){.fd = -1}; /* the link's now */
                if (r < 0) {
                        close(pfd[0]);
                        close(pfd[1]);
                        snprintf(err, sizeof(err), "%s", strerror(-r));
                }
        }
        if (r == 0 && tok)
                r = session_start(s); /* after the link: it sees every command run */
        if (r < 0) {
                if (link) {
                        link_free(link);
                        close(pfd[0]);
                        close(pfd[1]);
                }
                if (!tok)
                        session_free(s);
                return engine_op_error("guest: %s", err[0] ? err : strerror(-r));
        }
        e->guests[slot].s = s;
        e->guests[slot].fd = pfd[0];
        e->guests[slot].notify = pfd[1];
        e->guests[slot].link = link;
        e->guests[slot].remote = true;
        vgpu_log(VGPU_LOG_INFO, "vGPU %s: remote guest %s", e->uuid,
                 tok ? "re-attached after the move" : "attached");
        return json_pack("{s:b}", "ok", 1);
}

json_t *engine_migrate_op(struct engine *e, const char *op, json_t *req, int fd)
{
        struct mw_conn c;
        json_t *r;

        if (conn_of(req, fd, &c) < 0) {
                if (fd >= 0)
                        close(fd);
                return engine_op_error(
                        "%s: needs the connection (an fd) with key, tx_seq and rx_seq", op);
        }
        if (strcmp(op, "guest_tcp") == 0)
                r = do_guest_tcp(e, req, &c);
        else if (e->moved)
                r = engine_op_error("migrate: the vGPU moved away");
        else if (strcmp(op, "migrate_out") == 0)
                r = do_migrate_out(e, req, &c);
        else
                r = do_migrate_in(e, &c);
        mw_close(&c);
        return r;
}
