// SPDX-License-Identifier: Apache-2.0
// migwire: the authenticated TCP wire between two vgpud daemons (and their engines) during a live
// migration, once a connection is made: the handshake, and frames sealed with AES-256-GCM carrying
// JSON messages and byte streams. The secret file and the addresses (listening, connecting) are
// migwire_net.c's.
//
// The protocol, version 1. Both daemons hold the same secret (a file of 16 to 4096 bytes, mode
// 0600 or stricter; its bytes are the key, a trailing newline included). HMAC is HMAC-SHA256; a
// label is its ASCII bytes without a terminating NUL; || is concatenation.
//
//  1. Client -> server: the 8 bytes "VGPUMIG1", then a nonce Nc of 32 random bytes.
//  2. Server -> client: "VGPUMIG1", a nonce Ns of 32 random bytes, then the server's proof
//     HMAC(secret, "vgpu-mig server" || Nc || Ns) (32 bytes).
//  3. The client checks the proof (in constant time). If it is wrong the client closes the
//     connection: "migration peer ... did not prove it holds the shared secret". Otherwise it sends
//     its own proof HMAC(secret, "vgpu-mig client" || Nc || Ns).
//  4. The server checks that proof; if it is wrong it closes without sending anything else. A side
//     that reads another magic than "VGPUMIG1" stops there: "not a vgpu migration peer (wrong
//     protocol or version)"; a server sends nothing to such a client.
//  5. Both derive the session key K = HMAC(secret, "vgpu-mig key" || Nc || Ns), and from it one
//     AES-256 key per direction: HMAC(K, "vgpu-mig c2s") for the frames from client to server,
//     HMAC(K, "vgpu-mig s2c") for those from server to client. (K, both sequence numbers and the
//     side are what a daemon hands to the process that takes the connection over.)
//  6. Then frames, in each direction: a 16-byte header {uint32 type, uint32 len, uint64 seq}, all
//     little-endian, in the clear; the len bytes of payload, encrypted with AES-256-GCM under the
//     direction's key; the 16-byte GCM tag. The GCM nonce is 12 bytes {uint32 d, uint64 seq}, both
//     little-endian, where d is 1 on frames from client to server and 2 on frames from server to
//     client; the additional authenticated data is the header. Types: 1, a message (a JSON object
//     in UTF-8, compact); 2, bytes of a data stream (its length is agreed by the messages around
//     it). len is at most 1 MiB (MW_FRAME_MAX). seq counts the frames of a direction from 0; a
//     receiver accepts only the seq it expects next, so a replayed, dropped or reordered frame is
//     refused. Each direction has its own key, so a frame reflected back to its own sender fails
//     its tag. The receiver checks type, len and seq from the header before it reads the payload,
//     and the tag before it hands out a byte. A bad frame ends the connection: nothing after it is
//     read.
//
// Every message of the handshake has a fixed size, and the whole handshake runs under one
// deadline, so a peer that has not proved anything can make the server neither allocate nor wait
// without bound. Fresh nonces on both sides make each session's keys, and so its frames, its own:
// frames recorded from one session are refused in any other. A (key, nonce) pair never seals two
// frames as long as seq only grows: a process that takes a connection over goes on from the seqs
// it was given, and the one that gave it sends nothing more. The payloads are secret; the headers
// are not: an observer sees the type, size and number of the frames.
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "common/log.h"
#include "common/migwire.h"
#include "common/migwire_net.h"

#define MW_MAGIC     "VGPUMIG1"
#define MW_MAGIC_LEN 8
#define MW_NONCE     32
#define MW_HDR       16
#define MW_BUF_MIN   (UINT32_C(64) << 10) /* rbuf's and sbuf's first size; each grows once */
#define MW_IV        12                   /* bytes of a GCM nonce: {uint32 d, uint64 seq} */
#define MW_DIR_C2S   1                    /* d of the nonces of frames from client to server */
#define MW_DIR_S2C   2

static const char label_server[] = "vgpu-mig server";
static const char label_client[] = "vgpu-mig client";
static const char label_key[] = "vgpu-mig key";
static const char label_c2s[] = "vgpu-mig c2s";
static const char label_s2c[] = "vgpu-mig s2c";

_Static_assert(sizeof(((struct mw_conn *)0)->key) == MW_MAC, "the session key is one HMAC");
_Static_assert(MW_MAC == 32, "a direction's AES-256 key is one HMAC");
_Static_assert(MW_FRAME_MAX <= INT_MAX, "EVP lengths are ints");

/* ---- errors ---- */

/*
 * The two sides of a connection (see struct mw_conn): the sending calls (mw_send, mw_send_json,
 * mw_write, mw_flush), whose sentence is tx_err and whose end is tx_dead, and the receiving ones
 * (mw_recv, mw_recv_json, mw_read), with err and dead. Each side writes only its own fields, so
 * one thread may send while another receives.
 */
enum mw_side {
        MW_RX,
        MW_TX,
};

_Static_assert(sizeof(((struct mw_conn *)0)->err) == MW_ERR_LEN, "mw_fail writes MW_ERR_LEN");
_Static_assert(sizeof(((struct mw_conn *)0)->tx_err) == MW_ERR_LEN, "mw_fail writes MW_ERR_LEN");

