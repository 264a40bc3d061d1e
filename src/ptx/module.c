// SPDX-License-Identifier: Apache-2.0
// Modules: recognises the image format, hands PTX text to the parser, and answers questions about
// the result (kernels, parameter layout, module variables and where they live).
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/export.h"
#include "ptx/internal.h"
#include "vgpu/errors.h"

VGPU_EXPORT const char *ptx_strerror(int err)
{
        switch (err) {
#define PTX_ERROR_MSG(name, num, msg)                                                              \
        case name:                                                                                 \
                return msg;
                PTX_ERROR_LIST(PTX_ERROR_MSG)
#undef PTX_ERROR_MSG
        default:
                return vgpu_strerror(err);
        }
}

static void set_err(char *errmsg, size_t len, int code, const char *detail)
{
        if (!errmsg || !len)
                return;
        if (detail && detail[0])
                snprintf(errmsg, len, "%s", detail);
        else
                snprintf(errmsg, len, "%s", ptx_strerror(code));
}

static uint32_t rd32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

VGPU_EXPORT int ptx_module_load(const void *image, size_t size, struct ptx_module **ret_mod,
                                char *errmsg, size_t errmsg_len)
{
        const uint8_t *p = image;
        char *text = NULL;
        size_t len = 0;
        char detail[PTX_ERRMSG_SIZE] = "";
        int r;

        if (!image || !ret_mod || !size) {
                set_err(errmsg, errmsg_len, -EINVAL, "no image");
                return -EINVAL;
        }
        if (size >= 4 && (rd32(p) == 0xba55ed50u || rd32(p) == 0x466243b1u)) {
                r = ptx_fatbin_find_ptx(image, size, &text, &len);
                if (r) {
                        set_err(errmsg, errmsg_len, r, NULL);
                        return r;
                }
        } else if (size >= 4 && memcmp(p,
                                       "\x7f"
                                       "ELF",
                                       4) == 0) {
                /* a cubin carries machine code only */
                set_err(errmsg, errmsg_len, PTX_ENOPTX, NULL);
                return PTX_ENOPTX;
        } else {
                const uint8_t *nul = memchr(p, 0, size);
                len = nul ? (size_t)(nul - p) : size;
                text = malloc(len + 1);
                if (!text) {
                        set_err(errmsg, errmsg_len, -ENOMEM, NULL);
                        return -ENOMEM;
                }
                memcpy(text, p, len);
                text[len] = 0;
        }

        struct ptx_module *mod = calloc(1, sizeof(*mod));
        if (!mod) {
                r = -ENOMEM;
                goto err_text;
        }
        r = ptx_parse(mod, text, len, detail, sizeof(detail));
        if (r)
                goto err_mod;
        if (mod->globals_size) {
                mod->globals = malloc(mod->globals_size);
                if (!mod->globals) {
                        r = -ENOMEM;
                        goto err_mod;
                }
                memcpy(mod->globals, mod->globals_image, mod->globals_size);
        }
        mod->globals_base = PTX_GLOBALS_DEFAULT_BASE;
        free(text);
        *ret_mod = mod;
        return 0;

err_mod:
        ptx_module_clear(mod);
        free(mod);
err_text:
        free(text);
        set_err(errmsg, errmsg_len, r, detail);
        return r;
}

VGPU_EXPORT void ptx_module_free(struct ptx_module *mod)
{
        if (!mod)
                return;
        ptx_module_clear(mod);
        free(mod);
}

VGPU_EXPORT unsigned ptx_module_kernel_count(const struct ptx_module *mod)
{
        return mod->nkernels;
}

VGPU_EXPORT const struct ptx_kernel *ptx_module_kernel_at(const struct ptx_module *mod,
                                                          unsigned index)
{
        return index < mod->nkernels ? &mod->kernels[index] : NULL;
}

VGPU_EXPORT int ptx_module_get_kernel(const struct ptx_module *mod, const char *name,
                                      const struct ptx_kernel **ret_kernel)
{
        for (unsigned i = 0; i < mod->nkernels; i++) {
                if (strcmp(mod->funcs[mod->kernels[i].func].name, name) == 0) {
                        *ret_kernel = &mod->kernels[i];
                        return 0;
                }
        }
        return PTX_ENOTFOUND;
}

static const struct ptx_func *kfunc(const struct ptx_kernel *k)
{
        return &k->mod->funcs[k->func];
}

VGPU_EXPORT const char *ptx_kernel_name(const struct ptx_kernel *k)
{
        return kfunc(k)->name;
}

VGPU_EXPORT unsigned ptx_kernel_param_count(const struct ptx_kernel *k)
{
        return kfunc(k)->nparams;
}

VGPU_EXPORT int ptx_kernel_param_info(const struct ptx_kernel *k, unsigned index,
                                      size_t *ret_offset, size_t *ret_size)
{
        const struct ptx_func *fn = kfunc(k);
        if (index >= fn->nparams)
                return -EINVAL;
        if (ret_offset)
                *ret_offset = fn->params[index].offset;
        if (ret_size)
                *ret_size = fn->params[index].size;
        return 0;
}

VGPU_EXPORT size_t ptx_kernel_param_size(const struct ptx_kernel *k)
{
        return kfunc(k)->kparam_bytes;
}

VGPU_EXPORT size_t ptx_kernel_static_shared(const struct ptx_kernel *k)
{
        return kfunc(k)->static_shared;
}

VGPU_EXPORT int ptx_kernel_get_attrs(const struct ptx_kernel *k, struct ptx_kernel_attrs *ret_attrs)
{
        const struct ptx_func *fn = kfunc(k);
        const struct ptx_module *m = k->mod;
        struct ptx_kernel_attrs a = {
                .max_threads = 1024,
                .static_shared = fn->static_shared,
                .local_bytes = fn->local_bytes,
                .param_bytes = fn->kparam_bytes,
                .num_regs = fn->nregs,
                .ptx_version = m->version_major * 10 + m->version_minor,
                .sm = m->sm,
        };
        if (fn->maxntid && fn->maxntid < a.max_threads)
                a.max_threads = fn->maxntid;
        if (fn->reqntid[0]) {
                uint32_t req = fn->reqntid[0] * fn->reqntid[1] * fn->reqntid[2];
                if (req < a.max_threads)
                        a.max_threads = req;
        }
        *ret_attrs = a;
        return 0;
}

VGPU_EXPORT int ptx_module_global(const struct ptx_module *mod, const char *name,
                                  uint64_t *ret_addr, size_t *ret_size, void **ret_host)
{
        for (unsigned i = 0; i < mod->nvars; i++) {
                const struct ptx_var *v = &mod->vars[i];
                if (v->space == SP_SHARED || strcmp(v->name, name) != 0)
                        continue;
                if (ret_addr)
                        *ret_addr = mod->globals_base + v->offset;
                if (ret_size)
                        *ret_size = v->size;
                if (ret_host)
                        *ret_host = mod->globals ? mod->globals + v->offset : NULL;
                return 0;
        }
        return PTX_ENOTFOUND;
}

VGPU_EXPORT size_t ptx_module_globals_size(const struct ptx_module *mod)
{
        return mod->globals_size;
}

VGPU_EXPORT const void *ptx_module_globals_image(const struct ptx_module *mod)
{
        return mod->globals_image;
}

VGPU_EXPORT int ptx_module_bind_globals(struct ptx_module *mod, uint64_t base)
{
        if (base & 255)
                return -EINVAL;
        free(mod->globals);
        mod->globals = NULL;
        mod->globals_base = base;
        return 0;
}
