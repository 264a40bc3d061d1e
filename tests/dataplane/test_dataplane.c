// SPDX-License-Identifier: Apache-2.0
// Data-plane isolation and robustness, as a guest of two vGPUs A and B (VGPU_UUID=A,B;
// GUEST_SOCKET_A/B name their engines' guest sockets). Through libcuda: OOM exactly at the
// framebuffer size, foreign pointers refused, fault isolation between contexts. Through a raw
// session: forged handles, hostile sizes and offsets, another session's memory, a corrupt ring —
// all refused with an error, and nothing of the victim changes.
#include <cuda.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "raw.h"

static int passed, failed;

#define CHECK(cond, ...)                                                                           \
        do {                                                                                       \
                if (cond) {                                                                        \
                        passed++;                                                                  \
                        printf("ok   ");                                                           \
                } else {                                                                           \
                        failed++;                                                                  \
                        printf("FAIL ");                                                           \
                }                                                                                  \
                printf(__VA_ARGS__);                                                               \
                printf("\n");                                                                      \
        } while (0)

static const char ptx[] = ".version 8.0\n.target sm_75\n.address_size 64\n"
                          ".visible .entry wr(.param .u64 wr_p, .param .u32 wr_v)\n{\n"
                          "\t.reg .b32 %r<2>;\n\t.reg .b64 %rd<2>;\n"
                          "\tld.param.u64 %rd1, [wr_p];\n\tld.param.u32 %r1, [wr_v];\n"
                          "\tst.global.u32 [%rd1], %r1;\n\tret;\n}\n";

static CUresult launch_wr(CUfunction f, CUdeviceptr p, unsigned v)
{
        void *args[] = {&p, &v};

        return cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL);
}

static void test_oom_exact(CUdevice dev)
{
        CUcontext c;
        CUdeviceptr all, one;
        size_t total, free_b, free2;

        cuCtxCreate(&c, NULL, 0, dev);
        cuDeviceTotalMem(&total, dev);
        cuMemGetInfo(&free_b, &total);
        CHECK(free_b == total, "an empty vGPU has all of its %zu MiB free", total >> 20);
        CHECK(cuMemAlloc(&all, total) == CUDA_SUCCESS, "the whole framebuffer can be allocated");
        CHECK(cuMemAlloc(&one, 1) == CUDA_ERROR_OUT_OF_MEMORY,
              "one more byte is CUDA_ERROR_OUT_OF_MEMORY");
        CHECK(cuMemAlloc(&one, total + 1) == CUDA_ERROR_OUT_OF_MEMORY,
              "more than the framebuffer is CUDA_ERROR_OUT_OF_MEMORY");
        cuMemFree(all);
        cuMemGetInfo(&free2, &total);
        CHECK(free2 == total, "freeing gives it all back");
        cuCtxDestroy(c);
}

