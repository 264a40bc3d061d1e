// SPDX-License-Identifier: Apache-2.0
// Memory of the executor: fault records, address translation (the launch's callback behind a
// two-region cache, shared, local and parameter windows), loads and stores with a whole-warp fast
// path, and atomics that are atomic across worker threads.
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ptx/lanes.h"

/* ---- faults ---- */

int exec_fault(struct exec_ctx *c, struct warp *w, int code, uint64_t addr, int lane,
               const struct ptx_insn *in)
{
        if (!c->fault) {
                c->fault = code;
                c->fault_addr = addr;
                c->fault_lane = lane < 0 ? 0 : (uint32_t)lane;
                c->fault_warp = w ? w->id : 0;
                c->fault_line = in ? in->line : 0;
        }
        return code;
}

/* Global memory: the cached regions, the module's own variables, then the callback. */
static uint8_t *global_ptr(struct exec_ctx *c, uint64_t addr, unsigned size)
{
        struct exec_launch *L = c->L;
        for (int i = 0; i < 2; i++) {
                struct ptx_mem_region *r = &c->cache[i];
                if (addr >= r->base && addr - r->base <= r->size &&
                    r->size - (addr - r->base) >= size)
                        return (uint8_t *)r->host + (addr - r->base);
        }
        if (L->globals && addr >= L->globals_base && addr - L->globals_base <= L->globals_size &&
            L->globals_size - (addr - L->globals_base) >= size)
                return L->globals + (addr - L->globals_base);
        if (!L->l->mem)
                return NULL;
        struct ptx_mem_region r = {0};
        if (L->l->mem(L->l->mem_ctx, addr, size, &r) != 0 || !r.host)
                return NULL;
        /* trust but verify: the region must contain the access */
        if (addr < r.base || addr - r.base > r.size || r.size - (addr - r.base) < size)
                return NULL;
        c->cache[c->cache_next] = r;
        c->cache_next ^= 1;
        return (uint8_t *)r.host + (addr - r.base);
}

static uint8_t *local_ptr(struct exec_ctx *c, struct warp *w, int lane, uint64_t addr,
                          unsigned size)
{
        uint64_t ml = c->L->mod->max_local;
        if (!ml)
                return NULL;
        uint64_t depth = addr / ml, off = addr % ml;
        if (depth >= w->nframes || off + size > ml)
                return NULL;
        return frame_local(c->L, w->frames[depth]) + (size_t)lane * ml + off;
}

/* Host pointer for an access of size bytes at addr in space by lane, or NULL after a fault. */
static uint8_t *mem_lane(struct exec_ctx *c, struct warp *w, int lane, int space, uint64_t addr,
                         unsigned size, bool write, const struct ptx_insn *in)
{
        uint8_t *p = NULL;
        if (size > 1 && (addr & (size - 1))) {
                exec_fault(c, w, PTX_EMISALIGNED, addr, lane, in);
                return NULL;
        }
        if (space == SP_GENERIC) {
                if (addr - PTX_SHARED_WINDOW < PTX_WINDOW_SIZE) {
                        space = SP_SHARED;
                        addr -= PTX_SHARED_WINDOW;
                } else if (addr - PTX_LOCAL_WINDOW < PTX_WINDOW_SIZE) {
                        space = SP_LOCAL;
                        addr -= PTX_LOCAL_WINDOW;
                } else if (addr - PTX_PARAM_WINDOW < PTX_WINDOW_SIZE) {
                        space = SP_KPARAM;
                        addr -= PTX_PARAM_WINDOW;
                } else {
                        space = SP_GLOBAL;
                }
        }
        switch (space) {
        case SP_SHARED:
                if (addr <= c->L->shared_size && c->L->shared_size - addr >= size)
                        p = c->shared + addr;
                break;
        case SP_LOCAL:
                p = local_ptr(c, w, lane, addr, size);
                break;
        case SP_KPARAM:
                if (!write && addr <= c->L->kfn->kparam_bytes &&
                    c->L->kfn->kparam_bytes - addr >= size)
                        p = (uint8_t *)c->L->params + addr;
                break;
        default:
                p = global_ptr(c, addr, size);
                break;
        }
        if (!p)
                exec_fault(c, w, PTX_EILLEGAL_ADDRESS, addr, lane, in);
        return p;
}

