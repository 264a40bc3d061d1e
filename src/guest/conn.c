// SPDX-License-Identifier: Apache-2.0
// Attaching to vGPUs and talking to their engines: discovery through vgpud's API, the hello on
// the engine's guest socket (which hands over the shared channel), and the call machinery on the
// ring: pushes, waits that spin briefly and then sleep on a futex, and the staging chunks.
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <jansson.h>

#include "common/http_client.h"
#include "guest/guest.h"
#include "ptx/ptx.h"

#define SPIN_NS 30000

/*
 * A mark that this libcuda.so.1 is vgpu's: the cuda backend, which loads NVIDIA's driver by the
 * same name, passes over a library that has it.
 */
extern const char vgpu_guest_driver[];
const char vgpu_guest_driver[] = "vgpu guest driver";

struct gdev *guest_devs[GUEST_MAX_DEVICES];
int guest_ndevs;

CUresult guest_result(int err)
{
        switch (err) {
        case 0:
                return CUDA_SUCCESS;
        case -EINVAL:
        case -EFAULT:
        case -E2BIG:
        case PTX_ELAUNCH:
                return CUDA_ERROR_INVALID_VALUE;
        case -ENOMEM:
                return CUDA_ERROR_OUT_OF_MEMORY;
        case -EBADF:
                return CUDA_ERROR_INVALID_HANDLE;
        case -ENOTSUP:
        case -ENOSYS:
                return CUDA_ERROR_NOT_SUPPORTED;
        case -EPIPE:
        case -ECONNRESET:
                return CUDA_ERROR_DEVICE_UNAVAILABLE;
        case PTX_EFORMAT:
        case PTX_EDECOMPRESS:
                return CUDA_ERROR_INVALID_IMAGE;
        case PTX_ENOPTX:
                return CUDA_ERROR_NO_BINARY_FOR_GPU;
        case PTX_EPARSE:
        case PTX_EUNSUPPORTED:
                return CUDA_ERROR_INVALID_PTX;
        case PTX_ENOTFOUND:
                return CUDA_ERROR_NOT_FOUND;
        case PTX_EILLEGAL_ADDRESS:
                return CUDA_ERROR_ILLEGAL_ADDRESS;
        case PTX_EMISALIGNED:
                return CUDA_ERROR_MISALIGNED_ADDRESS;
        case PTX_ETRAP:
                /* A trap ends the kernel as "unspecified launch failure" on a GPU. */
                return CUDA_ERROR_LAUNCH_FAILED;
        case PTX_ETIMEOUT:
                return CUDA_ERROR_LAUNCH_TIMEOUT;
        case PTX_ESTACK:
                return CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
        case PTX_EILLEGAL_INSN:
                return CUDA_ERROR_ILLEGAL_INSTRUCTION;
        case PTX_ECANCELED:
                return CUDA_ERROR_LAUNCH_FAILED;
        default:
                return CUDA_ERROR_UNKNOWN;
        }
}

static void **objects;
static size_t n_objects, cap_objects;
static pthread_mutex_t objects_lock = PTHREAD_MUTEX_INITIALIZER;

void *guest_alloc(size_t size)
{
        void *p = calloc(1, size);

        if (!p)
                return NULL;
        pthread_mutex_lock(&objects_lock);
        if (n_objects == cap_objects) {
                size_t cap = cap_objects ? cap_objects * 2 : 256;
                void **no = realloc(objects, cap * sizeof(*no));

                if (!no) {
                        pthread_mutex_unlock(&objects_lock);
                        free(p);
                        return NULL;
                }
                objects = no;
                cap_objects = cap;
        }
        objects[n_objects++] = p;
        pthread_mutex_unlock(&objects_lock);
        return p;
}

void guest_unalloc(void *p)
{
        if (!p)
                return;
        pthread_mutex_lock(&objects_lock);
        for (size_t i = n_objects; i-- > 0;) {
                if (objects[i] == p) {
                        objects[i] = objects[--n_objects];
                        break;
                }
        }
        pthread_mutex_unlock(&objects_lock);
        free(p);
}

