/* pb_protocol.h — the patchbay wire format: msgpack frames, the signed patch
 * statement, the hash chain, limits and the shared error enum.
 *
 * This is the whole public surface of protocol/. It is used by the relay, the
 * compiler, the CLI (native builds) and the runtime (the same sources built
 * with Emscripten). The format itself is specified in docs/PROTOCOL.md; the
 * section names below ("§ Frames", "§ Statement", "§ Chain") point there.
 *
 * Thread safety: every function is reentrant; call pb_init() once before
 * using the signing/hashing functions (it initialises libsodium).
 *
 * Ownership: decoded frames and statements do not copy strings or byte
 * fields; pb_str / pb_bytes point into the buffer given to the decode call,
 * which must outlive the decoded value. Arrays inside a decoded value live in
 * memory owned by the value and released by pb_frame_free() /
 * pb_statement_free(). Both free functions accept a zeroed or already freed
 * value. A failed decode leaves its output zeroed (never half-filled). */
#ifndef PB_PROTOCOL_H
#define PB_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define PB_WUR __attribute__((warn_unused_result))
#else
#define PB_WUR
#endif

/* ---- Version and limits (§ Limits) ------------------------------------ */

#define PB_PROTOCOL_VERSION 1u /* "v" of every frame */
/* The first element of a statement: 1 for definitions (12 elements), 2 for
 * an expression (13: its kind comes last), 3 for a patch that names the
 * patch it was replayed or restored from (15: kind, origin room, origin
 * seq; docs/PROTOCOL.md § Replay). */
#define PB_STATEMENT_VERSION        1u
#define PB_STATEMENT_VERSION_EXPR   2u
#define PB_STATEMENT_VERSION_ORIGIN 3u
#define PB_VERSION_STRING         "0.1.0" /* patchbay release */

#define PB_MAX_FRAME_BYTES     (2u * 1024u * 1024u) /* whole encoded frame */
#define PB_MAX_FRAME_OBJECTS   16384u          /* msgpack values in one frame */
#define PB_MAX_MODULE_BYTES    (1024u * 1024u) /* one side module */
#define PB_MAX_SOURCE_BYTES    (256u * 1024u)  /* one eval's source */
#define PB_MAX_STATEMENT_BYTES (64u * 1024u)   /* encoded statement */
#define PB_MAX_SYMBOLS         256u            /* vars defined by one patch */
#define PB_MAX_NAME_BYTES      64u   /* room, var, user and role names */
#define PB_MAX_TYPE_BYTES      128u  /* a var's signature string */
#define PB_MAX_TOKEN_BYTES     512u  /* hello.token */
#define PB_MAX_CLIENT_BYTES    256u  /* user agent / client description */
#define PB_MAX_PATH_BYTES      256u  /* eval.name (file or buffer name) */
#define PB_MAX_MESSAGE_BYTES   2048u /* error, diag and ack messages */
#define PB_MAX_LOG_BYTES       4096u /* one log frame's text */
#define PB_MAX_DIAGS           64u   /* diagnostics in one diag frame */
#define PB_MAX_HISTORY_ITEMS   64u   /* patches in one history frame */
#define PB_MAX_TESTS           256u  /* results in one test_result */
#define PB_MAX_PEERS           256u  /* entries in one peers frame */
#define PB_MAX_NESTING         8u    /* msgpack container depth */
#define PB_MAX_HEAD_BYTES      512u  /* encoded head statement */
#define PB_MAX_PNG_BYTES       (1536u * 1024u) /* snapshot.png */
#define PB_MAX_CANVAS_SIDE     8192u           /* canvas and screen sides, px */

/* Shared buffers (docs/PROTOCOL.md § Shared buffers). An update or a
 * snapshot is opaque bytes (a Yjs update); a relay bounds what it stores
 * per buffer at or below PB_MAX_BUFFER_BYTES, so a snapshot of a whole
 * buffer always fits one frame. */
#define PB_MAX_BUFFER_BYTES      (1024u * 1024u) /* one update or snapshot */
#define PB_MAX_BUFFERS           64u   /* entries in one buffers frame */
#define PB_MAX_BUFFER_SYNC_ITEMS 4096u /* stored updates in one buffer_sync */
#define PB_MAX_AWARENESS_BYTES   4096u /* one buffer_aware update */
#define PB_MAX_RELPOS_BYTES      128u  /* a position in a buffer (eval range) */

/* Room time (docs/PROTOCOL.md § Time). A room's tempo is 0 (none) or
 * PB_MIN_TEMPO_BPM to PB_MAX_TEMPO_BPM, one quantum (quantum x 60 / tempo
 * seconds) lasts at most PB_MAX_QUANTUM_US and a lead at most
 * PB_MAX_LEAD_US; so a relay never signs an apply time more than
 * PB_MAX_APPLY_AHEAD_US after the statement's creation, and a runtime
 * refuses to wait for one further ahead of its room clock than that (a
 * patch due in a thousand years would hold back every later one). */
#define PB_MIN_TEMPO_BPM      1u
#define PB_MAX_TEMPO_BPM      999u
#define PB_MAX_LEAD_US        (10u * 1000000u)
#define PB_MAX_QUANTUM_US     (60u * 1000000u)
#define PB_MAX_APPLY_AHEAD_US (PB_MAX_LEAD_US + PB_MAX_QUANTUM_US)

/* The signed head (docs/PROTOCOL.md § The signed head): the relay signs
 * one for each room at least every PB_HEAD_EVERY_US; a runtime whose
 * freshest one is older than PB_HEAD_STALE_US on its room clock is stale
 * (it may be starved), and one that has received no frame at all for
 * PB_SILENT_US reconnects. */
#define PB_HEAD_VERSION  1u
#define PB_HEAD_EVERY_US (5u * 1000000u)
#define PB_HEAD_STALE_US (10u * 1000000u)
#define PB_SILENT_US     (15u * 1000000u)

