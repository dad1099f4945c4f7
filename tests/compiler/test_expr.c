/* test_expr.c — expressions through the compiler (docs/PATCH_ABI.md
 * § Expressions): a C expression (job.expr) and a Lisp one (found without
 * it) compile to a module that defines pb_expr and no var; their errors are
 * at the user's own line and column, once each; an eval is definitions or
 * one expression, never both. Runs for the backend named on the command
 * line ("process", "warm"). Running them is tests/runtime/expr.test.mjs. */
#include "../check.h"
#include "cc.h"

#include <stdlib.h>
#include <string.h>

static cc_compiler *cc;
static const char *backend_name = "process";

/* The room has ggg(double) and tick(void). */
static const char *const no_deps[] = {NULL};
static const cc_var room_vars[] = {
    {"ggg", "dd", "double ggg(double v)", no_deps, 0},
    {"tick", "v", "void tick(void)", no_deps, 0},
};

static void compile(pb_lang lang, bool expr, const char *src, cc_result *r)
{
    cc_job job = {lang,      lang == PB_LANG_LISP ? "e.cljc" : "e.c",
                  src,       strlen(src),
                  room_vars, 2,
                  expr};
    pb_errmsg why = {{0}};
    if (cc_compile(cc, &job, r, &why))
        fprintf(stderr, "  cc_compile: %s\n", why.text);
}

static uint32_t n_errors(const cc_result *r)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->n_diags; i++)
        n += r->diags[i].severity == PB_SEV_ERROR;
    return n;
}

/* The only error, which must contain want at line:col. */
static bool only_error_is(const cc_result *r, const char *want, uint32_t line,
                          uint32_t col)
{
    for (uint32_t i = 0; i < r->n_diags; i++)
        if (r->diags[i].severity == PB_SEV_ERROR &&
            strstr(r->diags[i].message, want) && r->diags[i].line == line &&
            r->diags[i].col == col && n_errors(r) == 1)
            return true;
    for (uint32_t i = 0; i < r->n_diags; i++)
        fprintf(stderr, "  diag %u:%u %s\n", r->diags[i].line, r->diags[i].col,
                r->diags[i].message);
    return false;
}

/* Does the module import name (its bytes contain it: an import's name)? */
static bool imports(const cc_result *r, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; r->module && i + n <= r->module_len; i++)
        if (!memcmp(r->module + i, name, n))
            return true;
    return false;
}

TEST(test_c_expression_defines_pb_expr_and_no_var)
{
    cc_result r;
    compile(PB_LANG_C, true, "ggg(10)", &r);
    REQUIRE(r.ok);
    CHECK(r.is_expr);
    CHECK_EQ_INT(r.n_defs, 0);
    REQUIRE(r.n_uses == 1);
    CHECK(!strcmp(r.uses[0].name, "ggg"));
    CHECK(imports(&r, "pb_rt_value_num")); /* a double */
    cc_result_free(&r);
}

