/* loadgen.c — a WebSocket load generator for the relay's fan-out, so that
 * the figures measure the relay and not the clients (bench/relay.mjs ran
 * node clients, which mostly measured themselves): one process holds
 * 10,000 connections on one epoll loop (loadgen_ws.c).
 *
 * It joins N runtime-role clients to one room (hello, welcome, the
 * catch-up up to its last `history` frame), decodes every frame they get
 * with pb_frame_decode and every patch's statement (for its seq), and
 * stamps each patch's arrival. One more connection is the room's editor:
 * it sends one eval (not counted: it warms the compile cache), then
 * --evals evals one at a time, each once the previous one reached every
 * client, and the report says eval -> first and last delivery p50/p99 and
 * how many deliveries arrived of how many expected (drops and repeats are
 * counted, never hidden). With --raw it speaks to a plain broadcast server
 * instead (bench/fanout.mjs's ws and uWebSockets.js baselines): no hello,
 * the "editor" sends a payload whose first 4 bytes number the round, and
 * the server sends it to everyone else. --cpu-pid reads the server's
 * utime and stime (/proc/PID/stat) across the measured rounds; --wait-go
 * lets a driver attach a tracer (bench/fanout.mjs --syscalls) to exactly
 * those rounds: "joined" on stdout, a line on stdin, then the rounds,
 * then "rounds done" before the report.
 *
 * docs/PROTOCOL.md § Transport is the protocol spoken here. */
#include "loadgen.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

int lg_on_upgraded(lg *g, lg_conn *c)
{
    if (g->o.raw)
        return lg_become_ready(g, c);
    pb_frame f = {.type = PB_T_HELLO};
    f.hello.token =
        pb_cstr(c->is_editor ? g->o.editor_token : g->o.target.token);
    f.hello.client = pb_cstr("patchbay-loadgen");
    c->state = LG_JOINING;
    return lg_send_frame(g, c, &f);
}

/* ---- what arrives ----------------------------------------------------------
 */

static void count_delivery(lg *g, lg_conn *c, uint64_t round, size_t bytes)
{
    uint64_t t = lg_now_us();
    if (round >= g->o.evals || round < c->next) {
        c->repeats++;
        return;
    }
    c->next = (uint32_t)round + 1;
    c->got++;
    lg_round *r = &g->rounds[round];
    if (!r->count || t < r->first_us)
        r->first_us = t;
    if (t > r->last_us)
        r->last_us = t;
    r->count++;
    g->patch_bytes = (uint32_t)bytes;
}

int lg_on_frame(lg *g, lg_conn *c, const uint8_t *p, size_t len)
{
    if (g->o.raw) {
        if (c->is_editor || c->state != LG_READY || len < 4)
            return 0;
        uint32_t r;
        memcpy(&r, p, 4);
        count_delivery(g, c, r, len);
        return 0;
    }
    pb_frame f;
    pb_errmsg why;
    pb_err e = pb_frame_decode(p, len, &f, &why);
    if (e) {
        lg_fail(g, "client %u: the relay sent an undecodable frame: %s",
                (unsigned)(c - g->conns), why.text);
        return -1;
    }
    int rc = 0;
    switch (f.type) {
    case PB_T_ERROR:
        lg_fail(g, "client %u: the relay said: %.*s", (unsigned)(c - g->conns),
                (int)f.error.message.len, f.error.message.ptr);
        rc = f.error.fatal ? -1 : 0;
        break;
    case PB_T_WELCOME:
        if (c->is_editor)
            rc = lg_become_ready(g, c);
        break;
    case PB_T_HISTORY:
        if (!c->is_editor && c->state == LG_JOINING && !f.history.more)
            rc = lg_become_ready(g, c);
        break;
    case PB_T_DIAG:
        if (c->is_editor) {
            g->diag_req = f.diag.req;
            g->diag_seq = f.diag.ok ? f.diag.seq : 0;
            snprintf(g->diag_err, sizeof g->diag_err, "%.*s",
                     f.diag.n_items ? (int)f.diag.items[0].message.len : 0,
                     f.diag.n_items ? f.diag.items[0].message.ptr : "");
        }
        break;
    case PB_T_PATCH: {
        pb_statement st;
        if (pb_statement_decode(f.patch.stmt.ptr, f.patch.stmt.len, &st,
                                &why)) {
            lg_fail(g, "client %u: a patch's statement does not decode: %s",
                    (unsigned)(c - g->conns), why.text);
            rc = -1;
            break;
        }
        if (!c->is_editor && c->state == LG_READY && g->base_seq &&
            st.seq > g->base_seq)
            count_delivery(g, c, st.seq - g->base_seq - 1, len);
        pb_statement_free(&st);
        break;
    }
    default: /* head, room, pong: decoded, nothing to count */ break;
    }
    pb_frame_free(&f);
    return rc;
}

