/* test_compiler.c — the compiler library against hostile and broken
 * source (docs/SECURITY.md § Compiler): each case must end in a specific
 * diagnostic at the right place, never in a module, and the next job must
 * work. Runs for each backend named on the command line ("process",
 * "warm"); the default is every backend this build has. */
#include "../check.h"
#include "cc.h"

#include <stdlib.h>
#include <string.h>

static cc_compiler *cc;
static const char *backend_name = "process";

static void compile(const char *src, cc_result *r)
{
    cc_job job = {PB_LANG_C, "t.c", src, strlen(src), NULL, 0, false};
    pb_errmsg why = {{0}};
    pb_err e = cc_compile(cc, &job, r, &why);
    if (e)
        fprintf(stderr, "  cc_compile: %s\n", why.text);
}

/* The first error diagnostic whose message contains want, or NULL. */
static const cc_diag *find_error(const cc_result *r, const char *want)
{
    for (uint32_t i = 0; i < r->n_diags; i++)
        if (r->diags[i].severity == PB_SEV_ERROR &&
            strstr(r->diags[i].message, want))
            return &r->diags[i];
    for (uint32_t i = 0; i < r->n_diags; i++)
        fprintf(stderr, "  diag %u:%u %s\n", r->diags[i].line, r->diags[i].col,
                r->diags[i].message);
    return NULL;
}

static bool any_diag_contains(const cc_result *r, const char *s)
{
    for (uint32_t i = 0; i < r->n_diags; i++)
        if (strstr(r->diags[i].message, s))
            return true;
    return false;
}

/* The job after a failure works: the compiler is still serving. */
static void check_still_works(void)
{
    cc_result r;
    compile("#include <patchbay.h>\ndouble ok(double v) { return v; }\n", &r);
    CHECK(r.ok);
    cc_result_free(&r);
}

TEST(test_compiles_the_seed_example)
{
    cc_result r;
    compile("#include <patchbay.h>\ndouble ggg(double v) { return v + 49; }\n",
            &r);
    REQUIRE(r.ok);
    CHECK(r.module_len > 8 && !memcmp(r.module, "\0asm", 4));
    REQUIRE(r.n_defs == 1);
    CHECK(!strcmp(r.defs[0].name, "ggg"));
    CHECK(!strcmp(r.defs[0].sig, "dd"));
    CHECK(!strcmp(r.defs[0].decl, "double ggg(double v)"));
    CHECK(r.defs[0].line == 2);
    cc_result_free(&r);
}

TEST(test_errors_point_at_the_users_line_and_column)
{
    cc_result r;
    compile("#include <patchbay.h>\n\nint f(void) {\n  return x + 1;\n}\n", &r);
    CHECK(!r.ok);
    const cc_diag *d = find_error(&r, "undeclared identifier 'x'");
    REQUIRE(d != NULL);
    CHECK_EQ_INT(d->line, 4);
    CHECK_EQ_INT(d->col, 10);
    cc_result_free(&r);
}

TEST(test_warnings_are_kept_on_success)
{
    cc_result r;
    compile("#include <patchbay.h>\nint f(void) { int unused; return 1; }\n",
            &r);
    CHECK(r.ok);
    bool warned = false;
    for (uint32_t i = 0; i < r.n_diags; i++)
        warned |= r.diags[i].severity == PB_SEV_WARNING &&
                  strstr(r.diags[i].message, "unused") != NULL &&
                  r.diags[i].line == 2;
    CHECK(warned);
    cc_result_free(&r);
}

TEST(test_several_errors_are_reported)
{
    cc_result r;
    compile("int f(void) { return a; }\nint g(void) { return b; }\n", &r);
    CHECK(!r.ok);
    CHECK(find_error(&r, "'a'") != NULL);
    CHECK(find_error(&r, "'b'") != NULL);
    cc_result_free(&r);
}

TEST(test_include_of_an_absolute_path_is_refused)
{
    cc_result r;
    compile("#include \"/etc/passwd\"\nint f(void) { return 1; }\n", &r);
    CHECK(!r.ok && !r.module);
    CHECK(r.n_diags > 0);
    CHECK(!any_diag_contains(&r, "root")); /* nothing of the file leaks */
    CHECK(find_error(&r, "/etc/passwd") != NULL);
    cc_result_free(&r);
    check_still_works();
}

