/* history_db.h — what history.c lends the other files that keep tables in
 * the history database (bufstore.c): its handle, and one way to write
 * durably and to fail. Private to relay/. */
#ifndef PB_RELAY_HISTORY_DB_H
#define PB_RELAY_HISTORY_DB_H

#include "relay.h"

#include <sqlite3.h>

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

#endif
