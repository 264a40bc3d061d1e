// SPDX-License-Identifier: Apache-2.0
// Lease tokens: a JSON payload (jansson) signed with Ed25519 (OpenSSL EVP), both base64url, and the
// helpers around a lease's life: the renewal time, the nvidia-smi style expiry text.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "license/lease.h"

#define LEASE_SIG_BYTES 64
#define LEASE_PUB_BYTES 32
/* A lease issued this far in the future (clock skew) is refused. */
#define LEASE_MAX_SKEW 300

struct lease_key {
        EVP_PKEY *pkey;
        bool priv;
};

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int lease_b64url_encode(const unsigned char *in, size_t len, char *out, size_t out_len)
{
        size_t need = (len / 3) * 4 + (len % 3 ? len % 3 + 1 : 0) + 1, o = 0, i;

        if (out_len < need)
                return -ENOSPC;
        for (i = 0; i + 2 < len; i += 3) {
                uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

                out[o++] = b64url[v >> 18];
                out[o++] = b64url[(v >> 12) & 63];
                out[o++] = b64url[(v >> 6) & 63];
                out[o++] = b64url[v & 63];
        }
        if (len - i == 1) {
                out[o++] = b64url[in[i] >> 2];
                out[o++] = b64url[(in[i] & 3) << 4];
        } else if (len - i == 2) {
                uint32_t v = (uint32_t)in[i] << 8 | in[i + 1];

                out[o++] = b64url[v >> 10];
                out[o++] = b64url[(v >> 4) & 63];
                out[o++] = b64url[(v & 15) << 2];
        }
        out[o] = '\0';
        return 0;
}

static int b64_value(char c)
{
        const char *p = c ? strchr(b64url, c) : NULL;

        return p ? (int)(p - b64url) : -1;
}

long lease_b64url_decode(const char *in, size_t len, unsigned char *out, size_t out_len)
{
        size_t o = 0, rem = len % 4;
        uint32_t acc = 0;
        int bits = 0;

        if (rem == 1)
                return -EBADMSG;
        if ((len / 4) * 3 + (rem ? rem - 1 : 0) > out_len)
                return -ENOSPC;
        for (size_t i = 0; i < len; i++) {
                int v = b64_value(in[i]);

                if (v < 0)
                        return -EBADMSG;
                acc = (acc << 6) | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (unsigned char)(acc >> bits);
                        acc &= (1u << bits) - 1;
                }
        }
        /* Leftover bits must be zero: one encoding per byte string, so no malleable tokens. */
        if (acc != 0)
                return -EBADMSG;
        return (long)o;
}

int lease_key_generate(struct lease_key **ret)
{
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
        EVP_PKEY *pkey = NULL;
        struct lease_key *k;

        if (!ctx)
                return -ENOMEM;
        if (EVP_PKEY_keygen_init(ctx) <= 0 || EVP_PKEY_keygen(ctx, &pkey) <= 0) {
                EVP_PKEY_CTX_free(ctx);
                return -EIO;
        }
        EVP_PKEY_CTX_free(ctx);
        k = calloc(1, sizeof(*k));
        if (!k) {
                EVP_PKEY_free(pkey);
                return -ENOMEM;
        }
        k->pkey = pkey;
        k->priv = true;
        *ret = k;
        return 0;
}

int lease_key_from_pem(const char *pem, size_t len, bool private_key, struct lease_key **ret)
{
        BIO *bio;
        EVP_PKEY *pkey;
        struct lease_key *k;

        if (!pem || len > INT32_MAX)
                return -EINVAL;
        bio = BIO_new_mem_buf(pem, (int)len);
        if (!bio)
                return -ENOMEM;
        pkey = private_key ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)
                           : PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (!pkey)
                return -EKEYREJECTED;
        if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
                EVP_PKEY_free(pkey);
                return -EKEYREJECTED;
        }
        k = calloc(1, sizeof(*k));
        if (!k) {
                EVP_PKEY_free(pkey);
                return -ENOMEM;
        }
        k->pkey = pkey;
        k->priv = private_key;
        *ret = k;
        return 0;
}

int lease_key_load(const char *path, bool private_key, struct lease_key **ret)
{
        char buf[8192];
        size_t n;
        FILE *f = fopen(path, "re");
        int r;

        if (!f)
                return -errno;
        n = fread(buf, 1, sizeof(buf), f);
        r = ferror(f) ? -EIO : 0;
        fclose(f);
        if (r < 0)
                return r;
        if (n == sizeof(buf))
                return -EKEYREJECTED;
        r = lease_key_from_pem(buf, n, private_key, ret);
        OPENSSL_cleanse(buf, sizeof(buf));
        return r;
}

