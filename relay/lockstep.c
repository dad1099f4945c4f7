/* lockstep.c — when a patch applies, and how well a room kept time.
 *
 * Apply time: created + lead, and with a tempo and a quantum, moved on to
 * the next quantum boundary. Beats count from the Unix epoch on the room
 * clock (beat = seconds * bpm / 60), the same rule the runtimes use for
 * pb_beat(), so every screen agrees on where a bar starts without any
 * further state; a tempo change moves the phase (docs/ARCHITECTURE.md).
 *
 * Lead: fixed when the room sets one; otherwise the relay's default (50
 * ms) or, when the room's slowest runtime needs more, what it needed over
 * the last RELAY_LS_LEAD_WINDOW patches plus half and 10 ms, at most
 * RELAY_LS_LEAD_MAX_US. "Needed" is the time from the statement's creation
 * until that runtime's `prepared` ack reached the relay: compile-to-send,
 * delivery and prepare, plus the ack's way back (an overestimate, on the
 * safe side). One runtime counts once per patch and alone moves a patch's
 * need at most RELAY_LS_SOLO_US past the next slowest runtime's: a runtime
 * token that delays its acks cannot slow the whole room down.
 *
 * Spread: the room times at which the runtimes that were in the room when
 * the patch was broadcast committed it (their `committed` acks); catch-up
 * commits of runtimes that joined later are not lockstep and do not count.
 * Kept for the last RELAY_LS_SLOTS patches of each room and written to the
 * history once a patch has settled (relay_lockstep_take_settled, which
 * room.c's relay_rooms_record_stats calls four times a second). */
#include "lockstep.h"

#include <stdlib.h>
#include <string.h>

pb_err relay_room_settings_check(const pb_room *r, pb_errmsg *why)
{
    if (!(r->tempo_bpm == 0 || (r->tempo_bpm >= PB_MIN_TEMPO_BPM &&
                                r->tempo_bpm <= PB_MAX_TEMPO_BPM)))
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "room settings: tempo %g BPM is out of range: 0 (no "
                       "tempo) or %u to %u BPM",
                       r->tempo_bpm, PB_MIN_TEMPO_BPM, PB_MAX_TEMPO_BPM);
    if (r->tempo_bpm > 0 &&
        r->quantum * 60e6 / r->tempo_bpm > (double)PB_MAX_QUANTUM_US)
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "room settings: a quantum of %u beats at %g BPM lasts "
                       "%.0f s, more than %u s",
                       r->quantum, r->tempo_bpm,
                       r->quantum * 60.0 / r->tempo_bpm,
                       PB_MAX_QUANTUM_US / 1000000u);
    if (r->lead_us > PB_MAX_LEAD_US)
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "room settings: a lead of %llu ms is more than %u ms",
                       (unsigned long long)(r->lead_us / 1000),
                       PB_MAX_LEAD_US / 1000u);
    return PB_OK;
}

uint64_t relay_apply_time(uint64_t created_us, uint64_t lead_us,
                          double tempo_bpm, uint32_t quantum)
{
    uint64_t t = created_us + lead_us;
    /* Settings out of bounds (an old history's) never place a patch more
     * than one bounded quantum ahead: they are ignored. */
    pb_room r = {tempo_bpm, quantum, 0};
    if (tempo_bpm <= 0 || !quantum || relay_room_settings_check(&r, NULL))
        return t;
    double q = (double)quantum * 60e6 / tempo_bpm; /* µs per quantum */
    double k = (double)t / q;
    uint64_t n = (uint64_t)k;
    if ((double)n < k)
        n++;
    uint64_t at = (uint64_t)((double)n * q + 0.5);
    /* rounding must never make it earlier than the lead allows */
    return at < t ? t : at;
}

static relay_ls_slot *slot_of(relay_lockstep *ls, uint64_t seq)
{
    relay_ls_slot *s = &ls->slot[seq % RELAY_LS_SLOTS];
    return s->seq == seq ? s : NULL;
}

uint64_t relay_lockstep_lead(const relay_lockstep *ls, uint64_t base_us)
{
    uint64_t need = 0;
    for (uint32_t i = 0; i < RELAY_LS_SLOTS; i++) {
        const relay_ls_slot *s = &ls->slot[i];
        if (!s->seq || s->seq + RELAY_LS_LEAD_WINDOW <= ls->head_seq)
            continue;
        uint64_t capped = s->need2_us + RELAY_LS_SOLO_US;
        uint64_t n = s->need_us < capped ? s->need_us : capped;
        if (n > need)
            need = n;
    }
    uint64_t want = need ? need + need / 2 + 10000 : 0;
    if (want > RELAY_LS_LEAD_MAX_US)
        want = RELAY_LS_LEAD_MAX_US;
    return want > base_us ? want : base_us;
}

