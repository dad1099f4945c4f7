/* history.h — what the history commands share (export, import, replay,
 * verify): a room's recorded patches read from a relay's data directory or
 * from a bundle file, the check of a whole chain (every signature, link
 * and hash, with the first broken link named exactly), and a progress bar
 * for long work.
 *
 * Nothing here talks to a relay over a socket. Not thread-safe unless
 * said; every function that can fail returns a pb_err with a message
 * naming the input (file, offset, seq) in *why. */
#ifndef PB_CLI_HISTORY_H
#define PB_CLI_HISTORY_H

#include "pb_protocol.h"

#include <stdio.h>

struct relay_history;
struct relay_patch_row;

/* ---- progress (progress.c) ------------------------------------------------
 * A bar on stderr when it is a terminal, redrawn at most 10 times a
 * second; nothing otherwise (the commands print their own lines). */
typedef struct cli_progress {
    const char *what; /* "verifying", "importing", ... */
    uint64_t total;   /* 0: unknown */
    bool is_tty;
    double started, drawn; /* monotonic seconds */
    int width;             /* of the last line drawn (to clear it) */
} cli_progress;

void cli_progress_start(cli_progress *p, const char *what, uint64_t total);
void cli_progress_update(cli_progress *p, uint64_t done, const char *detail);
/* Clears the bar (a terminal gets its line back). */
void cli_progress_end(cli_progress *p);
/* Monotonic seconds. */
double cli_now_s(void);

/* ---- bundle files (bundle.c; docs/PROTOCOL.md § Bundle files) --------------
 * A `bundle` frame, then `count` `patch` frames from seq 1 in order. The
 * reader maps the file and checks its framing; cli_check checks what the
 * patches say. An exported HTML file carries a bundle too (in base64, in a
 * <script type="application/x-patchbay-bundle">), which the reader finds. */
typedef struct cli_check cli_check;

typedef struct cli_bundle {
    uint8_t *bytes; /* the bundle (the file, or decoded from the HTML) */
    size_t len;
    bool is_mapped;
    pb_frame head;   /* the bundle frame (head.bundle), pointing into bytes */
    size_t first;    /* offset of the first patch frame */
    size_t at;       /* offset of the next patch frame */
    uint64_t n_read; /* patch frames read so far */
    bool is_html;
} cli_bundle;

/* Opens path (a bundle, or an HTML file exported by patchbay) and decodes
 * its bundle frame; is_copied: read into memory of its own (what is
 * checked is then what is used, even if the file changes), else mapped.
 * PB_ERR_IO (cannot read), PB_ERR_TRUNCATED (empty), PB_ERR_MALFORMED (not
 * a bundle), or the frame's decode error; the message names the file.
 * Close with cli_bundle_close. */
pb_err cli_bundle_open(const char *path, bool is_copied, cli_bundle *b,
                       pb_errmsg *why) PB_WUR;
/* The next patch frame into *f (free it with pb_frame_free): PB_OK, or
 * PB_ERR_TRUNCATED when the file ends before `count` patches (naming the
 * last one read), PB_ERR_MALFORMED for bytes that are not a patch frame
 * (naming the offset) or bytes after the last one. *done is set (and f
 * zeroed) after `count` patches. */
pb_err cli_bundle_next(cli_bundle *b, pb_frame *f, bool *done,
                       pb_errmsg *why) PB_WUR;
/* Back to the first patch frame. */
void cli_bundle_rewind(cli_bundle *b);
void cli_bundle_close(cli_bundle *b);

/* Checks every patch of an open bundle from its first (cli_check, below,
 * with key), and that the last is the head the bundle announces: PB_OK and
 * *n_good, or the first broken link (*bad_seq, the message) — a damaged
 * part of the file counts as one, at the patch where it starts. */
pb_err cli_bundle_check(cli_bundle *b, const uint8_t key[PB_PUBLICKEY_BYTES],
                        unsigned threads, cli_progress *bar, uint64_t *n_good,
                        uint64_t *bad_seq, pb_errmsg *why) PB_WUR;

/* Writes a bundle: cli_bundle_write_head (with count and head_hash filled
 * in by the caller), then one cli_bundle_write_patch per patch. */
pb_err cli_bundle_write_head(FILE *out, const pb_bundle *head,
                             pb_errmsg *why) PB_WUR;
pb_err cli_bundle_write_patch(FILE *out, const pb_patch *p,
                              pb_errmsg *why) PB_WUR;

/* ---- the chain check (check.c) --------------------------------------------
 * Feed a room's patches in order from seq 1; every check of
 * docs/PROTOCOL.md § Verification and § Chain is made on each, the
 * signatures on worker threads. The first broken link — the lowest seq
 * with anything wrong, and the first thing wrong with it in the order of
 * § Verification — is told apart: a statement changed after signing, a
 * damaged signature over an intact statement, another key, a module or
 * source that does not match, a missing patch, two patches out of order, a
 * patch of another room or history. */
/* Online cores (at most 16): the default number of workers. */
unsigned cli_cores(void);
/* The chain of room in epoch (its seq 1 links to that epoch's genesis),
 * signed by key. threads: signature workers (0: one per core). progress
 * may be NULL. */
cli_check *cli_check_new(const char *room, uint64_t epoch,
                         const uint8_t key[PB_PUBLICKEY_BYTES],
                         unsigned threads, cli_progress *progress);
/* Checks the next patch (the n-th fed is expected to be seq n);
 * stored_hash (may be NULL) is the hash a relay's history keeps for it,
 * which must be its statement's. Returns false once a broken link is known
 * and feeding more cannot change the verdict (the caller may stop). */
bool cli_check_add(cli_check *c, const pb_patch *p, const uint8_t *stored_hash);
/* cli_check_add of a row of a relay's history, which *p views (valid as
 * long as the row) for a caller that uses the patch too. */
bool cli_check_row(cli_check *c, const struct relay_patch_row *row,
                   pb_patch *p);
/* Waits for the signature checks: PB_OK and the number checked, or the
 * first broken link (its seq in *bad_seq, the message in why, *n_good the
 * patches before it). */
pb_err cli_check_end(cli_check *c, uint64_t *n_good, uint64_t *bad_seq,
                     pb_errmsg *why) PB_WUR;
/* The hash of the last statement checked (valid after cli_check_end
 * returned PB_OK). */
const uint8_t *cli_check_head_hash(const cli_check *c);
void cli_check_free(cli_check *c);

/* ---- a relay's data directory (datadir.c) ----------------------------------
 */

/* The relay key of a data directory (DATA/relay.pub). */
pb_err cli_data_key(const char *data, uint8_t key[PB_PUBLICKEY_BYTES],
                    pb_errmsg *why) PB_WUR;
/* Parses a relay key: 64 hex digits (what --key takes). */
pb_err cli_parse_key(const char *hex, uint8_t key[PB_PUBLICKEY_BYTES],
                     pb_errmsg *why) PB_WUR;

/* Feeds every patch of room (seq 1 to the head) of an open history to c,
 * stopping early when c says nothing more can change its verdict. */
pb_err cli_check_room(cli_check *c, struct relay_history *h, const char *room,
                      pb_errmsg *why) PB_WUR;

#endif
