/* SPDX-License-Identifier: Apache-2.0 */
/*
 * migwire: the authenticated, encrypted wire of live migration between two vgpud daemons (and their
 * engines). A handshake proves to each side that the other holds the shared secret and derives a
 * session key; after it, every frame carries a sequence number and is sealed with AES-256-GCM
 * under a key of its direction, derived from the session key. The protocol is written up at the
 * top of migwire.c.
 */
#ifndef VGPU_COMMON_MIGWIRE_H
#define VGPU_COMMON_MIGWIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define MW_SECRET_MIN      16 /* bytes a secret file must hold at least */
#define MW_SECRET_MAX      4096
#define MW_FRAME_MAX       (UINT32_C(1) << 20) /* payload bytes of one frame, at most */
#define MW_MAC             32 /* bytes of an HMAC-SHA256: the handshake's proofs, the session key */
#define MW_TAG             16 /* bytes of a frame's AES-256-GCM tag, after its payload */
#define MW_TIMEOUT_DEFAULT 30000 /* ms; what the handshake puts in mw_conn.timeout_ms */

enum mw_type {
        MW_MSG = 1,  /* a JSON text */
        MW_DATA = 2, /* bytes of a stream */
};

struct evp_cipher_ctx_st; /* OpenSSL's EVP_CIPHER_CTX */

/*
 * One authenticated connection, set up by mw_auth_client or mw_auth_server (or mw_conn_restore)
 * and released with mw_close. The fields above the line are the caller's to read (and timeout_ms
 * to change while no call is in progress); the ones below are the library's. A connection set up
 * by hand (fd, timeout_ms, key and the sequence numbers; all else zero), as tests and the fuzzer
 * do, is a client's end; mw_conn_restore sets up either end. A copy of the struct is the same
 * connection (the same buffers and cipher contexts): use and close only one.
 *
 * Threads: one thread may send while one other thread receives; nothing else concurrently. The
 * sending side is mw_send, mw_send_json, mw_write and mw_flush, with tx_seq, wbuf, wlen, bytes_tx
 * and tx_err; the receiving side is mw_recv, mw_recv_json and mw_read, with rx_seq, rbuf, rlen,
 * roff, bytes_rx and err. Each side writes only its own fields (its cipher context, made at its
 * first frame, too), and a side's fields are safe to read from its own thread. Two threads on the
 * same side at once, or mw_close, mw_conn_restore, a handshake or a change of timeout_ms while
 * either side is in a call, are not allowed; threads that take turns on a side (or hand it on, as
 * a re-attach does) must be ordered, as by a mutex. When one side finds the connection unusable,
 * the other side's next call returns the same error, with the same sentence in its own field.
 *
 * key is the secret of the session (what a process that takes the connection over needs, with
 * tx_seq, rx_seq and the side): the AES keys of the two directions are derived from it when the
 * first frame goes each way, so key must not change after that (mw_close first). Two frames must
 * never go out under the same key and tx_seq: a connection handed to another process must not be
 * written to by the one that handed it over, and must be restored with the tx_seq it had then.
 */
struct mw_conn {
        int fd;
        int timeout_ms;          /* each wait for the peer, at most (default 30000; <= 0: 30000) */
        uint8_t key[32];         /* the session key both sides derived */
        uint64_t tx_seq, rx_seq; /* frames sent / received */
        /* buffering of mw_write / mw_read (allocated lazily, freed by mw_close) */
        uint8_t *wbuf;
        uint32_t wlen;
        uint8_t *rbuf;
        uint32_t rlen, roff;
        uint64_t bytes_tx, bytes_rx; /* payload bytes, for stats */
        char err[256];    /* the receiving side's last failure's sentence (mw_read, mw_recv...) */
        char tx_err[256]; /* the sending side's (mw_write, mw_flush, mw_send, mw_send_json) */
        /* ---- private: zero is the right initial value of each ---- */
        uint32_t rcap;  /* bytes rbuf holds */
        uint32_t rtype; /* type of the verified frame held in rbuf[roff, rlen), 0 when none */
        int dead;       /* 0, or the error that left the receiving side unusable (__atomic) */
        int tx_dead;    /* 0, or the error that left the sending side unusable (__atomic) */
        bool server;    /* the server's end: sends server-to-client frames, receives the others */
        char peer[64];  /* "10.0.0.2:9500", for messages */
        uint8_t *sbuf;  /* the ciphertext of a frame sent from the caller's memory */
        uint32_t scap;  /* bytes sbuf holds */
        /* AES-256-GCM keyed for sending / receiving (made at the first frame each way) */
        struct evp_cipher_ctx_st *tx_gcm, *rx_gcm;
};

