// SPDX-License-Identifier: Apache-2.0
// Catalog tests: the H100 80GB tables as the product documents them, the internal consistency of
// every model's data (what placement relies on), lookups, and the error-string table.
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/catalog.h"
#include "core/layout.h"
#include "vgpu/errors.h"

static void test_h100_time_sliced(void **state)
{
        static const struct {
                const char *name;
                uint32_t fb, eq, mixed;
        } want[] = {
                {"H100-80C", 80, 1, 1}, {"H100-40C", 40, 2, 2}, {"H100-20C", 20, 4, 4},
                {"H100-16C", 16, 6, 4}, {"H100-10C", 10, 8, 8}, {"H100-8C", 8, 10, 8},
                {"H100-5C", 5, 16, 16}, {"H100-4C", 4, 20, 16},
        };
        const struct gpu_model *m = catalog_find_model("H100-80GB");

        (void)state;
        assert_non_null(m);
        assert_int_equal(m->fb_gib, 80);
        assert_int_equal(m->mmio_gib, 256);
        assert_int_equal(catalog_het_slots(m), 16);
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                const struct vgpu_type *t = catalog_find_type(m, want[i].name);

                assert_non_null(t);
                assert_int_equal(t->cls, CATALOG_TIME_SLICED);
                assert_int_equal(t->fb_gib, want[i].fb);
                assert_int_equal(t->max_equal, want[i].eq);
                assert_int_equal(t->max_mixed, want[i].mixed);
                assert_int_equal(catalog_het_size(m, t), 16 / want[i].mixed);
        }
        /* 6 x 16 GiB does not fit 80 GiB: the documented 6 is capped by the framebuffer. */
        assert_int_equal(catalog_max_equal(m, catalog_find_type(m, "H100-16C")), 5);
        assert_int_equal(catalog_max_equal(m, catalog_find_type(m, "H100-4C")), 20);
}

static void test_h100_mig(void **state)
{
        static const struct {
                const char *type;
                uint32_t fb, max, profile;
                const char *pname;
                uint32_t slices, mask;
        } want[] = {
                {"H100-7-80C", 80, 1, 0, "7g.80gb", 8, 0x01},
                {"H100-4-40C", 40, 1, 5, "4g.40gb", 4, 0x01},
                {"H100-3-40C", 40, 2, 9, "3g.40gb", 4, 0x11},
                {"H100-2-20C", 20, 3, 14, "2g.20gb", 2, 0x15},
                {"H100-1-20C", 20, 4, 15, "1g.20gb", 2, 0x55},
                {"H100-1-10C", 10, 7, 19, "1g.10gb", 1, 0x7f},
                {"H100-1-10CME", 10, 1, 20, "1g.10gb+me", 1, 0x7f},
        };
        const struct gpu_model *m = catalog_find_model("h100-80gb");

        (void)state;
        assert_int_equal(m->mig_mem_slices, 8);
        assert_int_equal(m->mig_compute_slices, 7);
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                const struct vgpu_type *t = catalog_find_type(m, want[i].type);
                const struct mig_profile *p;

                assert_non_null(t);
                assert_int_equal(t->cls, CATALOG_MIG);
                assert_int_equal(t->fb_gib, want[i].fb);
                assert_int_equal(t->max_equal, want[i].max);
                assert_int_equal(t->mig_profile, want[i].profile);
                p = catalog_find_profile(m, want[i].profile);
                assert_non_null(p);
                assert_string_equal(p->name, want[i].pname);
                assert_int_equal(p->mem_slices, want[i].slices);
                assert_int_equal(p->placement_mask, want[i].mask);
                assert_int_equal(p->max_instances, want[i].max);
        }
        assert_true(catalog_find_type(m, "H100-1-10CME")->media_ext);
}

