/* test_server.c — the compile server and its supervisor: jobs go through
 * the real `patchbay cc-server` process; a server killed mid-job costs that
 * job only (PB_ERR_COMPILER_DOWN) and the next job gets a new server; a
 * runaway job comes back as a timeout diagnostic; a server that died while
 * idle is replaced without failing anyone. And what the server gives up
 * (docs/SECURITY.md § The compile server): the relay's environment, files
 * and directory, root, and to code running inside clang (the faults
 * plugin's reads and connections) the relay's files and the network.
 * usage: test_server PATCHBAY_BINARY warm|process FAULTS_PLUGIN */
#define _GNU_SOURCE /* memmem, syscall */
#include "../check.h"
#include "cc.h"
#include "internal.h" /* CC_SERVER_TASKS */

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *binary;
static const char *faults_plugin; /* libpb_pass_faults.so */
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

/* (3 s: the honest job after the runaway must fit in the same limit; on a
 * loaded machine 1.5 s was once too short for the process backend's three
 * programs) */
TEST(test_a_runaway_job_is_a_timeout_diagnostic)
{
    cc_client *c = client(3000);
    REQUIRE(c != NULL);
    cc_result r;
    CHECK(run(c, bomb, &r) == PB_OK);
    CHECK(!r.ok && !r.module);
    CHECK(r.n_diags >= 1 && strstr(r.diags[0].message, "3000 ms limit"));
    cc_result_free(&r);
    CHECK(run(c, seed, &r) == PB_OK);
    CHECK(r.ok || !fprintf(stderr, "  %s\n",
                           r.n_diags ? r.diags[0].message : "no diagnostic"));
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

/* A data directory as the relay has one (dir is filled in): its key
 * (0600), a database left readable by everyone (0644, as SQLite creates
 * files under umask 022), and a file it holds open without close-on-exec
 * (returned). */
static int make_data_dir(char dir[32])
{
    strcpy(dir, "/tmp/pb-data.XXXXXX");
    if (!mkdtemp(dir) || chmod(dir, 0755))
        return -1;
    static const struct {
        const char *name, *text;
        mode_t mode;
    } files[] = {{"relay.key", "the relay's secret key\n", 0600},
                 {"history.db", "the room's history\n", 0644}};
    for (size_t i = 0; i < 2; i++) {
        char path[64];
        snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, files[i].mode);
        size_t len = strlen(files[i].text);
        if (fd < 0 || write(fd, files[i].text, len) != (ssize_t)len ||
            fchmod(fd, files[i].mode))
            return -1;
        close(fd);
    }
    char lock[64];
    snprintf(lock, sizeof lock, "%s/relay.lock", dir);
    return open(lock, O_RDWR | O_CREAT, 0600); /* inherited by children */
}

