/* fuzz_session.c — libFuzzer target for the runtime session's frame handler
 * (runtime/session.c, catchup.c, head.c, verifier.c, report.c, expr.c),
 * built natively: this folder's emscripten.h and loader.c stand in for
 * Emscripten and its dynamic linker.
 *
 * Each input starts a fresh session on room "jam" with the pinned key of a
 * test relay (optionally as a verifier instance, optionally from a floor)
 * and is read as a program of host calls: raw frames, live patches and
 * catch-up batches built from a pool of statements signed at start-up (a
 * chain in epoch 0 and one in epoch 7, a fork, an expression, a patch due
 * too far ahead, another room's, and statements signed by another key or
 * naming it), each possibly stripped of its module or source or with one
 * byte flipped; signed heads; clock ticks that commit what is due and run
 * the expressions; hellos, traps, logs and test results with arbitrary
 * text. Beyond "no crash, no leak, no overread" (ASan/UBSan/LSan) it
 * checks after every call:
 *   - the chain head is the genesis of its epoch or a statement signed
 *     with the pinned key for this room: nothing unsigned, tampered with or
 *     signed by another key is ever accepted;
 *   - a verifier passes on only patches and heads that verify with the
 *     pinned key;
 *   - every frame the session queues for the relay decodes (a peer would
 *     otherwise drop it), and no answer to the host is cut to "null".
 * The input format is below (op); the seeds in corpus/ (*.bin) walk the
 * chain live, by catch-up and as a verifier, with heads and hostile items. */
#include "internal.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define T0 1795000000000000ull /* room time of the pool's seq 0 */

/* ---- signatures ------------------------------------------------------------
 * Checking an Ed25519 signature costs more than everything else an input
 * does, and the pool's signatures come again and again: the link wraps
 * libsodium's check (CMakeLists.txt, --wrap) with a memo of its answers by
 * a hash of everything it reads (signature, key, message). The answer is
 * libsodium's either way; only the second one for the same bytes is not
 * computed again. */
int __real_crypto_sign_verify_detached(const unsigned char *sig,
                                       const unsigned char *m,
                                       unsigned long long mlen,
                                       const unsigned char *pk);
int __wrap_crypto_sign_verify_detached(const unsigned char *sig,
                                       const unsigned char *m,
                                       unsigned long long mlen,
                                       const unsigned char *pk);
int __wrap_crypto_sign_verify_detached(const unsigned char *sig,
                                       const unsigned char *m,
                                       unsigned long long mlen,
                                       const unsigned char *pk)
{
    static struct {
        uint8_t key[32];
        int answer;
        bool is_set;
    } memo[4096];
    crypto_generichash_state h;
    uint8_t key[32];
    crypto_generichash_init(&h, NULL, 0, sizeof key);
    crypto_generichash_update(&h, sig, crypto_sign_BYTES);
    crypto_generichash_update(&h, pk, crypto_sign_PUBLICKEYBYTES);
    crypto_generichash_update(&h, m, mlen);
    crypto_generichash_final(&h, key, sizeof key);
    uint32_t at = ((uint32_t)key[0] << 8 | key[1]) % 4096u;
    if (memo[at].is_set && !memcmp(memo[at].key, key, sizeof key))
        return memo[at].answer;
    int answer = __real_crypto_sign_verify_detached(sig, m, mlen, pk);
    memcpy(memo[at].key, key, sizeof key);
    memo[at].answer = answer;
    memo[at].is_set = true;
    return answer;
}

/* ---- the pool of signed statements -------------------------------------- */

typedef struct item {
    pb_buf stmt;
    uint8_t sig[PB_SIG_BYTES];
    uint8_t module[16];
    uint32_t module_len;
    char source[48];
    uint8_t hash[PB_HASH_BYTES];
    uint64_t seq;
    bool is_trusted; /* the chain may move to it */
} item;

#define N_ITEMS 24
static item pool[N_ITEMS];
static uint32_t n_pool;

