/* fields.c — one decoder and one encoder for every frame, driven by the
 * field tables in frame.c. The rules they enforce are those of
 * docs/PROTOCOL.md § Frames: keys are strings, unknown keys are ignored,
 * duplicates and wrong types are rejected, lengths and counts are bounded,
 * required fields must be present, and the encoder checks the same limits so
 * nothing is sent that a peer would reject. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define AT(base, off, type)   ((type *)((char *)(base) + (off)))
#define AT_C(base, off, type) ((const type *)((const char *)(base) + (off)))

static const char *kind_name(pb_kind k)
{
    switch (k) {
    case PB_K_U64:
    case PB_K_U32: return "unsigned int";
    case PB_K_I64: return "int";
    case PB_K_BOOL: return "bool";
    case PB_K_F64: return "number";
    case PB_K_STR:
    case PB_K_ENUM: return "str";
    case PB_K_BIN:
    case PB_K_SIG:
    case PB_K_HASH: return "bin";
    case PB_K_ARRAY: return "array";
    }
    return "?";
}

static pb_err wrong_type(pb_errmsg *why, const char *path, const pb_field *f,
                         const msgpack_object *v)
{
    return pb_fail(why, PB_ERR_FIELD_TYPE,
                   "%s: field \"%s\" must be %s, got %s", path, f->key,
                   kind_name(f->kind), pb_msgpack_type_name(v->type));
}

static void enum_list(const pb_field *f, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (uint32_t i = 1; i <= f->max && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s", i > 1 ? "|" : "",
                              f->names[i]);
}

static pb_err decode_value(const pb_field *f, const msgpack_object *v,
                           void *dst, msgpack_zone *zone, const char *path,
                           pb_errmsg *why)
{
    switch (f->kind) {
    case PB_K_U64:
    case PB_K_U32:
        if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return wrong_type(why, path, f, v);
        if (f->kind == PB_K_U32) {
            uint64_t max = f->max ? f->max : UINT32_MAX;
            if (v->via.u64 > max)
                return pb_fail(why, PB_ERR_FIELD_RANGE,
                               "%s: field \"%s\" is %llu, at most %llu", path,
                               f->key, (unsigned long long)v->via.u64,
                               (unsigned long long)max);
            *AT(dst, f->off, uint32_t) = (uint32_t)v->via.u64;
        } else {
            *AT(dst, f->off, uint64_t) = v->via.u64;
        }
        return PB_OK;
    case PB_K_I64:
        if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
            *AT(dst, f->off, int64_t) = v->via.i64;
            return PB_OK;
        }
        if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return wrong_type(why, path, f, v);
        if (v->via.u64 > (uint64_t)INT64_MAX)
            return pb_fail(why, PB_ERR_FIELD_RANGE,
                           "%s: field \"%s\" does not fit in int64", path,
                           f->key);
        *AT(dst, f->off, int64_t) = (int64_t)v->via.u64;
        return PB_OK;
    case PB_K_BOOL:
        if (v->type != MSGPACK_OBJECT_BOOLEAN)
            return wrong_type(why, path, f, v);
        *AT(dst, f->off, bool) = v->via.boolean;
        return PB_OK;
    case PB_K_F64: {
        double d;
        if (v->type == MSGPACK_OBJECT_FLOAT32 ||
            v->type == MSGPACK_OBJECT_FLOAT64)
            d = v->via.f64;
        else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            d = (double)v->via.u64;
        else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            d = (double)v->via.i64;
        else
            return wrong_type(why, path, f, v);
        if (!isfinite(d))
            return pb_fail(why, PB_ERR_FIELD_RANGE,
                           "%s: field \"%s\" is not a finite number", path,
                           f->key);
        *AT(dst, f->off, double) = d;
        return PB_OK;
    }
    case PB_K_STR:
    case PB_K_ENUM: {
        if (v->type != MSGPACK_OBJECT_STR)
            return wrong_type(why, path, f, v);
        const char *p = v->via.str.ptr;
        uint32_t n = v->via.str.size;
        if (!pb_is_utf8(p, n))
            return pb_fail(why, PB_ERR_BAD_UTF8,
                           "%s: field \"%s\" is not valid UTF-8", path, f->key);
        if (f->kind == PB_K_STR) {
            if (n > f->max)
                return pb_fail(why, PB_ERR_FIELD_RANGE,
                               "%s: field \"%s\" is %u bytes, at most %u", path,
                               f->key, n, f->max);
            pb_str s = {p ? p : "", n};
            *AT(dst, f->off, pb_str) = s;
            return PB_OK;
        }
        pb_str s = {p, n};
        for (uint32_t i = 1; i <= f->max; i++) {
            if (pb_str_eq(s, f->names[i])) {
                *AT(dst, f->off, int) = (int)i;
                return PB_OK;
            }
        }
        char list[160];
        enum_list(f, list, sizeof list);
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "%s: field \"%s\" is \"%.*s\", not one of %s", path,
                       f->key, (int)(n > 40 ? 40 : n), p ? p : "", list);
    }
    case PB_K_BIN:
    case PB_K_SIG:
    case PB_K_HASH: {
        if (v->type != MSGPACK_OBJECT_BIN)
            return wrong_type(why, path, f, v);
        uint32_t n = v->via.bin.size;
        uint32_t want = f->kind == PB_K_SIG    ? PB_SIG_BYTES
                        : f->kind == PB_K_HASH ? PB_HASH_BYTES
                                               : 0;
        if (want && n != want)
            return pb_fail(why, PB_ERR_FIELD_RANGE,
                           "%s: field \"%s\" is %u bytes, must be %u", path,
                           f->key, n, want);
        if (!want && n > f->max)
            return pb_fail(why, PB_ERR_FIELD_RANGE,
                           "%s: field \"%s\" is %u bytes, at most %u", path,
                           f->key, n, f->max);
        const uint8_t *p = (const uint8_t *)v->via.bin.ptr;
        if (f->kind == PB_K_HASH) {
            memcpy(AT(dst, f->off, uint8_t), p, PB_HASH_BYTES);
        } else {
            pb_bytes b = {p ? p : (const uint8_t *)"", n};
            *AT(dst, f->off, pb_bytes) = b;
        }
        return PB_OK;
    }
    case PB_K_ARRAY: {
        if (v->type != MSGPACK_OBJECT_ARRAY)
            return wrong_type(why, path, f, v);
        uint32_t n = v->via.array.size;
        if (n > f->max)
            return pb_fail(why, PB_ERR_FIELD_RANGE,
                           "%s: field \"%s\" has %u elements, at most %u", path,
                           f->key, n, f->max);
        void *items = NULL;
        if (n) {
            items = msgpack_zone_malloc(zone, (size_t)n * f->elem->size);
            if (!items)
                return pb_fail(why, PB_ERR_NOMEM, "%s: out of memory", path);
            memset(items, 0, (size_t)n * f->elem->size);
        }
        for (uint32_t i = 0; i < n; i++) {
            char sub[96];
            snprintf(sub, sizeof sub, "%s.%s[%u]", path, f->key, i);
            pb_err e = pb_obj_decode(f->elem, &v->via.array.ptr[i],
                                     (char *)items + (size_t)i * f->elem->size,
                                     zone, false, sub, why);
            if (e)
                return e;
        }
        *AT(dst, f->off, void *) = items;
        *AT(dst, f->count_off, uint32_t) = n;
        return PB_OK;
    }
    }
    return pb_fail(why, PB_ERR_INTERNAL, "%s: bad field table", path);
}

pb_err pb_obj_decode(const pb_obj *desc, const msgpack_object *map, void *dst,
                     msgpack_zone *zone, bool skip_vt, const char *path,
                     pb_errmsg *why)
{
    if (map->type != MSGPACK_OBJECT_MAP)
        return pb_fail(why, PB_ERR_NOT_A_MAP, "%s: must be a map, got %s", path,
                       pb_msgpack_type_name(map->type));
    uint64_t seen = 0; /* tables have at most 64 fields */
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR)
            return pb_fail(why, PB_ERR_FIELD_TYPE,
                           "%s: a key is %s, keys must be str", path,
                           pb_msgpack_type_name(kv->key.type));
        pb_str key = {kv->key.via.str.ptr, kv->key.via.str.size};
        if (skip_vt && (pb_str_eq(key, "v") || pb_str_eq(key, "t")))
            continue;
        for (uint32_t k = 0; k < desc->n_fields; k++) {
            const pb_field *f = &desc->fields[k];
            if (!pb_str_eq(key, f->key))
                continue;
            if (seen & (1ull << k))
                return pb_fail(why, PB_ERR_DUPLICATE_FIELD,
                               "%s: field \"%s\" appears twice", path, f->key);
            seen |= 1ull << k;
            pb_err e = decode_value(f, &kv->val, dst, zone, path, why);
            if (e)
                return e;
            break;
        }
        /* Unknown keys are ignored so that newer peers can add fields. */
    }
    for (uint32_t k = 0; k < desc->n_fields; k++) {
        const pb_field *f = &desc->fields[k];
        if (!f->required || (seen & (1ull << k)))
            continue;
        return pb_fail(why, PB_ERR_MISSING_FIELD,
                       "%s: required field \"%s\" is missing", path, f->key);
    }
    for (uint32_t k = 0; k < desc->n_fields; k++) {
        const pb_field *f = &desc->fields[k];
        if (f->kind == PB_K_ENUM && f->required && *AT(dst, f->off, int) == 0)
            return pb_fail(why, PB_ERR_FIELD_RANGE, "%s: field \"%s\" is empty",
                           path, f->key);
    }
    return PB_OK;
}

