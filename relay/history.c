/* history.c — the room histories in one SQLite file. WAL journal and
 * synchronous=FULL: when relay_history_append returns, the patch is on
 * disk, and only then is it broadcast. Tables:
 *   patches(room, seq, hash, stmt, sig, module, source, author, created_us)
 *   vars(room, name, sig, decl, deps, seq)   the current definition of each
 *   rooms(room, tempo_bpm, quantum, lead_us) room settings
 *   epochs(room, epoch_us)                   when this history began the
 *                                            room (docs/PROTOCOL.md § The
 *                                            signed head)
 *   commits(room, seq, runtimes, apply_us, spread_us, max_late_us, need_us)
 *                                            how well the runtimes kept time
 *                                            (lockstep.c); measurements, so
 *                                            written with synchronous=NORMAL
 *   buffers, buffer_updates                  the rooms' shared buffers
 *                                            (bufstore.c)
 * PRAGMA user_version is the schema version (SCHEMA_VERSION). */
#include "history_db.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SCHEMA_VERSION 1

enum {
    Q_HEAD,
    Q_INSERT_PATCH,
    Q_UPSERT_VAR,
    Q_VARS,
    Q_PATCHES,
    Q_ROOMS,
    Q_GET_SETTINGS,
    Q_SET_SETTINGS,
    Q_GET_EPOCH,
    Q_SET_EPOCH,
    Q_COUNT_
};

