/* nrepl.h — `patchbay nrepl`: an nREPL server (bencode over TCP, the
 * protocol of CIDER, Calva, Conjure and every Clojure editor) that is an
 * editor of one room. What a client evaluates is sent to the room: a
 * definition becomes a patch, an expression runs once on every runtime and
 * the reply carries its value (docs/PROTOCOL.md § Expressions); a compile
 * error comes back as an nREPL error at the file's line and column. This is
 * the whole public surface of nrepl/; the ops it answers are listed in
 * nrepl/README.md.
 *
 * Threads: nrepl_new, nrepl_serve and nrepl_free on one thread (the server's
 * event loop); nrepl_stop from any thread or a signal handler. The room's
 * connection runs on a second thread of its own, started by nrepl_serve. */
#ifndef PB_NREPL_H
#define PB_NREPL_H

#include "pb_protocol.h"
#include "pbc.h"

#include <stdbool.h>
#include <stdint.h>

#define NREPL_DEFAULT_BIND              "127.0.0.1"
#define NREPL_DEFAULT_PORT_FILE         ".nrepl-port"
#define NREPL_DEFAULT_MAX_CLIENTS       64u
#define NREPL_DEFAULT_MAX_MESSAGE_BYTES (1024u * 1024u)
#define NREPL_DEFAULT_EVAL_TIMEOUT_MS   10000u

/* Configuration; zero means the default stated for each field. */
typedef struct nrepl_desc {
    pbc_target target;          /* the room: relay, token (editor or owner) */
    const char *bind;           /* NREPL_DEFAULT_BIND */
    int port;                   /* 0: a free port (nrepl_port says which) */
    const char *port_file;      /* NREPL_DEFAULT_PORT_FILE; "" writes none */
    uint32_t max_clients;       /* NREPL_DEFAULT_MAX_CLIENTS */
    uint32_t max_message_bytes; /* NREPL_DEFAULT_MAX_MESSAGE_BYTES: a bigger
                                   message is refused and its client closed */
    uint32_t eval_timeout_ms;   /* NREPL_DEFAULT_EVAL_TIMEOUT_MS: how long an
                                   eval waits for the runtimes' values */
    bool quiet;                 /* no log lines on stderr */
} nrepl_desc;

typedef struct nrepl_server nrepl_server;

/* Listens (the port file is written once the port is known) and joins the
 * room: returns NULL with a message in why if the port cannot be bound, or
 * the relay refuses the token (a wrong role, an expired token, another
 * room) or cannot be reached. Free with nrepl_free. */
nrepl_server *nrepl_new(const nrepl_desc *desc, pb_errmsg *why);
/* The TCP port clients connect to. */
int nrepl_port(const nrepl_server *s);
/* Serves clients until nrepl_stop; reconnects to the relay when it goes
 * away (clients stay connected; evals meanwhile get an error). Returns
 * PB_OK, or an error if the event loop failed. */
pb_err nrepl_serve(nrepl_server *s, pb_errmsg *why);
/* Makes nrepl_serve return soon; async-signal-safe. */
void nrepl_stop(nrepl_server *s);
/* Closes every client, leaves the room, removes the port file it wrote. */
void nrepl_free(nrepl_server *s);

#endif /* PB_NREPL_H */
