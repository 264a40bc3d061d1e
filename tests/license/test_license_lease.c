// SPDX-License-Identifier: Apache-2.0
// Lease tokens: sign and verify, and every way a forged or altered token must be refused (a flipped
// byte anywhere, another server's key, a re-encoded payload, a missing signature); base64url; the
// renewal policy; and the expiry text nvidia-smi prints.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "license/lease.h"

static struct lease sample(void)
{
        struct lease l = {0};

        snprintf(l.id, sizeof(l.id), "0b6d4f3e-1111-4222-8333-444455556666");
        snprintf(l.feature, sizeof(l.feature), "vgpu-compute");
        snprintf(l.vgpu_uuid, sizeof(l.vgpu_uuid), "9f1c0c1e-aaaa-4bbb-8ccc-dddddddddddd");
        snprintf(l.host, sizeof(l.host), "host-1.example");
        l.issued = 1795600000;
        l.expires = 1795600000 + 7 * 86400;
        return l;
}

static void test_b64url(void **state)
{
        unsigned char in[64], out[64];
        char enc[128];

        (void)state;
        for (size_t len = 0; len < sizeof(in); len++) {
                for (size_t i = 0; i < len; i++)
                        in[i] = (unsigned char)(i * 37 + len);
                assert_int_equal(lease_b64url_encode(in, len, enc, sizeof(enc)), 0);
                assert_null(strchr(enc, '='));
                assert_int_equal(lease_b64url_decode(enc, strlen(enc), out, sizeof(out)),
                                 (long)len);
                assert_memory_equal(in, out, len);
        }
        assert_int_equal(lease_b64url_decode("a", 1, out, sizeof(out)), -EBADMSG);
        assert_int_equal(lease_b64url_decode("ab+c", 4, out, sizeof(out)), -EBADMSG);
        assert_int_equal(lease_b64url_decode("ab=c", 4, out, sizeof(out)), -EBADMSG);
        /* "AB" and "AF" both hold the byte 0x00 plus junk bits: only the canonical one passes. */
        assert_int_equal(lease_b64url_decode("AA", 2, out, sizeof(out)), 1);
        assert_int_equal(lease_b64url_decode("AB", 2, out, sizeof(out)), -EBADMSG);
        assert_int_equal(lease_b64url_encode(in, 3, enc, 4), -ENOSPC);
}

static void test_sign_verify(void **state)
{
        struct lease_key *key, *other;
        struct lease l = sample(), got, untouched;

        (void)state;
        assert_int_equal(lease_key_generate(&key), 0);
        assert_int_equal(lease_key_generate(&other), 0);
        assert_int_equal(lease_sign(key, &l), 0);
        assert_int_equal(strncmp(l.token, "v1.", 3), 0);
        assert_int_equal(lease_verify(key, l.token, &got), 0);
        assert_string_equal(got.id, l.id);
        assert_string_equal(got.feature, l.feature);
        assert_string_equal(got.vgpu_uuid, l.vgpu_uuid);
        assert_string_equal(got.host, l.host);
        assert_int_equal(got.issued, l.issued);
        assert_int_equal(got.expires, l.expires);
        assert_string_equal(got.token, l.token);
        /* Another server's key refuses it, and leaves the output alone. */
        memset(&untouched, 0x5a, sizeof(untouched));
        got = untouched;
        assert_int_equal(lease_verify(other, l.token, &got), -EKEYREJECTED);
        assert_memory_equal(&got, &untouched, sizeof(got));
        lease_key_free(key);
        lease_key_free(other);
}

/* Flip each character of the token in turn: nothing altered may verify. */
static void test_tampered(void **state)
{
        struct lease_key *key;
        struct lease l = sample(), got;
        char t[LEASE_TOKEN_MAX + 16];
        static const char alphabet[] = "AZaz09-_.x";

        (void)state;
        assert_int_equal(lease_key_generate(&key), 0);
        assert_int_equal(lease_sign(key, &l), 0);
        for (size_t i = 0; i < strlen(l.token); i++) {
                for (size_t a = 0; a < sizeof(alphabet) - 1; a++) {
                        if (l.token[i] == alphabet[a])
                                continue;
                        memcpy(t, l.token, sizeof(l.token));
                        t[i] = alphabet[a];
                        int r = lease_verify(key, t, &got);

                        if (r != -EKEYREJECTED && r != -EBADMSG)
                                fail_msg("token altered at %zu to '%c' gave %d", i, alphabet[a], r);
                }
        }
        /* Truncated, extended, or without a signature. */
        for (size_t n = 0; n < strlen(l.token); n += 7) {
                memcpy(t, l.token, n);
                t[n] = '\0';
                assert_true(lease_verify(key, t, &got) < 0);
        }
        snprintf(t, sizeof(t), "%s.", l.token);
        assert_int_equal(lease_verify(key, t, &got), -EBADMSG);
        snprintf(t, sizeof(t), "%.*s.", (int)(strrchr(l.token, '.') - l.token), l.token);
        assert_int_equal(lease_verify(key, t, &got), -EBADMSG);
        snprintf(t, sizeof(t), "v2%s", l.token + 2);
        assert_int_equal(lease_verify(key, t, &got), -EBADMSG);
        assert_int_equal(lease_verify(key, "", &got), -EBADMSG);
        assert_int_equal(lease_verify(key, "v1..", &got), -EBADMSG);
        lease_key_free(key);
}

