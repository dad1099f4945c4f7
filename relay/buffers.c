/* buffers.c — the room's shared buffers on the event loop
 * (docs/PROTOCOL.md § Shared buffers). The relay is the hub of each
 * buffer's Yjs document without running one: it stores the updates as
 * opaque bytes (bufstore.c) before it acknowledges or forwards them, sends
 * a joining editor every stored update, keeps each client's last presence
 * (awareness) per buffer for those who join later, and checks roles and
 * limits. Only sessions that asked in their hello (and are not runtimes)
 * get buffer traffic. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* A buffer asks for compaction past this many stored updates (or half its
 * byte limit). */
#define RELAY_BUFFER_COMPACT_UPDATES 500u

/* Bytes of stored updates per buffer_sync frame: with the msgpack around
 * them, well within PB_MAX_FRAME_BYTES. */
#define SYNC_FRAME_BYTES (1536u * 1024u)

static bool is_subscribed(const relay_session *s)
{
    return s->state == RELAY_SESS_LIVE && s->buffers;
}

static relay_buffer *find_buffer(relay_room *r, uint64_t id)
{
    for (uint32_t i = 0; i < r->bufs.n; i++)
        if (r->bufs.open[i].id == id)
            return &r->bufs.open[i];
    return NULL;
}

static bool wants_compaction(const relay_server *srv, const relay_buffer *b)
{
    return b->n_updates > RELAY_BUFFER_COMPACT_UPDATES ||
           (b->n_updates > 1 && b->bytes > srv->cfg.max_buffer_bytes / 2);
}

/* Sends m to every subscribed member but except (may be NULL). */
static void send_to_subscribers(relay_room *r, relay_msg *m,
                                const relay_session *except)
{
    for (relay_session *s = r->members; s; s = s->room_next)
        if (s != except && is_subscribed(s))
            relay_session_send(s, m);
}

static void encode_to_subscribers(relay_room *r, const pb_frame *f,
                                  const relay_session *except)
{
    pb_errmsg why;
    relay_msg *m = relay_msg_encode(f, &why);
    if (!m) {
        lwsl_err("room %s: cannot encode a %s frame: %s\n", r->name,
                 pb_type_name(f->type), why.text);
        return;
    }
    send_to_subscribers(r, m, except);
    relay_msg_unref(m);
}

/* ---- loading a room's buffers -------------------------------------------- */

static void add_loaded(void *ctx, const relay_buffer_row *row)
{
    relay_room *r = ctx;
    if (row->id > r->bufs.last_id)
        r->bufs.last_id = row->id;
    if (!row->open || r->bufs.n >= PB_MAX_BUFFERS)
        return;
    relay_buffer *b = &r->bufs.open[r->bufs.n++];
    memset(b, 0, sizeof *b);
    b->id = row->id;
    snprintf(b->name, sizeof b->name, "%s", row->name);
    b->lang = row->lang;
    b->last_useq = row->last_useq;
    b->base_useq = row->base_useq;
    b->bytes = row->bytes;
    b->n_updates = row->n_updates;
}

static pb_err load_buffers(relay_server *srv, relay_room *r, pb_errmsg *why)
{
    if (r->bufs.loaded)
        return PB_OK;
    if (!r->bufs.open &&
        !(r->bufs.open = calloc(PB_MAX_BUFFERS, sizeof *r->bufs.open)))
        return pb_fail(why, PB_ERR_NOMEM, "out of memory");
    r->bufs.n = 0;
    r->bufs.last_id = 0;
    pb_err e = relay_history_buffers(srv->history, r->name, add_loaded, r, why);
    r->bufs.loaded = !e;
    return e;
}

/* Records b (new, changed or closed) in the history. */
static pb_err store_buffer(relay_server *srv, relay_room *r,
                           const relay_buffer *b, bool open, pb_errmsg *why)
{
    relay_buffer_row row = {
        .id = b->id, .name = b->name, .lang = b->lang, .open = open};
    return relay_history_buffer_set(srv->history, r->name, &row, why);
}

/* ---- what a client is sent ----------------------------------------------- */

