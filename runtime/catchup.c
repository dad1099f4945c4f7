/* catchup.c — catch-up batches: the history frames a runtime gets after
 * welcome (docs/PROTOCOL.md § Catch-up and replay), and why a man in the
 * middle cannot strip them.
 *
 * Every item is verified like a live patch. A catch-up of whole patches
 * (after a hello with since_seq N > 0, or an answer to history_req) must
 * carry every module: an item without one is refused like a live patch
 * without one. A state catch-up (since_seq 0) leaves out the modules of the
 * patches whose vars were all redefined later — and only those: which ones
 * they are, the runtime works out itself from the signed statements (each
 * names the vars it defines): the patch that defines a var last must come
 * with its module. That can only be known at the end, so nothing of a
 * state catch-up commits before its last batch (its items wait, held,
 * behind what was queued before it). If then a current definition came
 * without its module, or an item was refused, the whole catch-up is
 * dropped: the head goes back to where it was, its prepared items are
 * freed unrun, a failed ack says why, and the host reconnects to ask again.
 * Otherwise it commits at once, in order, and acks the head once. */
#include "internal.h"

#include <emscripten.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rt_def { /* the last patch of the catch-up defining name */
    uint64_t seq;
    bool has_module;
    char name[PB_MAX_NAME_BYTES + 1];
} rt_def;

static struct {
    bool is_active;  /* a state catch-up has begun and not ended */
    pb_chain before; /* the head when it began */
    pb_err failed;   /* an item was refused: the catch-up is not whole */
    rt_def *defs;
    uint32_t n_defs, cap_defs;
    bool is_short; /* out of memory recording them */
} C;

/* Errors after which asking the relay again may help: what arrived is not
 * what it sent, or not all of it. (A module that does not load, or memory
 * running out, would only happen again.) */
static bool is_delivery_fault(pb_err e)
{
    return e && e != PB_ERR_PREPARE && e != PB_ERR_NOMEM && e != PB_ERR_IO;
}

void rt_catchup_note(const pb_statement *st, bool has_module)
{
    for (uint32_t s = 0; s < st->n_symbols; s++) {
        pb_str name = st->symbols[s].name;
        rt_def *d = NULL;
        for (uint32_t i = 0; i < C.n_defs && !d; i++)
            if (pb_str_eq(name, C.defs[i].name))
                d = &C.defs[i];
        if (!d) {
            if (C.n_defs == C.cap_defs) {
                uint32_t cap = C.cap_defs ? 2 * C.cap_defs : 64;
                rt_def *more = realloc(C.defs, cap * sizeof *more);
                if (!more) {
                    C.is_short = true;
                    return;
                }
                C.defs = more;
                C.cap_defs = cap;
            }
            d = &C.defs[C.n_defs++];
            if (pb_str_copy(d->name, sizeof d->name, name))
                C.is_short = true; /* cannot happen: names are bounded */
        }
        d->seq = st->seq;
        d->has_module = has_module;
    }
}

static void end(void)
{
    free(C.defs);
    memset(&C, 0, sizeof C);
}

/* Takes back everything since the catch-up began: the queued patches after
 * the old head (held, unrun), the frames kept for them, the head. */
static void drop(void)
{
    rt_pending *last = NULL;
    for (rt_pending **q = &rt_state.first; *q;) {
        if ((*q)->seq > C.before.seq) {
            rt_pending *dead = *q;
            *q = dead->next;
            rt_staged_free(dead->staged);
            free(dead);
        } else {
            last = *q;
            q = &(*q)->next;
        }
    }
    rt_state.last = last;
    rt_drop_kept_after(C.before.seq);
    rt_state.chain = C.before;
    end();
}

void rt_catchup_abort(void)
{
    if (C.is_active)
        drop();
}