static void remove_data_dir(const char *dir, int lock_fd)
{
    static const char *const names[] = {"relay.key", "history.db",
                                        "relay.lock"};
    char path[64];
    close(lock_fd);
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static bool has_landlock(void)
{
    return syscall(SYS_landlock_create_ruleset, NULL, 0, 1 /* version */) >= 1;
}

/* A compile server of the faults plugin (test_faults.c's crashes, and the
 * reads and connections below). */
static cc_client *faulty_client(void)
{
    setenv("PB_PASS_PLUGIN", faults_plugin, 1);
    cc_client *c = client(0);
    unsetenv("PB_PASS_PLUGIN");
    return c;
}

/* The first diagnostic of compiling src, into said. */
static void compile_and_say(cc_client *c, const char *src, char *said,
                            size_t cap)
{
    cc_result r;
    CHECK(run(c, src, &r) == PB_OK);
    snprintf(said, cap, "%s", r.n_diags ? r.diags[0].message : "");
    cc_result_free(&r);
}

TEST(test_the_server_leaves_the_relays_files_and_environment)
{
    char dir[32], cwd[4096];
    int lock_fd = make_data_dir(dir);
    REQUIRE(lock_fd >= 0 && getcwd(cwd, sizeof cwd));
    /* started from the data directory, with a secret in the environment */
    REQUIRE(chdir(dir) == 0);
    setenv("PATCHBAY_TOKEN", "a-secret-token", 1);
    cc_client *c = client(0);
    unsetenv("PATCHBAY_TOKEN");
    REQUIRE(chdir(cwd) == 0);
    REQUIRE(c != NULL);
    cc_result r; /* a job: the server is past its start-up */
    CHECK(run(c, seed, &r) == PB_OK && r.ok);
    cc_result_free(&r);
    int pid = cc_client_pid(c);
    char path[64], buf[8192], link[4096];
    snprintf(path, sizeof path, "/proc/%d/environ", pid);
    FILE *f = fopen(path, "r");
    REQUIRE(f != NULL);
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    CHECK(n > 0 && !memmem(buf, n, "a-secret-token", 14));
    snprintf(path, sizeof path, "/proc/%d/cwd", pid);
    ssize_t len = readlink(path, link, sizeof link - 1);
    REQUIRE(len > 0);
    link[len] = '\0';
    CHECK(!strcmp(link, "/") || !fprintf(stderr, "  cwd %s\n", link));
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR *fds = opendir(path);
    REQUIRE(fds != NULL);
    for (struct dirent *e; (e = readdir(fds));) {
        char fd_path[300];
        snprintf(fd_path, sizeof fd_path, "%s/%s", path, e->d_name);
        len = readlink(fd_path, link, sizeof link - 1);
        link[len > 0 ? len : 0] = '\0';
        CHECK(!strstr(link, dir) || !fprintf(stderr, "  fd %s\n", link));
    }
    closedir(fds);
    cc_client_free(c);
    remove_data_dir(dir, lock_fd);
}

/* The server's process holds none of the relay's files from its first
 * instruction: before, it inherited every descriptor not marked
 * close-on-exec (a relay's client and Redis sockets) until it had loaded
 * the compiler and closed them itself, so a killed relay's Redis
 * subscription outlived it for that long (relay_edges saw an edge wait
 * for a dead signer). A shell as the server lists its descriptors. */
TEST(test_a_server_holds_none_of_the_relays_files_from_its_start)
{
    int sock = socket(AF_INET, SOCK_STREAM, 0); /* not close-on-exec */
    REQUIRE(sock >= 0);
    /* ("--timeout-ms N" comes after: the shell's $0 and $1) */
    const char *argv[] = {"/bin/sh", "-c", "exec cat >/dev/null", NULL};
    cc_client_desc d = {argv, CC_BACKEND_AUTO, 0};
    pb_errmsg why;
    cc_client *c = cc_client_new(&d, &why);
    REQUIRE(c != NULL);
    char path[64], exe[4096] = "", fds[256] = "";
    snprintf(path, sizeof path, "/proc/%d/exe", cc_client_pid(c));
    for (int i = 0; i < 1000; i++) { /* until the shell has become cat */
        ssize_t n = readlink(path, exe, sizeof exe - 1);
        exe[n > 0 ? n : 0] = '\0';
        if (n > 4 && !strcmp(exe + n - 4, "/cat"))
            break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    snprintf(path, sizeof path, "/proc/%d/fd", cc_client_pid(c));
    DIR *dir = opendir(path);
    REQUIRE(dir != NULL);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(dir));)
        if (e->d_name[0] != '.')
            n += (size_t)snprintf(fds + n, sizeof fds - n, "%s ", e->d_name);
    closedir(dir);
    printf("# the server's descriptors: %s(%s)\n", fds, exe);
    CHECK(!strcmp(fds, "0 1 2 "));
    cc_client_free(c);
    close(sock);
}

/* A relay run as root: its compile server is nobody, with no groups. */
TEST(test_a_server_started_as_root_runs_as_nobody)
{
    if (getuid() != 0)
        SKIP("not root: the server keeps this user");
    cc_client *c = client(0);
    REQUIRE(c != NULL);
    cc_result r; /* a job: the server is past its start-up */
    CHECK(run(c, seed, &r) == PB_OK && r.ok);
    cc_result_free(&r);
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", cc_client_pid(c));
    FILE *f = fopen(path, "r");
    REQUIRE(f != NULL);
    int seen = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned ids[4];
        if (sscanf(line, "Uid: %u %u %u %u", &ids[0], &ids[1], &ids[2],
                   &ids[3]) == 4 ||
            sscanf(line, "Gid: %u %u %u %u", &ids[0], &ids[1], &ids[2],
                   &ids[3]) == 4) {
            seen++;
            for (int i = 0; i < 4; i++)
                CHECK(ids[i] == 65534 || !fprintf(stderr, "  %s", line));
        } else if (!strncmp(line, "Groups:", 7)) {
            seen++;
            CHECK(strspn(line + 7, " \t\n") == strlen(line + 7) ||
                  !fprintf(stderr, "  %s", line));
        }
    }
    fclose(f);
    CHECK(seen == 3);
    /* and it still compiles what needs the headers and the PCH */
    CHECK(run(c, "#include <patchbay.h>\nint g(int x) { return x * 3; }\n",
              &r) == PB_OK &&
          r.ok);
    cc_result_free(&r);
    cc_client_free(c);
}

/* The source itself cannot name the relay's files: the include sandbox
 * (this held before the server was confined, and must go on holding). */
