/* compile.c — one job from source to checked side module: pre-scan, the
 * prelude that declares the room's vars, the backend (warm or process),
 * the checks on the linked module (imports against the API list, no user
 * exports, dylink.0 first), the signature-change rule, diagnostics mapped
 * back to the user's lines, and the cache. docs/PATCH_ABI.md is the
 * contract this file enforces. */
#include "internal.h"
#include "lisp/lisp.h"
#include "llvm/cc_llvm.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#ifndef PB_DEFAULT_ABI_DIR
#define PB_DEFAULT_ABI_DIR ""
#endif
#ifndef PB_DEFAULT_PASS_PLUGIN
#define PB_DEFAULT_PASS_PLUGIN ""
#endif
/* Bump when the prelude, the pass or the checks change what a given source
 * compiles to, so that no cache returns an old module. */
#define CC_CACHE_VERSION "patchbay-cc 3"

struct cc_compiler {
    cc_be *be;
    char fallback[320]; /* why AUTO is not warm; "" if it is */
    cc_api *api;
    cc_cache *cache;
    char abi_dir[512];
};

const char *cc_backend_name(const cc_compiler *cc)
{
    return cc->be->name;
}

const char *cc_backend_fallback(const cc_compiler *cc)
{
    return cc->fallback[0] ? cc->fallback : NULL;
}

static const char *pick(const char *given, const char *env, const char *dflt)
{
    const char *e = getenv(env);
    return given && *given ? given : e && *e ? e : dflt;
}

