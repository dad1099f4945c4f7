/* cmd_compile.c — `patchbay compile`: compile one patch in a compile server
 * of its own (cc_client), print diagnostics in the file:line:col form editors
 * parse, and write the side module. A room file (--room, roomfile.c) stands in
 * for a relay's var table so that patches can be compiled against earlier ones
 * offline. */
#include "cc.h"
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: patchbay compile [options] FILE|-|--stdin\n"
        "\n"
        "Compiles one patch (C, or Lisp: docs/LISP.md) to a WebAssembly "
        "side module\nfollowing the patch ABI (docs/PATCH_ABI.md). Diagnostics "
        "go to stderr "
        "as FILE:LINE:COL: severity: message.\n"
        "The job runs in a compile server (patchbay cc-server) with the "
        "limits `patchbay\nserve` gives it: 2 s, and the server's memory.\n"
        "\n"
        "options:\n"
        "  -o OUT              write the module to OUT (default: FILE with "
        ".wasm)\n"
        "  --backend B         warm (clang and lld in the server) or "
        "process\n"
        "                      (clang-14 and wasm-ld-14 run per job); "
        "default: warm,\n"
        "                      or process if warm cannot load (said on "
        "stderr)\n"
        "  --lang c|lisp       the source language (default: lisp for "
        ".cljc, .clj and\n"
        "                      .jank files, else c)\n"
        "  --room ROOMFILE     compile against the vars listed in ROOMFILE\n"
        "  --update-room       after a successful compile, record this "
        "patch's vars\n"
        "                      in ROOMFILE\n"
        "  --expr              the source is one expression to run once "
        "(docs/PATCH_ABI.md\n"
        "                      § Expressions); C needs it, a Lisp "
        "expression is one\n"
        "                      without it\n"
        "  --stdin             read the source from stdin (as FILE -); the "
        "module goes\n"
        "                      to OUT, or to stdout without -o\n"
        "  -q, --quiet         print nothing but diagnostics\n"
        "  -h, --help          this help\n"
        "\n"
        "exit status: 0 compiled, 1 the source has errors, 2 usage, 3 the "
        "compiler failed\n");
}

int cmd_compile(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *room_path = NULL;
    bool update_room = false, quiet = false, expr = false;
    pb_lang lang = PB_LANG_NONE;
    cc_backend backend = CC_BACKEND_AUTO;
    pb_errmsg why = {{0}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-o") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(a, "--backend") && i + 1 < argc) {
            if (cc_backend_parse(argv[++i], &backend, &why))
                return cli_usage_error("compile", "--backend: %s", why.text);
        } else if (!strcmp(a, "--lang") && i + 1 < argc) {
            lang = pb_lang_parse(pb_cstr(argv[++i]));
            if (!lang)
                return cli_usage_error(
                    "compile", "--lang is c or lisp, not \"%s\"", argv[i]);
        } else if (!strcmp(a, "--room") && i + 1 < argc) {
            room_path = argv[++i];
        } else if (!strcmp(a, "--update-room")) {
            update_room = true;
        } else if (!strcmp(a, "--expr")) {
            expr = true;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
        } else if (!strcmp(a, "--stdin") && !in) {
            in = "-";
        } else if (a[0] == '-' && a[1] != '\0' && strcmp(a, "--stdin")) {
            return cli_bad_option("compile", a);
        } else if (!in) {
            in = a;
        } else {
            return cli_usage_error("compile", "one FILE at a time (\"%s\")", a);
        }
    }
    if (!in) {
        usage(stderr);
        return 2;
    }
    if (update_room && !room_path)
        return cli_usage_error("compile", "--update-room needs --room FILE");
    bool from_stdin = !strcmp(in, "-");
    const char *shown = from_stdin ? "<stdin>" : in;
    pb_buf src;
    pb_buf_init(&src);
    if (cli_read_file(in, &src, &why)) {
        fprintf(stderr, "patchbay compile: %s\n", why.text);
        pb_buf_free(&src);
        return 2;
    }
    char outbuf[4200];
    if (!out && !from_stdin) {
        const char *dot = strrchr(in, '.');
        size_t stem =
            dot && !strchr(dot, '/') ? (size_t)(dot - in) : strlen(in);
        snprintf(outbuf, sizeof outbuf, "%.*s.wasm", (int)stem, in);
        out = outbuf;
    }
    cli_room rm = {0};
    if (room_path && cli_room_load(room_path, &rm, &why)) {
        fprintf(stderr, "patchbay compile: %s\n", why.text);
        pb_buf_free(&src);
        return 2;
    }
    int status = 3;
    cc_client *cc = NULL;
    cc_result res = {0};
    /* The job runs in a compile server (this program's cc-server), under
     * the same supervision as the relay's: its time limit, the watchdog
     * for what the limit cannot interrupt inside clang, its address
     * space, and the same messages. */
    char self[4096];
    if (!cli_self_exe(self, sizeof self)) {
        fprintf(stderr, "patchbay compile: cannot find this program "
                        "(/proc/self/exe) to start the compile server\n");
        goto done;
    }
    const char *server[] = {self, "cc-server", NULL};
    cc_client_desc cd = {server, backend, 0};
    if (!(cc = cc_client_new(&cd, &why))) {
        fprintf(stderr, "patchbay compile: %s\n", why.text);
        goto done;
    }
    cc_job job = {cli_lang_of(shown, lang),
                  shown,
                  (const char *)src.data,
                  src.len,
                  rm.vars,
                  rm.n,
                  expr};
    pb_err e = cc_client_compile(cc, &job, &res, &why);
    for (uint32_t i = 0; i < res.n_diags; i++)
        fprintf(stderr, "%s:%u:%u: %s: %s\n", shown, res.diags[i].line,
                res.diags[i].col, pb_severity_name(res.diags[i].severity),
                res.diags[i].message);
    if (e) {
        fprintf(stderr, "patchbay compile: %s\n", why.text);
        goto done;
    }
    if (!res.ok) {
        status = 1;
        goto done;
    }
    if (out) {
        FILE *o = fopen(out, "wb");
        if (!o || fwrite(res.module, 1, res.module_len, o) != res.module_len ||
            fclose(o) != 0) {
            fprintf(stderr, "patchbay compile: cannot write %s: %s\n", out,
                    strerror(errno));
            goto done;
        }
    } else if (fwrite(res.module, 1, res.module_len, stdout) !=
               res.module_len) {
        goto done;
    }
    if (room_path && update_room && cli_room_save(room_path, &rm, &res, &why)) {
        fprintf(stderr, "patchbay compile: %s\n", why.text);
        goto done;
    }
    if (!quiet) {
        FILE *info = out ? stdout : stderr;
        fprintf(info, "%s: ", shown);
        for (uint32_t i = 0; i < res.n_defs; i++)
            fprintf(info, "%s%s (%s)", i ? ", " : "defines ", res.defs[i].name,
                    res.defs[i].sig);
        fprintf(info,
                "%s; %zu bytes in %.1f ms (%s backend%s: compile %.1f, link "
                "%.1f)\n",
                res.is_expr  ? "an expression, run once when it commits"
                : res.n_defs ? ""
                             : "defines no vars",
                res.module_len, res.total_us / 1000.0,
                res.backend ? res.backend : "unknown",
                res.cached ? ", cached" : "", res.compile_us / 1000.0,
                res.link_us / 1000.0);
    }
    status = 0;
done:
    cc_result_free(&res);
    cc_client_free(cc);
    cli_room_free(&rm);
    pb_buf_free(&src);
    return status;
}
