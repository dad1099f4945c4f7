/* session.c — one WebSocket connection: the patchbay protocol callback.
 * A session starts waiting for `hello` (with a deadline), becomes live in
 * its token's room with its token's role, and from then on each frame it
 * sends is checked against what its role may send (docs/PROTOCOL.md § Who
 * sends what) before anything happens. Sends go through the session's
 * bounded queue, written at once while lws holds none of it, else from
 * WRITEABLE (flush). */
#include "internal.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- the slot table ------------------------------------------------------- */

static relay_session *session_new(relay_server *g, struct lws *wsi)
{
    uint32_t i;
    for (i = 0; i < g->n_slots; i++)
        if (g->sessions[i]->state == RELAY_SESS_FREE)
            break;
    if (i == g->n_slots) {
        uint32_t n = g->n_slots ? g->n_slots * 2 : 64, k;
        relay_session **t = realloc(g->sessions, n * sizeof *t);
        if (!t)
            return NULL;
        g->sessions = t;
        /* out of memory part way: the slots made so far are kept */
        for (k = g->n_slots; k < n && (t[k] = calloc(1, sizeof **t)); k++)
            t[k]->index = k;
        if (k == g->n_slots)
            return NULL;
        i = g->n_slots;
        g->n_slots = k;
    }
    relay_session *s = g->sessions[i];
    uint32_t gen = s->gen + 1;
    memset(s, 0, sizeof *s);
    s->index = i;
    s->gen = gen;
    s->srv = g;
    s->wsi = wsi;
    s->state = RELAY_SESS_AWAIT_HELLO;
    s->client_id = ++g->next_client_id;
    if (wsi)
        lws_get_peer_simple(wsi, s->peer, sizeof s->peer);
    return s;
}

static void session_free(relay_session *s)
{
    relay_buffers_leave(s);
    relay_outq_clear(&s->q);
    free(s->rx);
    uint32_t index = s->index, gen = s->gen;
    memset(s, 0, sizeof *s);
    s->index = index;
    s->gen = gen; /* the next user bumps it */
}

bool relay_sessions_sending(const relay_server *g)
{
    for (uint32_t i = 0; i < g->n_slots; i++) {
        const relay_session *s = g->sessions[i];
        if (s->state != RELAY_SESS_FREE && !s->is_proxy &&
            (s->q.count > 0 || lws_partial_buffered(s->wsi)))
            return true;
    }
    return false;
}

void relay_sessions_free(relay_server *g)
{
    for (uint32_t i = 0; i < g->n_slots; i++) {
        relay_buffers_leave(g->sessions[i]);
        relay_outq_clear(&g->sessions[i]->q);
        free(g->sessions[i]->rx);
        free(g->sessions[i]);
    }
    free(g->sessions);
    g->sessions = NULL;
    g->n_slots = 0;
}

relay_session *relay_session_get(relay_server *g, relay_handle h)
{
    if (h.index >= g->n_slots)
        return NULL;
    relay_session *s = g->sessions[h.index];
    return s->gen == h.gen && s->state == RELAY_SESS_LIVE ? s : NULL;
}

/* ---- sending --------------------------------------------------------------- */

static void begin_close(relay_session *s, const char *reason)
{
    if (s->state == RELAY_SESS_CLOSING)
        return;
    snprintf(s->close_reason, sizeof s->close_reason, "%s", reason);
    s->state = RELAY_SESS_CLOSING;
    if (s->is_proxy) { /* its edge closes the client; publish.c frees it */
        relay_signer_to_edge(s, NULL, true);
        return;
    }
    lws_callback_on_writable(s->wsi);
    /* A peer that does not read cannot be sent the close either: drop it
     * after a grace period. */
    lws_set_timer_usecs(s->wsi, (lws_usec_t)RELAY_CLOSE_GRACE_MS * 1000);
}

/* Drops what a session has queued, queues one fatal error saying why and
 * closes it. The queue is empty then, so the error always fits. */