static const char *const queries[Q_COUNT_] = {
    [Q_HEAD] = "SELECT seq, hash FROM patches WHERE room = ?1 "
               "ORDER BY seq DESC LIMIT 1",
    [Q_INSERT_PATCH] = "INSERT INTO patches(room, seq, hash, stmt, sig, "
                       "module, source, author, created_us) "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [Q_UPSERT_VAR] = "INSERT INTO vars(room, name, sig, decl, deps, seq) "
                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
                     "ON CONFLICT(room, name) DO UPDATE SET sig = ?3, "
                     "decl = ?4, deps = ?5, seq = ?6",
    [Q_VARS] = "SELECT name, sig, decl, deps, seq FROM vars WHERE room = ?1 "
               "ORDER BY name",
    /* ?4: state only — leave out module and source of superseded patches */
    [Q_PATCHES] = "SELECT p.seq, p.hash, p.stmt, p.sig, "
                  "CASE WHEN ?4 = 0 OR EXISTS (SELECT 1 FROM vars v WHERE "
                  "v.room = p.room AND v.seq = p.seq) THEN 1 ELSE 0 END, "
                  "p.module, p.source, p.author, p.created_us "
                  "FROM patches p WHERE p.room = ?1 AND p.seq BETWEEN ?2 AND "
                  "?3 ORDER BY p.seq",
    [Q_ROOMS] = "SELECT room, MAX(seq) FROM (SELECT room, seq FROM patches "
                "UNION ALL SELECT room, 0 FROM rooms) GROUP BY room "
                "ORDER BY room",
    [Q_GET_SETTINGS] = "SELECT tempo_bpm, quantum, lead_us FROM rooms WHERE "
                       "room = ?1",
    [Q_SET_SETTINGS] = "INSERT INTO rooms(room, tempo_bpm, quantum, lead_us) "
                       "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(room) DO UPDATE "
                       "SET tempo_bpm = ?2, quantum = ?3, lead_us = ?4",
    [Q_GET_EPOCH] = "SELECT epoch_us FROM epochs WHERE room = ?1",
    [Q_SET_EPOCH] = "INSERT INTO epochs(room, epoch_us) VALUES (?1, ?2) "
                    "ON CONFLICT(room) DO NOTHING",
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS patches ("
    " room TEXT NOT NULL, seq INTEGER NOT NULL, hash BLOB NOT NULL,"
    " stmt BLOB NOT NULL, sig BLOB NOT NULL, module BLOB NOT NULL,"
    " source BLOB NOT NULL, author TEXT NOT NULL, created_us INTEGER NOT NULL,"
    " PRIMARY KEY (room, seq));"
    "CREATE TABLE IF NOT EXISTS vars ("
    " room TEXT NOT NULL, name TEXT NOT NULL, sig TEXT NOT NULL,"
    " decl TEXT NOT NULL, deps TEXT NOT NULL, seq INTEGER NOT NULL,"
    " PRIMARY KEY (room, name));"
    "CREATE INDEX IF NOT EXISTS vars_by_seq ON vars (room, seq);"
    "CREATE TABLE IF NOT EXISTS rooms ("
    " room TEXT PRIMARY KEY, tempo_bpm REAL NOT NULL, quantum INTEGER NOT "
    "NULL, lead_us INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS commits ("
    " room TEXT NOT NULL, seq INTEGER NOT NULL, runtimes INTEGER NOT NULL,"
    " apply_us INTEGER NOT NULL, spread_us INTEGER NOT NULL,"
    " max_late_us INTEGER NOT NULL, need_us INTEGER NOT NULL,"
    " PRIMARY KEY (room, seq));"
    "CREATE TABLE IF NOT EXISTS epochs ("
    " room TEXT PRIMARY KEY, epoch_us INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS buffers ("
    " room TEXT NOT NULL, id INTEGER NOT NULL, name TEXT NOT NULL,"
    " lang TEXT NOT NULL, open INTEGER NOT NULL, base_useq INTEGER NOT NULL,"
    " PRIMARY KEY (room, id));"
    "CREATE TABLE IF NOT EXISTS buffer_updates ("
    " room TEXT NOT NULL, buffer INTEGER NOT NULL, useq INTEGER NOT NULL,"
    " data BLOB NOT NULL, PRIMARY KEY (room, buffer, useq));"
    "CREATE TABLE IF NOT EXISTS revoked ("
    " id INTEGER PRIMARY KEY, room TEXT, name TEXT, token_id TEXT,"
    " at_s INTEGER NOT NULL);";

struct relay_history {
    sqlite3 *db;
    bool sync_normal; /* synchronous=NORMAL could not be set back to FULL */
    bool stuck;       /* a write transaction whose ROLLBACK failed */
    sqlite3_stmt *q[Q_COUNT_];
    char path[4096];
};

/* SQLite's error as ours: out of memory is PB_ERR_NOMEM, the rest I/O. */
static pb_err db_fail(relay_history *h, pb_errmsg *why, const char *what)
{
    pb_err e =
        sqlite3_errcode(h->db) == SQLITE_NOMEM ? PB_ERR_NOMEM : PB_ERR_IO;
    return pb_fail(why, e, "%s: %s: %s", h->path, what, sqlite3_errmsg(h->db));
}

/* Ends a failed write transaction. If even ROLLBACK fails (out of
 * memory), the transaction stays open: its rows would be seen by this
 * handle's reads and committed by its next write. So it is marked, and
 * every entry point ends it first (end_stuck). */
static void rollback(relay_history *h)
{
    if (!sqlite3_get_autocommit(h->db) &&
        sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK &&
        !sqlite3_get_autocommit(h->db))
        h->stuck = true;
}

static pb_err end_stuck(relay_history *h, pb_errmsg *why)
{
    if (!h->stuck)
        return PB_OK;
    if (!sqlite3_get_autocommit(h->db) &&
        sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK &&
        !sqlite3_get_autocommit(h->db))
        return db_fail(h, why, "cannot roll back an earlier failed write");
    h->stuck = false;
    return PB_OK;
}

/* The history holds every source anyone evaluated: only this user may
 * read it. SQLite gives the -wal and -shm files the database's mode; files
 * from before this rule are made private too.
 *
 * An existing file is looked at by its path, never opened: closing any
 * descriptor of history.db drops every POSIX lock this process holds on
 * it, including those of SQLite handles already open (a relay opens one
 * per worker). Another process would then take itself for the last user,
 * checkpoint and delete the -wal, and later commits of this process would
 * go to the deleted file. Only a file that does not exist yet is created
 * here, and nothing in this process can have that one open. */
static pb_err make_private(const char *path, pb_errmsg *why)
{
    struct stat sb;
    if (lstat(path, &sb) != 0 && errno == ENOENT) {
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                      0600);
        if (fd >= 0)
            close(fd);
        else if (errno != EEXIST) /* EEXIST: another process made it */
            return pb_fail(why, PB_ERR_IO, "cannot create the history %s: %s",
                           path, strerror(errno));
    }
    if (lstat(path, &sb) != 0)
        return pb_fail(why, PB_ERR_IO, "cannot open the history %s: %s", path,
                       strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return pb_fail(why, PB_ERR_IO,
                       "cannot make the history %s private (mode 600): not "
                       "a regular file",
                       path);
    if ((sb.st_mode & 077) && chmod(path, 0600) != 0)
        return pb_fail(why, PB_ERR_IO,
                       "cannot make the history %s private (mode 600): %s",
                       path, strerror(errno));
    static const char *const sidecars[] = {"-wal", "-shm"};
    for (size_t i = 0; i < 2; i++) {
        char side[4300];
        snprintf(side, sizeof side, "%s%s", path, sidecars[i]);
        if (stat(side, &sb) == 0 && (sb.st_mode & 077))
            (void)chmod(side, 0600);
    }
    return PB_OK;
}

static relay_history *open_db(const char *path, bool readonly, pb_errmsg *why)
{
    relay_history *h = calloc(1, sizeof *h);
    if (!h) {
        pb_fail(why, PB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    snprintf(h->path, sizeof h->path, "%s", path);
    if (!readonly && make_private(path, why))
        goto fail;
    int flags = readonly ? SQLITE_OPEN_READONLY
                         : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    flags |= SQLITE_OPEN_NOMUTEX; /* one handle per thread */
    if (sqlite3_open_v2(path, &h->db, flags, NULL) != SQLITE_OK) {
        pb_fail(why, PB_ERR_IO, "cannot open the history %s: %s", path,
                h->db ? sqlite3_errmsg(h->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(h->db, 10000);
    sqlite3_extended_result_codes(h->db, 1);
    if (!readonly) {
        char *err = NULL;
        if (sqlite3_exec(
                h->db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;",
                NULL, NULL, &err) != SQLITE_OK ||
            sqlite3_exec(h->db, schema, NULL, NULL, &err) != SQLITE_OK) {
            pb_fail(why, PB_ERR_IO, "cannot set up the history %s: %s", path,
                    err ? err : sqlite3_errmsg(h->db));
            sqlite3_free(err);
            goto fail;
        }
    }
    sqlite3_stmt *v = NULL;
    int version = -1;
    if (sqlite3_prepare_v2(h->db, "PRAGMA user_version", -1, &v, NULL) ==
            SQLITE_OK &&
        sqlite3_step(v) == SQLITE_ROW)
        version = sqlite3_column_int(v, 0);
    sqlite3_finalize(v);
    if (version == 0 && !readonly) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
        if (sqlite3_exec(h->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
            db_fail(h, why, "cannot record the schema version");
            goto fail;
        }
        version = SCHEMA_VERSION;
    }
    if (version != SCHEMA_VERSION) {
        pb_fail(why, PB_ERR_IO,
                "%s: schema version %d, this patchbay reads version %d (or it "
                "is not a patchbay history)",
                path, version, SCHEMA_VERSION);
        goto fail;
    }
    for (int i = 0; i < Q_COUNT_; i++) {
        bool is_epoch = i == Q_GET_EPOCH || i == Q_SET_EPOCH;
        if (sqlite3_prepare_v3(h->db, queries[i], -1, SQLITE_PREPARE_PERSISTENT,
                               &h->q[i], NULL) != SQLITE_OK &&
            !(readonly && is_epoch)) { /* read-only, from before epochs */
            db_fail(h, why, "cannot prepare a query");
            goto fail;
        }
    }
    return h;
fail:
    relay_history_close(h);
    return NULL;
}

relay_history *relay_history_open_sqlite(const char *path, pb_errmsg *why)
{
    return open_db(path, false, why);
}

relay_history *relay_history_open_readonly(const char *path, pb_errmsg *why)
{
    return open_db(path, true, why);
}

void relay_history_close(relay_history *h)
{
    if (!h)
        return;
    for (int i = 0; i < Q_COUNT_; i++)
        sqlite3_finalize(h->q[i]);
    sqlite3_close(h->db);
    free(h);
}

/* Resets and clears a cached statement and binds the room to ?1. */
static sqlite3_stmt *q_begin(relay_history *h, int which, const char *room)
{
    sqlite3_stmt *s = h->q[which];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (room)
        sqlite3_bind_text(s, 1, room, -1, SQLITE_STATIC);
    return s;
}

pb_err relay_history_head(relay_history *h, const char *room, uint64_t *seq,
                          uint8_t hash[PB_HASH_BYTES], pb_errmsg *why)
{
    *seq = 0;
    memset(hash, 0, PB_HASH_BYTES);
    TRY_HISTORY(end_stuck(h, why));
    sqlite3_stmt *s = q_begin(h, Q_HEAD, room);
    int rc = sqlite3_step(s);
    pb_err e = PB_OK;
    if (rc == SQLITE_ROW) {
        *seq = (uint64_t)sqlite3_column_int64(s, 0);
        if (sqlite3_column_bytes(s, 1) == PB_HASH_BYTES)
            memcpy(hash, sqlite3_column_blob(s, 1), PB_HASH_BYTES);
        else
            e = pb_fail(why, PB_ERR_IO,
                        "%s: room %s seq %llu has a damaged hash", h->path,
                        room, (unsigned long long)*seq);
    } else if (rc != SQLITE_DONE) {
        e = db_fail(h, why, "cannot read the chain head");
    }
    sqlite3_reset(s);
    return e;
}

pb_err relay_history_epoch(relay_history *h, const char *room, uint64_t now_us,
                           uint64_t *epoch, pb_errmsg *why)
{
    *epoch = 0;
    TRY_HISTORY(end_stuck(h, why));
    if (!h->q[Q_GET_EPOCH])
        return PB_OK; /* read-only, from before epochs: every room is 0 */
    sqlite3_stmt *s = q_begin(h, Q_GET_EPOCH, room);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *epoch = (uint64_t)sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (rc == SQLITE_ROW || sqlite3_db_readonly(h->db, "main") == 1)
        return PB_OK;
    if (rc != SQLITE_DONE)
        return db_fail(h, why, "cannot read the room's epoch");
    /* First seen here: a room with patches from before epochs is epoch 0
     * (its chain starts at zero); a new one begins now. Recorded before
     * anyone is told it. */
    uint64_t head = 0;
    uint8_t hash[PB_HASH_BYTES];
    pb_err e = relay_history_head(h, room, &head, hash, why);
    if (e)
        return e;
    uint64_t begins = head ? 0 : now_us;
    s = q_begin(h, Q_SET_EPOCH, room);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)begins);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return db_fail(h, why, "cannot record the room's epoch");
    *epoch = begins;
    return PB_OK;
}

static char *join_deps(const relay_var_row *v)
{
    size_t n = 1;
    for (uint32_t i = 0; i < v->n_deps; i++)
        n += strlen(v->deps[i]) + 1;
    char *out = malloc(n), *p = out;
    if (!out)
        return NULL;
    *p = '\0';
    for (uint32_t i = 0; i < v->n_deps; i++)
        p += sprintf(p, "%s%s", i ? " " : "", v->deps[i]);
    return out;
}

/* Inserts patch p and its vars, inside the caller's transaction. */
static pb_err insert_patch(relay_history *h, const char *room,
                           const relay_patch_row *p, const relay_var_row *vars,
                           uint32_t n, pb_errmsg *why)
{
    sqlite3_stmt *s = q_begin(h, Q_INSERT_PATCH, room);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)p->seq);
    sqlite3_bind_blob(s, 3, p->hash, PB_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(s, 4, p->stmt, (int)p->stmt_len, SQLITE_STATIC);
    sqlite3_bind_blob(s, 5, p->sig, PB_SIG_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(s, 6, p->module ? (const void *)p->module : "",
                      (int)p->module_len, SQLITE_STATIC);
    sqlite3_bind_blob(s, 7, p->source ? p->source : "", (int)p->source_len,
                      SQLITE_STATIC);
    sqlite3_bind_text(s, 8, p->author ? p->author : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 9, (sqlite3_int64)p->created_us);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return db_fail(h, why, "cannot record the patch");
    for (uint32_t i = 0; i < n; i++) {
        char *deps = join_deps(&vars[i]);
        if (!deps)
            return pb_fail(why, PB_ERR_NOMEM, "out of memory");
        s = q_begin(h, Q_UPSERT_VAR, room);
        sqlite3_bind_text(s, 2, vars[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, vars[i].sig, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, vars[i].decl ? vars[i].decl : "", -1,
                          SQLITE_STATIC);
        sqlite3_bind_text(s, 5, deps, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 6, (sqlite3_int64)p->seq);
        rc = sqlite3_step(s);
        sqlite3_reset(s);
        free(deps);
        if (rc != SQLITE_DONE)
            return db_fail(h, why, "cannot record a var");
    }
    return PB_OK;
}

pb_err relay_history_append(relay_history *h, const char *room,
                            const relay_patch_row *p, const relay_var_row *vars,
                            uint32_t n, pb_errmsg *why)
{
    TRY_HISTORY(relay_history_begin(h, why));
    uint64_t head = 0;
    uint8_t head_hash[PB_HASH_BYTES];
    pb_err e = relay_history_head(h, room, &head, head_hash, why);
    if (e)
        goto rollback;
    if (p->seq != head + 1) {
        e = pb_fail(why,
                    p->seq <= head ? PB_ERR_CHAIN_REPLAY : PB_ERR_CHAIN_GAP,
                    "room %s: patch seq %llu does not follow the head %llu",
                    room, (unsigned long long)p->seq, (unsigned long long)head);
        goto rollback;
    }
    if ((e = insert_patch(h, room, p, vars, n, why)))
        goto rollback;
    if (sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        e = db_fail(h, why, "cannot commit the patch");
        goto rollback;
    }
    return PB_OK;
rollback:
    rollback(h);
    return e;
}

pb_err relay_history_import(relay_history *h, const char *room,
                            relay_import_fn next, void *ctx, pb_errmsg *why)
{
    TRY_HISTORY(relay_history_begin(h, why));
    uint64_t head = 0;
    uint8_t head_hash[PB_HASH_BYTES];
    pb_err e = relay_history_head(h, room, &head, head_hash, why);
    if (!e && head)
        e = pb_fail(why, PB_ERR_CHAIN_REPLAY,
                    "room %s already has %llu patches: import into a new "
                    "room",
                    room, (unsigned long long)head);
    for (uint64_t seq = 1; !e; seq++) {
        relay_patch_row p;
        const relay_var_row *vars = NULL;
        uint32_t n = 0;
        memset(&p, 0, sizeof p);
        int more = next(ctx, &p, &vars, &n, why);
        if (more < 0)
            e = PB_ERR_INTERNAL; /* next said why */
        if (more <= 0)
            break;
        if (p.seq != seq)
            e = pb_fail(why, PB_ERR_CHAIN_GAP,
                        "room %s: import gave seq %llu where %llu belongs",
                        room, (unsigned long long)p.seq,
                        (unsigned long long)seq);
        else
            e = insert_patch(h, room, &p, vars, n, why);
    }
    return relay_history_end(h, e, why);
}

static const char *col_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? (const char *)t : "";
}

pb_err relay_history_vars(relay_history *h, const char *room,
                          void (*fn)(void *ctx, const relay_var_row *v),
                          void *ctx, pb_errmsg *why)
{
    TRY_HISTORY(end_stuck(h, why));
    sqlite3_stmt *s = q_begin(h, Q_VARS, room);
    int rc;
    pb_err e = PB_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        char *deps = strdup(col_text(s, 3));
        const char *list[PB_MAX_SYMBOLS * 4];
        uint32_t n = 0;
        if (!deps) {
            e = pb_fail(why, PB_ERR_NOMEM, "out of memory");
            break;
        }
        for (char *save = NULL, *t = strtok_r(deps, " ", &save);
             t && n < sizeof list / sizeof list[0];
             t = strtok_r(NULL, " ", &save))
            list[n++] = t;
        relay_var_row v = {col_text(s, 0),
                           col_text(s, 1),
                           col_text(s, 2),
                           list,
                           n,
                           (uint64_t)sqlite3_column_int64(s, 4)};
        fn(ctx, &v);
        free(deps);
    }
    if (!e && rc != SQLITE_DONE)
        e = db_fail(h, why, "cannot read the room's vars");
    sqlite3_reset(s);
    return e;
}

pb_err relay_history_patches(relay_history *h, const char *room, uint64_t from,
                             uint64_t to, bool state_only, relay_patch_fn fn,
                             void *ctx, pb_errmsg *why)
{
    TRY_HISTORY(end_stuck(h, why));
    sqlite3_stmt *s = q_begin(h, Q_PATCHES, room);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)from);
    sqlite3_bind_int64(s, 3, to > INT64_MAX ? INT64_MAX : (sqlite3_int64)to);
    sqlite3_bind_int(s, 4, state_only);
    int rc;
    pb_err e = PB_OK;
    /* One statement is one read transaction in SQLite: a state query's rows
     * and its EXISTS test see the same snapshot, even while the relay
     * appends. */
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        relay_patch_row p;
        memset(&p, 0, sizeof p);
        p.seq = (uint64_t)sqlite3_column_int64(s, 0);
        if (sqlite3_column_bytes(s, 1) != PB_HASH_BYTES ||
            sqlite3_column_bytes(s, 3) != PB_SIG_BYTES) {
            e = pb_fail(why, PB_ERR_IO, "%s: room %s seq %llu is damaged",
                        h->path, room, (unsigned long long)p.seq);
            break;
        }
        memcpy(p.hash, sqlite3_column_blob(s, 1), PB_HASH_BYTES);
        p.stmt = sqlite3_column_blob(s, 2);
        p.stmt_len = (size_t)sqlite3_column_bytes(s, 2);
        p.sig = sqlite3_column_blob(s, 3);
        if (sqlite3_column_int(s, 4)) {
            p.module = sqlite3_column_blob(s, 5);
            p.module_len = (size_t)sqlite3_column_bytes(s, 5);
            p.source = sqlite3_column_blob(s, 6);
            p.source_len = (size_t)sqlite3_column_bytes(s, 6);
            if (!p.source)
                p.source = "";
        }
        p.author = col_text(s, 7);
        p.created_us = (uint64_t)sqlite3_column_int64(s, 8);
        if (fn(ctx, &p))
            break;
    }
    if (!e && rc != SQLITE_DONE && rc != SQLITE_ROW)
        e = db_fail(h, why, "cannot read the room's patches");
    sqlite3_reset(s);
    return e;
}

pb_err relay_history_rooms(relay_history *h,
                           void (*fn)(void *ctx, const char *room,
                                      uint64_t head_seq),
                           void *ctx, pb_errmsg *why)
{
    TRY_HISTORY(end_stuck(h, why));
    sqlite3_stmt *s = q_begin(h, Q_ROOMS, NULL);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        fn(ctx, col_text(s, 0), (uint64_t)sqlite3_column_int64(s, 1));
    pb_err e = rc == SQLITE_DONE ? PB_OK : db_fail(h, why, "cannot list rooms");
    sqlite3_reset(s);
    return e;
}

pb_err relay_history_get_settings(relay_history *h, const char *room,
                                  pb_room *out, pb_errmsg *why)
{
    memset(out, 0, sizeof *out);
    TRY_HISTORY(end_stuck(h, why));
    sqlite3_stmt *s = q_begin(h, Q_GET_SETTINGS, room);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        out->tempo_bpm = sqlite3_column_double(s, 0);
        out->quantum = (uint32_t)sqlite3_column_int64(s, 1);
        out->lead_us = (uint64_t)sqlite3_column_int64(s, 2);
    }
    pb_err e = rc == SQLITE_ROW || rc == SQLITE_DONE
                   ? PB_OK
                   : db_fail(h, why, "cannot read room settings");
    sqlite3_reset(s);
    return e;
}

