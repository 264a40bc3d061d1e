/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Prometheus text exposition of GPUs and vGPUs (metrics.h): one table of metric families, each
 * with the functions that say whether a GPU or a vGPU has a sample and what it is, walked family by
 * family so that a family's samples are contiguous and its HELP and TYPE come once.
 */
#include "manager/metrics.h"

#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The text being built. After a failed allocation every write does nothing and failed stays set. */
struct out {
        char *p;
        size_t len, cap;
        bool failed;
};

static void out_put(struct out *o, const char *s, size_t n)
{
        if (o->failed)
                return;
        if (n >= o->cap - o->len) {
                size_t cap = o->cap ? o->cap : 4096;
                char *p;

                while (n >= cap - o->len)
                        cap *= 2;
                p = realloc(o->p, cap);
                if (!p) {
                        o->failed = true;
                        return;
                }
                o->p = p;
                o->cap = cap;
        }
        memcpy(o->p + o->len, s, n);
        o->len += n;
        o->p[o->len] = '\0';
}

static void out_puts(struct out *o, const char *s)
{
        out_put(o, s, strlen(s));
}

static void out_u64(struct out *o, uint64_t v)
{
        char s[24];
        int n = snprintf(s, sizeof(s), "%" PRIu64, v);

        out_put(o, s, (size_t)n);
}

/*
 * A sample's value is NUM / 10^DIGITS, written exactly in decimal by integer arithmetic: no float
 * formatting (so no locale's decimal comma, no exponent), and nothing that could be NaN or Inf.
 */
struct sample {
        uint64_t num;
        unsigned digits;   /* at most 9 */
        const char *extra; /* the value of the family's extra label */
};

static void out_value(struct out *o, const struct sample *s)
{
        uint64_t scale = 1, frac;
        char d[9];
        unsigned n = s->digits;

        assert(n <= sizeof(d)); /* 10^9 fits; the table uses 0, 3 and 9 */
        for (unsigned i = 0; i < n; i++)
                scale *= 10;
        out_u64(o, s->num / scale);
        frac = s->num % scale;
        if (n == 0 || frac == 0)
                return;
        for (unsigned i = n; i-- > 0; frac /= 10)
                d[i] = (char)('0' + frac % 10);
        while (n > 1 && d[n - 1] == '0') /* frac was not 0: d has a digit that is not */
                n--;
        out_put(o, ".", 1);
        out_put(o, d, n);
}

/*
 * The length of the well-formed UTF-8 sequence at S (RFC 3629: no overlong forms, no surrogates,
 * nothing past U+10FFFF), or 0. Prometheus rejects a whole scrape over one bad label value, so
 * such bytes are replaced rather than passed on. S is NUL-terminated, and NUL is never a
 * continuation byte, so this never reads past the end.
 */
static size_t utf8_len(const unsigned char *s)
{
        unsigned char lo = 0x80, hi = 0xbf;
        size_t n;

        if (s[0] < 0x80)
                return 1;
        if (s[0] >= 0xc2 && s[0] <= 0xdf)
                n = 2;
        else if (s[0] >= 0xe0 && s[0] <= 0xef)
                n = 3;
        else if (s[0] >= 0xf0 && s[0] <= 0xf4)
                n = 4;
        else
                return 0;
        if (s[0] == 0xe0)
                lo = 0xa0;
        else if (s[0] == 0xed)
                hi = 0x9f;
        else if (s[0] == 0xf0)
                lo = 0x90;
        else if (s[0] == 0xf4)
                hi = 0x8f;
        if (s[1] < lo || s[1] > hi)
                return 0;
        for (size_t i = 2; i < n; i++)
                if (s[i] < 0x80 || s[i] > 0xbf)
                        return 0;
        return n;
}

/* A label value as the exposition format wants it: \ " and newline escaped, valid UTF-8. */
static void out_label_value(struct out *o, const char *v)
{
        const unsigned char *s = (const unsigned char *)(v ? v : "");

        while (*s) {
                size_t n = utf8_len(s);

                if (n == 0) {
                        out_puts(o, "\xef\xbf\xbd"); /* U+FFFD */
                        s++;
                } else if (*s == '\\') {
                        out_puts(o, "\\\\");
                        s++;
                } else if (*s == '"') {
                        out_puts(o, "\\\"");
                        s++;
                } else if (*s == '\n') {
                        out_puts(o, "\\n");
                        s++;
                } else {
                        out_put(o, (const char *)s, n);
                        s += n;
                }
        }
}

static void out_label(struct out *o, bool *first, const char *name, const char *value)
{
        out_puts(o, *first ? "{" : ",");
        *first = false;
        out_puts(o, name);
        out_puts(o, "=\"");
        out_label_value(o, value);
        out_puts(o, "\"");
}

/*
 * A metric family. gpu and vgpu (either may be NULL) return whether the GPU or vGPU has a sample
 * and fill *ret; extra_label names the label that carries ret->extra.
 */
struct family {
        const char *name, *type, *help, *extra_label;
        bool (*gpu)(const struct metrics_gpu *g, struct sample *ret);
        bool (*vgpu)(const struct metrics_vgpu *v, struct sample *ret);
};

