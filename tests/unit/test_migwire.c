// SPDX-License-Identifier: Apache-2.0
// The migration wire (common/migwire.h): the handshake against the protocol as written (a client
// and AES-256-GCM frames made by hand with OpenSSL here), wrong secrets and magic, peers that close
// or go silent; JSON messages and streams (5 MiB in random pieces; 64 MiB each way at once, one
// thread sending while another receives on each end); payloads encrypted on the wire; hostile
// frames (flipped, replayed, dropped, reordered, reflected, oversized); restored connections; the
// secret file; real TCP. Prints the throughput of 256 MiB through mw_write/mw_read.
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/evp.h>

#include "common/migwire.h"

#define HDR 16

static const uint8_t secret_a[] = "0123456789abcdef0123456789abcdef";
static const uint8_t secret_b[] = "0123456789abcdef0123456789abcdeX";
#define SLEN (sizeof(secret_a) - 1)

static const uint8_t fixed_key[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                      12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                      23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pair(int sv[2])
{
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static void write_all(int fd, const void *p, size_t n)
{
        const uint8_t *s = p;

        while (n > 0) {
                ssize_t k = write(fd, s, n);

                assert_true(k > 0);
                s += k;
                n -= (size_t)k;
        }
}

static void read_all(int fd, void *p, size_t n)
{
        uint8_t *d = p;

        while (n > 0) {
                ssize_t k = read(fd, d, n);

                assert_true(k > 0);
                d += k;
                n -= (size_t)k;
        }
}

/* HMAC-SHA256 computed here, independently of migwire. */
static void t_hmac(const void *key, size_t klen, const void *d, size_t n, uint8_t out[32])
{
        size_t outl = 0;

        assert_non_null(
                EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, klen, d, n, out, 32, &outl));
        assert_int_equal(outl, 32);
}

/* HMAC(secret, label || nc || ns), as the protocol comment says. */
static void t_hs_mac(const uint8_t *secret, size_t slen, const char *label, const uint8_t *nc,
                     const uint8_t *ns, uint8_t out[32])
{
        uint8_t buf[128];
        size_t l = strlen(label);

        memcpy(buf, label, l);
        memcpy(buf + l, nc, 32);
        memcpy(buf + l + 32, ns, 32);
        t_hmac(secret, slen, buf, l + 64, out);
}

/* The AES-256 key of a direction, from the session key: HMAC(key, "vgpu-mig c2s" or "...s2c"). */
static void t_dir_key(const uint8_t *key, char dir, uint8_t out[32])
{
        const char *label = dir == 'c' ? "vgpu-mig c2s" : "vgpu-mig s2c";

        t_hmac(key, 32, label, strlen(label), out);
}

/*
 * A frame made by hand: header {type, len, seq} (LE, in the clear, the AAD), the payload under
 * AES-256-GCM with the key of direction dir ('c' client to server, 's' server to client) and the
 * nonce {uint32 d (1 for 'c', 2 for 's'), uint64 seq} (LE), then the 16-byte tag. Returns its size.
 */
static size_t t_frame_dir(const uint8_t *key, char dir, uint32_t type, uint64_t seq, const void *p,
                          uint32_t len, uint8_t *out)
{
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        uint8_t k[32], iv[12];
        int n = 0;

        assert_non_null(ctx);
        for (int i = 0; i < 4; i++) {
                out[i] = (uint8_t)(type >> (8 * i));
                out[4 + i] = (uint8_t)(len >> (8 * i));
                iv[i] = (uint8_t)((dir == 'c' ? 1u : 2u) >> (8 * i));
        }
        for (int i = 0; i < 8; i++) {
                out[8 + i] = (uint8_t)(seq >> (8 * i));
                iv[4 + i] = (uint8_t)(seq >> (8 * i));
        }
        t_dir_key(key, dir, k);
        assert_int_equal(EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, k, iv), 1);
        assert_int_equal(EVP_EncryptUpdate(ctx, NULL, &n, out, HDR), 1);
        if (len) {
                assert_int_equal(EVP_EncryptUpdate(ctx, out + HDR, &n, p, (int)len), 1);
                assert_int_equal(n, (int)len);
        }
        assert_int_equal(EVP_EncryptFinal_ex(ctx, out + HDR + len, &n), 1);
        assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, MW_TAG, out + HDR + len),
                         1);
        EVP_CIPHER_CTX_free(ctx);
        return HDR + len + MW_TAG;
}

/* A frame from a server, for the client's ends that conn_raw makes. */
static size_t t_frame(const uint8_t *key, uint32_t type, uint64_t seq, const void *p, uint32_t len,
                      uint8_t *out)
{
        return t_frame_dir(key, 's', type, seq, p, len, out);
}

/* A client's end set up by hand with fixed_key, as if a handshake had run. */
static void conn_raw(struct mw_conn *c, int fd)
{
        memset(c, 0, sizeof(*c));
        c->fd = fd;
        c->timeout_ms = 2000;
        memcpy(c->key, fixed_key, 32);
}

static bool has(const char *s, const char *sub)
{
        if (!strstr(s, sub)) {
                print_error("\"%s\" does not contain \"%s\"\n", s, sub);
                return false;
        }
        return true;
}

/* mw_send_json of a new object, which this releases. */
static int send_new(struct mw_conn *c, json_t *o, char *err, size_t errlen)
{
        int r = mw_send_json(c, o, err, errlen);

        json_decref(o);
        return r;
}

/* ---- a handshake in a thread ---- */

struct side {
        pthread_t t;
        bool server;
        int fd;
        const uint8_t *secret;
        size_t slen;
        int timeout_ms;
        struct mw_conn c;
        int r;
        int64_t ms; /* how long it took */
        char err[256];
};

static void *side_run(void *p)
{
        struct side *s = p;
        int64_t t0 = now_ms();

        if (s->server)
                s->r = mw_auth_server(&s->c, s->fd, s->secret, s->slen, s->timeout_ms, s->err,
                                      sizeof(s->err));
        else
                s->r = mw_auth_client(&s->c, s->fd, s->secret, s->slen, s->timeout_ms, s->err,
                                      sizeof(s->err));
        s->ms = now_ms() - t0;
        return NULL;
}

static void side_start(struct side *s, bool server, int fd, const uint8_t *secret, int timeout_ms)
{
        memset(s, 0, sizeof(*s));
        memset(&s->c, 0x5a, sizeof(s->c)); /* to see it untouched on failure */
        s->server = server;
        s->fd = fd;
        s->secret = secret;
        s->slen = SLEN;
        s->timeout_ms = timeout_ms;
        assert_int_equal(pthread_create(&s->t, NULL, side_run, s), 0);
}

static void side_join(struct side *s)
{
        assert_int_equal(pthread_join(s->t, NULL), 0);
}

static bool untouched(const struct mw_conn *c)
{
        const uint8_t *b = (const uint8_t *)c;

        for (size_t i = 0; i < sizeof(*c); i++) {
                if (b[i] != 0x5a)
                        return false;
        }
        return true;
}

/* Two authenticated ends of a socketpair: *cli and *srv. */
static void auth_pair(struct mw_conn *cli, struct mw_conn *srv)
{
        struct side s;
        char err[256] = "";
        int sv[2];

        pair(sv);
        side_start(&s, true, sv[1], secret_a, 5000);
        assert_int_equal(mw_auth_client(cli, sv[0], secret_a, SLEN, 5000, err, sizeof(err)), 0);
        side_join(&s);
        assert_int_equal(s.r, 0);
        *srv = s.c;
}

/* ---- handshake ---- */

static void test_auth_ok(void **state)
{
        struct mw_conn cli, srv, cli2, srv2;
        static const uint8_t zero[32];
        json_t *o = NULL;
        char err[256];

        (void)state;
        auth_pair(&cli, &srv);
        assert_memory_equal(cli.key, srv.key, 32);
        assert_memory_not_equal(cli.key, zero, 32);
        assert_int_equal(cli.timeout_ms, MW_TIMEOUT_DEFAULT);
        assert_int_equal(cli.tx_seq + cli.rx_seq + srv.tx_seq + srv.rx_seq, 0);
        assert_string_equal(srv.peer, "(local socket)");
        /* a fresh session has a fresh key */
        auth_pair(&cli2, &srv2);
        assert_memory_not_equal(cli.key, cli2.key, 32);
        /* and the keys carry messages both ways */
        assert_int_equal(send_new(&cli, json_pack("{s:i}", "hello", 1), err, sizeof(err)), 0);
        assert_int_equal(mw_recv_json(&srv, &o, err, sizeof(err)), 0);
        assert_int_equal(json_integer_value(json_object_get(o, "hello")), 1);
        json_decref(o);
        assert_int_equal(send_new(&srv, json_pack("{s:i}", "back", 2), err, sizeof(err)), 0);
        assert_int_equal(mw_recv_json(&cli, &o, err, sizeof(err)), 0);
        assert_int_equal(json_integer_value(json_object_get(o, "back")), 2);
        json_decref(o);
        assert_int_equal(cli.tx_seq, 1);
        assert_int_equal(srv.rx_seq, 1);
        mw_close(&cli);
        mw_close(&srv);
        mw_close(&cli2);
        mw_close(&srv2);
        assert_int_equal(cli.fd, -1);
        mw_close(&cli); /* twice: harmless */
}

