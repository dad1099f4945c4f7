/* edges.c — see edges.h. */
#include "edges.h"

#include <stdarg.h>
#include <string.h>

bool rt_join(runtime *rt, relay *edge, relay *signer, const char *name)
{
    snprintf(rt->name, sizeof rt->name, "%s", name);
    rt->c = join(edge, "jam", PB_ROLE_RUNTIME, name, NULL);
    /* after welcome: the edge welcomes once the signer has begun the room's
     * epoch, which the log reads from the signer's history */
    patch_log_init(&rt->l, signer, "jam");
    return rt->c != NULL;
}

bool rt_rejoin(runtime *rt, relay *edge)
{
    pbc_close(rt->c);
    rt->c = NULL;
    char tok[PB_MAX_TOKEN_BYTES + 1];
    make_token(edge, "jam", PB_ROLE_RUNTIME, rt->name, 3600, tok);
    pbc_target t;
    target(edge, "jam", tok, &t);
    pb_errmsg why = {{0}};
    if (!(rt->c = pbc_open(&t, 10000, &why))) {
        fprintf(stderr, "  %s: %s\n", rt->name, why.text);
        return false;
    }
    pb_frame f = {.type = PB_T_HELLO};
    f.hello.token = pb_cstr(tok);
    f.hello.client = pb_cstr("test");
    f.hello.since_seq = rt->l.last_seq;
    rt->l.caught_up = false;
    return send_now(rt->c, &f, &why) == 0;
}

bool all_reach(runtime *rts, int n, uint64_t seq, uint32_t ms)
{
    uint64_t deadline = now_ms() + ms;
    pb_errmsg why;
    for (;;) {
        int behind = 0;
        for (int i = 0; i < n; i++) {
            runtime *rt = &rts[i];
            if (rt->l.last_seq >= seq && rt->l.caught_up)
                continue;
            behind++;
            if (rt->c)
                pbc_wait(rt->c, 2, collect, &rt->l, &why);
        }
        if (!behind)
            return true;
        if (now_ms() > deadline) {
            for (int i = 0; i < n; i++)
                if (rts[i].l.last_seq < seq || !rts[i].l.caught_up) {
                    fprintf(stderr,
                            "  %s holds %llu of %llu (caught up: %d), %d "
                            "behind\n",
                            rts[i].name, (unsigned long long)rts[i].l.last_seq,
                            (unsigned long long)seq, rts[i].l.caught_up,
                            behind);
                    break;
                }
            return false;
        }
    }
}

void check_exact(const runtime *rt, uint64_t seq)
{
    CHECK_EQ_INT(rt->l.errors, 0);
    if (rt->l.errors)
        fprintf(stderr, "  %s: %s\n", rt->name, rt->l.first_error);
    CHECK_EQ_INT(rt->l.n_patches, seq);
    for (uint32_t i = 0; i < rt->l.n_patches && i < 512; i++)
        if (rt->l.seqs[i] != i + 1) {
            fprintf(stderr, "  %s: item %u is seq %llu\n", rt->name, i,
                    (unsigned long long)rt->l.seqs[i]);
            CHECK(false);
            break;
        }
}

void rts_close(runtime *rts, int n)
{
    for (int i = 0; i < n; i++) {
        pbc_close(rts[i].c);
        rts[i].c = NULL;
    }
}

bool cluster_start(cluster *cl, const char *name)
{
    char dir[64];
    if (!redis_start(&cl->redis, 0))
        return false;
    const char *extra[] = {"--redis", cl->redis.url, NULL};
    snprintf(dir, sizeof dir, "%s-signer", name);
    if (!serve_start(&cl->signer, dir, extra))
        return false;
    snprintf(dir, sizeof dir, "%s-edge-a", name);
    if (!edge_start(&cl->a, dir, &cl->signer, cl->redis.url))
        return false;
    snprintf(dir, sizeof dir, "%s-edge-b", name);
    return edge_start(&cl->b, dir, &cl->signer, cl->redis.url);
}

void cluster_stop(cluster *cl)
{
    relay *rs[] = {&cl->a, &cl->b, &cl->signer};
    for (int i = 0; i < 3; i++)
        if (rs[i]->pid) {
            int st = serve_stop(rs[i]);
            if (st)
                fprintf(stderr, "  relay %s exited with %d (log %s)\n",
                        rs[i]->dir, st, rs[i]->log);
            CHECK_EQ_INT(st, 0);
        }
    redis_kill9(&cl->redis);
}

uint64_t eval_n(pbc *ed, uint64_t req, unsigned k)
{
    char src[256];
    var_source(src, sizeof src, k % 7, k);
    want w;
    return eval(ed, req, src, &w);
}

bool cluster_with_one_patch(cluster *cl, const char *name, runtime *rt,
                            pbc **ed)
{
    *ed = NULL;
    if (!cluster_start(cl, name) || !rt_join(rt, &cl->a, &cl->signer, "rt") ||
        !(*ed = join(&cl->a, "jam", PB_ROLE_EDITOR, "ed", NULL)) ||
        eval_n(*ed, 1, 1) != 1)
        return false;
    return all_reach(rt, 1, 1, 30000);
}

redisReply *redis_do(int port, const char *fmt, ...)
{
    redisContext *c = redisConnect("127.0.0.1", port);
    redisReply *rep = NULL;
    if (c && !c->err) {
        va_list ap;
        va_start(ap, fmt);
        rep = redisvCommand(c, fmt, ap);
        va_end(ap);
    }
    redisFree(c);
    return rep;
}

void rt_listen(runtime *rt, uint32_t ms)
{
    uint64_t until = now_ms() + ms;
    pb_errmsg why;
    while (now_ms() < until && rt->c)
        if (pbc_wait(rt->c, 100, collect, &rt->l, &why) < 0)
            break;
}

bool redis_publish(int port, const char *channel, const relay_env *e)
{
    redisReply *rep =
        redis_do(port, "PUBLISH %s %b", channel, (const char *)e->data, e->len);
    bool ok = rep && rep->type == REDIS_REPLY_INTEGER;
    freeReplyObject(rep);
    return ok;
}

void broadcast_env(relay_env *e, uint64_t epoch, const void *frame, size_t len)
{
    relay_env_u8(e, RELAY_ENV_BROADCAST);
    relay_env_str(e, "jam");
    relay_env_u64(e, epoch);
    relay_env_u8(e, PB_ROLE_NONE);
    if (len)
        relay_env_bytes(e, frame, len);
}

bool refuses_nothing_within(runtime *rt, uint32_t ms)
{
    rt_listen(rt, ms);
    if (rt->l.errors)
        fprintf(stderr, "  the edge passed on: %s\n", rt->l.first_error);
    return rt->l.errors == 0;
}

bool broadcast_on_jam(const cluster *cl, uint64_t epoch, const pb_buf *frame)
{
    relay_env e = {0};
    broadcast_env(&e, epoch, frame->data, frame->len);
    bool ok = redis_publish(cl->redis.port, "pb:r:jam", &e);
    relay_env_free(&e);
    return ok;
}

void a_joiner_reaches(relay *edge, relay *signer, uint64_t seq)
{
    runtime late = {0};
    CHECK(rt_join(&late, edge, signer, "rt-late"));
    if (late.c)
        CHECK(all_reach(&late, 1, seq, 8000));
    check_exact(&late, seq);
    rts_close(&late, 1);
}