/* Parses the HTTP answer to the upgrade; 0 while it is incomplete. */
/* ---- the run ----------------------------------------------------------------
 */

static bool never(lg *g)
{
    (void)g;
    return false;
}
static bool editor_ready(lg *g)
{
    return g->conns[g->o.clients].state == LG_READY ||
           g->conns[g->o.clients].state == LG_CLOSED;
}
static bool diag_came(lg *g)
{
    return g->diag_req != 0 || g->conns[g->o.clients].state == LG_CLOSED;
}

/* Round r's eval, with request id req (raw: a payload numbering r). */
static int send_eval(lg *g, uint32_t round, uint64_t req)
{
    lg_conn *ed = &g->conns[g->o.clients];
    if (g->o.raw) {
        uint8_t *p = calloc(1, g->o.payload_bytes);
        if (!p)
            return -1;
        memcpy(p, &round, 4);
        int rc = lg_ws_send(g, ed, LG_WS_OPCODE_BIN, p, g->o.payload_bytes);
        free(p);
        return rc;
    }
    pb_frame f = {.type = PB_T_EVAL};
    f.eval.req = req;
    f.eval.lang = PB_LANG_C;
    f.eval.name = pb_cstr("loadgen.c");
    f.eval.source = pb_cstr(g->source);
    g->diag_req = 0;
    return lg_send_frame(g, ed, &f);
}

/* Opens the client connections, LG_MAX_HANDSHAKES at a time. */
static bool all_joined(lg *g)
{
    return g->opened == g->o.clients && g->handshaking == 0;
}
static void join_clients(lg *g)
{
    uint64_t t0 = lg_now_us(), shown = t0;
    uint32_t i = 0;
    while (!all_joined(g) && !g->fail[0]) {
        while (i < g->o.clients && g->handshaking < LG_MAX_HANDSHAKES)
            lg_conn_open(g, &g->conns[i], i), i++;
        lg_serve(g, 20, never);
        if (lg_now_us() - t0 > (uint64_t)g->o.timeout_ms * 1000) {
            lg_fail(g, "only %u of %u clients joined in %u ms", g->ready,
                    g->o.clients, g->o.timeout_ms);
            return;
        }
        if (!g->o.quiet && lg_now_us() - shown > 1000000) {
            fprintf(stderr, "loadgen: %u of %u clients joined\n", g->ready,
                    g->o.clients);
            shown = lg_now_us();
        }
    }
    if (!g->fail[0] && g->ready < g->o.clients)
        lg_fail(g, "%u of %u clients were closed while joining", g->closed,
                g->o.clients);
}

static uint32_t g_round; /* the round serve() is waiting for */
static bool round_done(lg *g)
{
    bool refused =
        !g->o.raw && g->diag_req == (uint64_t)g_round + 2 && !g->diag_seq;
    return refused || g->rounds[g_round].count >= g->ready;
}

/* A process's CPU time, in clock ticks. */
typedef struct lg_cpu {
    uint64_t user, sys;
} lg_cpu;

static int cpu_ticks(int pid, lg_cpu *t)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the name may hold spaces */
    unsigned long ut, st;
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &ut, &st) != 2)
        return -1;
    t->user = ut;
    t->sys = st;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}
static double pct_ms(uint64_t *v, uint32_t n, double p)
{
    if (!n)
        return 0;
    qsort(v, n, sizeof *v, cmp_u64);
    uint32_t k = (uint32_t)(p / 100 * n);
    return v[k < n ? k : n - 1] / 1000.0;
}