static void drop_and_close(relay_session *s, pb_err code, const char *msg)
{
    lwsl_user("client %llu (%s, %s): %s; disconnecting\n",
              (unsigned long long)s->client_id, s->name, s->peer, msg);
    relay_outq_clear(&s->q);
    pb_frame f = {.type = PB_T_ERROR};
    f.error.code = (uint32_t)code;
    f.error.message = pb_cstr(msg);
    f.error.fatal = true;
    pb_errmsg why;
    relay_msg *m = relay_msg_encode(&f, &why);
    if (m && relay_outq_push(&s->q, m, SIZE_MAX) == PB_OK)
        lws_callback_on_writable(s->wsi);
    relay_msg_unref(m);
    begin_close(s, pb_strerror(code));
}

void relay_session_close(relay_session *s, const char *reason)
{
    begin_close(s, reason);
}

/* Writes s's queue, frame after frame, while lws holds nothing of s's
 * (lws_partial_buffered): lws_write sends a whole frame, or keeps what the
 * socket did not take and sends it first when the socket is writable
 * again, before any control frame of its own and before it calls
 * WRITEABLE, so a frame is never cut or interleaved with another; what is
 * left in the queue waits for WRITEABLE. Called from WRITEABLE (lws has
 * just emptied its buffer) and from relay_session_send when the queue was
 * empty, so that a broadcast costs one send() per client and no poll()
 * round trip (docs/ARCHITECTURE.md § relay/, How the relay writes). At most
 * RELAY_FLUSH_BYTES a call. -1: the connection failed. */
static int flush(relay_session *s)
{
    size_t sent = 0;
    relay_msg *m;
    while ((m = relay_outq_peek(&s->q)) && sent < RELAY_FLUSH_BYTES &&
           !lws_partial_buffered(s->wsi)) {
        int n = lws_write(s->wsi, m->bytes + LWS_PRE, m->len, LWS_WRITE_BINARY);
        if (n < (int)m->len)
            return -1;
        sent += m->len;
        relay_outq_pop(&s->q);
    }
    return 0;
}

/* Queues m for s; at_once: and writes it now if nothing else waits. */
static void send_msg(relay_session *s, relay_msg *m, bool at_once)
{
    if (!m || s->state == RELAY_SESS_FREE || s->state == RELAY_SESS_CLOSING)
        return;
    if (s->is_proxy) {
        relay_signer_to_edge(s, m, false);
        return;
    }
    pb_err e = relay_outq_push(&s->q, m, s->srv->cfg.max_queue_bytes);
    if (e == PB_ERR_SLOW_CONSUMER) {
        /* A slow consumer must not slow anyone else. */
        char msg[160];
        snprintf(msg, sizeof msg,
                 "slow consumer: more than %u bytes queued for you",
                 s->srv->cfg.max_queue_bytes);
        drop_and_close(s, e, msg);
        return;
    }
    if (e) {
        drop_and_close(s, e, "the relay is out of memory");
        return;
    }
    if (at_once && s->q.count == 1 && flush(s) < 0) {
        /* the socket failed: lws closes it when the loop sees that, the
         * grace timer if it does not */
        relay_outq_clear(&s->q);
        begin_close(s, "the connection failed");
        return;
    }
    if (relay_outq_peek(&s->q))
        lws_callback_on_writable(s->wsi);
}

void relay_session_send(relay_session *s, relay_msg *m)
{
    send_msg(s, m, true);
}

static void send_frame(relay_session *s, const pb_frame *f, bool at_once)
{
    pb_errmsg why;
    relay_msg *m = relay_msg_encode(f, &why);
    if (!m) {
        lwsl_err("cannot encode a %s frame: %s\n", pb_type_name(f->type),
                 why.text);
        return;
    }
    send_msg(s, m, at_once);
    relay_msg_unref(m);
}

void relay_session_send_frame(relay_session *s, const pb_frame *f)
{
    send_frame(s, f, true);
}

void relay_session_queue_frame(relay_session *s, const pb_frame *f)
{
    send_frame(s, f, false);
}

