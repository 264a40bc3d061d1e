// SPDX-License-Identifier: Apache-2.0
// Placement rules for one physical GPU: equal-size and mixed-size time-sliced vGPUs, MIG GPU
// instances at valid start slices, MIG-backed and time-sliced vGPUs inside them. Every decision is
// made by layout_check; create and the queries are built on it so they can never disagree.
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "core/layout.h"
#include "vgpu/errors.h"

void layout_init(struct layout *l, const struct gpu_model *m)
{
        memset(l, 0, sizeof(*l));
        l->model = m;
        l->mode = LAYOUT_HOMOGENEOUS;
}

static bool model_has_type(const struct gpu_model *m, const struct vgpu_type *t)
{
        return t >= m->types && t < m->types + m->n_types;
}

static bool model_has_profile(const struct gpu_model *m, const struct mig_profile *p)
{
        return p >= m->mig_profiles && p < m->mig_profiles + m->n_mig_profiles;
}

int layout_set_mode(struct layout *l, enum layout_mode mode)
{
        if (mode == l->mode)
                return 0;
        if (l->n_vgpus || l->n_gis)
                return VGPU_EGPU_BUSY;
        switch (mode) {
        case LAYOUT_HOMOGENEOUS:
                break;
        case LAYOUT_HETEROGENEOUS:
                if (catalog_het_slots(l->model) == 0)
                        return VGPU_EMODE;
                break;
        case LAYOUT_MIG:
                if (l->model->mig_mem_slices == 0)
                        return VGPU_ENO_MIG;
                break;
        default:
                return -EINVAL;
        }
        l->mode = mode;
        return 0;
}

const struct layout_vgpu *layout_find(const struct layout *l, uint32_t id)
{
        for (size_t i = 0; i < l->n_vgpus; i++) {
                if (l->vgpus[i].id == id)
                        return &l->vgpus[i];
        }
        return NULL;
}

const struct layout_gi *layout_find_gi(const struct layout *l, uint32_t gi)
{
        for (size_t i = 0; i < l->n_gis; i++) {
                if (l->gis[i].id == gi)
                        return &l->gis[i];
        }
        return NULL;
}

static uint32_t count_type(const struct layout *l, const struct vgpu_type *t)
{
        uint32_t n = 0;

        for (size_t i = 0; i < l->n_vgpus; i++)
                n += l->vgpus[i].type == t;
        return n;
}

/*
 * Best fit over a row of units (slots or memory slices): among the free, valid starts, take the
 * one inside the smallest free run, lowest start on a tie, so that large holes stay whole for
 * large vGPUs. occ[i] is nonzero where unit i is taken; valid(start) says if start is allowed.
 */
static int best_fit(const uint8_t *occ, uint32_t units, uint32_t size, uint64_t valid_mask)
{
        int best = -1;
        uint32_t best_run = UINT32_MAX;

        for (uint32_t s = 0; s + size <= units; s++) {
                uint32_t lo = s, hi = s + size, run;
                bool free_here = true;

                if (!(valid_mask & (UINT64_C(1) << s)))
                        continue;
                for (uint32_t u = s; u < s + size; u++)
                        free_here = free_here && !occ[u];
                if (!free_here)
                        continue;
                while (lo > 0 && !occ[lo - 1])
                        lo--;
                while (hi < units && !occ[hi])
                        hi++;
                run = hi - lo;
                if (run < best_run) {
                        best_run = run;
                        best = (int)s;
                }
        }
        return best;
}

static bool range_free(const uint8_t *occ, uint32_t start, uint32_t size)
{
        for (uint32_t u = start; u < start + size; u++) {
                if (occ[u])
                        return false;
        }
        return true;
}

static int check_homogeneous(const struct layout *l, const struct vgpu_type *t,
                             const struct layout_req *req, struct layout_vgpu *ret)
{
        uint32_t max = catalog_max_equal(l->model, t);
        uint64_t used = 0;
        int64_t p = req->placement;

        if (t->cls != CATALOG_TIME_SLICED)
                return VGPU_EMODE;
        if (req->gi)
                return VGPU_ENO_GI;
        if (l->n_vgpus && l->vgpus[0].type != t)
                return VGPU_ETYPE_MIX;
        if (max == 0)
                return VGPU_ENO_SPACE;
        for (size_t i = 0; i < l->n_vgpus; i++)
                used |= UINT64_C(1) << l->vgpus[i].placement;
        if (p >= 0) {
                if (p >= max)
                        return VGPU_EPLACEMENT;
                if (used & (UINT64_C(1) << p))
                        return VGPU_EPLACEMENT_BUSY;
        }
        if (l->n_vgpus >= max)
                return VGPU_EMAX_INSTANCES;
        if (p < 0) {
                for (p = 0; used & (UINT64_C(1) << p); p++)
                        ;
        }
        *ret = (struct layout_vgpu){
                .type = t,
                .placement = (uint32_t)p,
                .fb_offset = (uint64_t)p * catalog_type_fb_bytes(t),
                .fb_size = catalog_type_fb_bytes(t),
        };
        return 0;
}

