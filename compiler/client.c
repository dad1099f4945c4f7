/* client.c — the supervisor side of the compile server: starts the
 * command its caller names (`patchbay cc-server` for the relay), sends a
 * job, waits with a deadline, and when the server dies (crash, watchdog,
 * memory limit) reports that job and starts a fresh server for the next
 * one. */
#define _GNU_SOURCE /* close_range */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct cc_client {
    char *argv[16];
    uint32_t timeout_ms;
    pid_t pid;
    int to_server, from_server;
    uint64_t next_id;
    uint32_t starts;
    bool warm; /* the server said it is warm, or answered a job */
};

/* Ends the server — killed, or (kill_it false) once it has exited, as a
 * closed pipe tells it to — and every process it started: they are in its
 * process group, which they cannot leave (setsid and setpgid are denied to
 * the server, confine.c), and the group is killed while the server's pid,
 * not yet reaped, still holds its number. Then reaps the server. */
static void stop(cc_client *c, bool kill_it, int *status)
{
    if (c->to_server >= 0)
        close(c->to_server);
    if (c->from_server >= 0)
        close(c->from_server);
    c->to_server = c->from_server = -1;
    if (c->pid > 0) {
        siginfo_t info;
        if (kill_it)
            kill(c->pid, SIGKILL); /* (if its group could not be made) */
        else
            while (waitid(P_PID, (id_t)c->pid, &info, WEXITED | WNOWAIT) < 0 &&
                   errno == EINTR)
                ;
        kill(-c->pid, SIGKILL);
        int st = 0;
        while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
            ;
        if (status)
            *status = st;
    }
    c->pid = 0;
}

/* The environment the server gets: what configures the compiler and the
 * sanitizers, and PATH. Nothing else of the relay's (tokens, secrets,
 * its paths) is the server's business. */
static bool is_for_the_server(const char *kv)
{
    static const char *const names[] = {
        "PATH=",         "PB_ABI_DIR=",   "PB_PASS_PLUGIN=", "PB_CC_LLVM=",
        "ASAN_OPTIONS=", "LSAN_OPTIONS=", "UBSAN_OPTIONS=",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strncmp(kv, names[i], strlen(names[i])))
            return true;
    return false;
}

static int start(cc_client *c, pb_errmsg *why)
{
    char *env[16];
    size_t n_env = 0;
    for (char **e = environ; *e && n_env + 1 < sizeof env / sizeof env[0]; e++)
        if (is_for_the_server(*e))
            env[n_env++] = *e;
    env[n_env] = NULL;
    int in[2], out[2];
    if (pipe(in) || pipe(out)) {
        pb_fail(why, PB_ERR_COMPILER_DOWN, "cannot create pipes: %s",
                strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        pb_fail(why, PB_ERR_COMPILER_DOWN,
                "cannot start the compile server: %s", strerror(errno));
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0); /* a group of its own: stop() ends it whole */
        dup2(in[0], 0);
        dup2(out[1], 1);
        /* nothing else of the relay's: its sockets (clients, Redis) stay
         * its own, even while the server loads (server.c closes what it
         * inherits only once it has) */
        close_range(3, ~0u, 0);
        execve(c->argv[0], c->argv, env);
        _exit(127);
    }
    setpgid(pid, pid); /* (whichever of the two runs first) */
    close(in[0]);
    close(out[1]);
    fcntl(in[1], F_SETFD, FD_CLOEXEC);
    fcntl(out[0], F_SETFD, FD_CLOEXEC);
    c->pid = pid;
    c->to_server = in[1];
    c->from_server = out[0];
    c->starts++;
    c->warm = false;
    return 0;
}