CUresult guest_unsupported(const char *name)
{
        vgpu_log(VGPU_LOG_DEBUG, "%s is not supported by the vgpu guest driver", name);
        return CUDA_ERROR_NOT_SUPPORTED;
}

struct gdev *guest_dev(CUdevice d)
{
        return d >= 0 && d < guest_ndevs ? guest_devs[d] : NULL;
}

struct gdev *guest_device_of(uint64_t p)
{
        for (int i = 0; i < guest_ndevs; i++) {
                struct gdev *d = guest_devs[i];

                if (p >= d->device_address && p - d->device_address < d->fb_size)
                        return d;
        }
        /* on a real GPU the driver places module variables outside the vGPU's range */
        return guest_var_device((CUdeviceptr)p);
}

/* ---- the ring ----------------------------------------------------------------------------- */

static bool await_home(struct gdev *d);

bool guest_engine_gone(struct gdev *d)
{
        struct vgpu_chan_ctl *ctl = d->v.ctl;
        struct pollfd p = {.fd = d->sock, .events = POLLIN};
        bool gone;

        /* a vGPU that moved: its old engine may be gone already, and that is fine */
        if (!d->dead && __atomic_load_n(&ctl->moved, __ATOMIC_ACQUIRE))
                return !guest_reattach(d);
        if (d->dead)
                return true;
        gone = __atomic_load_n(&ctl->engine_dead, __ATOMIC_ACQUIRE) ||
               (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR | POLLIN)));
        /* suspended, its engine gone: a fresh one restores the vGPU from its image */
        if (gone && !d->remote && __atomic_load_n(&ctl->suspended, __ATOMIC_ACQUIRE) &&
            ctl->moved_to[0])
                return !await_home(d);
        if (gone)
                d->dead = true;
        return d->dead;
}

bool guest_done(struct gdev *d, uint64_t seq)
{
        return __atomic_load_n(&d->v.ctl->done_seq, __ATOMIC_ACQUIRE) >= seq;
}

bool guest_slot_done(struct gdev *d, uint32_t slot, uint64_t seq)
{
        return slot >= VGPU_STREAMS ||
               __atomic_load_n(&d->v.ctl->stream_done[slot], __ATOMIC_ACQUIRE) >= seq;
}

void guest_wait_event(struct gdev *d, uint32_t val, int ms)
{
        struct vgpu_chan_ctl *ctl = d->v.ctl;

        /* A count, not a flag: several threads of this process may sleep at once. */
        __atomic_add_fetch(&ctl->guest_sleeping, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&ctl->done_futex, __ATOMIC_SEQ_CST) == val)
                chan_futex_wait(&ctl->done_futex, val, ms);
        __atomic_sub_fetch(&ctl->guest_sleeping, 1, __ATOMIC_SEQ_CST);
}

/* Wait until the engine's counter *at reaches seq: spin briefly, then sleep on done_futex. */
static CUresult wait_ge(struct gdev *d, const uint64_t *at, uint64_t seq)
{
        struct vgpu_chan_ctl *ctl = d->v.ctl;
        uint64_t until = chan_now_ns() + SPIN_NS;

        while (__atomic_load_n(at, __ATOMIC_ACQUIRE) < seq) {
                uint32_t val;

                if (chan_now_ns() < until) {
                        __builtin_ia32_pause();
                        continue;
                }
                if (guest_engine_gone(d))
                        return CUDA_ERROR_DEVICE_UNAVAILABLE;
                val = __atomic_load_n(&ctl->done_futex, __ATOMIC_SEQ_CST);
                __atomic_add_fetch(&ctl->guest_sleeping, 1, __ATOMIC_SEQ_CST);
                if (__atomic_load_n(at, __ATOMIC_ACQUIRE) < seq)
                        chan_futex_wait(&ctl->done_futex, val, 100);
                __atomic_sub_fetch(&ctl->guest_sleeping, 1, __ATOMIC_SEQ_CST);
        }
        return CUDA_SUCCESS;
}