/* The utime and stime of every --cpu-pid. */
static int cpu_all(lg *g, lg_cpu *ticks)
{
    for (unsigned k = 0; k < g->o.n_cpu_pids; k++)
        if (cpu_ticks(g->o.cpu_pids[k], &ticks[k]) < 0) {
            lg_fail(g, "cannot read /proc/%d/stat", g->o.cpu_pids[k]);
            return -1;
        }
    return 0;
}

static void report(lg *g, const lg_cpu *cpu0, const lg_cpu *cpu1,
                   uint64_t join_us)
{
    uint32_t n = g->o.evals;
    uint64_t *last = calloc(n ? n : 1, sizeof *last),
             *first = calloc(n ? n : 1, sizeof *first);
    uint64_t delivered = 0, repeats = 0;
    uint32_t complete = 0;
    for (uint32_t r = 0; r < n; r++) {
        lg_round *x = &g->rounds[r];
        delivered += x->count;
        if (!x->count)
            continue;
        last[complete] = x->last_us - x->sent_us;
        first[complete++] = x->first_us - x->sent_us;
    }
    for (uint32_t i = 0; i < g->o.clients; i++)
        repeats += g->conns[i].repeats;
    uint64_t expected = (uint64_t)g->o.clients * n;
    double tick_ms = 1000.0 / (double)sysconf(_SC_CLK_TCK), user_ms = 0,
           sys_ms = 0;
    char each[LG_MAX_PIDS * 24] = "";
    for (unsigned k = 0; k < g->o.n_cpu_pids; k++) {
        double u = (double)(cpu1[k].user - cpu0[k].user) * tick_ms,
               y = (double)(cpu1[k].sys - cpu0[k].sys) * tick_ms;
        user_ms += u;
        sys_ms += y;
        size_t l = strlen(each);
        snprintf(each + l, sizeof each - l, "%s%.1f", k ? "," : "", u + y);
    }
    double cpu_ms = user_ms + sys_ms,
           per_k = delivered ? 1000.0 / (double)delivered : 0;
    double l50 = pct_ms(last, complete, 50), l99 = pct_ms(last, complete, 99);
    double f50 = pct_ms(first, complete, 50);
    if (g->o.json) {
        printf("{\"clients\":%u,\"evals\":%u,\"delivered\":%llu,"
               "\"expected\":%llu,\"repeats\":%llu,\"closed\":%u,"
               "\"first_p50_ms\":%.3f,\"last_p50_ms\":%.3f,"
               "\"last_p99_ms\":%.3f,\"frame_bytes\":%u,\"join_ms\":%.0f,"
               "\"cpu_ms\":%.1f,\"cpu_ms_each\":[%s],"
               "\"cpu_ms_per_1000\":%.4f,\"user_ms_per_1000\":%.4f,"
               "\"sys_ms_per_1000\":%.4f}\n",
               g->o.clients, n, (unsigned long long)delivered,
               (unsigned long long)expected, (unsigned long long)repeats,
               g->closed, f50, l50, l99, g->patch_bytes, join_us / 1000.0,
               cpu_ms, each, cpu_ms * per_k, user_ms * per_k, sys_ms * per_k);
    } else {
        printf("%u clients joined in %.0f ms; %u evals of a %u-byte frame\n",
               g->o.clients, join_us / 1000.0, n, g->patch_bytes);
        printf("eval -> first delivery p50 %.2f ms; eval -> last delivery "
               "p50 %.2f ms, p99 %.2f ms\n",
               f50, l50, l99);
        printf("deliveries %llu of %llu (%llu missing, %llu repeated, %u "
               "connections closed)\n",
               (unsigned long long)delivered, (unsigned long long)expected,
               (unsigned long long)(expected - delivered),
               (unsigned long long)repeats, g->closed);
        if (g->o.n_cpu_pids)
            printf("server CPU %.1f ms (utime+stime; per pid: %s ms): %.3f "
                   "ms per 1,000 deliveries (user %.3f, system %.3f)\n",
                   cpu_ms, each, cpu_ms * per_k, user_ms * per_k,
                   sys_ms * per_k);
    }
    free(last);
    free(first);
}

