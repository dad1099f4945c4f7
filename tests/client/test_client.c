/* test_client.c — client/'s URLs: what `patchbay eval --url/--link` and
 * the tests connect to. Join links carry percent-encoded values (as
 * `patchbay token` prints them); a value that does not decode or fit is
 * refused with the URL named; wss:// and https:// ask for TLS. */
#include "../check.h"
#include "pbc.h"

#include <string.h>

TEST(a_ws_url_gives_host_and_port)
{
    pbc_target t = {0};
    pb_errmsg why = {{0}};
    REQUIRE(pbc_parse_url("ws://127.0.0.1:9001", &t, &why) == PB_OK);
    CHECK(!strcmp(t.host, "127.0.0.1"));
    CHECK_EQ_INT(t.port, 9001);
    REQUIRE(pbc_parse_url("relay.example", &t, &why) == PB_OK);
    CHECK(!strcmp(t.host, "relay.example"));
    CHECK_EQ_INT(t.port, PBC_DEFAULT_PORT);
}

TEST(a_join_link_gives_room_token_and_key_decoded)
{
    char room[3 * 64 + 1];
    pbc_url_encode("jam session/2 ü", room, sizeof room);
    CHECK(!strcmp(room, "jam%20session%2F2%20%C3%BC"));
    char link[512];
    snprintf(link, sizeof link,
             "http://h:7888/editor.html#room=%s&token=pb1.a-b_c.d&key=%s", room,
             "00ff");
    pbc_target t = {0};
    pb_errmsg why = {{0}};
    REQUIRE(pbc_parse_url(link, &t, &why) == PB_OK);
    CHECK(!strcmp(t.room, "jam session/2 ü"));
    CHECK(!strcmp(t.token, "pb1.a-b_c.d"));
    CHECK(!strcmp(t.key_hex, "00ff"));
}

TEST(a_token_given_apart_is_kept_unless_the_link_has_one)
{
    pbc_target t = {0};
    strcpy(t.token, "from-flag");
    pb_errmsg why = {{0}};
    REQUIRE(pbc_parse_url("ws://h:1/#room=jam", &t, &why) == PB_OK);
    CHECK(!strcmp(t.token, "from-flag"));
    REQUIRE(pbc_parse_url("ws://h:1/#room=jam&token=", &t, &why) == PB_OK);
    CHECK(!strcmp(t.token, "from-flag"));
    REQUIRE(pbc_parse_url("ws://h:1/#token=from-link", &t, &why) == PB_OK);
    CHECK(!strcmp(t.token, "from-link"));
}

TEST(wss_and_https_ask_for_tls)
{
    pbc_target t = {0};
    pb_errmsg why = {{0}};
    REQUIRE(pbc_parse_url("wss://h:1", &t, &why) == PB_OK);
    CHECK(t.tls && !strcmp(t.host, "h") && t.port == 1);
    memset(&t, 0, sizeof t);
    REQUIRE(pbc_parse_url("https://h:2/runtime.html#room=a", &t, &why) ==
            PB_OK);
    CHECK(t.tls && !strcmp(t.room, "a") && t.port == 2);
    memset(&t, 0, sizeof t);
    REQUIRE(pbc_parse_url("ws://h:1", &t, &why) == PB_OK);
    CHECK(!t.tls);
}

TEST(bad_urls_are_refused_naming_the_url)
{
    static const char *const bad[] = {
        "ws://:7888", "wss://:7888",      "ws://h:0",         "ws://h:65536",
        "ws://h:x",   "ws://h/#room=a%2", "ws://h/#room=%zz",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pbc_target t = {0};
        pb_errmsg why = {{0}};
        CHECK(pbc_parse_url(bad[i], &t, &why) == PB_ERR_FIELD_RANGE);
        if (!strstr(why.text, bad[i]))
            fprintf(stderr, "  %s: \"%s\"\n", bad[i], why.text);
        CHECK(strstr(why.text, bad[i]) != NULL);
    }
}

TEST(a_room_too_long_for_the_target_is_refused)
{
    char link[1024] = "ws://h/#room=";
    for (int i = 0; i < 65; i++)
        strcat(link, "r");
    pbc_target t = {0};
    pb_errmsg why = {{0}};
    CHECK(pbc_parse_url(link, &t, &why) == PB_ERR_FIELD_RANGE);
    link[strlen(link) - 1] = '\0'; /* 64 bytes fit */
    CHECK(pbc_parse_url(link, &t, &why) == PB_OK);
    CHECK_EQ_INT(strlen(t.room), 64);
}

