/* test_lockstep.c — the relay's timing rules (relay/lockstep.c): apply
 * times with and without a tempo, the lead that grows for a slow runtime
 * and comes back down, commit spread and skew from acks (catch-up commits
 * left out), when stats settle, and their round trip through a real SQLite
 * history — including one written before they were recorded. */
#include "../check.h"
#include "lockstep.h" /* relay/'s private header */

#include <sqlite3.h>
#include <unistd.h>

static char dir[256];

static int setup(void)
{
    if (pb_init())
        return 1;
    snprintf(dir, sizeof dir, "/tmp/pb-lockstep-XXXXXX");
    return mkdtemp(dir) ? 0 : 1;
}

#define S 1000000ull /* µs per second */

TEST(apply_time_without_tempo_is_created_plus_lead)
{
    CHECK_EQ_INT(relay_apply_time(1000 * S, 50000, 0, 0), 1000 * S + 50000);
    /* a quantum without a tempo means nothing */
    CHECK_EQ_INT(relay_apply_time(1000 * S, 50000, 0, 4), 1000 * S + 50000);
    CHECK_EQ_INT(relay_apply_time(1000 * S, 50000, 120, 0), 1000 * S + 50000);
}

TEST(apply_time_moves_to_the_next_quantum)
{
    /* 120 BPM, 4 beats: a boundary every 2 s, counted from the epoch */
    CHECK_EQ_INT(relay_apply_time(1001 * S, 50000, 120, 4), 1002 * S);
    CHECK_EQ_INT(relay_apply_time(1002 * S - 50000, 50000, 120, 4), 1002 * S);
    CHECK_EQ_INT(relay_apply_time(1002 * S - 49999, 50000, 120, 4), 1004 * S);
    /* 90 BPM, 3 beats: every 2 s as well; 100 BPM, 1 beat: every 0.6 s */
    CHECK_EQ_INT(relay_apply_time(1000 * S + 1, 0, 90, 3), 1002 * S);
    uint64_t t = relay_apply_time(1000 * S + 1, 50000, 100, 1);
    CHECK(t >= 1000 * S + 50001);
    CHECK_EQ_INT(t % 600000, 0);
    /* never before created + lead, for odd tempos too */
    for (uint64_t c = 1700000000 * S; c < 1700000000 * S + 5 * S; c += 77777) {
        uint64_t a = relay_apply_time(c, 50000, 133.7, 3);
        CHECK(a >= c + 50000);
        CHECK(a < c + 50000 + (uint64_t)(3 * 60e6 / 133.7) + 1);
    }
}

/* Issue 22, tempo freeze: a tempo of 1e-12 BPM made the next quantum
 * boundary millennia away (and overflowed the uint64 casts). Settings out
 * of bounds are refused, and an apply time is never quantised onto a
 * boundary further than one bounded quantum ahead. */
TEST(apply_time_never_further_than_lead_plus_one_bounded_quantum)
{
    uint64_t c = 1700000000 * S;
    uint64_t bound = c + 50000 + PB_MAX_QUANTUM_US;
    CHECK(relay_apply_time(c, 50000, 1e-9, 4) <= bound);
    CHECK(relay_apply_time(c, 50000, 1e-12, 64) <= bound);
    CHECK(relay_apply_time(c, 50000, 0.5, 1) <= bound);
    /* the slowest room allowed: PB_MIN_TEMPO_BPM, one beat a quantum */
    CHECK(relay_apply_time(c, 50000, PB_MIN_TEMPO_BPM, 1) <= bound);
}

TEST(room_settings_out_of_bounds_are_refused)
{
    pb_errmsg why;
    pb_room r = {120, 4, 50000};
    CHECK_EQ_INT(relay_room_settings_check(&r, &why), PB_OK);
    r = (pb_room){0, 0, 0};
    CHECK_EQ_INT(relay_room_settings_check(&r, &why), PB_OK);
    r = (pb_room){1e-9, 4, 0};
    CHECK_EQ_INT(relay_room_settings_check(&r, &why), PB_ERR_FIELD_RANGE);
    CHECK(strstr(why.text, "tempo") != NULL);
    r = (pb_room){PB_MAX_TEMPO_BPM + 1, 4, 0};
    CHECK_EQ_INT(relay_room_settings_check(&r, &why), PB_ERR_FIELD_RANGE);
    r = (pb_room){-1, 0, 0};
    CHECK_EQ_INT(relay_room_settings_check(&r, &why), PB_ERR_FIELD_RANGE);
    /* 2 BPM, 4 beats: a quantum of 120 s, over PB_MAX_QUANTUM_US */
    r = (pb_room){2, 4, 0};
    CHECK_EQ_INT(relay_room_settings_check(&r, &why), PB_ERR_FIELD_RANGE);
    CHECK(strstr(why.text, "quantum") != NULL);
    r = (pb_room){PB_MIN_TEMPO_BPM, 1, 0};
    CHECK_EQ_INT(relay_room_settings_check(&r, &why), PB_OK);
    r = (pb_room){120, 4, PB_MAX_LEAD_US + 1};
    CHECK_EQ_INT(relay_room_settings_check(&r, &why), PB_ERR_FIELD_RANGE);
    r = (pb_room){120, 4, PB_MAX_LEAD_US};
    CHECK_EQ_INT(relay_room_settings_check(&r, &why), PB_OK);
}

