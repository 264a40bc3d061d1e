// SPDX-License-Identifier: Apache-2.0
// JSON documents for models, vGPU types and MIG profiles, shared by vgpuctl and vgpud.
#include <stdio.h>

#include "core/catalog_json.h"

json_t *catalog_model_json(const struct gpu_model *m)
{
        char pci[8], cc[16];
        json_t *o;

        snprintf(pci, sizeof(pci), "0x%04x", m->pci_device_id);
        snprintf(cc, sizeof(cc), "%u.%u", m->cc_major, m->cc_minor);
        o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:i, s:s, s:i}", "id", m->id, "name", m->name,
                      "arch", m->arch, "type_prefix", m->type_prefix, "fb_mib",
                      (json_int_t)(catalog_model_fb_bytes(m) / CATALOG_MIB), "sm_count",
                      (int)m->sm_count, "compute_capability", cc, "mmio_gib", (int)m->mmio_gib);
        if (!o)
                return NULL;
        json_object_set_new(o, "pci_device_id", m->pci_device_id ? json_string(pci) : json_null());
        if (m->mig_mem_slices)
                json_object_set_new(o, "mig",
                                    json_pack("{s:i, s:i}", "memory_slices", (int)m->mig_mem_slices,
                                              "compute_slices", (int)m->mig_compute_slices));
        else
                json_object_set_new(o, "mig", json_null());
        json_object_set_new(o, "heterogeneous_slots", json_integer(catalog_het_slots(m)));
        json_object_set_new(o, "source", json_string(m->source));
        return o;
}

json_t *catalog_type_json(const struct gpu_model *m, const struct vgpu_type *t)
{
        json_t *o = json_pack("{s:i, s:s, s:s, s:I, s:i, s:i}", "id", (int)t->id, "name", t->name,
                              "class", t->cls == CATALOG_MIG ? "mig-backed" : "time-sliced",
                              "fb_mib", (json_int_t)(catalog_type_fb_bytes(t) / CATALOG_MIB),
                              "max_instances", (int)catalog_max_equal(m, t),
                              "max_instances_documented", (int)t->max_equal);

        if (!o)
                return NULL;
        if (t->cls == CATALOG_TIME_SLICED) {
                json_object_set_new(o, "max_instances_mixed", json_integer(t->max_mixed));
                json_object_set_new(o, "placement_size", json_integer(catalog_het_size(m, t)));
                json_object_set_new(o, "gpu_instance_profile_id", json_null());
        } else {
                json_object_set_new(o, "gpu_instance_profile_id", json_integer(t->mig_profile));
        }
        json_object_set_new(o, "media_extensions", json_boolean(t->media_ext));
        return o;
}

json_t *catalog_profile_json(const struct layout *l, const struct mig_profile *p)
{
        const struct gpu_model *m = l->model;
        json_t *starts = json_array(), *free_starts = json_array(), *ts = json_array();
        uint32_t free_mask = layout_gi_free_starts(l, p);

        for (uint32_t s = 0; s < m->mig_mem_slices; s++) {
                if (p->placement_mask & (1u << s))
                        json_array_append_new(starts, json_integer(s));
                if (free_mask & (1u << s))
                        json_array_append_new(free_starts, json_integer(s));
        }
        for (size_t j = 0; j < m->n_types; j++) {
                uint32_t n = catalog_max_in_gi(m, p, &m->types[j]);

                if (n)
                        json_array_append_new(ts, json_pack("{s:s, s:i}", "type", m->types[j].name,
                                                            "per_instance", (int)n));
        }
        return json_pack("{s:i, s:s, s:i, s:i, s:i, s:i, s:I, s:i, s:{s:o, s:i}, s:o, s:i, s:i, "
                         "s:i, s:i, s:i, s:b, s:o}",
                         "id", (int)p->id, "name", p->name, "compute_slices",
                         (int)p->compute_slices, "memory_slices", (int)p->mem_slices,
                         "instances_total", (int)p->max_instances, "instances_free",
                         (int)layout_gi_free_count(l, p), "memory_mib", (json_int_t)p->mem_mib,
                         "sm_count", (int)p->sm_count, "placements", "starts", starts, "size",
                         (int)p->mem_slices, "free_starts", free_starts, "ce", p->ce, "dec", p->dec,
                         "enc", p->enc, "jpeg", p->jpeg, "ofa", p->ofa, "p2p", p->p2p,
                         "time_sliced_types", ts);
}