static int run(lg *g)
{
    lg_conn *ed = &g->conns[g->o.clients];
    ed->is_editor = true;
    lg_conn_open(g, ed, g->o.clients);
    lg_serve(g, g->o.timeout_ms, editor_ready);
    if (!g->fail[0] && ed->state != LG_READY)
        lg_fail(g, "the editor did not get in within %u ms", g->o.timeout_ms);
    if (!g->o.raw && !g->fail[0]) {
        /* the warm-up: the first compile of the source is not measured */
        if (send_eval(g, 0, 1) < 0)
            lg_fail(g, "cannot send the warm-up eval");
        lg_serve(g, g->o.timeout_ms, diag_came);
        if (!g->fail[0] && !g->diag_seq)
            lg_fail(g, "the relay refused the eval: %s",
                    g->diag_req ? g->diag_err : "no diag came");
        g->base_seq = g->diag_seq;
    }
    uint64_t t0 = lg_now_us();
    if (!g->fail[0])
        join_clients(g);
    uint64_t join_us = lg_now_us() - t0;
    lg_cpu cpu0[LG_MAX_PIDS] = {0}, cpu1[LG_MAX_PIDS] = {0};
    if (g->o.wait_go && !g->fail[0]) {
        char line[64];
        printf("joined\n");
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin))
            lg_fail(g, "--wait-go: stdin closed before the go");
    }
    cpu_all(g, cpu0);
    for (uint32_t r = 0; r < g->o.evals && !g->fail[0]; r++) {
        g_round = r;
        g->rounds[r].sent_us = lg_now_us();
        if (send_eval(g, r, (uint64_t)r + 2) < 0) {
            lg_fail(g, "cannot send eval %u: the editor's connection is gone",
                    r);
            break;
        }
        lg_serve(g, g->o.timeout_ms, round_done);
        if (!g->o.raw && g->diag_req == r + 2 && !g->diag_seq)
            lg_fail(g, "the relay refused eval %u: %s", r, g->diag_err);
        if (!round_done(g) && !g->o.quiet)
            fprintf(stderr, "loadgen: round %u: %u of %u deliveries in %u ms\n",
                    r, g->rounds[r].count, g->ready, g->o.timeout_ms);
        lg_serve(g, g->o.gap_ms, never); /* repeats and stragglers */
    }
    cpu_all(g, cpu1);
    if (g->o.wait_go) {
        printf("rounds done\n");
        fflush(stdout);
    }
    if (g->fail[0]) {
        fprintf(stderr, "loadgen: %s\n", g->fail);
        return 1;
    }
    report(g, cpu0, cpu1, join_us);
    uint64_t got = 0;
    for (uint32_t r = 0; r < g->o.evals; r++)
        got += g->rounds[r].count;
    return got == (uint64_t)g->o.clients * g->o.evals ? 0 : 1;
}

static void usage(FILE *to)
{
    fprintf(to,
            "usage: loadgen --url URL --token T --editor-token T [options]\n"
            "       loadgen --raw --url ws://HOST:PORT [options]\n"
            "Joins N runtimes to one room of a relay, has an editor send "
            "evals one at a time, and\nreports eval -> last delivery p50/p99 "
            "and how many deliveries arrived.\n"
            "  --url URL            the relay (ws://HOST:PORT) or a runtime "
            "join link (room and token\n"
            "                       come from its #fragment); ws://A,ws://B "
            "or a link's &relays=\n"
            "                       spreads the runtimes over several "
            "relays\n"
            "  --room R             the room (default: the link's, else the "
            "token's)\n"
            "  --token T            a runtime token for the clients\n"
            "  --editor-token T     an editor token for the one that evals\n"
            "  --source FILE        the C source evaluated (default: a small "
            "function)\n"
            "  --clients N          runtimes to join (default 1000)\n"
            "  --evals N            measured evals (default 20)\n"
            "  --gap-ms N           pause after each round (default 50)\n"
            "  --timeout-ms N       for joining, and for each round (default "
            "60000)\n"
            "  --source-addrs N     spread clients over 127.0.0.1..N (more "
            "ephemeral ports)\n"
            "  --cpu-pid PID[,PID]  report these processes' CPU time over the "
            "measured rounds\n"
            "  --editor-url URL     where the editor connects (default: "
            "--url's first relay)\n"
            "  --raw                a plain broadcast server: no hello; the "
            "sender's message goes to all\n"
            "  --payload-bytes N    --raw: the size of each message (default "
            "1200)\n"
            "  --wait-go            print \"joined\", wait for a line on "
            "stdin, then the rounds, then\n"
            "                       \"rounds done\" (to trace just the "
            "rounds)\n"
            "  --json               one line of JSON instead of text\n"
            "  -q, --quiet          no progress on stderr\n"
            "Exit status: 0 every delivery arrived, 1 some did not or the run "
            "failed, 2 usage.\n");
}

