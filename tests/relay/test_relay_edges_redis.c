/* test_relay_edges_redis.c — what whoever can write to Redis can and
 * cannot make the relays of docs/ARCHITECTURE.md § More than one relay do
 * (docs/SECURITY.md § Edges): forged patches and heads, older heads, an
 * epoch or a key set in Redis, values too long, fill and open requests,
 * frames to one client by handle (edges.h: the cluster and the
 * runtimes). Each test says what it did before its fix. */
#include "../protocol/samples.h"
#include "../run_cmd.h"
#include "edges.h"

#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

PB_TEST_RUNNER

/* A patch forged in Redis (a valid patch signed by another key, at the
 * next seq, after the right hash, published on the room's channel) is not
 * taken into an edge's cache: the runtimes never see it, and the real next
 * patch reaches them. */
TEST(a_patch_forged_in_redis_is_not_cached_by_an_edge)
{
    cluster cl;
    runtime rt = {0};
    pbc *ed;
    REQUIRE(cluster_with_one_patch(&cl, "forged", &rt, &ed));

    pb_sample_patch forged;
    pb_sample_patch_make(&forged, "jam", 2, rt.l.hashes[0], 1);
    pb_frame f = {.type = PB_T_PATCH};
    f.patch = forged.patch;
    pb_buf frame;
    pb_buf_init(&frame);
    pb_errmsg why;
    REQUIRE(pb_frame_encode(&f, &frame, &why) == PB_OK);
    relay_env e = {0};
    relay_env_u8(&e, RELAY_ENV_PATCH);
    relay_env_str(&e, "jam");
    relay_env_u64(&e, rt.l.chain.epoch);
    relay_env_u64(&e, 2);
    relay_env_bytes(&e, frame.data, frame.len);
    CHECK(redis_publish(cl.redis.port, "pb:r:jam", &e));
    relay_env_free(&e);
    pb_buf_free(&frame);
    pb_buf_free(&forged.stmt);

    CHECK_EQ_INT(eval_n(ed, 2, 2), 2);
    CHECK(all_reach(&rt, 1, 2, 30000));
    check_exact(&rt, 2);
    CHECK(log_has(&cl.a, "not cached"));
    pbc_close(ed);
    rts_close(&rt, 1);
    cluster_stop(&cl);
}

/* A head of room jam at seq (after hash) signed by the samples' key, not
 * the signer's: its frame. */
static bool forged_head(pb_buf *frame, uint64_t epoch, uint64_t seq,
                        const uint8_t hash[PB_HASH_BYTES])
{
    uint8_t pk[PB_PUBLICKEY_BYTES], sk[PB_SECRETKEY_BYTES];
    pb_sample_keypair(pk, sk);
    pb_head h = {.room = pb_cstr("jam"),
                 .epoch = epoch,
                 .seq = seq,
                 .time_us = (uint64_t)now_ms() * 1000u};
    memcpy(h.hash, hash, PB_HASH_BYTES);
    memcpy(h.key, pk, PB_PUBLICKEY_BYTES);
    pb_buf stmt;
    pb_buf_init(&stmt);
    pb_buf_init(frame);
    pb_errmsg why;
    uint8_t sig[PB_SIG_BYTES];
    bool ok = !pb_head_encode(&h, &stmt, &why);
    if (ok) {
        pb_sign(stmt.data, stmt.len, sk, sig);
        pb_frame f = {.type = PB_T_HEAD};
        f.head.stmt = (pb_bytes){stmt.data, (uint32_t)stmt.len};
        f.head.sig = (pb_bytes){sig, PB_SIG_BYTES};
        ok = !pb_frame_encode(&f, frame, &why);
    }
    pb_buf_free(&stmt);
    return ok;
}

/* The signer is down (the case edges must keep serving: joins and
 * catch-up); a head signed by another key naming a seq the edge does not
 * hold, put on the room's channel and as pb:head:jam, does not keep
 * runtimes from joining the room on that edge (relay_edge_room_ready wants
 * the head's seq to be the cache's: a forged one would hold them until the
 * signer is back). Failed before the edge checked heads. */
