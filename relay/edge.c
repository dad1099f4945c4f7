/* edge.c — an edge relay (`patchbay serve --edge --redis URL`,
 * docs/ARCHITECTURE.md § More than one relay): no signing key, no compile
 * server. It keeps each room it serves in a cache (the history tables, in
 * its own SQLite file, so catch-up and history_req are catchup.c's), takes
 * the signer's patches from Redis strictly as head + 1 (a gap is filled
 * from the room's stream, or by asking the signer), passes the signer's
 * signed heads on only when it holds what they name, and forwards what it
 * does not handle (evals, acks, logs, settings) to the signer. Nothing here
 * is trusted with integrity: runtimes verify every patch and head
 * (docs/SECURITY.md § Edges). */
#include "edge.h"
#include "history_db.h"

#include <hiredis/read.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* XRANGE page (at most 16 values of RELAY_REDIS_MAX_VALUE_BYTES: 32 MiB
 * in a reply); a room not yet held is asked for again this often. */
#define PAGE      "16"
#define PAGE_N    16u
#define RESYNC_US (1000000u)
/* A fill request is answered with up to 256 patches: it is not sent again
 * for the same seq for this long (the edge looks at a room it lacks
 * patches of every second). */
#define FILL_WAIT_US (5u * 1000000u)

typedef struct relay_edge_room {
    bool ready;             /* caught up with what Redis had when it looked */
    bool epoch_known;       /* the cache holds an epoch of the room */
    bool syncing;           /* a GET/XRANGE is on its way */
    uint64_t asked_us;      /* when it last started a sync */
    uint64_t opened_us;     /* when it last asked the signer to open it */
    uint64_t fill_from;     /* the seq its last fill request asked from */
    uint64_t fill_until_us; /* until when it waits for that answer */
    relay_msg *head;        /* the signer's last signed head */
    uint64_t head_seq;      /* the seq it names */
    relay_handle *waiting;  /* sessions waiting for the room */
    uint32_t n_waiting, cap_waiting;
} relay_edge_room;

static void sync_room(relay_server *srv, relay_room *r);
static void release_waiting(relay_room *r);

void relay_edge_to_signer(relay_server *srv, relay_env *e, relay_redis_fn fn,
                          uint64_t tag)
{
    relay_redis_publish(srv->redis, "pb:signer", e, fn, srv, tag);
}

/* ---- the cache ------------------------------------------------------------
 */

static void cache_epoch(relay_server *srv, relay_room *r, bool *known)
{
    *known = false;
    sqlite3_stmt *st = relay_history_prepare(
        srv->history, "SELECT epoch_us FROM epochs WHERE room = ?1");
    if (!st)
        return;
    sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        r->epoch = (uint64_t)sqlite3_column_int64(st, 0);
        *known = true;
    }
    sqlite3_finalize(st);
}

/* Empties the room's cache and starts it again in epoch. */
static pb_err cache_reset(relay_server *srv, relay_room *r, uint64_t epoch,
                          pb_errmsg *why)
{
    static const char *const sql[] = {
        "DELETE FROM patches WHERE room = ?1",
        "DELETE FROM vars WHERE room = ?1",
        "DELETE FROM epochs WHERE room = ?1",
        "INSERT INTO epochs(room, epoch_us) VALUES (?1, ?2)",
    };
    TRY_HISTORY(relay_history_begin(srv->history, why));
    pb_err e = PB_OK;
    for (size_t i = 0; i < sizeof sql / sizeof sql[0] && !e; i++) {
        sqlite3_stmt *st = relay_history_prepare(srv->history, sql[i]);
        if (st) {
            sqlite3_bind_text(st, 1, r->name, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, (sqlite3_int64)epoch);
        }
        if (!st || sqlite3_step(st) != SQLITE_DONE)
            e = relay_history_fail(srv->history, why,
                                   "cannot empty the room's cache");
        sqlite3_finalize(st);
    }
    return relay_history_end(srv->history, e, why);
}

/* A new epoch (the signer's history began again, or the edge meets the
 * room for the first time): the cache starts over and the room's sessions
 * are closed, to rejoin and catch up in it. Only a head signed by the
 * signer's key says so (take_head): pb:epoch:ROOM is not signed. */