static void send_list(relay_room *r, relay_session *to, uint64_t req,
                      uint64_t peer)
{
    pb_buffer_info items[PB_MAX_BUFFERS];
    for (uint32_t i = 0; i < r->bufs.n; i++)
        items[i] =
            (pb_buffer_info){r->bufs.open[i].id, pb_cstr(r->bufs.open[i].name),
                             r->bufs.open[i].lang};
    pb_frame f = {.type = PB_T_BUFFERS};
    f.buffers.buffers = items;
    f.buffers.n_buffers = r->bufs.n;
    f.buffers.req = req;
    f.buffers.peer = peer;
    if (to)
        relay_session_send_frame(to, &f);
    else
        encode_to_subscribers(r, &f, NULL);
}

/* Stored updates gathered for buffer_sync frames: copied, because SQLite's
 * pointers last only until its next row. */
typedef struct sync_batch {
    relay_session *to;
    const relay_buffer *b;
    uint8_t *bytes;
    size_t len, cap;
    uint32_t ends[PB_MAX_BUFFER_SYNC_ITEMS]; /* where each update ends */
    uint32_t n;
    pb_buffer_data items[PB_MAX_BUFFER_SYNC_ITEMS];
    bool oom;
} sync_batch;

static void send_batch(sync_batch *sb, bool more)
{
    for (uint32_t i = 0, at = 0; i < sb->n; at = sb->ends[i++])
        sb->items[i].data = (pb_bytes){sb->bytes + at, sb->ends[i] - at};
    pb_frame f = {.type = PB_T_BUFFER_SYNC};
    f.buffer_sync.buffer = sb->b->id;
    f.buffer_sync.useq = sb->b->last_useq;
    f.buffer_sync.more = more;
    f.buffer_sync.compact = !more && wants_compaction(sb->to->srv, sb->b);
    f.buffer_sync.updates = sb->items;
    f.buffer_sync.n_updates = sb->n;
    relay_session_send_frame(sb->to, &f);
    sb->n = 0;
    sb->len = 0;
}

static int add_to_batch(void *ctx, uint64_t useq, const uint8_t *data,
                        size_t len)
{
    (void)useq;
    sync_batch *sb = ctx;
    if (sb->n == PB_MAX_BUFFER_SYNC_ITEMS ||
        (sb->n && sb->len + len > SYNC_FRAME_BYTES))
        send_batch(sb, true);
    if (sb->len + len > sb->cap) {
        size_t cap = sb->cap ? sb->cap : 65536;
        while (cap < sb->len + len)
            cap *= 2;
        uint8_t *p = realloc(sb->bytes, cap);
        if (!p) {
            sb->oom = true;
            return 1;
        }
        sb->bytes = p;
        sb->cap = cap;
    }
    memcpy(sb->bytes + sb->len, data, len);
    sb->len += len;
    sb->ends[sb->n++] = (uint32_t)sb->len;
    return 0;
}

/* Sends one buffer's stored updates, in buffer_sync frames. */
static void send_sync(relay_session *to, const relay_buffer *b)
{
    sync_batch *sb = calloc(1, sizeof *sb);
    pb_errmsg why = {{0}};
    pb_err e = PB_ERR_NOMEM;
    if (sb) {
        sb->to = to;
        sb->b = b;
        e = relay_history_buffer_updates(to->srv->history, to->room->name,
                                         b->id, add_to_batch, sb, &why);
        if (!e && sb->oom)
            e = pb_fail(&why, PB_ERR_NOMEM, "out of memory");
    }
    if (e)
        relay_session_send_error(to, e, 0, false, "cannot send buffer %s: %s",
                                 b->name,
                                 why.text[0] ? why.text : pb_strerror(e));
    else
        send_batch(sb, false);
    if (sb)
        free(sb->bytes);
    free(sb);
}

/* Sends to one session the others' last presence in the room's buffers. */
static void send_presence(relay_session *to)
{
    for (relay_session *s = to->room->members; s; s = s->room_next)
        if (s != to && is_subscribed(s))
            for (relay_aware *a = s->aware; a; a = a->next)
                relay_session_send(to, a->msg);
}

void relay_buffers_join(relay_session *s)
{
    relay_room *r = s->room;
    if (s->role == PB_ROLE_RUNTIME)
        return; /* runtimes never get buffer traffic */
    pb_errmsg why = {{0}};
    pb_err e = load_buffers(s->srv, r, &why);
    if (e) {
        relay_session_send_error(s, e, 0, false,
                                 "the room's shared buffers are not "
                                 "available: %s",
                                 why.text);
        return;
    }
    s->buffers = true;
    send_list(r, s, 0, 0);
    for (uint32_t i = 0; i < r->bufs.n; i++)
        send_sync(s, &r->bufs.open[i]);
    send_presence(s);
}

