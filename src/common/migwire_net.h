/* SPDX-License-Identifier: Apache-2.0 */
/*
 * migwire's private seam: what migwire.c lends migwire_net.c (the secret file and addresses).
 * Only the two files of the migwire library include it; its callers use common/migwire.h.
 */
#ifndef VGPU_COMMON_MIGWIRE_NET_H
#define VGPU_COMMON_MIGWIRE_NET_H

#include <stddef.h>
#include <stdint.h>

#define MW_ERR_LEN 256 /* bytes of a connection's sentences: struct mw_conn's err and tx_err */

/*
 * mw_fail - format a failure's sentence into cerr (when given: one side's sentence of a
 * connection, MW_ERR_LEN bytes, written only by that side's thread) and err (when given, errlen
 * bytes), log it at debug, and return code.
 */
__attribute__((format(printf, 5, 6))) int mw_fail(char *cerr, char *err, size_t errlen, int code,
                                                  const char *fmt, ...);

/* mw_now_ms - CLOCK_MONOTONIC in milliseconds: what deadlines are given in. */
int64_t mw_now_ms(void);

/*
 * mw_io_wait - wait for events (POLLIN, POLLOUT) on fd, at most timeout_ms and not past deadline
 * (mw_now_ms; 0: none). Returns 0 when something happened (an error or hang-up too: the next I/O
 * call tells), -ETIMEDOUT, or the -errno of poll.
 */
int mw_io_wait(int fd, short events, int timeout_ms, int64_t deadline);

#endif
