/* pbc.h — a small blocking patchbay client over libwebsockets, the whole
 * public surface of client/: parse where to connect, connect and say hello,
 * send frames, wait for frames with a deadline. The CLI (eval, watch, room)
 * and the relay's integration tests use it.
 *
 * One connection per pbc, each with its own lws context (its state is the
 * context's user pointer); a pbc is used by one thread at a time. Functions
 * that can fail return pb_err with a message in *why (may be NULL). */
#ifndef PB_CLIENT_PBC_H
#define PB_CLIENT_PBC_H

#include "pb_protocol.h"

typedef struct pbc pbc;

#define PBC_DEFAULT_PORT 7888

/* Relays one link may name: its own and PBC_MAX_RELAYS - 1 more. */
#define PBC_MAX_RELAYS 8

/* A relay's address. */
typedef struct pbc_relay {
    char host[256];
    int port;
    bool tls; /* wss:// or https:// */
} pbc_relay;

/* Where to connect and as whom; parsed from --url/--token or a join link
 * (http://host:port/#room=R&token=T&key=K). */
typedef struct pbc_target {
    char host[256];
    int port;
    char token[PB_MAX_TOKEN_BYTES + 1];
    char room[PB_MAX_NAME_BYTES + 1]; /* from the link, or "" */
    char key_hex[2 * PB_PUBLICKEY_BYTES + 1];
    bool tls;      /* wss:// or https:// */
    char ca[4096]; /* PEM file of the CA to trust for TLS ("": the system's) */
    /* More relays of the same room and key (a link's &relays=, or --url
     * A,B; docs/PROTOCOL.md § Transport), tried in turn by pbc_connect
     * when one cannot be reached. */
    pbc_relay more[PBC_MAX_RELAYS - 1];
    unsigned n_more;
    /* The relay pbc_connect tries first: 0 is host:port, k is more[k-1]
     * (0 by default). A caller that lost its connection sets it to the
     * one after pbc_welcome.relay, so it moves on from a relay that died. */
    unsigned first;
} pbc_target;

/* Parses "ws://host:port", "http://host:port/...#room=..&token=..&key=..",
 * or "host:port" into t (port PBC_DEFAULT_PORT if none; wss:// and
 * https:// set t->tls). A token in the link replaces t->token; otherwise
 * t->token is kept. More relays come from the fragment's
 * relays=HOST:PORT,... (an entry without a scheme takes the link's), or
 * from more addresses after commas ("ws://a:7888,ws://b:7888").
 * PB_ERR_FIELD_RANGE naming the URL (no host, bad port, too many
 * relays). */
pb_err pbc_parse_url(const char *url, pbc_target *t, pb_errmsg *why) PB_WUR;

/* The relays of t in the order pbc_connect tries them, from t->first. */
unsigned pbc_target_relays(const pbc_target *t);
/* Relay i (0: t's own host:port, else more[i-1]). */
pbc_relay pbc_target_relay(const pbc_target *t, unsigned i);

/* Percent-encodes s (all but A-Z a-z 0-9 - . _ ~) into out, cut short to
 * fit cap: for a room in a path (/r/ROOM) or a link's fragment. */
void pbc_url_encode(const char *s, char *out, size_t cap);

/* What welcome said. */
typedef struct pbc_welcome {
    char room[PB_MAX_NAME_BYTES + 1];
    char name[PB_MAX_NAME_BYTES + 1];
    pb_role role;
    uint64_t client_id, head_seq;
    uint64_t now_us; /* the relay's clock when it said welcome */
    unsigned relay;  /* which of the target's relays it came from */
} pbc_welcome;

/* Connects, sends hello and waits up to timeout_ms for welcome (copied to
 * *welcome_out, which may be NULL) or the relay's error (its message in
 * why). With several relays, one that cannot be reached (or says nothing
 * within timeout_ms) gives way to the next, from t->first; a refusal
 * (a bad token) is final. NULL on failure, why then naming every relay
 * tried; close with pbc_close. */
pbc *pbc_connect(const pbc_target *t, const char *client_name,
                 uint32_t timeout_ms, pbc_welcome *welcome_out, pb_errmsg *why);

/* Opens the WebSocket only (no hello): for tests of the handshake. */
pbc *pbc_open(const pbc_target *t, uint32_t timeout_ms, pb_errmsg *why);