/* The rules every model's data must keep, for placement to be right. */
static void test_all_models_consistent(void **state)
{
        size_t n;
        const struct gpu_model *models = catalog_models(&n);

        (void)state;
        assert_true(n >= 10);
        for (size_t i = 0; i < n; i++) {
                const struct gpu_model *m = &models[i];
                uint32_t slots = catalog_het_slots(m);

                assert_non_null(m->id);
                assert_non_null(m->name);
                assert_non_null(m->source);
                assert_true(m->fb_gib > 0);
                assert_true(m->n_types > 0);
                assert_ptr_equal(catalog_find_model(m->id), m);
                assert_true(slots <= CATALOG_MAX_VGPUS_PER_GPU);
                assert_true(m->mig_mem_slices <= CATALOG_MAX_MEM_SLICES);
                for (size_t j = 0; j < i; j++)
                        assert_string_not_equal(models[j].id, m->id);
                for (size_t j = 0; j < m->n_types; j++) {
                        const struct vgpu_type *t = &m->types[j];
                        size_t plen = strlen(m->type_prefix);

                        /* Names are "<prefix>-..." and unique; IDs unique across the catalog. */
                        assert_int_equal(strncmp(t->name, m->type_prefix, plen), 0);
                        assert_int_equal(t->name[plen], '-');
                        assert_ptr_equal(catalog_find_type(m, t->name), t);
                        assert_ptr_equal(catalog_type_by_id(m, t->id), t);
                        for (size_t k = 0; k < n; k++) {
                                for (size_t q = 0; q < models[k].n_types; q++) {
                                        if (&models[k].types[q] != t)
                                                assert_int_not_equal(models[k].types[q].id, t->id);
                                }
                        }
                        assert_true(t->fb_gib > 0 && t->fb_gib <= m->fb_gib);
                        assert_true(t->max_equal >= 1);
                        assert_true(catalog_max_equal(m, t) <= CATALOG_MAX_VGPUS_PER_GPU);
                        assert_true((uint64_t)catalog_max_equal(m, t) * t->fb_gib <= m->fb_gib);
                        if (t->cls == CATALOG_TIME_SLICED && t->max_mixed) {
                                uint32_t size = catalog_het_size(m, t);

                                /* Slots divide exactly, and a slot span holds the type. */
                                assert_int_equal(slots % t->max_mixed, 0);
                                assert_true((uint64_t)size * catalog_model_fb_bytes(m) / slots >=
                                            catalog_type_fb_bytes(t));
                        }
                        if (t->cls == CATALOG_MIG) {
                                const struct mig_profile *p =
                                        catalog_find_profile(m, t->mig_profile);

                                assert_non_null(p);
                                /* The name's GB may round the instance's memory up. */
                                assert_true(catalog_type_fb_bytes(t) <=
                                            catalog_mem_slice_bytes(m) * p->mem_slices +
                                                    CATALOG_GIB);
                                assert_true(t->max_equal <= p->max_instances);
                        }
                }
                for (size_t j = 0; j < m->n_mig_profiles; j++) {
                        const struct mig_profile *p = &m->mig_profiles[j];
                        uint32_t fits = 0, next = 0;

                        assert_true(p->compute_slices >= 1);
                        assert_true(p->compute_slices <= m->mig_compute_slices);
                        assert_true(p->placement_mask != 0);
                        assert_ptr_equal(catalog_find_profile(m, p->id), p);
                        assert_ptr_equal(catalog_find_profile_name(m, p->name), p);
                        for (uint32_t s = 0; s < 32; s++) {
                                if (!(p->placement_mask & (1u << s)))
                                        continue;
                                assert_true(s + p->mem_slices <= m->mig_mem_slices);
                                if (s >= next) {
                                        fits++;
                                        next = s + p->mem_slices;
                                }
                        }
                        /* max instances can all be placed side by side. */
                        assert_true(p->max_instances <= fits);
                }
        }
}

static void test_lookups(void **state)
{
        const struct gpu_model *m = catalog_find_model("H100-80GB");

        (void)state;
        assert_null(catalog_find_model("H100-81GB"));
        assert_null(catalog_find_model(NULL));
        assert_ptr_equal(catalog_find_type(m, "nvidia h100-20c"), catalog_find_type(m, "H100-20C"));
        assert_null(catalog_find_type(m, "H100-21C"));
        assert_null(catalog_find_type(m, "A100-20C"));
        assert_ptr_equal(catalog_find_profile_name(m, "MIG 3g.40gb"), catalog_find_profile(m, 9));
        assert_ptr_equal(catalog_find_profile_name(m, "9"), catalog_find_profile(m, 9));
        assert_null(catalog_find_profile_name(m, "9x"));
        assert_null(catalog_find_profile_name(m, ""));
        assert_null(catalog_find_profile_name(m, "99999999999"));
        assert_null(catalog_find_profile(catalog_find_model("L4"), 19));
        assert_int_equal(catalog_mem_slice_bytes(m), 10 * CATALOG_GIB);
        assert_int_equal(catalog_mem_slice_bytes(catalog_find_model("L4")), 0);
        assert_int_equal(
                catalog_max_in_gi(m, catalog_find_profile(m, 9), catalog_find_type(m, "H100-10C")),
                4);
        assert_int_equal(
                catalog_max_in_gi(m, catalog_find_profile(m, 19), catalog_find_type(m, "H100-20C")),
                0);
        assert_int_equal(catalog_max_in_gi(m, catalog_find_profile(m, 9),
                                           catalog_find_type(m, "H100-3-40C")),
                         0);
}

