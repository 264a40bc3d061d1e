// SPDX-License-Identifier: Apache-2.0
// Storage of a function being decoded: its symbol table (registers, parameters, labels), register
// frame allocation, the constant pool of splatted immediates, the instruction array, and the
// static .shared variables it uses.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptx/parse.h"

int fctx_error(struct fctx *f, int code, const char *fmt, ...)
{
        if (f->err && f->errlen) {
                int n = snprintf(f->err, f->errlen, "line %u: ", (unsigned)f->line);
                if (n >= 0 && (size_t)n < f->errlen) {
                        va_list ap;
                        va_start(ap, fmt);
                        vsnprintf(f->err + n, f->errlen - (size_t)n, fmt, ap);
                        va_end(ap);
                }
        }
        return code;
}

static uint32_t hash_str(const char *s)
{
        uint32_t h = 2166136261u;
        while (*s)
                h = (h ^ (uint8_t)*s++) * 16777619u;
        return h;
}

struct sym *sym_find(struct symtab *t, const char *name)
{
        if (!t->cap)
                return NULL;
        for (uint32_t i = hash_str(name) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
                if (!t->v[i].name)
                        return NULL;
                if (strcmp(t->v[i].name, name) == 0)
                        return &t->v[i];
        }
}

int sym_add(struct symtab *t, const char *name, struct sym **ret)
{
        struct sym *s = sym_find(t, name);
        if (s) {
                *ret = s;
                return 0;
        }
        if ((t->n + 1) * 2 > t->cap) {
                unsigned ncap = t->cap ? t->cap * 2 : 64;
                struct sym *nv = calloc(ncap, sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                for (unsigned i = 0; i < t->cap; i++) {
                        if (!t->v[i].name)
                                continue;
                        uint32_t j = hash_str(t->v[i].name) & (ncap - 1);
                        while (nv[j].name)
                                j = (j + 1) & (ncap - 1);
                        nv[j] = t->v[i];
                }
                free(t->v);
                t->v = nv;
                t->cap = ncap;
        }
        uint32_t i = hash_str(name) & (t->cap - 1);
        while (t->v[i].name)
                i = (i + 1) & (t->cap - 1);
        t->v[i].name = strdup(name);
        if (!t->v[i].name)
                return -ENOMEM;
        t->n++;
        *ret = &t->v[i];
        return 0;
}

void sym_free(struct symtab *t)
{
        for (unsigned i = 0; i < t->cap; i++)
                free(t->v[i].name);
        free(t->v);
        t->v = NULL;
        t->n = t->cap = 0;
}

/* Frames are limited so that a hostile module cannot make a launch allocate without bound. */
#define FRAME_LIMIT (1u << 20)

uint32_t fn_reg_alloc(struct ptx_func *fn, unsigned type)
{
        uint32_t w = type == T_PRED ? 4 : type_size(type);
        uint32_t bytes = w * WARP;
        uint32_t off = fn->frame_bytes;

        if (type != T_PRED)
                off = (off + 63u) & ~63u;
        if (off + bytes > FRAME_LIMIT)
                return OPND_NONE;
        fn->frame_bytes = off + bytes;
        return off;
}

uint32_t fn_const(struct ptx_func *fn, unsigned type, uint64_t bits)
{
        uint32_t w = type == T_PRED ? 4 : type_size(type);
        if (type == T_PRED)
                bits = bits ? 0xffffffffu : 0;

        /* Reuse an equal constant: pools are small, and decode runs once. */
        for (uint32_t off = 0; off < fn->consts_bytes; off += 256) {
                if (fn->consts[off + 255] == w && memcmp(fn->consts + off, &bits, w) == 0)
                        return OPND_CONST | off;
        }
        if (fn->consts_bytes + 256 > FRAME_LIMIT)
                return OPND_NONE;
        if (fn->consts_bytes + 256 > fn->consts_cap) {
                uint32_t ncap = fn->consts_cap ? fn->consts_cap * 2 : 4096;
                uint8_t *nc = aligned_alloc(64, ncap);
                if (!nc)
                        return OPND_NONE;
                if (fn->consts)
                        memcpy(nc, fn->consts, fn->consts_bytes);
                free(fn->consts);
                fn->consts = nc;
                fn->consts_cap = ncap;
        }
        /* Each constant takes a 256-byte slot: 32 lanes of up to 8 bytes; byte 255 of a slot
         * narrower than 8 bytes records the width (a 64-bit slot's last lane is never compared
         * with it because w == 8 compares only the first 8 bytes). */
        uint8_t *slot = fn->consts + fn->consts_bytes;
        memset(slot, 0, 256);
        for (unsigned i = 0; i < WARP; i++)
                memcpy(slot + i * w, &bits, w);
        if (w < 8)
                slot[255] = (uint8_t)w;
        uint32_t off = fn->consts_bytes;
        fn->consts_bytes += 256;
        return OPND_CONST | off;
}

struct ptx_insn *fn_emit(struct ptx_func *fn)
{
        if (fn->ninsns == fn->cap_insns) {
                unsigned ncap = fn->cap_insns ? fn->cap_insns * 2 : 64;
                if (ncap > (1u << 24))
                        return NULL;
                struct ptx_insn *ni = realloc(fn->insns, ncap * sizeof(*ni));
                if (!ni)
                        return NULL;
                fn->insns = ni;
                fn->cap_insns = ncap;
        }
        struct ptx_insn *in = &fn->insns[fn->ninsns++];
        memset(in, 0, sizeof(*in));
        in->guard = OPND_NONE;
        for (int i = 0; i < 5; i++)
                in->o[i] = OPND_NONE;
        return in;
}

int fctx_use_var(struct fctx *f, uint32_t var)
{
        struct ptx_var *v = &f->mod->vars[var];
        struct ptx_func *fn = f->fn;
        if (v->space != SP_SHARED || v->is_extern || v->user == f->fn_index + 1)
                return 0;
        if (fn->nshared_vars == fn->cap_shared_vars) {
                unsigned ncap = fn->cap_shared_vars ? fn->cap_shared_vars * 2 : 8;
                uint32_t *nv = realloc(fn->shared_vars, ncap * sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                fn->shared_vars = nv;
                fn->cap_shared_vars = ncap;
        }
        fn->shared_vars[fn->nshared_vars++] = var;
        v->user = f->fn_index + 1;
        return 0;
}
