/* server.c — one relay (`patchbay serve`), shaped like libwebsockets'
 * minimal ws server: a protocol table, one mount serving web/ over HTTP on
 * the same port as the patchbay protocol (session.c), one context whose user
 * pointer is the relay, one service loop. Around it: the data directory
 * (keys, lock, history) and the evaluator thread; a clean shutdown answers
 * the evals in flight, flushes what is queued and closes the database. */
#include "internal.h"
#include "redis.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PB_DEFAULT_WEB_DIR
#define PB_DEFAULT_WEB_DIR "web"
#endif

/* lws keeps a receive buffer of rx_buffer_size for every WebSocket, for
 * as long as it is open, and hands a message over in pieces of at most
 * that size; the session copies each piece into a message buffer of its
 * own (session.c) anyway. So one page is enough: 64 KiB here was most of
 * what an idle client cost (bench/README.md § Soak). */
#define RELAY_RX_CHUNK 4096

static struct lws_protocols protocols[] = {
    {"http", relay_http_callback, 0, 0, 0, NULL, 0},
    {"patchbay", relay_session_callback, sizeof(relay_session *),
     RELAY_RX_CHUNK, 0, NULL, 0},
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
    if (!c->room_evals_per_second)
        c->room_evals_per_second = 30;
    if (!c->max_evals_per_name)
        c->max_evals_per_name = 8;
    if (!c->max_evals_per_room)
        c->max_evals_per_room = 32;
    if (!c->max_evals)
        c->max_evals = 256;
    if (!c->bytes_per_second)
        c->bytes_per_second = 4u << 20;
    if (!c->max_queue_bytes)
        c->max_queue_bytes = 32u << 20;
    if (!c->hello_timeout_ms)
        c->hello_timeout_ms = 5000;
    if (!c->max_connections)
        c->max_connections = 4096;
    if (!c->max_connections_per_ip)
        c->max_connections_per_ip = 256;
    if (!c->connects_per_second_per_ip)
        c->connects_per_second_per_ip = 20;
    if (!c->max_catchups)
        c->max_catchups = 16;
    if (!c->max_buffer_bytes || c->max_buffer_bytes > PB_MAX_BUFFER_BYTES)
        c->max_buffer_bytes = PB_MAX_BUFFER_BYTES;
    if (!c->max_buffers || c->max_buffers > PB_MAX_BUFFERS)
        c->max_buffers = 16;
    if (!c->buffer_writes_per_second)
        c->buffer_writes_per_second = 50;
    if (!c->lead_us)
        c->lead_us = 50000;
    if (!c->compile_timeout_ms)
        c->compile_timeout_ms = CC_DEFAULT_TIMEOUT_MS;
}

/* One PEM file for TLS: readable, and holding what its option says
 * (lws' own failure would read "cannot listen"). */
static pb_err pem_check(const char *path, const char *option,
                        const char *marker, pb_errmsg *why)
{
    pb_buf pem;
    pb_buf_init(&pem);
    pb_errmsg inner = {{0}};
    /* a certificate chain is a few KiB: a file past 1 MiB is not one */
    pb_err e = pb_buf_read_path(&pem, path, 1u << 20, &inner);
    if (e)
        pb_fail(why, e, "%s: %s", option, inner.text);
    else if (!strstr((const char *)pem.data, marker))
        e = pb_fail(why, PB_ERR_MALFORMED,
                    "%s %s: no \"%s\" in it: not a PEM file of that kind",
                    option, path, marker);
    pb_buf_free(&pem);
    return e;
}

