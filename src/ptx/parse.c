// SPDX-License-Identifier: Apache-2.0
// The PTX text parser: a tokenizer, the module-level directives (.version, .target, variables with
// initialisers, .entry/.func headers) and function bodies (declarations, labels, statements).
// Each statement goes to decode.c; labels and calls are resolved once their targets are known.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptx/lex.h"
#include "ptx/parse.h"

/* ---- parser state ---- */

struct parser {
        struct lexer lx;
        struct ptx_module *mod;
        struct symtab vars; /* module variables and functions: off = index, kind unused */
        struct symtab funcs;
        char *err;
        size_t errlen;
        /* unresolved calls: (call index, callee name) */
        char **call_names;
        uint32_t *call_lines;
};

static int perr(struct parser *ps, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int perr(struct parser *ps, int code, const char *fmt, ...)
{
        if (ps->err && ps->errlen) {
                int n = snprintf(ps->err, ps->errlen, "line %u: ", (unsigned)ps->lx.line);
                if (n >= 0 && (size_t)n < ps->errlen) {
                        va_list ap;
                        va_start(ap, fmt);
                        vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
                        va_end(ap);
                }
        }
        return code;
}

static int expect(struct parser *ps, const char *s)
{
        if (!tok_is(&ps->lx, s))
                return perr(ps, PTX_EPARSE, "expected '%s', found '%s'", s, ps->lx.tok);
        lex_next(&ps->lx);
        return 0;
}

static int parse_type_word(const char *w)
{
        static const struct {
                const char *name;
                int t;
        } types[] = {
                {".pred", T_PRED}, {".b8", T_B8},       {".b16", T_B16},       {".b32", T_B32},
                {".b64", T_B64},   {".u8", T_U8},       {".u16", T_U16},       {".u32", T_U32},
                {".u64", T_U64},   {".s8", T_S8},       {".s16", T_S16},       {".s32", T_S32},
                {".s64", T_S64},   {".f16", T_F16},     {".bf16", T_BF16},     {".f32", T_F32},
                {".f64", T_F64},   {".f16x2", T_F16X2}, {".bf16x2", T_BF16X2}, {".b128", T_B128},
        };
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
                if (strcmp(w, types[i].name) == 0)
                        return types[i].t;
        }
        return -1;
}

static int parse_uint(const char *s, uint64_t *ret)
{
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 0);
        if (errno || end == s || *end)
                return -1;
        *ret = v;
        return 0;
}

/* Skip a balanced { ... } block (debug sections). */
static void skip_block(struct parser *ps)
{
        int depth = 0;
        while (ps->lx.kind != TK_EOF) {
                if (tok_is(&ps->lx, "{"))
                        depth++;
                else if (tok_is(&ps->lx, "}") && --depth <= 0) {
                        lex_next(&ps->lx);
                        return;
                }
                lex_next(&ps->lx);
        }
}

static void skip_statement(struct parser *ps)
{
        while (ps->lx.kind != TK_EOF && !tok_is(&ps->lx, ";"))
                lex_next(&ps->lx);
        if (tok_is(&ps->lx, ";"))
                lex_next(&ps->lx);
}

/* Declaration attributes: [.align N] [.ptr] [.space] .type name [N] */
struct decl {
        uint32_t align;
        int type;
        char name[NAME_MAX_LEN];
        bool is_array;
        bool unsized;
        uint64_t count;
        uint32_t range; /* name<N> */
};

static int parse_decl(struct parser *ps, struct decl *d)
{
        memset(d, 0, sizeof(*d));
        d->type = -1;
        for (;;) {
                if (tok_is(&ps->lx, ".align")) {
                        uint64_t a;
                        lex_next(&ps->lx);
                        if (ps->lx.kind != TK_WORD || parse_uint(ps->lx.tok, &a) || !a ||
                            (a & (a - 1)) || a > 4096)
                                return perr(ps, PTX_EPARSE, "bad .align '%s'", ps->lx.tok);
                        d->align = (uint32_t)a;
                        lex_next(&ps->lx);
                } else if (tok_is(&ps->lx, ".ptr")) {
                        /* .ptr [.space] [.align N]: attributes of the pointee, not the param */
                        lex_next(&ps->lx);
                        if (tok_is(&ps->lx, ".global") || tok_is(&ps->lx, ".shared") ||
                            tok_is(&ps->lx, ".const") || tok_is(&ps->lx, ".local"))
                                lex_next(&ps->lx);
                        if (tok_is(&ps->lx, ".align")) {
                                lex_next(&ps->lx);
                                lex_next(&ps->lx);
                        }
                } else if (tok_is(&ps->lx, ".global") || tok_is(&ps->lx, ".shared") ||
                           tok_is(&ps->lx, ".const") || tok_is(&ps->lx, ".local") ||
                           tok_is(&ps->lx, ".v2") || tok_is(&ps->lx, ".v4")) {
                        if (tok_is(&ps->lx, ".v2") || tok_is(&ps->lx, ".v4"))
                                return perr(ps, PTX_EUNSUPPORTED, "vector declarations");
                        lex_next(&ps->lx);
                } else if (ps->lx.kind == TK_WORD && parse_type_word(ps->lx.tok) >= 0) {
                        d->type = parse_type_word(ps->lx.tok);
                        lex_next(&ps->lx);
                } else {
                        break;
                }
        }
        if (d->type < 0)
                return perr(ps, PTX_EPARSE, "declaration without a type at '%s'", ps->lx.tok);
        if (ps->lx.kind != TK_WORD || ps->lx.overflow)
                return perr(ps, PTX_EPARSE, "expected a name, found '%s'", ps->lx.tok);
        snprintf(d->name, sizeof(d->name), "%s", ps->lx.tok);
        lex_next(&ps->lx);
        if (tok_is(&ps->lx, "<")) {
                uint64_t n;
                lex_next(&ps->lx);
                if (ps->lx.kind != TK_WORD || parse_uint(ps->lx.tok, &n) || n == 0 || n > 65536)
                        return perr(ps, PTX_EPARSE, "bad register range '%s'", ps->lx.tok);
                d->range = (uint32_t)n;
                lex_next(&ps->lx);
                if (expect(ps, ">"))
                        return PTX_EPARSE;
        }
        while (tok_is(&ps->lx, "[")) {
                lex_next(&ps->lx);
                uint64_t n = 1;
                if (tok_is(&ps->lx, "]")) {
                        d->unsized = true;
                        n = 0;
                } else {
                        if (ps->lx.kind != TK_WORD || parse_uint(ps->lx.tok, &n) ||
                            n > (1ull << 32))
                                return perr(ps, PTX_EPARSE, "bad array size '%s'", ps->lx.tok);
                        lex_next(&ps->lx);
                }
                if (expect(ps, "]"))
                        return PTX_EPARSE;
                d->count = d->is_array ? d->count * n : n;
                d->is_array = true;
                if (d->count > (1ull << 32))
                        return perr(ps, PTX_EPARSE, "array too large");
        }
        if (!d->is_array)
                d->count = 1;
        if (!d->align)
                d->align = type_size((unsigned)d->type) ? type_size((unsigned)d->type) : 1;
        return 0;
}

