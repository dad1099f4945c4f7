/* test_server.c — the compile server and its supervisor: jobs go through
 * the real `patchbay cc-server` process; a server killed mid-job costs that
 * job only (PB_ERR_COMPILER_DOWN) and the next job gets a new server; a
 * runaway job comes back as a timeout diagnostic; a server that died while
 * idle is replaced without failing anyone.
 * usage: test_server PATCHBAY_BINARY [warm|process] */
#include "../check.h"
#include "cc.h"

#include <pthread.h>
#include <sys/wait.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *binary;
static cc_backend backend = CC_BACKEND_PROCESS;

static const char seed[] =
    "#include <patchbay.h>\ndouble ggg(double v) { return v + 49; }\n";

static char bomb[4096];

static void make_bomb(void)
{
    size_t n = (size_t)sprintf(bomb, "#define A0 x\n");
    for (int i = 1; i <= 40; i++)
        n +=
            (size_t)sprintf(bomb + n, "#define A%d A%d A%d\n", i, i - 1, i - 1);
    sprintf(bomb + n, "int f(void) { int x = 0; return A40; }\n");
}

static cc_client *client(uint32_t timeout_ms)
{
    const char *argv[] = {binary, "cc-server", NULL};
    cc_client_desc d = {argv, backend, timeout_ms};
    pb_errmsg why;
    cc_client *c = cc_client_new(&d, &why);
    if (!c)
        fprintf(stderr, "  cc_client_new: %s\n", why.text);
    return c;
}

static pb_err run(cc_client *c, const char *src, cc_result *r)
{
    cc_job job = {PB_LANG_C, "t.c", src, strlen(src), NULL, 0, false};
    pb_errmsg why = {{0}};
    pb_err e = cc_client_compile(c, &job, r, &why);
    if (e)
        fprintf(stderr, "  (expected or not) %s\n", why.text);
    return e;
}

TEST(test_a_job_goes_through_the_server)
{
    cc_client *c = client(0);
    REQUIRE(c != NULL);
    cc_result r;
    CHECK(run(c, seed, &r) == PB_OK);
    CHECK(r.ok && r.module_len > 8 && r.n_defs == 1);
    CHECK(r.n_defs == 1 && !strcmp(r.defs[0].name, "ggg"));
    cc_result_free(&r);
    CHECK(run(c, "int f(void) { return y; }\n", &r) == PB_OK);
    CHECK(!r.ok && r.n_diags >= 1 && r.diags[0].line == 1);
    cc_result_free(&r);
    CHECK(cc_client_starts(c) == 1);
    cc_client_free(c);
}

typedef struct killer {
    cc_client *c;
    int delay_ms;
} killer;

static void *kill_later(void *arg)
{
    killer *k = arg;
    struct timespec ts = {0, (long)k->delay_ms * 1000000L};
    nanosleep(&ts, NULL);
    int pid = cc_client_pid(k->c);
    if (pid > 0)
        kill(pid, SIGKILL);
    return NULL;
}

TEST(test_a_server_killed_mid_job_costs_only_that_job)
{
    cc_client *c = client(5000);
    REQUIRE(c != NULL);
    killer k = {c, 300};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, kill_later, &k) == 0);
    cc_result r;
    pb_err e = run(c, bomb, &r);
    pthread_join(th, NULL);
    CHECK(e == PB_ERR_COMPILER_DOWN);
    CHECK(!r.ok);
    cc_result_free(&r);
    CHECK(run(c, seed, &r) == PB_OK);
    CHECK(r.ok);
    cc_result_free(&r);
    CHECK(cc_client_starts(c) == 2);
    cc_client_free(c);
}

/* Whether process pid has ended and not been reaped yet. */
static bool is_zombie(int pid)
{
    char path[64], stat[256] = "";
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *paren = strrchr(stat, ')'); /* "pid (comm) S ..." */
    return paren && paren[1] == ' ' && paren[2] == 'Z';
}

