/* statement.c — the canonical encoding of the patch statement
 * (docs/PROTOCOL.md § Statement). The statement is what the relay signs and
 * what the chain links, so exactly one byte string may stand for a given
 * statement: it is a fixed-order msgpack array in msgpack-c's shortest
 * forms, and decode re-encodes and compares to reject any other spelling.
 * A statement of definitions is version 1 with 12 elements; an expression's
 * is version 2 with its kind as a 13th, so a verifier that predates
 * expressions refuses it (PB_ERR_VERSION) instead of taking it for
 * definitions. A replayed or restored patch is version 3 with 15: the kind
 * ("" for definitions), then the room and seq of the patch it repeats. */
#include "internal.h"

#include <stdio.h>
#include <string.h>

#define N_ELEMS        12u /* version 1 */
#define N_ELEMS_EXPR   13u /* version 2: + kind */
#define N_ELEMS_ORIGIN 15u /* version 3: + kind, origin room, origin seq */

static pb_err check_name(pb_str s, const char *what, uint32_t max,
                         bool empty_ok, pb_errmsg *why)
{
    if (!empty_ok && s.len == 0)
        return pb_fail(why, PB_ERR_FIELD_RANGE, "statement: %s is empty", what);
    if (s.len > max)
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "statement: %s is %u bytes, at most %u", what, s.len,
                       max);
    if (!pb_is_utf8(s.ptr, s.len))
        return pb_fail(why, PB_ERR_BAD_UTF8, "statement: %s is not UTF-8",
                       what);
    return PB_OK;
}

static pb_err check(const pb_statement *s, pb_errmsg *why)
{
    pb_err e;
    if ((e = check_name(s->room, "room", PB_MAX_NAME_BYTES, false, why)))
        return e;
    if (s->seq == 0)
        return pb_fail(why, PB_ERR_FIELD_RANGE, "statement: seq must be >= 1");
    if (s->n_symbols > PB_MAX_SYMBOLS)
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "statement: %u symbols, at most %u", s->n_symbols,
                       PB_MAX_SYMBOLS);
    for (uint32_t i = 0; i < s->n_symbols; i++) {
        char what[48];
        snprintf(what, sizeof what, "symbols[%u] name", i);
        if ((e = check_name(s->symbols[i].name, what, PB_MAX_NAME_BYTES, false,
                            why)))
            return e;
        snprintf(what, sizeof what, "symbols[%u] type", i);
        if ((e = check_name(s->symbols[i].type, what, PB_MAX_TYPE_BYTES, false,
                            why)))
            return e;
    }
    if ((e = check_name(s->author, "author", PB_MAX_NAME_BYTES, true, why)))
        return e;
    if (s->lang <= PB_LANG_NONE || s->lang > (pb_lang)PB_N_LANGS)
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "statement: lang %d is not a known language",
                       (int)s->lang);
    if (s->kind > (pb_patch_kind)PB_N_PATCH_KINDS)
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "statement: kind %d is not a known patch kind",
                       (int)s->kind);
    if (s->kind == PB_KIND_EXPR && s->n_symbols)
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "statement: an expression defines no symbols (it "
                       "names %u)",
                       s->n_symbols);
    if (s->origin_room.len || s->origin_seq) {
        if ((e = check_name(s->origin_room, "origin room", PB_MAX_NAME_BYTES,
                            false, why)))
            return e;
        if (!s->origin_seq)
            return pb_fail(why, PB_ERR_FIELD_RANGE,
                           "statement: origin seq must be >= 1");
    }
    return PB_OK;
}

static void pack_str(msgpack_packer *pk, pb_str s)
{
    msgpack_pack_str_with_body(pk, s.len ? s.ptr : "", s.len);
}