/* Write with the given mode; O_EXCL when exclusive. */
static int write_pem(const struct lease_key *key, const char *path, bool priv, mode_t mode,
                     bool exclusive)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC), mode);
        FILE *f;
        int ok;

        if (fd < 0)
                return -errno;
        f = fdopen(fd, "w");
        if (!f) {
                close(fd);
                return -errno;
        }
        ok = priv ? PEM_write_PrivateKey(f, key->pkey, NULL, NULL, 0, NULL, NULL)
                  : PEM_write_PUBKEY(f, key->pkey);
        if (fflush(f) != 0 || fsync(fileno(f)) != 0)
                ok = 0;
        if (fclose(f) != 0)
                ok = 0;
        return ok ? 0 : -EIO;
}

int lease_key_write(const struct lease_key *key, const char *priv_path, const char *pub_path)
{
        int r;

        if (priv_path) {
                if (!key->priv)
                        return -EINVAL;
                r = write_pem(key, priv_path, true, 0600, true);
                if (r < 0)
                        return r;
        }
        return write_pem(key, pub_path, false, 0644, false);
}

int lease_key_public_b64(const struct lease_key *key, char *buf, size_t len)
{
        unsigned char raw[LEASE_PUB_BYTES];
        size_t n = sizeof(raw);

        if (EVP_PKEY_get_raw_public_key(key->pkey, raw, &n) <= 0 || n != sizeof(raw))
                return -EIO;
        return lease_b64url_encode(raw, n, buf, len);
}

void lease_key_free(struct lease_key *key)
{
        if (!key)
                return;
        EVP_PKEY_free(key->pkey);
        free(key);
}

bool lease_name_valid(const char *s)
{
        size_t n = 0;

        if (!s || !*s || *s == ' ')
                return false;
        for (; s[n]; n++) {
                if ((unsigned char)s[n] < 0x20 || (unsigned char)s[n] > 0x7e ||
                    n + 1 >= LEASE_NAME_MAX)
                        return false;
        }
        return true;
}

static bool id_valid(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n >= LEASE_ID_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];

                if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      c == '-'))
                        return false;
        }
        return true;
}

static bool fields_valid(const struct lease *l)
{
        return id_valid(l->id) && lease_name_valid(l->feature) && lease_name_valid(l->vgpu_uuid) &&
               lease_name_valid(l->host) && l->issued >= 0 && l->expires >= l->issued &&
               l->expires < ((int64_t)1 << 40);
}

int lease_sign(const struct lease_key *key, struct lease *l)
{
        char token[LEASE_TOKEN_MAX];
        unsigned char sig[LEASE_SIG_BYTES];
        size_t siglen = sizeof(sig), plen, off;
        EVP_MD_CTX *md;
        json_t *payload;
        char *json;
        int r;

        if (!key || !key->priv || !fields_valid(l))
                return -EINVAL;
        payload = json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:I}", "v", 1, "id", l->id, "feature",
                            l->feature, "vgpu", l->vgpu_uuid, "host", l->host, "iat",
                            (json_int_t)l->issued, "exp", (json_int_t)l->expires);
        if (!payload)
                return -ENOMEM;
        json = json_dumps(payload, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(payload);
        if (!json)
                return -ENOMEM;
        memcpy(token, "v1.", 3);
        r = lease_b64url_encode((const unsigned char *)json, strlen(json), token + 3,
                                sizeof(token) - 3);
        free(json);
        if (r < 0)
                return -EINVAL;
        plen = strlen(token);
        md = EVP_MD_CTX_new();
        if (!md)
                return -ENOMEM;
        /* The signature covers the token's text up to its last dot, as JWS does. */
        if (EVP_DigestSignInit(md, NULL, NULL, NULL, key->pkey) <= 0 ||
            EVP_DigestSign(md, sig, &siglen, (const unsigned char *)token, plen) <= 0 ||
            siglen != sizeof(sig)) {
                EVP_MD_CTX_free(md);
                return -EIO;
        }
        EVP_MD_CTX_free(md);
        off = plen;
        if (off + 2 >= sizeof(token))
                return -EINVAL;
        token[off++] = '.';
        r = lease_b64url_encode(sig, siglen, token + off, sizeof(token) - off);
        if (r < 0)
                return -EINVAL;
        memcpy(l->token, token, strlen(token) + 1);
        return 0;
}

/* Copy a string member checked by check into dst of len bytes. */
static bool take_str(json_t *o, const char *key, char *dst, size_t len, bool (*check)(const char *))
{
        const char *s = json_string_value(json_object_get(o, key));

        if (!s || strlen(s) >= len || !check(s))
                return false;
        memcpy(dst, s, strlen(s) + 1);
        return true;
}