static void het_occupancy(const struct layout *l, uint8_t *occ)
{
        memset(occ, 0, CATALOG_MAX_VGPUS_PER_GPU);
        for (size_t i = 0; i < l->n_vgpus; i++) {
                uint32_t size = catalog_het_size(l->model, l->vgpus[i].type);

                memset(occ + l->vgpus[i].placement, 1, size);
        }
}

static int check_heterogeneous(const struct layout *l, const struct vgpu_type *t,
                               const struct layout_req *req, struct layout_vgpu *ret)
{
        uint32_t slots = catalog_het_slots(l->model);
        uint32_t size = catalog_het_size(l->model, t);
        uint8_t occ[CATALOG_MAX_VGPUS_PER_GPU];
        uint64_t valid = 0;
        int64_t p = req->placement;

        if (t->cls != CATALOG_TIME_SLICED || size == 0)
                return VGPU_EMODE;
        if (req->gi)
                return VGPU_ENO_GI;
        het_occupancy(l, occ);
        if (p >= 0) {
                if (p % size || p + size > slots)
                        return VGPU_EPLACEMENT;
                if (!range_free(occ, (uint32_t)p, size))
                        return VGPU_EPLACEMENT_BUSY;
        }
        if (count_type(l, t) >= t->max_mixed)
                return VGPU_EMAX_INSTANCES;
        if (p < 0) {
                for (uint32_t s = 0; s + size <= slots; s += size)
                        valid |= UINT64_C(1) << s;
                p = best_fit(occ, slots, size, valid);
                if (p < 0)
                        return VGPU_ENO_SPACE;
        }
        *ret = (struct layout_vgpu){
                .type = t,
                .placement = (uint32_t)p,
                .fb_offset = (uint64_t)p * (catalog_model_fb_bytes(l->model) / slots),
                .fb_size = catalog_type_fb_bytes(t),
        };
        return 0;
}

static void mem_occupancy(const struct layout *l, uint8_t *occ)
{
        memset(occ, 0, CATALOG_MAX_MEM_SLICES);
        for (size_t i = 0; i < l->n_gis; i++)
                memset(occ + l->gis[i].start, 1, l->gis[i].profile->mem_slices);
}

/* Where a new GPU instance of profile p would start (start -1: best fit); or a negative code. */
static int gi_place(const struct layout *l, const struct mig_profile *p, int64_t start)
{
        const struct gpu_model *m = l->model;
        uint8_t occ[CATALOG_MAX_MEM_SLICES];
        uint32_t n_same = 0, compute = 0;

        if (l->mode != LAYOUT_MIG)
                return VGPU_EMODE;
        mem_occupancy(l, occ);
        if (start >= 0) {
                if (start >= m->mig_mem_slices || !(p->placement_mask & (1u << start)) ||
                    start + p->mem_slices > m->mig_mem_slices)
                        return VGPU_EPLACEMENT;
                if (!range_free(occ, (uint32_t)start, p->mem_slices))
                        return VGPU_EPLACEMENT_BUSY;
        }
        for (size_t i = 0; i < l->n_gis; i++) {
                n_same += l->gis[i].profile == p;
                compute += l->gis[i].profile->compute_slices;
        }
        if (n_same >= p->max_instances)
                return VGPU_EMAX_INSTANCES;
        if (compute + p->compute_slices > m->mig_compute_slices)
                return VGPU_ENO_SPACE;
        if (start < 0) {
                start = best_fit(occ, m->mig_mem_slices, p->mem_slices, p->placement_mask);
                if (start < 0)
                        return VGPU_ENO_SPACE;
        }
        return (int)start;
}

