/* session.c — one runtime's membership of a room, driven by the JS host
 * (runtime/host.js) with the raw bytes of every frame it receives.
 *
 * For each patch (live, or an item of a catch-up batch): verify it against
 * the relay key pinned at rt_session_open and the chain head
 * (docs/PROTOCOL.md § Verification, § Chain) — nothing that fails is ever
 * written to the file system or loaded —, then prepare it (load the module
 * under a new file name and stage its vars, docs/PATCH_ABI.md) and queue
 * it. rt_session_tick commits queued patches in seq order once their
 * apply time has come on the room clock; rt_session_trap takes a patch
 * back when its code trapped. The host owns the socket, the clock and
 * every call into patch code (a trap is a JS exception that unwinds
 * through the wasm stack); runtime/README.md describes the split.
 *
 * The chain head moves when a patch verifies, even if it then fails to
 * prepare: the patch is authentic and in the room's history, so the next
 * one links to it; only its vars are missing here (and reported).
 *
 * Generation reload: loaded modules are never freed, so the host moves to
 * a fresh instance now and then. For that the session keeps the frames of
 * the patches that still define a current var (kept), and hands them, the
 * chain head and the PB_STATE cells to the new instance, which verifies
 * each patch again and loads only those (rt_session_generation,
 * rt_session_adopt, rt_session_reload_patch). */
#include "internal.h"

#include <emscripten.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct rt_pending { /* prepared, waiting for its apply time */
    uint64_t seq;
    uint64_t apply_us;
    rt_ack_info info;
    bool is_quiet; /* from a catch-up batch: no per-patch ack */
    bool is_expr;  /* an expression: runs once, defines no var (expr.c) */
    rt_staged *staged;
    struct rt_pending *next;
} rt_pending;

typedef struct rt_kept { /* a loaded patch, as a frame, for a reload */
    uint64_t seq;
    uint32_t len;
    struct rt_kept *next;
    uint8_t frame[];
} rt_kept;

static struct {
    bool is_open;
    rt_kept *kept; /* newest first */
    uint32_t commits_since_prune;
    uint8_t key[PB_PUBLICKEY_BYTES];
    pb_chain chain; /* verified head */
    uint64_t committed_seq;
    uint64_t loading_seq; /* set while a module's constructors run */
    rt_pending *first, *last;
    uint32_t n_modules;
    uint32_t max_module_bytes; /* 0: PB_MAX_MODULE_BYTES */
    uint64_t n_files;
    uint64_t catchup_ack_seq; /* the end of a catch-up, acked on commit */
} S;

static char answer[16384]; /* the JSON of the last call */
static char commits_buf[16384];
static rt_json commits; /* commits since the host last took them */

static uint64_t us_since(double t0_ms)
{
    double d = emscripten_get_now() - t0_ms;
    return d > 0 ? (uint64_t)(d * 1000.0) : 0;
}

/* ---- opening ------------------------------------------------------------- */

/* Joins room with the relay public key (64 hex digits) from the join link.
 * Once per instance: the registry cannot be emptied. Returns JSON
 * {"ok":true} or {"ok":false,"code","error"}: PB_ERR_UNEXPECTED (already
 * open), PB_ERR_INTERNAL (libsodium did not start), PB_ERR_MALFORMED (the
 * key), PB_ERR_FIELD_RANGE (the room name). */
