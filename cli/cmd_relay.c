/* cmd_relay.c — the relay's commands: serve, token, keygen, log, verify.
 * They share the data directory (--data, default $PATCHBAY_DATA or
 * ./patchbay-data): the relay's keys and history.db. */
#include "cli.h"
#include "cc.h"
#include "relay.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char *default_data_dir(void)
{
    const char *d = getenv("PATCHBAY_DATA");
    return d && d[0] ? d : "patchbay-data";
}

/* Parses an unsigned number option value; prints the error itself. */
static bool parse_u32(const char *cmd, const char *opt, const char *v,
                      uint32_t max, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (!v[0] || *end || errno || n > max || v[0] == '-') {
        fprintf(stderr, "patchbay %s: %s wants a number from 0 to %u, got "
                        "\"%s\"\n",
                cmd, opt, max, v);
        return false;
    }
    *out = (uint32_t)n;
    return true;
}

static void bad_option(const char *cmd, const char *a)
{
    fprintf(stderr, "patchbay %s: unknown option or missing value \"%s\" "
                    "(see patchbay %s --help)\n",
            cmd, a, cmd);
}

/* ---- serve ------------------------------------------------------------------ */

static void serve_usage(FILE *out)
{
    fprintf(out,
        "usage: patchbay serve [options]\n"
        "\n"
        "Runs the relay: serves the web pages over HTTP and the patchbay\n"
        "WebSocket protocol on one port, compiles evals, signs and records each\n"
        "patch in DIR/history.db before broadcasting it. The first start creates\n"
        "DIR with the relay's key. Stop it with Ctrl-C (SIGINT) or SIGTERM: evals\n"
        "in flight are answered and the database is closed.\n"
        "\n"
        "options:\n"
        "  --port N               port (default 7888; 0: any free port, printed)\n"
        "  --bind ADDR            address to listen on (default 127.0.0.1; 0.0.0.0\n"
        "                         for every interface)\n"
        "  --data DIR             data directory (default $PATCHBAY_DATA or\n"
        "                         ./patchbay-data)\n"
        "  --web DIR              the web pages (default: the build's www/, which\n"
        "                         the build bundles from web/)\n"
        "  --backend warm|process the compiler (warm: clang and lld kept loaded;\n"
        "                         process: clang-14 and wasm-ld-14 per eval; default\n"
        "                         warm, or process with a log line if it cannot load)\n"
        "  --compile-timeout-ms N per eval (default %u)\n"
        "  --lead-ms N            least time from acceptance to apply (default 50;\n"
        "                         more when a room's slowest runtime needs it; a\n"
        "                         room's own lead, `patchbay room`, wins)\n"
        "  --max-clients N        clients per room (default 256)\n"
        "  --evals-per-second N   per client (default 10)\n"
        "  --bytes-per-second N   received per client (default 4194304)\n"
        "  --max-queue-bytes N    send queue per client before a slow consumer is\n"
        "                         disconnected (default 33554432)\n"
        "  --hello-timeout-ms N   time to send hello (default 5000)\n"
        "  --max-connections N    open sockets in all (default 4096)\n"
        "  --max-per-ip N         open sockets from one address (an IPv6 /64),\n"
        "                         other than the relay's own (default 256)\n"
        "  --allow-origin ORIGIN  a web origin besides the relay's own pages whose\n"
        "                         pages may open sockets, e.g. https://jam.example.org\n"
        "                         behind a TLS proxy (repeatable)\n"
        "  -q, --quiet            no per-connection and per-patch log lines\n"
        "  -h, --help             this help\n",
        CC_DEFAULT_TIMEOUT_MS);
}

/* The relay this process serves, for the signal handler: SIGINT and
 * SIGTERM stop it cleanly. */
static relay_server *volatile serving;

static void on_signal(int sig)
{
    (void)sig;
    if (serving)
        relay_stop(serving);
}

