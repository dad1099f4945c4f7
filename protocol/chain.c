/* chain.c — the hash chain rules (docs/PROTOCOL.md § Chain): each room's
 * statements are numbered 1, 2, 3… and each names the hash of the one
 * before it, so a verifier holding only the head can tell a gap, a fork, a
 * replay and a statement from another room apart. */
#include "internal.h"

#include <string.h>

pb_err pb_chain_init(pb_chain *c, const char *room)
{
    memset(c, 0, sizeof *c);
    size_t n = room ? strlen(room) : 0;
    if (n == 0 || n > PB_MAX_NAME_BYTES)
        return PB_ERR_FIELD_RANGE;
    memcpy(c->room, room, n);
    return PB_OK;
}

pb_err pb_chain_init_epoch(pb_chain *c, const char *room, uint64_t epoch,
                           const uint8_t key[PB_PUBLICKEY_BYTES])
{
    pb_err e = pb_chain_init(c, room);
    if (e)
        return e;
    c->epoch = epoch;
    pb_epoch_genesis(c->room, epoch, key, c->hash);
    return PB_OK;
}

pb_err pb_chain_check(const pb_chain *head, const pb_statement *next,
                      pb_errmsg *why)
{
    char a[2 * PB_HASH_BYTES + 1], b[2 * PB_HASH_BYTES + 1];
    if (!pb_str_eq(next->room, head->room))
        return pb_fail(why, PB_ERR_WRONG_ROOM,
                       "patch seq %llu is for room \"%.*s\", this is room "
                       "\"%s\"",
                       (unsigned long long)next->seq, (int)next->room.len,
                       next->room.ptr, head->room);
    if (next->seq <= head->seq)
        return pb_fail(why, PB_ERR_CHAIN_REPLAY,
                       "patch seq %llu is at or below the head (seq %llu): "
                       "replayed or out of order",
                       (unsigned long long)next->seq,
                       (unsigned long long)head->seq);
    if (next->seq > head->seq + 1)
        return pb_fail(why, PB_ERR_CHAIN_GAP,
                       "patch seq %llu skips ahead: expected seq %llu",
                       (unsigned long long)next->seq,
                       (unsigned long long)head->seq + 1);
    if (memcmp(next->prev_hash, head->hash, PB_HASH_BYTES) != 0)
        return pb_fail(why, PB_ERR_CHAIN_FORK,
                       "patch seq %llu follows %.16s…, but seq %llu is %.16s…",
                       (unsigned long long)next->seq,
                       pb_hex(next->prev_hash, PB_HASH_BYTES, a),
                       (unsigned long long)head->seq,
                       pb_hex(head->hash, PB_HASH_BYTES, b));
    return PB_OK;
}

void pb_chain_advance(pb_chain *head, const pb_statement *next)
{
    head->seq = next->seq;
    memcpy(head->hash, next->hash, PB_HASH_BYTES);
}