#define PB_HASH_BYTES      32u /* BLAKE2b-256 */
#define PB_SIG_BYTES       64u /* ed25519 detached signature */
#define PB_PUBLICKEY_BYTES 32u /* ed25519 public key */
#define PB_SECRETKEY_BYTES 64u /* ed25519 secret key (seed || public) */
#define PB_SEED_BYTES      32u /* ed25519 seed */

/* ---- Errors (§ Error codes) ---------------------------------------------
 * The numbers are on the wire (error.code) and must never be reused. */
typedef enum pb_err {
    PB_OK = 0,
    PB_ERR_NOMEM = 1,         /* allocation failed */
    PB_ERR_TRUNCATED = 2,     /* input ends inside a msgpack value */
    PB_ERR_MALFORMED = 3,     /* not msgpack, trailing bytes, too deep */
    PB_ERR_TOO_BIG = 4,       /* frame/statement over its byte limit */
    PB_ERR_NOT_A_MAP = 5,     /* a frame or object is not a msgpack map */
    PB_ERR_VERSION = 6,       /* unsupported protocol/statement version */
    PB_ERR_UNKNOWN_TYPE = 7,  /* "t" names no known frame type */
    PB_ERR_MISSING_FIELD = 8, /* a required field is absent */
    PB_ERR_FIELD_TYPE = 9,    /* a field has the wrong msgpack type */
    PB_ERR_FIELD_RANGE = 10,  /* a value or length is out of range */
    PB_ERR_DUPLICATE_FIELD = 11,
    PB_ERR_BAD_UTF8 = 12,      /* a str field is not valid UTF-8 */
    PB_ERR_NOT_CANONICAL = 13, /* statement bytes are not the canonical form */
    PB_ERR_BAD_SIGNATURE = 20, /* ed25519 signature does not verify */
    PB_ERR_WRONG_KEY = 21,     /* signed by a key other than the pinned one */
    PB_ERR_HASH_MISMATCH = 22, /* module or source bytes do not match hash */
    PB_ERR_CHAIN_GAP = 23,     /* seq skips ahead of head + 1 */
    PB_ERR_CHAIN_FORK = 24,    /* seq is head + 1 but prev hash differs */
    PB_ERR_CHAIN_REPLAY = 25,  /* seq at or below the head (old or reordered) */
    PB_ERR_WRONG_ROOM = 26,    /* statement belongs to another room */
    PB_ERR_BUF_TOO_SMALL = 27, /* caller's fixed buffer cannot hold output */
    PB_ERR_AUTH_MALFORMED = 40, /* token cannot be parsed */
    PB_ERR_AUTH_BAD_MAC = 41,   /* token MAC does not verify */
    PB_ERR_AUTH_EXPIRED = 42,   /* token past its expiry */
    PB_ERR_AUTH_WRONG_ROOM = 43,
    PB_ERR_AUTH_UNKNOWN_ROLE = 44,
    PB_ERR_AUTH_TIMEOUT = 45, /* no hello within the handshake timeout */
    PB_ERR_FORBIDDEN = 46,    /* the role may not send this frame */
    PB_ERR_RATE_LIMITED = 47,
    PB_ERR_ROOM_FULL = 48,
    PB_ERR_SLOW_CONSUMER = 49, /* send queue over its bound */
    PB_ERR_UNEXPECTED = 50,    /* frame not valid in this state */
    PB_ERR_REPLACED = 51,      /* the same runtime said hello again */
    PB_ERR_AUTH_REVOKED = 52,  /* token revoked (patchbay token revoke) */
    PB_ERR_COMPILE = 60,       /* source did not compile (see diag) */
    PB_ERR_COMPILER_DOWN = 61, /* compile server crashed or timed out */
    PB_ERR_PREPARE = 62,       /* runtime could not load a module */
    PB_ERR_TRAP = 63,          /* a var trapped at run time */
    PB_ERR_IO = 70,            /* file or database error */
    PB_ERR_INTERNAL = 71,
} pb_err;

/* Short English description of a code ("chain fork"); never NULL. */
const char *pb_strerror(pb_err code);

/* A human-readable account of what was wrong with which input, filled by
 * functions that take one (may be NULL). Always NUL-terminated. */
typedef struct pb_errmsg {
    char text[256];
} pb_errmsg;

/* Formats a message into why (if not NULL; cut short to fit) and returns
 * code, so that a failing path reads
 * `return pb_fail(why, PB_ERR_X, "field %s ...", name)`. Every component uses
 * this one helper for its pb_errmsg. */
pb_err pb_fail(pb_errmsg *why, pb_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- Byte views and buffers ---------------------------------------------- */

typedef struct pb_str {
    const char *ptr; /* not NUL-terminated; NULL when absent */
    uint32_t len;
} pb_str;

typedef struct pb_bytes {
    const uint8_t *ptr; /* NULL when absent */
    uint32_t len;
} pb_bytes;

/* A pb_str over a NUL-terminated C string (NULL gives an absent string). */
pb_str pb_cstr(const char *s);
/* Copies s into dst (cap bytes incl. NUL); returns PB_ERR_BUF_TOO_SMALL
 * (and writes an empty string) if it does not fit. */
pb_err pb_str_copy(char *dst, size_t cap, pb_str s) PB_WUR;
bool pb_str_eq(pb_str a, const char *b);

/* Output buffer. A growable buffer is heap-allocated (pb_buf_init, freed by
 * pb_buf_free); a fixed one writes into caller memory and fails with
 * PB_ERR_BUF_TOO_SMALL instead of growing (pb_buf_init_fixed; pb_buf_free
 * is then a no-op). Encoders replace the buffer's contents. data[0..len)
 * is the contents; only the functions below change data and cap. */
typedef struct pb_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    bool is_fixed;
} pb_buf;

void pb_buf_init(pb_buf *b);
/* A buffer over mem (cap bytes, owned by the caller, never reallocated). */
void pb_buf_init_fixed(pb_buf *b, void *mem, size_t cap);
/* Frees a growable buffer's memory (and zeroes it); empties a fixed one.
 * NULL is fine. */
