/* catchup.c — history to clients: the catch-up a client gets right after
 * welcome, and answers to history_req. Patches are read from SQLite up to
 * the room's broadcast head (never past it: a patch committed but not yet
 * broadcast reaches everyone in the room live, so nothing is sent twice)
 * and packed into history frames of at most PB_MAX_HISTORY_ITEMS items and
 * PB_MAX_FRAME_BYTES bytes.
 *
 * A catch-up is streamed: one frame is read and encoded only when the
 * client's send queue has drained below RELAY_CATCHUP_LOW_WATER, so one
 * request costs the event loop a frame's worth of work at a time, however
 * long the history (a viewer asking for 32 MiB used to stall every room
 * while it was read and encoded), and never makes the client a slow
 * consumer. At most cfg.max_catchups stream at once, and at most
 * RELAY_CATCHUPS_PER_NAME of one token name's; the others wait in order.
 *
 * A client's join catch-up follows the room's head while it streams: the
 * room's live patches are held back from it (relay_session_catching_up) and
 * reach it in the catch-up instead, so it gets every patch once and in
 * order; the last frame (more: false) hands it over to the live stream. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Room for the frame's own fields and each item's keys. */
#define FRAME_SLACK 1024u
#define ITEM_SLACK 64u

struct relay_catchup {
    relay_session *s;
    uint64_t req;
    uint64_t next; /* the next seq to send */
    uint64_t to;   /* the last, unless it follows the head */
    bool state_only;
    bool is_join;   /* the catch-up after welcome: follows the head */
    bool is_active; /* streaming, not waiting */
    struct relay_catchup *wait_next;
};

/* One frame's worth of patches read from the history. */
typedef struct batch {
    pb_patch items[PB_MAX_HISTORY_ITEMS];
    void *blocks[PB_MAX_HISTORY_ITEMS];
    uint32_t n;
    size_t bytes;
    uint64_t last_seq; /* of the last item taken */
    bool failed;
} batch;

static void batch_clear(batch *b)
{
    for (uint32_t i = 0; i < b->n; i++)
        free(b->blocks[i]);
    b->n = 0;
    b->bytes = 0;
}

/* Takes p into the batch, or stops the read (1) when the frame is full. */
static int add_patch(void *ctx, const relay_patch_row *p)
{
    batch *b = ctx;
    size_t size = p->stmt_len + PB_SIG_BYTES + p->module_len + p->source_len +
                  ITEM_SLACK;
    if (b->n == PB_MAX_HISTORY_ITEMS ||
        (b->n && b->bytes + size > PB_MAX_FRAME_BYTES - FRAME_SLACK))
        return 1; /* for the next frame */
    uint8_t *block = malloc(size);
    if (!block) {
        b->failed = true;
        return 1;
    }
    uint8_t *w = block;
    pb_patch *it = &b->items[b->n];
    memset(it, 0, sizeof *it);
    memcpy(w, p->stmt, p->stmt_len);
    it->stmt = (pb_bytes){w, (uint32_t)p->stmt_len};
    w += p->stmt_len;
    memcpy(w, p->sig, PB_SIG_BYTES);
    it->sig = (pb_bytes){w, PB_SIG_BYTES};
    w += PB_SIG_BYTES;
    if (p->module) {
        memcpy(w, p->module, p->module_len);
        it->module = (pb_bytes){w, (uint32_t)p->module_len};
        w += p->module_len;
        memcpy(w, p->source, p->source_len);
        it->source = (pb_str){(const char *)w, (uint32_t)p->source_len};
    }
    b->blocks[b->n++] = block;
    b->bytes += size;
    b->last_seq = p->seq;
    return 0;
}

/* ---- who streams ------------------------------------------------------------
 */

static bool may_start(const relay_catchup *c)
{
    const relay_session *s = c->s;
    return s->srv->n_catchups < s->srv->cfg.max_catchups &&
           (!s->quota || s->quota->catchups < RELAY_CATCHUPS_PER_NAME);
}

static void activate(relay_catchup *c)
{
    c->is_active = true;
    c->s->srv->n_catchups++;
    if (c->s->quota)
        c->s->quota->catchups++;
}

/* Starts the waiting catch-ups that may start now, oldest first. Not
 * re-entered: a catch-up that ends as it starts calls it again. */
static void start_waiting(relay_server *srv)
{
    if (srv->catchup_starting)
        return;
    srv->catchup_starting = true;
    for (relay_catchup **p = &srv->catchup_wait; *p;) {
        relay_catchup *c = *p;
        if (!may_start(c)) {
            p = &c->wait_next;
            continue;
        }
        *p = c->wait_next;
        if (!*p)
            srv->catchup_wait_tail = p;
        c->wait_next = NULL;
        activate(c);
        relay_catchup_pump(c->s);
        if (srv->n_catchups >= srv->cfg.max_catchups)
            break;
        p = &srv->catchup_wait; /* the pump may have ended others */
    }
    srv->catchup_starting = false;
}

/* Ends s's catch-up (done, failed, or the session is closing). */
void relay_catchup_end(relay_session *s)
{
    relay_catchup *c = s->catchup;
    if (!c)
        return;
    relay_server *srv = s->srv;
    s->catchup = NULL;
    if (c->is_active) {
        srv->n_catchups--;
        if (s->quota)
            s->quota->catchups--;
    } else {
        for (relay_catchup **p = &srv->catchup_wait; *p; p = &(*p)->wait_next)
            if (*p == c) {
                *p = c->wait_next;
                if (!*p)
                    srv->catchup_wait_tail = p;
                break;
            }
    }
    free(c);
    start_waiting(srv);
}

