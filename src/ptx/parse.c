// SPDX-License-Identifier: Apache-2.0
// The module parser: the module-level directives (.version, .target, variables with their
// initialisers, .entry/.func headers and parameter lists). Bodies are read by parse_body.c; the
// parsed module is linked by link.c.
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptx/lex.h"
#include "ptx/parse.h"

/* ---- parser state ---- */

int parse_err(struct parser *ps, int code, const char *fmt, ...)
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

int parse_expect(struct parser *ps, const char *s)
{
        if (!tok_is(&ps->lx, s))
                return parse_err(ps, PTX_EPARSE, "expected '%s', found '%s'", s, ps->lx.tok);
        lex_next(&ps->lx);
        return 0;
}

int parse_type_word(const char *w)
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

int parse_uint(const char *s, uint64_t *ret)
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
static void parse_skip_block(struct parser *ps)
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

/* parse_skip_line - skip the rest of the current line (.loc and .file end at the newline). */
void parse_skip_line(struct parser *ps)
{
        uint32_t line = ps->lx.line;
        while (ps->lx.kind != TK_EOF && ps->lx.line == line && !tok_is(&ps->lx, ";"))
                lex_next(&ps->lx);
        if (ps->lx.line == line && tok_is(&ps->lx, ";"))
                lex_next(&ps->lx);
}

void parse_skip_statement(struct parser *ps)
{
        while (ps->lx.kind != TK_EOF && !tok_is(&ps->lx, ";"))
                lex_next(&ps->lx);
        if (tok_is(&ps->lx, ";"))
                lex_next(&ps->lx);
}

