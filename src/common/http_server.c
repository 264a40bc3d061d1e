// SPDX-License-Identifier: Apache-2.0
// http_server: libmicrohttpd on a Unix socket we bind ourselves (so we own its mode and group) and
// optionally on a TCP socket with TLS, request bodies bounded and collected, peer credentials from
// SO_PEERCRED, JSON replies. One mutex keeps handlers one at a time across both listeners.
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "common/http_server.h"
#include "common/log.h"

struct http_server {
        struct MHD_Daemon *mhd; /* the Unix socket's daemon, or NULL */
        bool concurrent;        /* handlers run at once (config unix_threads > 1) */
        int fd;
        char *path;
        bool bound;                 /* path is our socket, to unlink at the end */
        struct MHD_Daemon *mhd_tls; /* the TCP daemon (TLS unless tcp_plain), or NULL */
        bool tcp_plain;
        int tcp_fd;
        unsigned short tcp_port;
        pthread_mutex_t lock; /* held around each handler call */
        http_handler_fn handler;
        void *ctx;
};

/* Per-request state while the body arrives. */
struct conn_state {
        char *body;
        size_t len;
        bool too_large;
};

static const char *conn_query(const struct http_request *req, const char *key)
{
        return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

static const char *conn_header(const struct http_request *req, const char *name)
{
        return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

static enum MHD_Result send_response(struct MHD_Connection *conn, struct http_response *r)
{
        struct MHD_Response *resp;
        enum MHD_Result ret;
        char *buf = NULL;
        size_t len = 0;
        const char *ctype = "application/json";

        if (r->json) {
                buf = json_dumps(r->json, JSON_COMPACT | JSON_PRESERVE_ORDER);
                json_decref(r->json);
                r->json = NULL;
                if (!buf)
                        return MHD_NO;
                len = strlen(buf);
                /* A trailing newline makes curl output readable; JSON parsers ignore it. */
                char *nl = realloc(buf, len + 2);
                if (!nl) {
                        free(buf);
                        return MHD_NO;
                }
                buf = nl;
                buf[len++] = '\n';
                buf[len] = '\0';
        } else if (r->text) {
                buf = r->text;
                r->text = NULL;
                len = strlen(buf);
                ctype = r->content_type ? r->content_type : "text/plain; version=0.0.4";
        }
        resp = MHD_create_response_from_buffer(
                len, buf ? buf : (void *)"", buf ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        if (!resp) {
                free(buf);
                return MHD_NO;
        }
        if (len)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
        ret = MHD_queue_response(conn, (unsigned int)r->status, resp);
        MHD_destroy_response(resp);
        return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
        struct http_server *s = cls;
        struct conn_state *cs = *con_cls;
        struct http_response resp = {0};
        struct http_request req = {0};
        const union MHD_ConnectionInfo *ci;

        (void)version;
        if (!cs) {
                cs = calloc(1, sizeof(*cs));
                if (!cs)
                        return MHD_NO;
                *con_cls = cs;
                return MHD_YES;
        }
        if (*upload_data_size) {
                if (!cs->too_large && cs->len + *upload_data_size <= HTTP_MAX_BODY) {
                        char *nb = realloc(cs->body, cs->len + *upload_data_size + 1);

                        if (!nb)
                                return MHD_NO;
                        cs->body = nb;
                        memcpy(cs->body + cs->len, upload_data, *upload_data_size);
                        cs->len += *upload_data_size;
                        cs->body[cs->len] = '\0';
                } else {
                        cs->too_large = true;
                }
                *upload_data_size = 0;
                return MHD_YES;
        }
        if (cs->too_large) {
                resp.status = 413;
                resp.json = json_pack("{s:{s:s, s:s}}", "error", "code", "PAYLOAD_TOO_LARGE",
                                      "message", "request body larger than 64 KiB");
                return send_response(conn, &resp);
        }
        req.method = method;
        req.path = url;
        req.body = cs->body ? cs->body : "";
        req.body_len = cs->len;
        req.query = conn_query;
        req.header = conn_header;
        req.conn = conn;
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
        req.tls = s->mhd_tls && !s->tcp_plain && ci && ci->daemon == s->mhd_tls;
        ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci && !req.tls) {
                struct ucred cred;
                socklen_t clen = sizeof(cred);

                if (getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) {
                        req.have_cred = true;
                        req.uid = cred.uid;
                        req.gid = cred.gid;
                        req.pid = cred.pid;
                }
        }
        if (!s->concurrent)
                pthread_mutex_lock(&s->lock);
        s->handler(s->ctx, &req, &resp);
        if (!s->concurrent)
                pthread_mutex_unlock(&s->lock);
        if (!resp.status)
                resp.status = 500;
        return send_response(conn, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        struct conn_state *cs = *con_cls;

        (void)cls;
        (void)conn;
        (void)toe;
        if (cs) {
                free(cs->body);
                free(cs);
                *con_cls = NULL;
        }
}

/* Replace a socket file nobody answers on; refuse when a server is live there. */
static int clear_stale(const char *path)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        struct stat st;
        int fd, r;

        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISSOCK(st.st_mode))
                return -EEXIST;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        strcpy(sa.sun_path, path);
        r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        close(fd);
        if (r == 0)
                return -EADDRINUSE;
        return unlink(path) < 0 ? -errno : 0;
}

/* Bind and listen on the Unix socket of cfg; fills s->fd and s->path. */
static int listen_unix(struct http_server *s, const struct http_server_config *cfg)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int r;

        if (strlen(cfg->unix_path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        s->path = strdup(cfg->unix_path);
        if (!s->path)
                return -ENOMEM;
        r = clear_stale(cfg->unix_path);
        if (r < 0)
                return r;
        s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s->fd < 0)
                return -errno;
        strcpy(sa.sun_path, cfg->unix_path);
        if (bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return -errno;
        s->bound = true;
        if (chmod(cfg->unix_path, cfg->unix_mode) < 0 ||
            (cfg->unix_gid != (gid_t)-1 && chown(cfg->unix_path, (uid_t)-1, cfg->unix_gid) < 0) ||
            listen(s->fd, 128) < 0) {
                r = -errno;
                unlink(cfg->unix_path);
                s->bound = false;
                return r;
        }
        return 0;
}

/* Bind and listen on cfg's TCP address; fills s->tcp_fd and s->tcp_port. */
static int listen_tcp(struct http_server *s, const struct http_server_config *cfg)
{
        struct sockaddr_storage ss = {0};
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        socklen_t len;
        int one = 1;

        if (inet_pton(AF_INET, cfg->tcp_addr, &a4->sin_addr) == 1) {
                a4->sin_family = AF_INET;
                a4->sin_port = htons(cfg->tcp_port);
                len = sizeof(*a4);
        } else if (inet_pton(AF_INET6, cfg->tcp_addr, &a6->sin6_addr) == 1) {
                a6->sin6_family = AF_INET6;
                a6->sin6_port = htons(cfg->tcp_port);
                len = sizeof(*a6);
        } else {
                return -EINVAL;
        }
        s->tcp_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s->tcp_fd < 0)
                return -errno;
        setsockopt(s->tcp_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(s->tcp_fd, (struct sockaddr *)&ss, len) < 0 || listen(s->tcp_fd, 128) < 0)
                return -errno;
        if (getsockname(s->tcp_fd, (struct sockaddr *)&ss, &len) < 0)
                return -errno;
        s->tcp_port = ntohs(ss.ss_family == AF_INET ? a4->sin_port : a6->sin6_port);
        return 0;
}

int http_server_new(const struct http_server_config *cfg, http_handler_fn handler, void *ctx,
                    struct http_server **ret)
{
        struct http_server *s;
        int r;

        if (!cfg->unix_path && !cfg->tcp_addr)
                return -EINVAL;
        if (cfg->tcp_addr && !cfg->tcp_plain && (!cfg->tls_cert_pem || !cfg->tls_key_pem))
                return -EINVAL;
        if (cfg->tcp_addr && !cfg->tcp_plain &&
            MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
                return -ENOTSUP;
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->fd = -1;
        s->tcp_fd = -1;
        s->handler = handler;
        s->ctx = ctx;
        pthread_mutex_init(&s->lock, NULL);
        if (cfg->unix_path) {
                r = listen_unix(s, cfg);
                if (r < 0)
                        goto err;
                s->concurrent = cfg->unix_threads > 1 && !cfg->tcp_addr;
                s->mhd = MHD_start_daemon(
                        MHD_USE_INTERNAL_POLLING_THREAD |
                                (s->concurrent ? MHD_USE_EPOLL : MHD_USE_POLL),
                        0, NULL, NULL, on_request, s, MHD_OPTION_LISTEN_SOCKET, s->fd,
                        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT,
                        (unsigned int)30, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)512,
                        MHD_OPTION_THREAD_POOL_SIZE,
                        (unsigned int)(s->concurrent ? cfg->unix_threads : 0), MHD_OPTION_END);
                if (!s->mhd) {
                        r = -EIO;
                        goto err;
                }
        }
        s->tcp_plain = cfg->tcp_plain;
        if (cfg->tcp_addr && cfg->tcp_plain) {
                r = listen_tcp(s, cfg);
                if (r < 0)
                        goto err;
                s->mhd_tls = MHD_start_daemon(
                        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, 0, NULL, NULL, on_request,
                        s, MHD_OPTION_LISTEN_SOCKET, s->tcp_fd, MHD_OPTION_NOTIFY_COMPLETED,
                        on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30,
                        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)512, MHD_OPTION_END);
                if (!s->mhd_tls) {
                        r = -EIO;
                        goto err;
                }
        } else if (cfg->tcp_addr) {
                r = listen_tcp(s, cfg);
                if (r < 0)
                        goto err;
                s->mhd_tls = MHD_start_daemon(
                        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_TLS, 0, NULL, NULL,
                        on_request, s, MHD_OPTION_LISTEN_SOCKET, s->tcp_fd,
                        MHD_OPTION_HTTPS_MEM_KEY, cfg->tls_key_pem, MHD_OPTION_HTTPS_MEM_CERT,
                        cfg->tls_cert_pem, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)30,
                        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)512, MHD_OPTION_END);
                if (!s->mhd_tls) {
                        r = -EIO;
                        goto err;
                }
        }
        *ret = s;
        return 0;

