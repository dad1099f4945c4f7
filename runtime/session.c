/* session.c — one runtime's membership of a room, driven by the JS host
 * (runtime/host.js) with the raw bytes of every frame it receives.
 *
 * For each patch (live, or an item of a catch-up batch, catchup.c): verify
 * it against the relay key pinned at rt_session_open and the chain head
 * (docs/PROTOCOL.md § Verification, § Chain) — nothing that fails is ever
 * written to the file system or loaded —, then prepare it (check its
 * imports, load the module under a new file name and stage its vars,
 * docs/PATCH_ABI.md) and queue it. rt_session_tick commits queued patches
 * in seq order once their apply time has come on the room clock;
 * rt_session_trap takes a patch back when its code trapped. The host owns
 * the socket, the clock and every call into patch code (a trap is a JS
 * exception that unwinds through the wasm stack); runtime/README.md
 * describes the split.
 *
 * The chain head moves when a patch verifies, even if it then fails to
 * prepare: the patch is authentic and in the room's history, so the next
 * one links to it; only its vars are missing here (and reported).
 * Generation reload (moving to a fresh instance) is reload.c. */
#include "internal.h"

#include <emscripten.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

rt_session_state rt_state;
char rt_answer[RT_ANSWER_BYTES]; /* the JSON of the last call */
/* The commits since the host last took them, as a JSON array, and the
 * array the host took last (valid until it takes the next). Both grow as
 * needed: one patch may define 256 vars of 64-byte names, and a catch-up
 * commits many patches in one tick. */
static rt_json commits;
static char *taken_buf;
static size_t taken_cap;

/* Room in the commits array for one more commit of n_vars vars (each
 * name escaped at worst 6 bytes a byte); false if memory ran out. */
static bool commits_reserve(uint32_t n_vars)
{
    size_t need =
        commits.len + 256 + (size_t)n_vars * (6u * PB_MAX_NAME_BYTES + 3u);
    if (need <= commits.cap)
        return true;
    size_t cap = commits.cap ? commits.cap : 16384;
    while (cap < need)
        cap *= 2;
    char *p = realloc(commits.buf, cap);
    if (!p)
        return false;
    commits.buf = p;
    commits.cap = cap;
    return true;
}

/* Starts an empty commits array in buf (cap bytes, at least 16 KiB). */
static void commits_start(char *buf, size_t cap)
{
    rt_json_init(&commits, buf, cap);
    rt_json_raw(&commits, "[");
}

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
 * key), PB_ERR_FIELD_RANGE (the room name), PB_ERR_NOMEM. */
EMSCRIPTEN_KEEPALIVE
const char *rt_session_open(const char *room, const char *key_hex,
                            uint32_t max_module_bytes)
{
    pb_errmsg why = {{0}};
    pb_err e = PB_OK;
    size_t room_len = room ? strlen(room) : 0;
    if (rt_state.is_open)
        e = pb_fail(&why, PB_ERR_UNEXPECTED, "the session is already open");
    else if (pb_init())
        e = pb_fail(&why, PB_ERR_INTERNAL, "libsodium did not initialise");
    else if (pb_unhex(key_hex ? key_hex : "", rt_state.key,
                      sizeof rt_state.key))
        e = pb_fail(&why, PB_ERR_MALFORMED,
                    "the relay key \"%.80s\" is not %u hex digits",
                    key_hex ? key_hex : "", 2 * PB_PUBLICKEY_BYTES);
    else if (pb_chain_init(&rt_state.chain, room ? room : ""))
        e = pb_fail(&why, PB_ERR_FIELD_RANGE,
                    "the room name has %zu bytes: 1 to %u are allowed",
                    room_len, PB_MAX_NAME_BYTES);
    else if (!commits.buf && !(commits.buf = malloc(16384)))
        e = pb_fail(&why, PB_ERR_NOMEM, "out of memory");
    rt_json j;
    rt_json_init(&j, rt_answer, sizeof rt_answer);
    rt_json_open(&j, NULL, '{');
    rt_json_bool(&j, "ok", !e);
    if (e) {
        rt_json_num(&j, "code", e);
        rt_json_str(&j, "error", why.text, strlen(why.text));
        rt_json_close(&j, '}');
        return rt_json_text(&j);
    }
    rt_state.max_module_bytes =
        max_module_bytes && max_module_bytes < PB_MAX_MODULE_BYTES
            ? max_module_bytes
            : PB_MAX_MODULE_BYTES;
    commits_start(commits.buf, 16384);
    rt_state.is_open = true;
    rt_json_close(&j, '}');
    return rt_json_text(&j);
}

