/* test_relay_edges_bounds.c — what whoever can write to (or read) Redis
 * cannot make the relays of docs/ARCHITECTURE.md § More than one relay
 * do, after the third reader's findings (docs/SECURITY.md § Edges): hold
 * proxy sessions without bound, lock joiners out of a restarted edge with
 * an older head, broadcast a patch through an edge, stall an edge with
 * unsigned revocations, get a token from an open request, make the signer
 * refill a stream, replay an edge's forward (edges.h: the cluster and
 * the runtimes; the other tests of this kind are in
 * test_relay_edges_redis.c). Each test says what it did before its fix. */
#define _GNU_SOURCE 1 /* memmem */
#include "../protocol/samples.h"
#include "edges.h"

#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

PB_TEST_RUNNER

/* The resident memory of process pid, in KiB (0 if unknown). */
static long rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kib = atol(line + 6);
    if (f)
        fclose(f);
    return kib;
}

/* A connection subscribed to pb:signer (what edges send the signer), NULL
 * if Redis did not take the subscription. */
static redisContext *watch_signer(int port)
{
    redisContext *sub = redisConnect("127.0.0.1", port);
    redisReply *rep =
        sub && !sub->err ? redisCommand(sub, "SUBSCRIBE pb:signer") : NULL;
    if (!rep) {
        if (sub)
            redisFree(sub);
        return NULL;
    }
    freeReplyObject(rep);
    struct timeval tv = {0, 200000}; /* so that it can see the deadline */
    redisSetTimeout(sub, tv);
    return sub;
}

/* The next message published on pb:signer (a reply whose element 2 is
 * it; the caller frees it), NULL once until_ms has passed or the
 * connection failed. */
static redisReply *next_on_signer(redisContext *sub, uint64_t until_ms)
{
    while (now_ms() < until_ms) {
        void *r = NULL;
        if (redisGetReply(sub, &r) != REDIS_OK) {
            if (sub->err != REDIS_ERR_IO)
                return NULL;
            sub->err = 0; /* the timeout */
            continue;
        }
        redisReply *rep = r;
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
            rep->element[2]->type == REDIS_REPLY_STRING)
            return rep;
        freeReplyObject(rep);
    }
    return NULL;
}

/* Whoever can publish to Redis cannot make the signer hold without bound:
 * forwarded frames (a ping each, from a runtime name of room jam, a room
 * the signer has) from 40,000 handles no edge ever had made the signer
 * keep 40,000 proxy sessions (2 KiB each, kept 10 minutes), since
 * proxy_get made one for any (edge, handle) it had not seen; now a
 * forward counts only with the token key's MAC (an edge's). Failed
 * before: the signer's resident memory grew by well over 32 MiB (a proxy
 * per handle). The signer runs with a small ASan quarantine, so that what
 * it frees (each message) is not counted as held. */
