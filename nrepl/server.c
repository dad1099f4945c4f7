/* server.c — the nREPL server's event loop: one lws context whose vhost
 * listens for raw TCP (listen_accept_role "raw-skt"), as the lws raw
 * examples do, and the room's connection on its own thread (room.c).
 *
 * Every byte a client sends goes through ben_scan (bencode.c) before
 * anything is parsed: a message that is malformed, nested too deep or over
 * max_message_bytes gets one error reply and its client is closed (the
 * stream cannot be trusted after it), and every other client goes on as
 * before. Replies are queued per client and written one per WRITEABLE
 * callback; a client that does not read (over 32 MiB queued) is dropped. */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_QUEUED_BYTES (32u << 20)
#define TICK_US          (100 * LWS_US_PER_MS)

typedef struct out_msg {
    struct out_msg *next;
    size_t len;
    uint8_t bytes[]; /* LWS_PRE + len */
} out_msg;

struct nrepl_client {
    struct lws *wsi;
    nrepl_handle h;
    uint8_t *rx;
    size_t rx_len, rx_cap;
    ben_scanner scan;
    out_msg *out, *out_tail;
    size_t queued;
    bool is_closing; /* write what is queued, then close */
};

typedef struct per_conn {
    nrepl_client *client;
} per_conn;