/* See migwire_net.h. */
int mw_fail(char *cerr, char *err, size_t errlen, int code, const char *fmt, ...)
{
        char msg[MW_ERR_LEN];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (cerr)
                snprintf(cerr, MW_ERR_LEN, "%s", msg);
        if (err && errlen)
                snprintf(err, errlen, "%s", msg);
        vgpu_log(VGPU_LOG_DEBUG, "migwire: %s", msg);
        return code;
}

/* The sentence of side s of c: what mw_fail writes for a failure on that side. */
static char *side_err(struct mw_conn *c, enum mw_side s)
{
        return s == MW_TX ? c->tx_err : c->err;
}

/* Where side s of c keeps the error that ended it (0 while it is usable). */
static int *side_dead(struct mw_conn *c, enum mw_side s)
{
        return s == MW_TX ? &c->tx_dead : &c->dead;
}

/* Hand side s's sentence to a caller's err when r is an error; return r. */
static int mw_pass(struct mw_conn *c, enum mw_side s, int r, char *err, size_t errlen)
{
        if (r < 0 && err && errlen)
                snprintf(err, errlen, "%s", side_err(c, s));
        return r;
}

/*
 * Mark side s of c unusable with error r, its sentence already in side_err(c, s); return r. The
 * store releases that sentence to the other side (mw_usable), and the side writes it no more: its
 * every later call stops in mw_usable.
 */
static int mw_kill(struct mw_conn *c, enum mw_side s, int r)
{
        int *dead = side_dead(c, s);

        if (!__atomic_load_n(dead, __ATOMIC_RELAXED)) /* only this side stores it */
                __atomic_store_n(dead, r, __ATOMIC_RELEASE);
        return r;
}

static const char *mw_peer(const struct mw_conn *c)
{
        return c->peer[0] ? c->peer : "(unknown)";
}

static int mw_timeout(const struct mw_conn *c)
{
        return c->timeout_ms > 0 ? c->timeout_ms : MW_TIMEOUT_DEFAULT;
}

/*
 * 0 when side s of c can carry frames; else the error, with the sentence in err. A connection that
 * the other side found unusable is unusable here too, with the other side's error and sentence.
 */
static int mw_usable(struct mw_conn *c, enum mw_side s, char *err, size_t errlen)
{
        enum mw_side o = s == MW_TX ? MW_RX : MW_TX;
        int dead;

        if (!c)
                return mw_fail(NULL, err, errlen, -EINVAL, "no migration connection was given");
        if (c->fd < 0)
                return mw_fail(side_err(c, s), err, errlen, -EBADF,
                               "the migration connection is closed");
        dead = __atomic_load_n(side_dead(c, s), __ATOMIC_RELAXED);
        if (!dead) {
                /* acquire: the other side wrote its sentence before, and never writes it again */
                dead = __atomic_load_n(side_dead(c, o), __ATOMIC_ACQUIRE);
                if (dead) {
                        memcpy(side_err(c, s), side_err(c, o), MW_ERR_LEN);
                        __atomic_store_n(side_dead(c, s), dead, __ATOMIC_RELEASE);
                }
        }
        if (dead) /* side s's sentence is still that of what ended the connection */
                return mw_pass(c, s, dead, err, errlen);
        return 0;
}

/* ---- I/O with timeouts ---- */

/* See migwire_net.h. */
int64_t mw_now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* See migwire_net.h. */
int mw_io_wait(int fd, short events, int timeout_ms, int64_t deadline)
{
        int64_t end = mw_now_ms() + timeout_ms;

        if (deadline && deadline < end)
                end = deadline;
        for (;;) {
                struct pollfd p = {.fd = fd, .events = events};
                int64_t left = end - mw_now_ms();
                int r;

                if (left <= 0)
                        return -ETIMEDOUT;
                r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
                if (r > 0)
                        return 0;
                if (r < 0 && errno != EINTR)
                        return -errno;
        }
}

/*
 * Read exactly len bytes. *ret_got: how many arrived, on failure too. Returns 0, -ECONNRESET (the
 * peer closed or reset the connection), -ETIMEDOUT, or -errno.
 */
static int io_recv(int fd, void *buf, size_t len, int timeout_ms, int64_t deadline, size_t *ret_got)
{
        size_t got = 0;
        int r = 0;

        while (got < len) {
                /* MSG_DONTWAIT: a blocking fd must not wait past the timeout either */
                ssize_t n = recv(fd, (uint8_t *)buf + got, len - got, MSG_DONTWAIT);

                if (n > 0) {
                        got += (size_t)n;
                        continue;
                }
                if (n == 0) {
                        r = -ECONNRESET;
                        break;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK) {
                        r = errno == EPIPE ? -ECONNRESET : -errno;
                        break;
                }
                r = mw_io_wait(fd, POLLIN, timeout_ms, deadline);
                if (r < 0)
                        break;
        }
        *ret_got = got;
        return r;
}

/* Send the n buffers of iov (which this changes) whole. *ret_sent: bytes sent. As io_recv. */
static int io_send(int fd, struct iovec *iov, size_t n, int timeout_ms, int64_t deadline,
                   size_t *ret_sent)
{
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = n};
        size_t sent = 0, k = 0;
        int r = 0;

        for (;;) {
                ssize_t w;

                /* step over what was sent, and over empty buffers */
                while (m.msg_iovlen > 0 && k >= m.msg_iov->iov_len) {
                        k -= m.msg_iov->iov_len;
                        m.msg_iov++;
                        m.msg_iovlen--;
                }
                if (m.msg_iovlen == 0)
                        break;
                m.msg_iov->iov_base = (uint8_t *)m.msg_iov->iov_base + k;
                m.msg_iov->iov_len -= k;
                k = 0;
                w = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w >= 0) {
                        sent += (size_t)w;
                        k = (size_t)w;
                        continue;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK) {
                        r = errno == EPIPE ? -ECONNRESET : -errno;
                        break;
                }
                r = mw_io_wait(fd, POLLOUT, timeout_ms, deadline);
                if (r < 0)
                        break;
        }
        *ret_sent = sent;
        return r;
}

