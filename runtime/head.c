/* head.c — where the room is, as far as signed statements say: the signed
 * heads the relay sends (docs/PROTOCOL.md § The signed head) and the floor,
 * the highest head a runtime of this (key, room) verified before (the host
 * persists it). Nothing unsigned moves a runtime backwards
 * (docs/SECURITY.md § Rollback and freeze):
 *
 * - The epoch (whose genesis the chain starts from) comes from the floor or
 *   from the first signed head; welcome's head_seq is only ever reported.
 * - A state catch-up that ends below the floor is a rollback: refused
 *   (catchup.c), and so is a patch at the floor's seq with another hash.
 * - Only a signed head of a later epoch lets the runtime start afresh (the
 *   relay began the room again); one of an earlier epoch is refused.
 * - A signed head of this epoch ahead of the runtime, once its catch-up is
 *   done, means it missed a patch: it asks again (and the host asks again
 *   while it stays behind). Only a head that names the runtime's own head
 *   is fresh: the host shows "stale since" when none came for a while (the
 *   acks carry it). */
#include "internal.h"

#include <emscripten.h>
#include <stdio.h>
#include <string.h>

/* Starts the chain again at epoch's genesis (the room name stays). */
static pb_err chain_at_epoch(uint64_t epoch)
{
    char room[PB_MAX_NAME_BYTES + 1];
    memcpy(room, rt_state.chain.room, sizeof room);
    return pb_chain_init_epoch(&rt_state.chain, room, epoch, rt_state.key);
}

static void head_json(rt_json *j)
{
    char hex[2 * PB_HASH_BYTES + 1];
    rt_json_num(j, "epoch", (double)rt_state.chain.epoch);
    rt_json_num(j, "seq", (double)rt_state.chain.seq);
    rt_json_str(j, "hash", pb_hex(rt_state.chain.hash, PB_HASH_BYTES, hex),
                2 * PB_HASH_BYTES);
    rt_json_bool(j, "epoch_known", rt_state.is_epoch_known);
}

/* The verified head, for the host to persist: {epoch, seq, hash,
 * epoch_known}. */
EMSCRIPTEN_KEEPALIVE
const char *rt_session_head(void)
{
    rt_json j;
    rt_json_init(&j, rt_answer, sizeof rt_answer);
    rt_json_open(&j, NULL, '{');
    head_json(&j);
    rt_json_close(&j, '}');
    return rt_json_text(&j);
}

/* The floor a runtime of this (key, room) reached before: given once,
 * before anything is received. The chain starts at its epoch's genesis;
 * hash_hex is the hash of statement seq (ignored at seq 0). Returns an
 * error code. */
EMSCRIPTEN_KEEPALIVE
int rt_session_floor(double epoch, double seq, const char *hash_hex)
{
    if (!rt_state.is_open || rt_state.chain.seq || rt_state.first)
        return PB_ERR_UNEXPECTED;
    rt_floor f = {.epoch = (uint64_t)epoch, .seq = (uint64_t)seq};
    if (f.seq && pb_unhex(hash_hex ? hash_hex : "", f.hash, PB_HASH_BYTES))
        return PB_ERR_MALFORMED;
    pb_err e = chain_at_epoch(f.epoch);
    if (e)
        return e;
    rt_state.floor = f;
    rt_state.is_epoch_known = true;
    return PB_OK;
}

pb_err rt_floor_check(const pb_statement *st, bool is_state_item,
                      pb_errmsg *why)
{
    const rt_floor *f = &rt_state.floor;
    /* Below the floor, only a state catch-up may lead back up to it (its
     * end is checked, rt_floor_check_end, and nothing of it commits before
     * that): a live patch or a whole catch-up's item there is a replay. */
    if (f->epoch == rt_state.chain.epoch && st->seq < f->seq && !is_state_item)
        return pb_fail(why, PB_ERR_CHAIN_REPLAY,
                       "seq %llu is below seq %llu, which this runtime "
                       "verified before: a replay, refused (only a state "
                       "catch-up that reaches seq %llu again is taken)",
                       (unsigned long long)st->seq, (unsigned long long)f->seq,
                       (unsigned long long)f->seq);
    if (!f->seq || f->epoch != rt_state.chain.epoch || st->seq != f->seq ||
        !memcmp(st->hash, f->hash, PB_HASH_BYTES))
        return PB_OK;
    char a[2 * PB_HASH_BYTES + 1], b[2 * PB_HASH_BYTES + 1];
    return pb_fail(
        why, PB_ERR_CHAIN_FORK,
        "seq %llu is %.16s…, but this runtime verified %.16s… as "
        "seq %llu before: another history",
        (unsigned long long)st->seq, pb_hex(st->hash, PB_HASH_BYTES, a),
        pb_hex(f->hash, PB_HASH_BYTES, b), (unsigned long long)f->seq);
}

