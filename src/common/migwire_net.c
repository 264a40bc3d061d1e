// SPDX-License-Identifier: Apache-2.0
// migwire's ends of the wire before the handshake: the shared secret file (mw_secret_load) and
// the addresses, listening and connecting (mw_listen, mw_listen_port, mw_connect). What happens
// on a connection once it is made (the handshake, frames, streams) is migwire.c's.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/migwire.h"
#include "common/migwire_net.h"

/* ---- the secret file ---- */

int mw_secret_load(const char *path, uint8_t *secret, size_t cap, size_t *ret_len, char *err,
                   size_t errlen)
{
        uint8_t buf[MW_SECRET_MAX + 1];
        struct stat st;
        size_t n = 0;
        int fd, r = 0;

        if (!path || !*path || !secret || !ret_len)
                return mw_fail(NULL, err, errlen, -EINVAL, "no migration secret file was given");
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK); /* a FIFO must not block */
        if (fd < 0) {
                r = -errno;
                return mw_fail(NULL, err, errlen, r, "cannot open the migration secret file %s: %s",
                               path, strerror(-r));
        }
        if (fstat(fd, &st) < 0) {
                r = -errno;
                mw_fail(NULL, err, errlen, r, "cannot stat the migration secret file %s: %s", path,
                        strerror(-r));
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                r = mw_fail(NULL, err, errlen, -EINVAL,
                            "the migration secret file %s is not a regular file", path);
                goto out;
        }
        if (st.st_mode & 077) {
                r = mw_fail(NULL, err, errlen, -EPERM,
                            "the migration secret file %s is open to group or others (mode %04o); "
                            "make it private: chmod 600 %s",
                            path, (unsigned)(st.st_mode & 07777), path);
                goto out;
        }
        /* read one byte more than allowed, to tell "too long" from "just fits" */
        while (n < sizeof(buf)) {
                ssize_t k = read(fd, buf + n, sizeof(buf) - n);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = -errno;
                        mw_fail(NULL, err, errlen, r,
                                "cannot read the migration secret file %s: %s", path, strerror(-r));
                        goto out;
                }
                if (k == 0)
                        break;
                n += (size_t)k;
        }
        if (n < MW_SECRET_MIN) {
                r = mw_fail(NULL, err, errlen, -EINVAL,
                            "the migration secret file %s holds %zu bytes, fewer than the %d a "
                            "secret needs (make one with: head -c 32 /dev/urandom | base64 > %s)",
                            path, n, MW_SECRET_MIN, path);
                goto out;
        }
        if (n > MW_SECRET_MAX || n > cap) {
                r = mw_fail(NULL, err, errlen, -EFBIG,
                            "the migration secret file %s is longer than %zu bytes", path,
                            cap < MW_SECRET_MAX ? cap : (size_t)MW_SECRET_MAX);
                goto out;
        }
        memcpy(secret, buf, n);
        *ret_len = n;
out:
        OPENSSL_cleanse(buf, sizeof(buf));
        close(fd);
        return r;
}

/* ---- addresses ---- */

/*
 * Split "HOST:PORT" or "[IPV6]:PORT" into host (no brackets) and port. *ret_v6: the host was in
 * brackets. 0 or -EINVAL.
 */
static int parse_hostport(const char *hp, char *host, size_t hostlen, unsigned *ret_port,
                          bool *ret_v6)
{
        const char *h, *hend, *colon, *s;
        unsigned long port = 0;
        bool v6 = false;

        if (!hp)
                return -EINVAL;
        if (hp[0] == '[') {
                h = hp + 1;
                hend = strchr(h, ']');
                if (!hend || hend[1] != ':')
                        return -EINVAL;
                colon = hend + 1;
                v6 = true;
        } else {
                colon = strrchr(hp, ':');
                if (!colon)
                        return -EINVAL;
                h = hp;
                hend = colon;
                if (memchr(h, ':', (size_t)(hend - h))) /* a bare IPv6 address needs brackets */
                        return -EINVAL;
        }
        if (hend == h || (size_t)(hend - h) >= hostlen)
                return -EINVAL;
        s = colon + 1;
        if (!*s || strlen(s) > 5)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                port = port * 10 + (unsigned long)(*s - '0');
        }
        if (port > 65535)
                return -EINVAL;
        memcpy(host, h, (size_t)(hend - h));
        host[hend - h] = '\0';
        *ret_port = (unsigned)port;
        *ret_v6 = v6;
        return 0;
}

static int bad_address(const char *hp, char *err, size_t errlen)
{
        return mw_fail(NULL, err, errlen, -EINVAL,
                       "migration address \"%s\" is not HOST:PORT (a name or an IPv4 address, or "
                       "[IPv6]:PORT, with a port of 0 to 65535)",
                       hp ? hp : "(none)");
}

