/* reload.c — generation reload (runtime/README.md § Generation reload).
 * Loaded modules are never freed, so the host moves to a fresh instance now
 * and then. For that the session keeps the frames of the patches that still
 * define a current var (kept), and hands them, the chain head and the
 * PB_STATE cells to the new instance, which verifies each patch again and
 * loads only those (rt_session_generation, rt_session_adopt,
 * rt_session_reload_patch). */
#include "internal.h"

#include <emscripten.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keeps the patch's statement, signature and module (not its source) as a
 * frame. Out of memory only costs the reload (it then refuses). */
void rt_keep(uint64_t seq, const pb_patch *p)
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
        k->next = rt_state.kept;
        rt_state.kept = k;
    }
    pb_buf_free(&b);
}

void rt_drop_kept_after(uint64_t seq)
{
    for (rt_kept **k = &rt_state.kept; *k;) {
        if ((*k)->seq > seq) {
            rt_kept *dead = *k;
            *k = dead->next;
            free(dead);
        } else {
            k = &(*k)->next;
        }
    }
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
void rt_prune_kept(void)
{
    seq_set live = {0};
    rt_vars_with_prefix("", add_live_seq, &live);
    for (rt_kept **k = &rt_state.kept; *k && !live.is_short;) {
        bool is_live = (*k)->seq > rt_state.committed_seq;
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
    rt_state.commits_since_prune = 0;
}

EMSCRIPTEN_KEEPALIVE
double rt_session_modules(void)
{
    return rt_state.n_modules;
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
    if (rt_state.first) {
        rt_json_str(&j, "error", "patches are waiting for their apply time",
                    40);
        rt_json_close(&j, '}');
        return rt_json_text(&j);
    }
    rt_prune_kept();
    char hex[2 * PB_HASH_BYTES + 1];
    rt_json_num(&j, "epoch", (double)rt_state.chain.epoch);
    rt_json_num(&j, "seq", (double)rt_state.chain.seq);
    rt_json_str(&j, "hash", pb_hex(rt_state.chain.hash, PB_HASH_BYTES, hex),
                2 * PB_HASH_BYTES);
    rt_json_num(&j, "committed_seq", (double)rt_state.committed_seq);
    char rand_hex[2 * RT_RAND_ID_BYTES + 1];
    rt_json_str(&j, "rand_id",
                pb_hex(rt_state.rand_id, RT_RAND_ID_BYTES, rand_hex),
                2 * RT_RAND_ID_BYTES);
    rt_json_open(&j, "patches", '[');
    uint32_t n = 0;
    for (rt_kept *k = rt_state.kept; k; k = k->next)
        n++;
    /* newest first in the list; the new instance loads oldest first */
    for (uint32_t i = n; i-- > 0;) {
        rt_kept *k = rt_state.kept;
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

/* A fresh instance takes over the chain head of the one it replaces
 * (after rt_session_floor gave it the epoch), and the rand identity of its
 * last committed patch (rand.c); only before anything was received or
 * loaded. */
EMSCRIPTEN_KEEPALIVE
int rt_session_adopt(double seq, const char *hash_hex, double committed_seq,
                     const char *rand_hex)
{
    if (!rt_state.is_open || rt_state.chain.seq || rt_state.first ||
        rt_state.n_modules)
        return PB_ERR_UNEXPECTED;
    uint8_t rand_id[RT_RAND_ID_BYTES];
    if (pb_unhex(hash_hex, rt_state.chain.hash, PB_HASH_BYTES) ||
        pb_unhex(rand_hex, rand_id, RT_RAND_ID_BYTES))
        return PB_ERR_MALFORMED;
    memcpy(rt_state.rand_id, rand_id, RT_RAND_ID_BYTES);
    rt_state.chain.seq = (uint64_t)seq;
    rt_state.committed_seq = (uint64_t)committed_seq;
    rt_state.hello_since_seq = rt_state.chain.seq; /* mid-connection */
    rt_state.is_caught_up = true;
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
    rt_json_init(&j, rt_answer, sizeof rt_answer);
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
    if (!e && !(e = pb_patch_verify(&f.patch, rt_state.key, &st, &why))) {
        if (st.seq != (uint64_t)seq || st.seq > rt_state.chain.seq) {
            e = PB_ERR_CHAIN_GAP;
            snprintf(why.text, sizeof why.text,
                     "kept patch seq %llu is not the announced %.0f",
                     (unsigned long long)st.seq, seq);
        }
        pb_statement_free(&st);
    }
    if (!e && !(e = rt_prepare_patch(&f.patch, (uint64_t)seq, &staged, &why))) {
        rt_staged_commit(staged, (uint64_t)seq);
        rt_keep((uint64_t)seq, &f.patch);
    }
    pb_frame_free(&f); /* a failed decode left it zeroed */
    rt_json_bool(&j, "ok", !e);
    rt_json_num(&j, "code", e);
    rt_json_str(&j, "error", why.text, strlen(why.text));
    rt_json_close(&j, '}');
    return rt_json_text(&j);
}
