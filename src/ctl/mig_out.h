/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The layouts of `nvidia-smi mig -lgip` (box of GPU instance profiles), `-lgipp` (placements, one
 * line per profile) and `-lgi` (box of GPU instances), printed from rows that either the catalog
 * (vgpuctl types --model M --mig) or vgpud's replies (vgpuctl mig) fill.
 */
#ifndef VGPU_CTL_MIG_OUT_H
#define VGPU_CTL_MIG_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One GPU instance profile of one GPU. */
struct mig_out_profile {
        unsigned gpu, id;
        const char *name; /* "3g.40gb" */
        unsigned free, total;
        double mem_gib; /* < 0: not known (prints N/A) */
        bool p2p;
        unsigned sm; /* 0: not public (prints N/A) */
        unsigned ce, dec, enc, jpeg, ofa;
        uint64_t starts; /* bit i set: a GPU instance may start at memory slice i */
        unsigned size;   /* memory slices */
};

/* One GPU instance. */
struct mig_out_gi {
        unsigned gpu, id, profile_id, start, size;
        const char *profile; /* "3g.40gb" */
};

/* mig_out_lgip - print the `GPU instance profiles:` box for rows[0..n) to stdout. */
void mig_out_lgip(const struct mig_out_profile *rows, size_t n);

/* mig_out_lgipp - print `GPU  0 Profile ID  9 Placements: {0,4}:4` lines for rows[0..n). */
void mig_out_lgipp(const struct mig_out_profile *rows, size_t n);

/* mig_out_lgi - print the `GPU instances:` box for rows[0..n) to stdout. */
void mig_out_lgi(const struct mig_out_gi *rows, size_t n);

#endif
