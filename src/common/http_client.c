// SPDX-License-Identifier: Apache-2.0
// The HTTP/1.1 client behind vgpuctl: build one request, send it over a non-blocking socket under
// one deadline, then read and check the reply as it arrives (status line, headers, a body framed by
// Content-Length, chunked encoding or end of stream) and parse the body as JSON. The bytes go over
// a Unix socket, or TCP with TLS through the target's TLS ops (common/http_tls.h) on the same
// non-blocking socket, so that only the programs that speak TLS link a TLS library.
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/http_client.h"
#include "common/http_tls.h"
#include "common/log.h"

/* Raw bytes kept while reading: headers, body and chunk framing around it. */
#define HTTP_MAX_RAW_BYTES ((size_t)HTTP_MAX_HEADER_BYTES + 2 * (size_t)HTTP_MAX_BODY_BYTES)

/* What the status line and headers of one response said. */
struct http_head {
        int status;
        long long content_length; /* -1: none */
        bool chunked;
        bool json_type; /* Content-Type absent or application/json (or +json) */
};

/* One connection: a socket, with a TLS session over it when the target asks for TLS. */
struct http_conn {
        int fd;
        const struct http_tls_ops *tls;
        struct http_tls_session *sess; /* NULL: plain socket */
};

/* The reply as it is being read: raw bytes, where parsing stands, the de-chunked body. */
struct http_reader {
        char *raw;
        size_t raw_len, raw_cap;
        size_t head_end; /* offset of the body in raw; 0 until the final head is parsed */
        size_t pos;      /* the next byte of raw to parse */
        bool chunk_trailers;
        struct http_head head;
        char *body; /* chunked: the decoded body */
        size_t body_len, body_cap;
};

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline, 0 when it has passed. */
static int left_ms(int64_t deadline)
{
        int64_t left = deadline - now_ms();

        if (left <= 0)
                return 0;
        return left > INT32_MAX ? INT32_MAX : (int)left;
}

/* tchar of RFC 9110: the characters of methods and header names. */
static bool is_tchar(unsigned char c)
{
        return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool valid_method(const char *m)
{
        if (!*m || strlen(m) > 16)
                return false;
        for (; *m; m++) {
                if (!is_tchar((unsigned char)*m))
                        return false;
        }
        return true;
}

/* A request target: starts with '/', printable ASCII without spaces. */
static bool valid_path(const char *p)
{
        if (p[0] != '/' || strlen(p) > 8192)
                return false;
        for (; *p; p++) {
                if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
                        return false;
        }
        return true;
}

int http_escape(const char *s, char *buf, size_t len)
{
        static const char hex[] = "0123456789ABCDEF";
        size_t o = 0;

        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                bool plain = isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
                size_t need = plain ? 1 : 3;

                if (o + need >= len) {
                        if (len)
                                buf[0] = '\0';
                        return -ENOSPC;
                }
                if (plain) {
                        buf[o++] = (char)c;
                } else {
                        buf[o++] = '%';
                        buf[o++] = hex[c >> 4];
                        buf[o++] = hex[c & 15];
                }
        }
        if (o >= len)
                return -ENOSPC;
        buf[o] = '\0';
        return 0;
}

/* Build the request bytes; *ret_req is malloc'd. */
static int build_request(const char *method, const char *path, json_t *body, const char *bearer,
                         char **ret_req, size_t *ret_len)
{
        char *json = NULL, *req;
        size_t json_len = 0, cap;
        int n;

        if (body) {
                json = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
                if (!json)
                        return -ENOMEM;
                json_len = strlen(json);
        }
        cap = strlen(method) + strlen(path) + json_len + (bearer ? strlen(bearer) : 0) + 288;
        req = malloc(cap);
        if (!req) {
                free(json);
                return -ENOMEM;
        }
        n = snprintf(req, cap,
                     "%s %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: vgpu-http/1\r\n"
                     "Accept: application/json\r\nConnection: close\r\n",
                     method, path);
        if (bearer)
                n += snprintf(req + n, cap - (size_t)n, "Authorization: Bearer %s\r\n", bearer);
        if (body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0)
                n += snprintf(req + n, cap - (size_t)n, "%sContent-Length: %zu\r\n",
                              body ? "Content-Type: application/json\r\n" : "", json_len);
        n += snprintf(req + n, cap - (size_t)n, "\r\n");
        if (json_len)
                memcpy(req + n, json, json_len);
        free(json);
        *ret_req = req;
        *ret_len = (size_t)n + json_len;
        return 0;
}

