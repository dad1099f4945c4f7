/* ops.c — the nREPL ops: sessions (clone, close, ls-sessions), describe,
 * eval and load-file (eval.c does the work), interrupt, and the editor
 * help a room can give from its history (index.c): completions and
 * complete, lookup, info and eldoc. Replies follow nREPL 1.0 and
 * cider-nrepl's shapes; an op we do not have is status unknown-op, as
 * nREPL answers it, so a client can tell. */
#include "internal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static const char *const OPS[] = {
    "clone",     "close",       "describe",    "eval",     "load-file",
    "interrupt", "ls-sessions", "completions", "complete", "lookup",
    "info",      "eldoc",       NULL};

/* ---- sessions ------------------------------------------------------------ */

nrepl_session *ops_session(nrepl_server *s, const char *id)
{
    for (nrepl_session *x = s->sessions; x; x = x->next)
        if (!strcmp(x->id, id))
            return x;
    return NULL;
}

static nrepl_session *session_new(nrepl_server *s, const nrepl_session *from)
{
    nrepl_session *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    uint8_t r[16];
    randombytes_buf(r, sizeof r);
    r[6] = (uint8_t)((r[6] & 0x0f) | 0x40); /* a version 4 UUID */
    r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
    char hex[33];
    pb_hex(r, sizeof r, hex);
    snprintf(x->id, sizeof x->id, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8,
             hex + 12, hex + 16, hex + 20);
    snprintf(x->ns, sizeof x->ns, "%s", from ? from->ns : "user");
    x->next = s->sessions;
    s->sessions = x;
    return x;
}

static void session_close(nrepl_server *s, nrepl_session *x)
{
    eval_drop_session(s, x);
    for (nrepl_session **p = &s->sessions; *p; p = &(*p)->next)
        if (*p == x) {
            *p = x->next;
            break;
        }
    free(x);
}

void ops_free_sessions(nrepl_server *s)
{
    while (s->sessions)
        session_close(s, s->sessions);
}

/* ---- helpers ---------------------------------------------------------------
 */

static ben *status_list(ben_arena *a, const char *const *words)
{
    ben *l = ben_new_list(a);
    for (; *words; words++)
        ben_push(a, l, ben_new_cstr(a, *words));
    return l;
}

/* An integer parameter, sent as an integer or as digits (clients differ). */
static uint32_t param_u32(const ben *v)
{
    if (v && v->kind == BEN_INT && v->i > 0 && v->i < (int64_t)UINT32_MAX)
        return (uint32_t)v->i;
    if (v && v->kind == BEN_STR && v->len && v->len < 10) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < v->len; i++) {
            if (v->s[i] < '0' || v->s[i] > '9')
                return 0;
            n = n * 10 + (uint32_t)(v->s[i] - '0');
        }
        return n;
    }
    return 0;
}

/* The symbol a lookup asks for, without its namespace (user/ggg → ggg). */
static const char *bare(const char *sym)
{
    const char *slash = strrchr(sym, '/');
    return slash && slash[1] ? slash + 1 : sym;
}

/* ---- describe
 * ---------------------------------------------------------------- */

static ben *version(ben_arena *a, int major, int minor, int inc,
                    const char *text)
{
    ben *v = ben_new_dict(a);
    ben_put(a, v, "major", ben_new_int(a, major));
    ben_put(a, v, "minor", ben_new_int(a, minor));
    ben_put(a, v, "incremental", ben_new_int(a, inc));
    ben_put_cstr(a, v, "version-string", text);
    return v;
}

static void describe(nrepl_server *s, ben_arena *a, ben *r,
                     const nrepl_session *x)
{
    ben *ops = ben_new_dict(a);
    for (const char *const *op = OPS; *op; op++)
        ben_put(a, ops, *op, ben_new_dict(a));
    ben_put(a, r, "ops", ops);
    ben *versions = ben_new_dict(a);
    ben_put(a, versions, "nrepl", version(a, 1, 0, 0, NREPL_VERSION));
    ben_put(a, versions, "patchbay", version(a, 0, 1, 0, PB_VERSION_STRING));
    ben_put(a, r, "versions", versions);
    ben *aux = ben_new_dict(a);
    ben_put_cstr(a, aux, "current-ns", x ? x->ns : "user");
    ben_put_cstr(a, aux, "patchbay/room", s->room_name);
    ben_put(a, r, "aux", aux);
}

/* ---- completions and information --------------------------------------------
 */

