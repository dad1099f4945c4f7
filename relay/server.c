/* server.c — `patchbay serve`: one libwebsockets context serving web/ over
 * HTTP and the patchbay protocol on the same port, the relay's keys, the
 * history, and the evaluator thread; a clean shutdown answers the evals in
 * flight, flushes what is queued and closes the database. */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#ifndef PB_DEFAULT_WEB_DIR
#define PB_DEFAULT_WEB_DIR "web"
#endif

static struct lws_protocols protocols[] = {
    {"http", lws_callback_http_dummy, 0, 0, 0, NULL, 0},
    {"patchbay", relay_session_callback, sizeof(relay_session *), 65536, 0,
     NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0}, /* terminator */
};

static void defaults(relay_config *c)
{
    if (!c->port)
        c->port = 7888;
    if (!c->bind)
        c->bind = "127.0.0.1";
    if (!c->data_dir)
        c->data_dir = "patchbay-data";
    if (!c->web_dir)
        c->web_dir = PB_DEFAULT_WEB_DIR;
    if (!c->max_clients_per_room)
        c->max_clients_per_room = 256;
    if (!c->evals_per_second)
        c->evals_per_second = 10;
    if (!c->bytes_per_second)
        c->bytes_per_second = 4u << 20;
    if (!c->max_queue_bytes)
        c->max_queue_bytes = 32u << 20;
    if (!c->hello_timeout_ms)
        c->hello_timeout_ms = 5000;
    if (!c->lead_us)
        c->lead_us = 50000;
    if (!c->compile_timeout_ms)
        c->compile_timeout_ms = CC_DEFAULT_TIMEOUT_MS;
}

/* Delivers one finished eval: diagnostics to its author, an accepted patch
 * to the whole room. */
void relay_deliver_done(relay_server *srv, relay_done *d)
{
    relay_session *author = relay_session_get(srv, d->author);
    if (d->err) {
        lwsl_user("eval %llu in room %s failed: %s\n",
                  (unsigned long long)d->req, d->room, d->errmsg);
        if (author)
            relay_session_send_error(author, d->err, d->req, false, "%s",
                                     d->errmsg);
        relay_done_free(d);
        return;
    }
    if (author) {
        pb_diag_item items[CC_MAX_DIAGS];
        uint32_t n = 0;
        for (uint32_t i = 0; i < d->res.n_diags && n < PB_MAX_DIAGS; i++) {
            const cc_diag *cd = &d->res.diags[i];
            items[n++] = (pb_diag_item){cd->line, cd->col, 0, 0, cd->severity,
                                        pb_cstr(cd->message)};
        }
        pb_frame f = {.type = PB_T_DIAG};
        f.diag.req = d->req;
        f.diag.ok = d->patch != NULL;
        f.diag.seq = d->seq;
        f.diag.items = items;
        f.diag.n_items = n;
        relay_session_send_frame(author, &f);
    }
    if (d->patch) {
        uint64_t now = relay_now_us();
        relay_room *room = relay_room_get(srv, d->room);
        if (room) {
            room->head_seq = d->seq;
            memcpy(room->head_hash, d->hash, PB_HASH_BYTES);
            relay_room_broadcast(room, d->patch, PB_ROLE_NONE);
            relay_lockstep_patch(&room->ls, d->seq, d->created_us,
                                 d->apply_us, now);
        }
        char vars[256] = "";
        size_t n = 0;
        for (uint32_t i = 0; i < d->res.n_defs && n < sizeof vars; i++)
            n += (size_t)snprintf(vars + n, sizeof vars - n, "%s%s",
                                  i ? ", " : "", d->res.defs[i].name);
        lwsl_user("patch %s#%llu by %s: %s (%zu bytes, compiled in %.1f ms, "
                  "sent %.1f ms after signing, applies in %.1f ms)\n",
                  d->room, (unsigned long long)d->seq,
                  author ? author->name : "(gone)", vars, d->res.module_len,
                  d->res.total_us / 1000.0,
                  (double)(now - d->created_us) / 1000.0,
                  (double)((int64_t)(d->apply_us - now)) / 1000.0);
    }
    relay_done_free(d);
}

/* Records the commit stats of patches that have settled (all: every
 * changed one, at shutdown). Cheap when nothing changed. */
static void flush_commit_stats(relay_server *srv, bool all)
{
    uint64_t now = relay_now_us();
    relay_commit_stats st[RELAY_LS_SLOTS];
    for (relay_room *r = srv->rooms; r; r = r->next) {
        uint32_t n = relay_lockstep_take_settled(&r->ls, now, all, st,
                                                 RELAY_LS_SLOTS);
        pb_errmsg why;
        if (n &&
            relay_history_put_commit_stats(srv->history, r->name, st, n, &why))
            lwsl_err("room %s: %s\n", r->name, why.text);
        for (uint32_t i = 0; i < n && !srv->cfg.quiet; i++)
            lwsl_user("patch %s#%llu: committed by %u runtimes within %.2f ms"
                      " (latest %+.2f ms after its apply time)\n",
                      r->name, (unsigned long long)st[i].seq, st[i].runtimes,
                      (double)st[i].spread_us / 1000.0,
                      (double)st[i].max_late_us / 1000.0);
    }
}

/* One relay per data directory: a second would fork the chains. The lock
 * goes away with the process, however it ends. */