TEST(a_redis_writer_cannot_make_the_signer_hold_proxies_without_bound)
{
    const char *asan = getenv("ASAN_OPTIONS");
    char opts[512];
    snprintf(opts, sizeof opts, "%s%squarantine_size_mb=1", asan ? asan : "",
             asan && asan[0] ? ":" : "");
    char *saved = asan ? strdup(asan) : NULL;
    setenv("ASAN_OPTIONS", opts, 1);
    cluster cl;
    runtime rt = {0};
    pbc *ed;
    REQUIRE(cluster_with_one_patch(&cl, "proxies", &rt, &ed));
    if (saved)
        setenv("ASAN_OPTIONS", saved, 1);
    else
        unsetenv("ASAN_OPTIONS");
    free(saved);
    long before = rss_kib(cl.signer.pid);
    pb_frame f = {.type = PB_T_PING};
    pb_buf ping;
    pb_buf_init(&ping);
    pb_errmsg why;
    REQUIRE(pb_frame_encode(&f, &ping, &why) == PB_OK);
    redisContext *c = redisConnect("127.0.0.1", cl.redis.port);
    REQUIRE(c && !c->err);
    const uint32_t n = 40000, batch = 1000;
    for (uint32_t i = 0; i < n; i += batch) {
        for (uint32_t k = i; k < i + batch; k++) {
            relay_env e = {0};
            relay_env_u8(&e, RELAY_ENV_FORWARD);
            relay_env_str(&e, "0123456789abcdef"); /* no edge has this id */
            relay_env_u32(&e, k);                  /* a handle per message */
            relay_env_u32(&e, 1);
            relay_env_u8(&e, PB_ROLE_RUNTIME);
            relay_env_str(&e, "rt");
            relay_env_str(&e, "jam");
            relay_env_bytes(&e, ping.data, ping.len);
            redisAppendCommand(c, "PUBLISH pb:signer %b", (const char *)e.data,
                               e.len);
            relay_env_free(&e);
        }
        for (uint32_t k = 0; k < batch; k++) {
            void *rep = NULL;
            if (redisGetReply(c, &rep) == REDIS_OK)
                freeReplyObject(rep);
        }
    }
    redisFree(c);
    pb_buf_free(&ping);
    /* the signer takes pb:signer in order: once an eval sent after the
     * flood is answered, the flood has been taken */
    CHECK_EQ_INT(eval_n(ed, 2, 2), 2);
    long after = rss_kib(cl.signer.pid);
    printf("# signer resident memory: %ld KiB before, %ld KiB after %u "
           "forwards from made-up handles\n",
           before, after, n);
    CHECK(after - before < 32 * 1024);
    pbc_close(ed);
    rts_close(&rt, 1);
    cluster_stop(&cl);
}

/* An edge that restarts while the signer is down serves what its cache
 * holds (as the kill9 test shows), also when pb:head:jam names an older seq
 * than its cache: a head the signer really signed for seq 1, put back as
 * pb:head:jam by a writer to Redis (or left there by a signer that died
 * between appending seq 2 and setting its head). The edge let joiners in
 * only with a head of exactly its cache's seq, which only the signer can
 * make; now it lets them in with that older one (a patch they reach).
 * Failed before: "room jam did not become available on this edge within
 * 5000 ms (as far as seq 0; it holds 2)". */
TEST(an_older_head_in_redis_does_not_lock_joiners_out_of_a_restarted_edge)
{
    cluster cl;
    runtime rt = {0};
    pbc *ed;
    REQUIRE(cluster_with_one_patch(&cl, "oldhead2", &rt, &ed));
    redisReply *old = redis_do(cl.redis.port, "GET pb:head:jam");
    REQUIRE(old && old->type == REDIS_REPLY_STRING);
    CHECK_EQ_INT(eval_n(ed, 2, 2), 2);
    CHECK(all_reach(&rt, 1, 2, 30000));
    pbc_close(ed);
    rts_close(&rt, 1);
    CHECK_EQ_INT(serve_stop(&cl.a), 0);
    serve_kill9(&cl.signer);
    freeReplyObject(
        redis_do(cl.redis.port, "SET pb:head:jam %b", old->str, old->len));
    freeReplyObject(old);
    REQUIRE(edge_start(&cl.a, "oldhead2-edge-a", &cl.signer, cl.redis.url));
    a_joiner_reaches(&cl.a, &cl.signer, 2);
    cluster_stop(&cl);
}

/* A room's channel carries, from the signer, heads (checked), settings,
 * and runtimes' acks, logs and test results for editors: nothing else.
 * A writer to Redis who wraps a patch frame (here one signed by another
 * key, at the next seq, after the right hash: what
 * a_patch_forged_in_redis_is_not_cached_by_an_edge sends as a 'P'
 * envelope) in a 'B' envelope on pb:r:jam gets it to every runtime of
 * the room on every edge: on_broadcast checks heads only and passes any
 * other frame type on, unverified and uncached (a patch, a history
 * frame, a fatal error, a welcome...); now it passes on only what the
 * signer broadcasts. Failed before: the runtime got the forged patch
 * ("bad signature"). */
