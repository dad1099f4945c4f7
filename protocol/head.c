/* head.c — the signed head of a room (docs/PROTOCOL.md § The signed head)
 * and the genesis of a room's epoch.
 *
 * A runtime must never go backwards on an unsigned claim, and must notice
 * when it is being starved. So the relay signs, right after welcome and
 * then every PB_HEAD_EVERY_US, a small statement of where its room is:
 * [ "pb-head", 1, room, epoch, seq, hash, time_us, key ]. The tag comes
 * first, so no head statement can be taken for a patch statement (whose
 * first element is a version number) nor the other way round. The epoch
 * is when the relay created the room in its history: a relay that lost its
 * history and starts the room again starts a new, later epoch, and only a
 * signed head with a later epoch lets a runtime start afresh. Each epoch's
 * chain begins at its own genesis hash (the prev_hash of its seq 1), so no
 * patch of one epoch fits into another. Encoded canonically (decode
 * re-encodes and compares), like the patch statement. */
#include "internal.h"

#include <sodium.h>
#include <string.h>

#define HEAD_TAG  "pb-head"
#define EPOCH_TAG "pb-epoch"
#define N_ELEMS   8u
#define HEAD_OBJS 16u /* msgpack values in a head statement */

static void pack_tag(msgpack_packer *pk, const char *tag)
{
    msgpack_pack_str_with_body(pk, tag, strlen(tag));
}

void pb_epoch_genesis(const char *room, uint64_t epoch,
                      const uint8_t key[PB_PUBLICKEY_BYTES],
                      uint8_t out[PB_HASH_BYTES])
{
    memset(out, 0, PB_HASH_BYTES);
    if (!epoch)
        return; /* a room from before epochs: its chain starts at zero */
    uint8_t mem[2 * PB_MAX_NAME_BYTES + 64];
    pb_buf b;
    pb_buf_init_fixed(&b, mem, sizeof mem);
    pb_writer w;
    pb_writer_start(&w, &b, sizeof mem);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &w, pb_writer_write);
    msgpack_pack_array(&pk, 4);
    pack_tag(&pk, EPOCH_TAG);
    msgpack_pack_str_with_body(&pk, room, strlen(room));
    msgpack_pack_uint64(&pk, epoch);
    msgpack_pack_bin_with_body(&pk, key, PB_PUBLICKEY_BYTES);
    if (!w.err) /* a room name is at most PB_MAX_NAME_BYTES: it fits */
        pb_hash(b.data, b.len, out);
}

pb_err pb_head_encode(const pb_head *h, pb_buf *out, pb_errmsg *why)
{
    if (h->room.len == 0 || h->room.len > PB_MAX_NAME_BYTES ||
        !pb_is_utf8(h->room.ptr, h->room.len))
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "head: room must be 1 to %u bytes of UTF-8",
                       PB_MAX_NAME_BYTES);
    msgpack_packer pk;
    pb_writer w;
    pb_writer_start(&w, out, PB_MAX_HEAD_BYTES);
    msgpack_packer_init(&pk, &w, pb_writer_write);
    msgpack_pack_array(&pk, N_ELEMS);
    pack_tag(&pk, HEAD_TAG);
    msgpack_pack_uint32(&pk, PB_HEAD_VERSION);
    msgpack_pack_str_with_body(&pk, h->room.ptr, h->room.len);
    msgpack_pack_uint64(&pk, h->epoch);
    msgpack_pack_uint64(&pk, h->seq);
    msgpack_pack_bin_with_body(&pk, h->hash, PB_HASH_BYTES);
    msgpack_pack_uint64(&pk, h->time_us);
    msgpack_pack_bin_with_body(&pk, h->key, PB_PUBLICKEY_BYTES);
    if (w.err) {
        out->len = 0;
        return pb_fail(why, w.err, "head: encoding failed: %s",
                       pb_strerror(w.err));
    }
    return PB_OK;
}

static bool is_uint(const msgpack_object *o, uint64_t *v)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *v = o->via.u64;
    return true;
}

static bool is_bin32(const msgpack_object *o, uint8_t out[32])
{
    if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != 32)
        return false;
    memcpy(out, o->via.bin.ptr, 32);
    return true;
}