void pb_buf_free(pb_buf *b);
/* Makes room for n more bytes after len: a growable buffer grows (at least
 * doubling; data may move), a fixed one fails with PB_ERR_BUF_TOO_SMALL
 * rather than touch memory it does not own. PB_ERR_NOMEM if the memory
 * cannot be had. On failure the buffer is unchanged. */
pb_err pb_buf_reserve(pb_buf *b, size_t n) PB_WUR;
/* Appends n bytes (pb_buf_reserve, then a copy); unchanged on failure. */
pb_err pb_buf_append(pb_buf *b, const void *bytes, size_t n) PB_WUR;
/* Reads f to its end into b (contents replaced) and puts a NUL after them,
 * not counted in len, so that text can be used as a C string. name is the
 * file for messages. PB_ERR_IO if a read fails (ferror: a directory, a
 * device error), PB_ERR_TOO_BIG past max_bytes (0: no limit), else
 * pb_buf_reserve's errors; b is then empty. The one file reader of the CLI
 * and the compiler. */
pb_err pb_buf_read_file(pb_buf *b, FILE *f, const char *name, size_t max_bytes,
                        pb_errmsg *why) PB_WUR;
/* pb_buf_read_file of the file at path, opened and closed here
 * (PB_ERR_IO naming path if it cannot be opened). */
pb_err pb_buf_read_path(pb_buf *b, const char *path, size_t max_bytes,
                        pb_errmsg *why) PB_WUR;

/* A byte sink for msgpack-c's packer that appends to a pb_buf, at most
 * limit bytes in all:
 *     pb_writer w;
 *     pb_writer_start(&w, &buf, limit);      (empties buf)
 *     msgpack_packer_init(&pk, &w, pb_writer_write);
 * The first failure (PB_ERR_TOO_BIG past the limit, or pb_buf_reserve's
 * PB_ERR_BUF_TOO_SMALL / PB_ERR_NOMEM) stays in err and fails every later
 * write, so that a packer's many calls need not be checked one by one:
 * check err once at the end. The writer owns nothing. */
typedef struct pb_writer {
    pb_buf *out;
    size_t limit;
    pb_err err; /* first failure, sticky */
} pb_writer;

void pb_writer_start(pb_writer *w, pb_buf *out, size_t limit);
/* The packer's write callback; data is the pb_writer. 0, or -1 (see err). */
int pb_writer_write(void *data, const char *bytes, size_t n);

/* ---- Enumerations carried as strings on the wire -------------------------
 * 0 always means "absent"; names are listed in docs/PROTOCOL.md. */
typedef enum pb_role {
    PB_ROLE_NONE = 0,
    PB_ROLE_OWNER,
    PB_ROLE_EDITOR,
    PB_ROLE_RUNTIME,
    PB_ROLE_VIEWER,
} pb_role;

typedef enum pb_lang { PB_LANG_NONE = 0, PB_LANG_C, PB_LANG_LISP } pb_lang;

typedef enum pb_ack_state {
    PB_ACK_NONE = 0,
    PB_ACK_PREPARED,
    PB_ACK_COMMITTED,
    PB_ACK_FAILED,
} pb_ack_state;

typedef enum pb_severity {
    PB_SEV_NONE = 0,
    PB_SEV_ERROR,
    PB_SEV_WARNING,
    PB_SEV_NOTE,
} pb_severity;

typedef enum pb_log_level {
    PB_LOG_NONE = 0,
    PB_LOG_INFO,
    PB_LOG_WARN,
    PB_LOG_ERROR,
    PB_LOG_TRAP,
} pb_log_level;

typedef enum pb_peers_event {
    PB_PEERS_NONE = 0,
    PB_PEERS_SNAPSHOT, /* the full list */
    PB_PEERS_JOIN,
    PB_PEERS_LEAVE,
    PB_PEERS_UPDATE,
} pb_peers_event;

/* What a patch does when it commits (§ Statement, § Expressions). */
typedef enum pb_patch_kind {
    PB_KIND_DEFS = 0, /* replaces the vars it defines (the statement has no
                         kind element: version 1) */
    PB_KIND_EXPR,     /* runs one expression once on every runtime, which
                         reports its value; defines no var (version 2) */
} pb_patch_kind;

/* What one test did on one runtime (test case "status"). Absent (from an
 * older runtime) reads as pass or fail from "ok". */
typedef enum pb_test_status {
    PB_TEST_NONE = 0,
    PB_TEST_PASS,
    PB_TEST_FAIL,    /* a PB_CHECK failed: file, line, message */
    PB_TEST_TRAP,    /* the code trapped: var, var_seq, message */
    PB_TEST_TIMEOUT, /* it did not return; the runtime's watchdog restarted it
                      */
} pb_test_status;

/* What a buffer_op does to the room's buffers (§ Shared buffers). */
typedef enum pb_buffer_op_kind {
    PB_BUFFER_OP_NONE = 0,
    PB_BUFFER_OP_CREATE, /* a new buffer: name and lang */
    PB_BUFFER_OP_SET,    /* rename it, change its language: name and lang */
    PB_BUFFER_OP_CLOSE,  /* close it for everyone */
} pb_buffer_op_kind;

typedef enum pb_history_mode {
    PB_HISTORY_NONE = 0,
    PB_HISTORY_STATE, /* latest patch of every var, in seq order (catch-up) */
    PB_HISTORY_RANGE, /* every patch from_seq..to_seq (replay, export) */
} pb_history_mode;

/* Name of a role ("editor"); "" for PB_ROLE_NONE or out-of-range values. */
const char *pb_role_name(pb_role r);
/* Parses a role name; PB_ROLE_NONE if s is not one. */
pb_role pb_role_parse(pb_str s);
const char *pb_lang_name(pb_lang l);
pb_lang pb_lang_parse(pb_str s);
const char *pb_ack_state_name(pb_ack_state s);
const char *pb_severity_name(pb_severity s);
const char *pb_log_level_name(pb_log_level l);
const char *pb_patch_kind_name(pb_patch_kind k); /* "" for PB_KIND_DEFS */
const char *pb_test_status_name(pb_test_status s);
const char *pb_buffer_op_name(pb_buffer_op_kind k);

