/* test_relay_patches.c — patches through `patchbay serve`, as the room
 * sees them: every member is served while one does not read, a late or
 * returning client gets exactly what it lacks, nothing anyone saw is lost
 * to kill -9, hostile source comes back as diagnostics to its author only,
 * and SIGTERM answers the eval in flight. One behaviour per test; real
 * relays on free loopback ports, real WebSocket clients (client/pbc.h).
 *
 * usage: test_relay_patches PATCHBAY BACKEND [TEST...] */
#include "harness.h"

#include <signal.h>
#include <sys/wait.h>

PB_TEST_RUNNER

static const char *const many_evals[] = {
    "--evals-per-second",  "100000", "--room-evals-per-second", "100000",
    "--max-evals-per-name", "1000",  "--max-evals-per-room",     "1000",
    NULL};

/* Sends n evals of var sources (k = first + i % 10) without waiting. */
static void send_evals(pbc *ed, uint64_t first_req, unsigned n, unsigned v)
{
    char src[256];
    for (unsigned i = 0; i < n; i++) {
        var_source(src, sizeof src, i % 10, v + (i / 10) % 2);
        CHECK(send_eval(ed, first_req + i, src));
    }
}

/* Waits for the diags of reqs first.. first+n-1: each accepted, in seq
 * order from seq first_seq. */
static void expect_accepted(pbc *ed, uint64_t first_req, unsigned n,
                            uint64_t first_seq)
{
    uint32_t ok = 0;
    for (unsigned i = 0; i < n; i++) {
        want w = {PB_T_DIAG, first_req + i, false, false, 0,
                  false,     false,         0,     0,     ""};
        if (wait_for(ed, &w, 60000) && w.ok && w.seq == first_seq + i)
            ok++;
    }
    CHECK_EQ_INT(ok, n);
}

static void report(const patch_log *l)
{
    if (l->errors)
        fprintf(stderr, "  %s\n", l->first_error);
}

/* ---- slow consumers ------------------------------------------------------ */

/* A viewer that stops reading and keeps asking for the history passes its
 * queue bound: it is told (PB_ERR_SLOW_CONSUMER) and dropped, while the
 * room goes on: a new patch reaches the runtime. */
