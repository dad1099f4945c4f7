/* history.c — the room histories in one SQLite file: opening it (WAL
 * journal, synchronous=FULL, private to this user), its schema, the
 * statements every handle keeps prepared, and the one way the files that
 * keep its tables write and fail (history_db.h). The tables, by file:
 *   patches, vars, epochs        the rooms' chains (patchstore.c)
 *   rooms, commits               settings and lockstep figures (roomstore.c)
 *   revoked                      revoked tokens (tokenstore.c)
 *   buffers, buffer_updates      the rooms' shared buffers (bufstore.c)
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

/* ---- for the files that keep the tables (history_db.h) ------------------ */

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
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(h->db, sql, -1, &s, NULL) != SQLITE_OK) {
        sqlite3_finalize(s);
        return NULL;
    }
    return s;
}

sqlite3_stmt *relay_history_query(relay_history *h, int which,
                                  const char *room)
{
    sqlite3_stmt *s = h->q[which];
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (room)
        sqlite3_bind_text(s, 1, room, -1, SQLITE_STATIC);
    return s;
}

void relay_history_rollback(relay_history *h)
{
    rollback(h);
}

