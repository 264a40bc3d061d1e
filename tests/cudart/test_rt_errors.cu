// SPDX-License-Identifier: Apache-2.0
// Errors through the runtime API: names and strings, the last error (read and reset, or peeked),
// errors that do not stick (bad pointers, bad launch configurations, unregistered functions,
// too much memory), and kernel faults that do: an illegal address and a trap, each in a child
// process (this program re-executed with --child), stick to that process's context; this one's
// context works on.
#include <sys/wait.h>
#include <unistd.h>

#include "rt_check.h"

__global__ void write_to(int *p, int v)
{
        *p = v;
}

__global__ void trap_now()
{
        __trap();
}

static int child(const char *kind)
{
        bool trap = strcmp(kind, "trap") == 0;
        cudaError_t want = trap ? cudaErrorLaunchFailure : cudaErrorIllegalAddress;
        int *d = NULL, h = 0;

        RT_OK(cudaMalloc(&d, sizeof(int)));
        write_to<<<1, 1>>>(d, 5);
        RT_OK(cudaMemcpy(&h, d, sizeof(int), cudaMemcpyDeviceToHost));
        rt_check(h == 5, "the child's context works before the fault");
        if (trap)
                trap_now<<<1, 1>>>();
        else
                write_to<<<1, 1>>>((int *)8, 1);
        RT_ERR(cudaDeviceSynchronize(), want);
        // Sticky: the context is unusable; every call says so, and so does the last error.
        RT_ERR(cudaGetLastError(), want);
        RT_ERR(cudaMemcpy(&h, d, sizeof(int), cudaMemcpyDeviceToHost), want);
        int *d2 = NULL;
        RT_ERR(cudaMalloc(&d2, 16), want);
        RT_ERR(cudaDeviceSynchronize(), want);
        return rt_done(trap ? "test_rt_errors --child trap" : "test_rt_errors --child illegal");
}

static bool run_child(const char *self, const char *kind)
{
        pid_t pid = fork();
        int status = 0;

        if (pid == 0) {
                execl(self, self, "--child", kind, (char *)NULL);
                _exit(127);
        }
        if (pid < 0 || waitpid(pid, &status, 0) != pid)
                return false;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int main(int argc, char **argv)
{
        int *d = NULL, h = 0;

        if (argc == 3 && strcmp(argv[1], "--child") == 0)
                return child(argv[2]);

        rt_check(strcmp(cudaGetErrorName(cudaErrorInvalidValue), "cudaErrorInvalidValue") == 0,
                 "cudaGetErrorName(cudaErrorInvalidValue)");
        rt_check(strcmp(cudaGetErrorName(cudaErrorIllegalAddress), "cudaErrorIllegalAddress") == 0,
                 "cudaGetErrorName(cudaErrorIllegalAddress)");
        rt_check(cudaGetErrorString(cudaErrorMemoryAllocation) != NULL &&
                         cudaGetErrorString(cudaErrorMemoryAllocation)[0] != '\0',
                 "cudaGetErrorString(cudaErrorMemoryAllocation): %s",
                 cudaGetErrorString(cudaErrorMemoryAllocation));
        rt_check(cudaGetErrorName((cudaError_t)12345) != NULL, "a name even for an unknown code");
        RT_OK(cudaGetLastError());

        // Errors that do not stick: reported once, then the context works on.
        RT_OK(cudaMalloc(&d, sizeof(int)));
        cudaError_t e = cudaMemcpy(&h, (void *)16, sizeof(int), cudaMemcpyDeviceToHost);
        rt_check(e != cudaSuccess, "cudaMemcpy from a bad device pointer fails (%s)",
                 cudaGetErrorName(e));
        RT_ERR(cudaPeekAtLastError(), e);
        RT_ERR(cudaGetLastError(), e);
        RT_OK(cudaGetLastError());
        e = cudaFree((void *)0x1000);
        rt_check(e != cudaSuccess, "cudaFree of a pointer never allocated fails (%s)",
                 cudaGetErrorName(e));
        (void)cudaGetLastError();
        void *huge = NULL;
        RT_ERR(cudaMalloc(&huge, (size_t)1 << 50), cudaErrorMemoryAllocation);
        RT_ERR(cudaGetLastError(), cudaErrorMemoryAllocation);
        write_to<<<1, 2048>>>(d, 1);
        RT_ERR(cudaGetLastError(), cudaErrorInvalidConfiguration);
        write_to<<<0, 1>>>(d, 1);
        RT_ERR(cudaGetLastError(), cudaErrorInvalidConfiguration);
        int v = 1;
        void *args[] = {&d, &v};
        RT_ERR(cudaLaunchKernel((const void *)main, dim3(1), dim3(1), args, 0, 0),
               cudaErrorInvalidDeviceFunction);
        RT_ERR(cudaGetLastError(), cudaErrorInvalidDeviceFunction);
        RT_OK(cudaGetLastError());
        write_to<<<1, 1>>>(d, 11);
        RT_OK(cudaGetLastError());
        RT_OK(cudaMemcpy(&h, d, sizeof(int), cudaMemcpyDeviceToHost));
        rt_check(h == 11, "the context works after those errors (%d)", h);

        // vgpu's runtime only: an entry point it does not implement says so (NVIDIA's has them).
        if (getenv("VGPU_UUID")) {
                cudaGraph_t g;
                RT_ERR(cudaGraphCreate(&g, 0), cudaErrorNotSupported);
                RT_ERR(cudaGetLastError(), cudaErrorNotSupported);
        }

        // Faults stick to the faulting process's context.
        rt_check(run_child(argv[0], "illegal"), "a child's illegal address sticks to its context");
        rt_check(run_child(argv[0], "trap"), "a child's trap sticks to its context");
        h = 0;
        write_to<<<1, 1>>>(d, 12);
        RT_OK(cudaDeviceSynchronize());
        RT_OK(cudaMemcpy(&h, d, sizeof(int), cudaMemcpyDeviceToHost));
        rt_check(h == 12, "this process's context works after the children's faults (%d)", h);
        RT_OK(cudaFree(d));
        return rt_done("test_rt_errors");
}