/* ---- Frames (§ Frames) ---------------------------------------------------
 * Every frame is a msgpack map with "v" (protocol version) and "t" (type
 * name) plus the fields below. Optional fields are zero when absent and are
 * omitted by the encoder when zero/empty. Times are microseconds: *_us
 * absolute times are on the room clock (µs since the Unix epoch). */
typedef enum pb_type {
    PB_T_NONE = 0,
    PB_T_HELLO,
    PB_T_WELCOME,
    PB_T_ERROR,
    PB_T_EVAL,
    PB_T_DIAG,
    PB_T_PATCH,
    PB_T_ACK,
    PB_T_PING,
    PB_T_PONG,
    PB_T_HISTORY_REQ,
    PB_T_HISTORY,
    PB_T_LOG,
    PB_T_TEST_REQ,
    PB_T_TEST_RESULT,
    PB_T_PEERS,
    PB_T_ROOM,
    PB_T_SNAPSHOT_REQ,
    PB_T_SNAPSHOT,
    PB_T_LOG_REQ,
    PB_T_LOG_END,
    PB_T_HEAD,
    PB_T_BUFFERS,
    PB_T_BUFFER_OP,
    PB_T_BUFFER_SYNC,
    PB_T_BUFFER_UPDATE,
    PB_T_BUFFER_ACK,
    PB_T_BUFFER_COMPACT,
    PB_T_BUFFER_AWARE,
    PB_T_BUFFER_EVAL,
    PB_T_BUNDLE, /* the first frame of a bundle file, never on a socket */
    PB_T_COUNT_  /* number of types + 1; not a type */
} pb_type;

/* Wire name of a frame type ("history_req"); "" if out of range. */
const char *pb_type_name(pb_type t);

/* What a runtime says about the device it runs on (all optional; fields of
 * hello, and of each peer the relay lists). Shown by `patchbay devices` and
 * the devices panel; the label names the device in test matrices and
 * snapshot files. */
typedef struct pb_device {
    pb_str label;      /* chosen by its owner (&label= in the link) */
    pb_str platform;   /* user agent, or "node 20.20.2 linux x64" */
    uint32_t canvas_w; /* the canvas pb_frame draws on (0: none) */
    uint32_t canvas_h;
    uint32_t screen_w; /* the screen, in CSS pixels */
    uint32_t screen_h;
    double dpr;         /* device pixel ratio */
    pb_str features;    /* wasm features, comma-separated ("simd,threads") */
    uint64_t ram_bytes; /* the device's memory, as far as it says */
    uint32_t cores;     /* hardware threads */
} pb_device;

typedef struct pb_hello { /* client -> relay, first frame */
    pb_str token;         /* required */
    pb_str client;        /* user agent or tool name */
    uint64_t since_seq;   /* last seq the client holds (0: none) */
    pb_str device_id;     /* runtimes: chosen once per run of the runtime
                             (a page load, a process) and the same in each
                             of its hellos; a hello with the device_id of a
                             runtime in the room under the same token name
                             replaces that connection (PB_ERR_REPLACED) */
    pb_device device;     /* runtimes: what they run on */
    bool buffers;         /* an editor page: send it the room's shared
                             buffers and their updates (never to a
                             runtime) */
} pb_hello;

typedef struct pb_welcome {           /* relay -> client, answer to hello */
    pb_str room;                      /* required */
    pb_role role;                     /* required */
    pb_str name;                      /* required: the token's user name */
    uint64_t client_id;               /* required: unique per relay process */
    uint8_t key[PB_PUBLICKEY_BYTES];  /* required: relay public key */
    uint64_t head_seq;                /* room chain head (0: empty) */
    uint8_t head_hash[PB_HASH_BYTES]; /* required (zero when empty) */
    uint64_t now_us;                  /* required: relay clock */
} pb_welcome;

typedef struct pb_error { /* either direction */
    uint32_t code;        /* required: a pb_err value */
    pb_str message;       /* required: what was wrong with which input */
    uint64_t req;         /* the request this answers, if any */
    bool fatal;           /* the sender closes the connection after it */
} pb_error;

typedef struct pb_eval { /* editor -> relay */
    uint64_t req;        /* required: editor-chosen request id */
    pb_lang lang;        /* required */
    pb_str name;         /* file or buffer name, for diagnostics */
    pb_str source;       /* required */
    bool expr;           /* the source is one expression to run once (C
                            needs it; a Lisp source whose only form is not a
                            definition is an expression anyway) */
    uint64_t buffer;     /* the shared buffer it was taken from (0: none) */
    pb_bytes start, end; /* where in it: Yjs relative positions, passed on
                            in buffer_eval when the patch is accepted */
    pb_str origin_room;  /* a replay or a restore: the patch this one */
    uint64_t origin_seq; /* repeats (both or neither), which the relay
                            signs into the statement (§ Replay) */
} pb_eval;

typedef struct pb_diag_item {
    uint32_t line;     /* required: 1-based, in the user's source */
    uint32_t col;      /* required: 1-based byte column */
    uint32_t end_line; /* end of the range to underline (0: none) */
    uint32_t end_col;
    pb_severity severity; /* required */
    pb_str message;       /* required */
} pb_diag_item;

typedef struct pb_diag { /* relay -> the evaluating editor only */
    uint64_t req;        /* required */
    bool ok;             /* true: compiled, seq is the new patch */
    uint64_t seq;
    bool expr; /* the patch is an expression: runtimes' acks carry its value */
    pb_diag_item *items;
    uint32_t n_items;
} pb_diag;

typedef struct pb_patch { /* relay -> room; also a history item */
    pb_bytes stmt;        /* required: canonical statement bytes */
    pb_bytes sig;         /* required: 64-byte ed25519 signature of stmt */
    pb_bytes module;      /* the side module; absent only in a catch-up
                             batch for a patch whose vars were all
                             redefined later (verify it, load nothing) */
    pb_str source;        /* the source, checked against stmt source_hash */
} pb_patch;

