/* cmd_export.c — `patchbay export`: a room's whole history as one file.
 *
 * The bundle (docs/PROTOCOL.md § Bundle files) is the history as the relay
 * recorded it — every statement, signature, module and source — behind a
 * `bundle` frame with the room, the relay key and the room's settings. The
 * HTML file is the player page (web/player.html, built into the relay's
 * www/) with everything inlined: the bundle, the wasm runtime, the
 * player's script and its style, so it plays from file:// with nothing
 * else. Every patch is checked as it is read (cli_check): a history with a
 * broken link is not exported. The file is written beside its name and
 * renamed into place, so a failure never leaves half a file. */
#define _GNU_SOURCE /* memmem */
#include "cli.h"
#include "history.h"
#include "relay.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef PB_DEFAULT_WEB_DIR
#define PB_DEFAULT_WEB_DIR "web"
#endif

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: patchbay export --room R -o FILE [--format html|bundle] "
        "[--data DIR]\n"
        "\n"
        "Writes room R's whole history to FILE, checking every patch as "
        "it goes (a\nhistory with a broken link is not exported):\n"
        "\n"
        "  html    one self-contained page that plays the session in any "
        "browser,\n"
        "          also from file://, with its timeline; it verifies "
        "every signature\n"
        "          and the chain before it runs a patch (the default, and "
        "for FILE\n"
        "          ending in .html)\n"
        "  bundle  the signed history for `patchbay import`, `replay` and "
        "`verify`\n"
        "          (for any other FILE name)\n"
        "\n"
        "options:\n"
        "  --room R         the room\n"
        "  -o, --output F   the file to write (\"-\": stdout, bundle only)\n"
        "  --format F       html or bundle (default: from F's name)\n"
        "  --data DIR       the relay's data directory (default "
        "$PATCHBAY_DATA or\n"
        "                   ./patchbay-data)\n"
        "  --web DIR        the built pages with the player (default: the "
        "build's www/)\n"
        "  --title T        the page's title (default: the room's name)\n"
        "  -h, --help       this help\n"
        "\n"
        "Exit status: 0 written, 1 the history does not verify or cannot "
        "be written,\n2 usage, 3 the history cannot be read.\n");
}

typedef struct export_ctx {
    FILE *out;
    cli_check *check;
    cli_progress bar;
    uint64_t n;
    pb_err e;
    pb_errmsg why;
} export_ctx;

static int add_patch(void *vctx, const relay_patch_row *row)
{
    export_ctx *x = vctx;
    pb_patch p;
    if (!cli_check_row(x->check, row, &p))
        return 1;
    if ((x->e = cli_bundle_write_patch(x->out, &p, &x->why)))
        return 1;
    x->n++;
    cli_progress_update(&x->bar, x->n, NULL);
    return 0;
}

