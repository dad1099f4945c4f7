/* test_relay_inproc.c — relays run inside this process (relay_new,
 * relay_serve on a thread, relay_stop), driven by real WebSocket clients:
 * two relays live side by side without sharing any state.
 *
 * usage: test_relay_inproc PATCHBAY BACKEND [TEST...] */
#include "harness.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/allocator_interface.h>
#define HEAP_IN_USE() __sanitizer_get_current_allocated_bytes()
#endif
#endif
#ifndef HEAP_IN_USE
#define HEAP_IN_USE() mallinfo2().uordblks
#endif

PB_TEST_RUNNER

/* Two relays in one process: each has its own key, rooms and chain; a
 * patch accepted by one is neither seen by nor counted in the other. */
TEST(two_relays_in_one_process_share_nothing)
{
    relay a, b;
    REQUIRE(inproc_start(&a, "two-a", NULL));
    REQUIRE(inproc_start(&b, "two-b", NULL));
    CHECK(a.port != b.port);
    CHECK(memcmp(a.keys.pk, b.keys.pk, PB_PUBLICKEY_BYTES) != 0);
    pbc *ed_a = join(&a, "jam", PB_ROLE_EDITOR, "ed-a", NULL);
    pbc *rt_a = join(&a, "jam", PB_ROLE_RUNTIME, "rt-a", NULL);
    pbc *ed_b = join(&b, "jam", PB_ROLE_EDITOR, "ed-b", NULL);
    pbc *rt_b = join(&b, "jam", PB_ROLE_RUNTIME, "rt-b", NULL);
    REQUIRE(ed_a && rt_a && ed_b && rt_b);
    char src[256];
    var_source(src, sizeof src, 1, 1);
    CHECK_EQ_INT(eval(ed_a, 1, src, NULL), 1);
    CHECK_EQ_INT(eval(ed_a, 2, src, NULL), 2);
    /* b's room of the same name starts its own chain at 1 */
    CHECK_EQ_INT(eval(ed_b, 1, src, NULL), 1);
    patch_log la, lb;
    patch_log_init(&la, &a, "jam");
    patch_log_init(&lb, &b, "jam");
    CHECK(collect_until(rt_a, &la, 2, 20000));
    CHECK(collect_until(rt_b, &lb, 1, 20000));
    CHECK_EQ_INT(la.errors, 0); /* signed with a's key, a's chain */
    CHECK_EQ_INT(lb.errors, 0);
    CHECK_EQ_INT(la.n_patches, 2);
    CHECK_EQ_INT(lb.n_patches, 1);
    /* a token of one relay means nothing to the other */
    char tok[PB_MAX_TOKEN_BYTES + 1];
    make_token(&a, "jam", PB_ROLE_VIEWER, "x", 3600, tok);
    pbc_target t;
    target(&b, NULL, tok, &t);
    pb_errmsg why = {{0}};
    pbc *wrong = pbc_connect(&t, "test", 10000, NULL, &why);
    CHECK(wrong == NULL);
    pbc_close(wrong);
    /* stopping one leaves the other serving */
    pbc_close(ed_a);
    pbc_close(rt_a);
    CHECK_EQ_INT(serve_stop(&a), 0);
    CHECK(ping_ok(ed_b));
    pbc_welcome w;
    pbc *late = join(&b, "jam", PB_ROLE_VIEWER, "late", &w);
    CHECK(late != NULL);
    CHECK_EQ_INT(w.head_seq, 1);
    pbc_close(late);
    pbc_close(ed_b);
    pbc_close(rt_b);
    CHECK_EQ_INT(serve_stop(&b), 0);
}

/* A compile server that answers with 100 diagnostics (a real one keeps 32):
 * the author gets a diag frame with as many as the protocol allows, and
 * the relay keeps serving. */
/* A relay in this process whose compile server is fake_cc_server MODE
 * (beside this test's binary). */
static bool start_with_fake(relay *r, const char *mode)
{
    static char fake[4096];
    ssize_t n = readlink("/proc/self/exe", fake, sizeof fake - 1);
    if (n <= 0)
        return false;
    fake[n] = '\0';
    snprintf(strrchr(fake, '/') + 1, sizeof fake - (size_t)n, "%s",
             "fake_cc_server");
    const char *argv[] = {fake, mode, NULL};
    relay_config cfg = {0};
    cfg.compiler_argv = argv;
    return inproc_start(r, mode, &cfg);
}