/* The protocol as written, by a client made here: the server's proof and key match it. */
static void test_wire_format(void **state)
{
        uint8_t hello[40], reply[72], proof[32], want[32], key[32], f[256], got[256];
        uint8_t *nc = hello + 8, *ns = reply + 8;
        struct mw_conn c;
        struct side s;
        uint32_t type, len;
        char err[256];
        int sv[2];

        (void)state;
        pair(sv);
        side_start(&s, true, sv[1], secret_a, 5000);
        memcpy(hello, "VGPUMIG1", 8);
        for (int i = 0; i < 32; i++)
                nc[i] = (uint8_t)(i * 7);
        write_all(sv[0], hello, sizeof(hello));
        read_all(sv[0], reply, sizeof(reply));
        assert_memory_equal(reply, "VGPUMIG1", 8);
        t_hs_mac(secret_a, SLEN, "vgpu-mig server", nc, ns, want);
        assert_memory_equal(reply + 40, want, 32);
        t_hs_mac(secret_a, SLEN, "vgpu-mig client", nc, ns, proof);
        write_all(sv[0], proof, sizeof(proof));
        side_join(&s);
        assert_int_equal(s.r, 0);
        t_hs_mac(secret_a, SLEN, "vgpu-mig key", nc, ns, key);
        assert_memory_equal(s.c.key, key, 32);
        /* a frame made here is accepted; the server's frame is exactly what the comment says */
        write_all(sv[0], f, t_frame_dir(key, 'c', MW_MSG, 0, "{\"a\":1}", 7, f));
        assert_int_equal(mw_recv(&s.c, &type, got, sizeof(got), &len, err, sizeof(err)), 0);
        assert_int_equal(type, MW_MSG);
        assert_int_equal(len, 7);
        assert_memory_equal(got, "{\"a\":1}", 7);
        assert_int_equal(mw_send(&s.c, MW_DATA, "xyz", 3, err, sizeof(err)), 0);
        assert_int_equal(mw_send(&s.c, MW_DATA, "", 0, err, sizeof(err)), 0);
        read_all(sv[0], got, HDR + 3 + MW_TAG + HDR + MW_TAG);
        assert_memory_equal(got, f, t_frame_dir(key, 's', MW_DATA, 0, "xyz", 3, f));
        assert_memory_equal(got + HDR + 3 + MW_TAG, f, t_frame_dir(key, 's', MW_DATA, 1, "", 0, f));
        c = s.c;
        mw_close(&c);
        close(sv[0]);
}

static void test_auth_wrong_secret(void **state)
{
        char err[256];
        struct mw_conn c;
        struct side s;
        int sv[2];

        (void)state;
        /* the client holds another secret, then the server does: each side reports failure */
        for (int client_wrong = 0; client_wrong < 2; client_wrong++) {
                pair(sv);
                side_start(&s, true, sv[1], client_wrong ? secret_a : secret_b, 5000);
                memset(&c, 0x5a, sizeof(c));
                assert_int_equal(mw_auth_client(&c, sv[0], client_wrong ? secret_b : secret_a, SLEN,
                                                5000, err, sizeof(err)),
                                 -EKEYREJECTED);
                assert_true(has(err, "did not prove it holds the shared secret"));
                assert_true(untouched(&c));
                close(sv[0]); /* what a daemon does with a refused connection */
                side_join(&s);
                assert_int_equal(s.r, -ECONNRESET);
                assert_true(has(s.err, "closed the connection during the handshake"));
                assert_true(untouched(&s.c));
                close(sv[1]);
        }

        /* the server's own check: a client that answers with a wrong proof */
        pair(sv);
        side_start(&s, true, sv[1], secret_a, 5000);
        {
                uint8_t hello[40] = "VGPUMIG1", reply[72], proof[32];
                int avail;

                write_all(sv[0], hello, sizeof(hello));
                read_all(sv[0], reply, sizeof(reply));
                /* the right proof under another secret */
                t_hs_mac(secret_b, SLEN, "vgpu-mig client", hello + 8, reply + 8, proof);
                write_all(sv[0], proof, sizeof(proof));
                side_join(&s);
                assert_int_equal(s.r, -EKEYREJECTED);
                assert_true(has(s.err, "did not prove it holds the shared secret"));
                assert_true(untouched(&s.c));
                /* and it sent nothing more */
                assert_int_equal(ioctl(sv[0], FIONREAD, &avail), 0);
                assert_int_equal(avail, 0);
                close(sv[1]);
        }
        close(sv[0]);

        /* a client proof replayed from another session is refused (the server's nonce differs) */
        {
                uint8_t hello[40] = "VGPUMIG1", reply[72], proof[32];

                pair(sv);
                side_start(&s, true, sv[1], secret_a, 5000);
                write_all(sv[0], hello, sizeof(hello));
                read_all(sv[0], reply, sizeof(reply));
                t_hs_mac(secret_a, SLEN, "vgpu-mig client", hello + 8, reply + 8, proof);
                write_all(sv[0], proof, sizeof(proof));
                side_join(&s);
                assert_int_equal(s.r, 0);
                mw_close(&s.c);
                close(sv[0]);

                pair(sv);
                side_start(&s, true, sv[1], secret_a, 5000);
                write_all(sv[0], hello, sizeof(hello)); /* the same nonce */
                read_all(sv[0], reply, sizeof(reply));
                write_all(sv[0], proof, sizeof(proof)); /* the old proof */
                side_join(&s);
                assert_int_equal(s.r, -EKEYREJECTED);
                close(sv[1]);
                close(sv[0]);
        }
}

static void test_wrong_magic(void **state)
{
        uint8_t buf[72];
        struct mw_conn c;
        struct side s;
        char err[256];
        int sv[2], avail;

        (void)state;
        /* an HTTP client at the migration port gets nothing back */
        pair(sv);
        side_start(&s, true, sv[1], secret_a, 5000);
        write_all(sv[0], "GET / HTTP/1.1\r\nHost: x\r\n\r\n............", 40);
        side_join(&s);
        assert_int_equal(s.r, -EPROTO);
        assert_true(has(s.err, "not a vgpu migration peer (wrong protocol or version)"));
        assert_true(untouched(&s.c));
        assert_int_equal(ioctl(sv[0], FIONREAD, &avail), 0);
        assert_int_equal(avail, 0);
        close(sv[1]);
        close(sv[0]);

        /* a server of another version */
        pair(sv);
        memset(buf, 0, sizeof(buf));
        memcpy(buf, "VGPUMIG2", 8);
        write_all(sv[1], buf, sizeof(buf));
        assert_int_equal(mw_auth_client(&c, sv[0], secret_a, SLEN, 5000, err, sizeof(err)),
                         -EPROTO);
        assert_true(has(err, "not a vgpu migration peer"));
        close(sv[0]);
        close(sv[1]);
}

static void test_closed_mid_handshake(void **state)
{
        uint8_t buf[40];
        struct mw_conn c;
        struct side s;
        char err[256];
        int sv[2];

        (void)state;
        pair(sv);
        side_start(&s, true, sv[1], secret_a, 5000);
        write_all(sv[0], "VGPUMIG1abcdefghij", 18); /* magic and 10 bytes of the nonce */
        close(sv[0]);
        side_join(&s);
        assert_int_equal(s.r, -ECONNRESET);
        assert_true(has(s.err, "closed the connection during the handshake"));
        close(sv[1]);

        pair(sv);
        write_all(sv[1],
                  "VGPUMIG1"
                  "0123456789abcdefghij",
                  28); /* magic, 20 of 64 bytes */
        shutdown(sv[1], SHUT_WR);
        memset(&c, 0x5a, sizeof(c));
        assert_int_equal(mw_auth_client(&c, sv[0], secret_a, SLEN, 5000, err, sizeof(err)),
                         -ECONNRESET);
        assert_true(has(err, "closed the connection during the handshake"));
        assert_true(untouched(&c));
        read_all(sv[1], buf, sizeof(buf)); /* the client's hello was sent */
        assert_memory_equal(buf, "VGPUMIG1", 8);
        close(sv[0]);
        close(sv[1]);
}