static void test_foreign_and_faults(CUdevice a, CUdevice b)
{
        CUcontext ca, ca2, cb;
        CUmodule ma, ma2;
        CUfunction fa, fa2;
        CUdeviceptr pa, pa2, pb;
        unsigned v = 0;
        CUresult r;

        cuCtxCreate(&cb, NULL, 0, b);
        cuMemAlloc(&pb, 4096);
        cuMemsetD32(pb, 0x5a5a5a5a, 1024);
        cuCtxSynchronize();
        cuCtxPopCurrent(NULL);

        cuCtxCreate(&ca2, NULL, 0, a);
        cuModuleLoadData(&ma2, ptx);
        cuModuleGetFunction(&fa2, ma2, "wr");
        cuMemAlloc(&pa2, 4096);
        cuCtxPopCurrent(NULL);

        cuCtxCreate(&ca, NULL, 0, a);
        cuModuleLoadData(&ma, ptx);
        cuModuleGetFunction(&fa, ma, "wr");
        cuMemAlloc(&pa, 4096);
        CHECK(cuMemcpyHtoD(pb, &v, 4) == CUDA_ERROR_INVALID_VALUE,
              "a copy into vGPU B's memory from a context of A is refused");
        CHECK(cuMemsetD32(pa2, 7, 1) == CUDA_SUCCESS &&
                      cuCtxSynchronize() == CUDA_ERROR_INVALID_VALUE,
              "a fill of another context's allocation on the same vGPU is refused");
        /* A kernel that writes another context's memory faults; that context's data stays. */
        CHECK(launch_wr(fa, pa, 1) == CUDA_SUCCESS && cuCtxSynchronize() == CUDA_SUCCESS,
              "a kernel writes its own context's memory");
        CHECK(launch_wr(fa, pa2, 0xdead) == CUDA_SUCCESS &&
                      (r = cuCtxSynchronize()) == CUDA_ERROR_ILLEGAL_ADDRESS,
              "a kernel writing another context's allocation faults (ILLEGAL_ADDRESS)");
        CHECK(cuMemAlloc(&pa, 16) == CUDA_ERROR_ILLEGAL_ADDRESS,
              "the faulted context stays broken (sticky error)");
        cuCtxPopCurrent(NULL);
        cuCtxPushCurrent(ca2);
        CHECK(launch_wr(fa2, pa2, 42) == CUDA_SUCCESS && cuCtxSynchronize() == CUDA_SUCCESS,
              "another context on the same vGPU runs on after the fault");
        cuMemcpyDtoH(&v, pa2, 4);
        CHECK(v == 42, "and its memory holds only its own write (%u)", v);
        cuCtxPopCurrent(NULL);
        cuCtxPushCurrent(cb);
        cuMemcpyDtoH(&v, pb, 4);
        CHECK(v == 0x5a5a5a5a, "vGPU B's memory is untouched");
        cuCtxPopCurrent(NULL);
}

