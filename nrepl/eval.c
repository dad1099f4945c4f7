/* eval.c — eval and load-file: the code's top-level forms become the
 * room's evals, one unit at a time, and the relay's and runtimes' answers
 * become nREPL replies.
 *
 * A run of definitions is one patch (its value: the vars, #'user/ggg), an
 * expression one more (docs/PROTOCOL.md § Expressions: its value comes
 * from every runtime of the room; the reply's value is the first, all of
 * them are under patchbay/values, and runtimes that disagree or trap are
 * said on err). ns and in-ns set the session's namespace; editor tooling
 * forms (require, clojure.core/…) are nil without going to the room. The
 * first error ends the eval: a compile error is err with the file's
 * line:col (each unit is sent blanked into its place, so the relay's
 * positions are the file's) and status eval-error, as nREPL reports
 * exceptions. A session runs one eval at a time; more wait their turn. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_FORMS       1024u
#define DIAG_TIMEOUT_MS 30000u /* the relay compiles within its own limit */

struct nrepl_eval {
    nrepl_eval *next; /* in s->evals */
    nrepl_session *session;
    nrepl_handle client;
    char id[128], sid[40];
    char file[256];
    uint32_t line, col;
    char *code;
    size_t len;
    pb_lang lang;
    nrepl_form *forms;
    uint32_t n_forms, next_form;
    bool is_running;
    bool is_stale;         /* sent on a connection that has ended */
    uint64_t resend_at_ms; /* the relay's rate limit refused it: again then */
    uint32_t resends;
    /* the unit in flight */
    bool is_waiting, is_expr;
    bool awaits_patch; /* definitions accepted: their patch is not indexed */
    uint32_t unit_first, unit_count;
    uint64_t req, seq, deadline_ms;
    uint32_t n_expected;
    pbc_answers answers;
};

/* ---- replies ------------------------------------------------------------- */

static const char *ns_of(const nrepl_eval *e)
{
    return e->session ? e->session->ns : "user";
}

static void reply_kv(nrepl_server *s, nrepl_eval *e, const char *key,
                     const char *value)
{
    ben_arena a = {0};
    ben *r = ben_new_dict(&a);
    ben_put_cstr(&a, r, key, value);
    if (!strcmp(key, "value"))
        ben_put_cstr(&a, r, "ns", ns_of(e));
    nrepl_reply(s, e->client, e->id, e->sid, &a, r);
    ben_arena_free(&a);
}

/* An error as nREPL reports one: the text on err, then ex with status
 * eval-error (kind names it: patchbay.CompileError, patchbay.Trap, …). */
static void reply_error(nrepl_server *s, nrepl_eval *e, const char *kind,
                        const char *text)
{
    reply_kv(s, e, "err", text);
    ben_arena a = {0};
    ben *r = ben_new_dict(&a), *st = ben_new_list(&a);
    ben_push(&a, st, ben_new_cstr(&a, "eval-error"));
    ben_put(&a, r, "status", st);
    ben_put_cstr(&a, r, "ex", kind);
    ben_put_cstr(&a, r, "root-ex", kind);
    nrepl_reply(s, e->client, e->id, e->sid, &a, r);
    ben_arena_free(&a);
}

/* ---- the list of evals ------------------------------------------------------
 */

static void eval_free(nrepl_server *s, nrepl_eval *e)
{
    for (nrepl_eval **p = &s->evals; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            break;
        }
    if (e->session && e->session->running == e)
        e->session->running = NULL;
    pbc_answers_free(&e->answers);
    free(e->forms);
    free(e->code);
    free(e);
}

static void advance(nrepl_server *s, nrepl_eval *e);

/* The eval is over (done sent): the session's next one starts. */
static void finish(nrepl_server *s, nrepl_eval *e)
{
    static const char *const done[] = {"done", NULL};
    nrepl_reply_status(s, e->client, e->id, e->sid, done);
    nrepl_session *x = e->session;
    eval_free(s, e);
    if (!x)
        return;
    for (nrepl_eval *n = s->evals; n; n = n->next)
        if (n->session == x && !n->is_running) {
            n->is_running = true;
            x->running = n;
            advance(s, n);
            return;
        }
}

static void fail(nrepl_server *s, nrepl_eval *e, const char *kind,
                 const char *text)
{
    reply_error(s, e, kind, text);
    finish(s, e);
}

/* ---- sending a unit
 * ------------------------------------------------------------ */

/* The unit's source: its forms where they are in the file, everything else
 * blank (newlines kept), after the lines and columns that come before the
 * code in its file, so that the relay's line:col are the file's. */
