/* module.c — what a side module may import: the runtime's ABI
 * (docs/PATCH_ABI.md), protocol/abi/api.list compiled in (api_list.c,
 * generated from it at build time, the file the runtime's export list is
 * generated from too). A module that imports anything else would load and
 * fail only when the call runs (Emscripten resolves a missing function to
 * a stub that throws), so a runtime checks a module's imports before it
 * loads it, even a module the relay signed: what the runtime does not
 * offer, no patch reaches. The small, bounds-checked reader of wasm
 * sections (pb_wasm_read) is the compiler's too, for its checks on a linked
 * module; every length is checked against the bytes before use. The relay
 * checks more before it signs what its compile server made
 * (pb_module_check): the exports and the vars the module defines. */
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

static bool same(pb_str a, pb_str b)
{
    return a.len == b.len && (!a.len || !memcmp(a.ptr, b.ptr, a.len));
}

/* One word of a pb_meta line from *at (up to a space or the line's end). */
static pb_str meta_word(pb_str line, uint32_t *at)
{
    uint32_t i = *at;
    while (i < line.len && line.ptr[i] != ' ')
        i++;
    pb_str w = {line.ptr + *at, i - *at};
    *at = i < line.len ? i + 1 : i;
    return w;
}

/* Checks that pb_meta's "def NAME SIG …" lines name exactly the n symbols
 * (an expression: exactly pb_expr, and no symbols). */
static pb_err check_defs(pb_str meta, pb_patch_kind kind, const pb_symbol *syms,
                         uint32_t n, pb_errmsg *why)
{
    uint32_t defs = 0;
    for (uint32_t i = 0; i < meta.len;) {
        uint32_t e = i;
        while (e < meta.len && meta.ptr[e] != '\n')
            e++;
        pb_str line = {meta.ptr + i, e - i};
        i = e + 1;
        uint32_t at = 0;
        if (!pb_str_eq(meta_word(line, &at), "def"))
            continue;
        pb_str var = meta_word(line, &at), sig = meta_word(line, &at);
        bool listed = false;
        if (kind == PB_KIND_EXPR)
            listed = pb_str_eq(var, "pb_expr") && !n;
        for (uint32_t k = 0; k < n && !listed; k++)
            listed = same(syms[k].name, var) && same(syms[k].type, sig);
        if (!listed)
            return pb_fail(why, PB_ERR_PREPARE,
                           "the module defines %.*s (%.*s), which the patch "
                           "does not name",
                           (int)(var.len > 64 ? 64 : var.len), var.ptr,
                           (int)(sig.len > 64 ? 64 : sig.len), sig.ptr);
        defs++;
    }
    if (defs != (kind == PB_KIND_EXPR ? 1u : n))
        return pb_fail(why, PB_ERR_PREPARE,
                       "the module defines %u vars, the patch names %u", defs,
                       kind == PB_KIND_EXPR ? 1u : n);
    return PB_OK;
}

/* What pb_module_check finds in one pass: the first thing refused. */
typedef struct module_scan {
    bool dylink, two_metas;
    pb_str meta;
    bool has_meta;
    refused import;
    pb_str bad_export;
    bool has_bad_export;
} module_scan;

static bool scan_custom(void *ctx, pb_str name, const uint8_t *data, size_t len,
                        bool is_first)
{
    module_scan *m = ctx;
    m->dylink |= is_first && pb_str_eq(name, "dylink.0");
    if (pb_str_eq(name, "pb_meta")) {
        m->two_metas = m->has_meta;
        m->has_meta = true;
        m->meta = (pb_str){(const char *)data, (uint32_t)len};
    }
    return !m->two_metas;
}

static bool scan_import(void *ctx, pb_str module, pb_str field, uint8_t kind)
{
    return check_import(&((module_scan *)ctx)->import, module, field, kind);
}

static bool scan_export(void *ctx, pb_str name, uint8_t kind)
{
    (void)kind;
    module_scan *m = ctx;
    if (pb_str_eq(name, "__wasm_call_ctors"))
        return true;
    m->bad_export = name;
    m->has_bad_export = true;
    return false;
}

pb_err pb_module_check(const uint8_t *p, size_t len, pb_patch_kind kind,
                       const pb_symbol *syms, uint32_t n, pb_errmsg *why)
{
    if (len > PB_MAX_MODULE_BYTES)
        return pb_fail(why, PB_ERR_TOO_BIG,
                       "the module is %zu bytes, at most %u", len,
                       PB_MAX_MODULE_BYTES);
    module_scan m = {0};
    pb_wasm_visitor v = {&m, scan_custom, scan_import, scan_export};
    pb_err e = pb_wasm_read(p, len, &v, why);
    if (e)
        return e;
    if (m.import.is_refused)
        return pb_fail(
            why, PB_ERR_PREPARE,
            "the module imports %.*s.%.*s, which this runtime "
            "does not offer (protocol/abi/api.list)",
            (int)(m.import.module.len > 64 ? 64 : m.import.module.len),
            m.import.module.ptr,
            (int)(m.import.field.len > 64 ? 64 : m.import.field.len),
            m.import.field.ptr);
    if (m.has_bad_export)
        return pb_fail(why, PB_ERR_PREPARE,
                       "the module exports %.*s; a patch exports only "
                       "__wasm_call_ctors (docs/PATCH_ABI.md)",
                       (int)(m.bad_export.len > 64 ? 64 : m.bad_export.len),
                       m.bad_export.ptr);
    if (m.two_metas)
        return pb_fail(why, PB_ERR_PREPARE,
                       "the module has two pb_meta sections");
    if (!m.dylink)
        return pb_fail(why, PB_ERR_PREPARE,
                       "the module does not begin with a dylink.0 section "
                       "(not a side module)");
    return check_defs(m.meta, kind, syms, n, why);
}
