/* evaluator.c — the eval path off the event loop: worker threads take
 * eval jobs, compile each through a compile server (cc_client), and for a
 * module build the patch statement, sign it and commit it to the history
 * *before* handing it back for broadcast — so a crash never loses a patch
 * anyone has seen. Results go back to the event loop through a queue and
 * lws_cancel_service().
 *
 * Scheduling (docs/SECURITY.md § Limits): rooms are served fairly — each
 * job gets a round one past its room's previous job (or the round being
 * served, if later) and the lowest round goes first, so one room's backlog
 * does not delay another room's next eval. A room's jobs run one at a time
 * (which serializes its seq assignment and the vars each compile sees), an
 * author's in the order sent. Worker 0 compiles every job except those of
 * authors whose compiles recently hit the time limit ("heavy"): worker 1
 * compiles those, with a compile server of its own started when first
 * needed, so a bomb's time limit and the server restart it costs fall on
 * the bomber's worker, not on everyone's.
 *
 * A name's first bomb is not known to be one: on worker 0 every job gets
 * a budget (relay_budget_ms), far less than the limit. A job still
 * compiling then is stopped (its server killed), put back at the head of
 * the queue as heavy, and compiled again by worker 1 with the whole
 * limit, its author's later jobs following it; its room waits for it as
 * if it were still compiling. Worker 0 goes on at once with a spare
 * compile server, started and warmed up beforehand, and starts the next
 * spare. So an honest eval in another room waits at most the budget for
 * a bomb, and a legal but slow compile still commits, later. */
#define _GNU_SOURCE /* syscall(SYS_gettid): one thread's nice value */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { WORKERS = 2 };
/* The heavy worker's nice value, which its compile servers (and their
 * clang processes) inherit: a bomb gets what CPU the others leave. */
#define HEAVY_NICE 10

typedef struct relay_worker {
    relay_evaluator *ev;
    pthread_t thread;
    bool running, heavy;
    cc_client *cc;          /* the heavy worker's: started on first use */
    cc_client *spare;       /* worker 0's next server, warming up */
    uint64_t took_us;       /* worker 0: what its jobs took lately */
    relay_history *history; /* this thread's own connection */
    relay_job *job;         /* compiling (under the lock) */
} relay_worker;

struct relay_evaluator {
    relay_server *srv;
    /* the compile server's command (a copy: the caller's may not outlive
     * relay_new) and limit, for every server the workers start */
    char *argv[16];
    cc_client_desc cc_desc;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    relay_job *jobs, **jobs_tail; /* waiting, in arrival order */
    uint64_t round;               /* the round being served */
    uint64_t job_us;              /* a job's time lately (moving average) */
    relay_done *done, *done_tail;
    bool stopping;
    relay_worker w[WORKERS];
};

void relay_done_free(relay_done *d)
{
    if (!d)
        return;
    cc_result_free(&d->res);
    relay_msg_unref(d->patch);
    free(d);
}

static void job_free(relay_job *j)
{
    if (j) {
        relay_done_free(j->done);
        free(j->source);
        free(j);
    }
}

relay_job *relay_job_new(size_t source_len)
{
    relay_job *j = calloc(1, sizeof *j);
    if (j && (!(j->source = malloc(source_len + 1)) ||
              !(j->done = calloc(1, sizeof *j->done)))) {
        job_free(j);
        return NULL;
    }
    return j;
}

/* The room's vars, for the compiler's prelude. */
typedef struct var_list {
    cc_var *v;
    uint32_t n, cap;
    bool oom;
} var_list;

static void add_var(void *ctx, const relay_var_row *row)
{
    var_list *l = ctx;
    if (l->oom)
        return;
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 16;
        cc_var *p = realloc(l->v, cap * sizeof *p);
        if (!p) {
            l->oom = true;
            return;
        }
        l->v = p;
        l->cap = cap;
    }
    cc_var *v = &l->v[l->n++];
    memset(v, 0, sizeof *v);
    v->name = strdup(row->name);
    v->sig = strdup(row->sig);
    v->decl = row->decl && row->decl[0] ? strdup(row->decl) : NULL;
    if (row->n_deps) {
        char **deps = calloc(row->n_deps, sizeof *deps);
        for (uint32_t i = 0; deps && i < row->n_deps; i++)
            deps[i] = strdup(row->deps[i]);
        v->deps = (const char *const *)deps;
        v->n_deps = deps ? row->n_deps : 0;
    }
    if (!v->name || !v->sig)
        l->oom = true;
}

