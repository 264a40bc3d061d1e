// SPDX-License-Identifier: Apache-2.0
// Placement rules, one test each: equal-size, mixed-size with placement IDs, mode changes, MIG GPU
// instances at valid starts, MIG-backed and time-sliced vGPUs inside instances.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/layout.h"
#include "vgpu/errors.h"

static const struct gpu_model *h100(void)
{
        return catalog_find_model("H100-80GB");
}

static const struct vgpu_type *ty(const char *name)
{
        const struct vgpu_type *t = catalog_find_type(h100(), name);

        assert_non_null(t);
        return t;
}

static const struct mig_profile *prof(const char *name)
{
        const struct mig_profile *p = catalog_find_profile_name(h100(), name);

        assert_non_null(p);
        return p;
}

static int create_at(struct layout *l, const char *type, uint32_t gi, int64_t placement,
                     uint32_t id)
{
        struct layout_req req = {.gi = gi, .placement = placement};

        return layout_create(l, ty(type), &req, id, NULL);
}

static void test_homogeneous(void **state)
{
        struct layout l;
        struct layout_vgpu v;

        (void)state;
        layout_init(&l, h100());
        for (uint32_t i = 0; i < 4; i++) {
                assert_int_equal(layout_create(&l, ty("H100-20C"), &LAYOUT_REQ_ANY, i + 1, &v), 0);
                assert_int_equal(v.placement, i);
                assert_int_equal(v.fb_offset, (uint64_t)i * 20 * CATALOG_GIB);
                assert_int_equal(v.fb_size, 20 * CATALOG_GIB);
        }
        assert_int_equal(create_at(&l, "H100-20C", 0, -1, 9), VGPU_EMAX_INSTANCES);
        assert_false(layout_creatable(&l, ty("H100-20C")));
        /* One type per GPU in equal-size mode. */
        assert_int_equal(layout_destroy(&l, 2), 0);
        assert_int_equal(create_at(&l, "H100-10C", 0, -1, 9), VGPU_ETYPE_MIX);
        assert_int_equal(create_at(&l, "H100-20C", 0, 0, 9), VGPU_EPLACEMENT_BUSY);
        assert_int_equal(create_at(&l, "H100-20C", 0, 4, 9), VGPU_EPLACEMENT);
        assert_int_equal(create_at(&l, "H100-20C", 0, 1, 1), VGPU_EEXIST);
        assert_int_equal(layout_slots(&l, ty("H100-20C"), NULL, 0), 1);
        assert_int_equal(create_at(&l, "H100-20C", 0, 1, 9), 0);
        assert_int_equal(layout_destroy(&l, 42), VGPU_ENO_VGPU);
        for (uint32_t id = 1; id <= 9; id++)
                layout_destroy(&l, id);
        assert_int_equal(l.n_vgpus, 0);
        assert_int_equal(create_at(&l, "H100-10C", 0, -1, 1), 0);
        /* MIG-backed types need MIG mode; GPU instances do not exist here. */
        assert_int_equal(create_at(&l, "H100-1-10C", 0, -1, 2), VGPU_EMODE);
        assert_int_equal(create_at(&l, "H100-10C", 3, -1, 2), VGPU_ENO_GI);
        assert_int_equal(
                layout_check(&l, catalog_find_type(catalog_find_model("A100-40GB"), "A100-20C"),
                             &LAYOUT_REQ_ANY, &v),
                VGPU_ETYPE_MODEL);
}

static void test_homogeneous_never_overcommits(void **state)
{
        struct layout l;
        uint32_t n = 0;

        (void)state;
        layout_init(&l, h100());
        /* The documentation allows 6 x 16C, but 96 GiB does not fit in 80. */
        while (create_at(&l, "H100-16C", 0, -1, n + 1) == 0)
                n++;
        assert_int_equal(n, 5);
        assert_true(layout_fb_used(&l) <= catalog_model_fb_bytes(h100()));
        assert_int_equal(create_at(&l, "H100-16C", 0, 5, 99), VGPU_EPLACEMENT);
}