static void new_epoch(relay_server *srv, relay_room *r, uint64_t epoch)
{
    pb_errmsg why = {{0}};
    if (cache_reset(srv, r, epoch, &why)) {
        lwsl_err("room %s: %s\n", r->name, why.text);
        return;
    }
    if (r->edge->epoch_known)
        lwsl_user("room %s: epoch %llu (was %llu): cache emptied\n", r->name,
                  (unsigned long long)epoch, (unsigned long long)r->epoch);
    r->epoch = epoch;
    r->head_seq = 0;
    pb_epoch_genesis(r->name, epoch, srv->keys.pk, r->head_hash);
    r->edge->epoch_known = true;
    relay_msg_unref(r->edge->head);
    r->edge->head = NULL;
    r->edge->head_seq = 0;
    for (relay_session *s = r->members; s; s = s->room_next)
        relay_session_send_error(s, PB_ERR_CHAIN_FORK, 0, true,
                                 "room \"%s\" began a new epoch; reconnect",
                                 r->name);
}

/* Takes patch seq into the cache and to the room, if it is head + 1,
 * follows the head and is signed by the signer's key (as Redis gives it:
 * this keeps a forged entry in Redis from breaking the cache; runtimes do
 * not rely on it, they check with the key of their link); false otherwise
 * (a gap, a duplicate, a fork, a forgery). */
static bool apply_patch(relay_server *srv, relay_room *r, uint64_t seq,
                        const uint8_t *frame, size_t len)
{
    if (seq != r->head_seq + 1)
        return false;
    pb_frame f;
    pb_statement st;
    pb_errmsg why = {{0}};
    if (pb_frame_decode(frame, len, &f, &why))
        return false;
    bool ok = false;
    if (f.type != PB_T_PATCH ||
        pb_patch_verify(&f.patch, srv->keys.pk, &st, &why)) {
        if (why.text[0])
            lwsl_warn("room %s#%llu: not cached: %s\n", r->name,
                      (unsigned long long)seq, why.text);
        pb_frame_free(&f);
        return false;
    }
    relay_var_row vars[PB_MAX_SYMBOLS];
    char names[PB_MAX_SYMBOLS][PB_MAX_NAME_BYTES + 1];
    char types[PB_MAX_SYMBOLS][PB_MAX_NAME_BYTES + 1];
    uint32_t n = 0;
    for (uint32_t i = 0; i < st.n_symbols && n < PB_MAX_SYMBOLS; i++) {
        if (pb_str_copy(names[n], sizeof names[n], st.symbols[i].name) ||
            pb_str_copy(types[n], sizeof types[n], st.symbols[i].type))
            continue;
        vars[n] = (relay_var_row){names[n], types[n], "", NULL, 0, seq};
        n++;
    }
    char author[PB_MAX_NAME_BYTES + 1] = "";
    if (pb_str_copy(author, sizeof author, st.author))
        author[0] = '\0';
    relay_patch_row row = {
        .seq = seq,
        .stmt = f.patch.stmt.ptr,
        .stmt_len = f.patch.stmt.len,
        .sig = f.patch.sig.ptr,
        .module = f.patch.module.ptr,
        .module_len = f.patch.module.len,
        .source = f.patch.source.ptr ? f.patch.source.ptr : "",
        .source_len = f.patch.source.len,
        .author = author,
        .created_us = st.created_us,
    };
    memcpy(row.hash, st.hash, PB_HASH_BYTES);
    if (st.seq == seq && f.patch.sig.len == PB_SIG_BYTES &&
        !memcmp(st.prev_hash, r->head_hash, PB_HASH_BYTES) &&
        !relay_history_append(srv->history, r->name, &row, vars, n, &why)) {
        relay_msg *m = relay_msg_new(frame, len);
        if (m) {
            relay_room_publish(r, m, seq, st.hash, st.created_us, st.apply_us,
                               relay_now_us());
            relay_msg_unref(m);
            ok = true;
            /* the signer's head of it came first (a gap): pass it on */
            if (r->edge->head && r->edge->head_seq == seq) {
                relay_room_broadcast(r, r->edge->head, PB_ROLE_NONE);
                release_waiting(r);
            }
        }
    } else if (why.text[0]) {
        lwsl_err("room %s#%llu: not cached: %s\n", r->name,
                 (unsigned long long)seq, why.text);
    }
    pb_statement_free(&st);
    pb_frame_free(&f);
    return ok;
}