static void completions(nrepl_server *s, ben_arena *a, ben *r,
                        const char *prefix, const char *ns)
{
    ben *list = ben_new_list(a);
    size_t n = strlen(prefix);
    for (uint32_t i = 0; i < s->index.n; i++) {
        const nrepl_var *v = &s->index.vars[i];
        const char *name = v->lname[0] ? v->lname : v->name;
        if (strncmp(name, prefix, n))
            continue;
        bool is_seen = false; /* the arities of one Lisp name */
        for (uint32_t k = 0; k < i && !is_seen; k++)
            is_seen = !strcmp(s->index.vars[k].lname[0] ? s->index.vars[k].lname
                                                        : s->index.vars[k].name,
                              name);
        if (is_seen)
            continue;
        ben *c = ben_new_dict(a);
        ben_put_cstr(a, c, "candidate", name);
        /* a var of no arguments is a value (def) */
        ben_put_cstr(a, c, "type", strlen(v->sig) > 1 ? "function" : "var");
        ben_put_cstr(a, c, "ns", ns);
        ben_push(a, list, c);
    }
    ben_put(a, r, "completions", list);
}

/* What one var is, in the keys of nREPL's lookup and cider-nrepl's info. */
static void describe_var(ben_arena *a, ben *into, const nrepl_var *v,
                         const char *ns)
{
    char doc[1024];
    snprintf(doc, sizeof doc, "%s%sdefined by %s in patch %llu (%s, %s)",
             v->doc ? v->doc : "", v->doc && v->doc[0] ? "\n\n" : "",
             v->author[0] ? v->author : "?", (unsigned long long)v->seq,
             v->lang, v->sig);
    ben_put_cstr(a, into, "name", v->lname[0] ? v->lname : v->name);
    ben_put_cstr(a, into, "ns", ns);
    ben_put_cstr(a, into, "arglists-str", v->arglists ? v->arglists : "");
    ben_put_cstr(a, into, "arglists", v->arglists ? v->arglists : "");
    ben_put_cstr(a, into, "doc", doc);
    char file[96];
    snprintf(file, sizeof file, "patch-%llu.%s", (unsigned long long)v->seq,
             !strcmp(v->lang, "lisp") ? "cljc" : "c");
    ben_put_cstr(a, into, "file", file);
    ben_put(a, into, "line", ben_new_int(a, v->line));
    ben_put_cstr(a, into, "patchbay/author", v->author);
    ben_put(a, into, "patchbay/seq", ben_new_int(a, (int64_t)v->seq));
    ben_put_cstr(a, into, "patchbay/c-name", v->name);
    ben_put_cstr(a, into, "patchbay/signature", v->sig);
    ben_put_cstr(a, into, "patchbay/source", v->source ? v->source : "");
}

/* eldoc: each arglist as a list of parameter names: "([a] [a b])" gives
 * [["a"] ["a" "b"]]. */
static ben *eldoc_lists(ben_arena *a, const char *arglists)
{
    ben *all = ben_new_list(a);
    for (const char *p = arglists; p && *p; p++) {
        if (*p != '[')
            continue;
        ben *one = ben_new_list(a);
        const char *e = strchr(p, ']');
        if (!e)
            break;
        for (const char *q = p + 1; q < e;) {
            while (q < e && strchr(" ,\t\n", *q))
                q++;
            const char *w = q;
            while (q < e && !strchr(" ,\t\n", *q))
                q++;
            if (q > w)
                ben_push(a, one, ben_new_str(a, w, (size_t)(q - w)));
        }
        ben_push(a, all, one);
        p = e;
    }
    return all;
}

/* ---- the dispatch
 * ------------------------------------------------------------- */