/* Room R's history as a bundle in memory (*out, *len: free it). */
static int make_bundle(const char *data, const char *room, char **out,
                       size_t *len, uint64_t *count)
{
    relay_history *h = cli_open_history("export", data);
    if (!h)
        return 3;
    pb_errmsg why = {{0}};
    uint8_t key[PB_PUBLICKEY_BYTES];
    pb_bundle head = {0};
    pb_room settings;
    int rc = 1;
    export_ctx x = {0};
    if (cli_data_key(data, key, &why) ||
        relay_history_head(h, room, &head.count, head.head_hash, &why) ||
        relay_history_epoch(h, room, 0, &head.epoch, &why) ||
        relay_history_get_settings(h, room, &settings, &why)) {
        fprintf(stderr, "patchbay export: %s\n", why.text);
        rc = 3;
        goto done;
    }
    if (!head.count) {
        fprintf(stderr, "patchbay export: room %s has no patches in %s\n", room,
                data);
        goto done;
    }
    head.room = pb_cstr(room);
    memcpy(head.key, key, sizeof key);
    head.exported_us = (uint64_t)time(NULL) * 1000000u;
    head.tempo_bpm = settings.tempo_bpm;
    head.quantum = settings.quantum;
    if (!(x.out = open_memstream(out, len)) ||
        !(x.check = cli_check_new(room, head.epoch, key, 0, NULL))) {
        fprintf(stderr, "patchbay export: out of memory\n");
        goto done;
    }
    if ((x.e = cli_bundle_write_head(x.out, &head, &x.why)))
        goto failed;
    cli_progress_start(&x.bar, "exporting", head.count);
    pb_err e = relay_history_patches(h, room, 1, head.count, false, add_patch,
                                     &x, &why);
    uint64_t n_good = 0, bad_seq = 0;
    pb_errmsg why_check = {{0}};
    pb_err e_check = cli_check_end(x.check, &n_good, &bad_seq, &why_check);
    cli_progress_end(&x.bar);
    if (e_check) {
        fprintf(stderr,
                "patchbay export: room %s does not verify, nothing written: "
                "%s\n",
                room, why_check.text);
        goto done;
    }
    if (e || x.e) {
        if (e)
            x.why = why;
        goto failed;
    }
    if (x.n != head.count) {
        fprintf(stderr,
                "patchbay export: room %s: %llu patches read, but its head "
                "is seq %llu\n",
                room, (unsigned long long)x.n, (unsigned long long)head.count);
        goto done;
    }
    *count = x.n;
    rc = 0;
    goto done;
failed:
    fprintf(stderr, "patchbay export: %s\n", x.why.text);
done:
    if (x.out && fclose(x.out) && !rc) {
        fprintf(stderr, "patchbay export: out of memory\n");
        rc = 1;
    }
    cli_check_free(x.check);
    relay_history_close(h);
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* Reads DIR/name into out (NUL-terminated), or says why and is false. */
static bool read_asset(const char *dir, const char *name, pb_buf *out)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    pb_errmsg why = {{0}};
    if (!cli_read_file(path, out, &why))
        return true;
    fprintf(stderr,
            "patchbay export: %s: the player is built with the pages (--web "
            "names their folder)\n",
            why.text);
    return false;
}

static bool put(FILE *out, const void *p, size_t n)
{
    return fwrite(p, 1, n, out) == n;
}

/* A script's text inside <script>: "</script" would end it early. */
static bool put_script(FILE *out, const char *js, size_t n)
{
    const char *at = js, *end = js + n;
    for (const char *m; (m = memmem(at, (size_t)(end - at), "</script", 8));
         at = m + 2)
        if (!put(out, at, (size_t)(m - at)) || !put(out, "<\\/", 3))
            return false;
    return put(out, at, (size_t)(end - at));
}

static bool put_base64(FILE *out, const void *bytes, size_t n)
{
    /* in slices, so the encoding needs little memory and lines stay short */
    enum { SLICE = 57 * 1024 };
    char b64[SLICE / 3 * 4 + 4];
    for (size_t at = 0; at < n; at += SLICE) {
        size_t k = n - at < SLICE ? n - at : SLICE;
        sodium_bin2base64(b64, sizeof b64, (const uint8_t *)bytes + at, k,
                          sodium_base64_VARIANT_ORIGINAL);
        if (!put(out, b64, strlen(b64)) || !put(out, "\n", 1))
            return false;
    }
    return true;
}

static void html_escape(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", out);
        else if (*s == '&')
            fputs("&amp;", out);
        else if (*s == '"')
            fputs("&quot;", out);
        else
            fputc(*s, out);
    }
}

/* The player page with everything inlined at its markers. */
static int write_html(FILE *out, const char *web, const char *title,
                      const char *bundle, size_t bundle_len)
{
    pb_buf page, css, js, glue, wasm;
    pb_buf *all[] = {&page, &css, &js, &glue, &wasm};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pb_buf_init(all[i]);
    int rc = 1;
    if (!read_asset(web, "player.html", &page) ||
        !read_asset(web, "style.css", &css) ||
        !read_asset(web, "player-page.js", &js) ||
        !read_asset(web, "runtime/pb_runtime.js", &glue) ||
        !read_asset(web, "runtime/pb_runtime.wasm", &wasm))
        goto done;
    /* the template: ...<!--pb:title-->...<!--pb:style-->...<!--pb:body-->... */
    static const char *const marks[] = {"<!--pb:title-->", "<!--pb:style-->",
                                        "<!--pb:scripts-->"};
    const char *at = (const char *)page.data;
    bool ok = true;
    for (size_t i = 0; ok && i < 3; i++) {
        const char *m = strstr(at, marks[i]);
        if (!m) {
            fprintf(stderr,
                    "patchbay export: %s/player.html has no %s marker\n", web,
                    marks[i]);
            goto done;
        }
        ok = put(out, at, (size_t)(m - at));
        if (i == 0)
            html_escape(out, title);
        else if (i == 1)
            ok = ok && put(out, (const char *)css.data, css.len);
        else
            ok = ok &&
                 fputs("<script type=\"application/x-patchbay-bundle\">\n",
                       out) >= 0 &&
                 put_base64(out, bundle, bundle_len) &&
                 fputs("</script>\n<script "
                       "type=\"application/x-patchbay-wasm\">\n",
                       out) >= 0 &&
                 put_base64(out, wasm.data, wasm.len) &&
                 fputs("</script>\n<script>\n", out) >= 0 &&
                 put_script(out, (const char *)glue.data, glue.len) &&
                 fputs("\n</script>\n<script>\n", out) >= 0 &&
                 put_script(out, (const char *)js.data, js.len) &&
                 fputs("\n</script>\n", out) >= 0;
        at = m + strlen(marks[i]);
    }
    ok = ok && fputs(at, out) >= 0;
    rc = ok ? 0 : 1;
    if (!ok)
        fprintf(stderr, "patchbay export: cannot write: %s\n", strerror(errno));
done:
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        pb_buf_free(all[i]);
    return rc;
}