static void test_raw(const char *sock_a, CUdevice b)
{
        struct raw r, r2;
        struct vgpu_req_ctx_create cc = {0};
        struct vgpu_rep_handle h = {0}, h2 = {0};
        struct vgpu_rep_mem_alloc m = {0}, m2 = {0}, mb = {0};
        struct vgpu_req_mem_alloc ma;
        struct vgpu_req_copy cp;
        struct vgpu_req_memset ms;
        struct vgpu_req_ctx q;
        CUcontext cb;
        CUdeviceptr pb;
        unsigned v = 0;

        if (raw_attach(sock_a, &r) < 0 || raw_attach(sock_a, &r2) < 0) {
                CHECK(0, "raw sessions attach to vGPU A");
                return;
        }
        raw_call(&r, VGPU_OP_CTX_CREATE, &cc, sizeof(cc), NULL, 0, &h, sizeof(h));
        raw_call(&r2, VGPU_OP_CTX_CREATE, &cc, sizeof(cc), NULL, 0, &h2, sizeof(h2));
        ma = (struct vgpu_req_mem_alloc){.ctx = h.handle, .size = 4096};
        raw_call(&r, VGPU_OP_MEM_ALLOC, &ma, sizeof(ma), NULL, 0, &m, sizeof(m));
        ma.ctx = h2.handle;
        raw_call(&r2, VGPU_OP_MEM_ALLOC, &ma, sizeof(ma), NULL, 0, &m2, sizeof(m2));
        CHECK(m.dptr && m2.dptr && m.dptr != m2.dptr, "two raw sessions get distinct memory");

        /* Forged and stale handles. */
        q.ctx = h.handle ^ 0x100000000ull;
        CHECK(raw_call(&r, VGPU_OP_CTX_SYNC, &q, sizeof(q), NULL, 0, NULL, 0) == -EBADF,
              "a context handle with a wrong generation is refused");
        q.ctx = 0xffffffffffffffffull;
        CHECK(raw_call(&r, VGPU_OP_CTX_DESTROY, &q, sizeof(q), NULL, 0, NULL, 0) == -EBADF,
              "a garbage handle is refused");

        /* Hostile sizes and offsets. */
        ma = (struct vgpu_req_mem_alloc){.ctx = h.handle, .size = UINT64_MAX};
        CHECK(raw_call(&r, VGPU_OP_MEM_ALLOC, &ma, sizeof(ma), NULL, 0, NULL, 0) == -ENOMEM,
              "an allocation of 2^64-1 bytes is refused");
        cp = (struct vgpu_req_copy){.ctx = h.handle, .dst = m.dptr, .src = 0, .len = UINT64_MAX};
        raw_call(&r, VGPU_OP_COPY_HTOD, &cp, sizeof(cp), NULL, 0, NULL, 0);
        q.ctx = h.handle;
        CHECK(raw_call(&r, VGPU_OP_ERROR_QUERY, &q, sizeof(q), NULL, 0, NULL, 0) == -EFAULT,
              "a copy of 2^64-1 bytes is refused");
        cp = (struct vgpu_req_copy){
                .ctx = h.handle, .dst = m.dptr, .src = UINT64_MAX - 8, .len = 16};
        raw_call(&r, VGPU_OP_COPY_HTOD, &cp, sizeof(cp), NULL, 0, NULL, 0);
        CHECK(raw_call(&r, VGPU_OP_ERROR_QUERY, &q, sizeof(q), NULL, 0, NULL, 0) == -EFAULT,
              "a staging offset past the staging area is refused");
        cp = (struct vgpu_req_copy){.ctx = h.handle, .dst = m.dptr + 4000, .src = 0, .len = 200};
        raw_call(&r, VGPU_OP_COPY_HTOD, &cp, sizeof(cp), NULL, 0, NULL, 0);
        CHECK(raw_call(&r, VGPU_OP_ERROR_QUERY, &q, sizeof(q), NULL, 0, NULL, 0) == -EFAULT,
              "a copy running past the end of an allocation is refused");
        ms = (struct vgpu_req_memset){.ctx = h.handle,
                                      .dst = m.dptr,
                                      .pitch = UINT64_MAX / 2,
                                      .width = 1,
                                      .height = 3,
                                      .value = 1,
                                      .elem_size = 4};
        raw_call(&r, VGPU_OP_MEMSET, &ms, sizeof(ms), NULL, 0, NULL, 0);
        CHECK(raw_call(&r, VGPU_OP_ERROR_QUERY, &q, sizeof(q), NULL, 0, NULL, 0) == -EINVAL,
              "a 2D fill whose pitch overflows is refused");
        ms.pitch = 4;
        ms.elem_size = 3;
        raw_call(&r, VGPU_OP_MEMSET, &ms, sizeof(ms), NULL, 0, NULL, 0);
        CHECK(raw_call(&r, VGPU_OP_ERROR_QUERY, &q, sizeof(q), NULL, 0, NULL, 0) == -EINVAL,
              "a fill with an element size of 3 is refused");

        /* Another session's memory on the same vGPU, and another vGPU's memory. */
        cuCtxCreate(&cb, NULL, 0, b);
        cuMemAlloc(&pb, 64);
        cuMemsetD32(pb, 0x11111111, 16);
        cuCtxSynchronize();
        cp = (struct vgpu_req_copy){.ctx = h.handle, .dst = m2.dptr, .src = 0, .len = 4};
        raw_call(&r, VGPU_OP_COPY_HTOD, &cp, sizeof(cp), NULL, 0, NULL, 0);
        CHECK(raw_call(&r, VGPU_OP_ERROR_QUERY, &q, sizeof(q), NULL, 0, NULL, 0) == -EFAULT,
              "a copy into another session's allocation is refused");
        cp = (struct vgpu_req_copy){.ctx = h.handle, .dst = 0, .src = m2.dptr, .len = 4};
        raw_call(&r, VGPU_OP_COPY_DTOH, &cp, sizeof(cp), NULL, 0, NULL, 0);
        CHECK(raw_call(&r, VGPU_OP_ERROR_QUERY, &q, sizeof(q), NULL, 0, NULL, 0) == -EFAULT,
              "a read of another session's allocation is refused");
        cp = (struct vgpu_req_copy){.ctx = h.handle, .dst = pb, .src = 0, .len = 4};
        raw_call(&r, VGPU_OP_COPY_HTOD, &cp, sizeof(cp), NULL, 0, NULL, 0);
        CHECK(raw_call(&r, VGPU_OP_ERROR_QUERY, &q, sizeof(q), NULL, 0, NULL, 0) == -EFAULT,
              "a copy into vGPU B's address range on A's engine is refused");
        struct vgpu_req_mem_free mf = {.ctx = h.handle, .dptr = m2.dptr};
        CHECK(raw_call(&r, VGPU_OP_MEM_FREE, &mf, sizeof(mf), NULL, 0, NULL, 0) == -EINVAL,
              "freeing another session's allocation is refused");
        cuMemcpyDtoH(&v, pb, 4);
        CHECK(v == 0x11111111, "vGPU B's memory is unchanged by all of that");
        struct vgpu_req_mem_free mr = {.ctx = h2.handle, .dptr = m2.dptr};
        CHECK(raw_call(&r2, VGPU_OP_MEM_RANGE, &mr, sizeof(mr), NULL, 0, &mb, sizeof(mb)) == 0 &&
                      mb.dptr == m2.dptr,
              "the victim session's allocation is still there");

        /* Malformed messages: wrong length, unknown op. */
        CHECK(raw_call(&r, VGPU_OP_CTX_SYNC, &q, 4, NULL, 0, NULL, 0) == -EPROTO,
              "a request of the wrong length is refused");
        CHECK(raw_call(&r, 999, &q, sizeof(q), NULL, 0, NULL, 0) == -EPROTO,
              "an unknown op is refused");
        struct vgpu_req_ctx q2 = {.ctx = h2.handle};
        CHECK(raw_call(&r2, VGPU_OP_CTX_SYNC, &q2, sizeof(q2), NULL, 0, NULL, 0) == 0,
              "the other session still answers");

        /* A corrupt ring closes that channel, and only that one. */
        __atomic_store_n(&r.v.ctl->head, r.v.ctl->tail + 8, __ATOMIC_RELEASE);
        __atomic_add_fetch(&r.v.ctl->head_futex, 1, __ATOMIC_SEQ_CST);
        chan_futex_wake(&r.v.ctl->head_futex);
        for (int i = 0; i < 2000 && !r.v.ctl->engine_dead; i++)
                usleep(1000);
        CHECK(r.v.ctl->engine_dead, "a corrupt ring closes that guest's channel");
        CHECK(raw_call(&r2, VGPU_OP_CTX_SYNC, &q2, sizeof(q2), NULL, 0, NULL, 0) == 0,
              "the other session on the same vGPU is unaffected");
        raw_close(&r);
        raw_close(&r2);
        cuCtxDestroy(cb);
}

