/* cmd_compile.c — `patchbay compile`: compile one patch with the compiler
 * library, print diagnostics in the file:line:col form editors parse, and
 * write the side module. A room file (--room) stands in for a relay's var
 * table so that patches can be compiled against earlier ones offline. */
#include "cli.h"
#include "cc.h"

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
        "\n"
        "options:\n"
        "  -o OUT              write the module to OUT (default: FILE with "
        ".wasm)\n"
        "  --backend B         warm (clang and lld in this process) or "
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

/* Room file: one var per line, NAME<TAB>SIG<TAB>DEP,DEP<TAB>DECL. */
typedef struct room {
    cc_var *vars;
    char **lines;
    uint32_t n;
} room;

static char *slurp(FILE *f, size_t *len)
{
    size_t cap = 65536, n = 0, got;
    char *buf = malloc(cap + 1);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *b = realloc(buf, (cap *= 2) + 1);
            if (!b)
                free(buf);
            buf = b;
        }
    }
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

static int room_load(const char *path, room *r)
{
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : -1;
    size_t len;
    char *all = slurp(f, &len);
    fclose(f);
    if (!all)
        return -1;
    char *save = NULL;
    for (char *line = strtok_r(all, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *fields[4] = {0};
        char *s2 = NULL;
        int k = 0;
        for (char *p = line; k < 4; k++) {
            fields[k] = p;
            p = strchr(p, '\t');
            if (!p)
                break;
            *p++ = '\0';
        }
        (void)s2;
        if (!fields[1])
            continue;
        r->vars = realloc(r->vars, (r->n + 1) * sizeof *r->vars);
        cc_var *v = &r->vars[r->n++];
        memset(v, 0, sizeof *v);
        v->name = strdup(fields[0]);
        v->sig = strdup(fields[1]);
        v->decl = fields[3] && *fields[3] ? strdup(fields[3]) : NULL;
        if (fields[2] && *fields[2]) {
            char **deps = NULL;
            uint32_t nd = 0;
            char *s3 = NULL;
            for (char *d = strtok_r(fields[2], ",", &s3); d;
                 d = strtok_r(NULL, ",", &s3)) {
                deps = realloc(deps, (nd + 1) * sizeof *deps);
                deps[nd++] = strdup(d);
            }
            v->deps = (const char *const *)deps;
            v->n_deps = nd;
        }
    }
    free(all);
    return 0;
}

static void room_free(room *r)
{
    for (uint32_t i = 0; i < r->n; i++) {
        free((char *)r->vars[i].name);
        free((char *)r->vars[i].sig);
        free((char *)r->vars[i].decl);
        for (uint32_t k = 0; k < r->vars[i].n_deps; k++)
            free((char *)r->vars[i].deps[k]);
        free((void *)r->vars[i].deps);
    }
    free(r->vars);
}

static int room_save(const char *path, const room *r, const cc_result *res)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    for (uint32_t i = 0; i < r->n; i++) {
        const cc_var *v = &r->vars[i];
        bool replaced = false;
        for (uint32_t k = 0; k < res->n_defs; k++)
            replaced |= !strcmp(res->defs[k].name, v->name);
        if (replaced)
            continue;
        fprintf(f, "%s\t%s\t", v->name, v->sig);
        for (uint32_t k = 0; k < v->n_deps; k++)
            fprintf(f, "%s%s", k ? "," : "", v->deps[k]);
        fprintf(f, "\t%s\n", v->decl ? v->decl : "");
    }
    for (uint32_t i = 0; i < res->n_defs; i++) {
        const cc_sym *s = &res->defs[i];
        fprintf(f, "%s\t%s\t", s->name, s->sig);
        for (uint32_t k = 0; k < s->n_deps; k++)
            fprintf(f, "%s%s", k ? "," : "", s->deps[k]);
        fprintf(f, "\t%s\n", s->decl ? s->decl : "");
    }
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

int cmd_compile(int argc, char **argv)
{
    const char *in = NULL, *out = NULL, *room_path = NULL;
    bool update_room = false, quiet = false, expr = false;
    pb_lang lang = PB_LANG_NONE;
    cc_desc desc = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-o") && i + 1 < argc) {
            out = argv[++i];
        } else if (!strcmp(a, "--backend") && i + 1 < argc) {
            const char *b = argv[++i];
            if (!strcmp(b, "warm"))
                desc.backend = CC_BACKEND_WARM;
            else if (!strcmp(b, "process"))
                desc.backend = CC_BACKEND_PROCESS;
            else {
                fprintf(stderr,
                        "patchbay compile: unknown backend \"%s\" (warm or "
                        "process)\n",
                        b);
                return 2;
            }
        } else if (!strcmp(a, "--lang") && i + 1 < argc) {
            lang = pb_lang_parse(pb_cstr(argv[++i]));
            if (!lang) {
                fprintf(stderr,
                        "patchbay compile: --lang is c or lisp, not \"%s\"\n",
                        argv[i]);
                return 2;
            }
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
            fprintf(stderr,
                    "patchbay compile: unknown option \"%s\" (see --help)\n",
                    a);
            return 2;
        } else if (!in) {
            in = a;
        } else {
            fprintf(stderr, "patchbay compile: one FILE at a time (\"%s\")\n",
                    a);
            return 2;
        }
    }
    if (!in) {
        usage(stderr);
        return 2;
    }
    if (update_room && !room_path) {
        fprintf(stderr, "patchbay compile: --update-room needs --room FILE\n");
        return 2;
    }
    bool from_stdin = !strcmp(in, "-");
    const char *shown = from_stdin ? "<stdin>" : in;
    FILE *f = from_stdin ? stdin : fopen(in, "rb");
    if (!f) {
        fprintf(stderr, "patchbay compile: cannot read %s: %s\n", in,
                strerror(errno));
        return 2;
    }
    size_t len = 0;
    char *src = slurp(f, &len);
    if (!from_stdin)
        fclose(f);
    if (!src) {
        fprintf(stderr, "patchbay compile: out of memory reading %s\n", shown);
        return 3;
    }
    char outbuf[4200];
    if (!out && !from_stdin) {
        const char *dot = strrchr(in, '.');
        size_t stem =
            dot && !strchr(dot, '/') ? (size_t)(dot - in) : strlen(in);
        snprintf(outbuf, sizeof outbuf, "%.*s.wasm", (int)stem, in);
        out = outbuf;
    }
    room rm = {0};
    if (room_path && room_load(room_path, &rm)) {
        fprintf(stderr, "patchbay compile: cannot read room file %s: %s\n",
                room_path, strerror(errno));
        free(src);
        return 2;
    }
    pb_errmsg why = {{0}};
    int status = 3;
    cc_compiler *cc = cc_new(&desc, &why);
    cc_result res = {0};
    if (!cc) {
        fprintf(stderr, "patchbay compile: %s\n", why.text);
        goto done;
    }
    if (cc_backend_fallback(cc))
        fprintf(stderr, "patchbay compile: %s\n", cc_backend_fallback(cc));
    cc_job job = {
        cli_lang_of(shown, lang), shown, src, len, rm.vars, rm.n, expr};
    pb_err e = cc_compile(cc, &job, &res, &why);
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
    if (room_path && update_room && room_save(room_path, &rm, &res)) {
        fprintf(stderr, "patchbay compile: cannot write room file %s: %s\n",
                room_path, strerror(errno));
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
                res.module_len, res.total_us / 1000.0, cc_backend_name(cc),
                res.cached ? ", cached" : "", res.compile_us / 1000.0,
                res.link_us / 1000.0);
    }
    status = 0;