/* ---- HMAC-SHA256 ---- */

struct mw_part {
        const void *p;
        size_t len;
};

static EVP_MAC *mw_hmac_alg;
static pthread_once_t mw_hmac_once = PTHREAD_ONCE_INIT;

static void mw_hmac_fetch(void)
{
        mw_hmac_alg = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
}

/* out = HMAC-SHA256(key, parts[0] || ... || parts[n-1]). 0, -ENOMEM or -EIO. */
static int mw_hmac(const uint8_t *key, size_t klen, const struct mw_part *parts, size_t n,
                   uint8_t out[MW_MAC])
{
        char digest[] = "SHA256";
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                OSSL_PARAM_construct_end(),
        };
        EVP_MAC_CTX *ctx;
        size_t outl = 0;
        int ok;

        pthread_once(&mw_hmac_once, mw_hmac_fetch);
        if (!mw_hmac_alg)
                return -EIO;
        ctx = EVP_MAC_CTX_new(mw_hmac_alg);
        if (!ctx)
                return -ENOMEM;
        ok = EVP_MAC_init(ctx, key, klen, params);
        for (size_t i = 0; ok && i < n; i++)
                ok = EVP_MAC_update(ctx, parts[i].p, parts[i].len);
        ok = ok && EVP_MAC_final(ctx, out, &outl, MW_MAC) && outl == MW_MAC;
        EVP_MAC_CTX_free(ctx);
        return ok ? 0 : -EIO;
}

/* HMAC-SHA256(secret, label || nc || ns): a proof of the handshake, or the session key. */
static int hs_mac(const uint8_t *secret, size_t slen, const char *label, const uint8_t *nc,
                  const uint8_t *ns, uint8_t out[MW_MAC])
{
        struct mw_part parts[] = {
                {label, strlen(label)},
                {nc, MW_NONCE},
                {ns, MW_NONCE},
        };

        return mw_hmac(secret, slen, parts, 3, out);
}

/* ---- the handshake ---- */

/* "10.0.0.2:9500", "[fe80::1]:9500", or "(local socket)": the peer of fd, for messages. */
static void peer_name(int fd, char *buf, size_t len)
{
        struct sockaddr_storage ss = {0};
        socklen_t sl = sizeof(ss);
        char host[INET6_ADDRSTRLEN];

        if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
                snprintf(buf, len, "(unknown)");
        } else if (ss.ss_family == AF_INET) {
                struct sockaddr_in *a = (struct sockaddr_in *)&ss;

                inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
                snprintf(buf, len, "%s:%u", host, (unsigned)ntohs(a->sin_port));
        } else if (ss.ss_family == AF_INET6) {
                struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

                inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
                snprintf(buf, len, "[%s]:%u", host, (unsigned)ntohs(a->sin6_port));
        } else {
                snprintf(buf, len, "(local socket)");
        }
}

/* One handshake: its fd, peer, deadline and where its error goes. */
struct hs {
        int fd;
        int timeout_ms;
        int64_t deadline;
        char peer[64];
        char *err;
        size_t errlen;
};

static int hs_io_fail(struct hs *h, int r, const char *hint)
{
        if (r == -ECONNRESET)
                return mw_fail(NULL, h->err, h->errlen, r,
                               "migration peer %s closed the connection during the handshake%s",
                               h->peer, hint);
        if (r == -ETIMEDOUT)
                return mw_fail(NULL, h->err, h->errlen, r,
                               "migration peer %s did not complete the handshake within %d ms",
                               h->peer, h->timeout_ms);
        return mw_fail(NULL, h->err, h->errlen, r,
                       "the handshake with migration peer %s failed: %s", h->peer, strerror(-r));
}

static int hs_recv(struct hs *h, void *buf, size_t len, const char *hint)
{
        size_t got;
        int r = io_recv(h->fd, buf, len, h->timeout_ms, h->deadline, &got);

        return r < 0 ? hs_io_fail(h, r, hint) : 0;
}

static int hs_send(struct hs *h, const void *buf, size_t len)
{
        struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
        size_t sent;
        int r = io_send(h->fd, &iov, 1, h->timeout_ms, h->deadline, &sent);

        return r < 0 ? hs_io_fail(h, r, "") : 0;
}

static int hs_start(struct hs *h, struct mw_conn *c, int fd, const uint8_t *secret, size_t slen,
                    int timeout_ms, char *err, size_t errlen)
{
        int one = 1;

        h->fd = fd;
        h->timeout_ms = timeout_ms > 0 ? timeout_ms : MW_TIMEOUT_DEFAULT;
        h->deadline = mw_now_ms() + h->timeout_ms;
        h->err = err;
        h->errlen = errlen;
        if (!c || fd < 0 || !secret || slen == 0)
                return mw_fail(NULL, err, errlen, -EINVAL,
                               "a migration handshake needs a connection, a socket and a secret");
        peer_name(fd, h->peer, sizeof(h->peer));
        /* small frames (messages) must not wait for Nagle; fails harmlessly on a Unix socket */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        return 0;
}

