/* cmd_cc_server.c — `patchbay cc-server`: the compile server (cc.h,
 * cc_server_run) that `serve` starts and supervises through cc_client.
 * Jobs arrive on stdin, results leave on stdout. */
#include "cc.h"
#include "cli.h"

#include <string.h>

int cmd_cc_server(int argc, char **argv)
{
    cc_desc desc = {0};
    pb_errmsg why = {{0}};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: patchbay cc-server [--backend warm|process] "
                   "[--timeout-ms N] [--unconfined]\n\n"
                   "The compile server: reads length-prefixed msgpack jobs on "
                   "stdin and writes\nresults on stdout, one at a time. "
                   "Without --backend it uses the warm backend,\nor the "
                   "process backend (with one line on stderr saying why) if "
                   "the warm one\ncannot load. "
                   "`patchbay serve` starts and supervises it;\nthere is no "
                   "need to run it by hand.\n"
                   "Once loaded it confines itself (docs/SECURITY.md § The "
                   "compile server);\n--unconfined skips that, to measure "
                   "what it costs or to debug.\n");
            return 0;
        } else if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
            if (cc_backend_parse(argv[++i], &desc.backend, &why))
                return cli_usage_error("cc-server", "--backend: %s", why.text);
        } else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc) {
            if (cli_parse_u32(argv[i], argv[i + 1], 1, 600000, &desc.timeout_ms,
                              &why))
                return cli_usage_error("cc-server", "%s", why.text);
            i++;
        } else if (!strcmp(argv[i], "--unconfined")) {
            desc.unconfined = true;
        } else {
            return cli_bad_option("cc-server", argv[i]);
        }
    }
    return cc_server_run(0, 1, &desc);
}