TEST(a_redis_writer_cannot_broadcast_a_patch_through_an_edge)
{
    cluster cl;
    runtime rt = {0};
    pbc *ed;
    REQUIRE(cluster_with_one_patch(&cl, "bpatch", &rt, &ed));
    rt_listen(&rt, 300);
    REQUIRE(rt.l.errors == 0);
    pb_sample_patch forged;
    pb_sample_patch_make(&forged, "jam", 2, rt.l.hashes[0], 1);
    pb_frame f = {.type = PB_T_PATCH};
    f.patch = forged.patch;
    pb_buf frame;
    pb_buf_init(&frame);
    pb_errmsg why;
    REQUIRE(pb_frame_encode(&f, &frame, &why) == PB_OK);
    CHECK(broadcast_on_jam(&cl, rt.l.chain.epoch, &frame));
    pb_buf_free(&frame);
    pb_buf_free(&forged.stmt);
    CHECK(refuses_nothing_within(&rt, 1500));
    pbc_close(ed);
    rts_close(&rt, 1);
    cluster_stop(&cl);
}

/* pb:revoked is a set anyone who can write to Redis can add to, and an
 * edge read all of it whenever it (re)connected, checking an ed25519
 * signature per member in one turn of its event loop, and kept the whole
 * reply. Now it reads 128 members a reply (SSCAN), serving meanwhile.
 * 100,000 members of 100 bytes (10 MB in Redis) that no signer wrote,
 * each ending in a canonical signature (so that libsodium checks it in
 * full, ~50 us): an edge that starts then must still let a runtime in.
 * Failed before: the edge spent seconds on them before it served anyone
 * (the join was refused: "did not become available within 5000 ms"). */
TEST(unsigned_revocations_in_redis_do_not_stall_an_edge)
{
    cluster cl;
    runtime rt = {0};
    pbc *ed;
    REQUIRE(cluster_with_one_patch(&cl, "revflood", &rt, &ed));
    pbc_close(ed);
    rts_close(&rt, 1);
    CHECK_EQ_INT(serve_stop(&cl.a), 0);
    redisContext *c = redisConnect("127.0.0.1", cl.redis.port);
    REQUIRE(c && !c->err);
    uint8_t junk[100];
    memset(junk, 'V', sizeof junk);
    junk[sizeof junk - 1] = 0; /* a canonical S: each costs a whole check */
    const uint32_t n = 100000, batch = 1000;
    for (uint32_t i = 0; i < n; i += batch) {
        for (uint32_t k = i; k < i + batch; k++) {
            memcpy(junk + 1, &k, sizeof k);
            redisAppendCommand(c, "SADD pb:revoked %b", (const char *)junk,
                               sizeof junk);
        }
        for (uint32_t k = 0; k < batch; k++) {
            void *rep = NULL;
            if (redisGetReply(c, &rep) == REDIS_OK)
                freeReplyObject(rep);
        }
    }
    redisFree(c);
    uint64_t t0 = now_ms();
    REQUIRE(edge_start(&cl.a, "revflood-edge-a", &cl.signer, cl.redis.url));
    a_joiner_reaches(&cl.a, &cl.signer, 1);
    printf("# an edge started and served a joiner in %llu ms\n",
           (unsigned long long)(now_ms() - t0));
    cluster_stop(&cl);
}

/* An edge's open request carried a token it minted for the room (a viewer
 * token of name "edge ID", valid 60 s), in clear on pb:signer: whoever can
 * read Redis (SECURITY.md: "read everything") got a bearer token for the
 * front door. Since c364187 the request is MACed with the token key
 * instead: it holds the edge, the room, an epoch, a seq and the MAC, and
 * no token ("pb1." nowhere in it), and any string read after its fields
 * does not join the signer. Failed before c364187: the token read from
 * pb:signer was welcomed by the signer. */
