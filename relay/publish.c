/* publish.c — a signer's half of Redis (docs/ARCHITECTURE.md § More than
 * one relay). The signer is the relay with the key and the history; with
 * --redis it also puts every committed patch on its room's stream and
 * channel, every frame it broadcasts to a room on that channel, its key
 * and each room's epoch in keys, and it serves the edges: a client's frame
 * an edge forwards runs through a proxy session (session.c) whose sends go
 * back to that edge; an edge's request for patches the stream no longer
 * has is answered from SQLite. Every message is an envelope (redis.h). */
#include "internal.h"
#include "redis.h"

#include <hiredis/read.h>
#include <stdlib.h>
#include <string.h>

/* Stream length kept per room (XADD MAXLEN ~), and what a signer appends
 * again when it reconnects to a Redis whose stream lacks its last
 * patches, or answers an edge's fill request with, at most. */
#define STREAM_MAX "10000"
#define REFILL_MAX 256u
/* What the signer sends in answer to edges' requests (fill: patches from
 * SQLite on an edge's channel), at most, in bytes per second and at once:
 * a request is a few bytes anyone who can publish may send. Past it a
 * request is answered in part (the edge asks again after its wait). And
 * a room is published for an edge's open request at most once a second. */
#define ANSWER_BYTES_PER_S (32u << 20)
#define ANSWER_BURST_BYTES (64u << 20)
#define OPEN_EVERY_US      (1000000u)
#define OPENED_SLOTS       256u
/* A proxy nobody has used for this long is forgotten (its edge died). At
 * most PROXY_MAX are held (each is a session, ~4 KiB): past it a forward
 * from a client without one is dropped, said once a second. */
#define PROXY_IDLE_US (600u * 1000000u)
/* What an edge sends for a client is taken once (a MAC proves who sent
 * it, not when): its number must be above the last taken from that edge,
 * and its time within FRESH_US of the signer's clock, which bounds a
 * replay after the signer restarted or forgot the edge (the last numbers
 * of EDGES_KEPT edges are kept, the least recently heard forgotten). */
#define FRESH_US      (30u * 1000000u)
#define EDGES_KEPT    64u
#define PROXY_BUCKETS 1024u
#define PROXY_MAX     65536u

typedef struct proxy_bucket {
    relay_handle *h;
    uint32_t n, cap;
} proxy_bucket;

struct relay_signer {
    proxy_bucket proxies[PROXY_BUCKETS];
    uint64_t budget_bytes, budget_us; /* for answers, as of budget_us */
    uint64_t refused_us; /* an open request refused was last said then */
    uint64_t unproven_us, full_us; /* a forward refused: said then */
    uint32_t n_proxies;
    uint64_t stale_us; /* an edge's envelope taken before: said then */
    struct {
        char id[24];
        uint64_t n, heard_us; /* the last number taken, and when */
    } edges[EDGES_KEPT];
    struct {
        const relay_room *room;
        uint64_t at_us;
    } opened[OPENED_SLOTS]; /* when a room was last published for an open
                             * request (by the room's address; two rooms
                             * of one slot share a second) */
};

/* Out of memory (the envelope failed): not sent; an edge fills the gap by
 * seq, a client's eval times out on its edge. */
static void publish(relay_server *srv, const char *channel, const relay_env *e)
{
    relay_redis_publish(srv->redis, channel, e, NULL, NULL, 0);
}

/* ---- what every edge gets ------------------------------------------------ */

static void patch_env(relay_env *e, const relay_room *r, uint64_t seq,
                      const uint8_t *frame, size_t len)
{
    relay_env_u8(e, RELAY_ENV_PATCH);
    relay_env_str(e, r->name);
    relay_env_u64(e, r->epoch);
    relay_env_u64(e, seq);
    relay_env_bytes(e, frame, len);
}

static void stream_add(relay_server *srv, const relay_room *r, uint64_t seq,
                       const uint8_t *frame, size_t len)
{
    char key[PB_MAX_NAME_BYTES + 48], id[32];
    snprintf(key, sizeof key, "pb:s:%s:%llu", r->name,
             (unsigned long long)r->epoch);
    snprintf(id, sizeof id, "%llu-1", (unsigned long long)seq);
    const char *argv[] = {"XADD",     key, "MAXLEN", "~",
                          STREAM_MAX, id,  "p",      (const char *)frame};
    size_t lens[] = {4,          strlen(key), 6,  1, strlen(STREAM_MAX),
                     strlen(id), 1,           len};
    relay_redis_command(srv->redis, NULL, NULL, 0, 8, argv, lens);
}

