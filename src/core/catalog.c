// SPDX-License-Identifier: Apache-2.0
// Lookups and derived figures over the catalog tables of catalog_data.c: finding models, types and
// MIG profiles by name, and the arithmetic placement builds on (slots, caps, slice sizes).
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "core/catalog.h"

const struct gpu_model *catalog_find_model(const char *id)
{
        size_t n;
        const struct gpu_model *models = catalog_models(&n);

        if (!id)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (strcasecmp(models[i].id, id) == 0)
                        return &models[i];
        }
        return catalog_parse_generic(id);
}

const struct gpu_model *catalog_match_model(uint32_t pci_device_id, const char *name)
{
        /* The driver's names, most specific first; each must contain every word given. */
        static const struct {
                const char *words[3];
                const char *id;
        } by_name[] = {
                {{"H200"}, "H200-141GB"},
                {{"H100", "HBM3"}, "H100-SXM-80GB"},
                {{"H100", "SXM"}, "H100-SXM-80GB"},
                {{"H100", "PCIe"}, "H100-80GB"},
                {{"A100", "80GB"}, "A100-80GB"},
                {{"A100", "40GB"}, "A100-40GB"},
                {{"L40S"}, "L40S"},
                {{"L40"}, "L40"},
                {{"A30"}, "A30"},
        };
        size_t n;
        const struct gpu_model *models = catalog_models(&n);

        for (size_t i = 0; pci_device_id && i < n; i++) {
                if (models[i].pci_device_id == pci_device_id)
                        return &models[i];
        }
        if (!name)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (strcasecmp(models[i].name, name) == 0)
                        return &models[i];
        }
        for (size_t i = 0; i < sizeof(by_name) / sizeof(by_name[0]); i++) {
                bool all = true;

                for (size_t w = 0; w < 3 && by_name[i].words[w]; w++)
                        all = all && strstr(name, by_name[i].words[w]);
                if (all)
                        return catalog_find_model(by_name[i].id);
        }
        /* "NVIDIA L4" and "NVIDIA A10" are prefixes of other names: whole names only. */
        if (strcmp(name, "NVIDIA L4") == 0 || strcmp(name, "NVIDIA A10") == 0)
                return catalog_find_model(name + 7);
        return NULL;
}

const struct vgpu_type *catalog_find_type(const struct gpu_model *m, const char *name)
{
        if (!m || !name)
                return NULL;
        if (strncasecmp(name, "NVIDIA ", 7) == 0)
                name += 7;
        for (size_t i = 0; i < m->n_types; i++) {
                if (strcasecmp(m->types[i].name, name) == 0)
                        return &m->types[i];
        }
        return NULL;
}

const struct vgpu_type *catalog_type_by_id(const struct gpu_model *m, uint32_t id)
{
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_types; i++) {
                if (m->types[i].id == id)
                        return &m->types[i];
        }
        return NULL;
}

const struct mig_profile *catalog_find_profile(const struct gpu_model *m, uint32_t id)
{
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_mig_profiles; i++) {
                if (m->mig_profiles[i].id == id)
                        return &m->mig_profiles[i];
        }
        return NULL;
}

const struct mig_profile *catalog_find_profile_name(const struct gpu_model *m, const char *name)
{
        char *end;
        unsigned long id;

        if (!m || !name || !*name)
                return NULL;
        if (strncasecmp(name, "MIG ", 4) == 0)
                name += 4;
        for (size_t i = 0; i < m->n_mig_profiles; i++) {
                if (strcasecmp(m->mig_profiles[i].name, name) == 0)
                        return &m->mig_profiles[i];
        }
        id = strtoul(name, &end, 10);
        if (*end != '\0' || end == name || id > UINT32_MAX)
                return NULL;
        return catalog_find_profile(m, (uint32_t)id);
}

uint64_t catalog_type_fb_bytes(const struct vgpu_type *t)
{
        return (uint64_t)t->fb_gib * CATALOG_GIB;
}

uint64_t catalog_model_fb_bytes(const struct gpu_model *m)
{
        return (uint64_t)m->fb_gib * CATALOG_GIB;
}

uint32_t catalog_het_slots(const struct gpu_model *m)
{
        uint32_t slots = 0;

        for (size_t i = 0; i < m->n_types; i++) {
                const struct vgpu_type *t = &m->types[i];

                if (t->cls == CATALOG_TIME_SLICED && t->max_mixed > slots)
                        slots = t->max_mixed;
        }
        return slots;
}

uint32_t catalog_het_size(const struct gpu_model *m, const struct vgpu_type *t)
{
        uint32_t slots = catalog_het_slots(m);

        if (t->cls != CATALOG_TIME_SLICED || t->max_mixed == 0 || slots == 0)
                return 0;
        return slots / t->max_mixed;
}

uint32_t catalog_max_equal(const struct gpu_model *m, const struct vgpu_type *t)
{
        uint32_t fits;

        if (t->fb_gib == 0)
                return 0;
        fits = m->fb_gib / t->fb_gib;
        return t->max_equal < fits ? t->max_equal : fits;
}

uint64_t catalog_mem_slice_bytes(const struct gpu_model *m)
{
        if (m->mig_mem_slices == 0)
                return 0;
        return catalog_model_fb_bytes(m) / m->mig_mem_slices;
}

uint32_t catalog_max_in_gi(const struct gpu_model *m, const struct mig_profile *p,
                           const struct vgpu_type *t)
{
        uint64_t gi_bytes = catalog_mem_slice_bytes(m) * p->mem_slices;
        uint64_t n;

        if (t->cls != CATALOG_TIME_SLICED || t->fb_gib == 0)
                return 0;
        n = gi_bytes / catalog_type_fb_bytes(t);
        if (n > t->max_equal)
                n = t->max_equal;
        return (uint32_t)n;
}

const char *catalog_class_name(enum catalog_class cls)
{
        return cls == CATALOG_MIG ? "MIG-backed" : "time-sliced";
}
