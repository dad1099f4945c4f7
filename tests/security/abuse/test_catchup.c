/* test_catchup.c — issue 22, item 4: catch-up on the event loop. A
 * history_req was not rate limited and each one read SQLite and encoded up
 * to the whole history at once, so a viewer token could stall every room
 * and fill its own send queue. Now history_req is limited per token name
 * (a reconnect does not refill it), a catch-up is streamed a frame at a
 * time as the client's socket drains, and only so many stream at once.
 *
 * usage: test_abuse_catchup PATCHBAY BACKEND [TEST...] */
#include "../../relay/harness.h"

PB_TEST_RUNNER

/* A patch of about 250 KiB: var aK, padded with a comment. The same k
 * compiles once (the compile cache); each eval is still a patch. */
static char *big_source(unsigned k)
{
    size_t cap = 250u * 1024u;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    int n = snprintf(s, cap,
                     "#include <patchbay.h>\ndouble a%u(double x) { return "
                     "x + %u; }\n/*",
                     k, k);
    memset(s + n, 'x', cap - (size_t)n - 4);
    memcpy(s + cap - 4, "*/\n", 4);
    return s;
}

/* `patchbay serve` with options opt (NULL-terminated, at most 4) whose
 * room "jam" has n patches of about 250 KiB each (n_vars different vars,
 * round robin), for the tests to read back. */
