/* test_faults.c — a compiler that crashes on one patch fails that patch
 * only. The ABI pass built with fault injection (libpb_pass_faults.so)
 * crashes inside clang when a patch defines pb_fault_segv, pb_fault_abort,
 * pb_fault_fatal (LLVM's report_fatal_error), pb_fault_stack (a stack
 * overflow) or pb_fault_oom (LLVM's answer to a failed allocation); each
 * such job must end in the error diagnostic of that fault and no module,
 * and the next job must compile, again and again.
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
    cc_job job = {PB_LANG_C, "t.c", src, strlen(src), NULL, 0, false};
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
            strstr(r->diags[i].message, want))
            return true;
    fprintf(stderr, "  no error saying \"%s\"; the diagnostics:\n", want);
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

/* Each fault, and the error it must end in with each backend: the warm
 * engine names what happened; clang-14 as a process says it through its
 * driver (exit status 128 + signal), or dies outright on a stack overflow
 * (the driver runs cc1 in its own process). */
typedef struct fault {
    const char *name;
    const char *warm, *process;
} fault;

static const fault segv = {"pb_fault_segv", "crashed (Segmentation fault)",
                           "exit code 139"};
static const fault abort_ = {"pb_fault_abort", "crashed (Aborted)",
                             "exit code 134"};
static const fault fatal = {"pb_fault_fatal", "injected fatal error",
                            "injected fatal error"};
static const fault stack = {"pb_fault_stack", "crashed (Segmentation fault)",
                            "clang ran out of memory or crashed"};
static const fault oom = {"pb_fault_oom", "injected out of memory",
                          "exit code 134"};

/* A patch that trips fault f fails with its error and no module; the next
 * job works. */
static void check_fails_with(const fault *f)
{
    char src[256];
    snprintf(src, sizeof src,
             "#include <patchbay.h>\nvoid %s(void) {}\n"
             "double ok(double v) { return v; }\n",
             f->name);
    cc_result r;
    CHECK(compile(src, &r) == PB_OK);
    CHECK(!r.ok && !r.module);
    CHECK(has_error(&r, warm ? f->warm : f->process));
    cc_result_free(&r);
}

static void check_fault(const fault *f)
{
    for (int round = 0; round < 3; round++) {
        check_fails_with(f);
        check_next_job_works();
    }
}

TEST(test_a_segfault_in_the_compiler_fails_only_that_job)
{
    check_fault(&segv);
}

TEST(test_an_abort_in_the_compiler_fails_only_that_job)
{
    check_fault(&abort_);
}

TEST(test_an_llvm_fatal_error_fails_only_that_job)
{
    check_fault(&fatal);
}

TEST(test_a_stack_overflow_in_the_compiler_fails_only_that_job)
{
    check_fault(&stack);
}

TEST(test_running_out_of_memory_in_the_compiler_fails_only_that_job)
{
    check_fault(&oom);
}

TEST(test_faults_in_a_row_leave_the_compiler_serving)
{
    /* each job of the row fails with its own fault's error, not just
     * some error (a job that reported the previous job's crash would) */
    const fault *row[] = {&segv, &fatal, &abort_, &stack, &oom};
    for (int i = 0; i < 10; i++)
        check_fails_with(row[i % 5]);
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
    /* The time limit is not what is tested here: a clang-14 process on a
     * busy machine (load 19) took longer than the default 2 s, which
     * turned a crash into a timeout. */
    d.timeout_ms = 60000;
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