static int parse_u32(const char *opt, const char *v, uint32_t min, uint32_t max,
                     uint32_t *out)
{
    char *end;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || x < min || x > max) {
        fprintf(stderr, "loadgen: %s %s: expected a number from %u to %u\n",
                opt, v, min, max);
        return -1;
    }
    *out = (uint32_t)x;
    return 0;
}

/* --cpu-pid P[,P...] */
static int parse_pids(lg_opts *o, const char *v)
{
    for (const char *p = v;; p++) {
        char *end;
        long pid = strtol(p, &end, 10);
        if (end == p || pid < 1 || (*end && *end != ',') ||
            o->n_cpu_pids == LG_MAX_PIDS) {
            fprintf(stderr,
                    "loadgen: --cpu-pid %s: expected up to %d process ids, "
                    "comma-separated\n",
                    v, LG_MAX_PIDS);
            return -1;
        }
        o->cpu_pids[o->n_cpu_pids++] = (int)pid;
        if (!*(p = end))
            return 0;
    }
}

static int parse_args(lg_opts *o, int argc, char **argv)
{
    const char *url = NULL, *room = NULL, *token = NULL, *ed = NULL;
    o->clients = 1000, o->evals = 20, o->gap_ms = 50, o->timeout_ms = 60000;
    o->src_addrs = 1, o->payload_bytes = 1200;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--raw")) {
            o->raw = true;
            continue;
        } else if (!strcmp(a, "--json")) {
            o->json = true;
            continue;
        } else if (!strcmp(a, "--wait-go")) {
            o->wait_go = true;
            continue;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o->quiet = true;
            continue;
        } else if (!v) {
            fprintf(stderr,
                    "loadgen: %s: unknown option or missing value "
                    "(see --help)\n",
                    a);
            return -1;
        }
        i++;
        if (!strcmp(a, "--url"))
            url = v;
        else if (!strcmp(a, "--room"))
            room = v;
        else if (!strcmp(a, "--token"))
            token = v;
        else if (!strcmp(a, "--editor-token"))
            ed = v;
        else if (!strcmp(a, "--source"))
            o->source_file = v;
        else if (!strcmp(a, "--clients"))
            rc = parse_u32(a, v, 1, 1000000, &o->clients);
        else if (!strcmp(a, "--evals"))
            rc = parse_u32(a, v, 1, 100000, &o->evals);
        else if (!strcmp(a, "--gap-ms"))
            rc = parse_u32(a, v, 0, 600000, &o->gap_ms);
        else if (!strcmp(a, "--timeout-ms"))
            rc = parse_u32(a, v, 1, 3600000, &o->timeout_ms);
        else if (!strcmp(a, "--source-addrs"))
            rc = parse_u32(a, v, 1, 254, &o->src_addrs);
        else if (!strcmp(a, "--payload-bytes"))
            rc = parse_u32(a, v, 4, PB_MAX_FRAME_BYTES, &o->payload_bytes);
        else if (!strcmp(a, "--cpu-pid"))
            rc = parse_pids(o, v);
        else if (!strcmp(a, "--editor-url"))
            o->editor_url = v;
        else {
            fprintf(stderr, "loadgen: %s: unknown option (see --help)\n", a);
            return -1;
        }
        if (rc < 0)
            return -1;
    }
    pb_errmsg why;
    if (!url) {
        fprintf(stderr, "loadgen: --url is required (see --help)\n");
        return -1;
    }
    if (token)
        snprintf(o->target.token, sizeof o->target.token, "%s", token);
    if (pbc_parse_url(url, &o->target, &why)) {
        fprintf(stderr, "loadgen: --url %s\n", why.text);
        return -1;
    }
    if (room)
        snprintf(o->target.room, sizeof o->target.room, "%s", room);
    if (ed)
        snprintf(o->editor_token, sizeof o->editor_token, "%s", ed);
    if (!o->raw && (!o->target.token[0] || !o->editor_token[0])) {
        fprintf(stderr, "loadgen: a relay needs --token (runtime, or a "
                        "runtime link as --url) and --editor-token\n");
        return -1;
    }
    if (o->target.tls) {
        fprintf(stderr,
                "loadgen: %s: TLS is not supported; measure a "
                "relay on ws://\n",
                url);
        return -1;
    }
    return 0;
}

