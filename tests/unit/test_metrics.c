// SPDX-License-Identifier: Apache-2.0
// GET /metrics' renderer: exact lines of fixed data (dcgm-exporter's names, labels and units),
// unknown figures left out, label text escaped, and the properties of the whole exposition that
// Prometheus relies on: HELP and TYPE once a family, a family's samples together, no series twice,
// only finite decimal values.
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "manager/metrics.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct metrics_vgpu vgpus0[] = {
        {.uuid = "11111111-1111-4111-8111-111111111111",
         .type = "H100-20C",
         .id = 1,
         .fb_total = 20ull << 30,
         .fb_used = 5ull << 30,
         .util_pct = 37.5,
         .xid_errors = 0,
         .license_status = 1,
         .sched_slices = 123456,
         .sched_overruns = 7,
         .sched_charged_ns = 61234567891ull,
         .state = "running"},
        /* Every optional figure unknown. */
        {.uuid = "22222222-2222-4222-8222-222222222222",
         .type = "H100-20C",
         .id = 2,
         .fb_total = 20ull << 30,
         .fb_used = UINT64_MAX,
         .util_pct = -1,
         .xid_errors = 3,
         .license_status = -1,
         .state = NULL},
        /* Out of range, NaN, the largest counters, a used figure past the total. */
        {.uuid = "33333333-3333-4333-8333-333333333333",
         .type = "H100-20C",
         .id = 3,
         .fb_total = 20ull << 30,
         .fb_used = 21ull << 30,
         .util_pct = 150,
         .license_status = 0,
         .sched_slices = UINT64_MAX,
         .sched_overruns = UINT64_MAX,
         .sched_charged_ns = UINT64_MAX,
         .state = "faulted"},
        {.uuid = "44444444-4444-4444-8444-444444444444",
         .type = "H100-20C",
         .id = 4,
         .fb_total = (20ull << 30) + 12345, /* part of a MiB: truncated */
         .fb_used = (1ull << 20) - 1,
         .util_pct = NAN,
         .license_status = -1,
         .state = "creating"},
};

/* Hostile text: quotes, backslashes, newlines, bytes that are not UTF-8, and UTF-8 that is. */
static const struct metrics_vgpu vgpus1[] = {
        {.uuid = "q\"uo\\te\nline",
         .type = "T\xff"
                 "x\xc0\xafy\xed\xa0\x80z\xf4\x90\x80\x80w",
         .id = 7,
         .fb_total = 10ull << 30,
         .fb_used = 0,
         .util_pct = 0.0004,
         .license_status = -1,
         .sched_charged_ns = 1,
         .state = "st\"ate\\\n"},
        {.uuid = "\xc3\x9c\xe6\x97\xa5\xf0\x9f\x98\x80",
         .type = NULL,
         .id = 8,
         .fb_total = 10ull << 30,
         .fb_used = 1ull << 30,
         .util_pct = 0.001,
         .license_status = -1,
         .state = NULL},
};

static const struct metrics_gpu gpus[] = {
        {.index = 0,
         .uuid = "GPU-aaaa",
         .model_name = "NVIDIA H100 80GB PCIe",
         .pci_bus_id = "00000000:3B:00.0",
         .hostname_or_null = "node-1",
         .fb_total = 80ull << 30,
         .fb_used = 25ull << 30,
         .util_pct = 62.25,
         .temp_c = 41,
         .power_mw = 71234,
         .xid_errors = 3,
         .sched_policy = "best_effort",
         .sched_slice_ms = 2,
         .n_vgpus = N(vgpus0),
         .vgpus = vgpus0},
        {.index = 1,
         .uuid = "GPU-\\\"\n",
         .model_name = "M \"X\"",
         .pci_bus_id = "00000000:5E:00.0",
         .hostname_or_null = NULL,
         .fb_total = 40ull << 30,
         .fb_used = UINT64_MAX,
         .util_pct = -1,
         .temp_c = -1,
         .power_mw = 0,
         .xid_errors = 0,
         .sched_policy = NULL,
         .sched_slice_ms = 1500,
         .n_vgpus = N(vgpus1),
         .vgpus = vgpus1},
};

