/* relay.h — the relay (`patchbay serve`) and the pieces the CLI shares with
 * it: the relay's keys, room tokens and the SQLite history.
 *
 * Errors: functions returning pb_err give PB_ERR_OK (0) or an error code
 * with a message naming the input (file, room, token field) in *why. */
#ifndef PB_RELAY_H
#define PB_RELAY_H

#include "pb_protocol.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- keys (key.c) -------------------------------------------------------- */

#define RELAY_TOKEN_KEY_BYTES 32u

/* The relay's ed25519 signing key and the secret that MACs its tokens,
 * kept in the data directory: relay.key (the 32-byte ed25519 seed) and
 * token.key (32 bytes), both mode 0600, relay.pub (hex, for people). */
typedef struct relay_keys {
    uint8_t pk[PB_PUBLICKEY_BYTES];
    uint8_t sk[PB_SECRETKEY_BYTES];
    uint8_t token_key[RELAY_TOKEN_KEY_BYTES];
    char pk_hex[2 * PB_PUBLICKEY_BYTES + 1];
} relay_keys;

/* Opens the keys in dir, creating dir (0700) and the keys if they do not
 * exist yet (*created set when it made them; may be NULL). Refuses a secret
 * file that others can read or that has the wrong size, naming the file. */
pb_err relay_keys_open(const char *dir, relay_keys *k, bool *created,
                       pb_errmsg *why) PB_WUR;
/* An edge's keys: the signer's dir/token.key (mode 0600) and
 * dir/relay.pub (its public key, pinned: the edge checks patches and heads
 * with it, never with a key Redis gives), both copied there; no signing
 * key. A message naming the missing or bad file otherwise. */
pb_err relay_keys_open_edge(const char *dir, relay_keys *k,
                            pb_errmsg *why) PB_WUR;
/* Wipes the secrets from memory. */
void relay_keys_close(relay_keys *k);

/* One relay per data directory (two would fork the chains), and nothing
 * that writes its history behind a running relay's back (`patchbay
 * import`): takes DIR/relay.lock (flock), held until the returned fd is
 * closed or the process ends. -1 with a message if another process holds
 * it or it cannot be opened. */
int relay_data_lock(const char *dir, pb_errmsg *why);

/* ---- tokens (token.c) ---------------------------------------------------- */

/* A token says who may join which room as what until when:
 *   pb1.<base64url(msgpack [room, role, name, expires_s])>.<base64url(mac)>
 * where mac = crypto_auth (HMAC-SHA-512-256) of the text before the last
 * dot, keyed with the relay's token key. */
typedef struct relay_token {
    char room[PB_MAX_NAME_BYTES + 1];
    pb_role role;
    char name[PB_MAX_NAME_BYTES + 1];
    uint64_t expires_s; /* Unix time */
} relay_token;

#define RELAY_TOKEN_MAX_TTL_S (366u * 24u * 3600u)

/* Whether s may be a token's room or user name: 1 to PB_MAX_NAME_BYTES
 * bytes, no control characters. */
bool relay_name_is_valid(const char *s);
/* Writes the token for t into out (PB_MAX_TOKEN_BYTES + 1 bytes). */
pb_err relay_token_make(const relay_keys *k, const relay_token *t, char *out,
                        size_t out_len, pb_errmsg *why) PB_WUR;
/* Checks a token's form, MAC (constant time), role and expiry against
 * now_s: PB_ERR_AUTH_MALFORMED, _BAD_MAC, _UNKNOWN_ROLE or _EXPIRED. */
pb_err relay_token_verify(const relay_keys *k, const char *tok, size_t len,
                          uint64_t now_s, relay_token *out,
                          pb_errmsg *why) PB_WUR;

/* A token's id: the first 8 bytes of the hash of its text, as 16 hex
 * digits; `patchbay token` prints it, `patchbay token revoke --id` takes
 * it. */
#define RELAY_TOKEN_ID_CHARS 16
void relay_token_id(const char *tok, size_t len,
                    char out[RELAY_TOKEN_ID_CHARS + 1]);

/* ---- history (history.c) ------------------------------------------------- */

typedef struct relay_history relay_history;

/* One recorded patch. Strings and bytes are borrowed. */
typedef struct relay_patch_row {
    uint64_t seq;
    uint8_t hash[PB_HASH_BYTES]; /* of the statement */
    const uint8_t *stmt;
    size_t stmt_len;
    const uint8_t *sig; /* PB_SIG_BYTES */
    const uint8_t *module;
    size_t module_len;
    const char *source;
    size_t source_len;
    const char *author;
    uint64_t created_us;
} relay_patch_row;

