/* test_relay_net.c — the relay as users meet it: `patchbay serve` started
 * on a free loopback port with its own data directory, driven by real
 * WebSocket clients (cli/wsclient.c). Each test checks what the relay must
 * do and, after every rejection, that a bystander in the room is still
 * served.
 *
 * usage: test_relay_net PATCHBAY BACKEND [TEST...] */
#include "../check.h"
#include "relay.h"
#include "wsclient.h"

#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *patchbay_bin;
static const char *backend;
static char tmp_root[128];

typedef struct relay {
    pid_t pid;
    int port;
    char dir[256];
    char log[300];
    relay_keys keys;
} relay;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts the relay with data directory tmp_root/name (kept if it exists,
 * for restarts) and extra options; reads the port from its first line. */
static bool relay_start(relay *r, const char *name, const char *const *extra)
{
    memset(r, 0, sizeof r->pid + sizeof r->port);
    r->pid = 0;
    r->port = 0;
    snprintf(r->dir, sizeof r->dir, "%s/%s", tmp_root, name);
    snprintf(r->log, sizeof r->log, "%s/%s.log", tmp_root, name);
    pb_errmsg why;
    if (relay_keys_open(r->dir, &r->keys, NULL, &why)) {
        fprintf(stderr, "  keys: %s\n", why.text);
        return false;
    }
    int out[2];
    if (pipe(out))
        return false;
    const char *argv[40] = {patchbay_bin, "serve",  "--port", "0",
                            "--data",     r->dir,   "--backend", backend};
    int n = 8;
    for (int i = 0; extra && extra[i] && n < 38; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    r->pid = fork();
    if (r->pid == 0) {
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
    if (!p) {
        fprintf(stderr, "  the relay did not start (log %s): %s\n", r->log,
                line);
        return false;
    }
    r->port = atoi(p + strlen("127.0.0.1:"));
    return r->port > 0;
}

/* SIGTERM and wait; returns the exit status (or -1). */
static int relay_stop(relay *r)
{
    if (r->pid <= 0)
        return -1;
    kill(r->pid, SIGTERM);
    int st = 0;
    uint64_t deadline = now_ms() + 20000;
    while (waitpid(r->pid, &st, WNOHANG) == 0) {
        if (now_ms() > deadline) {
            kill(r->pid, SIGKILL);
            waitpid(r->pid, &st, 0);
            r->pid = 0;
            return -1;
        }
        sleep_ms(10);
    }
    r->pid = 0;
    relay_keys_close(&r->keys);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void relay_kill9(relay *r)
{
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    r->pid = 0;
}

static void make_token(relay *r, const char *room, pb_role role,
                       const char *name, int64_t ttl_s, char *out)
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

static void target(relay *r, const char *path_room, const char *token,
                   pbc_target *t)
{
    memset(t, 0, sizeof *t);
    snprintf(t->host, sizeof t->host, "127.0.0.1");
    t->port = r->port;
    snprintf(t->token, sizeof t->token, "%s", token);
    if (path_room)
        snprintf(t->room, sizeof t->room, "%s", path_room);
}

/* Joins room as role; NULL on failure (message printed). */
static pbc *join(relay *r, const char *room, pb_role role, const char *name,
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

/* ---- waiting for frames ------------------------------------------------------ */

typedef struct want {
    pb_type type;
    uint64_t req;       /* for diag/error/history: match req */
    bool any_req;
    /* what was found */
    bool found;
    uint32_t code;
    bool fatal, ok;
    uint64_t seq;
    uint32_t n_errors;
    char text[512];
} want;

static int match(void *ctx, const pb_frame *f)
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
    default:
        break;
    }
    w->found = true;
    return 1;
}

/* Waits for the first frame of type (matching req); false on timeout or
 * close. */
static bool wait_for(pbc *c, want *w, uint32_t ms)
{
    pb_errmsg why = {{0}};
    int r = pbc_wait(c, ms, match, w, &why);
    return r == 1 && w->found;
}

static bool expect_error(pbc *c, pb_err code, bool fatal)
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
static bool expect_closed(pbc *c)
{
    pb_errmsg why = {{0}};
    uint64_t deadline = now_ms() + 10000;
    while (now_ms() < deadline) {
        want w = {PB_T_COUNT_, 0, true, false, 0, false, false, 0, 0, ""};
        if (pbc_wait(c, 200, match, &w, &why) < 0)
            return true;
    }
    return false;
}

/* Sends and pushes the frame out now, so that waiting on another client
 * does not leave it queued here. */
static int send_now(pbc *c, const pb_frame *f, pb_errmsg *why)
{
    if (pbc_send(c, f, why))
        return -1;
    return pbc_flush(c, 10000, why);
}

static int send_raw_now(pbc *c, const uint8_t *p, size_t n, bool text,
                        pb_errmsg *why)
{
    if (pbc_send_raw(c, p, n, text, why))
        return -1;
    return pbc_flush(c, 10000, why);
}

static bool log_has(const relay *r, const char *what)
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
static bool expect_fatal(pbc *c, pb_err code)
{
    fatal_seen fs = {0};
    pb_errmsg why = {{0}};
    uint64_t deadline = now_ms() + 10000;
    int r = 0;
    while (r >= 0 && now_ms() < deadline)
        r = pbc_wait(c, 200, on_fatal, &fs, &why);
    if (r >= 0) {
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

static bool ping_ok(pbc *c)
{
    pb_frame f = {.type = PB_T_PING};
    f.ping.t0_us = 42;
    pb_errmsg why;
    if (send_now(c, &f, &why))
        return false;
    want w = {PB_T_PONG, 0, true, false, 0, false, false, 0, 0, ""};
    return wait_for(c, &w, 10000);
}

static bool send_eval(pbc *c, uint64_t req, const char *src)
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
static uint64_t eval(pbc *c, uint64_t req, const char *src, want *out)
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

/* ---- collecting patches ------------------------------------------------------- */

typedef struct patch_log {
    uint8_t key[PB_PUBLICKEY_BYTES];
    pb_chain chain;
    uint32_t n_patches;    /* live and history items, in order */
    uint32_t n_modules;    /* items that carried a module */
    uint32_t n_history_frames;
    bool caught_up;        /* a history frame with more = false seen */
    uint64_t last_seq;
    uint64_t seqs[512];
    uint8_t hashes[512][PB_HASH_BYTES];
    uint32_t errors;       /* verification or chain failures */
    char first_error[256];
} patch_log;

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

static int collect(void *ctx, const pb_frame *f)
{
    patch_log *l = ctx;
    if (f->type == PB_T_PATCH) {
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

static void patch_log_init(patch_log *l, relay *r, const char *room)
{
    memset(l, 0, sizeof *l);
    memcpy(l->key, r->keys.pk, PB_PUBLICKEY_BYTES);
    if (pb_chain_init(&l->chain, room))
        l->errors++;
}

/* Services c, collecting patches, until it holds seq (or ms pass). */
static bool collect_until(pbc *c, patch_log *l, uint64_t seq, uint32_t ms)
{
    uint64_t deadline = now_ms() + ms;
    pb_errmsg why;
    while (l->last_seq < seq || !l->caught_up) {
        if (now_ms() > deadline)
            return false;
        if (pbc_wait(c, 50, collect, l, &why) < 0)
            return false;
    }
    return true;
}

/* ---- tests ---------------------------------------------------------------------- */

typedef struct forwarded {
    uint64_t ack_from, log_from;
    double tempo;
} forwarded;

static int on_forwarded(void *ctx, const pb_frame *f)
{
    forwarded *g = ctx;
    if (f->type == PB_T_ACK)
        g->ack_from = f->ack.runtime_id;
    if (f->type == PB_T_LOG && pb_str_eq(f->log.text, "hello from the runtime"))
        g->log_from = f->log.runtime_id;
    if (f->type == PB_T_ROOM)
        g->tempo = f->room.tempo_bpm;
    return 0;
}

static const char *const fast_hello[] = {"--hello-timeout-ms", "400", NULL};

TEST(handshake_rejections)
{
    relay r;
    REQUIRE(relay_start(&r, "auth", fast_hello));
    pbc *by = join(&r, "jam", PB_ROLE_EDITOR, "bystander", NULL);
    REQUIRE(by);
    pb_errmsg why;
    pbc_target t;
    char tok[PB_MAX_TOKEN_BYTES + 1];

    /* no hello at all */
    target(&r, NULL, "", &t);
    pbc *c = pbc_open(&t, 5000, &why);
    REQUIRE(c);
    CHECK(expect_error(c, PB_ERR_AUTH_TIMEOUT, true));
    CHECK(expect_closed(c));
    pbc_close(c);
    CHECK(ping_ok(by));

    /* not msgpack */
    c = pbc_open(&t, 5000, &why);
    REQUIRE(c);
    REQUIRE(send_raw_now(c, (const uint8_t *)"\xc1\xc1garbage", 9, false,
                         &why) == 0);
    CHECK(expect_error(c, PB_ERR_MALFORMED, true));
    CHECK(expect_closed(c));
    pbc_close(c);

    /* a text message */
    c = pbc_open(&t, 5000, &why);
    REQUIRE(c);
    REQUIRE(send_raw_now(c, (const uint8_t *)"{\"t\":\"hello\"}", 13, true,
                         &why) == 0);
    CHECK(expect_error(c, PB_ERR_MALFORMED, true));
    pbc_close(c);

    /* the first frame is not hello */
    c = pbc_open(&t, 5000, &why);
    REQUIRE(c);
    pb_frame ping = {.type = PB_T_PING};
    REQUIRE(send_now(c, &ping, &why) == 0);
    CHECK(expect_error(c, PB_ERR_UNEXPECTED, true));
    pbc_close(c);
    CHECK(ping_ok(by));

    struct {
        const char *what;
        pb_err code;
        const char *path_room;
        int kind; /* 0 bad MAC, 1 expired, 2 wrong room, 3 spliced */
    } cases[] = {
        {"bad MAC", PB_ERR_AUTH_BAD_MAC, NULL, 0},
        {"expired", PB_ERR_AUTH_EXPIRED, NULL, 1},
        {"wrong room", PB_ERR_AUTH_WRONG_ROOM, "other", 2},
        {"role escalation", PB_ERR_AUTH_BAD_MAC, NULL, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        make_token(&r, "jam", PB_ROLE_VIEWER, "mallory",
                   cases[i].kind == 1 ? -5 : 3600, tok);
        size_t n = strlen(tok);
        if (cases[i].kind == 0)
            tok[n - 3] = tok[n - 3] == 'A' ? 'B' : 'A';
        if (cases[i].kind == 3) {
            char owner[PB_MAX_TOKEN_BYTES + 1];
            make_token(&r, "jam", PB_ROLE_OWNER, "mallory", 3600, owner);
            char *mac = strrchr(tok, '.');
            char spliced[PB_MAX_TOKEN_BYTES + 1];
            snprintf(spliced, sizeof spliced, "%.*s%s",
                     (int)(strrchr(owner, '.') - owner), owner, mac);
            strcpy(tok, spliced);
        }
        target(&r, cases[i].path_room, tok, &t);
        c = pbc_open(&t, 5000, &why);
        REQUIRE(c);
        pb_frame h = {.type = PB_T_HELLO};
        h.hello.token = pb_cstr(tok);
        REQUIRE(send_now(c, &h, &why) == 0);
        if (!expect_error(c, cases[i].code, true))
            fprintf(stderr, "  case: %s\n", cases[i].what);
        CHECK(expect_closed(c));
        pbc_close(c);
        CHECK(ping_ok(by));
    }
    pbc_close(by);
    CHECK_EQ_INT(relay_stop(&r), 0);
}

TEST(roles_enforced)
{
    relay r;
    REQUIRE(relay_start(&r, "roles", NULL));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    pbc *view = join(&r, "jam", PB_ROLE_VIEWER, "vi", NULL);
    pbc_welcome rw;
    pbc *rt = join(&r, "jam", PB_ROLE_RUNTIME, "rt", &rw);
    REQUIRE(ed && view && rt);
    const char *src = "#include <patchbay.h>\ndouble f(double v) { return v; }\n";
    /* a viewer and a runtime may not evaluate; nothing happens */
    CHECK(send_eval(view, 1, src));
    CHECK(expect_error(view, PB_ERR_FORBIDDEN, false));
    CHECK(send_eval(rt, 1, src));
    CHECK(expect_error(rt, PB_ERR_FORBIDDEN, false));
    /* an editor may not change room settings */
    pb_frame room = {.type = PB_T_ROOM};
    room.room.tempo_bpm = 120;
    pb_errmsg why;
    REQUIRE(send_now(ed, &room, &why) == 0);
    CHECK(expect_error(ed, PB_ERR_FORBIDDEN, false));
    /* an editor may not send acks */
    pb_frame ack = {.type = PB_T_ACK};
    ack.ack.seq = 1;
    ack.ack.state = PB_ACK_COMMITTED;
    REQUIRE(send_now(ed, &ack, &why) == 0);
    CHECK(expect_error(ed, PB_ERR_FORBIDDEN, false));
    /* the forbidden evals made no patch: the editor's is seq 1 */
    CHECK_EQ_INT(eval(ed, 2, src, NULL), 1);
    CHECK(ping_ok(view) && ping_ok(rt));

    /* a runtime's ack and log reach editors, stamped with its id */
    REQUIRE(send_now(rt, &ack, &why) == 0);
    pb_frame lg = {.type = PB_T_LOG};
    lg.log.level = PB_LOG_INFO;
    lg.log.text = pb_cstr("hello from the runtime");
    REQUIRE(send_now(rt, &lg, &why) == 0);
    forwarded got = {0, 0, 0};
    uint64_t deadline = now_ms() + 10000;
    while ((!got.ack_from || !got.log_from) && now_ms() < deadline)
        pbc_wait(ed, 100, on_forwarded, &got, &why);
    CHECK_EQ_INT(got.ack_from, rw.client_id);
    CHECK_EQ_INT(got.log_from, rw.client_id);
    /* the owner may set the tempo; everyone hears it */
    pbc *own = join(&r, "jam", PB_ROLE_OWNER, "own", NULL);
    REQUIRE(own);
    room.room.tempo_bpm = 133;
    REQUIRE(send_now(own, &room, &why) == 0);
    got.tempo = 0;
    deadline = now_ms() + 10000;
    while (got.tempo != 133 && now_ms() < deadline)
        pbc_wait(view, 100, on_forwarded, &got, &why);
    CHECK(got.tempo == 133);
    pbc_close(own);
    pbc_close(ed);
    pbc_close(view);
    pbc_close(rt);
    CHECK_EQ_INT(relay_stop(&r), 0);
}

/* Source for var aK whose body returns v; a few distinct sources, so the
 * compile cache keeps long histories quick. */
static void var_source(char *out, size_t cap, unsigned k, unsigned v)
{
    snprintf(out, cap,
             "#include <patchbay.h>\ndouble a%u(double x) { return x + %u; }\n",
             k, v);
}

typedef struct outcome {
    uint32_t accepted, limited;
} outcome;

static int on_outcome(void *ctx, const pb_frame *f)
{
    outcome *o = ctx;
    if (f->type == PB_T_DIAG && f->diag.ok)
        o->accepted++;
    if (f->type == PB_T_ERROR && f->error.code == PB_ERR_RATE_LIMITED)
        o->limited++;
    return 0;
}

TEST(limits_rate_and_room_size)
{
    const char *const opts[] = {"--evals-per-second", "2", "--max-clients",
                                "3", "--bytes-per-second", "300000", NULL};
    relay r;
    REQUIRE(relay_start(&r, "limits", opts));
    pbc *by = join(&r, "jam", PB_ROLE_VIEWER, "bystander", NULL);
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(by && ed);
    /* evals per second: 6 at once, the bucket holds 2 */
    char src[256];
    for (unsigned i = 0; i < 6; i++) {
        var_source(src, sizeof src, 0, i);
        CHECK(send_eval(ed, 10 + i, src));
    }
    outcome o = {0, 0};
    uint64_t deadline = now_ms() + 60000;
    pb_errmsg why = {{0}};
    while (o.accepted + o.limited < 6 && now_ms() < deadline)
        pbc_wait(ed, 200, on_outcome, &o, &why);
    uint32_t accepted = o.accepted, limited = o.limited;
    CHECK(accepted >= 1 && accepted <= 3);
    CHECK(limited >= 3);
    CHECK_EQ_INT(accepted + limited, 6);
    CHECK(ping_ok(by));

    /* clients per room: the third joins, the fourth is refused */
    pbc *third = join(&r, "jam", PB_ROLE_VIEWER, "third", NULL);
    CHECK(third != NULL);
    char tok[PB_MAX_TOKEN_BYTES + 1];
    make_token(&r, "jam", PB_ROLE_VIEWER, "fourth", 3600, tok);
    pbc_target t;
    target(&r, NULL, tok, &t);
    pbc *fourth = pbc_connect(&t, "test", 10000, NULL, &why);
    CHECK(fourth == NULL);
    CHECK(strstr(why.text, "full") != NULL);
    pbc_close(fourth);
    pbc *elsewhere = join(&r, "other", PB_ROLE_VIEWER, "x", NULL);
    CHECK(elsewhere != NULL);
    pbc_close(elsewhere);
    pbc_close(third);

    /* bytes per second: 800 KB at once is more than the 300000 a second
     * (and the same again of burst) allowed */
    size_t big = 200 * 1024;
    char *pad = malloc(big + 64);
    REQUIRE(pad);
    memset(pad, ' ', big);
    strcpy(pad + big, "/* padding */\n");
    pbc_close(ed);
    ed = join(&r, "jam", PB_ROLE_EDITOR, "ed2", NULL); /* fresh buckets */
    REQUIRE(ed);
    for (int i = 0; i < 4; i++)
        send_eval(ed, 100 + (uint64_t)i, pad); /* may be closed midway */
    free(pad);
    /* Closed with the error frame or the close reason; a client that is
     * still pushing bytes when the relay closes can get a TCP reset that
     * discards both, so then the relay's log must name the reason. */
    if (!expect_fatal(ed, PB_ERR_RATE_LIMITED)) {
        CHECK(pbc_is_closed(ed));
        CHECK(log_has(&r, "bytes per second sent"));
    }
    pbc_close(ed);
    CHECK(ping_ok(by));
    pbc_close(by);
    CHECK_EQ_INT(relay_stop(&r), 0);
}

TEST(oversized_and_malformed_frames)
{
    relay r;
    REQUIRE(relay_start(&r, "frames", NULL));
    pbc *by = join(&r, "jam", PB_ROLE_VIEWER, "bystander", NULL);
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(by && ed);
    pb_errmsg why;
    /* a source over the limit is refused by decode, not compiled; a live
     * client keeps its connection */
    size_t n = PB_MAX_SOURCE_BYTES + 10;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    msgpack_pack_str_with_body(&pk, "v", 1);
    msgpack_pack_uint32(&pk, PB_PROTOCOL_VERSION);
    msgpack_pack_str_with_body(&pk, "t", 1);
    msgpack_pack_str_with_body(&pk, "eval", 4);
    msgpack_pack_str_with_body(&pk, "req", 3);
    msgpack_pack_uint32(&pk, 1);
    msgpack_pack_str_with_body(&pk, "lang", 4);
    msgpack_pack_str_with_body(&pk, "c", 1);
    msgpack_pack_str_with_body(&pk, "source", 6);
    msgpack_pack_str(&pk, n);
    char *src = malloc(n);
    REQUIRE(src);
    memset(src, ' ', n);
    msgpack_pack_str_body(&pk, src, n);
    free(src);
    CHECK(send_raw_now(ed, (const uint8_t *)sb.data, sb.size, false, &why) ==
          0);
    msgpack_sbuffer_destroy(&sb);
    CHECK(expect_error(ed, PB_ERR_FIELD_RANGE, false));
    CHECK(ping_ok(ed));
    /* a message over the frame limit closes the connection */
    size_t huge = PB_MAX_FRAME_BYTES + 4096;
    uint8_t *junk = calloc(1, huge);
    REQUIRE(junk);
    CHECK(send_raw_now(ed, junk, huge, false, &why) == 0);
    free(junk);
    CHECK(expect_error(ed, PB_ERR_TOO_BIG, true));
    CHECK(expect_closed(ed));
    pbc_close(ed);
    CHECK(ping_ok(by));
    pbc_close(by);
    CHECK_EQ_INT(relay_stop(&r), 0);
}

TEST(slow_consumer_disconnected)
{
    const char *const opts[] = {"--max-queue-bytes", "262144", NULL};
    relay r;
    REQUIRE(relay_start(&r, "slow", opts));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    pbc_welcome sw;
    pbc *slow = join(&r, "jam", PB_ROLE_VIEWER, "slow", &sw);
    pbc *rt = join(&r, "jam", PB_ROLE_RUNTIME, "rt", NULL);
    REQUIRE(ed && slow && rt);
    /* ten patches of ~40 KB source each */
    size_t pad = 40 * 1024;
    char *src = malloc(pad + 256);
    REQUIRE(src);
    for (unsigned i = 0; i < 10; i++) {
        var_source(src, 256, i, i);
        size_t l = strlen(src);
        memset(src + l, ' ', pad);
        snprintf(src + l + pad, 64, "/* %u */\n", i);
        CHECK_EQ_INT(eval(ed, 1 + i, src, NULL), i + 1);
    }
    free(src);
    /* the slow client stops reading and asks for the history again and
     * again: ~400 KB an answer */
    pbc_pause_reading(slow, true);
    pb_errmsg why;
    for (int i = 0; i < 60; i++) {
        pb_frame q = {.type = PB_T_HISTORY_REQ};
        q.history_req.req = 1 + (uint64_t)i;
        q.history_req.mode = PB_HISTORY_RANGE;
        CHECK(pbc_send(slow, &q, &why) == 0);
    }
    /* push them out (reading stays paused) */
    for (int i = 0; i < 20; i++)
        pbc_wait(slow, 20, NULL, NULL, &why);
    /* others are served meanwhile: a new patch reaches the runtime */
    patch_log l;
    patch_log_init(&l, &r, "jam");
    var_source(src = malloc(256), 256, 99, 1);
    uint64_t seq = eval(ed, 50, src, NULL);
    free(src);
    CHECK_EQ_INT(seq, 11);
    CHECK(collect_until(rt, &l, seq, 10000));
    CHECK(ping_ok(ed));
    /* the slow one was dropped */
    pbc_pause_reading(slow, false);
    CHECK(expect_closed(slow));
    pbc_close(slow);
    CHECK(log_has(&r, "slow consumer"));
    pbc_close(ed);
    pbc_close(rt);
    CHECK_EQ_INT(relay_stop(&r), 0);
}

/* 200 patches over 10 vars, then a late joiner gets exactly the current
 * state (every statement, modules only for the latest of each var), then
 * live patches without a gap or a duplicate. */
TEST(late_joiner_after_200_patches)
{
    const char *const opts[] = {"--evals-per-second", "100000", NULL};
    relay r;
    REQUIRE(relay_start(&r, "late", opts));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    char src[256];
    /* pipelined: the relay keeps their order */
    for (unsigned i = 0; i < 200; i++) {
        var_source(src, sizeof src, i % 10, (i / 10) % 2);
        CHECK(send_eval(ed, 1 + i, src));
    }
    uint32_t ok = 0;
    for (unsigned i = 0; i < 200; i++) {
        want w = {PB_T_DIAG, 1 + i, false, false, 0, false, false, 0, 0, ""};
        if (wait_for(ed, &w, 60000) && w.ok && w.seq == i + 1)
            ok++;
    }
    CHECK_EQ_INT(ok, 200);

    pbc_welcome w;
    pbc *late = join(&r, "jam", PB_ROLE_RUNTIME, "late", &w);
    REQUIRE(late);
    CHECK_EQ_INT(w.head_seq, 200);
    patch_log l;
    patch_log_init(&l, &r, "jam");
    CHECK(collect_until(late, &l, 200, 30000));
    CHECK_EQ_INT(l.errors, 0);
    if (l.errors)
        fprintf(stderr, "  %s\n", l.first_error);
    CHECK_EQ_INT(l.n_patches, 200);
    CHECK_EQ_INT(l.n_modules, 10); /* seq 191..200, one per var */
    CHECK(l.n_history_frames >= 4); /* 64 items a frame at most */

    /* then live, next in the chain */
    var_source(src, sizeof src, 3, 7);
    CHECK_EQ_INT(eval(ed, 500, src, NULL), 201);
    CHECK(collect_until(late, &l, 201, 10000));
    CHECK_EQ_INT(l.n_patches, 201);
    CHECK_EQ_INT(l.errors, 0);

    /* joining while evals stream in: nothing missed, nothing doubled */
    for (unsigned i = 0; i < 30; i++) {
        var_source(src, sizeof src, i % 10, 2 + i % 2);
        CHECK(send_eval(ed, 600 + i, src));
    }
    pbc *mid = join(&r, "jam", PB_ROLE_RUNTIME, "mid", NULL);
    REQUIRE(mid);
    patch_log m;
    patch_log_init(&m, &r, "jam");
    CHECK(collect_until(mid, &m, 231, 60000));
    CHECK_EQ_INT(m.errors, 0);
    if (m.errors)
        fprintf(stderr, "  %s\n", m.first_error);
    CHECK_EQ_INT(m.n_patches, 231);
    for (uint32_t i = 0; i < m.n_patches && i < 512; i++)
        if (m.seqs[i] != i + 1) {
            CHECK(m.seqs[i] == i + 1);
            break;
        }
    /* a reconnecting client that holds seq 225 gets 226.. only */
    char tok[PB_MAX_TOKEN_BYTES + 1];
    make_token(&r, "jam", PB_ROLE_RUNTIME, "back", 3600, tok);
    pbc_target t;
    target(&r, "jam", tok, &t);
    pb_errmsg why;
    pbc *back = pbc_open(&t, 5000, &why);
    REQUIRE(back);
    pb_frame h = {.type = PB_T_HELLO};
    h.hello.token = pb_cstr(tok);
    h.hello.since_seq = 225;
    REQUIRE(send_now(back, &h, &why) == 0);
    patch_log b;
    patch_log_init(&b, &r, "jam");
    b.chain.seq = 225; /* as the client holds it */
    memcpy(b.chain.hash, m.hashes[224], PB_HASH_BYTES);
    CHECK(collect_until(back, &b, 231, 10000));
    CHECK_EQ_INT(b.n_patches, 6);
    CHECK_EQ_INT(b.errors, 0);
    pbc_close(back);
    pbc_close(mid);
    pbc_close(late);
    pbc_close(ed);
    CHECK_EQ_INT(relay_stop(&r), 0);
}

/* Counts a recorded patch whose hash differs from what the client saw. */
static int same_as_seen(void *ctx, const relay_patch_row *p)
{
    patch_log *l = ctx;
    for (uint32_t i = 0; i < l->n_patches && i < 512; i++)
        if (l->seqs[i] == p->seq &&
            memcmp(l->hashes[i], p->hash, PB_HASH_BYTES) != 0)
            l->errors++;
    return 0;
}

/* kill -9 while evals are in flight: every patch anyone saw is recorded,
 * the chain verifies from seq 1, and a restarted relay continues it. */
TEST(durability_kill9)
{
    const char *const opts[] = {"--evals-per-second", "100000", NULL};
    relay r;
    REQUIRE(relay_start(&r, "kill", opts));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    pbc *rt = join(&r, "jam", PB_ROLE_RUNTIME, "rt", NULL);
    REQUIRE(ed && rt);
    char src[256];
    for (unsigned i = 0; i < 60; i++) {
        var_source(src, sizeof src, i % 7, i % 3);
        CHECK(send_eval(ed, 1 + i, src));
    }
    patch_log l;
    patch_log_init(&l, &r, "jam");
    CHECK(collect_until(rt, &l, 15, 60000));
    uint8_t pk[PB_PUBLICKEY_BYTES];
    memcpy(pk, r.keys.pk, sizeof pk);
    relay_kill9(&r);
    /* drain what reached the runtime before the kill */
    pb_errmsg why;
    while (pbc_wait(rt, 100, collect, &l, &why) >= 0)
        ;
    pbc_close(rt);
    pbc_close(ed);
    CHECK_EQ_INT(l.errors, 0);
    REQUIRE(l.n_patches >= 15);

    char db[400];
    snprintf(db, sizeof db, "%s/history.db", r.dir);
    relay_history *h = relay_history_open_sqlite(db, &why);
    REQUIRE(h);
    uint64_t head = 0, n = 0;
    uint8_t head_hash[PB_HASH_BYTES];
    REQUIRE(relay_history_head(h, "jam", &head, head_hash, &why) == PB_OK);
    CHECK(head >= l.last_seq);
    CHECK(relay_history_verify(h, "jam", pk, &n, &why) == PB_OK);
    CHECK_EQ_INT(n, head);
    relay_history_close(h);
    /* each patch the runtime saw is the recorded one */
    h = relay_history_open_readonly(db, &why);
    REQUIRE(h);
    CHECK(relay_history_patches(h, "jam", 1, UINT64_MAX, false, same_as_seen,
                                &l, &why) == PB_OK);
    CHECK_EQ_INT(l.errors, 0);
    relay_history_close(h);

    /* restart: same key, same head, the chain continues */
    REQUIRE(relay_start(&r, "kill", opts));
    CHECK(memcmp(pk, r.keys.pk, sizeof pk) == 0);
    pbc_welcome w;
    pbc *ed2 = join(&r, "jam", PB_ROLE_EDITOR, "ed", &w);
    REQUIRE(ed2);
    CHECK_EQ_INT(w.head_seq, head);
    var_source(src, sizeof src, 1, 1);
    CHECK_EQ_INT(eval(ed2, 1000, src, NULL), head + 1);
    pbc_close(ed2);
    CHECK_EQ_INT(relay_stop(&r), 0);
    h = relay_history_open_readonly(db, &why);
    REQUIRE(h);
    CHECK(relay_history_verify(h, "jam", pk, &n, &why) == PB_OK);
    CHECK_EQ_INT(n, head + 1);
    relay_history_close(h);
}

/* The compiler's hostile cases through the relay: each is a diag to its
 * author, and the room keeps working. */
TEST(hostile_source_through_relay)
{
    relay r;
    REQUIRE(relay_start(&r, "hostile", NULL));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    pbc *other = join(&r, "jam", PB_ROLE_EDITOR, "other", NULL);
    REQUIRE(ed && other);
    static const char *const bad[] = {
        "#include \"/etc/passwd\"\n",
        "#include <patchbay.h>\ndouble f(double v) { __asm__(\"nop\"); return "
        "v; }\n",
        "#include <patchbay.h>\ndouble f(double v) { return nosuch(v); }\n",
        "#include <patchbay.h>\nint x[1 << 30];\nint f(void) { return x[5]; "
        "}\n",
        "#include <patchbay.h>\nvoid system(const char *);\nvoid f(void) { "
        "system(\"ls\"); }\n",
        "#define A(x) x x x x x x x x\n#define B(x) A(A(A(A(x))))\n"
        "int f(void) { return B(B(B(1))); }\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        want w;
        uint64_t seq = eval(ed, 1 + i, bad[i], &w);
        CHECK_EQ_INT(seq, 0);
        CHECK(w.found && !w.ok && w.n_errors >= 1);
        if (seq || !w.found || w.ok || !w.n_errors)
            fprintf(stderr, "  case %zu was not refused with a diag\n", i);
    }
    /* only the author got the diags; the other editor sees nothing of them,
     * and the room still evaluates */
    const char *good = "#include <patchbay.h>\ndouble g(double v) { return v "
                       "+ 1; }\n";
    CHECK_EQ_INT(eval(other, 1, good, NULL), 1);
    pbc_close(other);
    pbc_close(ed);
    CHECK_EQ_INT(relay_stop(&r), 0);
}

/* SIGTERM with an eval in flight: it is answered and recorded, the relay
 * exits 0. */
TEST(clean_shutdown_answers_evals)
{
    relay r;
    REQUIRE(relay_start(&r, "shutdown", NULL));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    char src[256];
    var_source(src, sizeof src, 5, 5);
    CHECK(send_eval(ed, 7, src));
    pb_errmsg why;
    pbc_wait(ed, 5, NULL, NULL, &why); /* let it leave */
    sleep_ms(20);
    kill(r.pid, SIGTERM);
    want w = {PB_T_DIAG, 7, false, false, 0, false, false, 0, 0, ""};
    CHECK(wait_for(ed, &w, 30000));
    CHECK(w.ok && w.seq == 1);
    int st = 0;
    waitpid(r.pid, &st, 0);
    r.pid = 0;
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    pbc_close(ed);
    char db[400];
    snprintf(db, sizeof db, "%s/history.db", r.dir);
    relay_history *h = relay_history_open_readonly(db, &why);
    REQUIRE(h);
    uint64_t n = 0;
    CHECK(relay_history_verify(h, "jam", r.keys.pk, &n, &why) == PB_OK);
    CHECK_EQ_INT(n, 1);
    relay_history_close(h);
    relay_keys_close(&r.keys);
}

static const pb_test tests[] = {
    T(handshake_rejections),
    T(roles_enforced),
    T(limits_rate_and_room_size),
    T(oversized_and_malformed_frames),
    T(slow_consumer_disconnected),
    T(late_joiner_after_200_patches),
    T(durability_kill9),
    T(hostile_source_through_relay),
    T(clean_shutdown_answers_evals),
};

static int setup(void)
{
    if (pb_init())
        return 1;
    signal(SIGPIPE, SIG_IGN);
    snprintf(tmp_root, sizeof tmp_root, "/tmp/pb-relay-XXXXXX");
    if (!mkdtemp(tmp_root))
        return 1;
    printf("# relay data and logs under %s\n", tmp_root);
    return 0;
}

PB_TEST_RUNNER

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: test_relay_net PATCHBAY BACKEND [TEST...]\n");
        return 2;
    }
    patchbay_bin = argv[1];
    backend = argv[2];
    if (setup()) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    int rc = pb_test_run(tests, sizeof tests / sizeof tests[0], argc - 2,
                         argv + 2);
    if (rc == 0) { /* keep the logs of a failed run */
        char cmd[200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
        if (system(cmd) != 0)
            fprintf(stderr, "# could not remove %s\n", tmp_root);
    }
    return rc;
}