EMSCRIPTEN_KEEPALIVE
const char *rt_session_open(const char *room, const char *key_hex,
                            uint32_t max_module_bytes)
{
    pb_errmsg why = {{0}};
    pb_err e = PB_OK;
    size_t room_len = room ? strlen(room) : 0;
    if (S.is_open)
        e = pb_fail(&why, PB_ERR_UNEXPECTED, "the session is already open");
    else if (pb_init())
        e = pb_fail(&why, PB_ERR_INTERNAL, "libsodium did not initialise");
    else if (pb_unhex(key_hex ? key_hex : "", S.key, sizeof S.key))
        e = pb_fail(&why, PB_ERR_MALFORMED,
                    "the relay key \"%.80s\" is not %u hex digits",
                    key_hex ? key_hex : "", 2 * PB_PUBLICKEY_BYTES);
    else if (pb_chain_init(&S.chain, room ? room : ""))
        e = pb_fail(&why, PB_ERR_FIELD_RANGE,
                    "the room name has %zu bytes: 1 to %u are allowed",
                    room_len, PB_MAX_NAME_BYTES);
    rt_json j;
    rt_json_init(&j, answer, sizeof answer);
    rt_json_open(&j, NULL, '{');
    rt_json_bool(&j, "ok", !e);
    if (e) {
        rt_json_num(&j, "code", e);
        rt_json_str(&j, "error", why.text, strlen(why.text));
        rt_json_close(&j, '}');
        return rt_json_text(&j);
    }
    S.max_module_bytes =
        max_module_bytes && max_module_bytes < PB_MAX_MODULE_BYTES
            ? max_module_bytes
            : PB_MAX_MODULE_BYTES;
    mkdir("/patches", 0700);
    rt_json_init(&commits, commits_buf, sizeof commits_buf);
    rt_json_raw(&commits, "[");
    S.is_open = true;
    rt_json_close(&j, '}');
    return rt_json_text(&j);
}

EMSCRIPTEN_KEEPALIVE
double rt_session_head_seq(void)
{
    return (double)S.chain.seq;
}

EMSCRIPTEN_KEEPALIVE
double rt_session_committed_seq(void)
{
    return (double)S.committed_seq;
}

EMSCRIPTEN_KEEPALIVE
double rt_session_pending_count(void)
{
    double n = 0;
    for (rt_pending *p = S.first; p; p = p->next)
        n++;
    return n;
}

/* The patch of a var's current definition (0: undefined). */
EMSCRIPTEN_KEEPALIVE
double rt_session_var_seq(const char *name)
{
    return (double)rt_var_seq(name);
}

/* The room time at which the next queued patch is due (0: none). */
EMSCRIPTEN_KEEPALIVE
double rt_session_next_apply_us(void)
{
    return S.first ? (double)S.first->apply_us : 0;
}

/* ---- frames the host sends ----------------------------------------------- */

/* Queues hello; since_seq is the verified head, so a reconnect gets only
 * what it has not seen (docs/PROTOCOL.md § Catch-up). */
EMSCRIPTEN_KEEPALIVE
int rt_session_hello(const char *token, const char *client)
{
    pb_frame f = {.type = PB_T_HELLO};
    f.hello.token = pb_cstr(token);
    f.hello.client = pb_cstr(client);
    f.hello.since_seq = S.chain.seq;
    return rt_out_frame(&f) ? PB_OK : PB_ERR_FIELD_RANGE;
}

EMSCRIPTEN_KEEPALIVE
int rt_session_ping(double t0_us)
{
    pb_frame f = {.type = PB_T_PING};
    f.ping.t0_us = (uint64_t)t0_us;
    return rt_out_frame(&f) ? PB_OK : PB_ERR_INTERNAL;
}

/* ---- patches kept for a generation reload -------------------------------- */

/* Keeps the patch's statement, signature and module (not its source) as a
 * frame. Out of memory only costs the reload (it then refuses). */
static void keep(uint64_t seq, const pb_patch *p)
{
    pb_frame f = {.type = PB_T_PATCH};
    f.patch.stmt = p->stmt;
    f.patch.sig = p->sig;
    f.patch.module = p->module;
    pb_buf b;
    pb_buf_init(&b);
    rt_kept *k = NULL;
    if (!pb_frame_encode(&f, &b, NULL) && (k = malloc(sizeof *k + b.len))) {
        k->seq = seq;
        k->len = (uint32_t)b.len;
        memcpy(k->frame, b.data, b.len);
        k->next = S.kept;
        S.kept = k;
    }
    pb_buf_free(&b);
}

typedef struct seq_set {
    uint64_t *seqs;
    uint32_t n, cap;
    bool is_short; /* out of memory: keep everything */
} seq_set;