/* ---- holding a room -------------------------------------------------------
 */

/* Lets in the sessions waiting for r that may join now (the room held,
 * and as far as their since_seq); the others keep waiting. */
static void release_waiting(relay_room *r)
{
    relay_edge_room *er = r->edge;
    relay_server *srv = r->srv;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < er->n_waiting; i++) {
        relay_session *s = NULL;
        relay_handle h = er->waiting[i];
        if (h.index < srv->n_slots && srv->sessions[h.index]->gen == h.gen)
            s = srv->sessions[h.index];
        if (!s || s->pending_room != r)
            continue; /* it left */
        if (relay_edge_room_ready(r, s->since_seq))
            relay_session_join_pending(s);
        else
            er->waiting[kept++] = h;
    }
    er->n_waiting = kept;
}

static void set_ready(relay_room *r)
{
    r->edge->ready = true;
    r->edge->syncing = false;
    release_waiting(r);
}

static void ask_fill(relay_server *srv, relay_room *r)
{
    relay_edge_room *er = r->edge;
    uint64_t now = relay_mono_us();
    if (er->fill_from == r->head_seq + 1 && now < er->fill_until_us)
        return; /* asked already: the answer may still be on its way */
    er->fill_from = r->head_seq + 1;
    er->fill_until_us = now + FILL_WAIT_US;
    relay_env e = {0};
    relay_env_u8(&e, RELAY_ENV_FILL);
    relay_env_str(&e, srv->edge->id);
    relay_env_str(&e, r->name);
    relay_env_u64(&e, r->epoch);
    relay_env_u64(&e, r->head_seq + 1);
    relay_edge_to_signer(srv, &e, NULL, 0);
    relay_env_free(&e);
}

static void read_stream(relay_server *srv, relay_room *r);

/* XRANGE's entries: [[id, [field, value]], ...] */
static void on_range(void *ctx, uint64_t tag, const relay_rval *v)
{
    relay_server *srv = ctx;
    relay_room *r = relay_room_of_tag(srv, tag);
    if (!r)
        return;
    if (!v || v->type != REDIS_REPLY_ARRAY) {
        r->edge->syncing = false; /* Redis went away: the tick retries */
        return;
    }
    bool gap = false;
    for (size_t i = 0; i < v->n && !gap; i++) {
        const relay_rval *it = v->elem[i];
        if (it->type != REDIS_REPLY_ARRAY || it->n < 2 || !it->elem[0]->str ||
            it->elem[1]->type != REDIS_REPLY_ARRAY || it->elem[1]->n < 2 ||
            !it->elem[1]->elem[1]->str)
            continue;
        uint64_t seq = strtoull(it->elem[0]->str, NULL, 10);
        if (seq <= r->head_seq)
            continue;
        const relay_rval *val = it->elem[1]->elem[1];
        if (!apply_patch(srv, r, seq, (const uint8_t *)val->str, val->len))
            gap = true;
    }
    if (!gap && v->n == PAGE_N) {
        read_stream(srv, r);
        return;
    }
    /* the stream no longer has head + 1, or ends before the signer's head
     * (trimmed, or Redis restarted empty): the signer has it; it answers
     * on this edge's channel */
    if (gap || r->edge->head_seq > r->head_seq)
        ask_fill(srv, r);
    set_ready(r); /* serve what is held; the rest arrives in order */
}

static void read_stream(relay_server *srv, relay_room *r)
{
    char key[PB_MAX_NAME_BYTES + 48], from[32];
    snprintf(key, sizeof key, "pb:s:%s:%llu", r->name,
             (unsigned long long)r->epoch);
    snprintf(from, sizeof from, "%llu-0", (unsigned long long)r->head_seq + 1);
    const char *argv[] = {"XRANGE", key, from, "+", "COUNT", PAGE};
    size_t lens[] = {6, strlen(key), strlen(from), 1, 5, strlen(PAGE)};
    relay_redis_command(srv->redis, on_range, srv, (uint64_t)(uintptr_t)r, 6,
                        argv, lens);
}

