// SPDX-License-Identifier: Apache-2.0
// vgpud's license holders: a thread that, about once a second, looks at which vGPUs have guests,
// holds a lease for each of those through license_holder (request, renew, offline grace, the grace
// state machine), returns the leases of vGPUs whose guests left, and throttles in the scheduler
// the vGPUs whose grace period is over. The server is contacted without the manager's lock.
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "license/license_holder.h"
#include "manager/licensing.h"
#include "manager/manager.h"
#include "manager/scheduler.h"

struct held {
        struct license_holder h;
        uint32_t gpu, handle;
        bool present; /* seen with guests in the last round */
        bool throttled;
        char text[96]; /* published status */
        int metric;
};

struct licensing {
        struct manager *m;
        struct license_client *client;
        struct license_holder_config hcfg;
        pthread_t thread;
        bool started;
        pthread_mutex_t lock; /* held[] and the published statuses */
        pthread_cond_t cond;
        bool stop;
        struct held *held;
        size_t n_held;
};

/* What the thread needs of a vGPU, taken under the manager's lock. */
struct seen {
        char uuid[40];
        uint32_t gpu, handle;
};

static struct held *find(struct licensing *l, const char *uuid)
{
        for (size_t i = 0; i < l->n_held; i++) {
                if (strcmp(l->held[i].h.vgpu_uuid, uuid) == 0)
                        return &l->held[i];
        }
        return NULL;
}

static size_t collect(struct licensing *l, struct seen **ret)
{
        struct manager *m = l->m;
        struct seen *s;
        size_t n = 0;

        manager_lock(m);
        s = calloc(m->n_vgpus ? m->n_vgpus : 1, sizeof(*s));
        for (size_t i = 0; s && i < m->n_vgpus; i++) {
                const struct mgr_vgpu *v = &m->vgpus[i];
                int64_t used;
                int guests = 0;

                if (v->state != MGR_RUNNING ||
                    manager_vgpu_usage_locked(m, (struct mgr_vgpu *)v, &guests, &used) <= 0)
                        continue;
                snprintf(s[n].uuid, sizeof(s[n].uuid), "%s", v->uuid);
                s[n].gpu = v->gpu;
                s[n].handle = v->handle;
                n++;
        }
        manager_unlock(m);
        *ret = s;
        return n;
}

static void round_once(struct licensing *l, int64_t *next)
{
        struct seen *seen = NULL;
        size_t n = collect(l, &seen);
        int64_t now = (int64_t)time(NULL);

        pthread_mutex_lock(&l->lock);
        for (size_t i = 0; i < l->n_held; i++)
                l->held[i].present = false;
        for (size_t i = 0; i < n; i++) {
                struct held *h = find(l, seen[i].uuid);

                if (!h) {
                        struct held *nh = realloc(l->held, (l->n_held + 1) * sizeof(*nh));

                        if (!nh)
                                continue;
                        l->held = nh;
                        h = &l->held[l->n_held++];
                        memset(h, 0, sizeof(*h));
                        license_holder_init(&h->h, seen[i].uuid, now);
                        h->gpu = seen[i].gpu;
                        h->handle = seen[i].handle;
                }
                h->present = true;
        }
        pthread_mutex_unlock(&l->lock);
        free(seen);

        /* The server is talked to here, with neither lock held by anyone waiting on it. */
        for (size_t i = 0;; i++) {
                struct grace_status st;
                struct held *h, copy;
                int64_t when = 0;
                bool gone;

                pthread_mutex_lock(&l->lock);
                if (i >= l->n_held) {
                        pthread_mutex_unlock(&l->lock);
                        break;
                }
                copy = l->held[i];
                pthread_mutex_unlock(&l->lock);
                gone = !copy.present;
                if (gone) {
                        license_holder_release(&copy.h, l->client);
                        if (copy.throttled)
                                scheduler_throttle(l->m->sched, copy.gpu, copy.handle, false);
                } else {
                        license_holder_tick(&copy.h, l->client, &l->hcfg, now, &st, &when);
                        license_holder_status_text(&copy.h, &st, copy.text, sizeof(copy.text));
                        copy.metric = license_holder_metric(&st);
                        if ((st.state == GRACE_DEGRADED) != copy.throttled) {
                                copy.throttled = st.state == GRACE_DEGRADED;
                                scheduler_throttle(l->m->sched, copy.gpu, copy.handle,
                                                   copy.throttled);
                                vgpu_log(copy.throttled ? VGPU_LOG_WARN : VGPU_LOG_INFO,
                                         "vGPU %s: %s", copy.h.vgpu_uuid,
                                         copy.throttled ? "unlicensed past its grace period: "
                                                          "minimal share until a lease is held"
                                                        : "full share again");
                        }
                        if (when > now && when < *next)
                                *next = when;
                }
                pthread_mutex_lock(&l->lock);
                h = i < l->n_held ? &l->held[i] : NULL;
                if (h && strcmp(h->h.vgpu_uuid, copy.h.vgpu_uuid) == 0) {
                        if (gone) {
                                l->held[i] = l->held[--l->n_held];
                                i--;
                        } else {
                                copy.present = h->present;
                                *h = copy;
                        }
                }
                pthread_mutex_unlock(&l->lock);
        }
}