static bool big_history(relay *r, const char *name, const char *const *opt,
                        unsigned n, unsigned n_vars)
{
    const char *opts[12] = {"--evals-per-second",      "100000",
                            "--room-evals-per-second", "100000",
                            "--bytes-per-second",      "268435456"};
    for (int i = 0; opt && opt[i] && i < 5; i++)
        opts[6 + i] = opt[i];
    if (!serve_start(r, name, opts))
        return false;
    pbc *ed = join(r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    if (!ed)
        return false;
    unsigned ok = 0;
    for (unsigned i = 0; i < n; i++) {
        char *src = big_source(i % n_vars);
        want w;
        if (src && eval(ed, 1 + i, src, &w) == i + 1)
            ok++;
        free(src);
    }
    pbc_close(ed);
    return ok == n;
}

/* What one client got for one request. */
typedef struct answer {
    uint64_t req;
    uint32_t frames, items, refused;
    bool done;      /* the frame with more: false */
    uint32_t error; /* the refusal's code */
} answer;

static int on_answer(void *ctx, const pb_frame *f)
{
    answer *a = ctx;

    if (f->type == PB_T_HISTORY && f->history.req == a->req) {
        a->frames++;
        a->items += f->history.n_items;
        a->done = !f->history.more;
        return a->done;
    }
    if (f->type == PB_T_ERROR && f->error.req == a->req) {
        a->refused++;
        a->error = f->error.code;
        return 1;
    }
    return 0;
}

static bool history_req(pbc *c, uint64_t req)
{
    pb_frame f = {.type = PB_T_HISTORY_REQ};
    f.history_req.req = req;
    f.history_req.mode = PB_HISTORY_RANGE;
    pb_errmsg why;
    return send_now(c, &f, &why) == 0;
}

/* Sends n history requests, each once the last is answered, and counts
 * the answers and refusals. */
static void ask(pbc *v, uint64_t first_req, unsigned n, unsigned *answered,
                unsigned *refused)
{
    for (unsigned i = 0; i < n; i++) {
        CHECK(history_req(v, first_req + i));
        answer a = {.req = first_req + i};
        pb_errmsg why;
        while (!a.done && !a.refused &&
               pbc_wait(v, 10000, on_answer, &a, &why) == 1)
            ;
        *answered += a.done;
        *refused += a.refused && a.error == PB_ERR_RATE_LIMITED;
    }
}

TEST(history_req_is_rate_limited_per_token_name_across_reconnects)
{
    relay r;
    REQUIRE(big_history(&r, "rate", NULL, 3, 3));
    pbc *v = join(&r, "jam", PB_ROLE_VIEWER, "vic", NULL);
    REQUIRE(v);
    unsigned answered = 0, refused = 0;
    uint64_t t0 = now_ms();
    ask(v, 100, 30, &answered, &refused);
    double s = (double)(now_ms() - t0) / 1000.0;
    printf("# 30 history_req in %.1f s: %u answered, %u refused\n", s, answered,
           refused);
    /* a burst of 10, then 2 a second */
    CHECK(answered >= 10);
    CHECK(answered <= 10 + (unsigned)(2 * s) + 1);
    CHECK_EQ_INT(answered + refused, 30);
    pbc_close(v);
    /* a new connection with the same token name: still spent */
    v = join(&r, "jam", PB_ROLE_VIEWER, "vic", NULL);
    REQUIRE(v);
    answered = refused = 0;
    ask(v, 200, 5, &answered, &refused);
    printf("# after reconnecting, 5 more: %u answered, %u refused\n", answered,
           refused);
    CHECK(refused >= 3);
    /* another name in the room is not affected */
    pbc *w = join(&r, "jam", PB_ROLE_VIEWER, "wendy", NULL);
    REQUIRE(w);
    answered = refused = 0;
    ask(w, 300, 5, &answered, &refused);
    CHECK_EQ_INT(answered, 5);
    pbc_close(v);
    pbc_close(w);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

/* Reads v's answer to req to its end. */
static answer read_all(pbc *v, uint64_t req)
{
    answer a = {.req = req};
    pb_errmsg why;
    while (!a.done && !a.refused &&
           pbc_wait(v, 30000, on_answer, &a, &why) == 1)
        ;
    return a;
}

TEST(a_catch_up_streams_as_the_socket_drains)
{
    relay r;
    const char *const opt[] = {"--max-queue-bytes", "4194304", NULL};
    REQUIRE(big_history(&r, "drain", opt, 100, 1));
    pbc *v = join(&r, "jam", PB_ROLE_VIEWER, "vic", NULL);
    REQUIRE(v);
    /* 25 MiB of history to a client that does not read for a while:
     * before, all of it was queued at once and the client was closed as
     * a slow consumer (its queue holds 4 MiB) */
    pbc_pause_reading(v, true);
    CHECK(history_req(v, 7));
    pb_errmsg why;
    pbc_wait(v, 1500, NULL, NULL, &why);
    pbc_pause_reading(v, false);
    answer a = read_all(v, 7);
    printf("# %u items in %u frames\n", a.items, a.frames);
    CHECK(!pbc_is_closed(v));
    CHECK(a.done);
    CHECK_EQ_INT(a.items, 100);
    CHECK(a.frames >= 13); /* 2 MiB a frame at most */
    pbc_close(v);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

TEST(catch_ups_beyond_the_cap_wait_their_turn)
{
    relay r;
    const char *const opt[] = {"--max-catchups", "1", NULL};
    REQUIRE(big_history(&r, "cap", opt, 100, 1));
    pbc *a = join(&r, "jam", PB_ROLE_VIEWER, "ann", NULL);
    pbc *b = join(&r, "jam", PB_ROLE_VIEWER, "bob", NULL);
    REQUIRE(a && b);
    /* ann's 25 MiB cannot all fit in the socket buffers while she does
     * not read: hers streams, bob's waits for it */
    pbc_pause_reading(a, true);
    CHECK(history_req(a, 1));
    pb_errmsg why;
    pbc_wait(a, 300, NULL, NULL, &why);
    CHECK(history_req(b, 2));
    answer got = {.req = 2};
    pbc_wait(b, 1500, on_answer, &got, &why);
    CHECK_EQ_INT(got.frames, 0);
    /* ann reads: hers ends, then bob's comes, whole */
    pbc_pause_reading(a, false);
    answer ans = read_all(a, 1);
    CHECK(ans.done);
    CHECK_EQ_INT(ans.items, 100);
    answer bob = read_all(b, 2);
    bob.items += got.items;
    CHECK(bob.done);
    CHECK_EQ_INT(bob.items, 100);
    pbc_close(a);
    pbc_close(b);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

TEST(a_join_catch_up_that_streams_gets_later_patches_once_in_order)
{
    relay r;
    /* 40 different vars: the room's state is all of them, 10 MiB */
    REQUIRE(big_history(&r, "join", NULL, 40, 40));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    pbc_welcome w;
    pbc *rt = join(&r, "jam", PB_ROLE_RUNTIME, "late", &w);
    REQUIRE(ed && rt);
    CHECK_EQ_INT(w.head_seq, 40);
    pbc_pause_reading(rt, true);
    char src[256];
    for (unsigned i = 0; i < 3; i++) {
        var_source(src, sizeof src, 100 + i, i);
        CHECK_EQ_INT(eval(ed, 900 + i, src, NULL), 41 + i);
    }
    pbc_pause_reading(rt, false);
    patch_log l;
    patch_log_init(&l, &r, "jam");
    CHECK(collect_until(rt, &l, 43, 30000));
    CHECK_EQ_INT(l.errors, 0);
    if (l.errors)
        fprintf(stderr, "  %s\n", l.first_error);
    CHECK_EQ_INT(l.n_patches, 43);
    for (uint32_t i = 0; i < l.n_patches && i < 512; i++)
        if (l.seqs[i] != i + 1) {
            CHECK_EQ_INT(l.seqs[i], i + 1);
            break;
        }
    pbc_close(ed);
    pbc_close(rt);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

int main(int argc, char **argv)
{
    static const pb_test tests[] = {
        T(history_req_is_rate_limited_per_token_name_across_reconnects),
        T(a_catch_up_streams_as_the_socket_drains),
        T(catch_ups_beyond_the_cap_wait_their_turn),
        T(a_join_catch_up_that_streams_gets_later_patches_once_in_order),
    };
    return harness_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