/* Asks the signer to publish r (its epoch, the stream's tail, a head):
 * a room it has not published, or whose head in Redis is not its own. At
 * most once per RESYNC_US: its answer makes the edge look again, and a
 * head that never verifies (a forgery kept in Redis) must not make the
 * two ask and answer in a loop. */
static void ask_open(relay_server *srv, relay_room *r)
{
    uint64_t now = relay_mono_us();
    if (r->edge->opened_us && now - r->edge->opened_us < RESYNC_US)
        return;
    r->edge->opened_us = now;
    relay_env e = {0};
    relay_env_u8(&e, RELAY_ENV_OPEN);
    relay_env_str(&e, srv->edge->id);
    relay_env_str(&e, r->name);
    relay_env_u64(&e, 0);
    relay_env_u64(&e, 0);
    /* with the token key's MAC: the signer makes a room it does not have
     * only for an edge (a client with a token for it asked this edge) */
    relay_env_mac(&e, srv->keys.token_key);
    relay_edge_to_signer(srv, &e, NULL, 0);
    relay_env_free(&e);
}

/* A head from Redis (the room's channel, or pb:head:ROOM), m its frame f.
 * Kept only if it verifies against the signer's key, names the room and
 * is not behind the head the edge has (a lower seq, an earlier epoch): a
 * forged one would reach every runtime. One behind the cache (none taken
 * since a restart; a signer that died between appending a patch and
 * setting its head) is kept until a later one comes: joiners are let in
 * with it, as it names a patch they will reach. A later epoch, so signed, is
 * the only thing that makes the edge empty its cache (pb:epoch:ROOM, unsigned,
 * is never read). Returns whether it was kept; *behind: the cache lacks the seq
 * it names. */
static bool take_head(relay_server *srv, relay_room *r, const pb_frame *f,
                      relay_msg *m, bool *behind)
{
    relay_edge_room *er = r->edge;
    *behind = false;
    pb_head h;
    pb_errmsg why;
    if (pb_head_verify(&f->head, srv->keys.pk, &h, &why)) {
        lwsl_warn("room %s: a head not taken: %s\n", r->name, why.text);
        return false;
    }
    bool ok = false;
    if (!pb_str_eq(h.room, r->name)) {
        lwsl_warn("room %s: a head of another room not taken\n", r->name);
    } else if (er->epoch_known &&
               (h.epoch < r->epoch ||
                (h.epoch == r->epoch && er->head && h.seq < er->head_seq))) {
        lwsl_warn("room %s: an older head not taken (epoch %llu seq %llu; "
                  "it has epoch %llu seq %llu)\n",
                  r->name, (unsigned long long)h.epoch,
                  (unsigned long long)h.seq, (unsigned long long)r->epoch,
                  (unsigned long long)er->head_seq);
    } else {
        if (!er->epoch_known || h.epoch != r->epoch)
            new_epoch(srv, r, h.epoch);
        ok = er->epoch_known && h.epoch == r->epoch; /* (the reset failed) */
    }
    if (ok) {
        relay_msg_unref(er->head);
        er->head = m;
        m->refs++;
        er->head_seq = h.seq;
        if (h.seq == r->head_seq)
            relay_room_broadcast(r, m, PB_ROLE_NONE);
        if (h.seq <= r->head_seq)
            release_waiting(r);
        *behind = h.seq > r->head_seq;
    }
    pb_head_free(&h);
    return ok;
}

/* pb:head:ROOM: the signer's last head, which says the room's epoch (and
 * lets joiners in while the signer is away); then the patches after the
 * cache's head. */