static char *unit_source(const nrepl_eval *e, size_t *len)
{
    uint32_t pad_lines = e->line > 1 ? e->line - 1 : 0;
    uint32_t pad_cols = e->col > 1 ? e->col - 1 : 0;
    char *src = malloc(pad_lines + pad_cols + e->len + 1);
    if (!src)
        return NULL;
    size_t n = 0;
    for (uint32_t i = 0; i < pad_lines; i++)
        src[n++] = '\n';
    for (uint32_t i = 0; i < pad_cols; i++)
        src[n++] = ' ';
    const nrepl_form *first = &e->forms[e->unit_first];
    const nrepl_form *last = &e->forms[e->unit_first + e->unit_count - 1];
    for (size_t i = 0; i < e->len; i++) {
        bool keep = e->lang == PB_LANG_C || (i >= first->from && i < last->to);
        /* between forms of the unit: comments and spaces, kept too */
        src[n++] = keep || e->code[i] == '\n' ? e->code[i] : ' ';
    }
    while (n > 0 && (src[n - 1] == ' ' || src[n - 1] == '\n'))
        n--;
    src[n++] = '\n';
    *len = n;
    return src;
}

static void send_unit(nrepl_server *s, nrepl_eval *e)
{
    size_t len = 0;
    char *src = unit_source(e, &len);
    if (!src || len > PB_MAX_SOURCE_BYTES) {
        free(src);
        fail(s, e, "patchbay.TooBig",
             "patchbay nrepl: the code is over the relay's source limit\n");
        return;
    }
    pb_frame f = {.type = PB_T_EVAL};
    e->req = ++s->next_req;
    f.eval.req = e->req;
    f.eval.lang = e->lang;
    f.eval.name = pb_cstr(e->file[0] ? e->file : "nrepl.cljc");
    f.eval.source = (pb_str){src, (uint32_t)len};
    f.eval.expr = e->is_expr;
    pb_errmsg why = {{0}};
    bool is_sent = room_send(s->room, &f, &why);
    free(src);
    if (!is_sent) {
        char text[320];
        snprintf(text, sizeof text, "patchbay nrepl: %s\n", why.text);
        fail(s, e, "patchbay.RelayError", text);
        return;
    }
    e->is_waiting = true;
    e->seq = 0;
    e->deadline_ms = nrepl_now_ms() + DIAG_TIMEOUT_MS;
}

/* Takes the next forms: tooling and ns forms are answered here; a run of
 * definitions or one expression goes to the room. */
static void advance(nrepl_server *s, nrepl_eval *e)
{
    while (e->next_form < e->n_forms) {
        const nrepl_form *f = &e->forms[e->next_form];
        if (f->kind == FORM_NS || f->kind == FORM_IGNORED) {
            if (f->kind == FORM_NS && e->session && f->name[0])
                snprintf(e->session->ns, sizeof e->session->ns, "%s", f->name);
            e->next_form++;
            reply_kv(s, e, "value", "nil");
            continue;
        }
        e->unit_first = e->next_form;
        e->unit_count = 1;
        e->is_expr = f->kind == FORM_EXPRESSION;
        while (!e->is_expr && e->unit_first + e->unit_count < e->n_forms &&
               e->forms[e->unit_first + e->unit_count].kind == FORM_DEFINITION)
            e->unit_count++;
        e->next_form += e->unit_count;
        send_unit(s, e);
        return;
    }
    finish(s, e);
}

/* ---- answers
 * ------------------------------------------------------------------- */

/* The expression's answers as replies: its output, its value, and what
 * the other runtimes said when it is not the same everywhere. */
static void expression_done(nrepl_server *s, nrepl_eval *e)
{
    const pbc_answers *a = &e->answers;
    e->is_waiting = false;
    if (!a->n) {
        char text[320];
        snprintf(text, sizeof text,
                 "patchbay nrepl: no runtime of room %s ran it (%s)\n",
                 s->room_name,
                 e->n_expected ? "none answered in time"
                               : "none is in the room: open a runtime link");
        fail(s, e, "patchbay.NoRuntime", text);
        return;
    }
    for (uint32_t i = 0; i < a->n; i++) { /* each output once */
        bool is_seen = false;
        for (uint32_t k = 0; k < i && !is_seen; k++)
            is_seen = !strcmp(a->items[k].out, a->items[i].out);
        if (!is_seen && a->items[i].out[0])
            reply_kv(s, e, "out", a->items[i].out);
    }
    char values[4096], failures[4096], text[8400];
    uint32_t n_values = pbc_answers_describe(a, true, values, sizeof values);
    uint32_t n_failures =
        pbc_answers_describe(a, false, failures, sizeof failures);
    if (!n_values) { /* it failed everywhere */
        snprintf(text, sizeof text, "%s\n", failures);
        fail(s, e, "patchbay.Trap", text);
        return;
    }
    if (n_values + n_failures > 1) { /* 58 on 2 runtimes, 59 on 8 */
        snprintf(text, sizeof text, "; the runtimes differ: %s%s%s\n", values,
                 n_failures ? "; failed: " : "", n_failures ? failures : "");
        reply_kv(s, e, "err", text);
    }
    ben_arena ar = {0};
    ben *r = ben_new_dict(&ar), *all = ben_new_list(&ar);
    const pbc_answer *value = NULL;
    for (uint32_t i = 0; i < a->n; i++) {
        const pbc_answer *x = &a->items[i];
        if (x->ok && !value)
            value = x;
        ben *one = ben_new_dict(&ar);
        const char *name = pbc_runtimes_name(&s->runtimes, x->runtime_id);
        char id[32];
        snprintf(id, sizeof id, "runtime %llu",
                 (unsigned long long)x->runtime_id);
        ben_put_cstr(&ar, one, "runtime", name[0] ? name : id);
        ben_put_cstr(&ar, one, x->ok ? "value" : "trap", x->text);
        ben_push(&ar, all, one);
    }
    ben_put_cstr(&ar, r, "value", value->text);
    ben_put_cstr(&ar, r, "ns", ns_of(e));
    ben_put(&ar, r, "patchbay/values", all);
    nrepl_reply(s, e->client, e->id, e->sid, &ar, r);
    ben_arena_free(&ar);
    pbc_answers_free(&e->answers);
    advance(s, e);
}

