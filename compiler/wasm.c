/* wasm.c — a small, bounds-checked reader for the parts of a wasm module
 * the compiler inspects after linking: the imports (checked against
 * protocol/abi/api.list), the exports (a patch exports no user names) and
 * custom sections (dylink.0 must come first; pb_meta is read back). */
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

static int name(const uint8_t *p, size_t len, size_t *i, cc_wasm_name *out)
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

int cc_wasm_parse(const uint8_t *p, size_t len, cc_wasm *w)
{
    memset(w, 0, sizeof *w);
    static const uint8_t magic[8] = {0, 'a', 's', 'm', 1, 0, 0, 0};
    if (len < 8 || memcmp(p, magic, 8) != 0)
        return -1;
    size_t i = 8;
    int first = 1;
    while (i < len) {
        uint8_t id = p[i++];
        uint32_t size;
        if (leb_u32(p, len, &i, &size) || size > len - i)
            return -1;
        size_t end = i + size, j = i;
        if (id == 0) {
            cc_wasm_name n;
            if (name(p, end, &j, &n))
                return -1;
            if (first && n.len == 8 && !memcmp(n.ptr, "dylink.0", 8))
                w->has_dylink = 1;
            if (n.len == 7 && !memcmp(n.ptr, "pb_meta", 7)) {
                w->meta.ptr = (const char *)p + j;
                w->meta.len = (uint32_t)(end - j);
            }
        } else if (id == 2) {
            uint32_t count;
            if (leb_u32(p, end, &j, &count))
                return -1;
            for (uint32_t k = 0; k < count; k++) {
                cc_wasm_import im;
                uint32_t v;
                if (name(p, end, &j, &im.module) ||
                    name(p, end, &j, &im.field) || j >= end)
                    return -1;
                im.kind = p[j++];
                switch (im.kind) {
                case 0: /* function: type index */
                    if (leb_u32(p, end, &j, &v))
                        return -1;
                    break;
                case 1: /* table: reftype, limits */
                    if (j >= end)
                        return -1;
                    j++;
                    if (skip_limits(p, end, &j))
                        return -1;
                    break;
                case 2: /* memory: limits */
                    if (skip_limits(p, end, &j))
                        return -1;
                    break;
                case 3: /* global: valtype, mutability */
                    if (end - j < 2)
                        return -1;
                    j += 2;
                    break;
                default: return -1;
                }
                if (w->n_imports < CC_WASM_MAX_IMPORTS)
                    w->imports[w->n_imports++] = im;
                else
                    w->too_many = 1;
            }
        } else if (id == 7) {
            uint32_t count;
            if (leb_u32(p, end, &j, &count))
                return -1;
            for (uint32_t k = 0; k < count; k++) {
                cc_wasm_name n;
                uint32_t v;
                if (name(p, end, &j, &n) || j >= end)
                    return -1;
                j++; /* kind */
                if (leb_u32(p, end, &j, &v))
                    return -1;
                if (w->n_exports < CC_WASM_MAX_EXPORTS)
                    w->exports[w->n_exports++] = n;
                else
                    w->too_many = 1;
            }
        }
        first = 0;
        i = end;
    }
    return 0;
}