void relay_signer_patch(relay_server *srv, relay_room *r, relay_msg *patch,
                        uint64_t seq)
{
    /* one connection keeps order: the stream has it before anyone hears */
    const uint8_t *frame = patch->bytes + LWS_PRE;
    stream_add(srv, r, seq, frame, patch->len);
    relay_env e = {0};
    patch_env(&e, r, seq, frame, patch->len);
    char channel[PB_MAX_NAME_BYTES + 8];
    snprintf(channel, sizeof channel, "pb:r:%s", r->name);
    publish(srv, channel, &e);
    relay_env_free(&e);
}

void relay_signer_broadcast(relay_server *srv, relay_room *r, relay_msg *m,
                            pb_role only)
{
    relay_env e = {0};
    relay_env_u8(&e, RELAY_ENV_BROADCAST);
    relay_env_str(&e, r->name);
    relay_env_u64(&e, r->epoch);
    relay_env_u8(&e, (uint8_t)only);
    relay_env_bytes(&e, m->bytes + LWS_PRE, m->len);
    char channel[PB_MAX_NAME_BYTES + 8];
    snprintf(channel, sizeof channel, "pb:r:%s", r->name);
    publish(srv, channel, &e);
    relay_env_free(&e);
}

void relay_signer_keep_head(relay_server *srv, relay_room *r, relay_msg *m)
{
    char key[PB_MAX_NAME_BYTES + 16];
    snprintf(key, sizeof key, "pb:head:%s", r->name);
    const char *argv[] = {"SET", key, (const char *)(m->bytes + LWS_PRE)};
    size_t lens[] = {3, strlen(key), m->len};
    relay_redis_command(srv->redis, NULL, NULL, 0, 3, argv, lens);
}

/* ---- patches from the history ------------------------------------------- */

typedef struct reader {
    relay_server *srv;
    relay_room *room;
    const char *edge; /* NULL: to the stream; else to this edge */
    uint32_t n;
} reader;

static int send_row(void *ctx, const relay_patch_row *p)
{
    reader *rd = ctx;
    pb_frame f = {.type = PB_T_PATCH};
    f.patch.stmt = (pb_bytes){p->stmt, (uint32_t)p->stmt_len};
    f.patch.sig = (pb_bytes){p->sig, PB_SIG_BYTES};
    f.patch.module = (pb_bytes){p->module, (uint32_t)p->module_len};
    f.patch.source = (pb_str){p->source, (uint32_t)p->source_len};
    pb_buf b;
    pb_buf_init(&b);
    pb_errmsg why;
    if (!pb_frame_encode(&f, &b, &why)) {
        if (rd->edge) {
            relay_env e = {0};
            patch_env(&e, rd->room, p->seq, b.data, b.len);
            char channel[64];
            snprintf(channel, sizeof channel, "pb:e:%s", rd->edge);
            publish(rd->srv, channel, &e);
            relay_env_free(&e);
        } else {
            stream_add(rd->srv, rd->room, p->seq, b.data, b.len);
        }
    } else {
        lwsl_err("room %s#%llu: cannot encode it for Redis: %s\n",
                 rd->room->name, (unsigned long long)p->seq, why.text);
    }
    if (rd->edge) {
        size_t spent = b.len < rd->srv->signer->budget_bytes
                           ? b.len
                           : rd->srv->signer->budget_bytes;
        rd->srv->signer->budget_bytes -= spent;
    }
    pb_buf_free(&b);
    return ++rd->n >= REFILL_MAX ||
           (rd->edge && !rd->srv->signer->budget_bytes);
}

/* Refills the answers' budget for the time since it was last used. */
static bool answer_budget_left(struct relay_signer *sg)
{
    uint64_t now = relay_mono_us();
    uint64_t add = (now - sg->budget_us) * (ANSWER_BYTES_PER_S / 1000u) / 1000u;
    sg->budget_us = now;
    sg->budget_bytes = sg->budget_bytes + add > ANSWER_BURST_BYTES
                           ? ANSWER_BURST_BYTES
                           : sg->budget_bytes + add;
    return sg->budget_bytes > 0;
}

