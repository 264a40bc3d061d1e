// SPDX-License-Identifier: Apache-2.0
// vgpud, the vGPU manager: parses its options, restores its state, serves the control API on its
// Unix socket, says READY when it serves, and shuts down cleanly on SIGTERM (engines keep running).
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <libgen.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/http_server.h"
#include "common/log.h"
#include "manager/api.h"
#include "manager/manager.h"
#include "vgpu/errors.h"
#include "backend/backend.h"
#include "backend/cuda/nvml.h"
#include "core/catalog.h"
#include "core/sched.h"
#include "manager/licensing.h"
#include "manager/migrate_peer.h"

#define VGPUD_MAX_GPUS 64

static void usage(FILE *f)
{
        fputs("usage: vgpud [--backend sim|cuda] [--sim-gpus MODEL[,MODEL...]] [--state DIR]\n"
              "             [--socket PATH] [--admin-group GROUP] [--socket-group GROUP]\n"
              "             [--engine PATH] [--rmpvmrl VALUE] [--metrics-listen ADDR[:PORT]]\n"
              "             [--license-server SOCKET|HOST:PORT --license-key FILE\n"
              "              [--license-ca FILE] [--license-token FILE] [--license-grace S]]\n"
              "             [--migrate-secret FILE [--migrate-listen ADDR:PORT]]\n"
              "             [--guest-listen ADDR:PORT --guest-secret FILE] [--mig-admin]\n"
              "             [--forget-gone-gpus]\n"
              "             [--foreground] [--verbose]\n"
              "defaults: --backend sim --sim-gpus H100-80GB --state /var/lib/vgpu\n"
              "          --socket /run/vgpu/vgpud.sock, admin and socket group root\n"
              "--backend cuda serves the host's NVIDIA GPUs (found through the driver);\n"
              "--sim-gpus is for the sim backend only\n"
              "--mig-admin (cuda): vgpud may create and destroy GPU instances on GPUs in MIG\n"
              "  mode (vgpuctl mig -cgi/-dgi, and one for a MIG-backed vGPU when none is\n"
              "  free); without it vgpud uses the instances that exist. vgpud never changes a\n"
              "  GPU's MIG mode\n"
              "--forget-gone-gpus (cuda): vGPUs on a GPU NVML no longer lists (it failed, or\n"
              "  was taken out) are removed; without it vgpud does not start then\n"
              "--rmpvmrl sets every GPU's scheduler as NVIDIA's RmPVMRL registry value does:\n"
              "  0x00 best effort, 0x01 equal share, 0x11 fixed share; time slice in ms in\n"
              "  bits 16-23 (0x00030001: equal share, 3 ms)\n"
              "--metrics-listen serves GET /metrics (Prometheus text) on TCP as well, port\n"
              "  9400 unless given (127.0.0.1:9400, [::1]:9400); the control socket serves it\n"
              "  always\n"
              "--license-server: hold a lease from vgpu-licensed for each vGPU with a guest;\n"
              "  without one a vGPU runs at full speed for --license-grace seconds (1200),\n"
              "  then with a minimal share. Without --license-server licensing is off.\n"
              "--migrate-secret: the secret (16+ bytes, a file only its owner reads) vgpuds\n"
              "  share to move vGPUs between them (vgpuctl migrate UUID --to HOST:PORT);\n"
              "  --migrate-listen takes vGPUs other vgpuds move here, on that TCP port\n"
              "--guest-listen: guests on other machines use this vgpud's vGPUs over TCP\n"
              "  (VGPU_REMOTE=HOST:PORT and VGPU_REMOTE_SECRET=FILE in their environment),\n"
              "  proving they hold the --guest-secret\n",
              f);
}

static int group_id(const char *name, gid_t *ret)
{
        struct group *gr = getgrnam(name);
        char *end;
        unsigned long v;

        if (gr) {
                *ret = gr->gr_gid;
                return 0;
        }
        v = strtoul(name, &end, 10);
        if (!*name || *end)
                return -ENOENT;
        *ret = (gid_t)v;
        return 0;
}

/* The engine binary sits beside vgpud unless --engine says otherwise. */
static void default_engine(char *buf, size_t len)
{
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

        if (n <= 0) {
                snprintf(buf, len, "vgpu-engine");
                return;
        }
        self[n] = '\0';
        snprintf(buf, len, "%s/vgpu-engine", dirname(self));
}