pb_err pb_statement_encode(const pb_statement *s, pb_buf *out, pb_errmsg *why)
{
    pb_err e = check(s, why);
    if (e)
        return e;
    msgpack_packer pk;
    pb_writer w;
    pb_writer_start(&w, out, PB_MAX_STATEMENT_BYTES);
    msgpack_packer_init(&pk, &w, pb_writer_write);
    bool has_origin = s->origin_seq != 0;
    bool has_kind = has_origin || s->kind != PB_KIND_DEFS;
    msgpack_pack_array(&pk, has_origin ? N_ELEMS_ORIGIN
                            : has_kind ? N_ELEMS_EXPR
                                       : N_ELEMS);
    msgpack_pack_uint32(&pk, has_origin ? PB_STATEMENT_VERSION_ORIGIN
                             : has_kind ? PB_STATEMENT_VERSION_EXPR
                                        : PB_STATEMENT_VERSION);
    pack_str(&pk, s->room);
    msgpack_pack_uint64(&pk, s->seq);
    msgpack_pack_bin_with_body(&pk, s->prev_hash, PB_HASH_BYTES);
    msgpack_pack_bin_with_body(&pk, s->module_hash, PB_HASH_BYTES);
    msgpack_pack_array(&pk, s->n_symbols);
    for (uint32_t i = 0; i < s->n_symbols; i++) {
        msgpack_pack_array(&pk, 2);
        pack_str(&pk, s->symbols[i].name);
        pack_str(&pk, s->symbols[i].type);
    }
    pack_str(&pk, s->author);
    const char *lang = pb_lang_name(s->lang);
    msgpack_pack_str_with_body(&pk, lang, strlen(lang));
    msgpack_pack_bin_with_body(&pk, s->source_hash, PB_HASH_BYTES);
    msgpack_pack_uint64(&pk, s->created_us);
    msgpack_pack_uint64(&pk, s->apply_us);
    msgpack_pack_bin_with_body(&pk, s->key, PB_PUBLICKEY_BYTES);
    if (has_kind) {
        const char *kind = pb_patch_kind_name(s->kind);
        msgpack_pack_str_with_body(&pk, kind, strlen(kind));
    }
    if (has_origin) {
        pack_str(&pk, s->origin_room);
        msgpack_pack_uint64(&pk, s->origin_seq);
    }
    if (w.err) {
        out->len = 0;
        return pb_fail(why, w.err, "statement: encoding failed: %s",
                       pb_strerror(w.err));
    }
    return PB_OK;
}

/* Element accessors for decode: each checks the msgpack type. */
static pb_err get_u64(const msgpack_object *o, const char *what, uint64_t *v,
                      pb_errmsg *why)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return pb_fail(why, PB_ERR_FIELD_TYPE,
                       "statement: %s must be unsigned int, got %s", what,
                       pb_msgpack_type_name(o->type));
    *v = o->via.u64;
    return PB_OK;
}

static pb_err get_str(const msgpack_object *o, const char *what, pb_str *v,
                      pb_errmsg *why)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return pb_fail(why, PB_ERR_FIELD_TYPE,
                       "statement: %s must be str, got %s", what,
                       pb_msgpack_type_name(o->type));
    v->ptr = o->via.str.ptr ? o->via.str.ptr : "";
    v->len = o->via.str.size;
    return PB_OK;
}

static pb_err get_hash(const msgpack_object *o, const char *what,
                       uint8_t out[PB_HASH_BYTES], pb_errmsg *why)
{
    if (o->type != MSGPACK_OBJECT_BIN)
        return pb_fail(why, PB_ERR_FIELD_TYPE,
                       "statement: %s must be bin, got %s", what,
                       pb_msgpack_type_name(o->type));
    if (o->via.bin.size != PB_HASH_BYTES)
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "statement: %s is %u bytes, must be %u", what,
                       o->via.bin.size, PB_HASH_BYTES);
    memcpy(out, o->via.bin.ptr, PB_HASH_BYTES);
    return PB_OK;
}