static void test_heterogeneous(void **state)
{
        struct layout l;
        struct layout_vgpu v;

        (void)state;
        layout_init(&l, h100());
        assert_int_equal(layout_set_mode(&l, LAYOUT_HETEROGENEOUS), 0);
        /* Sizes in 5 GiB slots: 40C = 8, 20C = 4, 16C = 4, 10C = 2, 5C = 1. */
        assert_int_equal(layout_create(&l, ty("H100-5C"), &LAYOUT_REQ_ANY, 1, &v), 0);
        assert_int_equal(v.placement, 0);
        assert_int_equal(layout_create(&l, ty("H100-5C"), &LAYOUT_REQ_ANY, 2, &v), 0);
        assert_int_equal(v.placement, 1); /* best fit: next to the first, not splitting a hole */
        assert_int_equal(layout_create(&l, ty("H100-40C"), &LAYOUT_REQ_ANY, 3, &v), 0);
        assert_int_equal(v.placement, 8);
        assert_int_equal(v.fb_offset, 40 * CATALOG_GIB);
        assert_int_equal(layout_create(&l, ty("H100-16C"), &LAYOUT_REQ_ANY, 4, &v), 0);
        assert_int_equal(v.placement, 4);
        assert_int_equal(v.fb_size, 16 * CATALOG_GIB);
        assert_int_equal(layout_create(&l, ty("H100-10C"), &LAYOUT_REQ_ANY, 5, &v), 0);
        assert_int_equal(v.placement, 2);
        /* Full: 5 + 5 + 40 + 20 + 10 = 80. */
        assert_false(layout_creatable(&l, ty("H100-4C")));
        assert_int_equal(create_at(&l, "H100-4C", 0, -1, 6), VGPU_ENO_SPACE);
        assert_int_equal(layout_destroy(&l, 3), 0);
        assert_int_equal(create_at(&l, "H100-20C", 0, 10, 6), VGPU_EPLACEMENT);
        assert_int_equal(create_at(&l, "H100-20C", 0, 4, 6), VGPU_EPLACEMENT_BUSY);
        assert_int_equal(create_at(&l, "H100-20C", 0, 12, 6), 0);
        assert_int_equal(create_at(&l, "H100-20C", 0, 8, 7), 0);
        assert_int_equal(layout_find(&l, 7)->fb_offset, 40 * CATALOG_GIB);
        /* The mixed-size maximum binds before the slots do. */
        layout_init(&l, h100());
        layout_set_mode(&l, LAYOUT_HETEROGENEOUS);
        for (uint32_t i = 0; i < 4; i++)
                assert_int_equal(create_at(&l, "H100-16C", 0, -1, i + 1), 0);
        assert_int_equal(create_at(&l, "H100-16C", 0, -1, 9), VGPU_EMAX_INSTANCES);
}

static void test_mode_changes(void **state)
{
        struct layout l;

        (void)state;
        layout_init(&l, h100());
        assert_int_equal(create_at(&l, "H100-10C", 0, -1, 1), 0);
        assert_int_equal(layout_set_mode(&l, LAYOUT_MIG), VGPU_EGPU_BUSY);
        assert_int_equal(l.mode, LAYOUT_HOMOGENEOUS);
        layout_destroy(&l, 1);
        assert_int_equal(layout_set_mode(&l, LAYOUT_MIG), 0);
        assert_int_equal(layout_gi_create(&l, prof("1g.10gb"), -1, 0, NULL), 0);
        assert_int_equal(layout_set_mode(&l, LAYOUT_HOMOGENEOUS), VGPU_EGPU_BUSY);
        layout_init(&l, catalog_find_model("L4"));
        assert_int_equal(layout_set_mode(&l, LAYOUT_MIG), VGPU_ENO_MIG);
        assert_int_equal(layout_set_mode(&l, (enum layout_mode)7), -22);

        enum layout_mode mode;
        assert_int_equal(layout_mode_parse("mixed-size", &mode), 0);
        assert_int_equal(mode, LAYOUT_HETEROGENEOUS);
        assert_int_equal(layout_mode_parse("MIG", &mode), 0);
        assert_int_equal(mode, LAYOUT_MIG);
        assert_int_equal(layout_mode_parse("bogus", &mode), -22);
        assert_string_equal(layout_mode_name(LAYOUT_HETEROGENEOUS), "heterogeneous");
}