/* A runtime not seen before, in the room since joined_us. */
static relay_ls_runtime *fresh(uint64_t joined_us)
{
    static relay_ls_runtime rts[256];
    static unsigned n;
    relay_ls_runtime *rt = &rts[n++ % 256];
    *rt = (relay_ls_runtime){.joined_us = joined_us};
    return rt;
}

static pb_ack ack(uint64_t seq, pb_ack_state st, uint64_t commit_at)
{
    pb_ack a;
    memset(&a, 0, sizeof a);
    a.seq = seq;
    a.state = st;
    a.commit_at_us = commit_at;
    return a;
}

TEST(lead_grows_for_a_slow_runtime_and_comes_back)
{
    relay_lockstep ls;
    memset(&ls, 0, sizeof ls);
    uint64_t now = 5000 * S;
    CHECK_EQ_INT(relay_lockstep_lead(&ls, 50000), 50000);
    relay_lockstep_patch(&ls, 1, now, now + 50000, now + 2000);
    /* fast runtimes: 10 ms from creation to prepared; the default stays */
    pb_ack p = ack(1, PB_ACK_PREPARED, 0);
    relay_lockstep_ack(&ls, fresh(now - S), &p, now + 10000, NULL);
    CHECK_EQ_INT(relay_lockstep_lead(&ls, 50000), 50000);
    /* one runtime needs 200 ms: the lead becomes 200 * 1.5 + 10 ms */
    relay_lockstep_ack(&ls, fresh(now - S), &p, now + 200000, NULL);
    CHECK_EQ_INT(relay_lockstep_lead(&ls, 50000), 310000);
    /* a runtime that joined after the broadcast prepared by catch-up: not
     * a measure of the lead */
    relay_lockstep_ack(&ls, fresh(now + 3000), &p, now + 900000, NULL);
    CHECK_EQ_INT(relay_lockstep_lead(&ls, 50000), 310000);
    /* bounded (two runtimes that need 60 s: one alone is capped, see
     * one_runtime_cannot_push_the_lead_far) */
    relay_lockstep_ack(&ls, fresh(now - S), &p, now + 60 * S, NULL);
    relay_lockstep_ack(&ls, fresh(now - S), &p, now + 60 * S, NULL);
    CHECK_EQ_INT(relay_lockstep_lead(&ls, 50000), RELAY_LS_LEAD_MAX_US);
    /* RELAY_LS_LEAD_WINDOW later patches without slow runtimes: back */
    for (uint64_t s = 2; s < 2 + RELAY_LS_LEAD_WINDOW; s++)
        relay_lockstep_patch(&ls, s, now + s * S, now + s * S + 50000,
                             now + s * S);
    CHECK_EQ_INT(relay_lockstep_lead(&ls, 50000), 50000);
}

/* Issue 22, item 6: a runtime that sends `committed` for one seq again
 * and again was counted every time, and corrupted the stored spread. */
TEST(a_runtime_commit_counts_once_per_patch)
{
    relay_lockstep ls;
    memset(&ls, 0, sizeof ls);
    uint64_t now = 7000 * S, apply = now + 50000;
    relay_lockstep_patch(&ls, 9, now, apply, now + 1000);
    relay_ls_runtime honest = {.joined_us = now - S};
    relay_ls_runtime liar = {.joined_us = now - S};
    pb_ack a = ack(9, PB_ACK_COMMITTED, apply + 100);
    CHECK(relay_lockstep_ack(&ls, &honest, &a, apply + 2000, NULL));
    pb_ack l = ack(9, PB_ACK_COMMITTED, apply + 300);
    CHECK(relay_lockstep_ack(&ls, &liar, &l, apply + 2000, NULL));
    for (int i = 0; i < 100; i++) {
        l.commit_at_us = apply + 5 * S + (uint64_t)i;
        CHECK(!relay_lockstep_ack(&ls, &liar, &l, apply + 2000, NULL));
    }
    relay_commit_stats st;
    REQUIRE(relay_lockstep_stats(&ls, 9, &st));
    CHECK_EQ_INT(st.runtimes, 2);
    CHECK_EQ_INT(st.spread_us, 200);
    CHECK_EQ_INT(st.max_late_us, 300);
}