long exec_read(struct exec_ctx *c, struct warp *w, int lane, uint64_t addr, void *buf, size_t len,
               bool stop_at_nul, const struct ptx_insn *in)
{
        uint8_t *out = buf;
        for (size_t i = 0; i < len; i++) {
                uint8_t *p = mem_lane(c, w, lane, SP_GENERIC, addr + i, 1, false, in);
                if (!p)
                        return -1;
                out[i] = *p;
                if (stop_at_nul && !*p)
                        return (long)i + 1;
        }
        return (long)len;
}

/* ---- loads and stores ---- */

static inline void lane_addresses(const struct ptx_insn *in, const uint8_t *regs,
                                  const uint8_t *consts, uint64_t ad[WARP])
{
        if (in->o[4] == OPND_NONE) {
                for (int i = 0; i < WARP; i++)
                        ad[i] = (uint64_t)in->imm;
        } else if (in->sub2 == 4) {
                const uint32_t *A = (const uint32_t *)PTR(in->o[4]);
                for (int i = 0; i < WARP; i++)
                        ad[i] = (uint64_t)A[i] + (uint64_t)in->imm;
        } else {
                const uint64_t *A = (const uint64_t *)PTR(in->o[4]);
                for (int i = 0; i < WARP; i++)
                        ad[i] = A[i] + (uint64_t)in->imm;
        }
}

/* Host base for a whole-warp access when every active lane falls in one region, else NULL. */
static inline bool fits(const uint64_t ad[WARP], uint32_t m, uint64_t base, uint64_t size,
                        unsigned total)
{
        if (size < total)
                return false;
        uint64_t limit = size - total, amask = total - 1, bad = 0;
        if (m == FULL) {
                for (int i = 0; i < WARP; i++)
                        bad |= (uint64_t)(ad[i] - base > limit) | (ad[i] & amask);
        } else {
                for (int i = 0; i < WARP; i++) {
                        uint64_t a = (m >> i & 1) ? ad[i] : base;
                        bad |= (uint64_t)(a - base > limit) | (a & amask);
                }
        }
        return !bad;
}

static inline uint8_t *fast_base(struct exec_ctx *c, int space, const uint64_t ad[WARP], uint32_t m,
                                 unsigned total, uint64_t *ret_base)
{
        if (total & (total - 1))
                return NULL;
        if (space == SP_SHARED) {
                *ret_base = 0;
                return fits(ad, m, 0, c->L->shared_size, total) ? c->shared : NULL;
        }
        if (space != SP_GLOBAL && space != SP_GENERIC && space != SP_CONST)
                return NULL;
        for (int k = 0; k < 2; k++) {
                const struct ptx_mem_region *r = &c->cache[k];
                if ((r->base & (total - 1)) == 0 && fits(ad, m, r->base, r->size, total)) {
                        /* host address of lane i: host + (ad[i] - base), never host - base,
                         * which may point nowhere */
                        *ret_base = r->base;
                        return r->host;
                }
        }
        return NULL;
}

#define GATHER(T)                                                                                  \
        for (unsigned v = 0; v < vec; v++) {                                                       \
                T *D_ = (T *)(regs + in->o[v]);                                                    \
                if (m == FULL) {                                                                   \
                        for (int i = 0; i < WARP; i++)                                             \
                                memcpy(&D_[i], base + (ad[i] - rbase) + v * sizeof(T), sizeof(T)); \
                } else {                                                                           \
                        for (int i = 0; i < WARP; i++)                                             \
                                if (m >> i & 1)                                                    \
                                        memcpy(&D_[i], base + (ad[i] - rbase) + v * sizeof(T),     \
                                               sizeof(T));                                         \
                }                                                                                  \
        }                                                                                          \
        return 0

#define SCATTER(T)                                                                                 \
        for (unsigned v = 0; v < vec; v++) {                                                       \
                const T *S_ = (const T *)PTR(in->o[v]);                                            \
                for (int i = 0; i < WARP; i++)                                                     \
                        if (m >> i & 1)                                                            \
                                memcpy(base + (ad[i] - rbase) + v * sizeof(T), &S_[i], sizeof(T)); \
        }                                                                                          \
        return 0

/*
 * Host address of a coalesced access: all 32 lanes active, lane i at ad[0] + i * sz, the whole
 * run inside one cached region (or shared memory) and aligned. NULL otherwise.
 */