static int lock_data_dir(const char *dir, pb_errmsg *why)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/relay.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(why->text, sizeof why->text, "cannot open %s: %s", path,
                 strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        snprintf(why->text, sizeof why->text,
                 "another relay is already using the data directory %s "
                 "(%s is locked)",
                 dir, path);
        close(fd);
        return -1;
    }
    return fd;
}

/* Each client is a socket: allow as many as the hard limit permits. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

relay_server *relay_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

relay_server *relay_new(const relay_config *config, relay_info *info,
                        pb_errmsg *why)
{
    raise_fd_limit();
    relay_server *srv = calloc(1, sizeof *srv);
    if (!srv) {
        pb_fail(why, PB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    srv->lock_fd = -1;
    srv->cfg = *config;
    defaults(&srv->cfg);
    bool created = false;
    if (relay_keys_open(srv->cfg.data_dir, &srv->keys, &created, why))
        goto fail;
    if ((srv->lock_fd = lock_data_dir(srv->cfg.data_dir, why)) < 0)
        goto fail;
    snprintf(srv->history_path, sizeof srv->history_path, "%s/history.db",
             srv->cfg.data_dir);
    if (!(srv->history = relay_history_open_sqlite(srv->history_path, why)))
        goto fail;

    /* lws keeps a pointer to the mount: it lives as long as the relay */
    struct lws_http_mount *mount = &srv->mount;
    mount->mountpoint = "/";
    mount->mountpoint_len = 1;
    mount->origin = srv->cfg.web_dir;
    mount->def = "index.html";
    mount->origin_protocol = LWSMPRO_FILE;
    /* Browsers compile wasm while it streams in only with this type. */
    static const struct lws_protocol_vhost_options wasm_mime = {
        NULL, NULL, ".wasm", "application/wasm"};
    mount->extra_mimetypes = &wasm_mime;

    struct lws_context_creation_info ci;
    memset(&ci, 0, sizeof ci);
    ci.port = srv->cfg.port == RELAY_PORT_ANY ? 0 : srv->cfg.port;
    ci.iface = srv->cfg.bind;
    ci.protocols = protocols;
    ci.mounts = mount;
    ci.user = srv;
    ci.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    if (strchr(srv->cfg.bind, ':'))
        ci.options = 0;
    lws_set_log_level(LLL_ERR | LLL_WARN | (srv->cfg.quiet ? 0 : LLL_USER),
                      NULL);
    if (!(srv->ctx = lws_create_context(&ci))) {
        pb_fail(why, PB_ERR_IO,
                "cannot listen on %s port %d (in use, or not allowed?)",
                srv->cfg.bind, srv->cfg.port);
        goto fail;
    }
    srv->port =
        lws_get_vhost_listen_port(lws_get_vhost_by_name(srv->ctx, "default"));
    if (!(srv->eval = relay_evaluator_start(srv, why)))
        goto fail;
    if (info) {
        info->port = srv->port;
        snprintf(info->key_hex, sizeof info->key_hex, "%s", srv->keys.pk_hex);
        info->made_keys = created;
    }
    return srv;
fail:
    relay_free(srv);
    return NULL;
}

void relay_stop(relay_server *srv)
{
    srv->stopping = 1;
    lws_cancel_service(srv->ctx);
}

pb_err relay_serve(relay_server *srv, pb_errmsg *why)
{
    pb_err e = PB_OK;
    uint64_t next_flush = 0;
    while (!srv->stopping) {
        if (lws_service(srv->ctx, 0) < 0) {
            e = pb_fail(why, PB_ERR_INTERNAL, "the event loop failed");
            break;
        }
        if (relay_mono_us() >= next_flush) {
            flush_commit_stats(srv, false);
            next_flush = relay_mono_us() + 250000;
        }
    }

    /* Clean shutdown: answer the evals in flight, flush, close. */
    lwsl_user("shutting down: finishing evals in flight\n");
    relay_evaluator_stop(srv->eval);
    relay_done *d;
    while ((d = relay_evaluator_take_done(srv->eval)))
        relay_deliver_done(srv, d);
    uint64_t until = relay_mono_us() + 500000;
    while (relay_mono_us() < until) {
        bool pending = false;
        for (uint32_t i = 0; i < srv->n_slots; i++)
            pending |= srv->sessions[i]->state != RELAY_SESS_FREE &&
                       srv->sessions[i]->q.count > 0;
        if (!pending)
            break;
        lws_service(srv->ctx, 0);
    }
    flush_commit_stats(srv, true);
    return e;
}

void relay_free(relay_server *srv)
{
    if (!srv)
        return;
    if (srv->ctx)
        lws_context_destroy(srv->ctx);
    relay_evaluator_free(srv->eval);
    relay_history_close(srv->history);
    relay_keys_close(&srv->keys);
    for (uint32_t i = 0; i < srv->n_slots; i++) {
        relay_outq_clear(&srv->sessions[i]->q);
        free(srv->sessions[i]->rx);
        free(srv->sessions[i]);
    }
    free(srv->sessions);
    for (relay_room *r = srv->rooms, *next; r; r = next) {
        next = r->next;
        free(r);
    }
    if (srv->lock_fd >= 0)
        close(srv->lock_fd);
    free(srv);
}
