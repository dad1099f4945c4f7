/* test_relay_net.c — the relay's door: `patchbay serve` started on a free
 * loopback port with its own data directory, driven by real WebSocket
 * clients (client/pbc.h). One behaviour per test: what the handshake
 * refuses, what each role may send, the rate and size limits. After every
 * rejection a bystander in the room must still be served.
 *
 * usage: test_relay_net PATCHBAY BACKEND [TEST...] */
#include "harness.h"

#include <errno.h>
#include <msgpack.h>
#include <signal.h>

PB_TEST_RUNNER

/* A relay with a bystander in room "jam"; fixture_end checks the bystander
 * is still served and the relay stops cleanly. */
typedef struct fixture {
    relay r;
    pbc *by;
} fixture;

static const char *const fast_hello[] = {"--hello-timeout-ms", "400", NULL};

static bool fixture_start(fixture *f, const char *name, const char *const *opts)
{
    if (!serve_start(&f->r, name, opts))
        return false;
    f->by = join(&f->r, "jam", PB_ROLE_VIEWER, "bystander", NULL);
    return f->by != NULL;
}

static void fixture_end(fixture *f)
{
    CHECK(ping_ok(f->by));
    pbc_close(f->by);
    CHECK_EQ_INT(serve_stop(&f->r), 0);
}

/* A connection without hello, as a client that has not said who it is. */
static pbc *open_anonymous(fixture *f)
{
    pbc_target t;
    target(&f->r, NULL, "", &t);
    pb_errmsg why = {{0}};
    pbc *c = pbc_open(&t, 5000, &why);
    if (!c)
        fprintf(stderr, "  open: %s\n", why.text);
    return c;
}

/* ---- the handshake ------------------------------------------------------- */

TEST(no_hello_in_time_is_a_fatal_auth_timeout)
{
    fixture f;
    REQUIRE(fixture_start(&f, "no-hello", fast_hello));
    pbc *c = open_anonymous(&f);
    REQUIRE(c);
    CHECK(expect_error(c, PB_ERR_AUTH_TIMEOUT, true));
    CHECK(expect_closed(c));
    pbc_close(c);
    fixture_end(&f);
}

TEST(bytes_that_are_not_msgpack_are_fatal_before_hello)
{
    fixture f;
    REQUIRE(fixture_start(&f, "not-msgpack", fast_hello));
    pbc *c = open_anonymous(&f);
    REQUIRE(c);
    pb_errmsg why;
    REQUIRE(send_raw_now(c, (const uint8_t *)"\xc1\xc1garbage", 9, false,
                         &why) == 0);
    CHECK(expect_error(c, PB_ERR_MALFORMED, true));
    CHECK(expect_closed(c));
    pbc_close(c);
    fixture_end(&f);
}

TEST(a_text_message_is_fatal_before_hello)
{
    fixture f;
    REQUIRE(fixture_start(&f, "text", fast_hello));
    pbc *c = open_anonymous(&f);
    REQUIRE(c);
    pb_errmsg why;
    REQUIRE(send_raw_now(c, (const uint8_t *)"{\"t\":\"hello\"}", 13, true,
                         &why) == 0);
    CHECK(expect_error(c, PB_ERR_MALFORMED, true));
    CHECK(expect_closed(c));
    pbc_close(c);
    fixture_end(&f);
}

TEST(a_first_frame_other_than_hello_is_fatal)
{
    fixture f;
    REQUIRE(fixture_start(&f, "not-hello", fast_hello));
    pbc *c = open_anonymous(&f);
    REQUIRE(c);
    pb_errmsg why;
    pb_frame ping = {.type = PB_T_PING};
    REQUIRE(send_now(c, &ping, &why) == 0);
    CHECK(expect_error(c, PB_ERR_UNEXPECTED, true));
    CHECK(expect_closed(c));
    pbc_close(c);
    fixture_end(&f);
}

/* Says hello with tok (on /r/path_room if given) and expects the fatal
 * error code and the close. */