/* ---- module variables ---- */

static int parse_init_value(struct parser *ps, int type, uint8_t *dst)
{
        bool neg = false;
        uint64_t v = 0;
        unsigned w = type_size((unsigned)type);

        if (tok_is(&ps->lx, "-")) {
                neg = true;
                lex_next(&ps->lx);
        }
        if (ps->lx.kind != TK_WORD)
                return perr(ps, PTX_EPARSE, "bad initialiser '%s'", ps->lx.tok);
        const char *t = ps->lx.tok;
        if ((t[0] == '0' && (t[1] == 'f' || t[1] == 'F' || t[1] == 'd' || t[1] == 'D')) && t[2]) {
                char buf[40];
                snprintf(buf, sizeof(buf), "0x%s", t + 2);
                if (parse_uint(buf, &v))
                        return perr(ps, PTX_EPARSE, "bad float literal '%s'", t);
                if (neg)
                        v ^= (t[1] == 'f' || t[1] == 'F') ? 0x80000000u : 0x8000000000000000ull;
        } else if (type_is_float((unsigned)type) && (strchr(t, '.') || strchr(t, 'e'))) {
                double dv = strtod(t, NULL);
                if (neg)
                        dv = -dv;
                if (type == T_F32) {
                        float fv = (float)dv;
                        uint32_t b;
                        memcpy(&b, &fv, 4);
                        v = b;
                } else {
                        memcpy(&v, &dv, 8);
                }
        } else if (!(t[0] >= '0' && t[0] <= '9')) {
                /* a function's name: its address (function pointer tables) */
                struct sym *fs = sym_find(&ps->funcs, t);
                if (!fs || neg || w != 8)
                        return perr(ps, PTX_EUNSUPPORTED,
                                    "initialiser '%s' (numbers and functions only)", t);
                v = PTX_FUNC_BASE + 16ull * fs->off;
        } else {
                if (parse_uint(t, &v))
                        return perr(ps, PTX_EUNSUPPORTED, "initialiser '%s' (only numbers)", t);
                if (type == T_F32) {
                        float fv = (float)(neg ? -(double)v : (double)v);
                        uint32_t b;
                        memcpy(&b, &fv, 4);
                        v = b;
                } else if (type == T_F64) {
                        double dv = neg ? -(double)v : (double)v;
                        memcpy(&v, &dv, 8);
                } else if (neg) {
                        v = (uint64_t)(-(int64_t)v);
                }
        }
        memcpy(dst, &v, w);
        lex_next(&ps->lx);
        return 0;
}

static int parse_module_var(struct parser *ps, int space, bool is_extern)
{
        struct ptx_module *m = ps->mod;
        struct decl d;
        int r = parse_decl(ps, &d);
        if (r)
                return r;
        if (d.type == T_PRED || d.range)
                return perr(ps, PTX_EPARSE, "bad variable declaration '%s'", d.name);
        struct sym *s;
        if (sym_find(&ps->vars, d.name)) {
                /* a second .extern declaration of the same variable is harmless */
                skip_statement(ps);
                return 0;
        }
        struct ptx_var *nv = realloc(m->vars, (m->nvars + 1) * sizeof(*nv));
        if (!nv)
                return -ENOMEM;
        m->vars = nv;
        struct ptx_var *v = &m->vars[m->nvars];
        memset(v, 0, sizeof(*v));
        v->name = strdup(d.name);
        if (!v->name)
                return -ENOMEM;
        m->nvars++;
        if (sym_add(&ps->vars, d.name, &s))
                return -ENOMEM;
        s->off = m->nvars - 1;
        v->space = (uint8_t)space;
        v->align = d.align;
        v->size = (uint64_t)type_size((unsigned)d.type) * d.count;
        if (space == SP_SHARED) {
                if (d.unsized || is_extern) {
                        v->is_extern = true;
                        v->size = 0;
                } else {
                        m->shared_bytes =
                                (m->shared_bytes + d.align - 1) & ~(uint64_t)(d.align - 1);
                        v->offset = m->shared_bytes;
                        m->shared_bytes += v->size;
                        if (m->shared_bytes > (1u << 24))
                                return perr(ps, PTX_EUNSUPPORTED, "too much shared memory");
                }
                return expect(ps, ";");
        }
        if (space == SP_LOCAL)
                return perr(ps, PTX_EUNSUPPORTED, "module-scope .local variables");
        if (d.unsized && !tok_is(&ps->lx, "="))
                return perr(ps, PTX_EPARSE, "unsized variable '%s'", d.name);
        /* .global and .const share one area, at the variables' alignments */
        uint64_t off = (m->globals_size + d.align - 1) & ~(uint64_t)(d.align - 1);
        if (off + v->size > (64u << 20))
                return perr(ps, PTX_EUNSUPPORTED, "module variables larger than 64 MiB");
        v->offset = off;
        uint64_t nsize = off + v->size;
        if (tok_is(&ps->lx, "=")) {
                lex_next(&ps->lx);
                unsigned w = type_size((unsigned)d.type);
                uint64_t cap = d.unsized ? 0 : d.count;
                uint64_t n = 0;
                bool brace = tok_is(&ps->lx, "{");
                if (brace)
                        lex_next(&ps->lx);
                for (;;) {
                        if (tok_is(&ps->lx, "{"))
                                return perr(ps, PTX_EUNSUPPORTED, "nested initialisers");
                        if (d.unsized) {
                                cap = n + 1;
                                v->size = cap * w;
                                nsize = off + v->size;
                        }
                        if (n >= cap)
                                return perr(ps, PTX_EPARSE, "too many initialisers");
                        if (nsize > m->globals_size) {
                                uint8_t *ni = realloc(m->globals_image, nsize);
                                if (!ni)
                                        return -ENOMEM;
                                memset(ni + m->globals_size, 0, nsize - m->globals_size);
                                m->globals_image = ni;
                                m->globals_size = nsize;
                        }
                        r = parse_init_value(ps, d.type, m->globals_image + off + n * w);
                        if (r)
                                return r;
                        n++;
                        if (!brace || !tok_is(&ps->lx, ","))
                                break;
                        lex_next(&ps->lx);
                }
                if (brace && expect(ps, "}"))
                        return PTX_EPARSE;
        }
        if (nsize > m->globals_size) {
                uint8_t *ni = realloc(m->globals_image, nsize ? nsize : 1);
                if (!ni)
                        return -ENOMEM;
                memset(ni + m->globals_size, 0, nsize - m->globals_size);
                m->globals_image = ni;
                m->globals_size = nsize;
        }
        return expect(ps, ";");
}

/* ---- functions ---- */