/* dcgm-exporter's labels in its order, then vGPU's, then the family's own. */
static void out_sample(struct out *o, const struct family *f, const struct metrics_gpu *g,
                       const struct metrics_vgpu *v, const struct sample *s)
{
        char num[24];
        bool first = true;

        out_puts(o, f->name);
        snprintf(num, sizeof(num), "%" PRIu32, g->index);
        out_label(o, &first, "gpu", num);
        out_label(o, &first, "UUID", g->uuid);
        out_label(o, &first, "pci_bus_id", g->pci_bus_id);
        snprintf(num, sizeof(num), "nvidia%" PRIu32, g->index);
        out_label(o, &first, "device", num);
        out_label(o, &first, "modelName", g->model_name);
        if (g->hostname_or_null)
                out_label(o, &first, "Hostname", g->hostname_or_null);
        if (v) {
                out_label(o, &first, "vgpu_uuid", v->uuid);
                out_label(o, &first, "vgpu_type", v->type);
                snprintf(num, sizeof(num), "%" PRIu32, v->id);
                out_label(o, &first, "vgpu_id", num);
        }
        if (f->extra_label)
                out_label(o, &first, f->extra_label, s->extra);
        out_puts(o, "} ");
        out_value(o, s);
        out_puts(o, "\n");
}

static void out_family(struct out *o, const struct family *f, const struct metrics_gpu *gpus,
                       size_t n_gpus)
{
        bool header = false;

        for (size_t i = 0; i < n_gpus; i++) {
                const struct metrics_gpu *g = &gpus[i];
                struct sample s = {0};

                for (size_t j = 0; j <= g->n_vgpus; j++) {
                        const struct metrics_vgpu *v = j ? &g->vgpus[j - 1] : NULL;
                        bool has = v ? f->vgpu && f->vgpu(v, &s) : f->gpu && f->gpu(g, &s);

                        if (!has)
                                continue;
                        /* A family without a sample gets no header either. */
                        if (!header) {
                                out_puts(o, "# HELP ");
                                out_puts(o, f->name);
                                out_puts(o, " ");
                                out_puts(o, f->help);
                                out_puts(o, "\n# TYPE ");
                                out_puts(o, f->name);
                                out_puts(o, " ");
                                out_puts(o, f->type);
                                out_puts(o, "\n");
                                header = true;
                        }
                        out_sample(o, f, g, v, &s);
                }
        }
}

/* The figures. Percentages to 1/1000, MiB truncated as DCGM does, FB_FREE = FB_TOTAL - FB_USED. */

static bool sample_util(double pct, struct sample *ret)
{
        if (!(pct >= 0)) /* negative: unknown; and NaN */
                return false;
        if (pct > 100)
                pct = 100;
        *ret = (struct sample){.num = (uint64_t)(pct * 1000 + 0.5), .digits = 3};
        return true;
}

static bool sample_fb_free(uint64_t total, uint64_t used, struct sample *ret)
{
        if (used == UINT64_MAX)
                return false;
        total >>= 20;
        used >>= 20;
        *ret = (struct sample){.num = total > used ? total - used : 0};
        return true;
}

static bool sample_fb_used(uint64_t used, struct sample *ret)
{
        if (used == UINT64_MAX)
                return false;
        *ret = (struct sample){.num = used >> 20};
        return true;
}

static bool sample_gpu_temp(const struct metrics_gpu *g, struct sample *ret)
{
        if (g->temp_c < 0)
                return false;
        *ret = (struct sample){.num = (uint64_t)g->temp_c};
        return true;
}

static bool sample_gpu_power(const struct metrics_gpu *g, struct sample *ret)
{
        if (g->power_mw == 0)
                return false;
        *ret = (struct sample){.num = g->power_mw, .digits = 3};
        return true;
}

static bool sample_gpu_util(const struct metrics_gpu *g, struct sample *ret)
{
        return sample_util(g->util_pct, ret);
}

static bool sample_vgpu_util(const struct metrics_vgpu *v, struct sample *ret)
{
        return sample_util(v->util_pct, ret);
}

static bool sample_gpu_fb_free(const struct metrics_gpu *g, struct sample *ret)
{
        return sample_fb_free(g->fb_total, g->fb_used, ret);
}

static bool sample_vgpu_fb_free(const struct metrics_vgpu *v, struct sample *ret)
{
        return sample_fb_free(v->fb_total, v->fb_used, ret);
}

static bool sample_gpu_fb_used(const struct metrics_gpu *g, struct sample *ret)
{
        return sample_fb_used(g->fb_used, ret);
}

static bool sample_vgpu_fb_used(const struct metrics_vgpu *v, struct sample *ret)
{
        return sample_fb_used(v->fb_used, ret);
}

static bool sample_gpu_fb_total(const struct metrics_gpu *g, struct sample *ret)
{
        *ret = (struct sample){.num = g->fb_total >> 20};
        return true;
}

static bool sample_vgpu_fb_total(const struct metrics_vgpu *v, struct sample *ret)
{
        *ret = (struct sample){.num = v->fb_total >> 20};
        return true;
}

