/* redis.c — the relay's Redis connection (redis.h): hiredis' async API in a
 * thread of its own, driven by a poll() loop through hiredis' adapter hooks.
 * Two connections: one subscribed (a subscribed connection can do nothing
 * else), one for commands. Commands come from the event loop through a
 * locked queue and a wake-up pipe; what Redis sends is copied into a locked
 * inbox and the event loop is woken with lws_cancel_service, as the
 * evaluator's results are. Why a thread and not the socket adopted into
 * libwebsockets: docs/ARCHITECTURE.md § More than one relay. */
#define _GNU_SOURCE 1 /* pipe2 */
#include "redis.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <libwebsockets.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RETRY_MIN_MS 200u
#define RETRY_MAX_MS 2000u
/* What the event loop has not taken yet; past it messages are dropped (an
 * edge fills the gap by seq, an unanswered eval times out). */
#define INBOX_MAX_BYTES (256u << 20)

typedef struct command {
    struct relay_redis *r;
    relay_redis_fn fn;
    void *ctx;
    uint64_t tag;
    int argc;
    char **argv;
    size_t *lens;
    struct command *next;
} command;

typedef struct conn {
    struct relay_redis *r;
    redisAsyncContext *ac;
    bool want_read, want_write;
    bool ready; /* answered its first command */
} conn;

struct relay_redis {
    char url[256];
    char host[200];
    int port;
    char **subs;
    struct lws_context *ctx;
    pthread_t thread;
    bool running;
    int wake[2];
    pthread_mutex_t lock;
    /* under lock */
    command *cmds, **cmds_tail;
    relay_redis_event *inbox, **inbox_tail;
    size_t inbox_bytes;
    uint64_t dropped;
    bool stopping;
    /* the thread's */
    conn cmd, sub;
    bool up;
    uint32_t retry_ms;
    uint64_t retry_at_ms;
    /* the event loop's */
    bool loop_up;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- events to the event loop ------------------------------------------- */

static void post(relay_redis *r, relay_redis_event *e)
{
    pthread_mutex_lock(&r->lock);
    if (e->kind == RELAY_REDIS_MESSAGE &&
        r->inbox_bytes + e->len > INBOX_MAX_BYTES) {
        r->dropped++;
        pthread_mutex_unlock(&r->lock);
        relay_redis_event_free(e);
        return;
    }
    r->inbox_bytes += e->len;
    *r->inbox_tail = e;
    r->inbox_tail = &e->next;
    pthread_mutex_unlock(&r->lock);
    lws_cancel_service(r->ctx);
}

static relay_redis_event *event_new(relay_redis_kind kind)
{
    relay_redis_event *e = calloc(1, sizeof *e);
    if (e)
        e->kind = kind;
    return e;
}

static relay_rval *rval_copy(const redisReply *rep)
{
    relay_rval *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->type = rep->type;
    v->integer = rep->integer;
    if (rep->str) {
        if (!(v->str = malloc(rep->len + 1)))
            goto fail;
        memcpy(v->str, rep->str, rep->len);
        v->str[rep->len] = '\0';
        v->len = rep->len;
    }
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements) {
        if (!(v->elem = calloc(rep->elements, sizeof *v->elem)))
            goto fail;
        v->n = rep->elements;
        for (size_t i = 0; i < rep->elements; i++)
            if (!(v->elem[i] = rval_copy(rep->element[i])))
                goto fail;
    }
    return v;
fail:
    v->type = REDIS_REPLY_ERROR; /* what the loop sees: out of memory */
    return v;
}

static void rval_free(relay_rval *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++)
        rval_free(v->elem[i]);
    free(v->elem);
    free(v->str);
    free(v);
}

void relay_redis_event_free(relay_redis_event *e)
{
    if (!e)
        return;
    free(e->data);
    rval_free(e->reply);
    free(e);
}

static void command_free(command *c)
{
    for (int i = 0; i < c->argc; i++)
        free(c->argv[i]);
    free(c->argv);
    free(c->lens);
    free(c);
}

/* ---- hiredis callbacks (on the thread) ---------------------------------- */