typedef struct head_item {
    pb_buf stmt;
    uint8_t sig[PB_SIG_BYTES];
} head_item;

#define N_HEADS 10
static head_item heads[N_HEADS];
static uint32_t n_heads;

static uint8_t pk[PB_PUBLICKEY_BYTES], sk[PB_SECRETKEY_BYTES];
static uint8_t other_pk[PB_PUBLICKEY_BYTES], other_sk[PB_SECRETKEY_BYTES];
static char pk_hex[2 * PB_PUBLICKEY_BYTES + 1];

enum { SIGNED_BY_OTHER = 1, NAMES_OTHER = 2 };

/* A patch statement of room at seq after prev: definitions of ggg (the
 * native loader reads variant from the module: 2 also defines pb_init, 3
 * does not load, 9 cannot be written) or an expression; apply_extra µs
 * later than the relay would make it. */
static const item *add(const char *room, uint64_t seq, const uint8_t *prev,
                       pb_patch_kind kind, uint8_t variant,
                       uint64_t apply_extra, int flags)
{
    item *it = &pool[n_pool++];
    static const uint8_t wasm[8] = {0, 'a', 's', 'm', 1, 0, 0, 0};
    memcpy(it->module, wasm, sizeof wasm);
    /* a custom section "v" with the variant, or "e" for an expression */
    const uint8_t defs[5] = {0, 3, 1, 'v', variant}, expr[4] = {0, 2, 1, 'e'};
    if (kind == PB_KIND_EXPR)
        memcpy(it->module + 8, expr, sizeof expr);
    else
        memcpy(it->module + 8, defs, sizeof defs);
    it->module_len = 8 + (kind == PB_KIND_EXPR ? sizeof expr : sizeof defs);
    snprintf(it->source, sizeof it->source, "(def ggg %u)", variant);
    pb_symbol sym = {pb_cstr("ggg"), pb_cstr("d(d)")};
    pb_statement s = {0};
    s.room = pb_cstr(room);
    s.seq = seq;
    if (prev)
        memcpy(s.prev_hash, prev, PB_HASH_BYTES);
    pb_hash(it->module, it->module_len, s.module_hash);
    s.symbols = kind == PB_KIND_DEFS ? &sym : NULL;
    s.n_symbols = kind == PB_KIND_DEFS ? 1 : 0;
    s.author = pb_cstr("ada");
    s.lang = PB_LANG_LISP;
    pb_hash(it->source, strlen(it->source), s.source_hash);
    s.created_us = T0 + seq * 1000000ull;
    s.apply_us = s.created_us + 50000 + apply_extra;
    memcpy(s.key, flags & NAMES_OTHER ? other_pk : pk, PB_PUBLICKEY_BYTES);
    s.kind = kind;
    pb_buf_init(&it->stmt);
    if (pb_statement_encode(&s, &it->stmt, NULL))
        abort(); /* a bug in the pool, not an input */
    pb_sign(it->stmt.data, it->stmt.len,
            flags & SIGNED_BY_OTHER ? other_sk : sk, it->sig);
    pb_hash(it->stmt.data, it->stmt.len, it->hash);
    it->seq = seq;
    it->is_trusted = !flags && !strcmp(room, "jam");
    return it;
}

static void add_head(uint64_t epoch, uint64_t seq, const uint8_t *hash,
                     uint64_t time_us, bool is_other)
{
    head_item *h = &heads[n_heads++];
    pb_head st = {.room = pb_cstr("jam"), .epoch = epoch, .seq = seq};
    if (hash)
        memcpy(st.hash, hash, PB_HASH_BYTES);
    else
        pb_epoch_genesis("jam", epoch, pk, st.hash);
    st.time_us = time_us;
    memcpy(st.key, is_other ? other_pk : pk, PB_PUBLICKEY_BYTES);
    pb_buf_init(&h->stmt);
    if (pb_head_encode(&st, &h->stmt, NULL))
        abort();
    pb_sign(h->stmt.data, h->stmt.len, is_other ? other_sk : sk, h->sig);
}

