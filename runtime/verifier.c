/* verifier.c — the verifier instance (docs/SECURITY.md § Patch code,
 * runtime/README.md § The verifier instance).
 *
 * Patch code shares the linear memory of the instance it is loaded into, so
 * whatever decides what may run cannot live there: the host keeps a second
 * instance of this same build, switched into verify-only mode before it has
 * received anything. It holds the pinned key, the chain head, the epoch and
 * the floor; every frame from the relay goes to it first. It verifies and
 * chains patches, weighs signed heads and catch-ups exactly as a session
 * does (session.c, head.c, catchup.c) — but it writes, loads, queues and
 * runs nothing, so no patch code ever runs in its memory. rt_session_pass
 * says what of each frame the host may hand on to the patch instance:
 * nothing else reaches it. The floor the host persists and the freshness it
 * shows come from the verifier alone. */
#include "internal.h"

#include <emscripten.h>
#include <stdlib.h>

rt_pass rt_passed;
static pb_buf passed; /* the batch of the verified items (RT_PASS_ITEMS) */

/* Open, and nothing received yet: the only time a session takes a role. */
static bool is_untouched(void)
{
    return rt_state.is_open && !rt_state.chain.seq && !rt_state.first &&
           !rt_state.is_verifier && !rt_state.is_behind_verifier;
}

/* Makes this session a verifier: once, after rt_session_open and before
 * anything was received. Returns an error code. */
EMSCRIPTEN_KEEPALIVE
int rt_session_verify_only(void)
{
    if (!is_untouched())
        return PB_ERR_UNEXPECTED;
    rt_state.is_verifier = true;
    return PB_OK;
}

/* Makes this session a patch instance behind a verifier: it gets only the
 * bytes the verifier passed, whose signatures it checked, so it checks
 * everything but the signatures again (the statement, the key it names,
 * the hashes, the chain): an Ed25519 verification per patch, not two. Once,
 * after rt_session_open and before anything was received. */
EMSCRIPTEN_KEEPALIVE
int rt_session_behind_verifier(void)
{
    if (!is_untouched())
        return PB_ERR_UNEXPECTED;
    rt_state.is_behind_verifier = true;
    return PB_OK;
}

/* Some items of a catch-up batch verified, others did not: the patch
 * instance gets a batch of the verified ones only, encoded here from what
 * was decoded (rt_session_passed_data/len). */
bool rt_pass_items(const pb_history *h, const bool *is_ok)
{
    pb_frame f = {.type = PB_T_HISTORY};
    f.history = *h;
    f.history.items = calloc(h->n_items ? h->n_items : 1, sizeof(pb_patch));
    f.history.n_items = 0;
    pb_errmsg why = {{0}};
    pb_buf_free(&passed);
    pb_buf_init(&passed);
    if (!f.history.items)
        return false;
    for (uint32_t i = 0; i < h->n_items; i++)
        if (is_ok[i])
            f.history.items[f.history.n_items++] = h->items[i];
    bool is_encoded = !pb_frame_encode(&f, &passed, &why);
    if (is_encoded)
        rt_passed = RT_PASS_ITEMS;
    free(f.history.items); /* the items themselves belong to h */
    return is_encoded;
}

/* What of the frame the last rt_session_receive got the host may hand the
 * patch instance: an rt_pass (0 in a session that is not a verifier). */
EMSCRIPTEN_KEEPALIVE
int rt_session_pass(void)
{
    return rt_passed;
}

EMSCRIPTEN_KEEPALIVE
const uint8_t *rt_session_passed_data(void)
{
    return passed.data;
}

EMSCRIPTEN_KEEPALIVE
uint32_t rt_session_passed_len(void)
{
    return (uint32_t)passed.len;
}