struct trickle {
        int fd;
        int n;
        int every_ms;
};

static void *trickle_run(void *p)
{
        struct trickle *t = p;
        struct timespec ts = {0, (long)t->every_ms * 1000000};

        for (int i = 0; i < t->n; i++) {
                if (send(t->fd, &"VGPUMIG1"[i % 8], 1, MSG_NOSIGNAL) != 1)
                        break; /* the server gave up and the test closed the socket */
                nanosleep(&ts, NULL);
        }
        return NULL;
}

static void test_timeout(void **state)
{
        struct mw_conn c, cli, srv;
        struct trickle tr;
        pthread_t t;
        struct side s;
        json_t *o = NULL;
        char err[256];
        int64_t t0;
        int sv[2];

        (void)state;
        /* a silent client */
        pair(sv);
        side_start(&s, true, sv[1], secret_a, 200);
        side_join(&s);
        assert_int_equal(s.r, -ETIMEDOUT);
        assert_true(s.ms >= 190 && s.ms < 2000);
        assert_true(has(s.err, "did not complete the handshake within 200 ms"));
        assert_true(untouched(&s.c));
        close(sv[0]);
        close(sv[1]);

        /* a silent server */
        pair(sv);
        t0 = now_ms();
        assert_int_equal(mw_auth_client(&c, sv[0], secret_a, SLEN, 200, err, sizeof(err)),
                         -ETIMEDOUT);
        assert_true(now_ms() - t0 < 2000);
        close(sv[0]);
        close(sv[1]);

        /* a client that sends a byte every 40 ms: the whole handshake has one deadline */
        pair(sv);
        tr = (struct trickle){.fd = sv[0], .n = 40, .every_ms = 40};
        assert_int_equal(pthread_create(&t, NULL, trickle_run, &tr), 0);
        side_start(&s, true, sv[1], secret_a, 300);
        side_join(&s);
        assert_int_equal(s.r, -ETIMEDOUT);
        assert_true(s.ms < 1000);
        close(sv[1]);
        assert_int_equal(pthread_join(t, NULL), 0);
        close(sv[0]);

        /* a frame that does not come: -ETIMEDOUT, and the connection is still good */
        auth_pair(&cli, &srv);
        srv.timeout_ms = 150;
        t0 = now_ms();
        assert_int_equal(mw_recv_json(&srv, &o, err, sizeof(err)), -ETIMEDOUT);
        assert_true(now_ms() - t0 >= 140);
        assert_true(has(err, "sent nothing within 150 ms"));
        assert_int_equal(send_new(&cli, json_pack("{s:b}", "late", 1), err, sizeof(err)), 0);
        assert_int_equal(mw_recv_json(&srv, &o, err, sizeof(err)), 0);
        assert_true(json_is_true(json_object_get(o, "late")));
        json_decref(o);
        mw_close(&cli);
        mw_close(&srv);
}

/* ---- messages ---- */

static void test_json(void **state)
{
        struct mw_conn cli, srv;
        json_t *o, *back = NULL;
        char err[256], small[8], big[64];
        uint32_t type = 0, len = 0;

        (void)state;
        auth_pair(&cli, &srv);
        o = json_pack("{s:s, s:I, s:[i,i,{s:n}], s:f}", "op", "precopy", "fb", (json_int_t)1 << 40,
                      "list", 1, 2, "x", "ratio", 0.5);
        assert_int_equal(mw_send_json(&cli, o, err, sizeof(err)), 0);
        assert_int_equal(mw_recv_json(&srv, &back, err, sizeof(err)), 0);
        assert_true(json_equal(o, back));
        json_decref(back);
        json_decref(o);

        /* not an object, not JSON: -EBADMSG, and the connection goes on */
        assert_int_equal(mw_send(&cli, MW_MSG, "[1,2]", 5, err, sizeof(err)), 0);
        assert_int_equal(mw_send(&cli, MW_MSG, "{\"a\":", 5, err, sizeof(err)), 0);
        assert_int_equal(mw_send(&cli, MW_MSG, "{\"a\":1,\"a\":2}", 13, err, sizeof(err)), 0);
        back = NULL;
        assert_int_equal(mw_recv_json(&srv, &back, err, sizeof(err)), -EBADMSG);
        assert_true(has(err, "not a JSON object"));
        assert_int_equal(mw_recv_json(&srv, &back, err, sizeof(err)), -EBADMSG);
        assert_true(has(err, "not JSON"));
        assert_int_equal(mw_recv_json(&srv, &back, err, sizeof(err)), -EBADMSG);
        assert_null(back);
        /* the sender refuses what is not an object */
        o = json_array();
        assert_int_equal(mw_send_json(&cli, o, err, sizeof(err)), -EINVAL);
        json_decref(o);
        assert_int_equal(mw_send(&cli, 7, "x", 1, err, sizeof(err)), -EINVAL);

        /* a frame longer than the buffer stays pending */
        assert_int_equal(mw_send(&cli, MW_MSG, "{\"k\":\"0123456789\"}", 18, err, sizeof(err)), 0);
        assert_int_equal(mw_recv(&srv, &type, small, sizeof(small), &len, err, sizeof(err)),
                         -EMSGSIZE);
        assert_int_equal(type, 0);
        assert_int_equal(mw_recv(&srv, &type, big, sizeof(big), &len, err, sizeof(err)), 0);
        assert_int_equal(type, MW_MSG);
        assert_int_equal(len, 18);
        assert_memory_equal(big, "{\"k\":\"0123456789\"}", 18);

        /* data where a message is expected: -EPROTO, and the data stays */
        assert_int_equal(mw_write(&cli, "abc", 3), 0);
        assert_int_equal(send_new(&cli, json_pack("{s:i}", "after", 3), err, sizeof(err)),
                         0); /* flushes "abc" first */
        assert_int_equal(mw_recv_json(&srv, &back, err, sizeof(err)), -EPROTO);
        assert_true(has(err, "stream data where a message was expected"));
        assert_int_equal(mw_recv(&srv, &type, big, sizeof(big), &len, err, sizeof(err)), 0);
        assert_int_equal(type, MW_DATA);
        assert_int_equal(len, 3);
        assert_int_equal(mw_recv_json(&srv, &back, err, sizeof(err)), 0);
        assert_int_equal(json_integer_value(json_object_get(back, "after")), 3);
        json_decref(back);
        assert_int_equal(mw_send(&cli, MW_MSG, big, MW_FRAME_MAX + 1, err, sizeof(err)), -EMSGSIZE);
        mw_close(&cli);
        mw_close(&srv);
}

/* ---- streams ---- */