static void build_pool(void)
{
    static const uint8_t pk_seed[PB_SEED_BYTES] =
        "patchbay test relay key seed 01";
    static const uint8_t other_seed[PB_SEED_BYTES] =
        "some other relay's key seed 02";
    crypto_sign_seed_keypair(pk, sk, pk_seed);
    crypto_sign_seed_keypair(other_pk, other_sk, other_seed);
    pb_hex(pk, sizeof pk, pk_hex);
    /* epoch 0: seq 1..8 (an expression at 3 and 7, pb_init at 4, a module
     * that does not load at 5, one that cannot be written at 8) */
    const item *a[9] = {0};
    static const uint8_t variants[9] = {0, 0, 1, 0, 2, 3, 4, 0, 9};
    for (uint64_t s = 1; s <= 8; s++)
        a[s] = add("jam", s, s > 1 ? a[s - 1]->hash : NULL,
                   s == 3 || s == 7 ? PB_KIND_EXPR : PB_KIND_DEFS, variants[s],
                   0, 0);
    const item *f3 =
        add("jam", 3, a[2]->hash, PB_KIND_DEFS, 5, 0, 0); /* fork */
    add("jam", 4, f3->hash, PB_KIND_DEFS, 6, 0, 0);
    add("jam", 9, a[8]->hash, PB_KIND_DEFS, 1, 3600ull * 1000000u, 0);
    add("pop", 1, NULL, PB_KIND_DEFS, 0, 0, 0);
    add("jam", 9, a[8]->hash, PB_KIND_DEFS, 0, 0, SIGNED_BY_OTHER);
    add("jam", 3, a[2]->hash, PB_KIND_DEFS, 0, 0, NAMES_OTHER);
    add("jam", 1, NULL, PB_KIND_DEFS, 7, 0, SIGNED_BY_OTHER | NAMES_OTHER);
    /* epoch 7 */
    uint8_t genesis7[PB_HASH_BYTES];
    pb_epoch_genesis("jam", 7, pk, genesis7);
    const item *b1 = add("jam", 1, genesis7, PB_KIND_DEFS, 0, 0, 0);
    const item *b2 = add("jam", 2, b1->hash, PB_KIND_EXPR, 0, 0, 0);
    add("jam", 3, b2->hash, PB_KIND_DEFS, 2, 0, 0);

    add_head(0, 0, NULL, T0, false);
    add_head(0, 2, a[2]->hash, T0 + 2500000, false);
    add_head(0, 5, a[5]->hash, T0 + 5500000, false);
    add_head(0, 8, a[8]->hash, T0 + 8500000, false);
    add_head(0, 4, pool[9].hash, T0 + 4500000, false); /* the fork's */
    add_head(7, 0, NULL, T0 + 1000, false);
    add_head(7, 2, b2->hash, T0 + 2500000, false);
    add_head(0, 9, a[8]->hash, T0 + 9500000, true);
    add_head(3, 0, NULL, T0 + 100000000ull, false);
}

/* ---- reading the input -------------------------------------------------- */

typedef struct input {
    const uint8_t *p;
    size_t n;
} input;

static uint8_t u8(input *in)
{
    if (!in->n)
        return 0;
    in->n--;
    return *in->p++;
}

static uint32_t u16(input *in)
{
    uint32_t hi = u8(in);
    return hi << 8 | u8(in);
}

/* A string of up to 255 arbitrary bytes (it ends at a zero byte). */
static const char *text(input *in, char *buf)
{
    size_t n = u8(in);
    if (n > in->n)
        n = in->n;
    memcpy(buf, in->p, n);
    buf[n] = '\0';
    in->p += n;
    in->n -= n;
    return buf;
}

/* ---- the checks ---------------------------------------------------------- */