/* Whether r may be published for an edge's open request now. */
static bool may_open(struct relay_signer *sg, const relay_room *r)
{
    uint32_t i = (uint32_t)(((uintptr_t)r >> 4) % OPENED_SLOTS);
    uint64_t now = relay_mono_us();
    if (sg->opened[i].room == r && now - sg->opened[i].at_us < OPEN_EVERY_US)
        return false;
    sg->opened[i].room = r;
    sg->opened[i].at_us = now;
    return true;
}

static void send_rows(relay_server *srv, relay_room *r, uint64_t from,
                      const char *edge)
{
    if (!from)
        from = 1;
    if (from > r->head_seq)
        return;
    reader rd = {srv, r, edge, 0};
    pb_errmsg why;
    if (relay_history_patches(srv->history, r->name, from, r->head_seq, false,
                              send_row, &rd, &why))
        lwsl_err("room %s: cannot read patches for Redis: %s\n", r->name,
                 why.text);
}

/* The stream's last entry: what it lacks of the last REFILL_MAX patches
 * is appended again (Redis restarted, or the signer committed while Redis
 * was away). */
static void on_stream_tail(void *ctx, uint64_t tag, const relay_rval *v)
{
    relay_server *srv = ctx;
    relay_room *r = relay_room_of_tag(srv, tag);
    if (!r || !v || v->type != REDIS_REPLY_ARRAY)
        return;
    uint64_t last = 0;
    if (v->n && v->elem[0]->type == REDIS_REPLY_ARRAY && v->elem[0]->n &&
        v->elem[0]->elem[0]->str)
        last = strtoull(v->elem[0]->elem[0]->str, NULL, 10);
    uint64_t from = last + 1;
    if (r->head_seq > REFILL_MAX && from < r->head_seq - REFILL_MAX + 1)
        from = r->head_seq - REFILL_MAX + 1;
    send_rows(srv, r, from, NULL);
    relay_room_send_head(srv, r, NULL);
}

/* What an edge needs to serve r: its epoch, a head; and, when the signer
 * (re)connects, the stream's tail (refill). An edge's open request gets
 * no refill: a few bytes anyone may send must not make the signer read
 * and append up to REFILL_MAX patches outside the answers' budget (an
 * edge fills its gap by asking, within it). */
static void publish_room(relay_server *srv, relay_room *r, bool refill)
{
    char key[PB_MAX_NAME_BYTES + 16], val[24], stream[PB_MAX_NAME_BYTES + 48];
    snprintf(key, sizeof key, "pb:epoch:%s", r->name);
    snprintf(val, sizeof val, "%llu", (unsigned long long)r->epoch);
    const char *set[] = {"SET", key, val};
    size_t set_lens[] = {3, strlen(key), strlen(val)};
    relay_redis_command(srv->redis, NULL, NULL, 0, 3, set, set_lens);
    if (!refill) {
        relay_room_send_head(srv, r, NULL);
        return;
    }
    snprintf(stream, sizeof stream, "pb:s:%s:%llu", r->name,
             (unsigned long long)r->epoch);
    const char *tail[] = {"XREVRANGE", stream, "+", "-", "COUNT", "1"};
    size_t tail_lens[] = {9, strlen(stream), 1, 1, 5, 1};
    relay_redis_command(srv->redis, on_stream_tail, srv, (uint64_t)(uintptr_t)r,
                        6, tail, tail_lens);
}

/* Revocations are kept in a set, for edges that start or reconnect later,
 * and published, for those listening now; signed, since an edge closes
 * and refuses whom they name. */
void relay_signer_revoked(relay_server *srv, const char *room, const char *name,
                          const char *id)
{
    relay_env e = {0};
    relay_env_u8(&e, RELAY_ENV_REVOKED);
    relay_env_str(&e, room);
    relay_env_str(&e, name);
    relay_env_str(&e, id);
    relay_env_sign(&e, srv->keys.sk); /* or a writer to Redis could */
    if (!e.failed) {
        const char *argv[] = {"SADD", "pb:revoked", (const char *)e.data};
        size_t lens[] = {4, 10, e.len};
        relay_redis_command(srv->redis, NULL, NULL, 0, 3, argv, lens);
    }
    publish(srv, "pb:revoked", &e);
    relay_env_free(&e);
}

static void add_room(void *ctx, const char *room, uint64_t head_seq)
{
    (void)head_seq;
    relay_room_get(ctx, room);
}

