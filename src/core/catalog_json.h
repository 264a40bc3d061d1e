/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The catalog as JSON: the documents `vgpuctl --json types` prints and vgpud's API serves, built
 * in one place so that both always agree (field names in docs/api.md).
 */
#ifndef VGPU_CORE_CATALOG_JSON_H
#define VGPU_CORE_CATALOG_JSON_H

#include <jansson.h>

#include "core/catalog.h"
#include "core/layout.h"

/* catalog_model_json - a model's facts. Returns a new object (NULL on allocation failure). */
json_t *catalog_model_json(const struct gpu_model *m);

/* catalog_type_json - a vGPU type of model m. Returns a new object. */
json_t *catalog_type_json(const struct gpu_model *m, const struct vgpu_type *t);

/*
 * catalog_profile_json - a MIG profile with its instance counts on layout l (a MIG-mode layout
 * of l's model; its free instances and starts are reported). Returns a new object.
 */
json_t *catalog_profile_json(const struct layout *l, const struct mig_profile *p);

#endif
