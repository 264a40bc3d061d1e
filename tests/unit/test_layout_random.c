// SPDX-License-Identifier: Apache-2.0
// Randomized placement test: long random create/destroy (and GPU instance) sequences on several
// models and all modes. After every step the layout must keep its invariants (no overlap, no
// over-commit, counts within maxima), and what it says is creatable must agree, placement by
// placement, with a brute-force model written here from the rules alone, in byte ranges.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/layout.h"
#include "vgpu/errors.h"

#define MAX_SLOTS 512

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
        /* xorshift64*: deterministic per seed, so a failure can be replayed. */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return (uint32_t)(((rng_state * UINT64_C(2685821657736338717)) >> 32) % n);
}

struct range {
        uint64_t lo, hi;
};

static bool overlaps(struct range a, struct range b)
{
        return a.lo < b.hi && b.lo < a.hi;
}

static uint32_t count_of(const struct layout *l, const struct vgpu_type *t)
{
        uint32_t n = 0;

        for (size_t i = 0; i < l->n_vgpus; i++)
                n += l->vgpus[i].type == t;
        return n;
}

/* The span a vGPU holds on the GPU: in mixed-size mode its whole slot span. */
static struct range held(const struct layout *l, const struct layout_vgpu *v)
{
        const struct gpu_model *m = l->model;

        if (l->mode == LAYOUT_HETEROGENEOUS) {
                uint64_t unit = catalog_model_fb_bytes(m) / catalog_het_slots(m);

                return (struct range){v->fb_offset,
                                      v->fb_offset + unit * catalog_het_size(m, v->type)};
        }
        return (struct range){v->fb_offset, v->fb_offset + v->fb_size};
}

static struct range gi_range(const struct layout *l, const struct layout_gi *g)
{
        uint64_t s = catalog_mem_slice_bytes(l->model);

        return (struct range){g->start * s, (g->start + g->profile->mem_slices) * s};
}

static bool range_clear(const struct layout *l, struct range r)
{
        for (size_t i = 0; i < l->n_vgpus; i++) {
                if (overlaps(r, held(l, &l->vgpus[i])))
                        return false;
        }
        return true;
}

/* Brute force: every (gi, placement) at which the rules allow a vGPU of type t now. */
static size_t brute_slots(const struct layout *l, const struct vgpu_type *t,
                          struct layout_slot *out)
{
        const struct gpu_model *m = l->model;
        uint64_t fb = catalog_model_fb_bytes(m), tfb = catalog_type_fb_bytes(t);
        size_t n = 0;

        if (l->n_vgpus >= CATALOG_MAX_VGPUS_PER_GPU)
                return 0;
        if (l->mode == LAYOUT_HOMOGENEOUS) {
                if (t->cls != CATALOG_TIME_SLICED || l->n_vgpus >= t->max_equal)
                        return 0;
                for (size_t i = 0; i < l->n_vgpus; i++) {
                        if (l->vgpus[i].type != t)
                                return 0;
                }
                /* Placement IDs number the equal-size positions: fewer than the maximum. */
                for (uint64_t k = 0; (k + 1) * tfb <= fb && k < t->max_equal; k++) {
                        if (range_clear(l, (struct range){k * tfb, (k + 1) * tfb}))
                                out[n++] = (struct layout_slot){0, (uint32_t)k};
                }
                return n;
        }
        if (l->mode == LAYOUT_HETEROGENEOUS) {
                uint32_t slots = catalog_het_slots(m);
                uint64_t unit = fb / slots;
                uint32_t size;

                if (t->cls != CATALOG_TIME_SLICED || !t->max_mixed ||
                    count_of(l, t) >= t->max_mixed)
                        return 0;
                size = slots / t->max_mixed;
                for (uint32_t k = 0; k + size <= slots; k += size) {
                        if (range_clear(l, (struct range){k * unit, (k + size) * unit}))
                                out[n++] = (struct layout_slot){0, k};
                }
                return n;
        }
        if (t->cls == CATALOG_MIG) {
                const struct mig_profile *p = catalog_find_profile(m, t->mig_profile);
                uint32_t same = 0, compute = 0;

                if (count_of(l, t) >= t->max_equal)
                        return 0;
                for (size_t g = 0; g < l->n_gis; g++) {
                        bool empty = true;

                        for (size_t i = 0; i < l->n_vgpus; i++)
                                empty = empty && l->vgpus[i].gi != l->gis[g].id;
                        if (l->gis[g].profile == p && empty)
                                out[n++] = (struct layout_slot){l->gis[g].id, l->gis[g].start};
                        same += l->gis[g].profile == p;
                        compute += l->gis[g].profile->compute_slices;
                }
                if (same >= p->max_instances || compute + p->compute_slices > m->mig_compute_slices)
                        return n;
                for (uint32_t s = 0; s < m->mig_mem_slices; s++) {
                        struct layout_gi cand = {.profile = p, .start = s};
                        bool clear = (p->placement_mask >> s) & 1;

                        for (size_t g = 0; clear && g < l->n_gis; g++)
                                clear = !overlaps(gi_range(l, &cand), gi_range(l, &l->gis[g]));
                        if (clear)
                                out[n++] = (struct layout_slot){0, s};
                }
                return n;
        }
        if (count_of(l, t) >= t->max_equal)
                return 0;
        for (size_t g = 0; g < l->n_gis; g++) {
                struct range gr = gi_range(l, &l->gis[g]);
                bool ok = true;

                for (size_t i = 0; i < l->n_vgpus; i++) {
                        if (l->vgpus[i].gi == l->gis[g].id && l->vgpus[i].type != t)
                                ok = false;
                }
                for (uint64_t k = 0; ok && gr.lo + (k + 1) * tfb <= gr.hi && k < t->max_equal;
                     k++) {
                        struct range r = {gr.lo + k * tfb, gr.lo + (k + 1) * tfb};

                        if (range_clear(l, r))
                                out[n++] = (struct layout_slot){l->gis[g].id, (uint32_t)k};
                }
        }
        return n;
}

