/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_server: an HTTP/1.1 + JSON server on a Unix socket (libmicrohttpd underneath). It reads and
 * bounds request bodies, parses JSON, gives the handler the peer's credentials, and sends the
 * handler's status and JSON. Handlers run one at a time on the server's thread.
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
        uid_t uid;
        gid_t gid;
        pid_t pid;
        /* Query lookup: the value of ?key=..., or NULL. */
        const char *(*query)(const struct http_request *req, const char *key);
        void *conn; /* the server's connection, for query() */
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
        const char *unix_path; /* socket path; a stale socket there is replaced */
        mode_t unix_mode;      /* e.g. 0660 */
        gid_t unix_gid;        /* group of the socket; (gid_t)-1 keeps the default */
};

struct http_server;

/*
 * http_server_new - listen on cfg->unix_path and serve with handler(ctx, ...) on a thread of the
 * server's own. Refuses (-EADDRINUSE) when a live server already answers on that path.
 * Returns 0 and *ret, or a negative errno.
 */
int http_server_new(const struct http_server_config *cfg, http_handler_fn handler, void *ctx,
                    struct http_server **ret);

/* http_server_free - stop serving, close and unlink the socket. NULL does nothing. */
void http_server_free(struct http_server *s);

/* http_peer_in_group - whether the peer (uid, gid) is root, has gid, or is a member of gid. */
bool http_peer_in_group(uid_t uid, gid_t peer_gid, gid_t gid);

#endif
