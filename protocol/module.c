/* module.c — what a side module may import: the runtime's ABI
 * (docs/PATCH_ABI.md), protocol/abi/api.list compiled in (api_list.c,
 * generated from it at build time, the file the runtime's export list is
 * generated from too). A module that imports anything else would load and
 * fail only when the call runs (Emscripten resolves a missing function to
 * a stub that throws), so a runtime checks a module's imports before it
 * loads it, even a module the relay signed: what the runtime does not
 * offer, no patch reaches. A small, bounds-checked reader of the wasm
 * import section; every length is checked against the bytes before use. */
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

static bool is(pb_str s, const char *c)
{
    return s.len == strlen(c) && !memcmp(s.ptr, c, s.len);
}

bool pb_abi_has(pb_str name, bool is_data)
{
    for (size_t i = 0; i < pb_abi_list_len; i++)
        if (pb_abi_list[i].is_data == is_data && is(name, pb_abi_list[i].name))
            return true;
    return false;
}

bool pb_abi_import_allowed(pb_str module, pb_str field, uint8_t kind)
{
    static const char *const linker[] = {"memory", "__indirect_function_table",
                                         "__stack_pointer", "__memory_base",
                                         "__table_base"};
    if (is(module, "env")) {
        for (size_t k = 0; k < sizeof linker / sizeof linker[0]; k++)
            if (is(field, linker[k]))
                return true;
        return kind == 0 && pb_abi_has(field, false);
    }
    if (is(module, "GOT.func"))
        return pb_abi_has(field, false);
    if (is(module, "GOT.mem"))
        return pb_abi_has(field, true);
    return false;
}

pb_err pb_module_check_imports(const uint8_t *p, size_t len, pb_errmsg *why)
{
    static const uint8_t magic[8] = {0, 'a', 's', 'm', 1, 0, 0, 0};
    if (!p || len < 8 || memcmp(p, magic, 8) != 0)
        return pb_fail(why, PB_ERR_MALFORMED, "not a wasm module");
    size_t i = 8;
    while (i < len) {
        uint8_t id = p[i++];
        uint32_t size;
        if (leb_u32(p, len, &i, &size) || size > len - i)
            return pb_fail(why, PB_ERR_MALFORMED,
                           "wasm section at offset %zu runs past the end", i);
        size_t end = i + size, j = i;
        i = end;
        if (id != 2) /* the import section */
            continue;
        uint32_t count;
        if (leb_u32(p, end, &j, &count))
            return pb_fail(why, PB_ERR_MALFORMED, "bad wasm import count");
        for (uint32_t k = 0; k < count; k++) {
            pb_str mod, field;
            if (name(p, end, &j, &mod) || name(p, end, &j, &field) || j >= end)
                return pb_fail(why, PB_ERR_MALFORMED,
                               "wasm import %u is cut short", k);
            uint8_t kind = p[j++];
            if (skip_import(p, end, &j, kind))
                return pb_fail(why, PB_ERR_MALFORMED,
                               "wasm import %u is malformed", k);
            if (!pb_abi_import_allowed(mod, field, kind))
                return pb_fail(why, PB_ERR_PREPARE,
                               "the module imports %.*s.%.*s, which this "
                               "runtime does not offer (protocol/abi/api.list)",
                               (int)(mod.len > 64 ? 64 : mod.len), mod.ptr,
                               (int)(field.len > 64 ? 64 : field.len),
                               field.ptr);
        }
    }
    return PB_OK;
}
