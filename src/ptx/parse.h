/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The parser's private interface between the statement parser (parse.c) and the instruction
 * decoder (decode.c): tokens, parsed operands, and the per-function context that owns register,
 * parameter and label names while a function body is being read.
 */
#ifndef VGPU_PTX_PARSE_H
#define VGPU_PTX_PARSE_H

#include "ptx/internal.h"
#include "ptx/lex.h"

#define MAX_OPERANDS 12
#define MAX_MODS     16

/* A name in a function's scope. */
/* SYM_DEAD: a name whose { } scope ended. */
enum sym_kind { SYM_REG, SYM_KPARAM, SYM_FPARAM, SYM_LOCAL, SYM_LABEL, SYM_DEAD };

struct sym {
        char *name;
        uint8_t kind;
        uint8_t type; /* registers: declared type */
        uint32_t off; /* register: frame offset; param: param offset; local: local offset */
        uint32_t size;
};

struct symtab {
        struct sym *v;
        unsigned n, cap; /* cap a power of two; open addressing */
};

enum opnd_kind { OK_REG, OK_INT, OK_F32, OK_F64, OK_ADDR, OK_VEC, OK_SYM, OK_SREG, OK_SINK };

struct opnd {
        uint8_t kind;
        bool neg;      /* '!' before a predicate */
        uint8_t type;  /* OK_REG: declared type */
        uint32_t reg;  /* OK_REG: frame offset; OK_SREG: SREG_* */
        uint32_t reg2; /* second destination after '|', or OPND_NONE */
        uint8_t type2;
        int64_t ival;           /* OK_INT value; OK_ADDR displacement */
        uint64_t bits;          /* OK_F32 / OK_F64 bit pattern */
        char sym[NAME_MAX_LEN]; /* OK_SYM / OK_ADDR symbol base ("" for a register or none) */
        bool addr_reg;          /* OK_ADDR: has a register base */
        uint8_t nvec;           /* OK_VEC */
        uint32_t vec[8];
        uint8_t vtype[8];
        bool vsink[8];
        bool visimm[8]; /* an integer immediate element (vimm) */
        int64_t vimm[8];
};

/* Label reference waiting for the label's definition. */
struct fixup {
        unsigned insn;
        char *label;
        uint32_t line;
};

/* A name declared inside a { } block, with what it meant outside. */
struct shadow {
        char *name;
        struct sym saved;
        bool existed;
        unsigned depth;
};

struct fctx {
        struct ptx_module *mod;
        struct ptx_func *fn;
        unsigned fn_index;
        struct symtab syms;
        struct symtab *vars;  /* module variables: off is the index in mod->vars */
        struct symtab lvars;  /* the function's own .shared variables, likewise */
        struct symtab *funcs; /* functions: off is the index in mod->funcs */
        struct shadow *shadows;
        unsigned nshadows, capshadows;
        unsigned depth; /* { } nesting inside the body */
        struct fixup *fixups;
        unsigned nfixups, capfixups;
        uint32_t line;
        char *err;
        size_t errlen;
};

/* Instruction mnemonic split into its base and modifiers. */
struct opcode {
        char base[32];
        char mods[MAX_MODS][32];
        unsigned nmods;
};

/* Symbol table: find or insert. sym_find returns NULL when absent. */
struct sym *sym_find(struct symtab *t, const char *name);
int sym_add(struct symtab *t, const char *name, struct sym **ret);
void sym_free(struct symtab *t);

/* fctx_error - format a message with the current line into the caller's buffer; returns code. */
int fctx_error(struct fctx *f, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* fn_reg_alloc - allocate a register (or temporary) of type in the function's frame. */
uint32_t fn_reg_alloc(struct ptx_func *fn, unsigned type);

/* fn_const - constant-pool operand for bits of type (splatted over 32 lanes), or OPND_NONE. */
uint32_t fn_const(struct ptx_func *fn, unsigned type, uint64_t bits);

/* fn_emit - append an instruction; returns a pointer valid until the next emit, NULL on ENOMEM. */
struct ptx_insn *fn_emit(struct ptx_func *fn);

/*
 * fctx_use_var - record that f's function declares or names mod->vars[var]; only static .shared
 * variables are recorded (they make up its kernels' shared size, link.c). 0 or -ENOMEM.
 */
int fctx_use_var(struct fctx *f, uint32_t var);

/*
 * decode_insn - turn one parsed statement into executor instructions appended to f->fn.
 * Returns 0, PTX_EUNSUPPORTED or PTX_EPARSE (with a message) or -ENOMEM.
 */
int decode_insn(struct fctx *f, const struct opcode *oc, struct opnd *ops, unsigned nops,
                uint32_t guard, bool guard_neg);

/* ---- between the module parser (parse.c) and the body parser (parse_body.c) ---- */

/* The parser: tokens, the module being built, module-scope names, unresolved calls. */
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

/* parse_err - format "line N: ..." into the caller's error buffer; returns code. */
int parse_err(struct parser *ps, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* parse_expect - consume the token s, or fail with PTX_EPARSE. */
int parse_expect(struct parser *ps, const char *s);

/* parse_skip_line - skip to the end of the current line (and its ';' if it has one). */
void parse_skip_line(struct parser *ps);

/* parse_skip_statement - skip to just after the next ';'. */
void parse_skip_statement(struct parser *ps);

/* parse_type_word - the T_* of a type modifier (".u32"), or -1. */
int parse_type_word(const char *w);

/* parse_uint - a C integer literal (decimal, 0x, 0 octal); 0 or -1. */
int parse_uint(const char *s, uint64_t *ret);

/* parse_decl - [.align N] [.ptr ...] .type name [<N>] [[N]...] into *d. 0 or PTX_E*. */
int parse_decl(struct parser *ps, struct decl *d);

/*
 * parse_module_var - a .global/.const/.shared variable after its space keyword: at module scope
 * (f NULL), or a .shared one in the body of f's function, a name only that function sees. Its
 * storage is the module's either way. 0, PTX_E* or -ENOMEM.
 */
int parse_module_var(struct parser *ps, struct fctx *f, int space, bool is_extern);

/*
 * parse_body - a function body from '{' to its '}' into f->fn: declarations, scopes, labels,
 * statements (decoded by decode_insn); labels resolved at the end. 0, PTX_E* or -ENOMEM.
 */
int parse_body(struct parser *ps, struct fctx *f);

/* fctx_free - release what a function context owns (names, shadows, fixups). */
void fctx_free(struct fctx *f);

/*
 * link_module - once every function is parsed: resolve calls to their functions (or builtins),
 * size the frames, list the kernels and work out each kernel's static shared memory (link.c).
 * 0, PTX_E* with a message, or -ENOMEM.
 */
int link_module(struct parser *ps);

#endif