TEST(a_slow_consumer_is_told_and_dropped_while_others_are_served)
{
    const char *const opts[] = {"--max-queue-bytes", "262144", NULL};
    relay r;
    REQUIRE(serve_start(&r, "slow", opts));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    pbc *slow = join(&r, "jam", PB_ROLE_VIEWER, "slow", NULL);
    pbc *rt = join(&r, "jam", PB_ROLE_RUNTIME, "rt", NULL);
    REQUIRE(ed && slow && rt);
    /* ten patches of ~40 KB source each */
    size_t pad = 40 * 1024;
    char *src = malloc(pad + 256);
    REQUIRE(src);
    for (unsigned i = 0; i < 10; i++) {
        var_source(src, 256, i, i);
        size_t l = strlen(src);
        memset(src + l, ' ', pad);
        snprintf(src + l + pad, 64, "/* %u */\n", i);
        CHECK_EQ_INT(eval(ed, 1 + i, src, NULL), i + 1);
    }
    /* the slow client stops reading and asks for the history again and
     * again: ~400 KB an answer */
    pbc_pause_reading(slow, true);
    pb_errmsg why;
    for (int i = 0; i < 60; i++) {
        pb_frame q = {.type = PB_T_HISTORY_REQ};
        q.history_req.req = 1 + (uint64_t)i;
        q.history_req.mode = PB_HISTORY_RANGE;
        CHECK(pbc_send(slow, &q, &why) == 0);
    }
    CHECK(pbc_flush(slow, 10000, &why) == PB_OK); /* reading stays paused */
    /* the relay drops it (its log says so) and gives a peer that does not
     * read RELAY_CLOSE_GRACE_MS to take the reason: the slow one reads
     * again then, so that a loaded machine's slow eval below cannot make
     * it miss the reason */
    uint64_t until = now_ms() + 10000;
    while (!log_has(&r, "slow consumer") && now_ms() < until)
        sleep_ms(20);
    CHECK(log_has(&r, "slow consumer"));
    CHECK(ping_ok(ed)); /* the others are answered meanwhile */
    /* what was queued is gone, the reason is there, then the close */
    pbc_pause_reading(slow, false);
    CHECK(expect_error(slow, PB_ERR_SLOW_CONSUMER, true));
    CHECK(expect_closed(slow));
    pbc_close(slow);
    /* and the room goes on */
    patch_log l;
    patch_log_init(&l, &r, "jam");
    var_source(src, 256, 99, 1);
    uint64_t seq = eval(ed, 50, src, NULL);
    free(src);
    CHECK_EQ_INT(seq, 11);
    CHECK(collect_until(rt, &l, seq, 10000));
    CHECK(ping_ok(ed));
    pbc_close(ed);
    pbc_close(rt);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

/* ---- late and returning clients ------------------------------------------ */

/* 200 patches over 10 vars, then a late joiner gets exactly the current
 * state (every statement, modules only for the latest of each var), then
 * the next patch live, next in its chain. */
TEST(a_late_joiner_gets_the_current_state_then_the_next_patch_live)
{
    relay r;
    REQUIRE(serve_start(&r, "late", many_evals));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    send_evals(ed, 1, 200, 0); /* pipelined: the relay keeps their order */
    expect_accepted(ed, 1, 200, 1);
    pbc_welcome w;
    pbc *late = join(&r, "jam", PB_ROLE_RUNTIME, "late", &w);
    REQUIRE(late);
    CHECK_EQ_INT(w.head_seq, 200);
    patch_log l;
    patch_log_init(&l, &r, "jam");
    CHECK(collect_until(late, &l, 200, 30000));
    report(&l);
    CHECK_EQ_INT(l.errors, 0);
    CHECK_EQ_INT(l.n_patches, 200);
    CHECK_EQ_INT(l.n_modules, 10);  /* seq 191..200, one per var */
    CHECK(l.n_history_frames >= 4); /* 64 items a frame at most */
    char src[256];
    var_source(src, sizeof src, 3, 7);
    CHECK_EQ_INT(eval(ed, 500, src, NULL), 201);
    CHECK(collect_until(late, &l, 201, 10000));
    CHECK_EQ_INT(l.n_patches, 201);
    CHECK_EQ_INT(l.errors, 0);
    pbc_close(late);
    pbc_close(ed);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

/* A runtime that joins while 30 evals stream in gets every patch once, in
 * order (catch-up up to the broadcast head, live after it). */
TEST(joining_while_evals_stream_misses_nothing_and_doubles_nothing)
{
    relay r;
    REQUIRE(serve_start(&r, "stream", many_evals));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    send_evals(ed, 1, 30, 2);
    pbc *mid = join(&r, "jam", PB_ROLE_RUNTIME, "mid", NULL);
    REQUIRE(mid);
    patch_log m;
    patch_log_init(&m, &r, "jam");
    CHECK(collect_until(mid, &m, 30, 60000));
    report(&m);
    CHECK_EQ_INT(m.errors, 0);
    CHECK_EQ_INT(m.n_patches, 30);
    for (uint32_t i = 0; i < m.n_patches && i < 512; i++)
        if (m.seqs[i] != i + 1) {
            CHECK(m.seqs[i] == i + 1);
            break;
        }
    pbc_close(mid);
    pbc_close(ed);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

/* A client that holds seq 7 of 10 says since_seq 7 and gets 8..10 only. */
TEST(a_returning_client_gets_only_what_it_missed)
{
    relay r;
    REQUIRE(serve_start(&r, "back", many_evals));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    pbc *rt = join(&r, "jam", PB_ROLE_RUNTIME, "rt", NULL);
    REQUIRE(ed && rt);
    send_evals(ed, 1, 10, 0);
    patch_log all;
    patch_log_init(&all, &r, "jam");
    CHECK(collect_until(rt, &all, 10, 60000));
    REQUIRE(all.n_patches == 10);
    char tok[PB_MAX_TOKEN_BYTES + 1];
    make_token(&r, "jam", PB_ROLE_RUNTIME, "back", 3600, tok);
    pbc_target t;
    target(&r, "jam", tok, &t);
    pb_errmsg why;
    pbc *back = pbc_open(&t, 5000, &why);
    REQUIRE(back);
    pb_frame h = {.type = PB_T_HELLO};
    h.hello.token = pb_cstr(tok);
    h.hello.since_seq = 7;
    REQUIRE(send_now(back, &h, &why) == 0);
    patch_log b;
    patch_log_init(&b, &r, "jam");
    b.chain.seq = 7; /* as the client holds it */
    memcpy(b.chain.hash, all.hashes[6], PB_HASH_BYTES);
    CHECK(collect_until(back, &b, 10, 10000));
    report(&b);
    CHECK_EQ_INT(b.n_patches, 3);
    CHECK_EQ_INT(b.errors, 0);
    pbc_close(back);
    pbc_close(rt);
    pbc_close(ed);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

/* ---- durability ---------------------------------------------------------- */

/* Counts a recorded patch whose hash differs from what the client saw. */
static int same_as_seen(void *ctx, const relay_patch_row *p)
{
    patch_log *l = ctx;
    for (uint32_t i = 0; i < l->n_patches && i < 512; i++)
        if (l->seqs[i] == p->seq &&
            memcmp(l->hashes[i], p->hash, PB_HASH_BYTES) != 0)
            l->errors++;
    return 0;
}

/* kill -9 while evals are in flight: every patch the runtime saw is the
 * recorded one, and the recorded chain verifies from seq 1. */
TEST(kill9_loses_no_patch_anyone_saw)
{
    relay r;
    REQUIRE(serve_start(&r, "kill", many_evals));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    pbc *rt = join(&r, "jam", PB_ROLE_RUNTIME, "rt", NULL);
    REQUIRE(ed && rt);
    send_evals(ed, 1, 60, 0);
    patch_log l;
    patch_log_init(&l, &r, "jam");
    CHECK(collect_until(rt, &l, 15, 60000));
    uint8_t pk[PB_PUBLICKEY_BYTES];
    memcpy(pk, r.keys.pk, sizeof pk);
    serve_kill9(&r);
    /* drain what reached the runtime before the kill */
    pb_errmsg why;
    while (pbc_wait(rt, 100, collect, &l, &why) != PBC_WAIT_CLOSED)
        ;
    pbc_close(rt);
    pbc_close(ed);
    CHECK_EQ_INT(l.errors, 0);
    REQUIRE(l.n_patches >= 15);
    char db[400];
    snprintf(db, sizeof db, "%s/history.db", r.dir);
    relay_history *h = relay_history_open_readonly(db, &why);
    REQUIRE(h);
    uint64_t head = 0, n = 0;
    uint8_t head_hash[PB_HASH_BYTES];
    REQUIRE(relay_history_head(h, "jam", &head, head_hash, &why) == PB_OK);
    CHECK(head >= l.last_seq);
    CHECK(relay_history_verify(h, "jam", pk, &n, &why) == PB_OK);
    CHECK_EQ_INT(n, head);
    CHECK(relay_history_patches(h, "jam", 1, UINT64_MAX, false, same_as_seen,
                                &l, &why) == PB_OK);
    CHECK_EQ_INT(l.errors, 0);
    relay_history_close(h);
    relay_keys_close(&r.keys);
}

/* After kill -9, a relay started on the same data directory has the same
 * key and head, and the next patch continues the chain. */
TEST(a_relay_restarted_after_kill9_continues_the_chain)
{
    relay r;
    REQUIRE(serve_start(&r, "restart", many_evals));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    send_evals(ed, 1, 3, 0);
    expect_accepted(ed, 1, 3, 1);
    pbc_close(ed);
    uint8_t pk[PB_PUBLICKEY_BYTES];
    memcpy(pk, r.keys.pk, sizeof pk);
    serve_kill9(&r);
    REQUIRE(serve_start(&r, "restart", many_evals));
    CHECK(memcmp(pk, r.keys.pk, sizeof pk) == 0);
    pbc_welcome w;
    ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", &w);
    REQUIRE(ed);
    CHECK_EQ_INT(w.head_seq, 3);
    char src[256];
    var_source(src, sizeof src, 1, 1);
    CHECK_EQ_INT(eval(ed, 1000, src, NULL), 4);
    pbc_close(ed);
    CHECK_EQ_INT(serve_stop(&r), 0);
    char db[400];
    snprintf(db, sizeof db, "%s/history.db", r.dir);
    pb_errmsg why;
    relay_history *h = relay_history_open_readonly(db, &why);
    REQUIRE(h);
    uint64_t n = 0;
    CHECK(relay_history_verify(h, "jam", pk, &n, &why) == PB_OK);
    CHECK_EQ_INT(n, 4);
    relay_history_close(h);
    /* and `patchbay verify` says so, with the key from relay.pub */
    char cmd[1200], out[512] = "";
    snprintf(cmd, sizeof cmd, "'%s' verify --data '%s' 2>&1", patchbay_bin,
             r.dir);
    FILE *p = popen(cmd, "r");
    REQUIRE(p);
    size_t got = fread(out, 1, sizeof out - 1, p);
    out[got] = '\0';
    CHECK_EQ_INT(pclose(p), 0);
    if (!strstr(out, "room jam: 4 patches verify"))
        fprintf(stderr, "  patchbay verify said: %s\n", out);
    CHECK(strstr(out, "room jam: 4 patches verify") != NULL);
}

/* ---- diagnostics --------------------------------------------------------- */

/* The compiler's hostile cases through the relay: each is refused with a
 * diag (an error in it), and the room still evaluates. */
TEST(hostile_sources_each_get_a_diag_and_the_room_keeps_working)
{
    relay r;
    REQUIRE(serve_start(&r, "hostile", NULL));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    static const char *const bad[] = {
        "#include \"/etc/passwd\"\n",
        "#include <patchbay.h>\ndouble f(double v) { __asm__(\"nop\"); return "
        "v; }\n",
        "#include <patchbay.h>\ndouble f(double v) { return nosuch(v); }\n",
        "#include <patchbay.h>\nint x[1 << 30];\nint f(void) { return x[5]; "
        "}\n",
        "#include <patchbay.h>\nvoid system(const char *);\nvoid f(void) { "
        "system(\"ls\"); }\n",
        "#define A(x) x x x x x x x x\n#define B(x) A(A(A(A(x))))\n"
        "int f(void) { return B(B(B(1))); }\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        want w;
        uint64_t seq = eval(ed, 1 + i, bad[i], &w);
        CHECK_EQ_INT(seq, 0);
        CHECK(w.found && !w.ok && w.n_errors >= 1);
        if (seq || !w.found || w.ok || !w.n_errors)
            fprintf(stderr, "  case %zu was not refused with a diag\n", i);
    }
    char src[256];
    var_source(src, sizeof src, 1, 1);
    CHECK_EQ_INT(eval(ed, 100, src, NULL), 1);
    pbc_close(ed);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

typedef struct diag_seen {
    uint32_t diags;
    bool pong;
} diag_seen;

static int on_diag_or_pong(void *ctx, const pb_frame *f)
{
    diag_seen *d = ctx;
    d->diags += f->type == PB_T_DIAG;
    d->pong |= f->type == PB_T_PONG;
    return d->pong;
}

/* One editor's diagnostics are for that editor: another editor in the room
 * gets none. Frames to a client keep their order, so a pong asked for after
 * the author had its diag comes after any diag the other would have got. */
TEST(diagnostics_reach_only_their_author)
{
    relay r;
    REQUIRE(serve_start(&r, "diag-author", NULL));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    pbc *other = join(&r, "jam", PB_ROLE_EDITOR, "other", NULL);
    REQUIRE(ed && other);
    want w;
    CHECK_EQ_INT(eval(ed, 1, "int f(void) { return nosuch; }\n", &w), 0);
    CHECK(w.found && w.n_errors >= 1);
    pb_frame ping = {.type = PB_T_PING};
    pb_errmsg why;
    REQUIRE(send_now(other, &ping, &why) == 0);
    diag_seen d = {0, false};
    CHECK(pbc_wait(other, 10000, on_diag_or_pong, &d, &why) ==
          PBC_WAIT_STOPPED);
    CHECK_EQ_INT(d.diags, 0);
    pbc_close(other);
    pbc_close(ed);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

/* ---- shutdown ------------------------------------------------------------ */

typedef struct pong_or_diag {
    bool pong;
    want diag;
} pong_or_diag;

static int until_pong(void *ctx, const pb_frame *f)
{
    pong_or_diag *p = ctx;
    if (f->type == PB_T_DIAG)
        match(&p->diag, f);
    p->pong |= f->type == PB_T_PONG;
    return p->pong;
}

/* SIGTERM with an eval in flight: it is answered and recorded, and the
 * relay exits 0. The relay has the eval once it answers a ping sent after
 * it (frames from one client are handled in order). */
TEST(a_clean_shutdown_answers_the_eval_in_flight)
{
    relay r;
    REQUIRE(serve_start(&r, "shutdown", NULL));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    char src[256];
    var_source(src, sizeof src, 5, 5);
    CHECK(send_eval(ed, 7, src));
    pb_frame ping = {.type = PB_T_PING};
    pb_errmsg why;
    REQUIRE(send_now(ed, &ping, &why) == 0);
    pong_or_diag p = {false,
                      {PB_T_DIAG, 7, false, false, 0, false, false, 0, 0, ""}};
    REQUIRE(pbc_wait(ed, 30000, until_pong, &p, &why) == PBC_WAIT_STOPPED);
    kill(r.pid, SIGTERM);
    if (!p.diag.found)
        CHECK(wait_for(ed, &p.diag, 30000));
    CHECK(p.diag.ok && p.diag.seq == 1);
    int st = 0;
    waitpid(r.pid, &st, 0);
    r.pid = 0;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    pbc_close(ed);
    char db[400];
    snprintf(db, sizeof db, "%s/history.db", r.dir);
    relay_history *h = relay_history_open_readonly(db, &why);
    REQUIRE(h);
    uint64_t n = 0;
    CHECK(relay_history_verify(h, "jam", r.keys.pk, &n, &why) == PB_OK);
    CHECK_EQ_INT(n, 1);
    relay_history_close(h);
    relay_keys_close(&r.keys);
}

static const pb_test tests[] = {
    T(a_slow_consumer_is_told_and_dropped_while_others_are_served),
    T(a_late_joiner_gets_the_current_state_then_the_next_patch_live),
    T(joining_while_evals_stream_misses_nothing_and_doubles_nothing),
    T(a_returning_client_gets_only_what_it_missed),
    T(kill9_loses_no_patch_anyone_saw),
    T(a_relay_restarted_after_kill9_continues_the_chain),
    T(hostile_sources_each_get_a_diag_and_the_room_keeps_working),
    T(diagnostics_reach_only_their_author),
    T(a_clean_shutdown_answers_the_eval_in_flight),
};

int main(int argc, char **argv)
{
    return harness_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