/* Connect to a Unix socket without blocking past the deadline. Returns the fd or -errno. */
static int connect_unix(const char *path, int64_t deadline)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int fd;

        if (!path || !*path)
                return -EINVAL;
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        for (;;) {
                if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                        return fd;
                if (errno == EINTR)
                        continue;
                /* EAGAIN: the listen backlog is full; a busy server, so retry until the deadline.
                 */
                if (errno != EAGAIN) {
                        int err = -errno;

                        close(fd);
                        return err;
                }
                if (!left_ms(deadline)) {
                        close(fd);
                        return -ETIMEDOUT;
                }
                poll(NULL, 0, 5);
        }
}

/* Wait until fd is ready for events or the deadline passes: 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
        struct pollfd pfd = {.fd = fd, .events = events};

        for (;;) {
                int ms = left_ms(deadline);
                int r;

                if (!ms)
                        return -ETIMEDOUT;
                r = poll(&pfd, 1, ms);
                if (r > 0)
                        return 0;
                if (r == 0)
                        return -ETIMEDOUT;
                if (errno != EINTR)
                        return -errno;
        }
}

static int send_all(const struct http_conn *c, const char *buf, size_t len, int64_t deadline)
{
        int fd = c->fd;

        while (len) {
                ssize_t n;
                int r;

                if (c->sess) {
                        short ev = POLLOUT;
                        long w = c->tls->send(c->sess, buf, len, &ev);

                        if (w > 0) {
                                buf += w;
                                len -= (size_t)w;
                                continue;
                        }
                        if (w == 0)
                                return -EPIPE;
                        if (w != -EAGAIN)
                                return (int)w;
                        r = wait_fd(fd, ev, deadline);
                        if (r < 0)
                                return r;
                        continue;
                }
                n = send(fd, buf, len, MSG_NOSIGNAL);

                if (n > 0) {
                        buf += n;
                        len -= (size_t)n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno != EAGAIN)
                        return -errno;
                r = wait_fd(fd, POLLOUT, deadline);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* One line of raw[from, end): *ret_eol = end of its text, *ret_next = start of the next line.
 * Accepts CRLF and bare LF. Returns false when no full line is there yet.
 */
static bool next_line(const char *raw, size_t from, size_t end, size_t *ret_eol, size_t *ret_next)
{
        const char *nl = memchr(raw + from, '\n', end - from);
        size_t eol;

        if (!nl)
                return false;
        eol = (size_t)(nl - raw);
        *ret_next = eol + 1;
        if (eol > from && raw[eol - 1] == '\r')
                eol--;
        *ret_eol = eol;
        return true;
}

/* Parse "HTTP/1.x NNN reason". */
static int parse_status_line(const char *s, size_t len, int *ret_status)
{
        int status;

        if (len < 12 || memcmp(s, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)s[7]) ||
            s[8] != ' ')
                return -EPROTO;
        if (!isdigit((unsigned char)s[9]) || !isdigit((unsigned char)s[10]) ||
            !isdigit((unsigned char)s[11]) || (len > 12 && s[12] != ' '))
                return -EPROTO;
        status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
        if (status < 100 || status > 599)
                return -EPROTO;
        for (size_t i = 12; i < len; i++) {
                unsigned char c = (unsigned char)s[i];

                if ((c < 0x20 && c != '\t') || c == 0x7f)
                        return -EPROTO;
        }
        *ret_status = status;
        return 0;
}

/* Trim optional whitespace around a header value in [*b, *e). */
static void trim_ows(const char *s, size_t *b, size_t *e)
{
        while (*b < *e && (s[*b] == ' ' || s[*b] == '\t'))
                (*b)++;
        while (*e > *b && (s[*e - 1] == ' ' || s[*e - 1] == '\t'))
                (*e)--;
}

