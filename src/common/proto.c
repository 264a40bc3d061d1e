// SPDX-License-Identifier: Apache-2.0
// The op table generated from calls.def: names, payload sizes and flags, for both sides.
#include <stddef.h>

#include "common/proto.h"

static const struct vgpu_call_info calls[VGPU_OP_COUNT] = {
#define X(NAME, lname, num, req, rep, fl)                                                          \
        [num] = {.name = #NAME,                                                                    \
                 .req_size = sizeof(struct req),                                                   \
                 .rep_size = sizeof(struct rep),                                                   \
                 .flags = (fl)},
#include "common/calls.def"
#undef X
};

const struct vgpu_call_info *vgpu_call_info(uint32_t op)
{
        if (op >= VGPU_OP_COUNT || !calls[op].name)
                return NULL;
        return &calls[op];
}