static bool take_int(json_t *o, const char *key, int64_t *ret)
{
        json_t *v = json_object_get(o, key);

        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) >= ((json_int_t)1 << 40))
                return false;
        *ret = json_integer_value(v);
        return true;
}

static int decode_payload(const unsigned char *p, size_t len, struct lease *l)
{
        json_t *o = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, NULL);
        json_t *v;
        bool ok;

        if (!json_is_object(o)) {
                json_decref(o);
                return -EBADMSG;
        }
        v = json_object_get(o, "v");
        ok = json_object_size(o) == 7 && json_is_integer(v) && json_integer_value(v) == 1 &&
             take_str(o, "id", l->id, sizeof(l->id), id_valid) &&
             take_str(o, "feature", l->feature, sizeof(l->feature), lease_name_valid) &&
             take_str(o, "vgpu", l->vgpu_uuid, sizeof(l->vgpu_uuid), lease_name_valid) &&
             take_str(o, "host", l->host, sizeof(l->host), lease_name_valid) &&
             take_int(o, "iat", &l->issued) && take_int(o, "exp", &l->expires) &&
             l->expires >= l->issued;
        json_decref(o);
        return ok ? 0 : -EBADMSG;
}

int lease_verify(const struct lease_key *key, const char *token, struct lease *ret)
{
        unsigned char payload[LEASE_TOKEN_MAX], sig[LEASE_SIG_BYTES + 4];
        const char *dot1, *dot2;
        struct lease l = {0};
        size_t tlen;
        long plen, slen;
        EVP_MD_CTX *md;
        int ok, r;

        if (!key || !token)
                return -EINVAL;
        tlen = strnlen(token, LEASE_TOKEN_MAX);
        if (tlen >= LEASE_TOKEN_MAX || strncmp(token, "v1.", 3) != 0)
                return -EBADMSG;
        dot1 = token + 2;
        dot2 = strchr(dot1 + 1, '.');
        if (!dot2 || strchr(dot2 + 1, '.'))
                return -EBADMSG;
        plen = lease_b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), payload, sizeof(payload));
        slen = lease_b64url_decode(dot2 + 1, tlen - (size_t)(dot2 + 1 - token), sig, sizeof(sig));
        if (plen <= 0 || slen != LEASE_SIG_BYTES)
                return -EBADMSG;
        /* The signature first: nothing of an unverified payload is parsed. */
        md = EVP_MD_CTX_new();
        if (!md)
                return -ENOMEM;
        ok = EVP_DigestVerifyInit(md, NULL, NULL, NULL, key->pkey) > 0 &&
             EVP_DigestVerify(md, sig, LEASE_SIG_BYTES, (const unsigned char *)token,
                              (size_t)(dot2 - token)) == 1;
        EVP_MD_CTX_free(md);
        if (!ok)
                return -EKEYREJECTED;
        r = decode_payload(payload, (size_t)plen, &l);
        if (r < 0)
                return r;
        memcpy(l.token, token, tlen + 1);
        *ret = l;
        return 0;
}

int lease_check(const struct lease *l, const char *vgpu_uuid, int64_t now)
{
        if (vgpu_uuid && strcmp(vgpu_uuid, l->vgpu_uuid) != 0)
                return -ENOTUNIQ;
        if (l->issued > now + LEASE_MAX_SKEW)
                return -ETIME;
        if (now >= l->expires)
                return -EKEYEXPIRED;
        return 0;
}

int64_t lease_renew_at(const struct lease *l, int64_t now, double fraction, int64_t min_interval)
{
        int64_t left = l->expires - now, at;

        if (!(fraction > 0.0))
                fraction = 0.15;
        if (fraction > 1.0)
                fraction = 1.0;
        if (min_interval < 0)
                min_interval = 0;
        if (left <= 0)
                return now + min_interval;
        at = now + (int64_t)((double)left * fraction);
        if (at < now + min_interval)
                at = now + min_interval;
        return at > l->expires ? l->expires : at;
}

int lease_format_time(int64_t t, char *buf, size_t len)
{
        time_t tt = (time_t)t;
        struct tm tm;
        int n;

        if (t < 0 || !gmtime_r(&tt, &tm))
                return -EINVAL;
        n = snprintf(buf, len, "%d-%d-%d %02d:%02d:%02d GMT", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

int lease_status_text(const struct lease *l, char *buf, size_t len)
{
        char when[64];
        int n;

        if (!l) {
                n = snprintf(buf, len, "Unlicensed");
        } else {
                if (lease_format_time(l->expires, when, sizeof(when)) < 0)
                        snprintf(when, sizeof(when), "?");
                n = snprintf(buf, len, "Licensed (Expiry: %s)", when);
        }
        return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}