/* A lease re-signed for another vGPU by another key (a forger's) is refused by the real key. */
static void test_forged(void **state)
{
        struct lease_key *real, *forger;
        struct lease l = sample(), f, got;
        char tok[2 * LEASE_TOKEN_MAX];

        (void)state;
        assert_int_equal(lease_key_generate(&real), 0);
        assert_int_equal(lease_key_generate(&forger), 0);
        assert_int_equal(lease_sign(real, &l), 0);
        f = l;
        f.expires += 365 * 86400;
        assert_int_equal(lease_sign(forger, &f), 0);
        assert_int_equal(lease_verify(real, f.token, &got), -EKEYREJECTED);
        /* The forger's payload with the real signature of another payload. */
        snprintf(tok, sizeof(tok), "%.*s%s", (int)(strrchr(f.token, '.') - f.token), f.token,
                 strrchr(l.token, '.'));
        assert_int_equal(lease_verify(real, tok, &got), -EKEYREJECTED);
        lease_key_free(real);
        lease_key_free(forger);
}

static void test_bad_fields(void **state)
{
        struct lease_key *key;
        struct lease l = sample(), saved;

        (void)state;
        assert_int_equal(lease_key_generate(&key), 0);
        l.expires = l.issued - 1;
        saved = l;
        assert_int_equal(lease_sign(key, &l), -EINVAL);
        assert_memory_equal(&l, &saved, sizeof(l));
        l = sample();
        l.host[0] = '\0';
        assert_int_equal(lease_sign(key, &l), -EINVAL);
        l = sample();
        l.feature[3] = '\n';
        assert_int_equal(lease_sign(key, &l), -EINVAL);
        l = sample();
        snprintf(l.id, sizeof(l.id), "a b");
        assert_int_equal(lease_sign(key, &l), -EINVAL);
        assert_false(lease_name_valid(""));
        assert_false(lease_name_valid(" x"));
        assert_false(lease_name_valid("caf\xc3\xa9"));
        assert_true(lease_name_valid("GPU-6b1f host:1"));
        lease_key_free(key);
}

static void test_public_key_pem(void **state)
{
        struct lease_key *key, *pub;
        struct lease l = sample(), got;
        char dir[] = "/tmp/vgpu-lease-XXXXXX", priv[64], pubp[64];

        (void)state;
        assert_non_null(mkdtemp(dir));
        snprintf(priv, sizeof(priv), "%s/k", dir);
        snprintf(pubp, sizeof(pubp), "%s/k.pub", dir);
        assert_int_equal(lease_key_generate(&key), 0);
        assert_int_equal(lease_key_write(key, priv, pubp), 0);
        assert_int_equal(lease_key_write(key, priv, pubp), -EEXIST);
        assert_int_equal(lease_key_load(pubp, false, &pub), 0);
        assert_int_equal(lease_sign(key, &l), 0);
        assert_int_equal(lease_verify(pub, l.token, &got), 0);
        /* A public key cannot sign; a public file is not a private key and vice versa. */
        assert_int_equal(lease_sign(pub, &l), -EINVAL);
        lease_key_free(pub);
        assert_int_equal(lease_key_load(pubp, true, &pub), -EKEYREJECTED);
        assert_int_equal(lease_key_load(priv, false, &pub), -EKEYREJECTED);
        assert_int_equal(lease_key_load("/nonexistent/k", false, &pub), -ENOENT);
        assert_int_equal(lease_key_from_pem("junk", 4, false, &pub), -EKEYREJECTED);
        lease_key_free(key);
        unlink(priv);
        unlink(pubp);
        rmdir(dir);
}

static void test_check_and_renew(void **state)
{
        struct lease l = sample();
        int64_t t0 = l.issued, len = l.expires - l.issued;

        (void)state;
        assert_int_equal(lease_check(&l, NULL, t0), 0);
        assert_int_equal(lease_check(&l, l.vgpu_uuid, l.expires - 1), 0);
        assert_int_equal(lease_check(&l, l.vgpu_uuid, l.expires), -EKEYEXPIRED);
        assert_int_equal(lease_check(&l, "another", t0), -ENOTUNIQ);
        assert_int_equal(lease_check(&l, NULL, t0 - 3600), -ETIME);
        /* A fresh lease renews after 15% of its length; a failed try backs off towards expiry. */
        assert_int_equal(lease_renew_at(&l, t0, 0.15, 5), t0 + len * 15 / 100);
        int64_t at = t0, prev = t0;

        for (int i = 0; i < 200 && at < l.expires; i++) {
                at = lease_renew_at(&l, at, 0.15, 5);
                assert_true(at >= prev + 5 || at == l.expires);
                assert_true(at <= l.expires);
                prev = at;
        }
        assert_int_equal(at, l.expires);
        assert_int_equal(lease_renew_at(&l, l.expires + 10, 0.15, 5), l.expires + 15);
        assert_int_equal(lease_renew_at(&l, t0, 7.0, 5), l.expires);
}

static void test_format(void **state)
{
        struct lease l = sample();
        char buf[96];

        (void)state;
        /* 2026-01-05 08:03:09 UTC */
        assert_int_equal(lease_format_time(1767600189, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "2026-1-5 08:03:09 GMT");
        l.expires = 1767600189;
        assert_int_equal(lease_status_text(&l, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "Licensed (Expiry: 2026-1-5 08:03:09 GMT)");
        assert_int_equal(lease_status_text(NULL, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "Unlicensed");
        assert_int_equal(lease_format_time(1767600189, buf, 8), -ENOSPC);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_b64url),          cmocka_unit_test(test_sign_verify),
                cmocka_unit_test(test_tampered),        cmocka_unit_test(test_forged),
                cmocka_unit_test(test_bad_fields),      cmocka_unit_test(test_public_key_pem),
                cmocka_unit_test(test_check_and_renew), cmocka_unit_test(test_format),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
