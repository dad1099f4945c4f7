/* test_relay_store.c — the relay's keys, tokens and SQLite history, on real
 * files in a temporary directory: keys are created 0600 and refused when
 * others can read them; every kind of bad token is told apart; the history
 * keeps the chain (no gap, no replay), the vars, the settings, survives a
 * reopen, and verify catches a tampered row. */
#include "../check.h"
#include "relay.h"

#include <fcntl.h>
#include <sodium.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[256];

static int setup(void)
{
    if (pb_init())
        return 1;
    snprintf(dir, sizeof dir, "/tmp/pb-store-XXXXXX");
    return mkdtemp(dir) ? 0 : 1;
}

static void path_in(char *out, size_t cap, const char *sub, const char *name)
{
    snprintf(out, cap, "%s/%s/%s", dir, sub, name);
}

static void subdir(char *out, size_t cap, const char *sub)
{
    snprintf(out, cap, "%s/%s", dir, sub);
}

/* ---- keys ------------------------------------------------------------------
 */

TEST(keys_created_private_and_stable)
{
    char d[300], p[400];
    subdir(d, sizeof d, "k1");
    relay_keys a, b;
    pb_errmsg why = {{0}};
    bool created = false;
    REQUIRE(relay_keys_open(d, &a, &created, &why) == PB_OK);
    CHECK(created);
    struct stat sb;
    path_in(p, sizeof p, "k1", "relay.key");
    REQUIRE(stat(p, &sb) == 0);
    CHECK_EQ_INT(sb.st_mode & 0777, 0600);
    path_in(p, sizeof p, "k1", "token.key");
    REQUIRE(stat(p, &sb) == 0);
    CHECK_EQ_INT(sb.st_mode & 0777, 0600);
    REQUIRE(stat(d, &sb) == 0);
    CHECK_EQ_INT(sb.st_mode & 0077, 0);
    REQUIRE(relay_keys_open(d, &b, &created, &why) == PB_OK);
    CHECK(!created);
    CHECK(memcmp(a.pk, b.pk, sizeof a.pk) == 0);
    CHECK(memcmp(a.token_key, b.token_key, sizeof a.token_key) == 0);
    CHECK(strlen(a.pk_hex) == 64);
    /* the key signs what the public key verifies */
    uint8_t sig[PB_SIG_BYTES];
    pb_sign((const uint8_t *)"x", 1, b.sk, sig);
    CHECK(pb_verify((const uint8_t *)"x", 1, sig, a.pk) == PB_OK);
    relay_keys_close(&a);
    relay_keys_close(&b);
}

TEST(keys_readable_by_others_refused)
{
    char d[300], p[400];
    subdir(d, sizeof d, "k2");
    relay_keys k;
    pb_errmsg why = {{0}};
    REQUIRE(relay_keys_open(d, &k, NULL, &why) == PB_OK);
    relay_keys_close(&k);
    path_in(p, sizeof p, "k2", "relay.key");
    REQUIRE(chmod(p, 0644) == 0);
    CHECK(relay_keys_open(d, &k, NULL, &why) == PB_ERR_IO);
    CHECK(strstr(why.text, "relay.key") && strstr(why.text, "readable"));
    REQUIRE(chmod(p, 0600) == 0);
    path_in(p, sizeof p, "k2", "token.key");
    REQUIRE(chmod(p, 0640) == 0);
    CHECK(relay_keys_open(d, &k, NULL, &why) == PB_ERR_IO);
    CHECK(strstr(why.text, "token.key") != NULL);
    REQUIRE(chmod(p, 0600) == 0);
    CHECK(relay_keys_open(d, &k, NULL, &why) == PB_OK);
    relay_keys_close(&k);
}

