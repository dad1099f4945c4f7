/* cmd_runtime.c — `patchbay runtime LINK`: a headless runtime joins a room.
 * The runtime is the wasm main module with its JS host, run by node; this
 * command finds the node runtime installed next to this binary
 * (<build>/runtime/node/patchbay-runtime.mjs, or $PB_RUNTIME_DIR) and
 * hands over to it with the same arguments. */
#include "cli.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: patchbay runtime LINK [--label L] [--width W --height H] "
        "[--name N] [--ca FILE] [-q]\n"
        "\n"
        "Joins the room of LINK (a runtime link printed by `patchbay "
        "token --role\nruntime`) as a headless runtime: verifies every "
        "patch with the relay key\nfrom the link, loads it and swaps it "
        "in at its apply time; prints one line\nper patch and the "
        "patches' output. It answers the room's test runs\n(patchbay "
        "test) and, with a canvas, its snapshots. Runs node with the "
        "runtime\ninstalled next to this binary (<build>/runtime, or "
        "$PB_RUNTIME_DIR).\n"
        "\n"
        "  --label L    the device's name in test matrices and snapshot "
        "files\n"
        "               (default: &label= in the link, else the token's "
        "name)\n"
        "  --width W --height H  a canvas of W x H pixels (pb_frame draws "
        "on it for\n"
        "               snapshots, pb_screen() returns it): CI can stand up "
        "devices\n"
        "               of any size\n"
        "  --watchdog-ms N  restart the runtime without a patch that has "
        "not returned\n"
        "               after N ms (default 2000)\n"
        "  --name N     a name for this runtime, shown to the room's "
        "editors\n"
        "  --ca FILE    for an https:// link (wss): trust this PEM CA "
        "(default\n"
        "               $PATCHBAY_CA, else the system's CAs)\n"
        "  -q, --quiet  print only rejections, traps and connection "
        "failures\n"
        "  -h, --help   this help\n");
}

/* The installed runtime folder: $PB_RUNTIME_DIR, else ../runtime from the
 * folder of this executable. */
static int runtime_dir(char *out, size_t cap)
{
    const char *env = getenv("PB_RUNTIME_DIR");
    if (env && *env) {
        snprintf(out, cap, "%s", env);
        return 0;
    }
    char exe[PATH_MAX];
    if (!cli_self_exe(exe, sizeof exe))
        return -1;
    snprintf(out, cap, "%s/../runtime", dirname(exe));
    return 0;
}

int cmd_runtime(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    char dir[PATH_MAX], script[PATH_MAX + 64];
    if (runtime_dir(dir, sizeof dir)) {
        fprintf(stderr, "patchbay runtime: cannot find this program's folder; "
                        "set PB_RUNTIME_DIR\n");
        return 1;
    }
    snprintf(script, sizeof script, "%s/node/patchbay-runtime.mjs", dir);
    if (access(script, R_OK)) {
        fprintf(stderr,
                "patchbay runtime: %s: %s (build the pb_runtime_node target, "
                "or set PB_RUNTIME_DIR)\n",
                script, strerror(errno));
        return 1;
    }
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (!args) {
        fprintf(stderr, "patchbay runtime: out of memory\n");
        return 1;
    }
    args[0] = "node";
    args[1] = script;
    for (int i = 1; i < argc; i++)
        args[i + 1] = argv[i];
    execvp("node", args);
    fprintf(stderr,
            "patchbay runtime: cannot run node: %s (apt-get install "
            "nodejs)\n",
            strerror(errno));
    free(args);
    return 1;
}