/* reply NULL: the connection went away after the command was written
 * (it may or may not have run); unsent: it was never written. */
static void answer(command *c, const redisReply *reply, bool unsent)
{
    relay_redis *r = c->r;
    if (c->fn) {
        relay_redis_event *e = event_new(RELAY_REDIS_REPLY);
        if (e) {
            e->fn = c->fn;
            e->ctx = c->ctx;
            e->tag = c->tag;
            if (reply) {
                e->reply = rval_copy(reply);
            } else if (unsent && (e->reply = calloc(1, sizeof *e->reply))) {
                e->reply->type = REDIS_REPLY_ERROR;
                e->reply->str = strdup(RELAY_REDIS_UNSENT);
                e->reply->len = e->reply->str ? strlen(e->reply->str) : 0;
            }
            post(r, e);
        }
    }
    command_free(c);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    answer(priv, reply, false);
}

static void set_up(relay_redis *r)
{
    if (r->up || !r->cmd.ready || !r->sub.ready)
        return;
    r->up = true;
    r->retry_ms = RETRY_MIN_MS;
    relay_redis_event *e = event_new(RELAY_REDIS_UP);
    if (e)
        post(r, e);
}

static void on_ping(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    relay_redis *r = priv;
    if (reply && ((redisReply *)reply)->type != REDIS_REPLY_ERROR) {
        r->cmd.ready = true;
        set_up(r);
    }
}

/* Every message on a subscription, and the subscription's confirmations:
 * [message, channel, payload] or [pmessage, pattern, channel, payload]. */
static void on_message(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)ac;
    relay_redis *r = priv;
    redisReply *rep = reply;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3)
        return;
    const char *kind = rep->element[0]->str ? rep->element[0]->str : "";
    if (!strcmp(kind, "subscribe") || !strcmp(kind, "psubscribe")) {
        r->sub.ready = true;
        set_up(r);
        return;
    }
    size_t ch = !strcmp(kind, "pmessage") ? 2 : 1;
    if (strcmp(kind, "message") && strcmp(kind, "pmessage"))
        return;
    if (rep->elements <= ch + 1 ||
        rep->element[ch]->type != REDIS_REPLY_STRING ||
        rep->element[ch + 1]->type != REDIS_REPLY_STRING)
        return;
    relay_redis_event *e = event_new(RELAY_REDIS_MESSAGE);
    const redisReply *pl = rep->element[ch + 1];
    if (!e || !(e->data = malloc(pl->len ? pl->len : 1))) {
        relay_redis_event_free(e);
        return;
    }
    snprintf(e->channel, sizeof e->channel, "%s", rep->element[ch]->str);
    memcpy(e->data, pl->str, pl->len);
    e->len = pl->len;
    post(r, e);
}

/* The adapter: poll() flags kept per connection. */
static void ev_add_read(void *p)
{
    ((conn *)p)->want_read = true;
}
static void ev_del_read(void *p)
{
    ((conn *)p)->want_read = false;
}
static void ev_add_write(void *p)
{
    ((conn *)p)->want_write = true;
}
static void ev_del_write(void *p)
{
    ((conn *)p)->want_write = false;
}
static void ev_cleanup(void *p)
{
    conn *c = p;
    c->want_read = c->want_write = false;
}

static void on_disconnect(const redisAsyncContext *ac, int status);

static void on_connect(const redisAsyncContext *ac, int status)
{
    if (status != REDIS_OK)
        on_disconnect(ac, status); /* hiredis frees it */
}

/* Either connection lost: both go (a pair is simpler to reason about than
 * half a connection), the loop is told, and connect() retries later. */
static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    conn *c = ac->ev.data;
    relay_redis *r = c->r;
    c->ac = NULL;
    c->ready = false;
    conn *other = c == &r->cmd ? &r->sub : &r->cmd;
    if (other->ac) {
        redisAsyncContext *o = other->ac;
        other->ac = NULL;
        other->ready = false;
        redisAsyncFree(o);
    }
    bool was_up = r->up;
    r->up = false;
    r->retry_at_ms = mono_ms() + r->retry_ms;
    r->retry_ms =
        r->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : r->retry_ms * 2;
    if (was_up) {
        relay_redis_event *e = event_new(RELAY_REDIS_DOWN);
        if (e)
            post(r, e);
    }
}