static char *read_source(const char *path)
{
    static const char dflt[] =
        "#include <patchbay.h>\n/* loadgen: a small patch, compiled once "
        "and then a compile-cache hit */\ndouble loadgen(double v) { return "
        "v * 2 + 1; }\n";
    if (!path)
        return strdup(dflt);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "loadgen: --source %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *s = calloc(1, PB_MAX_SOURCE_BYTES + 1);
    size_t n = s ? fread(s, 1, PB_MAX_SOURCE_BYTES + 1, f) : 0;
    fclose(f);
    if (s && n > PB_MAX_SOURCE_BYTES) {
        fprintf(stderr, "loadgen: --source %s: longer than %u bytes\n", path,
                PB_MAX_SOURCE_BYTES);
        free(s);
        return NULL;
    }
    return s;
}

static int resolve(const pbc_relay *r, struct sockaddr_in *out)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM},
                    *ai = NULL;
    int gai = getaddrinfo(r->host, NULL, &hints, &ai);
    if (gai) {
        fprintf(stderr, "loadgen: %s: %s\n", r->host, gai_strerror(gai));
        return -1;
    }
    *out = *(struct sockaddr_in *)ai->ai_addr;
    out->sin_port = htons((uint16_t)r->port);
    freeaddrinfo(ai);
    return 0;
}

int main(int argc, char **argv)
{
    lg g = {.ep = -1};
    if (parse_args(&g.o, argc, argv) < 0)
        return 2;
    g.n_dst = pbc_target_relays(&g.o.target);
    for (unsigned k = 0; k <= g.n_dst; k++) {
        pbc_relay r = pbc_target_relay(&g.o.target, k < g.n_dst ? k : 0);
        if (k == g.n_dst && g.o.editor_url) {
            pbc_target e = {0};
            pb_errmsg why;
            if (pbc_parse_url(g.o.editor_url, &e, &why)) {
                fprintf(stderr, "loadgen: --editor-url %s\n", why.text);
                return 2;
            }
            r = pbc_target_relay(&e, 0);
        }
        if (resolve(&r, &g.dst[k]) < 0)
            return 2;
    }
    /* one descriptor per client, and some to spare */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
        rl.rlim_cur < (rlim_t)g.o.clients + 16) {
        fprintf(stderr,
                "loadgen: --clients %u needs %u file descriptors; "
                "the limit is %llu (ulimit -n)\n",
                g.o.clients, g.o.clients + 16, (unsigned long long)rl.rlim_cur);
        return 2;
    }
    srandom((unsigned)lg_now_us());
    int rc = 1;
    g.source = read_source(g.o.source_file);
    g.conns = calloc((size_t)g.o.clients + 1, sizeof *g.conns);
    g.rounds = calloc(g.o.evals, sizeof *g.rounds);
    g.ep = epoll_create1(EPOLL_CLOEXEC);
    if (!g.source || !g.conns || !g.rounds || g.ep < 0)
        goto done;
    for (uint32_t i = 0; i <= g.o.clients; i++)
        g.conns[i].fd = -1;
    rc = run(&g);
done:
    if (g.conns)
        for (uint32_t i = 0; i <= g.o.clients; i++) {
            if (g.conns[i].fd >= 0)
                close(g.conns[i].fd);
            free(g.conns[i].in);
            free(g.conns[i].out);
        }
    if (g.ep >= 0)
        close(g.ep);
    free(g.conns);
    free(g.rounds);
    free(g.source);
    return rc;
}
