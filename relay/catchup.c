/* catchup.c — history to clients: the catch-up a client gets right after
 * welcome, and answers to history_req. Patches are read from SQLite up to
 * the room's broadcast head (never past it: a patch committed but not yet
 * broadcast reaches everyone in the room live, so nothing is sent twice)
 * and packed into history frames of at most PB_MAX_HISTORY_ITEMS items and
 * PB_MAX_FRAME_BYTES bytes. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Room for the frame's own fields and each item's keys. */
#define FRAME_SLACK 1024u
#define ITEM_SLACK 64u

typedef struct batch {
    relay_session *s;
    uint64_t req, head_seq;
    pb_patch items[PB_MAX_HISTORY_ITEMS];
    void *blocks[PB_MAX_HISTORY_ITEMS];
    uint32_t n;
    size_t bytes;
    uint32_t frames;
    bool failed;
} batch;

static void flush(batch *b, bool more)
{
    pb_frame f = {.type = PB_T_HISTORY};
    f.history.req = b->req;
    f.history.head_seq = b->head_seq;
    f.history.more = more;
    f.history.items = b->items;
    f.history.n_items = b->n;
    relay_session_send_frame(b->s, &f);
    for (uint32_t i = 0; i < b->n; i++)
        free(b->blocks[i]);
    b->n = 0;
    b->bytes = 0;
    b->frames++;
}

static int add_patch(void *ctx, const relay_patch_row *p)
{
    batch *b = ctx;
    size_t size = p->stmt_len + PB_SIG_BYTES + p->module_len + p->source_len +
                  ITEM_SLACK;
    if (b->n == PB_MAX_HISTORY_ITEMS ||
        (b->n && b->bytes + size > PB_MAX_FRAME_BYTES - FRAME_SLACK))
        flush(b, true);
    if (b->s->state != RELAY_SESS_LIVE)
        return 1; /* closed as a slow consumer: stop reading */
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
    return 0;
}

/* Sends from..to (clamped to the broadcast head) as history frames with
 * req; always at least one frame, so the client knows where it stands. */
static void send_range(relay_session *s, uint64_t req, uint64_t from,
                       uint64_t to, bool state_only)
{
    relay_room *room = s->room;
    batch *b = calloc(1, sizeof *b);
    if (!b) {
        relay_session_send_error(s, PB_ERR_NOMEM, req, false,
                                 "the relay is out of memory");
        return;
    }
    b->s = s;
    b->req = req;
    b->head_seq = room->head_seq;
    if (from == 0)
        from = 1;
    if (to == 0 || to > room->head_seq)
        to = room->head_seq;
    pb_errmsg why = {{0}};
    pb_err e = PB_OK;
    if (from <= to)
        e = relay_history_patches(s->srv->history, room->name, from, to,
                                  state_only, add_patch, b, &why);
    if (e || b->failed) {
        for (uint32_t i = 0; i < b->n; i++)
            free(b->blocks[i]);
        lwsl_err("room %s: history for client %llu failed: %s\n", room->name,
                 (unsigned long long)s->client_id,
                 e ? why.text : "out of memory");
        relay_session_send_error(s, e ? e : PB_ERR_NOMEM, req, false,
                                 "cannot read the room's history: %s",
                                 e ? why.text : "out of memory");
    } else if (s->state == RELAY_SESS_LIVE) {
        flush(b, false);
    }
    free(b);
}

void relay_send_catchup(relay_session *s, uint64_t since_seq)
{
    if (since_seq && since_seq <= s->room->head_seq)
        send_range(s, 0, since_seq + 1, 0, false); /* what it missed */
    else
        send_range(s, 0, 1, 0, true); /* the room's current state */
}

void relay_send_history(relay_session *s, const pb_history_req *q)
{
    if (q->mode == PB_HISTORY_STATE)
        send_range(s, q->req, 1, 0, true);
    else
        send_range(s, q->req, q->from_seq, q->to_seq, false);
}
