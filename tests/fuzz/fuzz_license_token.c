// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for lease tokens: each input is tried twice, as a whole token for lease_verify
// (as a hostile server could send), and as a payload the harness signs with its own key, so the
// payload decoder behind the signature check sees arbitrary bytes too. Nothing may crash; a
// verified lease must have valid fields; what verifies must round-trip through lease_sign.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "license/lease.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct lease_key *key;
static EVP_PKEY *raw_key; /* the same key, for signing arbitrary payloads */

static void setup(void)
{
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
        BIO *bio = BIO_new(BIO_s_mem());
        char *pem;
        long len;

        if (!ctx || !bio || EVP_PKEY_keygen_init(ctx) <= 0 || EVP_PKEY_keygen(ctx, &raw_key) <= 0 ||
            !PEM_write_bio_PrivateKey(bio, raw_key, NULL, NULL, 0, NULL, NULL))
                abort();
        len = BIO_get_mem_data(bio, &pem);
        if (lease_key_from_pem(pem, (size_t)len, true, &key) < 0)
                abort();
        BIO_free(bio);
        EVP_PKEY_CTX_free(ctx);
}

static void check(const struct lease *l)
{
        struct lease again = *l;

        if (!lease_name_valid(l->feature) || !lease_name_valid(l->host) ||
            !lease_name_valid(l->vgpu_uuid) || l->expires < l->issued || !l->id[0])
                abort();
        if (lease_sign(key, &again) < 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char token[2 * LEASE_TOKEN_MAX];
        unsigned char sig[64];
        size_t siglen = sizeof(sig), n;
        struct lease l;
        EVP_MD_CTX *md;

        if (!key)
                setup();
        /* 1: the bytes as a token. */
        n = size < sizeof(token) - 1 ? size : sizeof(token) - 1;
        memcpy(token, data, n);
        token[n] = '\0';
        if (lease_verify(key, token, &l) == 0)
                check(&l);
        /* 2: the bytes as a payload, signed by the harness. */
        if (size > 700)
                return 0;
        memcpy(token, "v1.", 3);
        if (lease_b64url_encode(data, size, token + 3, sizeof(token) - 3) < 0)
                return 0;
        md = EVP_MD_CTX_new();
        if (!md || EVP_DigestSignInit(md, NULL, NULL, NULL, raw_key) <= 0 ||
            EVP_DigestSign(md, sig, &siglen, (const unsigned char *)token, strlen(token)) <= 0)
                abort();
        EVP_MD_CTX_free(md);
        n = strlen(token);
        token[n++] = '.';
        if (lease_b64url_encode(sig, siglen, token + n, sizeof(token) - n) < 0)
                abort();
        if (lease_verify(key, token, &l) == 0)
                check(&l);
        return 0;
}