TEST(test_a_patch_cannot_include_the_relays_key)
{
    char dir[32];
    int lock_fd = make_data_dir(dir);
    REQUIRE(lock_fd >= 0);
    cc_client *c = client(0);
    REQUIRE(c != NULL);
    char src[256];
    snprintf(src, sizeof src,
             "#include \"%s/relay.key\"\nint f(void) { return 1; }\n", dir);
    cc_result r;
    CHECK(run(c, src, &r) == PB_OK && !r.ok && r.n_diags >= 1);
    for (uint32_t i = 0; i < r.n_diags; i++)
        CHECK(!strstr(r.diags[i].message, "secret"));
    cc_result_free(&r);
    snprintf(src, sizeof src,
             "#if __has_include(\"%s/relay.key\") || "
             "__has_include(\"%s/history.db\")\n"
             "#error seen\n#endif\nint f(void) { return 1; }\n",
             dir, dir);
    CHECK(run(c, src, &r) == PB_OK && r.ok);
    cc_result_free(&r);
    cc_client_free(c);
    remove_data_dir(dir, lock_fd);
}

/* Should a bug in clang let a hostile patch run code in the compile
 * server, the code finds nothing of the relay's: the fault-injection pass
 * reads the file a patch names, as such code would. */
TEST(test_code_in_the_compiler_cannot_read_the_relays_files)
{
    if (!has_landlock() && getuid() != 0)
        SKIP("no Landlock and not root: nothing confines the server's reads");
    char dir[32];
    int lock_fd = make_data_dir(dir);
    REQUIRE(lock_fd >= 0);
    cc_client *c = faulty_client();
    REQUIRE(c != NULL);
    static const struct {
        const char *path; /* in the data directory without a leading / */
        bool is_readable;
        bool needs_landlock; /* only Landlock keeps nobody out of it */
    } cases[] = {
        {"/usr/share/emscripten/cache/sysroot/include/stdio.h", true, false},
        {"relay.key", false, false},
        {"history.db", false, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].needs_landlock && !has_landlock())
            continue;
        char path[128], src[256], said[1024];
        if (cases[i].path[0] == '/')
            snprintf(path, sizeof path, "%s", cases[i].path);
        else
            snprintf(path, sizeof path, "%s/%s", dir, cases[i].path);
        snprintf(src, sizeof src,
                 "const char pb_fault_read_path[] = \"%s\";\n"
                 "int f(void) { return 1; }\n",
                 path);
        compile_and_say(c, src, said, sizeof said);
        if (cases[i].is_readable)
            CHECK(strstr(said, "pb_fault_read: read 64 bytes") ||
                  !fprintf(stderr, "  %s\n", said));
        else
            CHECK((strstr(said, "pb_fault_read: cannot open") &&
                   strstr(said, "Permission denied")) ||
                  !fprintf(stderr, "  %s\n", said));
    }
    cc_client_free(c);
    remove_data_dir(dir, lock_fd);
}

/* ... nor reach the network: no socket at all (seccomp), no TCP (Landlock
 * ABI 4) on a kernel without the filter. */
TEST(test_code_in_the_compiler_cannot_connect)
{
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in at = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof at;
    REQUIRE(listener >= 0 && !bind(listener, (struct sockaddr *)&at, len) &&
            !listen(listener, 4) &&
            !getsockname(listener, (struct sockaddr *)&at, &len));
    cc_client *c = faulty_client();
    REQUIRE(c != NULL);
    char src[256], said[1024];
    snprintf(src, sizeof src,
             "const int pb_fault_connect_port = %u;\n"
             "int f(void) { return 1; }\n",
             ntohs(at.sin_port));
    compile_and_say(c, src, said, sizeof said);
    CHECK((strstr(said, "pb_fault_connect: ") &&
           !strstr(said, "pb_fault_connect: connected")) ||
          !fprintf(stderr, "  %s\n", said));
    cc_client_free(c);
    close(listener);
}

/* ... nor start processes without end: past its uid's tasks when it
 * started plus CC_SERVER_TASKS, fork fails (RLIMIT_NPROC, which does not
 * hold for root: skipped where the server stays root). In the warm backend
 * the code runs in the server, in the process backend in its clang. */