pb_err relay_history_set_settings(relay_history *h, const char *room,
                                  const pb_room *r, pb_errmsg *why)
{
    TRY_HISTORY(end_stuck(h, why));
    sqlite3_stmt *s = q_begin(h, Q_SET_SETTINGS, room);
    sqlite3_bind_double(s, 2, r->tempo_bpm);
    sqlite3_bind_int64(s, 3, r->quantum);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)r->lead_us);
    int rc = sqlite3_step(s);
    pb_err e = rc == SQLITE_DONE ? PB_OK
                                 : db_fail(h, why, "cannot save room settings");
    sqlite3_reset(s);
    return e;
}

typedef struct verify_ctx {
    const uint8_t *key;
    pb_chain chain;
    uint64_t n;
    pb_err e;
    pb_errmsg *why;
} verify_ctx;

static int verify_one(void *vctx, const relay_patch_row *p)
{
    verify_ctx *c = vctx;
    pb_patch patch = {{p->stmt, (uint32_t)p->stmt_len},
                      {p->sig, PB_SIG_BYTES},
                      {p->module, (uint32_t)p->module_len},
                      {p->source, (uint32_t)p->source_len}};
    pb_statement st;
    pb_errmsg why = {{0}};
    pb_err e = pb_patch_verify(&patch, c->key, &st, &why);
    if (!e) {
        if ((e = pb_chain_check(&c->chain, &st, &why)) == PB_OK) {
            if (st.seq != p->seq || memcmp(st.hash, p->hash, PB_HASH_BYTES)) {
                e = PB_ERR_HASH_MISMATCH;
                snprintf(why.text, sizeof why.text,
                         "the stored seq or hash does not match the "
                         "statement");
            } else {
                pb_chain_advance(&c->chain, &st);
            }
        }
        pb_statement_free(&st);
    }
    if (e) {
        c->e = e;
        pb_fail(c->why, e, "seq %llu: %s", (unsigned long long)p->seq,
                why.text);
        return 1;
    }
    c->n++;
    return 0;
}