#define L0                                                                                         \
        "gpu=\"0\",UUID=\"GPU-aaaa\",pci_bus_id=\"00000000:3B:00.0\",device=\"nvidia0\","          \
        "modelName=\"NVIDIA H100 80GB PCIe\",Hostname=\"node-1\""
#define L1                                                                                         \
        "gpu=\"1\",UUID=\"GPU-\\\\\\\"\\n\",pci_bus_id=\"00000000:5E:00.0\",device=\"nvidia1\","   \
        "modelName=\"M \\\"X\\\"\""
#define V01                                                                                        \
        ",vgpu_uuid=\"11111111-1111-4111-8111-111111111111\",vgpu_type=\"H100-20C\",vgpu_id=\"1\""
#define V02                                                                                        \
        ",vgpu_uuid=\"22222222-2222-4222-8222-222222222222\",vgpu_type=\"H100-20C\",vgpu_id=\"2\""
#define V03                                                                                        \
        ",vgpu_uuid=\"33333333-3333-4333-8333-333333333333\",vgpu_type=\"H100-20C\",vgpu_id=\"3\""
#define V04                                                                                        \
        ",vgpu_uuid=\"44444444-4444-4444-8444-444444444444\",vgpu_type=\"H100-20C\",vgpu_id=\"4\""
/* U+FFFD for each byte that is not part of well-formed UTF-8. */
#define FFFD "\xef\xbf\xbd"
#define V17                                                                                        \
        ",vgpu_uuid=\"q\\\"uo\\\\te\\nline\",vgpu_type=\"T" FFFD "x" FFFD FFFD "y" FFFD FFFD FFFD  \
        "z" FFFD FFFD FFFD FFFD "w\",vgpu_id=\"7\""
#define V18 ",vgpu_uuid=\"\xc3\x9c\xe6\x97\xa5\xf0\x9f\x98\x80\",vgpu_type=\"\",vgpu_id=\"8\""

static char *text;

static int setup(void **state)
{
        (void)state;
        text = metrics_render(gpus, N(gpus));
        return text ? 0 : -1;
}

static int teardown(void **state)
{
        (void)state;
        free(text);
        text = NULL;
        return 0;
}

/* How many whole lines of TEXT equal LINE. */
static int count_line(const char *line)
{
        size_t n = strlen(line);
        int count = 0;

        for (const char *p = text; *p;) {
                const char *e = strchr(p, '\n');

                assert_non_null(e); /* every line ends in a newline */
                if ((size_t)(e - p) == n && memcmp(p, line, n) == 0)
                        count++;
                p = e + 1;
        }
        return count;
}

/* How many lines of TEXT start with PREFIX. */
static int count_prefix(const char *prefix)
{
        size_t n = strlen(prefix);
        int count = 0;

        for (const char *p = text; *p; p = strchr(p, '\n') + 1)
                if (strncmp(p, prefix, n) == 0)
                        count++;
        return count;
}

static void expect(const char *line)
{
        if (count_line(line) != 1)
                fail_msg("want once: %s\n--- got:\n%s", line, text);
}

static void test_gpu_lines(void **state)
{
        (void)state;
        expect("# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).");
        expect("# TYPE DCGM_FI_DEV_FB_USED gauge");
        expect("DCGM_FI_DEV_FB_USED{" L0 "} 25600");
        expect("DCGM_FI_DEV_FB_FREE{" L0 "} 56320");
        expect("DCGM_FI_DEV_FB_TOTAL{" L0 "} 81920");
        expect("DCGM_FI_DEV_GPU_UTIL{" L0 "} 62.25");
        expect("DCGM_FI_DEV_GPU_TEMP{" L0 "} 41");
        expect("# TYPE DCGM_FI_DEV_POWER_USAGE gauge");
        expect("DCGM_FI_DEV_POWER_USAGE{" L0 "} 71.234");
        expect("DCGM_FI_DEV_XID_ERRORS{" L0 "} 3");
        expect("# TYPE vgpu_sched_timeslice_seconds gauge");
        expect("vgpu_sched_timeslice_seconds{" L0 ",policy=\"best_effort\"} 0.002");
        expect("vgpu_sched_timeslice_seconds{" L1 ",policy=\"\"} 1.5");
        expect("DCGM_FI_DEV_FB_TOTAL{" L1 "} 40960");
        expect("DCGM_FI_DEV_XID_ERRORS{" L1 "} 0");
}