/* One var of a room as the compiler needs it: its signature, its C
 * declaration and the vars its body calls. */
typedef struct relay_var_row {
    const char *name;
    const char *sig;
    const char *decl;
    const char *const *deps;
    uint32_t n_deps;
    uint64_t seq; /* the patch that defines it now */
} relay_var_row;

/* Opens (creating) the history database at path: WAL journal,
 * synchronous=FULL, so an appended patch survives a crash or power loss
 * once relay_history_append returns. One handle per thread. */
relay_history *relay_history_open_sqlite(const char *path, pb_errmsg *why);
/* Opens an existing database read-only (patchbay log, verify). */
relay_history *relay_history_open_readonly(const char *path, pb_errmsg *why);
void relay_history_close(relay_history *h);

/* The room's chain head: seq 0 and a zero hash for an empty room. */
pb_err relay_history_head(relay_history *h, const char *room, uint64_t *seq,
                          uint8_t hash[PB_HASH_BYTES], pb_errmsg *why) PB_WUR;
/* Appends patch p (which must be head + 1) and makes it the definition of
 * each of its n vars, in one transaction. PB_ERR_CHAIN_REPLAY / _GAP if
 * p->seq is not head + 1. */
/* The room's epoch: µs since the Unix epoch at which this history began
 * it (docs/PROTOCOL.md § The signed head). A room met for the first time
 * gets now_us (0 if it already has patches from before epochs), recorded
 * before it is returned; a read-only history records nothing and says 0
 * for a room it has no epoch for. */
pb_err relay_history_epoch(relay_history *h, const char *room, uint64_t now_us,
                           uint64_t *epoch, pb_errmsg *why);
pb_err relay_history_append(relay_history *h, const char *room,
                            const relay_patch_row *p, const relay_var_row *vars,
                            uint32_t n, pb_errmsg *why) PB_WUR;
/* Writes a whole history into an empty room in one transaction (`patchbay
 * import`): next fills the patch of seq 1, 2, ... and its vars (borrowed
 * until the next call) and returns 1, or 0 at the end, or -1 to give up
 * (with a message in why). Nothing is written unless every patch is:
 * PB_ERR_CHAIN_REPLAY if the room has patches, PB_ERR_CHAIN_GAP for a seq
 * out of order, PB_ERR_INTERNAL when next gave up. */
typedef int (*relay_import_fn)(void *ctx, relay_patch_row *p,
                               const relay_var_row **vars, uint32_t *n,
                               pb_errmsg *why);
pb_err relay_history_import(relay_history *h, const char *room,
                            relay_import_fn next, void *ctx,
                            pb_errmsg *why) PB_WUR;
/* Calls fn for every var of the room, by name. */
pb_err relay_history_vars(relay_history *h, const char *room,
                          void (*fn)(void *ctx, const relay_var_row *v),
                          void *ctx, pb_errmsg *why) PB_WUR;

/* Calls fn for each patch of the room with from <= seq <= to, in seq order.
 * With state_only, the module and source are left out (NULL) of patches
 * that no longer define any var. fn returns nonzero to stop early. */
typedef int (*relay_patch_fn)(void *ctx, const relay_patch_row *p);
pb_err relay_history_patches(relay_history *h, const char *room, uint64_t from,
                             uint64_t to, bool state_only, relay_patch_fn fn,
                             void *ctx, pb_errmsg *why) PB_WUR;
/* Calls fn for every room that has patches or settings. */
pb_err relay_history_rooms(relay_history *h,
                           void (*fn)(void *ctx, const char *room,
                                      uint64_t head_seq),
                           void *ctx, pb_errmsg *why) PB_WUR;

/* Room settings (tempo, quantum, lead); zero when never set. */
pb_err relay_history_get_settings(relay_history *h, const char *room,
                                  pb_room *out, pb_errmsg *why) PB_WUR;
pb_err relay_history_set_settings(relay_history *h, const char *room,
                                  const pb_room *r, pb_errmsg *why) PB_WUR;

/* Checks a room's recorded chain from seq 1: every statement decodes, is
 * signed by key, names the right room, seq and previous hash; modules and
 * sources match their hashes. *n_checked is how many patches verified
 * before the first failure (all of them when it returns PB_OK); the
 * failure comes back with its seq in why. */
pb_err relay_history_verify(relay_history *h, const char *room,
                            const uint8_t key[PB_PUBLICKEY_BYTES],
                            uint64_t *n_checked, pb_errmsg *why) PB_WUR;

/* How well the runtimes kept time with one patch (measured by
 * lockstep.c; `patchbay log` shows them). */
