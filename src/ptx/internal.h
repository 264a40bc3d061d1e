/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PTX interpreter's decoded form, shared by the parser (parse.c, decode.c) and the executor
 * (exec.c, launch.c): a module is an array of functions, each a flat array of fixed-size
 * instructions whose operands are byte offsets into a per-warp register frame.
 */
#ifndef VGPU_PTX_INTERNAL_H
#define VGPU_PTX_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ptx/ptx.h"

#define WARP 32

/* Generic address windows (documented in docs/ptx.md): shared and local memory of the running
 * thread appear at these bases in the generic space; everything else is global. */
#define PTX_SHARED_WINDOW 0xfd00000000000000ull
#define PTX_LOCAL_WINDOW  0xfe00000000000000ull
#define PTX_PARAM_WINDOW  0xfb00000000000000ull
#define PTX_WINDOW_SIZE   0x0100000000000000ull

/* Value types. The order matters: see type_size and the is_* helpers. */
enum ptx_type {
        T_NONE = 0,
        T_PRED,
        T_B8,
        T_B16,
        T_B32,
        T_B64,
        T_U8,
        T_U16,
        T_U32,
        T_U64,
        T_S8,
        T_S16,
        T_S32,
        T_S64,
        T_F16,
        T_BF16,
        T_F32,
        T_F64,
        T_F16X2,
        T_BF16X2,
        T_B128,
};

static inline unsigned type_size(unsigned t)
{
        static const unsigned char sz[] = {0, 4, 1, 2, 4, 8, 1, 2, 4, 8, 1,
                                           2, 4, 8, 2, 2, 4, 8, 4, 4, 16};
        return t < sizeof(sz) ? sz[t] : 0;
}
static inline bool type_is_signed(unsigned t)
{
        return t >= T_S8 && t <= T_S64;
}
static inline bool type_is_float(unsigned t)
{
        return t >= T_F16 && t <= T_BF16X2;
}
static inline bool type_is_int(unsigned t)
{
        return t >= T_B8 && t <= T_S64;
}

/* State spaces. */
enum ptx_space { SP_GENERIC = 0, SP_GLOBAL, SP_SHARED, SP_LOCAL, SP_CONST, SP_PARAM, SP_KPARAM };

/* Rounding modifiers. */
enum ptx_round {
        RND_NONE = 0,
        RND_RN,
        RND_RZ,
        RND_RM,
        RND_RP,
        RND_RNI,
        RND_RZI,
        RND_RMI,
        RND_RPI,
        RND_RNA
};

/* Comparison operators of setp/set/slct. */
enum ptx_cmp {
        CMP_EQ,
        CMP_NE,
        CMP_LT,
        CMP_LE,
        CMP_GT,
        CMP_GE,
        CMP_LO,
        CMP_LS,
        CMP_HI,
        CMP_HS,
        CMP_EQU,
        CMP_NEU,
        CMP_LTU,
        CMP_LEU,
        CMP_GTU,
        CMP_GEU,
        CMP_NUM,
        CMP_NAN
};

/* Atomic operations. */
enum ptx_atom {
        ATOM_ADD,
        ATOM_MIN,
        ATOM_MAX,
        ATOM_AND,
        ATOM_OR,
        ATOM_XOR,
        ATOM_EXCH,
        ATOM_CAS,
        ATOM_INC,
        ATOM_DEC
};