static void free_vars(var_list *l)
{
    for (uint32_t i = 0; i < l->n; i++) {
        free((char *)l->v[i].name);
        free((char *)l->v[i].sig);
        free((char *)l->v[i].decl);
        for (uint32_t k = 0; k < l->v[i].n_deps; k++)
            free((char *)l->v[i].deps[k]);
        free((void *)l->v[i].deps);
    }
    free(l->v);
}

/* Statement, signature, commit, encoded patch frame. */
static pb_err accept_patch(relay_evaluator *ev, relay_history *history,
                           const relay_job *job, relay_done *d, pb_errmsg *why)
{
    relay_server *srv = ev->srv;
    const cc_result *r = &d->res;
    uint64_t head_seq = 0;
    uint8_t head_hash[PB_HASH_BYTES] = {0};
    pb_err e =
        relay_history_head(history, job->room, &head_seq, head_hash, why);
    uint64_t epoch = 0;
    if (!e && !head_seq) /* seq 1 follows its epoch's genesis */
        e = relay_history_epoch(history, job->room, relay_now_us(), &epoch,
                                why);
    if (e)
        return e;
    if (!head_seq)
        pb_epoch_genesis(job->room, epoch, srv->keys.pk, head_hash);
    pb_symbol *syms = calloc(r->n_defs ? r->n_defs : 1, sizeof *syms);
    relay_var_row *rows = calloc(r->n_defs ? r->n_defs : 1, sizeof *rows);
    pb_buf stmt;
    pb_buf_init(&stmt);
    if (!syms || !rows) {
        e = PB_ERR_NOMEM;
        goto done;
    }
    for (uint32_t i = 0; i < r->n_defs; i++) {
        syms[i].name = pb_cstr(r->defs[i].name);
        syms[i].type = pb_cstr(r->defs[i].sig);
        rows[i].name = r->defs[i].name;
        rows[i].sig = r->defs[i].sig;
        rows[i].decl = r->defs[i].decl;
        rows[i].deps = (const char *const *)r->defs[i].deps;
        rows[i].n_deps = r->defs[i].n_deps;
    }
    pb_statement s = {0};
    s.room = pb_cstr(job->room);
    s.seq = head_seq + 1;
    memcpy(s.prev_hash, head_hash, PB_HASH_BYTES);
    pb_hash(r->module, r->module_len, s.module_hash);
    s.symbols = syms;
    s.n_symbols = r->n_defs;
    s.author = pb_cstr(job->author_name);
    s.lang = job->lang;
    pb_hash(job->source, job->source_len, s.source_hash);
    s.created_us = relay_now_us();
    s.apply_us = relay_apply_time(s.created_us, job->lead_us, job->tempo_bpm,
                                  job->quantum);
    if (s.apply_us - s.created_us > PB_MAX_APPLY_AHEAD_US) {
        /* runtimes would refuse it (docs/PROTOCOL.md § Time) */
        e = pb_fail(why, PB_ERR_FIELD_RANGE,
                    "refused to sign: the apply time is %.1f s ahead, more "
                    "than %u s (lead %.1f s, tempo %g BPM, quantum %u)",
                    (double)(s.apply_us - s.created_us) / 1e6,
                    PB_MAX_APPLY_AHEAD_US / 1000000u,
                    (double)job->lead_us / 1e6, job->tempo_bpm, job->quantum);
        goto done;
    }
    memcpy(s.key, srv->keys.pk, PB_PUBLICKEY_BYTES);
    /* an expression defines no var (r->n_defs is 0): it runs once */
    s.kind = r->is_expr ? PB_KIND_EXPR : PB_KIND_DEFS;
    /* a replay names its original: the author's claim, signed as made */
    s.origin_room = pb_cstr(job->origin_seq ? job->origin_room : NULL);
    s.origin_seq = job->origin_seq;
    /* The compile server runs what anyone sends it: the relay signs only
     * a module it has read itself (docs/SECURITY.md § Hostile input). */
    pb_errmsg bad;
    if (pb_module_check(r->module, r->module_len, s.kind, syms, r->n_defs,
                        &bad)) {
        e = pb_fail(why, PB_ERR_COMPILER_DOWN,
                    "refused to sign what the compile server made: %s",
                    bad.text);
        goto done;
    }
    if ((e = pb_statement_encode(&s, &stmt, why)))
        goto done;
    uint8_t sig[PB_SIG_BYTES];
    pb_sign(stmt.data, stmt.len, srv->keys.sk, sig);
    relay_patch_row row = {0};
    row.seq = s.seq;
    pb_hash(stmt.data, stmt.len, row.hash);
    row.stmt = stmt.data;
    row.stmt_len = stmt.len;
    row.sig = sig;
    row.module = r->module;
    row.module_len = r->module_len;
    row.source = job->source;
    row.source_len = job->source_len;
    row.author = job->author_name;
    row.created_us = s.created_us;
    /* Persist before anyone sees it (synchronous=FULL, WAL). */
    if ((e = relay_history_append(history, job->room, &row, rows, r->n_defs,
                                  why)))
        goto done;
    pb_frame f = {.type = PB_T_PATCH};
    f.patch.stmt = (pb_bytes){stmt.data, (uint32_t)stmt.len};
    f.patch.sig = (pb_bytes){sig, PB_SIG_BYTES};
    f.patch.module = (pb_bytes){r->module, (uint32_t)r->module_len};
    f.patch.source = (pb_str){job->source, (uint32_t)job->source_len};
    if (!(d->patch = relay_msg_encode(&f, why))) {
        e = PB_ERR_INTERNAL;
        goto done;
    }
    d->seq = s.seq;
    d->created_us = s.created_us;
    d->apply_us = s.apply_us;
    memcpy(d->hash, row.hash, PB_HASH_BYTES);
done:
    pb_buf_free(&stmt);
    free(syms);
    free(rows);
    return e;
}

