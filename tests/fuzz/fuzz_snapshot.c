// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the vGPU image reader (engine/snapshot.h): any bytes as an image of a
// 64 MiB vGPU. The reader must refuse or accept, never crash, and write only inside blocks the
// image declared, inside the framebuffer (checked here; ASan watches the rest).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FB_ADDR UINT64_C(0x200000000000)
#define FB_SIZE (UINT64_C(64) << 20)

static int blocks(void *ctx, const struct snap_meta *meta, const struct fbmem_block *b, size_t n)
{
        (void)ctx, (void)meta, (void)b, (void)n;
        return 0;
}

static int write_fn(void *ctx, uint64_t addr, const void *d, uint64_t len)
{
        (void)ctx, (void)d;
        if (addr < FB_ADDR || len > FB_SIZE || addr - FB_ADDR > FB_SIZE - len)
                abort();
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct snap_meta want = {.device_address = FB_ADDR, .fb_size = FB_SIZE};
        struct snap_sink sink = {.blocks = blocks, .write = write_fn};
        char err[256];

        strcpy(want.uuid, "0d3c2a4e-1111-4222-8333-444455556666");
        snap_read_mem(data, size, &want, &sink, NULL, err, sizeof(err));
        snap_read_mem(data, size, NULL, &sink, NULL, err, sizeof(err));
        return 0;
}
