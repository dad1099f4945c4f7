/* roomstore.c — what the history file keeps about a room besides its
 * chain:
 *   rooms(room, tempo_bpm, quantum, lead_us) room settings
 *   commits(room, seq, runtimes, apply_us, spread_us, max_late_us, need_us)
 *                                            how well the runtimes kept time
 *                                            (lockstep.c); measurements, so
 *                                            written with synchronous=NORMAL
 * A history written by an older relay and opened read-only may lack the
 * commits table, so its statements are prepared on use. */
#include "history_db.h"

#include <string.h>

pb_err relay_history_rooms(relay_history *h,
                           void (*fn)(void *ctx, const char *room,
                                      uint64_t head_seq),
                           void *ctx, pb_errmsg *why)
{
    TRY_HISTORY(relay_history_ready(h, why));
    sqlite3_stmt *s = relay_history_query(h, Q_ROOMS, NULL);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        fn(ctx, relay_history_text(s, 0), (uint64_t)sqlite3_column_int64(s, 1));
    pb_err e = rc == SQLITE_DONE
                   ? PB_OK
                   : relay_history_fail(h, why, "cannot list rooms");
    sqlite3_reset(s);
    return e;
}

pb_err relay_history_get_settings(relay_history *h, const char *room,
                                  pb_room *out, pb_errmsg *why)
{
    memset(out, 0, sizeof *out);
    TRY_HISTORY(relay_history_ready(h, why));
    sqlite3_stmt *s = relay_history_query(h, Q_GET_SETTINGS, room);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        out->tempo_bpm = sqlite3_column_double(s, 0);
        out->quantum = (uint32_t)sqlite3_column_int64(s, 1);
        out->lead_us = (uint64_t)sqlite3_column_int64(s, 2);
    }
    pb_err e = rc == SQLITE_ROW || rc == SQLITE_DONE
                   ? PB_OK
                   : relay_history_fail(h, why, "cannot read room settings");
    sqlite3_reset(s);
    return e;
}

pb_err relay_history_set_settings(relay_history *h, const char *room,
                                  const pb_room *r, pb_errmsg *why)
{
    TRY_HISTORY(relay_history_ready(h, why));
    sqlite3_stmt *s = relay_history_query(h, Q_SET_SETTINGS, room);
    sqlite3_bind_double(s, 2, r->tempo_bpm);
    sqlite3_bind_int64(s, 3, r->quantum);
    sqlite3_bind_int64(s, 4, (sqlite3_int64)r->lead_us);
    int rc = sqlite3_step(s);
    pb_err e = rc == SQLITE_DONE
                   ? PB_OK
                   : relay_history_fail(h, why, "cannot save room settings");
    sqlite3_reset(s);
    return e;
}

pb_err relay_history_put_commit_stats(relay_history *h, const char *room,
                                      const relay_commit_stats *st, uint32_t n,
                                      pb_errmsg *why)
{
    TRY_HISTORY(relay_history_ready(h, why));
    if (!n)
        return PB_OK;
    sqlite3_stmt *s = relay_history_prepare(
        h,
        "INSERT OR REPLACE INTO commits(room, seq, runtimes, apply_us, "
        "spread_us, max_late_us, need_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    if (!s)
        return relay_history_fail(h, why, "cannot record commit times");
    pb_err e = PB_OK;
    /* measurements, not patches: no fsync per batch */
    if (sqlite3_exec(h->db, "PRAGMA synchronous = NORMAL; BEGIN", NULL, NULL,
                     NULL) != SQLITE_OK)
        e = relay_history_fail(h, why, "cannot begin recording commit times");
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
            e = relay_history_fail(h, why, "cannot record commit times");
    }
    sqlite3_finalize(s);
    if (!e && sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        e = relay_history_fail(h, why, "cannot commit the commit times");
    if (e)
        relay_history_rollback(h);
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
    TRY_HISTORY(relay_history_ready(h, why));
    sqlite3_stmt *s = relay_history_prepare(
        h,
        "SELECT seq, runtimes, apply_us, spread_us, max_late_us, need_us "
        "FROM commits WHERE room = ?1 AND seq BETWEEN ?2 AND ?3 ORDER BY seq");
    if (!s && strstr(sqlite3_errmsg(h->db), "no such table"))
        return PB_OK; /* from before the figures were recorded */
    if (!s)
        return relay_history_fail(h, why, "cannot read commit times");
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
    pb_err e = rc == SQLITE_DONE
                   ? PB_OK
                   : relay_history_fail(h, why, "cannot read commit times");
    sqlite3_finalize(s);
    return e;
}