static void on_head(void *ctx, uint64_t tag, const relay_rval *v)
{
    relay_server *srv = ctx;
    relay_room *r = relay_room_of_tag(srv, tag);
    if (!r || !r->edge)
        return;
    if (!v || (v->type != REDIS_REPLY_STRING && v->type != REDIS_REPLY_NIL)) {
        r->edge->syncing = false; /* Redis went away: the tick retries */
        return;
    }
    bool taken = false, behind;
    pb_frame f;
    pb_errmsg why;
    relay_msg *m = NULL;
    if (v->type == REDIS_REPLY_STRING &&
        !pb_frame_decode((const uint8_t *)v->str, v->len, &f, &why)) {
        if (f.type == PB_T_HEAD &&
            (m = relay_msg_new((const uint8_t *)v->str, v->len)))
            taken = take_head(srv, r, &f, m, &behind);
        pb_frame_free(&f);
    }
    relay_msg_unref(m);
    if (!taken) /* none yet, or not the signer's: it publishes one; the
                 * tick asks again while the room is not held */
        ask_open(srv, r);
    if (r->edge->epoch_known)
        read_stream(srv, r); /* what it holds is served meanwhile */
    else
        r->edge->syncing = false;
}

/* Where the room is in Redis: its head, then the stream after the cache's
 * head. */
static void sync_room(relay_server *srv, relay_room *r)
{
    if (!r->edge || !relay_redis_is_up(srv->redis) ||
        r->edge->syncing) /* (no r->edge: out of memory when it opened) */
        return;
    r->edge->syncing = true;
    r->edge->asked_us = relay_mono_us();
    char key[PB_MAX_NAME_BYTES + 16];
    snprintf(key, sizeof key, "pb:head:%s", r->name);
    const char *argv[] = {"GET", key};
    size_t lens[] = {3, strlen(key)};
    relay_redis_command(srv->redis, on_head, srv, (uint64_t)(uintptr_t)r, 2,
                        argv, lens);
}

void relay_edge_room_init(relay_room *r)
{
    relay_server *srv = r->srv;
    if (!(r->edge = calloc(1, sizeof *r->edge)))
        return;
    cache_epoch(srv, r, &r->edge->epoch_known);
    pb_errmsg why;
    if (r->edge->epoch_known &&
        relay_history_head(srv->history, r->name, &r->head_seq, r->head_hash,
                           &why))
        lwsl_err("room %s: cannot read its cache: %s\n", r->name, why.text);
    if (!r->head_seq)
        pb_epoch_genesis(r->name, r->epoch, srv->keys.pk, r->head_hash);
    sync_room(srv, r);
}

bool relay_edge_room_ready(const relay_room *r, uint64_t since_seq)
{
    /* and a signed head of what it holds (of its last patch, or one before
     * it): a joiner is sent one before its catch-up (a runtime learns the
     * room's epoch from it) */
    const relay_edge_room *er = r->edge;
    return er && er->ready && er->head && er->head_seq <= r->head_seq &&
           since_seq <= r->head_seq;
}

void relay_edge_wait_room(relay_session *s, relay_room *r)
{
    relay_edge_room *er = r->edge;
    if (!er) {
        relay_session_send_error(s, PB_ERR_NOMEM, 0, true,
                                 "the relay is out of memory");
        return;
    }
    if (er->n_waiting == er->cap_waiting) {
        uint32_t cap = er->cap_waiting ? 2 * er->cap_waiting : 16;
        relay_handle *w = realloc(er->waiting, cap * sizeof *w);
        if (!w) {
            relay_session_send_error(s, PB_ERR_NOMEM, 0, true,
                                     "the relay is out of memory");
            return;
        }
        er->waiting = w;
        er->cap_waiting = cap;
    }
    er->waiting[er->n_waiting++] = (relay_handle){s->index, s->gen};
    s->pending_room = r;
    sync_room(s->srv, r);
}

void relay_edge_send_head(relay_room *r, relay_session *to)
{
    relay_edge_room *er = r->edge;
    if (!er || !er->head || er->head_seq > r->head_seq)
        return; /* a runtime must never be shown a head it cannot reach */
    if (to)
        relay_session_send(to, er->head); /* a joiner: one it will reach */
    else if (er->head_seq == r->head_seq) /* the others have reached it */
        relay_room_broadcast(r, er->head, PB_ROLE_NONE);
}

/* ---- what Redis sends -----------------------------------------------------
 */

/* What the signer broadcasts to a room (relay_room_broadcast's callers):
 * heads, settings, and runtimes' acks, logs and test results to editors.
 * Anything else on a room's channel is not the signer's. */