int cmd_serve(int argc, char **argv)
{
    relay_config c;
    memset(&c, 0, sizeof c);
    c.data_dir = default_data_dir();
    const char *backend = NULL;
    enum { MAX_ORIGINS = 32 };
    const char *origins[MAX_ORIGINS + 1] = {NULL};
    int n_origins = 0;
    c.allow_origins = origins;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint32_t n;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            serve_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            c.quiet = true;
            continue;
        } else if (!v) {
            bad_option("serve", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--port")) {
            if (!parse_u32("serve", a, v, 65535, &n))
                return 2;
            c.port = n ? (int)n : RELAY_PORT_ANY;
        } else if (!strcmp(a, "--bind")) {
            c.bind = v;
        } else if (!strcmp(a, "--data")) {
            c.data_dir = v;
        } else if (!strcmp(a, "--web")) {
            c.web_dir = v;
        } else if (!strcmp(a, "--backend")) {
            if (strcmp(v, "warm") && strcmp(v, "process")) {
                fprintf(stderr, "patchbay serve: --backend is warm or "
                                "process, not \"%s\"\n",
                        v);
                return 2;
            }
            backend = v;
        } else if (!strcmp(a, "--compile-timeout-ms")) {
            if (!parse_u32("serve", a, v, 600000, &c.compile_timeout_ms))
                return 2;
        } else if (!strcmp(a, "--lead-ms")) {
            if (!parse_u32("serve", a, v, 10000, &n))
                return 2;
            c.lead_us = (uint64_t)n * 1000u;
        } else if (!strcmp(a, "--max-clients")) {
            if (!parse_u32("serve", a, v, 100000, &c.max_clients_per_room))
                return 2;
        } else if (!strcmp(a, "--evals-per-second")) {
            if (!parse_u32("serve", a, v, 100000, &c.evals_per_second))
                return 2;
        } else if (!strcmp(a, "--bytes-per-second")) {
            if (!parse_u32("serve", a, v, UINT32_MAX, &c.bytes_per_second))
                return 2;
        } else if (!strcmp(a, "--max-queue-bytes")) {
            if (!parse_u32("serve", a, v, UINT32_MAX, &c.max_queue_bytes))
                return 2;
        } else if (!strcmp(a, "--hello-timeout-ms")) {
            if (!parse_u32("serve", a, v, 600000, &c.hello_timeout_ms))
                return 2;
        } else if (!strcmp(a, "--max-connections")) {
            if (!parse_u32("serve", a, v, 1000000, &c.max_connections))
                return 2;
        } else if (!strcmp(a, "--max-per-ip")) {
            if (!parse_u32("serve", a, v, 1000000, &c.max_connections_per_ip))
                return 2;
        } else if (!strcmp(a, "--allow-origin")) {
            if (n_origins == MAX_ORIGINS || !strstr(v, "://")) {
                fprintf(stderr, "patchbay serve: --allow-origin wants an "
                                "origin such as https://jam.example.org (at "
                                "most %d), got \"%s\"\n",
                        MAX_ORIGINS, v);
                return 2;
            }
            origins[n_origins++] = v;
        } else {
            bad_option("serve", a);
            return 2;
        }
    }
    /* The compile server is this program's cc-server command. */
    char self[4096];
    if (!cli_self_exe(self, sizeof self)) {
        fprintf(stderr, "patchbay serve: cannot find this program's path "
                        "(/proc/self/exe) to start the compile server\n");
        return 1;
    }
    const char *compiler[] = {self, "cc-server", backend ? "--backend" : NULL,
                              backend, NULL};
    c.compiler_argv = compiler;
    pb_errmsg why = {{0}};
    relay_info info;
    relay_server *r = relay_new(&c, &info, &why);
    if (!r) {
        fprintf(stderr, "patchbay serve: %s\n", why.text);
        return 1;
    }
    if (info.made_keys)
        printf("patchbay serve: made new relay keys in %s\n", c.data_dir);
    printf("patchbay serve: listening on http://%s:%d (data %s, relay key "
           "%s)\n",
           c.bind ? c.bind : "127.0.0.1", info.port, c.data_dir, info.key_hex);
    fflush(stdout);
    serving = r;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    /* stdout may be a pipe its reader closed (tests read the first line) */
    signal(SIGPIPE, SIG_IGN);
    pb_err e = relay_serve(r, &why);
    serving = NULL;
    relay_free(r);
    if (e) {
        fprintf(stderr, "patchbay serve: %s\n", why.text);
        return 1;
    }
    return 0;
}

