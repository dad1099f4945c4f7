/* wsclient.c — see wsclient.h. */
#include "wsclient.h"

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
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"patchbay", callback, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0}, /* terminator */
};

static void url_param(const char *frag, const char *key, char *out,
                      size_t cap)
{
    size_t kl = strlen(key);
    for (const char *p = frag; p && *p;) {
        if (!strncmp(p, key, kl) && p[kl] == '=') {
            const char *v = p + kl + 1;
            size_t n = strcspn(v, "&");
            snprintf(out, cap, "%.*s", (int)n, v);
            return;
        }
        p = strchr(p, '&');
        if (p)
            p++;
    }
}

int pbc_parse_url(const char *url, pbc_target *t, pb_errmsg *why)
{
    char token_keep[sizeof t->token];
    snprintf(token_keep, sizeof token_keep, "%s", t->token);
    const char *p = url;
    const char *schemes[] = {"ws://", "http://", "wss://", "https://"};
    for (size_t i = 0; i < 4; i++)
        if (!strncmp(p, schemes[i], strlen(schemes[i]))) {
            if (i >= 2) {
                snprintf(why->text, sizeof why->text,
                         "%s: TLS is not supported yet; use ws:// or "
                         "http://",
                         url);
                return -1;
            }
            p += strlen(schemes[i]);
            break;
        }
    size_t hl = strcspn(p, ":/#");
    if (hl == 0 || hl >= sizeof t->host) {
        snprintf(why->text, sizeof why->text, "%s: no host name", url);
        return -1;
    }
    snprintf(t->host, sizeof t->host, "%.*s", (int)hl, p);
    p += hl;
    t->port = 7888;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535) {
            snprintf(why->text, sizeof why->text, "%s: bad port", url);
            return -1;
        }
        t->port = (int)port;
        p = end;
    }
    const char *frag = strchr(p, '#');
    if (frag) {
        url_param(frag + 1, "room", t->room, sizeof t->room);
        url_param(frag + 1, "token", t->token, sizeof t->token);
        url_param(frag + 1, "key", t->key_hex, sizeof t->key_hex);
    }
    if (!t->token[0])
        snprintf(t->token, sizeof t->token, "%s", token_keep);
    return 0;
}

/* lws_service() waits for the next event; a 50 ms tick bounds how late a
 * deadline can be noticed. */
static void tick(lws_sorted_usec_list_t *sul)
{
    pbc *c = lws_container_of(sul, pbc, tick);
    lws_sul_schedule(c->ctx, 0, &c->tick, tick, 50 * LWS_US_PER_MS);
}

pbc *pbc_open(const pbc_target *t, uint32_t timeout_ms, pb_errmsg *why)
{
    pbc *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(why->text, sizeof why->text, "out of memory");
        return NULL;
    }
    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.user = c;
    info.options = 0;
    if (!(c->ctx = lws_create_context(&info))) {
        snprintf(why->text, sizeof why->text, "cannot create a lws context");
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
        static const char hex[] = "0123456789ABCDEF";
        size_t n = (size_t)snprintf(path, sizeof path, "/r/");
        for (const char *r = t->room; *r && n + 4 < sizeof path; r++) {
            unsigned char ch = (unsigned char)*r;
            if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                (ch >= '0' && ch <= '9') || strchr("-._~", ch)) {
                path[n++] = (char)ch;
            } else {
                path[n++] = '%';
                path[n++] = hex[ch >> 4];
                path[n++] = hex[ch & 15];
            }
        }
        path[n] = '\0';
    }
    ci.path = path;
    ci.host = t->host;
    ci.origin = t->host;
    ci.protocol = "patchbay";
    ci.pwsi = &c->wsi;
    if (!lws_client_connect_via_info(&ci)) {
        snprintf(why->text, sizeof why->text, "cannot connect to %s:%d",
                 t->host, t->port);
        pbc_close(c);
        return NULL;
    }
    uint64_t deadline = mono_ms() + timeout_ms;
    while (!c->connected) {
        if (c->closed || mono_ms() >= deadline) {
            snprintf(why->text, sizeof why->text, "%s:%d: %s", t->host,
                     t->port,
                     c->closed ? c->error : "no WebSocket handshake in time");
            pbc_close(c);
            return NULL;
        }
        lws_service(c->ctx, 0);
    }
    return c;
}

