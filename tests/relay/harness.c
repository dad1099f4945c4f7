/* harness.c — see harness.h. */
#include "harness.h"

#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *patchbay_bin;
const char *backend;
char tmp_root[128];

uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- what this process started, killed however the tests end ------------- */

/* By value: a test that stops at a failed REQUIRE leaves its relay struct
 * behind on a dead stack frame, but not this. */
static struct started {
    pid_t pid;         /* a `patchbay serve` child */
    relay_server *srv; /* or a relay in this process */
    pthread_t thread;
} started[16];

static void remember(pid_t pid, relay_server *srv, pthread_t thread)
{
    for (size_t i = 0; i < sizeof started / sizeof started[0]; i++)
        if (!started[i].pid && !started[i].srv) {
            started[i] = (struct started){pid, srv, thread};
            return;
        }
    fprintf(stderr, "  (harness) more than 16 relays at once\n");
}

static void forget(pid_t pid, const relay_server *srv)
{
    for (size_t i = 0; i < sizeof started / sizeof started[0]; i++)
        if ((pid && started[i].pid == pid) || (srv && started[i].srv == srv))
            started[i] = (struct started){0};
}

void harness_cleanup(void)
{
    for (size_t i = 0; i < sizeof started / sizeof started[0]; i++) {
        struct started *s = &started[i];
        if (s->pid) {
            fprintf(stderr, "# killing process %d, left running by the test\n",
                    (int)s->pid);
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
        }
        if (s->srv) {
            relay_stop(s->srv);
            pthread_join(s->thread, NULL);
            relay_free(s->srv);
        }
        *s = (struct started){0};
    }
}

static bool spawn(relay *r, const char *const *extra);

/* Starts the relay with data directory tmp_root/name (kept if it exists,
 * for restarts) and extra options; reads the port from its first line. */
bool serve_start(relay *r, const char *name, const char *const *extra)
{
    *r = (relay){0};
    snprintf(r->dir, sizeof r->dir, "%s/%s", tmp_root, name);
    snprintf(r->log, sizeof r->log, "%s/%s.log", tmp_root, name);
    pb_errmsg why;
    if (relay_keys_open(r->dir, &r->keys, NULL, &why)) {
        fprintf(stderr, "  keys: %s\n", why.text);
        return false;
    }
    return spawn(r, extra);
}

bool edge_start(relay *r, const char *name, const relay *signer,
                const char *redis_url)
{
    *r = (relay){0};
    snprintf(r->dir, sizeof r->dir, "%s/%s", tmp_root, name);
    snprintf(r->log, sizeof r->log, "%s/%s.log", tmp_root, name);
    r->keys = signer->keys; /* it checks the signer's tokens and patches */
    char pub[2 * PB_PUBLICKEY_BYTES + 2];
    snprintf(pub, sizeof pub, "%s\n", signer->keys.pk_hex);
    const struct {
        const char *name;
        const void *data;
        size_t len;
    } files[] = {
        {"token.key", signer->keys.token_key, RELAY_TOKEN_KEY_BYTES},
        {"relay.pub", pub, strlen(pub)},
    };
    if (mkdir(r->dir, 0700) && errno != EEXIST)
        return false;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[300];
        snprintf(path, sizeof path, "%s/%s", r->dir, files[i].name);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        bool ok = fd >= 0 && write(fd, files[i].data, files[i].len) ==
                                 (ssize_t)files[i].len;
        if (fd >= 0)
            close(fd);
        if (!ok) {
            fprintf(stderr, "  cannot write %s\n", path);
            return false;
        }
    }
    const char *extra[] = {"--edge", "--redis", redis_url, NULL};
    return spawn(r, extra);
}