static int hs_magic(struct hs *h, const uint8_t *got)
{
        if (memcmp(got, MW_MAGIC, MW_MAGIC_LEN) == 0)
                return 0;
        return mw_fail(NULL, h->err, h->errlen, -EPROTO,
                       "%s is not a vgpu migration peer (wrong protocol or version)", h->peer);
}

static int hs_not_proved(struct hs *h)
{
        return mw_fail(NULL, h->err, h->errlen, -EKEYREJECTED,
                       "migration peer %s did not prove it holds the shared secret (are both "
                       "daemons configured with the same migration secret file?)",
                       h->peer);
}

/* Set up *c after a handshake that succeeded. */
static void conn_init(struct mw_conn *c, const struct hs *h, const uint8_t *key, bool server)
{
        *c = (struct mw_conn){.fd = h->fd, .timeout_ms = MW_TIMEOUT_DEFAULT, .server = server};
        memcpy(c->key, key, MW_MAC);
        snprintf(c->peer, sizeof(c->peer), "%s", h->peer);
}

int mw_auth_client(struct mw_conn *c, int fd, const uint8_t *secret, size_t slen, int timeout_ms,
                   char *err, size_t errlen)
{
        uint8_t hello[MW_MAGIC_LEN + MW_NONCE], reply[MW_MAGIC_LEN + MW_NONCE + MW_MAC];
        uint8_t want[MW_MAC], proof[MW_MAC], key[MW_MAC];
        const uint8_t *nc = hello + MW_MAGIC_LEN, *ns = reply + MW_MAGIC_LEN;
        struct hs h;
        int r;

        r = hs_start(&h, c, fd, secret, slen, timeout_ms, err, errlen);
        if (r < 0)
                return r;
        memcpy(hello, MW_MAGIC, MW_MAGIC_LEN);
        if (RAND_bytes(hello + MW_MAGIC_LEN, MW_NONCE) != 1)
                return mw_fail(NULL, err, errlen, -EIO, "the random number generator failed");
        r = hs_send(&h, hello, sizeof(hello));
        if (r < 0)
                return r;
        /* the magic alone first: a peer of another protocol may never send 72 bytes */
        r = hs_recv(&h, reply, MW_MAGIC_LEN, " (is a vgpud migration listener at that address?)");
        if (r < 0)
                return r;
        r = hs_magic(&h, reply);
        if (r < 0)
                return r;
        r = hs_recv(&h, reply + MW_MAGIC_LEN, MW_NONCE + MW_MAC, "");
        if (r < 0)
                return r;
        r = hs_mac(secret, slen, label_server, nc, ns, want);
        if (r < 0) {
                mw_fail(NULL, err, errlen, r, "computing the handshake's HMAC failed");
                goto out;
        }
        if (CRYPTO_memcmp(want, reply + MW_MAGIC_LEN + MW_NONCE, MW_MAC) != 0) {
                r = hs_not_proved(&h);
                goto out;
        }
        r = hs_mac(secret, slen, label_client, nc, ns, proof);
        if (r == 0)
                r = hs_mac(secret, slen, label_key, nc, ns, key);
        if (r < 0) {
                mw_fail(NULL, err, errlen, r, "computing the handshake's HMAC failed");
                goto out;
        }
        r = hs_send(&h, proof, sizeof(proof));
        if (r < 0)
                goto out;
        conn_init(c, &h, key, false);
out:
        OPENSSL_cleanse(proof, sizeof(proof));
        OPENSSL_cleanse(key, sizeof(key));
        return r;
}

int mw_auth_server(struct mw_conn *c, int fd, const uint8_t *secret, size_t slen, int timeout_ms,
                   char *err, size_t errlen)
{
        uint8_t hello[MW_MAGIC_LEN + MW_NONCE], reply[MW_MAGIC_LEN + MW_NONCE + MW_MAC];
        uint8_t want[MW_MAC], proof[MW_MAC], key[MW_MAC];
        const uint8_t *nc = hello + MW_MAGIC_LEN, *ns = reply + MW_MAGIC_LEN;
        struct hs h;
        int r;

        r = hs_start(&h, c, fd, secret, slen, timeout_ms, err, errlen);
        if (r < 0)
                return r;
        r = hs_recv(&h, hello, MW_MAGIC_LEN, "");
        if (r < 0)
                return r;
        r = hs_magic(&h, hello); /* nothing goes back to a stranger */
        if (r < 0)
                return r;
        r = hs_recv(&h, hello + MW_MAGIC_LEN, MW_NONCE, "");
        if (r < 0)
                return r;
        memcpy(reply, MW_MAGIC, MW_MAGIC_LEN);
        if (RAND_bytes(reply + MW_MAGIC_LEN, MW_NONCE) != 1)
                return mw_fail(NULL, err, errlen, -EIO, "the random number generator failed");
        r = hs_mac(secret, slen, label_server, nc, ns, reply + MW_MAGIC_LEN + MW_NONCE);
        if (r < 0)
                return mw_fail(NULL, err, errlen, r, "computing the handshake's HMAC failed");
        r = hs_send(&h, reply, sizeof(reply));
        if (r < 0)
                return r;
        /* a client that found our proof wrong closes here: it holds another secret */
        r = hs_recv(&h, proof, sizeof(proof), " (it may hold a different shared secret)");
        if (r < 0)
                return r;
        r = hs_mac(secret, slen, label_client, nc, ns, want);
        if (r < 0) {
                mw_fail(NULL, err, errlen, r, "computing the handshake's HMAC failed");
                goto out;
        }
        if (CRYPTO_memcmp(want, proof, MW_MAC) != 0) {
                r = hs_not_proved(&h);
                goto out;
        }
        r = hs_mac(secret, slen, label_key, nc, ns, key);
        if (r < 0) {
                mw_fail(NULL, err, errlen, r, "computing the handshake's HMAC failed");
                goto out;
        }
        conn_init(c, &h, key, true);
out:
        OPENSSL_cleanse(want, sizeof(want));
        OPENSSL_cleanse(key, sizeof(key));
        return r;
}