pbc *pbc_connect(const pbc_target *t, const char *client_name,
                 uint32_t timeout_ms, pbc_welcome *welcome_out,
                 pb_errmsg *why)
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
    /* Wait for welcome or error; copy out what we need inside the
     * callback's lifetime. */
    struct {
        pbc_welcome w;
        int got;
        char err[256];
    } st = {0};
    uint64_t deadline = mono_ms() + timeout_ms;
    while (!st.got) {
        uint64_t now = mono_ms();
        if (now >= deadline) {
            snprintf(why->text, sizeof why->text,
                     "no welcome from %s:%d within %u ms", t->host, t->port,
                     timeout_ms);
            pbc_close(c);
            return NULL;
        }
        qmsg *m = pop(&c->in, &c->in_tail);
        if (!m) {
            if (c->closed) {
                snprintf(why->text, sizeof why->text, "%s", c->error);
                pbc_close(c);
                return NULL;
            }
            lws_service(c->ctx, 0);
            continue;
        }
        pb_frame f;
        if (pb_frame_decode(m->bytes, m->len, &f, NULL) == PB_OK) {
            if (f.type == PB_T_WELCOME) {
                if (pb_str_copy(st.w.room, sizeof st.w.room, f.welcome.room))
                    st.w.room[0] = '\0';
                if (pb_str_copy(st.w.name, sizeof st.w.name, f.welcome.name))
                    st.w.name[0] = '\0';
                st.w.role = f.welcome.role;
                st.w.client_id = f.welcome.client_id;
                st.w.head_seq = f.welcome.head_seq;
                st.w.now_us = f.welcome.now_us;
                st.got = 1;
            } else if (f.type == PB_T_ERROR) {
                snprintf(st.err, sizeof st.err, "%.*s (%s)",
                         (int)f.error.message.len, f.error.message.ptr,
                         pb_strerror((pb_err)f.error.code));
                st.got = 2;
            }
            pb_frame_free(&f);
        }
        free(m);
    }
    if (st.got == 2) {
        snprintf(why->text, sizeof why->text, "the relay refused: %s", st.err);
        pbc_close(c);
        return NULL;
    }
    if (welcome_out)
        *welcome_out = st.w;
    return c;
}

int pbc_send_raw(pbc *c, const uint8_t *bytes, size_t len, bool text,
                 pb_errmsg *why)
{
    qmsg *m = qmsg_new(bytes, len, LWS_PRE);
    if (!m) {
        snprintf(why->text, sizeof why->text, "out of memory");
        return -1;
    }
    m->text = text;
    push(&c->out, &c->out_tail, m);
    if (c->wsi && c->connected)
        lws_callback_on_writable(c->wsi);
    return 0;
}

int pbc_flush(pbc *c, uint32_t timeout_ms, pb_errmsg *why)
{
    uint64_t deadline = mono_ms() + timeout_ms;
    while (c->out) {
        if (c->closed) {
            snprintf(why->text, sizeof why->text, "%s", c->error);
            return -1;
        }
        if (mono_ms() >= deadline) {
            snprintf(why->text, sizeof why->text,
                     "could not send within %u ms", timeout_ms);
            return -1;
        }
        lws_service(c->ctx, 0);
    }
    return 0;
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

int pbc_send(pbc *c, const pb_frame *f, pb_errmsg *why)
{
    pb_buf b;
    pb_buf_init(&b);
    if (pb_frame_encode(f, &b, why)) {
        pb_buf_free(&b);
        return -1;
    }
    qmsg *m = qmsg_new(b.data, b.len, LWS_PRE);
    pb_buf_free(&b);
    if (!m) {
        snprintf(why->text, sizeof why->text, "out of memory");
        return -1;
    }
    push(&c->out, &c->out_tail, m);
    if (c->wsi && c->connected)
        lws_callback_on_writable(c->wsi);
    return 0;
}

int pbc_wait(pbc *c, uint32_t timeout_ms, pbc_frame_fn fn, void *ctx,
             pb_errmsg *why)
{
    uint64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        qmsg *m = pop(&c->in, &c->in_tail);
        if (m) {
            pb_frame f;
            pb_errmsg derr;
            int stop = 0;
            if (fn && pb_frame_decode(m->bytes, m->len, &f, &derr) == PB_OK) {
                stop = fn(ctx, &f);
                pb_frame_free(&f);
            }
            free(m);
            if (stop)
                return 1;
            continue;
        }
        if (c->closed) {
            snprintf(why->text, sizeof why->text, "%s", c->error);
            return -1;
        }
        if (atomic_exchange(&c->woken, 0))
            return 2;
        if (mono_ms() >= deadline)
            return 0;
        lws_service(c->ctx, 0);
    }
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