static uint64_t rng_next(uint64_t *s)
{
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

#define STREAM_BYTES ((size_t)5 << 20)

struct writer {
        struct mw_conn *c;
        const uint8_t *data;
        size_t len;
        size_t chunk_max; /* 0: random sizes */
        int r;
};

static void *writer_run(void *p)
{
        struct writer *w = p;
        uint64_t seed = 0x9e3779b97f4a7c15u;
        size_t off = 0;
        char err[256];

        w->r = 0;
        while (off < w->len) {
                size_t n = w->chunk_max;

                if (!n) {
                        uint64_t x = rng_next(&seed);

                        /* mostly small, some over a whole frame, some exactly at its edge */
                        n = x % 4 == 0   ? (size_t)(x >> 8) % (3u << 20)
                            : x % 4 == 1 ? MW_FRAME_MAX - (size_t)(x >> 8) % 3
                                         : (size_t)(x >> 8) % 70000;
                }
                if (n > w->len - off)
                        n = w->len - off;
                w->r = mw_write(w->c, w->data + off, n);
                if (w->r < 0)
                        return NULL;
                off += n;
        }
        w->r = mw_flush(w->c);
        if (w->r == 0)
                w->r = send_new(w->c, json_pack("{s:b}", "done", 1), err, sizeof(err));
        return NULL;
}

static void test_stream(void **state)
{
        struct mw_conn cli, srv;
        struct writer w;
        uint64_t seed = 42;
        uint8_t *data = malloc(STREAM_BYTES), *got = malloc(STREAM_BYTES);
        json_t *o = NULL;
        char err[256];
        pthread_t t;
        size_t off = 0;

        (void)state;
        assert_non_null(data);
        assert_non_null(got);
        for (size_t i = 0; i < STREAM_BYTES; i += 8) {
                uint64_t x = rng_next(&seed);

                memcpy(data + i, &x, 8);
        }
        memset(got, 0, STREAM_BYTES);
        auth_pair(&cli, &srv);
        w = (struct writer){.c = &cli, .data = data, .len = STREAM_BYTES};
        assert_int_equal(pthread_create(&t, NULL, writer_run, &w), 0);
        seed = 7;
        while (off < STREAM_BYTES) {
                uint64_t x = rng_next(&seed);
                size_t n = x % 3 == 0 ? (size_t)(x >> 8) % (2u << 20) : (size_t)(x >> 8) % 5000;

                if (n > STREAM_BYTES - off)
                        n = STREAM_BYTES - off;
                assert_int_equal(mw_read(&srv, got + off, n), 1);
                off += n;
        }
        assert_int_equal(mw_recv_json(&srv, &o, err, sizeof(err)), 0);
        assert_true(json_is_true(json_object_get(o, "done")));
        json_decref(o);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(w.r, 0);
        assert_memory_equal(data, got, STREAM_BYTES);
        assert_int_equal(cli.tx_seq, srv.rx_seq);
        assert_true(srv.rx_seq >= STREAM_BYTES / MW_FRAME_MAX + 1);
        assert_int_equal(cli.bytes_tx, srv.bytes_rx);
        assert_true(srv.bytes_rx > STREAM_BYTES);

        /* the peer closes in the middle of a stream */
        assert_int_equal(mw_write(&cli, data, 3000), 0);
        assert_int_equal(mw_flush(&cli), 0);
        mw_close(&cli);
        assert_int_equal(mw_read(&srv, got, 5000), -ECONNRESET);
        assert_true(has(srv.err, "closed the connection"));
        assert_int_equal(mw_read(&srv, got, 1), -ECONNRESET); /* and it stays closed */
        mw_close(&srv);
        free(data);
        free(got);
}

/* A message where stream data is wanted: -EPROTO, and the message is kept for mw_recv_json. */
static void test_msg_mid_stream(void **state)
{
        struct mw_conn cli, srv;
        uint8_t buf[2000], data[1500];
        json_t *o = NULL;
        char err[256];

        (void)state;
        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t)(i * 13);
        auth_pair(&cli, &srv);
        assert_int_equal(mw_write(&cli, data, 1000), 0);
        assert_int_equal(send_new(&cli, json_pack("{s:s}", "error", "disk full"), err, sizeof(err)),
                         0);
        assert_int_equal(mw_read(&srv, buf, 2000), -EPROTO);
        assert_true(
                has(srv.err, "peer (local socket) sent a message in the middle of a data stream"));
        assert_memory_equal(buf, data, 1000);
        assert_int_equal(mw_read(&srv, buf, 1), -EPROTO); /* still there */
        assert_int_equal(mw_recv_json(&srv, &o, err, sizeof(err)), 0);
        assert_string_equal(json_string_value(json_object_get(o, "error")), "disk full");
        json_decref(o);
        /* and the connection goes on */
        assert_int_equal(mw_write(&cli, data + 1000, 500), 0);
        assert_int_equal(mw_flush(&cli), 0);
        assert_int_equal(mw_read(&srv, buf, 500), 1);
        assert_memory_equal(buf, data + 1000, 500);
        mw_close(&cli);
        mw_close(&srv);
}

/* ---- one thread sends while another receives ---- */

#define DUPLEX_BYTES ((size_t)64 << 20)

/* One side of a connection in a thread of its own: it sends data, or receives it and checks it. */
struct duplex {
        pthread_t t;
        struct mw_conn *c;
        const uint8_t *data; /* what the stream holds */
        size_t len;
        uint64_t seed; /* of the chunk sizes */
        size_t done;   /* bytes sent, or received and found right */
        int r;
        char why[128]; /* a receiver's complaint (cmocka's asserts stay in the main thread) */
};

/* The size of the next mw_write or mw_read: mostly small, some over a whole frame or at its edge.
 */
static size_t duplex_chunk(uint64_t *seed, size_t left)
{
        uint64_t x = rng_next(seed);
        size_t n;

        switch (x % 8) {
        case 0:
                n = 1 + (size_t)(x >> 8) % (3u << 20);
                break;
        case 1:
                n = MW_FRAME_MAX - (size_t)(x >> 8) % 3;
                break;
        case 2:
                n = 1 + (size_t)(x >> 8) % 64;
                break;
        default:
                n = 1 + (size_t)(x >> 8) % 70000;
                break;
        }
        return n < left ? n : left;
}

/* Send d->data in random pieces, flushing now and then; then a message saying how much. */
static void *duplex_send_run(void *p)
{
        struct duplex *d = p;
        char err[256];

        while (d->done < d->len) {
                size_t n = duplex_chunk(&d->seed, d->len - d->done);

                d->r = mw_write(d->c, d->data + d->done, n);
                if (d->r == 0 && rng_next(&d->seed) % 4 == 0)
                        d->r = mw_flush(d->c);
                if (d->r < 0)
                        return NULL;
                d->done += n;
        }
        d->r = mw_flush(d->c);
        if (d->r == 0)
                d->r = send_new(d->c, json_pack("{s:I}", "sent", (json_int_t)d->done), err,
                                sizeof(err));
        return NULL;
}

/* Read d->len bytes in random pieces, each checked against d->data; then the sender's message. */
static void *duplex_recv_run(void *p)
{
        struct duplex *d = p;
        uint8_t *buf = malloc(3u << 20);
        json_t *o = NULL;
        char err[256];

        d->r = buf ? 0 : -ENOMEM;
        while (d->r == 0 && d->done < d->len) {
                size_t n = duplex_chunk(&d->seed, d->len - d->done);

                d->r = mw_read(d->c, buf, n);
                if (d->r < 0)
                        break;
                d->r = 0;
                if (memcmp(buf, d->data + d->done, n) != 0) {
                        snprintf(d->why, sizeof(d->why), "bytes %zu to %zu came wrong", d->done,
                                 d->done + n);
                        d->r = -EBADMSG;
                        break;
                }
                d->done += n;
        }
        if (d->r == 0)
                d->r = mw_recv_json(d->c, &o, err, sizeof(err));
        if (d->r == 0 && json_integer_value(json_object_get(o, "sent")) != (json_int_t)d->len) {
                snprintf(d->why, sizeof(d->why), "the sender says it sent another length");
                d->r = -EPROTO;
        }
        json_decref(o);
        free(buf);
        return NULL;
}

static void duplex_start(struct duplex *d, struct mw_conn *c, const uint8_t *data, uint64_t seed,
                         bool send)
{
        *d = (struct duplex){.c = c, .data = data, .len = DUPLEX_BYTES, .seed = seed};
        assert_int_equal(pthread_create(&d->t, NULL, send ? duplex_send_run : duplex_recv_run, d),
                         0);
}

/* 64 MiB of random bytes */
static uint8_t *duplex_data(uint64_t seed)
{
        uint8_t *p = malloc(DUPLEX_BYTES);

        assert_non_null(p);
        for (size_t i = 0; i < DUPLEX_BYTES; i += 8) {
                uint64_t x = rng_next(&seed);

                memcpy(p + i, &x, 8);
        }
        return p;
}

/*
 * Both ends of a connection, each with one thread that sends 64 MiB (mw_write and mw_flush in
 * random pieces, then mw_send_json) while another receives the 64 MiB the peer sends (mw_read,
 * then mw_recv_json): four threads, two on each mw_conn, both directions at once, every byte
 * checked. Run under -fsanitize=thread too: no data race.
 */
static void test_duplex(void **state)
{
        uint8_t *up = duplex_data(17), *down = duplex_data(23);
        struct mw_conn cli, srv;
        struct duplex d[4];

        (void)state;
        auth_pair(&cli, &srv);
        duplex_start(&d[0], &cli, up, 1, true);
        duplex_start(&d[1], &srv, up, 2, false);
        duplex_start(&d[2], &srv, down, 3, true);
        duplex_start(&d[3], &cli, down, 4, false);
        for (int i = 0; i < 4; i++)
                assert_int_equal(pthread_join(d[i].t, NULL), 0);
        for (int i = 0; i < 4; i++) {
                assert_string_equal(d[i].why, "");
                assert_int_equal(d[i].r, 0);
                assert_int_equal(d[i].done, DUPLEX_BYTES);
        }
        assert_int_equal(cli.tx_seq, srv.rx_seq);
        assert_int_equal(srv.tx_seq, cli.rx_seq);
        assert_true(cli.tx_seq > DUPLEX_BYTES / MW_FRAME_MAX);
        assert_true(srv.tx_seq > DUPLEX_BYTES / MW_FRAME_MAX);
        assert_int_equal(cli.bytes_tx, srv.bytes_rx);
        assert_int_equal(srv.bytes_tx, cli.bytes_rx);
        assert_true(cli.bytes_tx > DUPLEX_BYTES && srv.bytes_tx > DUPLEX_BYTES);
        assert_string_equal(cli.err, "");
        assert_string_equal(cli.tx_err, "");
        assert_string_equal(srv.err, "");
        assert_string_equal(srv.tx_err, "");
        mw_close(&cli);
        mw_close(&srv);
        free(up);
        free(down);
}

