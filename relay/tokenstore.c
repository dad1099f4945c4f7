/* tokenstore.c — revoked tokens in the history file (revoke.c reads them
 * every second):
 *   revoked(id, room, name, token_id, at_s)  by room and name, or one
 *                                            token by its id */
#include "history_db.h"

pb_err relay_history_revoke(relay_history *h, const char *room,
                            const char *name, const char *token_id,
                            uint64_t at_s, pb_errmsg *why)
{
    TRY_HISTORY(relay_history_ready(h, why));
    sqlite3_stmt *s =
        relay_history_prepare(h, "INSERT INTO revoked(room, name, token_id, "
                                 "at_s) VALUES (?1, ?2, ?3, ?4)");
    if (!s)
        return relay_history_fail(h, why, "cannot record the revocation");
    sqlite3_bind_text(s, 1, room, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, token_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)at_s);
    pb_err e = sqlite3_step(s) == SQLITE_DONE
                   ? PB_OK
                   : relay_history_fail(h, why, "cannot record the revocation");
    sqlite3_finalize(s);
    return e;
}

pb_err relay_history_revocations(relay_history *h, uint64_t *after,
                                 relay_revoked_fn fn, void *ctx, pb_errmsg *why)
{
    sqlite3_stmt *s =
        relay_history_prepare(h, "SELECT id, room, name, token_id FROM "
                                 "revoked WHERE id > ?1 ORDER BY id");
    if (!s)
        return relay_history_fail(h, why, "cannot read the revocations");
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
                   : relay_history_fail(h, why, "cannot read the revocations");
    sqlite3_finalize(s);
    return e;
}