int parse_decl(struct parser *ps, struct decl *d)
{
        memset(d, 0, sizeof(*d));
        d->type = -1;
        for (;;) {
                if (tok_is(&ps->lx, ".align")) {
                        uint64_t a;
                        lex_next(&ps->lx);
                        if (ps->lx.kind != TK_WORD || parse_uint(ps->lx.tok, &a) || !a ||
                            (a & (a - 1)) || a > 4096)
                                return parse_err(ps, PTX_EPARSE, "bad .align '%s'", ps->lx.tok);
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
                                return parse_err(ps, PTX_EUNSUPPORTED, "vector declarations");
                        lex_next(&ps->lx);
                } else if (ps->lx.kind == TK_WORD && parse_type_word(ps->lx.tok) >= 0) {
                        d->type = parse_type_word(ps->lx.tok);
                        lex_next(&ps->lx);
                } else {
                        break;
                }
        }
        if (d->type < 0)
                return parse_err(ps, PTX_EPARSE, "declaration without a type at '%s'", ps->lx.tok);
        if (ps->lx.kind != TK_WORD || ps->lx.overflow)
                return parse_err(ps, PTX_EPARSE, "expected a name, found '%s'", ps->lx.tok);
        snprintf(d->name, sizeof(d->name), "%s", ps->lx.tok);
        lex_next(&ps->lx);
        if (tok_is(&ps->lx, "<")) {
                uint64_t n;
                lex_next(&ps->lx);
                if (ps->lx.kind != TK_WORD || parse_uint(ps->lx.tok, &n) || n == 0 || n > 65536)
                        return parse_err(ps, PTX_EPARSE, "bad register range '%s'", ps->lx.tok);
                d->range = (uint32_t)n;
                lex_next(&ps->lx);
                if (parse_expect(ps, ">"))
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
                                return parse_err(ps, PTX_EPARSE, "bad array size '%s'", ps->lx.tok);
                        lex_next(&ps->lx);
                }
                if (parse_expect(ps, "]"))
                        return PTX_EPARSE;
                d->count = d->is_array ? d->count * n : n;
                d->is_array = true;
                if (d->count > (1ull << 32))
                        return parse_err(ps, PTX_EPARSE, "array too large");
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
                return parse_err(ps, PTX_EPARSE, "bad initialiser '%s'", ps->lx.tok);
        const char *t = ps->lx.tok;
        if ((t[0] == '0' && (t[1] == 'f' || t[1] == 'F' || t[1] == 'd' || t[1] == 'D')) && t[2]) {
                char buf[40];
                snprintf(buf, sizeof(buf), "0x%s", t + 2);
                if (parse_uint(buf, &v))
                        return parse_err(ps, PTX_EPARSE, "bad float literal '%s'", t);
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
                        return parse_err(ps, PTX_EUNSUPPORTED,
                                         "initialiser '%s' (numbers and functions only)", t);
                v = PTX_FUNC_BASE + 16ull * fs->off;
        } else {
                if (parse_uint(t, &v))
                        return parse_err(ps, PTX_EUNSUPPORTED, "initialiser '%s' (only numbers)",
                                         t);
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

int parse_module_var(struct parser *ps, struct fctx *f, int space, bool is_extern)
{
        struct ptx_module *m = ps->mod;
        struct symtab *names = f ? &f->lvars : &ps->vars;
        struct decl d;
        int r = parse_decl(ps, &d);
        if (r)
                return r;
        if (d.type == T_PRED || d.range)
                return parse_err(ps, PTX_EPARSE, "bad variable declaration '%s'", d.name);
        struct sym *s;
        if (sym_find(names, d.name)) {
                if (f)
                        return parse_err(ps, PTX_EPARSE, "'%s' declared twice in '%s'", d.name,
                                         f->fn->name);
                /* a second .extern declaration of the same variable is harmless */
                parse_skip_statement(ps);
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
        if (sym_add(names, d.name, &s))
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
                                return parse_err(ps, PTX_EUNSUPPORTED, "too much shared memory");
                        if (f && fctx_use_var(f, m->nvars - 1))
                                return -ENOMEM;
                }
                return parse_expect(ps, ";");
        }
        if (space == SP_LOCAL)
                return parse_err(ps, PTX_EUNSUPPORTED, "module-scope .local variables");
        if (d.unsized && !tok_is(&ps->lx, "="))
                return parse_err(ps, PTX_EPARSE, "unsized variable '%s'", d.name);
        /* .global and .const share one area, at the variables' alignments */
        uint64_t off = (m->globals_size + d.align - 1) & ~(uint64_t)(d.align - 1);
        if (off + v->size > (64u << 20))
                return parse_err(ps, PTX_EUNSUPPORTED, "module variables larger than 64 MiB");
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
                                return parse_err(ps, PTX_EUNSUPPORTED, "nested initialisers");
                        if (d.unsized) {
                                cap = n + 1;
                                v->size = cap * w;
                                nsize = off + v->size;
                        }
                        if (n >= cap)
                                return parse_err(ps, PTX_EPARSE, "too many initialisers");
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
                if (brace && parse_expect(ps, "}"))
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
        return parse_expect(ps, ";");
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
        if (parse_expect(ps, "("))
                return PTX_EPARSE;
        while (!tok_is(&ps->lx, ")")) {
                if (!tok_is(&ps->lx, ".param") && !tok_is(&ps->lx, ".reg"))
                        return parse_err(ps, PTX_EPARSE, "expected .param, found '%s'", ps->lx.tok);
                if (tok_is(&ps->lx, ".reg"))
                        return parse_err(ps, PTX_EUNSUPPORTED, ".reg parameters");
                lex_next(&ps->lx);
                struct decl d;
                int r = parse_decl(ps, &d);
                if (r)
                        return r;
                r = add_param(arr, n, &d, cursor);
                if (r)
                        return r == PTX_EUNSUPPORTED ? parse_err(ps, r, "parameter '%s'", d.name)
                                                     : r;
                if (tok_is(&ps->lx, ","))
                        lex_next(&ps->lx);
                else if (!tok_is(&ps->lx, ")"))
                        return parse_err(ps, PTX_EPARSE, "expected ',' or ')', found '%s'",
                                         ps->lx.tok);
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
                return parse_err(ps, PTX_EUNSUPPORTED, "too many functions");
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
                r = parse_err(ps, PTX_EPARSE, "expected a function name, found '%s'", lx->tok);
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
                r = parse_err(ps, PTX_EPARSE, "function '%s' defined twice", name);
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
                                return parse_err(ps, PTX_EPARSE, "bad .version '%s'", lx->tok);
                        if (maj < 6 || maj > 9)
                                return parse_err(ps, PTX_EUNSUPPORTED, "PTX ISA version %u.%u", maj,
                                                 min);
                        m->version_major = maj;
                        m->version_minor = min;
                        seen_version = true;
                        lex_next(lx);
                        continue;
                }
                if (!seen_version)
                        return parse_err(ps, PTX_EPARSE, "the text does not start with .version");
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
                                return parse_err(ps, PTX_EUNSUPPORTED, ".address_size %s", lx->tok);
                        lex_next(lx);
                        continue;
                }
                if (tok_is(lx, ".file") || tok_is(lx, ".loc")) {
                        parse_skip_line(ps);
                        continue;
                }
                if (tok_is(lx, ".section")) {
                        parse_skip_block(ps);
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
                        r = parse_module_var(ps, NULL, SP_GLOBAL, is_extern);
                } else if (tok_is(lx, ".const")) {
                        lex_next(lx);
                        r = parse_module_var(ps, NULL, SP_CONST, is_extern);
                } else if (tok_is(lx, ".shared")) {
                        lex_next(lx);
                        r = parse_module_var(ps, NULL, SP_SHARED, is_extern);
                } else if (tok_is(lx, ".local")) {
                        lex_next(lx);
                        r = parse_module_var(ps, NULL, SP_LOCAL, is_extern);
                } else {
                        return parse_err(ps, PTX_EPARSE, "unexpected '%s' at module scope",
                                         lx->tok);
                }
                if (r)
                        return r;
        }
        if (!seen_version)
                return parse_err(ps, PTX_EPARSE, "the text does not start with .version");
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
                free(fn->shared_vars);
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