typedef struct pb_ack {    /* runtime -> relay -> editors */
    uint64_t seq;          /* required */
    pb_ack_state state;    /* required */
    uint64_t runtime_id;   /* filled in by the relay when forwarding */
    uint64_t verify_us;    /* time spent verifying */
    uint64_t prepare_us;   /* time spent loading the module */
    uint64_t commit_at_us; /* room time at which the swap happened */
    int64_t late_us;       /* commit_at_us - apply_us (negative: early) */
    uint64_t mem_bytes;    /* runtime memory after the step */
    uint64_t table_size;   /* wasm table entries after the step */
    uint64_t modules;      /* side modules loaded in this instance */
    pb_str error;          /* why, when state is failed */
    pb_str var;            /* the var that failed, if known */
    uint32_t code;         /* failed: a pb_err saying why (PB_ERR_TRAP,
                              PB_ERR_CHAIN_FORK, ...); 0 otherwise */
    pb_str value;          /* committed expression: its value as printed,
                              e.g. 59, true, nil, "hi" (cut with "…") */
    pb_str out;            /* expression: what it printed while it ran (cut) */
    uint64_t stale_since_us; /* the runtime's freshest signed head is older
                                than PB_HEAD_STALE_US: the room time it was
                                signed at (0: fresh) */
} pb_ack;

typedef struct pb_ping { /* client -> relay */
    uint64_t t0_us;      /* required: client send time (client clock) */
    uint64_t unc_us;     /* the sender's room clock uncertainty so far */
} pb_ping;

typedef struct pb_pong { /* relay -> client */
    uint64_t t0_us;      /* required: echoed from ping */
    uint64_t t1_us;      /* required: relay receive time */
    uint64_t t2_us;      /* required: relay send time */
} pb_pong;

typedef struct pb_history_req { /* client -> relay */
    uint64_t req;               /* required */
    pb_history_mode mode;       /* required */
    uint64_t from_seq;          /* range start (inclusive; 0 = 1) */
    uint64_t to_seq;            /* range end (inclusive; 0 = head) */
} pb_history_req;

typedef struct pb_history { /* relay -> client, one or more batches */
    uint64_t req;           /* required: 0 for unsolicited catch-up */
    uint64_t head_seq;      /* required: room head when sent */
    bool more;              /* another batch follows */
    pb_patch *items;
    uint32_t n_items;
} pb_history;

typedef struct pb_log {  /* runtime -> relay -> editors */
    pb_log_level level;  /* required */
    pb_str text;         /* required */
    uint64_t runtime_id; /* filled in by the relay */
    uint64_t seq;        /* patch whose code produced it */
    pb_str var;
    bool truncated; /* text was cut at the limit */
    uint64_t time_us;
} pb_log;

typedef struct pb_test_req { /* editor -> relay -> runtimes */
    uint64_t req;            /* required */
    pb_str filter;           /* test name prefix ("" = all) */
    uint64_t runtime_id;     /* 0 = every runtime in the room */
    uint64_t seq;            /* run at this seq (the relay fills in its
                                head when 0): a runtime waits for it */
} pb_test_req;

typedef struct pb_test_case {
    pb_str name;           /* required */
    bool ok;               /* required */
    pb_str message;        /* the failed check's expression, or the trap */
    uint64_t us;           /* duration */
    pb_test_status status; /* pass, fail, trap, timeout */
    pb_str file;           /* fail: where the check is */
    uint32_t line;
    pb_str var;       /* trap: the var whose code trapped */
    uint64_t var_seq; /* and the patch that defined it */
} pb_test_case;

typedef struct pb_test_result { /* runtime -> relay -> editors */
    uint64_t req;               /* required */
    uint64_t runtime_id;        /* filled in by the relay */
    uint64_t seq;               /* head the tests ran against */
    pb_test_case *results;
    uint32_t n_results;
} pb_test_result;

typedef struct pb_peer {
    uint64_t id;  /* required: client_id */
    pb_str name;  /* required */
    pb_role role; /* required */
    pb_str client;
    pb_ack_state last_ack;
    uint64_t last_seq;
    int64_t skew_us; /* last commit time minus the room's median */
    uint64_t mem_bytes;
    uint64_t unc_us;  /* its clock uncertainty, from its last ping */
    pb_device device; /* as its hello described it */
} pb_peer;

typedef struct pb_peers { /* relay -> room */
    pb_peers_event event; /* required */
    pb_peer *peers;
    uint32_t n_peers;
} pb_peers;

typedef struct pb_room { /* owner -> relay (set), relay -> room (current) */
    double tempo_bpm;    /* 0: no tempo */
    uint32_t quantum;    /* beats per quantum (0: apply at lead) */
    uint64_t lead_us;    /* 0: relay chooses */
} pb_room;

typedef struct pb_snapshot_req { /* editor -> relay -> runtimes */
    uint64_t req;                /* required */
    uint64_t at_us;              /* render the frame of this room time
                                    (0: now); a runtime waits for it */
    uint64_t runtime_id;         /* 0 = every runtime with a canvas */
    uint64_t editor_id;          /* filled in by the relay: who asked */
} pb_snapshot_req;

typedef struct pb_snapshot { /* runtime -> relay -> the editor that asked */
    uint64_t req;            /* required */
    uint64_t editor_id;      /* required: from the snapshot_req */
    uint64_t runtime_id;     /* filled in by the relay */
    uint64_t seq;            /* the committed head it drew with */
    uint64_t at_us;          /* the room time it drew */
    uint32_t width, height;  /* of the picture */
    pb_bytes png;            /* 8-bit RGBA PNG; absent with error */
    pb_str error;            /* why there is no picture */
} pb_snapshot;

typedef struct pb_log_req { /* editor/viewer -> relay */
    uint64_t req;           /* required */
    uint64_t runtime_id;    /* 0 = every runtime */
} pb_log_req;

