/* test_ipc.c — the compile server's pipe messages (compiler/ipc.c): a job
 * and a result survive packing and unpacking, a fixed output buffer is
 * never grown or reallocated (it is the caller's memory), and a message
 * that cannot be packed is an error, not a truncated message sent anyway. */
#include "../check.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static const char seed[] =
    "#include <patchbay.h>\ndouble ggg(double v) { return v + 49; }\n";

TEST(test_a_job_survives_packing)
{
    const char *const deps[] = {"b"};
    cc_var vars[2] = {{"a", "dd", "double a(double x)", deps, 1},
                      {"b", "i", NULL, NULL, 0}};
    cc_job job = {PB_LANG_C, "t.c", seed, sizeof seed - 1, vars, 2, true};
    pb_buf out;
    pb_buf_init(&out);
    REQUIRE(cc_ipc_pack_job(7, &job, &out, NULL) == PB_OK);
    cc_ipc_job j;
    REQUIRE(cc_ipc_unpack_job(out.data, out.len, &j) == 0);
    CHECK_EQ_INT(j.id, 7);
    CHECK(j.job.lang == PB_LANG_C);
    CHECK(j.job.expr);
    CHECK(!strcmp(j.job.file, "t.c"));
    CHECK(j.job.source_len == sizeof seed - 1 &&
          !memcmp(j.job.source, seed, sizeof seed - 1));
    REQUIRE(j.job.n_vars == 2);
    CHECK(!strcmp(j.job.vars[0].decl, "double a(double x)"));
    CHECK(j.job.vars[0].n_deps == 1 && !strcmp(j.job.vars[0].deps[0], "b"));
    CHECK(j.job.vars[1].decl == NULL && !strcmp(j.job.vars[1].sig, "i"));
    cc_ipc_job_free(&j);
    pb_buf_free(&out);
}

TEST(test_a_result_survives_packing)
{
    cc_diag diag = {3, 4, PB_SEV_WARNING, (char *)"unused"};
    cc_result r = {0};
    r.ok = true;
    r.is_expr = true;
    r.backend = "process";
    r.module = (uint8_t *)seed;
    r.module_len = sizeof seed;
    r.diags = &diag;
    r.n_diags = 1;
    r.total_us = 1234;
    pb_buf out;
    pb_buf_init(&out);
    REQUIRE(cc_ipc_pack_result(9, PB_OK, "", &r, &out, NULL) == PB_OK);
    uint64_t id = 0;
    pb_err status = PB_ERR_INTERNAL;
    char error[64];
    cc_result back;
    REQUIRE(cc_ipc_unpack_result(out.data, out.len, &id, &status, error,
                                 sizeof error, &back) == 0);
    CHECK_EQ_INT(id, 9);
    CHECK(status == PB_OK);
    CHECK(back.ok && back.is_expr);
    CHECK(back.backend && !strcmp(back.backend, "process"));
    CHECK(back.module_len == sizeof seed &&
          !memcmp(back.module, seed, sizeof seed));
    REQUIRE(back.n_diags == 1);
    CHECK(back.diags[0].line == 3 && !strcmp(back.diags[0].message, "unused"));
    CHECK_EQ_INT(back.total_us, 1234);
    cc_result_free(&back);
    pb_buf_free(&out);
}

TEST(test_packing_into_a_full_fixed_buffer_fails_and_leaves_it_alone)
{
    cc_job job = {PB_LANG_C, "t.c", seed, sizeof seed - 1, NULL, 0, false};
    /* A fixed buffer is the caller's memory (here, the stack): growing it
     * with realloc would free memory malloc never gave. */
    uint8_t mem[32], guard[8];
    memset(guard, 0xa5, sizeof guard);
    pb_buf b;
    pb_buf_init_fixed(&b, mem, sizeof mem);
    pb_errmsg why = {{0}};
    CHECK(cc_ipc_pack_job(1, &job, &b, &why) == PB_ERR_BUF_TOO_SMALL);
    CHECK(strstr(why.text, "cannot pack the job") != NULL);
    CHECK(b.data == mem && b.cap == sizeof mem && b.is_fixed);
    CHECK(b.len == 0); /* nothing half-written to send */
    cc_result r = {0};
    CHECK(cc_ipc_pack_result(1, PB_OK, "", &r, &b, NULL) == PB_OK); /* fits */
    CHECK(b.data == mem && b.len > 0);
    r.module = (uint8_t *)seed;
    r.module_len = sizeof seed;
    CHECK(cc_ipc_pack_result(1, PB_OK, "", &r, &b, NULL) ==
          PB_ERR_BUF_TOO_SMALL);
    CHECK(b.data == mem && b.cap == sizeof mem && b.len == 0);
    for (size_t i = 0; i < sizeof guard; i++)
        CHECK(guard[i] == 0xa5);
}

TEST(test_a_job_over_the_pipes_limit_is_refused_when_packed)
{
    /* The server refuses a message over its limit by hanging up; the
     * sender must say so instead of sending it. */
    size_t n = 9u << 20;
    char *big = malloc(n);
    REQUIRE(big != NULL);
    memset(big, ' ', n);
    cc_job job = {PB_LANG_C, "t.c", big, n, NULL, 0, false};
    pb_buf out;
    pb_buf_init(&out);
    pb_errmsg why = {{0}};
    CHECK(cc_ipc_pack_job(1, &job, &out, &why) == PB_ERR_TOO_BIG);
    CHECK(out.len == 0);
    CHECK(strstr(why.text, "at most") != NULL);
    pb_buf_free(&out);
    free(big);
}

static const pb_test tests[] = {
    T(test_a_job_survives_packing),
    T(test_a_result_survives_packing),
    T(test_packing_into_a_full_fixed_buffer_fails_and_leaves_it_alone),
    T(test_a_job_over_the_pipes_limit_is_refused_when_packed),
};

PB_TEST_MAIN(tests, NULL)
