/* test_cc_llvm.c — the engine of the warm backend (compiler/llvm/cc_llvm.h)
 * against its header: in-memory sources to a side module, diagnostics with
 * positions and flags, the sandbox (absolute paths, "..", symlinks out of
 * an allowed directory, __has_include), -mllvm flags job after job, lld's
 * state across links (a failed link, then good ones), the time limit (in
 * the preprocessor, and between optimisation passes when the pass plugin is
 * loaded), and PCHs. Linked to libpb_cc_llvm.so directly; only the time
 * limit test loads the ABI pass plugin.
 * usage: test_cc_llvm [--pass-plugin PATH] [test names] */
#include "../check.h"
#include "llvm/cc_llvm.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static cc_llvm *cc;
static const char *pass_plugin; /* --pass-plugin: the ABI pass */
static char dir[] = "/tmp/pb-cc-llvm-test.XXXXXX"; /* an allowed directory */

typedef struct diags {
    char text[8192]; /* "SEV file:line:col message\n"... */
    int errors;
} diags;

static void on_diag(void *ctx, const cc_llvm_diag *d)
{
    diags *g = ctx;
    size_t n = strlen(g->text);
    snprintf(g->text + n, sizeof g->text - n, "%d %s:%u:%u %s\n", d->severity,
             d->file, d->line, d->col, d->message);
    g->errors += d->severity >= CC_LLVM_ERROR;
}

static const char *const no_args[] = {NULL};

/* Compiles src as /pb/t.c with args; the object in *obj (may be NULL). */
static int compile(const char *src, const char *const *args, diags *g,
                   uint8_t **obj, size_t *len)
{
    cc_llvm_file f = {"/pb/t.c", src, strlen(src)};
    uint8_t *o = NULL;
    size_t n = 0;
    char err[512] = "";
    memset(g, 0, sizeof *g);
    int rc = cc_llvm_compile(cc, args ? args : no_args, "/pb/t.c", &f, 1,
                             on_diag, g, &o, &n, err, sizeof err);
    if (rc != CC_LLVM_OK && rc != CC_LLVM_EJOB)
        fprintf(stderr, "  compile: %d %s\n", rc, err);
    if (obj) {
        *obj = o;
        *len = n;
    } else {
        free(o);
    }
    return rc;
}

static bool starts_with_dylink(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 8 <= n && i < 64; i++)
        if (!memcmp(p + i, "dylink.0", 8))
            return true;
    return false;
}

static bool compiles_and_links(const char *src)
{
    diags g;
    uint8_t *obj = NULL, *wasm = NULL;
    size_t len = 0, wlen = 0;
    char err[1024] = "";
    if (compile(src, NULL, &g, &obj, &len) != CC_LLVM_OK) {
        fprintf(stderr, "%s", g.text);
        return false;
    }
    const uint8_t *objs[] = {obj};
    int rc = cc_llvm_link(cc, objs, &len, 1, &wasm, &wlen, err, sizeof err);
    if (rc != CC_LLVM_OK)
        fprintf(stderr, "  link: %d %s\n", rc, err);
    /* a side module: "\0asm", version 1, then the dylink.0 section */
    bool ok = rc == CC_LLVM_OK && wlen > 20 && !memcmp(wasm, "\0asm", 4) &&
              starts_with_dylink(wasm, wlen);
    free(obj);
    free(wasm);
    return ok;
}

TEST(test_a_source_in_memory_becomes_a_side_module)
{
    CHECK(compiles_and_links("#include <math.h>\n"
                             "double f(double x) { return sin(x) * 2; }\n"));
    CHECK(compiles_and_links("int g(int x) { return x + 1; }\n"));
}

TEST(test_diagnostics_have_positions_and_flags)
{
    diags g;
    const char *const wall[] = {"-Wall", NULL};
    CHECK(compile("int f(void) {\n  int x = 1;\n  return y;\n}\n", wall, &g,
                  NULL, NULL) == CC_LLVM_EJOB);
    CHECK(g.errors == 1);
    CHECK(strstr(g.text, "2 /pb/t.c:3:10 use of undeclared identifier 'y'"));
    CHECK(compile("int f(void) {\n  int unused;\n  return 1;\n}\n", wall, &g,
                  NULL, NULL) == CC_LLVM_OK);
    CHECK(strstr(g.text, "1 /pb/t.c:2:7 unused variable 'unused' "
                         "[-Wunused-variable]") ||
          !fprintf(stderr, "%s", g.text));
    /* #line is honoured */
    CHECK(compile("#line 40 \"user.c\"\nint f(void) { return z; }\n", NULL, &g,
                  NULL, NULL) == CC_LLVM_EJOB);
    CHECK(strstr(g.text, "user.c:40:22") || !fprintf(stderr, "%s", g.text));
}

