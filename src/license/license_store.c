// SPDX-License-Identifier: Apache-2.0
// vgpu-licensed's SQLite store. Seats in use are always counted inside the transaction that takes
// one (BEGIN IMMEDIATE holds the write lock from the start), so two grants cannot both see the
// last seat free. Lease IDs are random UUIDs.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <sqlite3.h>

#include "common/log.h"
#include "license/license_store.h"

struct license_store {
        sqlite3 *db;
};

static const char schema[] =
        "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT OR IGNORE INTO meta VALUES('schema_version', '1');"
        "CREATE TABLE IF NOT EXISTS pools(name TEXT PRIMARY KEY, feature TEXT NOT NULL,"
        " seats INTEGER NOT NULL CHECK(seats >= 0), expires INTEGER NOT NULL,"
        " created INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS clients(host TEXT NOT NULL, vgpu_uuid TEXT NOT NULL,"
        " first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, grants INTEGER NOT NULL,"
        " PRIMARY KEY(host, vgpu_uuid));"
        "CREATE TABLE IF NOT EXISTS leases(id TEXT PRIMARY KEY,"
        " pool TEXT NOT NULL REFERENCES pools(name), feature TEXT NOT NULL,"
        " vgpu_uuid TEXT NOT NULL, host TEXT NOT NULL, issued INTEGER NOT NULL,"
        " expires INTEGER NOT NULL, released INTEGER, renewals INTEGER NOT NULL DEFAULT 0,"
        " token TEXT NOT NULL);"
        "CREATE INDEX IF NOT EXISTS leases_active ON leases(pool, released, expires);"
        "CREATE INDEX IF NOT EXISTS leases_client ON leases(vgpu_uuid, host, feature);";

/* The seats a pool has in use at ?now: leases neither released nor expired. */
#define SQL_IN_USE                                                                                 \
        "(SELECT count(*) FROM leases l WHERE l.pool = p.name AND l.released IS NULL"              \
        " AND l.expires > ?1)"

static int exec(struct license_store *s, const char *sql)
{
        char *err = NULL;

        if (sqlite3_exec(s->db, sql, NULL, NULL, &err) != SQLITE_OK) {
                vgpu_log(VGPU_LOG_DEBUG, "license store: %s: %s", sql, err ? err : "?");
                sqlite3_free(err);
                return -EIO;
        }
        return 0;
}

static sqlite3_stmt *prepare(struct license_store *s, const char *sql)
{
        sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
                vgpu_log(VGPU_LOG_DEBUG, "license store: %s: %s", sql, sqlite3_errmsg(s->db));
                return NULL;
        }
        return st;
}

int license_store_open(const char *path, struct license_store **ret)
{
        struct license_store *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        if (sqlite3_open_v2(path, &s->db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                            NULL) != SQLITE_OK) {
                vgpu_log(VGPU_LOG_DEBUG, "license store: %s: %s", path,
                         s->db ? sqlite3_errmsg(s->db) : "out of memory");
                r = -EIO;
                goto err;
        }
        sqlite3_busy_timeout(s->db, 10000);
        r = exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
        if (r == 0)
                r = exec(s, "BEGIN IMMEDIATE");
        if (r == 0) {
                r = exec(s, schema);
                r = r == 0 ? exec(s, "COMMIT") : (exec(s, "ROLLBACK"), r);
        }
        if (r < 0)
                goto err;
        *ret = s;
        return 0;
err:
        sqlite3_close(s->db);
        free(s);
        return r;
}

void license_store_close(struct license_store *s)
{
        if (!s)
                return;
        sqlite3_close(s->db);
        free(s);
}

static void copy_col(sqlite3_stmt *st, int col, char *dst, size_t len)
{
        const unsigned char *t = sqlite3_column_text(st, col);

        snprintf(dst, len, "%s", t ? (const char *)t : "");
}

