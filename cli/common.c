/* common.c — what several commands parse or find the same way: numbers and
 * other option values, the data directory, the relay a command talks to,
 * a source file's language, reading an input file, this program's path.
 * Each returns pb_err with a message naming the option or file; the
 * command prints it (cli_usage_error) and decides the exit status. */
#include "cli.h"
#include "relay.h"

#include <sodium.h>

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "patchbay %s: %s\n", cmd, msg);
    return 2;
}

int cli_bad_option(const char *cmd, const char *arg)
{
    return cli_usage_error(cmd,
                           "unknown option or missing value \"%s\" (see "
                           "patchbay %s --help)",
                           arg, cmd);
}

pb_err cli_parse_number(const char *opt, const char *text, double min,
                        double max, bool whole, double *out, pb_errmsg *why)
{
    char *end;
    errno = 0;
    double v = text[0] ? strtod(text, &end) : NAN;
    if (!text[0] || *end || errno || !(v >= min && v <= max) ||
        (whole && v != floor(v)))
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "%s wants a %snumber from %g to %g, got \"%s\"", opt,
                       whole ? "whole " : "", min, max, text);
    *out = v;
    return PB_OK;
}

pb_err cli_parse_u32(const char *opt, const char *text, uint32_t min,
                     uint32_t max, uint32_t *out, pb_errmsg *why)
{
    double v = 0;
    pb_err e = cli_parse_number(opt, text, min, max, true, &v, why);
    if (!e)
        *out = (uint32_t)v;
    return e;
}

/* "1d", "90s", "500ms": the largest unit that divides ms. */
static void format_ms(uint64_t ms, char *out, size_t cap)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    if (!ms) {
        snprintf(out, cap, "0s");
        return;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (ms % units[i].ms == 0) {
            snprintf(out, cap, "%llu%s", (unsigned long long)(ms / units[i].ms),
                     units[i].unit);
            return;
        }
    snprintf(out, cap, "%llums", (unsigned long long)ms);
}

pb_err cli_parse_duration(const char *opt, const char *text, uint64_t min_ms,
                          uint64_t max_ms, uint64_t *ms, pb_errmsg *why)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"", 1000},   {"ms", 1},      {"s", 1000},
                 {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    /* digits and a point only: strtod would also take " 5", "+5", "inf"
     * and "0x10" */
    size_t n = strspn(text, "0123456789.");
    char number[32] = "";
    double v = NAN;
    if (n && n < sizeof number) {
        memcpy(number, text, n);
        char *end;
        v = strtod(number, &end);
        if (*end)
            v = NAN;
    }
    double scale = NAN;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (!strcmp(text + n, units[i].unit))
            scale = units[i].ms;
    double total = v * scale;
    if (!(total >= (double)min_ms && total <= (double)max_ms)) {
        char lo[32], hi[32];
        format_ms(min_ms, lo, sizeof lo);
        format_ms(max_ms, hi, sizeof hi);
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "%s wants a duration from %s to %s (such as 500ms, "
                       "90s, 30m, 12h or 7d), got \"%s\"",
                       opt, lo, hi, text);
    }
    *ms = (uint64_t)llround(total);
    return PB_OK;
}

const char *cli_data_dir(void)
{
    const char *d = getenv("PATCHBAY_DATA");
    return d && d[0] ? d : "patchbay-data";
}

relay_history *cli_open_history(const char *cmd, const char *data)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/history.db", data);
    struct stat sb;
    if (stat(path, &sb) != 0) {
        fprintf(stderr,
                "patchbay %s: no history at %s (%s); is --data the "
                "relay's data directory?\n",
                cmd, path, strerror(errno));
        return NULL;
    }
    pb_errmsg why = {{0}};
    relay_history *h = relay_history_open_readonly(path, &why);
    if (!h)
        fprintf(stderr, "patchbay %s: %s\n", cmd, why.text);
    return h;
}

bool cli_secret_file(const char *cmd, const char *what, const char *path,
                     char *out, size_t cap)
{
    pb_buf b;
    pb_buf_init(&b);
    pb_errmsg why = {{0}};
    /* the secret and its line end; a longer file holds more than one */
    pb_err e = pb_buf_read_path(&b, path, cap + 64, &why);
    size_t n = e ? 0 : b.len;
    while (n && (b.data[n - 1] == '\n' || b.data[n - 1] == '\r' ||
                 b.data[n - 1] == ' ' || b.data[n - 1] == '\t'))
        n--;
    bool has_nul = n && memchr(b.data, '\0', n);
    bool fits = n && n < cap && !has_nul && !e;
    if (fits) {
        memcpy(out, b.data, n);
        out[n] = '\0';
    }
    if (b.data)
        sodium_memzero(b.data, b.len);
    pb_buf_free(&b);
    if (e && e != PB_ERR_TOO_BIG) {
        fprintf(stderr, "patchbay %s: the %s file: %s\n", cmd, what, why.text);
        return false;
    }
    if (!fits) {
        char holds[80] = "nothing";
        if (has_nul)
            snprintf(holds, sizeof holds, "a NUL byte");
        else if (n || e)
            snprintf(holds, sizeof holds, "more than a %s's bytes", what);
        fprintf(stderr, "patchbay %s: the %s file %s holds %s, not one %s\n",
                cmd, what, path, holds, what);
        return false;
    }
    return true;
}