static void forget_presence(relay_session *s, uint64_t buffer)
{
    for (relay_aware **p = &s->aware; *p;) {
        relay_aware *a = *p;
        if (!buffer || a->buffer == buffer) {
            *p = a->next;
            relay_msg_unref(a->msg);
            free(a);
        } else {
            p = &a->next;
        }
    }
}

void relay_buffers_leave(relay_session *s)
{
    forget_presence(s, 0);
    s->buffers = false;
}

void relay_buffers_free(relay_room *r)
{
    free(r->bufs.open);
    memset(&r->bufs, 0, sizeof r->bufs);
}

/* ---- frames from editors ---------------------------------------------------
 */

/* A buffer name: 1 to PB_MAX_NAME_BYTES bytes, no control characters,
 * not the name of another open buffer. */
static bool name_ok(relay_session *s, uint64_t req, pb_str name,
                    uint64_t except_id, char out[PB_MAX_NAME_BYTES + 1])
{
    if (!name.len || pb_str_copy(out, PB_MAX_NAME_BYTES + 1, name)) {
        relay_session_refuse(s, PB_ERR_FIELD_RANGE, req,
                             "buffer_op %llu: a buffer needs a name of 1 to "
                             "%u bytes",
                             (unsigned long long)req, PB_MAX_NAME_BYTES);
        return false;
    }
    for (const unsigned char *c = (const unsigned char *)out; *c; c++)
        if (*c < 0x20 || *c == 0x7f) {
            relay_session_refuse(s, PB_ERR_FIELD_RANGE, req,
                                 "buffer_op %llu: a buffer name may not "
                                 "hold control characters (byte %u at %u)",
                                 (unsigned long long)req, *c,
                                 (unsigned)(c - (const unsigned char *)out));
            return false;
        }
    relay_room *r = s->room;
    for (uint32_t i = 0; i < r->bufs.n; i++)
        if (r->bufs.open[i].id != except_id &&
            !strcmp(r->bufs.open[i].name, out)) {
            relay_session_refuse(s, PB_ERR_FIELD_RANGE, req,
                                 "buffer_op %llu: the room already has a "
                                 "buffer named \"%s\"",
                                 (unsigned long long)req, out);
            return false;
        }
    return true;
}

static relay_buffer *open_buffer(relay_session *s, uint64_t id, uint64_t req,
                                 const char *what)
{
    relay_buffer *b = find_buffer(s->room, id);
    if (!b && req)
        relay_session_refuse(s, PB_ERR_FIELD_RANGE, req,
                             "%s %llu: room %s has no open buffer %llu", what,
                             (unsigned long long)req, s->room->name,
                             (unsigned long long)id);
    else if (!b) /* presence has no request number */
        relay_session_refuse(s, PB_ERR_FIELD_RANGE, 0,
                             "%s: room %s has no open buffer %llu", what,
                             s->room->name, (unsigned long long)id);
    return b;
}

/* The writes (updates, compactions, ops) one token name may send: a
 * burst, then buffer_writes_per_second. */
static bool take_write(relay_session *s, uint64_t req, const char *what)
{
    double per_s = s->srv->cfg.buffer_writes_per_second;
    if (!s->quota || relay_bucket_take(&s->quota->buffer_writes, per_s,
                                       4 * per_s, 1, relay_mono_us()))
        return true;
    relay_session_refuse(s, PB_ERR_RATE_LIMITED, req,
                         "%s %llu refused: %s sends more than %g buffer "
                         "writes per second (serve "
                         "--buffer-writes-per-second)",
                         what, (unsigned long long)req, s->name, per_s);
    return false;
}

