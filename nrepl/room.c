/* room.c — the room's connection, on a thread of its own: the client
 * library's pbc (a blocking client) joins the room and waits for frames,
 * while the event loop serves the nREPL clients. Frames cross between the
 * two as encoded bytes through two locked lists; the event loop is woken
 * with lws_cancel_service (the one lws call allowed from another thread),
 * this thread with pbc_wake. When the relay goes away the thread says so
 * and joins again with a backoff (0.25 s doubling to 8 s). */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct out_msg {
    struct out_msg *next;
    size_t len;
    uint8_t bytes[];
} out_msg;

struct nrepl_room {
    struct lws_context *wake; /* the event loop's context */
    pbc_target target;
    pthread_t thread;
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t cond;
    pbc *c; /* NULL while disconnected */
    room_event *in, *in_tail;
    out_msg *out, *out_tail;
    bool stopping;
};

void room_event_free(room_event *e)
{
    if (e) {
        free(e->bytes);
        free(e);
    }
}

/* Hands an event to the event loop and wakes it. */
static void post(nrepl_room *r, room_event_kind kind, uint8_t *bytes,
                 size_t len, const char *text)
{
    room_event *e = calloc(1, sizeof *e);
    if (!e) {
        free(bytes);
        return;
    }
    e->kind = kind;
    e->bytes = bytes;
    e->len = len;
    snprintf(e->text, sizeof e->text, "%s", text ? text : "");
    pthread_mutex_lock(&r->lock);
    if (r->in_tail)
        r->in_tail->next = e;
    else
        r->in = e;
    r->in_tail = e;
    pthread_mutex_unlock(&r->lock);
    lws_cancel_service(r->wake);
}

/* Every frame from the relay goes to the event loop as it came (encoded
 * again: pbc hands out decoded frames whose memory it keeps). */
static int on_frame(void *ctx, const pb_frame *f)
{
    pb_buf b;
    pb_buf_init(&b);
    if (!pb_frame_encode(f, &b, NULL))
        post(ctx, ROOM_FRAME, b.data, b.len, NULL); /* takes b's bytes */
    else
        pb_buf_free(&b);
    return 0;
}

static void send_queued(nrepl_room *r)
{
    pthread_mutex_lock(&r->lock);
    out_msg *m = r->out;
    r->out = r->out_tail = NULL;
    pthread_mutex_unlock(&r->lock);
    while (m) {
        out_msg *next = m->next;
        pb_errmsg why;
        if (pbc_send_raw(r->c, m->bytes, m->len, false, &why))
            post(r, ROOM_DOWN, NULL, 0, why.text);
        free(m);
        m = next;
    }
}

static void *room_main(void *arg)
{
    nrepl_room *r = arg;
    uint32_t backoff_ms = 250;
    unsigned at = 0; /* the relay of the link joined last */
    for (;;) {
        pthread_mutex_lock(&r->lock);
        bool stop = r->stopping;
        pbc *c = r->c;
        pthread_mutex_unlock(&r->lock);
        if (stop)
            break;
        if (!c) {
            pb_errmsg why = {{0}};
            pbc_welcome w;
            c = pbc_connect(&r->target, "patchbay-nrepl/" PB_VERSION_STRING,
                            5000, &w, &why);
            if (!c) {
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += backoff_ms / 1000;
                until.tv_nsec += (long)(backoff_ms % 1000) * 1000000L;
                if (until.tv_nsec >= 1000000000L) {
                    until.tv_sec++;
                    until.tv_nsec -= 1000000000L;
                }
                backoff_ms = backoff_ms < 8000 ? backoff_ms * 2 : 8000;
                pthread_mutex_lock(&r->lock);
                if (!r->stopping)
                    pthread_cond_timedwait(&r->cond, &r->lock, &until);
                pthread_mutex_unlock(&r->lock);
                continue;
            }
            backoff_ms = 250;
            at = w.relay;
            pthread_mutex_lock(&r->lock);
            r->c = c;
            pthread_mutex_unlock(&r->lock);
            char text[256];
            snprintf(text, sizeof text, "%s in room %s", w.name, w.room);
            post(r, ROOM_UP, NULL, 0, text);
        }
        send_queued(r);
        pb_errmsg why = {{0}};
        if (pbc_wait(c, 1000, on_frame, r, &why) == PBC_WAIT_CLOSED) {
            post(r, ROOM_DOWN, NULL, 0, why.text);
            /* that relay may be gone: the link's next one first */
            r->target.first = (at + 1) % pbc_target_relays(&r->target);
            pthread_mutex_lock(&r->lock);
            r->c = NULL;
            pbc_close(c);
            pthread_mutex_unlock(&r->lock);
        }
    }
    return NULL;
}

nrepl_room *room_start(nrepl_server *srv, pbc *c, const pbc_target *t,
                       pb_errmsg *why)
{
    nrepl_room *r = calloc(1, sizeof *r);
    if (!r) {
        pb_fail(why, PB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    r->wake = srv->ctx;
    r->target = *t;
    r->c = c;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    if (pthread_create(&r->thread, NULL, room_main, r)) {
        pthread_mutex_destroy(&r->lock);
        pthread_cond_destroy(&r->cond);
        free(r);
        pb_fail(why, PB_ERR_INTERNAL, "cannot start the room's thread");
        return NULL;
    }
    return r;
}

bool room_send(nrepl_room *r, const pb_frame *f, pb_errmsg *why)
{
    pb_buf b;
    pb_buf_init(&b);
    if (pb_frame_encode(f, &b, why)) {
        pb_buf_free(&b);
        return false;
    }
    out_msg *m = malloc(sizeof *m + b.len);
    if (!m) {
        pb_buf_free(&b);
        pb_fail(why, PB_ERR_NOMEM, "out of memory");
        return false;
    }
    m->next = NULL;
    m->len = b.len;
    memcpy(m->bytes, b.data, b.len);
    pb_buf_free(&b);
    pthread_mutex_lock(&r->lock);
    if (r->out_tail)
        r->out_tail->next = m;
    else
        r->out = m;
    r->out_tail = m;
    if (r->c)
        pbc_wake(r->c);
    pthread_mutex_unlock(&r->lock);
    return true;
}

room_event *room_take(nrepl_room *r)
{
    pthread_mutex_lock(&r->lock);
    room_event *e = r->in;
    if (e) {
        r->in = e->next;
        if (!r->in)
            r->in_tail = NULL;
        e->next = NULL;
    }
    pthread_mutex_unlock(&r->lock);
    return e;
}

void room_stop(nrepl_room *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->stopping = true;
    pthread_cond_signal(&r->cond);
    if (r->c)
        pbc_wake(r->c);
    pthread_mutex_unlock(&r->lock);
    pthread_join(r->thread, NULL);
    if (r->c)
        pbc_close(r->c);
    room_event *e;
    while ((e = room_take(r)))
        room_event_free(e);
    while (r->out) {
        out_msg *m = r->out;
        r->out = m->next;
        free(m);
    }
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    free(r);
}
