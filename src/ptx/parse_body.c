// SPDX-License-Identifier: Apache-2.0
// The body parser: register, parameter and local declarations with { } scopes, labels, operands
// (registers, immediates, addresses, vectors, special registers), calls, and statements handed
// to the decoder. Branch labels are resolved when the body ends.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ptx/parse.h"

/* Parse one operand into o. Registers and parameters are looked up in f's scope. */
static int parse_operand(struct parser *ps, struct fctx *f, struct opnd *o);

static int lookup_reg(struct parser *ps, struct fctx *f, const char *name, uint32_t *ret_off,
                      uint8_t *ret_type)
{
        struct sym *s = sym_find(&f->syms, name);
        if (!s || s->kind != SYM_REG)
                return parse_err(ps, PTX_EPARSE, "unknown register '%s'", name);
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
                        return parse_err(ps, PTX_EPARSE, "bad address at '%s'", lx->tok);
                if (lx->tok[0] == '%') {
                        if (lookup_reg(ps, f, lx->tok, &o->reg, &o->type))
                                return PTX_EPARSE;
                        o->addr_reg = true;
                        lex_next(lx);
                } else if (lx->tok[0] >= '0' && lx->tok[0] <= '9') {
                        uint64_t v;
                        if (parse_uint(lx->tok, &v))
                                return parse_err(ps, PTX_EPARSE, "bad address '%s'", lx->tok);
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
                                return parse_err(ps, PTX_EPARSE, "bad address offset '%s'",
                                                 lx->tok);
                        o->ival += neg ? -(int64_t)v : (int64_t)v;
                        lex_next(lx);
                }
                return parse_expect(ps, "]");
        }
        if (tok_is(lx, "{")) {
                lex_next(lx);
                o->kind = OK_VEC;
                while (!tok_is(lx, "}")) {
                        if (o->nvec >= 8)
                                return parse_err(ps, PTX_EPARSE, "vector too long");
                        if (tok_is(lx, "_")) {
                                o->vsink[o->nvec] = true;
                                o->vec[o->nvec] = OPND_NONE;
                                o->nvec++;
                                lex_next(lx);
                        } else if (lx->kind == TK_WORD && lx->tok[0] >= '0' && lx->tok[0] <= '9') {
                                uint64_t v;
                                if (parse_uint(lx->tok, &v))
                                        return parse_err(ps, PTX_EPARSE, "bad vector element '%s'",
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
                                        return parse_err(ps, PTX_EPARSE, "bad vector element '%s'",
                                                         lx->tok);
                                o->nvec++;
                                lex_next(lx);
                        }
                        if (tok_is(lx, ","))
                                lex_next(lx);
                        else if (!tok_is(lx, "}"))
                                return parse_err(ps, PTX_EPARSE, "bad vector at '%s'", lx->tok);
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
                return parse_err(ps, PTX_EPARSE, "bad operand '%s'", lx->tok);
        if (lx->tok[0] >= '0' && lx->tok[0] <= '9') {
                if (parse_number_word(lx->tok, neg, o))
                        return parse_err(ps, PTX_EPARSE, "bad number '%s'", lx->tok);
                lex_next(lx);
                return 0;
        }
        if (neg)
                return parse_err(ps, PTX_EPARSE, "bad operand '-%s'", lx->tok);
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
                        return parse_err(ps, PTX_EPARSE, "unknown register '%s'", lx->tok);
                }
                lex_next(lx);
                if (tok_is(lx, "|")) {
                        lex_next(lx);
                        if (lx->kind != TK_WORD || lookup_reg(ps, f, lx->tok, &o->reg2, &o->type2))
                                return parse_err(ps, PTX_EPARSE, "bad operand after '|'");
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
                                return parse_err(ps, PTX_EUNSUPPORTED, "register '%s' of this type",
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
                                return parse_err(ps, PTX_EUNSUPPORTED, "too many registers");
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
                        return parse_err(ps, PTX_EPARSE, "expected a register name");
                snprintf(d.name, sizeof(d.name), "%s", ps->lx.tok);
                lex_next(&ps->lx);
                if (tok_is(&ps->lx, "<")) {
                        uint64_t v;
                        lex_next(&ps->lx);
                        if (ps->lx.kind != TK_WORD || parse_uint(ps->lx.tok, &v) || !v || v > 65536)
                                return parse_err(ps, PTX_EPARSE, "bad register range");
                        d.range = (uint32_t)v;
                        lex_next(&ps->lx);
                        r = parse_expect(ps, ">");
                }
        }
        return parse_expect(ps, ";");
}

/* .param declared inside a body (call sites) or .local: per-lane memory in the function. */
static int declare_scoped(struct parser *ps, struct fctx *f, bool local)
{
        struct decl d;
        int r = parse_decl(ps, &d);
        if (r)
                return r;
        if (d.unsized || d.range)
                return parse_err(ps, PTX_EPARSE, "bad declaration '%s'", d.name);
        uint64_t size = type_size((unsigned)d.type) * d.count;
        uint32_t *cursor = local ? &f->fn->local_bytes : &f->fn->param_bytes;
        uint64_t off = (*cursor + d.align - 1) & ~(uint64_t)(d.align - 1);
        if (off + size > (1u << 16))
                return parse_err(ps, PTX_EUNSUPPORTED, "'%s': too much %s memory", d.name,
                                 local ? "local" : "param");
        struct sym *s;
        if (scope_declare(f, d.name, &s))
                return -ENOMEM;
        s->kind = local ? SYM_LOCAL : SYM_FPARAM;
        s->off = (uint32_t)off;
        s->size = (uint32_t)size;
        *cursor = (uint32_t)(off + size);
        if (tok_is(&ps->lx, "="))
                return parse_err(ps, PTX_EUNSUPPORTED, "initialised local variables");
        return parse_expect(ps, ";");
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
                                return parse_err(ps, PTX_EPARSE, "bad call return list");
                        snprintf(rets[nret++], NAME_MAX_LEN, "%s", lx->tok);
                        lex_next(lx);
                        if (tok_is(lx, ","))
                                lex_next(lx);
                }
                lex_next(lx);
                if (parse_expect(ps, ","))
                        return PTX_EPARSE;
        }
        uint32_t indirect = OPND_NONE;
        if (lx->kind != TK_WORD)
                return parse_err(ps, PTX_EPARSE, "bad call target '%s'", lx->tok);
        struct sym *rs = sym_find(&f->syms, lx->tok);
        if (rs && rs->kind == SYM_REG) {
                /* call through a register: a function pointer */
                if (type_size(rs->type) != 8)
                        return parse_err(ps, PTX_EPARSE, "call through a narrow register");
                indirect = rs->off;
        } else if (lx->tok[0] == '%') {
                return parse_err(ps, PTX_EPARSE, "unknown register '%s'", lx->tok);
        }
        snprintf(callee, sizeof(callee), "%s", lx->tok);
        lex_next(lx);
        if (tok_is(lx, ",")) {
                lex_next(lx);
                if (parse_expect(ps, "("))
                        return PTX_EPARSE;
                while (!tok_is(lx, ")")) {
                        if (lx->kind != TK_WORD || nargs >= 16)
                                return parse_err(ps, PTX_EUNSUPPORTED, "call arguments");
                        snprintf(args[nargs++], NAME_MAX_LEN, "%s", lx->tok);
                        lex_next(lx);
                        if (tok_is(lx, ","))
                                lex_next(lx);
                        else if (!tok_is(lx, ")"))
                                return parse_err(ps, PTX_EPARSE, "bad call argument list");
                }
                lex_next(lx);
        }
        if (tok_is(lx, ",")) {
                /* the prototype (or a list of possible targets) of an indirect call */
                lex_next(lx);
                if (indirect == OPND_NONE || lx->kind != TK_WORD)
                        return parse_err(ps, PTX_EPARSE,
                                         "bad call: prototype after a direct target");
                lex_next(lx);
        }
        if (parse_expect(ps, ";"))
                return PTX_EPARSE;

        if (m->ncalls >= (1u << 20))
                return parse_err(ps, PTX_EUNSUPPORTED, "too many calls");
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
                        return parse_err(ps, PTX_EUNSUPPORTED, "call argument '%s' is not a .param",
                                         args[i]);
                c->arg_src[i] = s->off;
                c->arg_size[i] = s->size;
        }
        for (unsigned i = 0; i < nret; i++) {
                struct sym *s = sym_find(&f->syms, rets[i]);
                if (!s || s->kind != SYM_FPARAM)
                        return parse_err(ps, PTX_EUNSUPPORTED, "call result '%s' is not a .param",
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
                        return parse_err(ps, PTX_EPARSE, "bad guard predicate '%s'", lx->tok);
                lex_next(lx);
        }
        if (lx->kind != TK_WORD || lx->overflow || split_opcode(lx->tok, &oc))
                return parse_err(ps, PTX_EPARSE, "expected an instruction, found '%s'", lx->tok);
        lex_next(lx);
        if (strcmp(oc.base, "call") == 0)
                return parse_call(ps, f, guard, guard_neg);

        struct opnd ops[MAX_OPERANDS];
        unsigned nops = 0;
        while (!tok_is(lx, ";")) {
                if (lx->kind == TK_EOF)
                        return parse_err(ps, PTX_EPARSE, "unexpected end of text");
                if (nops >= MAX_OPERANDS)
                        return parse_err(ps, PTX_EPARSE, "too many operands");
                int r = parse_operand(ps, f, &ops[nops]);
                if (r)
                        return r;
                nops++;
                if (tok_is(lx, ","))
                        lex_next(lx);
                else if (!tok_is(lx, ";"))
                        return parse_err(ps, PTX_EPARSE, "expected ',' or ';', found '%s'",
                                         lx->tok);
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

int parse_body(struct parser *ps, struct fctx *f)
{
        struct lexer *lx = &ps->lx;
        if (parse_expect(ps, "{"))
                return PTX_EPARSE;
        for (;;) {
                int r = 0;
                const char *next;
                if (lx->kind == TK_EOF)
                        return parse_err(ps, PTX_EPARSE, "unexpected end of text in '%s'",
                                         f->fn->name);
                if (tok_is(lx, "}")) {
                        lex_next(lx);
                        if (f->depth == 0)
                                break;
                        scope_close(f);
                        continue;
                }
                if (tok_is(lx, "{")) {
                        if (f->depth >= 64)
                                return parse_err(ps, PTX_EUNSUPPORTED, "blocks nested too deeply");
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
                        r = parse_module_var(ps, f, SP_SHARED, false);
                } else if (tok_is(lx, ".callprototype")) {
                        parse_skip_statement(ps); /* a label names it; calls do not need it */
                } else if (tok_is(lx, ".loc") || tok_is(lx, ".file")) {
                        parse_skip_line(ps); /* debug line info: no ';', ends at the newline */
                } else if (tok_is(lx, ".pragma") || tok_is(lx, ".maxnreg") ||
                           tok_is(lx, ".maxntid") || tok_is(lx, ".reqntid") ||
                           tok_is(lx, ".minnctapersm")) {
                        parse_skip_statement(ps);
                } else if (lx->kind == TK_WORD && lex_peek(lx, &next) == TK_PUNCT &&
                           strcmp(next, ":") == 0) {
                        struct sym *s = sym_find(&f->syms, lx->tok);
                        if (s && s->kind != SYM_DEAD)
                                return parse_err(ps, PTX_EPARSE, "label '%s' defined twice",
                                                 lx->tok);
                        if (!s && sym_add(&f->syms, lx->tok, &s))
                                return -ENOMEM;
                        s->kind = SYM_LABEL;
                        s->off = f->fn->ninsns;
                        lex_next(lx);
                        lex_next(lx);
                } else if (lx->kind == TK_WORD && lx->tok[0] == '.') {
                        return parse_err(ps, PTX_EUNSUPPORTED, "directive '%s' in a function body",
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

void fctx_free(struct fctx *f)
{
        for (unsigned i = 0; i < f->nshadows; i++)
                free(f->shadows[i].name);
        free(f->shadows);
        sym_free(&f->syms);
        sym_free(&f->lvars);
        for (unsigned i = 0; i < f->nfixups; i++)
                free(f->fixups[i].label);
        free(f->fixups);
}