/* ---- frames ---- */

static void put_le32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
        uint32_t v = 0;

        for (int i = 3; i >= 0; i--)
                v = v << 8 | p[i];
        return v;
}

static uint64_t get_le64(const uint8_t *p)
{
        uint64_t v = 0;

        for (int i = 7; i >= 0; i--)
                v = v << 8 | p[i];
        return v;
}

/* The sentence for a failed read (MW_RX) or write (MW_TX) of a frame, in side s's; returns r. */
static int frame_io_fail(struct mw_conn *c, enum mw_side s, int r)
{
        bool sending = s == MW_TX;

        if (r == -ECONNRESET)
                return mw_fail(side_err(c, s), NULL, 0, r,
                               "migration peer %s closed the connection", mw_peer(c));
        if (r == -ETIMEDOUT)
                return mw_fail(side_err(c, s), NULL, 0, r, "migration peer %s %s within %d ms",
                               mw_peer(c), sending ? "took no data" : "sent nothing",
                               mw_timeout(c));
        return mw_fail(side_err(c, s), NULL, 0, r, "%s migration peer %s failed: %s",
                       sending ? "sending to" : "reading from", mw_peer(c), strerror(-r));
}

/* ---- AES-256-GCM ---- */

/*
 * The cipher context of side s of c (MW_TX: the direction c sends in) in *ret, keyed with
 * HMAC(c->key, "vgpu-mig c2s" or "vgpu-mig s2c") when first wanted. Each side makes and uses only
 * its own (and only reads key and server), so the two may do this at once. 0, or -ENOMEM or -EIO
 * with the sentence in side s's.
 */
static int gcm_ctx(struct mw_conn *c, enum mw_side s, EVP_CIPHER_CTX **ret)
{
        bool tx = s == MW_TX;
        EVP_CIPHER_CTX **slot = tx ? &c->tx_gcm : &c->rx_gcm;
        bool c2s = tx != c->server; /* a client sends, and a server receives, client to server */
        const char *label = c2s ? label_c2s : label_s2c;
        struct mw_part part = {label, strlen(label)};
        uint8_t k[MW_MAC];
        EVP_CIPHER_CTX *ctx;
        int ok;

        if (*slot) {
                *ret = *slot;
                return 0;
        }
        ctx = EVP_CIPHER_CTX_new();
        if (!ctx)
                return mw_fail(side_err(c, s), NULL, 0, -ENOMEM, "no memory for a cipher context");
        ok = mw_hmac(c->key, sizeof(c->key), &part, 1, k) == 0;
        /* the key now, the nonce per frame; 12 bytes is GCM's default nonce length */
        if (ok)
                ok = tx ? EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, k, NULL)
                        : EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, k, NULL);
        OPENSSL_cleanse(k, sizeof(k));
        if (!ok || EVP_CIPHER_CTX_get_iv_length(ctx) != MW_IV) {
                EVP_CIPHER_CTX_free(ctx);
                return mw_fail(side_err(c, s), NULL, 0, -EIO, "setting up AES-256-GCM failed");
        }
        *slot = ctx;
        *ret = ctx;
        return 0;
}

/* The nonce of frame seq in direction c2s: {uint32 d, uint64 seq}, little-endian. */
static void gcm_nonce(uint8_t iv[MW_IV], bool c2s, uint64_t seq)
{
        put_le32(iv, c2s ? MW_DIR_C2S : MW_DIR_S2C);
        put_le64(iv + 4, seq);
}

/*
 * Seal frame c->tx_seq: encrypt len bytes from p to out (which may be p), with hdr (MW_HDR bytes)
 * as the additional data, and put the tag in tag. 0, or -errno with the sentence in c->tx_err.
 */
static int gcm_seal(struct mw_conn *c, const uint8_t *hdr, const void *p, uint8_t *out,
                    uint32_t len, uint8_t tag[MW_TAG])
{
        EVP_CIPHER_CTX *ctx = NULL;
        uint8_t iv[MW_IV];
        int n = 0, ok = gcm_ctx(c, MW_TX, &ctx);

        if (ok < 0)
                return ok;
        gcm_nonce(iv, !c->server, c->tx_seq);
        ok = EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, iv) &&
             EVP_EncryptUpdate(ctx, NULL, &n, hdr, MW_HDR);
        if (ok && len)
                ok = EVP_EncryptUpdate(ctx, out, &n, p, (int)len) && n == (int)len;
        ok = ok && EVP_EncryptFinal_ex(ctx, tag, &n) && n == 0 &&
             EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, MW_TAG, tag);
        return ok ? 0 : mw_fail(c->tx_err, NULL, 0, -EIO, "encrypting a frame failed");
}

