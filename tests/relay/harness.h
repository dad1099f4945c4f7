/* harness.h — what the relay's integration tests share: relays started on
 * free loopback ports (a `patchbay serve` child, or a relay in this very
 * process), real WebSocket clients (client/pbc.h) joined with
 * tokens minted from the relay's keys, and waits for frames that give up
 * after a deadline. Whatever a test started is stopped when the test ends,
 * even when a REQUIRE cut it short, and when the binary aborts. */
#ifndef PB_TEST_RELAY_HARNESS_H
#define PB_TEST_RELAY_HARNESS_H

#include "../check.h"
#include "relay.h"
#include "pbc.h"

#include <pthread.h>
#include <sys/types.h>

extern const char *patchbay_bin; /* argv[1]: the patchbay binary */
extern const char *backend;      /* argv[2]: warm or process */
extern char tmp_root[128];       /* data directories and logs */

/* Parses PATCHBAY BACKEND [TEST...], makes tmp_root, runs the tests and
 * stops whatever they left running; removes tmp_root when all passed. */
int harness_main(const pb_test *tests, size_t n, int argc, char **argv);
/* Stops every relay still running: after each test (pb_test_after_each),
 * at exit, and by harness_main. */
void harness_cleanup(void);

uint64_t now_ms(void);
void sleep_ms(unsigned ms);

/* ---- relays -------------------------------------------------------------- */

typedef struct relay {
    pid_t pid;         /* a `patchbay serve` child (serve_start) */
    relay_server *srv; /* or a relay in this process (inproc_start) */
    pthread_t thread;  /* that runs relay_serve */
    int port;
    char dir[256];
    char log[300];
    relay_keys keys; /* the relay's, for minting tokens */
} relay;

/* Starts `patchbay serve` with data directory tmp_root/name (kept if it
 * exists, for restarts) and extra options. */
bool serve_start(relay *r, const char *name, const char *const *extra);
/* Starts a relay in this process, served by a thread of its own, with cfg
 * (may be NULL; its port, data directory and quiet are set here, and its
 * compile server is `PATCHBAY cc-server --backend BACKEND` unless cfg
 * names one). */
bool inproc_start(relay *r, const char *name, const relay_config *cfg);
/* Stops either kind cleanly and waits: 0 for a clean stop, else -1 (or the
 * child's exit status). */
int serve_stop(relay *r);
void serve_kill9(relay *r);
/* Starts an edge (`serve --edge --redis URL`) with data directory
 * tmp_root/name holding signer's token.key and relay.pub; r->keys are the
 * signer's (for tokens and checking patches). */
bool edge_start(relay *r, const char *name, const relay *signer,
                const char *redis_url);

/* ---- Redis ------------------------------------------------------------------
 */

typedef struct redis_srv {
    pid_t pid;
    int port;
    char url[64]; /* redis://127.0.0.1:PORT */
} redis_srv;

/* Starts redis-server on port (0: a free loopback one), nothing saved,
 * and waits until it accepts connections; killed with whatever the test
 * started, however it ends. */
bool redis_start(redis_srv *rs, int port);
/* The same, asking clients for password (requirepass). */
bool redis_start_auth(redis_srv *rs, int port, const char *password);
void redis_kill9(redis_srv *rs);

/* ---- clients ------------------------------------------------------------- */

void make_token(relay *r, const char *room, pb_role role, const char *name,
                int64_t ttl_s, char *out);
void target(relay *r, const char *path_room, const char *token, pbc_target *t);
/* Joins room as role; NULL on failure (message printed). */
pbc *join(relay *r, const char *room, pb_role role, const char *name,
          pbc_welcome *w);
/* Sends and pushes the frame out now, so that waiting on another client
 * does not leave it queued here. */
int send_now(pbc *c, const pb_frame *f, pb_errmsg *why);
int send_raw_now(pbc *c, const uint8_t *p, size_t n, bool text, pb_errmsg *why);
bool send_eval(pbc *c, uint64_t req, const char *src);
/* Source for var aK whose body returns x + v; a few distinct sources, so
 * the compile cache keeps long histories quick. */
void var_source(char *out, size_t cap, unsigned k, unsigned v);
bool log_has(const relay *r, const char *what);

/* ---- waiting for frames -------------------------------------------------- */

typedef struct want {
    pb_type type;
    uint64_t req; /* for diag/error/history: match req */
    bool any_req;
    /* what was found */
    bool found;
    uint32_t code;
    bool fatal, ok;
    uint64_t seq;
    uint32_t n_errors;
    char text[512];
} want;

/* A pbc_frame_fn that fills a want. */
int match(void *ctx, const pb_frame *f);
/* Waits for the first frame of w->type (matching w->req); false on timeout
 * or close. */
bool wait_for(pbc *c, want *w, uint32_t ms);
bool expect_error(pbc *c, pb_err code, bool fatal);
/* The relay closes the connection (after a fatal error). */
bool expect_closed(pbc *c);
/* The connection ends with a fatal error code, seen either as an error
 * frame or as the WebSocket close reason. */
bool expect_fatal(pbc *c, pb_err code);
bool ping_ok(pbc *c);
/* Evaluates src and waits for its diag; returns the seq, 0 if refused. */
uint64_t eval(pbc *c, uint64_t req, const char *src, want *out);

/* ---- collecting patches -------------------------------------------------- */

typedef struct patch_log {
    uint8_t key[PB_PUBLICKEY_BYTES];
    pb_chain chain;
    uint32_t n_patches; /* live and history items, in order */
    uint32_t n_modules; /* items that carried a module */
    uint32_t n_history_frames;
    uint32_t n_heads; /* signed heads seen (each of the chain's epoch) */
    bool caught_up; /* a history frame with more = false seen */
    uint64_t last_seq;
    uint64_t seqs[512];
    uint8_t hashes[512][PB_HASH_BYTES];
    uint32_t errors; /* verification or chain failures */
    char first_error[256];
} patch_log;

void patch_log_init(patch_log *l, relay *r, const char *room);
/* A pbc_frame_fn: verifies and logs patch and history (req 0) frames. */
int collect(void *ctx, const pb_frame *f);
/* Services c, collecting patches, until it holds seq (or ms pass). */
bool collect_until(pbc *c, patch_log *l, uint64_t seq, uint32_t ms);

#endif