/* What a GPU instance holds: how many vGPUs, and of which type (NULL when empty). */
static uint32_t gi_contents(const struct layout *l, uint32_t gi, const struct vgpu_type **ret_type,
                            uint64_t *ret_used)
{
        uint32_t n = 0;

        *ret_type = NULL;
        *ret_used = 0;
        for (size_t i = 0; i < l->n_vgpus; i++) {
                if (l->vgpus[i].gi != gi)
                        continue;
                n++;
                *ret_type = l->vgpus[i].type;
                *ret_used |= UINT64_C(1) << l->vgpus[i].placement;
        }
        return n;
}

static int check_mig_backed(const struct layout *l, const struct vgpu_type *t,
                            const struct layout_req *req, struct layout_vgpu *ret)
{
        const struct mig_profile *p = catalog_find_profile(l->model, t->mig_profile);
        const struct vgpu_type *in;
        const struct layout_gi *gi = NULL;
        uint64_t used;
        int start;

        if (!p)
                return VGPU_EGI_PROFILE;
        if (req->gi) {
                gi = layout_find_gi(l, req->gi);
                if (!gi)
                        return VGPU_ENO_GI;
                if (gi->profile != p)
                        return VGPU_EGI_PROFILE;
                if (gi_contents(l, gi->id, &in, &used))
                        return VGPU_EGI_BUSY;
                if (req->placement >= 0 && req->placement != gi->start)
                        return VGPU_EPLACEMENT;
        } else {
                /* An empty GPU instance of the right profile is used before a new one is made. */
                for (size_t i = 0; i < l->n_gis && !gi; i++) {
                        const struct layout_gi *g = &l->gis[i];

                        if (g->profile == p && !gi_contents(l, g->id, &in, &used) &&
                            (req->placement < 0 || req->placement == g->start))
                                gi = g;
                }
        }
        if (count_type(l, t) >= t->max_equal)
                return VGPU_EMAX_INSTANCES;
        if (gi) {
                start = (int)gi->start;
        } else {
                start = gi_place(l, p, req->placement);
                if (start < 0)
                        return start;
        }
        *ret = (struct layout_vgpu){
                .type = t,
                .placement = (uint32_t)start,
                .gi = gi ? gi->id : 0,
                .fb_offset = (uint64_t)start * catalog_mem_slice_bytes(l->model),
                /* The vGPU owns its instance's memory: a name like H200-1-18C rounds it up. */
                .fb_size = catalog_mem_slice_bytes(l->model) * p->mem_slices,
        };
        return gi ? 0 : 1;
}

/* A time-sliced vGPU inside GPU instance gi: checks that instance alone. */
static int check_in_gi(const struct layout *l, const struct vgpu_type *t,
                       const struct layout_gi *gi, int64_t p, struct layout_vgpu *ret)
{
        uint32_t cap = catalog_max_in_gi(l->model, gi->profile, t);
        const struct vgpu_type *in;
        uint64_t used;
        uint32_t n = gi_contents(l, gi->id, &in, &used);

        if (cap == 0)
                return VGPU_EGI_PROFILE;
        if (in && in->cls == CATALOG_MIG)
                return VGPU_EGI_BUSY;
        if (in && in != t)
                return VGPU_ETYPE_MIX;
        if (p >= 0) {
                if (p >= cap)
                        return VGPU_EPLACEMENT;
                if (used & (UINT64_C(1) << p))
                        return VGPU_EPLACEMENT_BUSY;
        }
        if (n >= cap)
                return VGPU_EMAX_INSTANCES;
        if (p < 0) {
                for (p = 0; used & (UINT64_C(1) << p); p++)
                        ;
        }
        *ret = (struct layout_vgpu){
                .type = t,
                .placement = (uint32_t)p,
                .gi = gi->id,
                .fb_offset = gi->start * catalog_mem_slice_bytes(l->model) +
                             (uint64_t)p * catalog_type_fb_bytes(t),
                .fb_size = catalog_type_fb_bytes(t),
        };
        return 0;
}

