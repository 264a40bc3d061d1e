// SPDX-License-Identifier: Apache-2.0
// vgpud's SQLite store: schema, a lock file that keeps one vgpud per state directory, and plain
// row readers and writers. WAL with synchronous=FULL: a committed change survives kill -9 and
// power loss.
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/log.h"
#include "manager/state.h"

struct state {
        sqlite3 *db;
        int lock_fd;
};

static const char schema[] =
        "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT OR IGNORE INTO meta VALUES('schema_version', '1');"
        "CREATE TABLE IF NOT EXISTS gpus(idx INTEGER PRIMARY KEY, uuid TEXT NOT NULL UNIQUE,"
        " model TEXT NOT NULL, mode TEXT NOT NULL, pci_bus_id TEXT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS gpu_instances(gpu INTEGER NOT NULL, id INTEGER NOT NULL,"
        " profile INTEGER NOT NULL, start INTEGER NOT NULL, implicit INTEGER NOT NULL,"
        " PRIMARY KEY(gpu, id));"
        "CREATE TABLE IF NOT EXISTS vgpus(uuid TEXT PRIMARY KEY, handle INTEGER NOT NULL UNIQUE,"
        " gpu INTEGER NOT NULL, type_id INTEGER NOT NULL, placement INTEGER NOT NULL,"
        " gi INTEGER NOT NULL, owner_uid INTEGER NOT NULL, state TEXT NOT NULL,"
        " engine_pid INTEGER NOT NULL, created_at TEXT NOT NULL);"
        /* Since suspend and migration: a vGPU's device address, once it moved off the GPU its
         * address was derived from (no row: derived). A table of its own, so that state
         * directories of earlier versions open unchanged. */
        "CREATE TABLE IF NOT EXISTS vgpu_addresses(uuid TEXT PRIMARY KEY,"
        " device_address INTEGER NOT NULL);";

static int exec(struct state *s, const char *sql)
{
        char *err = NULL;

        if (sqlite3_exec(s->db, sql, NULL, NULL, &err) != SQLITE_OK) {
                vgpu_log(VGPU_LOG_ERROR, "state: %s: %s", sql, err ? err : "?");
                sqlite3_free(err);
                return -EIO;
        }
        return 0;
}

int state_open(const char *dir, struct state **ret)
{
        char path[4096];
        struct state *s;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        snprintf(path, sizeof(path), "%s/vgpud.lock", dir);
        s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (s->lock_fd < 0) {
                r = -errno;
                vgpu_log(VGPU_LOG_ERROR, "state: %s: %s", path, strerror(errno));
                goto err_free;
        }
        if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
                r = errno == EWOULDBLOCK ? -EBUSY : -errno;
                vgpu_log(VGPU_LOG_ERROR, "state: %s is in use by another vgpud", dir);
                goto err_lock;
        }
        snprintf(path, sizeof(path), "%s/vgpud.db", dir);
        if (sqlite3_open_v2(path, &s->db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                            NULL) != SQLITE_OK) {
                vgpu_log(VGPU_LOG_ERROR, "state: %s: %s", path,
                         s->db ? sqlite3_errmsg(s->db) : "out of memory");
                r = -EIO;
                goto err_db;
        }
        sqlite3_busy_timeout(s->db, 5000);
        r = exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
        if (r == 0)
                r = exec(s, schema);
        if (r < 0)
                goto err_db;
        *ret = s;
        return 0;

err_db:
        sqlite3_close(s->db);
err_lock:
        close(s->lock_fd);
err_free:
        free(s);
        return r;
}

void state_close(struct state *s)
{
        if (!s)
                return;
        sqlite3_close(s->db);
        close(s->lock_fd);
        free(s);
}

int state_begin(struct state *s)
{
        return exec(s, "BEGIN IMMEDIATE");
}

int state_commit(struct state *s)
{
        return exec(s, "COMMIT");
}

void state_rollback(struct state *s)
{
        exec(s, "ROLLBACK");
}

