/* test_module.c — what a side module may import (pb_module_check_imports,
 * docs/PATCH_ABI.md): the runtime's API from protocol/abi/api.list and what
 * the dynamic linker provides pass; anything else is named and refused, as
 * is a module whose import section does not parse. No prefix of a module
 * is read past its end. */
#include "../check.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A module header, then an import section with one import
 * (module.field, kind; a function import of type 0, a global i32). */
static size_t module_with_import(uint8_t *out, const char *mod,
                                 const char *field, uint8_t kind)
{
    static const uint8_t head[] = {0, 'a', 's', 'm',  1, 0, 0, 0,
                                   1, 4,   1,   0x60, 0, 0}; /* type () -> () */
    size_t n = sizeof head, ml = strlen(mod), fl = strlen(field);
    memcpy(out, head, n);
    uint8_t desc[2] = {0, 0};
    size_t dl = 1;
    if (kind == 3) { /* a global: i32, immutable */
        desc[0] = 0x7f;
        dl = 2;
    }
    out[n++] = 2;
    out[n++] = (uint8_t)(1 + 1 + ml + 1 + fl + 1 + dl);
    out[n++] = 1;
    out[n++] = (uint8_t)ml;
    memcpy(out + n, mod, ml);
    n += ml;
    out[n++] = (uint8_t)fl;
    memcpy(out + n, field, fl);
    n += fl;
    out[n++] = kind;
    memcpy(out + n, desc, dl);
    return n + dl;
}

static pb_err check(const char *mod, const char *field, uint8_t kind,
                    pb_errmsg *why)
{
    uint8_t m[128];
    size_t n = module_with_import(m, mod, field, kind);
    return pb_module_check_imports(m, n, why);
}

TEST(test_module_may_import_the_api_and_what_the_linker_provides)
{
    CHECK(check("env", "pb_clear", 0, NULL) == PB_OK);
    CHECK(check("env", "printf", 0, NULL) == PB_OK);
    CHECK(check("GOT.func", "pb_clear", 3, NULL) == PB_OK);
    CHECK(check("GOT.mem", "stdout", 3, NULL) == PB_OK);
    CHECK(check("env", "__stack_pointer", 3, NULL) == PB_OK);
    CHECK(check("env", "__memory_base", 3, NULL) == PB_OK);
    CHECK(pb_abi_has(pb_cstr("pb_rt_define"), false));
    CHECK(pb_abi_has(pb_cstr("stderr"), true));
    CHECK(!pb_abi_has(pb_cstr("stderr"), false));
}

TEST(test_module_importing_what_the_runtime_does_not_offer_is_refused)
{
    pb_errmsg why;
    CHECK(check("env", "system", 0, &why) == PB_ERR_PREPARE);
    CHECK(strstr(why.text, "env.system, which this runtime does not offer"));
    /* the API's functions, but as data; data, but as a function */
    CHECK(check("GOT.mem", "printf", 3, NULL) == PB_ERR_PREPARE);
    CHECK(check("GOT.func", "stdout", 3, NULL) == PB_ERR_PREPARE);
    CHECK(check("env", "stdout", 0, NULL) == PB_ERR_PREPARE);
    /* another import module altogether */
    CHECK(check("wasi_snapshot_preview1", "fd_write", 0, NULL) ==
          PB_ERR_PREPARE);
    CHECK(check("env", "pb_clearx", 0, NULL) == PB_ERR_PREPARE);
}

TEST(test_module_that_does_not_parse_is_refused_at_every_length)
{
    uint8_t m[128];
    size_t n = module_with_import(m, "env", "pb_clear", 0);
    CHECK(pb_module_check_imports(m, n, NULL) == PB_OK);
    /* every prefix that cuts the import section is malformed (a prefix
     * that ends between sections is a smaller, valid module) */
    for (size_t len = 0; len < n; len++) {
        pb_err e = pb_module_check_imports(m, len, NULL);
        CHECK(e == (len == 8 || len == 14 ? PB_OK : PB_ERR_MALFORMED));
    }
    m[0] = 'x';
    CHECK(pb_module_check_imports(m, n, NULL) == PB_ERR_MALFORMED);
    CHECK(pb_module_check_imports(NULL, 0, NULL) == PB_ERR_MALFORMED);
}

/* ---- pb_wasm_read -------------------------------------------------------- */

/* dylink.0 (custom, first), an import env.pb_clear, an export "f", then
 * pb_meta (custom) holding "def f". */
static size_t module_with_everything(uint8_t *out)
{
    static const uint8_t m[] = {
        0,   'a', 's', 'm',  1,   0,   0,   0,   0,   10,
        8,   'd', 'y', 'l',  'i', 'n', 'k', '.', '0', 0, /* custom */
        1,   4,   1,   0x60, 0,   0,                     /* type */
        2,   16,  1,   3,    'e', 'n', 'v', 8,   'p', 'b',
        '_', 'c', 'l', 'e',  'a', 'r', 0,   0, /* import */
        7,   5,   1,   1,    'f', 0,   1,      /* export */
        0,   13,  7,   'p',  'b', '_', 'm', 'e', 't', 'a',
        'd', 'e', 'f', ' ',  'f',
    };
    memcpy(out, m, sizeof m);
    return sizeof m;
}