static void check_chain(void)
{
    static pb_chain checked; /* the last head found good */
    const pb_chain *c = &rt_state.chain;
    if (!memcmp(c, &checked, sizeof checked))
        return;
    if (!c->seq) {
        uint8_t genesis[PB_HASH_BYTES];
        pb_epoch_genesis("jam", c->epoch, pk, genesis);
        if (memcmp(c->hash, genesis, PB_HASH_BYTES))
            abort(); /* a head at seq 0 that is not a genesis */
        checked = *c;
        return;
    }
    for (uint32_t i = 0; i < n_pool; i++)
        if (pool[i].is_trusted && pool[i].seq == c->seq &&
            !memcmp(pool[i].hash, c->hash, PB_HASH_BYTES)) {
            checked = *c;
            return;
        }
    abort(); /* the chain moved to something the relay did not sign */
}

static void check_patch_signed(const pb_patch *p)
{
    pb_statement st;
    if (pb_patch_verify(p, pk, &st, NULL))
        abort(); /* a verifier passed on a patch that does not verify */
    pb_statement_free(&st);
}

/* What a verifier holds of a state catch-up (RT_PASS_HOLD) until its end,
 * as the host does: copies of the frames. */
#define N_HELD 64
static struct {
    uint8_t *frame[N_HELD];
    size_t len[N_HELD];
    uint32_t n;
} held;

static void held_free(void)
{
    for (uint32_t i = 0; i < held.n; i++)
        free(held.frame[i]);
    held.n = 0;
}

/* A frame a verifier passes on: a patch, a head or a catch-up batch, and
 * everything in it verifies with the pinned key. */
static void check_signed(const uint8_t *frame, size_t len)
{
    pb_frame f;
    if (pb_frame_decode(frame, len, &f, NULL))
        abort();
    if (f.type == PB_T_PATCH) {
        check_patch_signed(&f.patch);
    } else if (f.type == PB_T_HEAD) {
        pb_head h;
        if (pb_head_verify(&f.head, pk, &h, NULL))
            abort();
        pb_head_free(&h);
    } else if (f.type == PB_T_HISTORY) {
        for (uint32_t i = 0; i < f.history.n_items; i++)
            check_patch_signed(&f.history.items[i]);
    } else {
        abort(); /* nothing else is ever passed */
    }
    pb_frame_free(&f);
}

/* In a verifier: what it lets through to the patch instance. */
static void check_passed(const uint8_t *frame, size_t len)
{
    switch (rt_session_pass()) {
    case RT_PASS_FRAME: check_signed(frame, len); break;
    case RT_PASS_ITEMS:
        check_signed(rt_session_passed_data(), rt_session_passed_len());
        break;
    case RT_PASS_HOLD:
        if (held.n == N_HELD)
            abort(); /* the harness's limit: inputs are shorter */
        held.frame[held.n] = malloc(len);
        memcpy(held.frame[held.n], frame, len);
        held.len[held.n++] = len;
        break;
    case RT_PASS_END:
        for (uint32_t i = 0; i < held.n; i++)
            check_signed(held.frame[i], held.len[i]);
        check_signed(frame, len);
        held_free();
        break;
    case RT_PASS_DROP: held_free(); break;
    default: break;
    }
}

static void check_answer(const char *json)
{
    if (!json || !strcmp(json, "null"))
        abort(); /* cut: the host would skip what it says */
}

/* Sends nothing anywhere, but every frame must decode. */
static void drain_outbox(void)
{
    while (rt_session_out_len()) {
        pb_frame f;
        if (pb_frame_decode(rt_session_out_data(), rt_session_out_len(), &f,
                            NULL))
            abort();
        pb_frame_free(&f);
        rt_session_out_pop();
    }
}

/* ---- the session --------------------------------------------------------- */

static void session_reset(void)
{
    if (rt_session_expr_begin())
        rt_session_expr_end(0, "pb_expr", "reset", "", 0);
    rt_catchup_abort();
    while (rt_state.first) {
        rt_pending *p = rt_state.first;
        rt_state.first = p->next;
        rt_staged_free(p->staged);
        free(p);
    }
    rt_drop_kept_after(0);
    held_free();
    (void)rt_session_take_commits();
    drain_outbox();
    memset(&rt_state, 0, sizeof rt_state);
    rt_session_set_log_limits(0, 0, 0);
    rt_session_set_stale(0);
}

