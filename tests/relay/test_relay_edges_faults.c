/* test_relay_edges_faults.c — more than one relay (docs/ARCHITECTURE.md
 * § More than one relay) through its faults: the live path, kill -9 of an
 * edge with 100 runtimes, Redis restarted during evals, kill -9 of the
 * signer, Redis with a password, a tampering edge, revocations (edges.h:
 * the cluster and the runtimes).
 *
 * A runtime here whose edge died reconnects to the other edge explicitly,
 * with hello's since_seq (the harness's client has no since_seq to fail
 * over with); tests/runtime/edges.test.mjs has real node runtimes whose
 * link names both edges move by themselves. */
#define _GNU_SOURCE 1 /* memmem */
#include "edges.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

PB_TEST_RUNNER

/* Runtimes on the edge killed in kill9_an_edge...: 100 (each a WebSocket
 * with a libwebsockets context of its own in this process). */
#define N_RUNTIMES 100

/* ---- the live path ----------------------------------------------------------
 */

/* An eval sent to one edge is signed by the signer and reaches the
 * runtimes of both edges, verified, with the signer's signed heads; a
 * runtime joining an edge later catches up from the edge's cache. */
TEST(an_eval_through_one_edge_reaches_every_edge_signed)
{
    cluster cl;
    REQUIRE(cluster_start(&cl, "live"));
    runtime rts[3] = {0};
    REQUIRE(rt_join(&rts[0], &cl.a, &cl.signer, "rt-a"));
    REQUIRE(rt_join(&rts[1], &cl.b, &cl.signer, "rt-b"));
    pbc_welcome w;
    pbc *ed = join(&cl.a, "jam", PB_ROLE_EDITOR, "ed", &w);
    REQUIRE(ed);
    for (unsigned k = 1; k <= 3; k++)
        CHECK_EQ_INT(eval_n(ed, k, k), k);
    CHECK(all_reach(rts, 2, 3, 30000));
    /* a late joiner: the catch-up comes from edge b's cache */
    REQUIRE(rt_join(&rts[2], &cl.b, &cl.signer, "rt-late"));
    CHECK(all_reach(&rts[2], 1, 3, 30000));
    for (int i = 0; i < 3; i++)
        check_exact(&rts[i], 3);
    /* the signer's signed heads reach edges' runtimes (one right after
     * welcome, once the edge holds what it names) */
    uint64_t until = now_ms() + 8000;
    pb_errmsg why;
    while (rts[0].l.n_heads == 0 && now_ms() < until)
        pbc_wait(rts[0].c, 100, collect, &rts[0].l, &why);
    CHECK(rts[0].l.n_heads > 0);
    CHECK_EQ_INT(rts[0].l.errors, 0);
    pbc_close(ed);
    rts_close(rts, 3);
    cluster_stop(&cl);
}

/* Heads reach an edge's clients at the signer's heartbeat, as one relay's
 * clients get them, not after each patch: a burst of patches is one frame
 * per patch per client. Failed before: the signer signed and broadcast a
 * head after every patch, and edges passed each on (a head per patch:
 * twice the frames of every delivery, bench/README.md). */
TEST(a_burst_of_patches_costs_an_edges_clients_no_head_each)
{
    cluster cl;
    runtime rt = {0};
    pbc *ed;
    REQUIRE(cluster_with_one_patch(&cl, "headburst", &rt, &ed));
    uint32_t heads = rt.l.n_heads;
    enum { BURST = 8 };
    for (unsigned k = 0; k < BURST; k++)
        CHECK_EQ_INT(eval_n(ed, 2 + k, 2 + k), 2 + k);
    CHECK(all_reach(&rt, 1, 1 + BURST, 30000));
    /* a heartbeat or two may fall within the burst; one per patch may not */
    CHECK(rt.l.n_heads - heads < BURST);
    CHECK_EQ_INT(rt.l.errors, 0);
    pbc_close(ed);
    rts_close(&rt, 1);
    cluster_stop(&cl);
}

/* ---- faults -----------------------------------------------------------------
 */

/* kill -9 an edge with N_RUNTIMES runtimes: each reconnects to the other
 * edge and catches up; no patch is missed or applied twice, including
 * those accepted while they were away. */