int cmd_export(int argc, char **argv)
{
    const char *data = cli_data_dir(), *room = NULL, *path = NULL;
    const char *format = NULL, *web = PB_DEFAULT_WEB_DIR, *title = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!v) {
            return cli_bad_option("export", a);
        }
        i++;
        if (!strcmp(a, "--room"))
            room = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output"))
            path = v;
        else if (!strcmp(a, "--format"))
            format = v;
        else if (!strcmp(a, "--data"))
            data = v;
        else if (!strcmp(a, "--web"))
            web = v;
        else if (!strcmp(a, "--title"))
            title = v;
        else
            return cli_bad_option("export", a);
    }
    if (!room || !path) {
        fprintf(stderr, "patchbay export: --room and -o are required\n\n");
        usage(stderr);
        return 2;
    }
    size_t plen = strlen(path);
    bool is_html = plen > 5 && !strcmp(path + plen - 5, ".html");
    if (format && !strcmp(format, "html"))
        is_html = true;
    else if (format && !strcmp(format, "bundle"))
        is_html = false;
    else if (format)
        return cli_usage_error(
            "export", "--format is html or bundle, not \"%s\"", format);
    else if (strcmp(path, "-") && !is_html && !strchr(path, '.')) {
        is_html = true; /* a bare name: the page, as the help says */
    }
    if (is_html && !strcmp(path, "-"))
        return cli_usage_error("export", "the HTML page is written to a "
                                         "file, not stdout (or --format "
                                         "bundle)");
    if (pb_init()) {
        fprintf(stderr, "patchbay export: libsodium does not initialise\n");
        return 1;
    }
    char *bundle = NULL;
    size_t len = 0;
    uint64_t count = 0;
    int rc = make_bundle(data, room, &bundle, &len, &count);
    if (rc)
        return rc;
    FILE *out = stdout;
    char tmp[4200] = "";
    if (strcmp(path, "-")) {
        snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
        if (!(out = fopen(tmp, "wb"))) {
            fprintf(stderr, "patchbay export: cannot write %s: %s\n", tmp,
                    strerror(errno));
            free(bundle);
            return 1;
        }
    }
    if (is_html)
        rc = write_html(out, web, title ? title : room, bundle, len);
    else if (!put(out, bundle, len))
        rc = 1;
    if (out != stdout) {
        if (fflush(out) || fsync(fileno(out)))
            rc = 1;
        if (fclose(out))
            rc = 1;
        if (!rc && rename(tmp, path))
            rc = 1;
        if (rc) {
            fprintf(stderr, "patchbay export: cannot write %s: %s\n", path,
                    strerror(errno));
            unlink(tmp);
        }
    } else if (fflush(out)) {
        rc = 1;
    }
    free(bundle);
    if (!rc && out != stdout) {
        long size = 0;
        FILE *f = fopen(path, "rb");
        if (f && !fseek(f, 0, SEEK_END))
            size = ftell(f);
        if (f)
            fclose(f);
        printf("room %s: %llu patches exported to %s (%s, %.1f KiB)\n", room,
               (unsigned long long)count, path, is_html ? "html" : "bundle",
               (double)size / 1024.0);
    }
    return rc;
}