/* Encodes f and hands it to the session like the host does. */
static void receive(const pb_frame *f, uint64_t now)
{
    pb_buf b;
    pb_buf_init(&b);
    if (pb_frame_encode(f, &b, NULL) == PB_OK) {
        check_answer(rt_session_receive(b.data, (uint32_t)b.len, (double)now));
        if (rt_state.is_verifier)
            check_passed(b.data, b.len);
    }
    pb_buf_free(&b);
}

/* One pool item as a patch, as the input says: stripped of its module or
 * source, one byte of its statement, signature or module flipped. */
static void patch_of(input *in, pb_patch *p, uint8_t *copy)
{
    const item *it = &pool[u8(in) % n_pool];
    uint8_t how = u8(in);
    size_t n_stmt = it->stmt.len;
    memcpy(copy, it->stmt.data, n_stmt);
    memcpy(copy + n_stmt, it->sig, PB_SIG_BYTES);
    memcpy(copy + n_stmt + PB_SIG_BYTES, it->module, it->module_len);
    size_t all = n_stmt + PB_SIG_BYTES + it->module_len;
    if (how & 4) { /* tampered with */
        uint32_t at = u16(in) % all;
        copy[at] ^= (uint8_t)(1u << (how >> 5));
    }
    p->stmt = (pb_bytes){copy, (uint32_t)n_stmt};
    p->sig = (pb_bytes){copy + n_stmt, PB_SIG_BYTES};
    p->module = how & 1
                    ? (pb_bytes){0}
                    : (pb_bytes){copy + n_stmt + PB_SIG_BYTES, it->module_len};
    p->source = how & 2 ? (pb_str){0} : pb_cstr(it->source);
    if (how & 8) /* the source of another patch */
        p->source = pb_cstr("(def ggg 99)");
}

#define STMT_MAX 512 /* the pool's statements are far shorter */

