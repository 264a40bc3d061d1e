// SPDX-License-Identifier: Apache-2.0
// Shared helpers of the example programs: CUresult checking (print cuGetErrorName and exit 1),
// device and context setup through the primary context, module loading, flags and timing.
// Written against the CUDA driver API only, so the examples run on vgpu and on a real GPU alike.
#ifndef VGPU_EXAMPLES_COMMON_H
#define VGPU_EXAMPLES_COMMON_H

#include <cuda.h>
#include <stddef.h>

// CU(call): run a driver call; on failure print "FAIL <call>: <error name>" and exit 1.
#define CU(call) ex_check((call), #call, __FILE__, __LINE__)

// ex_check: the body of CU(); returns only when res is CUDA_SUCCESS.
void ex_check(CUresult res, const char *what, const char *file, int line);

// ex_fail: print "FAIL <message>" and exit 1.
void ex_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

// ex_open: cuInit, pick the device (--device N, default 0), retain its primary context and make
// it current. Prints one line naming the program and the device. Returns the context; *ret_dev
// gets the device. Exits on failure.
CUcontext ex_open(const char *prog, int argc, char **argv, CUdevice *ret_dev);

// ex_close: release the primary context retained by ex_open.
void ex_close(CUdevice dev);

// ex_load: load an embedded fatbinary with cuModuleLoadData. Exits on failure.
CUmodule ex_load(const unsigned char *image);

// ex_function: cuModuleGetFunction, exiting on failure.
CUfunction ex_function(CUmodule mod, const char *name);

// ex_flag_long: the value of "--name N" in argv, or def when absent; exits on a malformed value.
long long ex_flag_long(int argc, char **argv, const char *name, long long def);

// ex_flag_double: the value of "--name X" in argv, or def when absent.
double ex_flag_double(int argc, char **argv, const char *name, double def);

// ex_now: a monotonic clock in seconds.
double ex_now(void);

// ex_rand: a small deterministic generator (xorshift32) for test data; state must be non-zero.
unsigned ex_rand(unsigned *state);

#endif