static int check_mig_time_sliced(const struct layout *l, const struct vgpu_type *t,
                                 const struct layout_req *req, struct layout_vgpu *ret)
{
        struct layout_vgpu best = {0};
        int best_rank = -1;

        if (req->gi) {
                const struct layout_gi *gi = layout_find_gi(l, req->gi);

                if (!gi)
                        return VGPU_ENO_GI;
                if (count_type(l, t) >= t->max_equal)
                        return VGPU_EMAX_INSTANCES;
                return check_in_gi(l, t, gi, req->placement, ret);
        }
        if (count_type(l, t) >= t->max_equal)
                return VGPU_EMAX_INSTANCES;
        /* Fill instances that already hold this type before starting an empty one. */
        for (size_t i = 0; i < l->n_gis; i++) {
                const struct vgpu_type *in;
                uint64_t used;
                struct layout_vgpu v;
                int rank;

                if (check_in_gi(l, t, &l->gis[i], req->placement, &v) != 0)
                        continue;
                rank = gi_contents(l, l->gis[i].id, &in, &used) ? 2 : 1;
                if (rank > best_rank) {
                        best_rank = rank;
                        best = v;
                }
        }
        if (best_rank < 0)
                return l->n_gis ? VGPU_ENO_SPACE : VGPU_ENO_GI;
        *ret = best;
        return 0;
}

int layout_check(const struct layout *l, const struct vgpu_type *t, const struct layout_req *req,
                 struct layout_vgpu *ret)
{
        struct layout_vgpu v;
        int r;

        if (!t || !model_has_type(l->model, t))
                return VGPU_ETYPE_MODEL;
        if (req->placement < -1 || req->placement > INT32_MAX)
                return VGPU_EPLACEMENT;
        if (l->n_vgpus >= CATALOG_MAX_VGPUS_PER_GPU)
                return VGPU_EMAX_INSTANCES;
        switch (l->mode) {
        case LAYOUT_HOMOGENEOUS:
                r = check_homogeneous(l, t, req, &v);
                break;
        case LAYOUT_HETEROGENEOUS:
                r = check_heterogeneous(l, t, req, &v);
                break;
        case LAYOUT_MIG:
                if (t->cls == CATALOG_MIG)
                        r = check_mig_backed(l, t, req, &v);
                else
                        r = check_mig_time_sliced(l, t, req, &v);
                break;
        default:
                r = VGPU_EMODE;
                break;
        }
        if (r >= 0)
                *ret = v;
        return r;
}

static uint32_t lowest_free_gi_id(const struct layout *l)
{
        uint32_t id = 1;

        while (layout_find_gi(l, id))
                id++;
        return id;
}

int layout_create(struct layout *l, const struct vgpu_type *t, const struct layout_req *req,
                  uint32_t id, struct layout_vgpu *ret)
{
        struct layout_vgpu v;
        int r;

        if (layout_find(l, id))
                return VGPU_EEXIST;
        r = layout_check(l, t, req, &v);
        if (r < 0)
                return r;
        if (r == 1) {
                /* A MIG-backed vGPU without an instance gets one of its own. */
                struct layout_gi *gi = &l->gis[l->n_gis];

                *gi = (struct layout_gi){
                        .id = lowest_free_gi_id(l),
                        .profile = catalog_find_profile(l->model, t->mig_profile),
                        .start = v.placement,
                        .implicit = true,
                };
                v.gi = gi->id;
                l->n_gis++;
        }
        v.id = id;
        l->vgpus[l->n_vgpus++] = v;
        if (ret)
                *ret = v;
        return 0;
}

int layout_destroy(struct layout *l, uint32_t id)
{
        const struct layout_vgpu *v = layout_find(l, id);
        const struct layout_gi *gi;
        uint32_t gi_id;

        if (!v)
                return VGPU_ENO_VGPU;
        gi_id = v->gi;
        l->vgpus[v - l->vgpus] = l->vgpus[--l->n_vgpus];
        gi = layout_find_gi(l, gi_id);
        if (gi && gi->implicit)
                return layout_gi_destroy(l, gi_id);
        return 0;
}

