// SPDX-License-Identifier: Apache-2.0
// The logger behind vgpu_log: level threshold from the environment, one write(2) per line so lines
// from several threads or processes sharing stderr never interleave.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

int vgpu_log_threshold = VGPU_LOG_WARN;
static const char *log_prog = "vgpu";

void vgpu_log_set_level(enum vgpu_log_level level)
{
        vgpu_log_threshold = (int)level;
}

void vgpu_log_init(const char *prog)
{
        static const char *const names[] = {"error", "warn", "info", "debug"};
        const char *env = getenv("VGPU_LOG");

        if (prog)
                log_prog = prog;
        if (!env)
                return;
        for (int i = 0; i < 4; i++) {
                if (strcmp(env, names[i]) == 0)
                        vgpu_log_threshold = i;
        }
}

void vgpu_log_emit(enum vgpu_log_level level, const char *fmt, ...)
{
        static const char *const tags[] = {"error", "warning", "info", "debug"};
        char line[1024];
        va_list ap;
        int n;

        n = snprintf(line, sizeof(line), "%s: %s: ", log_prog, tags[level & 3]);
        if (n < 0 || (size_t)n >= sizeof(line))
                return;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        va_end(ap);
        if (m < 0)
                return;
        size_t len = strlen(line);
        if (len + 1 < sizeof(line)) {
                line[len++] = '\n';
        } else {
                line[sizeof(line) - 2] = '\n';
                len = sizeof(line) - 1;
        }
        ssize_t w = write(STDERR_FILENO, line, len);
        (void)w;
}