static void test_vgpu_lines(void **state)
{
        (void)state;
        expect("DCGM_FI_DEV_FB_USED{" L0 V01 "} 5120");
        expect("DCGM_FI_DEV_FB_FREE{" L0 V01 "} 15360");
        expect("DCGM_FI_DEV_FB_TOTAL{" L0 V01 "} 20480");
        expect("DCGM_FI_DEV_GPU_UTIL{" L0 V01 "} 37.5");
        expect("DCGM_FI_DEV_XID_ERRORS{" L0 V01 "} 0");
        expect("DCGM_FI_DEV_XID_ERRORS{" L0 V02 "} 3");
        expect("# TYPE DCGM_FI_DEV_VGPU_LICENSE_STATUS gauge");
        expect("DCGM_FI_DEV_VGPU_LICENSE_STATUS{" L0 V01 "} 1");
        expect("DCGM_FI_DEV_VGPU_LICENSE_STATUS{" L0 V03 "} 0");
        expect("# TYPE vgpu_sched_slices_total counter");
        expect("vgpu_sched_slices_total{" L0 V01 "} 123456");
        expect("# TYPE vgpu_sched_overruns_total counter");
        expect("vgpu_sched_overruns_total{" L0 V01 "} 7");
        expect("# TYPE vgpu_sched_charged_seconds_total counter");
        expect("vgpu_sched_charged_seconds_total{" L0 V01 "} 61.234567891");
        expect("vgpu_sched_charged_seconds_total{" L0 V02 "} 0");
        expect("vgpu_state{" L0 V01 ",state=\"running\"} 1");
        expect("vgpu_state{" L0 V03 ",state=\"faulted\"} 1");
        /* Clamped, past the total, the largest counters. */
        expect("DCGM_FI_DEV_GPU_UTIL{" L0 V03 "} 100");
        expect("DCGM_FI_DEV_FB_USED{" L0 V03 "} 21504");
        expect("DCGM_FI_DEV_FB_FREE{" L0 V03 "} 0");
        expect("vgpu_sched_slices_total{" L0 V03 "} 18446744073709551615");
        expect("vgpu_sched_charged_seconds_total{" L0 V03 "} 18446744073.709551615");
        /* Partial MiB truncated. */
        expect("DCGM_FI_DEV_FB_TOTAL{" L0 V04 "} 20480");
        expect("DCGM_FI_DEV_FB_USED{" L0 V04 "} 0");
        expect("DCGM_FI_DEV_FB_FREE{" L0 V04 "} 20480");
        /* Rounded to 1/1000 of a percent. */
        expect("DCGM_FI_DEV_GPU_UTIL{" L1 V17 "} 0");
        expect("DCGM_FI_DEV_GPU_UTIL{" L1 V18 "} 0.001");
        expect("vgpu_sched_charged_seconds_total{" L1 V17 "} 0.000000001");
}