static pb_err tls_files_check(const relay_config *c, pb_errmsg *why)
{
    if (!c->tls_cert != !c->tls_key)
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "TLS needs both a certificate and its private key "
                       "(--tls-cert and --tls-key)");
    if (!c->tls_cert)
        return PB_OK;
    pb_err e =
        pem_check(c->tls_cert, "--tls-cert", "-----BEGIN CERTIFICATE", why);
    return e ? e : pem_check(c->tls_key, "--tls-key", "PRIVATE KEY-----", why);
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
    bool edge = srv->cfg.edge;
    if (edge && !srv->cfg.redis_url) {
        pb_fail(why, PB_ERR_FIELD_RANGE,
                "an edge serves a signer's rooms from Redis: --edge needs "
                "--redis redis://HOST:PORT");
        goto fail;
    }
    /* an edge holds no signing key, and its history is a cache */
    if (edge ? relay_keys_open_edge(srv->cfg.data_dir, &srv->keys, why)
             : relay_keys_open(srv->cfg.data_dir, &srv->keys, &created, why))
        goto fail;
    if ((srv->lock_fd = relay_data_lock(srv->cfg.data_dir, why)) < 0)
        goto fail;
    snprintf(srv->history_path, sizeof srv->history_path, "%s/%s",
             srv->cfg.data_dir, edge ? "edge-cache.db" : "history.db");
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
    /* What every response says to the browser (docs/SECURITY.md § Pages):
     * scripts, styles, workers and sockets only from the relay itself
     * (wasm compiled from what it sent), no framing by other sites, no
     * MIME sniffing, no Referer. */
    static const struct lws_protocol_vhost_options headers[] = {
        {&headers[1], NULL, "content-security-policy:",
         "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; "
         "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
         "connect-src 'self' ws: wss:; worker-src 'self' blob:; "
         "object-src 'none'; base-uri 'none'; form-action 'none'; "
         "frame-ancestors 'none'"},
        {&headers[2], NULL, "x-content-type-options:", "nosniff"},
        {&headers[3], NULL, "x-frame-options:", "DENY"},
        {NULL, NULL, "referrer-policy:", "no-referrer"},
    };

    struct lws_context_creation_info ci;
    memset(&ci, 0, sizeof ci);
    ci.port = srv->cfg.port == RELAY_PORT_ANY ? 0 : srv->cfg.port;
    ci.iface = srv->cfg.bind;
    ci.protocols = protocols;
    ci.mounts = mount;
    ci.headers = headers;
    ci.user = srv;
    ci.options = LWS_SERVER_OPTION_DISABLE_IPV6;
    if (strchr(srv->cfg.bind, ':'))
        ci.options = 0;
    if (tls_files_check(&srv->cfg, why))
        goto fail;
    if (srv->cfg.tls_cert) { /* lws with Debian's OpenSSL */
        ci.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        ci.ssl_cert_filepath = srv->cfg.tls_cert;
        ci.ssl_private_key_filepath = srv->cfg.tls_key;
        /* no h2: lws 4.1 would carry a WebSocket in an h2 stream (RFC
         * 8441), where a frame past the flow-control window never leaves */
        ci.alpn = "http/1.1";
    }
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
    if (!edge && !(srv->eval = relay_evaluator_start(srv, why)))
        goto fail;
    if (srv->cfg.redis_url &&
        (edge ? relay_edge_start(srv, why) : relay_signer_start(srv, why)))
        goto fail;
    relay_revocations_start(srv); /* and the ones recorded before it */
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

/* The heartbeat (docs/PROTOCOL.md § The signed head): a signed head to
 * every room with members every PB_HEAD_EVERY_US, on an lws timer, so that
 * a quiet room and a starved runtime can be told apart. */
static void send_heads(lws_sorted_usec_list_t *sul)
{
    relay_server *srv = lws_container_of(sul, relay_server, heads_sul);
    relay_rooms_send_heads(srv);
    lws_sul_schedule(srv->ctx, 0, &srv->heads_sul, send_heads,
                     PB_HEAD_EVERY_US);
}

pb_err relay_serve(relay_server *srv, pb_errmsg *why)
{
    pb_err e = PB_OK;
    uint64_t next_flush = 0, ticks = 0;
    send_heads(&srv->heads_sul);
    while (!srv->stopping) {
        if (lws_service(srv->ctx, 0) < 0) {
            e = pb_fail(why, PB_ERR_INTERNAL, "the event loop failed");
            break;
        }
        if (relay_mono_us() >= next_flush) {
            relay_rooms_record_stats(srv, false);
            if (++ticks % 40 == 0) { /* every 10 s */
                relay_guard_sweep(srv);
                relay_rooms_sweep(srv);
            }
            next_flush = relay_mono_us() + 250000;
        }
    }
    lws_sul_cancel(&srv->heads_sul);

    /* Clean shutdown: answer the evals in flight, flush, close. */
    lwsl_user("shutting down: finishing evals in flight\n");
    relay_evaluator_stop(srv->eval);
    relay_deliver_finished(srv);
    uint64_t until = relay_mono_us() + 500000;
    while (relay_mono_us() < until && relay_sessions_sending(srv))
        lws_service(srv->ctx, 0);
    relay_rooms_record_stats(srv, true);
    return e;
}

void relay_free(relay_server *srv)
{
    if (!srv)
        return;
    relay_redis_free(srv->redis); /* its thread wakes the context */
    srv->redis = NULL;
    if (srv->ctx) {
        lws_sul_cancel(&srv->revoke_sul);
        lws_sul_cancel(&srv->cluster_sul);
        lws_context_destroy(srv->ctx);
    }
    relay_evaluator_free(srv->eval);
    relay_history_close(srv->history);
    relay_keys_close(&srv->keys);
    relay_catchups_free(srv);
    relay_sessions_free(srv);
    relay_rooms_free(srv);
    relay_signer_free(srv);
    relay_edge_free(srv);
    relay_guard_free(srv);
    relay_revocations_free(srv);
    if (srv->lock_fd >= 0)
        close(srv->lock_fd);
    free(srv);
}