static inline uint8_t *coalesced(struct exec_ctx *c, int space, const uint64_t ad[WARP], uint32_t m,
                                 unsigned sz)
{
        uint64_t bad = 0, a0 = ad[0], total = (uint64_t)sz * WARP;
        if (m != FULL || (a0 & (sz - 1)))
                return NULL;
        for (int i = 0; i < WARP; i++)
                bad |= ad[i] ^ (a0 + (uint64_t)i * sz);
        if (bad)
                return NULL;
        if (space == SP_SHARED)
                return a0 <= c->L->shared_size && c->L->shared_size - a0 >= total ? c->shared + a0
                                                                                  : NULL;
        if (space != SP_GLOBAL && space != SP_GENERIC && space != SP_CONST)
                return NULL;
        for (int k = 0; k < 2; k++) {
                const struct ptx_mem_region *r = &c->cache[k];
                if (a0 >= r->base && a0 - r->base <= r->size && r->size - (a0 - r->base) >= total)
                        return (uint8_t *)r->host + (a0 - r->base);
        }
        return NULL;
}

/* Copy one register's worth of lanes between registers and device memory. */
static inline void copy_lanes(void *dst, const void *src, unsigned sz)
{
        switch (sz) {
        case 1:
                memcpy(dst, src, WARP);
                break;
        case 2:
                memcpy(dst, src, 2 * WARP);
                break;
        case 4:
                memcpy(dst, src, 4 * WARP);
                break;
        default:
                memcpy(dst, src, 8 * WARP);
                break;
        }
}

/*
 * Shared memory through a 32-bit address register (ld.shared [%r+imm]), the commonest access of
 * tiled kernels: checked and gathered with 32-bit lanes. NULL when the fast path does not apply
 * or some lane is out of range (the slow path then reports the fault).
 */
static inline const uint32_t *shared32(struct exec_ctx *c, const struct ptx_insn *in,
                                       const uint8_t *regs, const uint8_t *consts, uint32_t m,
                                       unsigned sz, uint32_t off[WARP], bool *ret_contig)
{
        if (in->t2 != SP_SHARED || in->sub2 != 4 || in->o[4] == OPND_NONE || m != FULL ||
            c->L->shared_size < sz)
                return NULL;
        const uint32_t *A = (const uint32_t *)PTR(in->o[4]);
        uint32_t imm = (uint32_t)in->imm, limit = (uint32_t)(c->L->shared_size - sz), bad = 0;
        uint32_t spread = 0, a0 = A[0] + imm;
        for (int i = 0; i < WARP; i++) {
                uint32_t a = A[i] + imm;
                off[i] = a;
                bad |= (uint32_t)(a > limit) | (a & (sz - 1));
                spread |= a ^ (a0 + (uint32_t)i * sz);
        }
        if (bad)
                return NULL;
        *ret_contig = !spread;
        return off;
}

HOT int exec_ld(struct exec_ctx *c, struct warp *w, const struct ptx_insn *in, uint8_t *regs,
                const uint8_t *consts, uint32_t m)
{
        unsigned sz = type_size(in->t), vec = in->vec, rw = in->regw;
        uint32_t off[WARP];
        bool contig = false;
        if (sz == rw && vec == 1 && (sz == 4 || sz == 8) &&
            shared32(c, in, regs, consts, m, sz, off, &contig)) {
                const uint8_t *sh = c->shared;
                if (contig)
                        copy_lanes(regs + in->o[0], sh + off[0], sz);
                else if (sz == 4) {
                        uint32_t *D = (uint32_t *)(regs + in->o[0]);
                        for (int i = 0; i < WARP; i++)
                                memcpy(&D[i], sh + off[i], 4);
                } else {
                        uint64_t *D = (uint64_t *)(regs + in->o[0]);
                        for (int i = 0; i < WARP; i++)
                                memcpy(&D[i], sh + off[i], 8);
                }
                return 0;
        }
        uint64_t ad[WARP];
        lane_addresses(in, regs, consts, ad);
        if (sz == rw && vec == 1) {
                uint8_t *p = coalesced(c, in->t2, ad, m, sz);
                if (p) {
                        copy_lanes(regs + in->o[0], p, sz);
                        return 0;
                }
        }
        if (sz == rw) {
                uint64_t rbase = 0;
                uint8_t *base = fast_base(c, in->t2, ad, m, sz * vec, &rbase);
                if (base) {
                        switch (sz) {
                        case 1:
                                GATHER(uint8_t);
                        case 2:
                                GATHER(uint16_t);
                        case 4:
                                GATHER(uint32_t);
                        default:
                                GATHER(uint64_t);
                        }
                }
        }
        for (int i = 0; i < WARP; i++) {
                if (!(m >> i & 1))
                        continue;
                uint8_t *p = mem_lane(c, w, i, in->t2, ad[i], sz * vec, false, in);
                if (!p)
                        return c->fault;
                for (unsigned v = 0; v < vec; v++) {
                        uint64_t val = rd_bits(p + v * sz, sz);
                        if (in->flags & F_SIGNX)
                                val = (uint64_t)sext(val, sz);
                        wr_bits(regs + in->o[v] + (size_t)i * rw, rw, val);
                }
        }
        return 0;
}

