/* test_runtime_flood.c — issue 22, item 6: a runtime token floods the
 * room's editors. Its logs and acks were copied to every editor at up to
 * the byte limit (4 MiB/s); now each frame type a client sends has its own
 * rate per connection (relay/limits.c): past it frames are dropped, not
 * forwarded, each drop is a refusal, and a flood ends in a disconnect. An
 * honest runtime in another room is not touched. */
#include "../../relay/harness.h"

PB_TEST_RUNNER

/* Counts the frames of one type an editor receives. */
typedef struct counter {
    pb_type type;
    uint32_t n;
} counter;

static int count(void *ctx, const pb_frame *f)
{
    counter *c = ctx;
    if (f->type == c->type)
        c->n++;
    return 0;
}

static void send_logs(pbc *rt, uint32_t n)
{
    for (uint32_t i = 0; i < n && !pbc_is_closed(rt); i++) {
        pb_frame f = {.type = PB_T_LOG};
        f.log.level = PB_LOG_INFO;
        f.log.text = pb_cstr("flood flood flood flood flood flood flood");
        pb_errmsg why;
        if (send_now(rt, &f, &why))
            break;
    }
}

TEST(a_log_flood_reaches_editors_bounded_and_ends_in_a_disconnect)
{
    relay r;
    REQUIRE(inproc_start(&r, "logs", NULL));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    pbc *rt = join(&r, "jam", PB_ROLE_RUNTIME, "phone", NULL);
    pbc *calm_ed = join(&r, "calm", PB_ROLE_EDITOR, "ann", NULL);
    pbc *calm_rt = join(&r, "calm", PB_ROLE_RUNTIME, "stage", NULL);
    REQUIRE(ed && rt && calm_ed && calm_rt);
    uint64_t t0 = now_ms();
    send_logs(rt, 1000);
    counter c = {PB_T_LOG, 0};
    pb_errmsg why;
    pbc_wait(ed, 1500, count, &c, &why);
    double s = (double)(now_ms() - t0) / 1000.0;
    printf("# %u of 1000 log frames reached the editor in %.2f s\n", c.n, s);
    /* the burst (100) and 30 a second, not 1000 */
    CHECK(c.n >= 100);
    CHECK(c.n <= 100 + (uint32_t)(30 * s) + 5);
    /* past its budget of refusals the flooder is closed (its error frame
     * may be lost: closing a socket with unread input resets it) */
    CHECK(expect_closed(rt));
    /* the other room's runtime's logs flow */
    pb_frame f = {.type = PB_T_LOG};
    f.log.level = PB_LOG_INFO;
    f.log.text = pb_cstr("hello from the stage");
    REQUIRE(send_now(calm_rt, &f, &why) == 0);
    want w = {.type = PB_T_LOG};
    CHECK(wait_for(calm_ed, &w, 5000));
    pbc_close(ed);
    pbc_close(rt);
    pbc_close(calm_ed);
    pbc_close(calm_rt);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

TEST(an_ack_flood_reaches_editors_bounded)
{
    relay r;
    REQUIRE(inproc_start(&r, "acks", NULL));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    pbc *rt = join(&r, "jam", PB_ROLE_RUNTIME, "phone", NULL);
    REQUIRE(ed && rt);
    uint64_t t0 = now_ms();
    pb_errmsg why;
    for (uint32_t i = 0; i < 2000 && !pbc_is_closed(rt); i++) {
        pb_frame f = {.type = PB_T_ACK};
        f.ack.seq = 1;
        f.ack.state = PB_ACK_COMMITTED;
        f.ack.commit_at_us = 1700000000000000ull + i;
        if (send_now(rt, &f, &why))
            break;
    }
    counter c = {PB_T_ACK, 0};
    pbc_wait(ed, 1500, count, &c, &why);
    double s = (double)(now_ms() - t0) / 1000.0;
    printf("# %u of 2000 ack frames reached the editor in %.2f s\n", c.n, s);
    CHECK(c.n >= 200);
    CHECK(c.n <= 200 + (uint32_t)(100 * s) + 5);
    CHECK(expect_closed(rt));
    pbc_close(ed);
    pbc_close(rt);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

int main(int argc, char **argv)
{
    static const pb_test tests[] = {
        T(a_log_flood_reaches_editors_bounded_and_ends_in_a_disconnect),
        T(an_ack_flood_reaches_editors_bounded),
    };
    return harness_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