/*
 * A failure's sentence is the side's own (tx_err for the sending calls, err for the receiving
 * ones), and a connection one side found unusable is unusable on the other, with the same error
 * and sentence: in turn, and with a sender and a receiver at work when the peer goes away.
 */
static void test_duplex_errors(void **state)
{
        uint8_t *big = calloc(1, MW_FRAME_MAX), *up = duplex_data(29), *down = duplex_data(31);
        struct mw_conn cli, srv;
        struct duplex d[2];
        uint32_t type, len;
        char err[256];

        (void)state;
        assert_non_null(big);
        /* the receiving side finds the peer gone; the sending side stops at once */
        auth_pair(&cli, &srv);
        mw_close(&srv);
        assert_int_equal(mw_read(&cli, big, 1), -ECONNRESET);
        assert_true(has(cli.err, "closed the connection"));
        assert_string_equal(cli.tx_err, "");
        assert_int_equal(mw_write(&cli, big, 1), -ECONNRESET);
        assert_string_equal(cli.tx_err, cli.err);
        assert_int_equal(cli.tx_seq, 0);
        assert_int_equal(send_new(&cli, json_pack("{s:b}", "late", 1), err, sizeof(err)),
                         -ECONNRESET);
        assert_string_equal(err, cli.err);
        mw_close(&cli);

        /* the sending side finds it; the receiving side stops at once */
        auth_pair(&cli, &srv);
        mw_close(&srv);
        assert_int_equal(mw_write(&cli, big, MW_FRAME_MAX), -ECONNRESET);
        assert_true(has(cli.tx_err, "closed the connection"));
        assert_string_equal(cli.err, "");
        assert_int_equal(mw_read(&cli, big, 1), -ECONNRESET);
        assert_string_equal(cli.err, cli.tx_err);
        memset(err, 0, sizeof(err));
        assert_int_equal(mw_recv(&cli, &type, big, MW_FRAME_MAX, &len, err, sizeof(err)),
                         -ECONNRESET);
        assert_string_equal(err, cli.tx_err);
        assert_int_equal(mw_flush(&cli), -ECONNRESET);
        mw_close(&cli);

        /* a sender and a receiver on one end, and the peer goes away in the middle of both */
        auth_pair(&cli, &srv);
        duplex_start(&d[0], &cli, up, 5, true);
        duplex_start(&d[1], &cli, down, 6, false);
        assert_int_equal(mw_read(&srv, big, MW_FRAME_MAX), 1);
        assert_memory_equal(big, up, MW_FRAME_MAX);
        assert_int_equal(mw_write(&srv, down, 3 * MW_FRAME_MAX + 1000), 0);
        assert_int_equal(mw_flush(&srv), 0);
        mw_close(&srv);
        for (int i = 0; i < 2; i++) {
                assert_int_equal(pthread_join(d[i].t, NULL), 0);
                assert_string_equal(d[i].why, "");
                assert_int_equal(d[i].r, -ECONNRESET);
        }
        assert_true(d[1].done <= 3 * MW_FRAME_MAX + 1000);
        assert_true(has(cli.tx_err, "closed the connection"));
        assert_true(has(cli.err, "closed the connection"));
        assert_int_equal(mw_write(&cli, big, 1), -ECONNRESET);
        assert_int_equal(mw_read(&cli, big, 1), -ECONNRESET);
        mw_close(&cli);
        free(big);
        free(up);
        free(down);
}

/* ---- hostile frames ---- */

#define PAD (64u * 1024 + 512) /* enough for a length grown by a flipped bit of bytes 4-6 */

/* Feed bytes (and PAD zeros) to a fresh receiver with fixed_key; return what mw_recv says. */
static int feed_recv(const uint8_t *bytes, size_t n, struct mw_conn *rx, int sv[2])
{
        static uint8_t pad[PAD];
        uint8_t buf[256];
        uint32_t type, len;
        char err[256];

        pair(sv);
        conn_raw(rx, sv[1]);
        write_all(sv[0], bytes, n);
        write_all(sv[0], pad, sizeof(pad));
        return mw_recv(rx, &type, buf, sizeof(buf), &len, err, sizeof(err));
}

static void test_corrupt(void **state)
{
        uint8_t f[256], g[256], got[64];
        const char *payload = "{\"op\":\"round\",\"n\":1234567,\"dirty\":[1,2,3]}";
        uint32_t plen = (uint32_t)strlen(payload);
        size_t n = t_frame(fixed_key, MW_MSG, 0, payload, plen, f);
        struct mw_conn rx;
        uint32_t type, len;
        uint8_t otherkey[32];
        char err[256];
        int sv[2];

        (void)state;
        /* the frame as made is good */
        assert_int_equal(feed_recv(f, n, &rx, sv), 0);
        mw_close(&rx);
        close(sv[0]);
        /* every byte of header, payload and MAC, flipped */
        for (size_t i = 0; i < n; i++) {
                memcpy(g, f, n);
                g[i] ^= 0x01;
                assert_int_equal(feed_recv(g, n, &rx, sv), -EBADMSG);
                assert_int_equal(rx.rx_seq, 0);
                assert_int_equal(rx.bytes_rx, 0);
                /* poisoned: the same frame again, unharmed, is not even read */
                write_all(sv[0], f, n);
                assert_int_equal(mw_recv(&rx, &type, got, sizeof(got), &len, err, sizeof(err)),
                                 -EBADMSG);
                mw_close(&rx);
                close(sv[0]);
        }
        /* a message turned into data */
        memcpy(g, f, n);
        g[0] = MW_DATA;
        assert_int_equal(feed_recv(g, n, &rx, sv), -EBADMSG);
        assert_true(has(rx.err, "failed its integrity check"));
        mw_close(&rx);
        close(sv[0]);
        /* a frame under another key */
        memcpy(otherkey, fixed_key, 32);
        otherkey[31] ^= 0x80;
        n = t_frame(otherkey, MW_MSG, 0, payload, plen, g);
        assert_int_equal(feed_recv(g, n, &rx, sv), -EBADMSG);
        mw_close(&rx);
        close(sv[0]);

        /* mw_read: a corrupt data frame hands out no byte */
        n = t_frame(fixed_key, MW_DATA, 0, "0123456789", 10, g);
        g[HDR + 3] ^= 0x40;
        pair(sv);
        conn_raw(&rx, sv[1]);
        write_all(sv[0], g, n);
        memset(got, 0xaa, sizeof(got));
        assert_int_equal(mw_read(&rx, got, 10), -EBADMSG);
        for (size_t i = 0; i < sizeof(got); i++)
                assert_int_equal(got[i], 0xaa);
        assert_int_equal(mw_read(&rx, got, 10), -EBADMSG);
        assert_int_equal(mw_send(&rx, MW_MSG, "{}", 2, err, sizeof(err)), -EBADMSG);
        mw_close(&rx);
        close(sv[0]);

        /* a frame cut short by the peer closing */
        n = t_frame(fixed_key, MW_DATA, 0, "0123456789", 10, g);
        pair(sv);
        conn_raw(&rx, sv[1]);
        write_all(sv[0], g, n - 5);
        close(sv[0]);
        assert_int_equal(mw_read(&rx, got, 10), -ECONNRESET);
        assert_true(has(rx.err, "closed the connection"));
        mw_close(&rx);
}