TEST(a_forged_head_does_not_lock_joiners_out_of_an_edge)
{
    cluster cl;
    runtime rt = {0};
    pbc *ed;
    REQUIRE(cluster_with_one_patch(&cl, "fhead2", &rt, &ed));
    pbc_close(ed);
    serve_kill9(&cl.signer);
    pb_buf head;
    REQUIRE(forged_head(&head, rt.l.chain.epoch, 1000, rt.l.hashes[0]));
    /* and the same head as pb:head:jam, which the edge reads again when
     * the head it was given names a seq it lacks */
    freeReplyObject(redis_do(cl.redis.port, "SET pb:head:jam %b",
                             (const char *)head.data, head.len));
    CHECK(broadcast_on_jam(&cl, rt.l.chain.epoch, &head));
    pb_buf_free(&head);
    sleep_ms(500);
    a_joiner_reaches(&cl.a, &cl.signer, 1);
    rts_close(&rt, 1);
    cluster_stop(&cl);
}

/* A head signed by another key, for the seq and hash the edge holds, put
 * on the room's channel, is not passed on: the edge checks heads against
 * the signer's key as it checks patches, so no runtime of the room is
 * shown a head with a bad signature. Failed before. */
TEST(a_head_forged_in_redis_is_not_passed_on_by_an_edge)
{
    cluster cl;
    runtime rt = {0};
    pbc *ed;
    REQUIRE(cluster_with_one_patch(&cl, "fhead", &rt, &ed));
    rt_listen(&rt, 300);
    REQUIRE(rt.l.errors == 0);

    pb_buf head;
    REQUIRE(forged_head(&head, rt.l.chain.epoch, 1, rt.l.hashes[0]));
    CHECK(broadcast_on_jam(&cl, rt.l.chain.epoch, &head));
    pb_buf_free(&head);

    CHECK(refuses_nothing_within(&rt, 1500));
    pbc_close(ed);
    rts_close(&rt, 1);
    cluster_stop(&cl);
}

/* pb:epoch:ROOM is not signed: one SET and one message on the room's
 * channel naming another epoch (which makes an edge look at the room
 * again) do not make the edge empty the room's cache or close its
 * sessions; a runtime joining it afterwards gets the room. Only a head
 * signed by the signer's key starts a new epoch. Failed before: the edge
 * emptied the cache and later joins were refused after 5 s (second
 * reader's finding 2, test review2_an_epoch_forged_in_redis_...). */
TEST(an_epoch_forged_in_redis_does_not_empty_an_edge)
{
    cluster cl;
    runtime rt = {0};
    pbc *ed;
    REQUIRE(cluster_with_one_patch(&cl, "fepoch", &rt, &ed));
    freeReplyObject(redis_do(cl.redis.port, "SET pb:epoch:jam 42"));
    relay_env e = {0};
    broadcast_env(&e, 42, NULL, 0);
    CHECK(redis_publish(cl.redis.port, "pb:r:jam", &e));
    relay_env_free(&e);
    rt_listen(&rt, 1500);
    CHECK(!log_has(&cl.a, "cache emptied"));
    CHECK_EQ_INT(rt.l.errors, 0);
    a_joiner_reaches(&cl.a, &cl.signer, 1);
    pbc_close(ed);
    rts_close(&rt, 1);
    cluster_stop(&cl);
}

/* A head the signer really signed, but of an earlier seq (taken from
 * pb:head:jam before the next eval), put back as pb:head:jam and on the
 * room's channel while the signer is down, does not keep runtimes from
 * joining an edge that holds the later seq: an edge takes no head behind
 * the one it has. Failed before: the edge took it as its head, and a
 * joiner was refused after 5 s ("did not become available"). */