TEST(test_the_value_function_follows_the_type)
{
    static const struct {
        const char *src, *fn;
    } cases[] = {
        {"ggg(1) > 2", "pb_rt_value_int"}, /* a C comparison is an int */
        {"(_Bool)1", "pb_rt_value_bool"},
        {"\"hi\"", "pb_rt_value_str"}, /* an array becomes a pointer */
        {"tick()", "pb_rt_value_nil"}, /* void */
        {"4000000000u", "pb_rt_value_uint"},
        {"1.5f", "pb_rt_value_num"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cc_result r;
        compile(PB_LANG_C, true, cases[i].src, &r);
        CHECK(r.ok && r.is_expr);
        if (!imports(&r, cases[i].fn))
            fprintf(stderr, "  %s does not call %s\n", cases[i].src,
                    cases[i].fn);
        CHECK(imports(&r, cases[i].fn));
        cc_result_free(&r);
    }
}

TEST(test_a_trailing_semicolon_is_allowed)
{
    cc_result r;
    compile(PB_LANG_C, true, "ggg(10);\n", &r);
    CHECK(r.ok && r.is_expr);
    cc_result_free(&r);
}

TEST(test_c_expression_errors_are_at_the_users_position_once)
{
    cc_result r;
    /* the expression is written twice inside its wrapper: one error */
    compile(PB_LANG_C, true, "ggg(10) +\n    nope(2)", &r);
    CHECK(!r.ok && !r.module);
    CHECK(only_error_is(&r, "'nope'", 2, 5));
    cc_result_free(&r);
    /* a missing parenthesis is at the end, without the wrapper's errors */
    compile(PB_LANG_C, true, "ggg(10", &r);
    CHECK(only_error_is(&r, "expected ')'", 1, 7));
    cc_result_free(&r);
}

TEST(test_a_value_of_another_type_is_refused_by_name)
{
    cc_result r;
    compile(PB_LANG_C, true, "(int *)0", &r);
    CHECK(!r.ok);
    CHECK(only_error_is(&r,
                        "\"the value of an expression must be a number, a "
                        "boolean, a string (char *) or nothing (void)\"",
                        1, 1));
    cc_result_free(&r);
}

TEST(test_definitions_may_not_define_pb_expr)
{
    cc_result r;
    compile(PB_LANG_C, false,
            "#include <patchbay.h>\n\nvoid pb_expr(void) {}\n", &r);
    CHECK(!r.ok);
    CHECK(only_error_is(&r, "'pb_expr' is the entry of an expression", 3, 1));
    cc_result_free(&r);
}

TEST(test_a_lisp_expression_is_found_without_the_flag)
{
    cc_result r;
    compile(PB_LANG_LISP, false, "; the REPL\n(ggg 10)\n", &r);
    REQUIRE(r.ok);
    CHECK(r.is_expr);
    CHECK_EQ_INT(r.n_defs, 0);
    CHECK(imports(&r, "pb_rt_value_num"));
    cc_result_free(&r);
    /* a comparison is a boolean in Lisp, and println gives nil */
    compile(PB_LANG_LISP, true, "(< (ggg 1) 2)", &r);
    CHECK(r.ok && imports(&r, "pb_rt_value_bool"));
    cc_result_free(&r);
    compile(PB_LANG_LISP, false, "(println \"hi\" (ggg 1))", &r);
    CHECK(r.ok && imports(&r, "pb_rt_value_nil"));
    cc_result_free(&r);
    /* defonce may come with it: the state the expression uses */
    compile(PB_LANG_LISP, false, "(defonce n 0)\n(reset! n (ggg 1))", &r);
    CHECK(r.ok && r.is_expr);
    CHECK(!imports(&r, "pb_rt_state_ref"));
    cc_result_free(&r);
}

TEST(test_an_expression_uses_the_rooms_state_by_name)
{
    cc_result r;
    /* a performer resets a room: the runtime finds the state by name */
    compile(PB_LANG_LISP, false, "(reset! counter 0)", &r);
    CHECK(r.ok && r.is_expr);
    CHECK(imports(&r, "pb_rt_state_ref"));
    cc_result_free(&r);
    compile(PB_LANG_LISP, false, "(swap! counter + @level 1)", &r);
    CHECK(r.ok && imports(&r, "pb_rt_state_ref"));
    cc_result_free(&r);
    compile(PB_LANG_C, true, "PB_STATE_OF(int, frames) = 0", &r);
    CHECK(r.ok && imports(&r, "pb_rt_state_ref"));
    cc_result_free(&r);
    /* a definition still declares the state it uses */
    compile(PB_LANG_LISP, false, "(defn f [] (reset! counter 0))", &r);
    CHECK(only_error_is(&r, "works on state declared with defonce", 1, 20));
    cc_result_free(&r);
}

TEST(test_an_eval_is_definitions_or_one_expression)
{
    cc_result r;
    compile(PB_LANG_LISP, false, "(defn f [x] x)\n(f 1)", &r);
    CHECK(!r.ok);
    CHECK(only_error_is(&r, "also defines vars (line 1)", 2, 1));
    cc_result_free(&r);
    compile(PB_LANG_LISP, false, "(ggg 1)\n  (ggg 2)", &r);
    CHECK(only_error_is(&r, "one expression per eval", 2, 3));
    cc_result_free(&r);
    compile(PB_LANG_LISP, true, "(defn f [x] x)", &r);
    CHECK(only_error_is(&r, "expected one expression", 1, 1));
    cc_result_free(&r);
    /* a Lisp error in an expression is at its form */
    compile(PB_LANG_LISP, false, "(ggg 1 2)", &r);
    CHECK(only_error_is(&r, "'ggg' takes 1 argument", 1, 1));
    cc_result_free(&r);
    compile(PB_LANG_LISP, false, "(fn [x] x)", &r);
    CHECK(only_error_is(&r, "has no value to print", 1, 1));
    cc_result_free(&r);
}

static const pb_test tests[] = {
    T(test_c_expression_defines_pb_expr_and_no_var),
    T(test_the_value_function_follows_the_type),
    T(test_a_trailing_semicolon_is_allowed),
    T(test_c_expression_errors_are_at_the_users_position_once),
    T(test_a_value_of_another_type_is_refused_by_name),
    T(test_definitions_may_not_define_pb_expr),
    T(test_a_lisp_expression_is_found_without_the_flag),
    T(test_an_expression_uses_the_rooms_state_by_name),
    T(test_an_eval_is_definitions_or_one_expression),
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
    pb_errmsg why;
    if (!(cc = cc_new(&d, &why))) {
        printf("cannot create the %s compiler: %s\n0 passed, 1 failed\n",
               backend_name, why.text);
        return 1;
    }
    int rc =
        pb_test_run(tests, sizeof tests / sizeof tests[0], argc - 1, argv + 1);
    cc_free(cc);
    return rc;
}