typedef struct relay_commit_stats {
    uint64_t seq;
    uint32_t runtimes;   /* committed it live (not by catch-up) */
    uint64_t apply_us;   /* the statement's apply time */
    uint64_t spread_us;  /* last commit minus first, room time */
    int64_t max_late_us; /* the latest runtime's commit minus apply_us */
    uint64_t need_us;    /* creation to the slowest prepared ack */
} relay_commit_stats;

/* Records stats (replacing earlier ones of the same patches), in one
 * transaction. */
pb_err relay_history_put_commit_stats(relay_history *h, const char *room,
                                      const relay_commit_stats *st, uint32_t n,
                                      pb_errmsg *why) PB_WUR;
/* Calls fn for the recorded stats of the room's patches from..to, in seq
 * order (none for a database from before they were recorded). */
pb_err relay_history_commit_stats(relay_history *h, const char *room,
                                  uint64_t from, uint64_t to,
                                  void (*fn)(void *ctx,
                                             const relay_commit_stats *st),
                                  void *ctx, pb_errmsg *why) PB_WUR;

/* ---- shared buffers in the history (bufstore.c) -------------------------
 * A room's buffers and each one's stored Yjs updates, as opaque bytes
 * (docs/PROTOCOL.md § Shared buffers). Writes are on disk when they
 * return (synchronous=FULL). */

typedef struct relay_buffer_row {
    uint64_t id;      /* the room's, from 1, never reused */
    const char *name; /* borrowed */
    pb_lang lang;
    bool open;          /* closed buffers keep their updates */
    uint64_t base_useq; /* the last compaction (0: none) */
    uint64_t last_useq; /* the last stored update (0: none) */
    uint64_t bytes;     /* of stored updates */
    uint32_t n_updates; /* rows stored (a compaction's snapshot is one) */
} relay_buffer_row;

/* Calls fn for every buffer of the room, open or closed, by id. */
pb_err relay_history_buffers(relay_history *h, const char *room,
                             void (*fn)(void *ctx, const relay_buffer_row *b),
                             void *ctx, pb_errmsg *why) PB_WUR;
/* Records a buffer (id, name, lang, open), new or changed. */
pb_err relay_history_buffer_set(relay_history *h, const char *room,
                                const relay_buffer_row *b,
                                pb_errmsg *why) PB_WUR;
/* Stores one update at useq (the buffer's last + 1, which the caller
 * keeps; a useq already stored is an error). */
pb_err relay_history_buffer_append(relay_history *h, const char *room,
                                   uint64_t buffer, uint64_t useq,
                                   const uint8_t *data, size_t len,
                                   pb_errmsg *why) PB_WUR;
/* Replaces the updates up to useq by one (data, a snapshot of them), in
 * one transaction. */
pb_err relay_history_buffer_compact(relay_history *h, const char *room,
                                    uint64_t buffer, uint64_t useq,
                                    const uint8_t *data, size_t len,
                                    pb_errmsg *why) PB_WUR;
/* Calls fn for each stored update of the buffer in useq order (data lasts
 * until fn returns); fn returns nonzero to stop. */
typedef int (*relay_update_fn)(void *ctx, uint64_t useq, const uint8_t *data,
                               size_t len);
pb_err relay_history_buffer_updates(relay_history *h, const char *room,
                                    uint64_t buffer, relay_update_fn fn,
                                    void *ctx, pb_errmsg *why) PB_WUR;
/* Revocations (`patchbay token revoke`): every token of name in room, or
 * the one token whose id is token_id (the others NULL). A running relay
 * reads new ones every second and closes the sessions they name. */
pb_err relay_history_revoke(relay_history *h, const char *room,
                            const char *name, const char *token_id,
                            uint64_t at_s, pb_errmsg *why) PB_WUR;
typedef void (*relay_revoked_fn)(void *ctx, const char *room, const char *name,
                                 const char *token_id);
/* Calls fn for each revocation recorded after *after, which it moves on. */
pb_err relay_history_revocations(relay_history *h, uint64_t *after,
                                 relay_revoked_fn fn, void *ctx,
                                 pb_errmsg *why) PB_WUR;

/* ---- the server (server.c) ----------------------------------------------- */

#define RELAY_DEFAULT_PORT 7888
#define RELAY_PORT_ANY     (-1) /* let the system choose (tests) */