static void on_op(relay_session *s, const pb_buffer_op *op)
{
    relay_room *r = s->room;
    const relay_config *c = &s->srv->cfg;
    if (!take_write(s, op->req, "buffer_op"))
        return;
    relay_buffer nb = {0}, *b = NULL;
    bool open = true;
    switch (op->op) {
    case PB_BUFFER_OP_CREATE:
        if (r->bufs.n >= c->max_buffers) {
            relay_session_refuse(s, PB_ERR_ROOM_FULL, op->req,
                                 "buffer_op %llu: room %s has %u open "
                                 "buffers, the most it may (serve "
                                 "--max-buffers)",
                                 (unsigned long long)op->req, r->name,
                                 c->max_buffers);
            return;
        }
        if (!name_ok(s, op->req, op->name, 0, nb.name))
            return;
        nb.id = r->bufs.last_id + 1;
        nb.lang = op->lang ? op->lang : PB_LANG_C;
        break;
    case PB_BUFFER_OP_SET:
        if (!(b = open_buffer(s, op->buffer, op->req, "buffer_op")))
            return;
        nb = *b;
        if (op->name.ptr && !name_ok(s, op->req, op->name, b->id, nb.name))
            return;
        if (op->lang)
            nb.lang = op->lang;
        break;
    case PB_BUFFER_OP_CLOSE:
        if (!(b = open_buffer(s, op->buffer, op->req, "buffer_op")))
            return;
        nb = *b;
        open = false;
        break;
    default: return; /* the decoder knows no other op */
    }
    pb_errmsg why = {{0}};
    pb_err e = store_buffer(s->srv, r, &nb, open, &why);
    if (e) {
        relay_session_send_error(s, e, op->req, false,
                                 "buffer_op %llu not done: %s",
                                 (unsigned long long)op->req, why.text);
        return;
    }
    if (op->op == PB_BUFFER_OP_CREATE) {
        r->bufs.open[r->bufs.n++] = nb;
        r->bufs.last_id = nb.id;
    } else if (open) {
        *b = nb;
    } else {
        for (relay_session *m = r->members; m; m = m->room_next)
            forget_presence(m, b->id);
        *b = r->bufs.open[--r->bufs.n];
    }
    send_list(r, NULL, op->req, s->client_id);
}

static void on_update(relay_session *s, pb_buffer_update *u)
{
    relay_buffer *b = open_buffer(s, u->buffer, u->req, "buffer_update");
    if (!b || !take_write(s, u->req, "buffer_update"))
        return;
    uint32_t limit = s->srv->cfg.max_buffer_bytes;
    if (b->bytes + u->data.len > limit) {
        /* not charged as a refused frame: an honest editor can fill a
         * buffer; it keeps its text and may compact */
        relay_session_send_error(s, PB_ERR_TOO_BIG, u->req, false,
                                 "buffer_update %llu refused: buffer %s "
                                 "holds %llu of its %u bytes (serve "
                                 "--buffer-bytes); compact it or remove text",
                                 (unsigned long long)u->req, b->name,
                                 (unsigned long long)b->bytes, limit);
        return;
    }
    pb_errmsg why = {{0}};
    uint64_t useq = b->last_useq + 1;
    pb_err e =
        relay_history_buffer_append(s->srv->history, s->room->name, b->id, useq,
                                    u->data.ptr, u->data.len, &why);
    if (e) {
        relay_session_send_error(s, e, u->req, false,
                                 "buffer_update %llu not stored: %s",
                                 (unsigned long long)u->req, why.text);
        return;
    }
    /* on disk: now the sender may count on it and the others may see it */
    b->last_useq = useq;
    b->bytes += u->data.len;
    b->n_updates++;
    pb_frame ack = {.type = PB_T_BUFFER_ACK};
    ack.buffer_ack.buffer = b->id;
    ack.buffer_ack.req = u->req;
    ack.buffer_ack.useq = useq;
    ack.buffer_ack.compact = wants_compaction(s->srv, b);
    relay_session_send_frame(s, &ack);
    pb_frame fwd = {.type = PB_T_BUFFER_UPDATE};
    fwd.buffer_update.buffer = b->id;
    fwd.buffer_update.data = u->data;
    fwd.buffer_update.useq = useq;
    fwd.buffer_update.peer = s->client_id;
    encode_to_subscribers(s->room, &fwd, s);
}

/* After a compaction the stored sizes come from the history. */
static void reload_sizes(void *ctx, const relay_buffer_row *row)
{
    relay_buffer *b = ctx;
    if (row->id != b->id)
        return;
    b->bytes = row->bytes;
    b->n_updates = row->n_updates;
    b->base_useq = row->base_useq;
}

