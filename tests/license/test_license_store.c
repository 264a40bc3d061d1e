// SPDX-License-Identifier: Apache-2.0
// The lease store: threads on their own connections to one database racing for the last seats
// (never over-issued), a retried request getting the same lease, expiry freeing seats, renewal and
// release rules, pool expiry cutting leases, and leases surviving a reopen.
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "license/lease.h"
#include "license/license_store.h"

#define T0 1795600000

static char dir[] = "/tmp/vgpu-lstore-XXXXXX";
static char db[96];
static struct lease_key *key;

static int setup(void **state)
{
        (void)state;
        if (!mkdtemp(dir))
                return -1;
        snprintf(db, sizeof(db), "%s/licensed.db", dir);
        return lease_key_generate(&key);
}

static int teardown(void **state)
{
        char cmd[160];

        (void)state;
        lease_key_free(key);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        return system(cmd) == 0 ? 0 : -1;
}

static struct license_store *fresh(const char *name)
{
        struct license_store *s;
        char path[128];

        snprintf(path, sizeof(path), "%s/%s.db", dir, name);
        assert_int_equal(license_store_open(path, &s), 0);
        return s;
}

static void add_pool(struct license_store *s, const char *name, const char *feature, int64_t seats,
                     int64_t expires)
{
        struct license_pool p = {.seats = seats, .expires = expires};

        snprintf(p.name, sizeof(p.name), "%s", name);
        snprintf(p.feature, sizeof(p.feature), "%s", feature);
        assert_int_equal(license_store_pool_create(s, &p, T0), 0);
}

#define RACERS 8
#define PER    25
#define SEATS  37

struct racer {
        int idx;
        int granted, refused, errors;
        char ids[PER][LEASE_ID_MAX];
};

static void *race(void *arg)
{
        struct racer *r = arg;
        struct license_store *s;
        char path[128];

        snprintf(path, sizeof(path), "%s/race.db", dir);
        if (license_store_open(path, &s) < 0) {
                r->errors++;
                return NULL;
        }
        for (int i = 0; i < PER; i++) {
                char uuid[64];
                struct lease l;
                bool existing;
                int rc;

                snprintf(uuid, sizeof(uuid), "vgpu-%d-%d", r->idx, i);
                rc = license_store_grant(s, key, "compute", uuid, "host", T0, 3600, &l, &existing);
                if (rc == 0 && !existing)
                        memcpy(r->ids[r->granted++], l.id, LEASE_ID_MAX);
                else if (rc == -ENOSPC)
                        r->refused++;
                else
                        r->errors++;
        }
        license_store_close(s);
        return NULL;
}

static void test_race_for_last_seats(void **state)
{
        struct license_store *s = fresh("race");
        struct racer racers[RACERS] = {0};
        pthread_t th[RACERS];
        struct license_pool p;
        int granted = 0, refused = 0;

        (void)state;
        add_pool(s, "main", "compute", SEATS, 0);
        for (int i = 0; i < RACERS; i++) {
                racers[i].idx = i;
                assert_int_equal(pthread_create(&th[i], NULL, race, &racers[i]), 0);
        }
        for (int i = 0; i < RACERS; i++) {
                pthread_join(th[i], NULL);
                assert_int_equal(racers[i].errors, 0);
                granted += racers[i].granted;
                refused += racers[i].refused;
        }
        assert_int_equal(granted, SEATS);
        assert_int_equal(refused, RACERS * PER - SEATS);
        assert_int_equal(license_store_pool_get(s, "main", T0, &p), 0);
        assert_int_equal(p.leased, SEATS);
        /* Every granted ID is distinct. */
        for (int a = 0; a < RACERS; a++)
                for (int i = 0; i < racers[a].granted; i++)
                        for (int b = a; b < RACERS; b++)
                                for (int j = b == a ? i + 1 : 0; j < racers[b].granted; j++)
                                        assert_string_not_equal(racers[a].ids[i], racers[b].ids[j]);
        license_store_close(s);
}