TEST(test_include_climbing_out_of_the_sandbox_is_refused)
{
    cc_result r;
    compile("#include \"../../../../../../etc/passwd\"\n", &r);
    CHECK(!r.ok && !r.module);
    CHECK(!any_diag_contains(&r, "root"));
    CHECK(find_error(&r, "passwd") != NULL);
    cc_result_free(&r);
    compile("#include </etc/hostname>\n", &r);
    CHECK(!r.ok && !r.module);
    cc_result_free(&r);
}

TEST(test_incbin_and_inline_asm_are_refused)
{
    /* -fno-gnu-inline-asm: the assembler never sees .incbin (it would read
     * the file outside clang's file system). */
    cc_result r;
    compile("__asm__(\".incbin \\\"/etc/passwd\\\"\");\n", &r);
    CHECK(!r.ok && !r.module);
    const cc_diag *d = find_error(&r, "inline assembly is disabled");
    CHECK(d != NULL && d->line == 1);
    cc_result_free(&r);
    compile("int f(void) { int x;\n  __asm__(\"local.get 0\" : \"=r\"(x)); "
            "return x; }\n",
            &r);
    CHECK(!r.ok && !r.module);
    d = find_error(&r, "inline assembly is disabled");
    CHECK(d != NULL && d->line == 2);
    cc_result_free(&r);
    check_still_works();
}

TEST(test_has_include_sees_nothing_outside_the_sandbox)
{
    /* Both backends give clang a file system in which outside files do
     * not exist (the process backend's clang through a VFS overlay). */
    cc_result r;
    compile("#if __has_include(\"/etc/passwd\") || "
            "__has_include(\"../../../../etc/hostname\")\n"
            "#error the sandbox leaks\n#endif\n"
            "#if !__has_include(<stdio.h>) || !__has_include(<patchbay.h>)\n"
            "#error the sandbox hides too much\n#endif\n"
            "int f(void) { return 1; }\n",
            &r);
    CHECK(r.ok);
    cc_result_free(&r);
}

TEST(test_self_include_recursion_is_an_error)
{
    cc_result r;
    compile("#include \"patch.c\"\nint f(void) { return 1; }\n", &r);
    CHECK(!r.ok);
    CHECK(find_error(&r, "nested too deeply") != NULL);
    cc_result_free(&r);
}

TEST(test_deep_nesting_is_an_error)
{
    size_t depth = 5000;
    char *src = malloc(depth * 2 + 64);
    size_t n = (size_t)sprintf(src, "int f(void) { return ");
    for (size_t i = 0; i < depth; i++)
        src[n++] = '(';
    src[n++] = '1';
    for (size_t i = 0; i < depth; i++)
        src[n++] = ')';
    strcpy(src + n, "; }\n");
    cc_result r;
    compile(src, &r);
    CHECK(!r.ok);
    CHECK(find_error(&r, "bracket nesting level exceeded") != NULL);
    cc_result_free(&r);
    free(src);
    check_still_works();
}

TEST(test_a_macro_expansion_bomb_ends_in_time)
{
    /* A40 expands to 2^40 tokens. */
    char src[4096];
    size_t n = (size_t)sprintf(src, "#define A0 x\n");
    for (int i = 1; i <= 40; i++)
        n += (size_t)sprintf(src + n, "#define A%d A%d A%d\n", i, i - 1, i - 1);
    sprintf(src + n, "int f(void) { int x = 0; return A40; }\n");
    cc_result r;
    compile(src, &r);
    CHECK(!r.ok && !r.module);
    /* the same words from both backends (cc_timeout_message) */
    CHECK(find_error(&r, "compiling took longer than the 2000 ms limit") !=
          NULL);
    cc_result_free(&r);
    check_still_works();
}

TEST(test_too_much_code_to_optimise_ends_in_time)
{
    /* ~170 KB of small loops, no macros: minutes of clang's -O2 (the warm
     * backend skips the rest of the optimiser at the limit; the process
     * backend's clang is killed) */
    enum { k = 1500 };
    size_t cap = PB_MAX_SOURCE_BYTES, n = 0;
    char *src = malloc(cap);
    REQUIRE(src != NULL);
    for (int i = 0; i < k; i++)
        n += (size_t)snprintf(src + n, cap - n,
                              "static int g%d(int x) { int s = 0; for (int i "
                              "= 0; i < x; i++) s += i * %d ^ (s >> 3); "
                              "return s; }\n",
                              i, i + 1);
    n += (size_t)snprintf(src + n, cap - n, "int all(int x) { return 0");
    for (int i = 0; i < k; i++)
        n += (size_t)snprintf(src + n, cap - n, "+g%d(x)", i);
    snprintf(src + n, cap - n, "; }\n");
    cc_result r;
    compile(src, &r);
    CHECK(!r.ok && !r.module);
    CHECK(find_error(&r, "compiling took longer than the 2000 ms limit") !=
          NULL);
    cc_result_free(&r);
    free(src);
    check_still_works();
}