TEST(test_the_sandbox_hides_everything_outside_allowed_directories)
{
    char path[256], link[256];
    snprintf(path, sizeof path, "%s/inside.h", dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    fputs("#define INSIDE 7\n", f);
    fclose(f);
    snprintf(link, sizeof link, "%s/escape.h", dir);
    unlink(link);
    REQUIRE(symlink("/etc/passwd", link) == 0);
    char src[1024];
    diags g;
    snprintf(src, sizeof src,
             "#include \"%s\"\n"
             "#if __has_include(\"/etc/passwd\") || "
             "__has_include(\"%s/escape.h\") || "
             "__has_include(\"%s/../../etc/passwd\")\n"
             "#error leak\n#endif\n"
             "int f(void) { return INSIDE; }\n",
             path, dir, dir);
    CHECK(compile(src, NULL, &g, NULL, NULL) == CC_LLVM_OK ||
          !fprintf(stderr, "%s", g.text));
    const char *const refused[] = {"#include \"/etc/passwd\"\n",
                                   "#include \"../../../../etc/hostname\"\n",
                                   "#include </etc/passwd>\n", NULL};
    for (size_t i = 0; refused[i]; i++) {
        CHECK(compile(refused[i], NULL, &g, NULL, NULL) == CC_LLVM_EJOB);
        CHECK(strstr(g.text, "file not found") != NULL);
        CHECK(strstr(g.text, "root:") == NULL);
    }
    snprintf(src, sizeof src, "#include \"%s\"\n", link);
    CHECK(compile(src, NULL, &g, NULL, NULL) == CC_LLVM_EJOB);
    CHECK(strstr(g.text, "file not found") != NULL);
    unlink(link);
    unlink(path);
}

TEST(test_inline_assembly_is_refused_by_the_base_flags)
{
    diags g;
    CHECK(compile("__asm__(\".incbin \\\"/etc/passwd\\\"\");\n", NULL, &g, NULL,
                  NULL) == CC_LLVM_EJOB);
    CHECK(strstr(g.text, "1:1 GNU-style inline assembly is disabled"));
}

TEST(test_mllvm_flags_apply_job_after_job)
{
    /* A flag the base flags do not have, in two jobs in a row (cl::opt
     * allows it once per parse), a bad flag (an error for that job), then
     * the base flags alone. */
    const char *const with[] = {"-mllvm", "-inline-threshold=10", NULL};
    diags g;
    for (int i = 0; i < 2; i++)
        CHECK(compile("int f(int x) { return x; }\n", with, &g, NULL, NULL) ==
              CC_LLVM_OK);
    const char *const bad[] = {"-mllvm", "-no-such-llvm-option", NULL};
    CHECK(compile("int f(int x) { return x; }\n", bad, &g, NULL, NULL) ==
          CC_LLVM_EJOB);
    CHECK(strstr(g.text, "no-such-llvm-option") != NULL);
    CHECK(compiles_and_links("int f(int x) { return x; }\n"));
}

TEST(test_a_failed_link_leaves_the_linker_working)
{
    uint8_t *a = NULL, *b = NULL, *wasm = NULL;
    size_t alen = 0, blen = 0, wlen = 0;
    diags g;
    REQUIRE(compile("int twice(int x) { return 2 * x; }\n", NULL, &g, &a,
                    &alen) == CC_LLVM_OK);
    REQUIRE(compile("int twice(int x) { return x + x; }\n", NULL, &g, &b,
                    &blen) == CC_LLVM_OK);
    const uint8_t *objs[] = {a, b};
    size_t lens[] = {alen, blen};
    char err[1024] = "";
    CHECK(cc_llvm_link(cc, objs, lens, 2, &wasm, &wlen, err, sizeof err) ==
          CC_LLVM_EJOB);
    CHECK(wasm == NULL);
    CHECK(strstr(err, "duplicate symbol: twice") ||
          !fprintf(stderr, "%s\n", err));
    for (int i = 0; i < 3; i++) {
        CHECK(cc_llvm_link(cc, objs, lens, 1, &wasm, &wlen, err, sizeof err) ==
              CC_LLVM_OK);
        free(wasm);
        wasm = NULL;
    }
    free(a);
    free(b);
}

TEST(test_a_macro_that_expands_without_end_hits_the_time_limit)
{
    char src[4096];
    size_t n = (size_t)sprintf(src, "#define A0 x\n");
    for (int i = 1; i <= 40; i++)
        n += (size_t)sprintf(src + n, "#define A%d A%d A%d\n", i, i - 1, i - 1);
    sprintf(src + n, "int f(void) { int x = 0; return A40; }\n");
    diags g;
    CHECK(compile(src, NULL, &g, NULL, NULL) == CC_LLVM_ETIME);
    CHECK(compiles_and_links("int after(void) { return 1; }\n"));
}

/* 100 plain functions: no macro to expand, so only the check between
 * optimisation passes can stop the job. */
static char *many_functions(void)
{
    size_t cap = 100 * 160, n = 0;
    char *src = malloc(cap);
    for (int i = 0; i < 100 && src; i++)
        n += (size_t)snprintf(src + n, cap - n,
                              "int f%d(int x) { int s = 0; for (int i = 0; "
                              "i < x; i++) s += i * %d ^ (s >> 3); return s; "
                              "}\n",
                              i, i + 1);
    return src;
}

TEST(test_optimising_past_the_time_limit_ends_the_job)
{
    REQUIRE(pass_plugin != NULL || !fprintf(stderr, "  no --pass-plugin\n"));
    const char *const allowed[] = {dir, NULL};
    char *src = many_functions();
    REQUIRE(src != NULL);
    cc_llvm_file f = {"/pb/many.c", src, strlen(src)};
    for (uint32_t limit_ms = 0; limit_ms <= 1; limit_ms++) {
        /* 0: no limit, the source compiles; 1 ms: it cannot */
        cc_llvm_desc d = {0};
        d.allowed_dirs = allowed;
        d.pass_plugin = pass_plugin;
        d.timeout_ms = limit_ms;
        char err[512] = "";
        cc_llvm *timed = cc_llvm_new(&d, err, sizeof err);
        REQUIRE(timed != NULL || !fprintf(stderr, "  %s\n", err));
        uint8_t *o = NULL;
        size_t n = 0;
        int rc = cc_llvm_compile(timed, no_args, "/pb/many.c", &f, 1, NULL,
                                 NULL, &o, &n, err, sizeof err);
        free(o);
        if (limit_ms == 0) {
            CHECK(rc == CC_LLVM_OK || !fprintf(stderr, "  %d %s\n", rc, err));
        } else {
            CHECK(rc == CC_LLVM_ETIME ||
                  !fprintf(stderr, "  %d %s\n", rc, err));
            CHECK(strstr(err, "took longer than the 1 ms limit") ||
                  !fprintf(stderr, "  %s\n", err));
        }
        cc_llvm_free(timed);
    }
    free(src);
    /* the limit is per job: the next one, in the first engine, works */
    CHECK(compiles_and_links("int after(void) { return 2; }\n"));
}

TEST(test_a_pch_is_used_and_can_be_replaced)
{
    const char *const pch[] = {"-include-pch", "/pb/h.pch", NULL};
    for (int v = 1; v <= 2; v++) {
        char h[128];
        snprintf(h, sizeof h,
                 "#include <stdio.h>\n#define VERSION %d\nint helper(int);\n",
                 v);
        cc_llvm_file f = {"/pb/h.h", h, strlen(h)};
        char err[512] = "";
        diags g = {{0}, 0};
        REQUIRE(cc_llvm_make_pch(cc, no_args, "/pb/h.h", &f, 1, "/pb/h.pch",
                                 on_diag, &g, err, sizeof err) == CC_LLVM_OK);
        char src[128];
        snprintf(src, sizeof src,
                 "_Static_assert(VERSION == %d, \"the PCH in use\");\n"
                 "int f(void) { return helper(VERSION) + (int)sizeof(fpos_t); "
                 "}\n",
                 v);
        CHECK(compile(src, pch, &g, NULL, NULL) == CC_LLVM_OK ||
              !fprintf(stderr, "%s", g.text));
    }
}

static const pb_test tests[] = {
    T(test_a_source_in_memory_becomes_a_side_module),
    T(test_diagnostics_have_positions_and_flags),
    T(test_the_sandbox_hides_everything_outside_allowed_directories),
    T(test_inline_assembly_is_refused_by_the_base_flags),
    T(test_mllvm_flags_apply_job_after_job),
    T(test_a_failed_link_leaves_the_linker_working),
    T(test_a_macro_that_expands_without_end_hits_the_time_limit),
    T(test_optimising_past_the_time_limit_ends_the_job),
    T(test_a_pch_is_used_and_can_be_replaced),
};

PB_TEST_RUNNER

int main(int argc, char **argv)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    const char *const allowed[] = {dir, NULL};
    cc_llvm_desc d = {0};
    d.allowed_dirs = allowed;
    d.timeout_ms = 300;
    char err[512];
    if (!(cc = cc_llvm_new(&d, err, sizeof err))) {
        printf("cc_llvm_new: %s\n0 passed, 1 failed\n", err);
        return 1;
    }
    if (argc >= 3 && !strcmp(argv[1], "--pass-plugin")) {
        pass_plugin = argv[2];
        argv[2] = argv[0];
        argc -= 2;
        argv += 2;
    }
    int rc = pb_test_run(tests, sizeof tests / sizeof tests[0], argc, argv);
    cc_llvm_free(cc);
    rmdir(dir);
    return rc;
}
