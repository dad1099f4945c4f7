/* test_evalflood.c — issue 22, item 1: eval flood. The eval rate was per
 * connection (a reconnect refilled it), the queue unbounded, one compile
 * thread served every room in arrival order, and a job whose author had
 * left was still compiled, signed and broadcast. Now evals are limited per
 * token name and per room, queues are bounded per name, per room and in
 * all (PB_ERR_RATE_LIMITED with when to retry), rooms are served fairly,
 * a departed author's evals are dropped, and an author whose compile hit
 * the time limit is served by a second worker, one eval at a time.
 *
 * usage: test_abuse_evalflood PATCHBAY BACKEND [TEST...] */
#include "../../relay/harness.h"

PB_TEST_RUNNER

/* A source that compiles (a var of its own, unique so that the compile
 * cache does not answer it). */
static void honest(char *out, size_t cap, const char *who, unsigned k)
{
    static unsigned serial;
    snprintf(out, cap,
             "#include <patchbay.h>\ndouble %s%u(double x) { return x * %u.0 "
             "+ %u.0; }\n",
             who, k, k + 1, ++serial + (unsigned)(now_ms() % 100000u));
}

/* A macro that expands to 16 million tokens: it runs into the compile
 * time limit (and the compile server is restarted). n makes it unique. */
static void bomb(char *out, size_t cap, unsigned n)
{
    snprintf(out, cap,
             "#include <patchbay.h>\n#define L0(x) x x x x x x x x\n"
             "#define L1(x) L0(L0(x))\n#define L2(x) L1(L1(x))\n"
             "#define L3(x) L2(L2(x))\ndouble boom%u(double x) { return x "
             "L3(+1); }\n",
             n);
}

/* What came back for evals base..base+63 of one client, and in which
 * order among every client sharing the counter. */
typedef struct reply {
    bool diag, ok, refused;
    uint32_t code;
    uint64_t seq;
    uint32_t at; /* arrival order, from 1 */
    uint64_t at_ms;
    char text[300];
} reply;

typedef struct tally {
    uint64_t base;
    uint32_t *order;
    reply r[64];
    uint32_t n; /* replies in */
} tally;

static int on_tally(void *ctx, const pb_frame *f)
{
    tally *t = ctx;
    uint64_t req = f->type == PB_T_DIAG    ? f->diag.req
                   : f->type == PB_T_ERROR ? f->error.req
                                           : 0;
    if (!req || req < t->base || req >= t->base + 64)
        return 0;
    reply *r = &t->r[req - t->base];
    if (r->diag || r->refused)
        return 0;
    if (f->type == PB_T_DIAG) {
        r->diag = true;
        r->ok = f->diag.ok;
        r->seq = f->diag.seq;
        if (f->diag.n_items)
            snprintf(r->text, sizeof r->text, "%.*s",
                     (int)f->diag.items[0].message.len,
                     f->diag.items[0].message.ptr);
    } else {
        r->refused = true;
        r->code = f->error.code;
        snprintf(r->text, sizeof r->text, "%.*s", (int)f->error.message.len,
                 f->error.message.ptr);
    }
    r->at = ++*t->order;
    r->at_ms = now_ms();
    t->n++;
    return 1;
}

/* Services clients c[0..n) until each tally holds want[i] replies or ms
 * pass. */
static bool gather(pbc **c, tally **t, const uint32_t *want, int n, uint32_t ms)
{
    uint64_t deadline = now_ms() + ms;
    for (;;) {
        bool all = true;
        for (int i = 0; i < n; i++)
            all = all && t[i]->n >= want[i];
        if (all)
            return true;
        if (now_ms() > deadline)
            return false;
        for (int i = 0; i < n; i++) {
            pb_errmsg why;
            while (pbc_wait(c[i], 10, on_tally, t[i], &why) == PBC_WAIT_STOPPED)
                ;
        }
    }
}

