/* scan.c — a bounded, allocation-free pass over msgpack bytes before
 * msgpack-c unpacks them. msgpack-c allocates a container's elements from
 * the count in its header, so a 5-byte "array of 4 billion" would ask for
 * ~100 GB; this pass proves the input is one complete value with at most
 * max_objects values and bounded nesting, so the unpacker's memory is
 * bounded by the input (docs/PROTOCOL.md § Limits). */
#include "internal.h"

#include <msgpack.h>
#include <string.h>

static uint64_t be(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Scans the one msgpack value at the start of buf; *end is where it ends. */
static pb_err scan_value(const uint8_t *buf, size_t len, uint32_t max_objects,
                         uint32_t max_depth, size_t *end, pb_errmsg *why)
{
    /* pending[d]: values still to read at depth d. */
    uint64_t pending[PB_MAX_NESTING + 2];
    uint32_t depth = 0;
    uint64_t objects = 0;
    size_t i = 0;

    if (max_depth > PB_MAX_NESTING + 1)
        max_depth = PB_MAX_NESTING + 1;
    pending[0] = 1;
    while (depth > 0 || pending[0] > 0) {
        if (pending[depth] == 0) {
            depth--;
            continue;
        }
        if (i >= len)
            return pb_fail(why, PB_ERR_TRUNCATED,
                           "input ends at byte %zu inside a msgpack value",
                           len);
        pending[depth]--;
        if (++objects > max_objects)
            return pb_fail(why, PB_ERR_TOO_BIG, "more than %u msgpack values",
                           max_objects);
        uint8_t c = buf[i++];
        uint64_t skip = 0; /* payload bytes after the header */
        uint64_t children = 0;
        unsigned hdr = 0; /* size of a length field that follows */
        bool container = false;

        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
            /* fixint, nil, bool: done */
        } else if (c >= 0x80 && c <= 0x8f) {
            children = 2u * (c & 0x0f);
            container = true;
        } else if (c >= 0x90 && c <= 0x9f) {
            children = c & 0x0f;
            container = true;
        } else if (c >= 0xa0 && c <= 0xbf) {
            skip = c & 0x1f;
        } else {
            /* clang-format off */
            switch (c) {
            case 0xc4: case 0xd9: hdr = 1; break;             /* bin8 str8 */
            case 0xc5: case 0xda: hdr = 2; break;             /* bin16 str16 */
            case 0xc6: case 0xdb: hdr = 4; break;             /* bin32 str32 */
            case 0xc7: hdr = 1; skip = 1; break;              /* ext8 */
            case 0xc8: hdr = 2; skip = 1; break;              /* ext16 */
            case 0xc9: hdr = 4; skip = 1; break;              /* ext32 */
            case 0xca: skip = 4; break;                       /* float32 */
            case 0xcb: skip = 8; break;                       /* float64 */
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;                       /* fixext */
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: hdr = 2; container = true; break;      /* array16 */
            case 0xdd: hdr = 4; container = true; break;      /* array32 */
            case 0xde: hdr = 2; container = true; break;      /* map16 */
            case 0xdf: hdr = 4; container = true; break;      /* map32 */
            default:
                return pb_fail(why, PB_ERR_MALFORMED,
                               "byte 0x%02x at offset %zu is not a msgpack "
                               "type", c, i - 1);
            }
            /* clang-format on */
            if (hdr) {
                if (len - i < hdr)
                    return pb_fail(why, PB_ERR_TRUNCATED,
                                   "input ends inside a length at offset %zu",
                                   i);
                uint64_t n = be(buf + i, hdr);
                i += hdr;
                if (container)
                    children = (c == 0xde || c == 0xdf) ? 2 * n : n;
                else
                    skip += n;
            }
        }
        if (skip > len - i)
            return pb_fail(why, PB_ERR_TRUNCATED,
                           "a value at offset %zu claims %llu bytes, only "
                           "%zu remain",
                           i, (unsigned long long)skip, len - i);
        i += skip;
        if (container && children > 0) {
            /* Every value takes at least one byte, and the total is capped. */
            if (children > len - i || objects + children > max_objects)
                return pb_fail(
                    why, children > len - i ? PB_ERR_TRUNCATED : PB_ERR_TOO_BIG,
                    "a container at offset %zu claims %llu values", i,
                    (unsigned long long)children);
            if (depth + 1 > max_depth)
                return pb_fail(why, PB_ERR_MALFORMED,
                               "msgpack nested deeper than %u levels",
                               max_depth);
            pending[++depth] = children;
        }
    }
    *end = i;
    return PB_OK;
}

