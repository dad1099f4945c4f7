/* room.c — rooms: who is in them, the head of what has been broadcast, and
 * sending to all of them. Rooms are independent; everything about one is
 * here so that a shared broadcast (Redis pub/sub) can later replace
 * relay_room_broadcast without touching sessions. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

relay_room *relay_room_find(relay_server *srv, const char *name)
{
    for (relay_room *r = srv->rooms; r; r = r->next)
        if (!strcmp(r->name, name))
            return r;
    return NULL;
}

relay_room *relay_room_of_tag(relay_server *srv, uint64_t tag)
{
    for (relay_room *r = srv->rooms; r; r = r->next)
        if ((uint64_t)(uintptr_t)r == tag)
            return r;
    return NULL;
}

relay_room *relay_room_get(relay_server *srv, const char *name)
{
    relay_room *r = relay_room_find(srv, name);
    if (r)
        return r;
    r = calloc(1, sizeof *r);
    if (!r || strlen(name) > PB_MAX_NAME_BYTES) {
        free(r);
        return NULL;
    }
    strcpy(r->name, name);
    r->srv = srv;
    pb_errmsg why;
    /* An edge's rooms are the signer's: its epoch, from Redis (edge.c). */
    if (srv->edge)
        relay_edge_room_init(r);
    /* A room that existed before a restart resumes from the history; a
     * new one begins its epoch now. */
    else if (relay_history_head(srv->history, name, &r->head_seq, r->head_hash,
                                &why) ||
             relay_history_epoch(srv->history, name, relay_now_us(), &r->epoch,
                                 &why))
        lwsl_err("room %s: cannot read its head: %s\n", name, why.text);
    if (!r->head_seq && !srv->edge)
        pb_epoch_genesis(name, r->epoch, srv->keys.pk, r->head_hash);
    if (relay_history_get_settings(srv->history, name, &r->settings, &why))
        lwsl_err("room %s: cannot read its settings: %s\n", name, why.text);
    else if (relay_room_settings_check(&r->settings, &why)) {
        /* stored before the bounds existed: a room must not freeze */
        lwsl_err("room %s: ignoring its stored settings: %s\n", name, why.text);
        memset(&r->settings, 0, sizeof r->settings);
    }
    r->next = srv->rooms;
    srv->rooms = r;
    return r;
}

void relay_room_join(relay_room *r, relay_session *s)
{
    s->room = r;
    s->room_next = r->members;
    r->members = s;
    r->n_members++;
}

void relay_room_leave(relay_session *s)
{
    relay_room *r = s->room;
    for (relay_session **p = &r->members; *p; p = &(*p)->room_next)
        if (*p == s) {
            *p = s->room_next;
            r->n_members--;
            break;
        }
    s->room = NULL;
    s->room_next = NULL;
}

void relay_room_broadcast(relay_room *r, relay_msg *m, pb_role only)
{
    /* Sending may close a slow consumer, but that only marks it closing:
     * it leaves the member list in the CLOSED callback, so this walk stays
     * valid. */
    for (relay_session *s = r->members; s; s = s->room_next) {
        if (s->state != RELAY_SESS_LIVE)
            continue;
        if (only == PB_ROLE_EDITOR && s->role == PB_ROLE_RUNTIME)
            continue; /* editors, owners and viewers */
        if (only == PB_ROLE_RUNTIME && s->role != PB_ROLE_RUNTIME)
            continue;
        relay_session_send(s, m);
    }
    if (r->srv->signer) /* and the members of every edge */
        relay_signer_broadcast(r->srv, r, m, only);
}

/* A signed head of r, encoded once (docs/PROTOCOL.md § The signed head);
 * NULL (logged) if it could not be made. */
static relay_msg *head_msg(relay_server *srv, const relay_room *r)
{
    pb_head h = {.room = pb_cstr(r->name),
                 .epoch = r->epoch,
                 .seq = r->head_seq,
                 .time_us = relay_now_us()};
    memcpy(h.hash, r->head_hash, PB_HASH_BYTES);
    memcpy(h.key, srv->keys.pk, PB_PUBLICKEY_BYTES);
    pb_buf stmt;
    pb_buf_init(&stmt);
    uint8_t sig[PB_SIG_BYTES];
    pb_errmsg why = {{0}};
    relay_msg *m = NULL;
    if (!pb_head_encode(&h, &stmt, &why)) {
        pb_sign(stmt.data, stmt.len, srv->keys.sk, sig);
        pb_frame f = {.type = PB_T_HEAD};
        f.head.stmt = (pb_bytes){stmt.data, (uint32_t)stmt.len};
        f.head.sig = (pb_bytes){sig, PB_SIG_BYTES};
        m = relay_msg_encode(&f, &why);
    }
    if (!m)
        lwsl_err("room %s: cannot sign its head: %s\n", r->name, why.text);
    pb_buf_free(&stmt);
    return m;
}

void relay_room_send_head(relay_server *srv, relay_room *r, relay_session *to)
{
    if (srv->edge) { /* it cannot sign: it passes the signer's on */
        relay_edge_send_head(r, to);
        return;
    }
    relay_msg *m = head_msg(srv, r);
    if (!m)
        return;
    if (to) {
        relay_session_send(to, m);
    } else {
        relay_room_broadcast(r, m, PB_ROLE_NONE);
        if (srv->signer)
            relay_signer_keep_head(srv, r, m);
    }
    relay_msg_unref(m);
}