static void on_up(relay_server *srv)
{
    const char *argv[] = {"SET", "pb:key", srv->keys.pk_hex};
    size_t lens[] = {3, 6, strlen(srv->keys.pk_hex)};
    relay_redis_command(srv->redis, NULL, NULL, 0, 3, argv, lens);
    pb_errmsg why;
    if (relay_history_rooms(srv->history, add_room, srv, &why))
        lwsl_err("cannot list the rooms for Redis: %s\n", why.text);
    for (relay_room *r = srv->rooms; r; r = r->next)
        publish_room(srv, r, true);
    relay_revoked_each(srv, relay_signer_revoked);
    lwsl_user("signer: publishing to %s\n", relay_redis_url(srv->redis));
}

/* ---- proxy sessions ------------------------------------------------------ */

/* Says what was refused, at most once a second (*at: when it last was). */
static void say_once(uint64_t *at, const char *what)
{
    uint64_t now = relay_mono_us();
    if (now - *at > 1000000u) {
        *at = now;
        lwsl_warn("%s\n", what);
    }
}

static uint32_t proxy_hash(const char *edge, relay_handle h)
{
    uint32_t x = 2166136261u;
    for (const char *p = edge; *p; p++)
        x = (x ^ (uint8_t)*p) * 16777619u;
    x ^= h.index * 2654435761u ^ h.gen;
    return x % PROXY_BUCKETS;
}

static relay_session *proxy_find(relay_server *srv, const char *edge,
                                 relay_handle h, uint32_t *at)
{
    proxy_bucket *b = &srv->signer->proxies[proxy_hash(edge, h)];
    for (uint32_t i = 0; i < b->n; i++) {
        relay_session *s = srv->sessions[b->h[i].index];
        if (s->gen == b->h[i].gen && s->is_proxy &&
            s->proxy_of.index == h.index && s->proxy_of.gen == h.gen &&
            !strcmp(s->proxy_edge, edge)) {
            if (at)
                *at = i;
            return s;
        }
    }
    return NULL;
}

static void proxy_drop(relay_server *srv, relay_session *s)
{
    proxy_bucket *b =
        &srv->signer->proxies[proxy_hash(s->proxy_edge, s->proxy_of)];
    for (uint32_t i = 0; i < b->n; i++)
        if (b->h[i].index == s->index && b->h[i].gen == s->gen) {
            b->h[i] = b->h[--b->n];
            srv->signer->n_proxies--;
            break;
        }
    relay_session_free_proxy(s);
}

static relay_session *proxy_get(relay_server *srv, const char *edge,
                                relay_handle h, pb_role role, const char *name,
                                const char *room)
{
    relay_session *s = proxy_find(srv, edge, h, NULL);
    if (s)
        return s->role == role && !strcmp(s->name, name) &&
                       !strcmp(s->room->name, room)
                   ? s
                   : NULL; /* the handle is the edge's: it cannot change */
    relay_room *r = relay_room_find(srv, room);
    proxy_bucket *b = &srv->signer->proxies[proxy_hash(edge, h)];
    if (!r)
        return NULL;
    if (srv->signer->n_proxies >= PROXY_MAX) {
        say_once(&srv->signer->full_us,
                 "signer: a forward from a new client of an edge dropped: "
                 "it holds as many proxies as it may (65,536)");
        return NULL;
    }
    if (b->n == b->cap) { /* (out of memory: the bucket stays as it was) */
        uint32_t cap = b->cap ? 2 * b->cap : 4;
        relay_handle *grown = realloc(b->h, cap * sizeof *grown);
        if (!grown)
            return NULL;
        b->h = grown;
        b->cap = cap;
    }
    if (!(s = relay_session_new_proxy(srv, r, role, name)))
        return NULL;
    snprintf(s->proxy_edge, sizeof s->proxy_edge, "%s", edge);
    s->proxy_of = h;
    b->h[b->n++] = (relay_handle){s->index, s->gen};
    srv->signer->n_proxies++;
    return s;
}

void relay_signer_to_edge(relay_session *s, relay_msg *m, bool close)
{
    relay_env e = {0};
    relay_env_u8(&e, RELAY_ENV_CLIENT);
    relay_env_u32(&e, s->proxy_of.index);
    relay_env_u32(&e, s->proxy_of.gen);
    relay_env_u8(&e, close);
    if (m)
        relay_env_bytes(&e, m->bytes + LWS_PRE, m->len);
    char channel[64];
    snprintf(channel, sizeof channel, "pb:e:%s", s->proxy_edge);
    publish(s->srv, channel, &e);
    relay_env_free(&e);
}

