/* module.c — what a side module may import: the runtime's ABI
 * (docs/PATCH_ABI.md), protocol/abi/api.list compiled in (api_list.c,
 * generated from it at build time, the file the runtime's export list is
 * generated from too). A module that imports anything else would load and
 * fail only when the call runs (Emscripten resolves a missing function to
 * a stub that throws), so a runtime checks a module's imports before it
 * loads it, even a module the relay signed: what the runtime does not
 * offer, no patch reaches. The small, bounds-checked reader of wasm
 * sections (pb_wasm_read) is the compiler's too, for its checks on a linked
 * module; every length is checked against the bytes before use. */
#include "internal.h"

#include <string.h>

static int leb_u32(const uint8_t *p, size_t len, size_t *i, uint32_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 35; shift += 7) {
        if (*i >= len)
            return -1;
        uint8_t b = p[(*i)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (v > UINT32_MAX)
                return -1;
            *out = (uint32_t)v;
            return 0;
        }
    }
    return -1;
}

static int name(const uint8_t *p, size_t len, size_t *i, pb_str *out)
{
    uint32_t n;
    if (leb_u32(p, len, i, &n) || n > len - *i)
        return -1;
    out->ptr = (const char *)p + *i;
    out->len = n;
    *i += n;
    return 0;
}

static int skip_limits(const uint8_t *p, size_t len, size_t *i)
{
    uint32_t flags, v;
    if (leb_u32(p, len, i, &flags) || leb_u32(p, len, i, &v))
        return -1;
    if ((flags & 1) && leb_u32(p, len, i, &v))
        return -1;
    return 0;
}

/* Skips an import's description (kind: 0 function, 1 table, 2 memory,
 * 3 global); -1 if it is malformed or of another kind. */
static int skip_import(const uint8_t *p, size_t end, size_t *j, uint8_t kind)
{
    uint32_t type;
    switch (kind) {
    case 0: return leb_u32(p, end, j, &type); /* type index */
    case 1:                                   /* reftype, limits */
        if (*j >= end)
            return -1;
        (*j)++;
        return skip_limits(p, end, j);
    case 2: return skip_limits(p, end, j);
    case 3: /* valtype, mutability */
        if (end - *j < 2)
            return -1;
        *j += 2;
        return 0;
    default: return -1;
    }
}

bool pb_abi_has(pb_str name, bool is_data)
{
    for (size_t i = 0; i < pb_abi_list_len; i++)
        if (pb_abi_list[i].is_data == is_data &&
            pb_str_eq(name, pb_abi_list[i].name))
            return true;
    return false;
}

bool pb_abi_import_allowed(pb_str module, pb_str field, uint8_t kind)
{
    static const char *const linker[] = {"memory", "__indirect_function_table",
                                         "__stack_pointer", "__memory_base",
                                         "__table_base"};
    if (pb_str_eq(module, "env")) {
        for (size_t k = 0; k < sizeof linker / sizeof linker[0]; k++)
            if (pb_str_eq(field, linker[k]))
                return true;
        return kind == 0 && pb_abi_has(field, false);
    }
    if (pb_str_eq(module, "GOT.func"))
        return pb_abi_has(field, false);
    if (pb_str_eq(module, "GOT.mem"))
        return pb_abi_has(field, true);
    return false;
}

/* Hands each import of the import section p[j, end) to v. */
static pb_err read_imports(const uint8_t *p, size_t end, size_t j,
                           const pb_wasm_visitor *v, bool *go_on,
                           pb_errmsg *why)
{
    uint32_t count;
    if (leb_u32(p, end, &j, &count))
        return pb_fail(why, PB_ERR_MALFORMED, "bad wasm import count");
    for (uint32_t k = 0; k < count && *go_on; k++) {
        pb_str mod, field;
        if (name(p, end, &j, &mod) || name(p, end, &j, &field) || j >= end)
            return pb_fail(why, PB_ERR_MALFORMED, "wasm import %u is cut short",
                           k);
        uint8_t kind = p[j++];
        if (skip_import(p, end, &j, kind))
            return pb_fail(why, PB_ERR_MALFORMED, "wasm import %u is malformed",
                           k);
        *go_on = v->on_import(v->ctx, mod, field, kind);
    }
    return PB_OK;
}

/* Hands each export of the export section p[j, end) to v. */
static pb_err read_exports(const uint8_t *p, size_t end, size_t j,
                           const pb_wasm_visitor *v, bool *go_on,
                           pb_errmsg *why)
{
    uint32_t count, index;
    if (leb_u32(p, end, &j, &count))
        return pb_fail(why, PB_ERR_MALFORMED, "bad wasm export count");
    for (uint32_t k = 0; k < count && *go_on; k++) {
        pb_str field;
        if (name(p, end, &j, &field) || j >= end)
            return pb_fail(why, PB_ERR_MALFORMED, "wasm export %u is cut short",
                           k);
        uint8_t kind = p[j++];
        if (leb_u32(p, end, &j, &index))
            return pb_fail(why, PB_ERR_MALFORMED, "wasm export %u is malformed",
                           k);
        *go_on = v->on_export(v->ctx, field, kind);
    }
    return PB_OK;
}

pb_err pb_wasm_read(const uint8_t *p, size_t len, const pb_wasm_visitor *v,
                    pb_errmsg *why)
{
    static const uint8_t magic[8] = {0, 'a', 's', 'm', 1, 0, 0, 0};
    if (!p || len < 8 || memcmp(p, magic, 8) != 0)
        return pb_fail(why, PB_ERR_MALFORMED, "not a wasm module");
    size_t i = 8;
    bool go_on = true;
    while (i < len && go_on) {
        bool is_first = i == 8;
        uint8_t id = p[i++];
        uint32_t size;
        if (leb_u32(p, len, &i, &size) || size > len - i)
            return pb_fail(why, PB_ERR_MALFORMED,
                           "wasm section at offset %zu runs past the end", i);
        size_t end = i + size, j = i;
        i = end;
        pb_err e = PB_OK;
        if (id == 0 && v->on_custom) {
            pb_str n;
            if (name(p, end, &j, &n))
                return pb_fail(why, PB_ERR_MALFORMED,
                               "wasm custom section at offset %zu has no "
                               "name",
                               j);
            go_on = v->on_custom(v->ctx, n, p + j, end - j, is_first);
        } else if (id == 2 && v->on_import) {
            e = read_imports(p, end, j, v, &go_on, why);
        } else if (id == 7 && v->on_export) {
            e = read_exports(p, end, j, v, &go_on, why);
        }
        if (e)
            return e;
    }
    return PB_OK;
}

/* The first import the runtime does not offer, if any. */
typedef struct refused {
    pb_str module, field;
    bool is_refused;
} refused;

static bool check_import(void *ctx, pb_str module, pb_str field, uint8_t kind)
{
    refused *r = ctx;
    if (pb_abi_import_allowed(module, field, kind))
        return true;
    *r = (refused){module, field, true};
    return false;
}

pb_err pb_module_check_imports(const uint8_t *p, size_t len, pb_errmsg *why)
{
    refused r = {0};
    pb_wasm_visitor v = {.ctx = &r, .on_import = check_import};
    pb_err e = pb_wasm_read(p, len, &v, why);
    if (e || !r.is_refused)
        return e;
    return pb_fail(why, PB_ERR_PREPARE,
                   "the module imports %.*s.%.*s, which this runtime does "
                   "not offer (protocol/abi/api.list)",
                   (int)(r.module.len > 64 ? 64 : r.module.len), r.module.ptr,
                   (int)(r.field.len > 64 ? 64 : r.field.len), r.field.ptr);
}