TEST(too_many_diagnostics_from_the_compile_server_are_cut_to_the_limit)
{
    relay r;
    REQUIRE(start_with_fake(&r, "many-diags"));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    want w;
    CHECK_EQ_INT(eval(ed, 1, "double f(double v) { return v; }\n", &w), 0);
    CHECK(w.found && !w.ok);
    CHECK_EQ_INT(w.n_errors, PB_MAX_DIAGS);
    CHECK(strcmp(w.text, "fake error 1") == 0);
    CHECK(ping_ok(ed));
    pbc_close(ed);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

/* A compile server runs what anyone sends it; one that was taken over
 * answers with a module that imports what the runtime does not offer,
 * exports a name into the runtime's symbol table, or defines another var
 * than it says. The relay reads the module itself and signs none of them
 * (failed before: each was signed as patch 1); a well-formed one it signs.
 * Issue 22, item 7. */
TEST(the_relay_signs_no_hostile_module_from_its_compile_server)
{
    static const struct {
        const char *mode, *says;
    } cases[] = {
        {"import-system", "imports env.system"},
        {"export-evil", "exports evil"},
        {"lying-defs", "defines pb_frame"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        relay r;
        REQUIRE(start_with_fake(&r, cases[i].mode));
        pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
        pbc *rt = join(&r, "jam", PB_ROLE_RUNTIME, "rt", NULL);
        REQUIRE(ed && rt);
        CHECK(send_eval(ed, 1, "double f(double v) { return v; }\n"));
        want w = {PB_T_ERROR, 1, false, false, 0, false, false, 0, 0, ""};
        CHECK(wait_for(ed, &w, 30000));
        printf("# %s: %s\n", cases[i].mode, w.text);
        CHECK_EQ_INT(w.code, PB_ERR_COMPILER_DOWN);
        CHECK(strstr(w.text, cases[i].says) != NULL);
        patch_log l;
        patch_log_init(&l, &r, "jam");
        collect_until(rt, &l, 1, 300);
        CHECK_EQ_INT(l.n_patches, 0);
        pbc_close(ed);
        pbc_close(rt);
        CHECK_EQ_INT(serve_stop(&r), 0);
    }
    relay r;
    REQUIRE(start_with_fake(&r, "plain"));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    CHECK_EQ_INT(eval(ed, 1, "double f(double v) { return v; }\n", NULL), 1);
    pbc_close(ed);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

/* The link `patchbay token` prints percent-encodes the room; a client
 * that follows it joins that room: the path /r/ROOM must name the same
 * room as the token, or the relay refuses. Failed before: the client did
 * not decode the link and the relay decoded the path twice, so "%41"
 * arrived as "A". */
TEST(a_join_link_for_a_room_with_a_space_or_percent_joins_it)
{
    relay r;
    REQUIRE(inproc_start(&r, "link-room", NULL));
    char tok[PB_MAX_TOKEN_BYTES + 1], room[200], link[1024];
    make_token(&r, "jam %41 session", PB_ROLE_VIEWER, "v", 3600, tok);
    pbc_url_encode("jam %41 session", room, sizeof room);
    snprintf(link, sizeof link,
             "http://127.0.0.1:%d/runtime.html#room=%s"
             "&token=%s&key=%s",
             r.port, room, tok, r.keys.pk_hex);
    pbc_target t = {0};
    pb_errmsg why = {{0}};
    REQUIRE(pbc_parse_url(link, &t, &why) == PB_OK);
    pbc_welcome w;
    pbc *c = pbc_connect(&t, "test", 10000, &w, &why);
    if (!c)
        fprintf(stderr, "  %s\n", why.text);
    CHECK(c != NULL);
    CHECK(c && !strcmp(w.room, "jam %41 session"));
    pbc_close(c);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

/* A port where nothing listens: bound, never listening, so a connection
 * to it is refused at once (and no one else gets the port meanwhile). */
static int dead_port(int *fd)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof a;
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    if (*fd < 0 || bind(*fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(*fd, (struct sockaddr *)&a, &l) < 0)
        return -1;
    return ntohs(a.sin_port);
}

/* Failover (docs/PROTOCOL.md § Transport): a link whose first relay is
 * gone joins through the next one it names; a relay that refuses the
 * token ends the attempt (the others would refuse it too). */
TEST(a_link_whose_first_relay_is_dead_joins_through_the_next)
{
    relay r;
    REQUIRE(inproc_start(&r, "failover", NULL));
    int fd = -1, dead = dead_port(&fd);
    REQUIRE(dead > 0);
    char tok[PB_MAX_TOKEN_BYTES + 1], link[1024];
    make_token(&r, "jam", PB_ROLE_VIEWER, "v", 3600, tok);
    snprintf(link, sizeof link,
             "http://127.0.0.1:%d/runtime.html#room=jam&token=%s&key=%s"
             "&relays=127.0.0.1:%d",
             dead, tok, r.keys.pk_hex, r.port);
    pbc_target t = {0};
    pb_errmsg why = {{0}};
    REQUIRE(pbc_parse_url(link, &t, &why) == PB_OK);
    CHECK_EQ_INT(pbc_target_relays(&t), 2);
    pbc_welcome w = {0};
    pbc *c = pbc_connect(&t, "test", 10000, &w, &why);
    if (!c)
        fprintf(stderr, "  %s\n", why.text);
    CHECK(c != NULL);
    CHECK_EQ_INT(w.relay, 1);
    pbc_close(c);

    /* the live relay first, and a token it refuses: no second try */
    snprintf(link, sizeof link, "ws://127.0.0.1:%d,ws://127.0.0.1:%d", r.port,
             dead);
    memset(&t, 0, sizeof t);
    strcpy(t.token, "pb1.not-a-token");
    REQUIRE(pbc_parse_url(link, &t, &why) == PB_OK);
    CHECK(pbc_connect(&t, "test", 10000, &w, &why) == NULL);
    CHECK(strstr(why.text, "refused") != NULL);
    CHECK(strstr(why.text, "no relay") == NULL);

    /* none answers: every one is named */
    snprintf(link, sizeof link, "ws://127.0.0.1:%d,ws://localhost:%d", dead,
             dead);
    REQUIRE(pbc_parse_url(link, &t, &why) == PB_OK);
    CHECK(pbc_connect(&t, "test", 10000, &w, &why) == NULL);
    CHECK(strstr(why.text, "no relay of the 2 answered") != NULL);
    close(fd);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

/* A WebSocket to the relay on port, upgraded to the patchbay
 * sub-protocol, that says nothing more: the socket, or -1. */
static int idle_socket(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: "
                     "websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
                     "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: "
                     "13\r\nSec-WebSocket-Protocol: patchbay\r\n\r\n",
                     port);
    char resp[1024];
    size_t got = 0;
    if (write(fd, req, (size_t)n) != n)
        goto fail;
    while (got + 1 < sizeof resp) { /* to the end of the headers */
        ssize_t k = read(fd, resp + got, sizeof resp - 1 - got);
        if (k <= 0)
            goto fail;
        got += (size_t)k;
        resp[got] = '\0';
        if (strstr(resp, "\r\n\r\n"))
            return strstr(resp, " 101 ") ? fd : (close(fd), -1);
    }
fail:
    close(fd);
    return -1;
}

/* Before: lws kept a 64 KiB receive buffer for every open WebSocket (the
 * protocol's rx_buffer_size), most of an idle client's cost: about 66 KiB
 * of heap each. Now a page (the session assembles messages itself). */
TEST(an_idle_connection_costs_the_relay_a_few_kib_of_heap)
{
    enum { N = 64 };
    relay r;
    REQUIRE(inproc_start(&r, "idle", NULL));
    int first = idle_socket(r.port); /* lws's first-use allocations */
    REQUIRE(first >= 0);
    sleep_ms(200);
    size_t before = HEAP_IN_USE();
    int fd[N];
    for (int i = 0; i < N; i++)
        REQUIRE((fd[i] = idle_socket(r.port)) >= 0);
    sleep_ms(200);
    size_t after = HEAP_IN_USE();
    double each = after > before ? (double)(after - before) / N : 0;
    printf("# an idle WebSocket: %.1f KiB of the relay's heap\n",
           each / 1024.0);
    CHECK(each > 0);
    CHECK(each < 16 * 1024);
    for (int i = 0; i < N; i++)
        close(fd[i]);
    close(first);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

static const pb_test tests[] = {
    T(two_relays_in_one_process_share_nothing),
    T(too_many_diagnostics_from_the_compile_server_are_cut_to_the_limit),
    T(the_relay_signs_no_hostile_module_from_its_compile_server),
    T(a_join_link_for_a_room_with_a_space_or_percent_joins_it),
    T(a_link_whose_first_relay_is_dead_joins_through_the_next),
    T(an_idle_connection_costs_the_relay_a_few_kib_of_heap),
};

int main(int argc, char **argv)
{
    return harness_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