/* ---- token ------------------------------------------------------------------- */

static void token_usage(FILE *out)
{
    fprintf(out,
        "usage: patchbay token --room R --role ROLE --name N [options]\n"
        "\n"
        "Prints a token for user N to join room R as ROLE, then links to open\n"
        "that carry it (and the relay's public key, which runtimes pin) in the\n"
        "URL fragment, which browsers do not send to any server.\n"
        "\n"
        "roles: owner (everything, incl. room settings), editor (evaluates\n"
        "code), runtime (runs the room's code), viewer (watches).\n"
        "\n"
        "options:\n"
        "  --room R        room name (1 to 64 bytes)\n"
        "  --role ROLE     owner, editor, runtime or viewer\n"
        "  --name N        the user's name, shown to the room and recorded as\n"
        "                  the author of their patches\n"
        "  --ttl D         valid for D: 90s, 30m, 12h, 7d (default 12h; at most\n"
        "                  366d)\n"
        "  --url URL       the relay's address for the links (default\n"
        "                  http://127.0.0.1:7888)\n"
        "  --data DIR      data directory of the relay (default $PATCHBAY_DATA or\n"
        "                  ./patchbay-data); created with new keys if missing\n"
        "  -q, --quiet     print only the token\n"
        "  -h, --help      this help\n");
}

int cmd_token(int argc, char **argv)
{
    relay_token t;
    memset(&t, 0, sizeof t);
    const char *room = NULL, *role = NULL, *name = NULL, *ttl = "12h";
    const char *url = "http://127.0.0.1:7888", *data = default_data_dir();
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            token_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
            continue;
        } else if (!v) {
            bad_option("token", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--room"))
            room = v;
        else if (!strcmp(a, "--role"))
            role = v;
        else if (!strcmp(a, "--name"))
            name = v;
        else if (!strcmp(a, "--ttl"))
            ttl = v;
        else if (!strcmp(a, "--url"))
            url = v;
        else if (!strcmp(a, "--data"))
            data = v;
        else {
            bad_option("token", a);
            return 2;
        }
    }
    if (!room || !role || !name) {
        fprintf(stderr, "patchbay token: --room, --role and --name are "
                        "required\n\n");
        token_usage(stderr);
        return 2;
    }
    t.role = pb_role_parse(pb_cstr(role));
    if (!t.role) {
        fprintf(stderr, "patchbay token: --role is owner, editor, runtime or "
                        "viewer, not \"%s\"\n",
                role);
        return 2;
    }
    uint64_t ttl_s = relay_parse_duration_s(ttl);
    if (!ttl_s || ttl_s > RELAY_TOKEN_MAX_TTL_S) {
        fprintf(stderr, "patchbay token: --ttl \"%s\" is not a duration from "
                        "1s to 366d (e.g. 90s, 30m, 12h, 7d)\n",
                ttl);
        return 2;
    }
    if (strlen(room) > PB_MAX_NAME_BYTES || strlen(name) > PB_MAX_NAME_BYTES) {
        fprintf(stderr, "patchbay token: --room and --name are at most %u "
                        "bytes\n",
                PB_MAX_NAME_BYTES);
        return 2;
    }
    snprintf(t.room, sizeof t.room, "%s", room);
    snprintf(t.name, sizeof t.name, "%s", name);
    t.expires_s = (uint64_t)time(NULL) + ttl_s;

    relay_keys k;
    pb_errmsg why = {{0}};
    bool created = false;
    if (relay_keys_open(data, &k, &created, &why)) {
        fprintf(stderr, "patchbay token: %s\n", why.text);
        return 1;
    }
    char tok[PB_MAX_TOKEN_BYTES + 1];
    pb_err e = relay_token_make(&k, &t, tok, sizeof tok, &why);
    if (e) {
        relay_keys_close(&k);
        fprintf(stderr, "patchbay token: %s\n", why.text);
        return 2;
    }
    if (created)
        fprintf(stderr, "patchbay token: made new relay keys in %s\n", data);
    printf("%s\n", tok);
    if (!quiet) {
        char room_enc[3 * PB_MAX_NAME_BYTES + 1];
        pbc_url_encode(room, room_enc, sizeof room_enc);
        size_t ul = strlen(url);
        while (ul && url[ul - 1] == '/')
            ul--;
        char when[32];
        time_t exp = (time_t)t.expires_s;
        strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&exp));
        printf("\n%s %s in room %s, valid until %s\n", role, name, room, when);
        printf("  editor page:  %.*s/editor.html#room=%s&token=%s&key=%s\n",
               (int)ul, url, room_enc, tok, k.pk_hex);
        printf("  runtime page: %.*s/runtime.html#room=%s&token=%s&key=%s\n",
               (int)ul, url, room_enc, tok, k.pk_hex);
        printf("  command line: export PATCHBAY_URL=%.*s PATCHBAY_TOKEN=%s\n",
               (int)ul, url, tok);
    }
    relay_keys_close(&k);
    return 0;
}