pb_err relay_history_verify(relay_history *h, const char *room,
                            const uint8_t key[PB_PUBLICKEY_BYTES],
                            uint64_t *n_checked, pb_errmsg *why)
{
    *n_checked = 0;
    TRY_HISTORY(end_stuck(h, why));
    verify_ctx c = {key, {{0}, 0, 0, {0}}, 0, PB_OK, why};
    uint64_t epoch = 0;
    pb_err e = relay_history_epoch(h, room, 0, &epoch, why);
    if (e)
        return e;
    if ((e = pb_chain_init_epoch(&c.chain, room, epoch, key)))
        return pb_fail(why, e, "bad room name \"%s\"", room);
    if (sqlite3_exec(h->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(h, why, "cannot begin a read");
    e = relay_history_patches(h, room, 1, UINT64_MAX, false, verify_one, &c,
                              why);
    sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL);
    *n_checked = c.n;
    return e ? e : c.e;
}

/* The commits table may be missing from a history written by an older
 * relay and opened read-only, so its statements are prepared on use; NULL
 * on failure (the handle keeps the error). */
static sqlite3_stmt *prepare(relay_history *h, const char *sql)
{
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(h->db, sql, -1, &s, NULL) != SQLITE_OK) {
        sqlite3_finalize(s);
        return NULL;
    }
    return s;
}