static bool is_broadcast(const pb_frame *f, pb_role only)
{
    if (f->type == PB_T_HEAD || f->type == PB_T_ROOM)
        return only == PB_ROLE_NONE;
    return only == PB_ROLE_EDITOR &&
           (f->type == PB_T_ACK || f->type == PB_T_LOG ||
            f->type == PB_T_TEST_RESULT);
}

/* A frame the signer broadcast to room r. */
static void on_broadcast(relay_server *srv, relay_room *r, pb_role only,
                         const uint8_t *data, size_t len)
{
    pb_frame f;
    pb_errmsg why;
    if (pb_frame_decode(data, len, &f, &why))
        return;
    relay_msg *m = NULL;
    if (!is_broadcast(&f, only)) {
        relay_edge_say_dropped(srv, "a frame the signer does not broadcast "
                                    "on a room's channel");
    } else if (f.type == PB_T_ROOM &&
               relay_room_settings_check(&f.room, &why)) {
        relay_edge_say_dropped(srv, "room settings out of range");
    } else if (!(m = relay_msg_new(data, len))) {
        /* out of memory: not passed on */
    } else if (f.type == PB_T_HEAD) {
        bool behind;
        if (take_head(srv, r, &f, m, &behind) && behind)
            sync_room(srv, r); /* it missed the patch: a gap */
    } else {
        if (f.type == PB_T_ROOM) {
            r->settings = f.room;
            if (relay_history_set_settings(srv->history, r->name, &f.room,
                                           &why))
                lwsl_err("room %s: %s\n", r->name, why.text);
        } else if (f.type == PB_T_ACK) {
            relay_logring_push(r, m, f.ack.runtime_id);
        } else if (f.type == PB_T_LOG) {
            relay_logring_push(r, m, f.log.runtime_id);
        }
        relay_room_broadcast(r, m, only);
    }
    relay_msg_unref(m);
    pb_frame_free(&f);
}

/* A message on the rooms' channels or this edge's own. The signer sends a
 * room's frames on the room's channel (pb:r:ROOM), and a client's frames
 * and the patches an edge asked for on the edge's (pb:e:EDGE): anything
 * else is not the signer's. */
static void on_message(relay_server *srv, const char *channel,
                       const uint8_t *data, size_t len)
{
    relay_env_reader rd = {data, len, false};
    uint8_t kind = relay_env_get_u8(&rd);
    bool mine =
        !strncmp(channel, "pb:e:", 5) && !strcmp(channel + 5, srv->edge->id);
    if (kind == RELAY_ENV_CLIENT) {
        if (mine)
            relay_edge_on_client(srv, &rd);
        else
            relay_edge_say_dropped(srv,
                                   "a frame to one client on a room's channel");
        return;
    }
    char name[PB_MAX_NAME_BYTES + 1];
    relay_env_get_str(&rd, name, sizeof name);
    uint64_t epoch = relay_env_get_u64(&rd);
    relay_room *r = rd.bad ? NULL : relay_room_find(srv, name);
    if (!r || !r->edge) /* a room nobody here asked for */
        return;
    if (!(mine && kind == RELAY_ENV_PATCH) &&
        (strncmp(channel, "pb:r:", 5) || strcmp(channel + 5, r->name))) {
        relay_edge_say_dropped(srv, "a room's frame on another channel");
        return;
    }
    if (epoch != r->epoch) {
        sync_room(srv, r);
        return;
    }
    if (kind == RELAY_ENV_PATCH) {
        uint64_t seq = relay_env_get_u64(&rd);
        if (!rd.bad && seq > r->head_seq &&
            !apply_patch(srv, r, seq, rd.p, rd.left))
            sync_room(srv, r); /* a gap: the stream has it */
    } else if (kind == RELAY_ENV_BROADCAST) {
        uint8_t only = relay_env_get_u8(&rd);
        if (!rd.bad)
            on_broadcast(srv, r, (pb_role)only, rd.p, rd.left);
    }
}

/* A revocation the signer read ('V' envelope, signed by it: a writer to
 * Redis cannot make an edge refuse anyone): refused here too. */