uint64_t nrepl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void nrepl_log(const nrepl_server *s, const char *fmt, ...)
{
    if (s->d.quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("patchbay nrepl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- clients and their handles ------------------------------------------ */

static nrepl_client *client_get(nrepl_server *s, nrepl_handle h)
{
    if (h.index >= s->n_clients || s->gens[h.index] != h.gen)
        return NULL;
    return s->clients[h.index];
}

static nrepl_client *client_new(nrepl_server *s, struct lws *wsi)
{
    uint32_t i = 0;
    while (i < s->n_clients && s->clients[i])
        i++;
    if (i == s->cap_clients) {
        uint32_t cap = s->cap_clients ? s->cap_clients * 2 : 16;
        nrepl_client **c = realloc(s->clients, cap * sizeof *c);
        if (!c)
            return NULL;
        s->clients = c;
        uint32_t *g = realloc(s->gens, cap * sizeof *g);
        if (!g)
            return NULL;
        s->gens = g;
        for (uint32_t k = s->cap_clients; k < cap; k++) {
            s->clients[k] = NULL;
            s->gens[k] = 0;
        }
        s->cap_clients = cap;
    }
    nrepl_client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->wsi = wsi;
    c->h = (nrepl_handle){i, ++s->gens[i]};
    s->clients[i] = c;
    if (i == s->n_clients)
        s->n_clients++;
    s->n_live++;
    return c;
}

static void client_free(nrepl_server *s, nrepl_client *c)
{
    s->clients[c->h.index] = NULL;
    s->gens[c->h.index]++;
    s->n_live--;
    while (c->out) {
        out_msg *m = c->out;
        c->out = m->next;
        free(m);
    }
    free(c->rx);
    free(c);
}

/* ---- replies ------------------------------------------------------------- */

static void queue_bytes(nrepl_client *c, const uint8_t *p, size_t n)
{
    if (c->queued + n > MAX_QUEUED_BYTES) { /* it does not read: drop it */
        c->is_closing = true;
        lws_callback_on_writable(c->wsi);
        return;
    }
    out_msg *m = malloc(sizeof *m + LWS_PRE + n);
    if (!m)
        return;
    m->next = NULL;
    m->len = n;
    memcpy(m->bytes + LWS_PRE, p, n);
    if (c->out_tail)
        c->out_tail->next = m;
    else
        c->out = m;
    c->out_tail = m;
    c->queued += n;
    lws_callback_on_writable(c->wsi);
}

void nrepl_reply(nrepl_server *s, nrepl_handle h, const char *id,
                 const char *session, ben_arena *a, ben *msg)
{
    nrepl_client *c = client_get(s, h);
    if (!c || !msg)
        return;
    if (id && *id)
        ben_put_cstr(a, msg, "id", id);
    if (session && *session)
        ben_put_cstr(a, msg, "session", session);
    size_t n = 0;
    uint8_t *bytes = a->is_oom ? NULL : ben_encode(msg, &n);
    if (bytes)
        queue_bytes(c, bytes, n);
    free(bytes);
}

void nrepl_reply_status(nrepl_server *s, nrepl_handle h, const char *id,
                        const char *session, const char *const *status)
{
    ben_arena a = {0};
    ben *msg = ben_new_dict(&a), *list = ben_new_list(&a);
    for (; *status; status++)
        ben_push(&a, list, ben_new_cstr(&a, *status));
    ben_put(&a, msg, "status", list);
    nrepl_reply(s, h, id, session, &a, msg);
    ben_arena_free(&a);
}

/* The last word to a client whose stream went wrong (a reply with no id:
 * there is no request to name), then it is closed. */
static void refuse(nrepl_server *s, nrepl_client *c, const char *why)
{
    nrepl_log(s, "client %u: %s; closing it", c->h.index, why);
    ben_arena a = {0};
    ben *msg = ben_new_dict(&a), *st = ben_new_list(&a);
    ben_push(&a, st, ben_new_cstr(&a, "error"));
    ben_push(&a, st, ben_new_cstr(&a, "done"));
    ben_put(&a, msg, "status", st);
    char text[400];
    snprintf(text, sizeof text, "patchbay nrepl: %s; the connection closes\n",
             why);
    ben_put_cstr(&a, msg, "err", text);
    nrepl_reply(s, c->h, NULL, NULL, &a, msg);
    ben_arena_free(&a);
    c->is_closing = true;
    lws_callback_on_writable(c->wsi);
}

/* ---- reading ------------------------------------------------------------- */

static void on_bytes(nrepl_server *s, nrepl_client *c, const uint8_t *in,
                     size_t len)
{
    if (c->is_closing)
        return;
    if (c->rx_len + len > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap : 4096;
        while (cap < c->rx_len + len)
            cap *= 2;
        uint8_t *p = realloc(c->rx, cap);
        if (!p) {
            refuse(s, c, "out of memory");
            return;
        }
        c->rx = p;
        c->rx_cap = cap;
    }
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    for (;;) {
        size_t end = 0;
        char err[160];
        ben_status st = ben_scan(&c->scan, c->rx, c->rx_len,
                                 s->d.max_message_bytes, &end, err, sizeof err);
        if (st == BEN_MORE)
            return;
        if (st == BEN_ERROR) {
            char why[256];
            snprintf(why, sizeof why,
                     "%s (messages are bencoded dictionaries "
                     "of at most %u bytes)",
                     err, s->d.max_message_bytes);
            refuse(s, c, why);
            return;
        }
        ben_arena a = {0};
        ben *msg = ben_parse(&a, c->rx, end);
        nrepl_handle h = c->h;
        if (!msg)
            refuse(s, c, "out of memory");
        else if (msg->kind != BEN_DICT)
            refuse(s, c, "a message that is not a dictionary");
        else
            ops_handle(s, h, &a, msg);
        ben_arena_free(&a);
        if (!(c = client_get(s, h)) || c->is_closing)
            return;
        memmove(c->rx, c->rx + end, c->rx_len - end);
        c->rx_len -= end;
        memset(&c->scan, 0, sizeof c->scan);
    }
}

/* ---- the room's events --------------------------------------------------- */

static void on_room_frame(nrepl_server *s, const uint8_t *bytes, size_t len)
{
    pb_frame f;
    if (pb_frame_decode(bytes, len, &f, NULL))
        return;
    switch (f.type) {
    case PB_T_PEERS: pbc_runtimes_track(&s->runtimes, &f.peers); break;
    case PB_T_PATCH: index_add_patch(&s->index, &f.patch); break;
    case PB_T_HISTORY:
        for (uint32_t i = 0; i < f.history.n_items; i++)
            index_add_patch(&s->index, &f.history.items[i]);
        break;
    default: break;
    }
    eval_on_frame(s, &f);
    pb_frame_free(&f);
}

static void drain_room(nrepl_server *s)
{
    room_event *e;
    while (s->room && (e = room_take(s->room))) {
        if (e->kind == ROOM_FRAME) {
            on_room_frame(s, e->bytes, e->len);
        } else if (e->kind == ROOM_UP) {
            s->is_room_up = true;
            nrepl_log(s, "joined again: %s", e->text);
        } else {
            s->is_room_up = false;
            s->runtimes.n = 0;
            nrepl_log(s, "the relay connection ended: %s; joining again",
                      e->text);
            eval_on_room_down(s, e->text);
        }
        room_event_free(e);
    }
}

static void tick(lws_sorted_usec_list_t *sul)
{
    nrepl_server *s = lws_container_of(sul, nrepl_server, tick);
    eval_tick(s, nrepl_now_ms());
    lws_sul_schedule(s->ctx, 0, &s->tick, tick, TICK_US);
}

/* ---- the lws callback ---------------------------------------------------- */

static int callback(struct lws *wsi, enum lws_callback_reasons reason,
                    void *user, void *in, size_t len)
{
    nrepl_server *s = lws_context_user(lws_get_context(wsi));
    per_conn *pc = user;
    switch (reason) {
    case LWS_CALLBACK_RAW_ADOPT: {
        nrepl_client *c =
            s->n_live < s->d.max_clients ? client_new(s, wsi) : NULL;
        if (!c) {
            nrepl_log(s, "refused a client: %u are connected (the limit)",
                      s->n_live);
            return -1;
        }
        pc->client = c;
        break;
    }
    case LWS_CALLBACK_RAW_RX:
        if (pc->client)
            on_bytes(s, pc->client, in, len);
        break;
    case LWS_CALLBACK_RAW_WRITEABLE: {
        nrepl_client *c = pc->client;
        if (!c)
            break;
        out_msg *m = c->out;
        if (!m)
            return c->is_closing ? -1 : 0;
        if (lws_write(wsi, m->bytes + LWS_PRE, m->len, LWS_WRITE_RAW) <
            (int)m->len)
            return -1;
        c->out = m->next;
        if (!c->out)
            c->out_tail = NULL;
        c->queued -= m->len;
        free(m);
        if (c->out || c->is_closing)
            lws_callback_on_writable(wsi);
        break;
    }
    case LWS_CALLBACK_RAW_CLOSE:
        if (pc->client)
            client_free(s, pc->client);
        pc->client = NULL;
        break;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (s)
            drain_room(s);
        break;
    default: break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"nrepl", callback, sizeof(per_conn), 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- life ---------------------------------------------------------------- */

static void defaults(nrepl_desc *d)
{
    if (!d->bind || !*d->bind)
        d->bind = NREPL_DEFAULT_BIND;
    if (!d->port_file)
        d->port_file = NREPL_DEFAULT_PORT_FILE;
    if (!d->max_clients)
        d->max_clients = NREPL_DEFAULT_MAX_CLIENTS;
    if (!d->max_message_bytes)
        d->max_message_bytes = NREPL_DEFAULT_MAX_MESSAGE_BYTES;
    if (!d->eval_timeout_ms)
        d->eval_timeout_ms = NREPL_DEFAULT_EVAL_TIMEOUT_MS;
}

/* .nrepl-port: the port, so that an editor started in this folder finds
 * the server (CIDER, Calva and Conjure all read it). Written whole through
 * a temporary file. */
static int write_port_file(nrepl_server *s, pb_errmsg *why)
{
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", s->port_file);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%d", s->port) < 0 || fclose(f)) {
        if (f)
            fclose(f);
        unlink(tmp);
        return pb_fail(why, PB_ERR_IO, "cannot write %s: %s", s->port_file,
                       strerror(errno));
    }
    if (rename(tmp, s->port_file)) {
        unlink(tmp);
        return pb_fail(why, PB_ERR_IO, "cannot write %s: %s", s->port_file,
                       strerror(errno));
    }
    s->wrote_port_file = true;
    return 0;
}

nrepl_server *nrepl_new(const nrepl_desc *desc, pb_errmsg *why)
{
    nrepl_server *s = calloc(1, sizeof *s);
    if (!s) {
        pb_fail(why, PB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    s->d = *desc;
    defaults(&s->d);
    snprintf(s->bind, sizeof s->bind, "%s", s->d.bind);
    snprintf(s->port_file, sizeof s->port_file, "%s", s->d.port_file);
    s->d.bind = s->bind;
    s->d.port_file = s->port_file;

    /* the room first: a refused token is the likeliest mistake */
    pbc_welcome w;
    pbc *c = pbc_connect(&s->d.target, "patchbay-nrepl/" PB_VERSION_STRING,
                         5000, &w, why);
    if (!c)
        goto fail;
    if (w.role != PB_ROLE_EDITOR && w.role != PB_ROLE_OWNER) {
        pb_fail(why, PB_ERR_FORBIDDEN,
                "the token's role is %s; an nREPL server evaluates, so it "
                "needs an editor or owner token",
                pb_role_name(w.role));
        pbc_close(c);
        goto fail;
    }
    snprintf(s->room_name, sizeof s->room_name, "%s", w.room);
    snprintf(s->user, sizeof s->user, "%s", w.name);

    struct lws_context_creation_info ci;
    memset(&ci, 0, sizeof ci);
    ci.port = s->d.port;
    ci.iface = s->bind;
    ci.protocols = protocols;
    ci.user = s;
    ci.options = LWS_SERVER_OPTION_ADOPT_APPLY_LISTEN_ACCEPT_CONFIG |
                 (strchr(s->bind, ':') ? 0 : LWS_SERVER_OPTION_DISABLE_IPV6);
    ci.listen_accept_role = "raw-skt";
    ci.listen_accept_protocol = "nrepl";
    lws_set_log_level(LLL_ERR, NULL);
    if (!(s->ctx = lws_create_context(&ci))) {
        pb_fail(why, PB_ERR_IO,
                "cannot listen on %s port %d (in use, or not allowed?)",
                s->bind, s->d.port);
        pbc_close(c);
        goto fail;
    }
    s->port =
        lws_get_vhost_listen_port(lws_get_vhost_by_name(s->ctx, "default"));
    if (!(s->room = room_start(s, c, &s->d.target, why))) {
        pbc_close(c);
        goto fail;
    }
    s->is_room_up = true;
    if (s->port_file[0] && write_port_file(s, why))
        goto fail;
    lws_sul_schedule(s->ctx, 0, &s->tick, tick, TICK_US);
    return s;
fail:
    nrepl_free(s);
    return NULL;
}

int nrepl_port(const nrepl_server *s)
{
    return s->port;
}

void nrepl_stop(nrepl_server *s)
{
    s->stopping = 1;
    lws_cancel_service(s->ctx);
}

pb_err nrepl_serve(nrepl_server *s, pb_errmsg *why)
{
    nrepl_log(s, "nREPL server on %s port %d for room %s (as %s)", s->bind,
              s->port, s->room_name, s->user);
    while (!s->stopping)
        if (lws_service(s->ctx, 0) < 0)
            return pb_fail(why, PB_ERR_INTERNAL, "the event loop failed");
    return PB_OK;
}

void nrepl_free(nrepl_server *s)
{
    if (!s)
        return;
    room_stop(s->room);
    s->room = NULL;
    if (s->ctx) {
        lws_sul_cancel(&s->tick);
        lws_context_destroy(s->ctx); /* closes the clients (RAW_CLOSE) */
    }
    for (uint32_t i = 0; i < s->n_clients; i++)
        if (s->clients[i])
            client_free(s, s->clients[i]);
    free(s->clients);
    free(s->gens);
    ops_free_sessions(s);
    index_free(&s->index);
    if (s->wrote_port_file)
        unlink(s->port_file);
    free(s);
}
