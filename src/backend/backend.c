// SPDX-License-Identifier: Apache-2.0
// The table of backends, looked up by name.
#include <string.h>

#include "backend/backend.h"
#include "ptx/ptx.h"

const struct backend_ops *backend_find(const char *name)
{
        static const struct backend_ops *const all[] = {&backend_sim_ops, &backend_cuda_ops};

        for (size_t i = 0; name && i < sizeof(all) / sizeof(all[0]); i++) {
                if (strcmp(all[i]->name, name) == 0)
                        return all[i];
        }
        return NULL;
}

bool backend_is_fault(int r)
{
        switch (r) {
        case PTX_EILLEGAL_ADDRESS:
        case PTX_EMISALIGNED:
        case PTX_ETRAP:
        case PTX_ETIMEOUT:
        case PTX_ESTACK:
        case PTX_EILLEGAL_INSN:
        case PTX_ECANCELED:
                return true;
        default:
                return false;
        }
}