pb_err pb_scan(const uint8_t *buf, size_t len, uint32_t max_objects,
               uint32_t max_depth, pb_errmsg *why)
{
    size_t end = 0;
    pb_err e = scan_value(buf, len, max_objects, max_depth, &end, why);
    if (!e && end != len)
        e = pb_fail(why, PB_ERR_MALFORMED,
                    "%zu trailing bytes after the msgpack value", len - end);
    return e;
}

pb_err pb_frame_length(const uint8_t *buf, size_t len, size_t *frame_len,
                       pb_errmsg *why)
{
    *frame_len = 0;
    size_t end = 0;
    size_t n = len > PB_MAX_FRAME_BYTES ? PB_MAX_FRAME_BYTES : len;
    pb_err e =
        scan_value(buf, n, PB_MAX_FRAME_OBJECTS, PB_MAX_NESTING, &end, why);
    if (e == PB_ERR_TRUNCATED && n < len)
        e = pb_fail(why, PB_ERR_TOO_BIG, "a frame longer than %u bytes",
                    PB_MAX_FRAME_BYTES);
    if (!e)
        *frame_len = end;
    return e;
}

pb_err pb_unpack(const uint8_t *buf, size_t len, uint32_t max_objects,
                 msgpack_object *obj, msgpack_zone **zone, const char *what,
                 pb_errmsg *why)
{
    *zone = NULL;
    pb_err e = pb_scan(buf, len, max_objects, PB_MAX_NESTING, why);
    if (e) {
        if (why) {
            pb_errmsg inner = *why;
            pb_fail(why, e, "%s: %s", what, inner.text);
        }
        return e;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    msgpack_unpack_return r =
        msgpack_unpack_next(&u, (const char *)buf, len, &off);
    if (r != MSGPACK_UNPACK_SUCCESS || off != len) {
        msgpack_unpacked_destroy(&u);
        if (r == MSGPACK_UNPACK_NOMEM_ERROR)
            return pb_fail(why, PB_ERR_NOMEM, "%s: out of memory", what);
        /* pb_scan accepted it, so this is msgpack-c disagreeing. */
        return pb_fail(why, PB_ERR_MALFORMED, "%s: msgpack-c rejected it (%d)",
                       what, (int)r);
    }
    *obj = u.data;
    *zone = msgpack_unpacked_release_zone(&u);
    msgpack_unpacked_destroy(&u);
    /* msgpack-c creates no zone for a lone scalar; callers need one. */
    if (!*zone)
        *zone = msgpack_zone_new(256);
    if (!*zone)
        return pb_fail(why, PB_ERR_NOMEM, "%s: out of memory", what);
    return PB_OK;
}

pb_err pb_canonical_decode(const uint8_t *buf, size_t len, uint32_t max_objects,
                           const char *what, pb_take_fn take,
                           pb_encode_fn encode, void *out, msgpack_zone **zone,
                           pb_errmsg *why)
{
    msgpack_object o;
    pb_buf again;
    pb_buf_init(&again);
    pb_err e = pb_unpack(buf, len, max_objects, &o, zone, what, why);
    if (!e)
        e = take(&o, *zone, out, why);
    if (!e)
        e = encode(out, &again, why);
    if (!e && (again.len != len || memcmp(again.data, buf, len) != 0))
        e = pb_fail(why, PB_ERR_NOT_CANONICAL,
                    "%s: bytes are not the canonical encoding (%zu bytes, "
                    "canonical form is %zu)",
                    what, len, again.len);
    pb_buf_free(&again);
    if (e) {
        msgpack_zone_free(*zone);
        *zone = NULL;
    }
    return e;
}

const char *pb_msgpack_type_name(msgpack_object_type t)
{
    switch (t) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "bool";
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return "int";
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "negative int";
    case MSGPACK_OBJECT_FLOAT32: return "float32";
    case MSGPACK_OBJECT_FLOAT64: return "float64";
    case MSGPACK_OBJECT_STR: return "str";
    case MSGPACK_OBJECT_ARRAY: return "array";
    case MSGPACK_OBJECT_MAP: return "map";
    case MSGPACK_OBJECT_BIN: return "bin";
    case MSGPACK_OBJECT_EXT: return "ext";
    }
    return "unknown";
}