/* Whether a job ran into the compile time limit, or the compile server
 * died on it (the next job of this worker waits for a new one). */
static bool over_limit(const relay_evaluator *ev, const relay_worker *w,
                       const cc_result *r)
{
    if (cc_client_pid(w->cc) == 0)
        return true;
    char limit[256];
    cc_timeout_message(limit, sizeof limit, ev->srv->cfg.compile_timeout_ms);
    for (uint32_t i = 0; i < r->n_diags; i++)
        if (r->diags[i].message && !strcmp(r->diags[i].message, limit))
            return true;
    return false;
}

uint32_t relay_budget_ms(const relay_config *c, uint64_t took_us)
{
    if (c->compile_budget_ms)
        return c->compile_budget_ms;
    uint64_t ms = took_us * RELAY_BUDGET_FACTOR / 1000u;
    if (ms < RELAY_BUDGET_MS)
        ms = RELAY_BUDGET_MS;
    if (ms > c->compile_timeout_ms / 2)
        ms = c->compile_timeout_ms / 2;
    return (uint32_t)ms;
}

/* Fills the job's answer: its diagnostics, the accepted patch, or the
 * error of the compiler or the history. Every job gets one, but a job
 * still compiling after budget ms (0: the limit): then NULL (the job
 * keeps its answer, to be compiled again). */