TEST(a_replayed_older_head_does_not_lock_joiners_out_of_an_edge)
{
    cluster cl;
    runtime rt = {0};
    pbc *ed;
    REQUIRE(cluster_with_one_patch(&cl, "oldhead", &rt, &ed));
    redisReply *old = redis_do(cl.redis.port, "GET pb:head:jam");
    REQUIRE(old && old->type == REDIS_REPLY_STRING);
    CHECK_EQ_INT(eval_n(ed, 2, 2), 2);
    CHECK(all_reach(&rt, 1, 2, 30000));
    /* the edge holds the head of seq 2 once it passes one on: heads reach
     * clients at the signer's heartbeat, not after each patch */
    uint32_t heads = rt.l.n_heads;
    uint64_t until = now_ms() + 3 * PB_HEAD_EVERY_US / 1000;
    pb_errmsg why;
    while (rt.l.n_heads == heads && now_ms() < until)
        pbc_wait(rt.c, 100, collect, &rt.l, &why);
    CHECK(rt.l.n_heads > heads);
    pbc_close(ed);
    serve_kill9(&cl.signer);
    relay_env e = {0};
    broadcast_env(&e, rt.l.chain.epoch, old->str, old->len);
    freeReplyObject(
        redis_do(cl.redis.port, "SET pb:head:jam %b", old->str, old->len));
    CHECK(redis_publish(cl.redis.port, "pb:r:jam", &e));
    relay_env_free(&e);
    freeReplyObject(old);
    rt_listen(&rt, 500);
    a_joiner_reaches(&cl.a, &cl.signer, 2);
    CHECK(log_has(&cl.a, "an older head not taken"));
    rts_close(&rt, 1);
    cluster_stop(&cl);
}

/* An edge checks patches and heads with the signer's key it was given
 * (relay.pub in its data directory), not with pb:key in Redis: an edge
 * started after someone SET pb:key to another key still takes the
 * signer's heads and serves the room, and says loudly that Redis names
 * another key. Without relay.pub an edge does not start, and says which
 * file it wants. Failed before: the edge took Redis's key, refused every
 * head of the signer, and the join was refused after 5 s. */
TEST(an_edge_checks_with_the_signer_key_it_was_given_not_redis_key)
{
    cluster cl;
    runtime rt = {0};
    pbc *ed;
    REQUIRE(cluster_with_one_patch(&cl, "pinkey", &rt, &ed));
    uint8_t pk[PB_PUBLICKEY_BYTES], sk[PB_SECRETKEY_BYTES];
    pb_sample_keypair(pk, sk);
    char other[2 * PB_PUBLICKEY_BYTES + 1];
    pb_hex(pk, sizeof pk, other);
    freeReplyObject(redis_do(cl.redis.port, "SET pb:key %s", other));
    relay c;
    REQUIRE(edge_start(&c, "pinkey-edge-c", &cl.signer, cl.redis.url));
    a_joiner_reaches(&c, &cl.signer, 1);
    CHECK(log_has(&c, "not the signer key this edge was given"));
    CHECK_EQ_INT(serve_stop(&c), 0);

    char pub[300], out[2048];
    snprintf(pub, sizeof pub, "%s/relay.pub", c.dir);
    CHECK_EQ_INT(unlink(pub), 0);
    /* (before: it started, and served until the timeout) */
    const char *argv[] = {"/usr/bin/timeout",
                          "20",
                          patchbay_bin,
                          "serve",
                          "--edge",
                          "--redis",
                          cl.redis.url,
                          "--data",
                          c.dir,
                          "--port",
                          "0",
                          NULL};
    CHECK(run_cmd(argv, true, out, sizeof out) != 0);
    if (!strstr(out, "relay.pub"))
        fprintf(stderr, "  it said: %s\n", out);
    CHECK(strstr(out, "relay.pub does not exist") != NULL);
    pbc_close(ed);
    rts_close(&rt, 1);
    cluster_stop(&cl);
}

/* What a relay took from Redis in take_all: messages on pb:t, by size, and
 * the reply to its command. */