static void test_replay(void **state)
{
        uint8_t f0[128], f1[128], f2[128], got[64];
        size_t n0 = t_frame(fixed_key, MW_MSG, 0, "{\"a\":0}", 7, f0);
        size_t n1 = t_frame(fixed_key, MW_MSG, 1, "{\"a\":1}", 7, f1);
        size_t n2 = t_frame(fixed_key, MW_MSG, 2, "{\"a\":2}", 7, f2);
        struct mw_conn rx;
        uint32_t type, len;
        char err[256];
        int sv[2];

        (void)state;
        /* in order: all three */
        pair(sv);
        conn_raw(&rx, sv[1]);
        write_all(sv[0], f0, n0);
        write_all(sv[0], f1, n1);
        write_all(sv[0], f2, n2);
        for (int i = 0; i < 3; i++) {
                assert_int_equal(mw_recv(&rx, &type, got, sizeof(got), &len, err, sizeof(err)), 0);
                assert_int_equal(got[5], '0' + i);
        }
        mw_close(&rx);
        close(sv[0]);
        /* replayed */
        pair(sv);
        conn_raw(&rx, sv[1]);
        write_all(sv[0], f0, n0);
        write_all(sv[0], f0, n0);
        assert_int_equal(mw_recv(&rx, &type, got, sizeof(got), &len, err, sizeof(err)), 0);
        assert_int_equal(mw_recv(&rx, &type, got, sizeof(got), &len, err, sizeof(err)), -EBADMSG);
        assert_true(has(err, "sent frame 0 where frame 1 was due"));
        mw_close(&rx);
        close(sv[0]);
        /* dropped */
        pair(sv);
        conn_raw(&rx, sv[1]);
        write_all(sv[0], f0, n0);
        write_all(sv[0], f2, n2);
        assert_int_equal(mw_recv(&rx, &type, got, sizeof(got), &len, err, sizeof(err)), 0);
        assert_int_equal(mw_recv(&rx, &type, got, sizeof(got), &len, err, sizeof(err)), -EBADMSG);
        mw_close(&rx);
        close(sv[0]);
        /* reordered */
        pair(sv);
        conn_raw(&rx, sv[1]);
        write_all(sv[0], f1, n1);
        write_all(sv[0], f0, n0);
        assert_int_equal(mw_recv(&rx, &type, got, sizeof(got), &len, err, sizeof(err)), -EBADMSG);
        mw_close(&rx);
        close(sv[0]);
        /* in the wrong direction: a client's frame given to a client */
        pair(sv);
        conn_raw(&rx, sv[1]);
        n0 = t_frame_dir(fixed_key, 'c', MW_MSG, 0, "{\"a\":0}", 7, f0);
        write_all(sv[0], f0, n0);
        assert_int_equal(mw_recv(&rx, &type, got, sizeof(got), &len, err, sizeof(err)), -EBADMSG);
        mw_close(&rx);
        close(sv[0]);
}

/*
 * A frame reflected back to its sender is refused: both directions count seq from 0, but each has
 * its own key (and nonce), so the sender's own frame fails its tag.
 */
static void test_reflect(void **state)
{
        struct mw_conn cli, srv;
        uint8_t f[128], got[64];
        uint32_t type, len;
        char err[256];
        json_t *o = NULL;
        int n;

        (void)state;
        for (int from_server = 0; from_server < 2; from_server++) {
                struct mw_conn *a, *b;

                auth_pair(&cli, &srv);
                a = from_server ? &srv : &cli;
                b = from_server ? &cli : &srv;
                assert_int_equal(send_new(a, json_pack("{s:s}", "op", "commit"), err, sizeof(err)),
                                 0);
                /* take the frame off b's socket and send it back to a */
                n = (int)read(b->fd, f, sizeof(f));
                assert_true(n > HDR + MW_TAG);
                write_all(b->fd, f, (size_t)n);
                assert_int_equal(mw_recv(a, &type, got, sizeof(got), &len, err, sizeof(err)),
                                 -EBADMSG);
                assert_true(has(err, "failed its integrity check"));
                /* the same bytes where they were going are fine */
                write_all(a->fd, f, (size_t)n);
                assert_int_equal(mw_recv_json(b, &o, err, sizeof(err)), 0);
                assert_string_equal(json_string_value(json_object_get(o, "op")), "commit");
                json_decref(o);
                mw_close(a);
                mw_close(b);
        }
}

/* ---- encryption ---- */

/* Take the next frame of n payload bytes off the wire to b (from a's socket end) into f. */
static void t_intercept(const struct mw_conn *b, uint8_t *f, size_t n)
{
        read_all(b->fd, f, HDR + n + MW_TAG);
}

/* The payloads travel encrypted (the header in the clear), each frame under its own nonce. */
static void test_encrypted(void **state)
{
        static const char text[] = "framebuffer row: the guest's secret pixels. ";
        enum { N = 8192 };
        uint8_t *data = malloc(N), *f1 = malloc(HDR + N + MW_TAG), *f2 = malloc(HDR + N + MW_TAG);
        uint8_t *want = malloc(HDR + N + MW_TAG), *got = malloc(N), m[128];
        const char *msg = "{\"token\":\"hunter2-hunter2-hunter2\"}";
        uint32_t mlen = (uint32_t)strlen(msg), type, len;
        struct mw_conn cli, srv;
        size_t same = 0;
        char err[256];

        (void)state;
        assert_non_null(data);
        assert_non_null(f1);
        assert_non_null(f2);
        assert_non_null(want);
        assert_non_null(got);
        for (size_t i = 0; i < N; i++)
                data[i] = (uint8_t)text[i % (sizeof(text) - 1)];
        auth_pair(&cli, &srv);
        /* the same bytes twice, taken off the wire */
        assert_int_equal(mw_write(&cli, data, N), 0);
        assert_int_equal(mw_flush(&cli), 0);
        t_intercept(&srv, f1, N);
        assert_int_equal(mw_write(&cli, data, N), 0);
        assert_int_equal(mw_flush(&cli), 0);
        t_intercept(&srv, f2, N);
        /* the header is in the clear */
        assert_int_equal(f1[0], MW_DATA);
        assert_int_equal(f1[4] | f1[5] << 8 | f1[6] << 16, N);
        assert_int_equal(f2[8], 1);
        /* the payload is not */
        assert_null(memmem(f1, HDR + N + MW_TAG, "secret pixels", 13));
        assert_null(memmem(f2, HDR + N + MW_TAG, "secret pixels", 13));
        for (size_t i = 0; i < N; i++)
                same += f1[HDR + i] == data[i];
        assert_true(same < N / 32); /* about N / 256 by chance */
        /* and the same plaintext under another seq is another ciphertext */
        assert_memory_not_equal(f1 + HDR, f2 + HDR, N);
        /* exactly the frames the protocol comment describes, from the client's side */
        assert_memory_equal(f1, want, t_frame_dir(cli.key, 'c', MW_DATA, 0, data, N, want));
        assert_memory_equal(f2, want, t_frame_dir(cli.key, 'c', MW_DATA, 1, data, N, want));
        /* passed on, they decrypt to what was written */
        write_all(cli.fd, f1, HDR + N + MW_TAG);
        write_all(cli.fd, f2, HDR + N + MW_TAG);
        for (int k = 0; k < 2; k++) {
                memset(got, 0, N);
                assert_int_equal(mw_read(&srv, got, N), 1);
                assert_memory_equal(got, data, N);
        }
        /* a message from the server, likewise */
        assert_int_equal(mw_send(&srv, MW_MSG, msg, mlen, err, sizeof(err)), 0);
        t_intercept(&cli, m, mlen);
        assert_null(memmem(m, HDR + mlen + MW_TAG, "hunter2", 7));
        assert_memory_equal(m, want, t_frame_dir(srv.key, 's', MW_MSG, 0, msg, mlen, want));
        write_all(srv.fd, m, HDR + mlen + MW_TAG);
        assert_int_equal(mw_recv(&cli, &type, got, N, &len, err, sizeof(err)), 0);
        assert_int_equal(len, mlen);
        assert_memory_equal(got, msg, mlen);
        mw_close(&cli);
        mw_close(&srv);
        free(data);
        free(f1);
        free(f2);
        free(want);
        free(got);
}

/* ---- connections handed over to another process ---- */

/*
 * What vgpud and an engine do: the connection's fd (a dup here), key, seqs and side travel, the
 * old end is closed without sending, and mw_conn_restore makes the new one.
 */
static void t_hand_over(struct mw_conn *c)
{
        struct mw_conn n;
        uint8_t key[32];
        uint64_t tx = c->tx_seq, rx = c->rx_seq;
        bool server = mw_conn_is_server(c);
        int fd = dup(c->fd);

        assert_true(fd >= 0);
        memcpy(key, c->key, 32);
        mw_close(c);
        memset(&n, 0x5a, sizeof(n)); /* restore needs no zeroed struct */
        assert_int_equal(mw_conn_restore(&n, fd, key, tx, rx, server), 0);
        assert_int_equal(n.fd, fd);
        assert_int_equal(n.timeout_ms, MW_TIMEOUT_DEFAULT);
        assert_int_equal(n.tx_seq, tx);
        assert_int_equal(n.rx_seq, rx);
        assert_memory_equal(n.key, key, 32);
        assert_int_equal(mw_conn_is_server(&n), server);
        assert_string_equal(n.peer, "(local socket)");
        *c = n;
}

