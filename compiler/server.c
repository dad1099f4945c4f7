/* server.c — the compile server loop (`patchbay cc-server`): jobs in on a
 * pipe, results out, one at a time, with a watchdog that ends the process
 * when a job overruns its time — the only safe way to stop clang midway.
 * Its supervisor is cc_client (client.c). */
#define _GNU_SOURCE /* syscall, O_PATH, close_range */
#include "internal.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define CC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CC_ASAN 1
#endif
#endif

/* Address space for the whole server (not under ASan, which reserves
 * terabytes of virtual memory for its shadow). */
#define CC_SERVER_MEMORY_BYTES (4096ull << 20)

static _Atomic uint64_t job_started_us; /* 0: idle */
static uint32_t job_timeout_ms;

static void *watchdog(void *arg)
{
    (void)arg;
    for (;;) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        uint64_t t = atomic_load(&job_started_us);
        if (t && cc_now_us() - t > (uint64_t)job_timeout_ms * 1000u) {
            static const char msg[] =
                "patchbay cc-server: a job overran its time; exiting\n";
            if (write(2, msg, sizeof msg - 1) < 0) {
                /* nothing more to do */
            }
            _exit(CC_EXIT_TIMEOUT);
        }
    }
    return NULL;
}

/* A warm backend's first job pays for clang's first use and its second
 * for the PCH of <patchbay.h> (backend_warm.c): pay both while nobody
 * waits, not in the first evals. */
static void warm_up(cc_compiler *cc)
{
    for (int i = 0; i < 2; i++) {
        char src[128]; /* two sources: the cache must not answer */
        int n = snprintf(src, sizeof src,
                         "#include <patchbay.h>\n"
                         "int warm_up(int x) { return x + %d; }\n",
                         i);
        cc_job job = {PB_LANG_C, "warm-up.c", src, (size_t)n, NULL, 0, false};
        cc_result r;
        pb_errmsg why;
        if (cc_compile(cc, &job, &r, &why) != PB_OK)
            fprintf(stderr, "patchbay cc-server: warm-up: %s\n", why.text);
        cc_result_free(&r);
    }
}

/* The relay's files that this process inherited (its database, its lock,
 * whatever it did not open close-on-exec) and its working directory, the
 * data directory perhaps: a job needs none of them. */
static void leave_the_relays_files(int in_fd, int out_fd)
{
    int keep[3] = {2, in_fd < out_fd ? in_fd : out_fd,
                   in_fd < out_fd ? out_fd : in_fd};
    unsigned from = 3;
    for (int i = 0; i < 3; i++) {
        if (keep[i] < 0 || (unsigned)keep[i] < from)
            continue;
        if ((unsigned)keep[i] > from)
            close_range(from, (unsigned)keep[i] - 1, 0);
        from = (unsigned)keep[i] + 1;
    }
    close_range(from, ~0u, 0);
    if (chdir("/") != 0) {
        /* "/" always exists; nothing to do */
    }
}

/* Each layer where the system has it; one line on stderr for each it has
 * not (the server still serves: a relay without a compile server is of no
 * use to anyone, and the line says what is missing). */
static void confine(const cc_compiler *cc)
{
    cc_paths paths;
    cc_backend_paths(cc, &paths);
    pb_errmsg why = {{0}};
    if (cc_drop_root(&paths, &why))
        fprintf(stderr, "patchbay cc-server: %s\n", why.text);
    if (cc_limit_tasks(&why)) /* before Landlock hides /proc */
        fprintf(stderr, "patchbay cc-server: %s\n", why.text);
    if (cc_confine_files(&paths, &why))
        fprintf(stderr, "patchbay cc-server: files not confined: %s\n",
                why.text);
    if (cc_confine_syscalls(&why))
        fprintf(stderr, "patchbay cc-server: system calls not confined: %s\n",
                why.text);
}