static void add_live_seq(const char *name, void *ctx)
{
    seq_set *set = ctx;
    uint64_t seq = rt_var_seq(name);
    for (uint32_t i = 0; i < set->n; i++)
        if (set->seqs[i] == seq)
            return;
    if (set->n == set->cap) {
        uint32_t cap = set->cap ? set->cap * 2 : 64;
        uint64_t *more = realloc(set->seqs, cap * sizeof *more);
        if (!more) {
            set->is_short = true;
            return;
        }
        set->seqs = more;
        set->cap = cap;
    }
    set->seqs[set->n++] = seq;
}

/* Drops kept patches that are committed and define no current var. */
static void prune_kept(void)
{
    seq_set live = {0};
    rt_vars_with_prefix("", add_live_seq, &live);
    for (rt_kept **k = &S.kept; *k && !live.is_short;) {
        bool is_live = (*k)->seq > S.committed_seq;
        for (uint32_t i = 0; i < live.n && !is_live; i++)
            is_live = live.seqs[i] == (*k)->seq;
        if (is_live) {
            k = &(*k)->next;
        } else {
            rt_kept *dead = *k;
            *k = dead->next;
            free(dead);
        }
    }
    free(live.seqs);
    S.commits_since_prune = 0;
}

/* ---- commit -------------------------------------------------------------- */

/* Swaps p's vars in — or, for an expression with a module, hands its
 * pb_expr to the host to run (expr.c), which acks it after the run. */
static void commit(rt_pending *p, uint64_t now_us)
{
    bool is_expr = p->is_expr && p->staged;
    p->info.commit_at_us = now_us;
    p->info.late_us = (int64_t)(now_us - p->apply_us);
    bool needs_ack = !p->is_quiet || p->seq == S.catchup_ack_seq;
    rt_json_open(&commits, NULL, '{');
    rt_json_num(&commits, "seq", (double)p->seq);
    rt_json_num(&commits, "apply_us", (double)p->apply_us);
    rt_json_num(&commits, "commit_at_us", (double)now_us);
    rt_json_open(&commits, "vars", '[');
    for (uint32_t i = 0; !p->is_expr && i < rt_staged_count(p->staged); i++) {
        const char *name = rt_staged_name(p->staged, i);
        rt_json_str(&commits, NULL, name, strlen(name));
    }
    rt_json_close(&commits, ']');
    rt_json_bool(&commits, "catchup", p->is_quiet);
    if (is_expr) /* the table index of pb_expr (0: none to run) */
        rt_json_num(&commits, "expr",
                    rt_expr_commit(p->seq, p->staged, p->is_quiet,
                                   p->seq == S.catchup_ack_seq, &p->info));
    else if (p->is_expr)
        rt_staged_free(p->staged); /* a catch-up without its module */
    else
        rt_staged_commit(p->staged, p->seq); /* frees the set */
    rt_json_close(&commits, '}');

    S.committed_seq = p->seq;
    /* an expression's ack is its value (expr.c): never a bare commit */
    if (needs_ack && !p->is_expr)
        rt_report_ack(p->seq, PB_ACK_COMMITTED, &p->info);
    if (++S.commits_since_prune >= 32)
        prune_kept();
}

/* Commits the first queued patch; the queue is in seq order. */
static void commit_first(uint64_t now_us)
{
    rt_pending *p = S.first;
    S.first = p->next;
    if (!S.first)
        S.last = NULL;
    commit(p, now_us);
    free(p);
}

/* Commits every queued patch whose apply time has come, in seq order
 * (a later one never overtakes an earlier one that is not yet due), and
 * stops after an expression with a module: the host runs it before the
 * patches after it commit (rt_session_expr_begin/end), then ticks again.
 * Returns how many; the host reads them with rt_session_take_commits. */
EMSCRIPTEN_KEEPALIVE
int rt_session_tick(double now_us)
{
    int n = 0;
    uint64_t now = (uint64_t)now_us;
    while (S.first && S.first->apply_us <= now) {
        bool is_expr = S.first->is_expr && S.first->staged;
        commit_first(now);
        n++;
        if (is_expr)
            break;
    }
    rt_report_log_tick(now);
    return n;
}

/* The commits since the last call, as a JSON array of
 * {seq, apply_us, commit_at_us, vars, catchup}. */