/* Messages both ways and a stream each way between two ends. */
static void t_talk(struct mw_conn *cli, struct mw_conn *srv, int round)
{
        uint8_t data[40000], got[40000];
        json_t *o = NULL;
        char err[256];

        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t)(i * 31 + (size_t)round);
        assert_int_equal(send_new(cli, json_pack("{s:i}", "c", round), err, sizeof(err)), 0);
        assert_int_equal(mw_recv_json(srv, &o, err, sizeof(err)), 0);
        assert_int_equal(json_integer_value(json_object_get(o, "c")), round);
        json_decref(o);
        assert_int_equal(send_new(srv, json_pack("{s:i}", "s", round), err, sizeof(err)), 0);
        assert_int_equal(mw_recv_json(cli, &o, err, sizeof(err)), 0);
        assert_int_equal(json_integer_value(json_object_get(o, "s")), round);
        json_decref(o);
        assert_int_equal(mw_write(cli, data, sizeof(data)), 0);
        assert_int_equal(mw_flush(cli), 0);
        assert_int_equal(mw_read(srv, got, sizeof(got)), 1);
        assert_memory_equal(got, data, sizeof(data));
        assert_int_equal(mw_write(srv, data, 1000), 0);
        assert_int_equal(mw_flush(srv), 0);
        assert_int_equal(mw_read(cli, got, 1000), 1);
        assert_memory_equal(got, data, 1000);
}

static void test_restore(void **state)
{
        struct mw_conn cli, srv, c;
        uint8_t got[64];
        uint32_t type, len;
        char err[256];

        (void)state;
        /* refusals leave c untouched */
        memset(&c, 0x5a, sizeof(c));
        assert_int_equal(mw_conn_restore(&c, -1, fixed_key, 0, 0, false), -EINVAL);
        assert_int_equal(mw_conn_restore(&c, 0, NULL, 0, 0, true), -EINVAL);
        assert_int_equal(mw_conn_restore(NULL, 0, fixed_key, 0, 0, true), -EINVAL);
        assert_true(untouched(&c));
        assert_false(mw_conn_is_server(NULL));

        /* the client's end moves, then the server's, then both, each after some traffic */
        for (int which = 0; which < 3; which++) {
                auth_pair(&cli, &srv);
                assert_false(mw_conn_is_server(&cli));
                assert_true(mw_conn_is_server(&srv));
                t_talk(&cli, &srv, 10 * which);
                if (which != 1)
                        t_hand_over(&cli);
                if (which != 0)
                        t_hand_over(&srv);
                t_talk(&cli, &srv, 10 * which + 1);
                /* and once more, as the engines pass it back to vgpud */
                t_hand_over(&cli);
                t_hand_over(&srv);
                t_talk(&cli, &srv, 10 * which + 2);
                mw_close(&cli);
                mw_close(&srv);
        }

        /* a client's end built by hand (all private fields zero), as tests and the engines did */
        auth_pair(&cli, &srv);
        t_talk(&cli, &srv, 5);
        c = (struct mw_conn){
                .fd = dup(cli.fd), .timeout_ms = 2000, .tx_seq = cli.tx_seq, .rx_seq = cli.rx_seq};
        memcpy(c.key, cli.key, 32);
        mw_close(&cli);
        t_talk(&c, &srv, 6);
        mw_close(&c);
        mw_close(&srv);

        /* the server's end restored as a client's does not talk: the side must travel */
        auth_pair(&cli, &srv);
        c = (struct mw_conn){.fd = dup(srv.fd), .timeout_ms = 2000};
        memcpy(c.key, srv.key, 32);
        mw_close(&srv);
        assert_int_equal(mw_send(&cli, MW_MSG, "{}", 2, err, sizeof(err)), 0);
        assert_int_equal(mw_recv(&c, &type, got, sizeof(got), &len, err, sizeof(err)), -EBADMSG);
        assert_true(has(err, "failed its integrity check"));
        mw_close(&c);
        mw_close(&cli);

        /* closing a connection set up by hand that never carried a frame is harmless, twice */
        memset(&c, 0, sizeof(c));
        c.fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        assert_true(c.fd >= 0);
        memcpy(c.key, fixed_key, 32);
        mw_close(&c);
        mw_close(&c);
        assert_int_equal(c.fd, -1);
}

/* A header that announces too much, or an unknown type, is refused before any payload is read. */
static void test_oversize(void **state)
{
        static const uint32_t bad[][2] = {
                {MW_DATA, MW_FRAME_MAX + 1},
                {MW_MSG, UINT32_MAX},
                {7, 10},
                {0, 10},
        };
        uint8_t hdr[HDR], marker[100], got[64];
        struct mw_conn rx;
        char err[256];
        int sv[2], avail;

        (void)state;
        memset(marker, 'm', sizeof(marker));
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
                for (int use_read = 0; use_read < 2; use_read++) {
                        uint32_t type, len;
                        int64_t t0;
                        int r;

                        memset(hdr, 0, sizeof(hdr));
                        for (int i = 0; i < 4; i++) {
                                hdr[i] = (uint8_t)(bad[k][0] >> (8 * i));
                                hdr[4 + i] = (uint8_t)(bad[k][1] >> (8 * i));
                        }
                        pair(sv);
                        conn_raw(&rx, sv[1]);
                        rx.timeout_ms = 5000;
                        write_all(sv[0], hdr, sizeof(hdr));
                        write_all(sv[0], marker, sizeof(marker));
                        t0 = now_ms();
                        r = use_read
                                    ? mw_read(&rx, got, 10)
                                    : mw_recv(&rx, &type, got, sizeof(got), &len, err, sizeof(err));
                        assert_int_equal(r, -EBADMSG);
                        assert_true(now_ms() - t0 < 1000);
                        assert_true(has(rx.err, bad[k][0] == MW_DATA || bad[k][0] == MW_MSG
                                                        ? "over the limit"
                                                        : "unknown type"));
                        /* not one byte after the header was read */
                        assert_int_equal(ioctl(sv[1], FIONREAD, &avail), 0);
                        assert_int_equal(avail, (int)sizeof(marker));
                        mw_close(&rx);
                        close(sv[0]);
                }
        }
}

/* ---- the secret file ---- */

static void write_file(const char *path, const void *p, size_t n, mode_t mode)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        assert_true(fd >= 0);
        write_all(fd, p, n);
        assert_int_equal(fchmod(fd, mode), 0);
        close(fd);
}

static void test_secret_file(void **state)
{
        char dir[] = "/tmp/test_migwire.XXXXXX", path[128], err[512];
        uint8_t big[5000], secret[MW_SECRET_MAX];
        size_t len;

        (void)state;
        assert_non_null(mkdtemp(dir));
        memset(big, 'k', sizeof(big));
        snprintf(path, sizeof(path), "%s/secret", dir);

        write_file(path, "0123456789abcdef0123456789abcdef\n", 33, 0600);
        len = 0;
        assert_int_equal(mw_secret_load(path, secret, sizeof(secret), &len, err, sizeof(err)), 0);
        assert_int_equal(len, 33); /* the newline is part of it */
        assert_memory_equal(secret, "0123456789abcdef0123456789abcdef\n", 33);
        write_file(path, big, MW_SECRET_MAX, 0400);
        assert_int_equal(mw_secret_load(path, secret, sizeof(secret), &len, err, sizeof(err)), 0);
        assert_int_equal(len, MW_SECRET_MAX);

        memset(secret, 0xee, sizeof(secret));
        len = 12345;
        write_file(path, "short\n", 6, 0600);
        assert_int_equal(mw_secret_load(path, secret, sizeof(secret), &len, err, sizeof(err)),
                         -EINVAL);
        assert_true(has(err, "holds 6 bytes, fewer than the 16"));
        write_file(path, big, 15, 0600);
        assert_int_equal(mw_secret_load(path, secret, sizeof(secret), &len, err, sizeof(err)),
                         -EINVAL);
        write_file(path, big, 32, 0644);
        assert_int_equal(mw_secret_load(path, secret, sizeof(secret), &len, err, sizeof(err)),
                         -EPERM);
        assert_true(has(err, "mode 0644"));
        assert_true(has(err, "chmod 600"));
        write_file(path, big, 32, 0640);
        assert_int_equal(mw_secret_load(path, secret, sizeof(secret), &len, err, sizeof(err)),
                         -EPERM);
        write_file(path, big, 32, 0602);
        assert_int_equal(mw_secret_load(path, secret, sizeof(secret), &len, err, sizeof(err)),
                         -EPERM);
        write_file(path, big, MW_SECRET_MAX + 1, 0600);
        assert_int_equal(mw_secret_load(path, secret, sizeof(secret), &len, err, sizeof(err)),
                         -EFBIG);
        write_file(path, big, 100, 0600);
        assert_int_equal(mw_secret_load(path, secret, 64, &len, err, sizeof(err)), -EFBIG);
        assert_int_equal(mw_secret_load(dir, secret, sizeof(secret), &len, err, sizeof(err)),
                         -EINVAL);
        assert_true(has(err, "not a regular file"));
        snprintf(path, sizeof(path), "%s/fifo", dir);
        assert_int_equal(mkfifo(path, 0600), 0);
        assert_int_equal(mw_secret_load(path, secret, sizeof(secret), &len, err, sizeof(err)),
                         -EINVAL); /* at once: opening it did not wait for a writer */
        unlink(path);
        snprintf(path, sizeof(path), "%s/secret", dir);
        unlink(path);
        assert_int_equal(mw_secret_load(path, secret, sizeof(secret), &len, err, sizeof(err)),
                         -ENOENT);
        assert_true(has(err, path));
        /* outputs untouched by every failure */
        assert_int_equal(len, 12345);
        for (size_t i = 0; i < sizeof(secret); i++)
                assert_int_equal(secret[i], 0xee);
        rmdir(dir);
}