static relay_done *run_job(relay_worker *w, relay_job *job, uint32_t budget)
{
    relay_evaluator *ev = w->ev;
    relay_done *d = job->done;
    job->done = NULL;
    d->moved = job->moved;
    d->author = job->author;
    d->req = job->req;
    d->range = job->range;
    d->room_ref = job->room_ref;
    d->quota = job->quota;
    snprintf(d->room, sizeof d->room, "%s", job->room);
    pb_errmsg why = {{0}};
    var_list vars = {0};
    pb_err e = PB_OK;
    if (!w->cc && !(w->cc = cc_client_new(&ev->cc_desc, &why)))
        e = PB_ERR_COMPILER_DOWN;
    if (!e)
        e = relay_history_vars(w->history, job->room, add_var, &vars, &why);
    if (!e && vars.oom)
        e = PB_ERR_NOMEM;
    if (!e) {
        cc_job cj = {job->lang, job->file, job->source, job->source_len,
                     vars.v,    vars.n,    job->expr};
        bool stopped = false;
        e = cc_client_compile_within(w->cc, &cj, budget, &stopped, &d->res,
                                     &why);
        if (stopped) {
            free_vars(&vars);
            d->budget_ms = budget;
            job->done = d;
            return NULL;
        }
        d->struck = over_limit(ev, w, &d->res);
    }
    pthread_mutex_lock(&ev->lock);
    d->dropped = job->cancelled;
    pthread_mutex_unlock(&ev->lock);
    if (!e && d->res.ok && !d->dropped)
        e = accept_patch(ev, w->history, job, d, &why);
    free_vars(&vars);
    if (e) {
        d->err = e;
        snprintf(d->errmsg, sizeof d->errmsg, "%s",
                 why.text[0] ? why.text : pb_strerror(e));
    }
    return d;
}

/* Whether job may start on w now: its kind of worker, its room not busy
 * on the other worker, no earlier job of its room waiting (a room's jobs
 * run in the order they came, so its seqs follow that order). */
static bool may_start(const relay_evaluator *ev, const relay_worker *w,
                      const relay_job *job)
{
    if (job->heavy != w->heavy)
        return false;
    for (int i = 0; i < WORKERS; i++)
        if (ev->w[i].job && ev->w[i].job->room_ref == job->room_ref)
            return false;
    for (const relay_job *j = ev->jobs; j != job; j = j->next)
        if (j->room_ref == job->room_ref)
            return false;
    return true;
}

/* Whether q's author has a job waiting for, or on, the heavy worker: its
 * later ones follow it there (in order). Under the lock. */
static bool author_is_heavy(const relay_evaluator *ev, const relay_quota *q)
{
    for (const relay_job *j = ev->jobs; j; j = j->next)
        if (j->quota == q && j->heavy)
            return true;
    for (int i = 0; i < WORKERS; i++)
        if (ev->w[i].heavy && ev->w[i].job && ev->w[i].job->quota == q)
            return true;
    return false;
}

/* job ran past worker 0's budget: it goes first to the heavy worker, and
 * its author's waiting jobs with it. Under the lock. */
static void move_to_heavy(relay_evaluator *ev, relay_job *job)
{
    job->heavy = job->moved = true;
    job->next = ev->jobs;
    if (!ev->jobs)
        ev->jobs_tail = &job->next;
    ev->jobs = job;
    for (relay_job *j = job->next; j; j = j->next)
        if (j->quota == job->quota)
            j->heavy = true;
}

/* Worker 0 after a job: a server that was killed (a stopped job, a crash,
 * the limit) is replaced by the spare, and a spare is kept warming. */
static void keep_a_spare(relay_worker *w)
{
    if (w->spare && (!w->cc || cc_client_pid(w->cc) == 0)) {
        cc_client_free(w->cc);
        w->cc = w->spare;
        w->spare = NULL;
    }
    if (!w->spare) {
        pb_errmsg why;
        /* (NULL: tried again after the next job) */
        w->spare = cc_client_new(&w->ev->cc_desc, &why);
    }
}

/* The waiting job w serves next (its link), NULL if none may start. */
static relay_job **next_job(relay_evaluator *ev, const relay_worker *w)
{
    relay_job **best = NULL;
    for (relay_job **p = &ev->jobs; *p; p = &(*p)->next)
        if ((!best || (*p)->round < (*best)->round) && may_start(ev, w, *p))
            best = p;
    return best;
}