static void on_revoked(relay_server *srv, const uint8_t *data, size_t len)
{
    if (!relay_env_signed_by(data, len, srv->keys.pk)) {
        relay_edge_say_dropped(srv,
                               "a revocation not signed by the signer's key");
        return;
    }
    relay_env_reader rd = {data, len - PB_SIG_BYTES, false};
    char room[PB_MAX_NAME_BYTES + 1], name[PB_MAX_NAME_BYTES + 1],
        id[RELAY_TOKEN_ID_CHARS + 1];
    if (relay_env_get_u8(&rd) != RELAY_ENV_REVOKED)
        return;
    relay_env_get_str(&rd, room, sizeof room);
    relay_env_get_str(&rd, name, sizeof name);
    relay_env_get_str(&rd, id, sizeof id);
    if (!rd.bad && (id[0] || (room[0] && name[0])))
        relay_revoked_add(srv, room, name, id);
}

/* The set is read REVOKED_SCAN members at a time (SSCAN), one batch per
 * reply: anyone who can write to Redis can add members, and each costs a
 * signature check, so a big set must not hold the loop (or the inbox)
 * while joiners wait; the next batch is asked for once this one is
 * checked, so other replies come between. */
#define REVOKED_SCAN "128"

static void scan_revocations(relay_server *srv, const char *cursor);

static void on_revocations(void *ctx, uint64_t tag, const relay_rval *v)
{
    (void)tag;
    if (!v || v->type != REDIS_REPLY_ARRAY || v->n != 2 ||
        v->elem[0]->type != REDIS_REPLY_STRING ||
        v->elem[1]->type != REDIS_REPLY_ARRAY)
        return; /* Redis went away: read again when it is back */
    const relay_rval *members = v->elem[1];
    for (size_t i = 0; i < members->n; i++)
        if (members->elem[i]->type == REDIS_REPLY_STRING)
            on_revoked(ctx, (const uint8_t *)members->elem[i]->str,
                       members->elem[i]->len);
    if (strcmp(v->elem[0]->str, "0"))
        scan_revocations(ctx, v->elem[0]->str);
}

static void scan_revocations(relay_server *srv, const char *cursor)
{
    const char *argv[] = {"SSCAN", "pb:revoked", cursor, "COUNT", REVOKED_SCAN};
    size_t lens[] = {5, 10, strlen(cursor), 5, strlen(REVOKED_SCAN)};
    relay_redis_command(srv->redis, on_revocations, srv, 0, 5, argv, lens);
}

/* pb:key, the key the signer says it signs with: only compared with the
 * one this edge was given (its relay.pub), never used, since whoever can
 * write to Redis can set it. A difference is said loudly, once per value:
 * the edge is on another signer's Redis, or someone wrote there. */
static void on_key(void *ctx, uint64_t tag, const relay_rval *v)
{
    relay_server *srv = ctx;
    (void)tag;
    if (!v || v->type != REDIS_REPLY_STRING)
        return; /* the signer has not been here yet: the tick asks again */
    srv->edge->key_checked = true;
    uint8_t pk[PB_PUBLICKEY_BYTES];
    bool is_key =
        v->len == 2 * PB_PUBLICKEY_BYTES && !pb_unhex(v->str, pk, sizeof pk);
    if (is_key && !memcmp(pk, srv->keys.pk, sizeof pk))
        return;
    char said[2 * PB_PUBLICKEY_BYTES + 1] = "(not a key)";
    if (is_key)
        pb_hex(pk, sizeof pk, said);
    if (!strcmp(said, srv->edge->other_key))
        return;
    memcpy(srv->edge->other_key, said, sizeof said);
    lwsl_err("edge %s: Redis's pb:key is %s, not the signer key this edge "
             "was given (%s, its relay.pub): patches and heads signed by "
             "another key are refused; is this edge on its signer's "
             "Redis?\n",
             srv->edge->id, said, srv->keys.pk_hex);
}

static void ask_key(relay_server *srv)
{
    const char *argv[] = {"GET", "pb:key"};
    size_t lens[] = {3, 6};
    relay_redis_command(srv->redis, on_key, srv, 0, 2, argv, lens);
}

