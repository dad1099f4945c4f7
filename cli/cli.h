/* cli.h — the subcommands of the patchbay binary, one file each, and the
 * helpers they share (common.c). Helpers that can fail return pb_err with
 * a message naming the option or file; commands return the exit status
 * (0 done, 1 failed, 2 usage, 3 relay or connection error, per command). */
#ifndef PB_CLI_H
#define PB_CLI_H

#include "cc.h"
#include "pb_protocol.h"
#include "pbc.h"

#include <stdio.h>

/* Larger input files are refused when read (sources have their own,
 * smaller limit in the compiler and the protocol). */
#define CLI_MAX_FILE_BYTES (64u << 20)

/* Prints "patchbay CMD: message" on stderr; returns 2 (usage). */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* cli_usage_error for an unknown option or one without its value. */
int cli_bad_option(const char *cmd, const char *arg);

/* The one number parser of the command line: text is a number from min to
 * max (whole: an integer), else PB_ERR_FIELD_RANGE naming opt and text. */
pb_err cli_parse_number(const char *opt, const char *text, double min,
                        double max, bool whole, double *out,
                        pb_errmsg *why) PB_WUR;
/* cli_parse_number for a whole number that fits uint32_t. */
pb_err cli_parse_u32(const char *opt, const char *text, uint32_t min,
                     uint32_t max, uint32_t *out, pb_errmsg *why) PB_WUR;

/* The one duration parser of the command line: a number (a fraction is
 * fine) and a unit, ms, s, m, h or d (a bare number is seconds), from
 * min_ms to max_ms; else PB_ERR_FIELD_RANGE naming opt, the range and
 * text. */
pb_err cli_parse_duration(const char *opt, const char *text, uint64_t min_ms,
                          uint64_t max_ms, uint64_t *ms, pb_errmsg *why) PB_WUR;

/* The relay's data directory: $PATCHBAY_DATA, else ./patchbay-data. */
const char *cli_data_dir(void);
/* DATA/relay.url: the address patchbay serve listens on (https://… with
 * TLS), written at each start; patchbay token's default for its links.
 * load: false if there is none. */
pb_err cli_relay_url_save(const char *dir, const char *url, pb_errmsg *why);
bool cli_relay_url_load(const char *dir, char *url, size_t cap);
/* Opens DATA/history.db read-only, saying on stderr (as patchbay CMD) why
 * it cannot. */
struct relay_history *cli_open_history(const char *cmd, const char *data);

/* ---- joining a room --------------------------------------------------- */

/* --link / --url / --token / --room, as every command that joins a room
 * takes them. NULL means not given. */
typedef struct cli_conn_opts {
    const char *link, *url, *token;
    const char *room; /* refuse unless the token is for this room */
    const char *ca;   /* PEM CA file to trust for wss (else $PATCHBAY_CA) */
} cli_conn_opts;

/* The help lines for those options. */
#define CLI_CONN_HELP                                                          \
    "  --link URL        a join link printed by `patchbay token`\n"            \
    "  --url URL         the relay (default $PATCHBAY_URL or "                 \
    "ws://127.0.0.1:7888)\n"                                                   \
    "  --token T         a token (default $PATCHBAY_TOKEN)\n"                  \
    "  --token-file F    the token from file F, out of `ps` (default "         \
    "$PATCHBAY_TOKEN_FILE)\n"                                                  \
    "  --room R          refuse unless the token is for room R\n"            \
    "  --ca FILE         for wss:// and https://: trust this PEM CA "         \
    "(default\n"                                                               \
    "                    $PATCHBAY_CA, else the system's CAs)\n"

/* The token in file path (--token-file, $PATCHBAY_TOKEN_FILE: a token on
 * the command line is in `ps` for every user of the machine), trailing
 * white space removed; NULL after saying why on stderr. */
const char *cli_token_file(const char *cmd, const char *path);
/* The one secret (a token, a password) in file path into out (cap bytes
 * with its NUL), trailing white space removed; false after saying why on
 * stderr, naming what it is. */
bool cli_secret_file(const char *cmd, const char *what, const char *path,
                     char *out, size_t cap);

/* If argv[*i] is one of those options, takes it and its value (moving *i)
 * and returns 1; 0 if it is not one; -1 (message printed as patchbay CMD)
 * if its value is missing. */
int cli_conn_option(const char *cmd, int argc, char **argv, int *i,
                    cli_conn_opts *o);

/* Where a command that talks to a relay connects, and as whom: the link,
 * else url or $PATCHBAY_URL (default ws://127.0.0.1:7888); the link's
 * token, else token or $PATCHBAY_TOKEN. With wss:// or https://, the CA
 * to trust: ca, else $PATCHBAY_CA (a PEM file), else the system's. */
pb_err cli_target(const cli_conn_opts *o, pbc_target *t, pb_errmsg *why) PB_WUR;

/* Connects to t and waits up to timeout_ms for the welcome (*w); refuses a
 * token for another room than room (NULL: the room of t's link, if any).
 * NULL, with the message printed as patchbay CMD, if it cannot (exit
 * status 3). */
pbc *cli_join(const char *cmd, const pbc_target *t, const char *room,
              uint32_t timeout_ms, pbc_welcome *w);

/* The language of a source file: forced if given, else Lisp for .cljc,
 * .clj and .jank, else C. */
pb_lang cli_lang_of(const char *file, pb_lang forced);

/* Reads a whole file ("-": stdin) into out, NUL-terminated (see
 * pb_buf_read_file; at most CLI_MAX_FILE_BYTES). */
pb_err cli_read_file(const char *path, pb_buf *out, pb_errmsg *why) PB_WUR;

/* This program's path (from /proc/self/exe); false if unknown or longer
 * than cap. */
bool cli_self_exe(char *out, size_t cap);

/* ---- room files (roomfile.c) ------------------------------------------ */

/* A room file's vars, for `patchbay compile --room`: what a relay's var
 * table would give the compiler. */
typedef struct cli_room {
    cc_var *vars;
    uint32_t n;
} cli_room;

/* Loads path; a file that does not exist is an empty room. On failure
 * (PB_ERR_IO, PB_ERR_NOMEM, PB_ERR_TOO_BIG) r is empty. Free with
 * cli_room_free. */
pb_err cli_room_load(const char *path, cli_room *r, pb_errmsg *why) PB_WUR;
/* Writes r's vars with res's definitions replacing (or added to) them,
 * through path.tmp and rename. */
pb_err cli_room_save(const char *path, const cli_room *r, const cc_result *res,
                     pb_errmsg *why) PB_WUR;
/* Frees r's vars and empties it; an empty room is fine. */
void cli_room_free(cli_room *r);

/* ---- the commands ------------------------------------------------------ */

int cmd_compile(int argc, char **argv);
int cmd_cc_server(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_room(int argc, char **argv);
int cmd_runtime(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_logs(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_nrepl(int argc, char **argv);

#endif