pb_err rt_floor_check_end(pb_errmsg *why)
{
    const rt_floor *f = &rt_state.floor;
    if (f->epoch != rt_state.chain.epoch || rt_state.chain.seq >= f->seq)
        return PB_OK;
    return pb_fail(why, PB_ERR_CHAIN_REPLAY,
                   "the relay's history ends at seq %llu, but this runtime "
                   "verified seq %llu of it before: a rollback, refused (a "
                   "room that really began again comes with a signed later "
                   "epoch)",
                   (unsigned long long)rt_state.chain.seq,
                   (unsigned long long)f->seq);
}

/* A signed head: verified, then weighed against the chain. Describes into
 * j: ok, epoch, seq, time_us and what to do — fresh (it says where the
 * room is now), resync (a patch was missed), reset (a later epoch: start
 * afresh) — or the refusal (code, error; and a failed ack). */
pb_err rt_head_receive(const pb_head_frame *f, rt_json *j)
{
    pb_head h;
    pb_errmsg why = {{0}};
    pb_err e = pb_head_verify(f, rt_state.key, &h, &why);
    const pb_chain *c = &rt_state.chain;
    bool is_fresh = false, is_behind = false, needs_resync = false,
         needs_reset = false;
    if (!e && !pb_str_eq(h.room, c->room))
        e = pb_fail(&why, PB_ERR_WRONG_ROOM,
                    "a signed head of room \"%.*s\", this is room \"%s\"",
                    (int)h.room.len, h.room.ptr, c->room);
    if (!e && !rt_state.is_epoch_known) {
        /* a fresh runtime with no floor: the room's epoch is this one */
        if ((e = chain_at_epoch(h.epoch)))
            pb_fail(&why, e, "bad room");
        rt_state.is_epoch_known = !e;
    }
    if (!e) {
        rt_json_num(j, "epoch", (double)h.epoch);
        rt_json_num(j, "seq", (double)h.seq);
        rt_json_num(j, "time_us", (double)h.time_us);
        if (h.epoch < c->epoch) {
            e = pb_fail(&why, PB_ERR_CHAIN_REPLAY,
                        "a signed head of epoch %llu, before this room's "
                        "epoch %llu: an old head again",
                        (unsigned long long)h.epoch,
                        (unsigned long long)c->epoch);
        } else if (h.epoch > c->epoch && !c->seq && !rt_state.first) {
            /* the relay began the room again, signed, and nothing of the
             * old epoch is here: continue in the new one */
            if (!(e = chain_at_epoch(h.epoch))) {
                rt_state.floor = (rt_floor){.epoch = h.epoch};
                is_fresh = true;
            }
        } else if (h.epoch > c->epoch) {
            needs_reset = true; /* ...and this instance holds the old one */
        } else if (h.seq == c->seq && memcmp(h.hash, c->hash, PB_HASH_BYTES)) {
            e = pb_fail(&why, PB_ERR_CHAIN_FORK,
                        "the signed head says seq %llu is another patch than "
                        "the one this runtime has",
                        (unsigned long long)h.seq);
        } else if (h.seq == c->seq) {
            is_fresh = true; /* it names this runtime's own head */
        } else if (h.seq > c->seq) {
            /* the room is ahead: not fresh; a patch was missed, or the
             * catch-up has not come yet (the host asks again if it does
             * not: host.js behind) */
            is_behind = true;
            needs_resync = rt_state.is_caught_up;
        }
        /* else: behind this runtime, so older than what it has: not fresh */
    }
    pb_head_free(&h);
    rt_json_bool(j, "ok", !e);
    if (e) {
        rt_report_failed(0, e, NULL, "signed head refused: %s", why.text);
        rt_json_num(j, "code", e);
        rt_json_str(j, "error", why.text, strlen(why.text));
        return e;
    }
    rt_json_bool(j, "fresh", is_fresh);
    if (is_behind)
        rt_json_bool(j, "behind", true);
    if (needs_reset)
        rt_json_bool(j, "reset", true);
    if (needs_resync) {
        static const char ahead[] = "the signed head is ahead of this runtime";
        rt_json_str(j, "resync", ahead, sizeof ahead - 1);
    }
    return PB_OK;
}
