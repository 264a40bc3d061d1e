// SPDX-License-Identifier: Apache-2.0
// Device memory in use, as the README's <dir>/mem/ files say: one file per process and device,
// "<device-key>.<pid>" holding the bytes that process holds there in decimal; only the files of
// live processes count, so a process that died has freed its memory, as with a real driver.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fake_nvml.h"

/* Decimal digits at *s, at least one, no overflow past max; *s moves past them. */
static bool mem_parse_num(const char **s, unsigned long long max, unsigned long long *ret)
{
        unsigned long long v = 0;
        const char *p = *s;

        if (*p < '0' || *p > '9')
                return false;
        for (; *p >= '0' && *p <= '9'; p++) {
                if (v > (max - (unsigned)(*p - '0')) / 10)
                        return false;
                v = v * 10 + (unsigned)(*p - '0');
        }
        *s = p;
        *ret = v;
        return true;
}

/* "gpu<N>.<pid>" or "gpu<N>-gi<ID>.<pid>"; gi is -1 for the first. Anything else is not ours. */
static bool mem_parse_name(const char *name, unsigned *ret_gpu, long *ret_gi, pid_t *ret_pid)
{
        unsigned long long gpu, gi = 0, pid;
        const char *s = name;
        bool has_gi = false;

        if (s[0] != 'g' || s[1] != 'p' || s[2] != 'u')
                return false;
        s += 3;
        if (!mem_parse_num(&s, FAKE_MAX_GPUS, &gpu))
                return false;
        if (s[0] == '-' && s[1] == 'g' && s[2] == 'i') {
                s += 3;
                if (!mem_parse_num(&s, FAKE_MAX_GI_ID, &gi))
                        return false;
                has_gi = true;
        }
        if (*s++ != '.' || !mem_parse_num(&s, 0x7fffffff, &pid) || *s != '\0' || pid == 0)
                return false;
        *ret_gpu = (unsigned)gpu;
        *ret_gi = has_gi ? (long)gi : -1;
        *ret_pid = (pid_t)pid;
        return true;
}

/* Whether process pid is alive (one we may not signal is alive too). */
static bool mem_pid_alive(pid_t pid)
{
        return kill(pid, 0) == 0 || errno == EPERM;
}

/* The decimal byte count in file name of directory dfd; 0 if it cannot be read. */
static unsigned long long mem_file_bytes(int dfd, const char *name)
{
        char buf[32];
        const char *s = buf;
        unsigned long long v = 0;
        ssize_t n;
        int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);

        if (fd < 0)
                return 0;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        /* A file being rewritten may read empty or short: it counts 0 this time. */
        if (!mem_parse_num(&s, ~0ULL, &v))
                return 0;
        return v;
}

unsigned long long fake_mem_used(unsigned gpu, int gi_id)
{
        char path[sizeof(fake.dir) + 8];
        unsigned long long total = 0;
        struct dirent *e;
        DIR *d;

        snprintf(path, sizeof(path), "%s/mem", fake.dir);
        d = opendir(path);
        if (!d)
                return 0;
        while ((e = readdir(d))) {
                unsigned g;
                long gi;
                pid_t pid;
                unsigned long long bytes;

                if (!mem_parse_name(e->d_name, &g, &gi, &pid) || g != gpu)
                        continue;
                if (gi_id >= 0 && gi != gi_id)
                        continue;
                if (!mem_pid_alive(pid))
                        continue;
                bytes = mem_file_bytes(dirfd(d), e->d_name);
                total = total + bytes < total ? ~0ULL : total + bytes;
        }
        closedir(d);
        return total;
}