EMSCRIPTEN_KEEPALIVE
const char *rt_session_take_commits(void)
{
    rt_json_close(&commits, ']');
    snprintf(answer, sizeof answer, "%s", rt_json_text(&commits));
    rt_json_init(&commits, commits_buf, sizeof commits_buf);
    rt_json_raw(&commits, "[");
    return answer;
}

/* ---- verify and prepare -------------------------------------------------- */

/* The seq of a rejected patch, for its failed ack: 0 unless the statement
 * is signed with the pinned key (an unauthenticated statement is never
 * parsed, docs/PROTOCOL.md § Verification). */
static uint64_t claimed_seq(const pb_patch *p)
{
    pb_statement st;
    if (p->sig.len != PB_SIG_BYTES ||
        pb_verify(p->stmt.ptr, p->stmt.len, p->sig.ptr, S.key) ||
        pb_statement_decode(p->stmt.ptr, p->stmt.len, &st, NULL))
        return 0;
    uint64_t seq = st.seq;
    pb_statement_free(&st);
    return seq;
}

/* Checks the module's imports against what this runtime offers, writes it
 * under a new name, loads it and takes its staged vars. Returns PB_OK with
 * *out set, or an error already reported (failed ack) and said in why. */
static pb_err prepare(const pb_patch *p, uint64_t seq, rt_staged **out,
                      pb_errmsg *why)
{
    pb_err e;
    char path[80];
    /* Even a module the relay signed reaches only the runtime's API: a
     * missing import would load and fail only when called. */
    if ((e = pb_module_check_imports(p->module.ptr, p->module.len, why)))
        goto fail;
    snprintf(path, sizeof path, "/patches/%llu-%llu.wasm",
             (unsigned long long)seq, (unsigned long long)++S.n_files);
    FILE *f = fopen(path, "wb");
    bool is_written =
        f && fwrite(p->module.ptr, 1, p->module.len, f) == p->module.len;
    if (f && fclose(f))
        is_written = false;
    if (!is_written) {
        unlink(path);
        e = pb_fail(why, PB_ERR_IO, "cannot write %s", path);
        goto fail;
    }
    rt_prepare_begin();
    S.loading_seq = seq;
    rt_load(path); /* errors are collected by rt_prepare_end */
    S.loading_seq = 0;
    S.n_modules++;
    rt_report_set_modules(S.n_modules);
    unlink(path); /* the loader has its own copy; the name is never reused */
    if (rt_prepare_end()) {
        e = pb_fail(why, PB_ERR_PREPARE, "%s", rt_prepare_errors());
        goto fail;
    }
    if (!(*out = rt_prepare_take())) {
        e = pb_fail(why, PB_ERR_NOMEM, "out of memory staging its vars");
        goto fail;
    }
    return PB_OK;
fail:
    rt_report_failed(seq, e, NULL, "seq %llu: %s", (unsigned long long)seq,
                     why->text);
    return e;
}

/* Verifies p and, if it checks out and carries a module, prepares and
 * queues it. Describes the outcome into j. */