int license_store_pool_create(struct license_store *s, const struct license_pool *p, int64_t now)
{
        sqlite3_stmt *st;
        int rc;

        if (!lease_name_valid(p->name) || !lease_name_valid(p->feature) || p->seats < 0 ||
            p->seats > 1000000000 || p->expires < 0 || (p->expires && p->expires <= now))
                return -EINVAL;
        st = prepare(s, "INSERT INTO pools(name, feature, seats, expires, created)"
                        " VALUES(?1, ?2, ?3, ?4, ?5)");
        if (!st)
                return -EIO;
        sqlite3_bind_text(st, 1, p->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, p->feature, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, p->seats);
        sqlite3_bind_int64(st, 4, p->expires);
        sqlite3_bind_int64(st, 5, now);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc == SQLITE_CONSTRAINT)
                return -EEXIST;
        return rc == SQLITE_DONE ? 0 : -EIO;
}

#define SQL_POOL_COLS "p.name, p.feature, p.seats, p.expires, p.created, " SQL_IN_USE

static void read_pool(sqlite3_stmt *st, struct license_pool *p)
{
        copy_col(st, 0, p->name, sizeof(p->name));
        copy_col(st, 1, p->feature, sizeof(p->feature));
        p->seats = sqlite3_column_int64(st, 2);
        p->expires = sqlite3_column_int64(st, 3);
        p->created = sqlite3_column_int64(st, 4);
        p->leased = sqlite3_column_int64(st, 5);
}

int license_store_pool_get(struct license_store *s, const char *name, int64_t now,
                           struct license_pool *ret)
{
        sqlite3_stmt *st = prepare(s, "SELECT " SQL_POOL_COLS " FROM pools p WHERE p.name = ?2");
        int rc;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                read_pool(st, ret);
        sqlite3_finalize(st);
        return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

int license_store_each_pool(struct license_store *s, int64_t now,
                            int (*fn)(void *ctx, const struct license_pool *p), void *ctx)
{
        sqlite3_stmt *st =
                prepare(s, "SELECT " SQL_POOL_COLS " FROM pools p ORDER BY p.created, p.name");
        int rc, r = 0;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, now);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct license_pool p;

                read_pool(st, &p);
                r = fn(ctx, &p);
                if (r)
                        break;
        }
        sqlite3_finalize(st);
        if (r)
                return r;
        return rc == SQLITE_DONE ? 0 : -EIO;
}

#define SQL_LEASE_COLS "id, pool, feature, vgpu_uuid, host, issued, expires, released, renewals"

static void read_lease_row(sqlite3_stmt *st, struct license_lease_row *l)
{
        copy_col(st, 0, l->id, sizeof(l->id));
        copy_col(st, 1, l->pool, sizeof(l->pool));
        copy_col(st, 2, l->feature, sizeof(l->feature));
        copy_col(st, 3, l->vgpu_uuid, sizeof(l->vgpu_uuid));
        copy_col(st, 4, l->host, sizeof(l->host));
        l->issued = sqlite3_column_int64(st, 5);
        l->expires = sqlite3_column_int64(st, 6);
        l->released = sqlite3_column_int64(st, 7);
        l->renewals = sqlite3_column_int64(st, 8);
}

int license_store_each_lease(struct license_store *s, int64_t now, bool all,
                             int (*fn)(void *ctx, const struct license_lease_row *l), void *ctx)
{
        sqlite3_stmt *st = prepare(s, all ? "SELECT " SQL_LEASE_COLS " FROM leases WHERE ?1 = ?1"
                                            " ORDER BY issued, id"
                                          : "SELECT " SQL_LEASE_COLS " FROM leases WHERE"
                                            " released IS NULL AND expires > ?1"
                                            " ORDER BY issued, id");
        int rc, r = 0;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, now);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                struct license_lease_row l;

                read_lease_row(st, &l);
                r = fn(ctx, &l);
                if (r)
                        break;
        }
        sqlite3_finalize(st);
        if (r)
                return r;
        return rc == SQLITE_DONE ? 0 : -EIO;
}