void relay_session_send_error(relay_session *s, pb_err code, uint64_t req,
                              bool fatal, const char *fmt, ...)
{
    char msg[PB_MAX_MESSAGE_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* a name or a compiler's words cut mid-character would make the
     * frame fail to encode, and the client wait for it */
    msg[pb_utf8_prefix(msg, strlen(msg))] = '\0';
    pb_frame f = {.type = PB_T_ERROR};
    f.error.code = (uint32_t)code;
    f.error.message = pb_cstr(msg);
    f.error.req = req;
    f.error.fatal = fatal;
    relay_session_send_frame(s, &f);
    if (fatal) {
        lwsl_user("client %llu (%s): %s\n", (unsigned long long)s->client_id,
                  s->peer, msg);
        begin_close(s, pb_strerror(code));
    }
}

static int on_writeable(relay_session *s)
{
    if (flush(s) < 0)
        return -1;
    relay_catchup_pump(s); /* the next frames of history, if due */
    if (relay_outq_peek(&s->q) || lws_partial_buffered(s->wsi)) {
        lws_callback_on_writable(s->wsi);
        return 0;
    }
    if (s->state == RELAY_SESS_CLOSING && !s->close_next) {
        /* Everything is with the kernel, the final error last: close at
         * the next WRITEABLE, when the socket has room again (the peer
         * has read some), or the grace timer's. Closing now, with the
         * error still unread, could lose it to the peer. */
        s->close_next = true;
        lws_callback_on_writable(s->wsi);
        return 0;
    }
    if (s->state == RELAY_SESS_CLOSING) {
        lws_close_reason(s->wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                         (unsigned char *)s->close_reason,
                         strlen(s->close_reason));
        return -1;
    }
    return 0;
}

/* ---- refusals ------------------------------------------------------------ */

void relay_session_refuse(relay_session *s, pb_err code, uint64_t req,
                          const char *fmt, ...)
{
    char msg[PB_MAX_MESSAGE_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!relay_bucket_take(&s->bad, RELAY_BAD_FRAMES_PER_S,
                           RELAY_BAD_FRAME_BURST, 1, relay_mono_us())) {
        relay_session_send_error(s, PB_ERR_RATE_LIMITED, req, true,
                                 "more than %d refused frames (then %d per "
                                 "second); the last: %s",
                                 RELAY_BAD_FRAME_BURST, RELAY_BAD_FRAMES_PER_S,
                                 msg);
        return;
    }
    relay_session_send_error(s, code, req, false, "%s", msg);
}

/* ---- frames from a live session ------------------------------------------------ */

static bool role_may_send(pb_role role, pb_type t)
{
    switch (t) {
    case PB_T_PING:
    case PB_T_HISTORY_REQ:
        return true;
    case PB_T_EVAL:
    case PB_T_TEST_REQ:
    case PB_T_SNAPSHOT_REQ:
        return role == PB_ROLE_OWNER || role == PB_ROLE_EDITOR;
    case PB_T_LOG_REQ: return role != PB_ROLE_RUNTIME;
    case PB_T_ACK:
    case PB_T_LOG:
    case PB_T_TEST_RESULT:
    case PB_T_SNAPSHOT: return role == PB_ROLE_RUNTIME;
    case PB_T_ROOM:
        return role == PB_ROLE_OWNER;
    /* shared buffers: people write or watch; runtimes get none of it */
    case PB_T_BUFFER_OP:
    case PB_T_BUFFER_UPDATE:
    case PB_T_BUFFER_COMPACT:
        return role == PB_ROLE_OWNER || role == PB_ROLE_EDITOR;
    case PB_T_BUFFER_AWARE: return role != PB_ROLE_RUNTIME;
    default:
        return false;
    }
}

/* Forwards a runtime's ack/log/test_result to the room's editors, stamped
 * with the runtime's id. */
static void forward_from_runtime(relay_session *s, pb_frame *f)
{
    if (f->type == PB_T_ACK) {
        f->ack.runtime_id = s->client_id;
        s->last_ack = f->ack.state;
        s->last_seq = f->ack.seq;
        s->mem_bytes = f->ack.mem_bytes;
        int64_t skew;
        if (relay_lockstep_ack(&s->room->ls, &s->ls, &f->ack, relay_now_us(),
                               &skew))
            s->skew_us = skew;
    } else if (f->type == PB_T_LOG) {
        f->log.runtime_id = s->client_id;
    } else {
        f->test_result.runtime_id = s->client_id;
    }
    pb_errmsg why;
    relay_msg *m = relay_msg_encode(f, &why);
    if (!m)
        return;
    relay_room_broadcast(s->room, m, PB_ROLE_EDITOR);
    if (f->type != PB_T_TEST_RESULT) /* kept for `patchbay logs` */
        relay_logring_push(s->room, m, s->client_id);
    relay_msg_unref(m);
}

static void on_room_settings(relay_session *s, const pb_room *r)
{
    pb_errmsg why;
    if (relay_room_settings_check(r, &why)) {
        relay_session_send_error(s, PB_ERR_FIELD_RANGE, 0, false, "%s",
                                 why.text);
        return;
    }
    s->room->settings = *r;
    if (relay_history_set_settings(s->srv->history, s->room->name, r, &why))
        lwsl_err("room %s: settings not saved: %s\n", s->room->name,
                 why.text);
    pb_frame f = {.type = PB_T_ROOM};
    f.room = *r;
    relay_msg *m = relay_msg_encode(&f, &why);
    if (m) {
        relay_room_broadcast(s->room, m, PB_ROLE_NONE);
        relay_msg_unref(m);
    }
}

/* The request number a refusal answers, for frames that carry one. */
static uint64_t req_of(const pb_frame *f)
{
    switch (f->type) {
    case PB_T_EVAL: return f->eval.req;
    case PB_T_BUFFER_OP: return f->buffer_op.req;
    case PB_T_BUFFER_UPDATE: return f->buffer_update.req;
    case PB_T_BUFFER_COMPACT: return f->buffer_compact.req;
    default: return 0;
    }
}

void relay_session_on_frame(relay_session *s, pb_frame *f, const uint8_t *data,
                            size_t len)
{
    if (!role_may_send(s->role, f->type)) {
        relay_session_refuse(s, PB_ERR_FORBIDDEN, req_of(f),
                             "a %s may not send %s frames",
                             pb_role_name(s->role), pb_type_name(f->type));
        return;
    }
    double per_s;
    if (!relay_frame_rate_take(s, f->type, relay_mono_us(), &per_s)) {
        /* dropped, not forwarded: one runtime must not flood the room's
         * editors, nor one editor the runtimes */
        relay_session_refuse(s, PB_ERR_RATE_LIMITED, req_of(f),
                             "a %s frame dropped: more than %g per second",
                             pb_type_name(f->type), per_s);
        return;
    }
    if (s->srv->edge && relay_edge_forward(s, f, data, len))
        return; /* the signer's business */
    switch (f->type) {
    case PB_T_PING: {
        if (f->ping.unc_us)
            s->unc_us = f->ping.unc_us;
        pb_frame p = {.type = PB_T_PONG};
        p.pong.t0_us = f->ping.t0_us;
        p.pong.t1_us = relay_now_us();
        p.pong.t2_us = relay_now_us();
        relay_session_send_frame(s, &p);
        break;
    }
    case PB_T_EVAL: relay_eval_admit(s, &f->eval); break;
    case PB_T_ACK:
    case PB_T_LOG:
    case PB_T_TEST_RESULT: forward_from_runtime(s, f); break;
    case PB_T_TEST_REQ: relay_on_test_req(s, f); break;
    case PB_T_SNAPSHOT_REQ: relay_on_snapshot_req(s, f); break;
    case PB_T_SNAPSHOT: relay_on_snapshot(s, f); break;
    case PB_T_LOG_REQ: relay_on_log_req(s, &f->log_req); break;
    case PB_T_HISTORY_REQ: relay_send_history(s, &f->history_req); break;
    case PB_T_ROOM: on_room_settings(s, &f->room); break;
    case PB_T_BUFFER_OP:
    case PB_T_BUFFER_UPDATE:
    case PB_T_BUFFER_COMPACT:
    case PB_T_BUFFER_AWARE: relay_on_buffer_frame(s, f); break;
    default: break;
    }
}

/* ---- the handshake ---------------------------------------------------------------- */

static void join_room(relay_session *s, relay_room *room);

static void on_hello(relay_session *s, const pb_hello *h)
{
    relay_token tok;
    pb_errmsg why = {{0}};
    pb_err e = relay_token_verify(&s->srv->keys, h->token.ptr, h->token.len,
                                  relay_now_us() / 1000000u, &tok, &why);
    if (e) {
        relay_session_send_error(s, e, 0, true, "%s", why.text);
        return;
    }
    if (s->want_room[0] && strcmp(s->want_room, tok.room)) {
        relay_session_send_error(s, PB_ERR_AUTH_WRONG_ROOM, 0, true,
                                 "this token is for room \"%s\", not \"%s\"",
                                 tok.room, s->want_room);
        return;
    }
    char id[RELAY_TOKEN_ID_CHARS + 1];
    relay_token_id(h->token.ptr, h->token.len, id);
    const char *revoked = relay_revoked_why(s->srv, tok.room, tok.name, id);
    if (revoked) {
        relay_session_send_error(s, PB_ERR_AUTH_REVOKED, 0, true, "%s",
                                 revoked);
        return;
    }
    relay_room *room = relay_room_get(s->srv, tok.room);
    if (!room) {
        relay_session_send_error(s, PB_ERR_NOMEM, 0, true,
                                 "cannot open room \"%s\"", tok.room);
        return;
    }
    s->role = tok.role;
    snprintf(s->name, sizeof s->name, "%s", tok.name);
    relay_device_set(s, h);
    s->expires_s = tok.expires_s;
    memcpy(s->token_id, id, sizeof id);
    if (pb_str_copy(s->client, sizeof s->client, h->client))
        s->client[0] = '\0';
    s->since_seq = h->since_seq;
    s->want_buffers = h->buffers && !s->srv->edge; /* edges serve none */
    if (s->srv->edge && !relay_edge_room_ready(room, s->since_seq)) {
        relay_edge_wait_room(s, room); /* the hello deadline still runs */
        return;
    }
    join_room(s, room);
}

/* After hello (and, on an edge, once it holds the room): into the room,
 * then welcome, the signed head, settings, catch-up, presence. */
static void join_room(relay_session *s, relay_room *room)
{
    s->pending_room = NULL;
    /* before the room's limit: a runtime back takes its own place */
    relay_device_replace(room, s);
    if (room->n_members >= s->srv->cfg.max_clients_per_room) {
        relay_session_send_error(s, PB_ERR_ROOM_FULL, 0, true,
                                 "room \"%s\" is full (%u clients)", room->name,
                                 s->srv->cfg.max_clients_per_room);
        return;
    }
    lws_set_timer_usecs(s->wsi, LWS_SET_TIMER_USEC_CANCEL);
    s->state = RELAY_SESS_LIVE;
    relay_room_join(room, s);
    if ((s->quota = relay_quota_get(room, s->name)))
        s->quota->sessions++;
    lwsl_user("client %llu joined room %s as %s %s (%s, %s)\n",
              (unsigned long long)s->client_id, room->name,
              pb_role_name(s->role), s->name, s->client[0] ? s->client : "-",
              s->peer);

    pb_frame w = {.type = PB_T_WELCOME};
    w.welcome.room = pb_cstr(room->name);
    w.welcome.role = s->role;
    w.welcome.name = pb_cstr(s->name);
    w.welcome.client_id = s->client_id;
    memcpy(w.welcome.key, s->srv->keys.pk, PB_PUBLICKEY_BYTES);
    w.welcome.head_seq = room->head_seq;
    memcpy(w.welcome.head_hash, room->head_hash, PB_HASH_BYTES);
    w.welcome.now_us = relay_now_us();
    s->ls.joined_us = w.welcome.now_us;
    relay_session_send_frame(s, &w);
    /* Where the room is, signed, before anything that depends on it (the
     * catch-up): what a runtime may act on, unlike welcome. */
    relay_room_send_head(s->srv, room, s);
    pb_frame r = {.type = PB_T_ROOM};
    r.room = room->settings;
    relay_session_send_frame(s, &r);
    /* The room's current state, up to what has been broadcast; later
     * patches reach this session live, so nothing is missed or doubled. */
    relay_send_catchup(s, s->since_seq);
    relay_room_send_peers_to(room, s);
    if (s->want_buffers)
        relay_buffers_join(s);
    relay_room_announce(room, s, PB_PEERS_JOIN);
}

void relay_session_join_pending(relay_session *s)
{
    relay_room *room = s->pending_room;
    s->pending_room = NULL;
    if (s->state == RELAY_SESS_AWAIT_HELLO && room)
        join_room(s, room);
}

/* ---- proxy sessions (a signer's stand-ins for edges' clients) ------------ */

relay_session *relay_session_new_proxy(relay_server *srv, relay_room *r,
                                       pb_role role, const char *name)
{
    relay_session *s = session_new(srv, NULL);
    if (!s)
        return NULL;
    s->is_proxy = true;
    s->state = RELAY_SESS_LIVE;
    s->room = r; /* not a member: what the room is sent reaches the edges */
    s->role = role;
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->peer, sizeof s->peer, "edge");
    s->ls.joined_us = relay_now_us();
    if ((s->quota = relay_quota_get(r, s->name)))
        s->quota->sessions++;
    return s;
}

