// SPDX-License-Identifier: Apache-2.0
// The one table behind vgpu_strerror: VGPU_E* codes from errors.h, then the errno values.
#include <errno.h>
#include <string.h>

#include "vgpu/errors.h"
#include "common/export.h"

VGPU_EXPORT const char *vgpu_strerror(int err)
{
        switch (err) {
        case 0:
                return "success";
#define VGPU_ERROR_MSG(name, num, msg)                                                             \
        case name:                                                                                 \
                return msg;
                VGPU_ERROR_LIST(VGPU_ERROR_MSG)
#undef VGPU_ERROR_MSG
        default:
                break;
        }
        if (err < 0 && err > -1000)
                return strerrordesc_np(-err) ? strerrordesc_np(-err) : "unknown error";
        return "unknown error";
}

VGPU_EXPORT const char *vgpu_error_name(int err)
{
        switch (err) {
        case 0:
                return "OK";
#define VGPU_ERROR_NAME(name, num, msg)                                                            \
        case name:                                                                                 \
                return #name;
                VGPU_ERROR_LIST(VGPU_ERROR_NAME)
#undef VGPU_ERROR_NAME
        default:
                break;
        }
        if (err < 0 && err > -1000 && strerrorname_np(-err))
                return strerrorname_np(-err);
        return "EUNKNOWN";
}
