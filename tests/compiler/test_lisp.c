/* test_lisp.c — the Lisp reader and lowering without clang: forms and their
 * positions, every reader error at its position, hostile nesting, long
 * chains of definitions, the position map, and what the lowering emits for
 * the var names the ABI sees. Compiling and running Lisp patches is in
 * lisp.test.mjs. */
#include "../check.h"
#include "lisp/lisp.h"

static lisp_node **read_ok(lisp_arena *a, const char *src, uint32_t *n)
{
    lisp_node **forms = NULL;
    lisp_error e = {0};
    int rc = lisp_read(a, src, strlen(src), &forms, n, &e);
    if (rc)
        fprintf(stderr, "  read failed: %u:%u: %s\n", e.line, e.col, e.message);
    return rc ? NULL : forms;
}

TEST(test_reader_reads_forms_with_positions)
{
    lisp_arena a = {0};
    uint32_t n = 0;
    lisp_node **f = read_ok(&a,
                            "; a comment\n"
                            "(defn ggg [v]\n"
                            "  (+ v 48.5 -3 0x10)) #_(gone) :kw, \"a\\n\\u00e9\"\n"
                            "'x @y nil true false {:a 1} #{1}",
                            &n);
    REQUIRE(f);
    REQUIRE(n == 10);
    CHECK(f[0]->kind == LISP_LIST && f[0]->line == 2 && f[0]->col == 1);
    REQUIRE(f[0]->n == 4);
    CHECK(f[0]->items[2]->kind == LISP_VECTOR && f[0]->items[2]->col == 11);
    const lisp_node *plus = f[0]->items[3];
    REQUIRE(plus->n == 5);
    CHECK(plus->line == 3 && plus->col == 3);
    CHECK(plus->items[2]->kind == LISP_NUM && plus->items[2]->num == 48.5);
    CHECK(plus->items[2]->line == 3 && plus->items[2]->col == 8);
    CHECK(plus->items[3]->num == -3);
    CHECK(plus->items[4]->num == 16);
    CHECK(f[1]->kind == LISP_KEYWORD && f[1]->len == 2 && !memcmp(f[1]->s, "kw", 2));
    CHECK(f[2]->kind == LISP_STR && f[2]->len == 4 &&
          !memcmp(f[2]->s, "a\n\xc3\xa9", 4));
    CHECK(f[3]->kind == LISP_LIST && f[3]->n == 2 &&
          f[3]->items[0]->kind == LISP_SYM && !memcmp(f[3]->items[0]->s, "quote", 5));
    CHECK(f[4]->kind == LISP_LIST && !memcmp(f[4]->items[0]->s, "deref", 5));
    CHECK(f[5]->kind == LISP_NIL);
    CHECK(f[6]->kind == LISP_BOOL && f[6]->truth);
    CHECK(f[7]->kind == LISP_BOOL && !f[7]->truth);
    CHECK(f[8]->kind == LISP_MAP && f[8]->n == 2);
    CHECK(f[9]->kind == LISP_SET && f[9]->n == 1);
    /* the source range of a form */
    CHECK(f[0]->off == 12 && f[0]->end == 47);
    lisp_arena_free(&a);
}

static const struct {
    const char *src;
    uint32_t line, col;
    const char *message;
} READ_ERRORS[] = {
    {"(a (b c)", 1, 1, "'(' is never closed"},
    {"(a\n  [b c)", 2, 7, "is closed by ']'"},
    {"a)", 1, 2, "unexpected ')' with nothing open"},
    {"\"abc", 1, 1, "string is never closed"},
    {"\"a\\qb\"", 1, 3, "unknown escape '\\q'"},
    {"\"\\u12\"", 1, 2, "four hex digits"},
    {"{:a 1 :b}", 1, 1, "even number of forms"},
    {"(x 12abc)", 1, 4, "'12abc' is not a number"},
    {"(x 1/3)", 1, 4, "ratios"},
    {"(x 1e999)", 1, 4, "too large"},
    {"(x 10N)", 1, 4, "BigInt"},
    {"#(+ % 1)", 1, 1, "reader macro '#('"},
    {"(x ^:m y)", 1, 4, "metadata"},
    {"(x ~y)", 1, 4, "unquote"},
    {"(x #_)", 1, 4, "nothing follows '#_'"},
    {"(x @)", 1, 4, "nothing follows '@'"},
    {":", 1, 1, "keyword needs a name"},
    {"'", 1, 1, "nothing follows '''"},
    {"(x\n", 1, 1, "never closed"},
};