static bool is_present(const pb_field *f, const void *src)
{
    if (f->required)
        return true;
    switch (f->kind) {
    case PB_K_U64: return *AT_C(src, f->off, uint64_t) != 0;
    case PB_K_U32: return *AT_C(src, f->off, uint32_t) != 0;
    case PB_K_I64: return *AT_C(src, f->off, int64_t) != 0;
    case PB_K_BOOL: return *AT_C(src, f->off, bool);
    case PB_K_F64: return *AT_C(src, f->off, double) != 0.0;
    case PB_K_STR: return AT_C(src, f->off, pb_str)->len != 0;
    case PB_K_BIN:
    case PB_K_SIG: return AT_C(src, f->off, pb_bytes)->ptr != NULL;
    case PB_K_HASH: {
        static const uint8_t zero[PB_HASH_BYTES];
        return memcmp(AT_C(src, f->off, uint8_t), zero, PB_HASH_BYTES) != 0;
    }
    case PB_K_ENUM: return *AT_C(src, f->off, int) != 0;
    case PB_K_ARRAY: return *AT_C(src, f->count_off, uint32_t) != 0;
    }
    return false;
}

uint32_t pb_obj_count(const pb_obj *desc, const void *src)
{
    uint32_t n = 0;
    for (uint32_t k = 0; k < desc->n_fields; k++)
        n += is_present(&desc->fields[k], src);
    return n;
}

