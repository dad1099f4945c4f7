/* guard.c — strangers: what the relay checks before a connection becomes a
 * session (docs/SECURITY.md § Strangers). Anyone who can reach the port can
 * open connections, so:
 *
 * - connections are capped in total and per address (an IPv6 address
 *   counts by its /64), and each address may open only so many a second;
 *   the relay's own address (127.0.0.1, ::1: a reverse proxy in front of it,
 *   the command line) counts only towards the total;
 * - a WebSocket upgrade must ask for the `patchbay` sub-protocol: without
 *   it lws would bind the socket to the HTTP protocol, where nothing ever
 *   times it out;
 * - a browser tells the page a socket comes from (Origin): only the relay's
 *   own pages and the origins given with --allow-origin may open one, so a
 *   web page on another site cannot drive a relay on 127.0.0.1 (DNS
 *   rebinding included: a name is trusted only when it is this machine's or
 *   listed). Clients that send no Origin (the CLI, node) are not browsers
 *   and are allowed.
 *
 * Counting: lws asks protocols[0] about each accepted socket
 * (FILTER_NETWORK_CONNECTION, with its address) and then creates its wsi
 * (WSI_CREATE) in the same call; a table from wsi to address keeps the
 * count until WSI_DESTROY (the wsi's opaque user data does not survive
 * the upgrade to a WebSocket). */
#include "internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

struct relay_addr {
    char key[INET6_ADDRSTRLEN + 4]; /* address, or an IPv6 /64 */
    bool is_own;                    /* 127.0.0.1 or ::1 */
    uint32_t open;                  /* connections now */
    relay_bucket connects;          /* new connections per second */
    struct relay_addr *next;
};

/* ---- which address each connection came from -------------------------- */

#define WSI_BUCKETS 1024u

struct relay_wsi_addr {
    const struct lws *wsi;
    struct relay_addr *addr;
    struct relay_wsi_addr *next;
};

static uint32_t wsi_bucket(const struct lws *wsi)
{
    uintptr_t p = (uintptr_t)wsi;
    return (uint32_t)((p >> 4) ^ (p >> 14)) % WSI_BUCKETS;
}

static bool wsi_remember(relay_server *srv, const struct lws *wsi,
                         struct relay_addr *a)
{
    if (!srv->wsi_addrs &&
        !(srv->wsi_addrs = calloc(WSI_BUCKETS, sizeof *srv->wsi_addrs)))
        return false;
    struct relay_wsi_addr *e = malloc(sizeof *e);
    if (!e)
        return false;
    uint32_t b = wsi_bucket(wsi);
    *e = (struct relay_wsi_addr){wsi, a, srv->wsi_addrs[b]};
    srv->wsi_addrs[b] = e;
    return true;
}

/* The address wsi came from, forgotten; NULL if it was not counted. */
static struct relay_addr *wsi_forget(relay_server *srv, const struct lws *wsi)
{
    if (!srv->wsi_addrs)
        return NULL;
    for (struct relay_wsi_addr **p = &srv->wsi_addrs[wsi_bucket(wsi)]; *p;
         p = &(*p)->next)
        if ((*p)->wsi == wsi) {
            struct relay_wsi_addr *e = *p;
            struct relay_addr *a = e->addr;
            *p = e->next;
            free(e);
            return a;
        }
    return NULL;
}

/* The address key of a peer: IPv4 as is, IPv6 by its /64 (one subscriber
 * gets a whole /64), v4-mapped IPv6 as IPv4. */
static void addr_key(const struct sockaddr_storage *sa, char *out, size_t cap,
                     bool *is_own)
{
    *is_own = false;
    out[0] = '\0';
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, out, (socklen_t)cap);
        *is_own = ntohl(in->sin_addr.s_addr) == INADDR_LOOPBACK;
    } else if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            struct in_addr a4;
            memcpy(&a4, in6->sin6_addr.s6_addr + 12, 4);
            inet_ntop(AF_INET, &a4, out, (socklen_t)cap);
            *is_own = ntohl(a4.s_addr) == INADDR_LOOPBACK;
            return;
        }
        *is_own = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
        struct in6_addr net = in6->sin6_addr;
        if (!*is_own)
            memset(net.s6_addr + 8, 0, 8);
        inet_ntop(AF_INET6, &net, out, (socklen_t)cap);
        if (!*is_own)
            strncat(out, "/64", cap - strlen(out) - 1);
    }
}

static struct relay_addr *addr_get(relay_server *srv, const char *key,
                                   bool is_own)
{
    for (struct relay_addr *a = srv->addrs; a; a = a->next)
        if (!strcmp(a->key, key))
            return a;
    struct relay_addr *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    snprintf(a->key, sizeof a->key, "%s", key);
    a->is_own = is_own;
    a->next = srv->addrs;
    srv->addrs = a;
    srv->n_addrs++;
    return a;
}

/* Forgets addresses with no connection whose rate has refilled (their
 * entry holds nothing then); called now and then from the service loop. */
void relay_guard_sweep(relay_server *srv)
{
    uint64_t now = relay_mono_us();
    double per_s = srv->cfg.connects_per_second_per_ip;
    for (struct relay_addr **p = &srv->addrs; *p;) {
        struct relay_addr *a = *p;
        if (!a->open && !relay_bucket_wait_us(&a->connects, per_s, 5 * per_s,
                                              5 * per_s, now)) {
            *p = a->next;
            srv->n_addrs--;
            free(a);
        } else {
            p = &a->next;
        }
    }
}