typedef struct pb_log_end { /* relay -> the client that asked */
    uint64_t req;           /* required */
    uint32_t count;         /* log and ack frames replayed before this */
    uint64_t dropped;       /* older ones the relay no longer holds */
} pb_log_end;

typedef struct pb_head_frame { /* relay -> everyone: the signed head */
    pb_bytes stmt;             /* required: the head statement's bytes */
    pb_bytes sig;              /* required: its ed25519 signature */
} pb_head_frame;

/* ---- Shared buffers (§ Shared buffers) ----------------------------------
 * The relay stores and forwards a buffer's updates as opaque bytes; it
 * never reads them. Buffer ids are the relay's, per room, never reused. */
typedef struct pb_buffer_info {
    uint64_t id;  /* required */
    pb_str name;  /* required: "main.c" */
    pb_lang lang; /* required */
} pb_buffer_info;

typedef struct pb_buffers {  /* relay -> people who said hello.buffers */
    pb_buffer_info *buffers; /* every open buffer of the room, by id */
    uint32_t n_buffers;
    uint64_t req;  /* the buffer_op this answers (with peer) */
    uint64_t peer; /* the client whose buffer_op changed the list */
} pb_buffers;

typedef struct pb_buffer_op { /* owner/editor -> relay */
    uint64_t req;             /* required */
    pb_buffer_op_kind op;     /* required */
    uint64_t buffer;          /* set, close: which */
    pb_str name;              /* create, set */
    pb_lang lang;             /* create, set */
} pb_buffer_op;

typedef struct pb_buffer_data {
    pb_bytes data; /* required: one stored update (or snapshot) */
} pb_buffer_data;

typedef struct pb_buffer_sync { /* relay -> a client that just joined */
    uint64_t buffer;            /* required */
    uint64_t useq;              /* the last stored update included */
    bool more;                  /* another buffer_sync of it follows */
    bool compact;               /* many updates: send a buffer_compact */
    pb_buffer_data *updates;    /* in the order stored */
    uint32_t n_updates;
} pb_buffer_sync;

typedef struct pb_buffer_update { /* editor -> relay -> people */
    uint64_t buffer;              /* required */
    pb_bytes data;                /* required: a Yjs update */
    uint64_t req;                 /* the sender's (answered by buffer_ack) */
    uint64_t useq;                /* filled in by the relay: its place */
    uint64_t peer;                /* filled in by the relay: who sent it */
} pb_buffer_update;

typedef struct pb_buffer_ack { /* relay -> the sender: stored on disk */
    uint64_t buffer;           /* required */
    uint64_t req;              /* required */
    uint64_t useq;             /* where it was stored */
    bool compact;              /* many updates: send a buffer_compact */
} pb_buffer_ack;

typedef struct pb_buffer_compact { /* editor -> relay */
    uint64_t buffer;               /* required */
    uint64_t req;                  /* required */
    uint64_t useq;                 /* required: data holds every update up
                                      to this one, and replaces them */
    pb_bytes data;                 /* required: the merged snapshot */
} pb_buffer_compact;

typedef struct pb_buffer_aware { /* people -> relay -> people */
    uint64_t buffer;             /* required */
    pb_bytes data;               /* required: a Yjs awareness update */
    uint64_t peer;               /* filled in by the relay */
} pb_buffer_aware;

typedef struct pb_buffer_eval { /* relay -> people: a range was evaluated */
    uint64_t buffer;            /* required */
    uint64_t seq;               /* required: the patch it became */
    uint64_t peer;              /* required: its author's client id */
    pb_str author;              /* required: its author's name */
    pb_bytes start, end;        /* the range, as eval gave it */
} pb_buffer_eval;

/* A bundle file (`patchbay export --format bundle`, docs/PROTOCOL.md
 * § Bundle files): this frame, then count `patch` frames of room from seq
 * 1 in order, each with its module and source. Nothing in it is signed but
 * the patches: a reader checks them against a key it trusts. */
typedef struct pb_bundle {
    pb_str room;                      /* required */
    uint8_t key[PB_PUBLICKEY_BYTES];  /* required: the relay that signed */
    uint64_t count;                   /* required: patch frames that follow */
    uint8_t head_hash[PB_HASH_BYTES]; /* required: hash of the last statement
                                         (zero for an empty room) */
    uint64_t epoch; /* the room's epoch (§ The signed head): its seq 1
                       links to that epoch's genesis; 0 from before epochs */
    uint64_t exported_us;             /* when it was written */
    double tempo_bpm;                 /* the room's settings then */
    uint32_t quantum;
} pb_bundle;

typedef struct pb_frame {
    pb_type type;
    union {
        pb_hello hello;
        pb_welcome welcome;
        pb_error error;
        pb_eval eval;
        pb_diag diag;
        pb_patch patch;
        pb_ack ack;
        pb_ping ping;
        pb_pong pong;
        pb_history_req history_req;
        pb_history history;
        pb_log log;
        pb_test_req test_req;
        pb_test_result test_result;
        pb_peers peers;
        pb_room room;
        pb_snapshot_req snapshot_req;
        pb_snapshot snapshot;
        pb_log_req log_req;
        pb_log_end log_end;
        pb_head_frame head;
        pb_buffers buffers;
        pb_buffer_op buffer_op;
        pb_buffer_sync buffer_sync;
        pb_buffer_update buffer_update;
        pb_buffer_ack buffer_ack;
        pb_buffer_compact buffer_compact;
        pb_buffer_aware buffer_aware;
        pb_buffer_eval buffer_eval;

        pb_bundle bundle;
    };
    void *priv_; /* decode's memory; do not touch */
} pb_frame;

/* Decodes one frame from exactly len bytes. Rejects anything that is not
 * one complete, well-typed frame within the limits, with a specific code and
 * a message in why (may be NULL). On failure *out is zeroed. On success the
 * caller frees with pb_frame_free(). */
pb_err pb_frame_decode(const uint8_t *buf, size_t len, pb_frame *out,
                       pb_errmsg *why) PB_WUR;
void pb_frame_free(pb_frame *f);

