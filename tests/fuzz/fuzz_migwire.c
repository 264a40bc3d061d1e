// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the migration wire (common/migwire.h): the input is what a peer sends.
// Byte 0 picks the mode: 0, the server's handshake reads it; 1, a client's end with a fixed key
// reads it as frames; 2, the rest is cut into pieces ([type][len16][payload]...) that become
// frames (from a server) sealed with AES-256-GCM under the right key and sequence, so payloads get
// past the tag to the JSON decoder and the stream reader. Byte 1 seeds the choice of calls
// (mw_recv, mw_read, mw_recv_json, sends). The bytes go into a socketpair whose sending end is
// then shut, so nothing ever waits.
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/migwire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t secret[] = "fuzz-secret-0123456789abcdef";
/* the key of modes 1 and 2: bytes 1..32 (tests/fuzz/corpus/fuzz_migwire/ uses it too) */
static const uint8_t key[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* A socketpair holding p (as much as fits) in sv[1]'s receive queue; sv[0] is shut for writing. */
static int feed(const uint8_t *p, size_t n, int sv[2])
{
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return -1;
        while (n > 0) {
                ssize_t k = send(sv[0], p, n, MSG_NOSIGNAL | MSG_DONTWAIT);

                if (k <= 0)
                        break;
                p += k;
                n -= (size_t)k;
        }
        shutdown(sv[0], SHUT_WR);
        return 0;
}

static uint32_t rng(uint32_t *s)
{
        *s = *s * 1103515245u + 12345u;
        return *s >> 16;
}

/* Calls chosen by seed on a connection reading the fed bytes, until it is dead. */
static void drive(struct mw_conn *c, uint8_t seed)
{
        static uint8_t buf[1 << 16];
        uint32_t s = seed, type, len;
        char err[256];

        for (int i = 0; i < 64 && !c->dead; i++) {
                uint32_t op = rng(&s) % 8;
                json_t *o = NULL;
                int r = 0;

                switch (op) {
                case 0:
                case 1:
                        r = mw_recv(c, &type, buf, sizeof(buf), &len, err, sizeof(err));
                        if (r == 0 && (type != MW_MSG && type != MW_DATA))
                                abort();
                        break;
                case 2:
                        r = mw_recv(c, &type, buf, 8, &len, err, sizeof(err));
                        if (r == 0 && len > 8)
                                abort();
                        break;
                case 3:
                case 4:
                        r = mw_read(c, buf, 1 + rng(&s) % 3000);
                        if (r == 0)
                                abort(); /* 1 or -errno, never 0 */
                        break;
                case 5:
                        r = mw_recv_json(c, &o, err, sizeof(err));
                        if (r == 0 && !json_is_object(o))
                                abort();
                        json_decref(o);
                        break;
                case 6:
                        o = json_pack("{s:i}", "ack", i);
                        r = mw_send_json(c, o, err, sizeof(err));
                        json_decref(o);
                        break;
                default:
                        r = mw_write(c, buf, rng(&s) % 2000);
                        if (r == 0 && rng(&s) % 2)
                                r = mw_flush(c);
                        break;
                }
                if (r < 0 && r != -EMSGSIZE && r != -EPROTO && r != -EBADMSG && !c->dead)
                        break; /* -ETIMEDOUT cannot happen with the sender shut; stop anyway */
        }
}

/*
 * A frame as a server sends it, for the client's end made here: the header {type, len, seq} (LE)
 * as the AAD, the payload under AES-256-GCM with the key HMAC(key, "vgpu-mig s2c") and the nonce
 * {uint32 2, uint64 seq} (LE), then the tag. ctx holds that key already.
 */
static size_t put_frame(EVP_CIPHER_CTX *ctx, uint8_t *out, uint32_t type, uint64_t seq,
                        const uint8_t *p, uint32_t len)
{
        uint8_t iv[12];
        int n = 0;

        for (int i = 0; i < 4; i++) {
                out[i] = (uint8_t)(type >> (8 * i));
                out[4 + i] = (uint8_t)(len >> (8 * i));
                iv[i] = (uint8_t)(2u >> (8 * i));
        }
        for (int i = 0; i < 8; i++) {
                out[8 + i] = (uint8_t)(seq >> (8 * i));
                iv[4 + i] = (uint8_t)(seq >> (8 * i));
        }
        if (!EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, iv) ||
            !EVP_EncryptUpdate(ctx, NULL, &n, out, 16) ||
            (len && !EVP_EncryptUpdate(ctx, out + 16, &n, p, (int)len)) ||
            !EVP_EncryptFinal_ex(ctx, out + 16 + len, &n) ||
            !EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, MW_TAG, out + 16 + len))
                abort();
        return 16 + len + MW_TAG;
}

/* A cipher context keyed for the frames from a server: HMAC(key, "vgpu-mig s2c"). */
static EVP_CIPHER_CTX *s2c_ctx(void)
{
        static const uint8_t label[] = "vgpu-mig s2c";
        EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        uint8_t k[32];
        size_t outl = 0;

        if (!ctx ||
            !EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, sizeof(key), label,
                       sizeof(label) - 1, k, sizeof(k), &outl) ||
            outl != sizeof(k) || !EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, k, NULL))
                abort();
        return ctx;
}

/* Mode 2: [type][len lo][len hi][payload]... into frames with the right key and sequence. */
static uint8_t *make_frames(const uint8_t *p, size_t n, size_t *ret_len)
{
        static EVP_CIPHER_CTX *ctx;
        uint8_t *out = malloc(n + (n / 3 + 1) * (16 + MW_TAG));
        size_t o = 0;
        uint64_t seq = 0;

        if (!out)
                return NULL;
        if (!ctx)
                ctx = s2c_ctx(); /* once: the key never changes */
        while (n >= 3) {
                uint32_t type = p[0] & 1 ? MW_MSG : MW_DATA;
                uint32_t len = (uint32_t)p[1] | (uint32_t)p[2] << 8;

                p += 3;
                n -= 3;
                if (len > n)
                        len = (uint32_t)n;
                o += put_frame(ctx, out + o, type, seq++, p, len);
                p += len;
                n -= len;
        }
        *ret_len = o;
        return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct mw_conn c;
        char err[256];
        uint8_t *frames = NULL;
        size_t flen;
        int sv[2];

        if (size < 2)
                return 0;
        switch (data[0] % 3) {
        case 0:
                if (feed(data + 2, size - 2, sv) < 0)
                        return 0;
                if (mw_auth_server(&c, sv[1], secret, sizeof(secret) - 1, 50, err, sizeof(err)) ==
                    0)
                        abort(); /* nobody can prove the secret without it */
                close(sv[1]);
                close(sv[0]);
                return 0;
        case 1:
                if (feed(data + 2, size - 2, sv) < 0)
                        return 0;
                break;
        default:
                frames = make_frames(data + 2, size - 2, &flen);
                if (!frames)
                        return 0;
                if (feed(frames, flen, sv) < 0) {
                        free(frames);
                        return 0;
                }
                free(frames);
                break;
        }
        memset(&c, 0, sizeof(c));
        c.fd = sv[1];
        c.timeout_ms = 50;
        memcpy(c.key, key, sizeof(key));
        drive(&c, data[1]);
        mw_close(&c);
        close(sv[0]);
        return 0;
}