void relay_edge_event(relay_server *srv, relay_redis_event *e)
{
    switch (e->kind) {
    case RELAY_REDIS_UP:
        lwsl_user("edge %s: connected to %s\n", srv->edge->id,
                  relay_redis_url(srv->redis));
        ask_key(srv);
        scan_revocations(srv, "0"); /* what the signer put in Redis */
        for (relay_room *r = srv->rooms; r; r = r->next)
            if (r->edge) { /* what it missed while away */
                r->edge->syncing = false;
                sync_room(srv, r);
            }
        break;
    case RELAY_REDIS_DOWN:
        lwsl_warn("edge %s: lost Redis (%s); serving what it holds\n",
                  srv->edge->id, relay_redis_url(srv->redis));
        for (relay_room *r = srv->rooms; r; r = r->next)
            if (r->edge)
                r->edge->syncing = false;
        /* their answers would come through Redis: they are lost with it */
        while (srv->edge->evals)
            relay_edge_answer_eval(
                srv, srv->edge->evals->h, srv->edge->evals->req,
                "eval %llu: Redis went away after it was sent to the "
                "room's signer (%s); it may or may not have been "
                "accepted: look for it in the room's history before "
                "sending it again",
                "its answer was lost with Redis");
        break;
    case RELAY_REDIS_REFUSED:
        lwsl_err("edge %s: %s (%s); retrying\n", srv->edge->id,
                 (const char *)e->data, relay_redis_url(srv->redis));
        break;
    case RELAY_REDIS_MESSAGE:
        if (!strcmp(e->channel, "pb:revoked"))
            on_revoked(srv, e->data, e->len);
        else
            on_message(srv, e->channel, e->data, e->len);
        break;
    case RELAY_REDIS_REPLY:
        if (e->fn)
            e->fn(e->ctx, e->tag, e->reply);
        break;
    }
}

/* Every second: rooms not yet held are asked for again, and evals the
 * signer took but never answered are answered. */
static void tick(lws_sorted_usec_list_t *sul)
{
    relay_server *srv = lws_container_of(sul, relay_server, cluster_sul);
    uint64_t now = relay_mono_us();
    if (!srv->edge->key_checked && relay_redis_is_up(srv->redis))
        ask_key(srv);
    for (relay_room *r = srv->rooms; r; r = r->next)
        if (r->edge && (!r->edge->ready || r->edge->head_seq > r->head_seq) &&
            now - r->edge->asked_us > RESYNC_US) {
            r->edge->syncing = false;
            sync_room(srv, r);
        }
    for (pending_eval *p = srv->edge->evals, *next; p; p = next) {
        next = p->next;
        if (now > p->until_us)
            relay_edge_answer_eval(
                srv, p->h, p->req,
                "eval %llu: no answer from the room's signer within "
                "30 s (%s); it may or may not have been accepted: "
                "look for it in the room's history before sending it "
                "again",
                "the signer is unavailable");
    }
    lws_sul_schedule(srv->ctx, 0, &srv->cluster_sul, tick, LWS_US_PER_SEC);
}

pb_err relay_edge_start(relay_server *srv, pb_errmsg *why)
{
    if (!(srv->edge = calloc(1, sizeof *srv->edge)))
        return pb_fail(why, PB_ERR_NOMEM, "out of memory");
    uint8_t id[8];
    randombytes_buf(id, sizeof id);
    pb_hex(id, sizeof id, srv->edge->id);
    char mine[48];
    snprintf(mine, sizeof mine, "pb:e:%s", srv->edge->id);
    const char *subs[] = {"p:pb:r:*", mine, "pb:revoked", NULL};
    if (!(srv->redis =
              relay_redis_start(srv->cfg.redis_url, srv->cfg.redis_password,
                                subs, srv->ctx, why)))
        return PB_ERR_FIELD_RANGE;
    lws_sul_schedule(srv->ctx, 0, &srv->cluster_sul, tick, LWS_US_PER_SEC);
    return PB_OK;
}

void relay_edge_room_free(relay_room *r)
{
    if (!r->edge)
        return;
    relay_msg_unref(r->edge->head);
    free(r->edge->waiting);
    free(r->edge);
    r->edge = NULL;
}

void relay_edge_free(relay_server *srv)
{
    if (!srv->edge)
        return;
    while (srv->edge->evals) {
        pending_eval *p = srv->edge->evals;
        srv->edge->evals = p->next;
        free(p);
    }
    free(srv->edge);
    srv->edge = NULL;
}