static pb_err accept_patch(const pb_patch *p, bool is_live, uint64_t now_us,
                           rt_json *j)
{
    double t0 = emscripten_get_now();
    pb_errmsg why = {{0}};
    pb_statement st;
    uint64_t seq = 0;
    pb_err e;
    if (p->module.len > S.max_module_bytes) {
        e = PB_ERR_TOO_BIG;
        seq = claimed_seq(p);
        snprintf(why.text, sizeof why.text,
                 "module of %u bytes over this runtime's limit of %u",
                 p->module.len, S.max_module_bytes);
    } else if (is_live && !p->module.ptr) {
        e = PB_ERR_MISSING_FIELD;
        seq = claimed_seq(p);
        snprintf(why.text, sizeof why.text, "a live patch without a module");
    } else if ((e = pb_patch_verify(p, S.key, &st, &why))) {
        seq = e == PB_ERR_BAD_SIGNATURE ? 0 : claimed_seq(p);
    } else {
        seq = st.seq;
        e = pb_chain_check(&S.chain, &st, &why);
        if (!e)
            pb_chain_advance(&S.chain, &st);
    }
    rt_json_num(j, "seq", (double)seq);
    if (e) {
        rt_report_failed(seq, e, NULL, "patch seq %llu rejected: %s: %s",
                         (unsigned long long)seq, pb_strerror(e), why.text);
        rt_json_bool(j, "ok", false);
        rt_json_num(j, "code", e);
        rt_json_str(j, "error", why.text, strlen(why.text));
        return e;
    }
    uint64_t apply_us = st.apply_us;
    bool is_expr = st.kind == PB_KIND_EXPR;
    pb_statement_free(&st);
    rt_pending *q = calloc(1, sizeof *q);
    if (!q) {
        rt_report_failed(seq, PB_ERR_NOMEM, NULL, "seq %llu: out of memory",
                         (unsigned long long)seq);
        rt_json_bool(j, "ok", false);
        rt_json_num(j, "code", PB_ERR_NOMEM);
        return PB_ERR_NOMEM;
    }
    q->seq = seq;
    q->apply_us = apply_us;
    q->is_quiet = !is_live;
    q->is_expr = is_expr;
    q->info.verify_us = us_since(t0);
    if (p->module.ptr) {
        double t1 = emscripten_get_now();
        if ((e = prepare(p, seq, &q->staged, &why))) {
            free(q);
            rt_json_bool(j, "ok", false);
            rt_json_num(j, "code", e);
            rt_json_str(j, "error", why.text, strlen(why.text));
            return e;
        }
        q->info.prepare_us = us_since(t1);
        if (!is_expr) /* a reload needs only what defines vars */
            keep(seq, p);
    }
    if (S.last)
        S.last->next = q;
    else
        S.first = q;
    S.last = q;
    if (is_live)
        rt_report_ack(seq, PB_ACK_PREPARED, &q->info);
    rt_json_bool(j, "ok", true);
    rt_json_num(j, "apply_us", (double)apply_us);
    rt_json_num(j, "verify_us", (double)q->info.verify_us);
    rt_json_num(j, "prepare_us", (double)q->info.prepare_us);
    rt_json_bool(j, "late", apply_us <= now_us);
    return PB_OK;
}

/* A catch-up batch: every item is checked like a live patch (a module-less
 * item is verified and moves the head, nothing is loaded). Its apply times
 * have passed, so it commits at once — but behind anything queued before
 * it, which keeps its own time: order first. The last batch (more: false)
 * acks the head once, when it commits, instead of every item. */
static void on_history(const pb_history *h, uint64_t now_us, rt_json *j)
{
    uint32_t n_ok = 0, n_failed = 0;
    rt_json_num(j, "req", (double)h->req);
    rt_json_num(j, "head_seq", (double)h->head_seq);
    rt_json_bool(j, "more", h->more);
    rt_json_open(j, "items", '[');
    for (uint32_t i = 0; i < h->n_items; i++) {
        rt_json_open(j, NULL, '{');
        if (accept_patch(&h->items[i], false, now_us, j))
            n_failed++;
        else
            n_ok++;
        rt_json_close(j, '}');
    }
    rt_json_close(j, ']');
    if (!h->more && n_ok)
        S.catchup_ack_seq = S.chain.seq;
    rt_session_tick((double)now_us);
    rt_json_num(j, "verified", n_ok);
    rt_json_num(j, "failed", n_failed);
}

/* ---- receiving ----------------------------------------------------------- */

