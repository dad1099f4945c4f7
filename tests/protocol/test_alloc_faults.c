/* test_alloc_faults.c — SQLite-style fault injection (do_faultsim_test
 * -faults oom*) for decoding and encoding: for every N, the N-th
 * allocation of a decode fails (msgpack-c's zone and its chunks, and the
 * arrays protocol/ takes from the zone); each such decode must end in
 * PB_ERR_NOMEM with a message, leave its output zeroed and nothing
 * allocated, and the next decode must work.
 *
 * The seam is the link, not the library: this binary links msgpack-c's
 * static archive (whole) and wraps malloc, calloc, realloc and free
 * (-Wl,--wrap=...), so that every allocation made by protocol/ and by
 * msgpack-c goes through the wrappers below, while the library itself
 * carries no test hook. Native builds only (tests/protocol/CMakeLists.txt).
 * LeakSanitizer checks the whole run at exit as well. */
#include "../check.h"
#include "samples.h"

#include <stdbool.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);

/* Counted only while armed: allocations so far, the one to fail (0:
 * none), and blocks allocated and not yet freed. */
static struct {
    bool armed;
    long count, fail_at, live;
} faults;

static bool fail_this_one(void)
{
    return faults.armed && ++faults.count == faults.fail_at;
}

void *__wrap_malloc(size_t n)
{
    if (fail_this_one())
        return NULL;
    void *p = __real_malloc(n);
    faults.live += p && faults.armed;
    return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
    if (fail_this_one())
        return NULL;
    void *p = __real_calloc(n, size);
    faults.live += p && faults.armed;
    return p;
}

void *__wrap_realloc(void *p, size_t n)
{
    if (fail_this_one())
        return NULL;
    void *q = __real_realloc(p, n);
    faults.live += q && !p && faults.armed;
    return q;
}

void __wrap_free(void *p)
{
    faults.live -= p && faults.armed;
    __real_free(p);
}

static void arm(long fail_at)
{
    faults.armed = true;
    faults.count = 0;
    faults.fail_at = fail_at;
    faults.live = 0;
}

static void disarm(void)
{
    faults.armed = false;
}

static bool is_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* Decodes bytes with allocation N failing, for every N a clean decode
 * makes; returns how many allocations that was. */
static long check_every_decode_fault(const char *name, const pb_buf *bytes)
{
    pb_frame f;
    pb_errmsg why;
    arm(0);
    pb_err e = pb_frame_decode(bytes->data, bytes->len, &f, &why);
    pb_frame_free(&f);
    disarm();
    if (e != PB_OK || faults.live != 0) {
        fprintf(stderr, "  %s: clean decode: %s, %ld blocks left\n", name,
                pb_strerror(e), faults.live);
        CHECK(e == PB_OK && faults.live == 0);
        return 0;
    }
    long total = faults.count;
    for (long n = 1; n <= total; n++) {
        why.text[0] = '\0';
        arm(n);
        e = pb_frame_decode(bytes->data, bytes->len, &f, &why);
        disarm();
        if (e != PB_ERR_NOMEM || !why.text[0] || !is_zero(&f, sizeof f) ||
            faults.live != 0) {
            fprintf(stderr,
                    "  %s: allocation %ld of %ld failing: %s (\"%s\"), "
                    "output %s, %ld blocks left\n",
                    name, n, total, pb_strerror(e), why.text,
                    is_zero(&f, sizeof f) ? "zeroed" : "NOT zeroed",
                    faults.live);
            CHECK(e == PB_ERR_NOMEM);
            if (e == PB_OK)
                pb_frame_free(&f);
            return total;
        }
    }
    /* and the next decode works */
    e = pb_frame_decode(bytes->data, bytes->len, &f, &why);
    CHECK(e == PB_OK);
    pb_frame_free(&f);
    return total;
}