TEST(test_reader_errors_name_their_position)
{
    for (size_t i = 0; i < sizeof READ_ERRORS / sizeof READ_ERRORS[0]; i++) {
        lisp_arena a = {0};
        lisp_node **forms;
        uint32_t n;
        lisp_error e = {0};
        int rc = lisp_read(&a, READ_ERRORS[i].src, strlen(READ_ERRORS[i].src),
                           &forms, &n, &e);
        bool ok = rc == -1 && e.line == READ_ERRORS[i].line &&
                  e.col == READ_ERRORS[i].col &&
                  strstr(e.message, READ_ERRORS[i].message);
        if (!ok)
            fprintf(stderr, "  %s -> %d %u:%u %s\n", READ_ERRORS[i].src, rc,
                    e.line, e.col, e.message);
        CHECK(ok);
        lisp_arena_free(&a);
    }
}

TEST(test_reader_refuses_hostile_nesting)
{
    size_t depth = 100000;
    char *src = malloc(depth * 2 + 1);
    REQUIRE(src);
    memset(src, '(', depth);
    memset(src + depth, ')', depth);
    src[depth * 2] = '\0';
    lisp_arena a = {0};
    lisp_node **forms;
    uint32_t n;
    lisp_error e = {0};
    CHECK(lisp_read(&a, src, depth * 2, &forms, &n, &e) == -1);
    CHECK(strstr(e.message, "nested more than") != NULL);
    CHECK(e.line == 1 && e.col == LISP_MAX_DEPTH + 2);
    lisp_arena_free(&a);
    free(src);
}

static int lower_src(lisp_arena *a, const char *src, lisp_c *out)
{
    static const lisp_room_var vars[] = {
        {"twice", "dd", "double twice(double x)"},
        {"tempo", "d", "double tempo(void)"},
        {"draw", "vdi", "void draw(double t, pb_canvas *c)"},
        {"name", "i", "const char *name(void)"},
    };
    return lisp_to_c(a, src, strlen(src), "t.cljc", vars, 4, out);
}

TEST(test_lowering_names_vars_for_the_abi)
{
    lisp_arena a = {0};
    lisp_c c;
    int rc = lower_src(&a,
                       "(defn ok? [x] (> (twice x) tempo))\n"
                       "(defn area ([r] (* r r)) ([w h] (* w h)))\n"
                       "(defn pb-frame [t c] (draw t c))\n"
                       "(deftest checks (is (ok? 3)))\n"
                       "(defonce hits 0)\n",
                       &c);
    if (rc)
        fprintf(stderr, "  %u:%u: %s\n", c.errs[0].line, c.errs[0].col,
                c.errs[0].message);
    REQUIRE(rc == 0);
    CHECK(strstr(c.c, "_Bool ok_p(double p__x)") != NULL);
    CHECK(strstr(c.c, "double area__1(double p__r)") != NULL);
    CHECK(strstr(c.c, "double area__2(double p__w, double p__h)") != NULL);
    CHECK(strstr(c.c, "void pb_frame(double p__t, pb_canvas *p__c)") != NULL);
    CHECK(strstr(c.c, "void pb_test__checks(void)") != NULL);
    CHECK(strstr(c.c, "PB_STATE(double, hits, 0.0)") != NULL);
    CHECK(strstr(c.c, "tempo()") != NULL); /* a value var is read by a call */
    CHECK(!memchr(c.c, '\1', c.len) && !memchr(c.c, '\2', c.len));
    lisp_arena_free(&a);
}

TEST(test_room_vars_that_take_pointers_are_refused)
{
    lisp_arena a = {0};
    lisp_c c;
    CHECK(lower_src(&a, "(defn f []\n  (name))", &c) == -1);
    CHECK(c.n_errs == 1 && c.errs[0].line == 2 && c.errs[0].col == 3);
    CHECK(strstr(c.errs[0].message, "pointers") != NULL);
    lisp_arena_free(&a);
}

