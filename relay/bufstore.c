/* bufstore.c — the rooms' shared buffers in the history file
 * (docs/PROTOCOL.md § Shared buffers). The relay keeps a buffer as the
 * Yjs updates it accepted, as opaque bytes, in the order it accepted them:
 *   buffers(room, id, name, lang, open, base_useq)   a room's buffers; ids
 *                                                    are never reused
 *   buffer_updates(room, buffer, useq, data)         its stored updates
 * An update is written (synchronous=FULL) before anyone hears of it, so an
 * acknowledged edit survives a crash. A compaction replaces the rows up
 * to some useq by one row at that useq, in one transaction. */
#include "history_db.h"

#include <stdlib.h>
#include <string.h>

/* The row of one buffer with what it stores (ids in order). */
static const char list_sql[] =
    "SELECT b.id, b.name, b.lang, b.open, b.base_useq,"
    " COALESCE(MAX(u.useq), 0), COUNT(u.useq), COALESCE(SUM(LENGTH(u.data)), 0)"
    " FROM buffers b LEFT JOIN buffer_updates u"
    " ON u.room = b.room AND u.buffer = b.id"
    " WHERE b.room = ?1 GROUP BY b.id ORDER BY b.id";

pb_err relay_history_buffers(relay_history *h, const char *room,
                             void (*fn)(void *ctx, const relay_buffer_row *b),
                             void *ctx, pb_errmsg *why)
{
    TRY_HISTORY(relay_history_ready(h, why));
    sqlite3_stmt *s = relay_history_prepare(h, list_sql);
    if (!s)
        return relay_history_fail(h, why, "cannot read the room's buffers");
    sqlite3_bind_text(s, 1, room, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        relay_buffer_row b = {0};
        b.id = (uint64_t)sqlite3_column_int64(s, 0);
        const char *name = (const char *)sqlite3_column_text(s, 1);
        b.name = name ? name : "";
        const char *lang = (const char *)sqlite3_column_text(s, 2);
        b.lang = pb_lang_parse(pb_cstr(lang ? lang : ""));
        if (b.lang == PB_LANG_NONE)
            b.lang = PB_LANG_C; /* written by a newer relay: show it as C */
        b.open = sqlite3_column_int(s, 3) != 0;
        b.base_useq = (uint64_t)sqlite3_column_int64(s, 4);
        b.last_useq = (uint64_t)sqlite3_column_int64(s, 5);
        b.n_updates = (uint32_t)sqlite3_column_int64(s, 6);
        b.bytes = (uint64_t)sqlite3_column_int64(s, 7);
        fn(ctx, &b);
    }
    pb_err e =
        rc == SQLITE_DONE
            ? PB_OK
            : relay_history_fail(h, why, "cannot read the room's buffers");
    sqlite3_finalize(s);
    return e;
}

/* Runs one prepared write statement; PB_OK when it is done. */
static pb_err step_write(relay_history *h, sqlite3_stmt *s, pb_errmsg *why,
                         const char *what)
{
    if (!s)
        return relay_history_fail(h, why, what);
    int rc = sqlite3_step(s);
    pb_err e = rc == SQLITE_DONE ? PB_OK : relay_history_fail(h, why, what);
    sqlite3_finalize(s);
    return e;
}

pb_err relay_history_buffer_set(relay_history *h, const char *room,
                                const relay_buffer_row *b, pb_errmsg *why)
{
    TRY_HISTORY(relay_history_begin(h, why));
    sqlite3_stmt *s = relay_history_prepare(
        h, "INSERT INTO buffers(room, id, name, lang, open, base_useq) "
           "VALUES (?1, ?2, ?3, ?4, ?5, 0) ON CONFLICT(room, id) DO UPDATE "
           "SET name = ?3, lang = ?4, open = ?5");
    if (s) {
        sqlite3_bind_text(s, 1, room, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)b->id);
        sqlite3_bind_text(s, 3, b->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, pb_lang_name(b->lang), -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 5, b->open);
    }
    pb_err e = step_write(h, s, why, "cannot record a buffer");
    return relay_history_end(h, e, why);
}

/* A statement for sql with ?1 the room, ?2 the buffer and ?3 a useq (every
 * statement on one buffer's rows takes them); NULL on failure. */
static sqlite3_stmt *on_buffer(relay_history *h, const char *sql,
                               const char *room, uint64_t buffer, uint64_t useq)
{
    sqlite3_stmt *s = relay_history_prepare(h, sql);
    if (s) {
        sqlite3_bind_text(s, 1, room, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)buffer);
        sqlite3_bind_int64(s, 3, (sqlite3_int64)useq);
    }
    return s;
}

static sqlite3_stmt *insert_update(relay_history *h, const char *room,
                                   uint64_t buffer, uint64_t useq,
                                   const uint8_t *data, size_t len)
{
    sqlite3_stmt *s = on_buffer(h,
                                "INSERT INTO buffer_updates(room, buffer, "
                                "useq, data) VALUES (?1, ?2, ?3, ?4)",
                                room, buffer, useq);
    if (s)
        sqlite3_bind_blob(s, 4, len ? (const void *)data : "", (int)len,
                          SQLITE_STATIC);
    return s;
}

pb_err relay_history_buffer_append(relay_history *h, const char *room,
                                   uint64_t buffer, uint64_t useq,
                                   const uint8_t *data, size_t len,
                                   pb_errmsg *why)
{
    TRY_HISTORY(relay_history_begin(h, why));
    pb_err e = step_write(h, insert_update(h, room, buffer, useq, data, len),
                          why, "cannot store a buffer update");
    return relay_history_end(h, e, why);
}

pb_err relay_history_buffer_compact(relay_history *h, const char *room,
                                    uint64_t buffer, uint64_t useq,
                                    const uint8_t *data, size_t len,
                                    pb_errmsg *why)
{
    TRY_HISTORY(relay_history_begin(h, why));
    pb_err e = step_write(h,
                          on_buffer(h,
                                    "DELETE FROM buffer_updates WHERE room = "
                                    "?1 AND buffer = ?2 AND useq <= ?3",
                                    room, buffer, useq),
                          why, "cannot compact a buffer");
    if (!e)
        e = step_write(h, insert_update(h, room, buffer, useq, data, len), why,
                       "cannot store a buffer's snapshot");
    if (!e)
        e = step_write(h,
                       on_buffer(h,
                                 "UPDATE buffers SET base_useq = ?3 WHERE "
                                 "room = ?1 AND id = ?2",
                                 room, buffer, useq),
                       why, "cannot record a compaction");
    return relay_history_end(h, e, why);
}

pb_err relay_history_buffer_updates(relay_history *h, const char *room,
                                    uint64_t buffer, relay_update_fn fn,
                                    void *ctx, pb_errmsg *why)
{
    TRY_HISTORY(relay_history_ready(h, why));
    sqlite3_stmt *s = relay_history_prepare(
        h, "SELECT useq, data FROM buffer_updates WHERE room = ?1 "
           "AND buffer = ?2 ORDER BY useq");
    if (!s)
        return relay_history_fail(h, why, "cannot read a buffer");
    sqlite3_bind_text(s, 1, room, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)buffer);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const uint8_t *data = sqlite3_column_blob(s, 1);
        size_t len = (size_t)sqlite3_column_bytes(s, 1);
        if (fn(ctx, (uint64_t)sqlite3_column_int64(s, 0), data, len)) {
            rc = SQLITE_DONE;
            break;
        }
    }
    pb_err e = rc == SQLITE_DONE
                   ? PB_OK
                   : relay_history_fail(h, why, "cannot read a buffer");
    sqlite3_finalize(s);
    return e;
}