static bool value_is(const char *s, size_t b, size_t e, const char *want)
{
        return e - b == strlen(want) && strncasecmp(s + b, want, e - b) == 0;
}

static int parse_header(const char *s, size_t b, size_t e, struct http_head *h)
{
        size_t colon = b, vb, ve;

        while (colon < e && is_tchar((unsigned char)s[colon]))
                colon++;
        if (colon == b || colon == e || s[colon] != ':')
                return -EPROTO; /* also rejects obsolete line folding and "name :" */
        for (size_t i = colon + 1; i < e; i++) {
                unsigned char c = (unsigned char)s[i];

                if ((c < 0x20 && c != '\t') || c == 0x7f)
                        return -EPROTO;
        }
        vb = colon + 1;
        ve = e;
        trim_ows(s, &vb, &ve);
        if (value_is(s, b, colon, "Content-Length")) {
                long long v = 0;

                if (vb == ve)
                        return -EPROTO;
                for (size_t i = vb; i < ve; i++) {
                        if (!isdigit((unsigned char)s[i]))
                                return -EPROTO;
                        if (v > (long long)HTTP_MAX_BODY_BYTES)
                                return -EMSGSIZE;
                        v = v * 10 + (s[i] - '0');
                }
                if (v > (long long)HTTP_MAX_BODY_BYTES)
                        return -EMSGSIZE;
                if (h->content_length >= 0 && h->content_length != v)
                        return -EPROTO;
                h->content_length = v;
        } else if (value_is(s, b, colon, "Transfer-Encoding")) {
                if (!value_is(s, vb, ve, "chunked"))
                        return -EPROTO; /* no compression was asked for */
                h->chunked = true;
        } else if (value_is(s, b, colon, "Content-Type")) {
                size_t semi = vb;

                while (semi < ve && s[semi] != ';')
                        semi++;
                while (semi > vb && (s[semi - 1] == ' ' || s[semi - 1] == '\t'))
                        semi--;
                h->json_type = value_is(s, vb, semi, "application/json") ||
                               (semi - vb > 5 && strncasecmp(s + semi - 5, "+json", 5) == 0);
        }
        return 0;
}

/*
 * Parse a head at raw[from, end). Returns 0 while incomplete, else fills *h and *ret_next (offset
 * after the blank line) and returns 1; or a negative errno.
 */
static int parse_head(const char *raw, size_t from, size_t end, struct http_head *h,
                      size_t *ret_next)
{
        struct http_head head = {.content_length = -1, .json_type = true};
        size_t pos = from, eol, next;
        int r;

        if (!next_line(raw, pos, end, &eol, &next))
                return end - from > HTTP_MAX_HEADER_BYTES ? -EMSGSIZE : 0;
        r = parse_status_line(raw + pos, eol - pos, &head.status);
        if (r < 0)
                return r;
        for (pos = next;;) {
                if (pos - from > HTTP_MAX_HEADER_BYTES)
                        return -EMSGSIZE;
                if (!next_line(raw, pos, end, &eol, &next))
                        return end - from > HTTP_MAX_HEADER_BYTES ? -EMSGSIZE : 0;
                if (eol == pos)
                        break;
                r = parse_header(raw, pos, eol, &head);
                if (r < 0)
                        return r;
                pos = next;
        }
        if (next - from > HTTP_MAX_HEADER_BYTES)
                return -EMSGSIZE;
        *h = head;
        *ret_next = next;
        return 1;
}

static int body_append(struct http_reader *rd, const char *p, size_t n)
{
        if (n > HTTP_MAX_BODY_BYTES - rd->body_len)
                return -EMSGSIZE;
        if (rd->body_len + n > rd->body_cap) {
                size_t cap = rd->body_cap ? rd->body_cap : 4096;
                char *b;

                while (cap < rd->body_len + n)
                        cap *= 2;
                b = realloc(rd->body, cap);
                if (!b)
                        return -ENOMEM;
                rd->body = b;
                rd->body_cap = cap;
        }
        memcpy(rd->body + rd->body_len, p, n);
        rd->body_len += n;
        return 0;
}

