/* error.c — the shared error enum's descriptions and the helper that fills
 * a pb_errmsg. The numbers and texts are listed in docs/PROTOCOL.md § Error
 * codes, which a test keeps in step with this table. */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

const char *pb_strerror(pb_err code)
{
    switch (code) {
    case PB_OK: return "ok";
    case PB_ERR_NOMEM: return "out of memory";
    case PB_ERR_TRUNCATED: return "truncated input";
    case PB_ERR_MALFORMED: return "malformed msgpack";
    case PB_ERR_TOO_BIG: return "too big";
    case PB_ERR_NOT_A_MAP: return "not a map";
    case PB_ERR_VERSION: return "unsupported version";
    case PB_ERR_UNKNOWN_TYPE: return "unknown frame type";
    case PB_ERR_MISSING_FIELD: return "missing field";
    case PB_ERR_FIELD_TYPE: return "wrong field type";
    case PB_ERR_FIELD_RANGE: return "field out of range";
    case PB_ERR_DUPLICATE_FIELD: return "duplicate field";
    case PB_ERR_BAD_UTF8: return "invalid UTF-8";
    case PB_ERR_NOT_CANONICAL: return "statement not in canonical form";
    case PB_ERR_BAD_SIGNATURE: return "bad signature";
    case PB_ERR_WRONG_KEY: return "signed by another key";
    case PB_ERR_HASH_MISMATCH: return "hash mismatch";
    case PB_ERR_CHAIN_GAP: return "chain gap";
    case PB_ERR_CHAIN_FORK: return "chain fork";
    case PB_ERR_CHAIN_REPLAY: return "chain replay";
    case PB_ERR_WRONG_ROOM: return "wrong room";
    case PB_ERR_BUF_TOO_SMALL: return "buffer too small";
    case PB_ERR_AUTH_MALFORMED: return "malformed token";
    case PB_ERR_AUTH_BAD_MAC: return "token MAC does not verify";
    case PB_ERR_AUTH_EXPIRED: return "token expired";
    case PB_ERR_AUTH_REVOKED: return "token revoked";
    case PB_ERR_AUTH_WRONG_ROOM: return "token is for another room";
    case PB_ERR_AUTH_UNKNOWN_ROLE: return "token has an unknown role";
    case PB_ERR_AUTH_TIMEOUT: return "no hello in time";
    case PB_ERR_FORBIDDEN: return "not allowed for this role";
    case PB_ERR_RATE_LIMITED: return "rate limited";
    case PB_ERR_ROOM_FULL: return "room full";
    case PB_ERR_SLOW_CONSUMER: return "slow consumer";
    case PB_ERR_UNEXPECTED: return "unexpected frame";
    case PB_ERR_REPLACED: return "replaced by a new connection";
    case PB_ERR_COMPILE: return "compile error";
    case PB_ERR_COMPILER_DOWN: return "compiler unavailable";
    case PB_ERR_PREPARE: return "prepare failed";
    case PB_ERR_TRAP: return "trap";
    case PB_ERR_IO: return "i/o error";
    case PB_ERR_INTERNAL: return "internal error";
    }
    return "unknown error";
}

pb_err pb_fail(pb_errmsg *why, pb_err code, const char *fmt, ...)
{
    if (why) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why->text, sizeof why->text, fmt, ap);
        va_end(ap);
    }
    return code;
}
