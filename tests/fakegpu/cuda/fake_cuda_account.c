// SPDX-License-Identifier: Apache-2.0
// What the stand-in shares with other processes through $VGPU_FAKE_GPU (tests/fakegpu/README.md):
// the device memory each process created, in <dir>/mem/<device-key>.<pid>, checked against the
// device's size under an flock of that folder; and the Xid lines of kernel faults in <dir>/xid.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_cuda.h"

static pthread_mutex_t acct_lock = PTHREAD_MUTEX_INITIALIZER;

/* A process that has exited, zombies included, holds no device memory. */
static bool pid_alive(long pid)
{
        char path[64], buf[512];
        const char *s;
        ssize_t n;
        int fd;

        if (kill((pid_t)pid, 0) < 0 && errno != EPERM)
                return false;
        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return true;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return true;
        buf[n] = '\0';
        s = strrchr(buf, ')');
        return !(s && s[1] == ' ' && (s[2] == 'Z' || s[2] == 'X'));
}

/* <dir>/mem, created if missing, opened and locked; -1 with errno on failure. */
static int lock_dir(char *path, size_t len)
{
        int fd;

        snprintf(path, len, "%s/mem", fc.dir);
        if (mkdir(path, 0777) < 0 && errno != EEXIST)
                return -1;
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -1;
        if (flock(fd, LOCK_EX) < 0) {
                close(fd);
                return -1;
        }
        return fd;
}

/*
 * Bytes in use on dev by the other live processes, from their files (under the folder's lock);
 * the files of processes that are gone are removed.
 */
static uint64_t others_locked(int dfd, const struct fc_dev *dev)
{
        size_t klen = strlen(dev->key);
        uint64_t sum = 0;
        struct dirent *e;
        DIR *d;
        int fd = dup(dfd);

        if (fd < 0)
                return 0;
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return 0;
        }
        while ((e = readdir(d))) {
                char buf[32], *end;
                long pid;
                ssize_t n;
                int f;

                if (strncmp(e->d_name, dev->key, klen) != 0 || e->d_name[klen] != '.')
                        continue;
                pid = strtol(e->d_name + klen + 1, &end, 10);
                if (*end || pid <= 0 || pid == (long)getpid())
                        continue;
                if (!pid_alive(pid)) {
                        unlinkat(dfd, e->d_name, 0);
                        continue;
                }
                f = openat(dfd, e->d_name, O_RDONLY | O_CLOEXEC);
                if (f < 0)
                        continue;
                n = read(f, buf, sizeof(buf) - 1);
                close(f);
                if (n > 0) {
                        buf[n] = '\0';
                        sum += strtoull(buf, NULL, 10);
                }
        }
        closedir(d);
        return sum;
}

/* Write this process's bytes on dev (a new file renamed over the old one; none for 0). */
static int store_locked(int dfd, const struct fc_dev *dev, uint64_t bytes)
{
        char name[96], tmp[112], text[32];
        int f, len, r = 0;

        snprintf(name, sizeof(name), "%s.%ld", dev->key, (long)getpid());
        if (bytes == 0)
                return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? -errno : 0;
        snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
        len = snprintf(text, sizeof(text), "%" PRIu64 "\n", bytes);
        f = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (f < 0)
                return -errno;
        if (write(f, text, (size_t)len) != len)
                r = -EIO;
        if (close(f) < 0 && r == 0)
                r = -errno;
        if (r == 0 && renameat(dfd, tmp, dfd, name) < 0)
                r = -errno;
        if (r < 0)
                unlinkat(dfd, tmp, 0);
        return r;
}

/* This process's bytes under dev's key (the MIG devices of one GPU instance share it). */
static uint64_t own_locked(const struct fc_dev *dev)
{
        uint64_t sum = 0;

        for (int i = 0; i < fc.n_devs; i++) {
                if (strcmp(fc.devs[i].key, dev->key) == 0)
                        sum += fc.devs[i].charged;
        }
        return sum;
}

int acct_charge(struct fc_dev *dev, uint64_t bytes)
{
        uint64_t own;
        char path[4200];
        int dfd, r;

        pthread_mutex_lock(&acct_lock);
        dfd = lock_dir(path, sizeof(path));
        if (dfd < 0) {
                r = -errno;
                fc_say("%s: %s", path, strerror(errno));
                pthread_mutex_unlock(&acct_lock);
                return r;
        }
        own = own_locked(dev);
        if (bytes > dev->total || others_locked(dfd, dev) + own + bytes > dev->total) {
                r = -ENOMEM;
        } else {
                r = store_locked(dfd, dev, own + bytes);
                if (r == 0)
                        dev->charged += bytes;
                else
                        fc_say("%s/%s.%ld: %s", path, dev->key, (long)getpid(), strerror(-r));
        }
        close(dfd); /* and the lock with it */
        pthread_mutex_unlock(&acct_lock);
        return r;
}

void acct_uncharge(struct fc_dev *dev, uint64_t bytes)
{
        char path[4200];
        int dfd;

        pthread_mutex_lock(&acct_lock);
        dev->charged -= bytes < dev->charged ? bytes : dev->charged;
        dfd = lock_dir(path, sizeof(path));
        if (dfd >= 0) {
                store_locked(dfd, dev, own_locked(dev));
                close(dfd);
        }
        pthread_mutex_unlock(&acct_lock);
}

uint64_t acct_used(struct fc_dev *dev)
{
        char path[4200];
        uint64_t used;
        int dfd;

        pthread_mutex_lock(&acct_lock);
        used = own_locked(dev);
        dfd = lock_dir(path, sizeof(path));
        if (dfd >= 0) {
                used += others_locked(dfd, dev);
                close(dfd);
        }
        pthread_mutex_unlock(&acct_lock);
        return used;
}

void acct_xid(const struct fc_dev *dev, unsigned xid)
{
        char path[4200], line[96];
        int fd, len;

        snprintf(path, sizeof(path), "%s/xid", fc.dir);
        len = snprintf(line, sizeof(line), "%u %u %u %u\n", dev->nvml_index, dev->gi_id, dev->ci_id,
                       xid);
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0 || write(fd, line, (size_t)len) != len)
                fc_say("%s: %s", path, strerror(errno));
        if (fd >= 0)
                close(fd);
}