static pb_err encode_value(const pb_field *f, const void *src,
                           msgpack_packer *pk, const char *path, pb_errmsg *why)
{
    switch (f->kind) {
    case PB_K_U64:
        msgpack_pack_uint64(pk, *AT_C(src, f->off, uint64_t));
        return PB_OK;
    case PB_K_U32: {
        uint32_t v = *AT_C(src, f->off, uint32_t);
        if (f->max && v > f->max)
            return pb_fail(why, PB_ERR_FIELD_RANGE,
                           "%s: field \"%s\" is %u, at most %u", path, f->key,
                           v, f->max);
        msgpack_pack_uint32(pk, v);
        return PB_OK;
    }
    case PB_K_I64:
        msgpack_pack_int64(pk, *AT_C(src, f->off, int64_t));
        return PB_OK;
    case PB_K_BOOL:
        if (*AT_C(src, f->off, bool))
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        return PB_OK;
    case PB_K_F64: {
        double d = *AT_C(src, f->off, double);
        if (!isfinite(d))
            return pb_fail(why, PB_ERR_FIELD_RANGE,
                           "%s: field \"%s\" is not a finite number", path,
                           f->key);
        msgpack_pack_double(pk, d);
        return PB_OK;
    }
    case PB_K_STR: {
        pb_str s = *AT_C(src, f->off, pb_str);
        if (s.len > f->max)
            return pb_fail(why, PB_ERR_FIELD_RANGE,
                           "%s: field \"%s\" is %u bytes, at most %u", path,
                           f->key, s.len, f->max);
        if (!pb_is_utf8(s.ptr, s.len))
            return pb_fail(why, PB_ERR_BAD_UTF8,
                           "%s: field \"%s\" is not valid UTF-8", path, f->key);
        msgpack_pack_str_with_body(pk, s.len ? s.ptr : "", s.len);
        return PB_OK;
    }
    case PB_K_ENUM: {
        int v = *AT_C(src, f->off, int);
        if (v < 1 || (uint32_t)v > f->max)
            return pb_fail(why, PB_ERR_FIELD_RANGE,
                           "%s: field \"%s\" has no valid value (%d)", path,
                           f->key, v);
        msgpack_pack_str_with_body(pk, f->names[v], strlen(f->names[v]));
        return PB_OK;
    }
    case PB_K_BIN:
    case PB_K_SIG: {
        pb_bytes b = *AT_C(src, f->off, pb_bytes);
        if (f->kind == PB_K_SIG && b.len != PB_SIG_BYTES)
            return pb_fail(why, PB_ERR_FIELD_RANGE,
                           "%s: field \"%s\" is %u bytes, must be %u", path,
                           f->key, b.len, PB_SIG_BYTES);
        if (f->kind == PB_K_BIN && b.len > f->max)
            return pb_fail(why, PB_ERR_FIELD_RANGE,
                           "%s: field \"%s\" is %u bytes, at most %u", path,
                           f->key, b.len, f->max);
        msgpack_pack_bin_with_body(pk, b.len ? b.ptr : (const uint8_t *)"",
                                   b.len);
        return PB_OK;
    }
    case PB_K_HASH:
        msgpack_pack_bin_with_body(pk, AT_C(src, f->off, uint8_t),
                                   PB_HASH_BYTES);
        return PB_OK;
    case PB_K_ARRAY: {
        uint32_t n = *AT_C(src, f->count_off, uint32_t);
        const char *items = *(const char *const *)((const char *)src + f->off);
        if (n > f->max)
            return pb_fail(why, PB_ERR_FIELD_RANGE,
                           "%s: field \"%s\" has %u elements, at most %u", path,
                           f->key, n, f->max);
        if (n && !items)
            return pb_fail(why, PB_ERR_INTERNAL,
                           "%s: field \"%s\" has a count but no items", path,
                           f->key);
        msgpack_pack_array(pk, n);
        for (uint32_t i = 0; i < n; i++) {
            char sub[96];
            const void *item = items + (size_t)i * f->elem->size;
            snprintf(sub, sizeof sub, "%s.%s[%u]", path, f->key, i);
            msgpack_pack_map(pk, pb_obj_count(f->elem, item));
            pb_err e = pb_obj_encode_fields(f->elem, item, pk, sub, why);
            if (e)
                return e;
        }
        return PB_OK;
    }
    }
    return pb_fail(why, PB_ERR_INTERNAL, "%s: bad field table", path);
}

pb_err pb_obj_encode_fields(const pb_obj *desc, const void *src,
                            msgpack_packer *pk, const char *path,
                            pb_errmsg *why)
{
    for (uint32_t k = 0; k < desc->n_fields; k++) {
        const pb_field *f = &desc->fields[k];
        if (!is_present(f, src))
            continue;
        msgpack_pack_str_with_body(pk, f->key, strlen(f->key));
        pb_err e = encode_value(f, src, pk, path, why);
        if (e)
            return e;
    }
    return PB_OK;
}
