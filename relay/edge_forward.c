/* edge_forward.c — what an edge (edge.c) sends on to the room's signer
 * through Redis: evals, settings, acks, logs and test results of its
 * clients, wrapped with who sent them, the evals waiting for the signer's
 * answer (refused at once when no signer listens, or after EVAL_WAIT_US
 * when it never answers), and the signer's answers to one client. */
#include "edge.h"

#include <hiredis/read.h>
#include <stdlib.h>

bool relay_edge_answer_eval(relay_server *srv, relay_handle h, uint64_t req,
                            const char *fmt, const char *detail)
{
    for (pending_eval **p = &srv->edge->evals; *p; p = &(*p)->next)
        if ((*p)->h.index == h.index && (*p)->h.gen == h.gen &&
            (*p)->req == req) {
            pending_eval *gone = *p;
            *p = gone->next;
            free(gone);
            relay_session *s = relay_session_get(srv, h);
            if (s && fmt)
                relay_session_send_error(s, PB_ERR_COMPILER_DOWN, req, false,
                                         fmt, (unsigned long long)req, detail);
            return true;
        }
    return false;
}

/* PUBLISH answers how many subscribers got it: none means no signer. An
 * error means it went nowhere. No answer (Redis went away after it was
 * sent) leaves the eval waiting: the signer may have it, and answers, or
 * the tick does after EVAL_WAIT_US. */
static void on_forwarded(void *ctx, uint64_t tag, const relay_rval *v)
{
    relay_server *srv = ctx;
    pending_eval *p = srv->edge->evals;
    while (p && p->id != tag)
        p = p->next;
    if (!v || !p)
        return; /* answered already */
    relay_handle h = p->h;
    uint64_t req = p->req;
    if (v->type == REDIS_REPLY_INTEGER && v->integer == 0)
        relay_edge_answer_eval(
            srv, h, req,
            "eval %llu refused: the room's signer is unavailable "
            "(%s); retry when it is back",
            "no signer listens on Redis");
    else if (v->type == REDIS_REPLY_ERROR)
        relay_edge_answer_eval(
            srv, h, req, "eval %llu not sent to the room's signer: %s; retry",
            v->str ? v->str : "Redis refused it");
}

/* The head of what an edge sends the signer for a client (a forward, a
 * "client left"): the kind, the edge's id, when (its clock) and its
 * number, which the signer checks to take each once (publish.c,
 * docs/SECURITY.md § Edges); MACed with the token key at the end. */
static void from_edge(relay_server *srv, relay_env *e, uint8_t kind)
{
    relay_env_u8(e, kind);
    relay_env_str(e, srv->edge->id);
    relay_env_u64(e, relay_now_us());
    relay_env_u64(e, ++srv->edge->sent);
}

bool relay_edge_forward(relay_session *s, const pb_frame *f,
                        const uint8_t *data, size_t len)
{
    relay_server *srv = s->srv;
    switch (f->type) {
    case PB_T_EVAL:
    case PB_T_ROOM:
    case PB_T_ACK:
    case PB_T_LOG:
    case PB_T_TEST_RESULT: break;
    case PB_T_BUFFER_OP:
    case PB_T_BUFFER_UPDATE:
    case PB_T_BUFFER_COMPACT:
    case PB_T_BUFFER_AWARE:
        relay_session_refuse(s, PB_ERR_FORBIDDEN, 0,
                             "shared buffers are served by the room's signer, "
                             "not by edges: connect to the signer to edit "
                             "them");
        return true;
    default: return false;
    }
    uint64_t req = f->type == PB_T_EVAL ? f->eval.req : 0;
    if (!relay_redis_is_up(srv->redis)) {
        if (f->type == PB_T_EVAL || f->type == PB_T_ROOM)
            relay_session_send_error(s, PB_ERR_COMPILER_DOWN, req, false,
                                     "%s %llu not sent: Redis (%s) is "
                                     "unreachable from this edge; retry",
                                     pb_type_name(f->type),
                                     (unsigned long long)req,
                                     relay_redis_url(srv->redis));
        return true; /* acks and logs of that time are lost: reports */
    }
    if (f->type == PB_T_EVAL) {
        pending_eval *p = calloc(1, sizeof *p);
        if (!p) {
            relay_session_send_error(s, PB_ERR_NOMEM, req, false,
                                     "the relay is out of memory");
            return true;
        }
        *p = (pending_eval){{s->index, s->gen},
                            req,
                            relay_mono_us() + EVAL_WAIT_US,
                            ++srv->edge->next_id,
                            srv->edge->evals};
        srv->edge->evals = p;
    }
    relay_env e = {0};
    from_edge(srv, &e, RELAY_ENV_FORWARD);
    relay_env_u32(&e, s->index);
    relay_env_u32(&e, s->gen);
    relay_env_u8(&e, (uint8_t)s->role);
    relay_env_str(&e, s->name);
    relay_env_str(&e, s->room->name);
    relay_env_bytes(&e, data, len);
    relay_env_mac(&e, srv->keys.token_key); /* a proxy only for an edge */
    relay_edge_to_signer(srv, &e, f->type == PB_T_EVAL ? on_forwarded : NULL,
                         srv->edge->next_id);
    relay_env_free(&e);
    return true;
}

void relay_edge_session_closed(relay_session *s)
{
    relay_server *srv = s->srv;
    if (!srv->edge || !srv->redis) /* or the relay is going away */
        return;
    if (s->state == RELAY_SESS_LIVE || s->state == RELAY_SESS_CLOSING) {
        relay_env e = {0};
        from_edge(srv, &e, RELAY_ENV_CLOSED);
        relay_env_u32(&e, s->index);
        relay_env_u32(&e, s->gen);
        relay_env_mac(&e, srv->keys.token_key);
        if (relay_redis_is_up(srv->redis))
            relay_edge_to_signer(srv, &e, NULL, 0);
        relay_env_free(&e);
    }
    s->pending_room = NULL; /* its handle in the wait list goes stale */
}

void relay_edge_say_dropped(relay_server *srv, const char *what)
{
    uint64_t now = relay_mono_us();
    if (what == srv->edge->said && now - srv->edge->said_us < 1000000u)
        return;
    srv->edge->said = what;
    srv->edge->said_us = now;
    lwsl_warn("edge %s: dropped from Redis: %s\n", srv->edge->id, what);
}

void relay_edge_on_client(relay_server *srv, relay_env_reader *rd)
{
    relay_handle h;
    h.index = relay_env_get_u32(rd);
    h.gen = relay_env_get_u32(rd);
    bool close = relay_env_get_u8(rd);
    if (rd->bad)
        return;
    relay_session *s = relay_session_get(srv, h);
    if (rd->left) {
        pb_frame f;
        pb_errmsg why;
        bool pass = false;
        if (!pb_frame_decode(rd->p, rd->left, &f, &why)) {
            if (f.type == PB_T_DIAG)
                pass = relay_edge_answer_eval(srv, h, f.diag.req, NULL, NULL);
            else if ((pass = f.type == PB_T_ERROR) && f.error.req)
                relay_edge_answer_eval(srv, h, f.error.req, NULL, NULL);
            pb_frame_free(&f);
        }
        if (!pass) {
            relay_edge_say_dropped(
                srv, "a frame to one client other than its eval's "
                     "answer or an error");
            return;
        }
        relay_msg *m = s ? relay_msg_new(rd->p, rd->left) : NULL;
        if (m)
            relay_session_send(s, m);
        relay_msg_unref(m);
    }
    if (s && close)
        relay_session_close(s, "closed by the room's signer");
}