typedef struct seen {
    int customs, imports, exports, stop_after;
    bool first_is_dylink, meta_is_first;
    char meta[16], import[32], export_[8];
} seen;

static bool stop(seen *s)
{
    return !s->stop_after ||
           s->customs + s->imports + s->exports < s->stop_after;
}

static bool on_custom(void *ctx, pb_str name, const uint8_t *data, size_t len,
                      bool is_first)
{
    seen *s = ctx;
    s->customs++;
    if (pb_str_eq(name, "dylink.0"))
        s->first_is_dylink = is_first;
    if (pb_str_eq(name, "pb_meta")) {
        s->meta_is_first = is_first;
        snprintf(s->meta, sizeof s->meta, "%.*s", (int)len, data);
    }
    return stop(s);
}

static bool on_import(void *ctx, pb_str module, pb_str field, uint8_t kind)
{
    seen *s = ctx;
    s->imports++;
    snprintf(s->import, sizeof s->import, "%.*s.%.*s/%u", (int)module.len,
             module.ptr, (int)field.len, field.ptr, kind);
    return stop(s);
}

static bool on_export(void *ctx, pb_str name, uint8_t kind)
{
    seen *s = ctx;
    s->exports++;
    snprintf(s->export_, sizeof s->export_, "%.*s/%u", (int)name.len, name.ptr,
             kind);
    return stop(s);
}

TEST(test_wasm_read_reports_customs_imports_and_exports_in_order)
{
    uint8_t m[128];
    size_t n = module_with_everything(m);
    seen s = {0};
    pb_wasm_visitor v = {&s, on_custom, on_import, on_export};
    REQUIRE(pb_wasm_read(m, n, &v, NULL) == PB_OK);
    CHECK(s.customs == 2 && s.imports == 1 && s.exports == 1);
    CHECK(s.first_is_dylink && !s.meta_is_first);
    CHECK(!strcmp(s.meta, "def f"));
    CHECK(!strcmp(s.import, "env.pb_clear/0"));
    CHECK(!strcmp(s.export_, "f/0"));
    /* a callback that says stop ends the read there */
    s = (seen){.stop_after = 2};
    CHECK(pb_wasm_read(m, n, &v, NULL) == PB_OK);
    CHECK(s.customs == 1 && s.imports == 1 && s.exports == 0);
    /* the runtime's check reads the same module */
    CHECK(pb_module_check_imports(m, n, NULL) == PB_OK);
}

TEST(test_wasm_read_parses_only_the_sections_it_is_asked_for)
{
    uint8_t m[128];
    size_t n = module_with_everything(m);
    m[47] = 9; /* the export's name runs past its section */
    seen s = {0};
    pb_errmsg why;
    pb_wasm_visitor all = {&s, on_custom, on_import, on_export};
    CHECK(pb_wasm_read(m, n, &all, &why) == PB_ERR_MALFORMED);
    CHECK(strstr(why.text, "wasm export 0 is cut short") != NULL);
    /* the runtime does not read exports: the module's imports are fine */
    CHECK(pb_module_check_imports(m, n, NULL) == PB_OK);
}

TEST(test_wasm_read_is_malformed_or_complete_at_every_length)
{
    uint8_t m[128];
    size_t n = module_with_everything(m);
    for (size_t len = 0; len <= n; len++) {
        uint8_t *cut = malloc(len ? len : 1); /* ASan: exactly len bytes */
        REQUIRE(cut);
        memcpy(cut, m, len);
        seen s = {0};
        pb_wasm_visitor v = {&s, on_custom, on_import, on_export};
        pb_err e = pb_wasm_read(cut, len, &v, NULL);
        /* a prefix that ends between sections is a smaller module */
        bool between = len == 8 || len == 20 || len == 26 || len == 44 ||
                       len == 51 || len == n;
        CHECK_EQ_INT(e, between ? PB_OK : PB_ERR_MALFORMED);
        free(cut);
    }
}

static const pb_test tests[] = {
    T(test_module_may_import_the_api_and_what_the_linker_provides),
    T(test_module_importing_what_the_runtime_does_not_offer_is_refused),
    T(test_module_that_does_not_parse_is_refused_at_every_length),
    T(test_wasm_read_reports_customs_imports_and_exports_in_order),
    T(test_wasm_read_parses_only_the_sections_it_is_asked_for),
    T(test_wasm_read_is_malformed_or_complete_at_every_length),
};

static int setup(void)
{
    return pb_init() == PB_OK ? 0 : 1;
}
PB_TEST_MAIN(tests, setup)