static void on_ack(nrepl_server *s, nrepl_eval *e, const pb_ack *ack)
{
    if (pbc_answers_add(&e->answers, ack) && e->answers.n >= e->n_expected)
        expression_done(s, e);
}

/* Definitions accepted: their values are the vars. */
static void definitions_done(nrepl_server *s, nrepl_eval *e)
{
    e->is_waiting = e->awaits_patch = false;
    for (uint32_t i = 0; i < e->unit_count; i++) {
        char var[320];
        snprintf(var, sizeof var, "#'%s/%s", ns_of(e),
                 e->forms[e->unit_first + i].name);
        reply_kv(s, e, "value", var);
    }
    advance(s, e);
}

static void on_diag(nrepl_server *s, nrepl_eval *e, const pb_diag *d)
{
    if (!d->ok) {
        char text[8192];
        size_t n = 0;
        for (uint32_t i = 0; i < d->n_items && n < sizeof text - 1; i++)
            n += (size_t)snprintf(
                text + n, sizeof text - n, "%s:%u:%u: %s: %.*s\n",
                e->file[0] ? e->file : "nrepl", d->items[i].line,
                d->items[i].col, pb_severity_name(d->items[i].severity),
                (int)d->items[i].message.len, d->items[i].message.ptr);
        if (!n)
            snprintf(text, sizeof text, "the relay refused the code\n");
        fail(s, e, "patchbay.CompileError", text);
        return;
    }
    e->seq = d->seq;
    if (!e->is_expr) {
        /* the patch comes right after the diag: once it is in the index,
         * what the editor asks next (completions, info) knows the vars */
        e->awaits_patch = s->index.seq < e->seq;
        e->deadline_ms = nrepl_now_ms() + DIAG_TIMEOUT_MS;
        if (!e->awaits_patch)
            definitions_done(s, e);
        return;
    }
    /* the runtimes present now run it (one that joins later does not) */
    e->n_expected = s->runtimes.n;
    e->deadline_ms = nrepl_now_ms() + s->d.eval_timeout_ms;
    if (!e->n_expected)
        expression_done(s, e);
}

/* ---- the entry points
 * ------------------------------------------------------------ */

void eval_submit(nrepl_server *s, nrepl_handle c, nrepl_session *session,
                 const char *id, const char *code, const char *file,
                 uint32_t line, uint32_t col)
{
    nrepl_eval *e = calloc(1, sizeof *e);
    size_t len = strlen(code);
    if (e)
        e->code = malloc(len + 1);
    if (e)
        e->forms = calloc(MAX_FORMS, sizeof *e->forms);
    if (!e || !e->code || !e->forms) {
        if (e) {
            free(e->code);
            free(e->forms);
            free(e);
        }
        static const char *const st[] = {"error", "done", NULL};
        nrepl_reply_status(s, c, id, session ? session->id : "", st);
        return;
    }
    memcpy(e->code, code, len + 1);
    e->len = len;
    e->session = session;
    e->client = c;
    snprintf(e->id, sizeof e->id, "%s", id);
    snprintf(e->sid, sizeof e->sid, "%s", session ? session->id : "");
    snprintf(e->file, sizeof e->file, "%s", file);
    e->line = line ? line : 1;
    e->col = col ? col : 1;
    const char *dot = strrchr(e->file, '.');
    e->lang = dot && !strcmp(dot, ".c") ? PB_LANG_C : PB_LANG_LISP;
    nrepl_eval **tail = &s->evals; /* in order: a session's queue */
    while (*tail)
        tail = &(*tail)->next;
    *tail = e;
    if (e->lang == PB_LANG_C) { /* a C file: its definitions, as one */
        e->forms[0] = (nrepl_form){0, (uint32_t)len, 1, 1, FORM_DEFINITION, ""};
        e->n_forms = 1;
    } else {
        char err[200];
        int n = forms_split(code, len, e->forms, MAX_FORMS, err, sizeof err);
        if (n < 0) {
            char text[320];
            /* the reader's position is in the code; say the file's */
            unsigned l = 1, k = 1;
            const char *msg = err;
            if (sscanf(err, "%u:%u: ", &l, &k) == 2)
                msg = strstr(err, ": ") + 2;
            snprintf(text, sizeof text, "%s:%u:%u: error: %s\n",
                     e->file[0] ? e->file : "nrepl", l + e->line - 1,
                     l == 1 ? k + e->col - 1 : k, msg);
            fail(s, e, "patchbay.ReaderError", text);
            return;
        }
        e->n_forms = (uint32_t)n;
    }
    if (session && session->running)
        return; /* its turn comes in finish() */
    e->is_running = true;
    if (session)
        session->running = e;
    advance(s, e);
}