/* The length of the msgpack value that starts at buf (len bytes
 * available), for a reader of frames stored back to back (a bundle file):
 * PB_ERR_TRUNCATED if it ends past len, PB_ERR_TOO_BIG past
 * PB_MAX_FRAME_BYTES, or the scan's other errors naming the offset. Checks
 * only the msgpack framing and its bounds; pb_frame_decode the bytes. */
pb_err pb_frame_length(const uint8_t *buf, size_t len, size_t *frame_len,
                       pb_errmsg *why) PB_WUR;

/* Encodes a frame into out, replacing its contents. Checks the same limits
 * as decode, so nothing is sent that a peer would reject. */
pb_err pb_frame_encode(const pb_frame *f, pb_buf *out, pb_errmsg *why) PB_WUR;

/* ---- The patch statement (§ Statement) ----------------------------------- */

typedef struct pb_symbol {
    pb_str name; /* the var's name */
    pb_str type; /* its signature, e.g. "d(d)" (docs/PATCH_ABI.md) */
} pb_symbol;

typedef struct pb_statement {
    pb_str room;
    uint64_t seq;                     /* 1 for a room's first patch */
    uint8_t prev_hash[PB_HASH_BYTES]; /* zero for seq 1 */
    uint8_t module_hash[PB_HASH_BYTES];
    pb_symbol *symbols;
    uint32_t n_symbols;
    pb_str author;
    pb_lang lang;
    uint8_t source_hash[PB_HASH_BYTES];
    uint64_t created_us;             /* when the relay accepted it */
    uint64_t apply_us;               /* room time to commit at */
    uint8_t key[PB_PUBLICKEY_BYTES]; /* the signing relay's key */
    pb_patch_kind kind;              /* PB_KIND_EXPR: element 12, version 2; an
                                        expression defines no symbols */
    /* A replayed or restored patch names the patch it repeats (version 3,
     * elements 13 and 14): both set or neither. Its runtimes seed rand()
     * from the origin, so a replay draws what the original drew. */
    pb_str origin_room;
    uint64_t origin_seq;
    /* Filled in by decode: hash of the statement bytes. */
    uint8_t hash[PB_HASH_BYTES];
    void *priv_;
} pb_statement;

/* Encodes the canonical form (docs/PROTOCOL.md § Statement). */
pb_err pb_statement_encode(const pb_statement *s, pb_buf *out,
                           pb_errmsg *why) PB_WUR;
/* Decodes and checks canonical form; fills s->hash. Free with
 * pb_statement_free(). On failure *out is zeroed. */
pb_err pb_statement_decode(const uint8_t *buf, size_t len, pb_statement *out,
                           pb_errmsg *why) PB_WUR;
void pb_statement_free(pb_statement *s);

/* ---- Hashing and signing --------------------------------------------------
 */

/* Initialises libsodium; returns PB_ERR_INTERNAL if it cannot. */
pb_err pb_init(void) PB_WUR;
/* BLAKE2b-256 of data. */
void pb_hash(const void *data, size_t len, uint8_t out[PB_HASH_BYTES]);
/* Signs statement bytes with an ed25519 secret key. */
void pb_sign(const uint8_t *stmt, size_t len,
             const uint8_t sk[PB_SECRETKEY_BYTES], uint8_t sig[PB_SIG_BYTES]);
/* 0 (PB_OK) if sig is a valid signature of stmt by pk, else
 * PB_ERR_BAD_SIGNATURE. */
pb_err pb_verify(const uint8_t *stmt, size_t len,
                 const uint8_t sig[PB_SIG_BYTES],
                 const uint8_t pk[PB_PUBLICKEY_BYTES]) PB_WUR;

/* Checks a patch frame against the pinned relay key, in this order: the
 * signature over the raw statement bytes (PB_ERR_BAD_SIGNATURE: tampered,
 * or signed by another key) — before anything of the statement is parsed,
 * so no unauthenticated byte reaches the decoder —; then decodes it into
 * *out (the statement errors; PB_ERR_WRONG_KEY if a statement signed with
 * the pinned key names another); then the module hash if the module is
 * present (absent: a superseded patch in catch-up, which the caller must
 * not load) and the source hash if the source is present
 * (PB_ERR_HASH_MISMATCH).
 * Chain position is pb_chain_check's job. On failure *out is zeroed; on
 * success free it with pb_statement_free(). */
pb_err pb_patch_verify(const pb_patch *p,
                       const uint8_t pinned_key[PB_PUBLICKEY_BYTES],
                       pb_statement *out, pb_errmsg *why) PB_WUR;
/* pb_patch_verify without the signature, for bytes whose signature was
 * verified already (a runtime's patch instance gets only what its verifier
 * instance passed: runtime/verifier.c). */
pb_err pb_patch_verify_signed(const pb_patch *p,
                              const uint8_t pinned_key[PB_PUBLICKEY_BYTES],
                              pb_statement *out, pb_errmsg *why) PB_WUR;

/* ---- The chain (§ Chain) ---------------------------------------------------
 */

/* The head of a room's chain as a verifier holds it. */
typedef struct pb_chain {
    char room[PB_MAX_NAME_BYTES + 1];
    uint64_t epoch;              /* see pb_epoch_genesis */
    uint64_t seq;                /* 0 before the first patch */
    uint8_t hash[PB_HASH_BYTES]; /* hash of statement seq; genesis at 0 */
} pb_chain;

/* Genesis head for a room; PB_ERR_FIELD_RANGE if the name is too long or
 * empty. */
pb_err pb_chain_init(pb_chain *c, const char *room) PB_WUR;
/* May next follow head? PB_OK, or PB_ERR_WRONG_ROOM, PB_ERR_CHAIN_REPLAY
 * (seq <= head), PB_ERR_CHAIN_GAP (seq > head + 1), PB_ERR_CHAIN_FORK
 * (prev_hash is not the head's hash). */
pb_err pb_chain_check(const pb_chain *head, const pb_statement *next,
                      pb_errmsg *why) PB_WUR;
