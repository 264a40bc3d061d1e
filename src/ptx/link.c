// SPDX-License-Identifier: Apache-2.0
// Linking a parsed module, once every function is known: calls resolved to their functions,
// frames sized, kernels listed, and each kernel's static shared memory: the .shared variables
// it reaches through its calls, as a GPU reports and charges it.
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ptx/parse.h"

/*
 * Mark in used[] (one per mod->vars) the static .shared variables that function k reaches: those
 * its body declares or names, and those of every .func it calls, directly or not. A call through
 * a pointer may reach any .func. seen[] and stack[] have room for every function.
 */
static void reach_shared(const struct ptx_module *m, unsigned k, bool *used, bool *seen,
                         unsigned *stack)
{
        unsigned n = 0;
        bool every_func = false;

        seen[k] = true;
        stack[n++] = k;
        while (n) {
                const struct ptx_func *fn = &m->funcs[stack[--n]];
                for (unsigned i = 0; i < fn->nshared_vars; i++)
                        used[fn->shared_vars[i]] = true;
                for (unsigned i = 0; i < fn->ninsns; i++) {
                        if (fn->insns[i].op != OP_CALL)
                                continue;
                        const struct ptx_call *c = &m->calls[fn->insns[i].imm];
                        if (c->builtin != BUILTIN_NONE)
                                continue;
                        if (c->indirect == OPND_NONE) {
                                if (!seen[c->callee]) {
                                        seen[c->callee] = true;
                                        stack[n++] = c->callee;
                                }
                                continue;
                        }
                        if (every_func)
                                continue;
                        every_func = true;
                        for (unsigned f = 0; f < m->nfuncs; f++) {
                                if (m->funcs[f].defined && !m->funcs[f].is_entry && !seen[f]) {
                                        seen[f] = true;
                                        stack[n++] = f;
                                }
                        }
                }
        }
}

/*
 * Each kernel's static shared memory. Variables keep their module-wide offsets, so that a .func
 * has one address for each whichever kernel calls it; a kernel is charged what its variables take
 * laid out alone (static_shared, what a GPU reports), and a block gets the module's layout up to
 * the end of its last one (shared_extent).
 */
static int link_shared(struct ptx_module *m)
{
        bool *used = calloc(m->nvars + 1, sizeof(*used));
        bool *seen = calloc(m->nfuncs + 1, sizeof(*seen));
        unsigned *stack = calloc(m->nfuncs + 1, sizeof(*stack));
        int r = -ENOMEM;

        if (!used || !seen || !stack)
                goto out;
        for (unsigned k = 0; k < m->nkernels; k++) {
                struct ptx_func *fn = &m->funcs[m->kernels[k].func];
                uint64_t size = 0, end = 0;
                memset(used, 0, m->nvars * sizeof(*used));
                memset(seen, 0, m->nfuncs * sizeof(*seen));
                reach_shared(m, m->kernels[k].func, used, seen, stack);
                for (unsigned i = 0; i < m->nvars; i++) {
                        const struct ptx_var *v = &m->vars[i];
                        if (!used[i])
                                continue;
                        size = ((size + v->align - 1) & ~(uint64_t)(v->align - 1)) + v->size;
                        if (v->offset + v->size > end)
                                end = v->offset + v->size;
                }
                fn->static_shared = size;
                fn->shared_extent = end;
        }
        r = 0;
out:
        free(used);
        free(seen);
        free(stack);
        return r;
}

int link_module(struct parser *ps)
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
                        return parse_err(ps, PTX_EUNSUPPORTED, "call to undefined function '%s'",
                                         ps->call_names[i]);
                }
                struct ptx_func *callee = &m->funcs[s->off];
                if (callee->is_entry)
                        return parse_err(ps, PTX_EUNSUPPORTED, "call to a kernel");
                if (c->nargs != callee->nparams || c->nret != callee->nrets)
                        return parse_err(ps, PTX_EPARSE, "call to '%s' with a wrong argument count",
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
        return link_shared(m);
}