void relay_session_free_proxy(relay_session *s)
{
    relay_catchup_end(s);
    relay_eval_cancel(s);
    if (s->quota) {
        s->quota->sessions--;
        s->quota->idle_us = relay_mono_us();
    }
    session_free(s);
}

static void on_message(relay_session *s, const uint8_t *data, size_t len)
{
    pb_frame f;
    pb_errmsg why = {{0}};
    pb_err e = pb_frame_decode(data, len, &f, &why);
    if (e) {
        if (s->state == RELAY_SESS_LIVE)
            relay_session_refuse(s, e, 0, "%s", why.text);
        else
            relay_session_send_error(s, e, 0, true, "%s", why.text);
        return;
    }
    if (s->state == RELAY_SESS_AWAIT_HELLO) {
        if (f.type == PB_T_HELLO)
            on_hello(s, &f.hello);
        else
            relay_session_send_error(s, PB_ERR_UNEXPECTED, 0, true,
                                     "the first frame must be hello, got %s",
                                     pb_type_name(f.type));
    } else if (s->state == RELAY_SESS_LIVE) {
        relay_session_on_frame(s, &f, data, len);
    }
    pb_frame_free(&f);
}

static void on_receive(relay_session *s, const uint8_t *in, size_t len)
{
    if (s->state == RELAY_SESS_CLOSING)
        return;
    /* the rate, and as much again as a burst */
    double per_s = s->srv->cfg.bytes_per_second;
    if (!relay_bucket_take(&s->bytes, per_s, 2 * per_s, (double)len,
                           relay_mono_us())) {
        relay_session_send_error(s, PB_ERR_RATE_LIMITED, 0, true,
                                 "more than %u bytes per second sent",
                                 s->srv->cfg.bytes_per_second);
        return;
    }
    if (s->state == RELAY_SESS_AWAIT_HELLO &&
        (s->prehello_bytes += (uint32_t)len) > RELAY_MAX_HELLO_BYTES) {
        /* a stranger: no token yet, so no more than a hello's worth */
        relay_session_send_error(s, PB_ERR_TOO_BIG, 0, true,
                                 "more than %u bytes before hello",
                                 RELAY_MAX_HELLO_BYTES);
        return;
    }
    if (lws_is_first_fragment(s->wsi)) {
        s->rx_len = 0;
        s->rx_overflow = false;
    }
    if (!s->rx_overflow) {
        if (s->rx_len + len > PB_MAX_FRAME_BYTES) {
            s->rx_overflow = true;
        } else {
            if (s->rx_len + len > s->rx_cap) {
                size_t cap = s->rx_cap ? s->rx_cap : 4096;
                while (cap < s->rx_len + len)
                    cap *= 2;
                uint8_t *p = realloc(s->rx, cap);
                if (!p) {
                    relay_session_send_error(s, PB_ERR_NOMEM, 0, true,
                                             "the relay is out of memory");
                    return;
                }
                s->rx = p;
                s->rx_cap = cap;
            }
            memcpy(s->rx + s->rx_len, in, len);
            s->rx_len += len;
        }
    }
    if (!lws_is_final_fragment(s->wsi))
        return;
    if (s->rx_overflow) {
        relay_session_send_error(s, PB_ERR_TOO_BIG, 0, true,
                                 "a message over %u bytes", PB_MAX_FRAME_BYTES);
        return;
    }
    if (!lws_frame_is_binary(s->wsi)) {
        relay_session_send_error(s, PB_ERR_MALFORMED, 0,
                                 s->state != RELAY_SESS_LIVE,
                                 "frames are binary msgpack, got a text "
                                 "message");
        return;
    }
    on_message(s, s->rx, s->rx_len);
    /* Keep memory in check after a large frame. */
    if (s->rx_cap > 65536) {
        free(s->rx);
        s->rx = NULL;
        s->rx_cap = 0;
    }
}