/* Executor operations. */
enum ptx_op {
        OP_NOP = 0,
        OP_MOV,    /* d = a (width of type) */
        OP_SREG,   /* d = special register imm (SREG_*) */
        OP_ADDR,   /* d = address of a symbol: space in t2, offset in imm */
        OP_PACK,   /* d = {o[1..n]}: n = vec, element type t */
        OP_UNPACK, /* {o[0..n-1]} = o[4] */
        OP_ADD,
        OP_SUB,
        OP_MUL,
        OP_MULHI,
        OP_MULWIDE,
        OP_MAD,
        OP_MADHI,
        OP_MADWIDE,
        OP_DIV,
        OP_REM,
        OP_ABS,
        OP_NEG,
        OP_MIN,
        OP_MAX,
        OP_AND,
        OP_OR,
        OP_XOR,
        OP_NOT,
        OP_CNOT,
        OP_SHL,
        OP_SHR,
        OP_POPC,
        OP_CLZ,
        OP_BREV,
        OP_BFE,
        OP_BFI,
        OP_PRMT,
        OP_SHF,
        OP_LOP3,
        OP_ADDSAT,
        OP_SUBSAT,
        OP_SAD,   /* d = c + |a - b| */
        OP_BFIND, /* d = most significant non-sign bit of a (sub 1: as a shift amount) */
        OP_FNS,   /* d = position of the o[3]-th set bit of a from bit b */
        OP_DP4A,  /* d = c + four byte products (t: a signed, t2: b signed; sub 1/2: dp2a lo/hi) */
        OP_MUL24, /* d = 24-bit a * b, low (sub 0) or bits 47..16 (sub 1), + c for mad24 */
        OP_ADDC,  /* add.cc / addc: carry in the warp's carry lanes; flags say which */
        OP_SUBC,
        OP_FFMA,
        OP_FDIV,
        OP_RCP,
        OP_SQRT,
        OP_RSQRT,
        OP_EX2,
        OP_LG2,
        OP_SIN,
        OP_COS,
        OP_TANH,
        OP_COPYSIGN,
        OP_TESTP,
        OP_SETP, /* o[0] (o[1]) preds = a cmp b (boolop with c) */
        OP_SET,  /* d (int/float) = a cmp b */
        OP_SELP, /* d = c ? a : b */
        OP_SLCT, /* d = c >= 0 ? a : b (c's type in t2) */
        OP_PAND,
        OP_POR,
        OP_PXOR,
        OP_PNOT,
        OP_PMOV,
        OP_CVT, /* d (t) = a (t2), rounding and sat in flags */
        OP_LD,
        OP_ST,
        OP_ATOM,
        OP_CVTA_TO,
        OP_CVTA_FROM,
        OP_ISSPACEP,
        OP_LD_KPARAM, /* d = kernel param at imm (broadcast) */
        OP_LD_FPARAM,
        OP_ST_FPARAM, /* per-lane function param memory at a[+imm] */
        OP_BRA,
        OP_CALL,
        OP_RET,
        OP_EXIT,
        OP_BAR,
        OP_TRAP,
        OP_SHFL,
        OP_VOTE,
        OP_MATCH,
        OP_ACTIVEMASK,
        OP_REDUX, /* d = op over the active lanes' a (sub: ATOM_ADD/MIN/MAX/AND/OR/XOR) */
        OP_ELECT, /* d = the lowest active lane, p = (lane == d) */
        OP_WARPSYNC,
        OP_COUNT
};

/* Instruction flags. */
#define F_FTZ    0x01
#define F_SAT    0x02
#define F_APPROX 0x04
#define F_CC     0x08 /* writes carry */
#define F_CIN    0x10 /* reads carry */
#define F_SIGNX  0x20 /* ld/cvt: sign-extend into the register */
#define F_GUARDN 0x40 /* guard predicate negated */

/* Special registers for OP_SREG (imm). */
enum ptx_sreg {
        SREG_TID_X,
        SREG_TID_Y,
        SREG_TID_Z,
        SREG_NTID_X,
        SREG_NTID_Y,
        SREG_NTID_Z,
        SREG_CTAID_X,
        SREG_CTAID_Y,
        SREG_CTAID_Z,
        SREG_NCTAID_X,
        SREG_NCTAID_Y,
        SREG_NCTAID_Z,
        SREG_LANEID,
        SREG_WARPID,
        SREG_NWARPID,
        SREG_SMID,
        SREG_NSMID,
        SREG_GRIDID,
        SREG_LANEMASK_EQ,
        SREG_LANEMASK_LT,
        SREG_LANEMASK_LE,
        SREG_LANEMASK_GT,
        SREG_LANEMASK_GE,
        SREG_CLOCK,
        SREG_CLOCK64,
        SREG_GLOBALTIMER,
        SREG_GLOBALTIMER_LO,
        SREG_TOTALSMEM,
        SREG_DYNSMEM,
};

/* Operand: a byte offset into the register frame, or into the function's constant pool when
 * OPND_CONST is set. OPND_NONE: no operand. */
#define OPND_CONST 0x80000000u
#define OPND_NONE  0xffffffffu

struct ptx_insn {
        uint8_t op;     /* enum ptx_op */
        uint8_t t;      /* enum ptx_type: operation type */
        uint8_t t2;     /* second type (cvt source), or space, or sub-operation */
        uint8_t flags;  /* F_* */
        uint8_t sub;    /* cmp, atom op, shfl mode, vote mode, rounding, bool op... */
        uint8_t sub2;   /* second sub-operation (setp bool op, cvt rounding) */
        uint8_t vec;    /* vector count for ld/st/pack */
        uint8_t regw;   /* ld/st: register width in bytes */
        uint32_t guard; /* predicate operand, or OPND_NONE */
        uint32_t o[5];  /* operands: o[0] destination first */
        uint32_t line;  /* PTX source line */
        int64_t imm;    /* address offset, branch target, call index, sreg... */
};

