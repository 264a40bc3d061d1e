// SPDX-License-Identifier: Apache-2.0
// vgpu-nvml-probe: what NVML sees on this machine, as the cuda backend will see it: each GPU, its
// MIG devices and its telemetry now, as text or JSON, and optionally the Xid events of a while.
// Exits 0; 1, saying "no NVIDIA driver: <why>", when NVML cannot be loaded; 2 on bad usage.
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/nvml.h"
#include "common/log.h"

#define PROBE_MAX_GPUS 64

static void usage(FILE *f)
{
        fputs("usage: vgpu-nvml-probe [--json] [--xid MS]\n\n"
              "  --json    print JSON instead of text\n"
              "  --xid MS  watch every GPU for Xid events for MS milliseconds and list them\n"
              "NVML is loaded from $VGPU_NVML_LIB, else libnvidia-ml.so.1.\n",
              f);
}

static json_t *mig_json(const struct vgpu_nvml_mig *m)
{
        return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "gi_id", (json_int_t)m->gi_id,
                         "ci_id", (json_int_t)m->ci_id, "profile_slices",
                         (json_int_t)m->profile_slices, "ci_slices", (json_int_t)m->ci_slices,
                         "sm_count", (json_int_t)m->sm_count, "mem_total", (json_int_t)m->mem_total,
                         "uuid", m->uuid);
}

static json_t *sample_json(const struct vgpu_nvml_sample *s)
{
        return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "gpu_util", (json_int_t)s->gpu_util,
                         "mem_util", (json_int_t)s->mem_util, "mem_used", (json_int_t)s->mem_used,
                         "mem_total", (json_int_t)s->mem_total, "temp_c", (json_int_t)s->temp_c,
                         "power_mw", (json_int_t)s->power_mw);
}

/* The GPU as JSON; "sample" is null when its telemetry could not be read. */
static json_t *gpu_json(const struct vgpu_nvml_gpu *g, const struct vgpu_nvml_sample *s)
{
        char pci[8];
        json_t *migs = json_array();

        for (unsigned i = 0; i < g->n_mig; i++)
                json_array_append_new(migs, mig_json(&g->mig[i]));
        snprintf(pci, sizeof(pci), "0x%04x", (unsigned)g->pci_device_id);
        return json_pack("{s:I, s:s, s:s, s:s, s:s, s:I, s:b, s:o, s:o}", "index",
                         (json_int_t)g->index, "name", g->name, "uuid", g->uuid, "pci_device_id",
                         pci, "bus_id", g->bus_id, "mem_total", (json_int_t)g->mem_total,
                         "mig_enabled", g->mig_enabled, "mig_devices", migs, "sample",
                         s ? sample_json(s) : json_null());
}

static void gpu_text(const struct vgpu_nvml_gpu *g, const struct vgpu_nvml_sample *s)
{
        printf("GPU %u: %s\n", g->index, g->name);
        printf("  UUID    %s\n", g->uuid);
        printf("  PCI     %s, device 0x%04x\n", g->bus_id, (unsigned)g->pci_device_id);
        printf("  Memory  %llu MiB\n", (unsigned long long)(g->mem_total >> 20));
        if (s)
                printf("  Now     %u%% busy, memory %u%% busy, %llu/%llu MiB used, %d C, %.1f W\n",
                       s->gpu_util, s->mem_util, (unsigned long long)(s->mem_used >> 20),
                       (unsigned long long)(s->mem_total >> 20), s->temp_c, s->power_mw / 1000.0);
        else
                printf("  Now     unknown (%s)\n", vgpu_nvml_strerror());
        if (g->mig_enabled)
                printf("  MIG     enabled, %u MIG devices\n", g->n_mig);
        else
                printf("  MIG     disabled\n");
        for (unsigned i = 0; i < g->n_mig; i++) {
                const struct vgpu_nvml_mig *m = &g->mig[i];

                printf("    GI %2u CI %u  %u slices  %3u SMs  %6llu MiB  %s\n", m->gi_id, m->ci_id,
                       m->profile_slices, m->sm_count, (unsigned long long)(m->mem_total >> 20),
                       m->uuid);
        }
}

