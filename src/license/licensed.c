// SPDX-License-Identifier: Apache-2.0
// vgpu-licensed, the license lease server: `--init DIR` makes its secrets; otherwise it opens the
// state in DIR, serves the API on a Unix socket and optionally TCP+TLS, says READY on stdout once
// serving, and stops cleanly on SIGTERM or SIGINT. Any state survives kill -9 (license_store.h).
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/http_server.h"
#include "common/log.h"
#include "license/lease.h"
#include "license/license_api.h"
#include "license/license_store.h"
#include "license/licensed_init.h"

#define LICENSED_VERSION "0.1.0"

static void usage(FILE *f)
{
        fputs("usage: vgpu-licensed --init DIR [--hostname NAME]\n"
              "       vgpu-licensed --dir DIR [--socket PATH] [--listen ADDR:PORT]\n"
              "                     [--lease-seconds N] [--renew-fraction F] [--verbose]\n"
              "                     [--clock-file PATH]   (tests only: the time is read from it)\n"
              "defaults: --socket /run/vgpu/licensed.sock, no TCP listener,\n"
              "          --lease-seconds 604800 (7 days), --renew-fraction 0.15\n",
              f);
}

/* Read a small text file whole (PEM, token) into a malloc'd string; trailing newlines stay. */
static int read_text(const char *dir, const char *file, char **ret)
{
        char path[PATH_MAX], *buf;
        long n;
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, file);
        f = fopen(path, "re");
        if (!f)
                return -errno;
        buf = calloc(1, 65536);
        if (!buf) {
                fclose(f);
                return -ENOMEM;
        }
        n = (long)fread(buf, 1, 65535, f);
        fclose(f);
        if (n <= 0 || n == 65535) {
                free(buf);
                return -EINVAL;
        }
        *ret = buf;
        return 0;
}

/* "127.0.0.1:8443" or "[::1]:8443" into addr (NUL-terminated in buf) and port. */
static int parse_listen(char *s, const char **ret_addr, unsigned short *ret_port)
{
        char *colon = strrchr(s, ':'), *end;
        unsigned long port;

        if (!colon || colon == s)
                return -EINVAL;
        *colon = '\0';
        port = strtoul(colon + 1, &end, 10);
        if (!colon[1] || *end || port > 65535)
                return -EINVAL;
        if (s[0] == '[') {
                size_t n = strlen(s);

                if (n < 3 || s[n - 1] != ']')
                        return -EINVAL;
                s[n - 1] = '\0';
                s++;
        }
        *ret_addr = s;
        *ret_port = (unsigned short)port;
        return 0;
}

static int lock_dir(const char *dir, int *ret_fd)
{
        char path[PATH_MAX];
        int fd;

        snprintf(path, sizeof(path), "%s/%s", dir, LICENSED_LOCK);
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                close(fd);
                return -EBUSY;
        }
        *ret_fd = fd;
        return 0;
}

