/* check.c — the check of a whole chain (docs/PROTOCOL.md § Verification,
 * § Chain), for `patchbay verify`, `import` and `export`.
 *
 * Everything but the signatures is checked in order as the patches come
 * (statement decode, key, module and source hashes, room, seq and the link
 * to the previous statement). The signatures — most of the work, ~50 µs
 * each — are checked by worker threads from a queue that the feeding
 * thread fills, so a long history costs about its signatures divided by
 * the cores. The verdict is the first patch, in seq order, with anything
 * wrong, and the first thing wrong with it in the order of § Verification;
 * a few causes that look alike to a runtime are told apart here, because a
 * person has to act on them: a statement changed after it was signed (the
 * next patch no longer links to it), a damaged signature over an intact
 * statement (the next patch still links to it), a patch signed by another
 * key, a missing patch, two patches out of order. */
#include "history.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK_BYTES (4u << 20) /* statement storage; never moves */
#define CHUNK       64u        /* signatures a worker takes at once */
#define MAX_THREADS 16u

typedef struct block {
    struct block *next;
    size_t used;
    uint8_t bytes[];
} block;

/* One patch as the check keeps it. */
typedef struct entry {
    const uint8_t *stmt; /* a copy, in a block */
    uint32_t stmt_len;
    uint8_t sig[PB_SIG_BYTES];
    uint8_t hash[PB_HASH_BYTES];      /* of the statement bytes */
    uint8_t prev_hash[PB_HASH_BYTES]; /* as it says (if it decodes) */
    uint8_t named_key[PB_PUBLICKEY_BYTES];
    bool is_decoded;
    bool is_sig_bad; /* written by a worker */
} entry;

struct cli_check {
    char room[PB_MAX_NAME_BYTES + 1];
    uint8_t key[PB_PUBLICKEY_BYTES];
    pb_chain chain;
    cli_progress *progress;
    block *blocks;
    entry *entries; /* grows only while no worker runs (see add) */
    size_t n, cap;
    /* the first failure found in order (not the signatures) */
    size_t fail_at; /* index, or SIZE_MAX */
    pb_err fail_e;
    char fail_msg[256];
    bool is_gap_pending; /* fail_at is a gap of one: is the next the
                            missing one (a swapped pair)? */
    /* the signature workers */
    pthread_mutex_t lock;
    pthread_cond_t more, progressed;
    pthread_t threads[MAX_THREADS];
    unsigned n_threads; /* wanted, then running */
    bool is_started;
    size_t published; /* entries [0, published) may be checked */
    size_t taken;     /* entries [0, taken) are being or were checked */
    size_t checked;
    bool is_closing;
};

unsigned cli_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1u : n > (long)MAX_THREADS ? MAX_THREADS : (unsigned)n;
}

