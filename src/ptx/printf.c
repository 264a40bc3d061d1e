// SPDX-License-Identifier: Apache-2.0
// Device printf: nvcc turns printf into vprintf(format, argument buffer), with the format in a
// module variable and the arguments in the thread's local memory at their natural alignment
// (float promoted to double, long is 64-bit). Each conversion is formatted with the host's
// snprintf and the text goes to the launch's print callback.
#include <stdio.h>
#include <string.h>

#include "ptx/exec.h"

#define PRINT_MAX 4096

/* The formats come from the kernel: each conversion is rebuilt from checked pieces (flags, width,
 * precision, one known conversion) and given an argument of the matching host type. */
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

/* Read an argument of size bytes at *cursor (aligned up to size) from the argument buffer. */
static int read_arg(struct exec_ctx *c, struct warp *w, int lane, uint64_t args, uint64_t *cursor,
                    unsigned size, uint64_t *ret, const struct ptx_insn *in)
{
        uint8_t b[8] = {0};
        *cursor = (*cursor + size - 1) & ~(uint64_t)(size - 1);
        if (exec_read(c, w, lane, args + *cursor, b, size, false, in) < 0)
                return -1;
        *cursor += size;
        uint64_t v = 0;
        memcpy(&v, b, size);
        *ret = v;
        return 0;
}

int exec_vprintf(struct exec_ctx *c, struct warp *w, int lane, uint64_t fmt, uint64_t args,
                 const struct ptx_insn *in)
{
        char f[PRINT_MAX], out[PRINT_MAX];
        size_t n = 0;
        uint64_t cursor = 0;
        int nargs = 0;

        long flen = exec_read(c, w, lane, fmt, f, sizeof(f) - 1, true, in);
        if (flen < 0)
                return -1;
        f[flen] = 0;
        for (const char *p = f; *p && n < sizeof(out) - 1;) {
                if (*p != '%') {
                        out[n++] = *p++;
                        continue;
                }
                /* a conversion: %[flags][width][.precision][length]conv */
                const char *start = p++;
                while (*p && strchr("-+ #0", *p))
                        p++;
                while (*p >= '0' && *p <= '9')
                        p++;
                if (*p == '.') {
                        p++;
                        while (*p >= '0' && *p <= '9')
                                p++;
                }
                const char *spec_end = p;
                int longs = 0;
                while (*p && strchr("hlLqjzt", *p)) {
                        if (*p == 'l' || *p == 'L' || *p == 'q' || *p == 'j' || *p == 'z' ||
                            *p == 't')
                                longs++;
                        p++;
                }
                char conv = *p ? *p++ : 0;
                char spec[64];
                size_t sl = (size_t)(spec_end - start);
                if (sl > 40 || !conv) {
                        break; /* malformed: stop formatting here */
                }
                memcpy(spec, start, sl);
                uint64_t v = 0;
                int r = 0;
                size_t room = sizeof(out) - n;
                if (conv == '%') {
                        out[n++] = '%';
                        continue;
                }
                nargs++;
                if (strchr("diouxXc", conv)) {
                        unsigned size = longs ? 8 : 4;
                        if (read_arg(c, w, lane, args, &cursor, size, &v, in))
                                return -1;
                        bool sgn = conv == 'd' || conv == 'i';
                        if (conv == 'c') {
                                memcpy(spec + sl, "c", 2);
                                r = snprintf(out + n, room, spec, (int)v);
                        } else if (size == 8) {
                                spec[sl] = 'l';
                                spec[sl + 1] = 'l';
                                spec[sl + 2] = conv;
                                spec[sl + 3] = 0;
                                r = sgn ? snprintf(out + n, room, spec, (long long)v)
                                        : snprintf(out + n, room, spec, (unsigned long long)v);
                        } else {
                                spec[sl] = conv;
                                spec[sl + 1] = 0;
                                r = sgn ? snprintf(out + n, room, spec, (int)(int32_t)v)
                                        : snprintf(out + n, room, spec, (unsigned)v);
                        }
                } else if (strchr("fFeEgGaA", conv)) {
                        double d;
                        if (read_arg(c, w, lane, args, &cursor, 8, &v, in))
                                return -1;
                        memcpy(&d, &v, 8);
                        spec[sl] = conv;
                        spec[sl + 1] = 0;
                        r = snprintf(out + n, room, spec, d);
                } else if (conv == 's') {
                        char str[1024];
                        if (read_arg(c, w, lane, args, &cursor, 8, &v, in))
                                return -1;
                        long sl2 = v ? exec_read(c, w, lane, v, str, sizeof(str) - 1, true, in) : 0;
                        if (sl2 < 0)
                                return -1;
                        str[sl2] = 0;
                        if (!v)
                                memcpy(str, "(null)", 7);
                        spec[sl] = 's';
                        spec[sl + 1] = 0;
                        r = snprintf(out + n, room, spec, str);
                } else if (conv == 'p') {
                        if (read_arg(c, w, lane, args, &cursor, 8, &v, in))
                                return -1;
                        r = snprintf(out + n, room, "0x%llx", (unsigned long long)v);
                } else {
                        /* %n and unknown conversions: consume an 8-byte argument, print nothing */
                        if (read_arg(c, w, lane, args, &cursor, 8, &v, in))
                                return -1;
                }
                if (r > 0)
                        n += (size_t)r < room ? (size_t)r : room - 1;
        }
        if (c->L->l->print)
                c->L->l->print(c->L->l->print_ctx, out, n);
        return nargs;
}
