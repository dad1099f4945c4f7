/* test_module.c — what a side module may import (pb_module_check_imports,
 * docs/PATCH_ABI.md): the runtime's API from protocol/abi/api.list and what
 * the dynamic linker provides pass; anything else is named and refused, as
 * is a module whose import section does not parse. No prefix of a module
 * is read past its end. */
#include "../check.h"
#include "internal.h"

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

static const pb_test tests[] = {
    T(test_module_may_import_the_api_and_what_the_linker_provides),
    T(test_module_importing_what_the_runtime_does_not_offer_is_refused),
    T(test_module_that_does_not_parse_is_refused_at_every_length),
};

static int setup(void)
{
    return pb_init() == PB_OK ? 0 : 1;
}
PB_TEST_MAIN(tests, setup)
