/* cmd_nrepl.c — `patchbay nrepl LINK`: an nREPL server for the room of a
 * join link, so that CIDER, Calva, Conjure or any nREPL client evaluates
 * in the room (nrepl/nrepl.h). Parses the options and runs the server
 * until SIGINT or SIGTERM. */
#include "cli.h"
#include "nrepl.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: patchbay nrepl LINK [--port N] [--bind ADDR] "
            "[--port-file PATH]\n"
            "\n"
            "Starts an nREPL server (bencode over TCP) that is an editor of "
            "the room of\nLINK, a join link printed by `patchbay token` for "
            "an editor or owner (or\n--url/--token, $PATCHBAY_URL/"
            "$PATCHBAY_TOKEN). Connect CIDER, Calva, Conjure or\nany nREPL "
            "client to it: a definition becomes a patch of the room, an\n"
            "expression such as (ggg 10) runs once on every runtime and its "
            "value comes\nback; compile errors come back as nREPL errors at "
            "the file's line and\ncolumn. It writes the port to .nrepl-port "
            "in this folder, where editors look\nfor it, and removes the file "
            "when it stops (Ctrl-C).\n"
            "\n"
            "options:\n"
            "  --port N          the TCP port (default: a free one, "
            "printed)\n"
            "  --bind ADDR       the interface (default 127.0.0.1; a token "
            "is not asked of\n"
            "                    nREPL clients, so keep it on loopback)\n"
            "  --port-file PATH  where to write the port (default "
            ".nrepl-port; \"\" for none)\n"
            "  --url URL, --token T   the relay and token, without a link\n"
            "  --token-file F    the token from file F, out of `ps`\n"
            "  --eval-timeout-ms N    how long an expression waits for the "
            "runtimes'\n"
            "                    values (default 10000)\n"
            "  -q, --quiet       no log lines\n"
            "  -h, --help        this help\n"
            "\n"
            "exit status: 0 stopped by a signal, 2 usage, 3 the relay or the "
            "port\n");
}

static nrepl_server *running;

static void on_signal(int sig)
{
    (void)sig;
    if (running)
        nrepl_stop(running);
}

int cmd_nrepl(int argc, char **argv)
{
    nrepl_desc d = {0};
    cli_conn_opts conn = {0}; /* the link is an argument; no --room */
    pb_errmsg why = {{0}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--port") && has) {
            uint32_t port;
            if (cli_parse_u32(a, argv[++i], 0, 65535, &port, &why))
                return cli_usage_error("nrepl", "%s", why.text);
            d.port = (int)port;
        } else if (!strcmp(a, "--bind") && has) {
            d.bind = argv[++i];
        } else if (!strcmp(a, "--port-file") && has) {
            d.port_file = argv[++i];
        } else if (!strcmp(a, "--url") && has) {
            conn.url = argv[++i];
        } else if (!strcmp(a, "--token") && has) {
            conn.token = argv[++i];
        } else if (!strcmp(a, "--token-file") && has) {
            if (!(conn.token = cli_token_file("nrepl", argv[++i])))
                return 2;
        } else if (!strcmp(a, "--eval-timeout-ms") && has) {
            if (cli_parse_u32(a, argv[++i], 0, 3600000, &d.eval_timeout_ms,
                              &why))
                return cli_usage_error("nrepl", "%s", why.text);
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            d.quiet = true;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr,
                    "patchbay nrepl: unknown option \"%s\" (see "
                    "--help)\n",
                    a);
            return 2;
        } else if (!conn.link) {
            conn.link = a;
        } else {
            fprintf(stderr, "patchbay nrepl: one LINK only (\"%s\")\n", a);
            return 2;
        }
    }
    if (cli_target(&conn, &d.target, &why))
        return cli_usage_error("nrepl", "%s", why.text);
    nrepl_server *s = nrepl_new(&d, &why);
    if (!s) {
        fprintf(stderr, "patchbay nrepl: %s\n", why.text);
        return 3;
    }
    running = s;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    /* the line tools wait for (and people read); stopping works from now */
    printf("nREPL server started on port %d on host %s - nrepl://%s:%d\n",
           nrepl_port(s), d.bind ? d.bind : NREPL_DEFAULT_BIND,
           d.bind ? d.bind : NREPL_DEFAULT_BIND, nrepl_port(s));
    fflush(stdout);
    pb_err e = nrepl_serve(s, &why);
    running = NULL;
    nrepl_free(s);
    if (e) {
        fprintf(stderr, "patchbay nrepl: %s\n", why.text);
        return 3;
    }
    return 0;
}
