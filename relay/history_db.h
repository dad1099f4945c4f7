/* history_db.h — what history.c lends the files that keep tables in the
 * history database (patchstore.c, roomstore.c, tokenstore.c, bufstore.c):
 * its handle, its kept statements, and one way to write durably and to
 * fail. Private to relay/. */
#ifndef PB_RELAY_HISTORY_DB_H
#define PB_RELAY_HISTORY_DB_H

#include "relay.h"

#include <sqlite3.h>

/* The statements every handle keeps prepared (their SQL: history.c). */
enum {
    Q_HEAD,
    Q_INSERT_PATCH,
    Q_UPSERT_VAR,
    Q_VARS,
    Q_PATCHES,
    Q_ROOMS,
    Q_GET_SETTINGS,
    Q_SET_SETTINGS,
    Q_GET_EPOCH, /* NULL in a read-only history from before epochs */
    Q_SET_EPOCH, /* likewise */
    Q_COUNT_
};

struct relay_history {
    sqlite3 *db;
    bool sync_normal; /* synchronous=NORMAL could not be set back to FULL */
    bool stuck;       /* a write transaction whose ROLLBACK failed */
    sqlite3_stmt *q[Q_COUNT_];
    char path[4096];
};

/* Returns from the calling function with e if e is an error. */
#define TRY_HISTORY(e)                                                         \
    do {                                                                       \
        pb_err try_ = (e);                                                     \
        if (try_)                                                              \
            return try_;                                                       \
    } while (0)

/* SQLite's last error on h as ours (PB_ERR_NOMEM or PB_ERR_IO), naming the
 * file and what was being done. */
pb_err relay_history_fail(relay_history *h, pb_errmsg *why, const char *what);
/* Ends an earlier write whose rollback failed; call before any use. */
pb_err relay_history_ready(relay_history *h, pb_errmsg *why) PB_WUR;
/* Begins a write transaction that is on disk once relay_history_end
 * commits it (synchronous=FULL). */
pb_err relay_history_begin(relay_history *h, pb_errmsg *why) PB_WUR;
/* Commits the transaction if e is PB_OK, else rolls it back; returns e or
 * the commit's error. */
pb_err relay_history_end(relay_history *h, pb_err e, pb_errmsg *why);
/* A statement for sql, prepared on use (tables a read-only history of an
 * older relay may lack); NULL on failure, the error kept on the handle.
 * The caller finalizes it. */
sqlite3_stmt *relay_history_prepare(relay_history *h, const char *sql);
/* The kept statement which (Q_*), reset, its bindings cleared, and room
 * bound to ?1 unless NULL. */
sqlite3_stmt *relay_history_query(relay_history *h, int which,
                                  const char *room);
/* Ends a failed write transaction. If even ROLLBACK fails, the handle is
 * marked and relay_history_ready ends it before the next use. */
void relay_history_rollback(relay_history *h);

/* A text column, "" for NULL. */
static inline const char *relay_history_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? (const char *)t : "";
}

#endif
