/* token.c — room tokens: pb1.<payload>.<mac>, both base64url without
 * padding. The payload is msgpack [room, role, name, expires_s]; the MAC is
 * crypto_auth (HMAC-SHA-512-256) over "pb1.<payload>" with the relay's
 * token key. The MAC is checked (in constant time) before the payload is
 * parsed, so nothing an attacker wrote reaches the msgpack parser. */
#include "relay.h"

#include <msgpack.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "pb1."
#define B64    sodium_base64_VARIANT_URLSAFE_NO_PADDING

bool relay_name_is_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > PB_MAX_NAME_BYTES)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

pb_err relay_token_make(const relay_keys *k, const relay_token *t, char *out,
                        size_t out_len, pb_errmsg *why)
{
    if (!relay_name_is_valid(t->room))
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "room name \"%s\": 1 to %u bytes, no control characters",
                       t->room, PB_MAX_NAME_BYTES);
    if (!relay_name_is_valid(t->name))
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "user name \"%s\": 1 to %u bytes, no control characters",
                       t->name, PB_MAX_NAME_BYTES);
    const char *role = pb_role_name(t->role);
    if (!role[0])
        return pb_fail(why, PB_ERR_AUTH_UNKNOWN_ROLE, "unknown role %d",
                       (int)t->role);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_str_with_body(&pk, t->room, strlen(t->room));
    msgpack_pack_str_with_body(&pk, role, strlen(role));
    msgpack_pack_str_with_body(&pk, t->name, strlen(t->name));
    msgpack_pack_uint64(&pk, t->expires_s);

    size_t b64_len = sodium_base64_ENCODED_LEN(sb.size, B64);
    size_t mac_b64_len = sodium_base64_ENCODED_LEN(crypto_auth_BYTES, B64);
    /* prefix + payload + '.' + mac (the encoded lengths count the NUL) */
    size_t need = strlen(PREFIX) + (b64_len - 1) + 1 + (mac_b64_len - 1) + 1;
    if (need > out_len || need > PB_MAX_TOKEN_BYTES + 1) {
        msgpack_sbuffer_destroy(&sb);
        return pb_fail(why, PB_ERR_BUF_TOO_SMALL,
                       "the token would be %zu bytes, over the limit of %u",
                       need - 1, PB_MAX_TOKEN_BYTES);
    }
    strcpy(out, PREFIX);
    sodium_bin2base64(out + strlen(PREFIX), b64_len,
                      (const unsigned char *)sb.data, sb.size, B64);
    msgpack_sbuffer_destroy(&sb);
    size_t signed_len = strlen(out);
    uint8_t mac[crypto_auth_BYTES];
    crypto_auth(mac, (const unsigned char *)out, signed_len, k->token_key);
    out[signed_len] = '.';
    sodium_bin2base64(out + signed_len + 1, mac_b64_len, mac, sizeof mac, B64);
    return PB_OK;
}

static bool str_field(const msgpack_object *o, char *dst, size_t cap)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 ||
        o->via.str.size >= cap)
        return false;
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = '\0';
    return strlen(dst) == o->via.str.size; /* no NUL inside */
}

pb_err relay_token_verify(const relay_keys *k, const char *tok, size_t len,
                          uint64_t now_s, relay_token *out, pb_errmsg *why)
{
    memset(out, 0, sizeof *out);
    if (len > PB_MAX_TOKEN_BYTES)
        return pb_fail(why, PB_ERR_AUTH_MALFORMED,
                       "the token has %zu bytes, more than %u", len,
                       PB_MAX_TOKEN_BYTES);
    size_t plen = strlen(PREFIX);
    if (len < plen || memcmp(tok, PREFIX, plen) != 0)
        return pb_fail(why, PB_ERR_AUTH_MALFORMED,
                       "not a patchbay token (it should start with \"pb1.\"; "
                       "`patchbay token` prints one)");
    const char *dot = memchr(tok + plen, '.', len - plen);
    if (!dot)
        return pb_fail(why, PB_ERR_AUTH_MALFORMED,
                       "the token has no MAC part (was it cut short when "
                       "copied?)");
    uint8_t mac[crypto_auth_BYTES];
    size_t mac_len = 0;
    const char *end = NULL;
    if (sodium_base642bin(mac, sizeof mac, dot + 1,
                          len - (size_t)(dot + 1 - tok), NULL, &mac_len, &end,
                          B64) != 0 ||
        mac_len != sizeof mac || end != tok + len)
        return pb_fail(why, PB_ERR_AUTH_MALFORMED,
                       "the token's MAC part is not %u bytes of base64url",
                       (unsigned)crypto_auth_BYTES);
    if (crypto_auth_verify(mac, (const unsigned char *)tok, (size_t)(dot - tok),
                           k->token_key) != 0)
        return pb_fail(why, PB_ERR_AUTH_BAD_MAC,
                       "the token's MAC does not verify: it was changed, or "
                       "made by another relay (another data directory)");

    /* From here on the bytes are the relay's own. */
    uint8_t payload[PB_MAX_TOKEN_BYTES];
    size_t payload_len = 0;
    if (sodium_base642bin(payload, sizeof payload, tok + plen,
                          (size_t)(dot - tok) - plen, NULL, &payload_len, NULL,
                          B64) != 0)
        return pb_fail(why, PB_ERR_AUTH_MALFORMED,
                       "the token's payload is not base64url");
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    pb_err e = PB_OK;
    char role[PB_MAX_NAME_BYTES + 1];
    if (msgpack_unpack_next(&u, (const char *)payload, payload_len, &off) !=
            MSGPACK_UNPACK_SUCCESS ||
        off != payload_len || u.data.type != MSGPACK_OBJECT_ARRAY ||
        u.data.via.array.size != 4 ||
        !str_field(&u.data.via.array.ptr[0], out->room, sizeof out->room) ||
        !str_field(&u.data.via.array.ptr[1], role, sizeof role) ||
        !str_field(&u.data.via.array.ptr[2], out->name, sizeof out->name) ||
        u.data.via.array.ptr[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
        e = pb_fail(why, PB_ERR_AUTH_MALFORMED,
                    "the token's payload is not [room, role, name, expiry]");
        goto done;
    }
    out->expires_s = u.data.via.array.ptr[3].via.u64;
    out->role = pb_role_parse(pb_cstr(role));
    if (out->role == PB_ROLE_NONE) {
        e = pb_fail(why, PB_ERR_AUTH_UNKNOWN_ROLE,
                    "the token's role \"%s\" is not owner, editor, runtime or "
                    "viewer",
                    role);
        goto done;
    }
    if (now_s >= out->expires_s) {
        e = pb_fail(why, PB_ERR_AUTH_EXPIRED,
                    "the token for %s in room %s expired %llu s ago; ask for a "
                    "new one (patchbay token)",
                    out->name, out->room,
                    (unsigned long long)(now_s - out->expires_s));
        goto done;
    }
done:
    msgpack_unpacked_destroy(&u);
    if (e) {
        char keep[PB_MAX_NAME_BYTES + 1];
        memcpy(keep, out->room, sizeof keep);
        memset(out, 0, sizeof *out);
        memcpy(out->room, keep, sizeof keep); /* for the log line */
    }
    return e;
}

void relay_token_id(const char *tok, size_t len,
                    char out[RELAY_TOKEN_ID_CHARS + 1])
{
    uint8_t h[RELAY_TOKEN_ID_CHARS / 2];
    crypto_generichash(h, sizeof h, (const uint8_t *)tok, len, NULL, 0);
    pb_hex(h, sizeof h, out);
}