static void hello_refused(fixture *f, const char *tok, const char *path_room,
                          pb_err code)
{
    pbc_target t;
    target(&f->r, path_room, tok, &t);
    pb_errmsg why;
    pbc *c = pbc_open(&t, 5000, &why);
    REQUIRE(c);
    pb_frame h = {.type = PB_T_HELLO};
    h.hello.token = pb_cstr(tok);
    REQUIRE(send_now(c, &h, &why) == 0);
    CHECK(expect_error(c, code, true));
    CHECK(expect_closed(c));
    pbc_close(c);
}

TEST(a_token_with_a_bad_mac_is_refused)
{
    fixture f;
    REQUIRE(fixture_start(&f, "bad-mac", NULL));
    char tok[PB_MAX_TOKEN_BYTES + 1];
    make_token(&f.r, "jam", PB_ROLE_VIEWER, "mallory", 3600, tok);
    size_t n = strlen(tok);
    tok[n - 3] = tok[n - 3] == 'A' ? 'B' : 'A';
    hello_refused(&f, tok, NULL, PB_ERR_AUTH_BAD_MAC);
    fixture_end(&f);
}

TEST(an_expired_token_is_refused)
{
    fixture f;
    REQUIRE(fixture_start(&f, "expired", NULL));
    char tok[PB_MAX_TOKEN_BYTES + 1];
    make_token(&f.r, "jam", PB_ROLE_VIEWER, "mallory", -5, tok);
    hello_refused(&f, tok, NULL, PB_ERR_AUTH_EXPIRED);
    fixture_end(&f);
}

TEST(a_token_for_another_room_than_the_path_is_refused)
{
    fixture f;
    REQUIRE(fixture_start(&f, "wrong-room", NULL));
    char tok[PB_MAX_TOKEN_BYTES + 1];
    make_token(&f.r, "jam", PB_ROLE_VIEWER, "mallory", 3600, tok);
    hello_refused(&f, tok, "other", PB_ERR_AUTH_WRONG_ROOM);
    fixture_end(&f);
}

/* An owner token's payload with a viewer token's MAC. */
TEST(a_spliced_token_does_not_raise_its_role)
{
    fixture f;
    REQUIRE(fixture_start(&f, "spliced", NULL));
    char viewer[PB_MAX_TOKEN_BYTES + 1], owner[PB_MAX_TOKEN_BYTES + 1];
    make_token(&f.r, "jam", PB_ROLE_VIEWER, "mallory", 3600, viewer);
    make_token(&f.r, "jam", PB_ROLE_OWNER, "mallory", 3600, owner);
    char spliced[2 * PB_MAX_TOKEN_BYTES + 2];
    snprintf(spliced, sizeof spliced, "%.*s%s",
             (int)(strrchr(owner, '.') - owner), owner, strrchr(viewer, '.'));
    hello_refused(&f, spliced, NULL, PB_ERR_AUTH_BAD_MAC);
    fixture_end(&f);
}

/* ---- roles --------------------------------------------------------------- */

static const char ok_source[] =
    "#include <patchbay.h>\ndouble f(double v) { return v; }\n";

/* A viewer's and a runtime's evals are refused and make no patch: the
 * editor's next eval is seq 1. */
