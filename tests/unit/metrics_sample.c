// SPDX-License-Identifier: Apache-2.0
// Prints metrics_render of fixed sample data on stdout, for tests/integration/metrics_promtool.sh
// to hand to promtool: two GPUs (one with every figure unknown), vGPUs in several states, label
// text with quotes, backslashes, newlines and bytes that are not UTF-8.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "manager/metrics.h"

int main(void)
{
        static const struct metrics_vgpu vgpus0[] = {
                {.uuid = "9c2a1f4e-3b7d-4c1a-8e5f-0a1b2c3d4e5f",
                 .type = "H100-20C",
                 .id = 1,
                 .fb_total = 20ull << 30,
                 .fb_used = 5ull << 30,
                 .util_pct = 37.5,
                 .license_status = 1,
                 .sched_slices = 123456,
                 .sched_overruns = 7,
                 .sched_charged_ns = 61234567891ull,
                 .state = "running"},
                {.uuid = "5e0d7c6b-1a2f-4b3c-9d8e-7f6a5b4c3d2e",
                 .type = "H100-20C",
                 .id = 2,
                 .fb_total = 20ull << 30,
                 .fb_used = UINT64_MAX,
                 .util_pct = -1,
                 .xid_errors = 3,
                 .license_status = 0,
                 .state = "faulted"},
                {.uuid = "q\"uo\\te\nnew\xff\xc0line",
                 .type = "H100-40C\"\\",
                 .id = 3,
                 .fb_total = 40ull << 30,
                 .fb_used = 0,
                 .util_pct = 100,
                 .license_status = -1,
                 .state = "state with \"quotes\"\n"},
        };
        static const struct metrics_vgpu vgpus1[] = {
                {.uuid = "0f1e2d3c-4b5a-4968-8776-655443322110",
                 .type = "A100-10C",
                 .id = 1,
                 .fb_total = 10ull << 30,
                 .fb_used = 1ull << 30,
                 .util_pct = 0.001,
                 .license_status = -1,
                 .sched_slices = UINT64_MAX,
                 .sched_charged_ns = 1},
        };
        static const struct metrics_gpu gpus[] = {
                {.index = 0,
                 .uuid = "GPU-604ac76c-d9cf-fef3-62e9-d92044ab6e52",
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
                 .n_vgpus = sizeof(vgpus0) / sizeof(vgpus0[0]),
                 .vgpus = vgpus0},
                {.index = 1,
                 .uuid = "GPU-\\\"\n",
                 .model_name = "Model \"X\"\\\n\x80",
                 .pci_bus_id = "00000000:5E:00.0",
                 .hostname_or_null = "node-1",
                 .fb_total = 40ull << 30,
                 .fb_used = UINT64_MAX,
                 .util_pct = -1,
                 .temp_c = -1,
                 .power_mw = 0,
                 .sched_policy = "fixed\"share",
                 .sched_slice_ms = 0,
                 .n_vgpus = sizeof(vgpus1) / sizeof(vgpus1[0]),
                 .vgpus = vgpus1},
        };
        char *text = metrics_render(gpus, sizeof(gpus) / sizeof(gpus[0]));

        if (!text) {
                fprintf(stderr, "metrics_sample: out of memory\n");
                return 1;
        }
        fputs(text, stdout);
        free(text);
        return fflush(stdout) == 0 ? 0 : 1;
}