TEST(test_position_map_finds_the_form)
{
    lisp_arena a = {0};
    lisp_c c;
    REQUIRE(lower_src(&a, "(defn f [x]\n  (+ x\n     (twice x)))", &c) == 0);
    /* find the C position of the call to twice and map it back */
    const char *call = strstr(c.c, "twice(");
    REQUIRE(call);
    uint32_t cl = 1, cc = 1;
    for (const char *p = c.c; p < call; p++) {
        if (*p == '\n') {
            cl++;
            cc = 1;
        } else {
            cc++;
        }
    }
    uint32_t line, col;
    lisp_c_locate(&c, cl, cc, &line, &col);
    CHECK(line == 3 && col == 6);
    lisp_c_locate(&c, 1, 1, &line, &col); /* the generated header */
    CHECK(line == 1 && col == 1);
    for (uint32_t i = 1; i < c.n_map; i++)
        CHECK(c.map[i - 1].c_line < c.map[i].c_line ||
              (c.map[i - 1].c_line == c.map[i].c_line &&
               c.map[i - 1].c_col <= c.map[i].c_col));
    lisp_arena_free(&a);
}

TEST(test_long_chains_of_later_definitions_are_bounded)
{
    /* f0 calls f1 … calls f3999, each defined after its caller: the
     * lowering must not recurse once per definition. */
    size_t n = 4000, cap = n * 48;
    char *src = malloc(cap);
    REQUIRE(src);
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(src + len, cap - len, "(defn f%zu [] (f%zu))\n",
                                i, i + 1 < n ? i + 1 : i);
    lisp_arena a = {0};
    lisp_c c;
    CHECK(lisp_to_c(&a, src, len, "chain", NULL, 0, &c) == 0);
    lisp_arena_free(&a);
    /* the same chain ending in a boolean: the assumption is checked */
    len = 0;
    for (size_t i = 0; i + 1 < n; i++)
        len += (size_t)snprintf(src + len, cap - len, "(defn f%zu [] (f%zu))\n",
                                i, i + 1);
    len += (size_t)snprintf(src + len, cap - len, "(defn f%zu [] true)\n",
                            n - 1);
    CHECK(lisp_to_c(&a, src, len, "chain", NULL, 0, &c) == -1);
    CHECK(c.n_errs >= 1 && strstr(c.errs[0].message, "must return a number"));
    lisp_arena_free(&a);
    free(src);
}

TEST(test_a_loop_without_bindings_lowers)
{
    /* (loop [] …) where nothing was ever bound: the lowering copied the
     * bindings from a null table (UBSan stopped the compile server) */
    static const char *const srcs[] = {"(defn spin [] (loop [] (recur)))",
                                       "(loop [] (recur))"};
    for (size_t i = 0; i < sizeof srcs / sizeof srcs[0]; i++) {
        lisp_arena a = {0};
        lisp_c c;
        CHECK(lower_src(&a, srcs[i], &c) == 0);
        CHECK(c.c && strstr(c.c, "for (;;)"));
        lisp_arena_free(&a);
    }
}

TEST(test_mangling)
{
    lisp_arena a = {0};
    CHECK(!strcmp(lisp_mangle(&a, "my-fn", 5), "my_fn"));
    CHECK(!strcmp(lisp_mangle(&a, "ok?", 3), "ok_p"));
    CHECK(!strcmp(lisp_mangle(&a, "swap!", 5), "swap_bang"));
    CHECK(!strcmp(lisp_mangle(&a, "->x", 3), "__gtx"));
    CHECK(lisp_mangle(&a, "a.b", 3) == NULL);
    CHECK(lisp_mangle(&a, "\xc3\xa9", 2) == NULL);
    lisp_arena_free(&a);
}

static const pb_test TESTS[] = {
    T(test_reader_reads_forms_with_positions),
    T(test_reader_errors_name_their_position),
    T(test_reader_refuses_hostile_nesting),
    T(test_lowering_names_vars_for_the_abi),
    T(test_room_vars_that_take_pointers_are_refused),
    T(test_position_map_finds_the_form),
    T(test_long_chains_of_later_definitions_are_bounded),
    T(test_a_loop_without_bindings_lowers),
    T(test_mangling),
};

PB_TEST_MAIN(TESTS, NULL)
