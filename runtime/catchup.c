/* catchup.c — catch-up batches: the history frames a runtime gets after
 * welcome (docs/PROTOCOL.md § Catch-up and replay). */
#include "internal.h"

#include <emscripten.h>

/* A catch-up batch: every item is checked like a live patch (a module-less
 * item is verified and moves the head, nothing is loaded). Its apply times
 * have passed, so it commits at once — but behind anything queued before
 * it, which keeps its own time: order first. The last batch (more: false)
 * acks the head once, when it commits, instead of every item. */
void rt_catchup_receive(const pb_history *h, uint64_t now_us, rt_json *j)
{
    uint32_t n_ok = 0, n_failed = 0;
    rt_json_num(j, "req", (double)h->req);
    rt_json_num(j, "head_seq", (double)h->head_seq);
    rt_json_bool(j, "more", h->more);
    rt_json_open(j, "items", '[');
    for (uint32_t i = 0; i < h->n_items; i++) {
        rt_json_open(j, NULL, '{');
        if (rt_accept_patch(&h->items[i], false, now_us, j))
            n_failed++;
        else
            n_ok++;
        rt_json_close(j, '}');
    }
    rt_json_close(j, ']');
    if (!h->more && n_ok)
        rt_state.catchup_ack_seq = rt_state.chain.seq;
    rt_session_tick((double)now_us);
    rt_json_num(j, "verified", n_ok);
    rt_json_num(j, "failed", n_failed);
}
