/* pbc.c — the connection of pbc.h. Frames to send wait in a queue with
 * LWS_PRE headroom and leave one lws_write per WRITEABLE callback; frames
 * received are reassembled from fragments and kept until pbc_wait hands
 * them out. All state is the lws context's user pointer. Every wait is one
 * loop, service(), with a deadline. */
#include "pbc.h"

#include <libwebsockets.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct qmsg {
    struct qmsg *next;
    size_t len;
    bool text;       /* send as a text message (tests) */
    uint8_t bytes[]; /* LWS_PRE + len */
} qmsg;

struct pbc {
    struct lws_context *ctx;
    struct lws *wsi;
    bool connected, closed;
    char error[256];
    qmsg *out, *out_tail;
    uint8_t *rx;
    size_t rx_len, rx_cap;
    /* frames received but not yet handed out */
    qmsg *in, *in_tail;
    lws_sorted_usec_list_t tick;
    atomic_int woken; /* pbc_wake from another thread */
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static qmsg *qmsg_new(const uint8_t *p, size_t n, size_t headroom)
{
    qmsg *m = malloc(sizeof *m + headroom + n);
    if (!m)
        return NULL;
    m->next = NULL;
    m->len = n;
    m->text = false;
    memcpy(m->bytes + headroom, p, n);
    return m;
}

static void push(qmsg **head, qmsg **tail, qmsg *m)
{
    if (*tail)
        (*tail)->next = m;
    else
        *head = m;
    *tail = m;
}

static qmsg *pop(qmsg **head, qmsg **tail)
{
    qmsg *m = *head;
    if (m) {
        *head = m->next;
        if (!*head)
            *tail = NULL;
    }
    return m;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason,
                    void *user, void *in, size_t len)
{
    (void)user;
    pbc *c = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->connected = true;
        if (c->out)
            lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        snprintf(c->error, sizeof c->error, "cannot connect: %s",
                 in ? (const char *)in : "connection refused");
        c->closed = true;
        c->wsi = NULL;
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (lws_is_first_fragment(wsi))
            c->rx_len = 0;
        if (c->rx_len + len > PB_MAX_FRAME_BYTES)
            return -1;
        if (c->rx_len + len > c->rx_cap) {
            size_t cap = c->rx_cap ? c->rx_cap : 4096;
            while (cap < c->rx_len + len)
                cap *= 2;
            uint8_t *p = realloc(c->rx, cap);
            if (!p)
                return -1;
            c->rx = p;
            c->rx_cap = cap;
        }
        memcpy(c->rx + c->rx_len, in, len);
        c->rx_len += len;
        if (lws_is_final_fragment(wsi)) {
            qmsg *m = qmsg_new(c->rx, c->rx_len, 0);
            if (!m)
                return -1;
            push(&c->in, &c->in_tail, m);
        }
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
        qmsg *m = pop(&c->out, &c->out_tail);
        if (m) {
            int n = lws_write(wsi, m->bytes + LWS_PRE, m->len,
                              m->text ? LWS_WRITE_TEXT : LWS_WRITE_BINARY);
            free(m);
            if (n < 0)
                return -1;
            if (c->out)
                lws_callback_on_writable(wsi);
        }
        break;
    }
    case LWS_CALLBACK_CLIENT_CLOSED:
        c->closed = true;
        c->wsi = NULL;
        if (!c->error[0])
            snprintf(c->error, sizeof c->error,
                     "the relay closed the connection");
        break;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (len > 2)
            snprintf(c->error, sizeof c->error, "the relay closed: %.*s",
                     (int)(len - 2), (const char *)in + 2);
        break;
    default: break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"patchbay", callback, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0}, /* terminator */
};

/* lws_service() waits for the next event; a 50 ms tick bounds how late a
 * deadline can be noticed. */
static void tick(lws_sorted_usec_list_t *sul)
{
    pbc *c = lws_container_of(sul, pbc, tick);
    lws_sul_schedule(c->ctx, 0, &c->tick, tick, 50 * LWS_US_PER_MS);
}

/* The one service loop. With done, it services the socket until done(c)
 * holds, keeping the frames received for later; without, it hands each
 * frame received to fn (NULL: drops it) until fn returns 1. Either way it
 * gives up at the deadline or when the connection ends. */