TEST(test_every_failed_allocation_in_a_frame_decode_is_a_clean_error)
{
    size_t n;
    const pb_sample *s = pb_samples(&n);
    pb_buf b;
    pb_buf_init(&b);
    long most = 0;
    for (size_t i = 0; i < n; i++) {
        REQUIRE(pb_frame_encode(&s[i].frame, &b, NULL) == PB_OK);
        long total = check_every_decode_fault(s[i].name, &b);
        most = total > most ? total : most;
    }
    /* The samples fit msgpack-c's first zone chunk; frames at their array
     * limits make it take more chunks while it unpacks, and protocol/
     * take its arrays from them. */
    static pb_diag_item items[PB_MAX_DIAGS];
    static pb_patch patches[PB_MAX_HISTORY_ITEMS];
    static const uint8_t sig[PB_SIG_BYTES];
    for (uint32_t i = 0; i < PB_MAX_DIAGS; i++)
        items[i] = (pb_diag_item){.line = i + 1,
                                  .col = 1,
                                  .severity = PB_SEV_ERROR,
                                  .message = pb_cstr("x")};
    for (uint32_t i = 0; i < PB_MAX_HISTORY_ITEMS; i++)
        patches[i] = (pb_patch){.stmt = {sig, 1},
                                .sig = {sig, PB_SIG_BYTES},
                                .module = {sig, 8},
                                .source = pb_cstr("s")};
    pb_frame big[2] = {{.type = PB_T_DIAG}, {.type = PB_T_HISTORY}};
    big[0].diag = (pb_diag){.req = 1, .items = items, .n_items = PB_MAX_DIAGS};
    big[1].history = (pb_history){
        .head_seq = 1, .items = patches, .n_items = PB_MAX_HISTORY_ITEMS};
    for (size_t i = 0; i < 2; i++) {
        REQUIRE(pb_frame_encode(&big[i], &b, NULL) == PB_OK);
        long total = check_every_decode_fault("a full array", &b);
        most = total > most ? total : most;
    }
    pb_buf_free(&b);
    /* The zone, its first chunk and more: if no decode allocated that
     * often, the wrappers do not see msgpack-c's allocations and this test
     * checks nothing. */
    CHECK(most >= 3);
}

TEST(test_every_failed_allocation_in_a_statement_decode_is_a_clean_error)
{
    pb_sample_patch p;
    uint8_t zero[PB_HASH_BYTES] = {0};
    pb_sample_patch_make(&p, "jam", 1, zero, 0);
    pb_statement s;
    pb_errmsg why;
    arm(0);
    pb_err e = pb_statement_decode(p.stmt.data, p.stmt.len, &s, &why);
    pb_statement_free(&s);
    disarm();
    REQUIRE(e == PB_OK && faults.live == 0);
    long total = faults.count;
    CHECK(total >= 2);
    for (long k = 1; k <= total; k++) {
        why.text[0] = '\0';
        arm(k);
        e = pb_statement_decode(p.stmt.data, p.stmt.len, &s, &why);
        disarm();
        if (e != PB_ERR_NOMEM || !why.text[0] || !is_zero(&s, sizeof s) ||
            faults.live) {
            fprintf(stderr, "  allocation %ld of %ld: %s, %ld blocks left\n", k,
                    total, pb_strerror(e), faults.live);
            CHECK(e == PB_ERR_NOMEM && faults.live == 0);
            if (e == PB_OK)
                pb_statement_free(&s);
            break;
        }
    }
    pb_sample_patch_free(&p);
}

TEST(test_a_failed_allocation_while_encoding_is_a_clean_error)
{
    size_t n;
    const pb_sample *s = pb_samples(&n);
    for (size_t i = 0; i < n; i++) {
        pb_buf b;
        pb_buf_init(&b);
        arm(0);
        pb_err e = pb_frame_encode(&s[i].frame, &b, NULL);
        disarm();
        REQUIRE(e == PB_OK);
        long total = faults.count;
        pb_buf_free(&b);
        for (long k = 1; k <= total; k++) {
            pb_buf_init(&b);
            pb_errmsg why = {{0}};
            arm(k);
            e = pb_frame_encode(&s[i].frame, &b, &why);
            disarm();
            CHECK(e == PB_ERR_NOMEM && b.len == 0 && why.text[0]);
            pb_buf_free(&b);
        }
    }
}

static const pb_test tests[] = {
    T(test_every_failed_allocation_in_a_frame_decode_is_a_clean_error),
    T(test_every_failed_allocation_in_a_statement_decode_is_a_clean_error),
    T(test_a_failed_allocation_while_encoding_is_a_clean_error),
};
static int setup(void)
{
    return pb_init() == PB_OK ? 0 : 1;
}
PB_TEST_MAIN(tests, setup)