void eval_on_frame(nrepl_server *s, const pb_frame *f)
{
    for (nrepl_eval *e = s->evals; e; e = e->next) {
        if (!e->is_waiting)
            continue;
        if (e->awaits_patch && s->index.seq >= e->seq) {
            definitions_done(s, e); /* (on_room_frame indexed it) */
            return;
        }
        if (f->type == PB_T_DIAG && !e->seq && f->diag.req == e->req) {
            on_diag(s, e, &f->diag);
            return;
        }
        if (f->type == PB_T_ERROR && !e->seq && f->error.req == e->req &&
            f->error.code == PB_ERR_RATE_LIMITED && e->resends < 200) {
            /* the relay limits evals per token name (docs/SECURITY.md
             * § Hostile input): many clients at once wait their turn */
            e->is_waiting = false;
            e->resends++;
            e->resend_at_ms = nrepl_now_ms() + 120;
            return;
        }
        if (f->type == PB_T_ERROR && !e->seq && f->error.req == e->req) {
            char text[PB_MAX_MESSAGE_BYTES + 64];
            snprintf(text, sizeof text, "patchbay nrepl: the relay: %.*s\n",
                     (int)f->error.message.len, f->error.message.ptr);
            fail(s, e, "patchbay.RelayError", text);
            return;
        }
        if (f->type == PB_T_ACK && e->is_expr && e->seq &&
            f->ack.seq == e->seq) {
            on_ack(s, e, &f->ack);
            return;
        }
    }
}

void eval_on_room_down(nrepl_server *s, const char *why)
{
    for (nrepl_eval *e = s->evals; e; e = e->next)
        e->is_stale = e->is_waiting;
    char text[400];
    snprintf(text, sizeof text,
             "patchbay nrepl: the relay connection ended (%s); evaluate "
             "again once it is back\n",
             why);
    for (bool again = true; again;) {
        again = false;
        for (nrepl_eval *e = s->evals; e; e = e->next)
            if (e->is_stale) { /* finish() changes the list: look again */
                fail(s, e, "patchbay.RelayError", text);
                again = true;
                break;
            }
    }
}

void eval_tick(nrepl_server *s, uint64_t now_ms)
{
    for (nrepl_eval *e = s->evals; e; e = e->next)
        if (e->resend_at_ms && now_ms >= e->resend_at_ms) {
            e->resend_at_ms = 0;
            send_unit(s, e);
            return; /* send_unit may end the eval: the list changed */
        }
    for (nrepl_eval *e = s->evals; e; e = e->next) {
        if (!e->is_waiting || now_ms < e->deadline_ms)
            continue;
        if (!e->seq)
            fail(s, e, "patchbay.RelayError",
                 "patchbay nrepl: no answer from the relay in 30 s\n");
        else if (e->awaits_patch)
            definitions_done(s, e); /* accepted; the index catches up */
        else
            expression_done(s, e); /* with the runtimes that answered */
        return; /* the list changed; the next tick sees the rest */
    }
}

bool eval_interrupt(nrepl_server *s, nrepl_session *session, const char *id)
{
    nrepl_eval *e = session->running;
    if (!e || (id[0] && strcmp(e->id, id)))
        return false;
    static const char *const st[] = {"interrupted", NULL};
    nrepl_reply_status(s, e->client, e->id, e->sid, st);
    finish(s, e); /* runtimes may still run it: nothing waits for them */
    return true;
}

void eval_drop_session(nrepl_server *s, nrepl_session *session)
{
    for (nrepl_eval *e = s->evals, *next; e; e = next) {
        next = e->next;
        if (e->session == session)
            eval_free(s, e);
    }
    session->running = NULL;
}