size_t layout_slots(const struct layout *l, const struct vgpu_type *t, struct layout_slot *ret,
                    size_t cap)
{
        struct layout_vgpu v;
        size_t n = 0;

#define LAYOUT_ADD_SLOT(gi_, p_)                                                                   \
        do {                                                                                       \
                if (n < cap)                                                                       \
                        ret[n] = (struct layout_slot){.gi = (gi_), .placement = (p_)};             \
                n++;                                                                               \
        } while (0)

        if (!t || !model_has_type(l->model, t))
                return 0;
        if (l->mode != LAYOUT_MIG) {
                for (int64_t p = 0; p < CATALOG_MAX_VGPUS_PER_GPU; p++) {
                        struct layout_req req = {.gi = 0, .placement = p};

                        if (layout_check(l, t, &req, &v) == 0)
                                LAYOUT_ADD_SLOT(0, (uint32_t)p);
                }
                return n;
        }
        for (size_t i = 0; i < l->n_gis; i++) {
                for (int64_t p = 0; p < CATALOG_MAX_VGPUS_PER_GPU; p++) {
                        struct layout_req req = {.gi = l->gis[i].id, .placement = p};

                        if (t->cls == CATALOG_MIG)
                                req.placement = l->gis[i].start;
                        if (layout_check(l, t, &req, &v) == 0)
                                LAYOUT_ADD_SLOT(l->gis[i].id, v.placement);
                        if (t->cls == CATALOG_MIG)
                                break;
                }
        }
        if (t->cls == CATALOG_MIG) {
                for (int64_t s = 0; s < l->model->mig_mem_slices; s++) {
                        struct layout_req req = {.gi = 0, .placement = s};

                        if (layout_check(l, t, &req, &v) == 1)
                                LAYOUT_ADD_SLOT(0, (uint32_t)s);
                }
        }
#undef LAYOUT_ADD_SLOT
        return n;
}

bool layout_creatable(const struct layout *l, const struct vgpu_type *t)
{
        struct layout_vgpu v;

        return t && layout_check(l, t, &LAYOUT_REQ_ANY, &v) >= 0;
}

int layout_gi_create(struct layout *l, const struct mig_profile *p, int64_t start, uint32_t id,
                     struct layout_gi *ret)
{
        struct layout_gi *gi;
        int s;

        if (!p || !model_has_profile(l->model, p))
                return VGPU_EUNKNOWN_PROFILE;
        if (id && layout_find_gi(l, id))
                return VGPU_EEXIST;
        if (start < -1 || start > INT32_MAX)
                return VGPU_EPLACEMENT;
        s = gi_place(l, p, start);
        if (s < 0)
                return s;
        if (!id)
                id = lowest_free_gi_id(l);
        gi = &l->gis[l->n_gis++];
        *gi = (struct layout_gi){.id = id, .profile = p, .start = (uint32_t)s};
        if (ret)
                *ret = *gi;
        return 0;
}

int layout_gi_destroy(struct layout *l, uint32_t gi)
{
        const struct layout_gi *g = layout_find_gi(l, gi);
        const struct vgpu_type *in;
        uint64_t used;

        if (!g)
                return VGPU_ENO_GI;
        if (gi_contents(l, gi, &in, &used))
                return VGPU_EGI_BUSY;
        l->gis[g - l->gis] = l->gis[--l->n_gis];
        return 0;
}

uint32_t layout_gi_free_starts(const struct layout *l, const struct mig_profile *p)
{
        uint32_t mask = 0;

        if (!p || !model_has_profile(l->model, p))
                return 0;
        for (int64_t s = 0; s < l->model->mig_mem_slices; s++) {
                if (gi_place(l, p, s) >= 0)
                        mask |= 1u << s;
        }
        return mask;
}

uint32_t layout_gi_free_count(const struct layout *l, const struct mig_profile *p)
{
        struct layout copy = *l;
        uint32_t n = 0;

        if (!p || !model_has_profile(l->model, p))
                return 0;
        while (layout_gi_create(&copy, p, -1, 0, NULL) == 0)
                n++;
        return n;
}

uint64_t layout_fb_used(const struct layout *l)
{
        uint64_t used = 0;

        for (size_t i = 0; i < l->n_vgpus; i++)
                used += l->vgpus[i].fb_size;
        return used;
}

const char *layout_mode_name(enum layout_mode mode)
{
        switch (mode) {
        case LAYOUT_HOMOGENEOUS:
                return "homogeneous";
        case LAYOUT_HETEROGENEOUS:
                return "heterogeneous";
        case LAYOUT_MIG:
                return "mig";
        }
        return "unknown";
}

int layout_mode_parse(const char *s, enum layout_mode *ret_mode)
{
        static const struct {
                const char *name;
                enum layout_mode mode;
        } names[] = {
                {"homogeneous", LAYOUT_HOMOGENEOUS},
                {"equal-size", LAYOUT_HOMOGENEOUS},
                {"heterogeneous", LAYOUT_HETEROGENEOUS},
                {"mixed-size", LAYOUT_HETEROGENEOUS},
                {"mig", LAYOUT_MIG},
        };

        for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++) {
                if (strcasecmp(s, names[i].name) == 0) {
                        *ret_mode = names[i].mode;
                        return 0;
                }
        }
        return -EINVAL;
}