TEST(an_open_request_gives_redis_readers_no_token_for_the_front_door)
{
    cluster cl;
    REQUIRE(cluster_start(&cl, "opentok"));
    redisContext *sub = watch_signer(cl.redis.port);
    REQUIRE(sub);
    pbc *rt = join(&cl.a, "fresh", PB_ROLE_RUNTIME, "rt", NULL);
    CHECK(rt != NULL);
    bool seen = false;
    size_t after = 0, len = 0;
    char tok[PB_MAX_TOKEN_BYTES + 1] = "";
    redisReply *rep;
    for (uint64_t until = now_ms() + 5000;
         !seen && (rep = next_on_signer(sub, until));) {
        if (rep->element[2]->len && rep->element[2]->str[0] == RELAY_ENV_OPEN) {
            const char *p = rep->element[2]->str;
            relay_env_reader rd = {(const uint8_t *)p, rep->element[2]->len,
                                   false};
            char edge[24], room[PB_MAX_NAME_BYTES + 1];
            relay_env_get_u8(&rd);
            relay_env_get_str(&rd, edge, sizeof edge);
            relay_env_get_str(&rd, room, sizeof room);
            relay_env_get_u64(&rd);
            relay_env_get_u64(&rd);
            if (!rd.bad && !strcmp(room, "fresh")) {
                seen = true;
                after = rd.left;
                len = rep->element[2]->len;
                CHECK(!memmem(p, len, "pb1.", 4));
                relay_env_get_str(&rd, tok, sizeof tok);
                if (rd.bad)
                    tok[0] = '\0';
            }
        }
        freeReplyObject(rep);
    }
    redisFree(sub);
    REQUIRE(seen);
    CHECK_EQ_INT(after, RELAY_ENV_MAC_BYTES); /* the MAC, and nothing else */
    if (tok[0]) {
        pbc_target t;
        target(&cl.signer, "fresh", tok, &t);
        pb_errmsg why = {{0}};
        pbc *thief = pbc_connect(&t, "test", 10000, NULL, &why);
        if (thief)
            fprintf(stderr, "  a string from pb:signer joined the signer\n");
        CHECK(thief == NULL);
        pbc_close(thief);
    }
    pbc_close(rt);
    cluster_stop(&cl);
}

/* An open request (a few bytes anyone who can publish may send, or
 * replay) made the signer append the stream's missing tail again, up to
 * 256 patches read from SQLite, once a second per room, outside the
 * budget of its answers to edges: a writer who deletes a room's stream
 * and asks "open" for it made the signer refill it. Now an open request
 * gets the room's epoch and head only (the stream is refilled when the
 * signer (re)connects; an edge fills its gap by asking, within the
 * budget). The signer sets pb:head:ROOM after any refill, on the same
 * connection: once it is back, a refill would be in the stream. Failed
 * before: "the stream holds 1 entries again". */
TEST(an_open_request_does_not_make_the_signer_refill_the_stream)
{
    cluster cl;
    runtime rt = {0};
    pbc *ed;
    REQUIRE(cluster_with_one_patch(&cl, "refill", &rt, &ed));
    char stream[64];
    snprintf(stream, sizeof stream, "pb:s:jam:%llu",
             (unsigned long long)rt.l.chain.epoch);
    /* the signer publishes a room for an open request once a second at
     * most: the edge's own (its runtime joined) is more than 1 s ago, and
     * the signer has set pb:head:jam after seq 1 */
    usleep(1100 * 1000);
    freeReplyObject(redis_do(cl.redis.port, "DEL %s pb:head:jam", stream));
    relay_env open = {0};
    relay_env_u8(&open, RELAY_ENV_OPEN);
    relay_env_str(&open, "0123456789abcdef");
    relay_env_str(&open, "jam");
    relay_env_u64(&open, rt.l.chain.epoch);
    relay_env_u64(&open, 0);
    CHECK(redis_publish(cl.redis.port, "pb:signer", &open));
    relay_env_free(&open);
    bool head = false;
    for (uint64_t until = now_ms() + 10000; !head && now_ms() < until;) {
        redisReply *r = redis_do(cl.redis.port, "EXISTS pb:head:jam");
        head = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        freeReplyObject(r);
        if (!head)
            usleep(20000);
    }
    CHECK(head);
    redisReply *len = redis_do(cl.redis.port, "XLEN %s", stream);
    REQUIRE(len && len->type == REDIS_REPLY_INTEGER);
    if (len->integer)
        fprintf(stderr, "  the stream holds %lld entries again\n",
                len->integer);
    CHECK_EQ_INT(len->integer, 0);
    freeReplyObject(len);
    pbc_close(ed);
    rts_close(&rt, 1);
    cluster_stop(&cl);
}