TEST(a_link_names_more_relays_in_order_without_repeats)
{
    pbc_target t = {0};
    pb_errmsg why = {{0}};
    REQUIRE(pbc_parse_url("http://a:1/runtime.html#room=r&token=t"
                          "&relays=b%3A2%2Cwss%3A%2F%2Fc%3A3,a:1,https://d",
                          &t, &why) == PB_OK);
    REQUIRE(pbc_target_relays(&t) == 4);
    pbc_relay r = pbc_target_relay(&t, 0);
    CHECK(!strcmp(r.host, "a") && r.port == 1 && !r.tls);
    r = pbc_target_relay(&t, 1);
    CHECK(!strcmp(r.host, "b") && r.port == 2 && !r.tls);
    r = pbc_target_relay(&t, 2);
    CHECK(!strcmp(r.host, "c") && r.port == 3 && r.tls);
    r = pbc_target_relay(&t, 3);
    CHECK(!strcmp(r.host, "d") && r.port == PBC_DEFAULT_PORT && r.tls);
    CHECK(!strcmp(t.room, "r") && !strcmp(t.token, "t"));
    /* --url A,B: an entry without a scheme takes the first one's */
    REQUIRE(pbc_parse_url("wss://a:1,b:2", &t, &why) == PB_OK);
    REQUIRE(pbc_target_relays(&t) == 2);
    r = pbc_target_relay(&t, 1);
    CHECK(!strcmp(r.host, "b") && r.port == 2 && r.tls);
    /* parsing again starts afresh */
    REQUIRE(pbc_parse_url("ws://a:1", &t, &why) == PB_OK);
    CHECK_EQ_INT(pbc_target_relays(&t), 1);
}

/* A link to a wss:// relay whose &relays= (or --url A,B) names a plain
 * ws:// one is refused, saying why: failing over to it would send the
 * token in clear to whoever made the first unreachable. TLS relays are
 * fine. Failed before (the plain relay was tried). */
TEST(a_tls_link_names_tls_relays_only)
{
    static const char *const links[] = {
        "wss://a:1/runtime.html#room=r&token=t&relays=ws://b:2",
        "https://a:1/runtime.html#room=r&token=t&relays=http%3A%2F%2Fb%3A2",
        "wss://a:1,ws://b:2",
    };
    for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
        pbc_target t = {0};
        pb_errmsg why = {{0}};
        CHECK_EQ_INT(pbc_parse_url(links[i], &t, &why), PB_ERR_FIELD_RANGE);
        CHECK(strstr(why.text, "plain-text") != NULL);
        CHECK(strstr(why.text, "token=t") == NULL);
    }
    pbc_target t = {0};
    pb_errmsg why = {{0}};
    CHECK_EQ_INT(pbc_parse_url("wss://a:1,b:2,wss://c:3", &t, &why), PB_OK);
    CHECK_EQ_INT(pbc_target_relays(&t), 3);
    CHECK(pbc_target_relay(&t, 1).tls && pbc_target_relay(&t, 2).tls);
    /* a plain link may name TLS relays (no secret gets less protected) */
    CHECK_EQ_INT(pbc_parse_url("ws://a:1,wss://b:2", &t, &why), PB_OK);
}

TEST(bad_or_too_many_relays_are_refused_naming_the_link)
{
    static const char *const bad[] = {
        "ws://h:1/#relays=b:x",
        "ws://h:1/#relays=:2",
        "ws://h:1,",
        "ws://h:1,b:0",
        "ws://h:1/#relays=b:2,:3",
        "ws://a:1/#relays=b:1,c:1,d:1,e:1,f:1,g:1,h:1,i:1",
        "ws://h:1/#relays=b:2/x",
        "ws://h:1,b:2/x",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pbc_target t = {0};
        pb_errmsg why = {{0}};
        CHECK(pbc_parse_url(bad[i], &t, &why) == PB_ERR_FIELD_RANGE);
        if (!strstr(why.text, bad[i]))
            fprintf(stderr, "  %s: \"%s\"\n", bad[i], why.text);
        CHECK(strstr(why.text, bad[i]) != NULL);
    }
    pbc_target t = {0};
    pb_errmsg why = {{0}};
    CHECK(pbc_parse_url("ws://a:1/#relays=b:1,c:1,d:1,e:1,f:1,g:1,h:1", &t,
                        &why) == PB_OK); /* 8 in all */
    CHECK_EQ_INT(pbc_target_relays(&t), PBC_MAX_RELAYS);
}

static const pb_test tests[] = {
    T(a_ws_url_gives_host_and_port),
    T(a_join_link_gives_room_token_and_key_decoded),
    T(a_token_given_apart_is_kept_unless_the_link_has_one),
    T(wss_and_https_ask_for_tls),
    T(bad_urls_are_refused_naming_the_url),
    T(a_room_too_long_for_the_target_is_refused),
    T(a_link_names_more_relays_in_order_without_repeats),
    T(bad_or_too_many_relays_are_refused_naming_the_link),
    T(a_tls_link_names_tls_relays_only),
};

PB_TEST_MAIN(tests, NULL)
