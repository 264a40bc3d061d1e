// SPDX-License-Identifier: Apache-2.0
// The vectorised build of the C baselines (see c_loops.c): -O3 and an x86-64-v3 (AVX2, FMA)
// clone picked at load time on CPUs that have it.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) &&                             \
        !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define HOT
#endif
#define C_LOOPS_PREFIX(name) vec_##name

#include "c_loops.c"