/* Decode what has arrived of a chunked body. Returns 1 when the last chunk and trailers are in,
 * 0 while more is needed, or a negative errno.
 */
static int dechunk(struct http_reader *rd)
{
        const char *raw = rd->raw;
        size_t end = rd->raw_len, eol, next;

        for (;;) {
                size_t pos = rd->pos, i;
                unsigned long long size = 0;
                int r;

                if (!next_line(raw, pos, end, &eol, &next))
                        return end - pos > 4096 ? -EPROTO : 0;
                if (rd->chunk_trailers) {
                        rd->pos = next;
                        if (eol == pos)
                                return 1;
                        if (next - rd->head_end > HTTP_MAX_RAW_BYTES)
                                return -EMSGSIZE;
                        continue;
                }
                for (i = pos; i < eol && isxdigit((unsigned char)raw[i]); i++) {
                        if (i - pos >= 15)
                                return -EPROTO;
                        size = size * 16 +
                               (unsigned long long)(isdigit((unsigned char)raw[i])
                                                            ? raw[i] - '0'
                                                            : tolower(raw[i]) - 'a' + 10);
                }
                if (i == pos || (i < eol && raw[i] != ';' && raw[i] != ' ' && raw[i] != '\t'))
                        return -EPROTO;
                if (size > HTTP_MAX_BODY_BYTES)
                        return -EMSGSIZE;
                if (size == 0) {
                        rd->chunk_trailers = true;
                        rd->pos = next;
                        continue;
                }
                /* The data and its CRLF must be there in full. */
                if (end - next < size + 2) {
                        if (end - next >= size + 1 && raw[next + size] == '\n')
                                ; /* bare LF after the data */
                        else
                                return 0;
                }
                if (raw[next + size] == '\r' && raw[next + size + 1] == '\n')
                        rd->pos = next + size + 2;
                else if (raw[next + size] == '\n')
                        rd->pos = next + size + 1;
                else
                        return -EPROTO;
                r = body_append(rd, raw + next, (size_t)size);
                if (r < 0)
                        return r;
        }
}

/*
 * Make progress on the bytes read so far. eof: the peer closed. Returns 1 when the response is
 * complete, 0 when more bytes are needed, or a negative errno.
 */
static int reader_step(struct http_reader *rd, const char *method, bool eof)
{
        int r;

        while (!rd->head_end) {
                size_t next;

                r = parse_head(rd->raw, rd->pos, rd->raw_len, &rd->head, &next);
                if (r < 0)
                        return r;
                if (r == 0)
                        return eof ? -EPROTO : 0;
                if (rd->head.status == 101)
                        return -EPROTO;
                if (rd->head.status >= 100 && rd->head.status < 200) {
                        rd->pos = next; /* an interim reply: the real one follows */
                        continue;
                }
                rd->head_end = next;
                rd->pos = next;
        }
        if (strcmp(method, "HEAD") == 0 || rd->head.status == 204 || rd->head.status == 304)
                return 1;
        if (rd->head.chunked) {
                r = dechunk(rd);
                if (r == 0 && eof)
                        return -EPROTO;
                return r;
        }
        if (rd->head.content_length >= 0) {
                if (rd->raw_len - rd->head_end >= (size_t)rd->head.content_length)
                        return 1;
                return eof ? -EPROTO : 0;
        }
        if (rd->raw_len - rd->head_end > HTTP_MAX_BODY_BYTES)
                return -EMSGSIZE;
        return eof ? 1 : 0;
}