/* Queues a frame (sent as the socket allows: pbc_flush, pbc_wait).
 * PB_ERR_NOMEM, or the encoder's error. */
pb_err pbc_send(pbc *c, const pb_frame *f, pb_errmsg *why) PB_WUR;
/* Queues bytes as one message, as they are (tests of bad input). */
pb_err pbc_send_raw(pbc *c, const uint8_t *bytes, size_t len, bool text,
                    pb_errmsg *why) PB_WUR;
/* Services the connection until everything queued has been handed to the
 * socket (frames received meanwhile are kept for pbc_wait). PB_ERR_IO if
 * the connection ends or timeout_ms passes first. */
pb_err pbc_flush(pbc *c, uint32_t timeout_ms, pb_errmsg *why) PB_WUR;
/* Stops (or resumes) reading from the socket while still writing: a slow
 * consumer, for tests. */
void pbc_pause_reading(pbc *c, bool pause);
bool pbc_is_closed(const pbc *c);

/* Called for each frame received; return 1 to stop waiting. */
typedef int (*pbc_frame_fn)(void *ctx, const pb_frame *f);

/* How a pbc_wait ended. */
typedef enum pbc_wait_end {
    PBC_WAIT_CLOSED = -1,  /* the connection ended (why says how) */
    PBC_WAIT_DEADLINE = 0, /* timeout_ms passed */
    PBC_WAIT_STOPPED = 1,  /* fn returned 1 */
    PBC_WAIT_WOKEN = 2,    /* pbc_wake was called */
} pbc_wait_end;

/* Services the connection, handing each frame received to fn (NULL:
 * discard them), until fn stops it, the deadline passes, pbc_wake is
 * called or the connection ends. */
pbc_wait_end pbc_wait(pbc *c, uint32_t timeout_ms, pbc_frame_fn fn, void *ctx,
                      pb_errmsg *why);
/* Makes a pbc_wait in progress (or the next one) return PBC_WAIT_WOKEN
 * soon: for a program whose other thread has frames to send. The one pbc
 * function that may be called from another thread, while c is open. */
void pbc_wake(pbc *c);

/* Closes the connection and frees c. NULL is allowed. */
void pbc_close(pbc *c);

/* ---- An expression's answers (answers.c; docs/PROTOCOL.md § Expressions)
 * What the room's runtimes said of one expression, gathered from their
 * acks: a value (a committed ack with one) or a failure (a failed ack),
 * one per runtime. Zero-initialise; free with pbc_answers_free. */
typedef struct pbc_answer {
    uint64_t runtime_id;
    bool ok;    /* a value; else a failure */
    char *text; /* the value, or why it failed */
    char *out;  /* what it printed */
} pbc_answer;

typedef struct pbc_answers {
    pbc_answer *items; /* in the order they came */
    uint32_t n, cap;
} pbc_answers;

/* Adds the answer in ack; false if it is none (prepared, a bare commit, a
 * runtime that answered already) or memory ran out. */
bool pbc_answers_add(pbc_answers *a, const pb_ack *ack);
/* How many answers are values (ok) or failures (!ok). */
uint32_t pbc_answers_count(const pbc_answers *a, bool ok);
/* The values (ok) or the failures (!ok) in words, into out (cap bytes, cut
 * to fit): "59" when they are one and nothing else came, else each with
 * its count, "58 on 2 runtimes, 59 on 8". Returns how many different ones. */
uint32_t pbc_answers_describe(const pbc_answers *a, bool ok, char *out,
                              size_t cap);
void pbc_answers_free(pbc_answers *a);

/* The runtimes of a room (their client ids and names), as the relay's
 * peers frames tell them: those an expression expects answers from.
 * Zero-initialise. */
typedef struct pbc_runtimes {
    uint64_t ids[PB_MAX_PEERS];
    char names[PB_MAX_PEERS][PB_MAX_NAME_BYTES + 1];
    uint32_t n;
} pbc_runtimes;

void pbc_runtimes_track(pbc_runtimes *r, const pb_peers *p);
/* The name runtime id joined with ("" if unknown). */
const char *pbc_runtimes_name(const pbc_runtimes *r, uint64_t id);

#endif
