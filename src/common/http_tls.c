// SPDX-License-Identifier: Apache-2.0
// http_tls_openssl: the HTTP client's TLS with OpenSSL over a non-blocking socket: a verifying
// handshake under a deadline, then reads and writes that report what to wait for instead of
// blocking.
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "common/http_tls.h"
#include "common/log.h"

struct http_tls_session {
        SSL_CTX *ctx;
        SSL *ssl;
        int fd;
};

static int64_t mono_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * What a failed SSL call means: -EAGAIN with *events to wait for, 0 for the end of the stream, or
 * a negative errno.
 */
static long tls_outcome(SSL *ssl, int ret, short *events)
{
        int e = SSL_get_error(ssl, ret);
        unsigned long err;

        switch (e) {
        case SSL_ERROR_WANT_READ:
                *events = POLLIN;
                return -EAGAIN;
        case SSL_ERROR_WANT_WRITE:
                *events = POLLOUT;
                return -EAGAIN;
        case SSL_ERROR_ZERO_RETURN:
                return 0;
        case SSL_ERROR_SYSCALL:
                if (errno == EINTR) {
                        *events = POLLIN | POLLOUT;
                        return -EAGAIN;
                }
                ERR_clear_error();
                return errno ? -errno : -ECONNRESET;
        default:
                err = ERR_peek_last_error();
                vgpu_log(VGPU_LOG_DEBUG, "http: TLS: %s",
                         ERR_reason_error_string(err) ? ERR_reason_error_string(err) : "error");
                ERR_clear_error();
                return -ECONNRESET;
        }
}

static void tls_end(struct http_tls_session *s)
{
        if (!s)
                return;
        if (s->ssl) {
                SSL_shutdown(s->ssl);
                SSL_free(s->ssl);
        }
        SSL_CTX_free(s->ctx);
        ERR_clear_error();
        free(s);
}

static int tls_start(int fd, const char *host, const char *ca_file, int64_t deadline,
                     struct http_tls_session **ret)
{
        struct in6_addr a6;
        struct in_addr a4;
        bool is_ip = inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1;
        struct http_tls_session *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        s->fd = fd;
        s->ctx = SSL_CTX_new(TLS_client_method());
        if (!s->ctx) {
                r = -ENOMEM;
                goto err;
        }
        SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION);
        /* The HTTP framing (Content-Length, chunks) detects truncation; a peer that closes
         * without close_notify ends the stream like a plain socket.
         */
        SSL_CTX_set_options(s->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
        SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, NULL);
        if (SSL_CTX_load_verify_locations(s->ctx, ca_file, NULL) != 1) {
                vgpu_log(VGPU_LOG_DEBUG, "http: cannot load certificates from %s", ca_file);
                r = -EBADF;
                goto err;
        }
        s->ssl = SSL_new(s->ctx);
        if (!s->ssl || SSL_set_fd(s->ssl, fd) != 1) {
                r = -ENOMEM;
                goto err;
        }
        if (is_ip) {
                if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), host) != 1) {
                        r = -EINVAL;
                        goto err;
                }
        } else if (SSL_set_tlsext_host_name(s->ssl, host) != 1 ||
                   SSL_set1_host(s->ssl, host) != 1) {
                r = -EINVAL;
                goto err;
        }
        for (;;) {
                struct pollfd pfd = {.fd = fd, .events = POLLIN};
                int h = SSL_connect(s->ssl), left;
                long o;

                if (h == 1) {
                        *ret = s;
                        return 0;
                }
                if (SSL_get_verify_result(s->ssl) != X509_V_OK) {
                        vgpu_log(VGPU_LOG_DEBUG, "http: %s's certificate: %s", host,
                                 X509_verify_cert_error_string(SSL_get_verify_result(s->ssl)));
                        r = -EKEYREJECTED;
                        goto err;
                }
                o = tls_outcome(s->ssl, h, &pfd.events);
                if (o != -EAGAIN) {
                        r = o == 0 || o == -ECONNRESET ? -ECONNABORTED : (int)o;
                        goto err;
                }
                left = (int)(deadline - mono_ms());
                if (left <= 0) {
                        r = -ETIMEDOUT;
                        goto err;
                }
                if (poll(&pfd, 1, left) < 0 && errno != EINTR) {
                        r = -errno;
                        goto err;
                }
        }
err:
        /* No close_notify for a handshake that never finished. */
        SSL_free(s->ssl);
        s->ssl = NULL;
        tls_end(s);
        return r;
}

static long tls_send(struct http_tls_session *s, const char *buf, size_t len, short *ret_events)
{
        int n = SSL_write(s->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);

        return n > 0 ? n : tls_outcome(s->ssl, n, ret_events);
}

static long tls_recv(struct http_tls_session *s, char *buf, size_t len, short *ret_events)
{
        int n = SSL_read(s->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);

        return n > 0 ? n : tls_outcome(s->ssl, n, ret_events);
}

const struct http_tls_ops http_tls_openssl = {
        .start = tls_start,
        .send = tls_send,
        .recv = tls_recv,
        .end = tls_end,
};