CUresult guest_wait(struct gdev *d, uint64_t seq)
{
        return wait_ge(d, &d->v.ctl->done_seq, seq);
}

CUresult guest_wait_slot(struct gdev *d, uint32_t slot, uint64_t seq)
{
        if (slot >= VGPU_STREAMS)
                return CUDA_SUCCESS;
        return wait_ge(d, &d->v.ctl->stream_done[slot], seq);
}

void guest_wake_engine(struct gdev *d)
{
        struct vgpu_chan_ctl *ctl = d->v.ctl;

        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (__atomic_load_n(&ctl->engine_sleeping, __ATOMIC_SEQ_CST)) {
                __atomic_add_fetch(&ctl->head_futex, 1, __ATOMIC_SEQ_CST);
                chan_futex_wake(&ctl->head_futex);
        }
}

/*
 * While the vGPU is suspended (or moving), new calls wait for it to come back: for ever, or for
 * VGPU_SUSPEND_TIMEOUT_MS, after which the call fails with CUDA_ERROR_TIMEOUT and nothing of it
 * was queued (docs/migration.md).
 */
static CUresult wait_resumed(struct gdev *d)
{
        struct vgpu_chan_ctl *ctl = d->v.ctl;
        const char *env;
        uint64_t limit_ns = 0, start;
        bool told = false;

        if (!__atomic_load_n(&ctl->suspended, __ATOMIC_ACQUIRE))
                return CUDA_SUCCESS;
        env = getenv("VGPU_SUSPEND_TIMEOUT_MS");
        if (env && *env)
                limit_ns = strtoull(env, NULL, 10) * 1000000ull;
        start = chan_now_ns();
        while (__atomic_load_n(&ctl->suspended, __ATOMIC_ACQUIRE)) {
                if (guest_engine_gone(d))
                        return CUDA_ERROR_DEVICE_UNAVAILABLE;
                if (limit_ns && chan_now_ns() - start >= limit_ns) {
                        vgpu_log(VGPU_LOG_WARN,
                                 "vGPU %s is suspended: a call gave up after %s ms "
                                 "(VGPU_SUSPEND_TIMEOUT_MS)",
                                 d->uuid, env);
                        return CUDA_ERROR_TIMEOUT;
                }
                if (!told) {
                        vgpu_log(VGPU_LOG_DEBUG, "vGPU %s is suspended: waiting", d->uuid);
                        told = true;
                }
                chan_futex_wait(&ctl->suspended, 1, 50);
        }
        return CUDA_SUCCESS;
}

CUresult guest_push_locked(struct gdev *d, uint16_t op, uint32_t stream, const void *req,
                           uint32_t req_len, const void *tail, uint32_t tail_len, uint64_t *ret_seq)
{
        struct vgpu_chan_ctl *ctl = d->v.ctl;
        uint64_t seq = d->seq + 1;
        int r;

        if (d->dead)
                return CUDA_ERROR_DEVICE_UNAVAILABLE;
        /*
         * "pushing" tells a suspending engine that a call passed the check below and is on its
         * way into the ring: the engine takes it before it parks, so a call is either queued
         * before the suspend (and runs) or made after it (and waits here).
         */
        for (;;) {
                __atomic_store_n(&ctl->pushing, 1, __ATOMIC_SEQ_CST);
                if (!__atomic_load_n(&ctl->suspended, __ATOMIC_SEQ_CST))
                        break;
                __atomic_store_n(&ctl->pushing, 0, __ATOMIC_SEQ_CST);
                if (wait_resumed(d) != CUDA_SUCCESS)
                        return d->dead ? CUDA_ERROR_DEVICE_UNAVAILABLE : CUDA_ERROR_TIMEOUT;
        }
        while ((r = chan_push_on(&d->v, op, stream, seq, req, req_len, tail, tail_len)) ==
               -EAGAIN) {
                /* The ring is full: the engine frees room as it takes commands (a held stream
                 * does not stop it), so look again soon. */
                if (guest_engine_gone(d)) {
                        __atomic_store_n(&ctl->pushing, 0, __ATOMIC_SEQ_CST);
                        return CUDA_ERROR_DEVICE_UNAVAILABLE;
                }
                guest_wait_event(d, __atomic_load_n(&ctl->done_futex, __ATOMIC_SEQ_CST), 1);
        }
        __atomic_store_n(&ctl->pushing, 0, __ATOMIC_SEQ_CST);
        if (r < 0)
                return CUDA_ERROR_INVALID_VALUE;
        d->seq = seq;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (__atomic_load_n(&ctl->engine_sleeping, __ATOMIC_SEQ_CST)) {
                __atomic_add_fetch(&ctl->head_futex, 1, __ATOMIC_SEQ_CST);
                chan_futex_wake(&ctl->head_futex);
        }
        *ret_seq = seq;
        return CUDA_SUCCESS;
}

