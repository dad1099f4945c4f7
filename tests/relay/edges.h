/* edges.h — what the edge tests share (test_relay_edges_faults.c: faults
 * of relays and Redis; test_relay_edges_redis.c and
 * test_relay_edges_bounds.c: what a writer to Redis can and cannot make
 * relays do): a real redis-server on a free loopback
 * port, a signer (`patchbay serve --redis`) and edges (`serve --edge
 * --redis`), driven by real WebSocket clients. The runtimes here are the
 * harness's: they verify every patch's signature, hashes and chain link
 * with the protocol library (pb_patch_verify, pb_chain_check: the code the
 * wasm runtime runs), so a patch missed, doubled or modified on the way is
 * an error they count. Every runtime here is in room "jam". */
#ifndef PB_TEST_RELAY_EDGES_H
#define PB_TEST_RELAY_EDGES_H

#include "harness.h"
#include "redis.h"

#include <hiredis/hiredis.h>

typedef struct runtime {
    pbc *c;
    patch_log l;
    char name[32];
} runtime;

/* Joins edge as runtime name, verifying with signer's key. */
bool rt_join(runtime *rt, relay *edge, relay *signer, const char *name);
/* Connects again (to edge), saying what it holds: it gets what follows.
 * Sends hello and does not wait for the answer. */
bool rt_rejoin(runtime *rt, relay *edge);
/* Services every runtime until each holds seq, caught up (or ms pass). */
bool all_reach(runtime *rts, int n, uint64_t seq, uint32_t ms);
/* Every patch 1..seq once, in order, all verified. */
void check_exact(const runtime *rt, uint64_t seq);
void rts_close(runtime *rts, int n);
/* Services rt (collecting what it gets) for ms. */
void rt_listen(runtime *rt, uint32_t ms);

/* A signer and two edges on one Redis. */
typedef struct cluster {
    redis_srv redis;
    relay signer, a, b;
} cluster;

/* Starts Redis, the signer tmp_root/NAME-signer and edges NAME-edge-a and
 * NAME-edge-b. */
bool cluster_start(cluster *cl, const char *name);
/* Stops what still runs cleanly: a relay that leaks or trips a sanitizer
 * on the way out does not exit 0 (checked). */
void cluster_stop(cluster *cl);
/* A cluster (cluster_start) whose runtime rt, on edge a, holds seq 1,
 * evaluated through a by *ed (left open). */
bool cluster_with_one_patch(cluster *cl, const char *name, runtime *rt,
                            pbc **ed);
/* Evaluates the k-th sample source as eval req; its seq, 0 if refused. */
uint64_t eval_n(pbc *ed, uint64_t req, unsigned k);

/* One command on the Redis of port (hiredis' format: %b for bytes and
 * their length); its reply (freeReplyObject), NULL if there was none. */
redisReply *redis_do(int port, const char *fmt, ...);
/* PUBLISHes envelope e on channel; false if Redis did not take it. */
bool redis_publish(int port, const char *channel, const relay_env *e);
/* The signer's envelope of a frame (len bytes, may be 0) to room jam of
 * epoch. */
void broadcast_env(relay_env *e, uint64_t epoch, const void *frame, size_t len);
/* Publishes frame on room jam's channel as the signer broadcasts it. */
bool broadcast_on_jam(const cluster *cl, uint64_t epoch, const pb_buf *frame);
/* Whether rt refuses nothing its edge passes on for ms (what it refused
 * is said). */
bool refuses_nothing_within(runtime *rt, uint32_t ms);
/* A runtime joining edge now gets the room: patches 1..seq, verified
 * (checked). */
void a_joiner_reaches(relay *edge, relay *signer, uint64_t seq);

#endif