/* ---- keygen -------------------------------------------------------------------- */

int cmd_keygen(int argc, char **argv)
{
    const char *data = default_data_dir();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: patchbay keygen [--data DIR]\n\n"
                   "Creates the relay's keys in DIR (default $PATCHBAY_DATA "
                   "or ./patchbay-data)\nif it has none, and prints the "
                   "public key. serve and token do this too.\n");
            return 0;
        } else if (!strcmp(argv[i], "--data") && i + 1 < argc) {
            data = argv[++i];
        } else {
            bad_option("keygen", argv[i]);
            return 2;
        }
    }
    relay_keys k;
    pb_errmsg why = {{0}};
    bool created;
    if (relay_keys_open(data, &k, &created, &why)) {
        fprintf(stderr, "patchbay keygen: %s\n", why.text);
        return 1;
    }
    printf("%s\n", k.pk_hex);
    fprintf(stderr, "%s keys in %s\n", created ? "made new" : "kept the",
            data);
    relay_keys_close(&k);
    return 0;
}

/* ---- log and verify ------------------------------------------------------------- */

static relay_history *open_history(const char *cmd, const char *data)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/history.db", data);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "patchbay %s: no history at %s (%s); is --data the "
                        "relay's data directory?\n",
                cmd, path, strerror(errno));
        return NULL;
    }
    pb_errmsg why = {{0}};
    relay_history *h = relay_history_open_readonly(path, &why);
    if (!h)
        fprintf(stderr, "patchbay %s: %s\n", cmd, why.text);
    return h;
}

static void print_room(void *ctx, const char *room, uint64_t head)
{
    (void)ctx;
    printf("%-24s %llu patch%s\n", room, (unsigned long long)head,
           head == 1 ? "" : "es");
}

/* The recorded commit stats of a room, in seq order, walked alongside its
 * patches. */
typedef struct log_stats {
    relay_commit_stats *v;
    size_t n, cap, pos;
    bool oom;
} log_stats;

static void collect_stats(void *ctx, const relay_commit_stats *st)
{
    log_stats *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        relay_commit_stats *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->oom = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *st;
}