/*
 * Open the frame whose header is hdr and whose ciphertext and tag are in c->rbuf: decrypt in
 * place and check the tag. 0; -EBADMSG when the tag is wrong (what was decrypted is wiped, and
 * the caller says why); another -errno with the sentence in c->err.
 */
static int gcm_open(struct mw_conn *c, const uint8_t *hdr, uint64_t seq, uint32_t len)
{
        EVP_CIPHER_CTX *ctx = NULL;
        uint8_t iv[MW_IV], tag[MW_TAG];
        int n = 0, ok = gcm_ctx(c, MW_RX, &ctx);

        if (ok < 0)
                return ok;
        gcm_nonce(iv, c->server, seq);
        memcpy(tag, c->rbuf + len, MW_TAG); /* EVP wants it writable */
        ok = EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, iv) &&
             EVP_DecryptUpdate(ctx, NULL, &n, hdr, MW_HDR);
        if (ok && len)
                ok = EVP_DecryptUpdate(ctx, c->rbuf, &n, c->rbuf, (int)len) && n == (int)len;
        ok = ok && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, MW_TAG, tag);
        if (!ok)
                return mw_fail(c->err, NULL, 0, -EIO, "decrypting a frame failed");
        if (EVP_DecryptFinal_ex(ctx, tag, &n) <= 0) {
                OPENSSL_cleanse(c->rbuf, len); /* not one unverified byte stays */
                return -EBADMSG;
        }
        return 0;
}

/*
 * buf holds at least need bytes (at most MW_FRAME_MAX + MW_TAG; its contents are not kept), *cap
 * its size. 0 or -ENOMEM.
 */
static int buf_reserve(uint8_t **buf, uint32_t *cap, uint32_t need)
{
        uint32_t size = need <= MW_BUF_MIN ? MW_BUF_MIN : MW_FRAME_MAX + MW_TAG;
        uint8_t *b;

        if (*buf && *cap >= need)
                return 0;
        b = malloc(size);
        if (!b)
                return -ENOMEM;
        free(*buf);
        *buf = b;
        *cap = size;
        return 0;
}

/*
 * Send one frame of len bytes from p: encrypted in place when p is c->wbuf (which it spoils), else
 * into c->sbuf. A failure after the first byte, or other than a timeout, leaves the stream
 * unusable (marked so). 0 or -errno with the sentence in c->tx_err.
 */
static int frame_send(struct mw_conn *c, uint32_t type, const void *p, uint32_t len)
{
        uint8_t hdr[MW_HDR], tag[MW_TAG], *out = NULL;
        struct iovec iov[3];
        size_t sent = 0;
        int r;

        if (p && p == c->wbuf) {
                out = c->wbuf;
        } else if (len) {
                if (buf_reserve(&c->sbuf, &c->scap, len) < 0) {
                        mw_fail(c->tx_err, NULL, 0, -ENOMEM, "no memory for a frame of %u bytes",
                                len);
                        return mw_kill(c, MW_TX, -ENOMEM);
                }
                out = c->sbuf;
        }
        put_le32(hdr, type);
        put_le32(hdr + 4, len);
        put_le64(hdr + 8, c->tx_seq);
        r = gcm_seal(c, hdr, p, out, len, tag);
        if (r < 0)
                return mw_kill(c, MW_TX, r);
        iov[0] = (struct iovec){.iov_base = hdr, .iov_len = MW_HDR};
        iov[1] = (struct iovec){.iov_base = out, .iov_len = len};
        iov[2] = (struct iovec){.iov_base = tag, .iov_len = MW_TAG};
        r = io_send(c->fd, iov, 3, mw_timeout(c), 0, &sent);
        if (r < 0) {
                /*
                 * The next frame is sealed under this tx_seq again. That reuses the nonce safely
                 * only because not a byte of this one left: any other failure ends the stream.
                 */
                frame_io_fail(c, MW_TX, r);
                return sent > 0 || r != -ETIMEDOUT ? mw_kill(c, MW_TX, r) : r;
        }
        c->tx_seq++;
        c->bytes_tx += len;
        return 0;
}

static void frame_drop(struct mw_conn *c)
{
        c->rtype = 0;
        c->rlen = 0;
        c->roff = 0;
}

/*
 * Make sure a verified frame is held in rbuf: when none is, read the next one, checking its
 * header before reading its payload and its tag before keeping it. A timeout before the frame's
 * first byte leaves c usable; every other failure leaves it unusable. 0 or -errno (c->err).
 */