/* Forks `patchbay serve --port 0 --data r->dir --backend B` and extra. */
static bool spawn(relay *r, const char *const *extra)
{
    int out[2];
    if (pipe(out))
        return false;
    const char *argv[40] = {patchbay_bin, "serve", "--port",    "0",
                            "--data",     r->dir,  "--backend", backend};
    int n = 8;
    for (int i = 0; extra && extra[i] && n < 38; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    r->pid = fork();
    if (r->pid == 0) {
        /* dies with this process, even when it aborts (ASan) */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(out[1], 1);
        int log = open(r->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (log >= 0)
            dup2(log, 2);
        close(out[0]);
        close(out[1]);
        execv(patchbay_bin, (char **)argv);
        _exit(127);
    }
    close(out[1]);
    if (r->pid < 0) {
        close(out[0]);
        r->pid = 0;
        return false;
    }
    remember(r->pid, NULL, 0);
    char line[512];
    size_t len = 0;
    uint64_t deadline = now_ms() + 20000;
    while (len < sizeof line - 1 && now_ms() < deadline) {
        ssize_t got = read(out[0], line + len, 1);
        if (got <= 0)
            break;
        if (line[len] == '\n' && strstr(line, "listening on"))
            break;
        len++;
        line[len] = '\0';
    }
    line[len] = '\0';
    close(out[0]); /* later stdout lines go nowhere; the relay ignores
                      SIGPIPE */
    const char *p = strstr(line, "127.0.0.1:");
    if (p)
        r->port = atoi(p + strlen("127.0.0.1:"));
    if (r->port <= 0) {
        fprintf(stderr, "  the relay did not start (log %s): %s\n", r->log,
                line);
        serve_kill9(r);
        return false;
    }
    return true;
}

/* Runs one relay in this process; its pb_err is the thread's result. */
static void *serve_thread(void *arg)
{
    pb_errmsg why = {{0}};
    pb_err e = relay_serve(arg, &why);
    if (e)
        fprintf(stderr, "  relay_serve: %s\n", why.text);
    return (void *)(intptr_t)e;
}

bool inproc_start(relay *r, const char *name, const relay_config *cfg)
{
    *r = (relay){0};
    snprintf(r->dir, sizeof r->dir, "%s/%s", tmp_root, name);
    snprintf(r->log, sizeof r->log, "%s/%s.log", tmp_root, name);
    static const char *compiler_argv[5];
    compiler_argv[0] = patchbay_bin;
    compiler_argv[1] = "cc-server";
    compiler_argv[2] = "--backend";
    compiler_argv[3] = backend;
    relay_config c = cfg ? *cfg : (relay_config){0};
    c.port = RELAY_PORT_ANY;
    c.data_dir = r->dir;
    c.quiet = true;
    if (!c.compiler_argv)
        c.compiler_argv = compiler_argv;
    pb_errmsg why = {{0}};
    relay_info info;
    if (!(r->srv = relay_new(&c, &info, &why))) {
        fprintf(stderr, "  relay_new: %s\n", why.text);
        return false;
    }
    r->port = info.port;
    if (relay_keys_open(r->dir, &r->keys, NULL, &why) ||
        pthread_create(&r->thread, NULL, serve_thread, r->srv)) {
        fprintf(stderr, "  keys or thread: %s\n", why.text);
        relay_free(r->srv);
        r->srv = NULL;
        return false;
    }
    remember(0, r->srv, r->thread);
    return true;
}

/* Stops the relay (SIGTERM, or relay_stop for one in this process) and
 * waits; returns the exit status (0 for a clean stop, else -1). */
int serve_stop(relay *r)
{
    if (r->srv) {
        void *e = NULL;
        relay_stop(r->srv);
        pthread_join(r->thread, &e);
        forget(0, r->srv);
        relay_free(r->srv);
        r->srv = NULL;
        relay_keys_close(&r->keys);
        return e ? -1 : 0;
    }
    if (r->pid <= 0)
        return -1;
    kill(r->pid, SIGTERM);
    int st = 0;
    uint64_t deadline = now_ms() + 20000;
    while (waitpid(r->pid, &st, WNOHANG) == 0) {
        if (now_ms() > deadline) {
            serve_kill9(r);
            return -1;
        }
        sleep_ms(10);
    }
    forget(r->pid, NULL);
    r->pid = 0;
    relay_keys_close(&r->keys);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- Redis ----------------------------------------------------------------
 */

/* A free loopback port: bound, read, closed (the redis-server started on
 * it next may race another process; the tests are the only users). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && !bind(fd, (struct sockaddr *)&a, sizeof a) &&
        !getsockname(fd, (struct sockaddr *)&a, &len))
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

bool redis_start(redis_srv *rs, int port)
{
    return redis_start_auth(rs, port, NULL);
}

bool redis_start_auth(redis_srv *rs, int port, const char *password)
{
    rs->pid = 0;
    rs->port = port > 0 ? port : free_port();
    snprintf(rs->url, sizeof rs->url, "redis://127.0.0.1:%d", rs->port);
    char log[300], ports[16];
    snprintf(log, sizeof log, "%s/redis.log", tmp_root);
    snprintf(ports, sizeof ports, "%d", rs->port);
    rs->pid = fork();
    if (rs->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        const char *argv[] = {
            "redis-server", "--port", ports,          "--bind", "127.0.0.1",
            "--save",       "",       "--appendonly", "no",     "--dir",
            tmp_root,       NULL,     NULL,           NULL};
        if (password) {
            argv[11] = "--requirepass";
            argv[12] = password;
        }
        execvp("redis-server", (char *const *)argv);
        _exit(127);
    }
    if (rs->pid < 0)
        return false;
    remember(rs->pid, NULL, 0);
    /* ready when it accepts a connection */
    for (uint64_t until = now_ms() + 10000; now_ms() < until; sleep_ms(20)) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)rs->port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bool ok = fd >= 0 && !connect(fd, (struct sockaddr *)&a, sizeof a);
        if (fd >= 0)
            close(fd);
        if (ok)
            return true;
    }
    fprintf(stderr, "  redis-server did not start on port %d (log %s)\n",
            rs->port, log);
    redis_kill9(rs);
    return false;
}