/* ---- what edges ask ------------------------------------------------------ */

static void on_forward(relay_server *srv, relay_env_reader *rd,
                       const char *edge)
{
    relay_handle h;
    h.index = relay_env_get_u32(rd);
    h.gen = relay_env_get_u32(rd);
    uint8_t role = relay_env_get_u8(rd);
    char name[PB_MAX_NAME_BYTES + 1], room[PB_MAX_NAME_BYTES + 1];
    relay_env_get_str(rd, name, sizeof name);
    relay_env_get_str(rd, room, sizeof room);
    /* a room and a name a token could hold, of a room the signer has
     * (an edge's client joined it, so the signer opened it) */
    if (rd->bad || !relay_name_is_valid(room) || !relay_name_is_valid(name) ||
        role < PB_ROLE_OWNER || role > PB_ROLE_VIEWER ||
        !relay_room_find(srv, room))
        return;
    relay_session *s = proxy_get(srv, edge, h, (pb_role)role, name, room);
    if (!s || s->state != RELAY_SESS_LIVE)
        return;
    s->proxy_used_us = relay_mono_us();
    pb_frame f;
    pb_errmsg why = {{0}};
    if (pb_frame_decode(rd->p, rd->left, &f, &why)) {
        relay_session_refuse(s, PB_ERR_MALFORMED, 0, "%s", why.text);
        return;
    }
    relay_session_on_frame(s, &f, rd->p, rd->left);
    pb_frame_free(&f);
}

/* A room the signer does not have is made (a row in its history, and
 * published on every reconnect) only for an open request MACed with the
 * token key, which only edges have: whoever can only publish to Redis
 * cannot make rooms. */
_Static_assert(RELAY_ENV_MAC_KEY_BYTES == RELAY_TOKEN_KEY_BYTES,
               "open requests are MACed with the token key");

static bool may_create(relay_server *srv, const uint8_t *data, size_t len)
{
    if (relay_env_mac_ok(data, len, srv->keys.token_key))
        return true;
    say_once(&srv->signer->refused_us,
             "signer: an open request for a room it does not have, not from "
             "an edge (no MAC with the token key): not made");
    return false;
}

/* Whether an edge's envelope (its time and number) is new: taken once,
 * and only near the signer's clock. */
static bool first_time(struct relay_signer *g, const char *edge,
                       uint64_t sent_us, uint64_t n)
{
    uint64_t now = relay_now_us();
    if (sent_us + FRESH_US < now || sent_us > now + FRESH_US)
        return false;
    uint32_t slot = 0;
    for (uint32_t i = 0; i < EDGES_KEPT; i++) {
        if (!strcmp(g->edges[i].id, edge)) {
            if (n <= g->edges[i].n)
                return false;
            slot = i;
            break;
        }
        if (g->edges[i].heard_us < g->edges[slot].heard_us)
            slot = i; /* an empty one, or the least recently heard */
    }
    if (strcmp(g->edges[slot].id, edge))
        snprintf(g->edges[slot].id, sizeof g->edges[slot].id, "%s", edge);
    g->edges[slot].n = n;
    g->edges[slot].heard_us = now;
    return true;
}