static bool conn_open(relay_redis *r, conn *c)
{
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    if (!ac)
        return false;
    if (ac->err) {
        redisAsyncFree(ac);
        return false;
    }
    c->ac = ac;
    c->r = r;
    c->ready = false;
    c->want_read = c->want_write = false;
    ac->ev.data = c;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return true;
}

static void connect_both(relay_redis *r)
{
    if (r->cmd.ac || r->sub.ac || mono_ms() < r->retry_at_ms)
        return;
    if (!conn_open(r, &r->cmd) || !conn_open(r, &r->sub)) {
        if (r->cmd.ac) {
            redisAsyncContext *ac = r->cmd.ac;
            r->cmd.ac = NULL;
            redisAsyncFree(ac);
        }
        r->retry_at_ms = mono_ms() + r->retry_ms;
        return;
    }
    redisAsyncCommand(r->cmd.ac, on_ping, r, "PING");
    for (char **s = r->subs; *s; s++) {
        bool pattern = !strncmp(*s, "p:", 2);
        redisAsyncCommand(r->sub.ac, on_message, r,
                          pattern ? "PSUBSCRIBE %s" : "SUBSCRIBE %s",
                          pattern ? *s + 2 : *s);
    }
}

/* Gives the queued commands to hiredis, or answers them with NULL when
 * the connection is down (the loop says so to whoever asked). */
static void send_commands(relay_redis *r)
{
    pthread_mutex_lock(&r->lock);
    command *list = r->cmds;
    r->cmds = NULL;
    r->cmds_tail = &r->cmds;
    pthread_mutex_unlock(&r->lock);
    while (list) {
        command *c = list;
        list = c->next;
        if (!r->up || !r->cmd.ac ||
            redisAsyncCommandArgv(r->cmd.ac, on_reply, c, c->argc,
                                  (const char **)c->argv, c->lens) != REDIS_OK)
            answer(c, NULL, true);
    }
}

static void *thread_main(void *arg)
{
    relay_redis *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->lock);
        bool stop = r->stopping;
        pthread_mutex_unlock(&r->lock);
        if (stop)
            break;
        connect_both(r);
        send_commands(r);
        struct pollfd p[3] = {{r->wake[0], POLLIN, 0}};
        conn *cs[3] = {NULL, &r->cmd, &r->sub};
        int n = 1;
        for (int i = 1; i < 3; i++)
            if (cs[i]->ac) {
                p[n] =
                    (struct pollfd){cs[i]->ac->c.fd,
                                    (short)((cs[i]->want_read ? POLLIN : 0) |
                                            (cs[i]->want_write ? POLLOUT : 0)),
                                    0};
                cs[n++] = cs[i];
            }
        if (poll(p, (nfds_t)n, 100) < 0 && errno != EINTR)
            break;
        if (p[0].revents) {
            char buf[64];
            while (read(r->wake[0], buf, sizeof buf) > 0)
                ;
        }
        for (int i = 1; i < n; i++) {
            /* a callback of the first may have freed the second */
            if (!cs[i]->ac || cs[i]->ac->c.fd != p[i].fd)
                continue;
            if (p[i].revents & (POLLIN | POLLERR | POLLHUP))
                redisAsyncHandleRead(cs[i]->ac);
            if (cs[i]->ac && (p[i].revents & POLLOUT))
                redisAsyncHandleWrite(cs[i]->ac);
        }
    }
    if (r->cmd.ac)
        redisAsyncFree(r->cmd.ac);
    if (r->sub.ac)
        redisAsyncFree(r->sub.ac);
    send_commands(r); /* answered NULL: nobody waits forever */
    return NULL;
}

/* ---- the event loop's side ----------------------------------------------- */