void redis_kill9(redis_srv *rs)
{
    if (rs->pid <= 0)
        return;
    kill(rs->pid, SIGKILL);
    waitpid(rs->pid, NULL, 0);
    forget(rs->pid, NULL);
    rs->pid = 0;
}

void serve_kill9(relay *r)
{
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    forget(r->pid, NULL);
    r->pid = 0;
}

void make_token(relay *r, const char *room, pb_role role, const char *name,
                int64_t ttl_s, char *out)
{
    relay_token t;
    memset(&t, 0, sizeof t);
    snprintf(t.room, sizeof t.room, "%s", room);
    snprintf(t.name, sizeof t.name, "%s", name);
    t.role = role;
    t.expires_s = (uint64_t)((int64_t)time(NULL) + ttl_s);
    pb_errmsg why;
    if (relay_token_make(&r->keys, &t, out, PB_MAX_TOKEN_BYTES + 1, &why))
        out[0] = '\0';
}

void target(relay *r, const char *path_room, const char *token, pbc_target *t)
{
    memset(t, 0, sizeof *t);
    snprintf(t->host, sizeof t->host, "127.0.0.1");
    t->port = r->port;
    snprintf(t->token, sizeof t->token, "%s", token);
    if (path_room)
        snprintf(t->room, sizeof t->room, "%s", path_room);
}

/* Joins room as role; NULL on failure (message printed). */
pbc *join(relay *r, const char *room, pb_role role, const char *name,
          pbc_welcome *w)
{
    char tok[PB_MAX_TOKEN_BYTES + 1];
    make_token(r, room, role, name, 3600, tok);
    pbc_target t;
    target(r, room, tok, &t);
    pb_errmsg why = {{0}};
    pbc *c = pbc_connect(&t, "test", 10000, w, &why);
    if (!c)
        fprintf(stderr, "  join %s as %s: %s\n", room, pb_role_name(role),
                why.text);
    return c;
}

/* ---- waiting for frames -------------------------------------------------- */

int match(void *ctx, const pb_frame *f)
{
    want *w = ctx;
    if (f->type != w->type)
        return 0;
    switch (f->type) {
    case PB_T_ERROR:
        if (!w->any_req && f->error.req != w->req)
            return 0;
        w->code = f->error.code;
        w->fatal = f->error.fatal;
        snprintf(w->text, sizeof w->text, "%.*s", (int)f->error.message.len,
                 f->error.message.ptr);
        break;
    case PB_T_DIAG:
        if (!w->any_req && f->diag.req != w->req)
            return 0;
        w->ok = f->diag.ok;
        w->seq = f->diag.seq;
        for (uint32_t i = 0; i < f->diag.n_items; i++)
            w->n_errors += f->diag.items[i].severity == PB_SEV_ERROR;
        if (f->diag.n_items)
            snprintf(w->text, sizeof w->text, "%.*s",
                     (int)f->diag.items[0].message.len,
                     f->diag.items[0].message.ptr);
        break;
    default: break;
    }
    w->found = true;
    return 1;
}

/* Waits for the first frame of type (matching req); false on timeout or
 * close. */
bool wait_for(pbc *c, want *w, uint32_t ms)
{
    pb_errmsg why = {{0}};
    return pbc_wait(c, ms, match, w, &why) == PBC_WAIT_STOPPED && w->found;
}

