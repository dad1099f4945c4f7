/* internal.h — private to nrepl/: the server's state and the functions its
 * files share.
 *
 *   server.c  the lws event loop: the TCP listener (a raw-socket vhost),
 *             clients, reading bencode, the send queues, handles
 *   room.c    the room's connection on a thread of its own (the client
 *             library's pbc), frames to and from the event loop
 *   ops.c     the nREPL ops and their replies
 *   eval.c    eval and load-file: forms to evals, diagnostics and values
 *             back as nREPL replies
 *   index.c   the room's vars from its history, for completions and info
 *   forms.c   top-level forms of Clojure source and what a definition says
 *   bencode.c bencode (bencode.h)
 *
 * Everything but room.c's thread runs on the event loop's thread. */
#ifndef PB_NREPL_INTERNAL_H
#define PB_NREPL_INTERNAL_H

#include "bencode.h"
#include "nrepl.h"

#include <libwebsockets.h>
#include <stdio.h>

#define NREPL_VERSION "1.0.0" /* the nREPL protocol version we speak */

/* ---- clients (server.c) -------------------------------------------------
 * A client is reached through a handle: a reply for a client that has gone
 * meanwhile finds nothing instead of freed memory. */
typedef struct nrepl_handle {
    uint32_t index, gen;
} nrepl_handle;

typedef struct nrepl_client nrepl_client;

/* ---- sessions (ops.c) ---------------------------------------------------- */
typedef struct nrepl_session {
    char id[40];
    char ns[128]; /* the namespace replies name (ns forms set it) */
    struct nrepl_eval *running; /* its evals run one at a time */
    struct nrepl_session *next;
} nrepl_session;

/* ---- the room (room.c) --------------------------------------------------- */
typedef struct nrepl_room nrepl_room;

typedef enum room_event_kind {
    ROOM_FRAME, /* bytes: one frame from the relay */
    ROOM_UP,    /* joined again (text: who and where) */
    ROOM_DOWN,  /* the connection ended (text: why) */
} room_event_kind;

typedef struct room_event {
    room_event_kind kind;
    uint8_t *bytes;
    size_t len;
    char text[256];
    struct room_event *next;
} room_event;

/* Takes over c (connected, welcomed) and serves it on a thread; when it
 * ends, reconnects to t. Events wake srv's event loop. */
nrepl_room *room_start(nrepl_server *srv, pbc *c, const pbc_target *t,
                       pb_errmsg *why);
/* Queues a frame for the relay (any thread but the room's); false if it
 * could not be encoded. */
bool room_send(nrepl_room *r, const pb_frame *f, pb_errmsg *why);
/* The next event from the room, or NULL; free with room_event_free. */
room_event *room_take(nrepl_room *r);
void room_event_free(room_event *e);
void room_stop(nrepl_room *r); /* ends the thread, closes the connection */

/* ---- the room's vars (index.c) ------------------------------------------- */
typedef struct nrepl_var {
    char name[PB_MAX_NAME_BYTES + 1];  /* as the registry knows it (C) */
    char lname[PB_MAX_NAME_BYTES + 1]; /* as a Lisp patch wrote it, or "" */
    char sig[PB_MAX_TYPE_BYTES + 1];
    char author[PB_MAX_NAME_BYTES + 1];
    char lang[8];
    uint64_t seq;
    char *arglists; /* "([v])", or the C prototype */
    char *doc;      /* a Lisp docstring, or "" */
    char *source;   /* the definition's text, or "" */
    uint32_t line;  /* of the definition in its patch's source */
} nrepl_var;

typedef struct nrepl_index {
    nrepl_var *vars;
    uint32_t n, cap;
    uint64_t seq; /* the highest patch recorded */
} nrepl_index;

/* Records what a verified-looking patch (stmt, source) defines. The
 * statement is the relay's: nothing here trusts it beyond naming. */
void index_add_patch(nrepl_index *ix, const pb_patch *p);
/* The var a name means: Lisp spelling first, then C. */
const nrepl_var *index_find(const nrepl_index *ix, const char *name);
void index_free(nrepl_index *ix);