typedef struct taken {
    int small, big, replies;
    int reply_type;
    bool up;
} taken;

static void on_taken_reply(void *ctx, uint64_t tag, const relay_rval *v)
{
    taken *t = ctx;
    (void)tag;
    t->replies++;
    t->reply_type = v ? v->type : -1;
}

static void take_all(relay_redis *r, taken *t)
{
    for (relay_redis_event *e = relay_redis_take(r), *next; e; e = next) {
        next = e->next;
        if (e->kind == RELAY_REDIS_UP)
            t->up = true;
        else if (e->kind == RELAY_REDIS_MESSAGE && e->len > PB_MAX_FRAME_BYTES)
            t->big++;
        else if (e->kind == RELAY_REDIS_MESSAGE)
            t->small++;
        else if (e->kind == RELAY_REDIS_REPLY && e->fn)
            e->fn(e->ctx, e->tag, e->reply);
        relay_redis_event_free(e);
    }
}

/* A message or a value in Redis longer than any frame (3 MiB) is not
 * copied into the relay (a writer to Redis could make an edge hold
 * hundreds of MiB): the message is dropped, a reply holding it is an
 * error; a small message after it arrives. Failed before: the 3 MiB
 * message and value were copied and handed to the event loop. */
TEST(redis_values_longer_than_a_frame_are_not_copied)
{
    redis_srv rs;
    REQUIRE(redis_start(&rs, 0));
    struct lws_context_creation_info ci;
    memset(&ci, 0, sizeof ci);
    ci.port = CONTEXT_PORT_NO_LISTEN;
    struct lws_context *ctx = lws_create_context(&ci);
    REQUIRE(ctx);
    const char *subs[] = {"pb:t", NULL};
    pb_errmsg why = {{0}};
    relay_redis *r = relay_redis_start(rs.url, NULL, subs, ctx, &why);
    REQUIRE(r);
    taken t = {0};
    for (uint64_t until = now_ms() + 10000; !t.up && now_ms() < until;
         sleep_ms(20))
        take_all(r, &t);
    CHECK(t.up);
    size_t n = 3u << 20;
    char *big = malloc(n);
    REQUIRE(big);
    memset(big, 'x', n);
    freeReplyObject(redis_do(rs.port, "SET pb:t:big %b", big, n));
    freeReplyObject(redis_do(rs.port, "PUBLISH pb:t %b", big, n));
    freeReplyObject(redis_do(rs.port, "PUBLISH pb:t small"));
    free(big);
    const char *argv[] = {"GET", "pb:t:big"};
    size_t lens[] = {3, 8};
    relay_redis_command(r, on_taken_reply, &t, 0, 2, argv, lens);
    for (uint64_t until = now_ms() + 10000;
         (!t.small || !t.replies) && now_ms() < until; sleep_ms(20))
        take_all(r, &t);
    CHECK_EQ_INT(t.small, 1);
    CHECK_EQ_INT(t.big, 0);
    CHECK_EQ_INT(t.replies, 1);
    CHECK_EQ_INT(t.reply_type, REDIS_REPLY_ERROR);
    relay_redis_free(r);
    lws_context_destroy(ctx);
    redis_kill9(&rs);
}

/* Counts the fill requests ('L' envelopes) published on pb:signer for ms
 * milliseconds, through a subscription of its own made before start()
 * runs. */
static int count_fills(int port, void (*start)(void *), void *arg, uint32_t ms)
{
    redisContext *c = redisConnect("127.0.0.1", port);
    int n = -1;
    redisReply *rep = NULL;
    if (!c || c->err || !(rep = redisCommand(c, "SUBSCRIBE pb:signer")))
        goto done;
    freeReplyObject(rep);
    struct timeval tv = {0, 100000};
    redisSetTimeout(c, tv);
    start(arg);
    n = 0;
    for (uint64_t until = now_ms() + ms; now_ms() < until;) {
        void *r = NULL;
        if (redisGetReply(c, &r) != REDIS_OK) {
            if (c->err != REDIS_ERR_IO) /* not a timeout */
                break;
            c->err = 0; /* hiredis keeps the error of a read timeout */
            continue;
        }
        rep = r;
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
            rep->element[2]->len && rep->element[2]->str[0] == RELAY_ENV_FILL)
            n++;
        freeReplyObject(rep);
    }