/* A GPU the catalog does not know gets the generic list, which placement handles as any model. */
static void test_generic(void **state)
{
        static const uint32_t sizes[] = {8, 23, 48, 80, 141};

        (void)state;
        assert_null(catalog_generic_model(7, 8, 9, 100));
        assert_null(catalog_find_model("GENERIC-12GB-8.9-100SM")); /* not a multiple of 8 */
        assert_null(catalog_find_model("GENERIC-48GB-8.9-100SMx"));
        assert_null(catalog_find_model("GENERIC-48GB"));
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                const struct gpu_model *m = catalog_generic_model(sizes[i], 8, 9, 142);
                struct layout l;
                struct layout_vgpu v;
                uint32_t id = 1;

                assert_non_null(m);
                assert_int_equal(m->fb_gib, sizes[i] - sizes[i] % 8);
                assert_int_equal(m->cc_major, 8);
                assert_int_equal(m->sm_count, 142);
                /* The id names the same model again, also after a restart (parsed). */
                assert_ptr_equal(catalog_find_model(m->id), m);
                assert_ptr_equal(catalog_generic_model(sizes[i], 8, 9, 142), m);
                assert_int_equal(catalog_het_slots(m), 8);
                for (size_t k = 0; k < m->n_types; k++) {
                        const struct vgpu_type *t = &m->types[k];

                        assert_ptr_equal(catalog_find_type(m, t->name), t);
                        assert_true(t->fb_gib >= 1);
                        assert_true((uint64_t)catalog_max_equal(m, t) * t->fb_gib <= m->fb_gib);
                        /* Equal size: as many as the type allows, then no more. */
                        layout_init(&l, m);
                        for (uint32_t n = 0; n < catalog_max_equal(m, t); n++)
                                assert_int_equal(layout_create(&l, t, &LAYOUT_REQ_ANY, id++, &v),
                                                 0);
                        assert_true(layout_create(&l, t, &LAYOUT_REQ_ANY, id++, &v) < 0);
                }
                /* Mixed size: the whole-GPU half next to two quarters. */
                layout_init(&l, m);
                assert_int_equal(layout_set_mode(&l, LAYOUT_HETEROGENEOUS), 0);
                assert_int_equal(layout_create(&l, &m->types[1], &LAYOUT_REQ_ANY, id++, &v), 0);
                assert_int_equal(layout_create(&l, &m->types[2], &LAYOUT_REQ_ANY, id++, &v), 0);
                assert_int_equal(layout_create(&l, &m->types[2], &LAYOUT_REQ_ANY, id++, &v), 0);
                assert_true(layout_create(&l, &m->types[3], &LAYOUT_REQ_ANY, id++, &v) < 0);
        }
}

static void test_errors(void **state)
{
        (void)state;
        assert_string_equal(vgpu_strerror(0), "success");
        assert_string_equal(vgpu_error_name(VGPU_ENO_SPACE), "VGPU_ENO_SPACE");
        assert_string_equal(vgpu_strerror(VGPU_EUNKNOWN_MODEL), "unknown GPU model");
        assert_string_equal(vgpu_error_name(-ENOENT), "ENOENT");
        assert_string_equal(vgpu_strerror(-ENOENT), "No such file or directory");
        assert_string_equal(vgpu_strerror(-99999), "unknown error");
        assert_string_equal(vgpu_error_name(12345), "EUNKNOWN");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_h100_time_sliced),
                cmocka_unit_test(test_h100_mig),
                cmocka_unit_test(test_all_models_consistent),
                cmocka_unit_test(test_lookups),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_generic),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