CUresult guest_call(struct gdev *d, uint16_t op, const void *req, uint32_t req_len,
                    const void *tail, uint32_t tail_len, void *rep, uint32_t rep_cap)
{
        struct vgpu_chan_ctl *ctl = d->v.ctl;
        uint64_t seq;
        CUresult r;

        /* The ring's lock is not held while waiting: a host function the engine waits for may
         * need to queue work of its own thread's making. */
        pthread_mutex_lock(&d->call_lock);
        pthread_mutex_lock(&d->lock);
        r = guest_push_locked(d, op, 0, req, req_len, tail, tail_len, &seq);
        pthread_mutex_unlock(&d->lock);
        /* A synchronous call runs when the engine takes it, whatever its streams wait for. */
        if (r == CUDA_SUCCESS)
                r = wait_ge(d, &ctl->reply_seq, seq);
        if (r == CUDA_SUCCESS) {
                uint32_t len = ctl->reply_len;

                if (__atomic_load_n(&ctl->reply_seq, __ATOMIC_ACQUIRE) != seq ||
                    len > d->v.reply_size) {
                        r = CUDA_ERROR_UNKNOWN;
                } else {
                        if (rep)
                                memcpy(rep, d->v.reply, len < rep_cap ? len : rep_cap);
                        r = guest_result(ctl->reply_result);
                }
        }
        pthread_mutex_unlock(&d->call_lock);
        return r;
}

uint64_t guest_stage_chunk_size(const struct gdev *d)
{
        return d->v.stage_size / VGPU_STAGE_CHUNKS;
}

CUresult guest_stage_chunk_locked(struct gdev *d, unsigned *ret_idx, uint64_t *ret_off)
{
        unsigned i = d->stage_next;
        CUresult r;

        /* A free chunk first: the next in turn may belong to a stream a host function holds. */
        for (unsigned k = 0; k < VGPU_STAGE_CHUNKS; k++) {
                unsigned j = (d->stage_next + k) % VGPU_STAGE_CHUNKS;

                if (guest_slot_done(d, d->stage_slot[j], d->stage_seq[j])) {
                        i = j;
                        break;
                }
        }
        r = guest_wait_slot(d, d->stage_slot[i], d->stage_seq[i]);

        if (r != CUDA_SUCCESS)
                return r;
        d->stage_next = (i + 1) % VGPU_STAGE_CHUNKS;
        *ret_idx = i;
        *ret_off = (uint64_t)i * guest_stage_chunk_size(d);
        return CUDA_SUCCESS;
}

/* ---- attaching ---------------------------------------------------------------------------- */

static const char *vgpud_socket(void)
{
        const char *s = getenv("VGPU_SOCKET");

        return s && *s ? s : "/run/vgpu/vgpud.sock";
}