bool expect_error(pbc *c, pb_err code, bool fatal)
{
    want w = {PB_T_ERROR, 0, true, false, 0, false, false, 0, 0, ""};
    if (!wait_for(c, &w, 10000)) {
        fprintf(stderr, "  no error frame (wanted %s)\n", pb_strerror(code));
        return false;
    }
    if (w.code != (uint32_t)code || w.fatal != fatal) {
        fprintf(stderr, "  got error %u (%s, fatal %d): %s; wanted %s\n",
                w.code, pb_strerror((pb_err)w.code), w.fatal, w.text,
                pb_strerror(code));
        return false;
    }
    return true;
}

/* The relay closes the connection (after a fatal error). */
bool expect_closed(pbc *c)
{
    pb_errmsg why = {{0}};
    uint64_t deadline = now_ms() + 10000;
    while (now_ms() < deadline) {
        want w = {PB_T_COUNT_, 0, true, false, 0, false, false, 0, 0, ""};
        if (pbc_wait(c, 200, match, &w, &why) == PBC_WAIT_CLOSED)
            return true;
    }
    return false;
}

/* Sends and pushes the frame out now, so that waiting on another client
 * does not leave it queued here. */
int send_now(pbc *c, const pb_frame *f, pb_errmsg *why)
{
    if (pbc_send(c, f, why))
        return -1;
    return pbc_flush(c, 10000, why);
}

int send_raw_now(pbc *c, const uint8_t *p, size_t n, bool text, pb_errmsg *why)
{
    if (pbc_send_raw(c, p, n, text, why))
        return -1;
    return pbc_flush(c, 10000, why);
}

bool log_has(const relay *r, const char *what)
{
    FILE *f = fopen(r->log, "r");
    bool found = false;
    char line[1024];
    while (f && fgets(line, sizeof line, f))
        found |= strstr(line, what) != NULL;
    if (f)
        fclose(f);
    return found;
}

typedef struct fatal_seen {
    uint32_t code;
} fatal_seen;

static int on_fatal(void *ctx, const pb_frame *f)
{
    fatal_seen *fs = ctx;
    if (f->type == PB_T_ERROR && f->error.fatal)
        fs->code = f->error.code;
    return 0;
}

/* The connection ends with a fatal error code, seen either as an error
 * frame or as the WebSocket close reason. */
bool expect_fatal(pbc *c, pb_err code)
{
    fatal_seen fs = {0};
    pb_errmsg why = {{0}};
    uint64_t deadline = now_ms() + 10000;
    pbc_wait_end r = PBC_WAIT_DEADLINE;
    while (r != PBC_WAIT_CLOSED && now_ms() < deadline)
        r = pbc_wait(c, 200, on_fatal, &fs, &why);
    if (r != PBC_WAIT_CLOSED) {
        fprintf(stderr, "  the connection stayed open\n");
        return false;
    }
    if (fs.code == (uint32_t)code || strstr(why.text, pb_strerror(code)))
        return true;
    fprintf(stderr, "  (note) ");
    fprintf(stderr, "  closed with code %u, \"%s\"; wanted %s\n", fs.code,
            why.text, pb_strerror(code));
    return false;
}

bool ping_ok(pbc *c)
{
    pb_frame f = {.type = PB_T_PING};
    f.ping.t0_us = 42;
    pb_errmsg why;
    if (send_now(c, &f, &why))
        return false;
    want w = {PB_T_PONG, 0, true, false, 0, false, false, 0, 0, ""};
    return wait_for(c, &w, 10000);
}

bool send_eval(pbc *c, uint64_t req, const char *src)
{
    pb_frame f = {.type = PB_T_EVAL};
    f.eval.req = req;
    f.eval.lang = PB_LANG_C;
    f.eval.name = pb_cstr("test.c");
    f.eval.source = pb_cstr(src);
    pb_errmsg why;
    return send_now(c, &f, &why) == 0;
}

/* Evaluates src and waits for its diag; returns the seq, 0 if refused. */
uint64_t eval(pbc *c, uint64_t req, const char *src, want *out)
{
    want w = {PB_T_DIAG, req, false, false, 0, false, false, 0, 0, ""};
    if (!send_eval(c, req, src) || !wait_for(c, &w, 60000)) {
        fprintf(stderr, "  no diag for eval %llu\n", (unsigned long long)req);
        return 0;
    }
    if (out)
        *out = w;
    return w.ok ? w.seq : 0;
}

/* ---- collecting patches -------------------------------------------------- */