void relay_guard_free(relay_server *srv)
{
    for (uint32_t b = 0; srv->wsi_addrs && b < WSI_BUCKETS; b++)
        while (srv->wsi_addrs[b]) {
            struct relay_wsi_addr *e = srv->wsi_addrs[b];
            srv->wsi_addrs[b] = e->next;
            free(e);
        }
    free(srv->wsi_addrs);
    srv->wsi_addrs = NULL;
    while (srv->addrs) {
        struct relay_addr *a = srv->addrs;
        srv->addrs = a->next;
        free(a);
    }
    srv->n_addrs = 0;
}

/* A new socket from sa: may it stay? Logged when not (at most once a
 * second, so that a flood does not fill the log). */
static bool admit(relay_server *srv, const struct sockaddr_storage *sa)
{
    char key[INET6_ADDRSTRLEN + 4];
    bool is_own;
    addr_key(sa, key, sizeof key, &is_own);
    const relay_config *c = &srv->cfg;
    const char *why = NULL;
    struct relay_addr *a = NULL;
    double per_s = c->connects_per_second_per_ip;
    if (srv->n_open >= c->max_connections)
        why = "the relay has --max-connections connections";
    else if (!(a = addr_get(srv, key, is_own)))
        why = "out of memory";
    else if (!is_own && a->open >= c->max_connections_per_ip)
        why = "this address has --max-per-ip connections";
    else if (!is_own && !relay_bucket_take(&a->connects, per_s, 5 * per_s, 1,
                                           relay_mono_us()))
        why = "this address opens connections too fast";
    if (!why) {
        srv->admitting = a;
        return true;
    }
    srv->n_refused++;
    uint64_t now = relay_mono_us();
    if (now - srv->refused_logged_us > 1000000u) {
        lwsl_user("refusing connections from %s: %s (%llu refused so far)\n",
                  key, why, (unsigned long long)srv->n_refused);
        srv->refused_logged_us = now;
    }
    return false;
}

/* ---- Origin ------------------------------------------------------------- */

/* Lower-cased copy of a header (empty if absent or too long). */
static void header(struct lws *wsi, enum lws_token_indexes h, char *out,
                   int cap)
{
    if (lws_hdr_total_length(wsi, h) >= cap ||
        lws_hdr_copy(wsi, out, cap, h) < 0)
        out[0] = '\0';
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
}

/* The host of an authority "host[:port]" or "[v6]:port", in out. */
static void host_of(const char *authority, char *out, size_t cap)
{
    const char *end;
    if (authority[0] == '[') {
        end = strchr(authority, ']');
        end = end ? end + 1 : authority + strlen(authority);
    } else {
        end = strchr(authority, ':');
        if (!end)
            end = authority + strlen(authority);
    }
    snprintf(out, cap, "%.*s", (int)(end - authority), authority);
}

/* Names that cannot be rebound to this relay by someone else's DNS: IP
 * literals, localhost, and this machine's own name. */
static bool is_own_name(const char *host)
{
    struct in6_addr a6;
    struct in_addr a4;
    char bare[256];
    snprintf(bare, sizeof bare, "%s", host);
    if (bare[0] == '[') {
        memmove(bare, bare + 1, strlen(bare));
        char *e = strchr(bare, ']');
        if (e)
            *e = '\0';
        return inet_pton(AF_INET6, bare, &a6) == 1;
    }
    if (inet_pton(AF_INET, bare, &a4) == 1 || !strcmp(bare, "localhost"))
        return true;
    char me[256] = "";
    if (gethostname(me, sizeof me - 7) != 0 || !me[0])
        return false;
    for (char *p = me; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    if (!strcmp(bare, me))
        return true;
    strcat(me, ".local");
    return !strcmp(bare, me);
}

bool relay_guard_origin_ok(relay_server *srv, struct lws *wsi, char *origin,
                           size_t cap)
{
    header(wsi, WSI_TOKEN_ORIGIN, origin, (int)cap);
    if (!lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN))
        return true; /* not a browser */
    size_t n = strlen(origin);
    while (n && origin[n - 1] == '/')
        origin[--n] = '\0';
    for (const char *const *o = srv->cfg.allow_origins; o && *o; o++)
        if (!strcasecmp(*o, origin))
            return true;
    /* the relay's own pages: scheme://HOST where HOST is the Host the
     * socket was opened to, and a name nobody else can point here */
    char host_hdr[300];
    header(wsi, WSI_TOKEN_HOST, host_hdr, sizeof host_hdr);
    const char *authority = strstr(origin, "://");
    if (!authority || !host_hdr[0] || strcmp(authority + 3, host_hdr))
        return false;
    char host[300];
    host_of(host_hdr, host, sizeof host);
    return is_own_name(host);
}

/* ---- the HTTP protocol -----------------------------------------------------
 */

int relay_http_callback(struct lws *wsi, enum lws_callback_reasons reason,
                        void *user, void *in, size_t len)
{
    relay_server *srv = wsi ? relay_of(wsi) : NULL;
    switch (reason) {
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION: {
        const struct lws_filter_network_conn_args *a = user;
        if (srv && a && !admit(srv, &a->cli_addr))
            return -1;
        break;
    }
    case LWS_CALLBACK_WSI_CREATE:
        if (srv && srv->admitting && wsi_remember(srv, wsi, srv->admitting)) {
            srv->admitting->open++;
            srv->n_open++;
        }
        if (srv)
            srv->admitting = NULL;
        break;
    case LWS_CALLBACK_WSI_DESTROY: {
        struct relay_addr *a = srv ? wsi_forget(srv, wsi) : NULL;
        if (a) {
            a->open--;
            srv->n_open--;
        }
        break;
    }
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        /* A WebSocket upgrade lands here when it names no sub-protocol we
         * speak: refuse it rather than keep a socket nothing times out. */
        return -1;
    default: break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}