/*
 * Say hello on the engine's guest socket; get the description and the channel's memfd. With a
 * token (hex), re-attach to the session it names (guest_reattach).
 */
static int hello(const char *path, const char *token, json_t **ret_info, int *ret_fd, int *ret_sock)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        char msg[160], buf[4096], cbuf[CMSG_SPACE(sizeof(int))];
        struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf) - 1};
        struct msghdr mh = {.msg_iov = &iov,
                            .msg_iovlen = 1,
                            .msg_control = cbuf,
                            .msg_controllen = sizeof(cbuf)};
        struct timeval tv = {.tv_sec = 10};
        struct cmsghdr *cm;
        json_t *info;
        ssize_t n;
        int sock, fd = -1;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        snprintf(msg, sizeof(msg), "{\"hello\":1,\"version\":%d%s%s%s}\n", VGPU_PROTO_VERSION,
                 token ? ",\"reattach\":\"" : "", token ? token : "", token ? "\"" : "");
        sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (sock < 0)
                return -errno;
        setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            send(sock, msg, strlen(msg), MSG_NOSIGNAL) < 0) {
                int r = -errno;

                close(sock);
                return r;
        }
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        if (n <= 0) {
                close(sock);
                return -EPROTO;
        }
        buf[n] = '\0';
        for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
                        memcpy(&fd, CMSG_DATA(cm), sizeof(int));
        }
        info = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
        if (!info || !json_is_true(json_object_get(info, "ok")) || fd < 0) {
                vgpu_log(VGPU_LOG_WARN, "engine at %s refused: %s", path,
                         info ? json_string_value(json_object_get(info, "error")) : buf);
                json_decref(info);
                if (fd >= 0)
                        close(fd);
                close(sock);
                return -EACCES;
        }
        *ret_info = info;
        *ret_fd = fd;
        *ret_sock = sock;
        return 0;
}

static void copy_str(char *dst, size_t len, json_t *o, const char *key)
{
        const char *v = json_string_value(json_object_get(o, key));

        snprintf(dst, len, "%s", v ? v : "");
}

/* Attach the vGPU uuid (its vgpud description is vg) as the next device. */
static int attach_one(json_t *vg, const char *pci_bus_id)
{
        const char *guest = json_string_value(json_object_get(vg, "guest_socket"));
        struct gdev *d;
        json_t *info;
        void *base;
        int fd, sock, r;
        uint64_t size;

        if (!guest || guest_ndevs >= GUEST_MAX_DEVICES)
                return -EINVAL;
        r = hello(guest, NULL, &info, &fd, &sock);
        if (r < 0)
                return r;
        d = calloc(1, sizeof(*d));
        if (!d) {
                json_decref(info);
                close(fd);
                close(sock);
                return -ENOMEM;
        }
        if (guest_range_clash(info)) {
                json_decref(info);
                free(d);
                close(fd);
                close(sock);
                return -EADDRINUSE;
        }
        size = (uint64_t)json_integer_value(json_object_get(info, "channel_size"));
        base = d && size ? mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
        close(fd);
        if (base == MAP_FAILED || chan_open(base, size, &d->v) < 0) {
                if (base != MAP_FAILED)
                        munmap(base, size);
                free(d);
                json_decref(info);
                close(sock);
                return -EPROTO;
        }
        guest_dev_setup(d, info, sock, pci_bus_id);
        json_decref(info);
        return guest_dev_add(d);
}

bool guest_range_clash(json_t *info)
{
        uint64_t a = (uint64_t)json_integer_value(json_object_get(info, "device_address"));
        uint64_t n = (uint64_t)json_integer_value(json_object_get(info, "fb_size"));
        const char *u = json_string_value(json_object_get(info, "uuid"));

        for (int i = 0; i < guest_ndevs; i++) {
                const struct gdev *o = guest_devs[i];

                if (a < o->device_address + o->fb_size && o->device_address < a + n) {
                        /* vGPUs of two vgpuds (one moved in) may share addresses: not here */
                        vgpu_log(VGPU_LOG_ERROR,
                                 "vGPU %s: its device addresses are those of vGPU %s, which this "
                                 "process uses already: one of the two per process",
                                 u ? u : "?", o->uuid);
                        return true;
                }
        }
        return false;
}

