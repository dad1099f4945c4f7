/* test_history_faults.c — SQLite-style fault injection for the history's
 * append (relay_history_append, which persists a patch before anyone sees
 * it): SQLite's allocator and the history's own allocations fail at the N-th
 * call, for every N until an append goes through, once (that call only)
 * and persistently (that call and every later one, as when memory runs
 * out). Each failure must be clean: an error comes back, the database is
 * unchanged (head, vars, the chain verifies), and the next append works.
 * history.c and patchstore.c are compiled into this test so their
 * allocations can be counted. */
#include "../check.h"

#include <sodium.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- failing allocations --------------------------------------------- */

static unsigned long n_allocs, fail_at;
static bool persistent; /* fail every allocation from fail_at on */

static bool fails(void)
{
    if (!fail_at)
        return false;
    ++n_allocs;
    return persistent ? n_allocs >= fail_at : n_allocs == fail_at;
}

static void *t_malloc(size_t n)
{
    return fails() ? NULL : malloc(n);
}
static char *t_strdup(const char *s)
{
    return fails() ? NULL : strdup(s);
}
#define malloc t_malloc
#define strdup t_strdup
#include "../../relay/history.c"
#include "../../relay/patchstore.c"
#undef malloc
#undef strdup

static sqlite3_mem_methods real;

static void *s_malloc(int n)
{
    return fails() ? NULL : real.xMalloc(n);
}
static void *s_realloc(void *p, int n)
{
    return fails() ? NULL : real.xRealloc(p, n);
}
static void s_free(void *p)
{
    real.xFree(p);
}
static int s_size(void *p)
{
    return real.xSize(p);
}
static int s_roundup(int n)
{
    return real.xRoundup(n);
}
static int s_init(void *a)
{
    return real.xInit(a);
}
static void s_shutdown(void *a)
{
    real.xShutdown(a);
}

/* ---- a history with a few signed patches ------------------------------ */

static char dir[64];
static uint8_t pk[PB_PUBLICKEY_BYTES], sk[PB_SECRETKEY_BYTES];

static int setup(void)
{
    if (pb_init())
        return 1;
    /* before SQLite initialises: its allocator is ours for the whole run */
    sqlite3_mem_methods m = {s_malloc,  s_free, s_realloc,  s_size,
                             s_roundup, s_init, s_shutdown, NULL};
    if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &real) != SQLITE_OK ||
        sqlite3_config(SQLITE_CONFIG_MALLOC, &m) != SQLITE_OK)
        return 1;
    crypto_sign_keypair(pk, sk);
    snprintf(dir, sizeof dir, "/tmp/pb-hfaults-XXXXXX");
    return mkdtemp(dir) ? 0 : 1;
}

/* A signed patch at head + 1 defining var, ready to append. */
typedef struct patch {
    pb_buf stmt;
    uint8_t sig[PB_SIG_BYTES];
    uint8_t module[16];
    const char *source;
    relay_patch_row row;
    const char *deps[2];
    relay_var_row var;
} patch;

static pb_err make_patch(relay_history *h, const char *var, patch *p)
{
    memset(p, 0, sizeof *p);
    uint64_t head;
    uint8_t head_hash[PB_HASH_BYTES];
    pb_errmsg why;
    pb_err e = relay_history_head(h, "jam", &head, head_hash, &why);
    if (e)
        return e;
    memcpy(p->module, "\0asm\1\0\0\0", 8);
    p->module[8] = (uint8_t)head;
    p->source = "double f(double v) { return v; }";
    pb_symbol sym = {pb_cstr(var), pb_cstr("d(d)")};
    pb_statement s = {0};
    s.room = pb_cstr("jam");
    s.seq = head + 1;
    memcpy(s.prev_hash, head_hash, PB_HASH_BYTES);
    pb_hash(p->module, sizeof p->module, s.module_hash);
    s.symbols = &sym;
    s.n_symbols = 1;
    s.author = pb_cstr("ann");
    s.lang = PB_LANG_C;
    pb_hash(p->source, strlen(p->source), s.source_hash);
    s.created_us = 1000 + head;
    s.apply_us = 2000 + head;
    memcpy(s.key, pk, PB_PUBLICKEY_BYTES);
    pb_buf_init(&p->stmt);
    if ((e = pb_statement_encode(&s, &p->stmt, &why)))
        return e;
    pb_sign(p->stmt.data, p->stmt.len, sk, p->sig);
    p->row = (relay_patch_row){s.seq,
                               {0},
                               p->stmt.data,
                               p->stmt.len,
                               p->sig,
                               p->module,
                               sizeof p->module,
                               p->source,
                               strlen(p->source),
                               "ann",
                               s.created_us};
    pb_hash(p->stmt.data, p->stmt.len, p->row.hash);
    p->deps[0] = "helper";
    p->deps[1] = "other";
    p->var = (relay_var_row){var, "d(d)", "double f(double);", p->deps, 2, 0};
    return PB_OK;
}

static pb_err append(relay_history *h, const char *var, pb_errmsg *why)
{
    patch p;
    pb_err e = make_patch(h, var, &p);
    if (!e)
        e = relay_history_append(h, "jam", &p.row, &p.var, 1, why);
    pb_buf_free(&p.stmt);
    return e;
}

