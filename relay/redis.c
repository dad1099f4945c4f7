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
#include <sodium.h>

#include <ctype.h>
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
/* What the event loop holds of Redis's messages and replies, taken or not
 * (bytes are counted until their event is freed); past it messages are
 * dropped (an edge fills the gap by seq, an unanswered eval times out)
 * and replies are answered with an error. */
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
    char url[400]; /* for messages: the password is never in it */
    char host[200];
    int port;
    char user[128], pass[512]; /* AUTH [user] pass when pass[0] */
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
    char why[256];   /* the last reason posted as RELAY_REDIS_REFUSED */
    bool is_refused; /* this pair was refused: its closing says no more */
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

/* Counts n bytes more in the inbox before they are copied; false (and
 * nothing counted) past INBOX_MAX_BYTES. */
static bool reserve(relay_redis *r, size_t n)
{
    pthread_mutex_lock(&r->lock);
    bool ok = n <= INBOX_MAX_BYTES - r->inbox_bytes;
    if (ok)
        r->inbox_bytes += n;
    else
        r->dropped++;
    pthread_mutex_unlock(&r->lock);
    return ok;
}

static void release(relay_redis *r, size_t n)
{
    pthread_mutex_lock(&r->lock);
    r->inbox_bytes -= n;
    pthread_mutex_unlock(&r->lock);
}

