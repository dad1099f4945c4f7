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
    REQUIRE(pbc_parse_url("https://h:2/runtime.html#room=a", &t, &why) == PB_OK);
    CHECK(t.tls && !strcmp(t.room, "a") && t.port == 2);
    memset(&t, 0, sizeof t);
    REQUIRE(pbc_parse_url("ws://h:1", &t, &why) == PB_OK);
    CHECK(!t.tls);
}

TEST(bad_urls_are_refused_naming_the_url)
{
    static const char *const bad[] = {
        "ws://:7888",       "wss://:7888",      "ws://h:0",
        "ws://h:65536",     "ws://h:x",         "ws://h/#room=a%2",
        "ws://h/#room=%zz",
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

static const pb_test tests[] = {
    T(a_ws_url_gives_host_and_port),
    T(a_join_link_gives_room_token_and_key_decoded),
    T(a_token_given_apart_is_kept_unless_the_link_has_one),
    T(wss_and_https_ask_for_tls),
    T(bad_urls_are_refused_naming_the_url),
    T(a_room_too_long_for_the_target_is_refused),
};

PB_TEST_MAIN(tests, NULL)