/* Issue 22, item 6: one runtime that delays its `prepared` acks pushed the
 * lead of every later patch of the room to 2 s. Alone it moves the lead
 * by at most RELAY_LS_SOLO_US over what the next slowest runtime needs. */
TEST(one_runtime_cannot_push_the_lead_far)
{
    relay_lockstep ls;
    memset(&ls, 0, sizeof ls);
    uint64_t now = 5000 * S;
    relay_lockstep_patch(&ls, 1, now, now + 50000, now + 2000);
    relay_ls_runtime fast = {.joined_us = now - S};
    relay_ls_runtime slow = {.joined_us = now - S};
    relay_ls_runtime slow2 = {.joined_us = now - S};
    pb_ack p = ack(1, PB_ACK_PREPARED, 0);
    relay_lockstep_ack(&ls, &fast, &p, now + 10000, NULL);
    /* it acks after 60 s, and again: as if it needed 60 s */
    relay_lockstep_ack(&ls, &slow, &p, now + 60 * S, NULL);
    relay_lockstep_ack(&ls, &slow, &p, now + 61 * S, NULL);
    uint64_t need = 10000 + RELAY_LS_SOLO_US;
    CHECK_EQ_INT(relay_lockstep_lead(&ls, 50000), need + need / 2 + 10000);
    CHECK(relay_lockstep_lead(&ls, 50000) < RELAY_LS_LEAD_MAX_US);
    /* two runtimes that need it: the lead follows, up to its bound */
    relay_lockstep_ack(&ls, &slow2, &p, now + 60 * S, NULL);
    CHECK_EQ_INT(relay_lockstep_lead(&ls, 50000), RELAY_LS_LEAD_MAX_US);
}

TEST(spread_and_skew_from_live_commits_only)
{
    relay_lockstep ls;
    memset(&ls, 0, sizeof ls);
    uint64_t now = 7000 * S, apply = now + 50000;
    relay_lockstep_patch(&ls, 9, now, apply, now + 1000);
    int64_t skew = 0;
    uint64_t at[5] = {apply + 300, apply + 100, apply + 200, apply + 900,
                      apply + 250};
    for (int i = 0; i < 5; i++) {
        pb_ack a = ack(9, PB_ACK_COMMITTED, at[i]);
        CHECK(relay_lockstep_ack(&ls, fresh(now - S), &a, apply + 2000, &skew));
    }
    /* the last one against the median of five (apply + 250) */
    CHECK_EQ_INT(skew, 0);
    pb_ack late = ack(9, PB_ACK_COMMITTED, apply + 900);
    /* a catch-up commit (joined after the broadcast) does not count */
    CHECK(!relay_lockstep_ack(&ls, fresh(now + 5000), &late, apply + 9 * S,
                              &skew));
    /* nor does an ack for a patch that is not tracked */
    pb_ack other = ack(10, PB_ACK_COMMITTED, apply);
    CHECK(!relay_lockstep_ack(&ls, fresh(now - S), &other, apply, &skew));
    relay_commit_stats st;
    REQUIRE(relay_lockstep_stats(&ls, 9, &st));
    CHECK_EQ_INT(st.runtimes, 5);
    CHECK_EQ_INT(st.spread_us, 800);
    CHECK_EQ_INT(st.max_late_us, 900);
    CHECK_EQ_INT(st.apply_us, apply);
    /* a runtime that committed early shows a negative lateness */
    relay_lockstep_patch(&ls, 11, now, apply, now + 1000);
    pb_ack early = ack(11, PB_ACK_COMMITTED, apply - 700);
    CHECK(relay_lockstep_ack(&ls, fresh(now - S), &early, apply, &skew));
    REQUIRE(relay_lockstep_stats(&ls, 11, &st));
    CHECK_EQ_INT(st.max_late_us, -700);
    CHECK_EQ_INT(st.spread_us, 0);
}