/* Configuration; zero means the default given for each field. */
typedef struct relay_config {
    int port;                       /* 7888; RELAY_PORT_ANY for any free port */
    const char *bind;               /* "127.0.0.1" */
    const char *data_dir;           /* "patchbay-data" */
    const char *web_dir;            /* the build's web/ */
    uint32_t max_clients_per_room;  /* 256 */
    uint32_t evals_per_second;      /* per token name in its room, 10 */
    uint32_t room_evals_per_second; /* per room, 30 (burst: twice that) */
    uint32_t max_evals_per_name;    /* waiting or compiling, per token name
                                       in its room, 8 */
    uint32_t max_evals_per_room;    /* waiting or compiling, per room, 32 */
    uint32_t max_evals;             /* waiting or compiling, in all, 256 */
    uint32_t bytes_per_second;      /* per client, 4 MiB */
    uint32_t max_queue_bytes;       /* per client send queue, 32 MiB */
    uint32_t hello_timeout_ms;      /* 5000 */
    uint32_t max_connections;       /* open sockets, 4096 */
    uint32_t max_connections_per_ip;     /* from one address (an IPv6 /64)
                                            other than the relay's own, 256 */
    uint32_t connects_per_second_per_ip; /* new sockets from one such
                                            address, 20 (burst 5 s' worth) */
    /* Browser origins besides the relay's own pages that may open a
     * WebSocket ("https://jam.example.org"), NULL-terminated; NULL: none.
     * docs/SECURITY.md § Strangers. */
    const char *const *allow_origins;
    uint32_t max_catchups; /* history streams at once, 16 (others wait) */
    /* Shared buffers (docs/PROTOCOL.md § Shared buffers). */
    uint32_t max_buffer_bytes; /* stored per buffer, PB_MAX_BUFFER_BYTES
                                  (also the most) */
    uint32_t max_buffers;      /* open per room, 16 (most PB_MAX_BUFFERS) */
    uint32_t buffer_writes_per_second; /* per token name in a room: updates,
                                          compactions, ops; 50, burst 4x */
    uint64_t lead_us;                  /* apply time after acceptance, 50 ms */
    /* The compile server's command line (required), e.g. {"/usr/bin/
     * patchbay", "cc-server", "--backend", "warm", NULL}: a program that
     * serves compile jobs on its stdin and stdout (cc_server_run, cc.h);
     * "--timeout-ms N" is appended. relay_new copies it. */
    const char *const *compiler_argv;
    uint32_t compile_timeout_ms; /* per eval, the compiler's default (2 s) */
    /* What an eval may take on the shared compile worker before it is
     * stopped and compiled again on the second one with the whole limit
     * (docs/SECURITY.md § Limits); 0: 300 ms, or 4 times what evals took
     * there lately if more, at most half the limit. */
    uint32_t compile_budget_ms;
    bool quiet;                  /* no per-connection/per-patch log lines */
    /* PEM certificate (chain) and private key files: serve https and wss
     * on the port instead of http and ws (both or neither; NULL: plain). */
    const char *tls_cert;
    const char *tls_key;
    /* More than one relay (docs/ARCHITECTURE.md § More than one relay):
     * redis://HOST:PORT to publish to (a signer), or with edge, to serve
     * from (an edge: no signing key, no compile server; its data directory
     * holds the signer's token.key and its cache). NULL: one relay. */
    const char *redis_url;
    /* Redis's password (AUTH), instead of one in the URL; NULL: none or
     * the URL's. */
    const char *redis_password;
    bool edge;
} relay_config;

/* One relay: its lws context, keys, history and evaluator thread. Nothing
 * is process-wide, so a process may run several (each on its own port and
 * data directory, each served by one thread). */
typedef struct relay_server relay_server;

/* What a started relay tells its caller. */
typedef struct relay_info {
    int port;                                 /* the port it listens on */
    char key_hex[2 * PB_PUBLICKEY_BYTES + 1]; /* its public key */
    bool made_keys; /* it created the data directory's keys */
} relay_info;

/* Opens the data directory (creating its keys on first start, locking it
 * against a second relay), the history, the listening socket and the
 * compile server. NULL with a message naming what failed. info (may be
 * NULL) gets the port and key. Free with relay_free. */
relay_server *relay_new(const relay_config *cfg, relay_info *info,
                        pb_errmsg *why);
/* Serves until relay_stop, then shuts down cleanly: answers the evals in
 * flight, flushes what is queued, records the lockstep figures. Call from
 * one thread; PB_OK, or PB_ERR_INTERNAL if the event loop failed. */
pb_err relay_serve(relay_server *r, pb_errmsg *why) PB_WUR;
/* Asks relay_serve to return. Safe from any thread and from a signal
 * handler. */
void relay_stop(relay_server *r);
/* Closes everything (after relay_serve returned, or instead of it). NULL
 * is allowed. */
void relay_free(relay_server *r);

#endif