static void post(relay_redis *r, relay_redis_event *e)
{
    pthread_mutex_lock(&r->lock);
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

/* The bytes of a reply's strings, as rval_copy copies them. */
static size_t reply_bytes(const redisReply *rep)
{
    size_t n =
        rep->str && rep->len <= RELAY_REDIS_MAX_VALUE_BYTES ? rep->len : 0;
    if (rep->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < rep->elements; i++)
            n += reply_bytes(rep->element[i]);
    return n;
}

/* A value longer than RELAY_REDIS_MAX_VALUE_BYTES (nothing the relays
 * write is: a frame and an envelope's fields) is not copied: it becomes an
 * error without text, which every reader skips. */
static relay_rval *rval_copy(const redisReply *rep)
{
    relay_rval *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->type = rep->type;
    v->integer = rep->integer;
    if (rep->str && rep->len > RELAY_REDIS_MAX_VALUE_BYTES) {
        v->type = REDIS_REPLY_ERROR;
    } else if (rep->str) {
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
    if (e->held)
        release(e->from, e->held);
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
            size_t n = reply ? reply_bytes(reply) : 0;
            if (reply && reserve(r, n)) {
                e->reply = rval_copy(reply);
                e->from = r;
                e->held = n;
            } else if (reply && (e->reply = calloc(1, sizeof *e->reply))) {
                e->reply->type = REDIS_REPLY_ERROR; /* the inbox is full */
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

/* Tells the loop why Redis is not usable (once per different reason: a
 * retry every 2 s for the same cause says nothing new). */
static void tell_why(relay_redis *r, const char *fmt, const char *text)
{
    char why[sizeof r->why];
    snprintf(why, sizeof why, fmt, text);
    if (!strcmp(why, r->why))
        return;
    snprintf(r->why, sizeof r->why, "%s", why);
    relay_redis_event *e = event_new(RELAY_REDIS_REFUSED);
    if (e && (e->data = (uint8_t *)strdup(why))) {
        e->len = strlen(why);
        post(r, e);
    } else {
        relay_redis_event_free(e);
    }
}

/* Redis answered a command of a fresh connection with an error (a wrong
 * password, a password missing): said once, and the pair is closed, to be
 * tried again after the back-off (the operator may fix Redis meanwhile).
 * One text per cause, whichever command or connection meets it first
 * (hiredis itself closes a subscribed connection on an error reply). */
static void say_refused(relay_redis *r, const char *err, size_t len)
{
    char text[200];
    snprintf(text, sizeof text, "%.*s%s", (int)(len < 150 ? len : 150), err,
             r->pass[0] ? " (the password given with --redis-password-file "
                          "or in the URL)"
                        : " (it wants a password: --redis-password-file "
                          "FILE, or redis://:PASSWORD@HOST:PORT)");
    r->is_refused = true;
    tell_why(r, "Redis refused this relay: %s", text);
}

static void refused(redisAsyncContext *ac, const redisReply *rep)
{
    conn *c = ac->ev.data;
    if (ac->c.flags & REDIS_DISCONNECTING)
        return; /* said already: this is a later command's answer */
    say_refused(c->r, rep->str ? rep->str : "", rep->len);
    redisAsyncDisconnect(ac);
}

static void on_auth(redisAsyncContext *ac, void *reply, void *priv)
{
    (void)priv;
    redisReply *rep = reply;
    if (rep && rep->type == REDIS_REPLY_ERROR)
        refused(ac, rep);
}

static void on_ping(redisAsyncContext *ac, void *reply, void *priv)
{
    relay_redis *r = priv;
    redisReply *rep = reply;
    if (rep && rep->type == REDIS_REPLY_ERROR) {
        refused(ac, rep);
    } else if (rep) {
        r->cmd.ready = true;
        r->why[0] = '\0';
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
    /* bounded before it is copied: nothing the relays publish is longer */
    const redisReply *pl = rep->element[ch + 1];
    if (pl->len > RELAY_REDIS_MAX_VALUE_BYTES || !reserve(r, pl->len))
        return;
    relay_redis_event *e = event_new(RELAY_REDIS_MESSAGE);
    if (!e) {
        release(r, pl->len);
        return;
    }
    e->from = r;
    e->held = pl->len;
    if (!(e->data = malloc(pl->len ? pl->len : 1))) {
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

/* Why a connection went (hiredis' text): an error reply Redis gave (a
 * subscribe refused) is a refusal; a socket's error is said as it is. */
static void say_lost(relay_redis *r, const redisAsyncContext *ac, int status)
{
    if (status == REDIS_OK || !ac->errstr[0] || r->is_refused)
        return;
    if (ac->err == REDIS_ERR_OTHER)
        say_refused(r, ac->errstr, strlen(ac->errstr));
    else
        tell_why(r, "Redis: %s", ac->errstr);
}

/* Either connection lost: both go (a pair is simpler to reason about than
 * half a connection), the loop is told, and connect() retries later. */
static void on_disconnect(const redisAsyncContext *ac, int status)
{
    conn *c = ac->ev.data;
    relay_redis *r = c->r;
    say_lost(r, ac, status);
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
    r->is_refused = false;
    if (r->pass[0]) /* first on each: answered before anything after it */
        for (conn *c = &r->cmd; c; c = c == &r->cmd ? &r->sub : NULL) {
            if (r->user[0])
                redisAsyncCommand(c->ac, on_auth, r, "AUTH %s %s", r->user,
                                  r->pass);
            else
                redisAsyncCommand(c->ac, on_auth, r, "AUTH %s", r->pass);
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

/* Copies n bytes of a URL part into out (cap bytes), %XX decoded. */
static bool url_part(char *out, size_t cap, const char *p, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned v = (unsigned char)p[i];
        if (v == '%') {
            if (i + 2 >= n || !isxdigit((unsigned char)p[i + 1]) ||
                !isxdigit((unsigned char)p[i + 2]) ||
                sscanf(p + i + 1, "%2x", &v) != 1)
                return false;
            i += 2;
        }
        if (k + 1 >= cap || v == 0)
            return false;
        out[k++] = (char)v;
    }
    out[k] = '\0';
    return true;
}

/* redis://[[USER]:PASSWORD@]HOST[:PORT]; password (NULL: none) wins over
 * the URL's. */
static pb_err parse_url(relay_redis *r, const char *url, const char *password,
                        pb_errmsg *why)
{
    const char *p = url;
    if (strncmp(p, "redis://", 8))
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "--redis %.*s…: not a redis://HOST:PORT address "
                       "(rediss:// and unix sockets are not supported)",
                       (int)strcspn(url, ":/@"), url);
    p += 8;
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        size_t ulen = colon ? (size_t)(colon - p) : (size_t)(at - p);
        if (!url_part(r->user, sizeof r->user, p, ulen) ||
            (colon && !url_part(r->pass, sizeof r->pass, colon + 1,
                                (size_t)(at - colon - 1))))
            return pb_fail(why, PB_ERR_FIELD_RANGE,
                           "--redis: the part before @ must be USER, "
                           "USER:PASSWORD or :PASSWORD (%%XX for special "
                           "characters)");
        if (!r->pass[0] && !password)
            return pb_fail(why, PB_ERR_FIELD_RANGE,
                           "--redis: a user or an empty password before @ "
                           "wants a password: --redis-password-file FILE");
        p = at + 1;
    }
    const char *colon = strrchr(p, ':');
    size_t hlen = colon ? (size_t)(colon - p) : strlen(p);
    if (!hlen || hlen >= sizeof r->host || strchr(p, '/'))
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "--redis redis://%.*s: not a redis://HOST:PORT address "
                       "(no path)",
                       (int)strnlen(p, 200), p);
    memcpy(r->host, p, hlen);
    r->host[hlen] = '\0';
    r->port = 6379;
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (*end || port < 1 || port > 65535)
            return pb_fail(why, PB_ERR_FIELD_RANGE,
                           "--redis redis://%s: the port must be 1 to 65535",
                           p);
        r->port = (int)port;
    }
    if (password) {
        size_t n = strlen(password);
        if (!n || n >= sizeof r->pass)
            return pb_fail(why, PB_ERR_FIELD_RANGE,
                           "the Redis password must be 1 to %zu bytes",
                           sizeof r->pass - 1);
        memcpy(r->pass, password, n + 1);
    }
    /* for messages: never the password */
    snprintf(r->url, sizeof r->url, "redis://%s%s%s:%d", r->user,
             r->user[0] ? "@" : "", r->host, r->port);
    return PB_OK;
}

relay_redis *relay_redis_start(const char *url, const char *password,
                               const char *const *subs, struct lws_context *ctx,
                               pb_errmsg *why)
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
    if (parse_url(r, url, password, why))
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
    sodium_memzero(r->pass, sizeof r->pass);
    free(r);
}
