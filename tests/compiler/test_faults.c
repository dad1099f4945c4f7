/* test_faults.c — a compiler that crashes on one patch fails that patch
 * only. The ABI pass built with fault injection (libpb_pass_faults.so)
 * crashes inside clang when a patch defines pb_fault_segv, pb_fault_abort,
 * pb_fault_fatal (LLVM's report_fatal_error), pb_fault_stack (a stack
 * overflow) or pb_fault_oom (LLVM's answer to a failed allocation); each
 * such job must end in an error diagnostic and no module, and the next job
 * must compile, again and again.
 * usage: test_faults warm|process FAULTS_PLUGIN [test names] */
#include "../check.h"
#include "cc.h"

#include <stdlib.h>
#include <string.h>

static cc_compiler *cc;
static bool warm;

static const char seed[] =
    "#include <patchbay.h>\ndouble ggg(double v) { return v + 49; }\n";

static pb_err compile(const char *src, cc_result *r)
{
    cc_job job = {PB_LANG_C, "t.c", src, strlen(src), NULL, 0};
    pb_errmsg why = {{0}};
    pb_err e = cc_compile(cc, &job, r, &why);
    if (e)
        fprintf(stderr, "  cc_compile: %s\n", why.text);
    return e;
}

static bool has_error(const cc_result *r, const char *want)
{
    for (uint32_t i = 0; i < r->n_diags; i++)
        if (r->diags[i].severity == PB_SEV_ERROR &&
            (!want || strstr(r->diags[i].message, want)))
            return true;
    for (uint32_t i = 0; i < r->n_diags; i++)
        fprintf(stderr, "  diag %u:%u %s\n", r->diags[i].line, r->diags[i].col,
                r->diags[i].message);
    return false;
}

static void check_next_job_works(void)
{
    cc_result r;
    CHECK(compile(seed, &r) == PB_OK);
    CHECK(r.ok && r.n_defs == 1);
    cc_result_free(&r);
}

/* A patch that trips the fault `name`: the job fails with an error that
 * contains want (warm backend; the process backend's wording comes from
 * clang-14's driver and is only required to be an error). */
static void check_fault(const char *name, const char *want)
{
    char src[256];
    snprintf(src, sizeof src,
             "#include <patchbay.h>\nvoid %s(void) {}\n"
             "double ok(double v) { return v; }\n",
             name);
    for (int round = 0; round < 3; round++) {
        cc_result r;
        CHECK(compile(src, &r) == PB_OK);
        CHECK(!r.ok && !r.module);
        CHECK(has_error(&r, warm ? want : NULL));
        cc_result_free(&r);
        check_next_job_works();
    }
}

TEST(test_a_segfault_in_the_compiler_fails_only_that_job)
{
    check_fault("pb_fault_segv", "crashed (Segmentation fault)");
}

TEST(test_an_abort_in_the_compiler_fails_only_that_job)
{
    check_fault("pb_fault_abort", "crashed (Aborted)");
}

TEST(test_an_llvm_fatal_error_fails_only_that_job)
{
    check_fault("pb_fault_fatal", "injected fatal error");
}

TEST(test_a_stack_overflow_in_the_compiler_fails_only_that_job)
{
    check_fault("pb_fault_stack", "crashed (Segmentation fault)");
}

TEST(test_running_out_of_memory_in_the_compiler_fails_only_that_job)
{
    check_fault("pb_fault_oom", "injected out of memory");
}

TEST(test_faults_in_a_row_leave_the_compiler_serving)
{
    const char *faults[] = {"pb_fault_segv", "pb_fault_fatal", "pb_fault_abort",
                            "pb_fault_stack", "pb_fault_oom"};
    for (int i = 0; i < 10; i++) {
        char src[128];
        snprintf(src, sizeof src, "void %s(void) {}\n", faults[i % 5]);
        cc_result r;
        CHECK(compile(src, &r) == PB_OK);
        CHECK(!r.ok);
        cc_result_free(&r);
    }
    for (int i = 0; i < 3; i++)
        check_next_job_works();
}

static const pb_test tests[] = {
    T(test_a_segfault_in_the_compiler_fails_only_that_job),
    T(test_an_abort_in_the_compiler_fails_only_that_job),
    T(test_an_llvm_fatal_error_fails_only_that_job),
    T(test_a_stack_overflow_in_the_compiler_fails_only_that_job),
    T(test_running_out_of_memory_in_the_compiler_fails_only_that_job),
    T(test_faults_in_a_row_leave_the_compiler_serving),
};

PB_TEST_RUNNER

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: test_faults warm|process FAULTS_PLUGIN\n");
        return 2;
    }
    if (pb_init() != PB_OK)
        return 1;
    warm = !strcmp(argv[1], "warm");
    cc_desc d = {0};
    d.backend = warm ? CC_BACKEND_WARM : CC_BACKEND_PROCESS;
    d.pass_plugin = argv[2];
    d.cache_disabled = true;
    pb_errmsg why;
    if (!(cc = cc_new(&d, &why))) {
        printf("cannot create the %s compiler: %s\n0 passed, 1 failed\n",
               argv[1], why.text);
        return 1;
    }
    printf("backend: %s\n", cc_backend_name(cc));
    int rc =
        pb_test_run(tests, sizeof tests / sizeof tests[0], argc - 2, argv + 2);
    cc_free(cc);
    return rc;
}
