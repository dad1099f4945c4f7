/* evalq.c — admitting evals, on the event loop (docs/SECURITY.md
 * § Hostile input). An eval is limited per token name in its room (a reconnect
 * does not refill it, quota.c) and per room, and waits in bounded queues:
 * per token name, per room and in all. A refusal is PB_ERR_RATE_LIMITED
 * saying when to retry. The evaluator (evaluator.c) serves rooms fairly;
 * a name whose compile hit the time limit is penalised for a while; the
 * evals of an author who left are dropped. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* A wait in seconds for a message, rounded up to a tenth. */
static double retry_s(uint64_t us)
{
    return (double)((us + 99999) / 100000) / 10.0;
}

static bool is_heavy(const relay_quota *q, uint64_t now_us)
{
    return q->heavy_until_us > now_us;
}

/* Why an eval must wait, with when to retry; false if it may be queued. */
static bool over_a_limit(relay_session *s, relay_quota *q, uint64_t now,
                         char *why, size_t cap)
{
    relay_server *srv = s->srv;
    const relay_config *c = &srv->cfg;
    relay_room *room = s->room;
    /* what a job takes lately; before any has ended, say a second */
    uint64_t job_us = relay_evaluator_job_us(srv->eval);
    if (!job_us)
        job_us = 1000000;
    uint32_t per_name = c->max_evals_per_name;
    if (is_heavy(q, now))
        per_name = 1;
    if (q->jobs >= per_name) {
        snprintf(why, cap,
                 "%s has %u evals waiting or compiling in room %s, the most "
                 "allowed%s; retry in %.1f s",
                 s->name, q->jobs, room->name,
                 is_heavy(q, now) ? " while its compiles run into the time "
                                    "limit"
                                  : "",
                 retry_s(job_us * q->jobs));
        return true;
    }
    if (room->jobs >= c->max_evals_per_room) {
        snprintf(why, cap,
                 "room %s has %u evals waiting or compiling, the most "
                 "allowed; retry in %.1f s",
                 room->name, room->jobs, retry_s(job_us * room->jobs));
        return true;
    }
    if (srv->n_jobs >= c->max_evals) {
        snprintf(why, cap,
                 "the relay has %u evals waiting or compiling, the most "
                 "allowed; retry in %.1f s",
                 srv->n_jobs, retry_s(job_us * srv->n_jobs / 2));
        return true;
    }
    double name_rate = c->evals_per_second,
           room_rate = c->room_evals_per_second;
    uint64_t wn = relay_bucket_wait_us(&q->evals, name_rate, name_rate, 1, now);
    uint64_t wr =
        relay_bucket_wait_us(&room->evals, room_rate, 2 * room_rate, 1, now);
    if (wn || wr) {
        snprintf(why, cap,
                 "more than %g evals a second from %s; retry in %.1f s",
                 wn >= wr ? name_rate : room_rate,
                 wn >= wr ? s->name : room->name, retry_s(wn > wr ? wn : wr));
        return true;
    }
    relay_bucket_take(&q->evals, name_rate, name_rate, 1, now);
    relay_bucket_take(&room->evals, room_rate, 2 * room_rate, 1, now);
    return false;
}

