// SPDX-License-Identifier: Apache-2.0
// vgpuctl's output helpers: aligned label/value lines, JSON to stdout, one-line errors to stderr.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctl/out.h"

void out_kv(int indent, const char *label, const char *fmt, ...)
{
        va_list ap;
        int pad = OUT_LABEL_WIDTH - indent - (int)strlen(label);

        printf("%*s%s%*s: ", indent, "", label, pad > 0 ? pad : 1, "");
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        putchar('\n');
}

int out_json(json_t *doc)
{
        json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        putchar('\n');
        json_decref(doc);
        return 0;
}

int out_error(const char *fmt, ...)
{
        va_list ap;

        fputs("vgpuctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return 1;
}

int out_bad_option(const char *cmd, const char *arg)
{
        return out_error("%s: unknown option or missing argument in '%s'; `vgpuctl %s --help` "
                         "shows the usage",
                         cmd, arg ? arg : "", cmd);
}
