/* cli.h — the subcommands of the patchbay binary, one file each. */
#ifndef PB_CLI_H
#define PB_CLI_H

#include "pb_protocol.h"
#include "pbc.h"

#include <stdio.h>

/* The language of a source file: forced if given, else Lisp for .cljc,
 * .clj and .jank, else C. */
pb_lang cli_lang_of(const char *file, pb_lang forced);

/* Where a command that talks to a relay connects, and as whom: the --link,
 * else the --url or $PATCHBAY_URL (default ws://127.0.0.1:7888); the
 * link's token, else --token or $PATCHBAY_TOKEN. NULL means not given.
 * Returns 0, or 2 (usage) after saying what is wrong. */
int cli_target(const char *cmd, const char *link, const char *url,
               const char *token, pbc_target *t);

/* This program's path (from /proc/self/exe); false if unknown or longer
 * than cap. */
bool cli_self_exe(char *out, size_t cap);

int cmd_compile(int argc, char **argv);
int cmd_cc_server(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_room(int argc, char **argv);
int cmd_runtime(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_nrepl(int argc, char **argv);

#endif
