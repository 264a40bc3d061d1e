/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the two files of test_cuda_backend share: the configuration's numbers, the PTX its
 * kernels come from, and the tests of the driver's own rules (test_cuda_driver.c).
 */
#ifndef VGPU_TESTS_FAKEGPU_CUDA_TEST_CUDA_H
#define VGPU_TESTS_FAKEGPU_CUDA_TEST_CUDA_H

#include <stdint.h>

#define MIB      (UINT64_C(1) << 20)
#define GIB      (UINT64_C(1) << 30)
#define FB1_ADDR UINT64_C(0x7e1000000000)

/*
 * add_n: p[i] += v for i < n; bump: counter++; staged: p[t] = t through shared memory (at most
 * 256 threads); peek: *out = *p; boom: a trap. NUL-terminated.
 */
extern const char ptx_text[];

/* Through cuda_drv.c's table (cu), in this order, before the backend's tests. */
void test_exports(void **state);
void test_driver_rules(void **state);
void test_driver_modules(void **state);
void test_driver_images(void **state);

#endif