static void tick(input *in, uint64_t now)
{
    rt_session_tick((double)now);
    const char *commits = rt_session_take_commits();
    check_answer(commits);
    if (!rt_session_expr_begin())
        return;
    char value[256], out[256];
    uint8_t how = u8(in);
    switch (how % 4) { /* what the expression's code does */
    case 0: pb_rt_value_str(text(in, value)); break;
    case 1: pb_rt_value_num((double)(int16_t)u16(in) / 7.0); break;
    case 2:
        pb_rt_value_int((long long)(int16_t)u16(in) * 1099511627776ll);
        break;
    default: pb_rt_value_bool(how & 8); break;
    }
    check_answer(rt_session_expr_end(!(how & 4), "pb_expr", text(in, value),
                                     text(in, out), (double)now));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool is_ready;
    if (!is_ready) {
        if (pb_init())
            abort();
        build_pool();
        is_ready = true;
    }
    input in = {data, size};
    uint8_t mode = u8(&in);
    session_reset();
    check_answer(rt_session_open("jam", pk_hex, mode & 2 ? 12 : 0));
    if (mode & 1 && rt_session_verify_only())
        abort();
    if (mode & 4) { /* a floor from before: a pool item's seq and hash */
        const item *it = &pool[u8(&in) % n_pool];
        char hex[2 * PB_HASH_BYTES + 1];
        (void)rt_session_floor(mode & 8 ? 7 : 0, (double)it->seq,
                               pb_hex(it->hash, PB_HASH_BYTES, hex));
    }
    uint64_t now = T0;
    uint8_t copy[8][STMT_MAX + PB_SIG_BYTES + 16];
    char s1[256], s2[256], s3[256];
    for (int ops = 0; in.n && ops < 64; ops++) {
        uint8_t op = u8(&in);
        switch (op % 12) {
        case 0: { /* a live patch */
            pb_frame f = {.type = PB_T_PATCH};
            patch_of(&in, &f.patch, copy[0]);
            receive(&f, now);
            break;
        }
        case 1: { /* a catch-up batch */
            pb_frame f = {.type = PB_T_HISTORY};
            pb_patch items[8];
            uint8_t how = u8(&in);
            f.history.n_items = how % 9;
            for (uint32_t i = 0; i < f.history.n_items; i++)
                patch_of(&in, &items[i], copy[i]);
            f.history.items = items;
            f.history.more = how & 16;
            f.history.req = how & 32 ? 5 : 0;
            f.history.head_seq = u8(&in) % 10;
            receive(&f, now);
            break;
        }
        case 2: { /* a signed head, maybe with a byte flipped */
            const head_item *h = &heads[u8(&in) % n_heads];
            uint8_t b[STMT_MAX + PB_SIG_BYTES];
            memcpy(b, h->stmt.data, h->stmt.len);
            memcpy(b + h->stmt.len, h->sig, PB_SIG_BYTES);
            uint8_t how = u8(&in);
            if (how & 1)
                b[u16(&in) % (h->stmt.len + PB_SIG_BYTES)] ^= 1u << (how >> 5);
            pb_frame f = {.type = PB_T_HEAD};
            f.head.stmt = (pb_bytes){b, (uint32_t)h->stmt.len};
            f.head.sig = (pb_bytes){b + h->stmt.len, PB_SIG_BYTES};
            receive(&f, now);
            break;
        }
        case 3: { /* any bytes as a frame */
            size_t n = u16(&in) % 1024;
            if (n > in.n)
                n = in.n;
            uint8_t *b = malloc(n ? n : 1); /* exact size: overreads show */
            memcpy(b, in.p, n);
            in.p += n;
            in.n -= n;
            check_answer(rt_session_receive(b, (uint32_t)n, (double)now));
            if (rt_state.is_verifier)
                check_passed(b, n);
            free(b);
            break;
        }
        case 4: /* time passes */
            now += (uint64_t)u16(&in) * (op & 16 ? 100000u : 1000u);
            tick(&in, now);
            break;
        case 5: /* a new connection */
            if (op & 16)
                (void)rt_session_set_device(text(&in, s1), text(&in, s2),
                                            text(&in, s3), "simd", 320, 240,
                                            320, 240, 2.0, 1e9, 4);
            (void)rt_session_hello("token", "fuzz", u8(&in) % 10);
            held_free(); /* the host drops what it held of a catch-up */
            break;
        case 6: { /* a call into patch code trapped */
            static const char *const vars[] = {"ggg", "pb_init", "pb_expr",
                                               "nope"};
            check_answer(
                rt_session_trap(vars[u8(&in) % 4], text(&in, s1), (double)now));
            break;
        }
        case 7: /* a frame too big to copy in */
            check_answer(rt_session_refuse((double)u16(&in) * 4096.0));
            break;
        case 8: /* patch code logs */
            (void)rt_session_log(u8(&in) % 6, text(&in, s1), text(&in, s2),
                                 u8(&in), (double)now);
            break;
        case 9: { /* a test run */
            (void)rt_session_test_begin(u8(&in));
            uint8_t n = u8(&in) % 4;
            for (uint8_t i = 0; i < n; i++)
                (void)rt_session_test_case(text(&in, s1), u8(&in) % 6,
                                           text(&in, s2), 12.0, text(&in, s3),
                                           u8(&in), "ggg", 1);
            (void)rt_session_test_end(u8(&in));
            break;
        }
        case 10: /* the host's clock says the head is stale */
            rt_session_set_stale(op & 16 ? (double)now : 0);
            check_answer(rt_session_head());
            break;
        default: /* the tests the host would list */
            check_answer(rt_session_tests(text(&in, s1)));
            break;
        }
        check_chain();
        drain_outbox();
    }
    return 0;
}