pb_err relay_history_put_commit_stats(relay_history *h, const char *room,
                                      const relay_commit_stats *st, uint32_t n,
                                      pb_errmsg *why)
{
    TRY_HISTORY(end_stuck(h, why));
    if (!n)
        return PB_OK;
    sqlite3_stmt *s = prepare(
        h,
        "INSERT OR REPLACE INTO commits(room, seq, runtimes, apply_us, "
        "spread_us, max_late_us, need_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    if (!s)
        return db_fail(h, why, "cannot record commit times");
    pb_err e = PB_OK;
    /* measurements, not patches: no fsync per batch */
    if (sqlite3_exec(h->db, "PRAGMA synchronous = NORMAL; BEGIN", NULL, NULL,
                     NULL) != SQLITE_OK)
        e = db_fail(h, why, "cannot begin recording commit times");
    for (uint32_t i = 0; i < n && !e; i++) {
        sqlite3_reset(s);
        sqlite3_bind_text(s, 1, room, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)st[i].seq);
        sqlite3_bind_int64(s, 3, st[i].runtimes);
        sqlite3_bind_int64(s, 4, (sqlite3_int64)st[i].apply_us);
        sqlite3_bind_int64(s, 5, (sqlite3_int64)st[i].spread_us);
        sqlite3_bind_int64(s, 6, st[i].max_late_us);
        sqlite3_bind_int64(s, 7, (sqlite3_int64)st[i].need_us);
        if (sqlite3_step(s) != SQLITE_DONE)
            e = db_fail(h, why, "cannot record commit times");
    }
    sqlite3_finalize(s);
    if (!e && sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        e = db_fail(h, why, "cannot commit the commit times");
    if (e)
        rollback(h);
    /* if FULL does not come back, the next append insists on it */
    h->sync_normal = sqlite3_exec(h->db, "PRAGMA synchronous = FULL", NULL,
                                  NULL, NULL) != SQLITE_OK;
    return e;
}

pb_err relay_history_commit_stats(relay_history *h, const char *room,
                                  uint64_t from, uint64_t to,
                                  void (*fn)(void *ctx,
                                             const relay_commit_stats *st),
                                  void *ctx, pb_errmsg *why)
{
    TRY_HISTORY(end_stuck(h, why));
    sqlite3_stmt *s = prepare(
        h,
        "SELECT seq, runtimes, apply_us, spread_us, max_late_us, need_us "
        "FROM commits WHERE room = ?1 AND seq BETWEEN ?2 AND ?3 ORDER BY seq");
    if (!s && strstr(sqlite3_errmsg(h->db), "no such table"))
        return PB_OK; /* from before the figures were recorded */
    if (!s)
        return db_fail(h, why, "cannot read commit times");
    sqlite3_bind_text(s, 1, room, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)from);
    sqlite3_bind_int64(s, 3, to > INT64_MAX ? INT64_MAX : (sqlite3_int64)to);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        relay_commit_stats st = {0};
        st.seq = (uint64_t)sqlite3_column_int64(s, 0);
        st.runtimes = (uint32_t)sqlite3_column_int64(s, 1);
        st.apply_us = (uint64_t)sqlite3_column_int64(s, 2);
        st.spread_us = (uint64_t)sqlite3_column_int64(s, 3);
        st.max_late_us = sqlite3_column_int64(s, 4);
        st.need_us = (uint64_t)sqlite3_column_int64(s, 5);
        fn(ctx, &st);
    }
    pb_err e =
        rc == SQLITE_DONE ? PB_OK : db_fail(h, why, "cannot read commit times");
    sqlite3_finalize(s);
    return e;
}

