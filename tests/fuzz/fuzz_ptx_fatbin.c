// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the fatbin reader: any image, wrapped or not, compressed entries or not,
// yields PTX text or an error, with every read inside the image.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ptx/ptx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char *text = NULL;
        size_t len = 0;
        struct ptx_module *mod = NULL;

        /* a private copy, so that reads past the end are caught exactly */
        uint8_t *img = malloc(size ? size : 1);
        if (!img)
                return 0;
        memcpy(img, data, size);
        if (ptx_fatbin_find_ptx(img, size, &text, &len) == 0) {
                if (strlen(text) != len)
                        abort();
                free(text);
        }
        if (ptx_module_load(img, size, &mod, NULL, 0) == 0)
                ptx_module_free(mod);
        free(img);
        return 0;
}