/* The head's elements into out (pb_canonical_decode's take). */
static pb_err take_head(const msgpack_object *o, msgpack_zone *zone, void *vout,
                        pb_errmsg *why)
{
    (void)zone; /* the room points into the zone through o */
    pb_head *out = vout;
    bool is_array = o->type == MSGPACK_OBJECT_ARRAY;
    const msgpack_object *el = is_array ? o->via.array.ptr : NULL;
    if (!is_array || o->via.array.size != N_ELEMS ||
        el[0].type != MSGPACK_OBJECT_STR ||
        el[0].via.str.size != strlen(HEAD_TAG) ||
        memcmp(el[0].via.str.ptr, HEAD_TAG, strlen(HEAD_TAG)))
        return pb_fail(why, PB_ERR_FIELD_TYPE,
                       "head: must be an array of %u beginning \"%s\"", N_ELEMS,
                       HEAD_TAG);
    uint64_t version = 0;
    if (!is_uint(&el[1], &version) || version != PB_HEAD_VERSION)
        return pb_fail(why, PB_ERR_VERSION, "head: version must be %u",
                       PB_HEAD_VERSION);
    if (el[2].type != MSGPACK_OBJECT_STR || !is_uint(&el[3], &out->epoch) ||
        !is_uint(&el[4], &out->seq) || !is_bin32(&el[5], out->hash) ||
        !is_uint(&el[6], &out->time_us) || !is_bin32(&el[7], out->key))
        return pb_fail(why, PB_ERR_FIELD_TYPE,
                       "head: [tag, version, room str, epoch uint, seq uint, "
                       "hash bin 32, time_us uint, key bin 32] expected");
    out->room = (pb_str){el[2].via.str.ptr ? el[2].via.str.ptr : "",
                         el[2].via.str.size};
    return PB_OK;
}

static pb_err encode_head(const void *h, pb_buf *out, pb_errmsg *why)
{
    return pb_head_encode(h, out, why);
}

pb_err pb_head_decode(const uint8_t *buf, size_t len, pb_head *out,
                      pb_errmsg *why)
{
    memset(out, 0, sizeof *out);
    if (len > PB_MAX_HEAD_BYTES)
        return pb_fail(why, PB_ERR_TOO_BIG, "head: %zu bytes, at most %u", len,
                       PB_MAX_HEAD_BYTES);
    msgpack_zone *zone = NULL;
    pb_err e = pb_canonical_decode(buf, len, HEAD_OBJS, "head", take_head,
                                   encode_head, out, &zone, why);
    if (e) {
        memset(out, 0, sizeof *out);
        return e;
    }
    out->priv_ = zone;
    return PB_OK;
}

void pb_head_free(pb_head *h)
{
    if (!h)
        return;
    if (h->priv_)
        msgpack_zone_free(h->priv_);
    memset(h, 0, sizeof *h);
}

pb_err pb_head_verify(const pb_head_frame *f,
                      const uint8_t pinned_key[PB_PUBLICKEY_BYTES],
                      pb_head *out, pb_errmsg *why)
{
    char a[2 * PB_HASH_BYTES + 1], b[2 * PB_HASH_BYTES + 1];
    memset(out, 0, sizeof *out);
    /* the signature first, over the bytes as they came (as for patches) */
    if (f->sig.len != PB_SIG_BYTES || !f->stmt.ptr ||
        pb_verify(f->stmt.ptr, f->stmt.len, f->sig.ptr, pinned_key) != PB_OK)
        return pb_fail(why, PB_ERR_BAD_SIGNATURE,
                       "a head statement of %u bytes whose signature does not "
                       "verify with the room's key %.16s…",
                       f->stmt.len, pb_hex(pinned_key, PB_PUBLICKEY_BYTES, b));
    pb_err e = pb_head_decode(f->stmt.ptr, f->stmt.len, out, why);
    if (e)
        return e;
    if (sodium_memcmp(out->key, pinned_key, PB_PUBLICKEY_BYTES) != 0) {
        pb_fail(why, PB_ERR_WRONG_KEY,
                "head: signed with the room's key %.16s… but naming key "
                "%.16s…",
                pb_hex(pinned_key, PB_PUBLICKEY_BYTES, b),
                pb_hex(out->key, PB_PUBLICKEY_BYTES, a));
        pb_head_free(out);
        return PB_ERR_WRONG_KEY;
    }
    return PB_OK;
}
