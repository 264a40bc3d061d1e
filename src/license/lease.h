/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lease: what a license lease says, and its signed form. A lease names a feature, a client (vGPU
 * UUID and host), issue and expiry times; the server signs it with its Ed25519 key into a token
 * "v1.<payload>.<signature>" (base64url) that anyone with the server's public key checks offline.
 * Also the renewal policy and the "Licensed (Expiry: ...)" text. docs/licensing.md has the format.
 */
#ifndef VGPU_LICENSE_LEASE_H
#define VGPU_LICENSE_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Size limits, terminating NUL included. Names are 1..LEASE_NAME_MAX-1 printable ASCII bytes. */
#define LEASE_ID_MAX    40 /* a UUID: 36 characters */
#define LEASE_NAME_MAX  128
#define LEASE_TOKEN_MAX 1024

/* The server's signing key (private) or a client's copy of its public key. Opaque. */
struct lease_key;

/* One lease. The strings are NUL-terminated; token is empty until signed. */
struct lease {
        char id[LEASE_ID_MAX];
        char feature[LEASE_NAME_MAX];
        char vgpu_uuid[LEASE_NAME_MAX];
        char host[LEASE_NAME_MAX];
        int64_t issued;  /* Unix seconds */
        int64_t expires; /* Unix seconds; the lease is valid while now < expires */
        char token[LEASE_TOKEN_MAX];
};

/*
 * lease_key_generate - a new Ed25519 key pair (private key; its public half is inside).
 * Returns 0 and *ret (free with lease_key_free), or -ENOMEM / -EIO.
 */
int lease_key_generate(struct lease_key **ret);

/*
 * lease_key_load - read a PEM file: an Ed25519 private key ("PRIVATE KEY") when private_key, else
 * a public key ("PUBLIC KEY"). Returns 0 and *ret, or -ENOENT / -EACCES (cannot open),
 * -EKEYREJECTED (not an Ed25519 key of that kind), -ENOMEM.
 */
int lease_key_load(const char *path, bool private_key, struct lease_key **ret);

/*
 * lease_key_from_pem - as lease_key_load, from len bytes of PEM text in memory.
 */
int lease_key_from_pem(const char *pem, size_t len, bool private_key, struct lease_key **ret);

/*
 * lease_key_write - write key's public half to pub_path (mode 0644) and, when priv_path is not
 * NULL and key is private, the private key to priv_path (mode 0600, created, never replaced).
 * Returns 0 or a negative errno (-EEXIST when priv_path exists).
 */
int lease_key_write(const struct lease_key *key, const char *priv_path, const char *pub_path);

/*
 * lease_key_public_b64 - the raw 32-byte public key in base64url into buf (at least 44 bytes).
 * Returns 0 or -ENOSPC / -EIO.
 */
int lease_key_public_b64(const struct lease_key *key, char *buf, size_t len);

/* lease_key_free - release a key. NULL does nothing. */
void lease_key_free(struct lease_key *key);

/* lease_name_valid - whether s is a valid feature, host or vGPU name (see LEASE_NAME_MAX). */
bool lease_name_valid(const char *s);

/*
 * lease_sign - sign l's fields with the private key into l->token. The fields must be valid
 * (names per lease_name_valid, id a non-empty printable string, 0 <= issued <= expires).
 * Returns 0, or -EINVAL (bad fields or a public-only key), -EIO; l->token untouched on failure.
 */
int lease_sign(const struct lease_key *key, struct lease *l);

/*
 * lease_verify - check token's signature with key (public or private) and decode its fields into
 * *ret (token copied into ret->token). It does not look at the time: see lease_check. Returns 0,
 * or -EBADMSG (not a well-formed lease token, or bad fields), -EKEYREJECTED (the signature does
 * not verify: forged, tampered with, or another server's); *ret untouched on failure.
 */
int lease_verify(const struct lease_key *key, const char *token, struct lease *ret);

/*
 * lease_check - whether a verified lease is good for vgpu_uuid (NULL: any) at now. Returns 0, or
 * -EKEYEXPIRED (now >= expires), -ENOTUNIQ (issued for another vGPU), -ETIME (issued in the future
 * by more than 5 minutes of clock skew).
 */
int lease_check(const struct lease *l, const char *vgpu_uuid, int64_t now);

/*
 * lease_renew_at - when a holder should next try to renew l: now + fraction x (expires - now),
 * at least min_interval seconds from now and never later than expires. fraction is clamped to
 * (0, 1]; a fresh lease with fraction 0.15 renews after 15% of its length, and a failed attempt
 * retried the same way backs off geometrically towards expiry. Returns a Unix time.
 */
int64_t lease_renew_at(const struct lease *l, int64_t now, double fraction, int64_t min_interval);

/*
 * lease_format_time - t as nvidia-smi prints a license expiry, "YYYY-M-D hh:mm:ss GMT" (month and
 * day without leading zeros), into buf. Returns 0 or -ENOSPC / -EINVAL.
 */
int lease_format_time(int64_t t, char *buf, size_t len);

/*
 * lease_status_text - "Licensed (Expiry: YYYY-M-D hh:mm:ss GMT)" for l (NULL: "Unlicensed").
 * Returns 0 or -ENOSPC.
 */
int lease_status_text(const struct lease *l, char *buf, size_t len);

/*
 * lease_b64url_encode / lease_b64url_decode - base64url without padding. encode writes a
 * NUL-terminated string and returns 0 or -ENOSPC; decode returns the number of bytes written or
 * -EBADMSG (bad character or length) / -ENOSPC.
 */
int lease_b64url_encode(const unsigned char *in, size_t len, char *out, size_t out_len);
long lease_b64url_decode(const char *in, size_t len, unsigned char *out, size_t out_len);

#endif
