/* test_roomfile.c — the room file of `patchbay compile --room`
 * (cli/roomfile.c): vars with their signatures, declarations and deps load
 * and save back, a missing file is an empty room, a new definition replaces
 * the old one; and, failing its N-th allocation for every N, loading fails
 * cleanly: PB_ERR_NOMEM, an empty room, nothing leaked (ASan). */
#include "../check.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Fault injection: roomfile.c is compiled here with its allocations
 * counted, and the fail_at-th one fails (0: none). */
static unsigned long n_allocs, fail_at;

static bool fails(void)
{
    return ++n_allocs == fail_at;
}
static void *t_calloc(size_t n, size_t m)
{
    return fails() ? NULL : calloc(n, m);
}
static void *t_realloc(void *p, size_t n)
{
    return fails() ? NULL : realloc(p, n);
}
static char *t_strdup(const char *s)
{
    return fails() ? NULL : strdup(s);
}
#define calloc  t_calloc
#define realloc t_realloc
#define strdup  t_strdup
#include "../../cli/roomfile.c"
#undef calloc
#undef realloc
#undef strdup

static char dir[64];

static int setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/pb-roomfile-XXXXXX");
    return mkdtemp(dir) ? 0 : 1;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static const char three[] = "ggg\tdd\t\tdouble ggg(double v)\n"
                            "hhh\tdd\tggg\t\n"
                            "no signature line\n"
                            "kkk\tii\tggg,hhh\tint kkk(int x)\n";

TEST(a_room_file_loads_every_var)
{
    char p[128];
    snprintf(p, sizeof p, "%s/three.room", dir);
    write_text(p, three);
    cli_room r;
    pb_errmsg why = {{0}};
    REQUIRE(cli_room_load(p, &r, &why) == PB_OK);
    REQUIRE(r.n == 3);
    CHECK(!strcmp(r.vars[0].name, "ggg") && !strcmp(r.vars[0].sig, "dd"));
    CHECK(!strcmp(r.vars[0].decl, "double ggg(double v)"));
    CHECK(r.vars[0].n_deps == 0);
    CHECK(r.vars[1].decl == NULL && r.vars[1].n_deps == 1);
    CHECK(r.vars[2].n_deps == 2 && !strcmp(r.vars[2].deps[1], "hhh"));
    cli_room_free(&r);
    CHECK(r.n == 0 && r.vars == NULL);
}

TEST(a_missing_room_file_is_an_empty_room)
{
    char p[128];
    snprintf(p, sizeof p, "%s/none.room", dir);
    cli_room r;
    pb_errmsg why = {{0}};
    CHECK(cli_room_load(p, &r, &why) == PB_OK);
    CHECK(r.n == 0);
}

TEST(a_room_file_that_cannot_be_read_is_an_error_naming_it)
{
    cli_room r;
    pb_errmsg why = {{0}};
    CHECK(cli_room_load(dir, &r, &why) == PB_ERR_IO); /* a directory */
    CHECK(strstr(why.text, dir) != NULL);
    CHECK(r.n == 0);
}

TEST(saving_replaces_redefined_vars_and_keeps_the_rest)
{
    char p[128];
    snprintf(p, sizeof p, "%s/save.room", dir);
    write_text(p, three);
    cli_room r;
    pb_errmsg why = {{0}};
    REQUIRE(cli_room_load(p, &r, &why) == PB_OK);
    char *deps[] = {"kkk"};
    cc_sym def = {"hhh", "ii", "int hhh(int v)", 3, deps, 1};
    cc_result res = {0};
    res.defs = &def;
    res.n_defs = 1;
    CHECK(cli_room_save(p, &r, &res, &why) == PB_OK);
    cli_room_free(&r);
    REQUIRE(cli_room_load(p, &r, &why) == PB_OK);
    REQUIRE(r.n == 3);
    CHECK(!strcmp(r.vars[0].name, "ggg"));
    CHECK(!strcmp(r.vars[1].name, "kkk"));
    CHECK(!strcmp(r.vars[2].name, "hhh") && !strcmp(r.vars[2].sig, "ii"));
    CHECK(r.vars[2].n_deps == 1 && !strcmp(r.vars[2].deps[0], "kkk"));
    cli_room_free(&r);
    char tmp[140];
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    CHECK(access(tmp, F_OK) != 0);
}

TEST(saving_where_it_cannot_write_fails_and_leaves_the_file)
{
    char p[128];
    snprintf(p, sizeof p, "%s/nodir/x.room", dir);
    cli_room r = {0};
    cc_result res = {0};
    pb_errmsg why = {{0}};
    CHECK(cli_room_save(p, &r, &res, &why) == PB_ERR_IO);
    CHECK(strstr(why.text, "nodir") != NULL);
}

TEST(loading_fails_cleanly_at_every_allocation)
{
    char p[128];
    snprintf(p, sizeof p, "%s/faults.room", dir);
    write_text(p, three);
    /* how many allocations a load makes */
    cli_room r;
    pb_errmsg why = {{0}};
    n_allocs = 0;
    fail_at = 0;
    REQUIRE(cli_room_load(p, &r, &why) == PB_OK);
    unsigned long total = n_allocs;
    cli_room_free(&r);
    REQUIRE(total >= 10);
    for (fail_at = 1; fail_at <= total; fail_at++) {
        n_allocs = 0;
        pb_err e = cli_room_load(p, &r, &why);
        if (e != PB_ERR_NOMEM || r.n || r.vars)
            fprintf(stderr, "  allocation %lu: %s, %u vars\n", fail_at,
                    pb_strerror(e), r.n);
        CHECK(e == PB_ERR_NOMEM);
        CHECK(r.n == 0 && r.vars == NULL);
        CHECK(strstr(why.text, "out of memory") != NULL);
    }
    fail_at = 0;
    REQUIRE(cli_room_load(p, &r, &why) == PB_OK); /* and works again */
    CHECK(r.n == 3);
    cli_room_free(&r);
}

static const pb_test tests[] = {
    T(a_room_file_loads_every_var),
    T(a_missing_room_file_is_an_empty_room),
    T(a_room_file_that_cannot_be_read_is_an_error_naming_it),
    T(saving_replaces_redefined_vars_and_keeps_the_rest),
    T(saving_where_it_cannot_write_fails_and_leaves_the_file),
    T(loading_fails_cleanly_at_every_allocation),
};

PB_TEST_MAIN(tests, setup)
