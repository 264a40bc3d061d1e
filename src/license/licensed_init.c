// SPDX-License-Identifier: Apache-2.0
// `vgpu-licensed --init`: the signing key pair (lease.c), a random admin token, and a self-signed
// P-256 TLS certificate made with OpenSSL (libmicrohttpd's GnuTLS serves it).
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "common/log.h"
#include "license/lease.h"
#include "license/licensed_init.h"

#define CERT_DAYS (10 * 365)

static int write_file(const char *path, const char *text, mode_t mode)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        size_t len = strlen(text);
        int r = 0;

        if (fd < 0)
                return -errno;
        if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0)
                r = -EIO;
        close(fd);
        return r;
}

/* A new random token in a 0600 file. */
static int write_token(const char *path)
{
        unsigned char raw[32];
        char token[64];
        int r;

        if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw) ||
            lease_b64url_encode(raw, sizeof(raw), token, sizeof(token)) < 0)
                return -EIO;
        strcat(token, "\n");
        r = write_file(path, token, 0600);
        if (r < 0)
                vgpu_log(VGPU_LOG_DEBUG, "writing %s: %s", path, strerror(-r));
        return r;
}

static int add_ext(X509 *cert, int nid, const char *value)
{
        X509V3_CTX ctx;
        X509_EXTENSION *ext;
        int ok;

        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        if (!ext)
                return -EINVAL;
        ok = X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
        return ok ? 0 : -ENOMEM;
}

static int make_cert(const char *key_path, const char *cert_path, const char *hostname)
{
        unsigned char serial[16];
        char san[512];
        EVP_PKEY *pkey = EVP_EC_gen("P-256");
        X509 *cert = X509_new();
        X509_NAME *name;
        BIGNUM *bn = NULL;
        FILE *f = NULL;
        int fd, r = -EIO;

        if (!pkey || !cert)
                goto out;
        if (getrandom(serial, sizeof(serial), 0) != (ssize_t)sizeof(serial))
                goto out;
        serial[0] &= 0x7f;
        bn = BN_bin2bn(serial, sizeof(serial), NULL);
        if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) ||
            !X509_set_version(cert, 2) || !X509_gmtime_adj(X509_getm_notBefore(cert), -3600) ||
            !X509_gmtime_adj(X509_getm_notAfter(cert), (long)CERT_DAYS * 86400) ||
            !X509_set_pubkey(cert, pkey))
                goto out;
        name = X509_get_subject_name(cert);
        if (!X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                        (const unsigned char *)"vgpu-licensed", -1, -1, 0) ||
            !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)hostname,
                                        -1, -1, 0) ||
            !X509_set_issuer_name(cert, name))
                goto out;
        snprintf(san, sizeof(san), "DNS:localhost,IP:127.0.0.1,IP:::1%s%s",
                 strcmp(hostname, "localhost") ? ",DNS:" : "",
                 strcmp(hostname, "localhost") ? hostname : "");
        if (add_ext(cert, NID_subject_alt_name, san) < 0 ||
            add_ext(cert, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
            add_ext(cert, NID_key_usage, "critical,digitalSignature") < 0 ||
            add_ext(cert, NID_ext_key_usage, "serverAuth") < 0 ||
            add_ext(cert, NID_subject_key_identifier, "hash") < 0 ||
            !X509_sign(cert, pkey, EVP_sha256()))
                goto out;
        fd = open(key_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || !(f = fdopen(fd, "w"))) {
                r = -errno;
                if (fd >= 0)
                        close(fd);
                goto out;
        }
        if (!PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL) || fflush(f) ||
            fsync(fileno(f)))
                goto out;
        fclose(f);
        f = fopen(cert_path, "wxe");
        if (!f) {
                r = -errno;
                goto out;
        }
        if (!PEM_write_X509(f, cert) || fflush(f) || fsync(fileno(f)))
                goto out;
        r = 0;
out:
        if (f)
                fclose(f);
        BN_free(bn);
        X509_free(cert);
        EVP_PKEY_free(pkey);
        return r;
}

static void path_in(char *buf, const char *dir, const char *file)
{
        snprintf(buf, PATH_MAX, "%s/%s", dir, file);
}

int licensed_init(const char *dir, const char *hostname)
{
        char priv[PATH_MAX], pub[PATH_MAX], tok[PATH_MAX], ctok[PATH_MAX], tkey[PATH_MAX];
        char tcrt[PATH_MAX], host[256];
        struct lease_key *key = NULL;
        int r;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
                r = -errno;
                vgpu_log(VGPU_LOG_DEBUG, "cannot create %s: %s", dir, strerror(errno));
                return r;
        }
        path_in(priv, dir, LICENSED_SIGNING_KEY);
        path_in(pub, dir, LICENSED_SIGNING_PUB);
        path_in(tok, dir, LICENSED_ADMIN_TOKEN);
        path_in(ctok, dir, LICENSED_CLIENT_TOKEN);
        path_in(tkey, dir, LICENSED_TLS_KEY);
        path_in(tcrt, dir, LICENSED_TLS_CERT);
        if (access(priv, F_OK) == 0) {
                vgpu_log(VGPU_LOG_DEBUG, "%s is initialised already (%s exists); keeping it", dir,
                         priv);
                return -EEXIST;
        }
        if (!hostname) {
                if (gethostname(host, sizeof(host)) < 0 || !*host)
                        snprintf(host, sizeof(host), "localhost");
                host[sizeof(host) - 1] = '\0';
                hostname = host;
        }
        r = lease_key_generate(&key);
        if (r == 0)
                r = lease_key_write(key, priv, pub);
        lease_key_free(key);
        if (r < 0) {
                vgpu_log(VGPU_LOG_DEBUG, "writing the signing key in %s: %s", dir, strerror(-r));
                return r;
        }
        r = write_token(tok);
        if (r == 0)
                r = write_token(ctok);
        if (r < 0)
                return r;
        r = make_cert(tkey, tcrt, hostname);
        if (r < 0) {
                vgpu_log(VGPU_LOG_DEBUG, "making the TLS certificate in %s: %s", dir, strerror(-r));
                return r;
        }
        return 0;
}