static int add_param(struct ptx_param **arr, unsigned *n, const struct decl *d, uint32_t *cursor)
{
        struct ptx_param *np = realloc(*arr, (*n + 1) * sizeof(*np));
        if (!np)
                return -ENOMEM;
        *arr = np;
        struct ptx_param *p = &np[*n];
        uint32_t size = (uint32_t)(type_size((unsigned)d->type) * d->count);
        uint32_t align = d->align ? d->align : 1;
        if (size > 4096 || d->unsized)
                return PTX_EUNSUPPORTED;
        *cursor = (*cursor + align - 1) & ~(align - 1);
        p->name = strdup(d->name);
        if (!p->name)
                return -ENOMEM;
        p->offset = *cursor;
        p->size = size;
        p->align = align;
        *cursor += size;
        (*n)++;
        return 0;
}

static int parse_param_list(struct parser *ps, struct ptx_param **arr, unsigned *n,
                            uint32_t *cursor)
{
        if (expect(ps, "("))
                return PTX_EPARSE;
        while (!tok_is(&ps->lx, ")")) {
                if (!tok_is(&ps->lx, ".param") && !tok_is(&ps->lx, ".reg"))
                        return perr(ps, PTX_EPARSE, "expected .param, found '%s'", ps->lx.tok);
                if (tok_is(&ps->lx, ".reg"))
                        return perr(ps, PTX_EUNSUPPORTED, ".reg parameters");
                lex_next(&ps->lx);
                struct decl d;
                int r = parse_decl(ps, &d);
                if (r)
                        return r;
                r = add_param(arr, n, &d, cursor);
                if (r)
                        return r == PTX_EUNSUPPORTED ? perr(ps, r, "parameter '%s'", d.name) : r;
                if (tok_is(&ps->lx, ","))
                        lex_next(&ps->lx);
                else if (!tok_is(&ps->lx, ")"))
                        return perr(ps, PTX_EPARSE, "expected ',' or ')', found '%s'", ps->lx.tok);
        }
        lex_next(&ps->lx);
        return 0;
}

static int get_func(struct parser *ps, const char *name, unsigned *ret_index)
{
        struct ptx_module *m = ps->mod;
        struct sym *s = sym_find(&ps->funcs, name);
        if (s) {
                *ret_index = s->off;
                return 0;
        }
        if (m->nfuncs >= 65536)
                return perr(ps, PTX_EUNSUPPORTED, "too many functions");
        struct ptx_func *nf = realloc(m->funcs, (m->nfuncs + 1) * sizeof(*nf));
        if (!nf)
                return -ENOMEM;
        m->funcs = nf;
        memset(&nf[m->nfuncs], 0, sizeof(nf[0]));
        nf[m->nfuncs].name = strdup(name);
        if (!nf[m->nfuncs].name)
                return -ENOMEM;
        if (sym_add(&ps->funcs, name, &s))
                return -ENOMEM;
        s->off = m->nfuncs;
        *ret_index = m->nfuncs++;
        return 0;
}

/* Parse one operand into o. Registers and parameters are looked up in f's scope. */
static int parse_operand(struct parser *ps, struct fctx *f, struct opnd *o);

static int lookup_reg(struct parser *ps, struct fctx *f, const char *name, uint32_t *ret_off,
                      uint8_t *ret_type)
{
        struct sym *s = sym_find(&f->syms, name);
        if (!s || s->kind != SYM_REG)
                return perr(ps, PTX_EPARSE, "unknown register '%s'", name);
        *ret_off = s->off;
        *ret_type = s->type;
        return 0;
}

static int sreg_lookup(const char *name)
{
        static const struct {
                const char *n;
                int v;
        } t[] = {
                {"%tid.x", SREG_TID_X},
                {"%tid.y", SREG_TID_Y},
                {"%tid.z", SREG_TID_Z},
                {"%ntid.x", SREG_NTID_X},
                {"%ntid.y", SREG_NTID_Y},
                {"%ntid.z", SREG_NTID_Z},
                {"%ctaid.x", SREG_CTAID_X},
                {"%ctaid.y", SREG_CTAID_Y},
                {"%ctaid.z", SREG_CTAID_Z},
                {"%nctaid.x", SREG_NCTAID_X},
                {"%nctaid.y", SREG_NCTAID_Y},
                {"%nctaid.z", SREG_NCTAID_Z},
                {"%laneid", SREG_LANEID},
                {"%warpid", SREG_WARPID},
                {"%nwarpid", SREG_NWARPID},
                {"%smid", SREG_SMID},
                {"%nsmid", SREG_NSMID},
                {"%gridid", SREG_GRIDID},
                {"%lanemask_eq", SREG_LANEMASK_EQ},
                {"%lanemask_lt", SREG_LANEMASK_LT},
                {"%lanemask_le", SREG_LANEMASK_LE},
                {"%lanemask_gt", SREG_LANEMASK_GT},
                {"%lanemask_ge", SREG_LANEMASK_GE},
                {"%clock", SREG_CLOCK},
                {"%clock64", SREG_CLOCK64},
                {"%globaltimer", SREG_GLOBALTIMER},
                {"%globaltimer_lo", SREG_GLOBALTIMER_LO},
                {"%total_smem_size", SREG_TOTALSMEM},
                {"%dynamic_smem_size", SREG_DYNSMEM},
        };
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                if (strcmp(name, t[i].n) == 0)
                        return t[i].v;
        }
        return -1;
}

static int parse_number_word(const char *t, bool neg, struct opnd *o)
{
        uint64_t v;
        if (t[0] == '0' && (t[1] == 'f' || t[1] == 'F' || t[1] == 'd' || t[1] == 'D') && t[2]) {
                char buf[40];
                snprintf(buf, sizeof(buf), "0x%s", t + 2);
                if (parse_uint(buf, &v))
                        return -1;
                bool f32 = t[1] == 'f' || t[1] == 'F';
                o->kind = f32 ? OK_F32 : OK_F64;
                if (neg)
                        v ^= f32 ? 0x80000000u : 0x8000000000000000ull;
                o->bits = v;
                return 0;
        }
        if (strchr(t, '.') || ((t[0] != '0' || (t[1] != 'x' && t[1] != 'X')) && strchr(t, 'e'))) {
                char *end;
                double d = strtod(t, &end);
                if (*end)
                        return -1;
                if (neg)
                        d = -d;
                o->kind = OK_F64;
                memcpy(&o->bits, &d, 8);
                return 0;
        }
        size_t n = strlen(t);
        char buf[NAME_MAX_LEN + 8];
        snprintf(buf, sizeof(buf), "%s", t);
        if (n && (buf[n - 1] == 'U' || buf[n - 1] == 'u'))
                buf[n - 1] = 0;
        if (parse_uint(buf, &v))
                return -1;
        o->kind = OK_INT;
        o->ival = neg ? -(int64_t)v : (int64_t)v;
        return 0;
}