TEST(test_too_many_vars_are_refused_before_compiling)
{
    size_t cap = 300 * 48, n = 0;
    char *src = malloc(cap);
    REQUIRE(src != NULL);
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(src + n, cap - n, "int f%d(void) { return %d; }\n",
                              i, i);
    cc_result r;
    compile(src, &r);
    CHECK(!r.ok && !r.module);
    CHECK(find_error(&r, "300 vars in one patch, at most 256") != NULL);
    CHECK(r.compile_us == 0); /* clang never ran */
    cc_result_free(&r);
    free(src);
}

TEST(test_giant_static_arrays_are_refused)
{
    cc_result r;
    compile("static char big[1 << 30] = {1};\n"
            "char *get(void) { return big; }\n",
            &r);
    CHECK(!r.ok && !r.module);
    CHECK(find_error(&r, "bytes of static data") != NULL);
    cc_result_free(&r);
    check_still_works();
}

TEST(test_oversized_source_is_refused)
{
    size_t n = PB_MAX_SOURCE_BYTES + 1;
    char *src = malloc(n + 1);
    memset(src, ' ', n);
    src[n] = '\0';
    cc_result r;
    compile(src, &r);
    CHECK(!r.ok);
    CHECK(find_error(&r, "at most") != NULL);
    cc_result_free(&r);
    free(src);
}

TEST(test_unknown_functions_and_imports_are_named)
{
    cc_result r;
    compile("int f(void) { return nope(); }\n", &r);
    CHECK(!r.ok);
    CHECK(find_error(&r, "'nope'") != NULL);
    cc_result_free(&r);
    compile(
        "int system(const char *);\nint f(void) { return system(\"x\"); }\n",
        &r);
    CHECK(!r.ok);
    const cc_diag *d = find_error(&r, "'system' is not defined in this patch");
    CHECK(d != NULL && d->line == 1);
    cc_result_free(&r);
}

TEST(test_variadic_vars_are_refused_with_the_name)
{
    cc_result r;
    compile("int sum(int n, ...) { return n; }\n", &r);
    CHECK(!r.ok);
    const cc_diag *d = find_error(&r, "\"sum\" cannot be a var");
    CHECK(d != NULL && d->line == 1);
    cc_result_free(&r);
    /* static is fine: private to the patch */
    compile("static int sum(int n, ...) { return n; }\n"
            "int use(void) { return sum(1, 2); }\n",
            &r);
    CHECK(r.ok);
    cc_result_free(&r);
}

/* A source the compiler refuses: no module, and an error containing want
 * at line. */
typedef struct {
    const char *src, *want;
    uint32_t line;
} refusal;

static void check_refusals(const refusal *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cc_result r;
        compile(cases[i].src, &r);
        CHECK(!r.ok && !r.module);
        const cc_diag *d = find_error(&r, cases[i].want);
        CHECK(d != NULL);
        if (d)
            CHECK_EQ_INT(d->line, cases[i].line);
        cc_result_free(&r);
    }
}

/* The runtime's dynamic linker has one global symbol table in which the
 * first definition of a name wins: a patch may define no name that is the
 * compiler's, the linker's or the runtime's, and its module exports only
 * what the linker makes. */
TEST(test_reserved_names_are_refused)
{
    static const refusal cases[] = {
        {"#include <patchbay.h>\nint __evil(void) { return 1; }\n",
         "\"__evil\": names that begin with __ or pb__ are reserved", 2},
        {"int ok(void) { return 2; }\nint __counter = 3;\n",
         "\"__counter\": names that begin with __", 2},
        {"int pb__mine(int x) { return x; }\n",
         "\"pb__mine\": names that begin with __ or pb__", 1},
        {"void __wasm_call_ctors(void) {}\n", "\"__wasm_call_ctors\"", 1},
    };
    check_refusals(cases, sizeof cases / sizeof cases[0]);
    /* private to the patch, a reserved name leaves nothing behind */
    cc_result r;
    compile("static int __helper(void) { return 4; }\n"
            "int use_helper(void) { return __helper(); }\n",
            &r);
    CHECK(r.ok);
    cc_result_free(&r);
    check_still_works();
}

