/* crypto.c — hashing (BLAKE2b-256), ed25519 signing and the verification of
 * a patch frame against the room's pinned relay key (docs/PROTOCOL.md
 * § Verification). Nothing unverified runs: the order of checks below is
 * the order a runtime applies before it loads a module. */
#include "internal.h"

#include <sodium.h>
#include <string.h>

_Static_assert(PB_HASH_BYTES == crypto_generichash_BYTES, "hash size");
_Static_assert(PB_SIG_BYTES == crypto_sign_BYTES, "signature size");
_Static_assert(PB_PUBLICKEY_BYTES == crypto_sign_PUBLICKEYBYTES, "pk size");
_Static_assert(PB_SECRETKEY_BYTES == crypto_sign_SECRETKEYBYTES, "sk size");
_Static_assert(PB_SEED_BYTES == crypto_sign_SEEDBYTES, "seed size");

pb_err pb_init(void)
{
    return sodium_init() < 0 ? PB_ERR_INTERNAL : PB_OK;
}

void pb_hash(const void *data, size_t len, uint8_t out[PB_HASH_BYTES])
{
    crypto_generichash(out, PB_HASH_BYTES, data, len, NULL, 0);
}

void pb_sign(const uint8_t *stmt, size_t len,
             const uint8_t sk[PB_SECRETKEY_BYTES], uint8_t sig[PB_SIG_BYTES])
{
    crypto_sign_detached(sig, NULL, stmt, len, sk);
}

pb_err pb_verify(const uint8_t *stmt, size_t len,
                 const uint8_t sig[PB_SIG_BYTES],
                 const uint8_t pk[PB_PUBLICKEY_BYTES])
{
    return crypto_sign_verify_detached(sig, stmt, len, pk) == 0
               ? PB_OK
               : PB_ERR_BAD_SIGNATURE;
}

pb_err pb_patch_verify(const pb_patch *p,
                       const uint8_t pinned_key[PB_PUBLICKEY_BYTES],
                       pb_statement *out, pb_errmsg *why)
{
    char b[2 * PB_HASH_BYTES + 1];
    memset(out, 0, sizeof *out);
    /* The signature first, over the bytes as they came: a statement nobody
     * with the pinned key signed is never parsed (the seq it claims is not
     * known, nor worth knowing). */
    if (p->sig.len != PB_SIG_BYTES || !p->stmt.ptr ||
        pb_verify(p->stmt.ptr, p->stmt.len, p->sig.ptr, pinned_key) != PB_OK)
        return pb_fail(why, PB_ERR_BAD_SIGNATURE,
                       "a patch statement of %u bytes whose signature does "
                       "not verify with the room's key %.16s… (tampered, or "
                       "signed by another relay)",
                       p->stmt.len, pb_hex(pinned_key, PB_PUBLICKEY_BYTES, b));
    return pb_patch_verify_signed(p, pinned_key, out, why);
}

pb_err pb_patch_verify_signed(const pb_patch *p,
                              const uint8_t pinned_key[PB_PUBLICKEY_BYTES],
                              pb_statement *out, pb_errmsg *why)
{
    char a[2 * PB_HASH_BYTES + 1], b[2 * PB_HASH_BYTES + 1];
    uint8_t h[PB_HASH_BYTES];
    memset(out, 0, sizeof *out);
    pb_err e = pb_statement_decode(p->stmt.ptr, p->stmt.len, out, why);
    if (e)
        return e;
    if (sodium_memcmp(out->key, pinned_key, PB_PUBLICKEY_BYTES) != 0) {
        e = pb_fail(why, PB_ERR_WRONG_KEY,
                    "patch seq %llu: signed with the room's key %.16s… but "
                    "naming key %.16s…",
                    (unsigned long long)out->seq,
                    pb_hex(pinned_key, PB_PUBLICKEY_BYTES, b),
                    pb_hex(out->key, PB_PUBLICKEY_BYTES, a));
        goto fail;
    }
    if (p->module.ptr)
        pb_hash(p->module.ptr, p->module.len, h);
    if (p->module.ptr &&
        sodium_memcmp(h, out->module_hash, PB_HASH_BYTES) != 0) {
        e = pb_fail(why, PB_ERR_HASH_MISMATCH,
                    "patch seq %llu: module hash is %.16s…, the statement "
                    "says %.16s…",
                    (unsigned long long)out->seq, pb_hex(h, PB_HASH_BYTES, a),
                    pb_hex(out->module_hash, PB_HASH_BYTES, b));
        goto fail;
    }
    if (p->source.ptr) {
        pb_hash(p->source.ptr, p->source.len, h);
        if (sodium_memcmp(h, out->source_hash, PB_HASH_BYTES) != 0) {
            e = pb_fail(why, PB_ERR_HASH_MISMATCH,
                        "patch seq %llu: source does not match the "
                        "statement's source_hash",
                        (unsigned long long)out->seq);
            goto fail;
        }
    }
    return PB_OK;
fail:
    pb_statement_free(out);
    return e;
}