static pb_err decode_elems(const msgpack_object *a, pb_statement *s,
                           msgpack_zone *zone, pb_errmsg *why)
{
    const msgpack_object *el = a->via.array.ptr;
    uint64_t version = 0;
    pb_err e;
    if ((e = get_u64(&el[0], "version", &version, why)))
        return e;
    if (version < PB_STATEMENT_VERSION || version > PB_STATEMENT_VERSION_ORIGIN)
        return pb_fail(why, PB_ERR_VERSION,
                       "statement: version %llu is not supported (this build "
                       "reads %u to %u)",
                       (unsigned long long)version, PB_STATEMENT_VERSION,
                       PB_STATEMENT_VERSION_ORIGIN);
    uint32_t want = version == PB_STATEMENT_VERSION        ? N_ELEMS
                    : version == PB_STATEMENT_VERSION_EXPR ? N_ELEMS_EXPR
                                                           : N_ELEMS_ORIGIN;
    if (a->via.array.size != want)
        return pb_fail(why, PB_ERR_FIELD_TYPE,
                       "statement: version %llu has %u elements, not %u",
                       (unsigned long long)version, want, a->via.array.size);
    if ((e = get_str(&el[1], "room", &s->room, why)) ||
        (e = get_u64(&el[2], "seq", &s->seq, why)) ||
        (e = get_hash(&el[3], "prev_hash", s->prev_hash, why)) ||
        (e = get_hash(&el[4], "module_hash", s->module_hash, why)))
        return e;
    const msgpack_object *syms = &el[5];
    if (syms->type != MSGPACK_OBJECT_ARRAY)
        return pb_fail(why, PB_ERR_FIELD_TYPE,
                       "statement: symbols must be array, got %s",
                       pb_msgpack_type_name(syms->type));
    uint32_t n = syms->via.array.size;
    if (n > PB_MAX_SYMBOLS)
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "statement: %u symbols, at most %u", n, PB_MAX_SYMBOLS);
    if (n) {
        s->symbols = msgpack_zone_malloc(zone, n * sizeof *s->symbols);
        if (!s->symbols)
            return pb_fail(why, PB_ERR_NOMEM, "statement: out of memory");
    }
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *pair = &syms->via.array.ptr[i];
        if (pair->type != MSGPACK_OBJECT_ARRAY || pair->via.array.size != 2)
            return pb_fail(why, PB_ERR_FIELD_TYPE,
                           "statement: symbols[%u] must be [name, type]", i);
        if ((e = get_str(&pair->via.array.ptr[0], "symbol name",
                         &s->symbols[i].name, why)) ||
            (e = get_str(&pair->via.array.ptr[1], "symbol type",
                         &s->symbols[i].type, why)))
            return e;
    }
    s->n_symbols = n;
    pb_str lang;
    if ((e = get_str(&el[6], "author", &s->author, why)) ||
        (e = get_str(&el[7], "lang", &lang, why)))
        return e;
    s->lang = pb_lang_parse(lang);
    if (s->lang == PB_LANG_NONE)
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "statement: lang \"%.*s\" is not one of c|lisp",
                       (int)(lang.len > 40 ? 40 : lang.len), lang.ptr);
    if ((e = get_hash(&el[8], "source_hash", s->source_hash, why)) ||
        (e = get_u64(&el[9], "created_us", &s->created_us, why)) ||
        (e = get_u64(&el[10], "apply_us", &s->apply_us, why)) ||
        (e = get_hash(&el[11], "key", s->key, why)))
        return e;
    if (want != N_ELEMS) {
        pb_str kind;
        if ((e = get_str(&el[12], "kind", &kind, why)))
            return e;
        s->kind = pb_patch_kind_parse(kind);
        /* version 2 exists for expressions; version 3 says "" for
         * definitions */
        bool is_defs = want == N_ELEMS_ORIGIN && kind.len == 0;
        if (s->kind == PB_KIND_DEFS && !is_defs)
            return pb_fail(why, PB_ERR_FIELD_RANGE,
                           "statement: kind \"%.*s\" is not one of %s",
                           (int)(kind.len > 40 ? 40 : kind.len), kind.ptr,
                           want == N_ELEMS_EXPR ? "expr" : "\"\"|expr");
    }
    if (want == N_ELEMS_ORIGIN) {
        if ((e = get_str(&el[13], "origin room", &s->origin_room, why)) ||
            (e = get_u64(&el[14], "origin seq", &s->origin_seq, why)))
            return e;
        if (!s->origin_seq)
            return pb_fail(why, PB_ERR_FIELD_RANGE,
                           "statement: origin seq must be >= 1");
    }
    return check(s, why);
}

/* The statement's elements into out (pb_canonical_decode's take). */
static pb_err take_statement(const msgpack_object *o, msgpack_zone *zone,
                             void *out, pb_errmsg *why)
{
    if (o->type != MSGPACK_OBJECT_ARRAY ||
        (o->via.array.size != N_ELEMS && o->via.array.size != N_ELEMS_EXPR &&
         o->via.array.size != N_ELEMS_ORIGIN))
        return pb_fail(why, PB_ERR_FIELD_TYPE,
                       "statement: must be an array of %u elements (%u for an "
                       "expression, %u for a replay)",
                       N_ELEMS, N_ELEMS_EXPR, N_ELEMS_ORIGIN);
    return decode_elems(o, out, zone, why);
}

static pb_err encode_statement(const void *s, pb_buf *out, pb_errmsg *why)
{
    return pb_statement_encode(s, out, why);
}

pb_err pb_statement_decode(const uint8_t *buf, size_t len, pb_statement *out,
                           pb_errmsg *why)
{
    memset(out, 0, sizeof *out);
    if (len > PB_MAX_STATEMENT_BYTES)
        return pb_fail(why, PB_ERR_TOO_BIG, "statement: %zu bytes, at most %u",
                       len, PB_MAX_STATEMENT_BYTES);
    if (len == 0)
        return pb_fail(why, PB_ERR_TRUNCATED, "statement: empty input");
    msgpack_zone *zone = NULL;
    pb_err e =
        pb_canonical_decode(buf, len, 4 * PB_MAX_SYMBOLS + 32, "statement",
                            take_statement, encode_statement, out, &zone, why);
    if (e) {
        memset(out, 0, sizeof *out);
        return e;
    }
    pb_hash(buf, len, out->hash);
    out->priv_ = zone;
    return PB_OK;
}

void pb_statement_free(pb_statement *s)
{
    if (!s)
        return;
    if (s->priv_)
        msgpack_zone_free(s->priv_);
    memset(s, 0, sizeof *s);
}