void guest_dev_setup(struct gdev *d, json_t *info, int sock, const char *pci_bus_id)
{
        d->ordinal = guest_ndevs;
        d->sock = sock;
        pthread_mutex_init(&d->lock, NULL);
        pthread_mutex_init(&d->call_lock, NULL);
        pthread_mutex_init(&d->host_lock, NULL);
        pthread_mutex_init(&d->move_lock, NULL);
        pthread_mutex_init(&d->release_lock, NULL);
        pthread_cond_init(&d->host_cond, NULL);
        copy_str(d->uuid, sizeof(d->uuid), info, "uuid");
        copy_str(d->name, sizeof(d->name), info, "name");
        copy_str(d->type, sizeof(d->type), info, "type");
        copy_str(d->model, sizeof(d->model), info, "model");
        snprintf(d->pci_bus_id, sizeof(d->pci_bus_id), "%s", pci_bus_id);
        d->fb_size = (uint64_t)json_integer_value(json_object_get(info, "fb_size"));
        d->device_address = (uint64_t)json_integer_value(json_object_get(info, "device_address"));
        d->sm_count = (int)json_integer_value(json_object_get(info, "sm_count"));
        d->cc_major = (int)json_integer_value(json_object_get(info, "cc_major"));
        d->cc_minor = (int)json_integer_value(json_object_get(info, "cc_minor"));
        d->gpu_index = (int)json_integer_value(json_object_get(info, "gpu_index"));
}

int guest_dev_add(struct gdev *d)
{
        if (guest_ndevs >= GUEST_MAX_DEVICES)
                return -E2BIG;
        d->ordinal = guest_ndevs;
        /* Unified addressing: keep the vGPU's device range out of this process's host memory. */
        if (d->fb_size && mmap((void *)(uintptr_t)d->device_address, d->fb_size, PROT_NONE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
                               -1, 0) == MAP_FAILED)
                vgpu_log(VGPU_LOG_WARN, "vGPU %s: its device range is already in use here",
                         d->uuid);
        guest_devs[guest_ndevs++] = d;
        return 0;
}

/* The engine's one-line answer to "ready". 0, or -EPROTO. */
static int ready_answer(int sock)
{
        char line[512];
        ssize_t n = recv(sock, line, sizeof(line) - 1, 0);

        line[n > 0 ? n : 0] = '\0';
        return n > 0 && strstr(line, "\"ok\":true") ? 0 : -EPROTO;
}