done:
    redisFree(c);
    return n;
}

typedef struct edge_and_runtime {
    cluster *cl;
    runtime *rt;
} edge_and_runtime;

/* Starts edge a again and sends its runtime's hello (a room is synced
 * once someone asks for it), without waiting for the answer. */
static void start_edge_a(void *arg)
{
    edge_and_runtime *er = arg;
    CHECK(edge_start(&er->cl->a, "fill-edge-a", &er->cl->signer,
                     er->cl->redis.url));
    CHECK(rt_rejoin(er->rt, &er->cl->a));
}

/* An edge that lacks patches the stream lost asks the signer for them
 * once, not again each second while the answer is on its way (or the
 * signer is away): edge a, stopped at seq 1, comes back while the signer
 * is down and the stream lacks seq 2 (it has 3). Failed before: it asked
 * every second (4 or 5 requests in the 4 s watched). */
TEST(an_edge_asks_the_signer_once_for_what_the_stream_lost)
{
    cluster cl;
    runtime rt = {0};
    pbc *ed;
    REQUIRE(cluster_with_one_patch(&cl, "fill", &rt, &ed));
    pbc_close(ed);
    rts_close(&rt, 1); /* it holds seq 1 */
    CHECK_EQ_INT(serve_stop(&cl.a), 0);
    pbc *edb = join(&cl.b, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(edb);
    CHECK_EQ_INT(eval_n(edb, 2, 2), 2);
    CHECK_EQ_INT(eval_n(edb, 3, 3), 3);
    pbc_close(edb);
    char key[64];
    snprintf(key, sizeof key, "pb:s:jam:%llu",
             (unsigned long long)rt.l.chain.epoch);
    /* (the signer answers the eval before it appends the patch) */
    redisReply *three = NULL;
    for (uint64_t until = now_ms() + 10000; now_ms() < until; sleep_ms(50)) {
        freeReplyObject(three);
        three = redis_do(cl.redis.port, "XRANGE %s 3-0 3-9", key);
        if (three && three->type == REDIS_REPLY_ARRAY && three->elements == 1)
            break;
    }
    REQUIRE(three && three->type == REDIS_REPLY_ARRAY && three->elements == 1);
    serve_kill9(&cl.signer);
    const redisReply *val = three->element[0]->element[1]->element[1];
    freeReplyObject(redis_do(cl.redis.port, "DEL %s", key));
    freeReplyObject(
        redis_do(cl.redis.port, "XADD %s 3-1 p %b", key, val->str, val->len));
    freeReplyObject(three);
    edge_and_runtime er = {&cl, &rt};
    int n = count_fills(cl.redis.port, start_edge_a, &er, 4000);
    printf("# fill requests in 4 s: %d\n", n);
    CHECK_EQ_INT(n, 1);
    rts_close(&rt, 1);
    cluster_stop(&cl);
}

/* Whether the signer's history has an epoch for room (sqlite3's CLI on
 * the file, read-only: the relay keeps it open). */
static bool signer_has_room(const cluster *cl, const char *room)
{
    char cmd[600], line[256] = "";
    snprintf(cmd, sizeof cmd,
             "sqlite3 -readonly '%s/history.db' \"SELECT count(*) FROM epochs "
             "WHERE room = '%s'\"",
             cl->signer.dir, room);
    FILE *p = popen(cmd, "r");
    if (!p)
        return false;
    if (!fgets(line, sizeof line, p))
        line[0] = '\0';
    pclose(p);
    return atoi(line) > 0;
}

/* Whoever can only publish to Redis cannot make rooms in the signer's
 * history (each one kept, and published again on every reconnect): an
 * open request without a token for the room, and a forwarded frame for a
 * room the signer does not have (from a name with a newline in it), make
 * none; a runtime joining a new room through an edge still gets it (the
 * edge's open request holds a token it minted). Failed before: both junk
 * rooms were made. */
TEST(a_redis_writer_cannot_make_rooms_on_the_signer)
{
    cluster cl;
    REQUIRE(cluster_start(&cl, "rooms"));
    relay_env open = {0}, fwd = {0};
    relay_env_u8(&open, RELAY_ENV_OPEN);
    relay_env_str(&open, "0123456789abcdef");
    relay_env_str(&open, "junk");
    relay_env_u64(&open, 0);
    relay_env_u64(&open, 0);
    pb_frame f = {.type = PB_T_PING};
    pb_buf ping;
    pb_buf_init(&ping);
    pb_errmsg why;
    REQUIRE(pb_frame_encode(&f, &ping, &why) == PB_OK);
    relay_env_u8(&fwd, RELAY_ENV_FORWARD);
    relay_env_str(&fwd, "0123456789abcdef");
    relay_env_u32(&fwd, 0);
    relay_env_u32(&fwd, 1);
    relay_env_u8(&fwd, PB_ROLE_EDITOR);
    relay_env_str(&fwd, "a\nb");
    relay_env_str(&fwd, "junk2");
    relay_env_bytes(&fwd, ping.data, ping.len);
    CHECK(redis_publish(cl.redis.port, "pb:signer", &open));
    CHECK(redis_publish(cl.redis.port, "pb:signer", &fwd));
    relay_env_free(&open);
    relay_env_free(&fwd);
    pb_buf_free(&ping);
    /* after those (one connection keeps order), a real one */
    pbc *rt = join(&cl.a, "fresh", PB_ROLE_RUNTIME, "rt", NULL);
    CHECK(rt != NULL);
    CHECK(signer_has_room(&cl, "fresh"));
    CHECK(!signer_has_room(&cl, "junk"));
    CHECK(!signer_has_room(&cl, "junk2"));
    pbc_close(rt);
    cluster_stop(&cl);
}

/* The id edge e logged ("edge ID: connected to ..."). */
static bool edge_id(const relay *e, char out[24])
{
    FILE *f = fopen(e->log, "r");
    char line[512];
    bool ok = false;
    while (f && !ok && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "U: edge ");
        ok = p && strstr(p, ": connected to") &&
             sscanf(p + 8, "%23[0-9a-f]", out) == 1;
    }
    if (f)
        fclose(f);
    return ok;
}

