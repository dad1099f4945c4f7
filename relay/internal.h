/* internal.h — private to relay/: sessions, rooms, the send queues, the
 * evaluator thread and the relay's own state. The public surface is
 * relay.h. */
#ifndef PB_RELAY_INTERNAL_H
#define PB_RELAY_INTERNAL_H

#include "cc.h"
#include "lockstep.h"
#include "relay.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <signal.h>

/* ---- messages and send queues (outq.c) ----------------------------------- */

typedef struct relay_msg {
    uint32_t refs;
    size_t len;
    uint8_t bytes[]; /* LWS_PRE headroom, then len bytes of frame */
} relay_msg;

typedef struct relay_outq_item {
    relay_msg *msg;
    struct relay_outq_item *next;
} relay_outq_item;

typedef struct relay_outq {
    relay_outq_item *head, *tail;
    size_t bytes;
    uint32_t count;
} relay_outq;

relay_msg *relay_msg_new(const uint8_t *data, size_t len);
relay_msg *relay_msg_encode(const pb_frame *f, pb_errmsg *why);
void relay_msg_unref(relay_msg *m);
/* Queues a reference to m: PB_ERR_SLOW_CONSUMER if the queue would pass
 * max_bytes, PB_ERR_NOMEM; the queue is unchanged then. */
pb_err relay_outq_push(relay_outq *q, relay_msg *m, size_t max_bytes) PB_WUR;
relay_msg *relay_outq_peek(const relay_outq *q);
void relay_outq_pop(relay_outq *q);
void relay_outq_clear(relay_outq *q);

/* ---- sessions (session.c) ------------------------------------------------ */

/* A handle names a session across threads and time: a stale handle (the
 * session closed, the slot reused) is detected by its generation. */
typedef struct relay_handle {
    uint32_t index, gen;
} relay_handle;

typedef enum relay_sess_state {
    RELAY_SESS_FREE = 0,
    RELAY_SESS_AWAIT_HELLO,
    RELAY_SESS_LIVE,
    RELAY_SESS_CLOSING, /* flushing a final error, then closing */
} relay_sess_state;

typedef struct relay_room relay_room;
typedef struct relay_catchup relay_catchup;
struct relay_redis_event;

/* What a runtime said it runs on (its hello); d's strings point at the
 * arrays beside it. id: the hello's device_id (never shown to others). */
typedef struct relay_device {
    pb_device d;
    char id[PB_MAX_NAME_BYTES + 1];
    char label[PB_MAX_NAME_BYTES + 1];
    char platform[PB_MAX_CLIENT_BYTES + 1];
    char features[PB_MAX_CLIENT_BYTES + 1];
} relay_device;

/* ---- limits (limits.c) --------------------------------------------------- */

/* A token bucket; zeroed, it is full. */
typedef struct relay_bucket {
    double tokens;
    uint64_t at_us; /* when last refilled (monotonic); 0: never */
} relay_bucket;

/* Takes cost tokens from b, refilled at per_s a second up to burst since
 * it was last used; false (taking nothing) if it holds fewer. */
bool relay_bucket_take(relay_bucket *b, double per_s, double burst, double cost,
                       uint64_t now_us);
/* How long until b holds cost tokens (0: now). */
uint64_t relay_bucket_wait_us(const relay_bucket *b, double per_s, double burst,
                              double cost, uint64_t now_us);

/* Refused frames a client may send: a burst, then this many per second;
 * past that it is disconnected (a device sending garbage costs the relay
 * a decode and a reply each time). */
#define RELAY_BAD_FRAME_BURST  20
#define RELAY_BAD_FRAMES_PER_S 2

/* ---- one person's share of a room (quota.c) ------------------------------ */

/* What one token name may ask of its room, kept while its sessions come
 * and go (a reconnect does not refill it). */
typedef struct relay_quota {
    char name[PB_MAX_NAME_BYTES + 1];
    uint32_t sessions;       /* its live sessions */
    uint64_t idle_us;        /* when its last session left (monotonic) */
    relay_bucket evals;      /* evals it may send */
    relay_bucket history;    /* history_req it may send */
    relay_bucket buffer_writes; /* buffer updates, compactions, ops */
    uint32_t jobs;           /* its evals waiting or compiling */
    uint32_t catchups;       /* catch-ups streaming to its sessions */
    uint32_t strikes;        /* its compiles that hit the time limit lately */
    uint64_t heavy_until_us; /* its evals are suspected heavy until then */
    struct relay_quota *next;
} relay_quota;

