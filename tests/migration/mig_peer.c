// SPDX-License-Identifier: Apache-2.0
// mig_peer: a migration peer for the tests, that says what it is told. It connects to a vgpud's
// --migrate-listen (or --guest-listen) port, proves the secret, sends one JSON message, and prints
// the answer (or why there was none) on stdout. Usage: mig_peer HOST:PORT SECRET_FILE JSON
// Exit status: 0 an answer came, 1 none did, 2 bad usage.
#include <stdio.h>
#include <unistd.h>

#include <jansson.h>

#include "common/migwire.h"

int main(int argc, char **argv)
{
        uint8_t secret[MW_SECRET_MAX];
        size_t slen;
        struct mw_conn c;
        json_t *msg, *answer = NULL;
        char err[512];
        int fd;

        if (argc != 4 || !(msg = json_loads(argv[3], 0, NULL))) {
                fprintf(stderr, "usage: mig_peer HOST:PORT SECRET_FILE JSON\n");
                return 2;
        }
        if (mw_secret_load(argv[2], secret, sizeof(secret), &slen, err, sizeof(err)) < 0 ||
            (fd = mw_connect(argv[1], 5000, err, sizeof(err))) < 0) {
                printf("{\"no_answer\": \"%s\"}\n", err);
                return 1;
        }
        if (mw_auth_client(&c, fd, secret, slen, 5000, err, sizeof(err)) < 0) {
                close(fd);
                printf("{\"no_answer\": \"%s\"}\n", err);
                return 1;
        }
        if (mw_send_json(&c, msg, err, sizeof(err)) < 0 ||
            mw_recv_json(&c, &answer, err, sizeof(err)) < 0) {
                mw_close(&c);
                printf("{\"no_answer\": \"%s\"}\n", err);
                return 1;
        }
        json_dumpf(answer, stdout, JSON_COMPACT);
        printf("\n");
        json_decref(answer);
        json_decref(msg);
        mw_close(&c);
        return 0;
}