void relay_eval_admit(relay_session *s, const pb_eval *ev)
{
    relay_quota *q = s->quota;
    uint64_t now = relay_mono_us();
    char why[300];
    if (!ev->origin_room.len != !ev->origin_seq) {
        relay_session_refuse(s, PB_ERR_FIELD_RANGE, ev->req,
                             "eval %llu refused: origin_room and origin_seq "
                             "name a patch together (got %s without %s)",
                             (unsigned long long)ev->req,
                             ev->origin_seq ? "origin_seq" : "origin_room",
                             ev->origin_seq ? "origin_room" : "origin_seq");
        return;
    }
    if (!q) {
        relay_session_send_error(s, PB_ERR_NOMEM, ev->req, false,
                                 "the relay is out of memory");
        return;
    }
    if (over_a_limit(s, q, now, why, sizeof why)) {
        /* not charged like a refused frame: a client that serves many
         * people (patchbay nrepl) retries when told; a flood of evals
         * costs what the bytes per second allow */
        relay_session_send_error(s, PB_ERR_RATE_LIMITED, ev->req, false,
                                 "eval %llu refused: %s",
                                 (unsigned long long)ev->req, why);
        return;
    }
    relay_job *job = relay_job_new(ev->source.len);
    if (!job) {
        relay_session_send_error(s, PB_ERR_NOMEM, ev->req, false,
                                 "the relay is out of memory");
        return;
    }
    job->author = (relay_handle){s->index, s->gen};
    job->room_ref = s->room;
    job->quota = q;
    job->heavy = is_heavy(q, now);
    job->req = ev->req;
    snprintf(job->room, sizeof job->room, "%s", s->room->name);
    snprintf(job->author_name, sizeof job->author_name, "%s", s->name);
    job->lang = ev->lang;
    job->expr = ev->expr;
    if (pb_str_copy(job->origin_room, sizeof job->origin_room, ev->origin_room))
        job->origin_room[0] = '\0'; /* the decoder bounds it: cannot be */
    job->origin_seq = job->origin_room[0] ? ev->origin_seq : 0;
    if (ev->buffer && ev->start.len <= PB_MAX_RELPOS_BYTES &&
        ev->end.len <= PB_MAX_RELPOS_BYTES) {
        relay_eval_range *er = &job->range;
        er->buffer = ev->buffer;
        er->peer = s->client_id;
        snprintf(er->author, sizeof er->author, "%s", s->name);
        if (ev->start.len)
            memcpy(er->start, ev->start.ptr, ev->start.len);
        if (ev->end.len)
            memcpy(er->end, ev->end.ptr, ev->end.len);
        er->start_len = ev->start.len;
        er->end_len = ev->end.len;
    }
    if (pb_str_copy(job->file, sizeof job->file, ev->name) || !job->file[0])
        snprintf(job->file, sizeof job->file, "%s",
                 ev->lang == PB_LANG_LISP ? "patch.cljc" : "patch.c");
    memcpy(job->source, ev->source.ptr, ev->source.len);
    job->source[ev->source.len] = '\0';
    job->source_len = ev->source.len;
    /* a room's own lead is fixed; otherwise it adapts (lockstep.c) */
    job->lead_us = s->room->settings.lead_us
                       ? s->room->settings.lead_us
                       : relay_lockstep_lead(&s->room->ls, s->srv->cfg.lead_us);
    job->tempo_bpm = s->room->settings.tempo_bpm;
    job->quantum = s->room->settings.quantum;
    q->jobs++;
    s->room->jobs++;
    s->srv->n_jobs++;
    relay_evaluator_submit(s->srv->eval, job, &s->room->eval_round);
}

void relay_eval_settled(relay_server *srv, relay_room *room, relay_quota *q,
                        uint32_t n, bool struck)
{
    room->jobs -= n;
    q->jobs -= n;
    srv->n_jobs -= n;
    if (!struck)
        return;
    uint64_t now = relay_mono_us();
    q->strikes++;
    uint64_t penalty = (uint64_t)RELAY_HEAVY_US * q->strikes;
    if (penalty > RELAY_HEAVY_MAX_US)
        penalty = RELAY_HEAVY_MAX_US;
    q->heavy_until_us = now + penalty;
    /* what it queued before the strike goes to the second worker too */
    if (srv->eval)
        relay_evaluator_heavy(srv->eval, q);
    lwsl_user("room %s: a compile of %s ran into the time limit (%u lately); "
              "its evals go to the second worker, one at a time, for %.0f s\n",
              room->name, q->name, q->strikes, (double)penalty / 1e6);
}

void relay_eval_cancel(relay_session *s)
{
    if (!s->room || !s->quota || !s->srv->eval)
        return;
    uint32_t n =
        relay_evaluator_cancel(s->srv->eval, (relay_handle){s->index, s->gen});
    if (n) {
        relay_eval_settled(s->srv, s->room, s->quota, n, false);
        lwsl_user("room %s: %u evals of %s dropped: it left\n", s->room->name,
                  n, s->name);
    }
}