/*
 * mw_secret_load - read the shared secret: the whole file's bytes (a trailing newline is part of
 * it). Refuses a file that is missing or unreadable (-errno of open/read), not a regular file
 * (-EINVAL), readable or writable by group or others (-EPERM: mode & 077), shorter than
 * MW_SECRET_MIN (-EINVAL) or longer than MW_SECRET_MAX or cap (-EFBIG). Returns 0 with the bytes
 * in secret and their count in *ret_len; on failure both are untouched and err says why.
 */
int mw_secret_load(const char *path, uint8_t *secret, size_t cap, size_t *ret_len, char *err,
                   size_t errlen);

/*
 * mw_listen - a listening TCP socket (CLOEXEC, SO_REUSEADDR) on hostport: "HOST:PORT" where HOST
 * is an IPv4 address, a name (getaddrinfo; the first address that binds), or "[IPv6]"; PORT 0
 * picks a free port (mw_listen_port tells which). Returns the fd, or -EINVAL (bad syntax),
 * -EADDRNOTAVAIL (the name does not resolve), or the -errno of socket/bind/listen; err says why.
 */
int mw_listen(const char *hostport, int backlog, char *err, size_t errlen);

/*
 * mw_connect - a TCP connection (blocking, CLOEXEC, TCP_NODELAY) to hostport (as mw_listen, port
 * not 0), trying each address getaddrinfo gives, all within timeout_ms (<= 0: 30000). Returns the
 * fd, or -EINVAL (bad syntax), -EHOSTUNREACH (the name does not resolve), -ETIMEDOUT, or the
 * -errno of the last connect (-ECONNREFUSED: nothing listens there); err says why. Resolving a
 * name (getaddrinfo) is not bounded by timeout_ms: give an address where that matters.
 */
int mw_connect(const char *hostport, int timeout_ms, char *err, size_t errlen);

/* mw_listen_port - the local port of a bound socket (for "127.0.0.1:0"), or -errno. */
int mw_listen_port(int fd);

/*
 * mw_auth_client / mw_auth_server - the handshake over a connected stream socket fd (not owned;
 * blocking or not), the whole of it within timeout_ms (<= 0: 30000), with secret (slen bytes,
 * as mw_secret_load gives). On success *c is overwritten with a fresh connection (c->fd = fd,
 * the session key derived, sequence numbers 0, timeout_ms MW_TIMEOUT_DEFAULT), TCP_NODELAY is
 * set on a TCP fd, and the caller owns c (mw_close, which closes fd). Returns 0, or -EPROTO (the
 * peer does not speak this protocol), -EKEYREJECTED (the peer did not prove it holds the
 * secret), -ECONNRESET (the peer closed the connection: a client that finds the server's proof
 * wrong does that), -ETIMEDOUT, -EINVAL, or another -errno; then fd is not closed, *c is
 * untouched and err says why.
 */
int mw_auth_client(struct mw_conn *c, int fd, const uint8_t *secret, size_t slen, int timeout_ms,
                   char *err, size_t errlen);
int mw_auth_server(struct mw_conn *c, int fd, const uint8_t *secret, size_t slen, int timeout_ms,
                   char *err, size_t errlen);

/*
 * mw_conn_restore - set up *c as one end of a connection that a handshake made elsewhere (another
 * process passed fd on, with the session key, both sequence numbers and the side it was: what
 * mw_conn_is_server says there). *c is overwritten (it must not hold a live connection: mw_close
 * it first), timeout_ms is MW_TIMEOUT_DEFAULT, and the caller owns c (mw_close, which closes fd).
 * Returns 0, or -EINVAL (no c or key, or fd < 0; *c untouched). See struct mw_conn on tx_seq.
 */