static int frame_next(struct mw_conn *c)
{
        uint8_t hdr[MW_HDR];
        uint32_t type, len;
        uint64_t seq;
        size_t got = 0;
        int r;

        if (c->rtype)
                return 0;
        r = io_recv(c->fd, hdr, MW_HDR, mw_timeout(c), 0, &got);
        if (r < 0) {
                frame_io_fail(c, MW_RX, r);
                return got > 0 || r != -ETIMEDOUT ? mw_kill(c, MW_RX, r) : r;
        }
        type = get_le32(hdr);
        len = get_le32(hdr + 4);
        seq = get_le64(hdr + 8);
        if (type != MW_MSG && type != MW_DATA) {
                mw_fail(c->err, NULL, 0, -EBADMSG,
                        "migration peer %s sent a frame of unknown type %u", mw_peer(c), type);
                return mw_kill(c, MW_RX, -EBADMSG);
        }
        if (len > MW_FRAME_MAX) {
                mw_fail(c->err, NULL, 0, -EBADMSG,
                        "migration peer %s announced a frame of %u bytes, over the limit of %u",
                        mw_peer(c), len, MW_FRAME_MAX);
                return mw_kill(c, MW_RX, -EBADMSG);
        }
        if (seq != c->rx_seq) {
                mw_fail(c->err, NULL, 0, -EBADMSG,
                        "migration peer %s sent frame %llu where frame %llu was due (a replayed, "
                        "dropped, reordered or corrupted frame)",
                        mw_peer(c), (unsigned long long)seq, (unsigned long long)c->rx_seq);
                return mw_kill(c, MW_RX, -EBADMSG);
        }
        if (buf_reserve(&c->rbuf, &c->rcap, len + MW_TAG) < 0) {
                mw_fail(c->err, NULL, 0, -ENOMEM, "no memory for a frame of %u bytes", len);
                return mw_kill(c, MW_RX, -ENOMEM);
        }
        r = io_recv(c->fd, c->rbuf, len + MW_TAG, mw_timeout(c), 0, &got);
        if (r < 0) {
                frame_io_fail(c, MW_RX, r);
                return mw_kill(c, MW_RX, r);
        }
        r = gcm_open(c, hdr, seq, len);
        if (r == -EBADMSG)
                mw_fail(c->err, NULL, 0, r,
                        "frame %llu from migration peer %s failed its integrity check "
                        "(corrupted, altered or reflected in transit, or sent under another key)",
                        (unsigned long long)seq, mw_peer(c));
        if (r < 0)
                return mw_kill(c, MW_RX, r);
        c->rx_seq++;
        c->bytes_rx += len;
        c->rtype = type;
        c->rlen = len;
        c->roff = 0;
        return 0;
}

/* Send what mw_write buffered. Any failure leaves c unusable. */
static int wbuf_flush(struct mw_conn *c)
{
        int r;

        if (c->wlen == 0)
                return 0;
        r = frame_send(c, MW_DATA, c->wbuf, c->wlen);
        if (r < 0)
                return mw_kill(c, MW_TX, r);
        c->wlen = 0;
        return 0;
}

int mw_send(struct mw_conn *c, uint32_t type, const void *p, uint32_t len, char *err, size_t errlen)
{
        int r = mw_usable(c, MW_TX, err, errlen);

        if (r < 0)
                return r;
        if (type != MW_MSG && type != MW_DATA)
                return mw_fail(c->tx_err, err, errlen, -EINVAL,
                               "frame type %u is not one migwire knows", type);
        if (len > MW_FRAME_MAX)
                return mw_fail(c->tx_err, err, errlen, -EMSGSIZE,
                               "a frame of %u bytes is over the limit of %u", len, MW_FRAME_MAX);
        if (!p && len)
                return mw_fail(c->tx_err, err, errlen, -EINVAL,
                               "a frame of %u bytes without its bytes", len);
        r = wbuf_flush(c);
        if (r == 0)
                r = frame_send(c, type, p, len);
        return mw_pass(c, MW_TX, r, err, errlen);
}

int mw_recv(struct mw_conn *c, uint32_t *ret_type, void *buf, uint32_t cap, uint32_t *ret_len,
            char *err, size_t errlen)
{
        uint32_t n;
        int r = mw_usable(c, MW_RX, err, errlen);

        if (r < 0)
                return r;
        if (!ret_type || !ret_len || (!buf && cap))
                return mw_fail(c->err, err, errlen, -EINVAL,
                               "mw_recv needs a type, a buffer and a length");
        r = frame_next(c);
        if (r < 0)
                return mw_pass(c, MW_RX, r, err, errlen);
        n = c->rlen - c->roff;
        if (n > cap)
                return mw_fail(c->err, err, errlen, -EMSGSIZE,
                               "a frame of %u bytes from migration peer %s does not fit a buffer "
                               "of %u",
                               n, mw_peer(c), cap);
        if (n)
                memcpy(buf, c->rbuf + c->roff, n);
        *ret_type = c->rtype;
        *ret_len = n;
        frame_drop(c);
        return 0;
}

int mw_send_json(struct mw_conn *c, json_t *o, char *err, size_t errlen)
{
        char *s;
        size_t n;
        int r = mw_usable(c, MW_TX, err, errlen);

        if (r < 0)
                return r;
        if (!json_is_object(o))
                return mw_fail(c->tx_err, err, errlen, -EINVAL,
                               "a migration message must be a JSON object");
        s = json_dumps(o, JSON_COMPACT);
        if (!s)
                return mw_fail(c->tx_err, err, errlen, -EINVAL,
                               "the migration message cannot be encoded as JSON");
        n = strlen(s);
        if (n > MW_FRAME_MAX)
                r = mw_fail(c->tx_err, err, errlen, -EMSGSIZE,
                            "a migration message of %zu bytes is over the limit of %u", n,
                            MW_FRAME_MAX);
        else
                r = mw_send(c, MW_MSG, s, (uint32_t)n, err, errlen);
        free(s);
        return r;
}