static void *licensing_main(void *arg)
{
        struct licensing *l = arg;

        pthread_mutex_lock(&l->lock);
        while (!l->stop) {
                int64_t next = (int64_t)time(NULL) + 1;
                struct timespec ts;

                pthread_mutex_unlock(&l->lock);
                round_once(l, &next);
                pthread_mutex_lock(&l->lock);
                /* at least once a second: guests come and go */
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += 1;
                if (!l->stop)
                        pthread_cond_timedwait(&l->cond, &l->lock, &ts);
        }
        pthread_mutex_unlock(&l->lock);
        return NULL;
}

static int read_token(const char *path, char *buf, size_t len)
{
        FILE *f = fopen(path, "r");
        size_t n;

        if (!f)
                return -errno;
        n = fread(buf, 1, len - 1, f);
        fclose(f);
        buf[n] = '\0';
        while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
                buf[--n] = '\0';
        return n ? 0 : -EINVAL;
}

int licensing_new(const struct licensing_config *cfg, struct manager *m, struct licensing **ret,
                  char *err, size_t err_len)
{
        struct license_client_config cc = {.public_key_file = cfg->public_key,
                                           .feature = cfg->feature};
        char host[256] = "", token[512] = "";
        struct licensing *l;
        int r;

        if (!cfg->server || !cfg->public_key) {
                snprintf(err, err_len,
                         "needs the server (--license-server) and its public key "
                         "(--license-key)");
                return -EINVAL;
        }
        if (strchr(cfg->server, '/')) {
                cc.socket_path = cfg->server;
        } else {
                const char *colon = strrchr(cfg->server, ':');
                char *end;
                unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;

                if (!colon || colon == cfg->server || *end || port == 0 || port > 65535 ||
                    (size_t)(colon - cfg->server) >= sizeof(host)) {
                        snprintf(err, err_len, "--license-server '%s': a socket path or HOST:PORT",
                                 cfg->server);
                        return -EINVAL;
                }
                snprintf(host, sizeof(host), "%.*s", (int)(colon - cfg->server), cfg->server);
                cc.host = host;
                cc.port = (unsigned short)port;
                cc.ca_file = cfg->ca_file;
                if (cfg->token_file &&
                    (r = read_token(cfg->token_file, token, sizeof(token))) < 0) {
                        snprintf(err, err_len, "--license-token %s: %s", cfg->token_file,
                                 strerror(-r));
                        return r;
                }
                cc.client_token = token[0] ? token : NULL;
        }
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        r = license_client_new(&cc, &l->client);
        if (r < 0) {
                snprintf(err, err_len, "license client: %s (is %s the server's public key?)",
                         strerror(-r), cfg->public_key);
                free(l);
                return r;
        }
        l->m = m;
        /* Retries well within a short grace period (tests), else every 30 s. */
        l->hcfg = (struct license_holder_config){
                .grace = {.enabled = true, .unlicensed_grace = cfg->grace_s},
                .retry_interval = cfg->grace_s >= 0 && cfg->grace_s < 120
                                          ? (cfg->grace_s / 4 > 1 ? cfg->grace_s / 4 : 1)
                                          : 30};
        pthread_mutex_init(&l->lock, NULL);
        pthread_cond_init(&l->cond, NULL);
        r = -pthread_create(&l->thread, NULL, licensing_main, l);
        if (r < 0) {
                snprintf(err, err_len, "thread: %s", strerror(-r));
                licensing_free(l);
                return r;
        }
        l->started = true;
        *ret = l;
        return 0;
}

void licensing_free(struct licensing *l)
{
        if (!l)
                return;
        if (l->started) {
                pthread_mutex_lock(&l->lock);
                l->stop = true;
                pthread_cond_broadcast(&l->cond);
                pthread_mutex_unlock(&l->lock);
                pthread_join(l->thread, NULL);
        }
        for (size_t i = 0; i < l->n_held; i++)
                license_holder_release(&l->held[i].h, l->client);
        license_client_free(l->client);
        pthread_cond_destroy(&l->cond);
        pthread_mutex_destroy(&l->lock);
        free(l->held);
        free(l);
}

int licensing_status(struct licensing *l, const char *uuid, char *text, size_t len, int *ret_metric)
{
        struct held *h;
        int r = -ENOENT;

        pthread_mutex_lock(&l->lock);
        h = find(l, uuid);
        if (h && h->text[0]) {
                snprintf(text, len, "%s", h->text);
                *ret_metric = h->metric;
                r = 0;
        }
        pthread_mutex_unlock(&l->lock);
        return r;
}