static uint32_t count_refused(const tally *t, uint32_t n, const char *says)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++)
        k += t->r[i].refused && t->r[i].code == PB_ERR_RATE_LIMITED &&
             strstr(t->r[i].text, "retry in") &&
             (!says || strstr(t->r[i].text, says));
    return k;
}

static uint32_t count_diags(const tally *t, uint32_t n)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++)
        k += t->r[i].diag;
    return k;
}

/* Before: each connection had a bucket of its own, so a reconnect got a
 * full one (2 evals answered where the rate allows 1 and what refilled). */
TEST(the_eval_rate_is_per_token_name_and_survives_a_reconnect)
{
    const char *const opts[] = {"--evals-per-second", "1", NULL};
    relay r;
    REQUIRE(serve_start(&r, "name-rate", opts));
    uint32_t order = 0;
    char src[512];
    uint64_t t0 = now_ms();
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    tally a = {.base = 1, .order = &order};
    honest(src, sizeof src, "a", 1);
    CHECK(send_eval(ed, 1, src));
    uint32_t one = 1;
    CHECK(gather(&ed, (tally *[]){&a}, &one, 1, 60000));
    pbc_close(ed);
    ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    tally b = {.base = 10, .order = &order};
    honest(src, sizeof src, "a", 2);
    CHECK(send_eval(ed, 10, src));
    CHECK(gather(&ed, (tally *[]){&b}, &one, 1, 60000));
    double s = (double)(now_ms() - t0) / 1000.0;
    uint32_t answered = count_diags(&a, 1) + count_diags(&b, 1);
    printf("# 2 evals over a reconnect in %.2f s: %u answered; %s\n", s,
           answered, b.r[0].text);
    /* 1 of burst, and what refilled at 1 a second */
    CHECK(answered <= 1 + (uint32_t)s);
    if (s < 1.0)
        CHECK_EQ_INT(count_refused(&b, 1, "from ed"), 1);
    /* another name in the room is not affected */
    pbc *other = join(&r, "jam", PB_ROLE_EDITOR, "other", NULL);
    REQUIRE(other);
    honest(src, sizeof src, "b", 1);
    CHECK(eval(other, 1, src, NULL) > 0);
    pbc_close(ed);
    pbc_close(other);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

/* Before: no room rate existed (the option was unknown). */
TEST(a_room_has_an_eval_rate_of_its_own)
{
    const char *const opts[] = {"--room-evals-per-second", "1", NULL};
    relay r;
    REQUIRE(serve_start(&r, "room-rate", opts));
    uint32_t order = 0;
    pbc *ed[3];
    tally t[3];
    const char *names[] = {"ann", "bob", "cy"};
    for (int i = 0; i < 3; i++) {
        ed[i] = join(&r, "jam", PB_ROLE_EDITOR, names[i], NULL);
        REQUIRE(ed[i]);
        t[i] = (tally){.base = 1, .order = &order};
    }
    char src[512];
    uint64_t t0 = now_ms();
    for (int i = 0; i < 3; i++) {
        honest(src, sizeof src, names[i], 1);
        CHECK(send_eval(ed[i], 1, src));
    }
    uint32_t want[3] = {1, 1, 1};
    CHECK(gather(ed, (tally *[]){&t[0], &t[1], &t[2]}, want, 3, 60000));
    double s = (double)(t[2].r[0].at_ms - t0) / 1000.0;
    uint32_t answered = 0;
    for (int i = 0; i < 3; i++)
        answered += count_diags(&t[i], 1);
    printf("# 3 names, 1 eval each: %u answered (%.2f s); %s\n", answered, s,
           t[2].r[0].text);
    /* a burst of 2, then 1 a second */
    CHECK(answered <= 2 + (uint32_t)s);
    if (s < 1.0)
        CHECK_EQ_INT(count_refused(&t[2], 1, "from jam"), 1);
    /* another room is not affected */
    pbc *o = join(&r, "other", PB_ROLE_EDITOR, "ann", NULL);
    REQUIRE(o);
    honest(src, sizeof src, "o", 1);
    CHECK(eval(o, 1, src, NULL) > 0);
    pbc_close(o);
    for (int i = 0; i < 3; i++)
        pbc_close(ed[i]);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

/* Before: every eval was queued (the options were unknown); the queue
 * had no bound. Bombs keep the first jobs compiling for 4 s, so the
 * queues are full when the others arrive. */
TEST(queues_are_bounded_per_name_per_room_and_in_all)
{
    const char *const opts[] = {"--compile-timeout-ms",
                                "4000",
                                "--max-evals-per-name",
                                "2",
                                "--max-evals-per-room",
                                "3",
                                "--max-evals",
                                "4",
                                NULL};
    relay r;
    REQUIRE(serve_start(&r, "queues", opts));
    pbc *ann = join(&r, "jam", PB_ROLE_EDITOR, "ann", NULL);
    pbc *bob = join(&r, "jam", PB_ROLE_EDITOR, "bob", NULL);
    pbc *cy = join(&r, "other", PB_ROLE_EDITOR, "cy", NULL);
    REQUIRE(ann && bob && cy);
    uint32_t order = 0;
    tally ta = {.base = 1, .order = &order}, tb = ta, tc = ta;
    char src[512];
    for (unsigned i = 0; i < 4; i++) { /* ann: 2 queued, 2 refused */
        bomb(src, sizeof src, 10 + i);
        CHECK(send_eval(ann, 1 + i, src));
    }
    uint32_t two = 2;
    CHECK(gather(&ann, (tally *[]){&ta}, &two, 1, 3000));
    for (unsigned i = 0; i < 2; i++) { /* bob: 1 queued, 1 (room) refused */
        bomb(src, sizeof src, 20 + i);
        CHECK(send_eval(bob, 1 + i, src));
    }
    uint32_t one = 1;
    CHECK(gather(&bob, (tally *[]){&tb}, &one, 1, 3000));
    for (unsigned i = 0; i < 2; i++) { /* cy: 1 queued, 1 (relay) refused */
        bomb(src, sizeof src, 30 + i);
        CHECK(send_eval(cy, 1 + i, src));
    }
    CHECK(gather(&cy, (tally *[]){&tc}, &one, 1, 3000));
    printf("# ann: %s\n# bob: %s\n# cy: %s\n", ta.r[2].text, tb.r[1].text,
           tc.r[1].text);
    CHECK_EQ_INT(count_refused(&ta, 4, "ann has 2 evals"), 2);
    CHECK(ta.r[2].refused && ta.r[3].refused);
    CHECK_EQ_INT(count_refused(&tb, 2, "room jam has 3"), 1);
    CHECK(tb.r[1].refused);
    CHECK_EQ_INT(count_refused(&tc, 2, "the relay has 4"), 1);
    CHECK(tc.r[1].refused);
    /* the relay still answers; leaving drops what waits */
    CHECK(ping_ok(ann));
    pbc_close(ann);
    pbc_close(bob);
    pbc_close(cy);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

/* Before: one queue in arrival order, so room B's eval came after all of
 * room A's backlog. */
TEST(one_rooms_backlog_does_not_delay_another_rooms_eval)
{
    relay r;
    REQUIRE(serve_start(&r, "fair", NULL));
    pbc *a = join(&r, "busy", PB_ROLE_EDITOR, "ann", NULL);
    pbc *b = join(&r, "quiet", PB_ROLE_EDITOR, "bob", NULL);
    REQUIRE(a && b);
    uint32_t order = 0;
    tally ta = {.base = 1, .order = &order}, tb = ta;
    char src[512];
    for (unsigned i = 0; i < 8; i++) {
        honest(src, sizeof src, "a", i);
        CHECK(send_eval(a, 1 + i, src));
    }
    honest(src, sizeof src, "b", 0);
    CHECK(send_eval(b, 1, src));
    uint32_t want[2] = {8, 1};
    CHECK(gather((pbc *[]){a, b}, (tally *[]){&ta, &tb}, want, 2, 120000));
    uint32_t before = tb.r[0].at - 1;
    printf("# room quiet's eval answered after %u of room busy's 8\n", before);
    CHECK(tb.r[0].ok);
    CHECK(count_diags(&ta, 8) == 8);
    /* at most the one compiling when it arrived, and one more that may
     * have started before the relay read it */
    CHECK(before <= 2);
    pbc_close(a);
    pbc_close(b);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

/* Before: the 5 evals of an author who left were all compiled, signed and
 * broadcast. */
TEST(the_evals_of_an_author_who_left_are_dropped)
{
    relay r;
    REQUIRE(serve_start(&r, "departed", NULL));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    char src[512];
    for (unsigned i = 0; i < 5; i++) {
        honest(src, sizeof src, "gone", i);
        CHECK(send_eval(ed, 1 + i, src));
    }
    /* the relay has read them (frames are handled in order) before the
     * socket closes: a close with unread frames from the relay pending is
     * a reset, which may throw away what the relay had not read yet */
    CHECK(ping_ok(ed));
    pbc_close(ed);
    /* a later eval in the room runs after whatever of ed's was left:
     * its seq says how many of them became patches */
    pbc *ed2 = join(&r, "jam", PB_ROLE_EDITOR, "ed2", NULL);
    REQUIRE(ed2);
    honest(src, sizeof src, "stay", 0);
    uint64_t seq = eval(ed2, 1, src, NULL);
    printf("# after 5 evals of an author who left: the next patch is #%llu\n",
           (unsigned long long)seq);
    CHECK(seq >= 1);
    CHECK(seq <= 2); /* at most one was signed before it left */
    CHECK(log_has(&r, "dropped"));
    pbc_close(ed2);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

/* Honest eval -> diag in room "quiet", n times, one at a time; returns the
 * median in ms. */
static double honest_ms(pbc *c, uint64_t *req, unsigned n)
{
    double ms[16];
    char src[512];
    for (unsigned i = 0; i < n && i < 16; i++) {
        honest(src, sizeof src, "h", (unsigned)*req);
        uint64_t t0 = now_ms();
        CHECK(eval(c, (*req)++, src, NULL) > 0);
        ms[i] = (double)(now_ms() - t0);
    }
    for (unsigned i = 1; i < n; i++) /* insertion sort */
        for (unsigned k = i; k > 0 && ms[k] < ms[k - 1]; k--) {
            double x = ms[k];
            ms[k] = ms[k - 1];
            ms[k - 1] = x;
        }
    return ms[n / 2];
}

/* Before: a bomb's compile held the only compile server for its whole
 * time limit, and every later eval of every room waited behind it. Now
 * the bomber's second bomb goes to the second worker: an honest eval in
 * another room sent after it is answered before it. */
TEST(a_bombers_evals_do_not_hold_up_other_rooms)
{
    const char *const opts[] = {"--compile-timeout-ms", "1500", NULL};
    relay r;
    REQUIRE(serve_start(&r, "bombs", opts));
    pbc *bomber = join(&r, "loud", PB_ROLE_EDITOR, "bomber", NULL);
    pbc *ed = join(&r, "quiet", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(bomber && ed);
    uint64_t req = 100;
    honest_ms(ed, &req, 2); /* warm */
    double base = honest_ms(ed, &req, 5);

    /* the first bomb: it hits the time limit on the first worker */
    uint32_t order = 0;
    tally tb = {.base = 1, .order = &order}, te = {.base = 1, .order = &order};
    char src[512];
    bomb(src, sizeof src, 1);
    uint64_t t0 = now_ms();
    CHECK(send_eval(bomber, 1, src));
    honest(src, sizeof src, "q", 1);
    sleep_ms(100);
    CHECK(send_eval(ed, 1, src));
    uint32_t want[2] = {1, 1};
    CHECK(gather((pbc *[]){bomber, ed}, (tally *[]){&tb, &te}, want, 2, 60000));
    double first_bomb_ms = (double)(tb.r[0].at_ms - t0);
    double behind_first_ms = (double)(te.r[0].at_ms - t0 - 100);
    CHECK(tb.r[0].diag && !tb.r[0].ok);
    printf("# first bomb: %s (%.0f ms)\n", tb.r[0].text, first_bomb_ms);
    /* the first honest eval after the kill pays for the restart */
    double after_kill = honest_ms(ed, &req, 1);

    /* the second bomb: to the second worker; an honest eval in another
     * room sent after it does not wait for it */
    bomb(src, sizeof src, 2);
    t0 = now_ms();
    CHECK(send_eval(bomber, 2, src));
    sleep_ms(100);
    honest(src, sizeof src, "q", 2);
    CHECK(send_eval(ed, 2, src));
    bomb(src, sizeof src, 3); /* a third while the second compiles */
    CHECK(send_eval(bomber, 3, src));
    want[0] = 3;
    want[1] = 2;
    CHECK(gather((pbc *[]){bomber, ed}, (tally *[]){&tb, &te}, want, 2, 60000));
    double beside_ms = (double)(te.r[1].at_ms - t0 - 100);
    printf("# honest eval -> diag in another room: %.0f ms alone, %.0f ms "
           "behind the first bomb, %.0f ms right after the compile server "
           "was killed (its restart), %.0f ms beside the second bomb\n",
           base, behind_first_ms, after_kill, beside_ms);
    printf("# third bomb: %s\n", tb.r[2].text);
    CHECK(te.r[1].ok);
    CHECK(te.r[1].at < tb.r[1].at);
    CHECK(tb.r[1].diag && !tb.r[1].ok);
    /* one at a time while penalised */
    CHECK_EQ_INT(count_refused(&tb, 3, "time limit"), 1);
    CHECK(log_has(&r, "second worker"));
    pbc_close(bomber);
    pbc_close(ed);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

/* Before: a name's first bomb held the shared compile worker for the
 * whole time limit and the compile server's restart, and an honest eval
 * in another room sent right after it was answered only after the bomb's
 * diag. Now the bomb is stopped at the budget and compiled again on the
 * second worker: the honest eval is answered first. (With the budget at
 * the limit, as before, it fails.) */
TEST(a_first_bomb_holds_other_rooms_only_for_the_budget)
{
    const char *const opts[] = {"--compile-timeout-ms", "4000",
                                "--compile-budget-ms", "1000", NULL};
    relay r;
    REQUIRE(serve_start(&r, "first-bomb", opts));
    pbc *bomber = join(&r, "loud", PB_ROLE_EDITOR, "bomber", NULL);
    pbc *ed = join(&r, "quiet", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(bomber && ed);
    uint64_t req = 100;
    honest_ms(ed, &req, 2); /* warm, and the spare server started */
    uint32_t order = 0;
    tally tb = {.base = 1, .order = &order}, te = {.base = 1, .order = &order};
    char src[512];
    bomb(src, sizeof src, 1);
    CHECK(send_eval(bomber, 1, src));
    sleep_ms(100);
    honest(src, sizeof src, "q", 1);
    CHECK(send_eval(ed, 1, src));
    uint32_t want[2] = {1, 1};
    CHECK(gather((pbc *[]){bomber, ed}, (tally *[]){&tb, &te}, want, 2, 60000));
    printf("# honest eval answered %s the first bomb's diag (%s)\n",
           te.r[0].at < tb.r[0].at ? "before" : "after", tb.r[0].text);
    CHECK(te.r[0].ok);
    CHECK(te.r[0].at < tb.r[0].at);
    /* (the limit, or what the process backend's clang runs into first) */
    CHECK(tb.r[0].diag && !tb.r[0].ok);
    CHECK(log_has(&r, "stopped and compiled again on the second worker"));
    pbc_close(bomber);
    pbc_close(ed);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

/* A legal compile that takes longer than the budget is stopped on the
 * shared worker and compiled again on the second: it still commits, with
 * the same result, and a room's patches keep the order their evals came
 * in, its author's later evals following it (a budget of 1 ms stops every
 * job on a warm server). Before: the option did not exist. */
TEST(a_legal_compile_over_the_budget_still_commits_in_order)
{
    const char *const opts[] = {"--compile-budget-ms", "1", NULL};
    relay r;
    REQUIRE(serve_start(&r, "budget", opts));
    pbc *a = join(&r, "jam", PB_ROLE_EDITOR, "ann", NULL);
    pbc *b = join(&r, "jam", PB_ROLE_EDITOR, "bob", NULL);
    REQUIRE(a && b);
    uint32_t order = 0;
    tally ta = {.base = 1, .order = &order}, tbb = ta;
    char src[512];
    for (unsigned i = 0; i < 3; i++) {
        honest(src, sizeof src, "a", i);
        CHECK(send_eval(a, 1 + i, src));
    }
    sleep_ms(200);
    honest(src, sizeof src, "b", 0);
    CHECK(send_eval(b, 1, src));
    sleep_ms(200);
    honest(src, sizeof src, "a", 3);
    CHECK(send_eval(a, 4, src));
    uint32_t want[2] = {4, 1};
    CHECK(gather((pbc *[]){a, b}, (tally *[]){&ta, &tbb}, want, 2, 120000));
    /* the order they came in: ann 1, 2, 3, bob 1, ann 4 */
    const reply *in_order[5] = {&ta.r[0], &ta.r[1], &ta.r[2], &tbb.r[0],
                                &ta.r[3]};
    for (int i = 0; i < 5; i++) {
        printf("# eval %d: %s seq %llu %s\n", i + 1,
               in_order[i]->ok ? "ok" : "not ok",
               (unsigned long long)in_order[i]->seq, in_order[i]->text);
        CHECK(in_order[i]->diag && in_order[i]->ok);
        CHECK_EQ_INT(in_order[i]->seq, (uint64_t)i + 1);
    }
    CHECK(log_has(&r, "stopped and compiled again on the second worker"));
    /* nothing was struck: slow is not a bomb */
    CHECK(!log_has(&r, "ran into the time limit"));
    pbc_close(a);
    pbc_close(b);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

/* Issue 22, item 9: a diagnostic longer than its buffer was cut in the
 * middle of a character, the diag frame did not encode, and the author
 * waited for an answer forever (failed before: no diag). The undeclared
 * name is echoed in the message; its 'é's (2 bytes each) put the cut
 * inside one whatever the prefix's parity: one source with an odd, one
 * with an even number of ASCII bytes before them. */
TEST(a_diagnostic_cut_by_its_buffer_still_reaches_its_author)
{
    relay r;
    REQUIRE(serve_start(&r, "cut-diag", NULL));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    for (unsigned pad = 0; pad < 2; pad++) {
        char src[8192];
        int n = snprintf(src, sizeof src, "double f(double v) { return v + %s",
                         pad ? "x" : "");
        for (int i = 0; i < 1500; i++)
            n += snprintf(src + n, sizeof src - (size_t)n, "\xc3\xa9");
        snprintf(src + n, sizeof src - (size_t)n, "; }\n");
        want w = {0};
        CHECK_EQ_INT(eval(ed, 1 + pad, src, &w), 0);
        CHECK(w.found && !w.ok && w.n_errors >= 1);
        printf("# pad %u: %zu bytes of message\n", pad, strlen(w.text));
    }
    CHECK(ping_ok(ed));
    pbc_close(ed);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

int main(int argc, char **argv)
{
    static const pb_test tests[] = {
        T(the_eval_rate_is_per_token_name_and_survives_a_reconnect),
        T(a_room_has_an_eval_rate_of_its_own),
        T(queues_are_bounded_per_name_per_room_and_in_all),
        T(one_rooms_backlog_does_not_delay_another_rooms_eval),
        T(the_evals_of_an_author_who_left_are_dropped),
        T(a_bombers_evals_do_not_hold_up_other_rooms),
        T(a_first_bomb_holds_other_rooms_only_for_the_budget),
        T(a_legal_compile_over_the_budget_still_commits_in_order),
        T(a_diagnostic_cut_by_its_buffer_still_reaches_its_author),
    };
    return harness_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