static bool has_work(const relay_evaluator *ev, const relay_worker *w)
{
    for (const relay_job *j = ev->jobs; j; j = j->next)
        if (j->heavy == w->heavy)
            return true;
    /* worker 0's job may yet move to the heavy worker */
    return w->heavy && ev->w[0].job;
}

static void *worker(void *arg)
{
    relay_worker *w = arg;
    relay_evaluator *ev = w->ev;
    if (w->heavy) /* this thread only (Linux): what it forks inherits it */
        (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), HEAVY_NICE);
    pthread_mutex_lock(&ev->lock);
    for (;;) {
        relay_job **p = next_job(ev, w);
        if (!p) {
            if (ev->stopping && !has_work(ev, w))
                break;
            pthread_cond_wait(&ev->cond, &ev->lock);
            continue;
        }
        relay_job *job = *p;
        *p = job->next;
        if (ev->jobs_tail == &job->next)
            ev->jobs_tail = p;
        if (job->round > ev->round)
            ev->round = job->round;
        w->job = job;
        /* (stopping, the heavy worker may have ended: the whole limit) */
        uint32_t budget = w->heavy || ev->stopping
                              ? 0
                              : relay_budget_ms(&ev->srv->cfg, w->took_us);
        pthread_mutex_unlock(&ev->lock);

        uint64_t t0 = relay_mono_us();
        relay_done *d = run_job(w, job, budget);

        pthread_mutex_lock(&ev->lock);
        w->job = NULL;
        uint64_t took = relay_mono_us() - t0;
        ev->job_us = ev->job_us ? (ev->job_us * 7 + took) / 8 : took;
        if (!d && job->cancelled) { /* not compiled again for no one */
            d = job->done;
            job->done = NULL;
            d->dropped = true;
        }
        if (!d) {
            move_to_heavy(ev, job);
        } else {
            if (!w->heavy)
                w->took_us = w->took_us ? (w->took_us * 7 + took) / 8 : took;
            if (ev->done_tail)
                ev->done_tail->next = d;
            else
                ev->done = d;
            ev->done_tail = d;
            job_free(job);
        }
        pthread_cond_broadcast(&ev->cond); /* its room is free, or moved */
        bool stopping = ev->stopping;
        pthread_mutex_unlock(&ev->lock);
        if (d)
            lws_cancel_service(ev->srv->ctx);
        if (!w->heavy && !stopping)
            keep_a_spare(w);
        pthread_mutex_lock(&ev->lock);
    }
    pthread_mutex_unlock(&ev->lock);
    return NULL;
}

relay_evaluator *relay_evaluator_start(relay_server *srv, pb_errmsg *why)
{
    relay_evaluator *ev = calloc(1, sizeof *ev);
    if (!ev) {
        snprintf(why->text, sizeof why->text, "out of memory");
        return NULL;
    }
    ev->srv = srv;
    ev->jobs_tail = &ev->jobs;
    pthread_mutex_init(&ev->lock, NULL);
    pthread_cond_init(&ev->cond, NULL);
    for (int i = 0; i < WORKERS; i++) {
        relay_worker *w = &ev->w[i];
        w->ev = ev;
        w->heavy = i > 0;
        if (!(w->history = relay_history_open_sqlite(srv->history_path, why)))
            goto fail;
    }
    for (size_t i = 0; srv->cfg.compiler_argv && srv->cfg.compiler_argv[i] &&
                       i + 1 < sizeof ev->argv / sizeof ev->argv[0];
         i++)
        if (!(ev->argv[i] = strdup(srv->cfg.compiler_argv[i]))) {
            snprintf(why->text, sizeof why->text, "out of memory");
            goto fail;
        }
    ev->cc_desc =
        (cc_client_desc){(const char *const *)ev->argv, CC_BACKEND_AUTO,
                         srv->cfg.compile_timeout_ms};
    /* the first compile server starts now, so that a broken command is
     * an error at start rather than at the first eval */
    if (!(ev->w[0].cc = cc_client_new(&ev->cc_desc, why)))
        goto fail;
    for (int i = 0; i < WORKERS; i++) {
        if (pthread_create(&ev->w[i].thread, NULL, worker, &ev->w[i])) {
            snprintf(why->text, sizeof why->text, "cannot start a thread");
            goto fail;
        }
        ev->w[i].running = true;
    }
    return ev;
fail:
    relay_evaluator_free(ev);
    return NULL;
}

