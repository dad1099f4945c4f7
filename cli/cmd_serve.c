/* cmd_serve.c — `patchbay serve`: runs one relay (relay.h) until SIGINT
 * or SIGTERM, with this program's `cc-server` command as its compile
 * server. The data directory (--data, default $PATCHBAY_DATA or
 * ./patchbay-data) holds the relay's keys and history.db. */
#include "cc.h"
#include "cli.h"
#include "relay.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: patchbay serve [options]\n"
        "\n"
        "Runs the relay: serves the web pages over HTTP and the patchbay\n"
        "WebSocket protocol on one port, compiles evals, signs and records "
        "each\n"
        "patch in DIR/history.db before broadcasting it. The first start "
        "creates\n"
        "DIR with the relay's key. Stop it with Ctrl-C (SIGINT) or SIGTERM: "
        "evals\n"
        "in flight are answered and the database is closed.\n"
        "\n"
        "options:\n"
        "  --port N               port (default 7888; 0: any free port, "
        "printed)\n"
        "  --bind ADDR            address to listen on (default 127.0.0.1; "
        "0.0.0.0\n"
        "                         for every interface)\n"
        "  --data DIR             data directory (default $PATCHBAY_DATA or\n"
        "                         ./patchbay-data)\n"
        "  --web DIR              the web pages (default: the build's www/, "
        "which\n"
        "                         the build bundles from web/)\n"
        "  --backend warm|process the compiler (warm: clang and lld kept "
        "loaded;\n"
        "                         process: clang-14 and wasm-ld-14 per eval; "
        "default\n"
        "                         warm, or process with a log line if it "
        "cannot load)\n"
        "  --compile-timeout-ms N per eval (default %u)\n"
        "  --compile-budget-ms N  time an eval may take on the shared\n"
        "                         compile worker; one still compiling is\n"
        "                         compiled again on the second worker with\n"
        "                         the whole limit (default 300, or 4x what\n"
        "                         evals took lately if more, at most half\n"
        "                         the limit)\n"
        "  --lead-ms N            least time from acceptance to apply (default "
        "50;\n"
        "                         more when a room's slowest runtime needs it; "
        "a\n"
        "                         room's own lead, `patchbay room`, wins)\n"
        "  --max-clients N        clients per room (default 256)\n"
        "  --evals-per-second N   per token name in its room (default 10)\n"
        "  --room-evals-per-second N  per room (default 30)\n"
        "  --max-evals-per-name N evals waiting or compiling per token name "
        "(default 8)\n"
        "  --max-evals-per-room N evals waiting or compiling per room "
        "(default 32)\n"
        "  --max-evals N          evals waiting or compiling in all (default "
        "256)\n"
        "  --bytes-per-second N   received per client (default 4194304)\n"
        "  --max-queue-bytes N    send queue per client before a slow consumer "
        "is\n"
        "                         disconnected (default 33554432)\n"
        "  --hello-timeout-ms N   time to send hello (default 5000)\n"
        "  --max-connections N    open sockets in all (default 4096)\n"
        "  --max-per-ip N         open sockets from one address (an IPv6 /64),\n"
        "                         other than the relay's own (default 256)\n"
        "  --max-catchups N       history streams at once (default 16; more wait)\n"
        "  --buffer-bytes N       bytes a shared buffer may store (default and most\n"
        "                         1048576; more asks editors to compact first)\n"
        "  --max-buffers N        open shared buffers per room (default 16, most 64)\n"
        "  --buffer-writes-per-second N  buffer updates one token name may send\n"
        "                         in a room (default 50, burst 4x)\n"
        "  --allow-origin ORIGIN  a web origin besides the relay's own pages whose\n"
        "                         pages may open sockets, e.g. https://jam.example.org\n"
        "                         behind a TLS proxy (repeatable)\n"
        "  --tls-cert FILE        PEM certificate (chain): serve https and wss "
        "on\n"
        "                         the port instead of http and ws\n"
        "  --tls-key FILE         its PEM private key (with --tls-cert)\n"
        "  --redis URL            redis://HOST:PORT: more than one relay. This\n"
        "                         relay signs and publishes its rooms there;\n"
        "                         with --edge, it serves them from there\n"
        "  --redis-password-file FILE  Redis's password (requirepass, or an ACL\n"
        "                         user's: redis://USER@HOST:PORT), out of `ps`\n"
        "  --edge                 an edge: no signing key, no compiler; --data\n"
        "                         holds copies of the signer's token.key and\n"
        "                         relay.pub (the key it checks patches with)\n"
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
    static char redis_password[512];
    memset(&c, 0, sizeof c);
    c.data_dir = cli_data_dir();
    const char *backend = NULL;
    enum { MAX_ORIGINS = 32 };
    const char *origins[MAX_ORIGINS + 1] = {NULL};
    int n_origins = 0;
    c.allow_origins = origins;
    uint32_t port = RELAY_DEFAULT_PORT, lead_ms = 0;
    /* the options that take a number: where it goes, and its range (0
     * means the default, as in relay_config) */
    const struct {
        const char *name;
        uint32_t *to;
        uint32_t min, max;
    } numbers[] = {
        {"--port", &port, 0, 65535},
        {"--compile-timeout-ms", &c.compile_timeout_ms, 0, 600000},
        {"--compile-budget-ms", &c.compile_budget_ms, 0, 600000},
        {"--lead-ms", &lead_ms, 0, 10000},
        {"--max-clients", &c.max_clients_per_room, 0, 100000},
        {"--evals-per-second", &c.evals_per_second, 0, 100000},
        {"--room-evals-per-second", &c.room_evals_per_second, 0, 100000},
        {"--max-evals-per-name", &c.max_evals_per_name, 0, 100000},
        {"--max-evals-per-room", &c.max_evals_per_room, 0, 100000},
        {"--max-evals", &c.max_evals, 0, 1000000},
        {"--bytes-per-second", &c.bytes_per_second, 0, UINT32_MAX},
        {"--max-queue-bytes", &c.max_queue_bytes, 0, UINT32_MAX},
        {"--hello-timeout-ms", &c.hello_timeout_ms, 0, 600000},
        {"--max-connections", &c.max_connections, 0, 1000000},
        {"--max-per-ip", &c.max_connections_per_ip, 0, 1000000},
        {"--max-catchups", &c.max_catchups, 0, 100000},
        {"--buffer-bytes", &c.max_buffer_bytes, 0, PB_MAX_BUFFER_BYTES},
        {"--max-buffers", &c.max_buffers, 0, PB_MAX_BUFFERS},
        {"--buffer-writes-per-second", &c.buffer_writes_per_second, 0, 100000},
    };
    pb_errmsg why = {{0}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            c.quiet = true;
            continue;
        } else if (!strcmp(a, "--edge")) {
            c.edge = true;
            continue;
        } else if (!v) {
            return cli_bad_option("serve", a);
        }
        i++;
        size_t k = 0;
        while (k < sizeof numbers / sizeof numbers[0] &&
               strcmp(a, numbers[k].name))
            k++;
        if (k < sizeof numbers / sizeof numbers[0]) {
            if (cli_parse_u32(a, v, numbers[k].min, numbers[k].max,
                              numbers[k].to, &why))
                return cli_usage_error("serve", "%s", why.text);
        } else if (!strcmp(a, "--bind")) {
            c.bind = v;
        } else if (!strcmp(a, "--data")) {
            c.data_dir = v;
        } else if (!strcmp(a, "--web")) {
            c.web_dir = v;
        } else if (!strcmp(a, "--tls-cert")) {
            c.tls_cert = v;
        } else if (!strcmp(a, "--tls-key")) {
            c.tls_key = v;
        } else if (!strcmp(a, "--redis")) {
            c.redis_url = v;
        } else if (!strcmp(a, "--redis-password-file")) {
            if (!cli_secret_file("serve", "Redis password", v, redis_password,
                                 sizeof redis_password))
                return 2;
            c.redis_password = redis_password;
        } else if (!strcmp(a, "--backend")) {
            cc_backend b;
            if (cc_backend_parse(v, &b, &why))
                return cli_usage_error("serve", "--backend: %s", why.text);
            backend = v;
        } else if (!strcmp(a, "--allow-origin")) {
            if (n_origins == MAX_ORIGINS || !strstr(v, "://"))
                return cli_usage_error("serve",
                                       "--allow-origin wants an origin such "
                                       "as https://jam.example.org (at most "
                                       "%d), got \"%s\"",
                                       MAX_ORIGINS, v);
            origins[n_origins++] = v;
        } else {
            return cli_bad_option("serve", a);
        }
    }
    c.port = port ? (int)port : RELAY_PORT_ANY;
    c.lead_us = (uint64_t)lead_ms * 1000u;
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
    relay_info info;
    relay_server *r = relay_new(&c, &info, &why);
    if (!r) {
        fprintf(stderr, "patchbay serve: %s\n", why.text);
        return 1;
    }
    if (info.made_keys)
        printf("patchbay serve: made new relay keys in %s\n", c.data_dir);
    /* on every interface, links name this machine */
    char url[300], host[256] = "";
    const char *bind = c.bind ? c.bind : "127.0.0.1";
    if ((!strcmp(bind, "0.0.0.0") || !strcmp(bind, "::")) &&
        gethostname(host, sizeof host - 1) == 0 && host[0])
        bind = host;
    bool is_v6 = strchr(bind, ':') != NULL;
    snprintf(url, sizeof url, "%s://%s%s%s:%d", c.tls_cert ? "https" : "http",
             is_v6 ? "[" : "", bind, is_v6 ? "]" : "", info.port);
    printf("patchbay serve: listening on %s (data %s, relay key %s)\n", url,
           c.data_dir, info.key_hex);
    /* patchbay token's default address for links (https with TLS) */
    if (cli_relay_url_save(c.data_dir, url, &why))
        fprintf(stderr, "patchbay serve: %s\n", why.text);
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
