/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vgpuctl's output helpers: nvidia-smi style "label : value" lines with the colon in a fixed
 * column, and JSON documents written to stdout.
 */
#ifndef VGPU_CTL_OUT_H
#define VGPU_CTL_OUT_H

#include <jansson.h>

/* The colon of a "label : value" line sits in column 38 (counting from 1), as in `nvidia-smi -q`.
 */
#define OUT_LABEL_WIDTH 37

/* out_kv - print "<indent spaces><label padded to OUT_LABEL_WIDTH>: <value>\n" to stdout. */
void out_kv(int indent, const char *label, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* out_json - print doc to stdout, indented, and release it (steals the reference). Returns 0. */
int out_json(json_t *doc);

/* out_error - print "vgpuctl: <message>" on stderr. Returns 1, the exit status for errors. */
int out_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * out_bad_option - print "CMD: unknown option or missing argument in 'ARG'; `vgpuctl CMD --help`
 * shows the usage" on stderr (for getopt's '?' with opterr = 0). Returns 1.
 */
int out_bad_option(const char *cmd, const char *arg);

#endif
