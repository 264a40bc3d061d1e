/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_tls: the TLS side of the HTTP client, as a constant ops table a struct http_target points
 * to, so only the programs that speak TLS (vgpuctl, the license client) link OpenSSL. One session
 * runs over a connected non-blocking TCP socket that its caller owns.
 */
#ifndef VGPU_COMMON_HTTP_TLS_H
#define VGPU_COMMON_HTTP_TLS_H

#include <stddef.h>
#include <stdint.h>

struct http_tls_session;

struct http_tls_ops {
        /*
         * start - the client handshake on fd (connected, non-blocking; not owned) before deadline
         * (CLOCK_MONOTONIC milliseconds): TLS 1.2 or later, the server's certificate verified
         * against the PEM certificates in ca_file and against host (a name or an IP address).
         * Returns 0 and *ret, or -EBADF (ca_file unreadable or without a certificate),
         * -EKEYREJECTED (the certificate does not verify or does not name host), -ETIMEDOUT,
         * -ECONNABORTED (the handshake failed otherwise), -ENOMEM, -EINVAL.
         */
        int (*start)(int fd, const char *host, const char *ca_file, int64_t deadline,
                     struct http_tls_session **ret);
        /*
         * send / recv - move up to len bytes. Return the count (> 0), 0 at the end of the stream
         * (recv; send: the peer closed), -EAGAIN with *ret_events set to the poll events to wait
         * for, or a negative errno.
         */
        long (*send)(struct http_tls_session *s, const char *buf, size_t len, short *ret_events);
        long (*recv)(struct http_tls_session *s, char *buf, size_t len, short *ret_events);
        /* end - a best-effort close_notify, then free the session (not the fd). */
        void (*end)(struct http_tls_session *s);
};

/* The OpenSSL implementation (library vgpu_http_tls). */
extern const struct http_tls_ops http_tls_openssl;

#endif