void ops_handle(nrepl_server *s, nrepl_handle h, ben_arena *a, const ben *msg)
{
    const char *op = ben_cstr(a, ben_get(msg, "op"));
    const char *id = ben_cstr(a, ben_get(msg, "id"));
    const char *sid = ben_cstr(a, ben_get(msg, "session"));
    nrepl_session *x = sid[0] ? ops_session(s, sid) : NULL;
    ben *r = ben_new_dict(a);
    static const char *const done[] = {"done", NULL};
    if (sid[0] && !x) {
        static const char *const st[] = {"error", "unknown-session", "done",
                                         NULL};
        ben_put_cstr(a, r, "err", "patchbay nrepl: no such session\n");
        ben_put(a, r, "status", status_list(a, st));
        nrepl_reply(s, h, id, sid, a, r);
        return;
    }
    const char *ns = ben_is_str(ben_get(msg, "ns"))
                         ? ben_cstr(a, ben_get(msg, "ns"))
                     : x ? x->ns
                         : "user";
    if (!strcmp(op, "clone")) {
        nrepl_session *n = session_new(s, x);
        if (!n) {
            static const char *const st[] = {"error", "done", NULL};
            ben_put(a, r, "status", status_list(a, st));
        } else {
            ben_put_cstr(a, r, "new-session", n->id);
            ben_put(a, r, "status", status_list(a, done));
        }
    } else if (!strcmp(op, "close")) {
        static const char *const st[] = {"session-closed", "done", NULL};
        if (x)
            session_close(s, x);
        ben_put(a, r, "status", status_list(a, st));
    } else if (!strcmp(op, "describe")) {
        describe(s, a, r, x);
        ben_put(a, r, "status", status_list(a, done));
    } else if (!strcmp(op, "ls-sessions")) {
        ben *list = ben_new_list(a);
        for (nrepl_session *y = s->sessions; y; y = y->next)
            ben_push(a, list, ben_new_cstr(a, y->id));
        ben_put(a, r, "sessions", list);
        ben_put(a, r, "status", status_list(a, done));
    } else if (!strcmp(op, "eval") || !strcmp(op, "load-file")) {
        bool is_load = !strcmp(op, "load-file");
        const ben *code = ben_get(msg, is_load ? "file" : "code");
        if (!ben_is_str(code)) {
            static const char *const st[] = {"error", "no-code", "done", NULL};
            ben_put_cstr(a, r, "err",
                         is_load ? "patchbay nrepl: load-file needs file (the "
                                   "file's contents)\n"
                                 : "patchbay nrepl: eval needs code\n");
            ben_put(a, r, "status", status_list(a, st));
        } else {
            const char *file =
                ben_cstr(a, ben_get(msg, is_load ? "file-path" : "file"));
            if (!file[0] && is_load)
                file = ben_cstr(a, ben_get(msg, "file-name"));
            if (ben_is_str(ben_get(msg, "ns")) && x)
                snprintf(x->ns, sizeof x->ns, "%s", ns);
            eval_submit(s, h, x, id, ben_cstr(a, code), file,
                        is_load ? 1 : param_u32(ben_get(msg, "line")),
                        is_load ? 1 : param_u32(ben_get(msg, "column")));
            return; /* eval.c replies */
        }
    } else if (!strcmp(op, "interrupt")) {
        const char *which = ben_cstr(a, ben_get(msg, "interrupt-id"));
        static const char *const idle[] = {"session-idle", "done", NULL};
        ben_put(a, r, "status",
                status_list(a, x && eval_interrupt(s, x, which) ? done : idle));
    } else if (!strcmp(op, "completions") || !strcmp(op, "complete")) {
        const ben *p = ben_get(msg, "prefix");
        if (!p)
            p = ben_get(msg, "symbol"); /* cider-nrepl's older name */
        completions(s, a, r, ben_cstr(a, p), ns);
        ben_put(a, r, "status", status_list(a, done));
    } else if (!strcmp(op, "lookup") || !strcmp(op, "info") ||
               !strcmp(op, "eldoc")) {
        const ben *sym = ben_get(msg, "sym");
        if (!sym)
            sym = ben_get(msg, "symbol");
        const nrepl_var *v = index_find(&s->index, bare(ben_cstr(a, sym)));
        if (!strcmp(op, "lookup")) { /* nREPL 1.0: info is a map */
            ben *info = ben_new_dict(a);
            if (v)
                describe_var(a, info, v, ns);
            ben_put(a, r, "info", info);
            ben_put(a, r, "status", status_list(a, done));
        } else if (!v) {
            static const char *const no_info[] = {"no-info", "done", NULL};
            static const char *const no_eldoc[] = {"no-eldoc", "done", NULL};
            ben_put(a, r, "status",
                    status_list(a, !strcmp(op, "info") ? no_info : no_eldoc));
        } else if (!strcmp(op, "info")) {
            describe_var(a, r, v, ns);
            ben_put(a, r, "status", status_list(a, done));
        } else {
            ben_put(a, r, "eldoc", eldoc_lists(a, v->arglists));
            ben_put_cstr(a, r, "name", v->lname[0] ? v->lname : v->name);
            ben_put_cstr(a, r, "ns", ns);
            ben_put_cstr(a, r, "type",
                         strlen(v->sig) > 1 ? "function" : "variable");
            ben_put_cstr(a, r, "docstring", v->doc ? v->doc : "");
            ben_put(a, r, "status", status_list(a, done));
        }
    } else {
        static const char *const st[] = {"error", "unknown-op", "done", NULL};
        ben_put_cstr(a, r, "op", op);
        ben_put(a, r, "status", status_list(a, st));
    }
    nrepl_reply(s, h, id, sid, a, r);
}