TEST(kill9_an_edge_its_runtimes_move_and_miss_nothing)
{
    cluster cl;
    REQUIRE(cluster_start(&cl, "kill-edge"));
    static runtime rts[N_RUNTIMES];
    memset(rts, 0, sizeof rts);
    char name[32];
    for (int i = 0; i < N_RUNTIMES; i++) {
        snprintf(name, sizeof name, "rt%d", i);
        REQUIRE(rt_join(&rts[i], &cl.a, &cl.signer, name));
    }
    pbc *ed = join(&cl.b, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    unsigned k = 1;
    for (; k <= 3; k++)
        CHECK_EQ_INT(eval_n(ed, k, k), k);
    CHECK(all_reach(rts, N_RUNTIMES, 3, 60000));
    serve_kill9(&cl.a);
    /* accepted while they are away */
    for (; k <= 5; k++)
        CHECK_EQ_INT(eval_n(ed, k, k), k);
    uint64_t t0 = now_ms();
    for (int i = 0; i < N_RUNTIMES; i++)
        CHECK(rt_rejoin(&rts[i], &cl.b));
    CHECK(all_reach(rts, N_RUNTIMES, 5, 120000));
    printf("# %d runtimes moved to the other edge and caught up in %llu ms\n",
           N_RUNTIMES, (unsigned long long)(now_ms() - t0));
    for (; k <= 6; k++)
        CHECK_EQ_INT(eval_n(ed, k, k), k);
    CHECK(all_reach(rts, N_RUNTIMES, 6, 60000));
    for (int i = 0; i < N_RUNTIMES; i++)
        check_exact(&rts[i], 6);
    pbc_close(ed);
    rts_close(rts, N_RUNTIMES);
    cluster_stop(&cl);
}

/* The answer to eval req: a diag (accepted: *seq) or an error (*code,
 * text); false if none came within ms. */
typedef struct answer {
    uint64_t req;
    bool found, ok;
    uint64_t seq;
    uint32_t code;
    char text[512];
} answer;

static int on_answer(void *ctx, const pb_frame *f)
{
    answer *a = ctx;
    if (f->type == PB_T_DIAG && f->diag.req == a->req) {
        a->ok = f->diag.ok;
        a->seq = f->diag.seq;
    } else if (f->type == PB_T_ERROR && f->error.req == a->req) {
        a->code = f->error.code;
        snprintf(a->text, sizeof a->text, "%.*s", (int)f->error.message.len,
                 f->error.message.ptr);
    } else {
        return 0;
    }
    a->found = true;
    return 1;
}

static bool await_answer(pbc *c, answer *a, uint32_t ms)
{
    pb_errmsg why;
    uint64_t deadline = now_ms() + ms;
    while (!a->found && now_ms() < deadline)
        if (pbc_wait(c, 100, on_answer, a, &why) == PBC_WAIT_CLOSED)
            return false;
    return a->found;
}

/* Sends eval req (source k) until one is accepted, each refusal being
 * error code (a relay coming back); its seq, 0 if none within ms. */
static uint64_t eval_until_accepted(pbc *ed, uint64_t *req, unsigned k,
                                    pb_err code, uint32_t ms)
{
    uint64_t deadline = now_ms() + ms;
    char src[256];
    var_source(src, sizeof src, k % 7, k);
    while (now_ms() < deadline) {
        answer a = {.req = ++*req};
        if (!send_eval(ed, a.req, src) || !await_answer(ed, &a, 40000))
            return 0;
        if (a.ok)
            return a.seq;
        if (a.code != (uint32_t)code) {
            fprintf(stderr, "  eval %llu: error %u: %s\n",
                    (unsigned long long)a.req, a.code, a.text);
            return 0;
        }
        sleep_ms(200);
    }
    return 0;
}

/* Redis restarted (empty: nothing saved) while evals go on: an eval sent
 * as it dies is answered, accepted or refused with a clear error; evals
 * through an edge while it is down are refused saying so; what the signer
 * accepted meanwhile (from a client of its own) reaches every edge's
 * runtimes once Redis is back, and nothing accepted is missing. */
TEST(redis_restarted_during_evals_nothing_accepted_is_lost)
{
    cluster cl;
    REQUIRE(cluster_start(&cl, "redis-restart"));
    runtime rts[2] = {0};
    REQUIRE(rt_join(&rts[0], &cl.a, &cl.signer, "rt-a"));
    REQUIRE(rt_join(&rts[1], &cl.b, &cl.signer, "rt-b"));
    pbc *ed = join(&cl.a, "jam", PB_ROLE_EDITOR, "ed", NULL);
    pbc *direct = join(&cl.signer, "jam", PB_ROLE_EDITOR, "ed2", NULL);
    REQUIRE(ed && direct);
    uint64_t req = 0, head = 0;
    for (unsigned k = 1; k <= 2; k++)
        CHECK_EQ_INT(head = eval_n(ed, ++req, k), k);
    CHECK(all_reach(rts, 2, 2, 30000));

    /* an eval in flight as Redis dies */
    char src[256];
    var_source(src, sizeof src, 3, 3);
    answer inflight = {.req = ++req};
    REQUIRE(send_eval(ed, inflight.req, src));
    int port = cl.redis.port;
    redis_kill9(&cl.redis);
    CHECK(await_answer(ed, &inflight, 40000));
    if (inflight.ok)
        head = inflight.seq;
    else
        CHECK_EQ_INT(inflight.code, PB_ERR_COMPILER_DOWN);
    printf("# the eval in flight as Redis died: %s%s\n",
           inflight.ok ? "accepted" : "refused: ", inflight.text);

    /* through an edge while Redis is down: refused, saying why */
    sleep_ms(300);
    answer down = {.req = ++req};
    REQUIRE(send_eval(ed, down.req, src));
    CHECK(await_answer(ed, &down, 40000));
    CHECK(!down.ok);
    CHECK_EQ_INT(down.code, PB_ERR_COMPILER_DOWN);
    CHECK(strstr(down.text, "Redis") != NULL);
    printf("# through an edge while Redis is down: %s\n", down.text);
    /* the signer's own client: accepted, kept in SQLite */
    var_source(src, sizeof src, 4, 4);
    want w;
    uint64_t seq = eval(direct, ++req, src, &w);
    /* refused without knowing (Redis died between the eval and its
     * answer, and the edge said so): the signer may have accepted it */
    if (seq == head + 2 && !inflight.ok && strstr(inflight.text, "may or may"))
        head++;
    CHECK_EQ_INT(seq, head + 1);
    head = seq;

    REQUIRE(redis_start(&cl.redis, port));
    seq = eval_until_accepted(ed, &req, 5, PB_ERR_COMPILER_DOWN, 30000);
    CHECK_EQ_INT(seq, head + 1);
    head = seq;
    CHECK(all_reach(rts, 2, head, 60000));
    for (int i = 0; i < 2; i++)
        check_exact(&rts[i], head);
    pbc_close(ed);
    pbc_close(direct);
    rts_close(rts, 2);
    cluster_stop(&cl);
}

/* kill -9 the signer: edges keep serving the room (a runtime joining an
 * edge that never had the room catches up from Redis), evals are refused
 * with "the room's signer is unavailable", and all resumes when the signer
 * is back on its data directory. */
TEST(kill9_the_signer_edges_serve_and_refuse_evals_until_it_returns)
{
    cluster cl;
    REQUIRE(cluster_start(&cl, "kill-signer"));
    runtime rts[2] = {0};
    REQUIRE(rt_join(&rts[0], &cl.a, &cl.signer, "rt-a"));
    pbc *ed = join(&cl.a, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    uint64_t req = 0;
    for (unsigned k = 1; k <= 2; k++)
        CHECK_EQ_INT(eval_n(ed, ++req, k), k);
    CHECK(all_reach(rts, 1, 2, 30000));
    serve_kill9(&cl.signer);

    char src[256];
    var_source(src, sizeof src, 3, 3);
    answer a = {.req = ++req};
    REQUIRE(send_eval(ed, a.req, src));
    CHECK(await_answer(ed, &a, 10000));
    CHECK(!a.ok);
    CHECK_EQ_INT(a.code, PB_ERR_COMPILER_DOWN);
    CHECK(strstr(a.text, "the room's signer is unavailable") != NULL);
    printf("# with the signer dead: %s\n", a.text);
    /* edge b never had the room: it serves it from Redis */
    REQUIRE(rt_join(&rts[1], &cl.b, &cl.signer, "rt-b"));
    CHECK(all_reach(&rts[1], 1, 2, 30000));

    const char *extra[] = {"--redis", cl.redis.url, NULL};
    REQUIRE(serve_start(&cl.signer, "kill-signer-signer", extra));
    uint64_t seq =
        eval_until_accepted(ed, &req, 3, PB_ERR_COMPILER_DOWN, 30000);
    CHECK_EQ_INT(seq, 3);
    CHECK(all_reach(rts, 2, 3, 30000));
    for (int i = 0; i < 2; i++)
        check_exact(&rts[i], 3);
    pbc_close(ed);
    rts_close(rts, 2);
    cluster_stop(&cl);
}

/* A Redis with a password (requirepass): the signer reads it from a file
 * (--redis-password-file), an edge from the URL, and evals go through. An
 * edge with a wrong password and one with none say so in their logs (and
 * retry), and no log holds a password. */
TEST(a_redis_with_a_password_is_used_and_a_wrong_or_missing_one_is_said)
{
    static const char pw[] = "pw-of-the-test-3f9c";
    static const char wrong[] = "not-the-password-77a1";
    cluster cl;
    REQUIRE(redis_start_auth(&cl.redis, 0, pw));
    char file[300], url[160], bad[160];
    snprintf(file, sizeof file, "%s/redis.pw", tmp_root);
    FILE *f = fopen(file, "w");
    REQUIRE(f);
    fprintf(f, "%s\n", pw);
    fclose(f);
    const char *extra[] = {"--redis", cl.redis.url, "--redis-password-file",
                           file, NULL};
    REQUIRE(serve_start(&cl.signer, "auth-signer", extra));
    snprintf(url, sizeof url, "redis://:%s@127.0.0.1:%d", pw, cl.redis.port);
    snprintf(bad, sizeof bad, "redis://:%s@127.0.0.1:%d", wrong, cl.redis.port);
    REQUIRE(edge_start(&cl.a, "auth-edge-a", &cl.signer, url));
    REQUIRE(edge_start(&cl.b, "auth-edge-b", &cl.signer, bad));
    relay none;
    REQUIRE(edge_start(&none, "auth-edge-none", &cl.signer, cl.redis.url));

    runtime rt = {0};
    REQUIRE(rt_join(&rt, &cl.a, &cl.signer, "rt-a"));
    pbc *ed = join(&cl.a, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    CHECK_EQ_INT(eval_n(ed, 1, 1), 1);
    CHECK(all_reach(&rt, 1, 1, 30000));
    check_exact(&rt, 1);

    uint64_t until = now_ms() + 15000;
    while (now_ms() < until &&
           !(log_has(&cl.b, "WRONGPASS") && log_has(&none, "NOAUTH")))
        sleep_ms(100);
    CHECK(log_has(&cl.b, "Redis refused this relay: WRONGPASS"));
    CHECK(log_has(&none, "Redis refused this relay: NOAUTH"));
    CHECK(log_has(&none, "--redis-password-file"));
    relay *all[] = {&cl.signer, &cl.a, &cl.b, &none};
    for (int i = 0; i < 4; i++) {
        CHECK(!log_has(all[i], pw));
        CHECK(!log_has(all[i], wrong));
    }
    pbc_close(ed);
    pbc_close(rt.c);
    CHECK_EQ_INT(serve_stop(&none), 0);
    cluster_stop(&cl);
}

/* `patchbay token revoke` on the signer's data directory: the signer reads
 * it and tells the edges, which close the sessions it names and refuse
 * the token from then on. */
TEST(a_token_revoked_on_the_signer_is_refused_by_every_edge)
{
    cluster cl;
    REQUIRE(cluster_start(&cl, "revoke"));
    pbc *on_a = join(&cl.a, "jam", PB_ROLE_RUNTIME, "gone", NULL);
    pbc *on_b = join(&cl.b, "jam", PB_ROLE_RUNTIME, "gone", NULL);
    pbc *kept = join(&cl.b, "jam", PB_ROLE_RUNTIME, "kept", NULL);
    REQUIRE(on_a && on_b && kept);
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "'%s' token revoke --data '%s' --room jam --name gone "
             ">/dev/null",
             patchbay_bin, cl.signer.dir);
    CHECK_EQ_INT(system(cmd), 0);
    CHECK(expect_fatal(on_a, PB_ERR_AUTH_REVOKED));
    CHECK(expect_fatal(on_b, PB_ERR_AUTH_REVOKED));
    CHECK(ping_ok(kept));
    char tok[PB_MAX_TOKEN_BYTES + 1];
    make_token(&cl.a, "jam", PB_ROLE_RUNTIME, "gone", 3600, tok);
    pbc_target t;
    target(&cl.a, "jam", tok, &t);
    pb_errmsg why = {{0}};
    pbc *again = pbc_connect(&t, "test", 10000, NULL, &why);
    CHECK(again == NULL);
    CHECK(strstr(why.text, "revoked") != NULL);
    pbc_close(again);
    pbc_close(on_a);
    pbc_close(on_b);
    pbc_close(kept);
    cluster_stop(&cl);
}

/* ---- a tampering edge -------------------------------------------------------
 */

/* A fake edge: a TCP proxy in front of a real edge that, once armed,
 * modifies the next patch it passes to its client (server-to-client
 * WebSocket frames are not masked, so it can edit them in place): a byte
 * of the module (TAMPER_MODULE) or of the signed statement
 * (TAMPER_STATEMENT). Whatever an edge could do to a patch is one of
 * these. */
enum { TAMPER_MODULE = 1, TAMPER_STATEMENT };

typedef struct fake_edge {
    int listen_fd, port, upstream_port, mode;
    volatile int armed, tampered, stop;
    pthread_t thread;
} fake_edge;

static bool write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static void tamper(fake_edge *fe, uint8_t *payload, size_t n)
{
    uint8_t *wasm = memmem(payload, n, "\0asm", 4);
    if (!wasm || !fe->armed)
        return;
    if (fe->mode == TAMPER_MODULE && wasm + 12 < payload + n) {
        wasm[12] ^= 0x01;
    } else if (fe->mode == TAMPER_STATEMENT) {
        uint8_t *key = memmem(payload, n, "\xa4stmt", 5);
        if (!key || key + 20 >= payload + n)
            return;
        key[5 + 3 + 8] ^= 0x01; /* past the bin header, in the statement */
    } else {
        return;
    }
    fe->armed = 0;
    fe->tampered++;
}

static void *fake_edge_main(void *arg)
{
    fake_edge *fe = arg;
    int client = -1, up = -1;
    struct pollfd lp = {fe->listen_fd, POLLIN, 0};
    while (!fe->stop && client < 0)
        if (poll(&lp, 1, 100) > 0)
            client = accept(fe->listen_fd, NULL, NULL);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)fe->upstream_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (client < 0 || (up = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
        connect(up, (struct sockaddr *)&a, sizeof a))
        goto done;
    static __thread uint8_t buf[1 << 20];
    size_t have = 0;
    bool upgraded = false;
    while (!fe->stop) {
        struct pollfd p[2] = {{client, POLLIN, 0}, {up, POLLIN, 0}};
        if (poll(p, 2, 100) <= 0)
            continue;
        if (p[0].revents) {
            uint8_t tmp[65536];
            ssize_t n = read(client, tmp, sizeof tmp);
            if (n <= 0 || !write_all(up, tmp, (size_t)n))
                break;
        }
        if (p[1].revents) {
            ssize_t n = read(up, buf + have, sizeof buf - have);
            if (n <= 0)
                break;
            have += (size_t)n;
        }
        /* the upgrade response as it is, then frame by frame */
        if (!upgraded) {
            uint8_t *end = memmem(buf, have, "\r\n\r\n", 4);
            if (!end)
                continue;
            size_t len = (size_t)(end + 4 - buf);
            if (!write_all(client, buf, len))
                break;
            memmove(buf, buf + len, have - len);
            have -= len;
            upgraded = true;
        }
        for (;;) {
            if (have < 2)
                break;
            size_t hdr = 2, len = buf[1] & 0x7f;
            if (len == 126) {
                hdr = 4;
                len = have < 4 ? 0 : (size_t)buf[2] << 8 | buf[3];
            } else if (len == 127) {
                hdr = 10;
                len = 0;
                for (int i = 0; i < 8 && have >= 10; i++)
                    len = len << 8 | buf[2 + i];
            }
            if (buf[1] & 0x80)
                hdr += 4;
            if (have < hdr || have < hdr + len)
                break;
            tamper(fe, buf + hdr, len);
            if (!write_all(client, buf, hdr + len))
                goto done;
            memmove(buf, buf + hdr + len, have - hdr - len);
            have -= hdr + len;
        }
    }
done:
    if (client >= 0)
        close(client);
    if (up >= 0)
        close(up);
    return NULL;
}

static bool fake_edge_start(fake_edge *fe, int upstream_port, int mode)
{
    memset(fe, 0, sizeof *fe);
    fe->upstream_port = upstream_port;
    fe->mode = mode;
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    fe->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fe->listen_fd < 0 ||
        bind(fe->listen_fd, (struct sockaddr *)&a, sizeof a) ||
        listen(fe->listen_fd, 4) ||
        getsockname(fe->listen_fd, (struct sockaddr *)&a, &len) ||
        pthread_create(&fe->thread, NULL, fake_edge_main, fe))
        return false;
    fe->port = ntohs(a.sin_port);
    return true;
}

static void fake_edge_stop(fake_edge *fe)
{
    fe->stop = 1;
    pthread_join(fe->thread, NULL);
    close(fe->listen_fd);
}

/* An edge that modifies a patch (its module, or its signed statement)
 * cannot make a runtime accept it: the runtime refuses it and stays where
 * it was, while a runtime on an honest edge takes the real patch. */
TEST(a_tampering_edge_cannot_make_a_runtime_accept_a_modified_patch)
{
    cluster cl;
    REQUIRE(cluster_start(&cl, "tamper"));
    fake_edge fe[2];
    REQUIRE(fake_edge_start(&fe[0], cl.a.port, TAMPER_MODULE));
    REQUIRE(fake_edge_start(&fe[1], cl.a.port, TAMPER_STATEMENT));
    runtime rts[3] = {0};
    for (int i = 0; i < 2; i++) {
        relay via = cl.a; /* the edge's keys, the fake edge's port */
        via.port = fe[i].port;
        REQUIRE(rt_join(&rts[i], &via, &cl.signer,
                        i ? "rt-statement" : "rt-module"));
    }
    REQUIRE(rt_join(&rts[2], &cl.b, &cl.signer, "rt-honest"));
    pbc *ed = join(&cl.b, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    CHECK_EQ_INT(eval_n(ed, 1, 1), 1);
    CHECK(all_reach(rts, 3, 1, 30000));
    fe[0].armed = fe[1].armed = 1;
    CHECK_EQ_INT(eval_n(ed, 2, 2), 2);
    CHECK(all_reach(&rts[2], 1, 2, 30000));
    check_exact(&rts[2], 2);
    pb_errmsg why;
    for (uint64_t until = now_ms() + 20000;
         now_ms() < until && (!rts[0].l.errors || !rts[1].l.errors);)
        for (int i = 0; i < 2; i++)
            pbc_wait(rts[i].c, 20, collect, &rts[i].l, &why);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(fe[i].tampered, 1);
        CHECK(rts[i].l.errors > 0);
        CHECK_EQ_INT(rts[i].l.last_seq, 1); /* it kept the previous code */
        CHECK_EQ_INT(rts[i].l.n_patches, 1);
        printf("# %s refused the modified patch: %s\n", rts[i].name,
               rts[i].l.first_error);
    }
    CHECK(strstr(rts[0].l.first_error, "hash") != NULL);
    pbc_close(ed);
    rts_close(rts, 3);
    for (int i = 0; i < 2; i++)
        fake_edge_stop(&fe[i]);
    cluster_stop(&cl);
}

int main(int argc, char **argv)
{
    static const pb_test tests[] = {
        T(an_eval_through_one_edge_reaches_every_edge_signed),
        T(a_burst_of_patches_costs_an_edges_clients_no_head_each),
        T(kill9_an_edge_its_runtimes_move_and_miss_nothing),
        T(redis_restarted_during_evals_nothing_accepted_is_lost),
        T(kill9_the_signer_edges_serve_and_refuse_evals_until_it_returns),
        T(a_redis_with_a_password_is_used_and_a_wrong_or_missing_one_is_said),
        T(a_tampering_edge_cannot_make_a_runtime_accept_a_modified_patch),
        T(a_token_revoked_on_the_signer_is_refused_by_every_edge),
    };
    return harness_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