/* A client may name the room it means in the path, ws://HOST/r/ROOM; a
 * token for another room is then refused rather than joined. lws has
 * already percent-decoded the path (and moved any query out of it):
 * decoding again would turn a room named "a%41" into "aA". */
static void want_room_from_path(relay_session *s)
{
    char uri[PB_MAX_NAME_BYTES + 4];
    int n = lws_hdr_copy(s->wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
    if (n > 3 && strncmp(uri, "/r/", 3) == 0)
        snprintf(s->want_room, sizeof s->want_room, "%s", uri + 3);
}

/* ---- the lws callback ------------------------------------------------------------------ */

int relay_session_callback(struct lws *wsi, enum lws_callback_reasons reason,
                           void *user, void *in, size_t len)
{
    relay_server *srv = wsi ? relay_of(wsi) : NULL;
    relay_session **slot = user;
    relay_session *s = slot ? *slot : NULL;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        char origin[256];
        if (!relay_guard_origin_ok(srv, wsi, origin, sizeof origin)) {
            char peer[64];
            lws_get_peer_simple(wsi, peer, sizeof peer);
            lwsl_user("refused a WebSocket from %s opened by a page of "
                      "origin \"%s\" (not this relay's; allow it with "
                      "--allow-origin)\n",
                      peer, origin);
            return -1;
        }
        break;
    }
    case LWS_CALLBACK_ESTABLISHED:
        if (!(s = session_new(srv, wsi)))
            return -1;
        *slot = s;
        want_room_from_path(s);
        lws_set_timer_usecs(wsi, (lws_usec_t)srv->cfg.hello_timeout_ms * 1000);
        break;
    case LWS_CALLBACK_TIMER:
        if (s && s->state == RELAY_SESS_CLOSING)
            return -1;
        if (s && s->pending_room)
            relay_session_send_error(
                s, PB_ERR_COMPILER_DOWN, 0, true,
                "room \"%s\" did not become available on this edge within "
                "%u ms (as far as seq %llu; it holds %llu): Redis or the "
                "room's signer is unavailable; retry",
                s->pending_room->name, s->srv->cfg.hello_timeout_ms,
                (unsigned long long)s->since_seq,
                (unsigned long long)s->pending_room->head_seq);
        else if (s && s->state == RELAY_SESS_AWAIT_HELLO)
            relay_session_send_error(s, PB_ERR_AUTH_TIMEOUT, 0, true,
                                     "no hello within %u ms",
                                     s->srv->cfg.hello_timeout_ms);
        break;
    case LWS_CALLBACK_RECEIVE:
        if (s)
            on_receive(s, in, len);
        break;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (s)
            return on_writeable(s);
        break;
    case LWS_CALLBACK_CLOSED:
        if (s) {
            relay_room *room = s->room;
            relay_edge_session_closed(s);
            relay_catchup_end(s);
            relay_eval_cancel(s);
            if (s->quota) {
                s->quota->sessions--;
                s->quota->idle_us = relay_mono_us();
            }
            if (room) {
                lwsl_user("client %llu left room %s (%s)\n",
                          (unsigned long long)s->client_id, room->name,
                          s->name);
                relay_room_leave(s);
                relay_room_announce(room, s, PB_PEERS_LEAVE);
            }
            session_free(s);
            *slot = NULL;
        }
        break;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: /* the evaluator has results */
        if (srv) {
            relay_deliver_finished(srv);
            relay_cluster_deliver(srv);
        }
        break;
    default:
        break;
    }
    return 0;
}
