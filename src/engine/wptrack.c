// SPDX-License-Identifier: Apache-2.0
// Write tracking by write protection (wptrack.h). The SIGSEGV handler makes the page writable
// before it sets the page's bit, and a take clears a bit before it protects the page again: in
// every interleaving a page ends either protected, or with its bit set (copied in a later round).
#include "engine/wptrack.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static struct {
        uint8_t *base; /* the last range tracked (kept after stop: a late fault there is ours) */
        uint64_t len;
        uint64_t *bits;
        size_t pages;
        int active;
        int overflow;
        bool installed;
        struct sigaction prev;
} wp;

static pthread_mutex_t wp_lock = PTHREAD_MUTEX_INITIALIZER;

static void chain(int sig, siginfo_t *si, void *uc)
{
        if (wp.prev.sa_flags & SA_SIGINFO) {
                wp.prev.sa_sigaction(sig, si, uc);
        } else if (wp.prev.sa_handler == SIG_DFL || wp.prev.sa_handler == SIG_IGN) {
                /* the fault happens again on return, and kills as it would have */
                signal(sig, SIG_DFL);
        } else {
                wp.prev.sa_handler(sig);
        }
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
        uint8_t *a = si->si_addr, *base = __atomic_load_n(&wp.base, __ATOMIC_ACQUIRE);
        uint64_t len = __atomic_load_n(&wp.len, __ATOMIC_ACQUIRE);
        uint8_t *page;
        size_t i;

        if (si->si_code != SEGV_ACCERR || !base || a < base || (uint64_t)(a - base) >= len) {
                chain(sig, si, uc);
                return;
        }
        page = base + ((uint64_t)(a - base) & ~(uint64_t)(WPTRACK_PAGE - 1));
        if (mprotect(page, WPTRACK_PAGE, PROT_READ | PROT_WRITE) < 0) {
                /* no more pieces for the mapping: give up tracking, everything counts */
                if (mprotect(base, len, PROT_READ | PROT_WRITE) < 0) {
                        chain(sig, si, uc);
                        return;
                }
                __atomic_store_n(&wp.overflow, 1, __ATOMIC_SEQ_CST);
                return;
        }
        i = (size_t)(page - base) / WPTRACK_PAGE;
        if (__atomic_load_n(&wp.active, __ATOMIC_ACQUIRE))
                __atomic_fetch_or(&wp.bits[i / 64], UINT64_C(1) << (i % 64), __ATOMIC_SEQ_CST);
}

int wptrack_start(void *base, uint64_t len)
{
        size_t pages = (size_t)((len + WPTRACK_PAGE - 1) / WPTRACK_PAGE);
        uint64_t *bits;
        int r = 0;

        if (((uintptr_t)base % WPTRACK_PAGE) || !len)
                return -EINVAL;
        bits = calloc((pages + 63) / 64, sizeof(*bits));
        if (!bits)
                return -ENOMEM;
        pthread_mutex_lock(&wp_lock);
        if (wp.active) {
                r = -EBUSY;
                goto out;
        }
        if (!wp.installed) {
                struct sigaction sa = {.sa_sigaction = on_segv,
                                       .sa_flags = SA_SIGINFO | SA_NODEFER};

                sigemptyset(&sa.sa_mask);
                if (sigaction(SIGSEGV, &sa, &wp.prev) < 0) {
                        r = -errno;
                        goto out;
                }
                wp.installed = true;
        }
        free(wp.bits);
        wp.bits = bits;
        bits = NULL;
        wp.pages = pages;
        wp.overflow = 0;
        __atomic_store_n(&wp.len, len, __ATOMIC_RELEASE);
        __atomic_store_n(&wp.base, (uint8_t *)base, __ATOMIC_RELEASE);
        __atomic_store_n(&wp.active, 1, __ATOMIC_SEQ_CST);
        if (mprotect(base, len, PROT_READ) < 0) {
                r = -errno;
                __atomic_store_n(&wp.active, 0, __ATOMIC_SEQ_CST);
        }
out:
        pthread_mutex_unlock(&wp_lock);
        free(bits);
        return r;
}

int wptrack_take(uint64_t **ret_bits, size_t *ret_pages)
{
        size_t words, run = 0;
        uint64_t *out;
        bool in_run = false;

        pthread_mutex_lock(&wp_lock);
        if (!wp.active || __atomic_load_n(&wp.overflow, __ATOMIC_SEQ_CST)) {
                pthread_mutex_unlock(&wp_lock);
                return -EOVERFLOW;
        }
        words = (wp.pages + 63) / 64;
        out = calloc(words ? words : 1, sizeof(*out));
        if (!out) {
                pthread_mutex_unlock(&wp_lock);
                return -ENOMEM;
        }
        for (size_t w = 0; w < words; w++)
                out[w] = __atomic_exchange_n(&wp.bits[w], 0, __ATOMIC_SEQ_CST);
        /* protect the taken pages again, a run of neighbours at a time */
        for (size_t i = 0; i <= wp.pages; i++) {
                bool d = i < wp.pages && wptrack_dirty(out, i);

                if (d && !in_run) {
                        run = i;
                        in_run = true;
                } else if (!d && in_run) {
                        in_run = false;
                        if (mprotect(wp.base + run * WPTRACK_PAGE, (i - run) * WPTRACK_PAGE,
                                     PROT_READ) < 0) {
                                /* cannot protect it again: from now on everything counts */
                                mprotect(wp.base, wp.len, PROT_READ | PROT_WRITE);
                                __atomic_store_n(&wp.overflow, 1, __ATOMIC_SEQ_CST);
                                break;
                        }
                }
        }
        pthread_mutex_unlock(&wp_lock);
        *ret_bits = out;
        *ret_pages = wp.pages;
        return 0;
}

void wptrack_stop(void)
{
        pthread_mutex_lock(&wp_lock);
        if (wp.active) {
                __atomic_store_n(&wp.active, 0, __ATOMIC_SEQ_CST);
                mprotect(wp.base, wp.len, PROT_READ | PROT_WRITE);
        }
        pthread_mutex_unlock(&wp_lock);
}