HOT int exec_st(struct exec_ctx *c, struct warp *w, const struct ptx_insn *in, uint8_t *regs,
                const uint8_t *consts, uint32_t m)
{
        unsigned sz = type_size(in->t), vec = in->vec, rw = in->regw;
        uint32_t off[WARP];
        bool contig = false;
        if (sz == rw && vec == 1 && (sz == 4 || sz == 8) &&
            shared32(c, in, regs, consts, m, sz, off, &contig)) {
                uint8_t *sh = c->shared;
                /* in lane order: when lanes collide the highest lane's value stays, as on a GPU
                 * (which lane wins is undefined there) */
                if (contig) {
                        copy_lanes(sh + off[0], PTR(in->o[0]), sz);
                } else if (sz == 4) {
                        const uint32_t *S = (const uint32_t *)PTR(in->o[0]);
                        for (int i = 0; i < WARP; i++)
                                memcpy(sh + off[i], &S[i], 4);
                } else {
                        const uint64_t *S = (const uint64_t *)PTR(in->o[0]);
                        for (int i = 0; i < WARP; i++)
                                memcpy(sh + off[i], &S[i], 8);
                }
                return 0;
        }
        uint64_t ad[WARP];
        lane_addresses(in, regs, consts, ad);
        if (sz == rw && vec == 1 && in->t2 != SP_CONST) {
                uint8_t *p = coalesced(c, in->t2, ad, m, sz);
                if (p) {
                        copy_lanes(p, PTR(in->o[0]), sz);
                        return 0;
                }
        }
        if (sz == rw && in->t2 != SP_CONST) {
                uint64_t rbase = 0;
                uint8_t *base = fast_base(c, in->t2, ad, m, sz * vec, &rbase);
                if (base) {
                        switch (sz) {
                        case 1:
                                SCATTER(uint8_t);
                        case 2:
                                SCATTER(uint16_t);
                        case 4:
                                SCATTER(uint32_t);
                        default:
                                SCATTER(uint64_t);
                        }
                }
        }
        for (int i = 0; i < WARP; i++) {
                if (!(m >> i & 1))
                        continue;
                uint8_t *p = mem_lane(c, w, i, in->t2, ad[i], sz * vec, true, in);
                if (!p)
                        return c->fault;
                for (unsigned v = 0; v < vec; v++)
                        wr_bits(p + v * sz, sz, rd_bits(PTR(in->o[v]) + (size_t)i * rw, rw));
        }
        return 0;
}

/* ---- atomics ---- */