/* Read until the response is complete. Returns 0 or a negative errno. */
static int read_response(const struct http_conn *c, struct http_reader *rd, const char *method,
                         int64_t deadline)
{
        int fd = c->fd;

        for (;;) {
                ssize_t n;
                int r;

                if (rd->raw_cap - rd->raw_len < 4096) {
                        size_t cap = rd->raw_cap ? rd->raw_cap * 2 : 16384;
                        char *b;

                        if (rd->raw_cap >= HTTP_MAX_RAW_BYTES)
                                return -EMSGSIZE;
                        if (cap > HTTP_MAX_RAW_BYTES)
                                cap = HTTP_MAX_RAW_BYTES;
                        b = realloc(rd->raw, cap);
                        if (!b)
                                return -ENOMEM;
                        rd->raw = b;
                        rd->raw_cap = cap;
                }
                if (c->sess) {
                        short ev = POLLIN;
                        long got = c->tls->recv(c->sess, rd->raw + rd->raw_len,
                                                rd->raw_cap - rd->raw_len, &ev);

                        if (got == -EAGAIN) {
                                r = wait_fd(fd, ev, deadline);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        if (got < 0) {
                                if (reader_step(rd, method, true) == 1)
                                        return 0;
                                return (int)got;
                        }
                        n = got; /* 0: the end of the stream */
                        rd->raw_len += (size_t)n;
                        r = reader_step(rd, method, n == 0);
                        if (r < 0)
                                return r;
                        if (r == 1)
                                return 0;
                        continue;
                }
                n = recv(fd, rd->raw + rd->raw_len, rd->raw_cap - rd->raw_len, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN) {
                        r = wait_fd(fd, POLLIN, deadline);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (n < 0) {
                        /* A reset after a complete response still counts as the response. */
                        r = -errno;
                        if (reader_step(rd, method, true) == 1)
                                return 0;
                        return r;
                }
                rd->raw_len += (size_t)n;
                r = reader_step(rd, method, n == 0);
                if (r < 0)
                        return r;
                if (r == 1)
                        return 0;
        }
}

/* The body of a complete response, as JSON or NULL. */
static int reader_body(const struct http_reader *rd, const char *method, json_t **ret_body)
{
        const char *b;
        size_t len;
        json_error_t jerr;
        json_t *doc;

        if (strcmp(method, "HEAD") == 0 || rd->head.status == 204 || rd->head.status == 304) {
                *ret_body = NULL;
                return 0;
        }
        if (rd->head.chunked) {
                b = rd->body;
                len = rd->body_len;
        } else {
                b = rd->raw + rd->head_end;
                len = rd->raw_len - rd->head_end;
                if (rd->head.content_length >= 0 && len > (size_t)rd->head.content_length)
                        len = (size_t)rd->head.content_length;
        }
        /* An empty body, or one that says it is not JSON (a proxy's or library's own page). */
        if (len == 0 || !b || !rd->head.json_type) {
                if (len)
                        vgpu_log(VGPU_LOG_DEBUG, "http: ignoring a non-JSON body of %zu bytes",
                                 len);
                *ret_body = NULL;
                return 0;
        }
        doc = json_loadb(b, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
        if (!doc) {
                vgpu_log(VGPU_LOG_DEBUG, "http: body is not JSON: %s (line %d, column %d)",
                         jerr.text, jerr.line, jerr.column);
                return -EPROTO;
        }
        *ret_body = doc;
        return 0;
}

/* A bearer token goes into a header line: visible ASCII only. NULL is fine. */
static bool valid_bearer(const char *b)
{
        if (!b)
                return true;
        if (!*b || strlen(b) > 4096)
                return false;
        for (; *b; b++) {
                if ((unsigned char)*b <= 0x20 || (unsigned char)*b >= 0x7f)
                        return false;
        }
        return true;
}

/* Connect a non-blocking TCP socket to host:port before the deadline. Returns the fd or -errno. */
static int connect_tcp(const char *host, unsigned short port, int64_t deadline)
{
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
        struct addrinfo *res = NULL, *ai;
        char serv[8];
        int err = -EHOSTUNREACH;

        snprintf(serv, sizeof(serv), "%u", (unsigned)port);
        if (getaddrinfo(host, serv, &hints, &res) != 0)
                return -EHOSTUNREACH;
        for (ai = res; ai; ai = ai->ai_next) {
                int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                                ai->ai_protocol);
                int one = 1, soerr = 0, r;
                socklen_t slen = sizeof(soerr);

                if (fd < 0) {
                        err = -errno;
                        continue;
                }
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
                        freeaddrinfo(res);
                        return fd;
                }
                if (errno != EINPROGRESS) {
                        err = -errno;
                        close(fd);
                        continue;
                }
                r = wait_fd(fd, POLLOUT, deadline);
                if (r == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) == 0 && !soerr) {
                        freeaddrinfo(res);
                        return fd;
                }
                err = r < 0 ? r : -(soerr ? soerr : EIO);
                close(fd);
                if (err == -ETIMEDOUT)
                        break;
        }
        freeaddrinfo(res);
        return err;
}