done:
    cc_result_free(&res);
    cc_free(cc);
    room_free(&rm);
    free(src);
    return status;
}

/* `patchbay cc-server`: the compile server, started by `serve` (and by
 * cc_client). Jobs arrive on stdin, results leave on stdout. */
int cmd_cc_server(int argc, char **argv)
{
    cc_desc desc = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: patchbay cc-server [--backend warm|process] "
                   "[--timeout-ms N]\n\n"
                   "The compile server: reads length-prefixed msgpack jobs on "
                   "stdin and writes\nresults on stdout, one at a time. "
                   "Without --backend it uses the warm backend,\nor the "
                   "process backend (with one line on stderr saying why) if "
                   "the warm one\ncannot load. "
                   "`patchbay serve` starts and supervises it;\nthere is no "
                   "need to run it by hand.\n");
            return 0;
        } else if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
            const char *b = argv[++i];
            if (strcmp(b, "warm") && strcmp(b, "process")) {
                fprintf(stderr, "patchbay cc-server: unknown backend \"%s\"\n",
                        b);
                return 2;
            }
            desc.backend =
                !strcmp(b, "process") ? CC_BACKEND_PROCESS : CC_BACKEND_WARM;
        } else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc) {
            char *end;
            unsigned long ms = strtoul(argv[++i], &end, 10);
            if (*end || ms == 0 || ms > 600000) {
                fprintf(stderr,
                        "patchbay cc-server: --timeout-ms wants 1..600000, "
                        "got \"%s\"\n",
                        argv[i]);
                return 2;
            }
            desc.timeout_ms = (uint32_t)ms;
        } else {
            fprintf(stderr,
                    "patchbay cc-server: unknown argument \"%s\" (see "
                    "--help)\n",
                    argv[i]);
            return 2;
        }
    }
    return cc_server_run(0, 1, &desc);
}
