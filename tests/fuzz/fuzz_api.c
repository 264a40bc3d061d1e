// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for vgpud's request handling: an input is "METHOD\nPATH\nBODY", routed through
// api_handle on a manager with two simulated GPUs (no engine processes). Every request must get a
// well-formed response (status 200-599, a JSON body or none), and never crash or leak.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "manager/api.h"
#include "manager/manager.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct manager *mgr;
static struct api api = {.version = "fuzz"};

static const char *no_query(const struct http_request *req, const char *key)
{
        (void)req;
        (void)key;
        return NULL;
}

/* A query string of the fuzzed path, parsed the way a server would hand it over. */
struct fuzz_req {
        struct http_request req;
        char *query;
};

static const char *fuzz_query(const struct http_request *req, const char *key)
{
        const struct fuzz_req *fr = (const struct fuzz_req *)req;
        size_t klen = strlen(key);

        for (const char *p = fr->query; p && *p;) {
                const char *amp = strchr(p, '&');
                size_t len = amp ? (size_t)(amp - p) : strlen(p);

                if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
                        static char val[256];

                        snprintf(val, sizeof(val), "%.*s", (int)(len - klen - 1), p + klen + 1);
                        return val;
                }
                p = amp ? amp + 1 : NULL;
        }
        return NULL;
}

static void setup(void)
{
        static const char *const gpus[] = {"H100-80GB", "A100-40GB"};
        static char dir[] = "/dev/shm/vgpu-fuzz-XXXXXX";
        struct manager_config cfg = {.backend = "sim",
                                     .sim_gpus = gpus,
                                     .n_sim_gpus = 2,
                                     .engine_path = "/nonexistent",
                                     .no_engines = true,
                                     .rmpvmrl = -1};

        vgpu_log_set_level(VGPU_LOG_ERROR);
        if (!mkdtemp(dir))
                abort();
        cfg.state_dir = dir;
        if (manager_new(&cfg, &mgr) < 0)
                abort();
        api.mgr = mgr;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *buf, *method, *path, *body, *nl, *q;
        struct fuzz_req fr = {0};
        struct http_response resp = {0};

        if (!mgr)
                setup();
        buf = malloc(size + 1);
        if (!buf)
                return 0;
        memcpy(buf, data, size);
        buf[size] = '\0';
        method = buf;
        nl = strchr(method, '\n');
        path = nl ? (*nl = '\0', nl + 1) : (char *)"/v1/gpus";
        nl = strchr(path, '\n');
        body = nl ? (*nl = '\0', nl + 1) : (char *)"";
        q = strchr(path, '?');
        if (q)
                *q++ = '\0';
        fr.req = (struct http_request){.method = method,
                                       .path = path,
                                       .body = body,
                                       .body_len = strlen(body),
                                       .have_cred = true,
                                       .uid = 0,
                                       .query = q ? fuzz_query : no_query};
        fr.query = q;
        api_handle(&api, &fr.req, &resp);
        if (resp.status < 200 || resp.status > 599)
                abort();
        if (resp.json && !json_is_object(resp.json))
                abort();
        json_decref(resp.json);
        free(resp.text);
        /* Keep the GPUs from filling up for good: start over now and then. */
        if (mgr->n_vgpus > 16) {
                manager_lock(mgr);
                while (mgr->n_vgpus)
                        manager_destroy_locked(mgr, &mgr->vgpus[0], true);
                manager_unlock(mgr);
        }
        free(buf);
        return 0;
}