static uint64_t atom_apply(const struct ptx_insn *in, uint8_t *p, uint64_t b, uint64_t cv)
{
        unsigned t = in->t;
        int op = in->sub;
        if (type_size(t) == 4) {
                uint32_t *q = (uint32_t *)p;
                uint32_t x = (uint32_t)b, old, nv;
                switch (op) {
                case ATOM_ADD:
                        if (t != T_F32)
                                return __atomic_fetch_add(q, x, __ATOMIC_RELAXED);
                        break;
                case ATOM_AND:
                        return __atomic_fetch_and(q, x, __ATOMIC_RELAXED);
                case ATOM_OR:
                        return __atomic_fetch_or(q, x, __ATOMIC_RELAXED);
                case ATOM_XOR:
                        return __atomic_fetch_xor(q, x, __ATOMIC_RELAXED);
                case ATOM_EXCH:
                        return __atomic_exchange_n(q, x, __ATOMIC_RELAXED);
                case ATOM_CAS:
                        old = (uint32_t)b;
                        __atomic_compare_exchange_n(q, &old, (uint32_t)cv, false, __ATOMIC_RELAXED,
                                                    __ATOMIC_RELAXED);
                        return old;
                default:
                        break;
                }
                old = __atomic_load_n(q, __ATOMIC_RELAXED);
                do {
                        float fo, fx;
                        memcpy(&fo, &old, 4);
                        memcpy(&fx, &x, 4);
                        switch (op) {
                        case ATOM_ADD:
                                fo = fo + fx;
                                memcpy(&nv, &fo, 4);
                                break;
                        case ATOM_MIN:
                                if (t == T_F32) {
                                        fo = fmin_ptx(fo, fx);
                                        memcpy(&nv, &fo, 4);
                                } else {
                                        nv = t == T_S32 ? ((int32_t)old < (int32_t)x ? old : x)
                                                        : (old < x ? old : x);
                                }
                                break;
                        case ATOM_MAX:
                                if (t == T_F32) {
                                        fo = fmax_ptx(fo, fx);
                                        memcpy(&nv, &fo, 4);
                                } else {
                                        nv = t == T_S32 ? ((int32_t)old > (int32_t)x ? old : x)
                                                        : (old > x ? old : x);
                                }
                                break;
                        case ATOM_INC:
                                nv = old >= x ? 0 : old + 1;
                                break;
                        default: /* ATOM_DEC */
                                nv = (old == 0 || old > x) ? x : old - 1;
                                break;
                        }
                } while (!__atomic_compare_exchange_n(q, &old, nv, true, __ATOMIC_RELAXED,
                                                      __ATOMIC_RELAXED));
                return old;
        }
        uint64_t *q = (uint64_t *)p;
        uint64_t old, nv;
        switch (op) {
        case ATOM_ADD:
                if (t != T_F64)
                        return __atomic_fetch_add(q, b, __ATOMIC_RELAXED);
                break;
        case ATOM_AND:
                return __atomic_fetch_and(q, b, __ATOMIC_RELAXED);
        case ATOM_OR:
                return __atomic_fetch_or(q, b, __ATOMIC_RELAXED);
        case ATOM_XOR:
                return __atomic_fetch_xor(q, b, __ATOMIC_RELAXED);
        case ATOM_EXCH:
                return __atomic_exchange_n(q, b, __ATOMIC_RELAXED);
        case ATOM_CAS:
                old = b;
                __atomic_compare_exchange_n(q, &old, cv, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
                return old;
        default:
                break;
        }
        old = __atomic_load_n(q, __ATOMIC_RELAXED);
        do {
                double fo, fx;
                memcpy(&fo, &old, 8);
                memcpy(&fx, &b, 8);
                switch (op) {
                case ATOM_ADD:
                        fo = fo + fx;
                        memcpy(&nv, &fo, 8);
                        break;
                case ATOM_MIN:
                        if (t == T_F64) {
                                fo = dmin_ptx(fo, fx);
                                memcpy(&nv, &fo, 8);
                        } else {
                                nv = t == T_S64 ? ((int64_t)old < (int64_t)b ? old : b)
                                                : (old < b ? old : b);
                        }
                        break;
                default: /* ATOM_MAX */
                        if (t == T_F64) {
                                fo = dmax_ptx(fo, fx);
                                memcpy(&nv, &fo, 8);
                        } else {
                                nv = t == T_S64 ? ((int64_t)old > (int64_t)b ? old : b)
                                                : (old > b ? old : b);
                        }
                        break;
                }
        } while (!__atomic_compare_exchange_n(q, &old, nv, true, __ATOMIC_RELAXED,
                                              __ATOMIC_RELAXED));
        return old;
}

int exec_atom(struct exec_ctx *c, struct warp *w, const struct ptx_insn *in, uint8_t *regs,
              const uint8_t *consts, uint32_t m)
{
        unsigned sz = type_size(in->t);
        uint64_t ad[WARP];
        lane_addresses(in, regs, consts, ad);
        for (int i = 0; i < WARP; i++) {
                if (!(m >> i & 1))
                        continue;
                uint8_t *p = mem_lane(c, w, i, in->t2, ad[i], sz, true, in);
                if (!p)
                        return c->fault;
                uint64_t b = rd_bits(PTR(in->o[1]) + (size_t)i * sz, sz);
                uint64_t cv =
                        in->o[2] != OPND_NONE ? rd_bits(PTR(in->o[2]) + (size_t)i * sz, sz) : 0;
                uint64_t old = atom_apply(in, p, b, cv);
                if (in->o[0] != OPND_NONE)
                        wr_bits(regs + in->o[0] + (size_t)i * sz, sz, old);
        }
        return 0;
}