static void test_idempotent_and_expiry(void **state)
{
        struct license_store *s = fresh("expiry");
        struct lease a, a2, b, c;
        struct license_lease_row row;
        bool ex;

        (void)state;
        add_pool(s, "one", "compute", 1, 0);
        assert_int_equal(license_store_grant(s, key, "compute", "A", "h", T0, 100, &a, &ex), 0);
        assert_false(ex);
        assert_int_equal(a.expires, T0 + 100);
        /* A retry of the same client gets the same lease and takes no second seat. */
        assert_int_equal(license_store_grant(s, key, "compute", "A", "h", T0 + 5, 100, &a2, &ex),
                         0);
        assert_true(ex);
        assert_string_equal(a.id, a2.id);
        assert_string_equal(a.token, a2.token);
        assert_int_equal(license_store_grant(s, key, "compute", "B", "h", T0 + 5, 100, &b, &ex),
                         -ENOSPC);
        assert_int_equal(license_store_grant(s, key, "other", "B", "h", T0, 100, &b, &ex), -ENOENT);
        assert_int_equal(license_store_grant(s, key, "compute", "", "h", T0, 100, &b, &ex),
                         -EINVAL);
        /* Renewal before expiry extends it; after expiry the seat is gone to someone else. */
        assert_int_equal(license_store_renew(s, key, a.id, T0 + 50, 100, &a2), 0);
        assert_int_equal(a2.expires, T0 + 150);
        assert_string_equal(a2.id, a.id);
        assert_int_equal(license_store_grant(s, key, "compute", "B", "h", T0 + 149, 100, &b, &ex),
                         -ENOSPC);
        assert_int_equal(license_store_grant(s, key, "compute", "B", "h", T0 + 150, 100, &b, &ex),
                         0);
        assert_int_equal(license_store_renew(s, key, a.id, T0 + 151, 100, &a2), -EKEYEXPIRED);
        assert_int_equal(license_store_release(s, a.id, T0 + 151), 0); /* no-op */
        /* Release frees the seat at once; a released lease cannot be renewed. */
        assert_int_equal(license_store_release(s, b.id, T0 + 160), 0);
        assert_int_equal(license_store_release(s, b.id, T0 + 161), 0);
        assert_int_equal(license_store_renew(s, key, b.id, T0 + 161, 100, &a2), -ESTALE);
        assert_int_equal(license_store_grant(s, key, "compute", "C", "h", T0 + 162, 100, &c, &ex),
                         0);
        assert_int_equal(license_store_lease_get(s, b.id, &row), 0);
        assert_int_equal(row.released, T0 + 160);
        assert_int_equal(license_store_release(s, "nope", T0), -ENOENT);
        assert_int_equal(license_store_renew(s, key, "nope", T0, 100, &a2), -ENOENT);
        license_store_close(s);
}

static void test_pools(void **state)
{
        struct license_store *s = fresh("pools");
        struct license_pool p = {.seats = 1};
        struct lease l;
        bool ex;

        (void)state;
        add_pool(s, "short", "compute", 1, T0 + 30);
        snprintf(p.name, sizeof(p.name), "short");
        snprintf(p.feature, sizeof(p.feature), "compute");
        assert_int_equal(license_store_pool_create(s, &p, T0), -EEXIST);
        p.expires = T0 - 1;
        snprintf(p.name, sizeof(p.name), "past");
        assert_int_equal(license_store_pool_create(s, &p, T0), -EINVAL);
        p.expires = 0;
        p.seats = -1;
        assert_int_equal(license_store_pool_create(s, &p, T0), -EINVAL);
        /* A lease never outlives its pool; an expired pool grants and renews nothing. */
        assert_int_equal(license_store_grant(s, key, "compute", "A", "h", T0, 100, &l, &ex), 0);
        assert_int_equal(l.expires, T0 + 30);
        assert_int_equal(license_store_release(s, l.id, T0 + 1), 0);
        assert_int_equal(license_store_grant(s, key, "compute", "B", "h", T0 + 30, 100, &l, &ex),
                         -ENOENT);
        /* A second pool of the feature takes over when the first is full. */
        add_pool(s, "more", "compute", 2, 0);
        assert_int_equal(license_store_grant(s, key, "compute", "C", "h", T0 + 1, 100, &l, &ex), 0);
        assert_int_equal(license_store_grant(s, key, "compute", "D", "h", T0 + 1, 100, &l, &ex), 0);
        assert_int_equal(license_store_grant(s, key, "compute", "E", "h", T0 + 1, 100, &l, &ex), 0);
        assert_int_equal(license_store_grant(s, key, "compute", "F", "h", T0 + 1, 100, &l, &ex),
                         -ENOSPC);
        assert_int_equal(license_store_pool_get(s, "more", T0 + 1, &p), 0);
        assert_int_equal(p.leased, 2);
        license_store_close(s);
}

static int count(void *ctx, const struct license_lease_row *l)
{
        (void)l;
        (*(int *)ctx)++;
        return 0;
}

static void test_reopen(void **state)
{
        struct license_store *s = fresh("reopen");
        struct lease l;
        bool ex;
        int n = 0;

        (void)state;
        add_pool(s, "p", "compute", 3, 0);
        assert_int_equal(license_store_grant(s, key, "compute", "A", "h", T0, 100, &l, &ex), 0);
        license_store_close(s);
        s = fresh("reopen");
        assert_int_equal(license_store_each_lease(s, T0, false, count, &n), 0);
        assert_int_equal(n, 1);
        n = 0;
        assert_int_equal(license_store_each_lease(s, T0 + 100, false, count, &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(license_store_each_lease(s, T0 + 100, true, count, &n), 0);
        assert_int_equal(n, 1);
        license_store_close(s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_race_for_last_seats),
                cmocka_unit_test(test_idempotent_and_expiry),
                cmocka_unit_test(test_pools),
                cmocka_unit_test(test_reopen),
        };

        (void)db;
        return cmocka_run_group_tests(tests, setup, teardown);
}