static int print_patch(void *ctx, const relay_patch_row *p)
{
    log_stats *l = ctx;
    pb_statement st;
    pb_errmsg why;
    char when[32] = "?";
    time_t t = (time_t)(p->created_us / 1000000u);
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    while (l->pos < l->n && l->v[l->pos].seq < p->seq)
        l->pos++;
    char spread[48] = "-";
    if (l->pos < l->n && l->v[l->pos].seq == p->seq) {
        const relay_commit_stats *c = &l->v[l->pos];
        snprintf(spread, sizeof spread, "%u in %.2f ms", c->runtimes,
                 (double)c->spread_us / 1000.0);
    }
    printf("%6llu  %s  %-12s %8zu  %-17s  ", (unsigned long long)p->seq, when,
           p->author, p->module_len, spread);
    if (pb_statement_decode(p->stmt, p->stmt_len, &st, &why)) {
        printf("(statement does not decode: %s)\n", why.text);
        return 0;
    }
    if (st.kind == PB_KIND_EXPR) { /* its text: = (ggg 10) */
        size_t n = 0, from = 0;
        while (from < p->source_len && strchr(" \t\r\n", p->source[from]))
            from++; /* an editor's eval is blanked into its place */
        while (from + n < p->source_len && n < 60 &&
               p->source[from + n] != '\n')
            n++;
        printf("= %.*s%s\n", (int)n, p->source ? p->source + from : "",
               from + n < p->source_len ? " …" : "");
    }
    for (uint32_t i = 0; i < st.n_symbols; i++)
        printf("%s%.*s", i ? ", " : "", (int)st.symbols[i].name.len,
               st.symbols[i].name.ptr);
    if (st.kind != PB_KIND_EXPR)
        printf("%s\n", st.n_symbols ? "" : "(no vars)");
    pb_statement_free(&st);
    return 0;
}

int cmd_log(int argc, char **argv)
{
    const char *data = default_data_dir(), *room = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: patchbay log [--room R] [--data DIR]\n\n"
                   "Lists room R's history: seq, time (UTC), author, module "
                   "bytes, lockstep\n(how many runtimes committed the patch "
                   "live, and the spread of their\ncommit times on the room "
                   "clock; \"-\" until it settles, about 2 s after its\n"
                   "apply time) and the vars each patch defines. Without "
                   "--room, lists the\nrooms and their patch counts. Safe "
                   "while the relay runs.\n");
            return 0;
        } else if (!strcmp(argv[i], "--room") && i + 1 < argc) {
            room = argv[++i];
        } else if (!strcmp(argv[i], "--data") && i + 1 < argc) {
            data = argv[++i];
        } else {
            bad_option("log", argv[i]);
            return 2;
        }
    }
    relay_history *h = open_history("log", data);
    if (!h)
        return 1;
    pb_errmsg why = {{0}};
    pb_err e;
    if (!room) {
        e = relay_history_rooms(h, print_room, NULL, &why);
    } else {
        printf("%6s  %-19s  %-12s %8s  %-17s  %s\n", "seq", "time (UTC)",
               "author", "bytes", "lockstep", "vars");
        log_stats stats = {0};
        e = relay_history_commit_stats(h, room, 1, UINT64_MAX, collect_stats,
                                       &stats, &why);
        if (!e && stats.oom) {
            e = PB_ERR_NOMEM;
            snprintf(why.text, sizeof why.text, "out of memory");
        }
        if (!e)
            e = relay_history_patches(h, room, 1, UINT64_MAX, false,
                                      print_patch, &stats, &why);
        free(stats.v);
    }
    relay_history_close(h);
    if (e) {
        fprintf(stderr, "patchbay log: %s\n", why.text);
        return 1;
    }
    return 0;
}

typedef struct verify_all {
    relay_history *h;
    const uint8_t *key;
    int failures;
} verify_all;