cc_compiler *cc_new(const cc_desc *desc, pb_errmsg *why)
{
    cc_desc d = desc ? *desc : (cc_desc){0};
    cc_compiler *cc = calloc(1, sizeof *cc);
    if (!cc) {
        pb_fail(why, PB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    const char *abi = pick(d.abi_dir, "PB_ABI_DIR", PB_DEFAULT_ABI_DIR);
    snprintf(cc->abi_dir, sizeof cc->abi_dir, "%s", abi);
    char path[600];
    snprintf(path, sizeof path, "%s/api.list", abi);
    if (!(cc->api = cc_api_load(path, why)))
        goto fail;
    cc_be_desc bd = {
        .abi_dir = abi,
        .pass_plugin =
            pick(d.pass_plugin, "PB_PASS_PLUGIN", PB_DEFAULT_PASS_PLUGIN),
        .timeout_ms = d.timeout_ms ? d.timeout_ms : CC_DEFAULT_TIMEOUT_MS,
    };
    pb_errmsg warm_why = {{0}};
    if (d.backend == CC_BACKEND_PROCESS) {
        cc->be = cc_be_process_new(&bd, why);
    } else if (!(cc->be = cc_be_warm_new(&bd, &warm_why)) &&
               d.backend == CC_BACKEND_AUTO) {
        snprintf(cc->fallback, sizeof cc->fallback,
                 "warm backend unavailable (%s); using the process backend",
                 warm_why.text);
        cc->be = cc_be_process_new(&bd, why);
    } else if (!cc->be) {
        pb_fail(why, PB_ERR_INTERNAL, "%s", warm_why.text);
    }
    if (!cc->be)
        goto fail;
    if (!d.cache_disabled &&
        !(cc->cache = cc_cache_new(
              d.cache_entries ? d.cache_entries : CC_DEFAULT_CACHE_ENTRIES))) {
        pb_fail(why, PB_ERR_NOMEM, "out of memory");
        goto fail;
    }
    return cc;
fail:
    cc_free(cc);
    return NULL;
}

void cc_free(cc_compiler *cc)
{
    if (!cc)
        return;
    if (cc->be)
        cc->be->free(cc->be);
    cc_api_free(cc->api);
    cc_cache_free(cc->cache);
    free(cc);
}

/* ---- results ------------------------------------------------------------- */

static void sym_free(cc_sym *s)
{
    free(s->name);
    free(s->sig);
    free(s->decl);
    for (uint32_t i = 0; i < s->n_deps; i++)
        free(s->deps[i]);
    free(s->deps);
}

void cc_result_free(cc_result *r)
{
    if (!r)
        return;
    free(r->module);
    for (uint32_t i = 0; i < r->n_defs; i++)
        sym_free(&r->defs[i]);
    free(r->defs);
    for (uint32_t i = 0; i < r->n_uses; i++)
        sym_free(&r->uses[i]);
    free(r->uses);
    for (uint32_t i = 0; i < r->n_diags; i++)
        free(r->diags[i].message);
    free(r->diags);
    memset(r, 0, sizeof *r);
}

static int sym_copy(const cc_sym *a, cc_sym *b)
{
    memset(b, 0, sizeof *b);
    b->line = a->line;
    if ((a->name && !(b->name = cc_strdup(a->name))) ||
        (a->sig && !(b->sig = cc_strdup(a->sig))) ||
        (a->decl && !(b->decl = cc_strdup(a->decl))))
        return -1;
    if (a->n_deps) {
        if (!(b->deps = calloc(a->n_deps, sizeof *b->deps)))
            return -1;
        for (uint32_t i = 0; i < a->n_deps; i++) {
            if (!(b->deps[i] = cc_strdup(a->deps[i])))
                return -1;
            b->n_deps = i + 1;
        }
    }
    return 0;
}

int cc_result_copy(const cc_result *a, cc_result *b)
{
    memset(b, 0, sizeof *b);
    b->ok = a->ok;
    b->is_expr = a->is_expr;
    b->compile_us = a->compile_us;
    b->link_us = a->link_us;
    if (a->module_len) {
        if (!(b->module = malloc(a->module_len)))
            goto fail;
        memcpy(b->module, a->module, a->module_len);
        b->module_len = a->module_len;
    }
    const struct {
        const cc_sym *from;
        uint32_t n;
        cc_sym **to;
        uint32_t *to_n;
    } lists[] = {{a->defs, a->n_defs, &b->defs, &b->n_defs},
                 {a->uses, a->n_uses, &b->uses, &b->n_uses}};
    for (size_t l = 0; l < 2; l++) {
        if (!lists[l].n)
            continue;
        if (!(*lists[l].to = calloc(lists[l].n, sizeof(cc_sym))))
            goto fail;
        for (uint32_t i = 0; i < lists[l].n; i++) {
            *lists[l].to_n = i + 1;
            if (sym_copy(&lists[l].from[i], &(*lists[l].to)[i]))
                goto fail;
        }
    }
    if (a->n_diags) {
        if (!(b->diags = calloc(a->n_diags, sizeof *b->diags)))
            goto fail;
        for (uint32_t i = 0; i < a->n_diags; i++) {
            b->diags[i] = a->diags[i];
            b->n_diags = i + 1;
            if (!(b->diags[i].message = cc_strdup(a->diags[i].message)))
                goto fail;
        }
    }
    return 0;
fail:
    cc_result_free(b);
    return -1;
}

/* ---- diagnostics ----------------------------------------------------------
 */

typedef struct job_ctx {
    cc_result *r;
    const cc_scan *scan;
    const char *source;
    size_t source_len;
    bool oom;
    const lisp_c *lisp; /* a Lisp job: source is the generated C */
    bool is_c_expr;     /* a C expression inside the wrapper of wrap_expr */
    uint32_t end_line, end_col; /* where that expression ends */
} job_ctx;

/* The lines of the wrapper around a C expression are numbered from
 * CC_WRAPPER_LINE (#line), or from CC_WRAPPER_END_LINE right after a copy
 * of the expression, whose own lines keep their numbers: a diagnostic about
 * the wrapper is put at the start, or the end, of the expression. */
#define CC_WRAPPER_LINE     1000000u
#define CC_WRAPPER_END_LINE 2000000u

/* A position in the compiled source as the user wrote it: the same for C,
 * through the lowering's map for Lisp. line 0 (unknown) stays 0. */
static uint32_t user_pos(const job_ctx *j, uint32_t line, uint32_t *col)
{
    if (j->is_c_expr && line >= CC_WRAPPER_LINE) {
        bool is_before = line < CC_WRAPPER_END_LINE;
        if (col)
            *col = is_before ? 1 : j->end_col;
        return is_before ? 1 : j->end_line;
    }
    if (!j->lisp || !line)
        return line;
    uint32_t l, c;
    lisp_c_locate(j->lisp, line, col && *col ? *col : 1, &l, &c);
    if (col)
        *col = c;
    return l;
}

static void add_diag(job_ctx *j, pb_severity sev, uint32_t line, uint32_t col,
                     const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void add_diag(job_ctx *j, pb_severity sev, uint32_t line, uint32_t col,
                     const char *fmt, ...)
{
    cc_result *r = j->r;
    if (r->n_diags >= CC_MAX_DIAGS)
        return;
    char msg[PB_MAX_MESSAGE_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!r->diags && !(r->diags = calloc(CC_MAX_DIAGS, sizeof *r->diags))) {
        j->oom = true;
        return;
    }
    cc_diag *d = &r->diags[r->n_diags];
    if (!(d->message = cc_strdup(msg))) {
        j->oom = true;
        return;
    }
    d->line = line ? line : 1;
    d->col = col ? col : 1;
    d->severity = sev;
    r->n_diags++;
}

/* The line of the first whole-word occurrence of name in the source. */
static uint32_t line_of(const char *src, size_t len, const char *name)
{
    size_t n = strlen(name);
    uint32_t line = 1;
    for (size_t i = 0; i + n <= len; i++) {
        if (src[i] == '\n')
            line++;
        if (!memcmp(src + i, name, n) &&
            (i == 0 ||
             !(isalnum((unsigned char)src[i - 1]) || src[i - 1] == '_')) &&
            (i + n == len ||
             !(isalnum((unsigned char)src[i + n]) || src[i + n] == '_')))
            return line;
    }
    return 0;
}

/* A quoted var name in a location-less message ("function \"f\" ..."). */
static uint32_t line_of_quoted(const job_ctx *j, const char *msg)
{
    const char *q = strchr(msg, '"');
    if (!q)
        return 0;
    const char *e = strchr(q + 1, '"');
    if (!e || e - q - 1 > (ptrdiff_t)PB_MAX_NAME_BYTES)
        return 0;
    char name[PB_MAX_NAME_BYTES + 1];
    snprintf(name, sizeof name, "%.*s", (int)(e - q - 1), q + 1);
    const cc_found *f = cc_scan_find(j->scan, name);
    return user_pos(j, f ? f->line : line_of(j->source, j->source_len, name),
                    NULL);
}

static bool has_errors(const cc_result *r)
{
    for (uint32_t i = 0; i < r->n_diags; i++)
        if (r->diags[i].severity == PB_SEV_ERROR)
            return true;
    return false;
}

static void on_backend_diag(void *ctx, int severity, const char *file,
                            unsigned line, unsigned col, const char *message)
{
    job_ctx *j = ctx;
    pb_severity sev = severity >= 2   ? PB_SEV_ERROR
                      : severity == 1 ? PB_SEV_WARNING
                                      : PB_SEV_NOTE;
    if (j->lisp && sev != PB_SEV_ERROR)
        return; /* warnings about generated C would only confuse */
    if (!strcmp(file, CC_MAIN_PATH)) {
        /* after an error in a C expression, what clang says about the
         * wrapper around it only follows from that one */
        if (j->is_c_expr && line >= CC_WRAPPER_LINE && has_errors(j->r))
            return;
        line = user_pos(j, line, &col);
        /* PB_VALUE's static assertion, which clang prefixes with its
         * condition: the message is what the user needs */
        const char *quote = strchr(message, '"');
        if (j->is_c_expr && !strncmp(message, "static_assert failed", 20) &&
            quote && strstr(quote, "the value of an expression"))
            message = quote;
        for (uint32_t i = 0; i < j->r->n_diags; i++)
            if (j->r->diags[i].line == line && j->r->diags[i].col == col &&
                !strcmp(j->r->diags[i].message, message))
                return; /* the prototype and the definition of one Lisp
                           form, or the two copies of a C expression */
        add_diag(j, sev, line, col, "%s", message);
    } else if (!strcmp(file, CC_PRELUDE_PATH)) {
        add_diag(j, sev, 1, 1, "in the room's declarations: %s", message);
    } else if (file[0]) {
        const char *base = strrchr(file, '/');
        add_diag(j, sev, 1, 1, "in %s:%u: %s", base ? base + 1 : file, line,
                 message);
    } else {
        add_diag(j, sev, line_of_quoted(j, message), 1, "%s", message);
    }
}

/* ---- the prelude ------------------------------------------------------------
 */

static const char *ctype_of(char c)
{
    switch (c) {
    case 'v': return "void";
    case 'j': return "int64_t";
    case 'f': return "float";
    case 'd': return "double";
    default: return "int32_t";
    }
}

/* A C prototype from a signature, for vars whose source text is unknown. */
static char *decl_from_sig(const char *name, const char *sig)
{
    size_t cap = strlen(name) + 16 * (strlen(sig) + 1) + 16;
    char *d = malloc(cap);
    if (!d)
        return NULL;
    size_t n = (size_t)snprintf(d, cap, "%s %s(", ctype_of(sig[0]), name);
    for (size_t i = 1; sig[i]; i++)
        n += (size_t)snprintf(d + n, cap - n, "%s%s", i > 1 ? ", " : "",
                              ctype_of(sig[i]));
    snprintf(d + n, cap - n, "%s)", sig[1] ? "" : "void");
    return d;
}

typedef struct text {
    char *s;
    size_t len, cap;
    bool oom;
} text;

static void put(text *t, const char *s, size_t n)
{
    if (t->oom)
        return;
    if (t->cap - t->len < n + 1) {
        size_t cap = (t->cap + n + 1) * 2;
        char *p = realloc(t->s, cap);
        if (!p) {
            t->oom = true;
            return;
        }
        t->s = p;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void puts_(text *t, const char *s)
{
    put(t, s, strlen(s));
}

/* ---- expressions ------------------------------------------------------------
 * A C expression becomes the pb_expr of docs/PATCH_ABI.md § Expressions.
 * Its type is taken with __typeof__ (the comma makes an array a pointer and
 * lets void through), so the expression is written twice; each copy starts
 * at #line 1, so clang reports the user's own lines and columns, and the
 * wrapper's lines are numbered as user_pos expects. */
static int wrap_expr(const char *src, size_t len, text *t)
{
    static const char *const parts[] = {
        "#line 1000000\nstatic __typeof__((void)0,\n#line 1\n",
        "\n#line 2000000\n) pb__expr_value(void)\n{\n"
        "#line 1000000\n    return ((void)0,\n#line 1\n",
        "\n#line 2000000\n    );\n}\n"
        "#line 1000000\n"
        "void pb_expr(void)\n{\n    PB_VALUE(pb__expr_value());\n}\n"};
    puts_(t, parts[0]);
    put(t, src, len);
    puts_(t, parts[1]);
    put(t, src, len);
    puts_(t, parts[2]);
    return t->oom ? -1 : 0;
}

/* An expression's module defines pb_expr and nothing else; the runtime
 * runs it once, so it is not a var: defs become empty. */
static void take_expr_def(job_ctx *j)
{
    cc_result *r = j->r;
    if (r->n_defs != 1 || strcmp(r->defs[0].name, "pb_expr"))
        add_diag(j, PB_SEV_ERROR, 1, 1,
                 "an expression's module must define pb_expr and nothing "
                 "else (it defines %u vars)",
                 r->n_defs);
    for (uint32_t i = 0; i < r->n_defs; i++)
        sym_free(&r->defs[i]);
    free(r->defs);
    r->defs = NULL;
    r->n_defs = 0;
    r->is_expr = true;
}

/* Declares every room var the source mentions and does not define, and
 * names them in pb__room_vars for the ABI pass. */
static int build_prelude(const cc_job *job, const cc_scan *scan, text *t)
{
    /* PB_CHECK names the file the patch was evaluated as; patchbay.h (maybe
     * precompiled) set a default, which this replaces */
    puts_(t, "/* generated by patchbay: the room's vars this patch uses */\n"
             "#include <patchbay.h>\n#undef PB_FILE\n#define PB_FILE \"");
    for (const char *p = job->file ? job->file : "patch.c"; *p; p++) {
        char c = *p == '"' || *p == '\\' || (unsigned char)*p < 0x20 ? '_' : *p;
        put(t, &c, 1);
    }
    puts_(t, "\"\n");
    text names = {0};
    for (uint32_t i = 0; i < job->n_vars; i++) {
        const cc_var *v = &job->vars[i];
        if (!cc_scan_mentions(scan, v->name) || cc_scan_find(scan, v->name))
            continue;
        char *made = v->decl ? NULL : decl_from_sig(v->name, v->sig);
        puts_(t, v->decl ? v->decl : made ? made : "");
        free(made);
        puts_(t, ";\n");
        puts_(&names, v->name);
        puts_(&names, "\\0");
    }
    puts_(t, "const char pb__room_vars[] = \"");
    if (names.s)
        puts_(t, names.s);
    puts_(t, "\";\n");
    free(names.s);
    return t->oom || names.oom ? -1 : 0;
}

/* ---- checks on the linked module
 * --------------------------------------------- */

static bool name_is(cc_wasm_name n, const char *s)
{
    return n.len == strlen(s) && !memcmp(n.ptr, s, n.len);
}

static void check_imports(const cc_compiler *cc, const cc_wasm *w, job_ctx *j)
{
    static const char *const env_ok[] = {"memory", "__indirect_function_table",
                                         "__stack_pointer", "__memory_base",
                                         "__table_base"};
    for (uint32_t i = 0; i < w->n_imports; i++) {
        const cc_wasm_import *im = &w->imports[i];
        cc_wasm_name f = im->field;
        bool ok = false;
        if (name_is(im->module, "env")) {
            for (size_t k = 0; k < sizeof env_ok / sizeof env_ok[0]; k++)
                ok |= name_is(f, env_ok[k]);
            ok |= im->kind == 0 && cc_api_has_func(cc->api, f.ptr, f.len);
        } else if (name_is(im->module, "GOT.func")) {
            ok = cc_api_has_func(cc->api, f.ptr, f.len);
        } else if (name_is(im->module, "GOT.mem")) {
            ok = cc_api_has_data(cc->api, f.ptr, f.len);
        }
        if (ok)
            continue;
        char name[PB_MAX_NAME_BYTES * 2];
        snprintf(name, sizeof name, "%.*s",
                 (int)(f.len < sizeof name - 1 ? f.len : sizeof name - 1),
                 f.ptr);
        add_diag(j, PB_SEV_ERROR,
                 user_pos(j, line_of(j->source, j->source_len, name), NULL), 1,
                 "'%s' is not defined in this patch, not a var of the room, "
                 "and not part of the runtime API (protocol/abi/api.list)%s",
                 name,
                 !strncmp(name, "__", 2)
                     ? " — it is a compiler helper; long double and 128-bit "
                       "arithmetic are not supported"
                     : "");
    }
    if (w->too_many)
        add_diag(j, PB_SEV_ERROR, 1, 1, "the module has too many imports");
}

/* Reads pb_meta: "def NAME SIG DEPS...", "use NAME SIG", "state ...". */
static int read_meta(const cc_wasm *w, const job_ctx *j, cc_result *r)
{
    const cc_scan *scan = j->scan;
    char *meta = cc_strndup(w->meta.ptr ? w->meta.ptr : "", w->meta.len);
    if (!meta)
        return -1;
    int rc = 0;
    char *save = NULL;
    for (char *line = strtok_r(meta, "\n", &save); line && !rc;
         line = strtok_r(NULL, "\n", &save)) {
        char *words[PB_MAX_SYMBOLS + 3];
        uint32_t n = 0;
        char *s2 = NULL;
        for (char *wd = strtok_r(line, " ", &s2); wd && n < PB_MAX_SYMBOLS + 3;
             wd = strtok_r(NULL, " ", &s2))
            words[n++] = wd;
        bool def = n >= 3 && !strcmp(words[0], "def");
        bool use = n >= 3 && !strcmp(words[0], "use");
        if (!def && !use)
            continue;
        cc_sym **list = def ? &r->defs : &r->uses;
        uint32_t *cnt = def ? &r->n_defs : &r->n_uses;
        cc_sym *grown = realloc(*list, (*cnt + 1) * sizeof **list);
        if (!grown) {
            rc = -1;
            break;
        }
        *list = grown;
        cc_sym *s = &grown[(*cnt)++];
        memset(s, 0, sizeof *s);
        s->name = cc_strdup(words[1]);
        s->sig = cc_strdup(words[2]);
        if (!s->name || !s->sig)
            rc = -1;
        if (def && n > 3 && !rc) {
            if (!(s->deps = calloc(n - 3, sizeof *s->deps)))
                rc = -1;
            for (uint32_t k = 3; k < n && !rc; k++) {
                if (!(s->deps[s->n_deps] = cc_strdup(words[k])))
                    rc = -1;
                else
                    s->n_deps++;
            }
        }
        if (def && !rc) {
            const cc_found *f = cc_scan_find(scan, s->name);
            s->line = user_pos(j, f ? f->line : 0, NULL);
            s->decl = f ? cc_strdup(f->decl) : decl_from_sig(s->name, s->sig);
            if (!s->decl)
                rc = -1;
        }
    }
    free(meta);
    return rc;
}

static void check_defs(const cc_compiler *cc, job_ctx *j)
{
    cc_result *r = j->r;
    if (r->n_defs > PB_MAX_SYMBOLS)
        add_diag(j, PB_SEV_ERROR, 1, 1, "%u vars in one patch, at most %u",
                 r->n_defs, PB_MAX_SYMBOLS);
    for (uint32_t i = 0; i < r->n_defs; i++) {
        const cc_sym *s = &r->defs[i];
        if (!strcmp(s->name, "pb_expr"))
            add_diag(j, PB_SEV_ERROR, s->line, 1,
                     "'pb_expr' is the entry of an expression's patch "
                     "(docs/PATCH_ABI.md § Expressions); choose another "
                     "name");
        else if (cc_api_has_func(cc->api, s->name, strlen(s->name)) ||
                 cc_api_has_data(cc->api, s->name, strlen(s->name)))
            add_diag(j, PB_SEV_ERROR, s->line, 1,
                     "'%s' is part of the runtime API and cannot be "
                     "redefined; rename your function",
                     s->name);
        else if (strlen(s->name) > PB_MAX_NAME_BYTES)
            add_diag(j, PB_SEV_ERROR, s->line, 1,
                     "the var name '%.40s…' is longer than %u bytes", s->name,
                     PB_MAX_NAME_BYTES);
        else if (strlen(s->sig) > PB_MAX_TYPE_BYTES)
            add_diag(j, PB_SEV_ERROR, s->line, 1,
                     "'%s' has more parameters than a var may have", s->name);
    }
}

static bool defines(const cc_result *r, const char *name)
{
    for (uint32_t i = 0; i < r->n_defs; i++)
        if (!strcmp(r->defs[i].name, name))
            return true;
    return false;
}

/* A var whose signature changes while a var this patch does not redefine
 * still calls it would trap at run time (call_indirect type mismatch):
 * refuse it and name the callers. */
static void check_signature_changes(const cc_job *job, job_ctx *j)
{
    cc_result *r = j->r;
    for (uint32_t i = 0; i < r->n_defs; i++) {
        const cc_sym *d = &r->defs[i];
        const cc_var *old = NULL;
        for (uint32_t k = 0; k < job->n_vars && !old; k++)
            if (!strcmp(job->vars[k].name, d->name))
                old = &job->vars[k];
        if (!old || !strcmp(old->sig, d->sig))
            continue;
        char callers[512] = "";
        size_t n = 0;
        for (uint32_t k = 0; k < job->n_vars; k++) {
            const cc_var *v = &job->vars[k];
            if (defines(r, v->name))
                continue;
            for (uint32_t m = 0; m < v->n_deps; m++)
                if (!strcmp(v->deps[m], d->name) && n < sizeof callers - 80)
                    n += (size_t)snprintf(callers + n, sizeof callers - n,
                                          "%s%s", n ? ", " : "", v->name);
        }
        if (n)
            add_diag(j, PB_SEV_ERROR, d->line, 1,
                     "changing the signature of '%s' (%s to %s) would break "
                     "the vars that call it: %s; redefine them in the same "
                     "patch",
                     d->name, old->sig, d->sig, callers);
    }
}

/* ---- the job
 * ------------------------------------------------------------------ */

/* Lowers a Lisp job to C (compiler/lisp/): on success j reads the
 * generated C and maps positions back; on errors they are diagnostics at
 * the Lisp positions. Returns 0, -1 (errors) or -2 (out of memory). */
static int lower_lisp(const cc_job *job, lisp_arena *a, lisp_c *out,
                      job_ctx *j)
{
    lisp_room_var *vars = calloc(job->n_vars ? job->n_vars : 1, sizeof *vars);
    if (!vars)
        return -2;
    for (uint32_t i = 0; i < job->n_vars; i++)
        vars[i] = (lisp_room_var){job->vars[i].name, job->vars[i].sig,
                                  job->vars[i].decl};
    int rc = lisp_to_c(a, job->source, job->source_len,
                       job->file ? job->file : "patch.cljc", vars, job->n_vars,
                       out);
    free(vars);
    if (rc == -1)
        for (uint32_t i = 0; i < out->n_errs; i++)
            add_diag(j, PB_SEV_ERROR, out->errs[i].line, out->errs[i].col, "%s",
                     out->errs[i].message);
    if (rc == 0) {
        j->source = out->c;
        j->source_len = out->len;
        j->lisp = out;
    }
    return rc;
}

pb_err cc_compile(cc_compiler *cc, const cc_job *job, cc_result *out,
                  pb_errmsg *why)
{
    memset(out, 0, sizeof *out);
    uint64_t t0 = cc_now_us();
    job_ctx j = {
        .r = out, .source = job->source, .source_len = job->source_len};
    lisp_arena arena = {0};
    lisp_c lisp;
    cc_scan scan = {0};
    text prelude = {0}, wrapped = {0};
    uint8_t *obj = NULL;
    size_t obj_len = 0;
    pb_err e = PB_OK;
    char err[2048] = "";
    j.scan = &scan;

    if (job->lang != PB_LANG_C && job->lang != PB_LANG_LISP) {
        add_diag(&j, PB_SEV_ERROR, 1, 1,
                 "language '%s' is not supported by this compiler yet",
                 pb_lang_name(job->lang));
        goto done;
    }
    if (job->source_len > PB_MAX_SOURCE_BYTES) {
        add_diag(&j, PB_SEV_ERROR, 1, 1, "the source is %zu bytes, at most %u",
                 job->source_len, PB_MAX_SOURCE_BYTES);
        goto done;
    }
    const char *nul = memchr(job->source, '\0', job->source_len);
    if (nul) {
        uint32_t line = 1;
        for (const char *p = job->source; p < nul; p++)
            line += *p == '\n';
        add_diag(&j, PB_SEV_ERROR, line, 1, "the source contains a NUL byte");
        goto done;
    }
    if (job->lang == PB_LANG_LISP) {
        int lr = lower_lisp(job, &arena, &lisp, &j);
        if (lr == -2) {
            e = pb_fail(why, PB_ERR_NOMEM, "out of memory");
            goto done;
        }
        if (lr)
            goto done;
        if (job->expr && !lisp.is_expr) {
            add_diag(&j, PB_SEV_ERROR, 1, 1,
                     "expected one expression, but the source has "
                     "definitions; evaluate them as definitions");
            goto done;
        }
    } else if (job->expr) {
        /* ggg(10); is ggg(10) (what people type, from a statement) */
        size_t len = job->source_len;
        while (len && strchr(" \t\r\n;", job->source[len - 1]))
            len--;
        if (wrap_expr(job->source, len, &wrapped)) {
            e = pb_fail(why, PB_ERR_NOMEM, "out of memory");
            goto done;
        }
        j.source = wrapped.s;
        j.source_len = wrapped.len;
        j.is_c_expr = true;
        j.end_line = 1;
        j.end_col = 1;
        for (size_t i = 0; i < len; i++) {
            bool is_nl = job->source[i] == '\n';
            j.end_line += is_nl;
            j.end_col = is_nl ? 1 : j.end_col + 1;
        }
    }
    bool is_expr = j.is_c_expr || (j.lisp && j.lisp->is_expr);
    if (cc_scan_source(j.source, j.source_len, &scan) ||
        build_prelude(job, &scan, &prelude)) {
        e = pb_fail(why, PB_ERR_NOMEM, "out of memory");
        goto done;
    }
    /* Said at once rather than after compiling them all (check_defs says
     * it again for definitions the pre-scan cannot see, made by macros). */
    if (scan.n_defs > PB_MAX_SYMBOLS) {
        add_diag(&j, PB_SEV_ERROR, 1, 1, "%u vars in one patch, at most %u",
                 scan.n_defs, PB_MAX_SYMBOLS);
        goto done;
    }

    /* The cache key covers everything that shapes the module. */
    uint8_t key[PB_HASH_BYTES];
    text k = {0};
    puts_(&k, CC_CACHE_VERSION "\n");
    for (const char *const *a = cc_llvm_base_compile_args(); *a; a++) {
        puts_(&k, *a);
        puts_(&k, "\n");
    }
    for (const char *const *a = cc_llvm_base_link_args(); *a; a++) {
        puts_(&k, *a);
        puts_(&k, "\n");
    }
    put(&k, prelude.s, prelude.len);
    put(&k, is_expr ? "\0expr\0" : "\0", is_expr ? 6 : 1);
    put(&k, j.source, j.source_len);
    if (j.lisp) { /* the Lisp positions are part of the result */
        put(&k, "\0lisp\0", 6);
        put(&k, job->source, job->source_len);
    }
    pb_hash(k.s, k.len, key);
    free(k.s);
    if (cc->cache && cc_cache_get(cc->cache, key, out)) {
        out->cached = true;
        goto checks;
    }

    /* the job's flags after the fixed ones (llvm/cc_llvm_args.c) */
    char inc[600];
    snprintf(inc, sizeof inc, "-I%s", cc->abi_dir);
    const char *args[] = {inc, "-include", CC_PRELUDE_PATH, NULL};
    cc_file files[2] = {
        {CC_PRELUDE_PATH, prelude.s, prelude.len},
        {CC_MAIN_PATH, j.source, j.source_len},
    };
    uint64_t t1 = cc_now_us();
    int rc = cc->be->compile(cc->be, args, files, 2, on_backend_diag, &j, &obj,
                             &obj_len, err, sizeof err);
    out->compile_us = cc_now_us() - t1;
    if (rc == -2) {
        e = pb_fail(why, PB_ERR_COMPILER_DOWN, "the compiler failed: %s", err);
        goto done;
    }
    if (rc != 0 || has_errors(out))
        goto done;
    t1 = cc_now_us();
    rc = cc->be->link(cc->be, obj, obj_len, &out->module, &out->module_len, err,
                      sizeof err);
    out->link_us = cc_now_us() - t1;
    if (rc == -2) {
        e = pb_fail(why, PB_ERR_COMPILER_DOWN, "the linker failed: %s", err);
        goto done;
    }
    if (rc != 0) {
        add_diag(&j, PB_SEV_ERROR, 1, 1, "link failed: %s", err);
        goto done;
    }
    if (out->module_len > PB_MAX_MODULE_BYTES) {
        add_diag(&j, PB_SEV_ERROR, 1, 1,
                 "the module is %zu bytes, at most %u (large static arrays?)",
                 out->module_len, PB_MAX_MODULE_BYTES);
        goto done;
    }
    cc_wasm w;
    if (cc_wasm_parse(out->module, out->module_len, &w) || !w.has_dylink) {
        e = pb_fail(why, PB_ERR_INTERNAL,
                    "the linker produced a module without dylink.0");
        goto done;
    }
    for (uint32_t i = 0; i < w.n_exports; i++)
        if (w.exports[i].len < 2 || memcmp(w.exports[i].ptr, "__", 2)) {
            e = pb_fail(why, PB_ERR_INTERNAL,
                        "the module exports '%.*s' (the ABI pass should "
                        "have hidden it)",
                        (int)w.exports[i].len, w.exports[i].ptr);
            goto done;
        }
    check_imports(cc, &w, &j);
    if (read_meta(&w, &j, out)) {
        e = pb_fail(why, PB_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (is_expr)
        take_expr_def(&j);
    else
        check_defs(cc, &j);
    out->ok = !has_errors(out);
    if (cc->cache && out->ok)
        cc_cache_put(cc->cache, key, out);
checks:
    check_signature_changes(job, &j);
done:
    if (j.oom && !e)
        e = pb_fail(why, PB_ERR_NOMEM, "out of memory");
    out->ok = !e && out->module && !has_errors(out);
    if (!out->ok) {
        free(out->module);
        out->module = NULL;
        out->module_len = 0;
    }
    out->total_us = cc_now_us() - t0;
    free(obj);
    free(prelude.s);
    free(wrapped.s);
    cc_scan_free(&scan);
    lisp_arena_free(&arena);
    return e;
}