/* ---- for the other tables in this file (history_db.h) ------------------- */

pb_err relay_history_fail(relay_history *h, pb_errmsg *why, const char *what)
{
    return db_fail(h, why, what);
}

pb_err relay_history_ready(relay_history *h, pb_errmsg *why)
{
    return end_stuck(h, why);
}

pb_err relay_history_begin(relay_history *h, pb_errmsg *why)
{
    TRY_HISTORY(end_stuck(h, why));
    if (h->sync_normal) {
        if (sqlite3_exec(h->db, "PRAGMA synchronous = FULL", NULL, NULL,
                         NULL) != SQLITE_OK)
            return db_fail(h, why, "cannot make appends durable again");
        h->sync_normal = false;
    }
    if (sqlite3_exec(h->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(h, why, "cannot begin a transaction");
    return PB_OK;
}

pb_err relay_history_end(relay_history *h, pb_err e, pb_errmsg *why)
{
    if (!e && sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        e = db_fail(h, why, "cannot commit");
    if (e)
        rollback(h);
    return e;
}

sqlite3_stmt *relay_history_prepare(relay_history *h, const char *sql)
{
    return prepare(h, sql);
}

pb_err relay_history_revoke(relay_history *h, const char *room,
                            const char *name, const char *token_id,
                            uint64_t at_s, pb_errmsg *why)
{
    TRY_HISTORY(end_stuck(h, why));
    sqlite3_stmt *s = prepare(h, "INSERT INTO revoked(room, name, token_id, "
                                 "at_s) VALUES (?1, ?2, ?3, ?4)");
    if (!s)
        return db_fail(h, why, "cannot record the revocation");
    sqlite3_bind_text(s, 1, room, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, token_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)at_s);
    pb_err e = sqlite3_step(s) == SQLITE_DONE
                   ? PB_OK
                   : db_fail(h, why, "cannot record the revocation");
    sqlite3_finalize(s);
    return e;
}

pb_err relay_history_revocations(relay_history *h, uint64_t *after,
                                 relay_revoked_fn fn, void *ctx,
                                 pb_errmsg *why)
{
    sqlite3_stmt *s = prepare(h, "SELECT id, room, name, token_id FROM "
                                 "revoked WHERE id > ?1 ORDER BY id");
    if (!s)
        return db_fail(h, why, "cannot read the revocations");
    sqlite3_bind_int64(s, 1, (sqlite3_int64)*after);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        *after = (uint64_t)sqlite3_column_int64(s, 0);
        fn(ctx, (const char *)sqlite3_column_text(s, 1),
           (const char *)sqlite3_column_text(s, 2),
           (const char *)sqlite3_column_text(s, 3));
    }
    pb_err e = rc == SQLITE_DONE
                   ? PB_OK
                   : db_fail(h, why, "cannot read the revocations");
    sqlite3_finalize(s);
    return e;
}