err:
        http_server_free(s);
        return r;
}

unsigned short http_server_tcp_port(const struct http_server *s)
{
        return s && s->mhd_tls ? s->tcp_port : 0; /* TLS or plain: the TCP listener's */
}

void http_server_free(struct http_server *s)
{
        if (!s)
                return;
        /* A daemon closes the listening socket it was given; close only those it never got. */
        if (s->mhd)
                MHD_stop_daemon(s->mhd);
        else if (s->fd >= 0)
                close(s->fd);
        if (s->mhd_tls)
                MHD_stop_daemon(s->mhd_tls);
        else if (s->tcp_fd >= 0)
                close(s->tcp_fd);
        if (s->bound)
                unlink(s->path);
        free(s->path);
        pthread_mutex_destroy(&s->lock);
        free(s);
}

bool http_peer_in_group(uid_t uid, gid_t peer_gid, gid_t gid)
{
        struct passwd pw, *pwp = NULL;
        char buf[4096];
        gid_t groups[256];
        int n = 256;

        if (uid == 0 || peer_gid == gid)
                return true;
        if (getpwuid_r(uid, &pw, buf, sizeof(buf), &pwp) != 0 || !pwp)
                return false;
        if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
                return false;
        for (int i = 0; i < n; i++) {
                if (groups[i] == gid)
                        return true;
        }
        return false;
}