cc_client *cc_client_new(const cc_client_desc *desc, pb_errmsg *why)
{
    cc_client_desc d = desc ? *desc : (cc_client_desc){0};
    cc_client *c = calloc(1, sizeof *c);
    if (!c) {
        pb_fail(why, PB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    c->to_server = c->from_server = -1;
    c->timeout_ms = d.timeout_ms ? d.timeout_ms : CC_DEFAULT_TIMEOUT_MS;
    size_t n = 0;
    if (!d.argv || !d.argv[0]) {
        cc_client_free(c);
        pb_fail(why, PB_ERR_INTERNAL, "no compile server command given");
        return NULL;
    }
    for (; d.argv[n] && n < 12; n++)
        c->argv[n] = cc_strdup(d.argv[n]);
    if (d.backend != CC_BACKEND_AUTO) {
        c->argv[n++] = cc_strdup("--backend");
        c->argv[n++] = cc_strdup(cc_backend_str(d.backend));
    }
    char ms[32];
    snprintf(ms, sizeof ms, "%u", c->timeout_ms);
    c->argv[n++] = cc_strdup("--timeout-ms");
    c->argv[n++] = cc_strdup(ms);
    c->argv[n] = NULL;
    for (size_t i = 0; i < n; i++)
        if (!c->argv[i]) {
            cc_client_free(c);
            pb_fail(why, PB_ERR_NOMEM, "out of memory");
            return NULL;
        }
    if (start(c, why)) {
        cc_client_free(c);
        return NULL;
    }
    return c;
}

void cc_client_free(cc_client *c)
{
    if (!c)
        return;
    stop(c, false, NULL); /* closing its input ends the server */
    for (size_t i = 0; c->argv[i]; i++)
        free(c->argv[i]);
    free(c);
}

int cc_client_pid(const cc_client *c)
{
    return c->pid;
}

uint32_t cc_client_starts(const cc_client *c)
{
    return c->starts;
}

static pb_err timed_out(cc_client *c, cc_result *out)
{
    memset(out, 0, sizeof *out);
    out->diags = calloc(1, sizeof *out->diags);
    char msg[160];
    cc_timeout_message(msg, sizeof msg, c->timeout_ms);
    if (!out->diags || !(out->diags[0].message = cc_strdup(msg))) {
        free(out->diags);
        out->diags = NULL;
        return PB_ERR_NOMEM;
    }
    out->diags[0].line = out->diags[0].col = 1;
    out->diags[0].severity = PB_SEV_ERROR;
    out->n_diags = 1;
    return PB_OK;
}

/* Whether the server has said it is warm (an empty message, once its
 * warm-up is over) or has answered a job. */
static bool is_warm(cc_client *c)
{
    /* the only message an idle server sends is that it is warm */
    struct pollfd in = {c->from_server, POLLIN, 0};
    if (!c->warm && c->pid > 0 && poll(&in, 1, 0) == 1) {
        uint8_t *msg = NULL;
        size_t len = 0;
        if (cc_ipc_recv(c->from_server, &msg, &len, cc_now_us() + 1000000) ==
                CC_IPC_OK &&
            len == 0)
            c->warm = true;
        free(msg);
    }
    return c->warm;
}

pb_err cc_client_compile(cc_client *c, const cc_job *job, cc_result *out,
                         pb_errmsg *why)
{
    return cc_client_compile_within(c, job, 0, NULL, out, why);
}

pb_err cc_client_compile_within(cc_client *c, const cc_job *job,
                                uint32_t budget_ms, bool *stopped,
                                cc_result *out, pb_errmsg *why)
{
    memset(out, 0, sizeof *out);
    if (stopped)
        *stopped = false;
    signal(SIGPIPE, SIG_IGN);
    /* A server that died while idle is replaced without failing this job. */
    siginfo_t info = {0};
    if (c->pid > 0 &&
        !waitid(P_PID, (id_t)c->pid, &info, WEXITED | WNOHANG | WNOWAIT) &&
        info.si_pid == c->pid)
        stop(c, false, NULL);
    if (c->pid <= 0 && start(c, why))
        return PB_ERR_COMPILER_DOWN;
    /* a cold server's first job pays for its warm-up: no budget then */
    bool budgeted =
        stopped && budget_ms && budget_ms < c->timeout_ms && is_warm(c);
    uint64_t id = ++c->next_id;
    pb_buf msg;
    pb_buf_init(&msg);
    pb_err packed = cc_ipc_pack_job(id, job, &msg, why);
    int sent = packed ? -1 : cc_ipc_send(c->to_server, &msg);
    pb_buf_free(&msg);
    if (packed)
        return packed;
    uint8_t *reply = NULL;
    size_t len = 0;
    /* the server's own limits come first; this deadline is the backstop */
    uint64_t now = cc_now_us();
    uint64_t deadline = now + (uint64_t)c->timeout_ms * 1000u + 3000000u;
    if (budgeted)
        deadline = now + (uint64_t)budget_ms * 1000u;
    cc_ipc_status r = CC_IPC_CLOSED;
    while (!sent &&
           (r = cc_ipc_recv(c->from_server, &reply, &len, deadline)) ==
               CC_IPC_OK &&
           len == 0) { /* (it finished warming up meanwhile) */
        c->warm = true;
        free(reply);
        reply = NULL;
    }
    if (r == CC_IPC_TIMEOUT && budgeted) {
        stop(c, true, NULL);
        *stopped = true;
        return PB_OK;
    }
    if (r != CC_IPC_OK) {
        int status = 0;
        stop(c, true, &status);
        if (r == CC_IPC_TIMEOUT ||
            (WIFEXITED(status) && WEXITSTATUS(status) == CC_EXIT_TIMEOUT))
            return timed_out(c, out);
        return pb_fail(why, PB_ERR_COMPILER_DOWN,
                       "the compile server %s on this job; a new one starts "
                       "with the next",
                       WIFSIGNALED(status) ? "crashed" : "exited");
    }
    c->warm = true;
    uint64_t got_id = 0;
    pb_err status = PB_OK;
    char error[256];
    int bad = cc_ipc_unpack_result(reply, len, &got_id, &status, error,
                                   sizeof error, out);
    free(reply);
    if (bad || got_id != id) {
        stop(c, true, NULL);
        return pb_fail(why, PB_ERR_COMPILER_DOWN,
                       "the compile server answered out of turn; restarted");
    }
    if (status)
        return pb_fail(why, status, "%s", error);
    return PB_OK;
}