/* Re-attach d at path with token; the caller holds move_lock. 0 or a negative errno. */
static int reattach(struct gdev *d, const char *path, const uint8_t *token)
{
        char hex[33], where[128];
        json_t *info = NULL;
        struct chan_view nv;
        uint64_t size;
        uint8_t *tmp;
        int fd = -1, sock = -1, r;

        for (int i = 0; i < 16; i++)
                snprintf(hex + 2 * i, 3, "%02x", token[i]);
        r = hello(path, hex, &info, &fd, &sock);
        if (r < 0)
                return r;
        snprintf(where, sizeof(where), "%s", path);
        size = (uint64_t)json_integer_value(json_object_get(info, "channel_size"));
        d->gpu_index = (int)json_integer_value(json_object_get(info, "gpu_index"));
        copy_str(d->model, sizeof(d->model), info, "model");
        json_decref(info);
        tmp = size == d->v.size ? mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                                : MAP_FAILED;
        if (tmp == MAP_FAILED || chan_open(tmp, size, &nv) < 0 ||
            nv.ring - tmp != d->v.ring - (uint8_t *)d->v.base ||
            nv.stage - tmp != d->v.stage - (uint8_t *)d->v.base) {
                if (tmp != MAP_FAILED)
                        munmap(tmp, size);
                close(fd);
                close(sock);
                return -EPROTO;
        }
        /*
         * Everything after the header goes along: counters, the ring with what was queued after
         * the pause, replies, staged data, event times, host-function states. The new channel
         * then takes the old one's place: every pointer into it stays right. Host functions
         * release their slots under release_lock, so that none is lost in between.
         */
        pthread_mutex_lock(&d->release_lock);
        {
                uint64_t off = (uint64_t)((uint8_t *)d->v.ctl - (uint8_t *)d->v.base);

                memcpy(tmp + off, (uint8_t *)d->v.base + off, size - off);
                if (mmap(d->v.base, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) ==
                    MAP_FAILED)
                        r = -errno;
        }
        pthread_mutex_unlock(&d->release_lock);
        munmap(tmp, size);
        close(fd);
        if (r == 0 &&
            (send(sock, "{\"ready\":1}\n", 12, MSG_NOSIGNAL) != 12 || ready_answer(sock) < 0))
                r = -EPROTO;
        if (r < 0) {
                close(sock);
                return r;
        }
        /* the same fd number: a thread polling it meanwhile sees one socket or the other */
        dup2(sock, d->sock);
        close(sock);
        guest_host_reannounce(d);
        vgpu_log(VGPU_LOG_INFO, "vGPU %s moved: re-attached at %s", d->uuid, where);
        return 0;
}

/*
 * The engine of a suspended vGPU went: wait for the fresh engine that restores it (`vgpuctl
 * resume`), where the suspend said, trying a few times a second. True while waiting or once
 * re-attached; false when the engine there does not know this guest (then d is dead).
 */
static bool await_home(struct gdev *d)
{
        struct vgpu_chan_ctl *ctl = d->v.ctl;
        char path[sizeof(ctl->moved_to) + 1];
        uint8_t token[sizeof(ctl->moved_token)];
        uint64_t now = chan_now_ns();
        int r = 0;

        pthread_mutex_lock(&d->move_lock);
        if (!d->dead && now - d->home_try_ns >= 250000000ull) {
                d->home_try_ns = now;
                memcpy(path, (const char *)ctl->moved_to, sizeof(ctl->moved_to));
                path[sizeof(ctl->moved_to)] = '\0';
                memcpy(token, ctl->moved_token, sizeof(token));
                r = reattach(d, path, token);
                if (r == 0)
                        vgpu_log(VGPU_LOG_INFO,
                                 "vGPU %s: its engine was gone; a fresh one took "
                                 "it back",
                                 d->uuid);
                else if (r == -EACCES) {
                        vgpu_log(VGPU_LOG_ERROR,
                                 "vGPU %s: its engine was gone, and the new one "
                                 "does not know this process",
                                 d->uuid);
                        d->dead = true;
                } else if (r == -ENOENT && d->home_gone_ns &&
                           now - d->home_gone_ns > 60000000000ull) {
                        /* no socket there for a minute: the vGPU was destroyed */
                        vgpu_log(VGPU_LOG_ERROR,
                                 "vGPU %s: its engine was gone, and the vGPU is too", d->uuid);
                        d->dead = true;
                }
                if (r == -ENOENT && !d->home_gone_ns)
                        d->home_gone_ns = now;
                else if (r != -ENOENT)
                        d->home_gone_ns = 0;
        }
        pthread_mutex_unlock(&d->move_lock);
        return !d->dead;
}

bool guest_reattach(struct gdev *d)
{
        struct vgpu_chan_ctl *ctl = d->v.ctl;
        char path[sizeof(ctl->moved_to) + 1];
        uint8_t token[sizeof(ctl->moved_token)];
        int r = 0;

        pthread_mutex_lock(&d->move_lock);
        if (!d->dead && __atomic_load_n(&ctl->moved, __ATOMIC_ACQUIRE)) {
                memcpy(path, (const char *)ctl->moved_to, sizeof(ctl->moved_to));
                path[sizeof(ctl->moved_to)] = '\0';
                memcpy(token, ctl->moved_token, sizeof(token));
                r = reattach(d, path, token);
                if (r < 0) {
                        vgpu_log(VGPU_LOG_ERROR, "vGPU %s moved to %s, but re-attaching failed: %s",
                                 d->uuid, path, strerror(-r));
                        d->dead = true;
                }
        }
        pthread_mutex_unlock(&d->move_lock);
        return !d->dead;
}