/* ---- forms (forms.c) ----------------------------------------------------- */
typedef enum form_kind {
    FORM_DEFINITION, /* defn, defn-, def, defonce, deftest */
    FORM_EXPRESSION, /* anything else: runs once */
    FORM_NS,         /* (ns x) or (in-ns 'x): the session's namespace */
    FORM_IGNORED,    /* (comment …), (declare …), require and friends */
} form_kind;

typedef struct nrepl_form {
    uint32_t from, to;  /* bytes of the source */
    uint32_t line, col; /* 1-based, where it starts */
    form_kind kind;
    char name[PB_MAX_NAME_BYTES + 1]; /* a definition's name, a ns */
} nrepl_form;

/* Splits src into its top-level forms (at most max). Returns how many, or
 * -1 with err naming where a form is not closed (line:col). */
int forms_split(const char *src, size_t len, nrepl_form *out, uint32_t max,
                char *err, size_t err_len);
/* What a Lisp definition form says: arglists ("([v])" or "([x] [x y])")
 * and its docstring, each malloc'd (NULL when absent). */
void forms_def_info(const char *src, const nrepl_form *f, char **arglists,
                    char **doc);

/* ---- evals (eval.c) -----------------------------------------------------
 * One eval or load-file request, done unit by unit: a run of definitions
 * is one patch, each expression another (docs/PROTOCOL.md § Expressions). */
typedef struct nrepl_eval nrepl_eval;

/* Starts (or queues behind the session's running one) an eval of code:
 * replies go to client c for message id. file, line and col say where the
 * code is in its file, so that diagnostics are at the file's positions. */
void eval_submit(nrepl_server *s, nrepl_handle c, nrepl_session *session,
                 const char *id, const char *code, const char *file,
                 uint32_t line, uint32_t col);
/* A frame from the room that may concern an eval (diag, ack, peers,
 * error). */
void eval_on_frame(nrepl_server *s, const pb_frame *f);
/* The relay connection ended: evals waiting on it fail. */
void eval_on_room_down(nrepl_server *s, const char *why);
/* Evals whose runtimes were given until now; call now and then. */
void eval_tick(nrepl_server *s, uint64_t now_ms);
/* interrupt: stops waiting for the eval id of session (replying to it as
 * interrupted); false if it has none of that id (or none at all when id
 * is ""). */
bool eval_interrupt(nrepl_server *s, nrepl_session *session, const char *id);
/* Forgets a session's evals (closed session or client). */
void eval_drop_session(nrepl_server *s, nrepl_session *session);

/* ---- the server (server.c) ----------------------------------------------- */
struct nrepl_server {
    nrepl_desc d; /* with the defaults filled in */
    char bind[64], port_file[512];
    struct lws_context *ctx;
    lws_sorted_usec_list_t tick; /* evals' deadlines, every 100 ms */
    int port;
    bool wrote_port_file;
    volatile int stopping;
    nrepl_client **clients; /* by handle index; NULL when free */
    uint32_t *gens;
    uint32_t n_clients, cap_clients, n_live;
    nrepl_session *sessions;
    nrepl_room *room;
    bool is_room_up;
    char room_name[PB_MAX_NAME_BYTES + 1], user[PB_MAX_NAME_BYTES + 1];
    pbc_runtimes runtimes; /* the room's runtimes (peers) */
    nrepl_index index;
    nrepl_eval *evals; /* every eval running or queued */
    uint64_t next_req;
};

void nrepl_log(const nrepl_server *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
uint64_t nrepl_now_ms(void);

/* Sends msg (a dictionary; id and session are added when given) to the
 * client of handle h, if it is still there. */
void nrepl_reply(nrepl_server *s, nrepl_handle h, const char *id,
                 const char *session, ben_arena *a, ben *msg);
/* A reply of status words only ("done", or "error", "unknown-op", "done"),
 * NULL-terminated. */
void nrepl_reply_status(nrepl_server *s, nrepl_handle h, const char *id,
                        const char *session, const char *const *status);

/* ops.c: one request from client h. */
void ops_handle(nrepl_server *s, nrepl_handle h, ben_arena *a, const ben *msg);
nrepl_session *ops_session(nrepl_server *s, const char *id);
void ops_free_sessions(nrepl_server *s);

#endif /* PB_NREPL_INTERNAL_H */
