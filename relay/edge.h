/* edge.h — private to an edge's files (edge.c: the room cache and what
 * Redis sends; edge_forward.c: what goes to the signer). */
#ifndef PB_RELAY_EDGE_H
#define PB_RELAY_EDGE_H

#include "internal.h"
#include "redis.h"

/* An eval the signer took but did not answer for this long is answered
 * by the edge ("the room's signer is unavailable"). */
#define EVAL_WAIT_US (30u * 1000000u)

typedef struct pending_eval {
    relay_handle h;
    uint64_t req;
    uint64_t until_us;
    uint64_t id; /* its PUBLISH's tag */
    struct pending_eval *next;
} pending_eval;

struct relay_edge {
    char id[24];
    bool key_checked;                           /* pb:key read (on_key) */
    char other_key[2 * PB_PUBLICKEY_BYTES + 1]; /* the last one said */
    pending_eval *evals;
    uint64_t next_id;
    uint64_t sent;    /* forwards and "client left"s sent: their numbers */
    const char *said; /* what say_dropped last said, and when */
    uint64_t said_us;
};

/* Publishes e to the signer (pb:signer); fn as for relay_redis_publish. */
void relay_edge_to_signer(relay_server *srv, relay_env *e, relay_redis_fn fn,
                          uint64_t tag);
/* Forgets the eval req of h; with fmt (one %llu for req, one %s for
 * detail) it is answered with PB_ERR_COMPILER_DOWN first. False if no
 * such eval waits. */
bool relay_edge_answer_eval(relay_server *srv, relay_handle h, uint64_t req,
                            const char *fmt, const char *detail);

/* The signer's frame (or close) to one client of this edge: rd is a
 * CLIENT envelope past its kind. Passed on only if it is what the signer
 * sends one client of an edge: the answer (diag) to an eval of that
 * client's that waits for one, or an error; anything else by handle (a
 * head, a patch, settings) would go around what the edge checks, so
 * whoever writes to Redis cannot send it that way. */
void relay_edge_on_client(relay_server *srv, relay_env_reader *rd);
/* Says what the edge dropped from Redis: each kind (what, by address)
 * at most once a second, so a flood of one kind does not flood the log. */
void relay_edge_say_dropped(relay_server *srv, const char *what);

#endif