int mw_conn_restore(struct mw_conn *c, int fd, const uint8_t key[32], uint64_t tx_seq,
                    uint64_t rx_seq, bool server);

/* mw_conn_is_server - whether c is the server's end (made by mw_auth_server or restored so). */
bool mw_conn_is_server(const struct mw_conn *c);

/*
 * Errors of the calls below. A connection stays usable after -EMSGSIZE, -EPROTO, -EINVAL, a
 * JSON that does not decode, and an -ETIMEDOUT of mw_recv/mw_recv_json/mw_send before any byte
 * of the frame moved. After any other error (a bad frame: -EBADMSG; the peer gone:
 * -ECONNRESET; a timeout in the middle of a frame or of mw_write/mw_flush/mw_read) it is
 * unusable: every later call, on either side, returns that same error at once (sides that fail
 * at the same moment each keep their own). Only mw_close remains. The sentence of a failure is in
 * tx_err after a sending call and in err after a receiving one (and in the call's err, if any).
 */

/*
 * mw_send - one frame of type (MW_MSG or MW_DATA) with len bytes (at most MW_FRAME_MAX, else
 * -EMSGSIZE) from p. What mw_write buffered is sent first, so frames keep the order of the
 * calls. Returns 0 or a negative errno; err says why.
 */
int mw_send(struct mw_conn *c, uint32_t type, const void *p, uint32_t len, char *err,
            size_t errlen);

/*
 * mw_recv - the next frame, verified: its type in *ret_type, its payload in buf (cap bytes) and
 * its length in *ret_len. A frame longer than cap is -EMSGSIZE and stays pending (call again
 * with a larger buffer). What is left of a data frame that mw_read consumed in part comes back
 * as an MW_DATA frame of the rest. Returns 0 or a negative errno (outputs untouched); err says
 * why.
 */
int mw_recv(struct mw_conn *c, uint32_t *ret_type, void *buf, uint32_t cap, uint32_t *ret_len,
            char *err, size_t errlen);

/*
 * mw_send_json - o (not stolen) as one compact MW_MSG frame. Returns 0, -EINVAL (o cannot be
 * encoded), -EMSGSIZE (over MW_FRAME_MAX), or as mw_send; err says why.
 */
int mw_send_json(struct mw_conn *c, json_t *o, char *err, size_t errlen);

/*
 * mw_recv_json - the next frame as a JSON object: *ret is a new reference. A message that is not
 * a JSON object is -EBADMSG (it is consumed; the connection stays usable); a pending data frame
 * is -EPROTO (it stays pending). Otherwise as mw_recv.
 */
int mw_recv_json(struct mw_conn *c, json_t **ret, char *err, size_t errlen);

/*
 * A byte stream in MW_DATA frames. mw_write buffers len bytes from p, sending a frame per
 * MW_FRAME_MAX bytes; mw_flush sends what is buffered (mw_send and mw_send_json flush first).
 * Both return 0 or a negative errno, with the sentence in c->tx_err.
 *
 * mw_read reads exactly len bytes into p from MW_DATA frames: 1 when they were read, or a
 * negative errno with the sentence in c->err (never 0: a stream has no end of its own; the
 * protocol above it says how long it is). A message where data is wanted is -EPROTO ("peer sent
 * a message in the middle of a data stream"); the message stays pending for mw_recv or
 * mw_recv_json, and the bytes read before it are consumed. The peer closing is -ECONNRESET.
 */
int mw_write(struct mw_conn *c, const void *p, size_t len);
int mw_flush(struct mw_conn *c);
int mw_read(struct mw_conn *c, void *p, size_t len);

/*
 * mw_close - free the buffers and cipher contexts, close c->fd (when >= 0) and wipe the key;
 * buffered writes not flushed are dropped. c can then be set up again or thrown away; closing
 * twice, or closing a connection set up by hand that never carried a frame, is harmless.
 */
void mw_close(struct mw_conn *c);

#endif