static int parse_operand(struct parser *ps, struct fctx *f, struct opnd *o)
{
        struct lexer *lx = &ps->lx;
        memset(o, 0, sizeof(*o));
        o->reg2 = OPND_NONE;
        if (tok_is(lx, "!")) {
                o->neg = true;
                lex_next(lx);
        }
        if (tok_is(lx, "[")) {
                lex_next(lx);
                o->kind = OK_ADDR;
                if (lx->kind != TK_WORD)
                        return perr(ps, PTX_EPARSE, "bad address at '%s'", lx->tok);
                if (lx->tok[0] == '%') {
                        if (lookup_reg(ps, f, lx->tok, &o->reg, &o->type))
                                return PTX_EPARSE;
                        o->addr_reg = true;
                        lex_next(lx);
                } else if (lx->tok[0] >= '0' && lx->tok[0] <= '9') {
                        uint64_t v;
                        if (parse_uint(lx->tok, &v))
                                return perr(ps, PTX_EPARSE, "bad address '%s'", lx->tok);
                        o->ival = (int64_t)v;
                        lex_next(lx);
                } else {
                        snprintf(o->sym, sizeof(o->sym), "%s", lx->tok);
                        lex_next(lx);
                }
                while (tok_is(lx, "+") || tok_is(lx, "-")) {
                        bool neg = tok_is(lx, "-");
                        lex_next(lx);
                        if (tok_is(lx, "-")) {
                                neg = !neg;
                                lex_next(lx);
                        }
                        uint64_t v;
                        if (lx->kind != TK_WORD || parse_uint(lx->tok, &v))
                                return perr(ps, PTX_EPARSE, "bad address offset '%s'", lx->tok);
                        o->ival += neg ? -(int64_t)v : (int64_t)v;
                        lex_next(lx);
                }
                return expect(ps, "]");
        }
        if (tok_is(lx, "{")) {
                lex_next(lx);
                o->kind = OK_VEC;
                while (!tok_is(lx, "}")) {
                        if (o->nvec >= 8)
                                return perr(ps, PTX_EPARSE, "vector too long");
                        if (tok_is(lx, "_")) {
                                o->vsink[o->nvec] = true;
                                o->vec[o->nvec] = OPND_NONE;
                                o->nvec++;
                                lex_next(lx);
                        } else if (lx->kind == TK_WORD && lx->tok[0] >= '0' && lx->tok[0] <= '9') {
                                uint64_t v;
                                if (parse_uint(lx->tok, &v))
                                        return perr(ps, PTX_EPARSE, "bad vector element '%s'",
                                                    lx->tok);
                                o->visimm[o->nvec] = true;
                                o->vimm[o->nvec] = (int64_t)v;
                                o->vec[o->nvec] = OPND_NONE;
                                o->nvec++;
                                lex_next(lx);
                        } else {
                                if (lx->kind != TK_WORD ||
                                    lookup_reg(ps, f, lx->tok, &o->vec[o->nvec],
                                               &o->vtype[o->nvec]))
                                        return perr(ps, PTX_EPARSE, "bad vector element '%s'",
                                                    lx->tok);
                                o->nvec++;
                                lex_next(lx);
                        }
                        if (tok_is(lx, ","))
                                lex_next(lx);
                        else if (!tok_is(lx, "}"))
                                return perr(ps, PTX_EPARSE, "bad vector at '%s'", lx->tok);
                }
                lex_next(lx);
                return 0;
        }
        bool neg = false;
        if (tok_is(lx, "-")) {
                neg = true;
                lex_next(lx);
        }
        if (lx->kind != TK_WORD)
                return perr(ps, PTX_EPARSE, "bad operand '%s'", lx->tok);
        if (lx->tok[0] >= '0' && lx->tok[0] <= '9') {
                if (parse_number_word(lx->tok, neg, o))
                        return perr(ps, PTX_EPARSE, "bad number '%s'", lx->tok);
                lex_next(lx);
                return 0;
        }
        if (neg)
                return perr(ps, PTX_EPARSE, "bad operand '-%s'", lx->tok);
        if (strcmp(lx->tok, "_") == 0) {
                o->kind = OK_SINK;
                lex_next(lx);
                return 0;
        }
        if (lx->tok[0] == '%') {
                int sr = sreg_lookup(lx->tok);
                struct sym *s = sym_find(&f->syms, lx->tok);
                if (s && s->kind == SYM_REG) {
                        o->kind = OK_REG;
                        o->reg = s->off;
                        o->type = s->type;
                } else if (sr >= 0) {
                        o->kind = OK_SREG;
                        o->reg = (uint32_t)sr;
                } else {
                        return perr(ps, PTX_EPARSE, "unknown register '%s'", lx->tok);
                }
                lex_next(lx);
                if (tok_is(lx, "|")) {
                        lex_next(lx);
                        if (lx->kind != TK_WORD || lookup_reg(ps, f, lx->tok, &o->reg2, &o->type2))
                                return perr(ps, PTX_EPARSE, "bad operand after '|'");
                        lex_next(lx);
                }
                return 0;
        }
        /* a name: a register without '%' (temp_param_reg), a symbol, a label, a function */
        struct sym *s = sym_find(&f->syms, lx->tok);
        if (s && s->kind == SYM_REG) {
                o->kind = OK_REG;
                o->reg = s->off;
                o->type = s->type;
        } else {
                o->kind = OK_SYM;
                snprintf(o->sym, sizeof(o->sym), "%s", lx->tok);
        }
        lex_next(lx);
        return 0;
}

/*
 * scope_declare - the symbol for a new declaration of name. Inside a { } block the name shadows
 * any outer meaning until the block ends (scope_close restores it).
 */
