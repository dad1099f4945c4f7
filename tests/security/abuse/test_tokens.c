/* test_tokens.c — issue 22, item 9: a token's life. Expiry was checked
 * only at hello (a live session outlived its token) and there was no
 * revocation. Now a session ends when its token expires, and `patchbay
 * token revoke` (by name in a room, or by token id) closes the sessions
 * it names within a second and refuses them from then on, also after the
 * relay restarts. `--token-file` keeps a token out of `ps`.
 *
 * usage: test_abuse_tokens PATCHBAY BACKEND [TEST...] */
#include "../../relay/harness.h"
#include "../../run_cmd.h"

#include <unistd.h>

PB_TEST_RUNNER

/* Runs `patchbay ARGS...` (NULL-terminated), its output to out (cap
 * bytes); returns its exit status, or -1. */
static int run(char *out, size_t cap, const char *const *args)
{
    const char *argv[16] = {patchbay_bin};
    for (int i = 0; args[i] && i < 14; i++)
        argv[i + 1] = args[i];
    return run_cmd(argv, true, out, cap);
}

/* Joins with an explicit token; NULL (with the reason in why) if refused. */
static pbc *join_with(relay *r, const char *tok, pb_errmsg *why)
{
    pbc_target t;
    target(r, NULL, tok, &t);
    return pbc_connect(&t, "test", 10000, NULL, why);
}

