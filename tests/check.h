/* check.h — the tiny test harness used by the C unit tests. A test file
 * defines TEST(name) functions and lists them in a TESTS table; main() runs
 * them all (or those named on the command line), prints one line per test
 * and a closing "N passed, N failed" line (", N skipped" when some were),
 * and exits non-zero on failure. CHECK records a failure and continues;
 * REQUIRE stops the current test; SKIP(why) stops it as skipped: it can
 * neither pass nor fail here (say why: what this build or machine lacks).
 *
 * Exit status: 1 if a test failed, else PB_TEST_SKIPPED (77) if one was
 * skipped, else 0. ctest shows 77 as "Skipped" for tests registered with
 * the property SKIP_RETURN_CODE 77, and as a failure for the others: a
 * skip is never reported as a pass. */
#ifndef PB_TEST_CHECK_H
#define PB_TEST_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pb_test {
    const char *name;
    void (*fn)(void);
} pb_test;

extern int pb_test_failures_;
extern const char *pb_test_skipped_; /* why the running test skipped */
/* Called after each test however it ended (NULL: nothing): an integration
 * harness stops there what the test left running, so that a test cut
 * short by a REQUIRE does not leave its processes to the next ones. */
extern void (*pb_test_after_each)(void);

#define PB_TEST_SKIPPED 77

#define TEST(name) static void name(void)
#define T(name)                                                                \
    {                                                                          \
#name, name                                                            \
    }

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, \
                    #cond);                                                    \
            pb_test_failures_++;                                               \
        }                                                                      \
    } while (0)

#define REQUIRE(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "  %s:%d: REQUIRE(%s) failed\n", __FILE__,         \
                    __LINE__, #cond);                                          \
            pb_test_failures_++;                                               \
            return;                                                            \
        }                                                                      \
    } while (0)

#define SKIP(why)                                                              \
    do {                                                                       \
        pb_test_skipped_ = (why);                                              \
        return;                                                                \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                     \
    do {                                                                       \
        long long a_ = (long long)(a), b_ = (long long)(b);                    \
        if (a_ != b_) {                                                        \
            fprintf(stderr, "  %s:%d: %s == %s failed: %lld != %lld\n",        \
                    __FILE__, __LINE__, #a, #b, a_, b_);                       \
            pb_test_failures_++;                                               \
        }                                                                      \
    } while (0)

/* Runs the table; defined once per test binary by PB_TEST_MAIN. */
int pb_test_run(const pb_test *tests, size_t n, int argc, char **argv);

/* Defines pb_test_failures_ and pb_test_run (for a test with its own
 * main). */
#define PB_TEST_RUNNER                                                         \
    int pb_test_failures_;                                                     \
    const char *pb_test_skipped_;                                              \
    void (*pb_test_after_each)(void);                                          \
    int pb_test_run(const pb_test *tests, size_t n, int argc, char **argv)     \
    {                                                                          \
        int passed = 0, failed = 0, skipped = 0;                               \
        for (size_t i = 0; i < n; i++) {                                       \
            int want = argc <= 1;                                              \
            for (int a = 1; a < argc; a++)                                     \
                want |= strcmp(argv[a], tests[i].name) == 0;                   \
            if (!want)                                                         \
                continue;                                                      \
            int before = pb_test_failures_;                                    \
            pb_test_skipped_ = NULL;                                           \
            tests[i].fn();                                                     \
            if (pb_test_after_each)                                            \
                pb_test_after_each();                                          \
            if (pb_test_failures_ != before) {                                 \
                printf("FAIL %s\n", tests[i].name);                            \
                failed++;                                                      \
            } else if (pb_test_skipped_) {                                     \
                printf("skip %s: %s\n", tests[i].name, pb_test_skipped_);      \
                skipped++;                                                     \
            } else {                                                           \
                printf("ok   %s\n", tests[i].name);                            \
                passed++;                                                      \
            }                                                                  \
            fflush(stdout);                                                    \
        }                                                                      \
        if (skipped)                                                           \
            printf("%d passed, %d failed, %d skipped\n", passed, failed,       \
                   skipped);                                                   \
        else                                                                   \
            printf("%d passed, %d failed\n", passed, failed);                  \
        return failed ? 1 : skipped ? PB_TEST_SKIPPED : 0;                     \
    }

/* Defines the runner and main(): runs setup (may be NULL; non-zero return
 * aborts), then the table. */
#define PB_TEST_MAIN(table, setup)                                             \
    PB_TEST_RUNNER                                                             \
    int main(int argc, char **argv)                                            \
    {                                                                          \
        int (*setup_)(void) = setup;                                           \
        if (setup_ && setup_() != 0) {                                         \
            printf("0 passed, 1 failed\n");                                    \
            return 1;                                                          \
        }                                                                      \
        return pb_test_run(table, sizeof table / sizeof table[0], argc, argv); \
    }

#endif