/* What a reader sees of the room: head, vars (name@seq...), verified. */
typedef struct state {
    uint64_t head;
    uint8_t hash[PB_HASH_BYTES];
    char vars[512];
    uint64_t verified;
    pb_err verify;
} state;

static void add_var(void *ctx, const relay_var_row *v)
{
    state *st = ctx;
    size_t n = strlen(st->vars);
    snprintf(st->vars + n, sizeof st->vars - n, "%s@%llu(%u) ", v->name,
             (unsigned long long)v->seq, v->n_deps);
}

static bool read_state(relay_history *h, state *st)
{
    memset(st, 0, sizeof *st);
    pb_errmsg why = {{0}};
    if (relay_history_head(h, "jam", &st->head, st->hash, &why) ||
        relay_history_vars(h, "jam", add_var, st, &why)) {
        fprintf(stderr, "  reading the room: %s\n", why.text);
        return false;
    }
    st->verify = relay_history_verify(h, "jam", pk, &st->verified, &why);
    return true;
}

static bool same_state(const state *a, const state *b)
{
    return a->head == b->head && !memcmp(a->hash, b->hash, PB_HASH_BYTES) &&
           !strcmp(a->vars, b->vars) && a->verify == b->verify &&
           a->verified == b->verified;
}

/* Fails the N-th allocation of an append for N = 1, 2, ... until one goes
 * through; returns how many failed. */
static unsigned long every_fault(relay_history *h, bool persist)
{
    persistent = persist;
    unsigned long failed = 0;
    for (unsigned long n = 1; n < 5000; n++) {
        state before, after;
        if (!read_state(h, &before))
            return 0;
        patch p;
        if (make_patch(h, n % 2 ? "a" : "b", &p))
            return 0;
        pb_errmsg why = {{0}};
        n_allocs = 0;
        fail_at = n;
        pb_err e = relay_history_append(h, "jam", &p.row, &p.var, 1, &why);
        bool hit = n_allocs >= n;
        fail_at = 0;
        pb_buf_free(&p.stmt);
        if (!read_state(h, &after))
            return 0;
        if (e == PB_OK) {
            CHECK(!hit); /* an append that lost memory said so */
            CHECK_EQ_INT(after.head, before.head + 1);
            CHECK(after.verify == PB_OK);
            return failed;
        }
        failed++;
        if ((e != PB_ERR_NOMEM && e != PB_ERR_IO) || !why.text[0] ||
            !same_state(&before, &after))
            fprintf(stderr, "  allocation %lu%s: %s (%s); head %llu -> %llu\n",
                    n, persist ? " on" : "", pb_strerror(e), why.text,
                    (unsigned long long)before.head,
                    (unsigned long long)after.head);
        CHECK(e == PB_ERR_NOMEM || e == PB_ERR_IO);
        CHECK(why.text[0] != '\0');
        CHECK(same_state(&before, &after));
        CHECK(after.verify == PB_OK);
    }
    CHECK(!"an append went through");
    return failed;
}

static relay_history *fresh(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    pb_errmsg why = {{0}};
    relay_history *h = relay_history_open_sqlite(path, &why);
    if (!h)
        fprintf(stderr, "  %s\n", why.text);
    for (int i = 0; h && i < 3; i++)
        if (append(h, i ? "b" : "a", &why)) {
            fprintf(stderr, "  %s\n", why.text);
            relay_history_close(h);
            return NULL;
        }
    return h;
}

TEST(an_append_that_runs_out_of_memory_once_changes_nothing)
{
    relay_history *h = fresh("once.db");
    REQUIRE(h);
    unsigned long failed = every_fault(h, false);
    CHECK(failed >= 5); /* the faults did reach the append */
    /* and the history goes on */
    pb_errmsg why = {{0}};
    CHECK(append(h, "c", &why) == PB_OK);
    state st;
    REQUIRE(read_state(h, &st));
    CHECK(st.verify == PB_OK && st.verified == st.head);
    relay_history_close(h);
}

TEST(an_append_that_keeps_running_out_of_memory_changes_nothing)
{
    relay_history *h = fresh("persistent.db");
    REQUIRE(h);
    unsigned long failed = every_fault(h, true);
    CHECK(failed >= 5);
    pb_errmsg why = {{0}};
    CHECK(append(h, "c", &why) == PB_OK);
    state st;
    REQUIRE(read_state(h, &st));
    CHECK(st.verify == PB_OK && st.verified == st.head);
    relay_history_close(h);
}

/* After all that, the file itself is sound: reopened, it has every patch
 * that an append reported as done, and verifies. */
TEST(the_file_reopens_with_every_acknowledged_patch)
{
    char path[128];
    snprintf(path, sizeof path, "%s/persistent.db", dir);
    pb_errmsg why = {{0}};
    relay_history *h = relay_history_open_readonly(path, &why);
    REQUIRE(h);
    state st;
    REQUIRE(read_state(h, &st));
    CHECK_EQ_INT(st.head, 5); /* 3, the one that went through, and c */
    CHECK(st.verify == PB_OK && st.verified == 5);
    relay_history_close(h);
}

static const pb_test tests[] = {
    T(an_append_that_runs_out_of_memory_once_changes_nothing),
    T(an_append_that_keeps_running_out_of_memory_changes_nothing),
    T(the_file_reopens_with_every_acknowledged_patch),
};

PB_TEST_MAIN(tests, setup)
