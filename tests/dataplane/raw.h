/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A raw guest for tests: attaches to an engine's guest socket and speaks the channel protocol
 * directly, so tests can send what no well-behaved libcuda would (forged handles, hostile sizes,
 * foreign pointers, a corrupt ring) and check the engine refuses it.
 */
#ifndef VGPU_TESTS_RAW_H
#define VGPU_TESTS_RAW_H

#include <stdint.h>

#include "common/chan.h"

struct raw {
        int sock;
        struct chan_view v;
        uint64_t seq;
};

/* raw_attach - hello on the engine's guest socket and map the channel. 0 or -errno. */
int raw_attach(const char *guest_socket, struct raw *r);

/* raw_call - push op and wait for it; the engine's result code, rep receives the reply. */
int raw_call(struct raw *r, uint16_t op, const void *req, uint32_t len, const void *tail,
             uint32_t tail_len, void *rep, uint32_t rep_cap);

/* raw_close - hang up. */
void raw_close(struct raw *r);

#endif
