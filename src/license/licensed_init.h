/* SPDX-License-Identifier: Apache-2.0 */
/*
 * licensed_init: `vgpu-licensed --init DIR`, which makes a server's secrets once: the Ed25519
 * lease-signing key pair, the admin token, and a self-signed TLS certificate with its key.
 */
#ifndef VGPU_LICENSE_LICENSED_INIT_H
#define VGPU_LICENSE_LICENSED_INIT_H

/* The files of a server directory. */
#define LICENSED_SIGNING_KEY  "lease-signing.key" /* Ed25519 private key, PEM, 0600 */
#define LICENSED_SIGNING_PUB  "lease-signing.pub" /* its public key, PEM: give it to clients */
#define LICENSED_ADMIN_TOKEN  "admin-token"       /* the admin's bearer token, 0600 */
#define LICENSED_CLIENT_TOKEN "client-token"      /* clients' bearer token over TCP, 0600 */
#define LICENSED_TLS_KEY      "tls.key"           /* TLS private key (P-256), PEM, 0600 */
#define LICENSED_TLS_CERT     "tls.crt"       /* self-signed TLS certificate: clients' CA file */
#define LICENSED_DB           "licensed.db"   /* the SQLite state */
#define LICENSED_LOCK         "licensed.lock" /* held by the running server */

/*
 * licensed_init - create dir (0700) if missing and write the files above into it (the tokens are
 * 256 random bits in base64url). The TLS
 * certificate names localhost, 127.0.0.1, ::1 and hostname (NULL: this machine's name), and is
 * valid for 10 years. Refuses with -EEXIST, changing nothing, when dir already holds a signing
 * key. Returns 0 or a negative errno (what failed is logged at debug).
 */
int licensed_init(const char *dir, const char *hostname);

#endif
