// SPDX-License-Identifier: Apache-2.0
// wptrack: write protection notes exactly the pages written, from any thread, and protects them
// again at each take; writes during a take are never lost; stop leaves the range writable.
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine/wptrack.h"

#define PAGES   1024u
#define THREADS 4u

static int failures;

#define CHECK(c, ...)                                                                              \
        do {                                                                                       \
                if (!(c)) {                                                                        \
                        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                       \
                        fprintf(stderr, __VA_ARGS__);                                              \
                        fprintf(stderr, "\n");                                                     \
                        failures++;                                                                \
                }                                                                                  \
        } while (0)

static uint8_t *mem;
static volatile int stop_writers;
static uint64_t written_count[THREADS];

/* Each writer owns pages t, t + THREADS, ...: it writes a counter into one, over and over. */
static void *writer(void *arg)
{
        unsigned t = (unsigned)(uintptr_t)arg;
        uint64_t n = 0;

        while (!stop_writers) {
                unsigned p = t + THREADS * (unsigned)(n % (PAGES / THREADS));

                ((volatile uint64_t *)(mem + (size_t)p * WPTRACK_PAGE))[t] = ++n;
        }
        written_count[t] = n;
        return NULL;
}

static size_t count(const uint64_t *bits, size_t pages)
{
        size_t n = 0;

        for (size_t i = 0; i < pages; i++)
                n += wptrack_dirty(bits, i);
        return n;
}

int main(void)
{
        uint64_t *bits;
        size_t pages;
        pthread_t th[THREADS];
        uint8_t *copy;

        mem = mmap(NULL, PAGES * WPTRACK_PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                   -1, 0);
        copy = calloc(PAGES, WPTRACK_PAGE);
        CHECK(mem != MAP_FAILED && copy, "memory");
        memset(mem, 1, PAGES * WPTRACK_PAGE);

        CHECK(wptrack_start(mem + 1, WPTRACK_PAGE) < 0, "an unaligned range is refused");
        CHECK(wptrack_start(mem, PAGES * WPTRACK_PAGE) == 0, "start");
        CHECK(wptrack_start(mem, WPTRACK_PAGE) < 0, "one range at a time");

        /* exactly the pages written */
        mem[3 * WPTRACK_PAGE] = 7;
        mem[3 * WPTRACK_PAGE + 100] = 8;
        mem[10 * WPTRACK_PAGE + 4095] = 9;
        {
                volatile uint8_t *p11 = mem + 11 * WPTRACK_PAGE; /* a read, then a write */

                *p11 = (uint8_t)(*p11 + 1);
        }
        CHECK(wptrack_take(&bits, &pages) == 0 && pages == PAGES, "take");
        CHECK(count(bits, pages) == 3 && wptrack_dirty(bits, 3) && wptrack_dirty(bits, 10) &&
                      wptrack_dirty(bits, 11),
              "3 pages written, %zu noted", count(bits, pages));
        free(bits);
        CHECK(mem[3 * WPTRACK_PAGE] == 7 && mem[10 * WPTRACK_PAGE + 4095] == 9,
              "the writes went through");
        /* protected again: a second write to page 3 shows in the next take only */
        CHECK(wptrack_take(&bits, &pages) == 0 && count(bits, pages) == 0, "nothing since");
        free(bits);
        mem[3 * WPTRACK_PAGE] = 1;
        CHECK(wptrack_take(&bits, &pages) == 0 && count(bits, pages) == 1 && wptrack_dirty(bits, 3),
              "page 3 again");
        free(bits);

        /*
         * Pre-copy in miniature: writers run while rounds copy what was written; after they stop,
         * one last take and copy must leave the copy equal to the memory.
         */
        memcpy(copy, mem, PAGES * WPTRACK_PAGE);
        for (unsigned t = 0; t < THREADS; t++)
                pthread_create(&th[t], NULL, writer, (void *)(uintptr_t)t);
        for (int round = 0; round < 200; round++) {
                CHECK(wptrack_take(&bits, &pages) == 0, "take in round %d", round);
                for (size_t i = 0; i < pages; i++) {
                        if (wptrack_dirty(bits, i))
                                memcpy(copy + i * WPTRACK_PAGE, mem + i * WPTRACK_PAGE,
                                       WPTRACK_PAGE);
                }
                free(bits);
        }
        stop_writers = 1;
        for (unsigned t = 0; t < THREADS; t++)
                pthread_join(th[t], NULL);
        CHECK(wptrack_take(&bits, &pages) == 0, "last take");
        for (size_t i = 0; i < pages; i++) {
                if (wptrack_dirty(bits, i))
                        memcpy(copy + i * WPTRACK_PAGE, mem + i * WPTRACK_PAGE, WPTRACK_PAGE);
        }
        free(bits);
        CHECK(memcmp(copy, mem, PAGES * WPTRACK_PAGE) == 0,
              "after the rounds the copy equals the memory (%llu writes)",
              (unsigned long long)(written_count[0] + written_count[1]));

        wptrack_stop();
        mem[5 * WPTRACK_PAGE] = 3; /* writable, and no longer noted */
        CHECK(wptrack_take(&bits, &pages) == -EOVERFLOW, "no take after stop");
        CHECK(wptrack_start(mem, PAGES * WPTRACK_PAGE) == 0, "a new start");
        CHECK(wptrack_take(&bits, &pages) == 0 && count(bits, pages) == 0, "starts clean");
        free(bits);
        wptrack_stop();
        free(copy);
        munmap(mem, PAGES * WPTRACK_PAGE);
        if (failures)
                return 1;
        printf("test_wptrack: ok\n");
        return 0;
}