void relay_rooms_send_heads(relay_server *srv)
{
    if (srv->edge)
        return;
    /* a signer's rooms have members on edges it does not see */
    for (relay_room *r = srv->rooms; r; r = r->next)
        if (r->n_members || srv->signer)
            relay_room_send_head(srv, r, NULL);
}

static void fill_peer(pb_peer *p, const relay_session *s)
{
    p->id = s->client_id;
    p->name = pb_cstr(s->name);
    p->role = s->role;
    p->client = pb_cstr(s->client);
    p->last_ack = s->last_ack;
    p->last_seq = s->last_seq;
    p->skew_us = s->skew_us;
    p->mem_bytes = s->mem_bytes;
    p->unc_us = s->unc_us;
    p->device = s->device.d;
}

/* Presence is for people (editors, owners, viewers); runtimes do not get
 * it, so a room of many screens does not cost n^2 frames to fill. */
static bool wants_peers(const relay_session *s)
{
    return s->state == RELAY_SESS_LIVE && s->role != PB_ROLE_RUNTIME;
}

void relay_room_send_peers_to(relay_room *r, relay_session *to)
{
    if (!wants_peers(to))
        return;
    uint32_t n = 0;
    pb_peer *peers = calloc(PB_MAX_PEERS, sizeof *peers);
    if (!peers)
        return;
    for (relay_session *s = r->members; s && n < PB_MAX_PEERS;
         s = s->room_next)
        if (s->state == RELAY_SESS_LIVE)
            fill_peer(&peers[n++], s);
    pb_frame f = {.type = PB_T_PEERS};
    f.peers.event = PB_PEERS_SNAPSHOT;
    f.peers.peers = peers;
    f.peers.n_peers = n;
    relay_session_send_frame(to, &f);
    free(peers);
}

void relay_room_announce(relay_room *r, const relay_session *who,
                         pb_peers_event event)
{
    pb_peer peer;
    memset(&peer, 0, sizeof peer);
    fill_peer(&peer, who);
    pb_frame f = {.type = PB_T_PEERS};
    f.peers.event = event;
    f.peers.peers = &peer;
    f.peers.n_peers = 1;
    pb_errmsg why;
    relay_msg *m = relay_msg_encode(&f, &why);
    if (!m)
        return;
    for (relay_session *s = r->members; s; s = s->room_next)
        if (s != who && wants_peers(s))
            relay_session_send(s, m);
    relay_msg_unref(m);
}

void relay_room_publish(relay_room *r, relay_msg *patch, uint64_t seq,
                        const uint8_t hash[PB_HASH_BYTES], uint64_t created_us,
                        uint64_t apply_us, uint64_t now_us)
{
    r->head_seq = seq;
    memcpy(r->head_hash, hash, PB_HASH_BYTES);
    /* a member still being sent its catch-up gets this patch in it */
    for (relay_session *s = r->members; s; s = s->room_next)
        if (s->state == RELAY_SESS_LIVE && !relay_session_catching_up(s))
            relay_session_send(s, patch);
    relay_lockstep_patch(&r->ls, seq, created_us, apply_us, now_us);
    if (r->srv->signer) {
        relay_signer_patch(r->srv, r, patch, seq);
        /* pb:head:ROOM names the new patch at once (an edge that starts
         * or resyncs now lets joiners in with it); clients, here and on
         * the edges, get heads at the heartbeat, as one relay's do: a head
         * after every patch doubled the frames of every delivery */
        relay_msg *m = head_msg(r->srv, r);
        if (m)
            relay_signer_keep_head(r->srv, r, m);
        relay_msg_unref(m);
    }
}

void relay_rooms_record_stats(relay_server *srv, bool all)
{
    uint64_t now = relay_now_us();
    relay_commit_stats st[RELAY_LS_SLOTS];
    for (relay_room *r = srv->rooms; r; r = r->next) {
        uint32_t n =
            relay_lockstep_take_settled(&r->ls, now, all, st, RELAY_LS_SLOTS);
        pb_errmsg why;
        if (n &&
            relay_history_put_commit_stats(srv->history, r->name, st, n, &why))
            lwsl_err("room %s: %s\n", r->name, why.text);
        for (uint32_t i = 0; i < n && !srv->cfg.quiet; i++)
            lwsl_user("patch %s#%llu: committed by %u runtimes within %.2f ms"
                      " (latest %+.2f ms after its apply time)\n",
                      r->name, (unsigned long long)st[i].seq, st[i].runtimes,
                      (double)st[i].spread_us / 1000.0,
                      (double)st[i].max_late_us / 1000.0);
    }
}

void relay_rooms_sweep(relay_server *srv)
{
    uint64_t now = relay_mono_us();
    for (relay_room *r = srv->rooms; r; r = r->next)
        relay_quotas_sweep(r, now);
}

void relay_rooms_free(relay_server *srv)
{
    for (relay_room *r = srv->rooms, *next; r; r = next) {
        next = r->next;
        relay_logring_free(&r->logs);
        relay_quotas_free(r);
        relay_buffers_free(r);
        relay_edge_room_free(r);
        free(r);
    }
    srv->rooms = NULL;
}