/* Frames to one client by its handle, which whoever writes to Redis can
 * send on the edge's channel (or a room's), reach it only if they are
 * what the signer sends that way (an eval's answer, an error): a head
 * signed by another key, sent to the first handles of edge a, does not
 * reach its runtime. Failed before: the runtime got it ("bad
 * signature"). */
TEST(a_redis_writer_can_send_an_edge_client_no_head_by_handle)
{
    cluster cl;
    runtime rt = {0};
    pbc *ed;
    REQUIRE(cluster_with_one_patch(&cl, "byhandle", &rt, &ed));
    char id[24], channel[48];
    REQUIRE(edge_id(&cl.a, id));
    snprintf(channel, sizeof channel, "pb:e:%s", id);
    pb_buf head;
    REQUIRE(forged_head(&head, rt.l.chain.epoch, 1, rt.l.hashes[0]));
    for (uint32_t index = 0; index < 4; index++)
        for (uint32_t gen = 1; gen < 4; gen++) {
            relay_env e = {0};
            relay_env_u8(&e, RELAY_ENV_CLIENT);
            relay_env_u32(&e, index);
            relay_env_u32(&e, gen);
            relay_env_u8(&e, 0);
            relay_env_bytes(&e, head.data, head.len);
            CHECK(redis_publish(cl.redis.port, channel, &e));
            CHECK(redis_publish(cl.redis.port, "pb:r:jam", &e));
            relay_env_free(&e);
        }
    pb_buf_free(&head);
    CHECK(refuses_nothing_within(&rt, 1500));
    CHECK(log_has(&cl.a, "dropped from Redis"));
    pbc_close(ed);
    rts_close(&rt, 1);
    cluster_stop(&cl);
}