static int mkdir_parent(const char *path)
{
        char tmp[PATH_MAX];
        char *dir;

        snprintf(tmp, sizeof(tmp), "%s", path);
        dir = dirname(tmp);
        for (char *p = dir + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* "ADDR", "ADDR:PORT", "[V6]" or "[V6]:PORT" (default port kept). 0 or -EINVAL. */
static int parse_listen(const char *s, char *addr, size_t len, unsigned short *port)
{
        const char *colon, *end;
        char *e;
        unsigned long p;

        if (s[0] == '[') {
                end = strchr(s, ']');
                if (!end || (size_t)(end - s - 1) >= len)
                        return -EINVAL;
                snprintf(addr, len, "%.*s", (int)(end - s - 1), s + 1);
                colon = end[1] == ':' ? end + 1 : NULL;
                if (end[1] && !colon)
                        return -EINVAL;
        } else {
                colon = strrchr(s, ':');
                if ((size_t)(colon ? colon - s : (ptrdiff_t)strlen(s)) >= len)
                        return -EINVAL;
                snprintf(addr, len, "%.*s", (int)(colon ? colon - s : (ptrdiff_t)strlen(s)), s);
        }
        if (colon) {
                errno = 0;
                p = strtoul(colon + 1, &e, 10);
                if (errno || *e || !colon[1] || p == 0 || p > 65535)
                        return -EINVAL;
                *port = (unsigned short)p;
        }
        return addr[0] ? 0 : -EINVAL;
}

/* A found GPU's catalog model: by PCI device id, else by name, else generic types (or NULL). */
static const struct gpu_model *model_of(const struct backend_gpu *f, size_t i)
{
        const struct gpu_model *m = catalog_match_model(f->pci_device_id, f->name);

        if (m)
                return m;
        m = catalog_generic_model((uint32_t)(f->mem_total >> 30), (uint32_t)f->cc_major,
                                  (uint32_t)f->cc_minor, f->sm_count);
        vgpu_log(VGPU_LOG_WARN, "GPU %zu (%s, PCI device 0x%04x) is not in the catalog; %s", i,
                 f->name, f->pci_device_id,
                 m ? "served with generic types (docs/catalog.md)" : "not served");
        return m;
}

/*
 * The physical GPUs as NVML lists them, in its order (ret, up to max): a GPU in MIG mode is no
 * CUDA device itself (its MIG devices are), so the driver API cannot list it. What NVML does not
 * say (compute capability, SMs) comes from the driver's device of the same UUID, if any. A GPU
 * not in MIG mode that the driver does not show is left out when CUDA_VISIBLE_DEVICES is set and
 * does not name its UUID.
 * 0, or -ENODEV when NVML does not load or lists nothing.
 */
static int nvml_gpus(const struct backend_gpu *cuda, size_t n_cuda, struct backend_gpu *ret,
                     size_t max, size_t *ret_n)
{
        static struct vgpu_nvml_gpu found[VGPUD_MAX_GPUS];
        char why[256] = "";
        size_t n = 0;

        if (vgpu_nvml_open(why, sizeof(why)) < 0) {
                vgpu_log(VGPU_LOG_INFO, "GPUs from the driver API (NVML: %s)", why);
                return -ENODEV;
        }
        if (vgpu_nvml_gpus(found, VGPUD_MAX_GPUS, &n) < 0 || n == 0) {
                vgpu_nvml_close();
                return -ENODEV;
        }
        *ret_n = 0;
        for (size_t i = 0; i < n && *ret_n < max; i++) {
                struct backend_gpu *g = &ret[*ret_n];
                bool seen = false;

                memset(g, 0, sizeof(*g));
                for (size_t k = 0; k < n_cuda && !seen; k++) {
                        if (strcasecmp(cuda[k].uuid, found[i].uuid) == 0) {
                                *g = cuda[k];
                                seen = true;
                        }
                }
                if (!seen && !found[i].mig_enabled && getenv("CUDA_VISIBLE_DEVICES") &&
                    !strcasestr(getenv("CUDA_VISIBLE_DEVICES"), found[i].uuid)) {
                        vgpu_log(VGPU_LOG_WARN,
                                 "GPU %s (%s) is not in CUDA_VISIBLE_DEVICES here; not served",
                                 found[i].uuid, found[i].name);
                        continue;
                }
                /*
                 * Drivers before R570 show no whole GPU to CUDA beside a GPU in MIG mode (the
                 * MIG user guide, "CUDA Device Enumeration"): its engine names it in its
                 * CUDA_VISIBLE_DEVICES, as a MIG device's does.
                 */
                if (!seen && !found[i].mig_enabled)
                        vgpu_log(VGPU_LOG_INFO,
                                 "GPU %s (%s) is not among CUDA's devices here (a driver before "
                                 "R570 with a GPU in MIG mode?); its engines name it",
                                 found[i].uuid, found[i].name);
                snprintf(g->name, sizeof(g->name), "%.95s", found[i].name);
                snprintf(g->uuid, sizeof(g->uuid), "%.63s", found[i].uuid);
                snprintf(g->bus_id, sizeof(g->bus_id), "%s", found[i].bus_id);
                g->pci_device_id = found[i].pci_device_id;
                if (found[i].mem_total) /* 0: NVML tells only privileged callers */
                        g->mem_total = found[i].mem_total;
                (*ret_n)++;
        }
        vgpu_nvml_close();
        return 0;
}

/*
 * The host's NVIDIA GPUs, through the cuda backend and NVML (above), each mapped to its catalog
 * model. Engines open their devices by UUID, so vgpud's numbering need not be the driver's.
 */
static int find_gpus(const char **models, const char **uuids, const char **bus_ids, size_t *ret_n)
{
        static struct backend_gpu cuda[VGPUD_MAX_GPUS], found[VGPUD_MAX_GPUS];
        const struct backend_ops *ops = backend_find("cuda");
        char why[256] = "";
        size_t n_cuda = 0, n = 0;
        int r;

        r = ops->gpus(cuda, VGPUD_MAX_GPUS, &n_cuda, why, sizeof(why));
        if (r < 0 && strstr(why, "sees no GPU") == NULL) {
                vgpu_log(VGPU_LOG_ERROR, "--backend cuda: %s", why[0] ? why : strerror(-r));
                return r;
        }
        if (r < 0)
                n_cuda = 0;
        if (nvml_gpus(cuda, n_cuda, found, VGPUD_MAX_GPUS, &n) < 0) {
                /* no NVML: the driver's devices, without MIG (which needs NVML to be seen) */
                for (size_t i = 0; i < n_cuda; i++) {
                        if (strncmp(cuda[i].uuid, "MIG-", 4) == 0)
                                vgpu_log(VGPU_LOG_WARN,
                                         "MIG device %s: MIG needs NVML (libnvidia-ml.so.1); "
                                         "not served",
                                         cuda[i].uuid);
                        else
                                found[n++] = cuda[i];
                }
        }
        if (n == 0) {
                vgpu_log(VGPU_LOG_ERROR, "--backend cuda: %s",
                         why[0] ? why : "the NVIDIA driver sees no GPU");
                return -ENODEV;
        }
        *ret_n = 0;
        for (size_t i = 0; i < n; i++) {
                const struct gpu_model *m = model_of(&found[i], i);

                if (!m)
                        continue;
                vgpu_log(VGPU_LOG_INFO, "GPU %zu: %s (%s, %.1f GiB usable) as %s", *ret_n,
                         found[i].name, found[i].uuid, (double)found[i].mem_total / (1 << 30),
                         m->id);
                models[*ret_n] = m->id;
                uuids[*ret_n] = found[i].uuid;
                bus_ids[*ret_n] = found[i].bus_id;
                (*ret_n)++;
        }
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                {"backend", required_argument, NULL, 'b'},
                {"sim-gpus", required_argument, NULL, 'g'},
                {"state", required_argument, NULL, 's'},
                {"socket", required_argument, NULL, 'S'},
                {"admin-group", required_argument, NULL, 'a'},
                {"socket-group", required_argument, NULL, 'G'},
                {"engine", required_argument, NULL, 'e'},
                {"rmpvmrl", required_argument, NULL, 'R'},
                {"metrics-listen", required_argument, NULL, 'M'},
                {"license-server", required_argument, NULL, 'L'},
                {"license-key", required_argument, NULL, 'K'},
                {"license-ca", required_argument, NULL, 'C'},
                {"license-token", required_argument, NULL, 'T'},
                {"license-grace", required_argument, NULL, 'g' + 256},
                {"migrate-secret", required_argument, NULL, 'm' + 256},
                {"migrate-listen", required_argument, NULL, 'l' + 256},
                {"guest-secret", required_argument, NULL, 's' + 256},
                {"guest-listen", required_argument, NULL, 'L' + 256},
                {"mig-admin", no_argument, NULL, 'A' + 256},
                {"forget-gone-gpus", no_argument, NULL, 'F' + 256},
                {"foreground", no_argument, NULL, 'f'},
                {"verbose", no_argument, NULL, 'v'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        const char *backend = "sim", *sim_gpus = "H100-80GB", *state_dir = "/var/lib/vgpu";
        int64_t rmpvmrl = -1;
        struct licensing_config lcfg = {.grace_s = -1};
        struct licensing *lic = NULL;
        char metrics_addr[64] = "";
        unsigned short metrics_port = 9400;
        struct http_server *metrics_srv = NULL;
        const char *migrate_secret = NULL, *migrate_listen = NULL;
        const char *guest_secret = NULL, *guest_listen = NULL;
        bool mig_admin = false, forget_gone = false;
        struct migrate_peer *guest_peer = NULL;
        const char *socket_path = "/run/vgpu/vgpud.sock", *admin = NULL, *sock_group = NULL;
        char engine[PATH_MAX] = "", list[1024];
        const char *models[VGPUD_MAX_GPUS], *uuids[VGPUD_MAX_GPUS] = {0};
        const char *bus_ids[VGPUD_MAX_GPUS] = {0};
        size_t n_models = 0;
        struct manager_config cfg;
        struct manager *mgr = NULL;
        struct http_server *srv = NULL;
        struct api api = {.version = "0.1.0"};
        gid_t sock_gid = 0;
        sigset_t mask;
        int c, r, sig;

        vgpu_log_init("vgpud");
        if (vgpu_log_threshold < VGPU_LOG_INFO && !getenv("VGPU_LOG"))
                vgpu_log_set_level(VGPU_LOG_INFO);
        while ((c = getopt_long(argc, argv, "fvh", longopts, NULL)) != -1) {
                switch (c) {
                case 'b':
                        backend = optarg;
                        break;
                case 'g':
                        sim_gpus = optarg;
                        break;
                case 's':
                        state_dir = optarg;
                        break;
                case 'S':
                        socket_path = optarg;
                        break;
                case 'a':
                        admin = optarg;
                        break;
                case 'G':
                        sock_group = optarg;
                        break;
                case 'e':
                        snprintf(engine, sizeof(engine), "%s", optarg);
                        break;
                case 'R': {
                        char *end;
                        unsigned long long v;
                        enum sched_policy p;
                        uint32_t ms;

                        errno = 0;
                        v = strtoull(optarg, &end, 0);
                        if (errno || *end || optarg[0] == '-' || v > UINT32_MAX ||
                            sched_rmpvmrl_decode((uint32_t)v, &p, &ms) < 0) {
                                vgpu_log(VGPU_LOG_ERROR,
                                         "--rmpvmrl '%s': not a valid RmPVMRL value (policy "
                                         "0x00, 0x01 or 0x11 in the low byte, time slice in ms "
                                         "in bits 16-23)",
                                         optarg);
                                return 2;
                        }
                        rmpvmrl = (int64_t)v;
                        break;
                }
                case 'M':
                        if (parse_listen(optarg, metrics_addr, sizeof(metrics_addr),
                                         &metrics_port) < 0) {
                                vgpu_log(VGPU_LOG_ERROR,
                                         "--metrics-listen '%s': want ADDR[:PORT], an IPv4 or "
                                         "[IPv6] address and a port 1..65535",
                                         optarg);
                                return 2;
                        }
                        break;
                case 'L':
                        lcfg.server = optarg;
                        break;
                case 'K':
                        lcfg.public_key = optarg;
                        break;
                case 'C':
                        lcfg.ca_file = optarg;
                        break;
                case 'T':
                        lcfg.token_file = optarg;
                        break;
                case 'g' + 256: {
                        char *end;
                        long long v;

                        errno = 0;
                        v = strtoll(optarg, &end, 10);
                        if (errno || *end || !optarg[0] || v < 0 || v > 100LL * 365 * 86400) {
                                vgpu_log(VGPU_LOG_ERROR, "--license-grace '%s': seconds", optarg);
                                return 2;
                        }
                        lcfg.grace_s = v;
                        break;
                }
                case 'm' + 256:
                        migrate_secret = optarg;
                        break;
                case 'l' + 256:
                        migrate_listen = optarg;
                        break;
                case 's' + 256:
                        guest_secret = optarg;
                        break;
                case 'L' + 256:
                        guest_listen = optarg;
                        break;
                case 'A' + 256:
                        mig_admin = true;
                        break;
                case 'F' + 256:
                        forget_gone = true;
                        break;
                case 'f':
                        break; /* vgpud always stays in the foreground; systemd runs it as is */
                case 'v':
                        vgpu_log_set_level(VGPU_LOG_DEBUG);
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                vgpu_log(VGPU_LOG_ERROR, "unexpected argument '%s'", argv[optind]);
                return 2;
        }
        if (strcmp(backend, "sim") != 0 && strcmp(backend, "cuda") != 0) {
                vgpu_log(VGPU_LOG_ERROR, "unknown backend '%s' (known: sim, cuda)", backend);
                return 2;
        }
        if (mig_admin && strcmp(backend, "cuda") != 0) {
                vgpu_log(VGPU_LOG_ERROR, "--mig-admin is for --backend cuda (the sim's GPU "
                                         "instances are vgpud's own to make)");
                return 2;
        }
        if (strcmp(backend, "cuda") == 0) {
                r = find_gpus(models, uuids, bus_ids, &n_models);
                if (r < 0)
                        return 1;
                sim_gpus = "";
        }
        snprintf(list, sizeof(list), "%s", sim_gpus);
        for (char *save = NULL, *t = strtok_r(list, ",", &save); t;
             t = strtok_r(NULL, ",", &save)) {
                if (n_models == VGPUD_MAX_GPUS) {
                        vgpu_log(VGPU_LOG_ERROR, "at most %d GPUs", VGPUD_MAX_GPUS);
                        return 2;
                }
                models[n_models++] = t;
        }
        if (!n_models && strcmp(backend, "cuda") == 0) {
                vgpu_log(VGPU_LOG_ERROR, "no GPU of the catalog to serve");
                return 1;
        }
        if (!n_models) {
                vgpu_log(VGPU_LOG_ERROR, "--sim-gpus needs at least one model");
                return 2;
        }
        if ((admin && group_id(admin, &api.admin_gid) < 0) ||
            (sock_group && group_id(sock_group, &sock_gid) < 0)) {
                vgpu_log(VGPU_LOG_ERROR, "unknown group '%s'",
                         admin && group_id(admin, &api.admin_gid) < 0 ? admin : sock_group);
                return 2;
        }
        if (!sock_group)
                sock_gid = api.admin_gid;
        if (!engine[0])
                default_engine(engine, sizeof(engine));
        if (access(engine, X_OK) < 0) {
                vgpu_log(VGPU_LOG_ERROR, "engine binary %s: %s (--engine PATH)", engine,
                         strerror(errno));
                return 1;
        }

        /* Signals are taken synchronously below; engines start with an empty mask. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        cfg = (struct manager_config){.state_dir = state_dir,
                                      .backend = backend,
                                      .sim_gpus = models,
                                      .n_sim_gpus = n_models,
                                      .gpu_uuids = strcmp(backend, "cuda") == 0 ? uuids : NULL,
                                      .gpu_bus_ids = bus_ids,
                                      .rmpvmrl = rmpvmrl,
                                      .mig_admin = mig_admin,
                                      .forget_gone_gpus = forget_gone,
                                      .engine_path = engine};
        r = manager_new(&cfg, &mgr);
        if (r < 0) {
                vgpu_log(VGPU_LOG_ERROR, "cannot start: %s", vgpu_strerror(r));
                return 1;
        }
        api.mgr = mgr;
        if (lcfg.server || lcfg.public_key) {
                char why[512] = "";

                r = licensing_new(&lcfg, mgr, &lic, why, sizeof(why));
                if (r < 0) {
                        vgpu_log(VGPU_LOG_ERROR, "licensing: %s", why);
                        manager_free(mgr);
                        return 2;
                }
                manager_lock(mgr);
                mgr->lic = lic;
                manager_unlock(mgr);
                vgpu_log(VGPU_LOG_INFO, "licensing: leases from %s", lcfg.server);
        } else {
                vgpu_log(VGPU_LOG_INFO, "licensing is off (no --license-server): vGPUs run "
                                        "unlicensed at full speed");
        }
        if (migrate_listen && !migrate_secret) {
                vgpu_log(VGPU_LOG_ERROR, "--migrate-listen needs --migrate-secret FILE");
                manager_free(mgr);
                return 2;
        }
        if (migrate_secret) {
                char why[512] = "";

                r = migrate_peer_new(mgr, migrate_listen, migrate_secret, false, &api.peer, why,
                                     sizeof(why));
                if (r < 0) {
                        vgpu_log(VGPU_LOG_ERROR, "migration: %s", why);
                        manager_free(mgr);
                        return 2;
                }
                if (migrate_listen)
                        vgpu_log(VGPU_LOG_INFO, "taking migrations on %s (port %d)", migrate_listen,
                                 migrate_peer_port(api.peer));
        }
        if (!guest_listen != !guest_secret) {
                vgpu_log(VGPU_LOG_ERROR, "--guest-listen and --guest-secret go together");
                manager_free(mgr);
                return 2;
        }
        if (guest_listen) {
                char why[512] = "";

                r = migrate_peer_new(mgr, guest_listen, guest_secret, true, &guest_peer, why,
                                     sizeof(why));
                if (r < 0) {
                        vgpu_log(VGPU_LOG_ERROR, "remote guests: %s", why);
                        manager_free(mgr);
                        return 2;
                }
                migrate_peer_set_guest_port(api.peer, migrate_peer_port(guest_peer));
                vgpu_log(VGPU_LOG_INFO, "taking remote guests on %s (port %d)", guest_listen,
                         migrate_peer_port(guest_peer));
        }
        r = mkdir_parent(socket_path);
        if (r == 0)
                r = http_server_new(&(struct http_server_config){.unix_path = socket_path,
                                                                 .unix_mode = 0660,
                                                                 .unix_gid = sock_gid,
                                                                 .unix_threads = 4},
                                    api_handle, &api, &srv);
        if (r < 0) {
                vgpu_log(VGPU_LOG_ERROR, "control socket %s: %s", socket_path,
                         r == -EADDRINUSE ? "another vgpud is serving there" : strerror(-r));
                manager_free(mgr);
                return 1;
        }
        if (metrics_addr[0]) {
                r = http_server_new(&(struct http_server_config){.tcp_addr = metrics_addr,
                                                                 .tcp_port = metrics_port,
                                                                 .tcp_plain = true},
                                    api_metrics, &api, &metrics_srv);
                if (r < 0) {
                        vgpu_log(VGPU_LOG_ERROR, "--metrics-listen %s port %u: %s", metrics_addr,
                                 metrics_port, strerror(-r));
                        http_server_free(srv);
                        manager_free(mgr);
                        return 1;
                }
                vgpu_log(VGPU_LOG_INFO, "metrics on http://%s:%u/metrics", metrics_addr,
                         http_server_tcp_port(metrics_srv));
        }
        vgpu_log(VGPU_LOG_INFO, "serving %zu %s GPU(s) on %s, state in %s", n_models, backend,
                 socket_path, state_dir);
        printf("READY\n");
        fflush(stdout);

        while (sigwait(&mask, &sig) == 0 && sig == SIGHUP)
                ;
        vgpu_log(VGPU_LOG_INFO, "signal %d: shutting down; engines keep running", sig);
        http_server_free(metrics_srv);
        http_server_free(srv);
        migrate_peer_free(guest_peer);
        migrate_peer_free(api.peer);
        manager_lock(mgr);
        mgr->lic = NULL;
        manager_unlock(mgr);
        licensing_free(lic);
        manager_free(mgr);
        return 0;
}