static void on_signer_message(relay_server *srv, const uint8_t *data,
                              size_t len)
{
    relay_env_reader rd = {data, len, false};
    uint8_t kind = relay_env_get_u8(&rd);
    char edge[24];
    relay_env_get_str(&rd, edge, sizeof edge);
    if (rd.bad || !edge[0])
        return;
    if (kind == RELAY_ENV_FORWARD || kind == RELAY_ENV_CLOSED) {
        /* only an edge (the token key's MAC) makes a proxy, or closes one */
        if (!relay_env_mac_ok(data, len, srv->keys.token_key)) {
            say_once(&srv->signer->unproven_us,
                     "signer: a client's frame not from an edge (no MAC with "
                     "the token key): dropped");
            return;
        }
        rd.left -= RELAY_ENV_MAC_BYTES; /* (mac_ok: len holds it) */
        uint64_t sent_us = relay_env_get_u64(&rd);
        uint64_t n = relay_env_get_u64(&rd);
        if (rd.bad || !first_time(srv->signer, edge, sent_us, n)) {
            say_once(&srv->signer->stale_us,
                     "signer: an edge's frame seen before, or too old or "
                     "too far ahead of this clock: dropped");
            return;
        }
    }
    if (kind == RELAY_ENV_FORWARD) {
        on_forward(srv, &rd, edge);
    } else if (kind == RELAY_ENV_CLOSED) {
        relay_handle h;
        h.index = relay_env_get_u32(&rd);
        h.gen = relay_env_get_u32(&rd);
        relay_session *s = rd.bad ? NULL : proxy_find(srv, edge, h, NULL);
        if (s)
            proxy_drop(srv, s);
    } else if (kind == RELAY_ENV_OPEN || kind == RELAY_ENV_FILL) {
        char name[PB_MAX_NAME_BYTES + 1];
        relay_env_get_str(&rd, name, sizeof name);
        uint64_t epoch = relay_env_get_u64(&rd);
        uint64_t from = relay_env_get_u64(&rd);
        relay_room *r = rd.bad ? NULL : relay_room_find(srv, name);
        if (!r && !rd.bad && kind == RELAY_ENV_OPEN &&
            relay_name_is_valid(name) && may_create(srv, data, len))
            r = relay_room_get(srv, name);
        if (!r)
            return;
        if (kind == RELAY_ENV_OPEN || epoch != r->epoch) {
            if (may_open(srv->signer, r))
                publish_room(srv, r, false); /* its epoch, a head */
        } else if (answer_budget_left(srv->signer)) {
            send_rows(srv, r, from, edge);
        }
    }
}

/* ---- the loop's side ----------------------------------------------------- */

/* Every second: proxies whose edge closed them, or that nobody used for a
 * long time (their edge died), are forgotten. */
static void tick(lws_sorted_usec_list_t *sul)
{
    relay_server *srv = lws_container_of(sul, relay_server, cluster_sul);
    uint64_t now = relay_mono_us();
    for (uint32_t i = 0; i < srv->n_slots; i++) {
        relay_session *s = srv->sessions[i];
        if (s->is_proxy && (s->state == RELAY_SESS_CLOSING ||
                            now - s->proxy_used_us > PROXY_IDLE_US))
            proxy_drop(srv, s);
    }
    lws_sul_schedule(srv->ctx, 0, &srv->cluster_sul, tick, LWS_US_PER_SEC);
}

pb_err relay_signer_start(relay_server *srv, pb_errmsg *why)
{
    if (!(srv->signer = calloc(1, sizeof *srv->signer)))
        return pb_fail(why, PB_ERR_NOMEM, "out of memory");
    srv->signer->budget_bytes = ANSWER_BURST_BYTES;
    srv->signer->budget_us = relay_mono_us();
    const char *subs[] = {"pb:signer", NULL};
    if (!(srv->redis =
              relay_redis_start(srv->cfg.redis_url, srv->cfg.redis_password,
                                subs, srv->ctx, why)))
        return PB_ERR_FIELD_RANGE;
    lws_sul_schedule(srv->ctx, 0, &srv->cluster_sul, tick, LWS_US_PER_SEC);
    return PB_OK;
}

void relay_cluster_deliver(relay_server *srv)
{
    if (!srv->redis)
        return;
    relay_redis_event *list = relay_redis_take(srv->redis);
    while (list) {
        relay_redis_event *e = list;
        list = e->next;
        if (srv->edge) {
            relay_edge_event(srv, e);
        } else if (e->kind == RELAY_REDIS_UP) {
            on_up(srv);
        } else if (e->kind == RELAY_REDIS_DOWN) {
            lwsl_warn("signer: lost Redis (%s); reconnecting\n",
                      relay_redis_url(srv->redis));
        } else if (e->kind == RELAY_REDIS_REFUSED) {
            lwsl_err("signer: %s (%s); retrying\n", (const char *)e->data,
                     relay_redis_url(srv->redis));
        } else if (e->kind == RELAY_REDIS_MESSAGE) {
            on_signer_message(srv, e->data, e->len);
        } else if (e->kind == RELAY_REDIS_REPLY && e->fn) {
            e->fn(e->ctx, e->tag, e->reply);
        }
        relay_redis_event_free(e);
    }
}

void relay_signer_free(relay_server *srv)
{
    if (!srv->signer)
        return;
    for (uint32_t i = 0; i < PROXY_BUCKETS; i++)
        free(srv->signer->proxies[i].h);
    free(srv->signer);
    srv->signer = NULL;
}
