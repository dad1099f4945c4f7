/* loadgen.h — what loadgen.c (the load generator: the patchbay protocol,
 * the rounds, the report) and loadgen_ws.c (its epoll loop and WebSocket
 * client) share. Private to bench/. */
#ifndef PB_BENCH_LOADGEN_H
#define PB_BENCH_LOADGEN_H

#include "pb_protocol.h"
#include "pbc.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum {
    LG_MAX_PIDS = 16,                     /* --cpu-pid P,P,... */
    LG_MAX_HANDSHAKES = 256,              /* connections opening at once */
    LG_MAX_MSG = PB_MAX_FRAME_BYTES + 16, /* largest message we accept */
    LG_WS_OPCODE_CONT = 0,
    LG_WS_OPCODE_BIN = 2,
    LG_WS_OPCODE_CLOSE = 8,
    LG_WS_OPCODE_PING = 9,
    LG_WS_OPCODE_PONG = 10,
};

typedef enum lg_state {
    LG_IDLE,       /* not connected yet */
    LG_CONNECTING, /* TCP connect in progress */
    LG_UPGRADING,  /* HTTP upgrade sent, waiting for 101 */
    LG_JOINING,    /* hello sent: welcome and the catch-up are coming */
    LG_READY,      /* caught up (raw: upgraded): counting deliveries */
    LG_CLOSED,
} lg_state;

typedef struct lg_conn {
    int fd;
    lg_state state;
    bool is_editor;
    uint8_t *in; /* received bytes not yet parsed */
    size_t in_len, in_cap;
    uint8_t *out; /* bytes the socket did not take yet */
    size_t out_len, out_off;
    uint32_t got;     /* live deliveries counted */
    uint32_t repeats; /* deliveries of a round it already had */
    uint32_t next;    /* the round it expects next */
} lg_conn;

typedef struct lg_round {
    uint64_t sent_us, first_us, last_us;
    uint32_t count;
} lg_round;

typedef struct lg_opts {
    pbc_target target; /* where the runtimes connect, and their token */
    char editor_token[PB_MAX_TOKEN_BYTES + 1];
    const char *source_file;
    uint32_t clients, evals, gap_ms, timeout_ms, src_addrs, payload_bytes;
    const char *editor_url; /* where the editor connects ("": --url's) */
    int cpu_pids[LG_MAX_PIDS];
    unsigned n_cpu_pids;
    bool raw, json, quiet;
    bool wait_go; /* --wait-go: a line on stdin before the rounds */
} lg_opts;

typedef struct lg {
    lg_opts o;
    int ep;
    /* the relays of --url (runtime i uses dst[i % n_dst]); then the
     * editor's */
    struct sockaddr_in dst[PBC_MAX_RELAYS + 1];
    unsigned n_dst;
    lg_conn *conns; /* o.clients runtimes, then the editor */
    lg_round *rounds;
    char *source;
    uint64_t base_seq; /* the warm-up patch's seq: round r is base+1+r */
    uint64_t diag_seq; /* the last diag: seq, or 0 with the error in diag_err */
    uint64_t diag_req;
    char diag_err[256];
    uint32_t ready, closed, handshaking, opened; /* runtimes only */
    uint32_t patch_bytes; /* the size of the last patch frame seen */
    char fail[512];       /* the first fatal problem */
} lg;

/* ---- loadgen_ws.c ----------------------------------------------------------
 */
uint64_t lg_now_us(void);
/* Keeps the first fatal problem (printed at the end, exit status 1). */
void lg_fail(lg *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Opens connection i (a runtime, or the editor at index o.clients): TCP,
 * then the WebSocket upgrade; lg_on_upgraded follows. */
void lg_conn_open(lg *g, lg_conn *c, uint32_t i);
/* Sends one masked WebSocket message; -1 if the connection failed. */
int lg_ws_send(lg *g, lg_conn *c, int opcode, const uint8_t *p, size_t len);
int lg_send_frame(lg *g, lg_conn *c, const pb_frame *f);
/* The connection is in (counted as ready: it is measured from now). */
int lg_become_ready(lg *g, lg_conn *c);
/* Services the sockets for up to timeout_ms, or until done(g) holds or a
 * fatal problem was kept. */
void lg_serve(lg *g, uint32_t timeout_ms, bool (*done)(lg *));

/* ---- loadgen.c: what the WebSocket layer calls
 * -------------------------------- */
/* The upgrade was accepted: say hello (raw: ready at once). */
int lg_on_upgraded(lg *g, lg_conn *c);
/* One binary message arrived; -1 closes the connection. */
int lg_on_frame(lg *g, lg_conn *c, const uint8_t *p, size_t len);

#endif
