/* wasm.c — the parts of a linked module the compiler checks (checks.c):
 * the imports (against the runtime's API), the exports (a patch exports no
 * user names) and the custom sections (dylink.0 must come first; pb_meta
 * is read back), gathered by protocol's pb_wasm_read, the reader the
 * runtime checks imports with. */
#include "internal.h"

static bool on_custom(void *ctx, pb_str name, const uint8_t *data, size_t len,
                      bool is_first)
{
    cc_wasm *w = ctx;
    if (is_first && pb_str_eq(name, "dylink.0"))
        w->has_dylink = true;
    if (pb_str_eq(name, "pb_meta"))
        w->meta = (pb_str){(const char *)data, (uint32_t)len};
    return true;
}

static bool on_import(void *ctx, pb_str module, pb_str field, uint8_t kind)
{
    cc_wasm *w = ctx;
    if (w->n_imports < CC_WASM_MAX_IMPORTS)
        w->imports[w->n_imports++] = (cc_wasm_import){module, field, kind};
    else
        w->too_many = true;
    return true;
}

static bool on_export(void *ctx, pb_str name, uint8_t kind)
{
    cc_wasm *w = ctx;
    (void)kind;
    if (w->n_exports < CC_WASM_MAX_EXPORTS)
        w->exports[w->n_exports++] = name;
    else
        w->too_many = true;
    return true;
}

pb_err cc_wasm_parse(const uint8_t *p, size_t len, cc_wasm *w)
{
    memset(w, 0, sizeof *w);
    pb_wasm_visitor v = {w, on_custom, on_import, on_export};
    return pb_wasm_read(p, len, &v, NULL);
}