static json_t *xid_json(const struct vgpu_nvml_xid *ev)
{
        return json_pack("{s:I, s:I, s:I, s:I}", "gpu_index", (json_int_t)ev->gpu_index, "gi_id",
                         (json_int_t)ev->gi_id, "ci_id", (json_int_t)ev->ci_id, "xid",
                         (json_int_t)ev->xid);
}

/* Watch every GPU and collect the Xid events of ms milliseconds into events (NULL: print). */
static int watch_xids(const struct vgpu_nvml_gpu *gpus, size_t n, unsigned ms, json_t *events)
{
        unsigned watched = 0;

        for (size_t i = 0; i < n; i++) {
                int r = vgpu_nvml_xid_watch(gpus[i].index);

                if (r < 0)
                        fprintf(stderr, "vgpu-nvml-probe: GPU %u: no Xid events: %s\n",
                                gpus[i].index, vgpu_nvml_strerror());
                else
                        watched++;
        }
        if (watched == 0)
                return 0;
        if (!events)
                printf("Watching %u GPU(s) for Xid events for %u ms\n", watched, ms);
        /* One wait for the whole window: NVML returns early when an event comes. */
        for (;;) {
                struct vgpu_nvml_xid ev;
                int r = vgpu_nvml_xid_wait(ms, &ev);

                if (r == 0)
                        return 0;
                if (r < 0) {
                        fprintf(stderr, "vgpu-nvml-probe: waiting for Xid events: %s\n",
                                vgpu_nvml_strerror());
                        return 1;
                }
                if (events)
                        json_array_append_new(events, xid_json(&ev));
                else
                        printf("Xid %llu on GPU %u (GI %u, CI %u)\n", ev.xid, ev.gpu_index,
                               ev.gi_id, ev.ci_id);
        }
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"json", no_argument, NULL, 'j'},
                {"xid", required_argument, NULL, 'x'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        static struct vgpu_nvml_gpu gpus[PROBE_MAX_GPUS];
        char err[256];
        bool json = false;
        long xid_ms = -1;
        json_t *doc = NULL, *list = NULL, *events = NULL;
        size_t n;
        int c, ret = 0;

        vgpu_log_init("vgpu-nvml-probe");
        while ((c = getopt_long(argc, argv, "jx:h", opts, NULL)) != -1) {
                char *end;

                switch (c) {
                case 'j':
                        json = true;
                        break;
                case 'x':
                        xid_ms = strtol(optarg, &end, 10);
                        if (*optarg == '\0' || *end != '\0' || xid_ms < 0 || xid_ms > 3600000) {
                                fprintf(stderr, "vgpu-nvml-probe: --xid takes 0 to 3600000 ms\n");
                                return 2;
                        }
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                usage(stderr);
                return 2;
        }

        if (vgpu_nvml_open(err, sizeof(err)) < 0) {
                fprintf(stderr, "no NVIDIA driver: %s\n", err);
                return 1;
        }
        if (vgpu_nvml_gpus(gpus, PROBE_MAX_GPUS, &n) < 0) {
                fprintf(stderr, "vgpu-nvml-probe: listing GPUs: %s\n", vgpu_nvml_strerror());
                vgpu_nvml_close();
                return 1;
        }
        if (json) {
                doc = json_object();
                list = json_array();
                json_object_set_new(doc, "gpus", list);
        } else if (n == 0) {
                printf("NVML sees no GPU\n");
        }
        for (size_t i = 0; i < n; i++) {
                struct vgpu_nvml_sample s;
                bool have = vgpu_nvml_sample(gpus[i].index, &s) == 0;

                if (json)
                        json_array_append_new(list, gpu_json(&gpus[i], have ? &s : NULL));
                else
                        gpu_text(&gpus[i], have ? &s : NULL);
        }
        if (xid_ms >= 0) {
                if (json) {
                        events = json_array();
                        json_object_set_new(doc, "xid_events", events);
                }
                ret = watch_xids(gpus, n, (unsigned)xid_ms, events);
        }
        if (json) {
                json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                putchar('\n');
                json_decref(doc);
        }
        vgpu_nvml_close();
        return ret;
}