static void test_gpu_instances(void **state)
{
        struct layout l;
        struct layout_gi gi;

        (void)state;
        layout_init(&l, h100());
        assert_int_equal(layout_gi_create(&l, prof("1g.10gb"), -1, 0, NULL), VGPU_EMODE);
        layout_set_mode(&l, LAYOUT_MIG);
        assert_int_equal(layout_gi_free_count(&l, prof("1g.10gb")), 7);
        assert_int_equal(layout_gi_free_count(&l, prof("3g.40gb")), 2);
        assert_int_equal(layout_gi_free_starts(&l, prof("2g.20gb")), 0x15);
        /* Only the documented starts. */
        assert_int_equal(layout_gi_create(&l, prof("3g.40gb"), 2, 0, NULL), VGPU_EPLACEMENT);
        assert_int_equal(layout_gi_create(&l, prof("1g.10gb"), 7, 0, NULL), VGPU_EPLACEMENT);
        assert_int_equal(layout_gi_create(&l, prof("1g.10gb"), 99, 0, NULL), VGPU_EPLACEMENT);
        assert_int_equal(layout_gi_create(&l, prof("4g.40gb"), 0, 0, &gi), 0);
        assert_int_equal(gi.id, 1);
        assert_int_equal(gi.start, 0);
        /* Never overlapping. */
        assert_int_equal(layout_gi_create(&l, prof("3g.40gb"), 0, 0, NULL), VGPU_EPLACEMENT_BUSY);
        assert_int_equal(layout_gi_create(&l, prof("2g.20gb"), 2, 0, NULL), VGPU_EPLACEMENT_BUSY);
        assert_int_equal(layout_gi_free_count(&l, prof("3g.40gb")), 1);
        assert_int_equal(layout_gi_free_count(&l, prof("1g.10gb")), 3);
        assert_int_equal(layout_gi_free_count(&l, prof("7g.80gb")), 0);
        assert_int_equal(layout_gi_create(&l, prof("1g.10gb"), -1, 0, &gi), 0);
        assert_int_equal(gi.start, 4);
        assert_int_equal(gi.id, 2);
        assert_int_equal(layout_gi_create(&l, prof("1g.10gb+me"), -1, 0, &gi), 0);
        assert_int_equal(layout_gi_create(&l, prof("1g.10gb+me"), -1, 0, NULL),
                         VGPU_EMAX_INSTANCES);
        assert_int_equal(layout_gi_create(&l, prof("1g.10gb"), -1, 0, NULL), 0);
        /* 4 + 1 + 1 + 1 compute slices: the GPU is full. */
        assert_int_equal(layout_gi_create(&l, prof("1g.10gb"), -1, 0, NULL), VGPU_ENO_SPACE);
        assert_int_equal(layout_gi_destroy(&l, 1), 0);
        assert_int_equal(layout_gi_destroy(&l, 1), VGPU_ENO_GI);
        assert_int_equal(layout_gi_create(&l, prof("2g.20gb"), 2, 0, &gi), 0);
        assert_int_equal(gi.id, 1); /* the lowest free ID */
        assert_int_equal(layout_gi_create(&l, prof("2g.20gb"), -1, 1, NULL), VGPU_EEXIST);
        assert_int_equal(layout_gi_create(&l, prof("2g.20gb"), -1, 9, &gi), 0);
        assert_int_equal(gi.id, 9);
        assert_int_equal(gi.start, 0);
        assert_int_equal(layout_gi_create(&l, NULL, -1, 0, NULL), VGPU_EUNKNOWN_PROFILE);

        /* Create, destroy, create: the freed ID comes back (the slot's old contents don't count).
         */
        layout_init(&l, h100());
        layout_set_mode(&l, LAYOUT_MIG);
        assert_int_equal(layout_gi_create(&l, prof("1g.10gb"), -1, 0, &gi), 0);
        assert_int_equal(gi.id, 1);
        assert_int_equal(layout_gi_destroy(&l, 1), 0);
        assert_int_equal(layout_gi_create(&l, prof("1g.10gb"), -1, 0, &gi), 0);
        assert_int_equal(gi.id, 1);
}