static int serve(const char *dir, const char *socket_path, char *listen, struct license_api *api)
{
        struct http_server_config cfg = {
                .unix_path = socket_path, .unix_mode = 0666, .unix_gid = (gid_t)-1};
        char path[PATH_MAX], *token = NULL, *ctoken = NULL, *cert = NULL, *tkey = NULL;
        struct lease_key *key = NULL;
        struct license_store *store = NULL;
        struct http_server *srv = NULL;
        sigset_t mask;
        int r, sig, lock_fd = -1;

        r = lock_dir(dir, &lock_fd);
        if (r < 0) {
                vgpu_log(VGPU_LOG_ERROR, "%s: %s", dir,
                         r == -EBUSY ? "another vgpu-licensed serves this directory"
                                     : strerror(-r));
                return 1;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, LICENSED_SIGNING_KEY);
        r = lease_key_load(path, true, &key);
        if (r < 0) {
                vgpu_log(VGPU_LOG_ERROR, "%s: %s (run vgpu-licensed --init %s first)", path,
                         r == -EKEYREJECTED ? "not an Ed25519 private key" : strerror(-r), dir);
                goto out;
        }
        r = read_text(dir, LICENSED_ADMIN_TOKEN, &token);
        if (r < 0) {
                vgpu_log(VGPU_LOG_ERROR, "%s/%s: %s", dir, LICENSED_ADMIN_TOKEN, strerror(-r));
                goto out;
        }
        token[strcspn(token, "\r\n")] = '\0';
        r = read_text(dir, LICENSED_CLIENT_TOKEN, &ctoken);
        if (r < 0 && r != -ENOENT) {
                vgpu_log(VGPU_LOG_ERROR, "%s/%s: %s", dir, LICENSED_CLIENT_TOKEN, strerror(-r));
                goto out;
        }
        if (ctoken)
                ctoken[strcspn(ctoken, "\r\n")] = '\0';
        else if (listen)
                vgpu_log(VGPU_LOG_WARN, "no %s/%s: anyone who reaches the TCP port may take leases",
                         dir, LICENSED_CLIENT_TOKEN);
        if (listen) {
                r = parse_listen(listen, &cfg.tcp_addr, &cfg.tcp_port);
                if (r < 0) {
                        vgpu_log(VGPU_LOG_ERROR, "--listen wants ADDR:PORT (127.0.0.1:8443, "
                                                 "[::]:8443)");
                        goto out;
                }
                r = read_text(dir, LICENSED_TLS_CERT, &cert);
                if (r == 0)
                        r = read_text(dir, LICENSED_TLS_KEY, &tkey);
                if (r < 0) {
                        vgpu_log(VGPU_LOG_ERROR, "%s: the TLS certificate or key: %s", dir,
                                 strerror(-r));
                        goto out;
                }
                cfg.tls_cert_pem = cert;
                cfg.tls_key_pem = tkey;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, LICENSED_DB);
        r = license_store_open(path, &store);
        if (r < 0) {
                vgpu_log(VGPU_LOG_ERROR, "%s: cannot open the license database (%s)", path,
                         strerror(-r));
                goto out;
        }
        api->store = store;
        api->key = key;
        api->admin_token = token;
        api->client_token = ctoken;
        api->admin_uid = getuid();
        r = lease_key_public_b64(key, api->public_key, sizeof(api->public_key));
        if (r < 0)
                goto out;
        /* Block the signals before the server's threads start, so they inherit the mask. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);
        r = http_server_new(&cfg, license_api_handle, api, &srv);
        if (r < 0) {
                vgpu_log(VGPU_LOG_ERROR, "cannot serve on %s%s%s: %s",
                         socket_path ? socket_path : "", socket_path && cfg.tcp_addr ? " and " : "",
                         cfg.tcp_addr ? cfg.tcp_addr : "", strerror(-r));
                goto out;
        }
        if (socket_path)
                vgpu_log(VGPU_LOG_INFO, "serving on %s", socket_path);
        if (cfg.tcp_addr)
                vgpu_log(VGPU_LOG_INFO, "serving https on %s%s%s:%u",
                         strchr(cfg.tcp_addr, ':') ? "[" : "", cfg.tcp_addr,
                         strchr(cfg.tcp_addr, ':') ? "]" : "", http_server_tcp_port(srv));
        printf("READY\n");
        fflush(stdout);
        while (sigwait(&mask, &sig) != 0)
                ;
        vgpu_log(VGPU_LOG_INFO, "stopping (signal %d)", sig);
        r = 0;
out:
        http_server_free(srv);
        license_store_close(store);
        lease_key_free(key);
        if (token)
                memset(token, 0, strlen(token));
        free(token);
        free(ctoken);
        free(cert);
        free(tkey);
        if (lock_fd >= 0)
                close(lock_fd);
        return r < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                {"init", required_argument, NULL, 'i'},
                {"hostname", required_argument, NULL, 'H'},
                {"dir", required_argument, NULL, 'd'},
                {"socket", required_argument, NULL, 'S'},
                {"listen", required_argument, NULL, 'l'},
                {"lease-seconds", required_argument, NULL, 'L'},
                {"renew-fraction", required_argument, NULL, 'R'},
                {"clock-file", required_argument, NULL, 'C'},
                {"verbose", no_argument, NULL, 'v'},
                {"help", no_argument, NULL, 'h'},
                {NULL, 0, NULL, 0},
        };
        struct license_api api = {.version = LICENSED_VERSION,
                                  .lease_length = LICENSE_DEFAULT_LEASE_S,
                                  .renew_fraction = LICENSE_DEFAULT_RENEW_FRACTION};
        const char *init = NULL, *hostname = NULL, *dir = NULL;
        const char *socket_path = "/run/vgpu/licensed.sock";
        char *listen = NULL, *end;
        int c, r;

        vgpu_log_init("vgpu-licensed");
        if (vgpu_log_threshold < VGPU_LOG_INFO && !getenv("VGPU_LOG"))
                vgpu_log_set_level(VGPU_LOG_INFO);
        while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
                switch (c) {
                case 'i':
                        init = optarg;
                        break;
                case 'H':
                        hostname = optarg;
                        break;
                case 'd':
                        dir = optarg;
                        break;
                case 'S':
                        socket_path = *optarg ? optarg : NULL;
                        break;
                case 'l':
                        listen = optarg;
                        break;
                case 'L':
                        errno = 0;
                        api.lease_length = strtoll(optarg, &end, 10);
                        if (errno || *end || api.lease_length < 1 ||
                            api.lease_length > 10LL * 365 * 86400) {
                                fprintf(stderr, "vgpu-licensed: --lease-seconds wants 1 to "
                                                "315360000\n");
                                return 2;
                        }
                        break;
                case 'R':
                        api.renew_fraction = strtod(optarg, &end);
                        if (*end || !(api.renew_fraction > 0.0 && api.renew_fraction <= 1.0)) {
                                fprintf(stderr, "vgpu-licensed: --renew-fraction wants a number "
                                                "in (0, 1]\n");
                                return 2;
                        }
                        break;
                case 'C':
                        api.clock_file = optarg;
                        break;
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
        if (optind < argc || (!init && !dir) || (init && dir)) {
                usage(stderr);
                return 2;
        }
        if (init) {
                r = licensed_init(init, hostname);
                if (r == -EEXIST) {
                        vgpu_log(VGPU_LOG_ERROR,
                                 "%s is initialised already (%s exists); keeping it", init,
                                 LICENSED_SIGNING_KEY);
                        return 1;
                }
                if (r < 0) {
                        vgpu_log(VGPU_LOG_ERROR, "cannot initialise %s: %s (--verbose says more)",
                                 init, strerror(-r));
                        return 1;
                }
                printf("initialised %s: %s, %s, %s, %s, %s, %s\n", init, LICENSED_SIGNING_KEY,
                       LICENSED_SIGNING_PUB, LICENSED_ADMIN_TOKEN, LICENSED_CLIENT_TOKEN,
                       LICENSED_TLS_KEY, LICENSED_TLS_CERT);
                return 0;
        }
        if (api.clock_file) {
                int64_t now;

                if (license_clock_now(api.clock_file, &now) < 0) {
                        vgpu_log(VGPU_LOG_ERROR, "--clock-file %s holds no Unix time",
                                 api.clock_file);
                        return 1;
                }
                vgpu_log(VGPU_LOG_WARN, "test clock from %s: never use this in production",
                         api.clock_file);
        }
        if (!socket_path && !listen) {
                vgpu_log(VGPU_LOG_ERROR, "nothing to listen on: give --socket or --listen");
                return 2;
        }
        return serve(dir, socket_path, listen, &api);
}