/* Before: the session stayed open (and pinged) after its token expired. */
TEST(a_live_session_ends_when_its_token_expires)
{
    relay r;
    REQUIRE(serve_start(&r, "expiry", NULL));
    char tok[PB_MAX_TOKEN_BYTES + 1];
    make_token(&r, "jam", PB_ROLE_EDITOR, "brief", 2, tok);
    pb_errmsg why = {{0}};
    pbc *c = join_with(&r, tok, &why);
    REQUIRE(c);
    pbc *other = join(&r, "jam", PB_ROLE_EDITOR, "stays", NULL);
    REQUIRE(other);
    CHECK(expect_fatal(c, PB_ERR_AUTH_EXPIRED));
    CHECK(ping_ok(other));
    pbc_close(c);
    pbc_close(other);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

/* Before: `patchbay token revoke` did not exist. */
TEST(revoking_a_name_closes_its_sessions_and_outlives_a_restart)
{
    relay r;
    REQUIRE(serve_start(&r, "revoke-name", NULL));
    pbc *ann = join(&r, "jam", PB_ROLE_EDITOR, "ann", NULL);
    pbc *ann_elsewhere = join(&r, "other", PB_ROLE_EDITOR, "ann", NULL);
    pbc *bob = join(&r, "jam", PB_ROLE_EDITOR, "bob", NULL);
    REQUIRE(ann && ann_elsewhere && bob);
    char out[2048];
    const char *args[] = {"token", "revoke", "--data", r.dir, "--room",
                          "jam",   "--name", "ann",    NULL};
    uint64_t t0 = now_ms();
    CHECK_EQ_INT(run(out, sizeof out, args), 0);
    printf("# %s", out);
    CHECK(expect_fatal(ann, PB_ERR_AUTH_REVOKED));
    printf("# ann's session closed %llu ms after the revocation\n",
           (unsigned long long)(now_ms() - t0));
    /* the same name in another room, and another name, are not affected */
    CHECK(ping_ok(ann_elsewhere));
    CHECK(ping_ok(bob));
    char tok[PB_MAX_TOKEN_BYTES + 1];
    make_token(&r, "jam", PB_ROLE_EDITOR, "ann", 3600, tok);
    pb_errmsg why = {{0}};
    pbc *again = join_with(&r, tok, &why);
    CHECK(again == NULL);
    CHECK(strstr(why.text, "revoked") != NULL);
    pbc_close(again);
    pbc_close(ann);
    pbc_close(ann_elsewhere);
    pbc_close(bob);
    /* persisted: a restarted relay refuses it too */
    CHECK_EQ_INT(serve_stop(&r), 0);
    REQUIRE(serve_start(&r, "revoke-name", NULL));
    again = join_with(&r, tok, &why);
    CHECK(again == NULL);
    CHECK(strstr(why.text, "revoked") != NULL);
    pbc_close(again);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

/* Before: the relay opened and closed history.db itself for every SQLite
 * handle it made (to check its mode), which dropped the POSIX locks its
 * first handle held; the revoking process then took itself for the last
 * user, checkpointed and deleted the relay's -wal, and every patch after
 * it went to the deleted file: `patchbay verify` did not see it, and a
 * relay killed then lost it ("2 patches verify" was "1"). */
TEST(patches_after_a_revocation_are_on_disk)
{
    relay r;
    REQUIRE(serve_start(&r, "revoke-wal", NULL));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    char src[256], out[2048];
    var_source(src, sizeof src, 1, 1);
    CHECK_EQ_INT((int)eval(ed, 1, src, NULL), 1);
    const char *args[] = {"token", "revoke", "--data", r.dir, "--room",
                          "jam",   "--name", "gone",   NULL};
    CHECK_EQ_INT(run(out, sizeof out, args), 0);
    var_source(src, sizeof src, 2, 2);
    CHECK_EQ_INT((int)eval(ed, 2, src, NULL), 2);
    const char *verify[] = {"verify", "--data", r.dir, "--room", "jam", NULL};
    CHECK_EQ_INT(run(out, sizeof out, verify), 0);
    printf("# %s", out);
    CHECK(strstr(out, "room jam: 2 patches verify") != NULL);
    pbc_close(ed);
    serve_kill9(&r); /* a relay that dies keeps what it acknowledged */
    CHECK_EQ_INT(run(out, sizeof out, verify), 0);
    CHECK(strstr(out, "room jam: 2 patches verify") != NULL);
}

TEST(revoking_a_token_by_its_id_leaves_the_names_other_tokens)
{
    relay r;
    REQUIRE(serve_start(&r, "revoke-id", NULL));
    char leaked[PB_MAX_TOKEN_BYTES + 1], fresh[PB_MAX_TOKEN_BYTES + 1];
    make_token(&r, "jam", PB_ROLE_RUNTIME, "screen", 3600, leaked);
    make_token(&r, "jam", PB_ROLE_RUNTIME, "screen", 7200, fresh);
    pb_errmsg why = {{0}};
    pbc *a = join_with(&r, leaked, &why);
    pbc *b = join_with(&r, fresh, &why);
    REQUIRE(a && b);
    char id[RELAY_TOKEN_ID_CHARS + 1], out[2048];
    relay_token_id(leaked, strlen(leaked), id);
    const char *args[] = {"token", "revoke", "--data", r.dir, "--id", id, NULL};
    CHECK_EQ_INT(run(out, sizeof out, args), 0);
    CHECK(expect_fatal(a, PB_ERR_AUTH_REVOKED));
    CHECK(ping_ok(b));
    /* a wrong id is a usage error */
    const char *bad[] = {"token", "revoke", "--data", r.dir,
                         "--id",  "xyz",    NULL};
    CHECK_EQ_INT(run(out, sizeof out, bad), 2);
    pbc_close(a);
    pbc_close(b);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

/* Before: the option was unknown (a token could only be an argument, which
 * every user of the machine sees in ps). */
TEST(a_token_file_keeps_the_token_off_the_command_line)
{
    relay r;
    REQUIRE(serve_start(&r, "token-file", NULL));
    char tok[PB_MAX_TOKEN_BYTES + 1], path[400], url[64], out[4096];
    make_token(&r, "jam", PB_ROLE_EDITOR, "ed", 3600, tok);
    snprintf(path, sizeof path, "%s/ed.token", tmp_root);
    FILE *f = fopen(path, "w");
    REQUIRE(f);
    fprintf(f, "%s\n", tok);
    fclose(f);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d", r.port);
    const char *args[] = {"eval", "--url", url,     "--token-file",
                          path,   "-e",    "1 + 2", NULL};
    int st = run(out, sizeof out, args);
    printf("# %s", out);
    CHECK_EQ_INT(st, 0);
    const char *missing[] = {
        "eval", "--url", url, "--token-file", "/nonexistent/token",
        "-e",   "1",     NULL};
    CHECK_EQ_INT(run(out, sizeof out, missing), 2);
    CHECK(strstr(out, "/nonexistent/token") != NULL);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

int main(int argc, char **argv)
{
    static const pb_test tests[] = {
        T(a_live_session_ends_when_its_token_expires),
        T(revoking_a_name_closes_its_sessions_and_outlives_a_restart),
        T(patches_after_a_revocation_are_on_disk),
        T(revoking_a_token_by_its_id_leaves_the_names_other_tokens),
        T(a_token_file_keeps_the_token_off_the_command_line),
    };
    return harness_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
