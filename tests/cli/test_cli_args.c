/* test_cli_args.c — the patchbay binary as a user meets it with a mistake:
 * each bad option value or unreadable input gets exit status 2 and one
 * line naming the option or file. Inputs that cannot be read are refused,
 * not taken for empty (a directory opens as a file and fails on read).
 *
 * usage: test_cli_args PATCHBAY */
#include "../check.h"
#include "../run_cmd.h"

#include "pb_protocol.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *patchbay;

typedef struct ran {
    int status; /* exit status, -1 if it did not exit */
    char err[4096];
} ran;

/* Runs patchbay with args (NULL-terminated); its stderr in err. */
static ran run(const char *const *args)
{
    ran r;
    const char *argv[16] = {patchbay};
    for (int i = 0; args[i] && i < 14; i++)
        argv[i + 1] = args[i];
    r.status = run_cmd(argv, false, r.err, sizeof r.err);
    return r;
}

static bool says(const ran *r, int status, const char *text)
{
    if (r->status == status && strstr(r->err, text))
        return true;
    fprintf(stderr, "  exit %d, stderr \"%s\"; wanted %d and \"%s\"\n",
            r->status, r->err, status, text);
    return false;
}

/* Failed before: the readers did not check ferror(), so a directory
 * compiled as an empty patch. */
TEST(compile_refuses_a_file_it_cannot_read)
{
    ran r = run((const char *const[]){"compile", "/", NULL});
    CHECK(says(&r, 2, "cannot read /"));
    r = run((const char *const[]){"compile", "/no/such/file.c", NULL});
    CHECK(says(&r, 2, "cannot read /no/such/file.c"));
}

/* verify reads the relay's public key from DATA/relay.pub: a file that
 * cannot be read is named with the reason (it said "empty" for any
 * failure), one that holds no key says so; both exit 3, "the history
 * cannot be read" (README: 1 is for a history that does not verify). */
TEST(verify_names_a_relay_pub_it_cannot_read)
{
    char dir[] = "/tmp/pb-cli-args-XXXXXX", pub[64];
    REQUIRE(mkdtemp(dir));
    snprintf(pub, sizeof pub, "%s/relay.pub", dir);
    REQUIRE(mkdir(pub, 0700) == 0); /* opens, cannot be read */
    ran r = run((const char *const[]){"verify", "--data", dir, NULL});
    char want[128];
    snprintf(want, sizeof want, "cannot read %s: Is a directory", pub);
    CHECK(says(&r, 3, want));
    CHECK(says(&r, 3, "or pass --key"));
    rmdir(pub);
    int fd = open(pub, O_WRONLY | O_CREAT, 0600);
    REQUIRE(fd >= 0);
    close(fd);
    r = run((const char *const[]){"verify", "--data", dir, NULL});
    snprintf(want, sizeof want, "%s does not hold a relay key", pub);
    CHECK(says(&r, 3, want));
    unlink(pub);
    rmdir(dir);
}

TEST(numbers_out_of_range_name_the_option)
{
    ran r = run((const char *const[]){"serve", "--port", "70000", NULL});
    CHECK(says(&r, 2, "--port wants a whole number from 0 to 65535"));
    r = run((const char *const[]){"serve", "--lead-ms", "x", NULL});
    CHECK(says(&r, 2, "--lead-ms wants a whole number"));
    r = run((const char *const[]){"room", "--tempo", "1000", NULL});
    CHECK(says(&r, 2, "--tempo wants a number from 0 to 999"));
    r = run((const char *const[]){"room", "--quantum", "1.5", NULL});
    CHECK(says(&r, 2, "--quantum wants a whole number"));
    r = run((const char *const[]){"eval", "--wait-ms", "-1", "f.c", NULL});
    CHECK(says(&r, 2, "--wait-ms wants a whole number"));
    r = run((const char *const[]){"cc-server", "--timeout-ms", "0", NULL});
    CHECK(says(&r, 2, "--timeout-ms wants a whole number from 1 to"));
}

/* Every number option of every command goes through the one parser, so a
 * mistake reads the same everywhere (nrepl had its own). */
TEST(nrepl_numbers_are_checked_like_the_others)
{
    ran r = run((const char *const[]){"nrepl", "--port", "70000", NULL});
    CHECK(says(&r, 2, "--port wants a whole number from 0 to 65535"));
    r = run((const char *const[]){"nrepl", "--eval-timeout-ms", "1e3x", NULL});
    CHECK(says(&r, 2, "--eval-timeout-ms wants a whole number"));
}

/* One duration parser: the farm's options and token's --ttl take the same
 * units (ms, s, m, h, d, fractions; a bare number is seconds) and say the
 * same thing about a mistake, naming the option, the text and the range. */