/* Where the arguments of one call go (formal parameter offsets of the callee). */
/* Functions the CUDA runtime provides on a GPU, which the sim implements itself. */
enum ptx_builtin {
        BUILTIN_NONE = 0,
        BUILTIN_ASSERTFAIL, /* __assertfail: a failed device assert, ends the launch (trap) */
        BUILTIN_VPRINTF,    /* vprintf: device printf; the sim prints nothing and returns 0 */
};

/* Function "addresses" (function pointers, indirect calls): this base + 16 * function index,
 * outside any memory window. */
#define PTX_FUNC_BASE 0xfa00000000000000ull

struct ptx_call {
        uint32_t builtin;  /* enum ptx_builtin; callee is meaningless when set */
        uint32_t callee;   /* function index */
        uint32_t indirect; /* register (64-bit) holding the callee's address, or OPND_NONE */
        uint32_t nargs;
        uint32_t nret;
        uint32_t arg_src[16]; /* caller param-memory offsets */
        uint32_t arg_size[16];
        uint32_t ret_dst[4];  /* caller param-memory offsets receiving the results */
        uint32_t ret_size[4]; /* and their sizes (a callee's larger results are cut) */
};

struct ptx_param {
        char *name;
        uint32_t offset;
        uint32_t size;
        uint32_t align;
};

struct ptx_func {
        char *name;
        bool is_entry;
        bool defined;
        struct ptx_param *params; /* formal parameters (kernel: in the launch buffer) */
        unsigned nparams;
        struct ptx_param *rets; /* return parameters (.func only) */
        unsigned nrets;
        uint32_t param_bytes;  /* .func: per-lane param memory (formals, rets, call-site) */
        uint32_t kparam_bytes; /* .entry: size of the launch parameter buffer */
        uint32_t local_bytes;  /* per-thread .local memory */
        uint32_t frame_bytes;  /* register frame size (per warp), param/local excluded */
        uint32_t maxntid;      /* .maxntid: most threads per block (product), 0: none */
        uint32_t reqntid[3];   /* .reqntid: the block shape required, 0s: none */
        uint32_t nregs;        /* registers declared (for cuFuncGetAttribute) */
        uint32_t *shared_vars; /* static .shared variables it declares or names (mod->vars) */
        unsigned nshared_vars, cap_shared_vars;
        uint64_t static_shared; /* .entry: its and its callees' .shared, laid out alone */
        uint64_t shared_extent; /* .entry: where the last of them ends in the module's layout */
        struct ptx_insn *insns;
        unsigned ninsns;
        unsigned cap_insns;
        uint8_t *consts; /* constant pool, each value splatted over 32 lanes */
        uint32_t consts_bytes;
        uint32_t consts_cap;
        uint32_t line;
};

struct ptx_var {
        char *name;
        uint8_t space;  /* SP_GLOBAL, SP_CONST, SP_SHARED */
        bool is_extern; /* extern .shared: the dynamic shared memory */
        uint32_t align;
        uint64_t size;
        uint64_t offset; /* in the globals area, or in static shared memory */
        uint32_t user;   /* while parsing: 1 + the last function recorded as using it */
};

struct ptx_kernel {
        struct ptx_module *mod;
        unsigned func; /* index in mod->funcs */
};

struct ptx_module {
        struct ptx_func *funcs;
        unsigned nfuncs;
        struct ptx_call *calls;
        unsigned ncalls;
        struct ptx_var *vars;
        unsigned nvars;
        struct ptx_kernel *kernels;
        unsigned nkernels;
        uint8_t *globals_image; /* initial contents of .global/.const variables */
        uint8_t *globals;       /* the module's own storage, or NULL when bound */
        uint64_t globals_size;
        uint64_t globals_base; /* device address of the globals area */
        uint64_t shared_bytes; /* every static .shared variable, laid out once for all kernels */
        uint32_t max_frame;    /* largest register frame over all functions */
        uint32_t max_param;    /* largest per-lane param memory */
        uint32_t max_local;    /* largest per-thread local memory */
        unsigned version_major, version_minor, sm;
};

/* ptx_parse - parse PTX text (len bytes, need not be NUL-terminated) into mod, zeroed by the
 * caller. Returns 0, PTX_EPARSE, PTX_EUNSUPPORTED or -ENOMEM with a message in err. */
int ptx_parse(struct ptx_module *mod, const char *text, size_t len, char *err, size_t errlen);

/* ptx_module_clear - free everything mod owns (not mod itself). */
void ptx_module_clear(struct ptx_module *mod);

#endif