static int slot_cmp(const void *a, const void *b)
{
        const struct layout_slot *x = a, *y = b;

        if (x->gi != y->gi)
                return x->gi < y->gi ? -1 : 1;
        return x->placement < y->placement ? -1 : x->placement > y->placement;
}

static void check_invariants(const struct layout *l)
{
        const struct gpu_model *m = l->model;
        uint64_t fb = catalog_model_fb_bytes(m);

        assert_true(layout_fb_used(l) <= fb);
        for (size_t i = 0; i < l->n_vgpus; i++) {
                const struct layout_vgpu *v = &l->vgpus[i];
                struct range r = held(l, v);

                assert_true(r.hi <= fb);
                assert_true(v->fb_size >= catalog_type_fb_bytes(v->type) - CATALOG_GIB);
                for (size_t j = i + 1; j < l->n_vgpus; j++)
                        assert_false(overlaps(r, held(l, &l->vgpus[j])));
                if (l->mode == LAYOUT_MIG) {
                        const struct layout_gi *g = layout_find_gi(l, v->gi);
                        struct range gr;

                        assert_non_null(g);
                        gr = gi_range(l, g);
                        assert_true(v->fb_offset >= gr.lo && v->fb_offset + v->fb_size <= gr.hi);
                }
                if (l->mode == LAYOUT_HOMOGENEOUS)
                        assert_ptr_equal(v->type, l->vgpus[0].type);
                assert_true(count_of(l, v->type) <= v->type->max_equal);
                if (l->mode == LAYOUT_HETEROGENEOUS)
                        assert_true(count_of(l, v->type) <= v->type->max_mixed);
        }
        for (size_t g = 0; g < l->n_gis; g++) {
                struct range r = gi_range(l, &l->gis[g]);
                uint32_t same = 0;

                assert_true(r.hi <= fb);
                assert_true((l->gis[g].profile->placement_mask >> l->gis[g].start) & 1);
                for (size_t h = 0; h < l->n_gis; h++) {
                        same += l->gis[h].profile == l->gis[g].profile;
                        if (h != g)
                                assert_false(overlaps(r, gi_range(l, &l->gis[h])));
                }
                assert_true(same <= l->gis[g].profile->max_instances);
        }
}

static void compare(const struct layout *l, const struct vgpu_type *t)
{
        static struct layout_slot want[MAX_SLOTS], got[MAX_SLOTS];
        size_t nw = brute_slots(l, t, want);
        size_t ng = layout_slots(l, t, got, MAX_SLOTS);

        qsort(want, nw, sizeof(want[0]), slot_cmp);
        qsort(got, ng, sizeof(got[0]), slot_cmp);
        if (nw != ng || memcmp(want, got, nw * sizeof(want[0])) != 0) {
                fprintf(stderr, "type %s mode %s: brute force %zu slots, layout %zu\n", t->name,
                        layout_mode_name(l->mode), nw, ng);
                for (size_t i = 0; i < nw; i++)
                        fprintf(stderr, "  want gi %u p %u\n", want[i].gi, want[i].placement);
                for (size_t i = 0; i < ng; i++)
                        fprintf(stderr, "  got  gi %u p %u\n", got[i].gi, got[i].placement);
                fail();
        }
        assert_int_equal(layout_creatable(l, t), nw > 0);
}

/* vGPUs created per mode, so the test can show it exercised every mode. */
static unsigned long created[3];