static pb_err parse_url(relay_redis *r, const char *url, pb_errmsg *why)
{
    const char *p = url;
    if (strncmp(p, "redis://", 8))
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "--redis %s: not a redis://HOST:PORT address", url);
    p += 8;
    const char *colon = strrchr(p, ':');
    size_t hlen = colon ? (size_t)(colon - p) : strlen(p);
    if (!hlen || hlen >= sizeof r->host || strchr(p, '/') || strchr(p, '@'))
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "--redis %s: not a redis://HOST:PORT address (no "
                       "path, user or password)",
                       url);
    memcpy(r->host, p, hlen);
    r->host[hlen] = '\0';
    r->port = 6379;
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (*end || port < 1 || port > 65535)
            return pb_fail(why, PB_ERR_FIELD_RANGE,
                           "--redis %s: the port must be 1 to 65535", url);
        r->port = (int)port;
    }
    snprintf(r->url, sizeof r->url, "%s", url);
    return PB_OK;
}

relay_redis *relay_redis_start(const char *url, const char *const *subs,
                               struct lws_context *ctx, pb_errmsg *why)
{
    relay_redis *r = calloc(1, sizeof *r);
    if (!r) {
        pb_fail(why, PB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    r->wake[0] = r->wake[1] = -1;
    pthread_mutex_init(&r->lock, NULL);
    r->cmds_tail = &r->cmds;
    r->inbox_tail = &r->inbox;
    r->ctx = ctx;
    r->retry_ms = RETRY_MIN_MS;
    if (parse_url(r, url, why))
        goto fail;
    size_t n = 0;
    while (subs[n])
        n++;
    if (!(r->subs = calloc(n + 1, sizeof *r->subs)))
        goto nomem;
    for (size_t i = 0; i < n; i++)
        if (!(r->subs[i] = strdup(subs[i])))
            goto nomem;
    if (pipe2(r->wake, O_NONBLOCK | O_CLOEXEC)) {
        pb_fail(why, PB_ERR_IO, "cannot make a pipe: %s", strerror(errno));
        goto fail;
    }
    if (pthread_create(&r->thread, NULL, thread_main, r)) {
        pb_fail(why, PB_ERR_INTERNAL, "cannot start the Redis thread");
        goto fail;
    }
    r->running = true;
    return r;
nomem:
    pb_fail(why, PB_ERR_NOMEM, "out of memory");
fail:
    relay_redis_free(r);
    return NULL;
}

void relay_redis_command(relay_redis *r, relay_redis_fn fn, void *ctx,
                         uint64_t tag, int argc, const char *const *argv,
                         const size_t *lens)
{
    command *c = calloc(1, sizeof *c);
    if (c) {
        c->argv = calloc((size_t)argc, sizeof *c->argv);
        c->lens = calloc((size_t)argc, sizeof *c->lens);
    }
    bool ok = c && c->argv && c->lens;
    for (int i = 0; ok && i < argc; i++) {
        if (!(c->argv[i] = malloc(lens[i] + 1))) {
            ok = false;
            break;
        }
        memcpy(c->argv[i], argv[i], lens[i]);
        c->argv[i][lens[i]] = '\0';
        c->lens[i] = lens[i];
        c->argc = i + 1;
    }
    if (!ok) {
        if (c)
            command_free(c);
        if (fn)
            fn(ctx, tag, NULL); /* answered at once: out of memory */
        return;
    }
    c->r = r;
    c->fn = fn;
    c->ctx = ctx;
    c->tag = tag;
    pthread_mutex_lock(&r->lock);
    *r->cmds_tail = c;
    r->cmds_tail = &c->next;
    pthread_mutex_unlock(&r->lock);
    ssize_t w = write(r->wake[1], "", 1); /* full pipe: already woken */
    (void)w;
}

void relay_redis_publish(relay_redis *r, const char *channel,
                         const relay_env *e, relay_redis_fn fn, void *ctx,
                         uint64_t tag)
{
    if (e->failed) {
        if (fn)
            fn(ctx, tag, NULL);
        return;
    }
    const char *argv[] = {"PUBLISH", channel, (const char *)e->data};
    size_t lens[] = {7, strlen(channel), e->len};
    relay_redis_command(r, fn, ctx, tag, 3, argv, lens);
}

relay_redis_event *relay_redis_take(relay_redis *r)
{
    pthread_mutex_lock(&r->lock);
    relay_redis_event *list = r->inbox;
    r->inbox = NULL;
    r->inbox_tail = &r->inbox;
    r->inbox_bytes = 0;
    pthread_mutex_unlock(&r->lock);
    for (relay_redis_event *e = list; e; e = e->next)
        if (e->kind == RELAY_REDIS_UP || e->kind == RELAY_REDIS_DOWN)
            r->loop_up = e->kind == RELAY_REDIS_UP;
    return list;
}

bool relay_redis_is_up(const relay_redis *r)
{
    return r->loop_up;
}

const char *relay_redis_url(const relay_redis *r)
{
    return r->url;
}

void relay_redis_free(relay_redis *r)
{
    if (!r)
        return;
    if (r->running) {
        pthread_mutex_lock(&r->lock);
        r->stopping = true;
        pthread_mutex_unlock(&r->lock);
        ssize_t w = write(r->wake[1], "", 1);
        (void)w;
        pthread_join(r->thread, NULL);
    }
    for (relay_redis_event *e = r->inbox, *next; e; e = next) {
        next = e->next;
        relay_redis_event_free(e);
    }
    for (command *c = r->cmds, *next; c; c = next) {
        next = c->next;
        command_free(c);
    }
    for (char **s = r->subs; s && *s; s++)
        free(*s);
    free(r->subs);
    if (r->wake[0] >= 0)
        close(r->wake[0]);
    if (r->wake[1] >= 0)
        close(r->wake[1]);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* ---- envelopes ------------------------------------------------------------
 */

static void put(relay_env *e, const void *p, size_t n)
{
    if (e->failed)
        return;
    if (e->len + n > e->cap) {
        size_t cap = e->cap ? e->cap : 256;
        while (cap < e->len + n)
            cap *= 2;
        uint8_t *d = realloc(e->data, cap);
        if (!d) {
            e->failed = true;
            return;
        }
        e->data = d;
        e->cap = cap;
    }
    memcpy(e->data + e->len, p, n);
    e->len += n;
}

void relay_env_u8(relay_env *e, uint8_t v)
{
    put(e, &v, 1);
}

void relay_env_u32(relay_env *e, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                    (uint8_t)v};
    put(e, b, 4);
}

void relay_env_u64(relay_env *e, uint64_t v)
{
    relay_env_u32(e, (uint32_t)(v >> 32));
    relay_env_u32(e, (uint32_t)v);
}

void relay_env_str(relay_env *e, const char *s)
{
    size_t n = strlen(s);
    if (n > UINT16_MAX) {
        e->failed = true;
        return;
    }
    uint8_t b[2] = {(uint8_t)(n >> 8), (uint8_t)n};
    put(e, b, 2);
    put(e, s, n);
}

void relay_env_bytes(relay_env *e, const uint8_t *p, size_t n)
{
    put(e, p, n);
}

void relay_env_free(relay_env *e)
{
    free(e->data);
    memset(e, 0, sizeof *e);
}

static const uint8_t *take(relay_env_reader *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

uint8_t relay_env_get_u8(relay_env_reader *r)
{
    const uint8_t *p = take(r, 1);
    return p ? p[0] : 0;
}

uint32_t relay_env_get_u32(relay_env_reader *r)
{
    const uint8_t *p = take(r, 4);
    return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                   (uint32_t)p[2] << 8 | p[3]
             : 0;
}

uint64_t relay_env_get_u64(relay_env_reader *r)
{
    uint64_t hi = relay_env_get_u32(r);
    return hi << 32 | relay_env_get_u32(r);
}

void relay_env_get_str(relay_env_reader *r, char *out, size_t cap)
{
    out[0] = '\0';
    const uint8_t *b = take(r, 2);
    size_t n = b ? (size_t)b[0] << 8 | b[1] : 0;
    const uint8_t *s = take(r, n);
    if (!s)
        return;
    if (n >= cap || memchr(s, 0, n)) {
        r->bad = true;
        return;
    }
    memcpy(out, s, n);
    out[n] = '\0';
}
