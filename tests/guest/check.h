// SPDX-License-Identifier: Apache-2.0
// The little harness of the guest driver-API tests: one line per check ("ok" or "FAIL" with the
// CUresult names), a final "N passed, M failed" line and the exit status. Also the embedded test
// kernels (kernels.cu as a fatbinary and as PTX text) and helpers that set up a device context.
#ifndef VGPU_TESTS_GUEST_CHECK_H
#define VGPU_TESTS_GUEST_CHECK_H

#include <cuda.h>
#include <stdbool.h>
#include <stddef.h>

// kernels.cu compiled to a fatbinary with PTX (compute_75, compute_90), and to NUL-terminated PTX.
extern const unsigned char guest_kernels_fatbin[];
extern const size_t guest_kernels_fatbin_size;
extern const unsigned char guest_kernels_ptx[];
extern const size_t guest_kernels_ptx_size;

// CK(call): check that call returns CUDA_SUCCESS. CK_RES(call, want): that it returns want.
// Both evaluate to true when the check passed.
#define CK(call)           check_res(#call, (call), CUDA_SUCCESS)
#define CK_RES(call, want) check_res(#call, (call), (want))
// CK_ONE_OF(call, a, b): that call returns a or b (where the documentation allows either).
#define CK_ONE_OF(call, a, b) check_res2(#call, (call), (a), (b))

// check_res: record one check that got == want; prints "ok   what" or "FAIL what: got X, want Y".
bool check_res(const char *what, CUresult got, CUresult want);

// check_res2: record one check that got is a or b.
bool check_res2(const char *what, CUresult got, CUresult a, CUresult b);

// check_true: record one check of a condition, described by a printf format.
bool check_true(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// check_skip: print one "skip" line (counted neither as passed nor failed).
void check_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// check_note: print an informational line.
void check_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// check_counts: the totals so far (for programs that merge a child's results).
void check_counts(int *ret_passed, int *ret_failed);

// check_add: add a child's totals to this program's.
void check_add(int passed, int failed);

// check_done: print "N passed, M failed" and return the exit status (0 when none failed).
int check_done(void);

// check_name: cuGetErrorName of res, or "CUresult <n>" when the driver does not know it.
const char *check_name(CUresult res);

// check_setup: cuInit(0), device 0 (or $VGPU_TEST_DEVICE), retain its primary context and make it
// current. Returns false (after recording the failed check) when any of it fails.
bool check_setup(CUdevice *ret_dev, CUcontext *ret_ctx);

// check_teardown: make no context current and release the primary context of dev.
void check_teardown(CUdevice dev);

// check_load_kernels: cuModuleLoadData(guest_kernels_fatbin) in the current context, recorded.
bool check_load_kernels(CUmodule *ret_mod);

// check_function: cuModuleGetFunction, recorded; *ret_f is NULL on failure.
bool check_function(CUmodule mod, const char *name, CUfunction *ret_f);

// check_wait_until: poll pred(arg) every millisecond for up to ms milliseconds; true if it held.
bool check_wait_until(bool (*pred)(void *arg), void *arg, int ms);

#endif
