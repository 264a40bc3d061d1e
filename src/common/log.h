/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpu_log: one logger for every process. Messages at or above the threshold go to stderr with the
 * program's name; the threshold comes from VGPU_LOG (error, warn, info, debug) or
 * vgpu_log_set_level.
 */
#ifndef VGPU_COMMON_LOG_H
#define VGPU_COMMON_LOG_H

enum vgpu_log_level {
        VGPU_LOG_ERROR = 0,
        VGPU_LOG_WARN = 1,
        VGPU_LOG_INFO = 2,
        VGPU_LOG_DEBUG = 3,
};

/* The current threshold; read with one load so the hot path pays one compare. */
extern int vgpu_log_threshold;

/* vgpu_log_set_level - set the threshold. vgpu_log_init reads VGPU_LOG and sets the prefix. */
void vgpu_log_set_level(enum vgpu_log_level level);
void vgpu_log_init(const char *prog);

/* vgpu_log_emit - format and write one line; use vgpu_log(), which checks the level first. */
void vgpu_log_emit(enum vgpu_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

#define vgpu_log(level, ...)                                                                       \
        do {                                                                                       \
                if ((int)(level) <= vgpu_log_threshold)                                            \
                        vgpu_log_emit((level), __VA_ARGS__);                                       \
        } while (0)

#endif