static void test_mig_backed(void **state)
{
        struct layout l;
        struct layout_vgpu v;
        struct layout_gi gi;

        (void)state;
        layout_init(&l, h100());
        layout_set_mode(&l, LAYOUT_MIG);
        /* Without an instance, a MIG-backed vGPU gets one of its own, destroyed with it. */
        assert_int_equal(layout_create(&l, ty("H100-3-40C"), &LAYOUT_REQ_ANY, 1, &v), 0);
        assert_int_equal(l.n_gis, 1);
        assert_true(layout_find_gi(&l, v.gi)->implicit);
        assert_int_equal(v.fb_offset, 0);
        assert_int_equal(v.fb_size, 40 * CATALOG_GIB);
        assert_int_equal(create_at(&l, "H100-3-40C", 0, 4, 2), 0);
        assert_int_equal(layout_find(&l, 2)->fb_offset, 40 * CATALOG_GIB);
        assert_int_equal(create_at(&l, "H100-3-40C", 0, -1, 3), VGPU_EMAX_INSTANCES);
        assert_int_equal(create_at(&l, "H100-1-10C", 0, -1, 3), VGPU_ENO_SPACE);
        assert_int_equal(layout_destroy(&l, 1), 0);
        assert_int_equal(l.n_gis, 1);
        /* An explicit instance: the profile must match and the instance be empty. */
        assert_int_equal(layout_gi_create(&l, prof("2g.20gb"), 2, 0, &gi), 0);
        assert_int_equal(create_at(&l, "H100-1-20C", gi.id, -1, 5), VGPU_EGI_PROFILE);
        assert_int_equal(create_at(&l, "H100-2-20C", gi.id, 0, 5), VGPU_EPLACEMENT);
        assert_int_equal(create_at(&l, "H100-2-20C", gi.id, -1, 5), 0);
        assert_int_equal(create_at(&l, "H100-2-20C", gi.id, -1, 6), VGPU_EGI_BUSY);
        assert_int_equal(layout_gi_destroy(&l, gi.id), VGPU_EGI_BUSY);
        assert_int_equal(create_at(&l, "H100-2-20C", 77, -1, 6), VGPU_ENO_GI);
        /* The instance was explicit: it stays after its vGPU goes. */
        assert_int_equal(layout_destroy(&l, 5), 0);
        assert_non_null(layout_find_gi(&l, gi.id));
        /* An empty instance of the right profile is used before a new one is made. */
        assert_int_equal(layout_create(&l, ty("H100-2-20C"), &LAYOUT_REQ_ANY, 6, &v), 0);
        assert_int_equal(v.gi, gi.id);
        assert_int_equal(v.fb_offset, 20 * CATALOG_GIB);
        /* Slots: one more 2g.20gb can go at start 0. */
        struct layout_slot slots[8];
        assert_int_equal(layout_slots(&l, ty("H100-2-20C"), slots, 8), 1);
        assert_int_equal(slots[0].gi, 0);
        assert_int_equal(slots[0].placement, 0);
        /* Time-sliced types do not go into an instance that holds a MIG-backed vGPU. */
        assert_int_equal(create_at(&l, "H100-10C", gi.id, -1, 7), VGPU_EGI_BUSY);
}

static void test_time_sliced_in_gi(void **state)
{
        struct layout l;
        struct layout_gi gi, gi2;
        struct layout_vgpu v;

        (void)state;
        layout_init(&l, h100());
        layout_set_mode(&l, LAYOUT_MIG);
        assert_int_equal(create_at(&l, "H100-10C", 0, -1, 1), VGPU_ENO_GI);
        assert_int_equal(layout_gi_create(&l, prof("3g.40gb"), 4, 0, &gi), 0);
        for (uint32_t i = 0; i < 4; i++) {
                assert_int_equal(layout_create(&l, ty("H100-10C"), &LAYOUT_REQ_ANY, i + 1, &v), 0);
                assert_int_equal(v.gi, gi.id);
                assert_int_equal(v.placement, i);
                assert_int_equal(v.fb_offset, (40 + 10 * (uint64_t)i) * CATALOG_GIB);
        }
        assert_int_equal(create_at(&l, "H100-10C", gi.id, -1, 5), VGPU_EMAX_INSTANCES);
        assert_int_equal(create_at(&l, "H100-10C", 0, -1, 5), VGPU_ENO_SPACE);
        layout_destroy(&l, 3);
        assert_int_equal(create_at(&l, "H100-5C", gi.id, -1, 5), VGPU_ETYPE_MIX);
        assert_int_equal(create_at(&l, "H100-10C", gi.id, 4, 5), VGPU_EPLACEMENT);
        assert_int_equal(create_at(&l, "H100-10C", gi.id, 1, 5), VGPU_EPLACEMENT_BUSY);
        assert_int_equal(create_at(&l, "H100-10C", gi.id, 2, 5), 0);
        /* A type larger than the instance does not fit it. */
        assert_int_equal(layout_gi_create(&l, prof("1g.10gb"), -1, 0, &gi2), 0);
        assert_int_equal(create_at(&l, "H100-20C", gi2.id, -1, 6), VGPU_EGI_PROFILE);
        assert_int_equal(create_at(&l, "H100-5C", gi2.id, -1, 6), 0);
        assert_int_equal(create_at(&l, "H100-1-10C", gi2.id, -1, 7), VGPU_EGI_BUSY);
        /* The instance with vGPUs refuses to go. */
        assert_int_equal(layout_gi_destroy(&l, gi2.id), VGPU_EGI_BUSY);
        layout_destroy(&l, 6);
        assert_int_equal(layout_gi_destroy(&l, gi2.id), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_homogeneous),
                cmocka_unit_test(test_homogeneous_never_overcommits),
                cmocka_unit_test(test_heterogeneous),
                cmocka_unit_test(test_mode_changes),
                cmocka_unit_test(test_gpu_instances),
                cmocka_unit_test(test_mig_backed),
                cmocka_unit_test(test_time_sliced_in_gi),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