static int attach_uuid(const char *sock, const char *uuid)
{
        char path[128], esc[96];
        json_t *vg = NULL, *gpu = NULL;
        int status = 0, r;

        if (http_escape(uuid, esc, sizeof(esc)) < 0)
                return -EINVAL;
        snprintf(path, sizeof(path), "/v1/vgpus/%s", esc);
        r = http_call(sock, "GET", path, NULL, &status, &vg);
        if (r < 0 || status != 200 || !json_is_object(vg)) {
                vgpu_log(VGPU_LOG_WARN, "vGPU %s: %s", uuid,
                         r < 0 ? strerror(-r) : "vgpud does not know it");
                json_decref(vg);
                return r < 0 ? r : -ENOENT;
        }
        snprintf(path, sizeof(path), "/v1/gpus/%d",
                 (int)json_integer_value(json_object_get(vg, "gpu")));
        http_call(sock, "GET", path, NULL, &status, &gpu);
        r = attach_one(vg, json_string_value(json_object_get(gpu, "pci_bus_id"))
                                   ? json_string_value(json_object_get(gpu, "pci_bus_id"))
                                   : "00000000:00:00.0");
        if (r < 0)
                vgpu_log(VGPU_LOG_WARN, "vGPU %s: cannot attach: %s", uuid, strerror(-r));
        json_decref(gpu);
        json_decref(vg);
        return r;
}

CUresult guest_attach_all(void)
{
        const char *sock = vgpud_socket();
        const char *list = getenv("VGPU_UUID");
        const char *remote = getenv("VGPU_REMOTE");

        vgpu_log_init("libcuda(vgpu)");
        if (remote && *remote) {
                /* vGPUs of a vgpud on another machine, over TCP (docs/remote.md) */
                char buf[1024], *save = NULL;

                if (!list || !*list)
                        vgpu_log(VGPU_LOG_WARN, "VGPU_REMOTE needs VGPU_UUID: which vGPUs?");
                snprintf(buf, sizeof(buf), "%s", list ? list : "");
                for (char *u = strtok_r(buf, ",", &save); u; u = strtok_r(NULL, ",", &save))
                        guest_attach_remote(remote, getenv("VGPU_REMOTE_SECRET"), u);
                return guest_ndevs ? CUDA_SUCCESS : CUDA_ERROR_NO_DEVICE;
        }
        if (list && *list) {
                char buf[1024], *save = NULL;

                snprintf(buf, sizeof(buf), "%s", list);
                for (char *u = strtok_r(buf, ",", &save); u; u = strtok_r(NULL, ",", &save))
                        attach_uuid(sock, u);
        } else {
                json_t *all = NULL, *v;
                int status = 0;
                size_t i;

                if (http_call(sock, "GET", "/v1/vgpus", NULL, &status, &all) == 0 &&
                    status == 200) {
                        json_array_foreach(json_object_get(all, "vgpus"), i, v)
                        {
                                const char *u = json_string_value(json_object_get(v, "uuid"));

                                if (u && json_integer_value(json_object_get(v, "owner_uid")) ==
                                                 (json_int_t)getuid())
                                        attach_uuid(sock, u);
                        }
                } else {
                        vgpu_log(VGPU_LOG_WARN, "cannot reach vgpud at %s (VGPU_SOCKET)", sock);
                }
                json_decref(all);
        }
        return guest_ndevs ? CUDA_SUCCESS : CUDA_ERROR_NO_DEVICE;
}