int license_store_lease_get(struct license_store *s, const char *id, struct license_lease_row *ret)
{
        sqlite3_stmt *st = prepare(s, "SELECT " SQL_LEASE_COLS " FROM leases WHERE id = ?1");
        int rc;

        if (!st)
                return -EIO;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                read_lease_row(st, ret);
        sqlite3_finalize(st);
        return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? -ENOENT : -EIO;
}

/* A random (version 4) UUID. */
static int new_uuid(char buf[LEASE_ID_MAX])
{
        unsigned char b[16];

        if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
                return -EIO;
        b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
        b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
        snprintf(buf, LEASE_ID_MAX,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                 b[15]);
        return 0;
}

static int64_t cut_expiry(int64_t now, int64_t length, int64_t pool_expires)
{
        int64_t exp = now + (length > 0 ? length : 1);

        return pool_expires && pool_expires < exp ? pool_expires : exp;
}

/* Inside the grant's transaction: the client's active lease of feature, if any. 1 found, 0 not. */
static int find_active_locked(struct license_store *s, const char *feature, const char *vgpu_uuid,
                              const char *host, int64_t now, struct lease *ret)
{
        sqlite3_stmt *st = prepare(s, "SELECT id, issued, expires, token FROM leases WHERE"
                                      " vgpu_uuid = ?1 AND host = ?2 AND feature = ?3 AND"
                                      " released IS NULL AND expires > ?4 LIMIT 1");
        int rc;

        if (!st)
                return -EIO;
        sqlite3_bind_text(st, 1, vgpu_uuid, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, host, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, feature, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, now);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                copy_col(st, 0, ret->id, sizeof(ret->id));
                ret->issued = sqlite3_column_int64(st, 1);
                ret->expires = sqlite3_column_int64(st, 2);
                copy_col(st, 3, ret->token, sizeof(ret->token));
        }
        sqlite3_finalize(st);
        return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -EIO;
}

/* Inside the grant's transaction: the first live pool of feature with a free seat. */
static int pick_pool_locked(struct license_store *s, const char *feature, int64_t now,
                            char *ret_name, int64_t *ret_expires)
{
        sqlite3_stmt *st = prepare(s, "SELECT p.name, p.expires, p.seats > " SQL_IN_USE
                                      " FROM pools p WHERE p.feature = ?2 AND"
                                      " (p.expires = 0 OR p.expires > ?1)"
                                      " ORDER BY 3 DESC, p.created, p.name LIMIT 1");
        int rc, r;

        if (!st)
                return -EIO;
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_text(st, 2, feature, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                copy_col(st, 0, ret_name, LEASE_NAME_MAX);
                *ret_expires = sqlite3_column_int64(st, 1);
                r = sqlite3_column_int(st, 2) ? 0 : -ENOSPC;
        } else {
                r = rc == SQLITE_DONE ? -ENOENT : -EIO;
        }
        sqlite3_finalize(st);
        return r;
}