static void conn_close(struct http_conn *c)
{
        if (c->sess)
                c->tls->end(c->sess); /* a best-effort close_notify: the socket is non-blocking */
        if (c->fd >= 0)
                close(c->fd);
        c->sess = NULL;
        c->fd = -1;
}

/* TCP, then the TLS handshake of the target's TLS ops. Fills *c. */
static int connect_tls(const struct http_target *t, int64_t deadline, struct http_conn *c)
{
        int r;

        c->fd = connect_tcp(t->host, t->port, deadline);
        if (c->fd < 0)
                return c->fd;
        c->tls = t->tls;
        r = t->tls->start(c->fd, t->host, t->ca_file, deadline, &c->sess);
        if (r < 0)
                conn_close(c);
        return r;
}

int http_request(const struct http_target *target, const char *method, const char *path,
                 json_t *body, int *ret_status, json_t **ret_body)
{
        struct http_reader rd = {0};
        struct http_conn conn = {.fd = -1};
        int64_t deadline;
        char *req = NULL;
        size_t req_len = 0;
        json_t *doc = NULL;
        int r, wr;

        if (!target || !method || !path || !ret_status || !ret_body || !valid_method(method) ||
            !valid_path(path) || !valid_bearer(target->bearer))
                return -EINVAL;
        if (target->kind != HTTP_TARGET_UNIX &&
            (target->kind != HTTP_TARGET_TLS || !target->host || !*target->host || !target->port ||
             !target->ca_file || !target->tls))
                return -EINVAL;
        deadline = now_ms() + (target->timeout_ms > 0 ? target->timeout_ms : HTTP_TIMEOUT_MS);
        r = build_request(method, path, body, target->bearer, &req, &req_len);
        if (r < 0)
                return r;
        if (target->kind == HTTP_TARGET_TLS)
                r = connect_tls(target, deadline, &conn);
        else
                r = conn.fd = connect_unix(target->path, deadline);
        if (r < 0) {
                vgpu_log(VGPU_LOG_DEBUG, "http: connect %s: %s",
                         target->kind == HTTP_TARGET_TLS ? target->host : target->path,
                         strerror(-r));
                goto err_connect;
        }
        /* A server may answer and close before reading all of a request it refuses (413): read
         * its reply even when sending failed.
         */
        wr = send_all(&conn, req, req_len, deadline);
        if (wr == -ETIMEDOUT) {
                r = wr;
                goto err_io;
        }
        r = read_response(&conn, &rd, method, deadline);
        if (r < 0) {
                if (wr < 0)
                        r = wr;
                vgpu_log(VGPU_LOG_DEBUG, "http: %s %s: reading the reply: %s", method, path,
                         strerror(-r));
                goto err_io;
        }
        r = reader_body(&rd, method, &doc);
        if (r < 0)
                goto err_io;
        vgpu_log(VGPU_LOG_DEBUG, "http: %s %s -> %d", method, path, rd.head.status);
        *ret_status = rd.head.status;
        *ret_body = doc;
        r = 0;
err_io:
        conn_close(&conn);
err_connect:
        free(rd.raw);
        free(rd.body);
        free(req);
        return r;
}

int http_call(const char *socket_path, const char *method, const char *path, json_t *body,
              int *ret_status, json_t **ret_body)
{
        struct http_target t = {
                .kind = HTTP_TARGET_UNIX,
                .path = socket_path,
                .timeout_ms = HTTP_TIMEOUT_MS,
        };

        return http_request(&t, method, path, body, ret_status, ret_body);
}