/* The last batch of a state catch-up: whole (true), or dropped. */
static bool finish(rt_json *j)
{
    const rt_def *stripped = NULL;
    for (uint32_t i = 0; i < C.n_defs && !stripped; i++)
        if (!C.defs[i].has_module)
            stripped = &C.defs[i];
    pb_errmsg why = {{0}};
    uint64_t seq = 0;
    pb_err e = PB_OK;
    if (C.is_short) {
        e = pb_fail(&why, PB_ERR_NOMEM,
                    "out of memory checking the catch-up: nothing of it is "
                    "applied");
    } else if (C.failed) {
        e = pb_fail(&why, C.failed,
                    "an item of the catch-up was refused (%s): nothing of it "
                    "is applied",
                    pb_strerror(C.failed));
    } else if ((e = rt_floor_check_end(&why))) {
        seq = rt_state.chain.seq;
    } else if (stripped) {
        seq = stripped->seq;
        e = pb_fail(&why, PB_ERR_MISSING_FIELD,
                    "the catch-up's seq %llu defines '%s', the room's current "
                    "definition, but came without its module: nothing of the "
                    "catch-up is applied",
                    (unsigned long long)seq, stripped->name);
    }
    if (!e) {
        for (rt_pending *q = rt_state.first; q; q = q->next)
            q->is_held = false;
        if (rt_state.chain.seq > C.before.seq)
            rt_state.catchup_ack_seq = rt_state.chain.seq;
        rt_state.is_caught_up = true;
        end();
        return true;
    }
    rt_report_failed(seq, e, NULL, "%s", why.text);
    drop();
    rt_json_open(j, "refused", '{');
    rt_json_num(j, "seq", (double)seq);
    rt_json_num(j, "code", e);
    rt_json_str(j, "error", why.text, strlen(why.text));
    rt_json_close(j, '}');
    return false;
}

/* A catch-up batch. Its apply times have passed, so it commits at the
 * host's next tick — right after this call — but behind anything queued
 * before it, which keeps its own time: order first. The host's tick, not
 * this call, commits them, so that it runs each pb_init and expression
 * before the patches after it. The last batch (more: false) acks the head
 * once, when it commits, instead of every item. */
void rt_catchup_receive(const pb_history *h, uint64_t now_us, rt_json *j)
{
    bool is_state = h->req == 0 && rt_state.hello_since_seq == 0;
    rt_item kind = is_state ? RT_ITEM_STATE : RT_ITEM_WHOLE;
    uint32_t n_ok = 0, n_failed = 0, n_chained = 0;
    bool needs_resync = false;
    if (is_state && !C.is_active) {
        C.is_active = true;
        C.before = rt_state.chain;
    }
    rt_json_num(j, "req", (double)h->req);
    rt_json_num(j, "head_seq", (double)h->head_seq);
    rt_json_bool(j, "more", h->more);
    pb_chain at_frame = rt_state.chain;
    bool *is_ok = calloc(h->n_items ? h->n_items : 1, sizeof *is_ok);
    rt_json_open(j, "items", '[');
    for (uint32_t i = 0; i < h->n_items; i++) {
        rt_json_open(j, NULL, '{');
        bool is_chained = false;
        pb_err e = rt_accept_patch(&h->items[i], kind, now_us, j, &is_chained);
        rt_json_close(j, '}');
        if (e)
            n_failed++;
        else
            n_ok++;
        n_chained += is_chained;
        if (is_ok) /* what the patch instance gets: what the chain took */
            is_ok[i] = is_chained;
        if (is_delivery_fault(e)) {
            needs_resync = true;
            if (is_state && !C.failed)
                C.failed = e;
        }
    }
    rt_json_close(j, ']');
    bool is_whole = true; /* a state catch-up: every batch of it */
    if (is_state && !h->more && !finish(j)) {
        needs_resync = true;
        is_whole = false;
    } else if (!is_state && !h->more) {
        if (n_ok)
            rt_state.catchup_ack_seq = rt_state.chain.seq;
        rt_state.is_caught_up = true;
    }
    /* A verifier hands on a state catch-up only once it is whole, all
     * batches at once, so nothing of a refused one is ever loaded (its
     * constructors would run); of other batches, the verified items. */
    if (rt_state.is_verifier && is_state)
        rt_passed = h->more    ? RT_PASS_HOLD
                    : is_whole ? RT_PASS_END
                               : RT_PASS_DROP;
    else if (rt_state.is_verifier && n_chained == h->n_items)
        rt_passed = RT_PASS_FRAME;
    else if (rt_state.is_verifier && n_chained &&
             (!is_ok || !rt_pass_items(h, is_ok)))
        rt_state.chain = at_frame; /* out of memory: as if none verified */
    free(is_ok);
    rt_json_num(j, "verified", n_ok);
    rt_json_num(j, "failed", n_failed);
    if (needs_resync)
        rt_json_str(j, "resync", "the catch-up was not whole", 26);
}