TEST(keys_damaged_or_half_missing_refused)
{
    char d[300], p[400];
    subdir(d, sizeof d, "k3");
    relay_keys k;
    pb_errmsg why = {{0}};
    REQUIRE(relay_keys_open(d, &k, NULL, &why) == PB_OK);
    relay_keys_close(&k);
    path_in(p, sizeof p, "k3", "relay.key");
    REQUIRE(truncate(p, 10) == 0);
    CHECK(relay_keys_open(d, &k, NULL, &why) == PB_ERR_IO);
    CHECK(strstr(why.text, "10 bytes") != NULL);
    REQUIRE(unlink(p) == 0);
    /* token.key is still there: making a new relay.key would silently
     * change the relay's identity, so it is refused */
    CHECK(relay_keys_open(d, &k, NULL, &why) == PB_ERR_IO);
    CHECK(strstr(why.text, "relay.key") != NULL);
}

/* ---- tokens
 * ------------------------------------------------------------------ */

static relay_keys tk;

static void token_keys(void)
{
    static bool done;
    char d[300];
    pb_errmsg why;
    subdir(d, sizeof d, "tok");
    if (!done && relay_keys_open(d, &tk, NULL, &why) == PB_OK)
        done = true;
}

static pb_err make(const char *room, pb_role role, const char *name,
                   uint64_t exp, char *out)
{
    relay_token t = {{0}, role, {0}, exp};
    snprintf(t.room, sizeof t.room, "%s", room);
    snprintf(t.name, sizeof t.name, "%s", name);
    pb_errmsg why;
    return relay_token_make(&tk, &t, out, PB_MAX_TOKEN_BYTES + 1, &why);
}

static pb_err verify(const char *tok, uint64_t now, relay_token *t)
{
    pb_errmsg why;
    return relay_token_verify(&tk, tok, strlen(tok), now, t, &why);
}

TEST(token_round_trip)
{
    token_keys();
    char tok[PB_MAX_TOKEN_BYTES + 1];
    REQUIRE(make("jam", PB_ROLE_EDITOR, "ann", 2000, tok) == PB_OK);
    CHECK(strncmp(tok, "pb1.", 4) == 0);
    relay_token t;
    REQUIRE(verify(tok, 1999, &t) == PB_OK);
    CHECK(!strcmp(t.room, "jam"));
    CHECK(!strcmp(t.name, "ann"));
    CHECK_EQ_INT(t.role, PB_ROLE_EDITOR);
    CHECK_EQ_INT(t.expires_s, 2000);
    /* the longest names fit in the token limit */
    char big[PB_MAX_NAME_BYTES + 1];
    memset(big, 'x', PB_MAX_NAME_BYTES);
    big[PB_MAX_NAME_BYTES] = '\0';
    CHECK(make(big, PB_ROLE_VIEWER, big, UINT64_MAX, tok) == PB_OK);
    CHECK(verify(tok, 0, &t) == PB_OK);
    CHECK(make("", PB_ROLE_EDITOR, "ann", 2000, tok) == PB_ERR_FIELD_RANGE);
    CHECK(make("a\nb", PB_ROLE_EDITOR, "ann", 2000, tok) == PB_ERR_FIELD_RANGE);
}