/* The quota of name in room r, made on first use; NULL if out of memory. */
relay_quota *relay_quota_get(relay_room *r, const char *name);
/* Frees the quotas nobody has used for a while. */
void relay_quotas_sweep(relay_room *r, uint64_t now_us);
void relay_quotas_free(relay_room *r);

/* How long a closing session may take to flush its last frames. */
#define RELAY_CLOSE_GRACE_MS 3000

/* A client's last presence in one buffer (a buffer_aware frame as
 * forwarded), kept for those who join later (buffers.c). */
typedef struct relay_aware {
    uint64_t buffer;
    relay_msg *msg;
    struct relay_aware *next;
} relay_aware;

typedef struct relay_session {
    relay_server *srv;
    struct lws *wsi;
    uint32_t index, gen;
    relay_sess_state state;
    relay_room *room;
    struct relay_session *room_next;
    pb_role role;
    char name[PB_MAX_NAME_BYTES + 1];
    char client[PB_MAX_CLIENT_BYTES + 1];
    char peer[64];           /* address for the log */
    char want_room[PB_MAX_NAME_BYTES + 1]; /* from the URL path /r/ROOM */
    uint64_t client_id;
    relay_outq q;
    bool close_next;         /* closing: all sent; close at next WRITEABLE */
    uint8_t *rx;             /* a message being assembled from fragments */
    size_t rx_len, rx_cap;
    bool rx_overflow;
    uint32_t prehello_bytes;          /* received before hello */
    relay_quota *quota;               /* its token name's share of the room */
    uint64_t expires_s;               /* its token's expiry (Unix time) */
    char token_id[RELAY_TOKEN_ID_CHARS + 1];
    relay_catchup *catchup;           /* history streaming to it */
    bool buffers;                     /* gets the shared buffers (hello) */
    relay_aware *aware;               /* its presence, per buffer */
    relay_bucket bytes, bad;          /* limits.c */
    relay_bucket frames[PB_T_COUNT_]; /* per frame type (limits.c) */
    char close_reason[120];
    /* what the peers frame shows */
    pb_ack_state last_ack;
    uint64_t last_seq;
    int64_t skew_us;
    uint64_t mem_bytes;
    uint64_t unc_us; /* its clock uncertainty, from its last ping */
    relay_device device;
    relay_ls_runtime ls; /* joined (welcome sent), acks counted */
    /* An edge: the room a session waits for (its hello checked) until the
     * edge holds the room, and the hello's since_seq (edge.c). */
    relay_room *pending_room;
    uint64_t since_seq;
    bool want_buffers; /* its hello asked for the shared buffers */
    /* A signer: a session that stands for a client of an edge; what it is
     * sent goes to that edge through Redis (publish.c). */
    bool is_proxy;
    char proxy_edge[24];
    relay_handle proxy_of; /* the client's handle on its edge */
    uint64_t proxy_used_us;
} relay_session;

/* Takes one frame of type t from s's rate for that type (limits.c); false
 * if over it, with the rate in *per_s. */
bool relay_frame_rate_take(relay_session *s, pb_type t, uint64_t now_us,
                           double *per_s);

/* A signer's proxy session (publish.c): made live in room r with the role
 * and name the edge vouches for; NULL when out of memory. Freed with
 * relay_session_free_proxy. */
relay_session *relay_session_new_proxy(relay_server *srv, relay_room *r,
                                       pb_role role, const char *name);
void relay_session_free_proxy(relay_session *s);
/* A frame from a live session (its role and rate checked here); data and
 * len are its bytes as received. */
void relay_session_on_frame(relay_session *s, pb_frame *f, const uint8_t *data,
                            size_t len);
/* An edge: the room s waited for is there. */
void relay_session_join_pending(relay_session *s);
/* Closes s after what is queued, with reason (a fatal error already
 * sent). */
void relay_session_close(relay_session *s, const char *reason);

int relay_session_callback(struct lws *wsi, enum lws_callback_reasons reason,
                           void *user, void *in, size_t len);
relay_session *relay_session_get(relay_server *srv, relay_handle h);
/* Whether any session still has frames queued, in its queue or in lws's
 * buffer (the shutdown flush). */
