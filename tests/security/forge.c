/* forge.c — pb_forge, the hostile relay's signing hand in tests/security:
 * it signs a patch statement with a relay's own key (read from its data
 * folder), as a relay that went rogue, or someone who stole its key,
 * would. The runtimes must then refuse what the key cannot make safe: a
 * module importing what the runtime does not offer, a rollback, a chain
 * that goes backwards.
 *
 *   pb_forge [--apply-in-us N] DATA_DIR PREV LIKE [MODULE] > FRAME
 *
 * PREV: a patch frame file the new statement follows (its seq + 1, its
 * hash as prev_hash), or "-" for a room's first patch. LIKE: a patch frame
 * whose room, symbols, author, lang and source the new one copies. MODULE:
 * a wasm file to carry instead of LIKE's module (then without source).
 * Writes the signed patch frame (msgpack) to stdout; the statement is
 * created now and applies now, or N µs later. Exit status 0, or 1 with a
 * message. */
#include "pb_protocol.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0, got;
    uint8_t *b = malloc(cap);
    while (b && (got = fread(b + n, 1, cap - n, f)) > 0)
        if ((n += got) == cap)
            b = realloc(b, cap *= 2);
    if (ferror(f)) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *len = n;
    return b;
}

static int die(const char *what, const char *detail)
{
    fprintf(stderr, "pb_forge: %s%s%s\n", what, detail ? ": " : "",
            detail ? detail : "");
    return 1;
}

/* Reads a patch frame file into f (its bytes in *raw) and its statement. */
static int read_patch(const char *path, uint8_t **raw, pb_frame *f,
                      pb_statement *st)
{
    size_t len;
    pb_errmsg why = {{0}};
    if (!(*raw = slurp(path, &len)))
        return die("cannot read", path);
    if (pb_frame_decode(*raw, len, f, &why) || f->type != PB_T_PATCH ||
        pb_statement_decode(f->patch.stmt.ptr, f->patch.stmt.len, st, &why))
        return die("not a patch frame", why.text[0] ? why.text : path);
    return 0;
}

/* Signs the statement of like (from prev, carrying module if not NULL)
 * and writes the patch frame to stdout. */
static int forge(const uint8_t sk[PB_SECRETKEY_BYTES],
                 const uint8_t pk[PB_PUBLICKEY_BYTES], const pb_statement *prev,
                 pb_statement *st, pb_patch out, const uint8_t *module,
                 size_t module_len, uint64_t apply_in_us)
{
    if (module) {
        out.module = (pb_bytes){module, (uint32_t)module_len};
        out.source = (pb_str){0};
        pb_hash(module, module_len, st->module_hash);
    }
    st->seq = prev ? prev->seq + 1 : 1;
    if (prev)
        memcpy(st->prev_hash, prev->hash, PB_HASH_BYTES);
    else
        memset(st->prev_hash, 0, PB_HASH_BYTES);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    st->created_us =
        (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
    st->apply_us = st->created_us + apply_in_us;
    memcpy(st->key, pk, PB_PUBLICKEY_BYTES);

    pb_buf stmt, frame;
    pb_buf_init(&stmt);
    pb_buf_init(&frame);
    pb_errmsg why = {{0}};
    uint8_t sig[PB_SIG_BYTES];
    int rc = 1;
    if (pb_statement_encode(st, &stmt, &why)) {
        die("cannot encode the statement", why.text);
        goto done;
    }
    pb_sign(stmt.data, stmt.len, sk, sig);
    out.stmt = (pb_bytes){stmt.data, (uint32_t)stmt.len};
    out.sig = (pb_bytes){sig, PB_SIG_BYTES};
    pb_frame f = {.type = PB_T_PATCH, .patch = out};
    if (pb_frame_encode(&f, &frame, &why)) {
        die("cannot encode the frame", why.text);
        goto done;
    }
    rc = fwrite(frame.data, 1, frame.len, stdout) == frame.len ? 0 : 1;
done:
    pb_buf_free(&stmt);
    pb_buf_free(&frame);
    return rc;
}

int main(int argc, char **argv)
{
    uint64_t apply_in_us = 0;
    if (argc > 2 && !strcmp(argv[1], "--apply-in-us")) {
        apply_in_us = strtoull(argv[2], NULL, 10);
        argc -= 2;
        argv += 2;
    }
    if (argc < 4 || argc > 5)
        return die("usage", "pb_forge [--apply-in-us N] DATA_DIR PREV|- LIKE "
                            "[MODULE] > FRAME");
    if (pb_init())
        return die("libsodium did not start", NULL);
    int rc = 1;
    char path[4096];
    snprintf(path, sizeof path, "%s/relay.key", argv[1]);
    size_t seed_len = 0, module_len = 0;
    uint8_t *seed = slurp(path, &seed_len), *module = NULL;
    uint8_t *prev_raw = NULL, *like_raw = NULL;
    uint8_t pk[PB_PUBLICKEY_BYTES], sk[PB_SECRETKEY_BYTES];
    pb_frame prev = {0}, like = {0};
    pb_statement prev_st = {0}, st = {0};
    if (!seed || seed_len != crypto_sign_SEEDBYTES) {
        die("no 32-byte relay.key in", argv[1]);
        goto done;
    }
    crypto_sign_seed_keypair(pk, sk, seed);
    if ((strcmp(argv[2], "-") &&
         read_patch(argv[2], &prev_raw, &prev, &prev_st)) ||
        read_patch(argv[3], &like_raw, &like, &st))
        goto done;
    if (argc == 5 && !(module = slurp(argv[4], &module_len))) {
        die("cannot read", argv[4]);
        goto done;
    }
    rc = forge(sk, pk, prev_raw ? &prev_st : NULL, &st, like.patch, module,
               module_len, apply_in_us);
done:
    sodium_memzero(sk, sizeof sk);
    if (seed)
        sodium_memzero(seed, seed_len);
    pb_statement_free(&prev_st);
    pb_statement_free(&st);
    pb_frame_free(&prev);
    pb_frame_free(&like);
    free(seed);
    free(module);
    free(prev_raw);
    free(like_raw);
    return rc;
}
