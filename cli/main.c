/* main.c — the patchbay command line: parses the subcommand and its
 * options and calls into the components. No business logic lives here. */
#include "cli.h"
#include "pb_protocol.h"

#include <libwebsockets.h>
#include <msgpack.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

typedef struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} command;

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const command commands[] = {
    {"serve", "run the relay (web pages and the patchbay protocol)", cmd_serve},
    {"token", "make a token and links to join a room", cmd_token},
    {"eval", "evaluate a file in a room (diagnostics, then runtime acks)",
     cmd_eval},
    {"watch", "evaluate files again whenever they are saved", cmd_watch},
    {"room", "show or set a room's tempo, quantum and lead", cmd_room},
    {"runtime", "join a room as a headless runtime (node)", cmd_runtime},
    {"devices", "list a room's devices: what they run on, how they are",
     cmd_devices},
    {"test", "run the room's tests on every device: a device x test matrix",
     cmd_test},
    {"logs", "the devices' output, traps and timings, tagged by device",
     cmd_logs},
    {"snapshot", "a PNG of the same frame from every device with a canvas",
     cmd_snapshot},
    {"nrepl", "an nREPL server in a room, for CIDER, Calva, Conjure",
     cmd_nrepl},
    {"log", "list a room's recorded history", cmd_log},
    {"verify", "check a history's signatures and chain (a room or a file)",
     cmd_verify},
    {"export", "a room's history as one HTML page that plays it, or a bundle",
     cmd_export},
    {"import", "a bundle as a new room of this relay (verified first)",
     cmd_import},
    {"replay", "send a recorded session again, at any speed, into a room",
     cmd_replay},
    {"keygen", "create the relay's keys (serve does it too)", cmd_keygen},
    {"compile",
     "compile a C or Lisp patch to a side module (FILE -> FILE.wasm)",
     cmd_compile},
    {"cc-server", "the compile server (started by serve; not for humans)",
     cmd_cc_server},
    {"version", "print the versions of patchbay and its libraries",
     cmd_version},
    {"help", "show this help, or a command's help", cmd_help},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out,
            "patchbay %s — a live-coding relay: editors send code, every "
            "runtime in the\nroom swaps it in at the same moment.\n\n"
            "usage: patchbay COMMAND [options]   (patchbay COMMAND --help)\n\n"
            "commands:\n",
            PB_VERSION_STRING);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

static int wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
    return 0;
}

static int cmd_version(int argc, char **argv)
{
    if (wants_help(argc, argv)) {
        printf("usage: patchbay version\n\nPrints the version of patchbay, "
               "its protocol, and every linked library.\n");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "patchbay version: unexpected argument \"%s\"\n",
                argv[1]);
        return 2;
    }
    printf("patchbay %s (protocol %u, statement %u)\n", PB_VERSION_STRING,
           PB_PROTOCOL_VERSION, PB_STATEMENT_VERSION);
    printf("libsodium %s\n", sodium_version_string());
    printf("msgpack-c %s\n", msgpack_version());
    printf("libwebsockets %s\n", lws_get_library_version());
    printf("sqlite %s\n", sqlite3_libversion());
    return 0;
}

static int cmd_help(int argc, char **argv)
{
    if (argc > 1) {
        for (size_t i = 0; i < N_COMMANDS; i++) {
            if (!strcmp(argv[1], commands[i].name)) {
                char *args[] = {argv[1], "--help", NULL};
                return commands[i].run(2, args);
            }
        }
        fprintf(stderr, "patchbay help: unknown command \"%s\"\n", argv[1]);
        return 2;
    }
    usage(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version"))
        return cmd_version(1, argv + 1);
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr,
            "patchbay: unknown command \"%s\" (patchbay --help lists them)\n",
            argv[1]);
    return 2;
}