EMSCRIPTEN_KEEPALIVE
double rt_session_head_seq(void)
{
    return (double)rt_state.chain.seq;
}

EMSCRIPTEN_KEEPALIVE
double rt_session_committed_seq(void)
{
    return (double)rt_state.committed_seq;
}

EMSCRIPTEN_KEEPALIVE
double rt_session_pending_count(void)
{
    double n = 0;
    for (rt_pending *p = rt_state.first; p; p = p->next)
        n++;
    return n;
}

/* The patch of a var's current definition (0: undefined). */
EMSCRIPTEN_KEEPALIVE
double rt_session_var_seq(const char *name)
{
    return (double)rt_var_seq(name);
}

/* The room time at which the next queued patch is due (0: none, or held). */
EMSCRIPTEN_KEEPALIVE
double rt_session_next_apply_us(void)
{
    /* a held catch-up commits when it is whole, not at a time */
    return rt_state.first && !rt_state.first->is_held
               ? (double)rt_state.first->apply_us
               : 0;
}

/* ---- frames the host sends ----------------------------------------------- */

/* A new connection: queues hello with since_seq, the verified head — the
 * verifier's (verifier.c), so that a reconnect gets only what it has not
 * seen (docs/PROTOCOL.md § Catch-up). A verifier (which then ignores
 * since_seq and uses its own head) only begins the connection: the patch
 * instance sends the hello. */
EMSCRIPTEN_KEEPALIVE
int rt_session_hello(const char *token, const char *client, double since_seq)
{
    pb_frame f = {.type = PB_T_HELLO};
    f.hello.token = pb_cstr(token);
    f.hello.client = pb_cstr(client);
    /* a catch-up that did not end is dropped, so since_seq is a head
     * that everything before it got to */
    rt_catchup_abort();
    f.hello.since_seq =
        rt_state.is_verifier ? rt_state.chain.seq : (uint64_t)since_seq;
    rt_state.hello_since_seq = f.hello.since_seq;
    rt_state.is_caught_up = false;
    if (rt_state.is_verifier)
        return PB_OK;
    rt_device_fill(&f.hello);
    return rt_out_frame(&f) ? PB_OK : PB_ERR_FIELD_RANGE;
}

EMSCRIPTEN_KEEPALIVE
int rt_session_ping(double t0_us, double unc_us)
{
    pb_frame f = {.type = PB_T_PING};
    f.ping.t0_us = (uint64_t)t0_us;
    f.ping.unc_us = unc_us > 0 && unc_us < 1e15 ? (uint64_t)unc_us : 0;
    return rt_out_frame(&f) ? PB_OK : PB_ERR_INTERNAL;
}

/* ---- commit -------------------------------------------------------------- */

/* Swaps p's vars in — or, for an expression with a module, hands its
 * pb_expr to the host to run (expr.c), which acks it after the run.
 * Returns whether it defined pb_init, which the host runs before the next
 * patch commits. */
static bool commit(rt_pending *p, uint64_t now_us)
{
    bool defines_init = false;
    bool is_expr = p->is_expr && p->staged;
    p->info.commit_at_us = now_us;
    p->info.late_us = (int64_t)(now_us - p->apply_us);
    bool needs_ack = !p->is_quiet || p->seq == rt_state.catchup_ack_seq;
    /* cut short only if memory ran out: the host then sees "null" */
    (void)commits_reserve(p->is_expr ? 0 : rt_staged_count(p->staged));
    rt_json_open(&commits, NULL, '{');
    rt_json_num(&commits, "seq", (double)p->seq);
    rt_json_num(&commits, "apply_us", (double)p->apply_us);
    rt_json_num(&commits, "commit_at_us", (double)now_us);
    rt_json_open(&commits, "vars", '[');
    for (uint32_t i = 0; !p->is_expr && i < rt_staged_count(p->staged); i++) {
        const char *name = rt_staged_name(p->staged, i);
        rt_json_str(&commits, NULL, name, strlen(name));
        defines_init = defines_init || !strcmp(name, "pb_init");
    }
    rt_json_close(&commits, ']');
    rt_json_bool(&commits, "catchup", p->is_quiet);
    if (is_expr) /* the table index of pb_expr (0: none to run) */
        rt_json_num(&commits, "expr",
                    rt_expr_commit(p->seq, p->staged, p->is_quiet,
                                   p->seq == rt_state.catchup_ack_seq,
                                   &p->info));
    else if (p->is_expr)
        rt_staged_free(p->staged); /* a catch-up without its module */
    else
        rt_staged_commit(p->staged, p->seq); /* frees the set */
    rt_json_close(&commits, '}');

    rt_state.committed_seq = p->seq;
    memcpy(rt_state.rand_id, p->rand_id, RT_RAND_ID_BYTES);
    /* an expression's ack is its value (expr.c): never a bare commit */
    if (needs_ack && !p->is_expr)
        rt_report_ack(p->seq, PB_ACK_COMMITTED, &p->info);
    if (++rt_state.commits_since_prune >= 32)
        rt_prune_kept();
    return defines_init;
}