static void *worker(void *arg)
{
    cli_check *c = arg;
    pthread_mutex_lock(&c->lock);
    for (;;) {
        while (c->taken == c->published && !c->is_closing)
            pthread_cond_wait(&c->more, &c->lock);
        if (c->taken == c->published)
            break;
        size_t from = c->taken;
        size_t to = from + CHUNK < c->published ? from + CHUNK : c->published;
        c->taken = to;
        entry *e = c->entries;
        pthread_mutex_unlock(&c->lock);
        for (size_t i = from; i < to; i++)
            e[i].is_sig_bad =
                pb_verify(e[i].stmt, e[i].stmt_len, e[i].sig, c->key) != PB_OK;
        pthread_mutex_lock(&c->lock);
        c->checked += to - from;
        pthread_cond_broadcast(&c->progressed);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

cli_check *cli_check_new(const char *room, uint64_t epoch,
                         const uint8_t key[PB_PUBLICKEY_BYTES],
                         unsigned threads, cli_progress *progress)
{
    cli_check *c = calloc(1, sizeof *c);
    if (!c || pb_chain_init_epoch(&c->chain, room, epoch, key)) {
        free(c);
        return NULL;
    }
    snprintf(c->room, sizeof c->room, "%s", room);
    memcpy(c->key, key, PB_PUBLICKEY_BYTES);
    c->progress = progress;
    c->fail_at = SIZE_MAX;
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->more, NULL);
    pthread_cond_init(&c->progressed, NULL);
    c->n_threads = threads ? threads : cli_cores();
    if (c->n_threads > MAX_THREADS)
        c->n_threads = MAX_THREADS;
    return c;
}

/* As many as can start (none: cli_check_end checks them itself). */
static void start_workers(cli_check *c)
{
    for (unsigned i = 0; i < c->n_threads; i++)
        if (pthread_create(&c->threads[i], NULL, worker, c)) {
            c->n_threads = i;
            return;
        }
}

static const uint8_t *keep_stmt(cli_check *c, const uint8_t *p, uint32_t n)
{
    if (!c->blocks || c->blocks->used + n > BLOCK_BYTES) {
        block *b = malloc(sizeof *b + (n > BLOCK_BYTES ? n : BLOCK_BYTES));
        if (!b)
            return NULL;
        b->next = c->blocks;
        b->used = 0;
        c->blocks = b;
    }
    uint8_t *at = c->blocks->bytes + c->blocks->used;
    memcpy(at, p, n);
    c->blocks->used += n;
    return at;
}

static void fail(cli_check *c, pb_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(cli_check *c, pb_err e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->fail_msg, sizeof c->fail_msg, fmt, ap);
    va_end(ap);
    c->fail_e = e;
    c->fail_at = c->n - 1;
}

/* After a gap of one: is this patch the one missing, i.e. were the two
 * swapped? Only looked at; the verdict stays with the gap. */
static void look_for_swap(cli_check *c, const pb_patch *p)
{
    uint64_t want = c->chain.seq + 1;
    pb_statement st;
    c->is_gap_pending = false;
    if (pb_statement_decode(p->stmt.ptr, p->stmt.len, &st, NULL))
        return;
    if (st.seq == want)
        snprintf(c->fail_msg, sizeof c->fail_msg,
                 "seq %llu comes after seq %llu: the two patches are out of "
                 "order",
                 (unsigned long long)want, (unsigned long long)want + 1);
    pb_statement_free(&st);
}

/* The checks of § Verification after the signature, and § Chain. */
static void check_in_order(cli_check *c, entry *en, const pb_patch *p,
                           const uint8_t *stored_hash)
{
    uint64_t want = c->chain.seq + 1;
    pb_statement st;
    pb_errmsg why = {{0}};
    pb_err e = pb_statement_decode(p->stmt.ptr, p->stmt.len, &st, &why);
    if (e) {
        fail(c, e, "seq %llu: the statement does not decode: %s",
             (unsigned long long)want, why.text);
        return;
    }
    en->is_decoded = true;
    memcpy(en->prev_hash, st.prev_hash, PB_HASH_BYTES);
    memcpy(en->named_key, st.key, PB_PUBLICKEY_BYTES);
    uint8_t h[PB_HASH_BYTES];
    char hex[2 * PB_HASH_BYTES + 1];
    if (memcmp(st.key, c->key, PB_PUBLICKEY_BYTES)) {
        fail(c, PB_ERR_WRONG_KEY,
             "seq %llu names the relay key %.16s…, not the one it is checked "
             "with",
             (unsigned long long)st.seq,
             pb_hex(st.key, PB_PUBLICKEY_BYTES, hex));
    } else if (!p->module.ptr) {
        fail(c, PB_ERR_MISSING_FIELD, "seq %llu: its module is missing",
             (unsigned long long)st.seq);
    } else if (pb_hash(p->module.ptr, p->module.len, h),
               memcmp(h, st.module_hash, PB_HASH_BYTES)) {
        fail(c, PB_ERR_HASH_MISMATCH,
             "seq %llu: its module (%u bytes) does not match the module hash "
             "its statement signs",
             (unsigned long long)st.seq, p->module.len);
    } else if (p->source.ptr && (pb_hash(p->source.ptr, p->source.len, h),
                                 memcmp(h, st.source_hash, PB_HASH_BYTES))) {
        fail(c, PB_ERR_HASH_MISMATCH,
             "seq %llu: its source (%u bytes) does not match the source hash "
             "its statement signs",
             (unsigned long long)st.seq, p->source.len);
    } else if ((e = pb_chain_check(&c->chain, &st, &why)) == PB_OK) {
        pb_chain_advance(&c->chain, &st);
        if (stored_hash && memcmp(stored_hash, en->hash, PB_HASH_BYTES))
            fail(c, PB_ERR_HASH_MISMATCH,
                 "seq %llu: the hash the history stores for it is not its "
                 "statement's (the relay would link the next patch to it)",
                 (unsigned long long)st.seq);
    } else if (e == PB_ERR_WRONG_ROOM) {
        fail(c, e, "seq %llu is a patch of room \"%.*s\", not of \"%s\"",
             (unsigned long long)want, (int)st.room.len, st.room.ptr, c->room);
    } else if (e == PB_ERR_CHAIN_GAP && st.seq == want + 1) {
        fail(c, e, "seq %llu is missing: seq %llu follows seq %llu",
             (unsigned long long)want, (unsigned long long)st.seq,
             (unsigned long long)want - 1);
        c->is_gap_pending = true;
    } else if (e == PB_ERR_CHAIN_GAP) {
        fail(c, e, "seqs %llu to %llu are missing: seq %llu follows seq %llu",
             (unsigned long long)want, (unsigned long long)st.seq - 1,
             (unsigned long long)st.seq, (unsigned long long)want - 1);
    } else if (e == PB_ERR_CHAIN_REPLAY) {
        fail(c, e,
             "seq %llu comes again after seq %llu: a patch repeated, or out "
             "of order",
             (unsigned long long)st.seq, (unsigned long long)want - 1);
    } else if (st.seq == 1) {
        fail(c, e,
             "seq 1 does not begin epoch %llu of room %s: it links to another "
             "genesis (a patch of another history, or the epoch named for it "
             "is not its room's)",
             (unsigned long long)c->chain.epoch, c->room);
    } else {
        fail(c, e,
             "seq %llu does not link to seq %llu: it names another previous "
             "statement (a patch of another history)",
             (unsigned long long)st.seq, (unsigned long long)want - 1);
    }
    pb_statement_free(&st);
}

bool cli_check_add(cli_check *c, const pb_patch *p, const uint8_t *stored_hash)
{
    if (c->is_gap_pending) {
        look_for_swap(c, p);
        return false;
    }
    if (c->fail_at != SIZE_MAX)
        return false;
    if (c->n == c->cap) {
        /* workers read the entries: the array moves only while none does */
        pthread_mutex_lock(&c->lock);
        while (c->checked < c->taken)
            pthread_cond_wait(&c->progressed, &c->lock);
        size_t cap = c->cap ? c->cap * 2 : 4096;
        entry *more = realloc(c->entries, cap * sizeof *more);
        if (more) {
            c->entries = more;
            c->cap = cap;
        }
        pthread_mutex_unlock(&c->lock);
        if (!more) {
            c->fail_e = PB_ERR_NOMEM;
            c->fail_at = c->n ? c->n - 1 : 0;
            snprintf(c->fail_msg, sizeof c->fail_msg,
                     "out of memory after %zu patches", c->n);
            return false;
        }
    }
    if (!c->is_started) {
        c->is_started = true;
        start_workers(c);
    }
    entry *en = &c->entries[c->n++];
    memset(en, 0, sizeof *en);
    en->stmt = keep_stmt(c, p->stmt.ptr, p->stmt.len);
    en->stmt_len = p->stmt.len;
    if (!en->stmt) {
        fail(c, PB_ERR_NOMEM, "out of memory after %zu patches", c->n - 1);
        en->stmt_len = 0;
        en->stmt = (const uint8_t *)"";
    } else {
        memcpy(en->sig, p->sig.ptr, PB_SIG_BYTES);
        pb_hash(p->stmt.ptr, p->stmt.len, en->hash);
        check_in_order(c, en, p, stored_hash);
    }
    pthread_mutex_lock(&c->lock);
    /* the patch that failed is checked too; nothing after it matters */
    c->published = c->fail_at != SIZE_MAX ? c->fail_at + 1 : c->n;
    pthread_cond_broadcast(&c->more);
    size_t checked = c->checked;
    pthread_mutex_unlock(&c->lock);
    cli_progress_update(c->progress, checked, NULL);
    return c->fail_at == SIZE_MAX || c->is_gap_pending;
}

/* Why the signature of entry i does not verify, told apart for a person. */
static void explain_signature(const cli_check *c, size_t i, pb_errmsg *why)
{
    const entry *e = &c->entries[i];
    char a[2 * PB_PUBLICKEY_BYTES + 1], b[2 * PB_PUBLICKEY_BYTES + 1];
    if (e->is_decoded && memcmp(e->named_key, c->key, PB_PUBLICKEY_BYTES) &&
        !pb_verify(e->stmt, e->stmt_len, e->sig, e->named_key))
        pb_fail(why, PB_ERR_BAD_SIGNATURE,
                "seq %zu is signed by another key (%.16s…), not the relay "
                "key it is checked with (%.16s…)",
                i + 1, pb_hex(e->named_key, PB_PUBLICKEY_BYTES, a),
                pb_hex(c->key, PB_PUBLICKEY_BYTES, b));
    else if (i + 1 < c->n && c->entries[i + 1].is_decoded &&
             !memcmp(c->entries[i + 1].prev_hash, e->hash, PB_HASH_BYTES))
        pb_fail(why, PB_ERR_BAD_SIGNATURE,
                "seq %zu: its signature is damaged (its statement is intact: "
                "seq %zu links to it)",
                i + 1, i + 2);
    else
        pb_fail(why, PB_ERR_BAD_SIGNATURE,
                "seq %zu: its signature does not verify: the statement was "
                "changed after it was signed",
                i + 1);
}

pb_err cli_check_end(cli_check *c, uint64_t *n_good, uint64_t *bad_seq,
                     pb_errmsg *why)
{
    pthread_mutex_lock(&c->lock);
    c->published = c->fail_at != SIZE_MAX ? c->fail_at + 1 : c->n;
    c->is_closing = true;
    pthread_cond_broadcast(&c->more);
    while (c->is_started && c->checked < c->published && c->n_threads) {
        pthread_cond_wait(&c->progressed, &c->lock);
        size_t checked = c->checked;
        pthread_mutex_unlock(&c->lock);
        cli_progress_update(c->progress, checked, NULL);
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    for (unsigned i = 0; c->is_started && i < c->n_threads; i++)
        pthread_join(c->threads[i], NULL);
    c->is_started = false;
    /* no worker ran (none could start): check here */
    for (size_t i = c->checked; i < c->published; i++)
        c->entries[i].is_sig_bad =
            pb_verify(c->entries[i].stmt, c->entries[i].stmt_len,
                      c->entries[i].sig, c->key) != PB_OK;
    cli_progress_update(c->progress, c->published, NULL);
    for (size_t i = 0; i < c->published; i++) {
        if (c->entries[i].is_sig_bad) {
            explain_signature(c, i, why);
            *n_good = i;
            *bad_seq = i + 1;
            return PB_ERR_BAD_SIGNATURE;
        }
    }
    if (c->fail_at != SIZE_MAX) {
        *n_good = c->fail_at;
        *bad_seq = c->fail_at + 1;
        return pb_fail(why, c->fail_e, "%s", c->fail_msg);
    }
    *n_good = c->n;
    *bad_seq = 0;
    return PB_OK;
}

const uint8_t *cli_check_head_hash(const cli_check *c)
{
    return c->chain.hash;
}

void cli_check_free(cli_check *c)
{
    if (!c)
        return;
    if (c->is_started) {
        pthread_mutex_lock(&c->lock);
        c->is_closing = true;
        c->published = c->taken; /* nothing more to hand out */
        pthread_cond_broadcast(&c->more);
        pthread_mutex_unlock(&c->lock);
        for (unsigned i = 0; i < c->n_threads; i++)
            pthread_join(c->threads[i], NULL);
    }
    for (block *b = c->blocks, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(c->entries);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->more);
    pthread_cond_destroy(&c->progressed);
    free(c);
}
