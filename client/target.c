/* target.c — where a client connects and as whom: the URLs of pbc.h. A join
 * link printed by `patchbay token` carries the room, token and relay key in
 * its fragment (#room=R&token=T&key=K), which browsers never send to a
 * server; its values are percent-encoded (pbc_url_encode). */
#include "pbc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c && strchr("-._~", c));
}

void pbc_url_encode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (; *s && n + 4 <= cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (is_unreserved(c)) {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    if (cap)
        out[n < cap ? n : cap - 1] = '\0';
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Copies the percent-decoded value of key in a fragment "k=v&k=v" to out
 * (left alone if the key is absent or empty); false if the value does not fit
 * or a %XX is broken. */
static bool fragment_value(const char *frag, const char *key, char *out,
                           size_t cap)
{
    size_t kl = strlen(key);
    for (const char *p = frag; p; p = strchr(p, '&'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, kl) || p[kl] != '=')
            continue;
        char v[512];
        size_t n = 0;
        for (const char *s = p + kl + 1; *s && *s != '&'; s++) {
            int c = (unsigned char)*s;
            if (c == '%') {
                int hi = hex_digit(s[1]), lo = hi < 0 ? -1 : hex_digit(s[2]);
                if (lo < 0)
                    return false;
                c = hi * 16 + lo;
                s += 2;
            }
            if (n + 1 >= cap || n + 1 >= sizeof v)
                return false;
            v[n++] = (char)c;
        }
        v[n] = '\0';
        if (n) /* an empty value keeps what out held (--token) */
            memcpy(out, v, n + 1);
        return true;
    }
    return true;
}

unsigned pbc_target_relays(const pbc_target *t)
{
    return 1 + t->n_more;
}

pbc_relay pbc_target_relay(const pbc_target *t, unsigned i)
{
    pbc_relay r = {.port = t->port, .tls = t->tls};
    if (i == 0 || i > t->n_more)
        memcpy(r.host, t->host, sizeof r.host);
    else
        r = t->more[i - 1];
    return r;
}

/* Parses one address "[scheme://]host[:port]" up to the first of stop
 * into r; a missing scheme keeps r->tls. Returns where it stopped, NULL
 * (why set) if the host or port is bad. */
static const char *parse_relay(const char *url, const char *p, const char *stop,
                               pbc_relay *r, pb_errmsg *why)
{
    static const char *const plain[] = {"ws://", "http://"};
    static const char *const tls[] = {"wss://", "https://"};
    for (size_t i = 0; i < 2; i++) {
        if (!strncmp(p, tls[i], strlen(tls[i]))) {
            p += strlen(tls[i]);
            r->tls = true;
            break;
        }
        if (!strncmp(p, plain[i], strlen(plain[i]))) {
            p += strlen(plain[i]);
            r->tls = false;
            break;
        }
    }
    char delims[16];
    snprintf(delims, sizeof delims, ":%s", stop);
    size_t hl = strcspn(p, delims);
    if (hl == 0 || hl >= sizeof r->host) {
        pb_fail(why, PB_ERR_FIELD_RANGE, "%s: no host name", url);
        return NULL;
    }
    snprintf(r->host, sizeof r->host, "%.*s", (int)hl, p);
    p += hl;
    r->port = PBC_DEFAULT_PORT;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535 ||
            (*end && !strchr(stop, *end))) {
            pb_fail(why, PB_ERR_FIELD_RANGE, "%s: bad port", url);
            return NULL;
        }
        r->port = (int)port;
        p = end;
    }
    return p;
}

/* Adds the comma-separated addresses of list (at least one; each taking
 * tls by default) to t->more, skipping ones already there. A TLS link
 * names TLS relays only: failing over to plain text would send the token
 * in clear to whoever made the first unreachable. */
static pb_err add_relays(const char *url, const char *list, bool tls,
                         pbc_target *t, pb_errmsg *why)
{
    for (const char *p = list;;) {
        pbc_relay r = {.tls = tls};
        if (!(p = parse_relay(url, p, ",/", &r, why)))
            return PB_ERR_FIELD_RANGE;
        if (*p == '/') /* an address, no path (as runtime/link.js) */
            p++;
        if (*p && *p != ',')
            return pb_fail(why, PB_ERR_FIELD_RANGE,
                           "%s: a relay is HOST:PORT or ws(s)://HOST:PORT, "
                           "without a path",
                           url);
        if (tls && !r.tls) /* whoever blocks the first would get the token */
            return pb_fail(why, PB_ERR_FIELD_RANGE,
                           "a link to a TLS relay names a plain-text one "
                           "(ws://%s:%d), which would get its token in clear "
                           "when the first cannot be reached: name wss:// "
                           "relays only",
                           r.host, r.port);
        bool seen = false;
        for (unsigned i = 0; i < pbc_target_relays(t); i++) {
            pbc_relay o = pbc_target_relay(t, i);
            seen |=
                o.port == r.port && o.tls == r.tls && !strcmp(o.host, r.host);
        }
        if (!seen && t->n_more == PBC_MAX_RELAYS - 1)
            return pb_fail(why, PB_ERR_FIELD_RANGE, "%s: more than %d relays",
                           url, PBC_MAX_RELAYS);
        if (!seen)
            t->more[t->n_more++] = r;
        if (*p != ',')
            break;
        p++;
    }
    return PB_OK;
}

pb_err pbc_parse_url(const char *url, pbc_target *t, pb_errmsg *why)
{
    pbc_relay own = {.tls = false};
    const char *p = parse_relay(url, url, "/#,", &own, why);
    if (!p)
        return PB_ERR_FIELD_RANGE;
    memcpy(t->host, own.host, sizeof t->host);
    t->port = own.port;
    t->tls = own.tls;
    t->n_more = 0;
    if (*p == ',') /* --url A,B: more relays */
        return add_relays(url, p + 1, own.tls, t, why);
    const char *frag = strchr(p, '#');
    if (!frag)
        return PB_OK;
    char relays[PBC_MAX_RELAYS * 300] = "";
    if (!fragment_value(frag + 1, "room", t->room, sizeof t->room) ||
        !fragment_value(frag + 1, "token", t->token, sizeof t->token) ||
        !fragment_value(frag + 1, "key", t->key_hex, sizeof t->key_hex) ||
        !fragment_value(frag + 1, "relays", relays, sizeof relays))
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "%s: a value in the link's fragment is too long or "
                       "badly %%-encoded",
                       url);
    return relays[0] ? add_relays(url, relays, own.tls, t, why) : PB_OK;
}
