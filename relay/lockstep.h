/* lockstep.h — private to relay/ (and its tests): the per-room record of
 * when patches apply and how well the runtimes kept time (lockstep.c). */
#ifndef PB_RELAY_LOCKSTEP_H
#define PB_RELAY_LOCKSTEP_H

#include "relay.h"

#define RELAY_LS_SLOTS       32 /* patches tracked per room */
#define RELAY_LS_TIMES       64 /* commit times kept per patch (median) */
#define RELAY_LS_LEAD_WINDOW 16 /* patches the adaptive lead looks back */
#define RELAY_LS_LEAD_MAX_US 2000000u
/* How much one runtime alone may raise the need of a patch over the next
 * slowest runtime's (or over nothing, in a room of one runtime), so that
 * one runtime token cannot push the lead of every patch to its bound. */
#define RELAY_LS_SOLO_US 500000u
#define RELAY_LS_SETTLE_US   2000000u /* after apply, a patch's stats are final \
                                       */

typedef struct relay_ls_slot {
    uint64_t seq, created_us, apply_us, broadcast_us;
    uint32_t n;
    uint64_t first_us, last_us;
    int64_t max_late_us;
    uint64_t need_us;  /* the slowest runtime's, for the stats */
    uint64_t need2_us; /* the next slowest runtime's */
    uint64_t times[RELAY_LS_TIMES];
    bool dirty;
} relay_ls_slot;

typedef struct relay_lockstep {
    relay_ls_slot slot[RELAY_LS_SLOTS]; /* by seq % RELAY_LS_SLOTS */
    uint64_t head_seq;
} relay_lockstep;

/* PB_OK if a room's settings keep its apply times within
 * PB_MAX_APPLY_AHEAD_US (docs/PROTOCOL.md § Time): a tempo of 0 or
 * PB_MIN_TEMPO_BPM..PB_MAX_TEMPO_BPM, a quantum of at most
 * PB_MAX_QUANTUM_US, a lead of at most PB_MAX_LEAD_US; else
 * PB_ERR_FIELD_RANGE saying which. */
pb_err relay_room_settings_check(const pb_room *r, pb_errmsg *why) PB_WUR;
/* created + lead, moved on to the next quantum boundary when the room has
 * a tempo (beats counted from the Unix epoch on the room clock). */
uint64_t relay_apply_time(uint64_t created_us, uint64_t lead_us,
                          double tempo_bpm, uint32_t quantum);
/* The lead for the room's next patch: base_us, or more if a runtime needed
 * more for one of the recent patches (at most RELAY_LS_LEAD_MAX_US). */
uint64_t relay_lockstep_lead(const relay_lockstep *ls, uint64_t base_us);
/* A patch was broadcast at now_us. */
void relay_lockstep_patch(relay_lockstep *ls, uint64_t seq, uint64_t created_us,
                          uint64_t apply_us, uint64_t now_us);
/* What lockstep remembers of one runtime (zeroed when it joins): each of
 * its acks counts once per patch, however often it sends it. */
typedef struct relay_ls_runtime {
    uint64_t joined_us;     /* welcome sent: later patches are live */
    uint64_t prepared_seq;  /* highest seq whose prepared ack counted */
    uint64_t committed_seq; /* highest seq whose committed ack counted */
} relay_ls_runtime;

/* An ack from runtime rt, received at now_us. Returns true for a live
 * commit counted now, with the runtime's commit time minus the patch's
 * median so far in *skew_us (may be NULL). */
bool relay_lockstep_ack(relay_lockstep *ls, relay_ls_runtime *rt,
                        const pb_ack *a, uint64_t now_us, int64_t *skew_us);
/* The stats of a tracked patch; false if untracked or nobody committed. */
bool relay_lockstep_stats(const relay_lockstep *ls, uint64_t seq,
                          relay_commit_stats *out);
/* Stats changed since last taken whose patch has settled (all: every
 * changed one), at most cap; the caller records them. */
uint32_t relay_lockstep_take_settled(relay_lockstep *ls, uint64_t now_us,
                                     bool all, relay_commit_stats *out,
                                     uint32_t cap);

#endif
