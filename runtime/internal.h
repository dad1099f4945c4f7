/* internal.h — shared by the runtime's C files and nothing else: the
 * outbox of encoded frames for the host to send, the JSON answers the
 * session gives the host, the reports (acks, logs) built by report.c, and
 * the session's state, kept by session.c and read by catchup.c and
 * reload.c. The host-facing functions are in runtime.h. */
#ifndef PB_RUNTIME_INTERNAL_H
#define PB_RUNTIME_INTERNAL_H

#include "runtime.h"

/* ---- JSON answers to the host (report.c) ---------------------------------
 * A fixed buffer; text that does not fit is cut (the host then sees a parse
 * error, never a half object passed as whole: rt_json_end checks). */
typedef struct rt_json {
    char *buf;
    size_t cap, len;
    bool needs_comma;
    bool is_cut;
} rt_json;

void rt_json_init(rt_json *j, char *buf, size_t cap);
void rt_json_raw(rt_json *j, const char *s);
void rt_json_key(rt_json *j, const char *key);
void rt_json_str(rt_json *j, const char *key, const char *s, size_t len);
void rt_json_num(rt_json *j, const char *key, double v);
void rt_json_bool(rt_json *j, const char *key, bool v);
/* Opens/closes an object or array; key may be NULL inside an array. */
void rt_json_open(rt_json *j, const char *key, char bracket);
void rt_json_close(rt_json *j, char bracket);
/* The text, or "null" if it was cut. */
const char *rt_json_text(rt_json *j);

/* ---- Frames to the relay (report.c) -------------------------------------- */

/* Encodes f and appends it to the outbox; false if it could not be encoded
 * or the outbox is full (the frame is dropped and counted). */
bool rt_out_frame(const pb_frame *f);

/* Memory and module figures carried by every ack. */
typedef struct rt_ack_info {
    uint64_t verify_us, prepare_us;
    uint64_t commit_at_us;
    int64_t late_us;
} rt_ack_info;