/* Prepare sql, bind the arguments described by fmt (i: int64, t: text), step once. */
static int run(struct state *s, const char *sql, const char *fmt, ...)
{
        sqlite3_stmt *st;
        va_list ap;
        int r, i = 1;

        if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
                vgpu_log(VGPU_LOG_ERROR, "state: %s: %s", sql, sqlite3_errmsg(s->db));
                return -EIO;
        }
        va_start(ap, fmt);
        for (const char *f = fmt; *f; f++, i++) {
                if (*f == 'i')
                        sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
                else
                        sqlite3_bind_text(st, i, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
        }
        va_end(ap);
        r = sqlite3_step(st);
        sqlite3_finalize(st);
        if (r != SQLITE_DONE) {
                vgpu_log(VGPU_LOG_ERROR, "state: %s: %s", sql, sqlite3_errmsg(s->db));
                return -EIO;
        }
        return 0;
}

int state_put_gpu(struct state *s, const struct state_gpu *g)
{
        return run(s, "INSERT OR REPLACE INTO gpus VALUES(?, ?, ?, ?, ?)", "itttt",
                   (int64_t)g->index, g->uuid, g->model, g->mode, g->pci_bus_id);
}

int state_put_meta(struct state *s, const char *key, const char *value)
{
        return run(s, "INSERT OR REPLACE INTO meta VALUES(?, ?)", "tt", key, value);
}

int state_get_meta(struct state *s, const char *key, char *ret, size_t len)
{
        sqlite3_stmt *st;
        int r = -ENOENT;

        if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = ?", -1, &st, NULL) !=
            SQLITE_OK)
                return -EIO;
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
                const unsigned char *v = sqlite3_column_text(st, 0);

                snprintf(ret, len, "%s", v ? (const char *)v : "");
                r = 0;
        }
        sqlite3_finalize(st);
        return r;
}

int state_put_gi(struct state *s, const struct state_gi *gi)
{
        return run(s, "INSERT OR REPLACE INTO gpu_instances VALUES(?, ?, ?, ?, ?)", "iiiii",
                   (int64_t)gi->gpu, (int64_t)gi->id, (int64_t)gi->profile, (int64_t)gi->start,
                   (int64_t)gi->implicit);
}

int state_del_gi(struct state *s, uint32_t gpu, uint32_t id)
{
        return run(s, "DELETE FROM gpu_instances WHERE gpu = ? AND id = ?", "ii", (int64_t)gpu,
                   (int64_t)id);
}

int state_put_vgpu(struct state *s, const struct state_vgpu *v)
{
        int r = run(s, "INSERT OR REPLACE INTO vgpus VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    "tiiiiiitit", v->uuid, (int64_t)v->handle, (int64_t)v->gpu, (int64_t)v->type_id,
                    (int64_t)v->placement, (int64_t)v->gi, v->owner_uid, v->state, v->engine_pid,
                    v->created_at);

        if (r == 0 && v->device_address)
                r = run(s, "INSERT OR REPLACE INTO vgpu_addresses VALUES(?, ?)", "ti", v->uuid,
                        (int64_t)v->device_address);
        else if (r == 0)
                r = run(s, "DELETE FROM vgpu_addresses WHERE uuid = ?", "t", v->uuid);
        return r;
}

int state_del_vgpu(struct state *s, const char *uuid)
{
        int r = run(s, "DELETE FROM vgpus WHERE uuid = ?", "t", uuid);

        return r == 0 ? run(s, "DELETE FROM vgpu_addresses WHERE uuid = ?", "t", uuid) : r;
}

static void copy_text(char *dst, size_t len, sqlite3_stmt *st, int col)
{
        const unsigned char *t = sqlite3_column_text(st, col);

        snprintf(dst, len, "%s", t ? (const char *)t : "");
}

/* The reader's callback, whichever row kind it takes. */
struct each_fn {
        int (*gpu)(void *ctx, const struct state_gpu *g);
        int (*gi)(void *ctx, const struct state_gi *gi);
        int (*vgpu)(void *ctx, const struct state_vgpu *v);
        void *ctx;
};