/* One line on a raw guest's socket, with fd attached when fd >= 0. */
static void send_line(const struct raw *r, const char *text, int fd)
{
        char cbuf[CMSG_SPACE(sizeof(int))] = {0};
        struct iovec iov = {.iov_base = (void *)(uintptr_t)text, .iov_len = strlen(text)};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

        if (fd >= 0) {
                struct cmsghdr *cm;

                mh.msg_control = cbuf;
                mh.msg_controllen = sizeof(cbuf);
                cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(cm), &fd, sizeof(int));
        }
        if (sendmsg(r->sock, &mh, MSG_NOSIGNAL) < 0)
                perror("sendmsg");
}

static int host_fd(size_t size, bool seal)
{
        int fd = memfd_create("test-host", MFD_CLOEXEC | MFD_ALLOW_SEALING);

        if (fd < 0 || ftruncate(fd, (off_t)size) < 0)
                return -1;
        if (seal && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0)
                return -1;
        return fd;
}

/* Copies with host memory a guest shares: only sealed memfds, only inside them, only its own. */
static void test_host_memory(const char *sock_a)
{
        struct raw r, r2;
        struct vgpu_req_ctx_create cc = {0};
        struct vgpu_rep_handle h = {0}, h2 = {0};
        struct vgpu_rep_mem_alloc m = {0};
        struct vgpu_req_mem_alloc ma;
        struct vgpu_req_copy_host cp;
        struct vgpu_req_ctx q;
        int loose = host_fd(4096, false), sealed = host_fd(8192, true), other = host_fd(4096, true);
        uint32_t *hm;
        bool same = true;

        if (loose < 0 || sealed < 0 || other < 0 || raw_attach(sock_a, &r) < 0 ||
            raw_attach(sock_a, &r2) < 0) {
                CHECK(0, "raw sessions attach, memfds made");
                return;
        }
        hm = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, sealed, 0);
        for (unsigned i = 0; i < 1024; i++)
                hm[i] = 0xc0de0000u + i;
        raw_call(&r, VGPU_OP_CTX_CREATE, &cc, sizeof(cc), NULL, 0, &h, sizeof(h));
        raw_call(&r2, VGPU_OP_CTX_CREATE, &cc, sizeof(cc), NULL, 0, &h2, sizeof(h2));
        ma = (struct vgpu_req_mem_alloc){.ctx = h.handle, .size = 4096};
        raw_call(&r, VGPU_OP_MEM_ALLOC, &ma, sizeof(ma), NULL, 0, &m, sizeof(m));
        q.ctx = h.handle;

        send_line(&r, "{\"op\":\"host_map\",\"id\":1,\"size\":4096}\n", loose);
        send_line(&r, "not json\n{\"op\":\"host_map\",\"id\":3}\n", -1);
        send_line(&r, "{\"op\":\"host_map\",\"id\":2,\"size\":8192}\n", sealed);
        send_line(&r, "{\"op\":\"host_map\",\"id\":2,\"size\":4096}\n", other);
        cp = (struct vgpu_req_copy_host){
                .ctx = h.handle, .dptr = m.dptr, .host = 2, .off = 0, .len = 4096};
        raw_call(&r, VGPU_OP_COPY_HTOD_HOST, &cp, sizeof(cp), NULL, 0, NULL, 0);
        cp = (struct vgpu_req_copy_host){
                .ctx = h.handle, .dptr = m.dptr, .host = 2, .off = 4096, .len = 4096};
        raw_call(&r, VGPU_OP_COPY_DTOH_HOST, &cp, sizeof(cp), NULL, 0, NULL, 0);
        CHECK(raw_call(&r, VGPU_OP_ERROR_QUERY, &q, sizeof(q), NULL, 0, NULL, 0) == 0,
              "copies to and from a sealed shared block work");
        for (unsigned i = 0; i < 1024; i++)
                same = same && hm[1024 + i] == hm[i];
        CHECK(same, "the data went to the device and back through the shared block");

        cp = (struct vgpu_req_copy_host){
                .ctx = h.handle, .dptr = m.dptr, .host = 1, .off = 0, .len = 4};
        raw_call(&r, VGPU_OP_COPY_HTOD_HOST, &cp, sizeof(cp), NULL, 0, NULL, 0);
        CHECK(raw_call(&r, VGPU_OP_ERROR_QUERY, &q, sizeof(q), NULL, 0, NULL, 0) == -EBADF,
              "a memfd that may shrink is never mapped");
        cp = (struct vgpu_req_copy_host){
                .ctx = h.handle, .dptr = m.dptr, .host = 2, .off = 8000, .len = 200};
        raw_call(&r, VGPU_OP_COPY_DTOH_HOST, &cp, sizeof(cp), NULL, 0, NULL, 0);
        CHECK(raw_call(&r, VGPU_OP_ERROR_QUERY, &q, sizeof(q), NULL, 0, NULL, 0) == -EFAULT,
              "a copy running past the end of the block is refused");
        cp = (struct vgpu_req_copy_host){
                .ctx = h.handle, .dptr = m.dptr, .host = 2, .off = UINT64_MAX - 8, .len = 16};
        raw_call(&r, VGPU_OP_COPY_HTOD_HOST, &cp, sizeof(cp), NULL, 0, NULL, 0);
        CHECK(raw_call(&r, VGPU_OP_ERROR_QUERY, &q, sizeof(q), NULL, 0, NULL, 0) == -EFAULT,
              "an offset near 2^64 is refused");
        struct vgpu_req_ctx q2 = {.ctx = h2.handle};
        cp = (struct vgpu_req_copy_host){
                .ctx = h2.handle, .dptr = m.dptr, .host = 2, .off = 0, .len = 4};
        raw_call(&r2, VGPU_OP_COPY_DTOH_HOST, &cp, sizeof(cp), NULL, 0, NULL, 0);
        CHECK(raw_call(&r2, VGPU_OP_ERROR_QUERY, &q2, sizeof(q2), NULL, 0, NULL, 0) == -EFAULT,
              "another session can use neither the block nor the memory");

        hm[0] = 0x5a5a5a5a;
        send_line(&r, "{\"op\":\"host_unmap\",\"id\":2}\n", -1);
        cp = (struct vgpu_req_copy_host){
                .ctx = h.handle, .dptr = m.dptr, .host = 2, .off = 0, .len = 4};
        {
                /* The engine's main thread takes the unmap: soon, not in ring order. */
                int e = 0;

                for (int i = 0; i < 100 && e != -EBADF; i++) {
                        usleep(10000);
                        raw_call(&r, VGPU_OP_COPY_HTOD_HOST, &cp, sizeof(cp), NULL, 0, NULL, 0);
                        e = raw_call(&r, VGPU_OP_ERROR_QUERY, &q, sizeof(q), NULL, 0, NULL, 0);
                }
                CHECK(e == -EBADF, "an unmapped block cannot be used");
        }
        munmap(hm, 8192);
        close(loose);
        close(sealed);
        close(other);
        raw_close(&r);
        raw_close(&r2);
}

