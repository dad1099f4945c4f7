/* test_bencode.c — nrepl/bencode.c, the gate of every byte an nREPL client
 * sends: a message is found whole however it is split into reads; every
 * truncation asks for more and never errs; each kind of malformed input is
 * refused at its byte; nesting, strings and messages over the limits are
 * refused; the parser builds what was sent and the encoder writes sorted
 * keys. */
#include "../check.h"
#include "bencode.h"

#include <stdlib.h>
#include <string.h>

#define MAX (1u << 20)

static const char MSG[] =
    "d4:code8:(ggg 10)2:id2:424:linei-3e3:opsl5:clone4:evalee";

/* Scans s whole; returns the status, *end where it ended. */
static ben_status scan_all(const char *s, size_t len, size_t max, size_t *end,
                           char *err)
{
    ben_scanner sc = {0};
    return ben_scan(&sc, (const uint8_t *)s, len, max, end, err, 200);
}

TEST(test_a_message_is_found_whole_however_it_arrives)
{
    size_t n = sizeof MSG - 1, end = 0;
    char err[200];
    CHECK(scan_all(MSG, n, MAX, &end, err) == BEN_DONE);
    CHECK_EQ_INT(end, n);
    /* byte by byte: more, more, …, done at the last one */
    ben_scanner sc = {0};
    for (size_t i = 1; i <= n; i++) {
        ben_status st =
            ben_scan(&sc, (const uint8_t *)MSG, i, MAX, &end, err, sizeof err);
        if (i < n)
            CHECK(st == BEN_MORE);
        else
            CHECK(st == BEN_DONE && end == n);
    }
    /* two messages in one read: the first ends where it ends */
    char two[2 * sizeof MSG];
    memcpy(two, MSG, n);
    memcpy(two + n, MSG, n);
    CHECK(scan_all(two, 2 * n, MAX, &end, err) == BEN_DONE);
    CHECK_EQ_INT(end, n);
}

TEST(test_every_truncation_asks_for_more)
{
    char err[200];
    size_t end;
    for (size_t len = 0; len < sizeof MSG - 1; len++) {
        ben_status st = scan_all(MSG, len, MAX, &end, err);
        if (st != BEN_MORE)
            fprintf(stderr, "  at %zu: %s\n", len, err);
        CHECK(st == BEN_MORE);
    }
}