static int scope_declare(struct fctx *f, const char *name, struct sym **ret)
{
        struct sym *s = sym_find(&f->syms, name);
        if (f->depth > 0) {
                if (f->nshadows == f->capshadows) {
                        unsigned ncap = f->capshadows ? f->capshadows * 2 : 16;
                        struct shadow *ns = realloc(f->shadows, ncap * sizeof(*ns));
                        if (!ns)
                                return -ENOMEM;
                        f->shadows = ns;
                        f->capshadows = ncap;
                }
                struct shadow *sh = &f->shadows[f->nshadows];
                sh->name = strdup(name);
                if (!sh->name)
                        return -ENOMEM;
                sh->existed = s != NULL && s->kind != SYM_DEAD;
                if (sh->existed)
                        sh->saved = *s;
                sh->depth = f->depth;
                f->nshadows++;
        }
        if (!s && sym_add(&f->syms, name, &s))
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* scope_close - end the innermost { } block: its names get their outer meaning back. */
static void scope_close(struct fctx *f)
{
        while (f->nshadows && f->shadows[f->nshadows - 1].depth == f->depth) {
                struct shadow *sh = &f->shadows[--f->nshadows];
                struct sym *s = sym_find(&f->syms, sh->name);
                if (s) {
                        if (sh->existed) {
                                char *keep = s->name;
                                *s = sh->saved;
                                s->name = keep;
                        } else {
                                s->kind = SYM_DEAD;
                        }
                }
                free(sh->name);
        }
        f->depth--;
}

static int declare_regs(struct parser *ps, struct fctx *f)
{
        struct decl d;
        int r = parse_decl(ps, &d);
        for (;;) {
                if (r)
                        return r;
                if (d.is_array || d.type == T_B128 || type_size((unsigned)d.type) < 2) {
                        if (d.type == T_B8 || d.type == T_U8 || d.type == T_S8) {
                                /* 8-bit registers behave as 16-bit ones */
                                d.type = d.type == T_S8 ? T_S16 : d.type == T_U8 ? T_U16 : T_B16;
                        } else if (d.type != T_PRED || d.is_array) {
                                return perr(ps, PTX_EUNSUPPORTED, "register '%s' of this type",
                                            d.name);
                        }
                }
                uint32_t n = d.range ? d.range : 1;
                for (uint32_t i = 0; i < n; i++) {
                        char name[NAME_MAX_LEN + 16];
                        struct sym *s;
                        if (d.range)
                                snprintf(name, sizeof(name), "%s%u", d.name, i);
                        else
                                snprintf(name, sizeof(name), "%s", d.name);
                        s = sym_find(&f->syms, name);
                        if (f->depth == 0 && s && s->kind == SYM_REG && s->type == d.type)
                                continue; /* declared twice at the top: the same register */
                        uint32_t off = fn_reg_alloc(f->fn, (unsigned)d.type);
                        if (off == OPND_NONE)
                                return perr(ps, PTX_EUNSUPPORTED, "too many registers");
                        if (scope_declare(f, name, &s))
                                return -ENOMEM;
                        f->fn->nregs++;
                        s->kind = SYM_REG;
                        s->type = (uint8_t)d.type;
                        s->off = off;
                }
                if (!tok_is(&ps->lx, ","))
                        break;
                lex_next(&ps->lx);
                /* ".reg .b32 a, b;" : the next name shares the type */
                int type = d.type;
                memset(&d, 0, sizeof(d));
                d.type = type;
                if (ps->lx.kind != TK_WORD)
                        return perr(ps, PTX_EPARSE, "expected a register name");
                snprintf(d.name, sizeof(d.name), "%s", ps->lx.tok);
                lex_next(&ps->lx);
                if (tok_is(&ps->lx, "<")) {
                        uint64_t v;
                        lex_next(&ps->lx);
                        if (ps->lx.kind != TK_WORD || parse_uint(ps->lx.tok, &v) || !v || v > 65536)
                                return perr(ps, PTX_EPARSE, "bad register range");
                        d.range = (uint32_t)v;
                        lex_next(&ps->lx);
                        r = expect(ps, ">");
                }
        }
        return expect(ps, ";");
}

/* .param declared inside a body (call sites) or .local: per-lane memory in the function. */
static int declare_scoped(struct parser *ps, struct fctx *f, bool local)
{
        struct decl d;
        int r = parse_decl(ps, &d);
        if (r)
                return r;
        if (d.unsized || d.range)
                return perr(ps, PTX_EPARSE, "bad declaration '%s'", d.name);
        uint64_t size = type_size((unsigned)d.type) * d.count;
        uint32_t *cursor = local ? &f->fn->local_bytes : &f->fn->param_bytes;
        uint64_t off = (*cursor + d.align - 1) & ~(uint64_t)(d.align - 1);
        if (off + size > (1u << 16))
                return perr(ps, PTX_EUNSUPPORTED, "'%s': too much %s memory", d.name,
                            local ? "local" : "param");
        struct sym *s;
        if (scope_declare(f, d.name, &s))
                return -ENOMEM;
        s->kind = local ? SYM_LOCAL : SYM_FPARAM;
        s->off = (uint32_t)off;
        s->size = (uint32_t)size;
        *cursor = (uint32_t)(off + size);
        if (tok_is(&ps->lx, "="))
                return perr(ps, PTX_EUNSUPPORTED, "initialised local variables");
        return expect(ps, ";");
}

static int split_opcode(const char *w, struct opcode *oc)
{
        memset(oc, 0, sizeof(*oc));
        const char *dot = strchr(w, '.');
        size_t n = dot ? (size_t)(dot - w) : strlen(w);
        if (n == 0 || n >= sizeof(oc->base))
                return -1;
        memcpy(oc->base, w, n);
        while (dot) {
                const char *next = strchr(dot + 1, '.');
                n = next ? (size_t)(next - dot) : strlen(dot);
                if (oc->nmods >= MAX_MODS || n >= sizeof(oc->mods[0]))
                        return -1;
                memcpy(oc->mods[oc->nmods], dot, n);
                oc->mods[oc->nmods][n] = 0;
                oc->nmods++;
                dot = next;
        }
        return 0;
}

static int add_fixup(struct fctx *f, const char *label)
{
        if (f->nfixups == f->capfixups) {
                unsigned ncap = f->capfixups ? f->capfixups * 2 : 32;
                struct fixup *nfx = realloc(f->fixups, ncap * sizeof(*nfx));
                if (!nfx)
                        return -ENOMEM;
                f->fixups = nfx;
                f->capfixups = ncap;
        }
        struct fixup *fx = &f->fixups[f->nfixups];
        fx->insn = f->fn->ninsns - 1;
        fx->line = f->line;
        fx->label = strdup(label);
        if (!fx->label)
                return -ENOMEM;
        f->nfixups++;
        return 0;
}

/* call[.uni] [(ret),] func, (args) ; */
static int parse_call(struct parser *ps, struct fctx *f, uint32_t guard, bool guard_neg)
{
        struct lexer *lx = &ps->lx;
        struct ptx_module *m = ps->mod;
        char rets[4][NAME_MAX_LEN], args[16][NAME_MAX_LEN], callee[NAME_MAX_LEN];
        unsigned nret = 0, nargs = 0;

        if (tok_is(lx, "(")) {
                lex_next(lx);
                while (!tok_is(lx, ")")) {
                        if (lx->kind != TK_WORD || nret >= 4)
                                return perr(ps, PTX_EPARSE, "bad call return list");
                        snprintf(rets[nret++], NAME_MAX_LEN, "%s", lx->tok);
                        lex_next(lx);
                        if (tok_is(lx, ","))
                                lex_next(lx);
                }
                lex_next(lx);
                if (expect(ps, ","))
                        return PTX_EPARSE;
        }
        uint32_t indirect = OPND_NONE;
        if (lx->kind != TK_WORD)
                return perr(ps, PTX_EPARSE, "bad call target '%s'", lx->tok);
        struct sym *rs = sym_find(&f->syms, lx->tok);
        if (rs && rs->kind == SYM_REG) {
                /* call through a register: a function pointer */
                if (type_size(rs->type) != 8)
                        return perr(ps, PTX_EPARSE, "call through a narrow register");
                indirect = rs->off;
        } else if (lx->tok[0] == '%') {
                return perr(ps, PTX_EPARSE, "unknown register '%s'", lx->tok);
        }
        snprintf(callee, sizeof(callee), "%s", lx->tok);
        lex_next(lx);
        if (tok_is(lx, ",")) {
                lex_next(lx);
                if (expect(ps, "("))
                        return PTX_EPARSE;
                while (!tok_is(lx, ")")) {
                        if (lx->kind != TK_WORD || nargs >= 16)
                                return perr(ps, PTX_EUNSUPPORTED, "call arguments");
                        snprintf(args[nargs++], NAME_MAX_LEN, "%s", lx->tok);
                        lex_next(lx);
                        if (tok_is(lx, ","))
                                lex_next(lx);
                        else if (!tok_is(lx, ")"))
                                return perr(ps, PTX_EPARSE, "bad call argument list");
                }
                lex_next(lx);
        }
        if (tok_is(lx, ",")) {
                /* the prototype (or a list of possible targets) of an indirect call */
                lex_next(lx);
                if (indirect == OPND_NONE || lx->kind != TK_WORD)
                        return perr(ps, PTX_EPARSE, "bad call: prototype after a direct target");
                lex_next(lx);
        }
        if (expect(ps, ";"))
                return PTX_EPARSE;

        if (m->ncalls >= (1u << 20))
                return perr(ps, PTX_EUNSUPPORTED, "too many calls");
        struct ptx_call *nc = realloc(m->calls, (m->ncalls + 1) * sizeof(*nc));
        if (!nc)
                return -ENOMEM;
        m->calls = nc;
        char **nn = realloc(ps->call_names, (m->ncalls + 1) * sizeof(*nn));
        if (!nn)
                return -ENOMEM;
        ps->call_names = nn;
        uint32_t *nl = realloc(ps->call_lines, (m->ncalls + 1) * sizeof(*nl));
        if (!nl)
                return -ENOMEM;
        ps->call_lines = nl;
        struct ptx_call *c = &m->calls[m->ncalls];
        memset(c, 0, sizeof(*c));
        ps->call_names[m->ncalls] = strdup(callee);
        ps->call_lines[m->ncalls] = lx->line;
        if (!ps->call_names[m->ncalls])
                return -ENOMEM;
        m->ncalls++;
        c->nargs = nargs;
        c->nret = nret;
        c->indirect = indirect;
        for (unsigned i = 0; i < nargs; i++) {
                struct sym *s = sym_find(&f->syms, args[i]);
                if (!s || s->kind != SYM_FPARAM)
                        return perr(ps, PTX_EUNSUPPORTED, "call argument '%s' is not a .param",
                                    args[i]);
                c->arg_src[i] = s->off;
                c->arg_size[i] = s->size;
        }
        for (unsigned i = 0; i < nret; i++) {
                struct sym *s = sym_find(&f->syms, rets[i]);
                if (!s || s->kind != SYM_FPARAM)
                        return perr(ps, PTX_EUNSUPPORTED, "call result '%s' is not a .param",
                                    rets[i]);
                c->ret_dst[i] = s->off;
                c->ret_size[i] = s->size;
        }
        struct ptx_insn *in = fn_emit(f->fn);
        if (!in)
                return -ENOMEM;
        in->op = OP_CALL;
        in->imm = m->ncalls - 1;
        in->guard = guard;
        in->flags = guard_neg ? F_GUARDN : 0;
        in->line = f->line;
        return 0;
}

static int parse_statement(struct parser *ps, struct fctx *f)
{
        struct lexer *lx = &ps->lx;
        uint32_t guard = OPND_NONE;
        bool guard_neg = false;
        struct opcode oc;

        f->line = lx->line;
        if (tok_is(lx, "@")) {
                lex_next(lx);
                if (tok_is(lx, "!")) {
                        guard_neg = true;
                        lex_next(lx);
                }
                uint8_t t = 0;
                if (lx->kind != TK_WORD || lookup_reg(ps, f, lx->tok, &guard, &t) || t != T_PRED)
                        return perr(ps, PTX_EPARSE, "bad guard predicate '%s'", lx->tok);
                lex_next(lx);
        }
        if (lx->kind != TK_WORD || lx->overflow || split_opcode(lx->tok, &oc))
                return perr(ps, PTX_EPARSE, "expected an instruction, found '%s'", lx->tok);
        lex_next(lx);
        if (strcmp(oc.base, "call") == 0)
                return parse_call(ps, f, guard, guard_neg);

        struct opnd ops[MAX_OPERANDS];
        unsigned nops = 0;
        while (!tok_is(lx, ";")) {
                if (lx->kind == TK_EOF)
                        return perr(ps, PTX_EPARSE, "unexpected end of text");
                if (nops >= MAX_OPERANDS)
                        return perr(ps, PTX_EPARSE, "too many operands");
                int r = parse_operand(ps, f, &ops[nops]);
                if (r)
                        return r;
                nops++;
                if (tok_is(lx, ","))
                        lex_next(lx);
                else if (!tok_is(lx, ";"))
                        return perr(ps, PTX_EPARSE, "expected ',' or ';', found '%s'", lx->tok);
        }
        lex_next(lx);
        unsigned before = f->fn->ninsns;
        int r = decode_insn(f, &oc, ops, nops, guard, guard_neg);
        if (r)
                return r;
        /* a branch names its label: resolve it when the body is complete */
        if (strcmp(oc.base, "bra") == 0 && nops == 1 && ops[0].kind == OK_SYM &&
            f->fn->ninsns > before)
                return add_fixup(f, ops[0].sym);
        return 0;
}

static int parse_body(struct parser *ps, struct fctx *f)
{
        struct lexer *lx = &ps->lx;
        if (expect(ps, "{"))
                return PTX_EPARSE;
        for (;;) {
                int r = 0;
                const char *next;
                if (lx->kind == TK_EOF)
                        return perr(ps, PTX_EPARSE, "unexpected end of text in '%s'", f->fn->name);
                if (tok_is(lx, "}")) {
                        lex_next(lx);
                        if (f->depth == 0)
                                break;
                        scope_close(f);
                        continue;
                }
                if (tok_is(lx, "{")) {
                        if (f->depth >= 64)
                                return perr(ps, PTX_EUNSUPPORTED, "blocks nested too deeply");
                        f->depth++;
                        lex_next(lx);
                        continue;
                }
                if (tok_is(lx, ".reg")) {
                        lex_next(lx);
                        r = declare_regs(ps, f);
                } else if (tok_is(lx, ".param")) {
                        lex_next(lx);
                        r = declare_scoped(ps, f, false);
                } else if (tok_is(lx, ".local")) {
                        lex_next(lx);
                        r = declare_scoped(ps, f, true);
                } else if (tok_is(lx, ".shared")) {
                        lex_next(lx);
                        r = parse_module_var(ps, SP_SHARED, false);
                } else if (tok_is(lx, ".callprototype")) {
                        skip_statement(ps); /* a label names it; calls do not need it */
                } else if (tok_is(lx, ".pragma") || tok_is(lx, ".loc") || tok_is(lx, ".maxnreg") ||
                           tok_is(lx, ".maxntid") || tok_is(lx, ".reqntid") ||
                           tok_is(lx, ".minnctapersm") || tok_is(lx, ".file")) {
                        skip_statement(ps);
                } else if (lx->kind == TK_WORD && lex_peek(lx, &next) == TK_PUNCT &&
                           strcmp(next, ":") == 0) {
                        struct sym *s = sym_find(&f->syms, lx->tok);
                        if (s && s->kind != SYM_DEAD)
                                return perr(ps, PTX_EPARSE, "label '%s' defined twice", lx->tok);
                        if (!s && sym_add(&f->syms, lx->tok, &s))
                                return -ENOMEM;
                        s->kind = SYM_LABEL;
                        s->off = f->fn->ninsns;
                        lex_next(lx);
                        lex_next(lx);
                } else if (lx->kind == TK_WORD && lx->tok[0] == '.') {
                        return perr(ps, PTX_EUNSUPPORTED, "directive '%s' in a function body",
                                    lx->tok);
                } else {
                        r = parse_statement(ps, f);
                }
                if (r)
                        return r;
        }
        /* every function ends in ret/exit; falling off the end returns */
        struct ptx_insn *in = fn_emit(f->fn);
        if (!in)
                return -ENOMEM;
        in->op = f->fn->is_entry ? OP_EXIT : OP_RET;
        in->line = lx->line;
        for (unsigned i = 0; i < f->nfixups; i++) {
                struct sym *s = sym_find(&f->syms, f->fixups[i].label);
                if (!s || s->kind != SYM_LABEL) {
                        f->line = f->fixups[i].line;
                        return fctx_error(f, PTX_EPARSE, "unknown label '%s'", f->fixups[i].label);
                }
                f->fn->insns[f->fixups[i].insn].imm = s->off;
        }
        return 0;
}

static void fctx_free(struct fctx *f)
{
        for (unsigned i = 0; i < f->nshadows; i++)
                free(f->shadows[i].name);
        free(f->shadows);
        sym_free(&f->syms);
        for (unsigned i = 0; i < f->nfixups; i++)
                free(f->fixups[i].label);
        free(f->fixups);
}

static int parse_function(struct parser *ps, bool entry)
{
        struct lexer *lx = &ps->lx;
        struct ptx_module *m = ps->mod;
        struct ptx_param *rets = NULL, *params = NULL;
        unsigned nrets = 0, nparams = 0;
        uint32_t cursor = 0;
        char name[NAME_MAX_LEN];
        unsigned index = 0;
        int r;

        if (!entry && tok_is(lx, "(")) {
                r = parse_param_list(ps, &rets, &nrets, &cursor);
                if (r)
                        goto out;
        }
        if (lx->kind != TK_WORD || lx->overflow) {
                r = perr(ps, PTX_EPARSE, "expected a function name, found '%s'", lx->tok);
                goto out;
        }
        snprintf(name, sizeof(name), "%s", lx->tok);
        lex_next(lx);
        if (tok_is(lx, "(")) {
                r = parse_param_list(ps, &params, &nparams, &cursor);
                if (r)
                        goto out;
        }
        uint32_t maxntid = 0, reqntid[3] = {0, 0, 0};
        while (lx->kind == TK_WORD && lx->tok[0] == '.') {
                /* performance directives: .maxntid 256, 1, 1 / .noreturn / .pragma "..." */
                bool is_max = tok_is(lx, ".maxntid"), is_req = tok_is(lx, ".reqntid");
                uint64_t dims[3] = {1, 1, 1};
                unsigned nd = 0;
                lex_next(lx);
                for (;;) {
                        uint64_t v;
                        if (lx->kind != TK_WORD || lx->tok[0] == '.')
                                break;
                        if (nd < 3 && !parse_uint(lx->tok, &v) && v && v <= 1024)
                                dims[nd++] = v;
                        lex_next(lx);
                        if (!tok_is(lx, ","))
                                break;
                        lex_next(lx);
                }
                if (is_max && nd)
                        maxntid = (uint32_t)(dims[0] * dims[1] * dims[2]);
                if (is_req && nd) {
                        for (int k = 0; k < 3; k++)
                                reqntid[k] = (uint32_t)dims[k];
                }
                if (lx->kind == TK_STRING)
                        lex_next(lx);
                if (tok_is(lx, ";"))
                        lex_next(lx);
        }
        r = get_func(ps, name, &index);
        if (r)
                goto out;
        struct ptx_func *fn = &m->funcs[index];
        if (tok_is(lx, ";")) {
                lex_next(lx);
                if (!fn->defined && !fn->params) {
                        fn->is_entry = entry;
                        fn->params = params;
                        fn->nparams = nparams;
                        fn->rets = rets;
                        fn->nrets = nrets;
                        fn->param_bytes = cursor;
                        params = rets = NULL;
                        nparams = nrets = 0;
                }
                r = 0;
                goto out;
        }
        if (fn->defined) {
                r = perr(ps, PTX_EPARSE, "function '%s' defined twice", name);
                goto out;
        }
        /* the definition's parameter list wins over a prototype's */
        for (unsigned i = 0; i < fn->nparams; i++)
                free(fn->params[i].name);
        for (unsigned i = 0; i < fn->nrets; i++)
                free(fn->rets[i].name);
        free(fn->params);
        free(fn->rets);
        fn->is_entry = entry;
        fn->defined = true;
        fn->maxntid = maxntid;
        memcpy(fn->reqntid, reqntid, sizeof(reqntid));
        fn->params = params;
        fn->nparams = nparams;
        fn->rets = rets;
        fn->nrets = nrets;
        fn->line = lx->line;
        params = rets = NULL;
        nparams = nrets = 0;
        if (entry) {
                fn->kparam_bytes = cursor;
                fn->param_bytes = 0;
        } else {
                fn->param_bytes = cursor;
        }

        struct fctx f = {.mod = m,
                         .fn = fn,
                         .fn_index = index,
                         .err = ps->err,
                         .vars = &ps->vars,
                         .funcs = &ps->funcs,
                         .errlen = ps->errlen,
                         .line = lx->line};
        for (unsigned i = 0; i < fn->nparams && !r; i++) {
                struct sym *s;
                r = sym_add(&f.syms, fn->params[i].name, &s);
                if (!r) {
                        s->kind = entry ? SYM_KPARAM : SYM_FPARAM;
                        s->off = fn->params[i].offset;
                        s->size = fn->params[i].size;
                }
        }
        for (unsigned i = 0; i < fn->nrets && !r; i++) {
                struct sym *s;
                r = sym_add(&f.syms, fn->rets[i].name, &s);
                if (!r) {
                        s->kind = SYM_FPARAM;
                        s->off = fn->rets[i].offset;
                        s->size = fn->rets[i].size;
                }
        }
        if (!r)
                r = parse_body(ps, &f);
        fctx_free(&f);
out:
        for (unsigned i = 0; i < nparams; i++)
                free(params[i].name);
        for (unsigned i = 0; i < nrets; i++)
                free(rets[i].name);
        free(params);
        free(rets);
        return r;
}

static int parse_module(struct parser *ps)
{
        struct lexer *lx = &ps->lx;
        struct ptx_module *m = ps->mod;
        bool seen_version = false;

        lex_next(lx);
        while (lx->kind != TK_EOF) {
                int r = 0;
                bool is_extern = false;
                if (tok_is(lx, ".version")) {
                        lex_next(lx);
                        unsigned maj = 0, min = 0;
                        if (lx->kind != TK_WORD || sscanf(lx->tok, "%u.%u", &maj, &min) != 2)
                                return perr(ps, PTX_EPARSE, "bad .version '%s'", lx->tok);
                        if (maj < 6 || maj > 9)
                                return perr(ps, PTX_EUNSUPPORTED, "PTX ISA version %u.%u", maj,
                                            min);
                        m->version_major = maj;
                        m->version_minor = min;
                        seen_version = true;
                        lex_next(lx);
                        continue;
                }
                if (!seen_version)
                        return perr(ps, PTX_EPARSE, "the text does not start with .version");
                if (tok_is(lx, ".target")) {
                        lex_next(lx);
                        while (lx->kind == TK_WORD) {
                                unsigned sm;
                                if (sscanf(lx->tok, "sm_%u", &sm) == 1)
                                        m->sm = sm;
                                lex_next(lx);
                                if (!tok_is(lx, ","))
                                        break;
                                lex_next(lx);
                        }
                        continue;
                }
                if (tok_is(lx, ".address_size")) {
                        lex_next(lx);
                        if (!tok_is(lx, "64"))
                                return perr(ps, PTX_EUNSUPPORTED, ".address_size %s", lx->tok);
                        lex_next(lx);
                        continue;
                }
                if (tok_is(lx, ".file")) {
                        skip_statement(ps);
                        continue;
                }
                if (tok_is(lx, ".section")) {
                        skip_block(ps);
                        continue;
                }
                while (tok_is(lx, ".visible") || tok_is(lx, ".extern") || tok_is(lx, ".weak") ||
                       tok_is(lx, ".common")) {
                        if (tok_is(lx, ".extern"))
                                is_extern = true;
                        lex_next(lx);
                }
                if (tok_is(lx, ".entry")) {
                        lex_next(lx);
                        r = parse_function(ps, true);
                } else if (tok_is(lx, ".func")) {
                        lex_next(lx);
                        r = parse_function(ps, false);
                } else if (tok_is(lx, ".global")) {
                        lex_next(lx);
                        r = parse_module_var(ps, SP_GLOBAL, is_extern);
                } else if (tok_is(lx, ".const")) {
                        lex_next(lx);
                        r = parse_module_var(ps, SP_CONST, is_extern);
                } else if (tok_is(lx, ".shared")) {
                        lex_next(lx);
                        r = parse_module_var(ps, SP_SHARED, is_extern);
                } else if (tok_is(lx, ".local")) {
                        lex_next(lx);
                        r = parse_module_var(ps, SP_LOCAL, is_extern);
                } else {
                        return perr(ps, PTX_EPARSE, "unexpected '%s' at module scope", lx->tok);
                }
                if (r)
                        return r;
        }
        if (!seen_version)
                return perr(ps, PTX_EPARSE, "the text does not start with .version");
        return 0;
}

/* Resolve calls and size the frames, now that every function is known. */
static int link_module(struct parser *ps)
{
        struct ptx_module *m = ps->mod;

        for (unsigned i = 0; i < m->ncalls; i++) {
                struct sym *s = sym_find(&ps->funcs, ps->call_names[i]);
                struct ptx_call *c = &m->calls[i];
                ps->lx.line = ps->call_lines[i];
                if (c->indirect != OPND_NONE)
                        continue; /* checked per lane when it runs */
                if (!s || !m->funcs[s->off].defined) {
                        if (strcmp(ps->call_names[i], "__assertfail") == 0) {
                                c->builtin = BUILTIN_ASSERTFAIL;
                                continue;
                        }
                        if (strcmp(ps->call_names[i], "vprintf") == 0 && c->nret <= 1) {
                                c->builtin = BUILTIN_VPRINTF;
                                continue;
                        }
                        return perr(ps, PTX_EUNSUPPORTED, "call to undefined function '%s'",
                                    ps->call_names[i]);
                }
                struct ptx_func *callee = &m->funcs[s->off];
                if (callee->is_entry)
                        return perr(ps, PTX_EUNSUPPORTED, "call to a kernel");
                if (c->nargs != callee->nparams || c->nret != callee->nrets)
                        return perr(ps, PTX_EPARSE, "call to '%s' with a wrong argument count",
                                    callee->name);
                for (unsigned a = 0; a < c->nargs; a++) {
                        if (c->arg_size[a] > callee->params[a].size)
                                c->arg_size[a] = callee->params[a].size;
                }
                c->callee = s->off;
        }
        m->nkernels = 0;
        for (unsigned i = 0; i < m->nfuncs; i++) {
                struct ptx_func *fn = &m->funcs[i];
                if (!fn->defined)
                        continue;
                fn->frame_bytes = (fn->frame_bytes + 63u) & ~63u;
                fn->param_bytes = (fn->param_bytes + 7u) & ~7u;
                fn->local_bytes = (fn->local_bytes + 15u) & ~15u;
                if (fn->frame_bytes > m->max_frame)
                        m->max_frame = fn->frame_bytes;
                if (fn->param_bytes > m->max_param)
                        m->max_param = fn->param_bytes;
                if (fn->local_bytes > m->max_local)
                        m->max_local = fn->local_bytes;
                if (fn->is_entry)
                        m->nkernels++;
        }
        if (m->nkernels) {
                m->kernels = calloc(m->nkernels, sizeof(*m->kernels));
                if (!m->kernels)
                        return -ENOMEM;
        }
        unsigned k = 0;
        for (unsigned i = 0; i < m->nfuncs; i++) {
                if (m->funcs[i].defined && m->funcs[i].is_entry) {
                        m->kernels[k].mod = m;
                        m->kernels[k].func = i;
                        k++;
                }
        }
        return 0;
}

int ptx_parse(struct ptx_module *mod, const char *text, size_t len, char *err, size_t errlen)
{
        struct parser ps = {.mod = mod, .err = err, .errlen = errlen};
        lex_init(&ps.lx, text, len);

        int r = parse_module(&ps);
        if (!r)
                r = link_module(&ps);
        for (unsigned i = 0; ps.call_names && i < mod->ncalls; i++)
                free(ps.call_names[i]);
        free(ps.call_names);
        free(ps.call_lines);
        sym_free(&ps.vars);
        sym_free(&ps.funcs);
        if (r == -ENOMEM && err && errlen)
                snprintf(err, errlen, "out of memory");
        return r;
}

void ptx_module_clear(struct ptx_module *m)
{
        for (unsigned i = 0; i < m->nfuncs; i++) {
                struct ptx_func *fn = &m->funcs[i];
                free(fn->name);
                for (unsigned j = 0; j < fn->nparams; j++)
                        free(fn->params[j].name);
                for (unsigned j = 0; j < fn->nrets; j++)
                        free(fn->rets[j].name);
                free(fn->params);
                free(fn->rets);
                free(fn->insns);
                free(fn->consts);
        }
        free(m->funcs);
        free(m->calls);
        for (unsigned i = 0; i < m->nvars; i++)
                free(m->vars[i].name);
        free(m->vars);
        free(m->kernels);
        free(m->globals_image);
        free(m->globals);
        memset(m, 0, sizeof(*m));
}