/* Whoever can read and write Redis could replay what an edge forwarded:
 * an editor's eval of a2 (+ 2), replayed after the editor changed a2
 * (+ 9), was signed again as a new patch, so Redis chose which of an
 * author's past versions every runtime runs. Now the signer takes an
 * edge's forward once (its number above the last one taken from that
 * edge, its time near the signer's clock). Failed before: the replay
 * became seq 4 (a2 back at + 2) and the next eval seq 5. */
TEST(a_forward_replayed_from_redis_is_not_taken_again)
{
    cluster cl;
    runtime rt = {0};
    pbc *ed;
    REQUIRE(cluster_with_one_patch(&cl, "replay", &rt, &ed));
    redisContext *sub = watch_signer(cl.redis.port);
    REQUIRE(sub);
    char src[256];
    var_source(src, sizeof src, 2, 2);
    CHECK_EQ_INT(eval_n(ed, 2, 2), 2);
    char *old = NULL; /* the edge's envelope as it was, byte for byte */
    size_t old_len = 0;
    redisReply *rep;
    for (uint64_t until = now_ms() + 5000;
         !old && (rep = next_on_signer(sub, until));) {
        const redisReply *m = rep->element[2];
        if (m->len && m->str[0] == RELAY_ENV_FORWARD &&
            memmem(m->str, m->len, src, strlen(src)) &&
            (old = malloc(m->len))) {
            memcpy(old, m->str, m->len);
            old_len = m->len;
        }
        freeReplyObject(rep);
    }
    redisFree(sub);
    REQUIRE(old);
    CHECK_EQ_INT(eval_n(ed, 3, 9), 3); /* a2 is + 9 now */
    redisReply *pub =
        redis_do(cl.redis.port, "PUBLISH pb:signer %b", old, old_len);
    CHECK(pub && pub->type == REDIS_REPLY_INTEGER && pub->integer >= 1);
    freeReplyObject(pub);
    free(old);
    rt_listen(&rt, 1500);
    CHECK_EQ_INT(rt.l.last_seq, 3);
    CHECK_EQ_INT(eval_n(ed, 4, 4), 4); /* not 5: the replay made nothing */
    CHECK(log_has(&cl.signer, "seen before"));
    pbc_close(ed);
    rts_close(&rt, 1);
    cluster_stop(&cl);
}

int main(int argc, char **argv)
{
    static const pb_test tests[] = {
        T(a_forward_replayed_from_redis_is_not_taken_again),
        T(a_redis_writer_cannot_make_the_signer_hold_proxies_without_bound),
        T(an_older_head_in_redis_does_not_lock_joiners_out_of_a_restarted_edge),
        T(a_redis_writer_cannot_broadcast_a_patch_through_an_edge),
        T(unsigned_revocations_in_redis_do_not_stall_an_edge),
        T(an_open_request_gives_redis_readers_no_token_for_the_front_door),
        T(an_open_request_does_not_make_the_signer_refill_the_stream),
    };
    return harness_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