/* Commits the first queued patch; the queue is in seq order. Returns
 * whether it defined pb_init. */
static bool commit_first(uint64_t now_us)
{
    rt_pending *p = rt_state.first;
    rt_state.first = p->next;
    if (!rt_state.first)
        rt_state.last = NULL;
    bool defines_init = commit(p, now_us);
    free(p);
    return defines_init;
}

/* Commits every queued patch whose apply time has come, in seq order
 * (a later one never overtakes an earlier one that is not yet due), and
 * stops after an expression with a module or a patch that defines
 * pb_init: the host runs that code before the patches after it commit
 * (rt_session_expr_begin/end, pb_init), then ticks again — so a catch-up
 * or a replay runs every pb_init and expression in order, as the room did
 * (docs/ARCHITECTURE.md § Determinism). Returns how many; the host reads
 * them with rt_session_take_commits. */
EMSCRIPTEN_KEEPALIVE
int rt_session_tick(double now_us)
{
    int n = 0;
    uint64_t now = (uint64_t)now_us;
    while (rt_state.first && !rt_state.first->is_held &&
           rt_state.first->apply_us <= now) {
        bool is_expr = rt_state.first->is_expr && rt_state.first->staged;
        bool defines_init = commit_first(now);
        n++;
        if (is_expr || defines_init)
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
    /* the host gets this array; the next ones go to the other buffer */
    char *buf = taken_buf;
    size_t cap = taken_cap;
    taken_buf = commits.buf;
    taken_cap = commits.cap;
    bool cut = commits.is_cut;
    if (!buf && !(buf = malloc(cap = 16384))) {
        buf = taken_buf; /* out of memory: keep using one buffer */
        cap = taken_cap;
        taken_buf = NULL;
        commits_start(buf, cap);
        return "[]";
    }
    commits_start(buf, cap);
    return cut ? "null" : taken_buf;
}

/* ---- verify and prepare -------------------------------------------------- */

/* The seq of a rejected patch, for its failed ack: 0 unless the statement
 * is signed with the pinned key (an unauthenticated statement is never
 * parsed, docs/PROTOCOL.md § Verification). */
static uint64_t claimed_seq(const pb_patch *p)
{
    pb_statement st;
    if (p->sig.len != PB_SIG_BYTES ||
        pb_verify(p->stmt.ptr, p->stmt.len, p->sig.ptr, rt_state.key) ||
        pb_statement_decode(p->stmt.ptr, p->stmt.len, &st, NULL))
        return 0;
    uint64_t seq = st.seq;
    pb_statement_free(&st);
    return seq;
}

/* Checks the module's imports against what this runtime offers, writes it
 * under a new name, loads it and takes its staged vars. Returns PB_OK with
 * *out set, or an error already reported (failed ack) and said in why. */
pb_err rt_prepare_patch(const pb_patch *p, uint64_t seq, rt_staged **out,
                        pb_errmsg *why)
{
    pb_err e;
    /* Even a module the relay signed reaches only the runtime's API: a
     * missing import would load and fail only when called. */
    if ((e = pb_module_check_imports(p->module.ptr, p->module.len, why)))
        goto fail;
    rt_prepare_begin();
    rt_state.loading_seq = seq;
    /* load errors are collected by rt_prepare_end */
    e = rt_load_module(p->module.ptr, p->module.len, seq, why);
    rt_state.loading_seq = 0;
    if (e) {
        rt_prepare_abort();
        goto fail;
    }
    rt_state.n_modules++;
    rt_report_set_modules(rt_state.n_modules);
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
pb_err rt_accept_patch(const pb_patch *p, rt_item kind, uint64_t now_us,
                       rt_json *j, bool *is_chained)
{
    bool chained = false;
    if (!is_chained)
        is_chained = &chained;
    *is_chained = false;
    double t0 = emscripten_get_now();
    pb_errmsg why = {{0}};
    pb_statement st;
    uint64_t seq = 0;
    pb_err e;
    if (p->module.len > rt_state.max_module_bytes) {
        e = PB_ERR_TOO_BIG;
        seq = claimed_seq(p);
        snprintf(why.text, sizeof why.text,
                 "module of %u bytes over this runtime's limit of %u",
                 p->module.len, rt_state.max_module_bytes);
    } else if (kind != RT_ITEM_STATE && !p->module.ptr) {
        e = PB_ERR_MISSING_FIELD;
        seq = claimed_seq(p);
        snprintf(why.text, sizeof why.text, "%s",
                 kind == RT_LIVE ? "a live patch without its module"
                                 : "an item of a catch-up of whole patches "
                                   "came without its module");
    } else if ((e = rt_state.is_behind_verifier
                        ? pb_patch_verify_signed(p, rt_state.key, &st, &why)
                        : pb_patch_verify(p, rt_state.key, &st, &why))) {
        seq = e == PB_ERR_BAD_SIGNATURE ? 0 : claimed_seq(p);
    } else {
        seq = st.seq;
        /* Signed before it arrived: the room time is past it, whatever the
         * (unsigned) clock samples say — the host moves its clock on too
         * (clock.js atLeast). */
        rt_json_num(j, "created_us", (double)st.created_us);
        if (now_us < st.created_us)
            now_us = st.created_us;
        e = pb_chain_check(&rt_state.chain, &st, &why);
        if (!e)
            e = rt_floor_check(&st, kind == RT_ITEM_STATE, &why);
        if (!e)
            pb_chain_advance(&rt_state.chain, &st);
        *is_chained = !e;
        /* Authentic and chained, but due too far ahead: waiting for it
         * would hold back every later patch (docs/PROTOCOL.md § Time). */
        if (!e && st.apply_us > now_us + PB_MAX_APPLY_AHEAD_US)
            e = pb_fail(&why, PB_ERR_FIELD_RANGE,
                        "its apply time is %.0f s ahead of the room clock, "
                        "more than %u s",
                        (double)(st.apply_us - now_us) / 1e6,
                        PB_MAX_APPLY_AHEAD_US / 1000000u);
        if (!e && kind == RT_ITEM_STATE)
            rt_catchup_note(&st, p->module.ptr != NULL);
        if (e)
            pb_statement_free(&st);
    }
    rt_json_num(j, "seq", (double)seq);
    if (e) {
        /* a verifier passes what it chained, and the patch instance, which
         * refuses it for the same reason, reports it */
        if (!(rt_state.is_verifier && *is_chained))
            rt_report_failed(seq, e, NULL, "patch seq %llu rejected: %s: %s",
                             (unsigned long long)seq, pb_strerror(e), why.text);
        rt_json_bool(j, "ok", false);
        rt_json_num(j, "code", e);
        rt_json_str(j, "error", why.text, strlen(why.text));
        if (e == PB_ERR_CHAIN_GAP && kind == RT_LIVE)
            rt_json_str(j, "resync", "seq gap", 7);
        return e;
    }
    uint64_t apply_us = st.apply_us;
    bool is_expr = st.kind == PB_KIND_EXPR;
    uint8_t rand_id[RT_RAND_ID_BYTES];
    rt_rand_identity(&st, rand_id);
    pb_statement_free(&st);
    if (rt_state.is_verifier) { /* verified: the patch instance does the rest */
        rt_json_bool(j, "ok", true);
        rt_json_num(j, "apply_us", (double)apply_us);
        rt_json_num(j, "verify_us", (double)us_since(t0));
        rt_json_bool(j, "late", apply_us <= now_us);
        return PB_OK;
    }
    rt_pending *q = calloc(1, sizeof *q);
    if (!q) {
        rt_report_failed(seq, PB_ERR_NOMEM, NULL, "seq %llu: out of memory",
                         (unsigned long long)seq);
        rt_json_bool(j, "ok", false);
        rt_json_num(j, "code", PB_ERR_NOMEM);
        return PB_ERR_NOMEM;
    }
    q->seq = seq;
    memcpy(q->rand_id, rand_id, RT_RAND_ID_BYTES);
    q->apply_us = apply_us;
    q->is_quiet = kind != RT_LIVE;
    q->is_held = kind == RT_ITEM_STATE;
    q->is_expr = is_expr;
    q->info.verify_us = us_since(t0);
    if (p->module.ptr) {
        double t1 = emscripten_get_now();
        if ((e = rt_prepare_patch(p, seq, &q->staged, &why))) {
            free(q);
            rt_json_bool(j, "ok", false);
            rt_json_num(j, "code", e);
            rt_json_str(j, "error", why.text, strlen(why.text));
            return e;
        }
        q->info.prepare_us = us_since(t1);
        if (!is_expr) /* a reload needs only what defines vars */
            rt_keep(seq, p);
    }
    if (rt_state.last)
        rt_state.last->next = q;
    else
        rt_state.first = q;
    rt_state.last = q;
    if (kind == RT_LIVE)
        rt_report_ack(seq, PB_ACK_PREPARED, &q->info);
    rt_json_bool(j, "ok", true);
    rt_json_num(j, "apply_us", (double)apply_us);
    rt_json_num(j, "verify_us", (double)q->info.verify_us);
    rt_json_num(j, "prepare_us", (double)q->info.prepare_us);
    rt_json_bool(j, "late", apply_us <= now_us);
    return PB_OK;
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
                     !memcmp(w->key, rt_state.key, PB_PUBLICKEY_BYTES));
        rt_json_bool(j, "room_matches",
                     pb_str_eq(w->room, rt_state.chain.room));
        /* head_seq and head_hash are not signed: reported, never acted on
         * (the signed head that follows is, head.c) */
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
        rt_json_num(j, "seq", (double)f->test_req.seq);
        break;
    case PB_T_SNAPSHOT_REQ:
        rt_json_num(j, "req", (double)f->snapshot_req.req);
        rt_json_num(j, "at_us", (double)f->snapshot_req.at_us);
        rt_json_num(j, "editor_id", (double)f->snapshot_req.editor_id);
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
    rt_json_init(&j, rt_answer, sizeof rt_answer);
    rt_json_open(&j, NULL, '{');
    rt_passed = RT_PASS_NONE;
    pb_frame f;
    pb_errmsg why = {{0}};
    pb_err e = rt_state.is_open ? pb_frame_decode(buf, len, &f, &why)
                                : PB_ERR_UNEXPECTED;
    if (e) {
        if (!rt_state.is_open)
            snprintf(why.text, sizeof why.text, "the session is not open");
        rt_json_str(&j, "t", "invalid", 7);
        rt_json_num(&j, "code", e);
        rt_json_str(&j, "error", why.text, strlen(why.text));
        if (rt_state.is_open && e != PB_ERR_UNKNOWN_TYPE)
            rt_report_failed(0, e, NULL, "frame of %u bytes rejected: %s: %s",
                             len, pb_strerror(e), why.text);
        rt_json_close(&j, '}');
        return rt_json_text(&j);
    }
    const char *t = pb_type_name(f.type);
    rt_json_str(&j, "t", t, strlen(t));
    /* in a verifier, what may reach the patch instance: only verified
     * (and chained) patches and heads (verifier.c) */
    bool is_passed = false;
    if (f.type == PB_T_PATCH)
        rt_accept_patch(&f.patch, RT_LIVE, (uint64_t)now_us, &j, &is_passed);
    else if (f.type == PB_T_HISTORY)
        rt_catchup_receive(&f.history, (uint64_t)now_us, &j);
    else if (f.type == PB_T_HEAD)
        is_passed = rt_head_receive(&f.head, &j) == PB_OK;
    else
        describe(&f, &j);
    if (rt_state.is_verifier && is_passed)
        rt_passed = RT_PASS_FRAME;
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
    rt_json_init(&j, rt_answer, sizeof rt_answer);
    rt_json_open(&j, NULL, '{');
    char why[128];
    snprintf(why, sizeof why,
             "frame of %.0f bytes over the %u-byte limit (PB_MAX_FRAME_BYTES)",
             len, PB_MAX_FRAME_BYTES);
    rt_json_str(&j, "t", "invalid", 7);
    rt_json_num(&j, "code", PB_ERR_TOO_BIG);
    rt_json_str(&j, "error", why, strlen(why));
    rt_json_close(&j, '}');
    if (rt_state.is_open)
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
    rt_json_init(&j, rt_answer, sizeof rt_answer);
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
    uint64_t seq = rt_state.loading_seq;
    rt_prepare_abort();
    rt_state.loading_seq = 0;
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
    rt_json_init(&j, rt_answer, sizeof rt_answer);
    rt_json_open(&j, NULL, '[');
    rt_vars_with_prefix(prefix, add_name, &j);
    rt_json_close(&j, ']');
    return rt_json_text(&j);
}