static pbc_wait_end service(pbc *c, uint32_t timeout_ms,
                            bool (*done)(const pbc *c), pbc_frame_fn fn,
                            void *ctx, pb_errmsg *why)
{
    uint64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        if (done && done(c))
            return PBC_WAIT_STOPPED;
        qmsg *m = done ? NULL : pop(&c->in, &c->in_tail);
        if (m) {
            pb_frame f;
            int stop = 0;
            if (fn && pb_frame_decode(m->bytes, m->len, &f, NULL) == PB_OK) {
                stop = fn(ctx, &f);
                pb_frame_free(&f);
            }
            free(m);
            if (stop)
                return PBC_WAIT_STOPPED;
            continue;
        }
        if (c->closed) {
            pb_fail(why, PB_ERR_IO, "%s", c->error);
            return PBC_WAIT_CLOSED;
        }
        if (!done && atomic_exchange(&c->woken, 0))
            return PBC_WAIT_WOKEN;
        if (mono_ms() >= deadline)
            return PBC_WAIT_DEADLINE;
        lws_service(c->ctx, 0);
    }
}

static bool is_connected(const pbc *c)
{
    return c->connected;
}

pbc *pbc_open(const pbc_target *t, uint32_t timeout_ms, pb_errmsg *why)
{
    pbc *c = calloc(1, sizeof *c);
    if (!c) {
        pb_fail(why, PB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.user = c;
    info.options = 0;
    if (t->tls) { /* lws with Debian's OpenSSL; the system's CAs, or t->ca */
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        if (t->ca[0])
            info.client_ssl_ca_filepath = t->ca;
    }
    if (!(c->ctx = lws_create_context(&info))) {
        pb_fail(why, PB_ERR_INTERNAL, "cannot create a lws context");
        free(c);
        return NULL;
    }
    lws_sul_schedule(c->ctx, 0, &c->tick, tick, 50 * LWS_US_PER_MS);
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = c->ctx;
    ci.address = t->host;
    ci.port = t->port;
    char path[8 + 3 * PB_MAX_NAME_BYTES];
    snprintf(path, sizeof path, "/");
    if (t->room[0]) { /* the relay then refuses a token for another room */
        snprintf(path, sizeof path, "/r/");
        pbc_url_encode(t->room, path + 3, sizeof path - 3);
    }
    ci.path = path;
    ci.host = t->host;
    ci.origin = t->host;
    ci.protocol = "patchbay";
    ci.pwsi = &c->wsi;
    if (t->tls)
        ci.ssl_connection = LCCSCF_USE_SSL;
    if (!lws_client_connect_via_info(&ci)) {
        pb_fail(why, PB_ERR_IO, "cannot connect to %s:%d", t->host, t->port);
        pbc_close(c);
        return NULL;
    }
    if (service(c, timeout_ms, is_connected, NULL, NULL, NULL) !=
        PBC_WAIT_STOPPED) {
        pb_fail(why, PB_ERR_IO, "%s:%d: %s", t->host, t->port,
                c->closed ? c->error : "no WebSocket handshake in time");
        pbc_close(c);
        return NULL;
    }
    return c;
}

typedef struct welcome_wait {
    pbc_welcome welcome;
    pb_err refused; /* the relay's error code */
    char error[PB_MAX_MESSAGE_BYTES + 1];
} welcome_wait;

static int on_welcome(void *ctx, const pb_frame *f)
{
    welcome_wait *w = ctx;
    if (f->type == PB_T_WELCOME) {
        if (pb_str_copy(w->welcome.room, sizeof w->welcome.room,
                        f->welcome.room))
            w->welcome.room[0] = '\0';
        if (pb_str_copy(w->welcome.name, sizeof w->welcome.name,
                        f->welcome.name))
            w->welcome.name[0] = '\0';
        w->welcome.role = f->welcome.role;
        w->welcome.client_id = f->welcome.client_id;
        w->welcome.head_seq = f->welcome.head_seq;
        w->welcome.now_us = f->welcome.now_us;
        return 1;
    }
    if (f->type == PB_T_ERROR) {
        w->refused = f->error.code ? (pb_err)f->error.code : PB_ERR_INTERNAL;
        snprintf(w->error, sizeof w->error, "%.*s", (int)f->error.message.len,
                 f->error.message.ptr);
        return 1;
    }
    return 0;
}

/* One relay: *refused says the relay answered with an error (a token
 * the others would refuse too), not that it could not be reached. */
static pbc *connect_one(const pbc_target *t, const char *client_name,
                        uint32_t timeout_ms, pbc_welcome *welcome_out,
                        pb_errmsg *why, pb_err *refused)
{
    pbc *c = pbc_open(t, timeout_ms, why);
    if (!c)
        return NULL;
    pb_frame hello = {.type = PB_T_HELLO};
    hello.hello.token = pb_cstr(t->token);
    hello.hello.client = pb_cstr(client_name);
    if (pbc_send(c, &hello, why)) {
        pbc_close(c);
        return NULL;
    }
    /* welcome, or the relay's reason for refusing */
    welcome_wait w = {0};
    pbc_wait_end end = pbc_wait(c, timeout_ms, on_welcome, &w, why);
    if (end != PBC_WAIT_STOPPED || w.refused) {
        if (end == PBC_WAIT_DEADLINE)
            pb_fail(why, PB_ERR_IO, "no welcome from %s:%d within %u ms",
                    t->host, t->port, timeout_ms);
        else if (w.refused)
            pb_fail(why, w.refused, "the relay refused: %s (%s)", w.error,
                    pb_strerror(w.refused));
        *refused = w.refused;
        pbc_close(c);
        return NULL;
    }
    if (welcome_out)
        *welcome_out = w.welcome;
    return c;
}

pbc *pbc_connect(const pbc_target *t, const char *client_name,
                 uint32_t timeout_ms, pbc_welcome *welcome_out, pb_errmsg *why)
{
    unsigned n = pbc_target_relays(t);
    pb_err refused = PB_OK;
    if (n == 1)
        return connect_one(t, client_name, timeout_ms, welcome_out, why,
                           &refused);
    pbc_target *one = malloc(sizeof *one); /* t with another relay */
    char tried[PB_MAX_MESSAGE_BYTES] = "";
    pbc *c = NULL;
    if (!one) {
        pb_fail(why, PB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    for (unsigned k = 0; k < n && !c; k++) {
        unsigned i = (t->first + k) % n;
        pbc_relay r = pbc_target_relay(t, i);
        *one = *t;
        memcpy(one->host, r.host, sizeof one->host);
        one->port = r.port;
        one->tls = r.tls;
        pb_errmsg e = {{0}};
        pbc_welcome w;
        c = connect_one(one, client_name, timeout_ms, &w, &e, &refused);
        if (c) {
            w.relay = i;
            if (welcome_out)
                *welcome_out = w;
        } else if (refused) { /* so would the others */
            pb_fail(why, refused, "%s", e.text);
            break;
        } else {
            size_t l = strlen(tried);
            snprintf(tried + l, sizeof tried - l, "%s%s", l ? "; " : "",
                     e.text);
            if (k + 1 == n)
                pb_fail(why, PB_ERR_IO, "no relay of the %u answered: %s", n,
                        tried);
        }
    }
    free(one);
    return c;
}

static pb_err push_out(pbc *c, const uint8_t *bytes, size_t len, bool text,
                       pb_errmsg *why)
{
    qmsg *m = qmsg_new(bytes, len, LWS_PRE);
    if (!m)
        return pb_fail(why, PB_ERR_NOMEM, "out of memory");
    m->text = text;
    push(&c->out, &c->out_tail, m);
    if (c->wsi && c->connected)
        lws_callback_on_writable(c->wsi);
    return PB_OK;
}

pb_err pbc_send_raw(pbc *c, const uint8_t *bytes, size_t len, bool text,
                    pb_errmsg *why)
{
    return push_out(c, bytes, len, text, why);
}

pb_err pbc_send(pbc *c, const pb_frame *f, pb_errmsg *why)
{
    pb_buf b;
    pb_buf_init(&b);
    pb_err e = pb_frame_encode(f, &b, why);
    if (!e)
        e = push_out(c, b.data, b.len, false, why);
    pb_buf_free(&b);
    return e;
}

static bool is_flushed(const pbc *c)
{
    return !c->out;
}

pb_err pbc_flush(pbc *c, uint32_t timeout_ms, pb_errmsg *why)
{
    switch (service(c, timeout_ms, is_flushed, NULL, NULL, why)) {
    case PBC_WAIT_STOPPED: return PB_OK;
    case PBC_WAIT_DEADLINE:
        return pb_fail(why, PB_ERR_IO, "could not send within %u ms",
                       timeout_ms);
    default: return PB_ERR_IO;
    }
}

void pbc_pause_reading(pbc *c, bool pause)
{
    if (c->wsi)
        lws_rx_flow_control(c->wsi, pause ? 0 : 1);
}

bool pbc_is_closed(const pbc *c)
{
    return c->closed;
}

pbc_wait_end pbc_wait(pbc *c, uint32_t timeout_ms, pbc_frame_fn fn, void *ctx,
                      pb_errmsg *why)
{
    return service(c, timeout_ms, NULL, fn, ctx, why);
}

void pbc_wake(pbc *c)
{
    atomic_store(&c->woken, 1);
    lws_cancel_service(c->ctx);
}

void pbc_close(pbc *c)
{
    if (!c)
        return;
    if (c->ctx) {
        lws_sul_cancel(&c->tick);
        lws_context_destroy(c->ctx);
    }
    qmsg *m;
    while ((m = pop(&c->out, &c->out_tail)))
        free(m);
    while ((m = pop(&c->in, &c->in_tail)))
        free(m);
    free(c->rx);
    free(c);
}
