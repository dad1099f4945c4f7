/* limits.c — how much one client may ask of the relay (docs/SECURITY.md
 * § Limits). Every rate is a token bucket: it refills at a rate per second
 * up to a burst, and a request that finds too few tokens is refused
 * without taking any. The table below gives each frame type a client may
 * send its own rate, per connection: a runtime token shown on a projector
 * may be in a hundred phones, each an honest runtime, so what runtimes
 * send is limited per runtime; what one person asks for (evals, history)
 * is limited per token name in the room, where a reconnect does not refill
 * it (quota.c). */
#include "internal.h"

bool relay_bucket_take(relay_bucket *b, double per_s, double burst, double cost,
                       uint64_t now_us)
{
    if (!b->at_us) {
        b->tokens = burst; /* a new bucket starts full */
    } else if (now_us > b->at_us) {
        b->tokens += (double)(now_us - b->at_us) * per_s / 1e6;
        if (b->tokens > burst)
            b->tokens = burst;
    }
    b->at_us = now_us ? now_us : 1;
    if (b->tokens < cost)
        return false;
    b->tokens -= cost;
    return true;
}

uint64_t relay_bucket_wait_us(const relay_bucket *b, double per_s, double burst,
                              double cost, uint64_t now_us)
{
    if (!b->at_us || per_s <= 0)
        return 0;
    double have = b->tokens;
    if (now_us > b->at_us)
        have += (double)(now_us - b->at_us) * per_s / 1e6;
    if (have > burst)
        have = burst;
    return have >= cost ? 0 : (uint64_t)((cost - have) / per_s * 1e6) + 1;
}

/* Frames a client sends, per connection: well above what an honest client
 * sends (a runtime: two acks per patch, at most 20 log lines a second and
 * a burst of 40, runtime/report.c; a page: a ping every 500 ms), so that
 * only a flood is cut. Eval and history_req are per token name (quota.c);
 * hello is once. */
static const struct {
    double per_s, burst;
} frame_rates[PB_T_COUNT_] = {
    [PB_T_PING] = {20, 40},       [PB_T_ACK] = {100, 200},
    [PB_T_LOG] = {30, 100},       [PB_T_TEST_RESULT] = {10, 20},
    [PB_T_TEST_REQ] = {5, 10},    [PB_T_ROOM] = {5, 10},
    [PB_T_SNAPSHOT_REQ] = {2, 5}, [PB_T_SNAPSHOT] = {2, 5},
    [PB_T_LOG_REQ] = {1, 3},
    /* presence moves with every key: pages send it at most every 50 ms */
    [PB_T_BUFFER_AWARE] = {40, 80},
};

bool relay_frame_rate_take(relay_session *s, pb_type t, uint64_t now_us,
                           double *per_s)
{
    if (t <= PB_T_NONE || t >= PB_T_COUNT_ || !frame_rates[t].per_s)
        return true;
    *per_s = frame_rates[t].per_s;
    return relay_bucket_take(&s->frames[t], frame_rates[t].per_s,
                             frame_rates[t].burst, 1, now_us);
}
