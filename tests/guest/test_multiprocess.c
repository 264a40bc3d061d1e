// SPDX-License-Identifier: Apache-2.0
// Guest test: two processes use one device at once. This program re-executes itself as a child;
// both hold a context and memory at the same time, the parent sees the child's allocation in
// cuMemGetInfo, both run kernels concurrently and each finds only its own results in its memory.
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_BYTES (64u << 20)
#define N           4096
#define ROUNDS      20

// Run add_one ROUNDS times over N ints starting at `base`; true when all are base + i + ROUNDS.
static bool rounds_of_add_one(CUmodule mod, CUdeviceptr d, int base)
{
        static int h[N];
        CUfunction f;
        int n = N;
        void *params[] = {&d, &n};

        if (cuModuleGetFunction(&f, mod, "add_one") != CUDA_SUCCESS)
                return false;
        for (int i = 0; i < N; i++)
                h[i] = base + i;
        if (cuMemcpyHtoD(d, h, sizeof(h)) != CUDA_SUCCESS)
                return false;
        for (int r = 0; r < ROUNDS; r++) {
                if (cuLaunchKernel(f, N / 256, 1, 1, 256, 1, 1, 0, NULL, params, NULL) !=
                    CUDA_SUCCESS)
                        return false;
        }
        if (cuMemcpyDtoH(h, d, sizeof(h)) != CUDA_SUCCESS)
                return false;
        for (int i = 0; i < N; i++) {
                if (h[i] != base + i + ROUNDS)
                        return false;
        }
        return true;
}

static int child_main(void)
{
        CUdevice dev;
        CUcontext ctx;
        CUmodule mod = NULL;
        CUdeviceptr big = 0;
        CUdeviceptr d = 0;
        char line[64];

        if (!check_setup(&dev, &ctx))
                return check_done();
        if (!check_load_kernels(&mod) || !CK(cuMemAlloc(&big, CHILD_BYTES)) ||
            !CK(cuMemAlloc(&d, N * sizeof(int))))
                return check_done();
        CK(cuMemsetD32(big, 0xc0ffee, CHILD_BYTES / 4));
        CK(cuCtxSynchronize());
        printf("READY\n");
        fflush(stdout);
        // Wait for the parent's go, so that both processes run their kernels at the same time.
        if (!fgets(line, sizeof(line), stdin))
                check_true(false, "child: no go from the parent");
        check_true(rounds_of_add_one(mod, d, 5000000), "child: kernels ran correctly");
        unsigned v[4] = {0};
        CK(cuMemcpyDtoH(v, big + CHILD_BYTES - sizeof(v), sizeof(v)));
        check_true(v[0] == 0xc0ffee && v[3] == 0xc0ffee, "child: its 64 MiB are intact");
        CK(cuMemFree(big));
        CK(cuMemFree(d));
        CK(cuModuleUnload(mod));
        check_teardown(dev);
        return check_done();
}

int main(int argc, char **argv)
{
        CUdevice dev;
        CUcontext ctx;
        CUmodule mod = NULL;
        CUdeviceptr d = 0;
        size_t free0 = 0;
        size_t free1 = 0;
        size_t total = 0;
        char self[4096];
        int to_child[2];
        int from_child[2];
        ssize_t len;

        if (argc == 2 && strcmp(argv[1], "--child") == 0)
                return child_main();
        len = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (len <= 0) {
                check_true(false, "readlink /proc/self/exe");
                return check_done();
        }
        self[len] = '\0';

        if (!check_setup(&dev, &ctx))
                return check_done();
        if (!check_load_kernels(&mod) || !CK(cuMemAlloc(&d, N * sizeof(int)))) {
                check_teardown(dev);
                return check_done();
        }
        CK(cuMemGetInfo(&free0, &total));

        fflush(stdout);
        if (pipe(to_child) != 0 || pipe(from_child) != 0) {
                check_true(false, "pipe");
                return check_done();
        }
        pid_t pid = fork();
        if (pid == 0) {
                dup2(to_child[0], STDIN_FILENO);
                dup2(from_child[1], STDOUT_FILENO);
                close(to_child[0]);
                close(to_child[1]);
                close(from_child[0]);
                close(from_child[1]);
                execl(self, self, "--child", (char *)NULL);
                _exit(127);
        }
        close(to_child[0]);
        close(from_child[1]);
        if (!check_true(pid > 0, "fork"))
                return check_done();

        FILE *in = fdopen(from_child[0], "r");
        char line[512];
        int p = 0;
        int f = 0;
        bool ready = false;
        bool summary = false;
        while (in && fgets(line, sizeof(line), in)) {
                if (strcmp(line, "READY\n") == 0) {
                        ready = true;
                        break;
                }
                printf("  [child] %s", line);
        }
        check_true(ready, "the child holds a context and 64 MiB at the same time as this process");
        if (ready) {
                CK(cuMemGetInfo(&free1, &total));
                check_true(free1 + CHILD_BYTES <= free0,
                           "cuMemGetInfo here sees the child's 64 MiB (free %zu -> %zu)", free0,
                           free1);
                // Both processes launch at once.
                if (write(to_child[1], "GO\n", 3) != 3)
                        check_true(false, "write to the child");
                check_true(rounds_of_add_one(mod, d, 0), "parent: kernels ran correctly while the "
                                                         "child ran its own");
        }
        close(to_child[1]);
        while (in && fgets(line, sizeof(line), in)) {
                if (sscanf(line, "%d passed, %d failed", &p, &f) == 2) {
                        summary = true;
                        continue;
                }
                printf("  [child] %s", line);
        }
        if (in)
                fclose(in);
        int status = 0;
        waitpid(pid, &status, 0);
        if (summary)
                check_add(p, f);
        check_true(summary && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                   "child: %d passed, %d failed, exit status %d", p, f,
                   WIFEXITED(status) ? WEXITSTATUS(status) : -1);

        CK(cuMemFree(d));
        CK(cuModuleUnload(mod));
        check_teardown(dev);
        return check_done();
}
