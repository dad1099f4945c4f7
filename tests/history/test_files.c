/* test_files.c — export, verify and import of bundle files with the real
 * patchbay binary on a signed history (pb_gen_history): the round trip
 * (exported, verified, imported into another relay's data directory,
 * verified there, every patch naming its origin), and every kind of
 * damage a file can have, each refused with its own message by verify and
 * by import (which then writes nothing): a byte flipped in a statement, in
 * a signature, in a module, in a source; two patches swapped; one removed;
 * the whole history signed again with another key; a file cut short, an
 * empty one, one with bytes after its end, one that is not a bundle.
 *
 *   test_history_files PATCHBAY PB_GEN_HISTORY [TEST...] */
#define _GNU_SOURCE
#include "../check.h"
#include "history.h"
#include "relay.h"

#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *patchbay, *gen_history;
static char tmp[128];
static char key_hex[2 * PB_PUBLICKEY_BYTES + 1];

#define N_PATCHES 12

/* Runs a shell command line; its output (stdout and stderr) into out.
 * Returns its exit status. */
static int run(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int run(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
    FILE *p = popen(cmd, "r");
    size_t n = 0;
    if (p)
        n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = p ? pclose(p) : -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- a bundle as frames, to damage ----------------------------------------
 */

typedef struct frames {
    pb_buf file;
    pb_frame f[N_PATCHES + 2];
    size_t n;
    pb_buf enc[N_PATCHES + 2]; /* re-encoded statements kept alive */
} frames;

static bool frames_read(frames *fs, const char *path)
{
    memset(fs, 0, sizeof *fs);
    FILE *in = fopen(path, "rb");
    if (!in)
        return false;
    uint8_t chunk[65536];
    size_t got;
    pb_buf_init(&fs->file);
    while ((got = fread(chunk, 1, sizeof chunk, in)) > 0)
        if (pb_buf_append(&fs->file, chunk, got))
            return false;
    fclose(in);
    for (size_t at = 0; at < fs->file.len && fs->n < N_PATCHES + 2;) {
        size_t len = 0;
        if (pb_frame_length(fs->file.data + at, fs->file.len - at, &len,
                            NULL) ||
            pb_frame_decode(fs->file.data + at, len, &fs->f[fs->n], NULL))
            return false;
        fs->n++;
        at += len;
    }
    return fs->n == N_PATCHES + 1;
}

static bool frames_write(const frames *fs, const char *path)
{
    FILE *out = fopen(path, "wb");
    bool ok = out != NULL;
    for (size_t i = 0; ok && i < fs->n; i++) {
        pb_buf b;
        pb_buf_init(&b);
        ok = !pb_frame_encode(&fs->f[i], &b, NULL) &&
             fwrite(b.data, 1, b.len, out) == b.len;
        pb_buf_free(&b);
    }
    if (out && fclose(out))
        ok = false;
    return ok;
}

static void frames_free(frames *fs)
{
    for (size_t i = 0; i < fs->n; i++)
        pb_frame_free(&fs->f[i]);
    for (size_t i = 0; i < N_PATCHES + 2; i++)
        pb_buf_free(&fs->enc[i]);
    pb_buf_free(&fs->file);
}

/* A private copy of the bytes of field p (to flip one of them). */
static void flip(pb_bytes *p, size_t at, uint8_t **keep)
{
    uint8_t *copy = malloc(p->len);
    memcpy(copy, p->ptr, p->len);
    copy[at % p->len] ^= 0x01;
    *keep = copy;
    p->ptr = copy;
}

static char bundle[256], other[256];

static void setup_history(void)
{
    char out[4096];
    snprintf(tmp, sizeof tmp, "/tmp/pb-history-XXXXXX");
    if (!mkdtemp(tmp))
        abort();
    if (run(out, sizeof out, "%s %s/a jam %d --gap-ms 250", gen_history, tmp,
            N_PATCHES)) {
        fprintf(stderr, "%s\n", out);
        abort();
    }
    if (run(out, sizeof out, "cat %s/a/relay.pub", tmp) ||
        sscanf(out, "%64s", key_hex) != 1)
        abort();
    snprintf(bundle, sizeof bundle, "%s/jam.pbb", tmp);
    if (run(out, sizeof out, "%s export --room jam --data %s/a -o %s", patchbay,
            tmp, bundle)) {
        fprintf(stderr, "%s\n", out);
        abort();
    }
}

/* verify (with the key) and import both refuse file with want in their
 * messages; import writes nothing. */
static void refused(const char *file, const char *want)
{
    char out[8192];
    int rc =
        run(out, sizeof out, "%s verify %s --key %s", patchbay, file, key_hex);
    CHECK(rc == 1);
    if (!strstr(out, want))
        fprintf(stderr, "  verify said: %s  wanted: %s\n", out, want);
    CHECK(strstr(out, want) != NULL);
    rc = run(out, sizeof out, "%s import %s --room nope --data %s/b --key %s",
             patchbay, file, tmp, key_hex);
    CHECK(rc == 1);
    CHECK(strstr(out, want) != NULL);
    CHECK(strstr(out, "nothing") != NULL || strstr(out, "not a") != NULL ||
          strstr(out, "empty") != NULL);
    rc = run(out, sizeof out, "%s verify --data %s/b --room nope", patchbay,
             tmp);
    CHECK(strstr(out, "no patches recorded") != NULL || rc == 3);
}

TEST(test_a_history_round_trips_through_a_bundle)
{
    char out[8192];
    CHECK(run(out, sizeof out, "%s verify --data %s/a --room jam", patchbay,
              tmp) == 0);
    CHECK(strstr(out, "12 patches verify") != NULL);
    CHECK(run(out, sizeof out, "%s verify %s --key %s", patchbay, bundle,
              key_hex) == 0);
    CHECK(strstr(out, "12 patches verify") != NULL);
    /* without --key it says whose key it trusted */
    CHECK(run(out, sizeof out, "%s verify %s", patchbay, bundle) == 0);
    CHECK(strstr(out, "the key the file names") != NULL);
    /* into another relay's data directory, as a new room */
    REQUIRE(run(out, sizeof out,
                "%s import %s --room jam2 --data %s/c --key %s", patchbay,
                bundle, tmp, key_hex) == 0);
    CHECK(strstr(out, "imported 12 patches of room jam") != NULL);
    CHECK(run(out, sizeof out, "%s verify --data %s/c --room jam2", patchbay,
              tmp) == 0);
    /* each statement there names its origin, with the module as it was */
    char again[256];
    snprintf(again, sizeof again, "%s/jam2.pbb", tmp);
    REQUIRE(run(out, sizeof out, "%s export --room jam2 --data %s/c -o %s",
                patchbay, tmp, again) == 0);
    frames a, b;
    REQUIRE(frames_read(&a, bundle));
    REQUIRE(frames_read(&b, again));
    for (size_t i = 1; i <= N_PATCHES; i++) {
        pb_statement sa, sb;
        REQUIRE(!pb_statement_decode(a.f[i].patch.stmt.ptr,
                                     a.f[i].patch.stmt.len, &sa, NULL));
        REQUIRE(!pb_statement_decode(b.f[i].patch.stmt.ptr,
                                     b.f[i].patch.stmt.len, &sb, NULL));
        CHECK(pb_str_eq(sb.room, "jam2") && sb.seq == i);
        CHECK(pb_str_eq(sb.origin_room, "jam") && sb.origin_seq == i);
        CHECK(!memcmp(sa.module_hash, sb.module_hash, PB_HASH_BYTES));
        CHECK(sa.created_us == sb.created_us && sa.apply_us == sb.apply_us);
        CHECK(b.f[i].patch.module.len == a.f[i].patch.module.len &&
              !memcmp(b.f[i].patch.module.ptr, a.f[i].patch.module.ptr,
                      a.f[i].patch.module.len));
        pb_statement_free(&sa);
        pb_statement_free(&sb);
    }
    frames_free(&a);
    frames_free(&b);
    /* a room with patches is not imported into */
    CHECK(run(out, sizeof out, "%s import %s --room jam2 --data %s/c", patchbay,
              bundle, tmp) == 1);
    CHECK(strstr(out, "already has 12 patches") != NULL);
}

TEST(test_import_refuses_while_a_relay_serves_the_directory)
{
    char out[4096], dir[200];
    snprintf(dir, sizeof dir, "%s/d", tmp);
    mkdir(dir, 0700);
    pb_errmsg why;
    int lock = relay_data_lock(dir, &why); /* as `patchbay serve` holds it */
    REQUIRE(lock >= 0);
    CHECK(run(out, sizeof out, "%s import %s --room x --data %s", patchbay,
              bundle, dir) == 1);
    CHECK(strstr(out, "stop the relay first") != NULL);
    close(lock);
}

/* One damaged copy of the bundle per case. */
static void damaged(const char *name, void (*damage)(frames *, uint8_t **),
                    const char *want)
{
    frames fs;
    REQUIRE(frames_read(&fs, bundle));
    uint8_t *keep = NULL;
    damage(&fs, &keep);
    snprintf(other, sizeof other, "%s/%s.pbb", tmp, name);
    REQUIRE(frames_write(&fs, other));
    refused(other, want);
    free(keep);
    frames_free(&fs);
}

static void flip_statement(frames *fs, uint8_t **k)
{
    flip(&fs->f[5].patch.stmt, 9, k); /* in seq 5's prev_hash */
}
static void flip_signature(frames *fs, uint8_t **k)
{
    flip(&fs->f[5].patch.sig, 30, k);
}
static void flip_module(frames *fs, uint8_t **k)
{
    flip(&fs->f[5].patch.module, 9, k);
}
static void flip_source(frames *fs, uint8_t **k)
{
    pb_bytes s = {(const uint8_t *)fs->f[5].patch.source.ptr,
                  fs->f[5].patch.source.len};
    flip(&s, 3, k);
    fs->f[5].patch.source.ptr = (const char *)s.ptr;
}
static void swap_pair(frames *fs, uint8_t **k)
{
    (void)k;
    pb_frame t = fs->f[5];
    fs->f[5] = fs->f[6];
    fs->f[6] = t;
}
static void remove_one(frames *fs, uint8_t **k)
{
    (void)k;
    pb_frame_free(&fs->f[5]);
    memmove(&fs->f[5], &fs->f[6], (fs->n - 6) * sizeof fs->f[0]);
    fs->n--;
    fs->f[0].bundle.count--;
}

/* Every statement signed again, and chained again, by another key; the
 * file names that key: self-consistent, but not the relay's. */
static void resign(frames *fs, uint8_t **k)
{
    (void)k;
    uint8_t pk[PB_PUBLICKEY_BYTES], sk[PB_SECRETKEY_BYTES];
    static uint8_t sigs[N_PATCHES + 1][PB_SIG_BYTES];
    crypto_sign_keypair(pk, sk);
    uint8_t prev[PB_HASH_BYTES];
    char room[PB_MAX_NAME_BYTES + 1];
    if (pb_str_copy(room, sizeof room, fs->f[0].bundle.room))
        abort();
    pb_epoch_genesis(room, fs->f[0].bundle.epoch, pk, prev);
    for (size_t i = 1; i < fs->n; i++) {
        pb_statement st;
        if (pb_statement_decode(fs->f[i].patch.stmt.ptr,
                                fs->f[i].patch.stmt.len, &st, NULL))
            abort();
        memcpy(st.key, pk, sizeof pk);
        memcpy(st.prev_hash, prev, sizeof prev);
        pb_buf_init(&fs->enc[i]);
        if (pb_statement_encode(&st, &fs->enc[i], NULL))
            abort();
        pb_statement_free(&st);
        pb_sign(fs->enc[i].data, fs->enc[i].len, sk, sigs[i]);
        pb_hash(fs->enc[i].data, fs->enc[i].len, prev);
        fs->f[i].patch.stmt =
            (pb_bytes){fs->enc[i].data, (uint32_t)fs->enc[i].len};
        fs->f[i].patch.sig = (pb_bytes){sigs[i], PB_SIG_BYTES};
    }
    memcpy(fs->f[0].bundle.key, pk, sizeof pk);
    memcpy(fs->f[0].bundle.head_hash, prev, sizeof prev);
}

/* The room's epoch, which the bundle frame carries unsigned: seq 1 links
 * to the genesis of the epoch its relay gave the room, no other. */
static void other_epoch(frames *fs, uint8_t **k)
{
    (void)k;
    REQUIRE(fs->f[0].bundle.epoch != 0); /* generated as a relay records */
    fs->f[0].bundle.epoch++;
}

TEST(test_each_damage_is_refused_with_its_own_message)
{
    damaged("statement", flip_statement,
            "seq 5: its signature does not verify: the statement was "
            "changed after it was signed");
    damaged("signature", flip_signature,
            "seq 5: its signature is damaged (its statement is intact: seq "
            "6 links to it)");
    damaged("module", flip_module, "seq 5: its module (");
    damaged("source", flip_source, "seq 5: its source (");
    damaged("swapped", swap_pair,
            "seq 5 comes after seq 6: the two patches are out of order");
    damaged("removed", remove_one, "seq 5 is missing: seq 6 follows seq 4");
    damaged("resigned", resign, "seq 1 is signed by another key");
    damaged("epoch", other_epoch, "seq 1 does not begin epoch ");
}

TEST(test_a_file_resigned_whole_verifies_only_under_its_own_key)
{
    /* without --key, verify says which key it checked with: the reader
     * decides whether that is the relay they trust */
    frames fs;
    REQUIRE(frames_read(&fs, bundle));
    resign(&fs, NULL);
    snprintf(other, sizeof other, "%s/resigned-own.pbb", tmp);
    REQUIRE(frames_write(&fs, other));
    frames_free(&fs);
    char out[4096];
    CHECK(run(out, sizeof out, "%s verify %s", patchbay, other) == 0);
    CHECK(strstr(out, key_hex) == NULL);
    CHECK(strstr(out, "the key the file names") != NULL);
}

TEST(test_cut_empty_and_foreign_files_are_refused)
{
    char out[8192];
    FILE *in = fopen(bundle, "rb");
    REQUIRE(in);
    static uint8_t bytes[1 << 20];
    size_t len = fread(bytes, 1, sizeof bytes, in);
    fclose(in);
    snprintf(other, sizeof other, "%s/cut.pbb", tmp);
    FILE *out_f = fopen(other, "wb");
    REQUIRE(out_f && fwrite(bytes, 1, len - 40, out_f) == len - 40);
    fclose(out_f);
    refused(other, "the file ends inside patch 12");

    snprintf(other, sizeof other, "%s/empty.pbb", tmp);
    fclose(fopen(other, "wb"));
    refused(other, "is empty: not a patchbay bundle");

    snprintf(other, sizeof other, "%s/trailing.pbb", tmp);
    out_f = fopen(other, "wb");
    REQUIRE(out_f && fwrite(bytes, 1, len, out_f) == len);
    fputs("x", out_f);
    fclose(out_f);
    refused(other, "1 bytes after the last of the 12 patches");

    snprintf(other, sizeof other, "%s/text.pbb", tmp);
    out_f = fopen(other, "wb");
    fputs("hello, this is not a bundle\n", out_f);
    fclose(out_f);
    refused(other, "is not a patchbay bundle");

    /* a file that does not exist: exit status 3 (cannot read) */
    CHECK(run(out, sizeof out, "%s verify %s/nothing.pbb", patchbay, tmp) == 3);
    CHECK(strstr(out, "No such file") != NULL);
}

TEST(test_verify_of_a_data_directory_names_the_broken_link)
{
    /* a history whose stored row was changed behind the relay's back */
    char out[8192];
    CHECK(run(out, sizeof out,
              "cp -r %s/a %s/e && sqlite3 %s/e/history.db \"UPDATE patches "
              "SET source = CAST('changed' AS BLOB) WHERE seq = 7\"",
              tmp, tmp, tmp) == 0);
    CHECK(run(out, sizeof out, "%s verify --data %s/e --room jam", patchbay,
              tmp) == 1);
    CHECK(strstr(out, "room jam: BROKEN: seq 7: its source (7 bytes) does "
                      "not match") != NULL);
    CHECK(strstr(out, "the 6 patches before seq 7 verify") != NULL);
    /* export refuses it too, and writes nothing */
    CHECK(run(out, sizeof out, "%s export --room jam --data %s/e -o %s/e.pbb",
              patchbay, tmp, tmp) == 1);
    CHECK(strstr(out, "does not verify, nothing written") != NULL);
    char e_pbb[200];
    snprintf(e_pbb, sizeof e_pbb, "%s/e.pbb", tmp);
    CHECK(access(e_pbb, F_OK) != 0);
}

/* relay_history_import: one transaction, so a failure at the third patch
 * leaves the room as it was (empty). */
typedef struct failing {
    uint64_t seq;
    pb_chain head;
    uint8_t sig[PB_SIG_BYTES];
    pb_buf stmt;
} failing;

static int fail_at_three(void *ctx, relay_patch_row *row,
                         const relay_var_row **vars, uint32_t *n,
                         pb_errmsg *why)
{
    failing *f = ctx;
    if (++f->seq == 3)
        return pb_fail(why, PB_ERR_INTERNAL, "gave up at seq 3"), -1;
    static const uint8_t module[8] = {0, 'a', 's', 'm', 1, 0, 0, 0};
    pb_statement s = {0};
    s.room = pb_cstr("tx");
    s.seq = f->seq;
    memcpy(s.prev_hash, f->head.hash, PB_HASH_BYTES);
    pb_hash(module, sizeof module, s.module_hash);
    s.lang = PB_LANG_C;
    if (pb_statement_encode(&s, &f->stmt, why))
        return -1;
    memset(row, 0, sizeof *row);
    row->seq = f->seq;
    pb_hash(f->stmt.data, f->stmt.len, row->hash);
    memcpy(f->head.hash, row->hash, PB_HASH_BYTES);
    row->stmt = f->stmt.data;
    row->stmt_len = f->stmt.len;
    row->sig = f->sig;
    row->module = module;
    row->module_len = sizeof module;
    *vars = NULL;
    *n = 0;
    return 1;
}

TEST(test_an_import_is_one_transaction)
{
    char path[200];
    snprintf(path, sizeof path, "%s/tx.db", tmp);
    pb_errmsg why = {{0}};
    relay_history *h = relay_history_open_sqlite(path, &why);
    REQUIRE(h);
    failing f = {0};
    pb_buf_init(&f.stmt);
    CHECK(relay_history_import(h, "tx", fail_at_three, &f, &why) ==
          PB_ERR_INTERNAL);
    CHECK(strstr(why.text, "gave up at seq 3") != NULL);
    uint64_t head = 99;
    uint8_t hash[PB_HASH_BYTES];
    CHECK(relay_history_head(h, "tx", &head, hash, &why) == PB_OK);
    CHECK(head == 0); /* seqs 1 and 2 were rolled back with it */
    pb_buf_free(&f.stmt);
    relay_history_close(h);
}

PB_TEST_RUNNER

static const pb_test tests[] = {
    T(test_a_history_round_trips_through_a_bundle),
    T(test_import_refuses_while_a_relay_serves_the_directory),
    T(test_each_damage_is_refused_with_its_own_message),
    T(test_a_file_resigned_whole_verifies_only_under_its_own_key),
    T(test_cut_empty_and_foreign_files_are_refused),
    T(test_verify_of_a_data_directory_names_the_broken_link),
    T(test_an_import_is_one_transaction),
};

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: test_history_files PATCHBAY PB_GEN_HISTORY "
                        "[TEST...]\n");
        return 2;
    }
    patchbay = argv[1];
    gen_history = argv[2];
    setenv("PATCHBAY_NO_PROGRESS", "1", 1);
    if (pb_init())
        return 1;
    setup_history();
    int rc =
        pb_test_run(tests, sizeof tests / sizeof tests[0], argc - 2, argv + 2);
    if (!rc) {
        char out[256];
        run(out, sizeof out, "rm -rf %s", tmp);
    }
    return rc;
}