/* Moves head to next; call only after pb_chain_check() returned PB_OK. */
void pb_chain_advance(pb_chain *head, const pb_statement *next);

/* The hash a room's chain starts from in an epoch: the prev_hash of its
 * seq 1 (32 zero bytes for epoch 0, a room from before epochs; else
 * BLAKE2b-256 of msgpack ["pb-epoch", room, epoch, key]). */
void pb_epoch_genesis(const char *room, uint64_t epoch,
                      const uint8_t key[PB_PUBLICKEY_BYTES],
                      uint8_t out[PB_HASH_BYTES]);
/* Genesis head of a room in an epoch (pb_chain_init is epoch 0). */
pb_err pb_chain_init_epoch(pb_chain *c, const char *room, uint64_t epoch,
                           const uint8_t key[PB_PUBLICKEY_BYTES]) PB_WUR;

/* ---- The signed head (§ The signed head) -----------------------------------
 * Where a room is, signed by its relay: [ "pb-head", 1, room, epoch, seq,
 * hash, time_us, key ]. */
typedef struct pb_head {
    pb_str room;
    uint64_t epoch;              /* µs since the Unix epoch at which the
                                    relay created the room's history */
    uint64_t seq;                /* the room's head (0: no patch yet) */
    uint8_t hash[PB_HASH_BYTES]; /* of statement seq (genesis at 0) */
    uint64_t time_us;            /* relay clock when it signed */
    uint8_t key[PB_PUBLICKEY_BYTES];
    void *priv_;
} pb_head;

/* Canonical encoding; PB_ERR_FIELD_RANGE for a bad room name. */
pb_err pb_head_encode(const pb_head *h, pb_buf *out, pb_errmsg *why) PB_WUR;
/* Decodes and checks canonical form. On failure *out is zeroed; on success
 * free with pb_head_free(). */
pb_err pb_head_decode(const uint8_t *buf, size_t len, pb_head *out,
                      pb_errmsg *why) PB_WUR;
void pb_head_free(pb_head *h);
/* The signature over the raw bytes with the pinned key first
 * (PB_ERR_BAD_SIGNATURE), then decode, then the named key
 * (PB_ERR_WRONG_KEY). Room and freshness are the caller's. */
pb_err pb_head_verify(const pb_head_frame *f,
                      const uint8_t pinned_key[PB_PUBLICKEY_BYTES],
                      pb_head *out, pb_errmsg *why) PB_WUR;

/* ---- Side modules (docs/PATCH_ABI.md) --------------------------------------
 * What a patch's module may import: protocol/abi/api.list (compiled in),
 * the list the runtime's exports are generated from. */

/* Is name in the runtime API, as a function (is_data false) or as a data
 * symbol imported through GOT.mem (is_data true)? */
bool pb_abi_has(pb_str name, bool is_data);
/* May a side module import field from module (kind: 0 function, 1 table,
 * 2 memory, 3 global)? The dynamic linker provides the memory, the table,
 * the stack pointer and the two bases; everything else must be in the API.
 * The one rule, for the compiler's check and pb_module_check_imports. */
bool pb_abi_import_allowed(pb_str module, pb_str field, uint8_t kind);
/* One bounds-checked pass over a wasm module's sections (every length is
 * checked against len; names point into the bytes), for the runtime's
 * import check and the compiler's checks on a linked module. It reads the
 * sections whose callback is set, and only those: the custom sections
 * (is_first: it is the module's first section, where dylink.0 must be),
 * each import (kind: 0 function, 1 table, 2 memory, 3 global) and each
 * export. A callback returning false ends the read at once with PB_OK.
 * PB_ERR_MALFORMED naming the section or entry if the bytes are not a wasm
 * module. The visitor owns nothing; the callbacks may be NULL. */
typedef struct pb_wasm_visitor {
    void *ctx;
    bool (*on_custom)(void *ctx, pb_str name, const uint8_t *data, size_t len,
                      bool is_first);
    bool (*on_import)(void *ctx, pb_str module, pb_str field, uint8_t kind);
    bool (*on_export)(void *ctx, pb_str name, uint8_t kind);
} pb_wasm_visitor;
pb_err pb_wasm_read(const uint8_t *wasm, size_t len, const pb_wasm_visitor *v,
                    pb_errmsg *why) PB_WUR;
/* Checks every import of a wasm side module: env functions and GOT entries
 * of the API, and the memory, table, stack pointer and bases the dynamic
 * linker provides. PB_OK; PB_ERR_PREPARE naming the first import the
 * runtime does not offer; PB_ERR_MALFORMED if the bytes are not a wasm
 * module (every length is checked against len). */
pb_err pb_module_check_imports(const uint8_t *wasm, size_t len,
                               pb_errmsg *why) PB_WUR;
/* Everything the relay checks before it signs a module its compile server
 * made: its size, that dylink.0 is its first section, its imports (as
 * above), that it exports only __wasm_call_ctors, and that its pb_meta
 * "def" lines name exactly the statement's symbols (kind PB_KIND_EXPR:
 * exactly pb_expr, and no symbols). PB_ERR_PREPARE naming what is wrong. */
pb_err pb_module_check(const uint8_t *wasm, size_t len, pb_patch_kind kind,
                       const pb_symbol *syms, uint32_t n, pb_errmsg *why) PB_WUR;

/* ---- Misc ------------------------------------------------------------------
 */

/* The length of the longest prefix of s[0..len) that is well-formed UTF-8:
 * where to cut a message that a buffer truncated (mid-character) or that
 * came from elsewhere, so that the frame carrying it still encodes. */
size_t pb_utf8_prefix(const char *s, size_t len);

/* Lowercase hex of n bytes into out (2n+1 bytes). Returns out. */
char *pb_hex(const uint8_t *bytes, size_t n, char *out);
/* Parses exactly 2n hex digits into bytes; PB_ERR_MALFORMED otherwise. */
pb_err pb_unhex(const char *hex, uint8_t *bytes, size_t n) PB_WUR;

#ifdef __cplusplus
}
#endif
#endif /* PB_PROTOCOL_H */