static int insert_lease_locked(struct license_store *s, const char *pool, const struct lease *l)
{
        sqlite3_stmt *st = prepare(s, "INSERT INTO leases(id, pool, feature, vgpu_uuid, host,"
                                      " issued, expires, token) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)");
        int rc;

        if (!st)
                return -EIO;
        sqlite3_bind_text(st, 1, l->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, pool, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, l->feature, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, l->vgpu_uuid, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, l->host, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, l->issued);
        sqlite3_bind_int64(st, 7, l->expires);
        sqlite3_bind_text(st, 8, l->token, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
                return -EIO;
        st = prepare(s, "INSERT INTO clients(host, vgpu_uuid, first_seen, last_seen, grants)"
                        " VALUES(?1, ?2, ?3, ?3, 1) ON CONFLICT(host, vgpu_uuid) DO UPDATE SET"
                        " last_seen = excluded.last_seen, grants = grants + 1");
        if (!st)
                return -EIO;
        sqlite3_bind_text(st, 1, l->host, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, l->vgpu_uuid, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, l->issued);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 0 : -EIO;
}

int license_store_grant(struct license_store *s, const struct lease_key *key, const char *feature,
                        const char *vgpu_uuid, const char *host, int64_t now, int64_t length,
                        struct lease *ret, bool *ret_existing)
{
        struct lease l = {0};
        char pool[LEASE_NAME_MAX];
        int64_t pool_expires = 0;
        int r;

        if (!lease_name_valid(feature) || !lease_name_valid(vgpu_uuid) || !lease_name_valid(host))
                return -EINVAL;
        snprintf(l.feature, sizeof(l.feature), "%s", feature);
        snprintf(l.vgpu_uuid, sizeof(l.vgpu_uuid), "%s", vgpu_uuid);
        snprintf(l.host, sizeof(l.host), "%s", host);
        r = exec(s, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        r = find_active_locked(s, feature, vgpu_uuid, host, now, &l);
        if (r == 1) {
                exec(s, "ROLLBACK");
                *ret = l;
                *ret_existing = true;
                return 0;
        }
        if (r == 0)
                r = pick_pool_locked(s, feature, now, pool, &pool_expires);
        if (r == 0)
                r = new_uuid(l.id);
        if (r == 0) {
                l.issued = now;
                l.expires = cut_expiry(now, length, pool_expires);
                r = lease_sign(key, &l);
        }
        if (r == 0)
                r = insert_lease_locked(s, pool, &l);
        if (r == 0)
                r = exec(s, "COMMIT");
        if (r < 0) {
                exec(s, "ROLLBACK");
                return r;
        }
        *ret = l;
        *ret_existing = false;
        return 0;
}

int license_store_renew(struct license_store *s, const struct lease_key *key, const char *id,
                        int64_t now, int64_t length, struct lease *ret)
{
        struct license_lease_row row;
        struct license_pool pool;
        struct lease l = {0};
        sqlite3_stmt *st;
        int r, rc;

        r = exec(s, "BEGIN IMMEDIATE");
        if (r < 0)
                return r;
        r = license_store_lease_get(s, id, &row);
        if (r == 0 && row.released)
                r = -ESTALE;
        else if (r == 0 && row.expires <= now)
                r = -EKEYEXPIRED;
        if (r == 0)
                r = license_store_pool_get(s, row.pool, now, &pool);
        if (r == 0 && pool.expires && pool.expires <= now)
                r = -EKEYEXPIRED;
        if (r == 0) {
                memcpy(l.id, row.id, sizeof(l.id));
                memcpy(l.feature, row.feature, sizeof(l.feature));
                memcpy(l.vgpu_uuid, row.vgpu_uuid, sizeof(l.vgpu_uuid));
                memcpy(l.host, row.host, sizeof(l.host));
                l.issued = now;
                l.expires = cut_expiry(now, length, pool.expires);
                /* A renewal never shortens a lease the client already holds. */
                if (l.expires < row.expires)
                        l.expires = row.expires;
                r = lease_sign(key, &l);
        }
        if (r == 0) {
                st = prepare(s, "UPDATE leases SET expires = ?2, token = ?3,"
                                " renewals = renewals + 1 WHERE id = ?1");
                if (!st) {
                        r = -EIO;
                } else {
                        sqlite3_bind_text(st, 1, l.id, -1, SQLITE_STATIC);
                        sqlite3_bind_int64(st, 2, l.expires);
                        sqlite3_bind_text(st, 3, l.token, -1, SQLITE_STATIC);
                        rc = sqlite3_step(st);
                        sqlite3_finalize(st);
                        r = rc == SQLITE_DONE ? 0 : -EIO;
                }
        }
        if (r == 0)
                r = exec(s, "COMMIT");
        if (r < 0) {
                exec(s, "ROLLBACK");
                return r;
        }
        *ret = l;
        return 0;
}

int license_store_release(struct license_store *s, const char *id, int64_t now)
{
        sqlite3_stmt *st = prepare(s, "UPDATE leases SET released = ?2 WHERE id = ?1 AND"
                                      " released IS NULL AND expires > ?2");
        struct license_lease_row row;
        int rc;

        if (!st)
                return -EIO;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
                return -EIO;
        if (sqlite3_changes(s->db) > 0)
                return 0;
        return license_store_lease_get(s, id, &row);
}