/* A guest killed in the middle of a big copy leaves nothing behind. */
static void test_killed_guest(CUdevice a)
{
        size_t free0, free1, total;
        CUcontext c;
        pid_t pid;

        cuCtxCreate(&c, NULL, 0, a);
        cuMemGetInfo(&free0, &total);
        pid = fork();
        if (pid == 0) {
                /* A fresh process: a libcuda of its own, allocating and copying forever. */
                execl("/proc/self/exe", "test_dataplane", "--copy-forever", (char *)NULL);
                _exit(127);
        }
        usleep(800 * 1000);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        for (int i = 0; i < 100; i++) {
                cuMemGetInfo(&free1, &total);
                if (free1 >= free0)
                        break;
                usleep(20 * 1000);
        }
        /* At least what was free before: sessions closed earlier may be freed meanwhile too. */
        CHECK(free1 >= free0,
              "a guest killed mid-copy has its memory freed (%zu bytes free, %zu before)", free1,
              free0);
        cuCtxDestroy(c);
}

static int copy_forever(void)
{
        static char buf[64 << 20];
        CUcontext c;
        CUdevice d;
        CUdeviceptr p;

        if (cuInit(0) || cuDeviceGet(&d, 0) || cuCtxCreate(&c, NULL, 0, d) ||
            cuMemAlloc(&p, sizeof(buf)))
                return 1;
        for (;;)
                cuMemcpyHtoD(p, buf, sizeof(buf));
}

int main(int argc, char **argv)
{
        const char *sock_a = getenv("GUEST_SOCKET_A");
        CUdevice a, b;
        int n = 0;

        if (argc > 1 && strcmp(argv[1], "--copy-forever") == 0)
                return copy_forever();
        if (cuInit(0) != CUDA_SUCCESS || cuDeviceGetCount(&n) || n < 2 || !sock_a) {
                printf("needs two vGPUs (VGPU_UUID=A,B) and GUEST_SOCKET_A\n");
                return 1;
        }
        cuDeviceGet(&a, 0);
        cuDeviceGet(&b, 1);
        test_oom_exact(a);
        test_foreign_and_faults(a, b);
        test_raw(sock_a, b);
        test_host_memory(sock_a);
        test_killed_guest(a);
        printf("%d passed, %d failed\n", passed, failed);
        return failed ? 1 : 0;
}
