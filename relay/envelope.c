/* envelope.c — what signer and edges put in Redis messages (redis.h § the
 * envelopes): a kind byte, then fields in order, written growing a buffer
 * and read with bounds checks; some signed by the signer. */
#include "redis.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static void put(relay_env *e, const void *p, size_t n)
{
    if (e->failed)
        return;
    if (e->len + n > e->cap) {
        size_t cap = e->cap ? e->cap : 256;
        while (cap < e->len + n)
            cap *= 2;
        uint8_t *d = realloc(e->data, cap);
        if (!d) {
            e->failed = true;
            return;
        }
        e->data = d;
        e->cap = cap;
    }
    memcpy(e->data + e->len, p, n);
    e->len += n;
}

void relay_env_u8(relay_env *e, uint8_t v)
{
    put(e, &v, 1);
}

void relay_env_u32(relay_env *e, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                    (uint8_t)v};
    put(e, b, 4);
}

void relay_env_u64(relay_env *e, uint64_t v)
{
    relay_env_u32(e, (uint32_t)(v >> 32));
    relay_env_u32(e, (uint32_t)v);
}

void relay_env_str(relay_env *e, const char *s)
{
    size_t n = strlen(s);
    if (n > UINT16_MAX) {
        e->failed = true;
        return;
    }
    uint8_t b[2] = {(uint8_t)(n >> 8), (uint8_t)n};
    put(e, b, 2);
    put(e, s, n);
}

void relay_env_bytes(relay_env *e, const uint8_t *p, size_t n)
{
    put(e, p, n);
}

void relay_env_free(relay_env *e)
{
    free(e->data);
    memset(e, 0, sizeof *e);
}

static const uint8_t *take(relay_env_reader *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

uint8_t relay_env_get_u8(relay_env_reader *r)
{
    const uint8_t *p = take(r, 1);
    return p ? p[0] : 0;
}

uint32_t relay_env_get_u32(relay_env_reader *r)
{
    const uint8_t *p = take(r, 4);
    return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                   (uint32_t)p[2] << 8 | p[3]
             : 0;
}

uint64_t relay_env_get_u64(relay_env_reader *r)
{
    uint64_t hi = relay_env_get_u32(r);
    return hi << 32 | relay_env_get_u32(r);
}

void relay_env_get_str(relay_env_reader *r, char *out, size_t cap)
{
    out[0] = '\0';
    const uint8_t *b = take(r, 2);
    size_t n = b ? (size_t)b[0] << 8 | b[1] : 0;
    const uint8_t *s = take(r, n);
    if (!s)
        return;
    if (n >= cap || memchr(s, 0, n)) {
        r->bad = true;
        return;
    }
    memcpy(out, s, n);
    out[n] = '\0';
}

/* What is signed or MACed: a tag, then the envelope's bytes. The tag
 * keeps it from being taken for a patch or head statement (msgpack
 * arrays) or the other way round. */
#define SIGNED_TAG "pb-envelope"

static bool signed_stmt(const uint8_t *p, size_t n, uint8_t *out, size_t cap)
{
    size_t tag = sizeof SIGNED_TAG;
    if (n > cap - tag)
        return false;
    memcpy(out, SIGNED_TAG, tag);
    memcpy(out + tag, p, n);
    return true;
}

void relay_env_sign(relay_env *e, const uint8_t sk[PB_SECRETKEY_BYTES])
{
    uint8_t stmt[RELAY_ENV_SIGNED_MAX_BYTES], sig[PB_SIG_BYTES];
    if (e->failed || !signed_stmt(e->data, e->len, stmt, sizeof stmt)) {
        e->failed = true;
        return;
    }
    pb_sign(stmt, sizeof SIGNED_TAG + e->len, sk, sig);
    put(e, sig, sizeof sig);
}

bool relay_env_signed_by(const uint8_t *data, size_t len,
                         const uint8_t pk[PB_PUBLICKEY_BYTES])
{
    uint8_t stmt[RELAY_ENV_SIGNED_MAX_BYTES];
    if (len < PB_SIG_BYTES ||
        !signed_stmt(data, len - PB_SIG_BYTES, stmt, sizeof stmt))
        return false;
    return !pb_verify(stmt, sizeof SIGNED_TAG + len - PB_SIG_BYTES,
                      data + len - PB_SIG_BYTES, pk);
}

_Static_assert(RELAY_ENV_MAC_KEY_BYTES == crypto_auth_KEYBYTES &&
                   RELAY_ENV_MAC_BYTES == crypto_auth_BYTES,
               "relay_env_mac is crypto_auth's");

/* HMAC-SHA-512-256 (crypto_auth) of the tag, then p, in steps: an
 * edge's forwards carry whole frames, longer than anything signed. */
static void mac_of(const uint8_t *p, size_t n,
                   const uint8_t key[RELAY_ENV_MAC_KEY_BYTES],
                   uint8_t out[crypto_auth_BYTES])
{
    crypto_auth_hmacsha512256_state st;
    crypto_auth_hmacsha512256_init(&st, key, RELAY_ENV_MAC_KEY_BYTES);
    crypto_auth_hmacsha512256_update(&st, (const uint8_t *)SIGNED_TAG,
                                     sizeof SIGNED_TAG);
    crypto_auth_hmacsha512256_update(&st, p, n);
    crypto_auth_hmacsha512256_final(&st, out);
}

void relay_env_mac(relay_env *e, const uint8_t key[RELAY_ENV_MAC_KEY_BYTES])
{
    uint8_t mac[crypto_auth_BYTES];
    if (e->failed)
        return;
    mac_of(e->data, e->len, key, mac);
    put(e, mac, sizeof mac);
}

bool relay_env_mac_ok(const uint8_t *data, size_t len,
                      const uint8_t key[RELAY_ENV_MAC_KEY_BYTES])
{
    uint8_t mac[crypto_auth_BYTES];
    if (len < crypto_auth_BYTES)
        return false;
    size_t n = len - crypto_auth_BYTES;
    mac_of(data, n, key, mac);
    return !sodium_memcmp(mac, data + n, sizeof mac);
}
