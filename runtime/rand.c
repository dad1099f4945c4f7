/* rand.c — rand() seeded per patch, so that a replay draws what the room
 * drew (docs/ARCHITECTURE.md § Determinism, docs/PROTOCOL.md § Replay).
 *
 * Before the host calls into patch code it asks for a seed: pb_init after
 * the patch that defines it commits, an expression's pb_expr, each
 * pb_frame (for its room time) and each test. The seed comes from the
 * patch's identity — the room and seq it was first evaluated as, which a
 * replayed or restored patch carries as its origin — so the same patch
 * seeds the same numbers in the room, in a replay into another room and in
 * an exported file. A patch that calls srand() itself keeps its own
 * sequence until the next call into it. */
#include "internal.h"

#include <emscripten.h>
#include <stdlib.h>
#include <string.h>

static const char domain[] = "patchbay-rand";

void rt_rand_identity(const pb_statement *st, uint8_t out[RT_RAND_ID_BYTES])
{
    pb_str room = st->origin_seq ? st->origin_room : st->room;
    uint64_t seq = st->origin_seq ? st->origin_seq : st->seq;
    uint8_t msg[sizeof domain + PB_MAX_NAME_BYTES + 1 + 8];
    size_t n = 0;
    memcpy(msg, domain, sizeof domain - 1);
    n += sizeof domain - 1;
    memcpy(msg + n, room.ptr, room.len);
    n += room.len;
    msg[n++] = 0;
    for (int i = 0; i < 8; i++)
        msg[n++] = (uint8_t)(seq >> (8 * i));
    uint8_t h[PB_HASH_BYTES];
    pb_hash(msg, n, h);
    memcpy(out, h, RT_RAND_ID_BYTES);
}

/* Seeds rand() for a call of the given kind (RT_RAND_INIT, _EXPR,
 * _FRAME, _TEST) into the code of the last committed patch; t_us is the
 * frame's room time (0 for the others). */
EMSCRIPTEN_KEEPALIVE
void rt_seed_rand(int call, double t_us)
{
    uint8_t msg[RT_RAND_ID_BYTES + 1 + 8];
    memcpy(msg, rt_state.rand_id, RT_RAND_ID_BYTES);
    msg[RT_RAND_ID_BYTES] = (uint8_t)call;
    uint64_t t = t_us > 0 && t_us < 1.8e19 ? (uint64_t)t_us : 0;
    for (int i = 0; i < 8; i++)
        msg[RT_RAND_ID_BYTES + 1 + i] = (uint8_t)(t >> (8 * i));
    uint8_t h[PB_HASH_BYTES];
    pb_hash(msg, sizeof msg, h);
    srand((unsigned)h[0] | (unsigned)h[1] << 8 | (unsigned)h[2] << 16 |
          (unsigned)h[3] << 24);
}