static void test_unknown_omitted(void **state)
{
        (void)state;
        /* GPU 1: no temperature, power, utilization or FB used/free; no Hostname label. */
        assert_int_equal(count_prefix("DCGM_FI_DEV_GPU_TEMP{gpu=\"1\""), 0);
        assert_int_equal(count_prefix("DCGM_FI_DEV_POWER_USAGE{gpu=\"1\""), 0);
        assert_int_equal(count_line("DCGM_FI_DEV_GPU_UTIL{" L1 "} 0"), 0);
        assert_int_equal(count_prefix("DCGM_FI_DEV_GPU_UTIL{" L1 "}"), 0);
        assert_int_equal(count_prefix("DCGM_FI_DEV_FB_USED{" L1 "}"), 0);
        assert_int_equal(count_prefix("DCGM_FI_DEV_FB_FREE{" L1 "}"), 0);
        assert_null(strstr(text, "device=\"nvidia1\",modelName=\"M \\\"X\\\"\",Hostname"));
        /* vGPU 2: FB used and free, utilization, license, state. */
        assert_int_equal(count_prefix("DCGM_FI_DEV_FB_USED{" L0 V02), 0);
        assert_int_equal(count_prefix("DCGM_FI_DEV_FB_FREE{" L0 V02), 0);
        expect("DCGM_FI_DEV_FB_TOTAL{" L0 V02 "} 20480");
        assert_int_equal(count_prefix("DCGM_FI_DEV_GPU_UTIL{" L0 V02), 0);
        assert_int_equal(count_prefix("DCGM_FI_DEV_VGPU_LICENSE_STATUS{" L0 V02), 0);
        assert_int_equal(count_prefix("vgpu_state{" L0 V02), 0);
        /* NaN utilization. */
        assert_int_equal(count_prefix("DCGM_FI_DEV_GPU_UTIL{" L0 V04), 0);
        /* Samples a family: of 2 GPUs and 6 vGPUs, those whose figure is known. */
        assert_int_equal(count_prefix("DCGM_FI_DEV_VGPU_LICENSE_STATUS{"), 2);
        assert_int_equal(count_prefix("DCGM_FI_DEV_FB_TOTAL{"), 2 + 6);
        assert_int_equal(count_prefix("DCGM_FI_DEV_FB_USED{"), 1 + 5);
        assert_int_equal(count_prefix("DCGM_FI_DEV_GPU_TEMP{"), 1);
        assert_int_equal(count_prefix("vgpu_state{"), 4);
}

static void test_escaping(void **state)
{
        (void)state;
        /* L1 and V17 spell out the escapes and the U+FFFD replacements; V18 keeps valid UTF-8. */
        expect("DCGM_FI_DEV_FB_USED{" L1 V17 "} 0");
        expect("DCGM_FI_DEV_FB_USED{" L1 V18 "} 1024");
        expect("vgpu_state{" L1 V17 ",state=\"st\\\"ate\\\\\\n\"} 1");
}

/* Reads one label value at *P (after its opening quote) up to its closing quote. */
static void parse_label_value(const char **p)
{
        const char *s = *p;

        for (;;) {
                assert_true(*s != '\0' && *s != '\n');
                if (*s == '"')
                        break;
                if (*s == '\\') {
                        s++;
                        assert_true(*s == '\\' || *s == '"' || *s == 'n');
                }
                s++;
        }
        *p = s + 1;
}

static bool is_name_char(char c, bool first)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
               (!first && c >= '0' && c <= '9');
}

/* The family name at the start of LINE, into NAME. Returns its length. */
static size_t parse_name(const char *line, char *name, size_t size)
{
        size_t n = 0;

        while (is_name_char(line[n], n == 0))
                n++;
        assert_true(n > 0 && n < size);
        memcpy(name, line, n);
        name[n] = '\0';
        return n;
}

/*
 * The whole exposition, line by line, as Prometheus' text parser reads it: HELP then TYPE once a
 * family, every sample under its own family's header, label sets well formed with no label twice,
 * no series twice, values finite decimals.
 */
