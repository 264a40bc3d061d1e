// SPDX-License-Identifier: Apache-2.0
// Generic models: what vgpu offers on a GPU its catalog does not know (the cuda backend found it,
// but no public vGPU type list exists for it). A conservative list: the whole GPU, halves,
// quarters and eighths of its framebuffer (rounded down to a multiple of 8 GiB), equal or mixed
// size, no MIG. The model's id carries everything it is made from, "GENERIC-48GB-8.9-142SM", so
// that vgpud's state and an engine's arguments name it like any other model.
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/catalog.h"

#define GENERIC_MAX   16 /* distinct generic models per process */
#define GENERIC_TYPES 4

struct generic {
        struct gpu_model m;
        struct vgpu_type types[GENERIC_TYPES];
        char id[48], name[64], prefix[16], type_names[GENERIC_TYPES][24];
};

static struct generic generics[GENERIC_MAX];
static size_t n_generics;
static pthread_mutex_t generics_lock = PTHREAD_MUTEX_INITIALIZER;

const struct gpu_model *catalog_generic_model(uint32_t fb_gib, uint32_t cc_major, uint32_t cc_minor,
                                              uint32_t sm_count)
{
        static const uint32_t per_gpu[GENERIC_TYPES] = {1, 2, 4, 8};
        struct generic *g = NULL;
        char id[48];

        fb_gib -= fb_gib % 8;
        if (fb_gib < 8 || fb_gib > 4096 || cc_major > 99 || cc_minor > 9 || sm_count > 100000)
                return NULL;
        snprintf(id, sizeof(id), "GENERIC-%uGB-%u.%u-%uSM", fb_gib, cc_major, cc_minor, sm_count);
        pthread_mutex_lock(&generics_lock);
        for (size_t i = 0; i < n_generics && !g; i++) {
                if (strcmp(generics[i].id, id) == 0)
                        g = &generics[i];
        }
        if (!g && n_generics < GENERIC_MAX) {
                g = &generics[n_generics];
                memset(g, 0, sizeof(*g));
                snprintf(g->id, sizeof(g->id), "%s", id);
                snprintf(g->name, sizeof(g->name), "GPU not in the catalog (%u GiB, sm_%u%u)",
                         fb_gib, cc_major, cc_minor);
                snprintf(g->prefix, sizeof(g->prefix), "GEN%u", fb_gib);
                for (uint32_t k = 0; k < GENERIC_TYPES; k++) {
                        uint32_t fb = fb_gib / per_gpu[k];

                        snprintf(g->type_names[k], sizeof(g->type_names[k]), "GEN%u-%uC", fb_gib,
                                 fb);
                        g->types[k] = (struct vgpu_type){.id = 0xf00 + k,
                                                         .name = g->type_names[k],
                                                         .cls = CATALOG_TIME_SLICED,
                                                         .fb_gib = fb,
                                                         .max_equal = per_gpu[k],
                                                         .max_mixed = per_gpu[k]};
                }
                g->m = (struct gpu_model){
                        .id = g->id,
                        .name = g->name,
                        .type_prefix = g->prefix,
                        .arch = "unknown",
                        .fb_gib = fb_gib,
                        .sm_count = sm_count,
                        .cc_major = cc_major,
                        .cc_minor = cc_minor,
                        .types = g->types,
                        .n_types = GENERIC_TYPES,
                        .source = "vgpu's generic type list for a GPU not in the catalog "
                                  "(docs/catalog.md)",
                };
                n_generics++;
        }
        pthread_mutex_unlock(&generics_lock);
        return g ? &g->m : NULL;
}

const struct gpu_model *catalog_parse_generic(const char *id)
{
        unsigned fb, major, minor, sms;
        char tail[4];

        if (!id || strncasecmp(id, "GENERIC-", 8) != 0 ||
            sscanf(id + 8, "%uGB-%u.%u-%uSM%3s", &fb, &major, &minor, &sms, tail) != 4 || fb % 8)
                return NULL;
        return catalog_generic_model(fb, major, minor, sms);
}