static void describe(const pb_frame *f, rt_json *j)
{
    switch (f->type) {
    case PB_T_WELCOME: {
        const pb_welcome *w = &f->welcome;
        rt_json_str(j, "room", w->room.ptr, w->room.len);
        const char *role = pb_role_name(w->role);
        rt_json_str(j, "role", role, strlen(role));
        rt_json_str(j, "name", w->name.ptr, w->name.len);
        rt_json_num(j, "client_id", (double)w->client_id);
        rt_json_num(j, "head_seq", (double)w->head_seq);
        rt_json_num(j, "now_us", (double)w->now_us);
        /* The key in welcome is never used to verify (it comes from the
         * socket); a mismatch only explains the rejections to come. */
        rt_json_bool(j, "key_matches",
                     !memcmp(w->key, S.key, PB_PUBLICKEY_BYTES));
        rt_json_bool(j, "room_matches", pb_str_eq(w->room, S.chain.room));
        /* The relay's chain is behind ours, or as long and different: it
         * lost history (or is another relay with the same key). Every
         * patch it sends would be a replay; the host starts afresh. */
        rt_json_bool(j, "history_matches",
                     !(w->head_seq < S.chain.seq ||
                       (w->head_seq == S.chain.seq &&
                        memcmp(w->head_hash, S.chain.hash, PB_HASH_BYTES))));
        break;
    }
    case PB_T_PONG:
        rt_json_num(j, "t0_us", (double)f->pong.t0_us);
        rt_json_num(j, "t1_us", (double)f->pong.t1_us);
        rt_json_num(j, "t2_us", (double)f->pong.t2_us);
        break;
    case PB_T_ERROR:
        rt_json_num(j, "code", f->error.code);
        rt_json_str(j, "message", f->error.message.ptr, f->error.message.len);
        rt_json_bool(j, "fatal", f->error.fatal);
        rt_json_num(j, "req", (double)f->error.req);
        break;
    case PB_T_TEST_REQ:
        rt_json_num(j, "req", (double)f->test_req.req);
        rt_json_str(j, "filter", f->test_req.filter.ptr,
                    f->test_req.filter.len);
        break;
    case PB_T_ROOM:
        rt_json_num(j, "tempo_bpm", f->room.tempo_bpm);
        rt_json_num(j, "quantum", f->room.quantum);
        rt_json_num(j, "lead_us", (double)f->room.lead_us);
        break;
    default: break;
    }
}

/* Handles one frame from the relay (len bytes at buf); now_us is the room
 * time. Returns JSON describing it: {"t": type, ...}; for a frame that
 * does not decode, {"t":"invalid","code","error"} (and a failed ack is
 * queued, except for frame types this runtime does not know). */
EMSCRIPTEN_KEEPALIVE
const char *rt_session_receive(const uint8_t *buf, uint32_t len, double now_us)
{
    rt_json j;
    rt_json_init(&j, answer, sizeof answer);
    rt_json_open(&j, NULL, '{');
    pb_frame f;
    pb_errmsg why = {{0}};
    pb_err e =
        S.is_open ? pb_frame_decode(buf, len, &f, &why) : PB_ERR_UNEXPECTED;
    if (e) {
        if (!S.is_open)
            snprintf(why.text, sizeof why.text, "the session is not open");
        rt_json_str(&j, "t", "invalid", 7);
        rt_json_num(&j, "code", e);
        rt_json_str(&j, "error", why.text, strlen(why.text));
        if (S.is_open && e != PB_ERR_UNKNOWN_TYPE)
            rt_report_failed(0, e, NULL, "frame of %u bytes rejected: %s: %s",
                             len, pb_strerror(e), why.text);
        rt_json_close(&j, '}');
        return rt_json_text(&j);
    }
    const char *t = pb_type_name(f.type);
    rt_json_str(&j, "t", t, strlen(t));
    if (f.type == PB_T_PATCH)
        accept_patch(&f.patch, true, (uint64_t)now_us, &j);
    else if (f.type == PB_T_HISTORY)
        on_history(&f.history, (uint64_t)now_us, &j);
    else
        describe(&f, &j);
    pb_frame_free(&f);
    rt_json_close(&j, '}');
    return rt_json_text(&j);
}

/* A frame the host did not copy in: over PB_MAX_FRAME_BYTES, only its
 * length reaches wasm (memory never grows for it, and wasm memory never
 * shrinks). Queues the failed ack; answers like an undecodable frame. */
