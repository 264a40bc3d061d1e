// SPDX-License-Identifier: Apache-2.0
// The registry of live handles (streams, events, modules, functions, memory handles): a hash set
// of pointers with their kind and owner, so that an entry point checks a handle before it touches
// what the handle points to.
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "fake_cuda.h"

struct slot {
        const void *p; /* NULL: empty; &tomb: deleted */
        enum fc_kind kind;
        const void *owner;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot *slots;
static size_t cap, used; /* used counts live and deleted slots */
static const char tomb;

static size_t hash(const void *p, size_t n)
{
        uint64_t h = (uint64_t)(uintptr_t)p * UINT64_C(0x9e3779b97f4a7c15);

        return (size_t)(h >> 17) & (n - 1);
}

static struct slot *find_locked(const void *p)
{
        if (!cap)
                return NULL;
        for (size_t i = hash(p, cap), k = 0; k < cap; i = (i + 1) & (cap - 1), k++) {
                if (slots[i].p == p)
                        return &slots[i];
                if (!slots[i].p)
                        return NULL;
        }
        return NULL;
}

static void put_locked(struct slot *t, size_t n, struct slot s)
{
        size_t i = hash(s.p, n);

        while (t[i].p)
                i = (i + 1) & (n - 1);
        t[i] = s;
}

/* Keep the table at most half full, counting deleted slots (they are dropped here). */
static int grow_locked(void)
{
        size_t live = 0, n;
        struct slot *t;

        if ((used + 1) * 2 <= cap)
                return 0;
        for (size_t i = 0; i < cap; i++)
                live += slots[i].p && slots[i].p != &tomb;
        for (n = 64; n < (live + 1) * 4; n *= 2)
                ;
        t = calloc(n, sizeof(*t));
        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < cap; i++) {
                if (slots[i].p && slots[i].p != &tomb)
                        put_locked(t, n, slots[i]);
        }
        free(slots);
        slots = t;
        cap = n;
        used = live;
        return 0;
}

int handle_add(const void *p, enum fc_kind kind, const void *owner)
{
        int r;

        pthread_mutex_lock(&lock);
        r = grow_locked();
        if (r == 0) {
                put_locked(slots, cap, (struct slot){.p = p, .kind = kind, .owner = owner});
                used++;
        }
        pthread_mutex_unlock(&lock);
        return r;
}

bool handle_is(const void *p, enum fc_kind kind, const void **ret_owner)
{
        struct slot *s;
        bool ok;

        if (!p)
                return false;
        pthread_mutex_lock(&lock);
        s = find_locked(p);
        ok = s && s->kind == kind;
        if (ok && ret_owner)
                *ret_owner = s->owner;
        pthread_mutex_unlock(&lock);
        return ok;
}

bool handle_del(const void *p, enum fc_kind kind)
{
        struct slot *s;
        bool ok;

        if (!p)
                return false;
        pthread_mutex_lock(&lock);
        s = find_locked(p);
        ok = s && s->kind == kind;
        if (ok)
                s->p = &tomb;
        pthread_mutex_unlock(&lock);
        return ok;
}

size_t handle_take(enum fc_kind kind, const void *owner, void **ret, size_t max)
{
        size_t n = 0;

        pthread_mutex_lock(&lock);
        for (size_t i = 0; i < cap && n < max; i++) {
                if (slots[i].p && slots[i].p != &tomb && slots[i].kind == kind &&
                    slots[i].owner == owner) {
                        ret[n++] = (void *)(uintptr_t)slots[i].p;
                        slots[i].p = &tomb;
                }
        }
        pthread_mutex_unlock(&lock);
        return n;
}
