/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small HTTP/1.1 client for vgpud's control API: one request per connection (Connection: close),
 * JSON bodies (jansson), a deadline on the whole exchange. Every byte the server sends is checked;
 * a bad response is an error (-EPROTO), never a crash. Over a Unix socket, or TCP with TLS through
 * a TLS implementation the caller names (common/http_tls.h: OpenSSL, the server's certificate
 * checked against a CA file and the host name), so programs without TLS link no TLS library.
 */
#ifndef VGPU_COMMON_HTTP_CLIENT_H
#define VGPU_COMMON_HTTP_CLIENT_H

#include <stddef.h>

#include <jansson.h>

/* The default deadline of one exchange (connect, send, receive), milliseconds. */
#define HTTP_TIMEOUT_MS 30000

/* The largest response accepted: headers, and the body (after de-chunking). */
#define HTTP_MAX_HEADER_BYTES (64u << 10)
#define HTTP_MAX_BODY_BYTES   (64u << 20)

enum http_target_kind {
        HTTP_TARGET_UNIX = 0, /* a Unix stream socket at path */
        HTTP_TARGET_TLS = 1,  /* TCP to host:port, TLS (1.2 or later) verified against ca_file */
};

struct http_tls_ops; /* common/http_tls.h */

/* Where a request goes. The strings belong to the caller and must outlive the call. */
struct http_target {
        enum http_target_kind kind;
        const char *path; /* HTTP_TARGET_UNIX: the socket's path */
        int timeout_ms;   /* deadline of the whole exchange; <= 0: HTTP_TIMEOUT_MS */
        /* HTTP_TARGET_TLS: the server's name or address (checked against its certificate), its
         * port, and a PEM file of the certificates to trust (a CA, or the server's self-signed
         * certificate itself).
         */
        const char *host;
        unsigned short port;
        const char *ca_file;
        const struct http_tls_ops *tls; /* HTTP_TARGET_TLS: &http_tls_openssl (vgpu_http_tls) */
        const char *bearer; /* when not NULL: sent as "Authorization: Bearer <bearer>" */
};

/*
 * http_request - send one request to target and read the reply. method is a token ("GET"), path
 * the request target ("/v1/vgpus?gpu=0"; must start with '/', no spaces or control characters:
 * escape user input with http_escape). body, when not NULL, is sent as JSON (not stolen).
 * On success returns 0, sets *ret_status to the final HTTP status (200..599; interim 1xx
 * replies are skipped) and *ret_body to the parsed JSON body (any JSON value: the caller checks
 * its shape), or NULL when the body is empty or its Content-Type says it is not JSON (the caller
 * decrefs it). Fails with a negative errno, outputs untouched: -EINVAL (bad arguments),
 * -ENAMETOOLONG (socket path too long), -ENOENT / -ECONNREFUSED / -EACCES (cannot connect: no
 * socket, nobody listening, no permission), -ETIMEDOUT (deadline passed), -EPROTO (the response
 * is not valid HTTP/1.x or its body not JSON), -EMSGSIZE (response over the limits above),
 * -ECONNRESET, -ENOMEM, or another errno of socket I/O. With TLS also: -EHOSTUNREACH (the host
 * name does not resolve), -EBADF (ca_file cannot be read or holds no certificate),
 * -EKEYREJECTED (the server's certificate does not verify against ca_file or does not name
 * host), -ECONNABORTED (the TLS handshake failed otherwise). Details go to the debug log.
 * Thread-safe; never raises SIGPIPE.
 */
int http_request(const struct http_target *target, const char *method, const char *path,
                 json_t *body, int *ret_status, json_t **ret_body);

/* http_call - http_request to the Unix socket at socket_path with the default deadline. */
int http_call(const char *socket_path, const char *method, const char *path, json_t *body,
              int *ret_status, json_t **ret_body);

/*
 * http_escape - percent-encode s for use as one path segment or query value (everything but
 * A-Z a-z 0-9 - . _ ~ is encoded) into buf of len bytes, NUL-terminated. Returns 0, or -ENOSPC
 * when buf is too small (buf then holds an empty string if len > 0).
 */
int http_escape(const char *s, char *buf, size_t len);

#endif
