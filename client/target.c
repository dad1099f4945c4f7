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

pb_err pbc_parse_url(const char *url, pbc_target *t, pb_errmsg *why)
{
    const char *p = url;
    static const char *const plain[] = {"ws://", "http://"};
    static const char *const tls[] = {"wss://", "https://"};
    for (size_t i = 0; i < 2; i++) {
        if (!strncmp(p, tls[i], strlen(tls[i]))) {
            p += strlen(tls[i]);
            t->tls = true;
            break;
        }
        if (!strncmp(p, plain[i], strlen(plain[i]))) {
            p += strlen(plain[i]);
            break;
        }
    }
    size_t hl = strcspn(p, ":/#");
    if (hl == 0 || hl >= sizeof t->host)
        return pb_fail(why, PB_ERR_FIELD_RANGE, "%s: no host name", url);
    snprintf(t->host, sizeof t->host, "%.*s", (int)hl, p);
    p += hl;
    t->port = PBC_DEFAULT_PORT;
    if (*p == ':') {
        char *end;
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535)
            return pb_fail(why, PB_ERR_FIELD_RANGE, "%s: bad port", url);
        t->port = (int)port;
        p = end;
    }
    const char *frag = strchr(p, '#');
    if (!frag)
        return PB_OK;
    if (!fragment_value(frag + 1, "room", t->room, sizeof t->room) ||
        !fragment_value(frag + 1, "token", t->token, sizeof t->token) ||
        !fragment_value(frag + 1, "key", t->key_hex, sizeof t->key_hex))
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "%s: a value in the link's fragment is too long or "
                       "badly %%-encoded",
                       url);
    return PB_OK;
}