/* ---- TCP ---- */

struct tcp_server {
        int lfd;
        struct mw_conn c;
        int r;
        char err[256];
};

static void *tcp_server_run(void *p)
{
        struct tcp_server *s = p;
        json_t *o = NULL;
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);

        s->r = fd < 0 ? -errno
                      : mw_auth_server(&s->c, fd, secret_a, SLEN, 5000, s->err, sizeof(s->err));
        if (s->r < 0)
                return NULL;
        s->r = mw_recv_json(&s->c, &o, s->err, sizeof(s->err));
        if (s->r == 0) {
                json_object_set_new(o, "seen", json_true());
                s->r = mw_send_json(&s->c, o, s->err, sizeof(s->err));
                json_decref(o);
        }
        return NULL;
}

static void test_tcp(void **state)
{
        struct tcp_server s = {0};
        struct mw_conn c;
        char addr[64], err[256];
        json_t *o = NULL;
        pthread_t t;
        int fd, port, one = 0;
        socklen_t ol = sizeof(one);

        (void)state;
        s.lfd = mw_listen("127.0.0.1:0", 4, err, sizeof(err));
        assert_true(s.lfd >= 0);
        assert_true(fcntl(s.lfd, F_GETFD) & FD_CLOEXEC);
        port = mw_listen_port(s.lfd);
        assert_true(port > 0);
        assert_int_equal(pthread_create(&t, NULL, tcp_server_run, &s), 0);
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
        fd = mw_connect(addr, 2000, err, sizeof(err));
        assert_true(fd >= 0);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
        assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, &ol), 0);
        assert_int_equal(one, 1);
        assert_int_equal(mw_auth_client(&c, fd, secret_a, SLEN, 5000, err, sizeof(err)), 0);
        assert_string_equal(c.peer, addr);
        assert_int_equal(send_new(&c, json_pack("{s:i}", "x", 9), err, sizeof(err)), 0);
        assert_int_equal(mw_recv_json(&c, &o, err, sizeof(err)), 0);
        assert_int_equal(json_integer_value(json_object_get(o, "x")), 9);
        assert_true(json_is_true(json_object_get(o, "seen")));
        json_decref(o);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(s.r, 0);
        assert_memory_equal(c.key, s.c.key, 32);
        assert_true(has(s.c.peer, "127.0.0.1:"));
        mw_close(&c);
        mw_close(&s.c);
        close(s.lfd);
}

static void test_connect_errors(void **state)
{
        static const char *bad[] = {
                "nohostport", "[::1", "[::1]80", "::1:80",  "host:",       "host:99999",
                "host:12a",   ":80",  "[]:80",   "host:-1", "host:123456",
        };
        char addr[64], err[256];
        int lfd, port, r;

        (void)state;
        /* a port nothing listens on */
        lfd = mw_listen("127.0.0.1:0", 1, err, sizeof(err));
        assert_true(lfd >= 0);
        port = mw_listen_port(lfd);
        close(lfd);
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
        assert_int_equal(mw_connect(addr, 2000, err, sizeof(err)), -ECONNREFUSED);
        assert_true(has(err, addr));
        assert_true(has(err, "refused"));

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                err[0] = '\0';
                assert_int_equal(mw_connect(bad[i], 100, err, sizeof(err)), -EINVAL);
                assert_true(has(err, "is not HOST:PORT"));
                assert_int_equal(mw_listen(bad[i], 1, err, sizeof(err)), -EINVAL);
        }
        assert_int_equal(mw_connect(NULL, 100, err, sizeof(err)), -EINVAL);
        assert_int_equal(mw_connect("127.0.0.1:0", 100, err, sizeof(err)), -EINVAL);
        /* brackets parse (the host may lack IPv6: then bind fails, but not on syntax) */
        r = mw_listen("[::1]:0", 1, err, sizeof(err));
        assert_true(r != -EINVAL);
        if (r >= 0)
                close(r);
        r = mw_listen("localhost:0", 1, err, sizeof(err));
        assert_true(r >= 0);
        close(r);
}

/* ---- throughput ---- */

#define BENCH_BYTES ((size_t)256 << 20)
#define BENCH_CHUNK ((size_t)256 << 10)

struct plain_writer {
        int fd;
        const uint8_t *chunk;
};

static void *plain_writer_run(void *p)
{
        struct plain_writer *w = p;

        for (size_t off = 0; off < BENCH_BYTES; off += BENCH_CHUNK)
                write_all(w->fd, w->chunk, BENCH_CHUNK);
        return NULL;
}

struct bench_writer {
        struct mw_conn *c;
        const uint8_t *chunk;
        int r;
};

static void *bench_writer_run(void *p)
{
        struct bench_writer *w = p;

        w->r = 0;
        for (size_t off = 0; off < BENCH_BYTES && w->r == 0; off += BENCH_CHUNK)
                w->r = mw_write(w->c, w->chunk, BENCH_CHUNK);
        if (w->r == 0)
                w->r = mw_flush(w->c);
        return NULL;
}

static double secs(const struct timespec *a, const struct timespec *b)
{
        return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void test_throughput(void **state)
{
        uint8_t *chunk = malloc(BENCH_CHUNK), *got = malloc(BENCH_CHUNK);
        struct plain_writer pw;
        struct bench_writer bw;
        struct mw_conn cli, srv;
        struct timespec t0, t1;
        double plain, mig;
        uint64_t seed = 3;
        pthread_t t;
        int sv[2];

        (void)state;
        assert_non_null(chunk);
        assert_non_null(got);
        for (size_t i = 0; i < BENCH_CHUNK; i += 8) {
                uint64_t x = rng_next(&seed);

                memcpy(chunk + i, &x, 8);
        }
        /* the baseline: the same bytes through a bare socketpair */
        pair(sv);
        pw = (struct plain_writer){.fd = sv[0], .chunk = chunk};
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(pthread_create(&t, NULL, plain_writer_run, &pw), 0);
        for (size_t off = 0; off < BENCH_BYTES; off += BENCH_CHUNK)
                read_all(sv[1], got, BENCH_CHUNK);
        assert_int_equal(pthread_join(t, NULL), 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        plain = (double)(BENCH_BYTES >> 20) / secs(&t0, &t1);
        close(sv[0]);
        close(sv[1]);

        auth_pair(&cli, &srv);
        bw = (struct bench_writer){.c = &cli, .chunk = chunk};
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(pthread_create(&t, NULL, bench_writer_run, &bw), 0);
        for (size_t off = 0; off < BENCH_BYTES; off += BENCH_CHUNK)
                assert_int_equal(mw_read(&srv, got, BENCH_CHUNK), 1);
        assert_int_equal(pthread_join(t, NULL), 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        assert_int_equal(bw.r, 0);
        assert_memory_equal(got, chunk, BENCH_CHUNK);
        mig = (double)(BENCH_BYTES >> 20) / secs(&t0, &t1);
        printf("migwire: 256 MiB through mw_write/mw_read over a socketpair: %.0f MiB/s "
               "(a bare socketpair: %.0f MiB/s; ratio %.2f x)\n",
               mig, plain, mig / plain);
        mw_close(&cli);
        mw_close(&srv);
        free(chunk);
        free(got);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_auth_ok),
                cmocka_unit_test(test_wire_format),
                cmocka_unit_test(test_auth_wrong_secret),
                cmocka_unit_test(test_wrong_magic),
                cmocka_unit_test(test_closed_mid_handshake),
                cmocka_unit_test(test_timeout),
                cmocka_unit_test(test_json),
                cmocka_unit_test(test_stream),
                cmocka_unit_test(test_msg_mid_stream),
                cmocka_unit_test(test_duplex),
                cmocka_unit_test(test_duplex_errors),
                cmocka_unit_test(test_corrupt),
                cmocka_unit_test(test_replay),
                cmocka_unit_test(test_reflect),
                cmocka_unit_test(test_encrypted),
                cmocka_unit_test(test_restore),
                cmocka_unit_test(test_oversize),
                cmocka_unit_test(test_secret_file),
                cmocka_unit_test(test_tcp),
                cmocka_unit_test(test_connect_errors),
                cmocka_unit_test(test_throughput),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