bool relay_sessions_sending(const relay_server *srv);
/* Frees the slot table (after the lws context is gone). */
void relay_sessions_free(relay_server *srv);
/* Sends a frame to one session: written at once when nothing of the
 * session's is waiting, else queued until its socket is writable. A
 * session whose queue would pass max_queue_bytes is a slow consumer: its
 * queue is dropped and it gets a fatal PB_ERR_SLOW_CONSUMER error, then
 * the close. */
void relay_session_send(relay_session *s, relay_msg *m);
void relay_session_send_frame(relay_session *s, const pb_frame *f);
/* The same, but queued even when nothing waits, for WRITEABLE to write: a
 * catch-up's frames, paced by the client's socket (catchup.c). */
void relay_session_queue_frame(relay_session *s, const pb_frame *f);
void relay_session_send_error(relay_session *s, pb_err code, uint64_t req,
                              bool fatal, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Refuses a frame: an error to the sender, charged to its budget of
 * refused frames (disconnected with PB_ERR_RATE_LIMITED when spent). */
void relay_session_refuse(relay_session *s, pb_err code, uint64_t req,
                          const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- the room's recent device output (devices.c) ------------------------ */

#define RELAY_LOG_KEEP  1000u           /* log and ack frames per room */
#define RELAY_LOG_BYTES (1024u * 1024u) /* and at most this many bytes */

typedef struct relay_logitem {
    relay_msg *msg; /* a reference to the forwarded frame */
    uint64_t runtime_id;
} relay_logitem;

typedef struct relay_logring {
    relay_logitem *items; /* RELAY_LOG_KEEP slots, allocated on first use */
    uint32_t first, count;
    size_t bytes;
    uint64_t dropped; /* pushed out by newer ones */
} relay_logring;

/* ---- shared buffers (buffers.c) ------------------------------------------ */

/* An open buffer as the event loop tracks it; its updates are in the
 * history (bufstore.c). */
typedef struct relay_buffer {
    uint64_t id;
    char name[PB_MAX_NAME_BYTES + 1];
    pb_lang lang;
    uint64_t last_useq, base_useq; /* last stored update, last compaction */
    uint64_t bytes;                /* stored */
    uint32_t n_updates;            /* rows stored */
} relay_buffer;

typedef struct relay_room_buffers {
    relay_buffer *open; /* PB_MAX_BUFFERS slots, the open ones first */
    uint32_t n;
    uint64_t last_id; /* the highest id the room ever gave */
    bool loaded;      /* read from the history (on the first subscriber) */
} relay_room_buffers;

/* Where an eval came from, for buffer_eval once it is a patch. */
typedef struct relay_eval_range {
    uint64_t buffer; /* 0: not from a shared buffer */
    uint64_t peer;   /* the author's client id */
    char author[PB_MAX_NAME_BYTES + 1];
    uint8_t start[PB_MAX_RELPOS_BYTES], end[PB_MAX_RELPOS_BYTES];
    uint32_t start_len, end_len;
} relay_eval_range;

/* After welcome, for a client whose hello asked: the room's buffers, each
 * one's stored updates and the others' presence (not for runtimes). */
void relay_buffers_join(relay_session *s);
/* A subscribed client left: its presence goes. */
void relay_buffers_leave(relay_session *s);
/* buffer_op, buffer_update, buffer_compact, buffer_aware from s (its role
 * already checked). */
void relay_on_buffer_frame(relay_session *s, pb_frame *f);
/* An eval from a buffer became patch seq: buffer_eval to the room. */
void relay_buffers_announce_eval(relay_room *r, const relay_eval_range *er,
                                 uint64_t seq);
void relay_buffers_free(relay_room *r);

/* ---- rooms (room.c) ------------------------------------------------------ */

struct relay_room {
    relay_server *srv;
    char name[PB_MAX_NAME_BYTES + 1];
    uint64_t epoch;                   /* relay_history_epoch */
    uint64_t head_seq;                /* highest seq broadcast */
    uint8_t head_hash[PB_HASH_BYTES]; /* its hash; the genesis at seq 0 */
    relay_session *members;
    uint32_t n_members;
    pb_room settings;
    relay_lockstep ls;                /* apply times and commit spread */
    relay_logring logs;               /* recent device output */
    relay_quota *quotas;              /* per token name (quota.c) */
    relay_room_buffers bufs;          /* shared buffers (buffers.c) */
    relay_bucket evals;               /* evals its names may send (evalq.c) */
    uint32_t jobs;                    /* its evals waiting or compiling */
    uint64_t eval_round;              /* the evaluator's fair queue */
    struct relay_edge_room *edge;     /* an edge's view of it (edge.c) */
    struct relay_room *next;
};

relay_room *relay_room_get(relay_server *srv, const char *name);
/* The room named name if it is open, NULL otherwise (nothing made). */
relay_room *relay_room_find(relay_server *srv, const char *name);
/* A room given as a Redis command's tag (its address): rooms live as long
 * as the relay, but the answer comes later, so it is looked up again;
 * NULL if there is none. */
relay_room *relay_room_of_tag(relay_server *srv, uint64_t tag);
/* Signs where r is (epoch, head, the relay's time) and sends it to one
 * session, or to every member if to is NULL (docs/PROTOCOL.md § The signed
 * head). */
void relay_room_send_head(relay_server *srv, relay_room *r, relay_session *to);
/* The heartbeat: a signed head to every room with members. */
void relay_rooms_send_heads(relay_server *srv);
void relay_room_join(relay_room *r, relay_session *s);
void relay_room_leave(relay_session *s);
void relay_room_broadcast(relay_room *r, relay_msg *m, pb_role only);
/* Sends the room's member list (PB_PEERS_SNAPSHOT) to one session. */
void relay_room_send_peers_to(relay_room *r, relay_session *to);
/* Tells the room's people (not runtimes) that who joined, left, changed. */
void relay_room_announce(relay_room *r, const relay_session *who,
                         pb_peers_event event);
/* A patch committed to the history: it becomes the room's broadcast head,
 * goes to every member and is tracked for lockstep. */
void relay_room_publish(relay_room *r, relay_msg *patch, uint64_t seq,
                        const uint8_t hash[PB_HASH_BYTES], uint64_t created_us,
                        uint64_t apply_us, uint64_t now_us);
/* Records the commit stats of patches that have settled (all: every
 * changed one, at shutdown). Cheap when nothing changed. */
void relay_rooms_record_stats(relay_server *srv, bool all);
/* Forgets what no one has used for a while (quotas). */
void relay_rooms_sweep(relay_server *srv);
void relay_rooms_free(relay_server *srv);

/* ---- the evaluator thread (evaluator.c) ---------------------------------- */

typedef struct relay_done relay_done;

typedef struct relay_job {
    relay_done *done; /* its answer, allocated with it: answering an eval
                         never needs memory the worker might not get */
    relay_handle author;
    /* the event loop's, carried for it (the workers compare, never read) */
    relay_room *room_ref;
    relay_quota *quota;
    bool heavy;      /* for the second worker (evaluator.c) */
    bool moved;      /* it ran past worker 0's budget: compiled again */
    uint64_t round;  /* fair queueing between rooms (evaluator.c) */
    bool cancelled;  /* its author left: not signed (under the lock) */
    uint64_t req;
    char room[PB_MAX_NAME_BYTES + 1];
    char author_name[PB_MAX_NAME_BYTES + 1];
    pb_lang lang;
    char file[PB_MAX_PATH_BYTES + 1];
    char *source;
    size_t source_len;
    bool expr; /* the source is one expression (eval.expr) */
    relay_eval_range range; /* its shared buffer range, if any */
    /* a replay or restore: the patch it repeats (docs/PROTOCOL.md
     * § Replay), signed into the statement; "" and 0 otherwise */
    char origin_room[PB_MAX_NAME_BYTES + 1];
    uint64_t origin_seq;
    uint64_t lead_us;
    double tempo_bpm; /* with quantum: apply on the next quantum boundary */
    uint32_t quantum;
    struct relay_job *next;
} relay_job;

struct relay_done {
    relay_handle author;
    relay_room *room_ref;
    relay_quota *quota;
    bool dropped;            /* its author left before it was signed */
    bool struck;             /* the compile server died on it (time limit) */
    bool moved;              /* stopped on worker 0 at its budget... */
    uint32_t budget_ms;      /* ...of this many ms */
    uint64_t queued_us;      /* waited for a worker */
    uint64_t req;
    char room[PB_MAX_NAME_BYTES + 1];
    pb_err err;              /* the compiler or storage failed */
    char errmsg[256];
    cc_result res;           /* diagnostics (and defs) */
    relay_msg *patch;        /* the encoded patch frame when accepted */
    uint64_t seq;
    uint8_t hash[PB_HASH_BYTES];
    uint64_t created_us, apply_us;
    relay_eval_range range; /* the job's */
    struct relay_done *next;
};

typedef struct relay_evaluator relay_evaluator;

relay_evaluator *relay_evaluator_start(relay_server *srv, pb_errmsg *why);
/* Allocates a job with room for source_len bytes of source and its
 * answer; NULL when out of memory. */
relay_job *relay_job_new(size_t source_len);
/* Takes ownership of job (and job->source); *room_round is the room's
 * place in the fair queue, kept by the caller. */
void relay_evaluator_submit(relay_evaluator *ev, relay_job *job,
                            uint64_t *room_round);
/* Drops the waiting jobs of author (who left) and marks the one compiling
 * so that it is not signed; returns how many were dropped while waiting. */
uint32_t relay_evaluator_cancel(relay_evaluator *ev, relay_handle author);
/* The waiting jobs of q's name go to the heavy worker (a strike). */
void relay_evaluator_heavy(relay_evaluator *ev, const relay_quota *q);
/* What a job may take on worker 0 before it is stopped and compiled again
 * on the second worker: --compile-budget-ms, or RELAY_BUDGET_MS or
 * RELAY_BUDGET_FACTOR times what worker 0's jobs took lately (took_us),
 * whichever is more, but at most half the time limit. */
#define RELAY_BUDGET_MS     300u
#define RELAY_BUDGET_FACTOR 4u
uint32_t relay_budget_ms(const relay_config *c, uint64_t took_us);
/* How long a job has taken lately (µs, a moving average). */
uint64_t relay_evaluator_job_us(relay_evaluator *ev);
/* Completed jobs, oldest first; the caller frees each with relay_done_free. */
relay_done *relay_evaluator_take_done(relay_evaluator *ev);
/* On the event loop: delivers every finished eval (diagnostics to the
 * author, an accepted patch to the room). */
void relay_deliver_finished(relay_server *srv);
void relay_done_free(relay_done *d);
void relay_evaluator_stop(relay_evaluator *ev);
void relay_evaluator_free(relay_evaluator *ev);

/* ---- the relay (server.c) ------------------------------------------------ */

/* One relay: everything its event loop knows. It is the lws context's user
 * pointer, so callbacks find it from their wsi; nothing is process-wide, and
 * two relays can run in one process (each with its own thread). */
struct relay_server {
    relay_config cfg;
    struct lws_context *ctx;
    struct lws_http_mount mount; /* web/ at / */
    relay_keys keys;
    relay_history *history;  /* this thread's connection */
    relay_session **sessions; /* slot table */
    uint32_t n_slots;
    uint64_t next_client_id;
    relay_room *rooms;
    relay_evaluator *eval;
    lws_sorted_usec_list_t heads_sul; /* the signed-head heartbeat */
    char history_path[4200];
    int port;
    int lock_fd; /* DIR/relay.lock, held while the relay lives */
    /* strangers (guard.c) */
    struct relay_addr *addrs; /* addresses with connections or a rate */
    uint32_t n_addrs, n_open;
    struct relay_addr *admitting;      /* accepted, its wsi not yet made */
    struct relay_wsi_addr **wsi_addrs; /* which address each wsi is from */
    uint64_t n_refused, refused_logged_us;
    /* catch-ups (catchup.c): how many stream, who waits to */
    uint32_t n_catchups;
    relay_catchup *catchup_wait, **catchup_wait_tail;
    bool catchup_starting;
    uint32_t n_jobs; /* evals waiting or compiling (evalq.c) */
    /* revoked tokens (revoke.c), and the last revocation read */
    struct relay_revoked *revoked;
    uint64_t revoked_after;
    relay_history *revoke_db; /* read-only, for the revocations */
    lws_sorted_usec_list_t revoke_sul; /* every second (revoke.c) */
    /* More than one relay (docs/ARCHITECTURE.md): the Redis connection of
     * a signer (publish.c) or an edge (edge.c), NULL without --redis */
    struct relay_redis *redis;
    struct relay_signer *signer;
    struct relay_edge *edge;
    lws_sorted_usec_list_t cluster_sul; /* every second: sweeps, timeouts */
    volatile sig_atomic_t stopping; /* relay_stop was called */
};

/* ---- a signer's half of Redis (publish.c) -------------------------------- */

/* Connects to cfg.redis_url, publishes the rooms it has and serves the
 * edges' requests from then on. */
pb_err relay_signer_start(relay_server *srv, pb_errmsg *why) PB_WUR;
/* An accepted patch (committed): to the room's stream and channel. */
void relay_signer_patch(relay_server *srv, relay_room *r, relay_msg *patch,
                        uint64_t seq);
/* A frame the room's members get (only: a role filter as in
 * relay_room_broadcast): to every edge. */
void relay_signer_broadcast(relay_server *srv, relay_room *r, relay_msg *m,
                            pb_role only);
/* The room's latest signed head, kept in Redis for edges that (re)join
 * while the signer is away. */
void relay_signer_keep_head(relay_server *srv, relay_room *r, relay_msg *m);
/* A revocation, to every edge (a set in Redis, and a message). */
void relay_signer_revoked(relay_server *srv, const char *room, const char *name,
                          const char *id);
/* What a proxy session is sent, to its edge (close: then close it). */
void relay_signer_to_edge(relay_session *s, relay_msg *m, bool close);
void relay_signer_free(relay_server *srv);

/* ---- an edge (edge.c) ------------------------------------------------------
 */

pb_err relay_edge_start(relay_server *srv, pb_errmsg *why) PB_WUR;
/* A room met for the first time on an edge: what its cache holds. */
void relay_edge_room_init(relay_room *r);
/* Whether the edge holds r (its epoch known and its cache caught up with
 * what Redis had when it looked) as far as since_seq (a client that held
 * more, from another edge, waits until this one does): then a join goes
 * ahead at once. */
bool relay_edge_room_ready(const relay_room *r, uint64_t since_seq);
/* s (hello checked) waits for r; relay_session_join_pending follows. */
void relay_edge_wait_room(relay_session *s, relay_room *r);
/* Frames an edge does not handle itself go to the signer: true if f was
 * one of them (answered either way). */
bool relay_edge_forward(relay_session *s, const pb_frame *f,
                        const uint8_t *data, size_t len);
/* The signer's last signed head of r, if it names what the edge holds. */
void relay_edge_send_head(relay_room *r, relay_session *to);
/* s is closing: the signer forgets its proxy, r its wait. */
void relay_edge_session_closed(relay_session *s);
/* What Redis sent an edge (relay_cluster_deliver hands it over). */
void relay_edge_event(relay_server *srv, struct relay_redis_event *e);
void relay_edge_room_free(relay_room *r);
void relay_edge_free(relay_server *srv);

/* Both: what Redis sent, on the event loop (LWS_CALLBACK_EVENT_WAIT_CANCELLED).
 */
void relay_cluster_deliver(relay_server *srv);

/* ---- strangers (guard.c) ------------------------------------------------- */

/* Bytes a client may send before its hello (a hello is under 2 KiB). */
#define RELAY_MAX_HELLO_BYTES 8192u

/* protocols[0]: the pages over HTTP, and the connection caps. */
int relay_http_callback(struct lws *wsi, enum lws_callback_reasons reason,
                        void *user, void *in, size_t len);
/* Whether the upgrade on wsi may open a patchbay socket: no Origin, the
 * relay's own, or an --allow-origin one. The Origin (lower case) in
 * origin either way, for the log. */
bool relay_guard_origin_ok(relay_server *srv, struct lws *wsi, char *origin,
                           size_t cap);
void relay_guard_sweep(relay_server *srv);
void relay_guard_free(relay_server *srv);

/* The relay a wsi belongs to. */
relay_server *relay_of(struct lws *wsi);

/* ---- revoked and expired tokens (revoke.c) ------------------------------ */

typedef struct relay_revoked relay_revoked;

/* Why a token (its room, name and id) may not join, or NULL. */
const char *relay_revoked_why(const relay_server *srv, const char *room,
                              const char *name, const char *id);
/* Reads the revocations recorded so far, then every second reads new ones
 * (closing the live sessions they name) and closes the live sessions
 * whose token has expired, on the event loop. */
void relay_revocations_start(relay_server *srv);
/* Records a revocation (room and name, or id; a repeat is ignored) and
 * closes the live sessions it names; a signer tells its edges. */
void relay_revoked_add(relay_server *srv, const char *room, const char *name,
                       const char *id);
/* Calls fn for every revocation known. */
void relay_revoked_each(relay_server *srv,
                        void (*fn)(relay_server *srv, const char *room,
                                   const char *name, const char *id));
void relay_revocations_free(relay_server *srv);

/* ---- admitting evals (evalq.c) ------------------------------------------ */

/* A token name whose compile ran into the time limit (or killed the
 * compile server) is penalised for RELAY_HEAVY_US times its strikes (at
 * most RELAY_HEAVY_MAX_US): its evals go to a worker of their own and it
 * may have one waiting or compiling. */
#define RELAY_HEAVY_US     (30u * 1000000u)
#define RELAY_HEAVY_MAX_US (600u * 1000000u)

/* An eval from s: checked against its name's and room's rates and the
 * bounded queues (PB_ERR_RATE_LIMITED, saying when to retry), then queued. */
void relay_eval_admit(relay_session *s, const pb_eval *ev);
/* A job the event loop admitted is over (delivered, dropped): its place in
 * the queues is free. A strike penalises its author. */
void relay_eval_settled(relay_server *srv, relay_room *room, relay_quota *q,
                        uint32_t n, bool struck);
/* s is closing: its evals are dropped (the one compiling is not signed). */
void relay_eval_cancel(relay_session *s);

/* ---- history to clients (catchup.c) -------------------------------------- */

/* A catch-up streams a frame whenever the client's send queue is below
 * this; history_req: per token name, 2 a second with a burst of 10; at
 * most 2 catch-ups of one token name stream at once. */
#define RELAY_CATCHUP_LOW_WATER (512u * 1024u)
/* What one flush of a session's queue writes at most before it waits for
 * WRITEABLE (session.c), so that a reader as fast as the relay cannot hold
 * the loop. */
#define RELAY_FLUSH_BYTES (256u * 1024u)
#define RELAY_HISTORY_PER_S     2.0
#define RELAY_HISTORY_BURST     10.0
#define RELAY_CATCHUPS_PER_NAME 2u

/* After welcome: the room's state up to the broadcast head (or, with
 * since_seq, every patch after it) in history frames with req 0, streamed;
 * live patches are held back from s until its last frame. */
void relay_send_catchup(relay_session *s, uint64_t since_seq);
/* Answers a history_req (rate-limited per token name, one at a time per
 * session), streamed. */
void relay_send_history(relay_session *s, const pb_history_req *q);
/* Sends s the next frames of its catch-up while its queue is short. */
void relay_catchup_pump(relay_session *s);
/* Ends s's catch-up (when it closes), letting a waiting one start. */
void relay_catchup_end(relay_session *s);
/* Whether s is still being sent its join catch-up (live patches wait). */
bool relay_session_catching_up(const relay_session *s);
/* Frees every catch-up (the relay is going away). */
void relay_catchups_free(relay_server *srv);

/* ---- the room's devices as a test farm (devices.c) ---------------------- */

void relay_device_set(relay_session *s, const pb_hello *h);
/* s, a runtime saying hello to room r, is a runtime already there (the
 * same token name and device_id) come back: that older connection leaves
 * the room now and is closed with PB_ERR_REPLACED. */
void relay_device_replace(relay_room *r, const relay_session *s);
/* test_req / snapshot_req from an editor, to the room's runtimes. */
void relay_on_test_req(relay_session *s, pb_frame *f);
void relay_on_snapshot_req(relay_session *s, pb_frame *f);
/* snapshot from a runtime: checked, then to the editor that asked. */
void relay_on_snapshot(relay_session *s, pb_frame *f);
pb_err relay_png_check(const pb_snapshot *sn, pb_errmsg *why) PB_WUR;
/* Keeps a reference to a forwarded log or ack frame of runtime_id. */
void relay_logring_push(relay_room *r, relay_msg *m, uint64_t runtime_id);
void relay_logring_free(relay_logring *lr);
/* Replays the kept frames (of one runtime, or all), then log_end. */
void relay_on_log_req(relay_session *s, const pb_log_req *q);

/* ---- clocks (clock.c) ---------------------------------------------------- */

uint64_t relay_now_us(void);  /* the room clock: wall clock, µs since 1970 */
uint64_t relay_mono_us(void); /* monotonic, µs: deadlines and rate limits */

#endif