EMSCRIPTEN_KEEPALIVE
const char *rt_session_refuse(double len)
{
    rt_json j;
    rt_json_init(&j, answer, sizeof answer);
    rt_json_open(&j, NULL, '{');
    char why[128];
    snprintf(why, sizeof why,
             "frame of %.0f bytes over the %u-byte limit (PB_MAX_FRAME_BYTES)",
             len, PB_MAX_FRAME_BYTES);
    rt_json_str(&j, "t", "invalid", 7);
    rt_json_num(&j, "code", PB_ERR_TOO_BIG);
    rt_json_str(&j, "error", why, strlen(why));
    rt_json_close(&j, '}');
    if (S.is_open)
        rt_report_failed(0, PB_ERR_TOO_BIG, NULL, "%s", why);
    return rt_json_text(&j);
}

/* ---- traps --------------------------------------------------------------- */

static void add_name(const char *name, void *ctx)
{
    rt_json_str(ctx, NULL, name, strlen(name));
}

/* Called by the host after a call into patch code threw: var is the var
 * whose code trapped (or the var the host called, if it cannot tell).
 * Takes back every var of the patch that defined it, reports a failed ack
 * with the message and a trap log line. Returns JSON
 * {"seq", "vars": [...]} (seq 0: nothing to take back). */
EMSCRIPTEN_KEEPALIVE
const char *rt_session_trap(const char *var, const char *message, double now_us)
{
    rt_json j;
    rt_json_init(&j, answer, sizeof answer);
    rt_json_open(&j, NULL, '{');
    uint64_t seq = rt_var_seq(var);
    rt_json_num(&j, "seq", (double)seq);
    rt_json_open(&j, "vars", '[');
    int n = rt_rollback_seq(seq, add_name, &j);
    rt_json_close(&j, ']');
    rt_json_close(&j, '}');
    if (seq) {
        rt_report_failed(seq, PB_ERR_TRAP, var,
                         "%s in '%s'; %d var%s of seq %llu rolled back",
                         message, var, n, n == 1 ? "" : "s",
                         (unsigned long long)seq);
        char line[PB_MAX_MESSAGE_BYTES / 2];
        snprintf(line, sizeof line, "trap in '%s' (seq %llu): %s", var,
                 (unsigned long long)seq, message);
        rt_session_log(PB_LOG_TRAP, line, var, (double)seq, now_us);
    }
    return rt_json_text(&j);
}

/* Called by the host when loading a module threw (a constructor trapped):
 * nothing of that patch is staged, and a failed ack says why. */
EMSCRIPTEN_KEEPALIVE
void rt_session_load_failed(const char *message)
{
    uint64_t seq = S.loading_seq;
    rt_prepare_abort();
    S.loading_seq = 0;
    if (seq)
        rt_report_failed(seq, PB_ERR_PREPARE, NULL,
                         "seq %llu: loading trapped: %s",
                         (unsigned long long)seq, message);
}

/* The names of the tests (vars pb_test__FILTER...), as a JSON array. */
EMSCRIPTEN_KEEPALIVE
const char *rt_session_tests(const char *filter)
{
    char prefix[PB_MAX_NAME_BYTES + 16];
    snprintf(prefix, sizeof prefix, "pb_test__%s", filter ? filter : "");
    rt_json j;
    rt_json_init(&j, answer, sizeof answer);
    rt_json_open(&j, NULL, '[');
    rt_vars_with_prefix(prefix, add_name, &j);
    rt_json_close(&j, ']');
    return rt_json_text(&j);
}

/* ---- generation reload --------------------------------------------------- */

EMSCRIPTEN_KEEPALIVE
double rt_session_modules(void)
{
    return S.n_modules;
}

static void add_state(const char *name, uint32_t size, uint32_t align,
                      const void *data, void *ctx)
{
    rt_json *j = ctx;
    rt_json_open(j, NULL, '{');
    rt_json_str(j, "name", name, strlen(name));
    rt_json_num(j, "size", size);
    rt_json_num(j, "align", align);
    rt_json_num(j, "ptr", (double)(uintptr_t)data);
    rt_json_close(j, '}');
}

/* What a fresh instance needs to carry on from here: the chain head, the
 * kept patches (oldest first; ptr/len in this instance's memory) and the
 * PB_STATE cells. {"error"} while patches wait for their apply time: a
 * reload happens at a commit boundary with nothing queued. */