static void run_model(const struct gpu_model *m, uint64_t seed, int steps)
{
        static const enum layout_mode modes[] = {LAYOUT_HOMOGENEOUS, LAYOUT_HETEROGENEOUS,
                                                 LAYOUT_MIG};
        struct layout l;
        uint32_t next_id = 1;

        rng_state = seed;
        layout_init(&l, m);
        for (int step = 0; step < steps; step++) {
                uint32_t op = rnd(100);
                const struct vgpu_type *t = &m->types[rnd((uint32_t)m->n_types)];

                if (op < 2) {
                        /* Empty the GPU and switch mode. */
                        while (l.n_vgpus)
                                assert_int_equal(layout_destroy(&l, l.vgpus[0].id), 0);
                        while (l.n_gis)
                                assert_int_equal(layout_gi_destroy(&l, l.gis[0].id), 0);
                        enum layout_mode mode = modes[rnd(3)];
                        int r = layout_set_mode(&l, mode);

                        assert_true(r == 0 || (mode == LAYOUT_MIG && !m->mig_mem_slices) ||
                                    (mode == LAYOUT_HETEROGENEOUS && !catalog_het_slots(m)));
                } else if (op < 40 && l.n_vgpus) {
                        assert_int_equal(layout_destroy(&l, l.vgpus[rnd((uint32_t)l.n_vgpus)].id),
                                         0);
                } else if (op < 50 && l.mode == LAYOUT_MIG) {
                        const struct mig_profile *p =
                                &m->mig_profiles[rnd((uint32_t)m->n_mig_profiles)];
                        int64_t start = rnd(3) ? (int64_t)rnd(m->mig_mem_slices + 1) : -1;
                        uint32_t mask = layout_gi_free_starts(&l, p);
                        int r = layout_gi_create(&l, p, start, 0, NULL);

                        if (start >= 0)
                                assert_int_equal(r == 0, (mask >> start) & 1);
                        else
                                assert_int_equal(r == 0, mask != 0);
                } else if (op < 55 && l.n_gis) {
                        const struct layout_gi *g = &l.gis[rnd((uint32_t)l.n_gis)];
                        bool used = false;

                        for (size_t i = 0; i < l.n_vgpus; i++)
                                used = used || l.vgpus[i].gi == g->id;
                        assert_int_equal(layout_gi_destroy(&l, g->id), used ? VGPU_EGI_BUSY : 0);
                } else {
                        static struct layout_slot want[MAX_SLOTS];
                        size_t nw = brute_slots(&l, t, want);
                        struct layout_req req = LAYOUT_REQ_ANY;
                        bool expect;
                        int r;

                        compare(&l, t);
                        if (nw && rnd(2)) {
                                /* A placement the brute force allows must be accepted. */
                                struct layout_slot s = want[rnd((uint32_t)nw)];

                                req.gi = s.gi;
                                req.placement = s.placement;
                                expect = true;
                        } else if (rnd(2)) {
                                /* A random placement: accepted exactly when the model says so. */
                                req.placement = rnd(CATALOG_MAX_VGPUS_PER_GPU + 2);
                                req.gi = rnd(3) ? 0 : rnd(10);
                                expect = false;
                                for (size_t i = 0; i < nw; i++) {
                                        if (want[i].gi == req.gi &&
                                            want[i].placement == req.placement)
                                                expect = true;
                                }
                                /* An MIG-backed type may also use an empty instance at that start.
                                 */
                                if (l.mode == LAYOUT_MIG && t->cls == CATALOG_MIG && !req.gi) {
                                        for (size_t i = 0; i < nw; i++)
                                                expect = expect ||
                                                         want[i].placement == req.placement;
                                }
                                if (l.mode == LAYOUT_MIG && t->cls != CATALOG_MIG && !req.gi) {
                                        for (size_t i = 0; i < nw; i++)
                                                expect = expect ||
                                                         want[i].placement == req.placement;
                                }
                        } else {
                                expect = nw > 0;
                        }
                        r = layout_create(&l, t, &req, next_id, NULL);
                        if ((r == 0) != expect) {
                                fprintf(stderr, "create %s gi %u p %lld: %s, expected %s\n",
                                        t->name, req.gi, (long long)req.placement,
                                        vgpu_error_name(r), expect ? "success" : "failure");
                                fail();
                        }
                        if (r == 0) {
                                next_id++;
                                created[l.mode]++;
                        }
                }
                check_invariants(&l);
        }
}

static void test_random_all_models(void **state)
{
        size_t n;
        const struct gpu_model *models = catalog_models(&n);
        const char *env = getenv("VGPU_RANDOM_STEPS");
        int steps = env ? atoi(env) : 20000;

        (void)state;
        for (size_t i = 0; i < n; i++) {
                for (uint64_t seed = 1; seed <= 3; seed++)
                        run_model(&models[i], seed * 0x9e3779b97f4a7c15ull + i, steps);
        }
        fprintf(stderr, "created: %lu homogeneous, %lu heterogeneous, %lu MIG\n", created[0],
                created[1], created[2]);
        for (int mode = 0; mode < 3; mode++)
                assert_true(created[mode] > (unsigned long)steps / 10);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_random_all_models),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