TEST(stats_settle_after_the_apply_time)
{
    relay_lockstep ls;
    memset(&ls, 0, sizeof ls);
    uint64_t now = 9000 * S, apply = now + 50000;
    relay_lockstep_patch(&ls, 1, now, apply, now);
    pb_ack a = ack(1, PB_ACK_COMMITTED, apply + 10);
    relay_lockstep_ack(&ls, fresh(now - S), &a, apply + 10, NULL);
    relay_commit_stats out[RELAY_LS_SLOTS];
    CHECK_EQ_INT(relay_lockstep_take_settled(&ls, apply + 100, false, out,
                                             RELAY_LS_SLOTS),
                 0);
    CHECK_EQ_INT(relay_lockstep_take_settled(&ls,
                                             apply + RELAY_LS_SETTLE_US + 1,
                                             false, out, RELAY_LS_SLOTS),
                 1);
    CHECK_EQ_INT(out[0].seq, 1);
    /* taken: nothing more until another ack changes it */
    CHECK_EQ_INT(relay_lockstep_take_settled(&ls, apply + 9 * S, true, out,
                                             RELAY_LS_SLOTS),
                 0);
    /* at shutdown everything changed is taken, settled or not */
    relay_lockstep_patch(&ls, 2, now, apply, now);
    pb_ack b = ack(2, PB_ACK_COMMITTED, apply);
    relay_lockstep_ack(&ls, fresh(now - S), &b, apply, NULL);
    CHECK_EQ_INT(
        relay_lockstep_take_settled(&ls, apply, true, out, RELAY_LS_SLOTS), 1);
}

static relay_commit_stats got[8];
static int n_got;

static void collect(void *ctx, const relay_commit_stats *st)
{
    (void)ctx;
    if (n_got < 8)
        got[n_got++] = *st;
}

TEST(stats_round_trip_through_the_history)
{
    char path[400];
    snprintf(path, sizeof path, "%s/history.db", dir);
    pb_errmsg why;
    relay_history *h = relay_history_open_sqlite(path, &why);
    REQUIRE(h);
    relay_commit_stats st[2] = {{3, 10, 1000, 420, 800, 20000},
                                {4, 9, 2000, 1500, -30, 30000}};
    CHECK_EQ_INT(relay_history_put_commit_stats(h, "jam", st, 2, &why), 0);
    /* newer figures for seq 4 replace the old ones */
    st[1].runtimes = 10;
    CHECK_EQ_INT(relay_history_put_commit_stats(h, "jam", &st[1], 1, &why), 0);
    relay_history_close(h);
    h = relay_history_open_readonly(path, &why);
    REQUIRE(h);
    n_got = 0;
    CHECK_EQ_INT(relay_history_commit_stats(h, "jam", 1, UINT64_MAX, collect,
                                            NULL, &why),
                 0);
    REQUIRE(n_got == 2);
    CHECK_EQ_INT(got[0].seq, 3);
    CHECK_EQ_INT(got[0].spread_us, 420);
    CHECK_EQ_INT(got[1].runtimes, 10);
    CHECK_EQ_INT(got[1].max_late_us, -30);
    n_got = 0;
    CHECK_EQ_INT(relay_history_commit_stats(h, "other", 1, UINT64_MAX, collect,
                                            NULL, &why),
                 0);
    CHECK_EQ_INT(n_got, 0);
    relay_history_close(h);
}

TEST(history_from_before_stats_reads_as_none)
{
    char path[400];
    snprintf(path, sizeof path, "%s/old.db", dir);
    pb_errmsg why;
    relay_history *h = relay_history_open_sqlite(path, &why);
    REQUIRE(h);
    relay_history_close(h);
    sqlite3 *db;
    REQUIRE(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "DROP TABLE commits", NULL, NULL, NULL) ==
          SQLITE_OK);
    sqlite3_close(db);
    h = relay_history_open_readonly(path, &why);
    REQUIRE(h);
    n_got = 0;
    CHECK_EQ_INT(relay_history_commit_stats(h, "jam", 1, UINT64_MAX, collect,
                                            NULL, &why),
                 0);
    CHECK_EQ_INT(n_got, 0);
    relay_history_close(h);
}

static const pb_test tests[] = {
    T(apply_time_without_tempo_is_created_plus_lead),
    T(apply_time_moves_to_the_next_quantum),
    T(apply_time_never_further_than_lead_plus_one_bounded_quantum),
    T(room_settings_out_of_bounds_are_refused),
    T(lead_grows_for_a_slow_runtime_and_comes_back),
    T(a_runtime_commit_counts_once_per_patch),
    T(one_runtime_cannot_push_the_lead_far),
    T(spread_and_skew_from_live_commits_only),
    T(stats_settle_after_the_apply_time),
    T(stats_round_trip_through_the_history),
    T(history_from_before_stats_reads_as_none),
};

PB_TEST_MAIN(tests, setup)
