/* test_chain.c — the chain rules of docs/PROTOCOL.md § Chain: a good chain
 * advances; a gap, a fork, a reorder, a replay and a statement for another
 * room are each told apart by their own code, and the head never moves on a
 * rejected statement. */
#include "../check.h"
#include "internal.h"
#include "samples.h"

static pb_err check_patch(pb_chain *head, const pb_sample_patch *p,
                          pb_errmsg *why)
{
    uint8_t pk[32], sk[64];
    pb_sample_keypair(pk, sk);
    pb_statement s;
    pb_err e = pb_patch_verify(&p->patch, pk, &s, why);
    if (e)
        return e;
    e = pb_chain_check(head, &s, why);
    if (e == PB_OK)
        pb_chain_advance(head, &s);
    pb_statement_free(&s);
    return e;
}

/* Makes a chain of n patches in room "jam"; p[i] has seq i + 1. */
static void make_chain(pb_sample_patch *p, int n)
{
    for (int i = 0; i < n; i++)
        pb_sample_patch_make(&p[i], "jam", (uint64_t)i + 1,
                             i ? p[i - 1].hash : NULL, i);
}

static void free_chain(pb_sample_patch *p, int n)
{
    for (int i = 0; i < n; i++)
        pb_sample_patch_free(&p[i]);
}

TEST(test_a_good_chain_advances)
{
    pb_sample_patch p[5];
    make_chain(p, 5);
    pb_chain head;
    REQUIRE(pb_chain_init(&head, "jam") == PB_OK);
    for (int i = 0; i < 5; i++) {
        pb_errmsg why;
        pb_err e = check_patch(&head, &p[i], &why);
        if (e)
            fprintf(stderr, "  seq %d: %s\n", i + 1, why.text);
        CHECK(e == PB_OK);
        CHECK(head.seq == (uint64_t)i + 1);
        CHECK(memcmp(head.hash, p[i].hash, 32) == 0);
    }
    free_chain(p, 5);
}

TEST(test_gap_is_rejected_and_head_stays)
{
    pb_sample_patch p[3];
    make_chain(p, 3);
    pb_chain head;
    REQUIRE(pb_chain_init(&head, "jam") == PB_OK);
    REQUIRE(check_patch(&head, &p[0], NULL) == PB_OK);
    pb_errmsg why;
    CHECK(check_patch(&head, &p[2], &why) == PB_ERR_CHAIN_GAP);
    CHECK(strstr(why.text, "expected seq 2") != NULL);
    CHECK(head.seq == 1);
    CHECK(check_patch(&head, &p[1], NULL) == PB_OK);
    CHECK(check_patch(&head, &p[2], NULL) == PB_OK);
    free_chain(p, 3);
}

TEST(test_reorder_is_a_gap_then_a_replay)
{
    pb_sample_patch p[3];
    make_chain(p, 3);
    pb_chain head;
    REQUIRE(pb_chain_init(&head, "jam") == PB_OK);
    REQUIRE(check_patch(&head, &p[0], NULL) == PB_OK);
    /* 3 arrives before 2 */
    CHECK(check_patch(&head, &p[2], NULL) == PB_ERR_CHAIN_GAP);
    REQUIRE(check_patch(&head, &p[1], NULL) == PB_OK);
    REQUIRE(check_patch(&head, &p[2], NULL) == PB_OK);
    /* and an old one again */
    pb_errmsg why;
    CHECK(check_patch(&head, &p[1], &why) == PB_ERR_CHAIN_REPLAY);
    CHECK(check_patch(&head, &p[2], &why) == PB_ERR_CHAIN_REPLAY);
    CHECK(head.seq == 3);
    free_chain(p, 3);
}

TEST(test_fork_is_rejected)
{
    pb_sample_patch p[2], fork2;
    make_chain(p, 2);
    /* seq 2 that names a different predecessor (a relay that forked) */
    uint8_t wrong[32];
    memset(wrong, 0xab, sizeof wrong);
    pb_sample_patch_make(&fork2, "jam", 2, wrong, 7);
    pb_chain head;
    REQUIRE(pb_chain_init(&head, "jam") == PB_OK);
    REQUIRE(check_patch(&head, &p[0], NULL) == PB_OK);
    pb_errmsg why;
    CHECK(check_patch(&head, &fork2, &why) == PB_ERR_CHAIN_FORK);
    CHECK(head.seq == 1);
    CHECK(check_patch(&head, &p[1], NULL) == PB_OK);
    /* a first patch must name the zero hash */
    pb_sample_patch bad1;
    pb_sample_patch_make(&bad1, "jam", 1, wrong, 0);
    pb_chain fresh;
    REQUIRE(pb_chain_init(&fresh, "jam") == PB_OK);
    CHECK(check_patch(&fresh, &bad1, NULL) == PB_ERR_CHAIN_FORK);
    pb_sample_patch_free(&bad1);
    pb_sample_patch_free(&fork2);
    free_chain(p, 2);
}

TEST(test_wrong_room_is_rejected)
{
    pb_sample_patch other;
    pb_sample_patch_make(&other, "other-room", 1, NULL, 0);
    pb_chain head;
    REQUIRE(pb_chain_init(&head, "jam") == PB_OK);
    pb_errmsg why;
    CHECK(check_patch(&head, &other, &why) == PB_ERR_WRONG_ROOM);
    CHECK(strstr(why.text, "other-room") != NULL);
    CHECK(head.seq == 0);
    pb_sample_patch_free(&other);
}

TEST(test_wrong_key_is_rejected_before_the_chain)
{
    pb_sample_patch p;
    pb_sample_patch_make(&p, "jam", 1, NULL, 0);
    uint8_t other[32];
    memset(other, 7, sizeof other);
    pb_statement s;
    CHECK(pb_patch_verify(&p.patch, other, &s, NULL) == PB_ERR_BAD_SIGNATURE);
    pb_sample_patch_free(&p);
}

TEST(test_chain_init_checks_the_room_name)
{
    pb_chain c;
    CHECK(pb_chain_init(&c, "") == PB_ERR_FIELD_RANGE);
    CHECK(pb_chain_init(&c, NULL) == PB_ERR_FIELD_RANGE);
    char name[PB_MAX_NAME_BYTES + 2];
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    CHECK(pb_chain_init(&c, name) == PB_ERR_FIELD_RANGE);
    name[PB_MAX_NAME_BYTES] = '\0';
    CHECK(pb_chain_init(&c, name) == PB_OK);
}

static const pb_test tests[] = {
    T(test_a_good_chain_advances),
    T(test_gap_is_rejected_and_head_stays),
    T(test_reorder_is_a_gap_then_a_replay),
    T(test_fork_is_rejected),
    T(test_wrong_room_is_rejected),
    T(test_wrong_key_is_rejected_before_the_chain),
    T(test_chain_init_checks_the_room_name),
};
static int setup(void)
{
    return pb_init() == PB_OK ? 0 : 1;
}
PB_TEST_MAIN(tests, setup)
