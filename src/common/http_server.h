/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_server: an HTTP/1.1 + JSON server on a Unix socket and/or TCP with TLS (libmicrohttpd
 * underneath; its TLS is GnuTLS). It reads and bounds request bodies, gives the handler the peer's
 * credentials (Unix socket), headers and query, and sends the handler's status and JSON. Handlers
 * run one at a time, on the server's threads.
 */
#ifndef VGPU_COMMON_HTTP_SERVER_H
#define VGPU_COMMON_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

/* The largest request body accepted; larger gets 413. */
#define HTTP_MAX_BODY (64 * 1024)

struct http_request {
        const char *method; /* "GET", "POST", ... */
        const char *path;   /* "/v1/vgpus/x", without the query */
        const char *body;   /* raw body, NUL-terminated ("" when empty) */
        size_t body_len;
        bool have_cred; /* peer credentials known (Unix socket) */
        bool tls;       /* the request came over the TCP+TLS listener */
        uid_t uid;
        gid_t gid;
        pid_t pid;
        /* Query lookup: the value of ?key=..., or NULL. */
        const char *(*query)(const struct http_request *req, const char *key);
        void *conn; /* the server's connection, for query() and header() */
        /* Header lookup (name case-insensitive): the value, or NULL. NULL when not provided. */
        const char *(*header)(const struct http_request *req, const char *name);
};

/* What a handler answers: an HTTP status and a JSON body (NULL: empty) or a text body. */
struct http_response {
        int status;
        json_t *json; /* owned by the response; freed after sending */
        char *text;   /* malloc'd text body (used when json is NULL), freed after sending */
        const char *content_type; /* for text; default "text/plain; version=0.0.4" */
};

typedef void (*http_handler_fn)(void *ctx, const struct http_request *req,
                                struct http_response *resp);

struct http_server_config {
        const char *unix_path; /* socket path; a stale socket there is replaced; NULL: none */
        mode_t unix_mode;      /* e.g. 0660 */
        gid_t unix_gid;        /* group of the socket; (gid_t)-1 keeps the default */
        /* Optional TCP listener with TLS: tcp_addr (an IPv4 or IPv6 address; NULL: none) and
         * tcp_port (0: any free port, see http_server_tcp_port), with the certificate chain and
         * private key as PEM text. Both listeners share one handler, one request at a time.
         */
        const char *tcp_addr;
        unsigned short tcp_port;
        const char *tls_cert_pem;
        const char *tls_key_pem;
        bool tcp_plain; /* TCP without TLS (a metrics endpoint that serves nothing secret) */
        /*
         * The Unix socket's requests: 0 or 1, one at a time; N > 1, up to N at once on a pool of
         * threads, so that a long request (a suspend) does not hold the others. The handler
         * then guards its own state.
         */
        unsigned unix_threads;
};

struct http_server;

/*
 * http_server_new - listen on cfg->unix_path and/or cfg->tcp_addr:tcp_port (TLS) and serve with
 * handler(ctx, ...) on threads of the server's own, one request at a time. Refuses (-EADDRINUSE)
 * when a live server already answers on that path or port; -EINVAL when neither listener is
 * asked for or TLS lacks its certificate or key; -ENOTSUP when libmicrohttpd has no TLS.
 * Returns 0 and *ret, or a negative errno.
 */
int http_server_new(const struct http_server_config *cfg, http_handler_fn handler, void *ctx,
                    struct http_server **ret);

/* http_server_tcp_port - the TCP port listened on (the one picked for port 0), or 0 for none. */
unsigned short http_server_tcp_port(const struct http_server *s);

/* http_server_free - stop serving, close and unlink the socket. NULL does nothing. */
void http_server_free(struct http_server *s);

/* http_peer_in_group - whether the peer (uid, gid) is root, has gid, or is a member of gid. */
bool http_peer_in_group(uid_t uid, gid_t peer_gid, gid_t gid);

#endif