bool relay_session_catching_up(const relay_session *s)
{
    return s->catchup && s->catchup->is_join;
}

/* ---- streaming
 * ---------------------------------------------------------------- */

/* Sends the next frame of s's catch-up; false when it has ended. */
static bool send_next(relay_session *s)
{
    relay_catchup *c = s->catchup;
    relay_room *room = s->room;
    uint64_t to = c->is_join || c->to > room->head_seq ? room->head_seq : c->to;
    batch *b = calloc(1, sizeof *b);
    pb_errmsg why = {{0}};
    pb_err e = b ? PB_OK : PB_ERR_NOMEM;
    if (!e && c->next <= to)
        e = relay_history_patches(s->srv->history, room->name, c->next, to,
                                  c->state_only, add_patch, b, &why);
    if (!e && b->failed)
        e = pb_fail(&why, PB_ERR_NOMEM, "out of memory");
    if (e) {
        lwsl_err("room %s: history for client %llu failed: %s\n", room->name,
                 (unsigned long long)s->client_id, why.text);
        relay_session_send_error(s, e, c->req, false,
                                 "cannot read the room's history: %s",
                                 why.text);
    } else {
        if (b->n)
            c->next = b->last_seq + 1;
        bool more = b->n && c->next <= to;
        pb_frame f = {.type = PB_T_HISTORY};
        f.history.req = c->req;
        f.history.head_seq = room->head_seq;
        f.history.more = more;
        f.history.items = b->items;
        f.history.n_items = b->n;
        relay_session_queue_frame(s, &f); /* paced by WRITEABLE */
        if (more) {
            batch_clear(b);
            free(b);
            return true;
        }
    }
    if (b)
        batch_clear(b);
    free(b);
    relay_catchup_end(s);
    return false;
}

void relay_catchup_pump(relay_session *s)
{
    while (s->catchup && s->catchup->is_active && s->state == RELAY_SESS_LIVE &&
           s->q.bytes < RELAY_CATCHUP_LOW_WATER)
        if (!send_next(s))
            break;
}

/* Starts a catch-up of s from..to (a join's follows the head); it waits
 * its turn if too many are streaming. */
static void start(relay_session *s, uint64_t req, uint64_t from, uint64_t to,
                  bool state_only, bool is_join)
{
    relay_catchup *c = calloc(1, sizeof *c);
    if (!c) {
        relay_session_send_error(s, PB_ERR_NOMEM, req, false,
                                 "the relay is out of memory");
        return;
    }
    c->s = s;
    c->req = req;
    c->next = from ? from : 1;
    c->to = to;
    c->state_only = state_only;
    c->is_join = is_join;
    s->catchup = c;
    relay_server *srv = s->srv;
    if (may_start(c) && !srv->catchup_wait) {
        activate(c);
        relay_catchup_pump(s);
    } else {
        if (!srv->catchup_wait_tail)
            srv->catchup_wait_tail = &srv->catchup_wait;
        *srv->catchup_wait_tail = c;
        srv->catchup_wait_tail = &c->wait_next;
    }
}

void relay_send_catchup(relay_session *s, uint64_t since_seq)
{
    if (since_seq && since_seq <= s->room->head_seq)
        start(s, 0, since_seq + 1, 0, false, true); /* what it missed */
    else
        start(s, 0, 1, 0, true, true); /* the room's current state */
}

void relay_catchups_free(relay_server *srv)
{
    for (uint32_t i = 0; i < srv->n_slots; i++) {
        free(srv->sessions[i]->catchup);
        srv->sessions[i]->catchup = NULL;
    }
    srv->catchup_wait = NULL;
    srv->catchup_wait_tail = NULL;
    srv->n_catchups = 0;
}

void relay_send_history(relay_session *s, const pb_history_req *q)
{
    if (s->catchup) {
        relay_session_refuse(s, PB_ERR_RATE_LIMITED, q->req,
                             "history_req %llu refused: this connection's "
                             "previous catch-up is still being sent",
                             (unsigned long long)q->req);
        return;
    }
    relay_quota *quota = s->quota;
    uint64_t now = relay_mono_us();
    if (quota && !relay_bucket_take(&quota->history, RELAY_HISTORY_PER_S,
                                    RELAY_HISTORY_BURST, 1, now)) {
        uint64_t wait = relay_bucket_wait_us(
            &quota->history, RELAY_HISTORY_PER_S, RELAY_HISTORY_BURST, 1, now);
        relay_session_refuse(s, PB_ERR_RATE_LIMITED, q->req,
                             "history_req %llu refused: more than %g a "
                             "second for %s; retry in %.1f s",
                             (unsigned long long)q->req, RELAY_HISTORY_PER_S,
                             s->name, (double)wait / 1e6);
        return;
    }
    /* the answer ends where it was asked to, or at the head when asked */
    uint64_t head = s->room->head_seq;
    if (q->mode == PB_HISTORY_STATE)
        start(s, q->req, 1, head, true, false);
    else
        start(s, q->req, q->from_seq,
              !q->to_seq || q->to_seq > head ? head : q->to_seq, false, false);
}