int cc_server_run(int in_fd, int out_fd, const cc_desc *desc)
{
    cc_desc d = desc ? *desc : (cc_desc){0};
#ifndef CC_ASAN
    struct rlimit as = {CC_SERVER_MEMORY_BYTES, CC_SERVER_MEMORY_BYTES};
    setrlimit(RLIMIT_AS, &as);
#endif
    pb_errmsg why = {{0}};
    cc_compiler *cc = cc_new(&d, &why);
    if (!cc) {
        fprintf(stderr, "patchbay cc-server: %s\n", why.text);
        return 1;
    }
    if (cc_backend_fallback(cc))
        fprintf(stderr, "patchbay cc-server: %s\n", cc_backend_fallback(cc));
    /* The compiler is loaded (with absolute paths): from here on this
     * process needs the headers, the pass plugin and its work directory,
     * nothing else. */
    leave_the_relays_files(in_fd, out_fd);
    if (!d.unconfined)
        confine(cc);
    /* Both backends stop a job at the limit themselves where they can (the
     * process backend kills its children; the warm one stops macro
     * expansion and skips what is left of the optimiser); the watchdog, a
     * second later, catches what they cannot (the warm backend's parser or
     * code generation, say). */
    job_timeout_ms =
        (d.timeout_ms ? d.timeout_ms : CC_DEFAULT_TIMEOUT_MS) + 1000;
    pthread_t th;
    if (pthread_create(&th, NULL, watchdog, NULL) == 0)
        pthread_detach(th);
    /* (the process backend has nothing to warm up) */
    bool is_warmed_up = strcmp(cc_backend_name(cc), "warm") != 0;
    pb_buf out;
    pb_buf_init(&out);
    int rc = 0;
    /* Once warm, the server says so with an empty message: from then on
     * the supervisor may give a job less than the whole limit
     * (cc_client_compile_within). */
    const pb_buf warm = {0}; /* (an empty message) */
    if (is_warmed_up && cc_ipc_send(out_fd, &warm))
        rc = 1;
    while (!rc) {
        /* Warm up while the pipe is quiet: a job that is already waiting
         * (a one-shot `patchbay compile`, an eval that came while the
         * server started) goes first. */
        struct pollfd in = {in_fd, POLLIN, 0};
        if (!is_warmed_up && poll(&in, 1, 0) == 0) {
            warm_up(cc);
            is_warmed_up = true;
            if (cc_ipc_send(out_fd, &warm)) {
                rc = 1;
                break;
            }
        }
        uint8_t *msg = NULL;
        size_t len = 0;
        if (cc_ipc_recv(in_fd, &msg, &len, 0) != CC_IPC_OK)
            break; /* input closed: the supervisor is done with us */
        cc_ipc_job j;
        cc_result res = {0};
        pb_err e;
        if (cc_ipc_unpack_job(msg, len, &j)) {
            e = pb_fail(&why, PB_ERR_INTERNAL, "malformed request");
            j.id = 0;
        } else {
            atomic_store(&job_started_us, cc_now_us());
            e = cc_compile(cc, &j.job, &res, &why);
            atomic_store(&job_started_us, 0);
        }
        free(msg);
        pb_errmsg pack_why;
        pb_err packed = cc_ipc_pack_result(j.id, e, e ? why.text : "", &res,
                                           &out, &pack_why);
        cc_result_free(&res);
        /* A result that cannot be packed is answered with why, without the
         * result: the supervisor must not wait for an answer that never
         * comes. */
        if (packed &&
            cc_ipc_pack_result(j.id, packed, pack_why.text, &res, &out, NULL)) {
            cc_ipc_job_free(&j);
            rc = 1;
            break;
        }
        cc_ipc_job_free(&j);
        if (cc_ipc_send(out_fd, &out)) {
            rc = 1;
            break;
        }
    }
    pb_buf_free(&out);
    cc_free(cc);
    return rc;
}