TEST(test_a_server_that_died_idle_is_replaced_quietly)
{
    cc_client *c = client(0);
    REQUIRE(c != NULL);
    int pid = cc_client_pid(c);
    kill(pid, SIGKILL);
    /* dead (a zombie until the client reaps it) before the next job, even
     * on a busy machine, where a fixed pause was sometimes too short */
    for (int i = 0; i < 1000 && !is_zombie(pid); i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    REQUIRE(is_zombie(pid));
    cc_result r;
    CHECK(run(c, seed, &r) == PB_OK);
    CHECK(r.ok);
    cc_result_free(&r);
    CHECK(cc_client_starts(c) == 2);
    cc_client_free(c);
}

TEST(test_a_runaway_job_is_a_timeout_diagnostic)
{
    cc_client *c = client(1500);
    REQUIRE(c != NULL);
    cc_result r;
    CHECK(run(c, bomb, &r) == PB_OK);
    CHECK(!r.ok && !r.module);
    CHECK(r.n_diags >= 1 && strstr(r.diags[0].message, "1500 ms limit"));
    cc_result_free(&r);
    CHECK(run(c, seed, &r) == PB_OK);
    CHECK(r.ok);
    cc_result_free(&r);
    cc_client_free(c);
}

/* 8 copies nested 8 levels deep: 16.7 million tokens that the
 * preprocessor makes in a few macro expansions and the parser then skips
 * after its first error, with no expansion in between at which the
 * deadline could end the job. `patchbay compile` ran it in its own process
 * for 20 s and 1.4 GB (fnplus: 40 s and 2.9 GB, still running) before it
 * ran its job in a compile server too. */
static const char nested_bomb[] = "#define A(x) x x x x x x x x\n"
                                  "int f(void) { return A(A(A(A(A(A(A(A(1))))"
                                  "))));\n}\n";

/* Runs `patchbay compile` on src; its exit status (-1: did not end within
 * the backstop, then killed) and its stderr in err. */
static int compile_one_shot(const char *src, char *err, size_t cap)
{
    char dir[] = "/tmp/pb-one-shot.XXXXXX";
    if (!mkdtemp(dir))
        return -1;
    char in[64], out[64], errf[64];
    snprintf(in, sizeof in, "%s/bomb.c", dir);
    snprintf(out, sizeof out, "%s/bomb.wasm", dir);
    snprintf(errf, sizeof errf, "%s/stderr", dir);
    FILE *f = fopen(in, "w");
    if (!f)
        return -1;
    fputs(src, f);
    fclose(f);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(errf, "w", stderr))
            _exit(127);
        execl(binary, binary, "compile", "--backend",
              backend == CC_BACKEND_WARM ? "warm" : "process", in, "-o", out,
              (char *)NULL);
        _exit(127);
    }
    /* A backstop, so that a regression cannot take the machine's memory:
     * what is checked is how it ends. */
    int status = -1;
    for (int i = 0; i < 1200 && waitpid(pid, &status, WNOHANG) == 0; i++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (waitpid(pid, &status, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        status = -1;
    } else {
        status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    err[0] = '\0';
    if ((f = fopen(errf, "r"))) {
        size_t n = fread(err, 1, cap - 1, f);
        err[n] = '\0';
        fclose(f);
    }
    unlink(in);
    unlink(out);
    unlink(errf);
    rmdir(dir);
    return status;
}

TEST(test_a_one_shot_compile_ends_a_bomb_as_the_server_does)
{
    cc_client *c = client(0);
    REQUIRE(c != NULL);
    cc_result r;
    CHECK(run(c, nested_bomb, &r) == PB_OK);
    REQUIRE(!r.ok && r.n_diags == 1);
    char err[4096];
    int status = compile_one_shot(nested_bomb, err, sizeof err);
    CHECK_EQ_INT(status, 1); /* the source has errors */
    char want[1024];
    snprintf(want, sizeof want, ":1:1: error: %s\n", r.diags[0].message);
    CHECK(strstr(err, want) != NULL || !fprintf(stderr, "%s", err));
    cc_result_free(&r);
    cc_client_free(c);
}

static const pb_test tests[] = {
    T(test_a_job_goes_through_the_server),
    T(test_a_server_killed_mid_job_costs_only_that_job),
    T(test_a_server_that_died_idle_is_replaced_quietly),
    T(test_a_runaway_job_is_a_timeout_diagnostic),
    T(test_a_one_shot_compile_ends_a_bomb_as_the_server_does),
};

PB_TEST_RUNNER

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_server PATCHBAY [warm|process]\n");
        return 2;
    }
    binary = argv[1];
    if (argc > 2 && !strcmp(argv[2], "warm"))
        backend = CC_BACKEND_WARM;
    if (pb_init() != PB_OK)
        return 1;
    make_bomb();
    return pb_test_run(tests, sizeof tests / sizeof tests[0], 1, argv);
}