TEST(test_malformed_input_is_refused_at_its_byte)
{
    static const struct {
        const char *in, *what;
    } cases[] = {
        {"x", "an unexpected byte 0x78 at byte 0"},
        {"i01e", "a malformed integer at byte 0"},
        {"i-0e", "a malformed integer at byte 0"},
        {"ie", "a malformed integer at byte 0"},
        {"i12x4e", "a malformed integer at byte 0"},
        {"01:a", "a malformed string length at byte 0"},
        {"d1:ae", "a dictionary key without a value at byte 4"},
        {"di1e1:ae", "a dictionary key that is not a string at byte 1"},
        {"dl", "a dictionary key that is not a string at byte 1"},
        {"e", "an 'e' that ends nothing at byte 0"},
        {"l1:a)", "an unexpected byte 0x29 at byte 4"},
        {"i12345678901234567890123e", "a malformed integer at byte 0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[200] = "";
        size_t end;
        ben_status st =
            scan_all(cases[i].in, strlen(cases[i].in), MAX, &end, err);
        if (st != BEN_ERROR || !strstr(err, cases[i].what))
            fprintf(stderr, "  \"%s\": %d \"%s\"\n", cases[i].in, st, err);
        CHECK(st == BEN_ERROR && strstr(err, cases[i].what));
    }
}

TEST(test_limits_are_enforced)
{
    char err[200];
    size_t end;
    /* nesting: 32 levels are fine, 33 are not */
    char deep[80];
    memset(deep, 'l', 32);
    memset(deep + 32, 'e', 32);
    CHECK(scan_all(deep, 64, MAX, &end, err) == BEN_DONE);
    memset(deep, 'l', 33);
    CHECK(scan_all(deep, 33, MAX, &end, err) == BEN_ERROR);
    CHECK(strstr(err, "nesting deeper than the limit at byte 32"));
    /* a string that says it is longer than the limit, before its bytes */
    CHECK(scan_all("d4:code2000:", 12, 1000, &end, err) == BEN_ERROR);
    CHECK(strstr(err, "a string longer than the limit at byte 7"));
    /* a message that keeps going past the limit without ending */
    char *big = malloc(3000);
    REQUIRE(big);
    big[0] = 'l';
    for (int i = 1; i < 3000; i++)
        big[i] = i % 3 == 1 ? 'i' : i % 3 == 2 ? '1' : 'e';
    CHECK(scan_all(big, 3000, 1000, &end, err) == BEN_ERROR);
    CHECK(strstr(err, "a message longer than the limit"));
    free(big);
    /* at the limit exactly is fine */
    CHECK(scan_all("3:abc", 5, 5, &end, err) == BEN_DONE);
    CHECK(scan_all("3:abc", 5, 4, &end, err) == BEN_ERROR);
}

TEST(test_a_large_message_dribbled_byte_by_byte)
{
    /* the scanner resumes where it stopped: linear in the input */
    size_t n = 65536;
    char *s = malloc(n + 32);
    REQUIRE(s);
    int h = snprintf(s, 32, "d4:code%zu:", n - 20);
    memset(s + h, 'x', n - 20);
    size_t len = (size_t)h + n - 20;
    s[len++] = 'e';
    ben_scanner sc = {0};
    size_t end = 0;
    char err[200];
    ben_status st = BEN_MORE;
    for (size_t i = 1; i <= len && st == BEN_MORE; i++)
        st = ben_scan(&sc, (const uint8_t *)s, i, MAX, &end, err, sizeof err);
    CHECK(st == BEN_DONE && end == len);
    free(s);
}

TEST(test_the_parser_builds_what_was_sent)
{
    ben_arena a = {0};
    ben *v = ben_parse(&a, (const uint8_t *)MSG, sizeof MSG - 1);
    REQUIRE(v && v->kind == BEN_DICT && v->n == 4);
    CHECK(!strcmp(ben_cstr(&a, ben_get(v, "code")), "(ggg 10)"));
    CHECK(!strcmp(ben_cstr(&a, ben_get(v, "id")), "42"));
    const ben *line = ben_get(v, "line");
    REQUIRE(line && line->kind == BEN_INT);
    CHECK(line->i == -3);
    const ben *ops = ben_get(v, "ops");
    REQUIRE(ops && ops->kind == BEN_LIST && ops->n == 2);
    CHECK(ops->items[1]->len == 4 && !memcmp(ops->items[1]->s, "eval", 4));
    CHECK(ben_get(v, "nope") == NULL);
    CHECK(!strcmp(ben_cstr(&a, ben_get(v, "line")), "")); /* not a string */
    ben_arena_free(&a);
}

TEST(test_the_encoder_sorts_keys_and_round_trips)
{
    ben_arena a = {0};
    ben *d = ben_new_dict(&a), *l = ben_new_list(&a);
    ben_put_cstr(&a, d, "zeta", "z");
    ben_put(&a, d, "alpha", ben_new_int(&a, -7));
    ben_push(&a, l, ben_new_cstr(&a, "done"));
    ben_put(&a, d, "status", l);
    ben_put_cstr(&a, d, "zeta", "again"); /* replaces */
    size_t n = 0;
    uint8_t *out = ben_encode(d, &n);
    REQUIRE(out);
    static const char want[] = "d5:alphai-7e6:statusl4:donee4:zeta5:againe";
    CHECK(n == sizeof want - 1 && !memcmp(out, want, n));
    size_t end;
    char err[200];
    CHECK(scan_all((const char *)out, n, MAX, &end, err) == BEN_DONE &&
          end == n);
    free(out);
    ben_arena_free(&a);
}

static const pb_test tests[] = {
    T(test_a_message_is_found_whole_however_it_arrives),
    T(test_every_truncation_asks_for_more),
    T(test_malformed_input_is_refused_at_its_byte),
    T(test_limits_are_enforced),
    T(test_a_large_message_dribbled_byte_by_byte),
    T(test_the_parser_builds_what_was_sent),
    T(test_the_encoder_sorts_keys_and_round_trips),
};
PB_TEST_MAIN(tests, NULL)