TEST(test_code_in_the_compiler_cannot_start_processes_without_end)
{
    /* forking a server of the test build is slow: room to reach the limit */
    setenv("PB_PASS_PLUGIN", faults_plugin, 1);
    cc_client *c = client(60000);
    unsetenv("PB_PASS_PLUGIN");
    REQUIRE(c != NULL);
    enum { TRIES = 4 * CC_SERVER_TASKS };
    char src[256], said[1024];
    snprintf(src, sizeof src,
             "const int pb_fault_fork_count = %d;\n"
             "int f(void) { return 1; }\n",
             TRIES);
    compile_and_say(c, src, said, sizeof said);
    cc_client_free(c);
    unsigned uid = 0, started = 0, tries = 0;
    const char *at = strstr(said, "pb_fault_fork: uid ");
    REQUIRE(at && sscanf(at, "pb_fault_fork: uid %u started %u of %u", &uid,
                         &started, &tries) == 3);
    if (uid == 0)
        SKIP("the server stays root, where RLIMIT_NPROC does not hold");
    /* the headroom grows when other processes of its uid end (the other
     * backend's test, other relays' servers): not exactly CC_SERVER_TASKS */
    CHECK(tries == TRIES);
    CHECK(started < TRIES || !fprintf(stderr, "  %s\n", said));
    CHECK(strstr(said, "Resource temporarily unavailable") ||
          !fprintf(stderr, "  %s\n", said));
}

/* The live processes called name (their comm), from /proc. */
static int processes_called(const char *name)
{
    DIR *d = opendir("/proc");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        char path[64], stat[512];
        snprintf(path, sizeof path, "/proc/%.20s/stat", e->d_name);
        FILE *f = e->d_name[0] >= '1' && e->d_name[0] <= '9' ? fopen(path, "r")
                                                             : NULL;
        size_t len = f ? fread(stat, 1, sizeof stat - 1, f) : 0;
        if (f)
            fclose(f);
        stat[len] = '\0';
        /* pid (comm) state ...; a zombie is dead already (killed, not yet
         * reaped by init) */
        const char *open = strchr(stat, '('), *close = strrchr(stat, ')');
        if (open && close && close[1] == ' ' && close[2] != 'Z' &&
            (size_t)(close - open - 1) == strlen(name) &&
            !strncmp(open + 1, name, strlen(name)))
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

/* A job that starts processes and overruns its time: when its server is
 * ended, so is every process it started (they outlived it before). In
 * the process backend they are the grandchildren of the server, left
 * when it killed its clang: they live until the server ends. */
TEST(test_what_the_compiler_started_ends_with_its_server)
{
    cc_client *c = faulty_client();
    REQUIRE(c != NULL);
    char name[16], src[256], said[1024];
    snprintf(name, sizeof name, "pbkid%d", (int)getpid() % 1000000);
    snprintf(src, sizeof src,
             "const int pb_fault_fork_and_hang = 8;\n"
             "const char pb_fault_fork_name[] = \"%s\";\n"
             "int f(void) { return 1; }\n",
             name);
    compile_and_say(c, src, said, sizeof said);
    CHECK(strstr(said, "limit") || !fprintf(stderr, "  %s\n", said));
    /* (the warm server was ended by its watchdog; the process backend's
     * ends with its client) */
    cc_client_free(c);
    /* SIGKILL is sent; a loaded machine may take a moment to deliver it */
    int left = processes_called(name);
    for (int i = 0; i < 100 && left; i++, left = processes_called(name))
        usleep(50000);
    CHECK(left == 0 || !fprintf(stderr, "  %d processes outlived it\n", left));
}

static const pb_test tests[] = {
    T(test_a_job_goes_through_the_server),
    T(test_a_server_killed_mid_job_costs_only_that_job),
    T(test_a_server_that_died_idle_is_replaced_quietly),
    T(test_a_runaway_job_is_a_timeout_diagnostic),
    T(test_a_one_shot_compile_ends_a_bomb_as_the_server_does),
    T(test_the_server_leaves_the_relays_files_and_environment),
    T(test_a_server_holds_none_of_the_relays_files_from_its_start),
    T(test_a_server_started_as_root_runs_as_nobody),
    T(test_a_patch_cannot_include_the_relays_key),
    T(test_code_in_the_compiler_cannot_read_the_relays_files),
    T(test_code_in_the_compiler_cannot_connect),
    T(test_code_in_the_compiler_cannot_start_processes_without_end),
    T(test_what_the_compiler_started_ends_with_its_server),
};

PB_TEST_RUNNER

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: test_server PATCHBAY warm|process "
                        "FAULTS_PLUGIN [TEST...]\n");
        return 2;
    }
    /* absolute: a test starts a server from another directory */
    static char binary_path[4096], plugin_path[4096];
    binary = realpath(argv[1], binary_path) ? binary_path : argv[1];
    faults_plugin = realpath(argv[3], plugin_path) ? plugin_path : argv[3];
    if (argc > 2 && !strcmp(argv[2], "warm"))
        backend = CC_BACKEND_WARM;
    if (pb_init() != PB_OK)
        return 1;
    make_bomb();
    /* test names after the three arguments run those alone */
    return pb_test_run(tests, sizeof tests / sizeof tests[0], argc - 3,
                       argv + 3);
}