static void verify_room(void *ctx, const char *room, uint64_t head)
{
    verify_all *v = ctx;
    uint64_t n = 0;
    pb_errmsg why = {{0}};
    char r[PB_MAX_NAME_BYTES + 1];
    snprintf(r, sizeof r, "%s", room); /* the row is reused below */
    if (relay_history_verify(v->h, r, v->key, &n, &why)) {
        printf("room %s: FAILED after %llu good patches: %s\n", r,
               (unsigned long long)n, why.text);
        v->failures++;
    } else if (n != head) {
        printf("room %s: FAILED: %llu patches verify but the head is %llu\n",
               r, (unsigned long long)n, (unsigned long long)head);
        v->failures++;
    } else {
        printf("room %s: %llu patches verify (signatures, hashes, chain)\n", r,
               (unsigned long long)n);
    }
}

typedef struct room_list {
    char names[256][PB_MAX_NAME_BYTES + 1];
    uint64_t heads[256];
    int n;
} room_list;

static void collect_room(void *ctx, const char *room, uint64_t head)
{
    room_list *l = ctx;
    if (l->n < 256) {
        snprintf(l->names[l->n], sizeof l->names[0], "%s", room);
        l->heads[l->n++] = head;
    }
}

int cmd_verify(int argc, char **argv)
{
    const char *data = default_data_dir(), *room = NULL, *key_hex = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: patchbay verify [--room R] [--data DIR] [--key "
                   "HEX]\n\n"
                   "Checks every recorded patch of room R (default: every "
                   "room) from seq 1:\nthe statement's signature by the "
                   "relay key (DIR's relay.pub, or --key), the\nhash chain, "
                   "and the module and source hashes. Exit status 1 if "
                   "any fails.\n");
            return 0;
        } else if (!strcmp(argv[i], "--room") && i + 1 < argc) {
            room = argv[++i];
        } else if (!strcmp(argv[i], "--data") && i + 1 < argc) {
            data = argv[++i];
        } else if (!strcmp(argv[i], "--key") && i + 1 < argc) {
            key_hex = argv[++i];
        } else {
            bad_option("verify", argv[i]);
            return 2;
        }
    }
    uint8_t key[PB_PUBLICKEY_BYTES];
    char pub[2 * PB_PUBLICKEY_BYTES + 2] = "";
    if (!key_hex) {
        char path[4200];
        snprintf(path, sizeof path, "%s/relay.pub", data);
        FILE *f = fopen(path, "r");
        if (!f || !fgets(pub, sizeof pub, f)) {
            fprintf(stderr, "patchbay verify: cannot read %s: %s (or pass "
                            "--key)\n",
                    path, f ? "empty" : strerror(errno));
            if (f)
                fclose(f);
            return 1;
        }
        fclose(f);
        pub[strcspn(pub, "\r\n")] = '\0';
        key_hex = pub;
    }
    if (strlen(key_hex) != 2 * PB_PUBLICKEY_BYTES ||
        pb_unhex(key_hex, key, sizeof key)) {
        fprintf(stderr, "patchbay verify: the key \"%s\" is not 64 hex "
                        "digits\n",
                key_hex);
        return 2;
    }
    if (pb_init()) {
        fprintf(stderr, "patchbay verify: libsodium does not initialise\n");
        return 1;
    }
    relay_history *h = open_history("verify", data);
    if (!h)
        return 1;
    verify_all v = {h, key, 0};
    pb_errmsg why = {{0}};
    pb_err e = PB_OK;
    if (room) {
        uint64_t head = 0;
        uint8_t hash[PB_HASH_BYTES];
        e = relay_history_head(h, room, &head, hash, &why);
        if (!e)
            verify_room(&v, room, head);
    } else {
        room_list *l = calloc(1, sizeof *l);
        if (!l) {
            relay_history_close(h);
            return 1;
        }
        e = relay_history_rooms(h, collect_room, l, &why);
        for (int i = 0; !e && i < l->n; i++)
            verify_room(&v, l->names[i], l->heads[i]);
        if (!e && !l->n)
            printf("no rooms recorded yet\n");
        free(l);
    }
    relay_history_close(h);
    if (e) {
        fprintf(stderr, "patchbay verify: %s\n", why.text);
        return 1;
    }
    return v.failures ? 1 : 0;
}