/* A revocation an edge takes only signed by the signer: one of name
 * "kept" in room jam published on pb:revoked unsigned, and one signed by
 * another key, do not make an edge close "kept" or refuse it. Failed
 * before: the edge closed it (revoked) and refused it at hello. */
TEST(an_edge_takes_revocations_only_signed_by_the_signer)
{
    cluster cl;
    REQUIRE(cluster_start(&cl, "revoked"));
    pbc *kept = join(&cl.a, "jam", PB_ROLE_RUNTIME, "kept", NULL);
    REQUIRE(kept);
    uint8_t pk[PB_PUBLICKEY_BYTES], sk[PB_SECRETKEY_BYTES];
    pb_sample_keypair(pk, sk);
    for (int signed_by_other = 0; signed_by_other < 2; signed_by_other++) {
        relay_env e = {0};
        relay_env_u8(&e, RELAY_ENV_REVOKED);
        relay_env_str(&e, "jam");
        relay_env_str(&e, "kept");
        relay_env_str(&e, "");
        if (signed_by_other)
            relay_env_sign(&e, sk);
        CHECK(redis_publish(cl.redis.port, "pb:revoked", &e));
        relay_env_free(&e);
    }
    sleep_ms(500);
    CHECK(ping_ok(kept));
    pbc *again = join(&cl.a, "jam", PB_ROLE_RUNTIME, "kept", NULL);
    CHECK(again != NULL);
    CHECK(log_has(&cl.a, "a revocation not signed by the signer's key"));
    pbc_close(again);
    pbc_close(kept);
    cluster_stop(&cl);
}

/* A --redis URL that is not redis:// is refused without naming its
 * password (SECURITY.md § Edges: messages name the URL without it).
 * Failed before: the error quoted the whole URL. */
TEST(a_bad_redis_url_is_not_said_with_its_password)
{
    const char *subs[] = {"pb:x", NULL};
    static const char *const urls[] = {
        "rediss://:hunter2@127.0.0.1:6379",
        "REDIS://:hunter2@127.0.0.1:6379",
        "redis://:hunter2@127.0.0.1:0",
    };
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        pb_errmsg why = {{0}};
        relay_redis *r = relay_redis_start(urls[i], NULL, subs, NULL, &why);
        CHECK(r == NULL);
        relay_redis_free(r);
        if (strstr(why.text, "hunter2"))
            fprintf(stderr, "  %s\n", why.text);
        CHECK(!strstr(why.text, "hunter2"));
    }
}

int main(int argc, char **argv)
{
    static const pb_test tests[] = {
        T(a_patch_forged_in_redis_is_not_cached_by_an_edge),
        T(a_head_forged_in_redis_is_not_passed_on_by_an_edge),
        T(a_bad_redis_url_is_not_said_with_its_password),
        T(a_forged_head_does_not_lock_joiners_out_of_an_edge),
        T(an_epoch_forged_in_redis_does_not_empty_an_edge),
        T(a_replayed_older_head_does_not_lock_joiners_out_of_an_edge),
        T(an_edge_checks_with_the_signer_key_it_was_given_not_redis_key),
        T(redis_values_longer_than_a_frame_are_not_copied),
        T(an_edge_asks_the_signer_once_for_what_the_stream_lost),
        T(a_redis_writer_cannot_make_rooms_on_the_signer),
        T(a_redis_writer_can_send_an_edge_client_no_head_by_handle),
        T(an_edge_takes_revocations_only_signed_by_the_signer),
    };
    return harness_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