static void log_patch(patch_log *l, const pb_patch *p)
{
    pb_statement st;
    pb_errmsg why = {{0}};
    pb_err e = pb_patch_verify(p, l->key, &st, &why);
    if (!e) {
        e = pb_chain_check(&l->chain, &st, &why);
        if (!e) {
            pb_chain_advance(&l->chain, &st);
            if (l->n_patches < 512) {
                l->seqs[l->n_patches] = st.seq;
                memcpy(l->hashes[l->n_patches], st.hash, PB_HASH_BYTES);
            }
            l->n_patches++;
            l->n_modules += p->module.ptr != NULL;
            l->last_seq = st.seq;
        }
        pb_statement_free(&st);
    }
    if (e && !l->errors++)
        snprintf(l->first_error, sizeof l->first_error, "%s: %s",
                 pb_strerror(e), why.text);
}

/* A signed head names the room's epoch, whose genesis the chain starts
 * from (docs/PROTOCOL.md § The signed head). */
static void log_head(patch_log *l, const pb_head_frame *f)
{
    pb_head h;
    pb_errmsg why = {{0}};
    pb_err e = pb_head_verify(f, l->key, &h, &why);
    if (!e && h.epoch != l->chain.epoch)
        e = pb_fail(
            &why, PB_ERR_CHAIN_FORK, "epoch %llu, the history says %llu",
            (unsigned long long)h.epoch, (unsigned long long)l->chain.epoch);
    if (!e)
        l->n_heads++;
    pb_head_free(&h);
    if (e && !l->errors++)
        snprintf(l->first_error, sizeof l->first_error, "head: %s: %s",
                 pb_strerror(e), why.text);
}

int collect(void *ctx, const pb_frame *f)
{
    patch_log *l = ctx;
    if (f->type == PB_T_HEAD) {
        log_head(l, &f->head);
    } else if (f->type == PB_T_PATCH) {
        log_patch(l, &f->patch);
    } else if (f->type == PB_T_HISTORY && f->history.req == 0) {
        for (uint32_t i = 0; i < f->history.n_items; i++)
            log_patch(l, &f->history.items[i]);
        l->n_history_frames++;
        if (!f->history.more)
            l->caught_up = true;
    }
    return 0;
}

void patch_log_init(patch_log *l, relay *r, const char *room)
{
    memset(l, 0, sizeof *l);
    memcpy(l->key, r->keys.pk, PB_PUBLICKEY_BYTES);
    /* The room's epoch (its chain's genesis) from the relay's history: the
     * signed head that names it came right after welcome, which join()
     * read. A signed head seen later must agree (log_head). */
    char path[400];
    snprintf(path, sizeof path, "%s/history.db", r->dir);
    pb_errmsg why;
    uint64_t epoch = 0;
    relay_history *h = relay_history_open_readonly(path, &why);
    if (!h || relay_history_epoch(h, room, 0, &epoch, &why))
        l->errors++;
    relay_history_close(h);
    if (pb_chain_init_epoch(&l->chain, room, epoch, l->key))
        l->errors++;
}

/* Services c, collecting patches, until it holds seq (or ms pass). */
bool collect_until(pbc *c, patch_log *l, uint64_t seq, uint32_t ms)
{
    uint64_t deadline = now_ms() + ms;
    pb_errmsg why;
    while (l->last_seq < seq || !l->caught_up) {
        if (now_ms() > deadline)
            return false;
        if (pbc_wait(c, 50, collect, l, &why) == PBC_WAIT_CLOSED)
            return false;
    }
    return true;
}

/* Source for var aK whose body returns v; a few distinct sources, so the
 * compile cache keeps long histories quick. */
void var_source(char *out, size_t cap, unsigned k, unsigned v)
{
    snprintf(out, cap,
             "#include <patchbay.h>\ndouble a%u(double x) { return x + %u; }\n",
             k, v);
}

/* ---- main ---------------------------------------------------------------- */

int harness_main(const pb_test *tests, size_t n, int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PATCHBAY BACKEND [TEST...]\n", argv[0]);
        return 2;
    }
    patchbay_bin = argv[1];
    backend = argv[2];
    if (pb_init())
        return 1;
    signal(SIGPIPE, SIG_IGN);
    snprintf(tmp_root, sizeof tmp_root, "/tmp/pb-relay-XXXXXX");
    if (!mkdtemp(tmp_root)) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    printf("# relay data and logs under %s\n", tmp_root);
    atexit(harness_cleanup);
    pb_test_after_each = harness_cleanup;
    int rc = pb_test_run(tests, n, argc - 2, argv + 2);
    harness_cleanup();
    if (rc == 0) { /* keep the logs of a failed run */
        char cmd[200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
        if (system(cmd) != 0)
            fprintf(stderr, "# could not remove %s\n", tmp_root);
    }
    return rc;
}