static void test_structure(void **state)
{
        char family[128] = "", name[128];
        char *seen_families[32], *seen_series[256];
        size_t n_families = 0, n_series = 0;

        (void)state;
        for (const char *p = text; *p;) {
                const char *e = strchr(p, '\n'), *s;

                assert_non_null(e);
                if (strncmp(p, "# HELP ", 7) == 0) {
                        s = p + 7 + parse_name(p + 7, family, sizeof(family));
                        assert_true(*s == ' ' && s + 1 < e);
                        for (size_t i = 0; i < n_families; i++)
                                assert_string_not_equal(seen_families[i], family);
                        assert_true(n_families < N(seen_families));
                        seen_families[n_families++] = strdup(family);
                        /* TYPE next, same name, a known type; counters end in _total. */
                        p = e + 1;
                        e = strchr(p, '\n');
                        assert_non_null(e);
                        assert_int_equal(strncmp(p, "# TYPE ", 7), 0);
                        s = p + 7 + parse_name(p + 7, name, sizeof(name));
                        assert_string_equal(name, family);
                        if ((size_t)(e - s) == 8 && memcmp(s, " counter", 8) == 0) {
                                size_t n = strlen(family);

                                assert_true(n > 6 && strcmp(family + n - 6, "_total") == 0);
                        } else {
                                assert_true((size_t)(e - s) == 6 && memcmp(s, " gauge", 6) == 0);
                        }
                        p = e + 1;
                        continue;
                }
                assert_true(p[0] != '#');
                /* A sample: of the family whose header came last, so families are contiguous. */
                s = p + parse_name(p, name, sizeof(name));
                assert_string_equal(name, family);
                assert_true(*s == '{');
                {
                        char labels[16][64];
                        size_t n_labels = 0;

                        s++;
                        while (*s != '}') {
                                size_t n = parse_name(s, labels[n_labels], sizeof(labels[0]));

                                for (size_t i = 0; i < n_labels; i++)
                                        assert_string_not_equal(labels[i], labels[n_labels]);
                                n_labels++;
                                assert_true(n_labels < 16);
                                s += n;
                                assert_true(s[0] == '=' && s[1] == '"');
                                s += 2;
                                parse_label_value(&s);
                                if (*s == ',')
                                        s++;
                                else
                                        assert_true(*s == '}');
                        }
                        assert_true(n_labels >= 5);
                        assert_string_equal(labels[0], "gpu");
                        assert_string_equal(labels[1], "UUID");
                        s++;
                }
                assert_true(*s == ' ');
                {
                        size_t series_len = (size_t)(s - p);
                        char *end;
                        double v;

                        for (size_t i = 0; i < n_series; i++)
                                assert_false(strlen(seen_series[i]) == series_len &&
                                             memcmp(seen_series[i], p, series_len) == 0);
                        assert_true(n_series < N(seen_series));
                        seen_series[n_series++] = strndup(p, series_len);
                        /* Digits and at most one point: no sign, exponent, NaN or Inf. */
                        s++;
                        assert_true(s < e && s[0] >= '0' && s[0] <= '9');
                        assert_int_equal(strspn(s, "0123456789."), (size_t)(e - s));
                        {
                                const char *dot = memchr(s, '.', (size_t)(e - s));

                                /* A point has digits after it, the last not 0, and no second. */
                                if (dot) {
                                        assert_true(e[-1] != '.' && e[-1] != '0');
                                        assert_null(memchr(dot + 1, '.', (size_t)(e - dot - 1)));
                                }
                        }
                        v = strtod(s, &end);
                        assert_ptr_equal(end, e);
                        assert_true(isfinite(v));
                }
                p = e + 1;
        }
        assert_int_equal(n_families, 13);
        assert_true(n_series > 50);
        for (size_t i = 0; i < n_families; i++)
                free(seen_families[i]);
        for (size_t i = 0; i < n_series; i++)
                free(seen_series[i]);
}

/* Nothing to report: an empty string; a GPU without vGPUs: no header of a vGPU-only family. */
static void test_empty(void **state)
{
        struct metrics_gpu g = gpus[0];
        char *t = metrics_render(NULL, 0);

        (void)state;
        assert_non_null(t);
        assert_string_equal(t, "");
        free(t);
        g.n_vgpus = 0;
        g.vgpus = NULL;
        t = metrics_render(&g, 1);
        assert_non_null(t);
        assert_null(strstr(t, "LICENSE_STATUS"));
        assert_null(strstr(t, "vgpu_sched_slices_total"));
        assert_non_null(strstr(t, "\n# TYPE vgpu_sched_timeslice_seconds gauge\n"));
        free(t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_gpu_lines),       cmocka_unit_test(test_vgpu_lines),
                cmocka_unit_test(test_unknown_omitted), cmocka_unit_test(test_escaping),
                cmocka_unit_test(test_structure),       cmocka_unit_test(test_empty),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