static void on_compact(relay_session *s, const pb_buffer_compact *c)
{
    relay_buffer *b = open_buffer(s, c->buffer, c->req, "buffer_compact");
    if (!b || !take_write(s, c->req, "buffer_compact"))
        return;
    if (c->useq <= b->base_useq || c->useq > b->last_useq) {
        relay_session_send_error(s, PB_ERR_FIELD_RANGE, c->req, false,
                                 "buffer_compact %llu refused: buffer %s "
                                 "may be compacted up to an update after "
                                 "%llu and at most %llu, not %llu",
                                 (unsigned long long)c->req, b->name,
                                 (unsigned long long)b->base_useq,
                                 (unsigned long long)b->last_useq,
                                 (unsigned long long)c->useq);
        return;
    }
    if (c->data.len > s->srv->cfg.max_buffer_bytes) {
        relay_session_send_error(s, PB_ERR_TOO_BIG, c->req, false,
                                 "buffer_compact %llu refused: a snapshot "
                                 "of %u bytes, over the buffer's %u",
                                 (unsigned long long)c->req, c->data.len,
                                 s->srv->cfg.max_buffer_bytes);
        return;
    }
    pb_errmsg why = {{0}};
    pb_err e =
        relay_history_buffer_compact(s->srv->history, s->room->name, b->id,
                                     c->useq, c->data.ptr, c->data.len, &why);
    if (!e)
        e = relay_history_buffers(s->srv->history, s->room->name, reload_sizes,
                                  b, &why);
    if (e) {
        relay_session_send_error(s, e, c->req, false,
                                 "buffer_compact %llu not done: %s",
                                 (unsigned long long)c->req, why.text);
        return;
    }
    pb_frame ack = {.type = PB_T_BUFFER_ACK};
    ack.buffer_ack.buffer = b->id;
    ack.buffer_ack.req = c->req;
    ack.buffer_ack.useq = c->useq;
    relay_session_send_frame(s, &ack);
}

static void on_aware(relay_session *s, pb_buffer_aware *a)
{
    if (!open_buffer(s, a->buffer, 0, "buffer_aware"))
        return;
    a->peer = s->client_id;
    pb_frame f = {.type = PB_T_BUFFER_AWARE};
    f.buffer_aware = *a;
    pb_errmsg why;
    relay_msg *m = relay_msg_encode(&f, &why);
    if (!m)
        return;
    /* the last one per buffer, for those who join later */
    relay_aware *kept = NULL;
    for (relay_aware *k = s->aware; k; k = k->next)
        if (k->buffer == a->buffer)
            kept = k;
    if (!kept && (kept = calloc(1, sizeof *kept))) {
        kept->buffer = a->buffer;
        kept->next = s->aware;
        s->aware = kept;
    }
    if (kept) {
        relay_msg_unref(kept->msg);
        kept->msg = m;
        m->refs++;
    }
    send_to_subscribers(s->room, m, s);
    relay_msg_unref(m);
}

void relay_on_buffer_frame(relay_session *s, pb_frame *f)
{
    if (!s->buffers) {
        relay_session_refuse(s, PB_ERR_UNEXPECTED, 0,
                             "a %s frame from a client that did not ask "
                             "for buffers (hello.buffers)",
                             pb_type_name(f->type));
        return;
    }
    switch (f->type) {
    case PB_T_BUFFER_OP: on_op(s, &f->buffer_op); break;
    case PB_T_BUFFER_UPDATE: on_update(s, &f->buffer_update); break;
    case PB_T_BUFFER_COMPACT: on_compact(s, &f->buffer_compact); break;
    case PB_T_BUFFER_AWARE: on_aware(s, &f->buffer_aware); break;
    default: break;
    }
}

void relay_buffers_announce_eval(relay_room *r, const relay_eval_range *er,
                                 uint64_t seq)
{
    if (!er->buffer || !find_buffer(r, er->buffer))
        return;
    pb_frame f = {.type = PB_T_BUFFER_EVAL};
    f.buffer_eval.buffer = er->buffer;
    f.buffer_eval.seq = seq;
    f.buffer_eval.peer = er->peer;
    f.buffer_eval.author = pb_cstr(er->author);
    f.buffer_eval.start = (pb_bytes){er->start, er->start_len};
    f.buffer_eval.end = (pb_bytes){er->end, er->end_len};
    encode_to_subscribers(r, &f, NULL);
}