TEST(viewers_and_runtimes_may_not_evaluate)
{
    fixture f;
    REQUIRE(fixture_start(&f, "may-not-eval", NULL));
    pbc *ed = join(&f.r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    pbc *rt = join(&f.r, "jam", PB_ROLE_RUNTIME, "rt", NULL);
    REQUIRE(ed && rt);
    CHECK(send_eval(f.by, 1, ok_source));
    CHECK(expect_error(f.by, PB_ERR_FORBIDDEN, false));
    CHECK(send_eval(rt, 1, ok_source));
    CHECK(expect_error(rt, PB_ERR_FORBIDDEN, false));
    CHECK_EQ_INT(eval(ed, 2, ok_source, NULL), 1);
    CHECK(ping_ok(rt));
    pbc_close(rt);
    pbc_close(ed);
    fixture_end(&f);
}

TEST(an_editor_may_not_change_room_settings)
{
    fixture f;
    REQUIRE(fixture_start(&f, "may-not-set", NULL));
    pbc *ed = join(&f.r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    pb_frame room = {.type = PB_T_ROOM};
    room.room.tempo_bpm = 120;
    pb_errmsg why;
    REQUIRE(send_now(ed, &room, &why) == 0);
    CHECK(expect_error(ed, PB_ERR_FORBIDDEN, false));
    CHECK(ping_ok(ed)); /* and stays connected */
    pbc_close(ed);
    fixture_end(&f);
}

TEST(an_editor_may_not_send_acks)
{
    fixture f;
    REQUIRE(fixture_start(&f, "may-not-ack", NULL));
    pbc *ed = join(&f.r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    pb_frame ack = {.type = PB_T_ACK};
    ack.ack.seq = 1;
    ack.ack.state = PB_ACK_COMMITTED;
    pb_errmsg why;
    REQUIRE(send_now(ed, &ack, &why) == 0);
    CHECK(expect_error(ed, PB_ERR_FORBIDDEN, false));
    CHECK(ping_ok(ed));
    pbc_close(ed);
    fixture_end(&f);
}

typedef struct forwarded {
    uint64_t ack_from, log_from;
} forwarded;

static int on_forwarded(void *ctx, const pb_frame *f)
{
    forwarded *g = ctx;
    if (f->type == PB_T_ACK)
        g->ack_from = f->ack.runtime_id;
    if (f->type == PB_T_LOG && pb_str_eq(f->log.text, "hello from the runtime"))
        g->log_from = f->log.runtime_id;
    return g->ack_from && g->log_from;
}

TEST(a_runtimes_ack_and_log_reach_editors_stamped_with_its_id)
{
    fixture f;
    REQUIRE(fixture_start(&f, "forwarded", NULL));
    pbc *ed = join(&f.r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    pbc_welcome rw;
    pbc *rt = join(&f.r, "jam", PB_ROLE_RUNTIME, "rt", &rw);
    REQUIRE(ed && rt);
    pb_frame ack = {.type = PB_T_ACK};
    ack.ack.seq = 1;
    ack.ack.state = PB_ACK_COMMITTED;
    pb_frame lg = {.type = PB_T_LOG};
    lg.log.level = PB_LOG_INFO;
    lg.log.text = pb_cstr("hello from the runtime");
    pb_errmsg why;
    REQUIRE(send_now(rt, &ack, &why) == 0);
    REQUIRE(send_now(rt, &lg, &why) == 0);
    forwarded got = {0, 0};
    CHECK(pbc_wait(ed, 10000, on_forwarded, &got, &why) == PBC_WAIT_STOPPED);
    CHECK_EQ_INT(got.ack_from, rw.client_id);
    CHECK_EQ_INT(got.log_from, rw.client_id);
    pbc_close(rt);
    pbc_close(ed);
    fixture_end(&f);
}

static int on_tempo(void *ctx, const pb_frame *f)
{
    return f->type == PB_T_ROOM && f->room.tempo_bpm == *(double *)ctx;
}

TEST(the_owner_sets_the_tempo_for_everyone)
{
    fixture f;
    REQUIRE(fixture_start(&f, "owner-tempo", NULL));
    pbc *own = join(&f.r, "jam", PB_ROLE_OWNER, "own", NULL);
    REQUIRE(own);
    pb_frame room = {.type = PB_T_ROOM};
    room.room.tempo_bpm = 133;
    pb_errmsg why;
    REQUIRE(send_now(own, &room, &why) == 0);
    double want = 133;
    CHECK(pbc_wait(f.by, 10000, on_tempo, &want, &why) == PBC_WAIT_STOPPED);
    pbc_close(own);
    fixture_end(&f);
}

/* ---- limits -------------------------------------------------------------- */

typedef struct outcome {
    uint32_t accepted, limited;
} outcome;

static int on_outcome(void *ctx, const pb_frame *f)
{
    outcome *o = ctx;
    if (f->type == PB_T_DIAG && f->diag.ok)
        o->accepted++;
    if (f->type == PB_T_ERROR && f->error.code == PB_ERR_RATE_LIMITED)
        o->limited++;
    return o->accepted + o->limited == 6;
}

/* 6 evals at once; the bucket holds 2 (and refills 2 a second). */
TEST(evals_over_the_rate_are_refused)
{
    const char *const opts[] = {"--evals-per-second", "2", NULL};
    fixture f;
    REQUIRE(fixture_start(&f, "eval-rate", opts));
    pbc *ed = join(&f.r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    char src[256];
    for (unsigned i = 0; i < 6; i++) {
        var_source(src, sizeof src, 0, i);
        CHECK(send_eval(ed, 10 + i, src));
    }
    outcome o = {0, 0};
    pb_errmsg why = {{0}};
    CHECK(pbc_wait(ed, 60000, on_outcome, &o, &why) == PBC_WAIT_STOPPED);
    CHECK(o.accepted >= 1 && o.accepted <= 3);
    CHECK(o.limited >= 3);
    CHECK_EQ_INT(o.accepted + o.limited, 6);
    pbc_close(ed);
    fixture_end(&f);
}

/* With 2 clients a room, the bystander and one more fit; the next is
 * refused, and another room still opens. */
TEST(a_full_room_refuses_one_more_client)
{
    const char *const opts[] = {"--max-clients", "2", NULL};
    fixture f;
    REQUIRE(fixture_start(&f, "room-size", opts));
    pbc *second = join(&f.r, "jam", PB_ROLE_VIEWER, "second", NULL);
    CHECK(second != NULL);
    char tok[PB_MAX_TOKEN_BYTES + 1];
    make_token(&f.r, "jam", PB_ROLE_VIEWER, "third", 3600, tok);
    pbc_target t;
    target(&f.r, NULL, tok, &t);
    pb_errmsg why = {{0}};
    pbc *third = pbc_connect(&t, "test", 10000, NULL, &why);
    CHECK(third == NULL);
    CHECK(strstr(why.text, "full") != NULL);
    pbc_close(third);
    pbc *elsewhere = join(&f.r, "other", PB_ROLE_VIEWER, "x", NULL);
    CHECK(elsewhere != NULL);
    pbc_close(elsewhere);
    pbc_close(second);
    fixture_end(&f);
}

/* 800 KB at once is more than 300000 bytes a second (and as much again of
 * burst) allows: the connection is closed as rate limited. */
TEST(bytes_over_the_rate_close_the_connection)
{
    const char *const opts[] = {"--bytes-per-second", "300000", NULL};
    fixture f;
    REQUIRE(fixture_start(&f, "byte-rate", opts));
    pbc *ed = join(&f.r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    size_t big = 200 * 1024;
    char *pad = malloc(big + 64);
    REQUIRE(pad);
    memset(pad, ' ', big);
    strcpy(pad + big, "/* padding */\n");
    for (int i = 0; i < 4; i++)
        send_eval(ed, 100 + (uint64_t)i, pad); /* may be closed midway */
    free(pad);
    /* Closed with the error frame or the close reason; a client that is
     * still pushing bytes when the relay closes can get a TCP reset that
     * discards both, so then the relay's log must name the reason. */
    if (!expect_fatal(ed, PB_ERR_RATE_LIMITED)) {
        CHECK(pbc_is_closed(ed));
        CHECK(log_has(&f.r, "bytes per second sent"));
    }
    pbc_close(ed);
    fixture_end(&f);
}

/* ---- frames over their limits -------------------------------------------- */

/* A source over its limit is refused by decode, not compiled; the client
 * keeps its connection. */
TEST(a_source_over_its_limit_is_refused_and_the_client_stays)
{
    fixture f;
    REQUIRE(fixture_start(&f, "big-source", NULL));
    pbc *ed = join(&f.r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    size_t n = PB_MAX_SOURCE_BYTES + 10;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    msgpack_pack_str_with_body(&pk, "v", 1);
    msgpack_pack_uint32(&pk, PB_PROTOCOL_VERSION);
    msgpack_pack_str_with_body(&pk, "t", 1);
    msgpack_pack_str_with_body(&pk, "eval", 4);
    msgpack_pack_str_with_body(&pk, "req", 3);
    msgpack_pack_uint32(&pk, 1);
    msgpack_pack_str_with_body(&pk, "lang", 4);
    msgpack_pack_str_with_body(&pk, "c", 1);
    msgpack_pack_str_with_body(&pk, "source", 6);
    msgpack_pack_str(&pk, n);
    char *src = malloc(n);
    REQUIRE(src);
    memset(src, ' ', n);
    msgpack_pack_str_body(&pk, src, n);
    free(src);
    pb_errmsg why;
    CHECK(send_raw_now(ed, (const uint8_t *)sb.data, sb.size, false, &why) ==
          0);
    msgpack_sbuffer_destroy(&sb);
    CHECK(expect_error(ed, PB_ERR_FIELD_RANGE, false));
    CHECK(ping_ok(ed));
    pbc_close(ed);
    fixture_end(&f);
}

TEST(a_message_over_the_frame_limit_closes_the_connection)
{
    fixture f;
    REQUIRE(fixture_start(&f, "big-frame", NULL));
    pbc *ed = join(&f.r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    size_t huge = PB_MAX_FRAME_BYTES + 4096;
    uint8_t *junk = calloc(1, huge);
    REQUIRE(junk);
    pb_errmsg why;
    CHECK(send_raw_now(ed, junk, huge, false, &why) == 0);
    free(junk);
    CHECK(expect_error(ed, PB_ERR_TOO_BIG, true));
    CHECK(expect_closed(ed));
    pbc_close(ed);
    fixture_end(&f);
}

/* ---- the harness -----------------------------------------------------------
 */

/* A test that ends early (as a failed REQUIRE returns) leaves its relay
 * running; the harness stops it before the next test, which checks. */
static pid_t left_behind;

TEST(a_test_that_ends_early_leaves_its_relay_running)
{
    relay r;
    REQUIRE(serve_start(&r, "left", NULL));
    left_behind = r.pid;
    CHECK(kill(r.pid, 0) == 0);
    /* returns without serve_stop, as a failed REQUIRE would */
}

TEST(the_harness_stopped_it_before_this_test)
{
    if (!left_behind)
        SKIP("runs after a_test_that_ends_early_leaves_its_relay_running");
    /* killed and reaped: not even a zombie is left */
    CHECK(kill(left_behind, 0) == -1 && errno == ESRCH);
}

static const pb_test tests[] = {
    T(no_hello_in_time_is_a_fatal_auth_timeout),
    T(bytes_that_are_not_msgpack_are_fatal_before_hello),
    T(a_text_message_is_fatal_before_hello),
    T(a_first_frame_other_than_hello_is_fatal),
    T(a_token_with_a_bad_mac_is_refused),
    T(an_expired_token_is_refused),
    T(a_token_for_another_room_than_the_path_is_refused),
    T(a_spliced_token_does_not_raise_its_role),
    T(viewers_and_runtimes_may_not_evaluate),
    T(an_editor_may_not_change_room_settings),
    T(an_editor_may_not_send_acks),
    T(a_runtimes_ack_and_log_reach_editors_stamped_with_its_id),
    T(the_owner_sets_the_tempo_for_everyone),
    T(evals_over_the_rate_are_refused),
    T(a_full_room_refuses_one_more_client),
    T(bytes_over_the_rate_close_the_connection),
    T(a_source_over_its_limit_is_refused_and_the_client_stays),
    T(a_message_over_the_frame_limit_closes_the_connection),
    T(a_test_that_ends_early_leaves_its_relay_running),
    T(the_harness_stopped_it_before_this_test),
};

int main(int argc, char **argv)
{
    return harness_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
