/* test_relay_net.c — the relay as users meet it: `patchbay serve` started
 * on a free loopback port with its own data directory, driven by real
 * WebSocket clients (client/pbc.h). Each test checks what the relay must
 * do and, after every rejection, that a bystander in the room is still
 * served.
 *
 * usage: test_relay_net PATCHBAY BACKEND [TEST...] */
#include "harness.h"

#include <msgpack.h>
#include <signal.h>
#include <sys/wait.h>

PB_TEST_RUNNER

typedef struct forwarded {
    uint64_t ack_from, log_from;
    double tempo;
} forwarded;

static int on_forwarded(void *ctx, const pb_frame *f)
{
    forwarded *g = ctx;
    if (f->type == PB_T_ACK)
        g->ack_from = f->ack.runtime_id;
    if (f->type == PB_T_LOG && pb_str_eq(f->log.text, "hello from the runtime"))
        g->log_from = f->log.runtime_id;
    if (f->type == PB_T_ROOM)
        g->tempo = f->room.tempo_bpm;
    return 0;
}

static const char *const fast_hello[] = {"--hello-timeout-ms", "400", NULL};

TEST(handshake_rejections)
{
    relay r;
    REQUIRE(serve_start(&r, "auth", fast_hello));
    pbc *by = join(&r, "jam", PB_ROLE_EDITOR, "bystander", NULL);
    REQUIRE(by);
    pb_errmsg why;
    pbc_target t;
    char tok[PB_MAX_TOKEN_BYTES + 1];

    /* no hello at all */
    target(&r, NULL, "", &t);
    pbc *c = pbc_open(&t, 5000, &why);
    REQUIRE(c);
    CHECK(expect_error(c, PB_ERR_AUTH_TIMEOUT, true));
    CHECK(expect_closed(c));
    pbc_close(c);
    CHECK(ping_ok(by));

    /* not msgpack */
    c = pbc_open(&t, 5000, &why);
    REQUIRE(c);
    REQUIRE(send_raw_now(c, (const uint8_t *)"\xc1\xc1garbage", 9, false,
                         &why) == 0);
    CHECK(expect_error(c, PB_ERR_MALFORMED, true));
    CHECK(expect_closed(c));
    pbc_close(c);

    /* a text message */
    c = pbc_open(&t, 5000, &why);
    REQUIRE(c);
    REQUIRE(send_raw_now(c, (const uint8_t *)"{\"t\":\"hello\"}", 13, true,
                         &why) == 0);
    CHECK(expect_error(c, PB_ERR_MALFORMED, true));
    pbc_close(c);

    /* the first frame is not hello */
    c = pbc_open(&t, 5000, &why);
    REQUIRE(c);
    pb_frame ping = {.type = PB_T_PING};
    REQUIRE(send_now(c, &ping, &why) == 0);
    CHECK(expect_error(c, PB_ERR_UNEXPECTED, true));
    pbc_close(c);
    CHECK(ping_ok(by));

    struct {
        const char *what;
        pb_err code;
        const char *path_room;
        int kind; /* 0 bad MAC, 1 expired, 2 wrong room, 3 spliced */
    } cases[] = {
        {"bad MAC", PB_ERR_AUTH_BAD_MAC, NULL, 0},
        {"expired", PB_ERR_AUTH_EXPIRED, NULL, 1},
        {"wrong room", PB_ERR_AUTH_WRONG_ROOM, "other", 2},
        {"role escalation", PB_ERR_AUTH_BAD_MAC, NULL, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        make_token(&r, "jam", PB_ROLE_VIEWER, "mallory",
                   cases[i].kind == 1 ? -5 : 3600, tok);
        size_t n = strlen(tok);
        if (cases[i].kind == 0)
            tok[n - 3] = tok[n - 3] == 'A' ? 'B' : 'A';
        if (cases[i].kind == 3) {
            char owner[PB_MAX_TOKEN_BYTES + 1];
            make_token(&r, "jam", PB_ROLE_OWNER, "mallory", 3600, owner);
            char *mac = strrchr(tok, '.');
            char spliced[PB_MAX_TOKEN_BYTES + 1];
            snprintf(spliced, sizeof spliced, "%.*s%s",
                     (int)(strrchr(owner, '.') - owner), owner, mac);
            strcpy(tok, spliced);
        }
        target(&r, cases[i].path_room, tok, &t);
        c = pbc_open(&t, 5000, &why);
        REQUIRE(c);
        pb_frame h = {.type = PB_T_HELLO};
        h.hello.token = pb_cstr(tok);
        REQUIRE(send_now(c, &h, &why) == 0);
        if (!expect_error(c, cases[i].code, true))
            fprintf(stderr, "  case: %s\n", cases[i].what);
        CHECK(expect_closed(c));
        pbc_close(c);
        CHECK(ping_ok(by));
    }
    pbc_close(by);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

TEST(roles_enforced)
{
    relay r;
    REQUIRE(serve_start(&r, "roles", NULL));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    pbc *view = join(&r, "jam", PB_ROLE_VIEWER, "vi", NULL);
    pbc_welcome rw;
    pbc *rt = join(&r, "jam", PB_ROLE_RUNTIME, "rt", &rw);
    REQUIRE(ed && view && rt);
    const char *src = "#include <patchbay.h>\ndouble f(double v) { return v; }\n";
    /* a viewer and a runtime may not evaluate; nothing happens */
    CHECK(send_eval(view, 1, src));
    CHECK(expect_error(view, PB_ERR_FORBIDDEN, false));
    CHECK(send_eval(rt, 1, src));
    CHECK(expect_error(rt, PB_ERR_FORBIDDEN, false));
    /* an editor may not change room settings */
    pb_frame room = {.type = PB_T_ROOM};
    room.room.tempo_bpm = 120;
    pb_errmsg why;
    REQUIRE(send_now(ed, &room, &why) == 0);
    CHECK(expect_error(ed, PB_ERR_FORBIDDEN, false));
    /* an editor may not send acks */
    pb_frame ack = {.type = PB_T_ACK};
    ack.ack.seq = 1;
    ack.ack.state = PB_ACK_COMMITTED;
    REQUIRE(send_now(ed, &ack, &why) == 0);
    CHECK(expect_error(ed, PB_ERR_FORBIDDEN, false));
    /* the forbidden evals made no patch: the editor's is seq 1 */
    CHECK_EQ_INT(eval(ed, 2, src, NULL), 1);
    CHECK(ping_ok(view) && ping_ok(rt));

    /* a runtime's ack and log reach editors, stamped with its id */
    REQUIRE(send_now(rt, &ack, &why) == 0);
    pb_frame lg = {.type = PB_T_LOG};
    lg.log.level = PB_LOG_INFO;
    lg.log.text = pb_cstr("hello from the runtime");
    REQUIRE(send_now(rt, &lg, &why) == 0);
    forwarded got = {0, 0, 0};
    uint64_t deadline = now_ms() + 10000;
    while ((!got.ack_from || !got.log_from) && now_ms() < deadline)
        pbc_wait(ed, 100, on_forwarded, &got, &why);
    CHECK_EQ_INT(got.ack_from, rw.client_id);
    CHECK_EQ_INT(got.log_from, rw.client_id);
    /* the owner may set the tempo; everyone hears it */
    pbc *own = join(&r, "jam", PB_ROLE_OWNER, "own", NULL);
    REQUIRE(own);
    room.room.tempo_bpm = 133;
    REQUIRE(send_now(own, &room, &why) == 0);
    got.tempo = 0;
    deadline = now_ms() + 10000;
    while (got.tempo != 133 && now_ms() < deadline)
        pbc_wait(view, 100, on_forwarded, &got, &why);
    CHECK(got.tempo == 133);
    pbc_close(own);
    pbc_close(ed);
    pbc_close(view);
    pbc_close(rt);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

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
    return 0;
}

TEST(limits_rate_and_room_size)
{
    const char *const opts[] = {"--evals-per-second", "2", "--max-clients",
                                "3", "--bytes-per-second", "300000", NULL};
    relay r;
    REQUIRE(serve_start(&r, "limits", opts));
    pbc *by = join(&r, "jam", PB_ROLE_VIEWER, "bystander", NULL);
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(by && ed);
    /* evals per second: 6 at once, the bucket holds 2 */
    char src[256];
    for (unsigned i = 0; i < 6; i++) {
        var_source(src, sizeof src, 0, i);
        CHECK(send_eval(ed, 10 + i, src));
    }
    outcome o = {0, 0};
    uint64_t deadline = now_ms() + 60000;
    pb_errmsg why = {{0}};
    while (o.accepted + o.limited < 6 && now_ms() < deadline)
        pbc_wait(ed, 200, on_outcome, &o, &why);
    uint32_t accepted = o.accepted, limited = o.limited;
    CHECK(accepted >= 1 && accepted <= 3);
    CHECK(limited >= 3);
    CHECK_EQ_INT(accepted + limited, 6);
    CHECK(ping_ok(by));

    /* clients per room: the third joins, the fourth is refused */
    pbc *third = join(&r, "jam", PB_ROLE_VIEWER, "third", NULL);
    CHECK(third != NULL);
    char tok[PB_MAX_TOKEN_BYTES + 1];
    make_token(&r, "jam", PB_ROLE_VIEWER, "fourth", 3600, tok);
    pbc_target t;
    target(&r, NULL, tok, &t);
    pbc *fourth = pbc_connect(&t, "test", 10000, NULL, &why);
    CHECK(fourth == NULL);
    CHECK(strstr(why.text, "full") != NULL);
    pbc_close(fourth);
    pbc *elsewhere = join(&r, "other", PB_ROLE_VIEWER, "x", NULL);
    CHECK(elsewhere != NULL);
    pbc_close(elsewhere);
    pbc_close(third);

    /* bytes per second: 800 KB at once is more than the 300000 a second
     * (and the same again of burst) allowed */
    size_t big = 200 * 1024;
    char *pad = malloc(big + 64);
    REQUIRE(pad);
    memset(pad, ' ', big);
    strcpy(pad + big, "/* padding */\n");
    pbc_close(ed);
    ed = join(&r, "jam", PB_ROLE_EDITOR, "ed2", NULL); /* fresh buckets */
    REQUIRE(ed);
    for (int i = 0; i < 4; i++)
        send_eval(ed, 100 + (uint64_t)i, pad); /* may be closed midway */
    free(pad);
    /* Closed with the error frame or the close reason; a client that is
     * still pushing bytes when the relay closes can get a TCP reset that
     * discards both, so then the relay's log must name the reason. */
    if (!expect_fatal(ed, PB_ERR_RATE_LIMITED)) {
        CHECK(pbc_is_closed(ed));
        CHECK(log_has(&r, "bytes per second sent"));
    }
    pbc_close(ed);
    CHECK(ping_ok(by));
    pbc_close(by);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

TEST(oversized_and_malformed_frames)
{
    relay r;
    REQUIRE(serve_start(&r, "frames", NULL));
    pbc *by = join(&r, "jam", PB_ROLE_VIEWER, "bystander", NULL);
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(by && ed);
    pb_errmsg why;
    /* a source over the limit is refused by decode, not compiled; a live
     * client keeps its connection */
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
    CHECK(send_raw_now(ed, (const uint8_t *)sb.data, sb.size, false, &why) ==
          0);
    msgpack_sbuffer_destroy(&sb);
    CHECK(expect_error(ed, PB_ERR_FIELD_RANGE, false));
    CHECK(ping_ok(ed));
    /* a message over the frame limit closes the connection */
    size_t huge = PB_MAX_FRAME_BYTES + 4096;
    uint8_t *junk = calloc(1, huge);
    REQUIRE(junk);
    CHECK(send_raw_now(ed, junk, huge, false, &why) == 0);
    free(junk);
    CHECK(expect_error(ed, PB_ERR_TOO_BIG, true));
    CHECK(expect_closed(ed));
    pbc_close(ed);
    CHECK(ping_ok(by));
    pbc_close(by);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

TEST(slow_consumer_disconnected)
{
    const char *const opts[] = {"--max-queue-bytes", "262144", NULL};
    relay r;
    REQUIRE(serve_start(&r, "slow", opts));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    pbc_welcome sw;
    pbc *slow = join(&r, "jam", PB_ROLE_VIEWER, "slow", &sw);
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
    free(src);
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
    /* push them out (reading stays paused) */
    for (int i = 0; i < 20; i++)
        pbc_wait(slow, 20, NULL, NULL, &why);
    /* others are served meanwhile: a new patch reaches the runtime */
    patch_log l;
    patch_log_init(&l, &r, "jam");
    var_source(src = malloc(256), 256, 99, 1);
    uint64_t seq = eval(ed, 50, src, NULL);
    free(src);
    CHECK_EQ_INT(seq, 11);
    CHECK(collect_until(rt, &l, seq, 10000));
    CHECK(ping_ok(ed));
    /* the slow one was dropped */
    pbc_pause_reading(slow, false);
    CHECK(expect_closed(slow));
    pbc_close(slow);
    CHECK(log_has(&r, "slow consumer"));
    pbc_close(ed);
    pbc_close(rt);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

/* 200 patches over 10 vars, then a late joiner gets exactly the current
 * state (every statement, modules only for the latest of each var), then
 * live patches without a gap or a duplicate. */
TEST(late_joiner_after_200_patches)
{
    const char *const opts[] = {"--evals-per-second", "100000", NULL};
    relay r;
    REQUIRE(serve_start(&r, "late", opts));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    char src[256];
    /* pipelined: the relay keeps their order */
    for (unsigned i = 0; i < 200; i++) {
        var_source(src, sizeof src, i % 10, (i / 10) % 2);
        CHECK(send_eval(ed, 1 + i, src));
    }
    uint32_t ok = 0;
    for (unsigned i = 0; i < 200; i++) {
        want w = {PB_T_DIAG, 1 + i, false, false, 0, false, false, 0, 0, ""};
        if (wait_for(ed, &w, 60000) && w.ok && w.seq == i + 1)
            ok++;
    }
    CHECK_EQ_INT(ok, 200);

    pbc_welcome w;
    pbc *late = join(&r, "jam", PB_ROLE_RUNTIME, "late", &w);
    REQUIRE(late);
    CHECK_EQ_INT(w.head_seq, 200);
    patch_log l;
    patch_log_init(&l, &r, "jam");
    CHECK(collect_until(late, &l, 200, 30000));
    CHECK_EQ_INT(l.errors, 0);
    if (l.errors)
        fprintf(stderr, "  %s\n", l.first_error);
    CHECK_EQ_INT(l.n_patches, 200);
    CHECK_EQ_INT(l.n_modules, 10); /* seq 191..200, one per var */
    CHECK(l.n_history_frames >= 4); /* 64 items a frame at most */

    /* then live, next in the chain */
    var_source(src, sizeof src, 3, 7);
    CHECK_EQ_INT(eval(ed, 500, src, NULL), 201);
    CHECK(collect_until(late, &l, 201, 10000));
    CHECK_EQ_INT(l.n_patches, 201);
    CHECK_EQ_INT(l.errors, 0);

    /* joining while evals stream in: nothing missed, nothing doubled */
    for (unsigned i = 0; i < 30; i++) {
        var_source(src, sizeof src, i % 10, 2 + i % 2);
        CHECK(send_eval(ed, 600 + i, src));
    }
    pbc *mid = join(&r, "jam", PB_ROLE_RUNTIME, "mid", NULL);
    REQUIRE(mid);
    patch_log m;
    patch_log_init(&m, &r, "jam");
    CHECK(collect_until(mid, &m, 231, 60000));
    CHECK_EQ_INT(m.errors, 0);
    if (m.errors)
        fprintf(stderr, "  %s\n", m.first_error);
    CHECK_EQ_INT(m.n_patches, 231);
    for (uint32_t i = 0; i < m.n_patches && i < 512; i++)
        if (m.seqs[i] != i + 1) {
            CHECK(m.seqs[i] == i + 1);
            break;
        }
    /* a reconnecting client that holds seq 225 gets 226.. only */
    char tok[PB_MAX_TOKEN_BYTES + 1];
    make_token(&r, "jam", PB_ROLE_RUNTIME, "back", 3600, tok);
    pbc_target t;
    target(&r, "jam", tok, &t);
    pb_errmsg why;
    pbc *back = pbc_open(&t, 5000, &why);
    REQUIRE(back);
    pb_frame h = {.type = PB_T_HELLO};
    h.hello.token = pb_cstr(tok);
    h.hello.since_seq = 225;
    REQUIRE(send_now(back, &h, &why) == 0);
    patch_log b;
    patch_log_init(&b, &r, "jam");
    b.chain.seq = 225; /* as the client holds it */
    memcpy(b.chain.hash, m.hashes[224], PB_HASH_BYTES);
    CHECK(collect_until(back, &b, 231, 10000));
    CHECK_EQ_INT(b.n_patches, 6);
    CHECK_EQ_INT(b.errors, 0);
    pbc_close(back);
    pbc_close(mid);
    pbc_close(late);
    pbc_close(ed);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

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

/* kill -9 while evals are in flight: every patch anyone saw is recorded,
 * the chain verifies from seq 1, and a restarted relay continues it. */
TEST(durability_kill9)
{
    const char *const opts[] = {"--evals-per-second", "100000", NULL};
    relay r;
    REQUIRE(serve_start(&r, "kill", opts));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    pbc *rt = join(&r, "jam", PB_ROLE_RUNTIME, "rt", NULL);
    REQUIRE(ed && rt);
    char src[256];
    for (unsigned i = 0; i < 60; i++) {
        var_source(src, sizeof src, i % 7, i % 3);
        CHECK(send_eval(ed, 1 + i, src));
    }
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
    relay_history *h = relay_history_open_sqlite(db, &why);
    REQUIRE(h);
    uint64_t head = 0, n = 0;
    uint8_t head_hash[PB_HASH_BYTES];
    REQUIRE(relay_history_head(h, "jam", &head, head_hash, &why) == PB_OK);
    CHECK(head >= l.last_seq);
    CHECK(relay_history_verify(h, "jam", pk, &n, &why) == PB_OK);
    CHECK_EQ_INT(n, head);
    relay_history_close(h);
    /* each patch the runtime saw is the recorded one */
    h = relay_history_open_readonly(db, &why);
    REQUIRE(h);
    CHECK(relay_history_patches(h, "jam", 1, UINT64_MAX, false, same_as_seen,
                                &l, &why) == PB_OK);
    CHECK_EQ_INT(l.errors, 0);
    relay_history_close(h);

    /* restart: same key, same head, the chain continues */
    REQUIRE(serve_start(&r, "kill", opts));
    CHECK(memcmp(pk, r.keys.pk, sizeof pk) == 0);
    pbc_welcome w;
    pbc *ed2 = join(&r, "jam", PB_ROLE_EDITOR, "ed", &w);
    REQUIRE(ed2);
    CHECK_EQ_INT(w.head_seq, head);
    var_source(src, sizeof src, 1, 1);
    CHECK_EQ_INT(eval(ed2, 1000, src, NULL), head + 1);
    pbc_close(ed2);
    CHECK_EQ_INT(serve_stop(&r), 0);
    h = relay_history_open_readonly(db, &why);
    REQUIRE(h);
    CHECK(relay_history_verify(h, "jam", pk, &n, &why) == PB_OK);
    CHECK_EQ_INT(n, head + 1);
    relay_history_close(h);
}

/* The compiler's hostile cases through the relay: each is a diag to its
 * author, and the room keeps working. */
TEST(hostile_source_through_relay)
{
    relay r;
    REQUIRE(serve_start(&r, "hostile", NULL));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    pbc *other = join(&r, "jam", PB_ROLE_EDITOR, "other", NULL);
    REQUIRE(ed && other);
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
    /* only the author got the diags; the other editor sees nothing of them,
     * and the room still evaluates */
    const char *good = "#include <patchbay.h>\ndouble g(double v) { return v "
                       "+ 1; }\n";
    CHECK_EQ_INT(eval(other, 1, good, NULL), 1);
    pbc_close(other);
    pbc_close(ed);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

/* SIGTERM with an eval in flight: it is answered and recorded, the relay
 * exits 0. */
TEST(clean_shutdown_answers_evals)
{
    relay r;
    REQUIRE(serve_start(&r, "shutdown", NULL));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    char src[256];
    var_source(src, sizeof src, 5, 5);
    CHECK(send_eval(ed, 7, src));
    pb_errmsg why;
    pbc_wait(ed, 5, NULL, NULL, &why); /* let it leave */
    sleep_ms(20);
    kill(r.pid, SIGTERM);
    want w = {PB_T_DIAG, 7, false, false, 0, false, false, 0, 0, ""};
    CHECK(wait_for(ed, &w, 30000));
    CHECK(w.ok && w.seq == 1);
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
    T(handshake_rejections),
    T(roles_enforced),
    T(limits_rate_and_room_size),
    T(oversized_and_malformed_frames),
    T(slow_consumer_disconnected),
    T(late_joiner_after_200_patches),
    T(durability_kill9),
    T(hostile_source_through_relay),
    T(clean_shutdown_answers_evals),
};

int main(int argc, char **argv)
{
    return harness_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