/* Step through a query, handing each row to row(), which converts it and calls the callback. */
static int each(struct state *s, const char *sql,
                int (*row)(sqlite3_stmt *st, const struct each_fn *fn), const struct each_fn *fn)
{
        sqlite3_stmt *st;
        int r = 0, sr;

        if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
                return -EIO;
        while ((sr = sqlite3_step(st)) == SQLITE_ROW) {
                r = row(st, fn);
                if (r)
                        break;
        }
        if (!r && sr != SQLITE_DONE)
                r = -EIO;
        sqlite3_finalize(st);
        return r;
}

static int gpu_row(sqlite3_stmt *st, const struct each_fn *fn)
{
        struct state_gpu g = {.index = (uint32_t)sqlite3_column_int64(st, 0)};

        copy_text(g.uuid, sizeof(g.uuid), st, 1);
        copy_text(g.model, sizeof(g.model), st, 2);
        copy_text(g.mode, sizeof(g.mode), st, 3);
        copy_text(g.pci_bus_id, sizeof(g.pci_bus_id), st, 4);
        return fn->gpu(fn->ctx, &g);
}

static int gi_row(sqlite3_stmt *st, const struct each_fn *fn)
{
        struct state_gi gi = {
                .gpu = (uint32_t)sqlite3_column_int64(st, 0),
                .id = (uint32_t)sqlite3_column_int64(st, 1),
                .profile = (uint32_t)sqlite3_column_int64(st, 2),
                .start = (uint32_t)sqlite3_column_int64(st, 3),
                .implicit = sqlite3_column_int64(st, 4) != 0,
        };

        return fn->gi(fn->ctx, &gi);
}

static int vgpu_row(sqlite3_stmt *st, const struct each_fn *fn)
{
        struct state_vgpu v = {
                .handle = (uint32_t)sqlite3_column_int64(st, 1),
                .gpu = (uint32_t)sqlite3_column_int64(st, 2),
                .type_id = (uint32_t)sqlite3_column_int64(st, 3),
                .placement = (uint32_t)sqlite3_column_int64(st, 4),
                .gi = (uint32_t)sqlite3_column_int64(st, 5),
                .owner_uid = sqlite3_column_int64(st, 6),
                .engine_pid = sqlite3_column_int64(st, 8),
                .device_address = (uint64_t)sqlite3_column_int64(st, 10),
        };

        copy_text(v.uuid, sizeof(v.uuid), st, 0);
        copy_text(v.state, sizeof(v.state), st, 7);
        copy_text(v.created_at, sizeof(v.created_at), st, 9);
        return fn->vgpu(fn->ctx, &v);
}

int state_each_gpu(struct state *s, int (*fn)(void *ctx, const struct state_gpu *g), void *ctx)
{
        struct each_fn f = {.gpu = fn, .ctx = ctx};

        return each(s, "SELECT * FROM gpus ORDER BY idx", gpu_row, &f);
}

int state_each_gi(struct state *s, int (*fn)(void *ctx, const struct state_gi *gi), void *ctx)
{
        struct each_fn f = {.gi = fn, .ctx = ctx};

        return each(s, "SELECT * FROM gpu_instances ORDER BY gpu, id", gi_row, &f);
}

int state_each_vgpu(struct state *s, int (*fn)(void *ctx, const struct state_vgpu *v), void *ctx)
{
        struct each_fn f = {.vgpu = fn, .ctx = ctx};

        return each(s,
                    "SELECT v.*, coalesce(a.device_address, 0) FROM vgpus v"
                    " LEFT JOIN vgpu_addresses a USING(uuid) ORDER BY v.handle",
                    vgpu_row, &f);
}

int state_real_gi_ids(struct state *s)
{
        char v[32];
        int r;

        if (state_get_meta(s, "gi_ids", v, sizeof(v)) == 0)
                return 0;
        /* through negatives: (gpu, id) stays unique at every step */
        r = state_begin(s);
        if (r == 0)
                r = exec(s, "UPDATE gpu_instances SET id = -(id + 1);"
                            "UPDATE gpu_instances SET id = -id;"
                            "UPDATE vgpus SET gi = gi + 1 WHERE gi > 0;");
        if (r == 0)
                r = state_put_meta(s, "gi_ids", "nvml+1");
        if (r == 0)
                r = state_commit(s);
        if (r < 0)
                state_rollback(s);
        return r < 0 ? -EIO : 0;
}
