// SPDX-License-Identifier: Apache-2.0
// Guest test: error paths. NULL handles and outputs, bad launch configurations (not sticky), and
// kernel faults: an illegal address and a trap, each in a child process (this program re-executed
// with --child), must give CUDA_ERROR_ILLEGAL_ADDRESS / CUDA_ERROR_LAUNCH_FAILED and leave that
// context sticky-broken, while this process's context, alive throughout, runs on untouched.
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_bad_arguments(CUmodule mod, CUdeviceptr d)
{
        CUfunction f = NULL;
        CUfunction nf = NULL;
        CUevent e = NULL;
        int v;

        CK_RES(cuMemAlloc(NULL, 64), CUDA_ERROR_INVALID_VALUE);
        CK_RES(cuCtxGetCurrent(NULL), CUDA_ERROR_INVALID_VALUE);
        CK_RES(cuDeviceGetCount(NULL), CUDA_ERROR_INVALID_VALUE);
        CK_RES(cuModuleLoadData(NULL, guest_kernels_fatbin), CUDA_ERROR_INVALID_VALUE);
        CK_RES(cuModuleGetFunction(&f, mod, NULL), CUDA_ERROR_INVALID_VALUE);

        // NULL handles: INVALID_HANDLE where the documentation lists it, else INVALID_VALUE.
        CK_ONE_OF(cuModuleGetFunction(&f, NULL, "add_one"), CUDA_ERROR_INVALID_HANDLE,
                  CUDA_ERROR_INVALID_VALUE);
        CK_ONE_OF(cuModuleUnload(NULL), CUDA_ERROR_INVALID_HANDLE, CUDA_ERROR_INVALID_VALUE);
        CK_ONE_OF(cuEventQuery(NULL), CUDA_ERROR_INVALID_HANDLE, CUDA_ERROR_INVALID_VALUE);
        CK_ONE_OF(cuEventRecord(NULL, NULL), CUDA_ERROR_INVALID_HANDLE, CUDA_ERROR_INVALID_VALUE);
        CK_ONE_OF(cuEventSynchronize(NULL), CUDA_ERROR_INVALID_HANDLE, CUDA_ERROR_INVALID_VALUE);
        CK_ONE_OF(cuFuncGetAttribute(&v, CU_FUNC_ATTRIBUTE_NUM_REGS, NULL),
                  CUDA_ERROR_INVALID_HANDLE, CUDA_ERROR_INVALID_VALUE);
        CK_ONE_OF(cuLaunchKernel(NULL, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL),
                  CUDA_ERROR_INVALID_HANDLE, CUDA_ERROR_INVALID_VALUE);
        if (CK(cuEventCreate(&e, 0))) {
                CK_ONE_OF(cuEventElapsedTime(&(float){0}, e, NULL), CUDA_ERROR_INVALID_HANDLE,
                          CUDA_ERROR_INVALID_VALUE);
                CK(cuEventDestroy(e));
        }

        // Launch configurations a GPU refuses; none of them breaks the context.
        if (!check_function(mod, "add_one", &nf))
                return;
        int n = 1;
        void *params[] = {&d, &n};
        CK_RES(cuLaunchKernel(nf, 1, 1, 1, 1025, 1, 1, 0, NULL, params, NULL),
               CUDA_ERROR_INVALID_VALUE);
        CK_RES(cuLaunchKernel(nf, 1, 1, 1, 32, 32, 2, 0, NULL, params, NULL),
               CUDA_ERROR_INVALID_VALUE);
        CK_RES(cuLaunchKernel(nf, 1, 1, 1, 1, 1, 65, 0, NULL, params, NULL),
               CUDA_ERROR_INVALID_VALUE);
        CK_RES(cuLaunchKernel(nf, 0, 1, 1, 32, 1, 1, 0, NULL, params, NULL),
               CUDA_ERROR_INVALID_VALUE);
        CK_RES(cuLaunchKernel(nf, 1, 1, 1, 0, 1, 1, 0, NULL, params, NULL),
               CUDA_ERROR_INVALID_VALUE);
        CK_RES(cuLaunchKernel(nf, 1, 65536, 1, 32, 1, 1, 0, NULL, params, NULL),
               CUDA_ERROR_INVALID_VALUE);
        CK_RES(cuLaunchKernel(nf, 1, 1, 65536, 32, 1, 1, 0, NULL, params, NULL),
               CUDA_ERROR_INVALID_VALUE);
        CK(cuCtxSynchronize());

        // Out-of-range copies and frees that are not allocations.
        CK_RES(cuMemcpyDtoH(&v, 0, sizeof(v)), CUDA_ERROR_INVALID_VALUE);
        CK_RES(cuMemFree(d + 16), CUDA_ERROR_INVALID_VALUE);
        CK(cuCtxSynchronize());
}

// Run add_one on 256 ints holding `base + i`; true when each became base + i + 1.
static bool context_works(CUmodule mod, CUdeviceptr d, int base)
{
        CUfunction f;
        int h[256];
        int n = 256;
        void *params[] = {&d, &n};

        if (cuModuleGetFunction(&f, mod, "add_one") != CUDA_SUCCESS)
                return false;
        for (int i = 0; i < n; i++)
                h[i] = base + i;
        if (cuMemcpyHtoD(d, h, sizeof(h)) != CUDA_SUCCESS ||
            cuLaunchKernel(f, 2, 1, 1, 128, 1, 1, 0, NULL, params, NULL) != CUDA_SUCCESS ||
            cuMemcpyDtoH(h, d, sizeof(h)) != CUDA_SUCCESS)
                return false;
        for (int i = 0; i < n; i++) {
                if (h[i] != base + i + 1)
                        return false;
        }
        return true;
}

