// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the PTX parser and executor: any text either fails to load with an error
// or loads; every kernel of a loaded module then runs on a small grid with a small work budget
// against a small framebuffer. Nothing may crash, leak or hang.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ptx/ptx.h"

#define FB_BASE 0x10000ull
#define FB_SIZE 65536u

static uint8_t fb[FB_SIZE];

static int fb_map(void *ctx, uint64_t addr, uint64_t len, struct ptx_mem_region *ret)
{
        (void)ctx;
        if (addr < FB_BASE || addr - FB_BASE > FB_SIZE || FB_SIZE - (addr - FB_BASE) < len)
                return -1;
        ret->base = FB_BASE;
        ret->size = FB_SIZE;
        ret->host = fb;
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct ptx_module *mod = NULL;
        char err[PTX_ERRMSG_SIZE];

        if (ptx_module_load(data, size, &mod, err, sizeof(err)) != 0)
                return 0;
        for (unsigned i = 0; i < ptx_module_kernel_count(mod) && i < 4; i++) {
                const struct ptx_kernel *k = ptx_module_kernel_at(mod, i);
                size_t psize = ptx_kernel_param_size(k);
                if (psize > 4096)
                        continue;
                /* every parameter points into the framebuffer */
                uint64_t *params = calloc(1, psize + 8);
                if (!params)
                        break;
                for (size_t w = 0; w < psize / 8; w++)
                        params[w] = FB_BASE + 256 * w;
                struct ptx_launch l = {.kernel = k,
                                       .grid = {2, 1, 1},
                                       .block = {40, 1, 1},
                                       .dynamic_shared = 256,
                                       .params = params,
                                       .params_size = psize + 8,
                                       .mem = fb_map,
                                       .work_budget = 20000};
                struct ptx_launch_stats st;
                (void)ptx_launch(&l, &st);
                free(params);
        }
        ptx_module_free(mod);
        return 0;
}