/* A patch is loaded ahead of its apply time (and in catch-ups that may be
 * refused whole), and loading runs constructors: a patch may have none but
 * the binder, so nothing of it runs before it commits. */
TEST(test_constructors_and_destructors_are_refused)
{
    static const refusal cases[] = {
        {"#include <patchbay.h>\nint n;\n"
         "__attribute__((constructor)) static void early(void) { n = 1; }\n",
         "\"early\" is a constructor: patch code may not run before", 3},
        {"int n;\n__attribute__((constructor(101))) void soon(void) { n = 2; "
         "}\n",
         "\"soon\" is a constructor", 2},
        {"int n;\n\n__attribute__((destructor)) static void late(void) { n = "
         "3; }\n",
         "\"late\" is a destructor", 3},
    };
    check_refusals(cases, sizeof cases / sizeof cases[0]);
    check_still_works();
}

TEST(test_the_cache_returns_the_same_module)
{
    const char *src =
        "#include <patchbay.h>\nint cached_fn(int x) { return x; }\n";
    cc_result a, b;
    compile(src, &a);
    compile(src, &b);
    REQUIRE(a.ok && b.ok);
    CHECK(b.cached);
    CHECK(a.module_len == b.module_len &&
          !memcmp(a.module, b.module, a.module_len));
    cc_result_free(&a);
    cc_result_free(&b);
}

TEST(test_prelude_declares_only_mentioned_room_vars)
{
    /* A room var with a C prototype is callable; one with a prototype that
     * would not parse here is not declared unless mentioned. */
    const char *const no_deps[] = {NULL};
    cc_var vars[2] = {
        {"helper", "dd", "double helper(double x)", no_deps, 0},
        {"draw", "vi", "void draw(struct ball *b)", no_deps, 0},
    };
    const char *src = "#include <patchbay.h>\n"
                      "double twice(double v) { return helper(v) * 2; }\n";
    cc_job job = {PB_LANG_C, "t.c", src, strlen(src), vars, 2, false};
    cc_result r;
    pb_errmsg why;
    CHECK(cc_compile(cc, &job, &r, &why) == PB_OK);
    CHECK(r.ok);
    REQUIRE(r.n_uses == 1);
    CHECK(!strcmp(r.uses[0].name, "helper"));
    REQUIRE(r.n_defs == 1);
    REQUIRE(r.defs[0].n_deps == 1);
    CHECK(!strcmp(r.defs[0].deps[0], "helper"));
    cc_result_free(&r);
}

static const pb_test tests[] = {
    T(test_compiles_the_seed_example),
    T(test_errors_point_at_the_users_line_and_column),
    T(test_warnings_are_kept_on_success),
    T(test_several_errors_are_reported),
    T(test_include_of_an_absolute_path_is_refused),
    T(test_include_climbing_out_of_the_sandbox_is_refused),
    T(test_incbin_and_inline_asm_are_refused),
    T(test_has_include_sees_nothing_outside_the_sandbox),
    T(test_self_include_recursion_is_an_error),
    T(test_deep_nesting_is_an_error),
    T(test_a_macro_expansion_bomb_ends_in_time),
    T(test_too_much_code_to_optimise_ends_in_time),
    T(test_too_many_vars_are_refused_before_compiling),
    T(test_giant_static_arrays_are_refused),
    T(test_oversized_source_is_refused),
    T(test_unknown_functions_and_imports_are_named),
    T(test_variadic_vars_are_refused_with_the_name),
    T(test_reserved_names_are_refused),
    T(test_constructors_and_destructors_are_refused),
    T(test_the_cache_returns_the_same_module),
    T(test_prelude_declares_only_mentioned_room_vars),
};

PB_TEST_RUNNER

int main(int argc, char **argv)
{
    if (pb_init() != PB_OK)
        return 1;
    if (argc > 1)
        backend_name = argv[1];
    cc_desc d = {0};
    d.backend =
        !strcmp(backend_name, "warm") ? CC_BACKEND_WARM : CC_BACKEND_PROCESS;
    /* cc_new warms up nothing: the first jobs run without the PCH, the
     * later ones with it, so both paths are covered. */
    pb_errmsg why;
    if (!(cc = cc_new(&d, &why))) {
        printf("cannot create the %s compiler: %s\n0 passed, 1 failed\n",
               backend_name, why.text);
        return 1;
    }
    printf("backend: %s\n", cc_backend_name(cc));
    int rc =
        pb_test_run(tests, sizeof tests / sizeof tests[0], argc - 1, argv + 1);
    cc_free(cc);
    return rc;
}