void relay_lockstep_patch(relay_lockstep *ls, uint64_t seq, uint64_t created_us,
                          uint64_t apply_us, uint64_t now_us)
{
    relay_ls_slot *s = &ls->slot[seq % RELAY_LS_SLOTS];
    /* a slot being reused holds a patch RELAY_LS_SLOTS older, settled
     * long ago: relay_lockstep_take_settled hands out a slot's stats once
     * its patch is RELAY_LS_SLOTS / 2 behind the head, before this */
    memset(s, 0, sizeof *s);
    s->seq = seq;
    s->created_us = created_us;
    s->apply_us = apply_us;
    s->broadcast_us = now_us;
    if (seq > ls->head_seq)
        ls->head_seq = seq;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t median(const relay_ls_slot *s)
{
    uint64_t t[RELAY_LS_TIMES];
    uint32_t n = s->n < RELAY_LS_TIMES ? s->n : RELAY_LS_TIMES;
    memcpy(t, s->times, n * sizeof *t);
    qsort(t, n, sizeof *t, cmp_u64);
    return n ? t[n / 2] : 0;
}

bool relay_lockstep_ack(relay_lockstep *ls, relay_ls_runtime *rt,
                        const pb_ack *a, uint64_t now_us, int64_t *skew_us)
{
    relay_ls_slot *s = slot_of(ls, a->seq);
    if (!s || rt->joined_us > s->broadcast_us)
        return false; /* too old to track, or a catch-up */
    if (a->state == PB_ACK_PREPARED) {
        /* a runtime prepares patches in seq order: once each */
        if (a->seq <= rt->prepared_seq)
            return false;
        rt->prepared_seq = a->seq;
        uint64_t need = now_us > s->created_us ? now_us - s->created_us : 0;
        if (need > s->need_us) {
            s->need2_us = s->need_us;
            s->need_us = need;
        } else if (need > s->need2_us) {
            s->need2_us = need;
        }
        return false;
    }
    if (a->state != PB_ACK_COMMITTED || !a->commit_at_us ||
        a->seq <= rt->committed_seq)
        return false;
    rt->committed_seq = a->seq;
    uint64_t t = a->commit_at_us;
    if (!s->n || t < s->first_us)
        s->first_us = t;
    if (!s->n || t > s->last_us)
        s->last_us = t;
    int64_t late = (int64_t)(t - s->apply_us);
    if (!s->n || late > s->max_late_us)
        s->max_late_us = late;
    if (s->n < RELAY_LS_TIMES)
        s->times[s->n] = t;
    s->n++;
    s->dirty = true;
    if (skew_us)
        *skew_us = (int64_t)(t - median(s));
    return true;
}

bool relay_lockstep_stats(const relay_lockstep *ls, uint64_t seq,
                          relay_commit_stats *out)
{
    const relay_ls_slot *s = &ls->slot[seq % RELAY_LS_SLOTS];
    if (s->seq != seq || !s->n)
        return false;
    memset(out, 0, sizeof *out);
    out->seq = seq;
    out->runtimes = s->n;
    out->apply_us = s->apply_us;
    out->spread_us = s->last_us - s->first_us;
    out->max_late_us = s->max_late_us;
    out->need_us = s->need_us;
    return true;
}

uint32_t relay_lockstep_take_settled(relay_lockstep *ls, uint64_t now_us,
                                     bool all, relay_commit_stats *out,
                                     uint32_t cap)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < RELAY_LS_SLOTS && n < cap; i++) {
        relay_ls_slot *s = &ls->slot[i];
        if (!s->dirty)
            continue;
        /* settled: applied a while ago, or about to be overwritten */
        bool old = now_us > s->apply_us + RELAY_LS_SETTLE_US ||
                   s->seq + RELAY_LS_SLOTS / 2 <= ls->head_seq;
        if (!all && !old)
            continue;
        if (relay_lockstep_stats(ls, s->seq, &out[n]))
            n++;
        s->dirty = false;
    }
    return n;
}