void relay_evaluator_submit(relay_evaluator *ev, relay_job *job,
                            uint64_t *room_round)
{
    pthread_mutex_lock(&ev->lock);
    job->next = NULL;
    job->heavy = job->heavy || author_is_heavy(ev, job->quota);
    job->round = *room_round > ev->round ? *room_round : ev->round;
    *room_round = job->round + 1;
    *ev->jobs_tail = job;
    ev->jobs_tail = &job->next;
    pthread_cond_broadcast(&ev->cond);
    pthread_mutex_unlock(&ev->lock);
}

uint32_t relay_evaluator_cancel(relay_evaluator *ev, relay_handle author)
{
    uint32_t n = 0;
    pthread_mutex_lock(&ev->lock);
    for (relay_job **p = &ev->jobs; *p;) {
        relay_job *j = *p;
        if (j->author.index == author.index && j->author.gen == author.gen) {
            *p = j->next;
            if (ev->jobs_tail == &j->next)
                ev->jobs_tail = p;
            job_free(j);
            n++;
        } else {
            p = &j->next;
        }
    }
    for (int i = 0; i < WORKERS; i++) {
        relay_job *j = ev->w[i].job;
        if (j && j->author.index == author.index && j->author.gen == author.gen)
            j->cancelled = true;
    }
    pthread_mutex_unlock(&ev->lock);
    return n;
}

void relay_evaluator_heavy(relay_evaluator *ev, const relay_quota *q)
{
    pthread_mutex_lock(&ev->lock);
    for (relay_job *j = ev->jobs; j; j = j->next)
        if (j->quota == q)
            j->heavy = true;
    pthread_cond_broadcast(&ev->cond);
    pthread_mutex_unlock(&ev->lock);
}

uint64_t relay_evaluator_job_us(relay_evaluator *ev)
{
    pthread_mutex_lock(&ev->lock);
    uint64_t us = ev->job_us;
    pthread_mutex_unlock(&ev->lock);
    return us;
}

relay_done *relay_evaluator_take_done(relay_evaluator *ev)
{
    pthread_mutex_lock(&ev->lock);
    relay_done *d = ev->done;
    if (d) {
        ev->done = d->next;
        if (!ev->done)
            ev->done_tail = NULL;
        d->next = NULL;
    }
    pthread_mutex_unlock(&ev->lock);
    return d;
}

/* Finishes the jobs already queued (so every eval is answered and every
 * accepted patch recorded), then ends the threads. Their results stay
 * available to relay_evaluator_take_done. */
void relay_evaluator_stop(relay_evaluator *ev)
{
    if (!ev || ev->stopping)
        return;
    pthread_mutex_lock(&ev->lock);
    ev->stopping = true;
    pthread_cond_broadcast(&ev->cond);
    pthread_mutex_unlock(&ev->lock);
    for (int i = 0; i < WORKERS; i++)
        if (ev->w[i].running)
            pthread_join(ev->w[i].thread, NULL);
}

void relay_evaluator_free(relay_evaluator *ev)
{
    if (!ev)
        return;
    relay_evaluator_stop(ev);
    relay_done *d;
    while ((d = relay_evaluator_take_done(ev)))
        relay_done_free(d);
    while (ev->jobs) { /* left by a worker that could not start */
        relay_job *j = ev->jobs;
        ev->jobs = j->next;
        job_free(j);
    }
    for (int i = 0; i < WORKERS; i++) {
        cc_client_free(ev->w[i].cc);
        cc_client_free(ev->w[i].spare);
        relay_history_close(ev->w[i].history);
    }
    for (size_t i = 0; ev->argv[i]; i++)
        free(ev->argv[i]);
    pthread_mutex_destroy(&ev->lock);
    pthread_cond_destroy(&ev->cond);
    free(ev);
}