TEST(token_rejections_told_apart)
{
    token_keys();
    char tok[PB_MAX_TOKEN_BYTES + 1];
    relay_token t;
    REQUIRE(make("jam", PB_ROLE_EDITOR, "ann", 2000, tok) == PB_OK);
    CHECK(verify(tok, 2000, &t) == PB_ERR_AUTH_EXPIRED);
    CHECK(verify("", 0, &t) == PB_ERR_AUTH_MALFORMED);
    CHECK(verify("hello", 0, &t) == PB_ERR_AUTH_MALFORMED);
    CHECK(verify("pb1.abc", 0, &t) == PB_ERR_AUTH_MALFORMED);
    CHECK(verify("pb1.abc.###", 0, &t) == PB_ERR_AUTH_MALFORMED);
    /* change one payload character: the MAC no longer verifies */
    char bad[sizeof tok];
    strcpy(bad, tok);
    bad[6] = bad[6] == 'A' ? 'B' : 'A';
    CHECK(verify(bad, 0, &t) == PB_ERR_AUTH_BAD_MAC);
    /* change the MAC */
    strcpy(bad, tok);
    size_t n = strlen(bad);
    bad[n - 2] = bad[n - 2] == 'A' ? 'B' : 'A';
    CHECK(verify(bad, 0, &t) == PB_ERR_AUTH_BAD_MAC);
    /* cut short */
    strcpy(bad, tok);
    bad[n - 1] = '\0';
    pb_err e = verify(bad, 0, &t);
    CHECK(e == PB_ERR_AUTH_MALFORMED || e == PB_ERR_AUTH_BAD_MAC);
    /* role escalation: splice an owner payload onto an editor's MAC */
    char owner[sizeof tok];
    REQUIRE(make("jam", PB_ROLE_OWNER, "ann", 2000, owner) == PB_OK);
    const char *mac = strrchr(tok, '.');
    size_t head = (size_t)(strrchr(owner, '.') - owner);
    snprintf(bad, sizeof bad, "%.*s%s", (int)head, owner, mac);
    CHECK(verify(bad, 0, &t) == PB_ERR_AUTH_BAD_MAC);
    /* another relay's token */
    char d[300];
    subdir(d, sizeof d, "tok-other");
    relay_keys other;
    pb_errmsg why;
    REQUIRE(relay_keys_open(d, &other, NULL, &why) == PB_OK);
    CHECK(relay_token_verify(&other, tok, strlen(tok), 0, &t, &why) ==
          PB_ERR_AUTH_BAD_MAC);
    relay_keys_close(&other);
    /* over the size limit */
    char huge[PB_MAX_TOKEN_BYTES + 10];
    memset(huge, 'a', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    CHECK(verify(huge, 0, &t) == PB_ERR_AUTH_MALFORMED);
}

/* A token with a good MAC but a role the relay does not know (as an older
 * relay would see a newer role) is refused as such, not as a bad MAC. */
TEST(token_unknown_role)
{
    token_keys();
    uint8_t payload[64];
    size_t n = 0;
    payload[n++] = 0x94; /* array of 4 */
    payload[n++] = 0xa3;
    memcpy(payload + n, "jam", 3);
    n += 3;
    payload[n++] = 0xa4;
    memcpy(payload + n, "boss", 4);
    n += 4;
    payload[n++] = 0xa3;
    memcpy(payload + n, "ann", 3);
    n += 3;
    payload[n++] = 0xcd; /* uint16 5000 */
    payload[n++] = 0x13;
    payload[n++] = 0x88;
    char tok[PB_MAX_TOKEN_BYTES + 1] = "pb1.";
    sodium_bin2base64(tok + 4, sizeof tok - 4, payload, n,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    uint8_t mac[crypto_auth_BYTES];
    crypto_auth(mac, (const uint8_t *)tok, strlen(tok), tk.token_key);
    size_t len = strlen(tok);
    tok[len++] = '.';
    sodium_bin2base64(tok + len, sizeof tok - len, mac, sizeof mac,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    relay_token t;
    CHECK(verify(tok, 0, &t) == PB_ERR_AUTH_UNKNOWN_ROLE);
}

/* ---- history -------------------------------------------------------------------- */

static relay_keys hk;

/* Appends a signed patch defining the given var to room, at head + 1. */
static pb_err append(relay_history *h, const char *room, const char *var,
                     const char *source, pb_errmsg *why)
{
    uint64_t head;
    uint8_t head_hash[PB_HASH_BYTES];
    pb_err e = relay_history_head(h, room, &head, head_hash, why);
    if (e)
        return e;
    uint8_t module[16] = {0, 'a', 's', 'm', 1, 0, 0, 0};
    module[8] = (uint8_t)head;
    pb_symbol sym = {pb_cstr(var), pb_cstr("d(d)")};
    pb_statement s;
    memset(&s, 0, sizeof s);
    s.room = pb_cstr(room);
    s.seq = head + 1;
    memcpy(s.prev_hash, head_hash, PB_HASH_BYTES);
    pb_hash(module, sizeof module, s.module_hash);
    s.symbols = &sym;
    s.n_symbols = 1;
    s.author = pb_cstr("ann");
    s.lang = PB_LANG_C;
    pb_hash(source, strlen(source), s.source_hash);
    s.created_us = 1000 + head;
    s.apply_us = 2000 + head;
    memcpy(s.key, hk.pk, PB_PUBLICKEY_BYTES);
    pb_buf b;
    pb_buf_init(&b);
    if ((e = pb_statement_encode(&s, &b, why)))
        return e;
    uint8_t sig[PB_SIG_BYTES];
    pb_sign(b.data, b.len, hk.sk, sig);
    relay_patch_row row = {
        s.seq,         {0},    b.data,         b.len, sig,         module,
        sizeof module, source, strlen(source), "ann", s.created_us};
    pb_hash(b.data, b.len, row.hash);
    const char *deps[] = {"helper", "other"};
    relay_var_row v = {var, "d(d)", "double X(double);", deps, 2, 0};
    e = relay_history_append(h, room, &row, &v, 1, why);
    pb_buf_free(&b);
    return e;
}

static relay_history *open_hist(const char *name)
{
    static bool keys;
    char d[300], p[400];
    pb_errmsg why;
    subdir(d, sizeof d, "hist");
    if (!keys && relay_keys_open(d, &hk, NULL, &why) == PB_OK)
        keys = true;
    path_in(p, sizeof p, "hist", name);
    relay_history *h = relay_history_open_sqlite(p, &why);
    if (!h)
        fprintf(stderr, "  %s\n", why.text);
    return h;
}

typedef struct seen {
    uint64_t seqs[64];
    bool with_module[64];
    uint32_t n;
} seen;

static int collect(void *ctx, const relay_patch_row *p)
{
    seen *s = ctx;
    if (s->n < 64) {
        s->seqs[s->n] = p->seq;
        s->with_module[s->n++] = p->module != NULL;
    }
    return 0;
}

static void count_var(void *ctx, const relay_var_row *v)
{
    uint32_t *n = ctx;
    if (v->n_deps == 2 && !strcmp(v->deps[1], "other") &&
        !strcmp(v->decl, "double X(double);"))
        (*n)++;
}

TEST(history_chain_vars_and_state)
{
    relay_history *h = open_hist("a.db");
    REQUIRE(h);
    pb_errmsg why = {{0}};
    uint64_t head;
    uint8_t hash[PB_HASH_BYTES], zero[PB_HASH_BYTES] = {0};
    REQUIRE(relay_history_head(h, "jam", &head, hash, &why) == PB_OK);
    CHECK_EQ_INT(head, 0);
    CHECK(memcmp(hash, zero, sizeof zero) == 0);
    /* f, g, f, h: patch 1 is superseded by 3 */
    REQUIRE(append(h, "jam", "f", "f1", &why) == PB_OK);
    REQUIRE(append(h, "jam", "g", "g1", &why) == PB_OK);
    REQUIRE(append(h, "jam", "f", "f2", &why) == PB_OK);
    REQUIRE(append(h, "jam", "h", "h1", &why) == PB_OK);
    REQUIRE(append(h, "other", "f", "x", &why) == PB_OK);
    REQUIRE(relay_history_head(h, "jam", &head, hash, &why) == PB_OK);
    CHECK_EQ_INT(head, 4);
    uint32_t nv = 0;
    REQUIRE(relay_history_vars(h, "jam", count_var, &nv, &why) == PB_OK);
    CHECK_EQ_INT(nv, 3);
    seen s = {{0}, {0}, 0};
    REQUIRE(relay_history_patches(h, "jam", 1, UINT64_MAX, true, collect, &s,
                                  &why) == PB_OK);
    REQUIRE(s.n == 4);
    CHECK(!s.with_module[0] && s.with_module[1] && s.with_module[2] &&
          s.with_module[3]);
    memset(&s, 0, sizeof s);
    REQUIRE(relay_history_patches(h, "jam", 2, 3, false, collect, &s, &why) ==
            PB_OK);
    CHECK(s.n == 2 && s.seqs[0] == 2 && s.seqs[1] == 3 && s.with_module[0]);
    uint64_t n = 0;
    CHECK(relay_history_verify(h, "jam", hk.pk, &n, &why) == PB_OK);
    CHECK_EQ_INT(n, 4);
    CHECK(relay_history_verify(h, "other", hk.pk, &n, &why) == PB_OK);
    CHECK_EQ_INT(n, 1);
    relay_history_close(h);
}

TEST(history_refuses_gap_and_replay)
{
    relay_history *h = open_hist("b.db");
    REQUIRE(h);
    pb_errmsg why = {{0}};
    REQUIRE(append(h, "jam", "f", "f1", &why) == PB_OK);
    uint8_t sig[PB_SIG_BYTES] = {0};
    relay_patch_row row = {
        1, {0}, (const uint8_t *)"s", 1, sig, NULL, 0, "", 0, "ann", 1};
    CHECK(relay_history_append(h, "jam", &row, NULL, 0, &why) ==
          PB_ERR_CHAIN_REPLAY);
    row.seq = 3;
    CHECK(relay_history_append(h, "jam", &row, NULL, 0, &why) ==
          PB_ERR_CHAIN_GAP);
    CHECK(strstr(why.text, "jam") != NULL);
    uint64_t head;
    uint8_t hash[PB_HASH_BYTES];
    REQUIRE(relay_history_head(h, "jam", &head, hash, &why) == PB_OK);
    CHECK_EQ_INT(head, 1); /* nothing half-written */
    relay_history_close(h);
}

TEST(history_survives_reopen_and_settings)
{
    relay_history *h = open_hist("c.db");
    REQUIRE(h);
    pb_errmsg why = {{0}};
    REQUIRE(append(h, "jam", "f", "f1", &why) == PB_OK);
    REQUIRE(append(h, "jam", "g", "g1", &why) == PB_OK);
    pb_room r = {120.5, 4, 80000};
    REQUIRE(relay_history_set_settings(h, "jam", &r, &why) == PB_OK);
    r.quantum = 8;
    REQUIRE(relay_history_set_settings(h, "jam", &r, &why) == PB_OK);
    uint64_t head1;
    uint8_t hash1[PB_HASH_BYTES];
    REQUIRE(relay_history_head(h, "jam", &head1, hash1, &why) == PB_OK);
    relay_history_close(h);

    h = open_hist("c.db");
    REQUIRE(h);
    uint64_t head2;
    uint8_t hash2[PB_HASH_BYTES];
    REQUIRE(relay_history_head(h, "jam", &head2, hash2, &why) == PB_OK);
    CHECK_EQ_INT(head2, 2);
    CHECK(head1 == head2 && !memcmp(hash1, hash2, sizeof hash1));
    pb_room got;
    REQUIRE(relay_history_get_settings(h, "jam", &got, &why) == PB_OK);
    CHECK(got.tempo_bpm == 120.5 && got.quantum == 8 && got.lead_us == 80000);
    REQUIRE(relay_history_get_settings(h, "none", &got, &why) == PB_OK);
    CHECK(got.tempo_bpm == 0 && got.quantum == 0);
    REQUIRE(append(h, "jam", "f", "f2", &why) == PB_OK);
    relay_history_close(h);

    char p[400];
    path_in(p, sizeof p, "hist", "c.db");
    h = relay_history_open_readonly(p, &why);
    REQUIRE(h);
    uint64_t n;
    CHECK(relay_history_verify(h, "jam", hk.pk, &n, &why) == PB_OK);
    CHECK_EQ_INT(n, 3);
    relay_history_close(h);
}

static void exec_sql(const char *db, const char *sql)
{
    sqlite3 *d;
    if (sqlite3_open(db, &d) == SQLITE_OK)
        sqlite3_exec(d, sql, NULL, NULL, NULL);
    sqlite3_close(d);
}

TEST(history_verify_finds_tampering)
{
    relay_history *h = open_hist("d.db");
    REQUIRE(h);
    pb_errmsg why = {{0}};
    for (int i = 0; i < 5; i++)
        REQUIRE(append(h, "jam", i % 2 ? "f" : "g", i % 2 ? "a" : "b", &why) ==
                PB_OK);
    relay_history_close(h);
    char p[400];
    path_in(p, sizeof p, "hist", "d.db");

    /* a module changed after the fact */
    exec_sql(p, "UPDATE patches SET module = x'0061736d01000000ff' WHERE "
                "seq = 3");
    h = relay_history_open_readonly(p, &why);
    REQUIRE(h);
    uint64_t n = 0;
    CHECK(relay_history_verify(h, "jam", hk.pk, &n, &why) ==
          PB_ERR_HASH_MISMATCH);
    CHECK_EQ_INT(n, 2);
    CHECK(strstr(why.text, "seq 3") != NULL);
    relay_history_close(h);

    /* a patch removed from the middle */
    exec_sql(p, "DELETE FROM patches WHERE seq = 3");
    h = relay_history_open_readonly(p, &why);
    REQUIRE(h);
    CHECK(relay_history_verify(h, "jam", hk.pk, &n, &why) == PB_ERR_CHAIN_GAP);
    relay_history_close(h);

    /* another key */
    uint8_t pk[PB_PUBLICKEY_BYTES], sk[PB_SECRETKEY_BYTES];
    crypto_sign_keypair(pk, sk);
    h = relay_history_open_readonly(p, &why);
    REQUIRE(h);
    CHECK(relay_history_verify(h, "jam", pk, &n, &why) == PB_ERR_BAD_SIGNATURE);
    relay_history_close(h);
}

TEST(history_not_a_database)
{
    char p[400];
    path_in(p, sizeof p, "hist", "junk.db");
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, "this is not sqlite, just text............", 41) == 41);
    close(fd);
    pb_errmsg why = {{0}};
    relay_history *h = relay_history_open_sqlite(p, &why);
    CHECK(h == NULL);
    CHECK(strstr(why.text, "junk.db") != NULL);
    relay_history_close(h);
    path_in(p, sizeof p, "hist", "missing.db");
    CHECK(relay_history_open_readonly(p, &why) == NULL);
}

/* ---- the data directory (issue 22, item 9) ---------------------------------
 */

/* A data directory that group or others may write to is refused: they
 * could swap its keys (failed before: it was used). One others may only
 * read is fine (the secrets in it are 0600). */
TEST(a_data_directory_others_may_write_is_refused)
{
    char d[300];
    subdir(d, sizeof d, "k4");
    REQUIRE(mkdir(d, 0700) == 0);
    REQUIRE(chmod(d, 0777) == 0);
    relay_keys k;
    pb_errmsg why = {{0}};
    CHECK(relay_keys_open(d, &k, NULL, &why) == PB_ERR_IO);
    CHECK(strstr(why.text, "chmod 700") != NULL);
    REQUIRE(chmod(d, 0755) == 0);
    CHECK(relay_keys_open(d, &k, NULL, &why) == PB_OK);
    relay_keys_close(&k);
}

/* Eight processes open a new data directory at once (a relay and
 * `patchbay token` started together): they all get the one key that is
 * on disk. Before, each could make its own, and the relay then signed
 * with a key that relay.pub did not name. */
TEST(processes_starting_at_once_make_one_key)
{
    uint32_t differ = 0;
    for (int round = 0; round < 10; round++) {
        char d[300], name[32], p[400];
        snprintf(name, sizeof name, "race%d", round);
        subdir(d, sizeof d, name);
        int go[2], out[2];
        REQUIRE(pipe(go) == 0 && pipe(out) == 0);
        enum { N = 8 };
        pid_t kids[N];
        for (int i = 0; i < N; i++) {
            if ((kids[i] = fork()) == 0) {
                char c;
                close(go[1]);
                if (read(go[0], &c, 1) < 0) /* until the parent lets go */
                    _exit(2);
                relay_keys k;
                pb_errmsg why;
                char line[70] = "error\n";
                if (relay_keys_open(d, &k, NULL, &why) == PB_OK)
                    snprintf(line, sizeof line, "%s\n", k.pk_hex);
                _exit(write(out[1], line, strlen(line)) > 0 ? 0 : 1);
            }
        }
        close(go[0]);
        close(go[1]); /* all start */
        close(out[1]);
        char got[N * 70 + 1];
        size_t n = 0;
        ssize_t r;
        while (n < sizeof got - 1 &&
               (r = read(out[0], got + n, sizeof got - 1 - n)) > 0)
            n += (size_t)r;
        got[n] = '\0';
        close(out[0]);
        for (int i = 0; i < N; i++)
            waitpid(kids[i], NULL, 0);
        char pub[70] = "";
        path_in(p, sizeof p, name, "relay.pub");
        FILE *f = fopen(p, "r");
        if (f) {
            if (!fgets(pub, sizeof pub, f))
                pub[0] = '\0';
            fclose(f);
        }
        /* every line is the key relay.pub names */
        uint32_t lines = 0;
        for (char *save = NULL, *l = strtok_r(got, "\n", &save); l;
             l = strtok_r(NULL, "\n", &save), lines++)
            differ += strncmp(l, pub, 64) != 0;
        CHECK_EQ_INT(lines, N);
    }
    printf("# 10 rounds of 8 processes: %u keys other than relay.pub's\n",
           differ);
    CHECK_EQ_INT(differ, 0);
}

/* The history holds every source: only its owner may read it, and its
 * -wal too (failed before: 0644 under umask 022). An older, readable one
 * is made private when opened. */
TEST(the_history_is_private)
{
    mode_t old = umask(022);
    char d[300], p[400], wal[420];
    subdir(d, sizeof d, "priv");
    REQUIRE(mkdir(d, 0700) == 0);
    path_in(p, sizeof p, "priv", "history.db");
    pb_errmsg why = {{0}};
    relay_history *h = relay_history_open_sqlite(p, &why);
    REQUIRE(h != NULL);
    pb_room settings = {0};
    settings.tempo_bpm = 120;
    settings.quantum = 4;
    CHECK(relay_history_set_settings(h, "jam", &settings, &why) == PB_OK);
    struct stat sb;
    REQUIRE(stat(p, &sb) == 0);
    CHECK_EQ_INT(sb.st_mode & 0777, 0600);
    snprintf(wal, sizeof wal, "%s-wal", p);
    if (stat(wal, &sb) == 0)
        CHECK_EQ_INT(sb.st_mode & 0777, 0600);
    relay_history_close(h);
    REQUIRE(chmod(p, 0644) == 0);
    h = relay_history_open_sqlite(p, &why);
    REQUIRE(h != NULL);
    REQUIRE(stat(p, &sb) == 0);
    CHECK_EQ_INT(sb.st_mode & 0777, 0600);
    relay_history_close(h);
    umask(old);
}

static const pb_test tests[] = {
    T(keys_created_private_and_stable),
    T(keys_readable_by_others_refused),
    T(keys_damaged_or_half_missing_refused),
    T(token_round_trip),
    T(token_rejections_told_apart),
    T(token_unknown_role),
    T(history_chain_vars_and_state),
    T(history_refuses_gap_and_replay),
    T(history_survives_reopen_and_settings),
    T(history_verify_finds_tampering),
    T(history_not_a_database),
    T(a_data_directory_others_may_write_is_refused),
    T(processes_starting_at_once_make_one_key),
    T(the_history_is_private),
};

PB_TEST_RUNNER

int main(int argc, char **argv)
{
    if (setup()) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    int rc = pb_test_run(tests, sizeof tests / sizeof tests[0], argc, argv);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (rc == 0 && system(cmd) != 0)
        fprintf(stderr, "# could not remove %s\n", dir);
    return rc;
}