EMSCRIPTEN_KEEPALIVE
const char *rt_session_generation(void)
{
    static char big[256 * 1024]; /* thousands of kept patches and states */
    rt_json j;
    rt_json_init(&j, big, sizeof big);
    rt_json_open(&j, NULL, '{');
    if (S.first) {
        rt_json_str(&j, "error", "patches are waiting for their apply time",
                    40);
        rt_json_close(&j, '}');
        return rt_json_text(&j);
    }
    prune_kept();
    char hex[2 * PB_HASH_BYTES + 1];
    rt_json_num(&j, "seq", (double)S.chain.seq);
    rt_json_str(&j, "hash", pb_hex(S.chain.hash, PB_HASH_BYTES, hex),
                2 * PB_HASH_BYTES);
    rt_json_num(&j, "committed_seq", (double)S.committed_seq);
    rt_json_open(&j, "patches", '[');
    uint32_t n = 0;
    for (rt_kept *k = S.kept; k; k = k->next)
        n++;
    /* newest first in the list; the new instance loads oldest first */
    for (uint32_t i = n; i-- > 0;) {
        rt_kept *k = S.kept;
        for (uint32_t skip = 0; skip < i; skip++)
            k = k->next;
        rt_json_open(&j, NULL, '{');
        rt_json_num(&j, "seq", (double)k->seq);
        rt_json_num(&j, "ptr", (double)(uintptr_t)k->frame);
        rt_json_num(&j, "len", k->len);
        rt_json_close(&j, '}');
    }
    rt_json_close(&j, ']');
    rt_json_open(&j, "states", '[');
    rt_states_each(add_state, &j);
    rt_json_close(&j, ']');
    rt_json_close(&j, '}');
    return rt_json_text(&j);
}

/* A fresh instance takes over the chain head of the one it replaces;
 * only before anything was received or loaded. */
EMSCRIPTEN_KEEPALIVE
int rt_session_adopt(double seq, const char *hash_hex, double committed_seq)
{
    if (!S.is_open || S.chain.seq || S.first || S.n_modules)
        return PB_ERR_UNEXPECTED;
    if (pb_unhex(hash_hex, S.chain.hash, PB_HASH_BYTES))
        return PB_ERR_MALFORMED;
    S.chain.seq = (uint64_t)seq;
    S.committed_seq = (uint64_t)committed_seq;
    return PB_OK;
}

/* Loads a kept patch into a fresh instance: verified again (key,
 * signature, module hash; its seq must be the one announced and at or
 * below the adopted head), then loaded and committed at once. */
EMSCRIPTEN_KEEPALIVE
const char *rt_session_reload_patch(const uint8_t *buf, uint32_t len,
                                    double seq)
{
    rt_json j;
    rt_json_init(&j, answer, sizeof answer);
    rt_json_open(&j, NULL, '{');
    pb_frame f;
    pb_statement st;
    pb_errmsg why = {{0}};
    rt_staged *staged = NULL;
    pb_err e = pb_frame_decode(buf, len, &f, &why);
    if (!e && (f.type != PB_T_PATCH || !f.patch.module.ptr)) {
        e = PB_ERR_UNEXPECTED;
        snprintf(why.text, sizeof why.text, "not a patch with a module");
    }
    if (!e && !(e = pb_patch_verify(&f.patch, S.key, &st, &why))) {
        if (st.seq != (uint64_t)seq || st.seq > S.chain.seq) {
            e = PB_ERR_CHAIN_GAP;
            snprintf(why.text, sizeof why.text,
                     "kept patch seq %llu is not the announced %.0f",
                     (unsigned long long)st.seq, seq);
        }
        pb_statement_free(&st);
    }
    if (!e && !(e = prepare(&f.patch, (uint64_t)seq, &staged, &why))) {
        rt_staged_commit(staged, (uint64_t)seq);
        keep((uint64_t)seq, &f.patch);
    }
    pb_frame_free(&f); /* a failed decode left it zeroed */
    rt_json_bool(&j, "ok", !e);
    rt_json_num(&j, "code", e);
    rt_json_str(&j, "error", why.text, strlen(why.text));
    rt_json_close(&j, '}');
    return rt_json_text(&j);
}