void rt_report_ack(uint64_t seq, pb_ack_state state, const rt_ack_info *info);
void rt_report_failed(uint64_t seq, pb_err code, const char *var,
                      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The number of side modules loaded so far (for acks). */
void rt_report_set_modules(uint32_t n);

/* The ack of an expression that ran: committed with its printed value, or,
 * if value is NULL, failed with PB_ERR_TRAP, the var whose code trapped
 * and the message; out is what it printed (already within the limit). */
void rt_report_expr(uint64_t seq, const rt_ack_info *info, const char *value,
                    const char *var, const char *message, const char *out);

/* Sends a rate-limit marker if lines were dropped and the budget allows. */
void rt_report_log_tick(uint64_t now_us);

/* ---- expressions (expr.c) ------------------------------------------------
 * An expression's patch commits by handing its pb_expr to the host (it
 * defines no var): takes it out of staged (which is freed) and keeps it for
 * rt_session_expr_begin/end. Returns its table index, or 0 if the module
 * defines none (reported as a failed ack unless quiet). needs_ack: quiet
 * (catch-up), but the last patch of a catch-up, which is acked. */
uint32_t rt_expr_commit(uint64_t seq, rt_staged *staged, bool is_quiet,
                        bool needs_ack, const rt_ack_info *info);

/* ---- The session (session.c, catchup.c, reload.c) ------------------------ */

/* ---- rand() per patch (rand.c) -------------------------------------------
 * A patch's identity for seeding: from its origin (room, seq) if it names
 * one, else its own. The host seeds before each call into patch code
 * (rt_seed_rand, with one of the call kinds). */
#define RT_RAND_ID_BYTES 16u
enum {
    RT_RAND_INIT = 1,
    RT_RAND_EXPR = 2,
    RT_RAND_FRAME = 3,
    RT_RAND_TEST = 4
};
void rt_rand_identity(const pb_statement *st, uint8_t out[RT_RAND_ID_BYTES]);

typedef struct rt_pending { /* prepared, waiting for its apply time */
    uint64_t seq;
    uint64_t apply_us;
    uint8_t rand_id[RT_RAND_ID_BYTES];
    rt_ack_info info;
    bool is_quiet; /* from a catch-up batch: no per-patch ack */
    bool is_expr;  /* an expression: runs once, defines no var (expr.c) */
    bool is_held;  /* an item of a state catch-up not yet whole (catchup.c) */
    rt_staged *staged;
    struct rt_pending *next;
} rt_pending;

typedef struct rt_kept { /* a loaded patch, as a frame, for a reload */
    uint64_t seq;
    uint32_t len;
    struct rt_kept *next;
    uint8_t frame[];
} rt_kept;

/* The highest head a runtime of this (key, room) verified before: the host
 * persists it and gives it back at start (head.c). */
typedef struct rt_floor {
    uint64_t epoch, seq;
    uint8_t hash[PB_HASH_BYTES];
} rt_floor;

typedef struct rt_session_state {
    bool is_open;
    /* A verifier instance (rt_session_verify_only): it verifies, chains and
     * weighs heads, but loads, queues and runs nothing, so no patch code
     * ever shares its memory (docs/SECURITY.md § Patch code). */
    bool is_verifier;
    /* A patch instance that gets only what a verifier passed: it checks
     * everything but the signature again (rt_session_behind_verifier). */
    bool is_behind_verifier;
    rt_kept *kept; /* newest first */
    uint32_t commits_since_prune;
    uint8_t key[PB_PUBLICKEY_BYTES];
    pb_chain chain; /* verified head */
    uint64_t committed_seq;
    uint8_t rand_id[RT_RAND_ID_BYTES]; /* of the last committed patch */
    uint64_t loading_seq; /* set while a module's constructors run */
    rt_pending *first, *last;
    uint32_t n_modules;
    uint32_t max_module_bytes; /* 0: PB_MAX_MODULE_BYTES */
    uint64_t catchup_ack_seq; /* the end of a catch-up, acked on commit */
    uint64_t hello_since_seq; /* of the last hello: 0 asks a state catch-up */
    bool is_caught_up;        /* this connection's catch-up has ended */
    bool is_epoch_known;      /* from the floor or a signed head (head.c) */
    rt_floor floor;
} rt_session_state;

extern rt_session_state rt_state;

/* The JSON answer of the last call from the host (each call reuses it):
 * room for the longest, a trap's list of every var of one patch (each
 * name escaped at worst 6 bytes a byte), so that it is never cut to
 * "null" (which made the host skip the takeback). */
#define RT_ANSWER_BYTES                                                        \
    (PB_MAX_SYMBOLS * (6u * PB_MAX_NAME_BYTES + 3u) + 4096u)
extern char rt_answer[RT_ANSWER_BYTES];

/* What a patch frame is (its module is required unless RT_ITEM_STATE). */
typedef enum rt_item {
    RT_LIVE,       /* a live patch: acked */
    RT_ITEM_WHOLE, /* an item of a catch-up of whole patches: quiet */
    RT_ITEM_STATE, /* an item of a state catch-up: quiet, held (catchup.c) */
} rt_item;

/* Verifies p and, if it checks out and carries a module, prepares and
 * queues it (session.c). Describes the outcome into j; *is_chained (may be
 * NULL): the chain moved on to it (it can still be refused after that:
 * due too far ahead). */
pb_err rt_accept_patch(const pb_patch *p, rt_item kind, uint64_t now_us,
                       rt_json *j, bool *is_chained);
/* Checks a verified module's imports, loads it and takes its staged vars;
 * an error is reported (failed ack) and said in why. */
pb_err rt_prepare_patch(const pb_patch *p, uint64_t seq, rt_staged **out,
                        pb_errmsg *why);

/* A history frame (catchup.c). */
void rt_catchup_receive(const pb_history *h, uint64_t now_us, rt_json *j);
/* In a verifier: what of the frame just received the host may hand the
 * patch instance (verifier.c, runtime/README.md § The verifier instance);
 * the numbers are rt_session_pass()'s answer. */
typedef enum rt_pass {
    RT_PASS_NONE = 0,  /* nothing: refused, or neither patch nor head */
    RT_PASS_FRAME = 1, /* the frame as it came */
    RT_PASS_ITEMS = 2, /* the batch of its verified items (rt_pass_items) */
    RT_PASS_HOLD = 3,  /* a batch of a state catch-up: held until its end */
    RT_PASS_END = 4,   /* its last batch, the catch-up whole: all of it */
    RT_PASS_DROP = 5,  /* its last batch, the catch-up refused: none of it */
} rt_pass;
extern rt_pass rt_passed;
/* Some items of a catch-up batch verified: encodes a batch of those for
 * the patch instance (RT_PASS_ITEMS); false if out of memory. */
bool rt_pass_items(const pb_history *h, const bool *is_ok);
/* A verified item of a state catch-up defines st's vars, with or without
 * its module. */
void rt_catchup_note(const pb_statement *st, bool has_module);
/* Drops a state catch-up that has not ended (the connection it came on is
 * gone): its items unrun, the head back where it was. */
void rt_catchup_abort(void);

/* The signed head and the floor (head.c). */
pb_err rt_head_receive(const pb_head_frame *f, rt_json *j);
/* A patch at the floor's seq must be the one verified before
 * (PB_ERR_CHAIN_FORK); one below it comes only in a state catch-up
 * (PB_ERR_CHAIN_REPLAY). */
pb_err rt_floor_check(const pb_statement *st, bool is_state_item,
                      pb_errmsg *why);
/* A state catch-up must not end below the floor (PB_ERR_CHAIN_REPLAY). */
pb_err rt_floor_check_end(pb_errmsg *why);

/* Patches kept for a generation reload (reload.c). */
void rt_keep(uint64_t seq, const pb_patch *p);
void rt_prune_kept(void);
/* Forgets the kept patches after seq (a dropped catch-up's). */
void rt_drop_kept_after(uint64_t seq);

/* The device_id and description set by the host, into hello (device.c). */
void rt_device_fill(pb_hello *h);

#endif