/* ---- back on the event loop ------------------------------------------- */

/* Delivers one finished eval: diagnostics to its author, an accepted patch
 * to the whole room. */
static void deliver(relay_server *srv, relay_done *d)
{
    relay_eval_settled(srv, d->room_ref, d->quota, 1, d->struck);
    relay_session *author = relay_session_get(srv, d->author);
    if (d->moved)
        lwsl_user("eval %llu in room %s: still compiling after %u ms, so "
                  "stopped and compiled again on the second worker\n",
                  (unsigned long long)d->req, d->room, d->budget_ms);
    if (d->dropped) {
        lwsl_user("eval %llu in room %s dropped: its author left\n",
                  (unsigned long long)d->req, d->room);
        return;
    }
    if (d->err) {
        lwsl_user("eval %llu in room %s failed: %s\n",
                  (unsigned long long)d->req, d->room, d->errmsg);
        if (author)
            relay_session_send_error(author, d->err, d->req, false, "%s",
                                     d->errmsg);
        return;
    }
    if (author) {
        /* the compile server's count came over a pipe: bound it here */
        pb_diag_item items[PB_MAX_DIAGS];
        uint32_t n = 0;
        for (uint32_t i = 0; i < d->res.n_diags && n < PB_MAX_DIAGS; i++) {
            const cc_diag *cd = &d->res.diags[i];
            /* and its words too: at most the protocol's length, cut
             * where they stop being UTF-8 */
            size_t len = cd->message ? strlen(cd->message) : 0;
            if (len > PB_MAX_MESSAGE_BYTES)
                len = PB_MAX_MESSAGE_BYTES;
            len = pb_utf8_prefix(cd->message, len);
            items[n++] = (pb_diag_item){
                cd->line,
                cd->col,
                0,
                0,
                cd->severity,
                (pb_str){cd->message ? cd->message : "", (uint32_t)len}};
        }
        pb_frame f = {.type = PB_T_DIAG};
        f.diag.req = d->req;
        f.diag.ok = d->patch != NULL;
        f.diag.seq = d->seq;
        f.diag.expr = d->patch && d->res.is_expr;
        f.diag.items = items;
        f.diag.n_items = n;
        /* whatever happens, the author is answered */
        pb_errmsg why;
        relay_msg *m = relay_msg_encode(&f, &why);
        if (m)
            relay_session_send(author, m);
        else
            relay_session_send_error(author, PB_ERR_INTERNAL, d->req, false,
                                     "the diagnostics of eval %llu could not "
                                     "be sent: %s",
                                     (unsigned long long)d->req, why.text);
        relay_msg_unref(m);
    }
    if (!d->patch)
        return;
    uint64_t now = relay_now_us();
    relay_room *room = relay_room_get(srv, d->room);
    if (room) {
        relay_room_publish(room, d->patch, d->seq, d->hash, d->created_us,
                           d->apply_us, now);
        relay_buffers_announce_eval(room, &d->range, d->seq);
    }
    char vars[256] = "";
    size_t n = 0;
    for (uint32_t i = 0; i < d->res.n_defs && n < sizeof vars; i++)
        n += (size_t)snprintf(vars + n, sizeof vars - n, "%s%s", i ? ", " : "",
                              d->res.defs[i].name);
    lwsl_user("patch %s#%llu by %s: %s (%zu bytes, compiled in %.1f ms, "
              "sent %.1f ms after signing, applies in %.1f ms)\n",
              d->room, (unsigned long long)d->seq,
              author ? author->name : "(gone)", vars, d->res.module_len,
              d->res.total_us / 1000.0, (double)(now - d->created_us) / 1000.0,
              (double)((int64_t)(d->apply_us - now)) / 1000.0);
}

void relay_deliver_finished(relay_server *srv)
{
    relay_done *d;
    while (srv->eval && (d = relay_evaluator_take_done(srv->eval))) {
        deliver(srv, d);
        relay_done_free(d);
    }
}