// The child: make one kind of fault, then check that the error is sticky.
static int child_main(const char *kind)
{
        CUdevice dev;
        CUcontext ctx;
        CUmodule mod = NULL;
        CUfunction f = NULL;
        CUdeviceptr d = 0;
        CUstream s = NULL;
        CUresult want;
        const char *fn;

        if (strcmp(kind, "illegal-address") == 0) {
                want = CUDA_ERROR_ILLEGAL_ADDRESS;
                fn = "store_to";
        } else if (strcmp(kind, "trap") == 0) {
                want = CUDA_ERROR_LAUNCH_FAILED;
                fn = "trap_kernel";
        } else {
                fprintf(stderr, "unknown child kind %s\n", kind);
                return 2;
        }
        check_note("child process %d: %s", (int)getpid(), kind);
        if (!check_setup(&dev, &ctx))
                return check_done();
        if (!check_load_kernels(&mod) || !CK(cuMemAlloc(&d, 4096)) ||
            !CK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING)) || !check_function(mod, fn, &f))
                return check_done();
        check_true(context_works(mod, d, 0), "the child's context works before the fault");

        // No allocation is anywhere near address 0, on any GPU.
        CUdeviceptr bad = want == CUDA_ERROR_ILLEGAL_ADDRESS ? 0 : d;
        int v = 1;
        void *params[] = {&bad, &v};
        CUresult r = cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, s, params, NULL);
        check_true(r == CUDA_SUCCESS || r == want, "faulting launch is accepted (%s)",
                   check_name(r));
        CK_RES(cuStreamSynchronize(s), want);
        // Sticky: every later call in this context reports the same error.
        CK_RES(cuCtxSynchronize(), want);
        CK_RES(cuMemAlloc(&d, 4096), want);
        CK_RES(cuMemcpyHtoD(d, &v, sizeof(v)), want);
        CK_RES(cuStreamQuery(s), want);
        CK_RES(cuCtxSynchronize(), want);
        return check_done();
}

// Run this program as a child of the given kind; add its counts; true when it exited 0.
static bool run_child(const char *self, const char *kind)
{
        int fds[2];
        pid_t pid;
        int status = 0;

        fflush(stdout);
        if (pipe(fds) != 0)
                return check_true(false, "pipe");
        pid = fork();
        if (pid < 0)
                return check_true(false, "fork");
        if (pid == 0) {
                dup2(fds[1], STDOUT_FILENO);
                close(fds[0]);
                close(fds[1]);
                execl(self, self, "--child", kind, (char *)NULL);
                _exit(127);
        }
        close(fds[1]);
        FILE *in = fdopen(fds[0], "r");
        char line[512];
        int p = 0;
        int f = 0;
        bool summary = false;
        while (in && fgets(line, sizeof(line), in)) {
                if (sscanf(line, "%d passed, %d failed", &p, &f) == 2) {
                        summary = true;
                        continue;
                }
                printf("  [%s] %s", kind, line);
        }
        if (in)
                fclose(in);
        waitpid(pid, &status, 0);
        if (summary)
                check_add(p, f);
        return check_true(summary && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                          "child %s: %d passed, %d failed, exit status %d", kind, p, f,
                          WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

int main(int argc, char **argv)
{
        CUdevice dev;
        CUcontext ctx;
        CUmodule mod = NULL;
        CUdeviceptr d = 0;
        CUdeviceptr keep = 0;
        char self[4096];
        ssize_t len;

        if (argc == 3 && strcmp(argv[1], "--child") == 0)
                return child_main(argv[2]);

        // cuInit happens after no fork: the children exec this program afresh.
        len = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (len <= 0) {
                check_true(false, "readlink /proc/self/exe");
                return check_done();
        }
        self[len] = '\0';

        if (!check_setup(&dev, &ctx))
                return check_done();
        if (!check_load_kernels(&mod) || !CK(cuMemAlloc(&d, 1 << 16)) ||
            !CK(cuMemAlloc(&keep, 1 << 16))) {
                check_teardown(dev);
                return check_done();
        }
        test_bad_arguments(mod, d);
        check_true(context_works(mod, d, 100), "the context works after the refused calls");

        // Data this process holds while the children fault must come through intact.
        unsigned pat[1024];
        unsigned back[1024];
        for (int i = 0; i < 1024; i++)
                pat[i] = 0x9e3779b9u * (unsigned)i;
        CK(cuMemcpyHtoD(keep, pat, sizeof(pat)));
        run_child(self, "illegal-address");
        run_child(self, "trap");
        CK(cuCtxSynchronize());
        CK(cuMemcpyDtoH(back, keep, sizeof(back)));
        check_true(memcmp(pat, back, sizeof(pat)) == 0,
                   "this process's memory is intact after the children's faults");
        check_true(context_works(mod, d, 1000), "this process's context works after the faults");

        CK(cuMemFree(d));
        CK(cuMemFree(keep));
        CK(cuModuleUnload(mod));
        check_teardown(dev);
        return check_done();
}