TEST(durations_are_one_syntax_for_every_option)
{
    static const char *const bad[] = {"5x",     "h",    "-5s", "",
                                      "1.2.3s", "0x10", "inf", " 5s"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, "got \"%s\"", bad[i]);
        ran r = run((const char *const[]){"test", "--wait", bad[i], NULL});
        CHECK(says(&r, 2, "--wait wants a duration"));
        CHECK(says(&r, 2, want));
        r = run((const char *const[]){"token", "--room", "r", "--role",
                                      "editor", "--name", "n", "--ttl", bad[i],
                                      NULL});
        CHECK(says(&r, 2, "--ttl wants a duration"));
        CHECK(says(&r, 2, want));
    }
    /* the ranges: a day for the farm's waits, 1 s to 366 d for a token */
    static const char *const no_token[] = {"0h", "99999999999999999999d",
                                           "999999999999999999d"};
    for (size_t i = 0; i < sizeof no_token / sizeof no_token[0]; i++) {
        ran r = run((const char *const[]){"token", "--room", "r", "--role",
                                          "editor", "--name", "n", "--ttl",
                                          no_token[i], NULL});
        CHECK(says(&r, 2, "--ttl wants a duration from 1s to 366d"));
    }
    ran r = run(
        (const char *const[]){"snapshot", "-o", "x", "--timeout", "25h", NULL});
    CHECK(says(&r, 2, "--timeout wants a duration from 0s to 1d"));
    r = run((const char *const[]){"token", "--room", "r", "--role", "editor",
                                  "--name", "n", "--ttl", "367d", NULL});
    CHECK(says(&r, 2, "--ttl wants a duration from 1s to 366d"));
    r = run((const char *const[]){"token", "--room", "r", "--role", "editor",
                                  "--name", "n", "--ttl", "0.5s", NULL});
    CHECK(says(&r, 2, "--ttl wants a duration from 1s to 366d"));
    CHECK(says(&r, 2, "got \"0.5s\""));
    r = run(
        (const char *const[]){"snapshot", "-o", "x", "--at-time", "+2w", NULL});
    CHECK(says(&r, 2, "--at-time wants a duration"));
}

TEST(an_unknown_backend_is_named)
{
    static const char *const cmds[] = {"serve", "compile", "cc-server"};
    for (size_t i = 0; i < 3; i++) {
        ran r = run(
            (const char *const[]){cmds[i], "--backend", "fast", "x.c", NULL});
        CHECK(says(&r, 2, "warm or process, not \"fast\""));
    }
}

TEST(an_unknown_option_is_named)
{
    static const char *const cmds[] = {"serve",  "token", "keygen",  "log",
                                       "verify", "room",  "compile", "eval"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        ran r = run((const char *const[]){cmds[i], "--nope", "x", NULL});
        CHECK(says(&r, 2, "\"--nope\""));
    }
}

/* --token-file is read like every other file (failed before: a
 * directory "held nothing", the read error unsaid); what it holds is one
 * token, its line end and spaces around it aside. */
TEST(a_token_file_that_cannot_be_read_is_named)
{
    ran r = run((const char *const[]){"room", "--token-file", "/", NULL});
    CHECK(says(&r, 2, "the token file: cannot read /: Is a directory"));
    r = run((const char *const[]){"room", "--token-file", "/no/such", NULL});
    CHECK(says(&r, 2, "cannot read /no/such: No such file or directory"));
    char path[] = "/tmp/pb-cli-token-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, " \n", 2) == 2);
    r = run((const char *const[]){"room", "--token-file", path, NULL});
    CHECK(says(&r, 2, "holds nothing, not one token"));
    char big[PB_MAX_TOKEN_BYTES + 100];
    memset(big, 'a', sizeof big);
    REQUIRE(write(fd, big, sizeof big) == (ssize_t)sizeof big);
    close(fd);
    r = run((const char *const[]){"room", "--token-file", path, NULL});
    CHECK(says(&r, 2, "holds more than a token's bytes, not one token"));
    unlink(path);
}

/* A TLS file that cannot be read is named with why (failed before: a
 * directory read as empty and was "not a PEM file of that kind"). */
TEST(a_tls_file_that_cannot_be_read_is_named)
{
    char dir[] = "/tmp/pb-cli-tls-XXXXXX";
    REQUIRE(mkdtemp(dir));
    ran r =
        run((const char *const[]){"serve", "--data", dir, "--port", "0",
                                  "--tls-cert", "/", "--tls-key", "/", NULL});
    CHECK(r.status != 0);
    CHECK(says(&r, r.status, "--tls-cert: cannot read /: Is a directory"));
    r = run((const char *const[]){"serve", "--data", dir, "--port", "0",
                                  "--tls-cert", "/no/such", "--tls-key", "/",
                                  NULL});
    CHECK(says(&r, r.status, "cannot read /no/such: No such file"));
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

static const pb_test tests[] = {
    T(compile_refuses_a_file_it_cannot_read),
    T(verify_names_a_relay_pub_it_cannot_read),
    T(numbers_out_of_range_name_the_option),
    T(nrepl_numbers_are_checked_like_the_others),
    T(durations_are_one_syntax_for_every_option),
    T(an_unknown_backend_is_named),
    T(an_unknown_option_is_named),
    T(a_token_file_that_cannot_be_read_is_named),
    T(a_tls_file_that_cannot_be_read_is_named),
};

PB_TEST_RUNNER

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_cli_args PATCHBAY [TEST...]\n");
        return 2;
    }
    patchbay = argv[1];
    return pb_test_run(tests, sizeof tests / sizeof tests[0], argc - 1,
                       argv + 1);
}