int mw_recv_json(struct mw_conn *c, json_t **ret, char *err, size_t errlen)
{
        json_error_t jerr;
        json_t *doc;
        int r = mw_usable(c, MW_RX, err, errlen);

        if (r < 0)
                return r;
        if (!ret)
                return mw_fail(c->err, err, errlen, -EINVAL,
                               "mw_recv_json needs somewhere to put it");
        r = frame_next(c);
        if (r < 0)
                return mw_pass(c, MW_RX, r, err, errlen);
        if (c->rtype != MW_MSG)
                return mw_fail(c->err, err, errlen, -EPROTO,
                               "migration peer %s sent stream data where a message was expected",
                               mw_peer(c));
        doc = json_loadb((const char *)c->rbuf + c->roff, c->rlen - c->roff, JSON_REJECT_DUPLICATES,
                         &jerr);
        frame_drop(c);
        if (!doc)
                return mw_fail(c->err, err, errlen, -EBADMSG,
                               "migration peer %s sent a message that is not JSON: %s", mw_peer(c),
                               jerr.text);
        if (!json_is_object(doc)) {
                json_decref(doc);
                return mw_fail(c->err, err, errlen, -EBADMSG,
                               "migration peer %s sent a message that is not a JSON object",
                               mw_peer(c));
        }
        *ret = doc;
        return 0;
}

/* ---- streams ---- */

int mw_write(struct mw_conn *c, const void *p, size_t len)
{
        const uint8_t *s = p;
        int r = mw_usable(c, MW_TX, NULL, 0);

        if (r < 0)
                return r;
        if (!p && len)
                return mw_fail(c->tx_err, NULL, 0, -EINVAL, "mw_write of %zu bytes without bytes",
                               len);
        while (len > 0) {
                uint32_t n;

                if (c->wlen == 0 && len >= MW_FRAME_MAX) {
                        /* a whole frame encrypted straight from the caller's memory */
                        r = frame_send(c, MW_DATA, s, MW_FRAME_MAX);
                        if (r < 0)
                                return mw_kill(c, MW_TX, r);
                        s += MW_FRAME_MAX;
                        len -= MW_FRAME_MAX;
                        continue;
                }
                if (!c->wbuf) {
                        c->wbuf = malloc(MW_FRAME_MAX);
                        if (!c->wbuf) {
                                mw_fail(c->tx_err, NULL, 0, -ENOMEM,
                                        "no memory for a migration stream");
                                return mw_kill(c, MW_TX, -ENOMEM);
                        }
                }
                n = MW_FRAME_MAX - c->wlen;
                if (n > len)
                        n = (uint32_t)len;
                memcpy(c->wbuf + c->wlen, s, n);
                c->wlen += n;
                s += n;
                len -= n;
                if (c->wlen == MW_FRAME_MAX) {
                        r = wbuf_flush(c);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int mw_flush(struct mw_conn *c)
{
        int r = mw_usable(c, MW_TX, NULL, 0);

        return r < 0 ? r : wbuf_flush(c);
}

int mw_read(struct mw_conn *c, void *p, size_t len)
{
        uint8_t *d = p;
        int r = mw_usable(c, MW_RX, NULL, 0);

        if (r < 0)
                return r;
        if (!p && len)
                return mw_fail(c->err, NULL, 0, -EINVAL, "mw_read of %zu bytes without a buffer",
                               len);
        while (len > 0) {
                uint32_t n;

                r = frame_next(c);
                if (r < 0) /* a timeout too: what this call read so far is consumed */
                        return mw_kill(c, MW_RX, r);
                if (c->rtype != MW_DATA)
                        return mw_fail(c->err, NULL, 0, -EPROTO,
                                       "migration peer %s sent a message in the middle of a data "
                                       "stream",
                                       mw_peer(c));
                n = c->rlen - c->roff;
                if (n > len)
                        n = (uint32_t)len;
                memcpy(d, c->rbuf + c->roff, n);
                c->roff += n;
                d += n;
                len -= n;
                if (c->roff == c->rlen)
                        frame_drop(c);
        }
        return 1;
}

int mw_conn_restore(struct mw_conn *c, int fd, const uint8_t key[32], uint64_t tx_seq,
                    uint64_t rx_seq, bool server)
{
        if (!c || !key || fd < 0)
                return mw_fail(NULL, NULL, 0, -EINVAL,
                               "restoring a migration connection needs it, a socket and a key");
        *c = (struct mw_conn){.fd = fd,
                              .timeout_ms = MW_TIMEOUT_DEFAULT,
                              .tx_seq = tx_seq,
                              .rx_seq = rx_seq,
                              .server = server};
        memcpy(c->key, key, sizeof(c->key));
        peer_name(fd, c->peer, sizeof(c->peer));
        return 0;
}

bool mw_conn_is_server(const struct mw_conn *c)
{
        return c && c->server;
}

void mw_close(struct mw_conn *c)
{
        if (!c)
                return;
        free(c->wbuf);
        free(c->rbuf);
        free(c->sbuf);
        EVP_CIPHER_CTX_free(c->tx_gcm); /* wipes the key schedule; NULL does nothing */
        EVP_CIPHER_CTX_free(c->rx_gcm);
        if (c->fd >= 0)
                close(c->fd);
        OPENSSL_cleanse(c->key, sizeof(c->key));
        c->fd = -1;
        c->wbuf = NULL;
        c->rbuf = NULL;
        c->sbuf = NULL;
        c->tx_gcm = NULL;
        c->rx_gcm = NULL;
        c->wlen = c->rlen = c->roff = c->rcap = c->scap = c->rtype = 0;
        c->dead = c->tx_dead = 0;
        c->server = false; /* set up by hand again, it is a client's end */
}