int mw_listen(const char *hostport, int backlog, char *err, size_t errlen)
{
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
        struct addrinfo *res = NULL, *ai;
        char host[256], serv[16];
        unsigned port;
        bool v6;
        int r = -EADDRNOTAVAIL, gai;

        if (parse_hostport(hostport, host, sizeof(host), &port, &v6) < 0)
                return bad_address(hostport, err, errlen);
        if (v6) {
                hints.ai_family = AF_INET6;
                hints.ai_flags |= AI_NUMERICHOST;
        }
        snprintf(serv, sizeof(serv), "%u", port);
        gai = getaddrinfo(host, serv, &hints, &res);
        if (gai != 0)
                return mw_fail(NULL, err, errlen, -EADDRNOTAVAIL,
                               "cannot listen for migrations on %s: %s", hostport,
                               gai_strerror(gai));
        for (ai = res; ai; ai = ai->ai_next) {
                int one = 1;
                int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);

                if (fd < 0) {
                        r = -errno;
                        continue;
                }
                setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
                if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
                    listen(fd, backlog > 0 ? backlog : 16) == 0) {
                        freeaddrinfo(res);
                        return fd;
                }
                r = -errno;
                close(fd);
        }
        freeaddrinfo(res);
        return mw_fail(NULL, err, errlen, r, "cannot listen for migrations on %s: %s", hostport,
                       strerror(-r));
}

int mw_listen_port(int fd)
{
        struct sockaddr_storage ss = {0};
        socklen_t len = sizeof(ss);

        if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
                return -errno;
        if (ss.ss_family == AF_INET)
                return ntohs(((struct sockaddr_in *)&ss)->sin_port);
        if (ss.ss_family == AF_INET6)
                return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        return -EAFNOSUPPORT;
}

/* Connect fd (non-blocking) to ai before deadline. 0 or -errno. */
static int connect_one(int fd, const struct addrinfo *ai, int64_t deadline)
{
        int soerr = 0, r;
        socklen_t slen = sizeof(soerr);

        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
                return 0;
        if (errno != EINPROGRESS && errno != EINTR)
                return -errno;
        r = mw_io_wait(fd, POLLOUT, INT_MAX, deadline);
        if (r < 0)
                return r;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) < 0)
                return -errno;
        return soerr ? -soerr : 0;
}

int mw_connect(const char *hostport, int timeout_ms, char *err, size_t errlen)
{
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
        struct addrinfo *res = NULL, *ai;
        char host[256], serv[16];
        unsigned port;
        bool v6;
        int r = -EHOSTUNREACH, gai;
        int64_t deadline;

        if (parse_hostport(hostport, host, sizeof(host), &port, &v6) < 0 || port == 0)
                return bad_address(hostport, err, errlen);
        if (v6) {
                hints.ai_family = AF_INET6;
                hints.ai_flags |= AI_NUMERICHOST;
        }
        deadline = mw_now_ms() + (timeout_ms > 0 ? timeout_ms : MW_TIMEOUT_DEFAULT);
        snprintf(serv, sizeof(serv), "%u", port);
        gai = getaddrinfo(host, serv, &hints, &res);
        if (gai != 0)
                return mw_fail(NULL, err, errlen, -EHOSTUNREACH,
                               "cannot connect to migration peer %s: %s", hostport,
                               gai_strerror(gai));
        for (ai = res; ai; ai = ai->ai_next) {
                int one = 1;
                int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                                ai->ai_protocol);

                if (fd < 0) {
                        r = -errno;
                        continue;
                }
                r = connect_one(fd, ai, deadline);
                if (r == 0) {
                        /* hand out a blocking socket, as accept() does; migwire never blocks */
                        int fl = fcntl(fd, F_GETFL);

                        if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
                                r = -errno;
                                close(fd);
                                continue;
                        }
                        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                        freeaddrinfo(res);
                        return fd;
                }
                close(fd);
                if (r == -ETIMEDOUT)
                        break;
        }
        freeaddrinfo(res);
        if (r == -ETIMEDOUT)
                return mw_fail(NULL, err, errlen, r,
                               "cannot connect to migration peer %s: no answer within %d ms",
                               hostport, timeout_ms > 0 ? timeout_ms : MW_TIMEOUT_DEFAULT);
        return mw_fail(NULL, err, errlen, r, "cannot connect to migration peer %s: %s%s", hostport,
                       strerror(-r),
                       r == -ECONNREFUSED ? " (is vgpud listening for migrations there?)" : "");
}