const char *cli_token_file(const char *cmd, const char *path)
{
    static char tok[PB_MAX_TOKEN_BYTES + 1];
    return cli_secret_file(cmd, "token", path, tok, sizeof tok) ? tok : NULL;
}

int cli_conn_option(const char *cmd, int argc, char **argv, int *i,
                    cli_conn_opts *o)
{
    const char *a = argv[*i];
    if (!strcmp(a, "--token-file")) {
        if (*i + 1 >= argc) {
            cli_usage_error(cmd, "%s needs a value", a);
            return -1;
        }
        return (o->token = cli_token_file(cmd, argv[++*i])) ? 1 : -1;
    }
    const char **slot = !strcmp(a, "--link")    ? &o->link
                        : !strcmp(a, "--url")   ? &o->url
                        : !strcmp(a, "--token") ? &o->token
                        : !strcmp(a, "--room")  ? &o->room
                        : !strcmp(a, "--ca")    ? &o->ca
                                                : NULL;
    if (!slot)
        return 0;
    if (*i + 1 >= argc) {
        cli_usage_error(cmd, "%s needs a value", a);
        return -1;
    }
    *slot = argv[++*i];
    return 1;
}

pb_err cli_target(const cli_conn_opts *o, pbc_target *t, pb_errmsg *why)
{
    memset(t, 0, sizeof *t);
    const char *url = o->url ? o->url : getenv("PATCHBAY_URL");
    const char *token = o->token ? o->token : getenv("PATCHBAY_TOKEN");
    const char *file = getenv("PATCHBAY_TOKEN_FILE");
    if (!token && file && file[0] &&
        !(token = cli_token_file("(PATCHBAY_TOKEN_FILE)", file)))
        return pb_fail(why, PB_ERR_AUTH_MALFORMED,
                       "no token in $PATCHBAY_TOKEN_FILE (%s)", file);
    /* a token in the link's fragment wins over this one (pbc_parse_url) */
    snprintf(t->token, sizeof t->token, "%s", token ? token : "");
    pb_err e = pbc_parse_url(o->link ? o->link
                             : url   ? url
                                     : "ws://127.0.0.1:7888",
                             t, why);
    if (e)
        return e;
    if (!t->token[0])
        return pb_fail(why, PB_ERR_AUTH_MALFORMED,
                       "no token: pass --token, --link, or set "
                       "PATCHBAY_TOKEN (patchbay token prints one)");
    const char *ca = o->ca ? o->ca : getenv("PATCHBAY_CA"); /* for wss */
    if (ca && snprintf(t->ca, sizeof t->ca, "%s", ca) >= (int)sizeof t->ca)
        return pb_fail(why, PB_ERR_FIELD_RANGE, "the CA path %s is too long",
                       ca);
    return PB_OK;
}

pbc *cli_join(const char *cmd, const pbc_target *t, const char *room,
              uint32_t timeout_ms, pbc_welcome *w)
{
    pb_errmsg why = {{0}};
    pbc *c =
        pbc_connect(t, "patchbay-cli/" PB_VERSION_STRING, timeout_ms, w, &why);
    if (!c) {
        fprintf(stderr, "patchbay %s: %s:%d: %s\n", cmd, t->host, t->port,
                why.text);
        return NULL;
    }
    const char *want = room ? room : t->room[0] ? t->room : NULL;
    if (want && strcmp(want, w->room)) {
        fprintf(stderr,
                "patchbay %s: the token is for room \"%s\", not \"%s\"\n", cmd,
                w->room, want);
        pbc_close(c);
        return NULL;
    }
    return c;
}

/* DATA/relay.url: where patchbay serve last listened (https with TLS). */
static void relay_url_path(const char *dir, char *out, size_t cap)
{
    snprintf(out, cap, "%s/relay.url", dir);
}

pb_err cli_relay_url_save(const char *dir, const char *url, pb_errmsg *why)
{
    char path[4200], tmp[4300];
    relay_url_path(dir, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    bool ok = f && fprintf(f, "%s\n", url) >= 0;
    if (f && fclose(f) != 0)
        ok = false;
    if (!ok || rename(tmp, path) != 0) {
        pb_err e = pb_fail(why, PB_ERR_IO, "cannot write %s: %s", path,
                           strerror(errno));
        unlink(tmp);
        return e;
    }
    return PB_OK;
}

bool cli_relay_url_load(const char *dir, char *url, size_t cap)
{
    char path[4200];
    relay_url_path(dir, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    bool ok = fgets(url, (int)cap, f) != NULL;
    fclose(f);
    url[ok ? strcspn(url, "\r\n") : 0] = '\0';
    return ok && url[0];
}

pb_lang cli_lang_of(const char *file, pb_lang forced)
{
    if (forced)
        return forced;
    const char *dot = strrchr(file, '.');
    if (dot && (!strcmp(dot, ".cljc") || !strcmp(dot, ".clj") ||
                !strcmp(dot, ".jank")))
        return PB_LANG_LISP;
    return PB_LANG_C;
}

pb_err cli_read_file(const char *path, pb_buf *out, pb_errmsg *why)
{
    if (!strcmp(path, "-"))
        return pb_buf_read_file(out, stdin, "<stdin>", CLI_MAX_FILE_BYTES, why);
    return pb_buf_read_path(out, path, CLI_MAX_FILE_BYTES, why);
}

bool cli_self_exe(char *out, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return false;
    exe[n] = '\0';
    return (size_t)snprintf(out, cap, "%s", exe) < cap;
}