static bool sample_gpu_xid(const struct metrics_gpu *g, struct sample *ret)
{
        *ret = (struct sample){.num = g->xid_errors};
        return true;
}

static bool sample_vgpu_xid(const struct metrics_vgpu *v, struct sample *ret)
{
        *ret = (struct sample){.num = v->xid_errors};
        return true;
}

static bool sample_vgpu_license(const struct metrics_vgpu *v, struct sample *ret)
{
        if (v->license_status < 0)
                return false;
        *ret = (struct sample){.num = (uint64_t)v->license_status};
        return true;
}

static bool sample_gpu_timeslice(const struct metrics_gpu *g, struct sample *ret)
{
        *ret = (struct sample){.num = g->sched_slice_ms, .digits = 3, .extra = g->sched_policy};
        return true;
}

static bool sample_vgpu_slices(const struct metrics_vgpu *v, struct sample *ret)
{
        *ret = (struct sample){.num = v->sched_slices};
        return true;
}

static bool sample_vgpu_overruns(const struct metrics_vgpu *v, struct sample *ret)
{
        *ret = (struct sample){.num = v->sched_overruns};
        return true;
}

static bool sample_vgpu_charged(const struct metrics_vgpu *v, struct sample *ret)
{
        *ret = (struct sample){.num = v->sched_charged_ns, .digits = 9};
        return true;
}

static bool sample_vgpu_state(const struct metrics_vgpu *v, struct sample *ret)
{
        if (!v->state)
                return false;
        *ret = (struct sample){.num = 1, .extra = v->state};
        return true;
}

/*
 * dcgm-exporter's families in the order of its default counters, with its types: XID_ERRORS is a
 * gauge there too (DCGM's field is the last XID; ours counts them, which reads the same to an
 * alert on "not zero"). Then vgpu's own, in base units so that promtool's lint passes them.
 */
static const struct family families[] = {
        {.name = "DCGM_FI_DEV_GPU_TEMP",
         .type = "gauge",
         .help = "GPU temperature (in C).",
         .gpu = sample_gpu_temp},
        {.name = "DCGM_FI_DEV_POWER_USAGE",
         .type = "gauge",
         .help = "Power draw (in W).",
         .gpu = sample_gpu_power},
        {.name = "DCGM_FI_DEV_GPU_UTIL",
         .type = "gauge",
         .help = "GPU utilization (in %); of a vGPU, its share of the GPU's time over the last "
                 "interval.",
         .gpu = sample_gpu_util,
         .vgpu = sample_vgpu_util},
        {.name = "DCGM_FI_DEV_XID_ERRORS",
         .type = "gauge",
         .help = "Number of XID errors (faults) so far.",
         .gpu = sample_gpu_xid,
         .vgpu = sample_vgpu_xid},
        {.name = "DCGM_FI_DEV_FB_FREE",
         .type = "gauge",
         .help = "Framebuffer memory free (in MiB).",
         .gpu = sample_gpu_fb_free,
         .vgpu = sample_vgpu_fb_free},
        {.name = "DCGM_FI_DEV_FB_USED",
         .type = "gauge",
         .help = "Framebuffer memory used (in MiB).",
         .gpu = sample_gpu_fb_used,
         .vgpu = sample_vgpu_fb_used},
        {.name = "DCGM_FI_DEV_FB_TOTAL",
         .type = "gauge",
         .help = "Framebuffer memory total (in MiB).",
         .gpu = sample_gpu_fb_total,
         .vgpu = sample_vgpu_fb_total},
        {.name = "DCGM_FI_DEV_VGPU_LICENSE_STATUS",
         .type = "gauge",
         .help = "vGPU license status (1 licensed, 0 unlicensed).",
         .vgpu = sample_vgpu_license},
        {.name = "vgpu_sched_timeslice_seconds",
         .type = "gauge",
         .help = "Scheduler time slice of the GPU's vGPUs, and its policy.",
         .extra_label = "policy",
         .gpu = sample_gpu_timeslice},
        {.name = "vgpu_sched_slices_total",
         .type = "counter",
         .help = "Time slices the scheduler has given the vGPU.",
         .vgpu = sample_vgpu_slices},
        {.name = "vgpu_sched_overruns_total",
         .type = "counter",
         .help = "Time slices the vGPU ran past the end of.",
         .vgpu = sample_vgpu_overruns},
        {.name = "vgpu_sched_charged_seconds_total",
         .type = "counter",
         .help = "GPU time charged to the vGPU.",
         .vgpu = sample_vgpu_charged},
        {.name = "vgpu_state",
         .type = "gauge",
         .help = "1 for the vGPU's current state, in the state label.",
         .extra_label = "state",
         .vgpu = sample_vgpu_state},
};

char *metrics_render(const struct metrics_gpu *gpus, size_t n_gpus)
{
        struct out o = {0};

        /* An empty exposition is still a string. */
        out_put(&o, "", 0);
        for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
                out_family(&o, &families[i], gpus, n_gpus);
        if (o.failed) {
                free(o.p);
                return NULL;
        }
        return o.p;
}
