/* compile.c — the compiler (cc_new) and one job from source to checked
 * side module (cc_compile): the source's size and bytes, Lisp lowered to
 * C, the pre-scan, the prelude that declares the room's vars, the cache
 * key, the backend (warm or process), the checks on the linked module
 * (checks.c) and the signature-change rule; diagnostics at the user's
 * positions come from diag.c. docs/PATCH_ABI.md is the contract. */
#include "internal.h"
#include "lisp/lisp.h"
#include "llvm/cc_llvm.h"

#include <limits.h>
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
#define CC_CACHE_VERSION "patchbay-cc 4"

struct cc_compiler {
    cc_be *be;
    char fallback[320]; /* why AUTO is not warm; "" if it is */
    cc_cache *cache;
    char abi_dir[512];
};

const char *cc_backend_name(const cc_compiler *cc)
{
    return cc->be->name;
}

void cc_backend_paths(const cc_compiler *cc, cc_paths *out)
{
    memset(out, 0, sizeof *out);
    cc->be->paths(cc->be, out);
}

const char *cc_backend_fallback(const cc_compiler *cc)
{
    return cc->fallback[0] ? cc->fallback : NULL;
}

/* The path given, else $env, else dflt; made absolute into buf when it
 * exists, so that it still names the same file from another directory
 * (the compile server leaves its start directory). */
static const char *pick(const char *given, const char *env, const char *dflt,
                        char buf[PATH_MAX])
{
    const char *e = getenv(env);
    const char *path = given && *given ? given : e && *e ? e : dflt;
    return realpath(path, buf) ? buf : path;
}

cc_compiler *cc_new(const cc_desc *desc, pb_errmsg *why)
{
    cc_desc d = desc ? *desc : (cc_desc){0};
    cc_compiler *cc = calloc(1, sizeof *cc);
    if (!cc) {
        pb_fail(why, PB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    char abi_buf[PATH_MAX], plugin_buf[PATH_MAX];
    const char *abi =
        pick(d.abi_dir, "PB_ABI_DIR", PB_DEFAULT_ABI_DIR, abi_buf);
    snprintf(cc->abi_dir, sizeof cc->abi_dir, "%s", abi);
    cc_be_desc bd = {
        .abi_dir = abi,
        .pass_plugin = pick(d.pass_plugin, "PB_PASS_PLUGIN",
                            PB_DEFAULT_PASS_PLUGIN, plugin_buf),
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
    cc_cache_free(cc->cache);
    free(cc);
}

/* ---- the prelude ------------------------------------------------------- */

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

char *cc_decl_from_sig(const char *name, const char *sig)
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

/* Text built piece by piece; the first failure sticks. */
typedef struct text {
    pb_buf buf;
    pb_err err;
} text;

static void put(text *t, const void *s, size_t n)
{
    if (!t->err)
        t->err = pb_buf_append(&t->buf, s, n);
}

static void puts_(text *t, const char *s)
{
    put(t, s, strlen(s));
}

/* Whether the prelude declares room var v: the source mentions it and
 * does not define it. */
static bool declares(const cc_scan *scan, const cc_var *v)
{
    return cc_scan_mentions(scan, v->name) && !cc_scan_find(scan, v->name);
}

/* Declares every room var the source mentions and does not define, and
 * names them in pb__room_vars for the ABI pass. */
static pb_err build_prelude(const cc_job *job, const cc_scan *scan, text *t)
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
    for (uint32_t i = 0; i < job->n_vars; i++) {
        const cc_var *v = &job->vars[i];
        if (!declares(scan, v))
            continue;
        char *made = v->decl ? NULL : cc_decl_from_sig(v->name, v->sig);
        if (!v->decl && !made)
            t->err = PB_ERR_NOMEM;
        puts_(t, v->decl ? v->decl : made ? made : "");
        free(made);
        puts_(t, ";\n");
    }
    puts_(t, "const char pb__room_vars[] = \"");
    for (uint32_t i = 0; i < job->n_vars; i++)
        if (declares(scan, &job->vars[i])) {
            puts_(t, job->vars[i].name);
            puts_(t, "\\0");
        }
    puts_(t, "\";\n");
    return t->err;
}

/* ---- expressions -------------------------------------------------------
 * A C expression becomes the pb_expr of docs/PATCH_ABI.md § Expressions.
 * Its type is taken with __typeof__ (the comma makes an array a pointer and
 * lets void through), so the expression is written twice; each copy starts
 * at #line 1, so clang reports the user's own lines and columns, and the
 * wrapper's lines are numbered as cc_user_line expects (CC_WRAPPER_LINE,
 * CC_WRAPPER_END_LINE). */
static pb_err wrap_expr(const char *src, size_t len, text *t)
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
    return t->err;
}

/* A C job that is an expression: j reads it wrapped, and knows where the
 * user's text ends. */
static pb_err wrap_c_expr(const cc_job *job, text *wrapped, cc_job_ctx *j)
{
    /* ggg(10); is ggg(10) (what people type, from a statement) */
    size_t len = job->source_len;
    while (len && strchr(" \t\r\n;", job->source[len - 1]))
        len--;
    if (wrap_expr(job->source, len, wrapped))
        return PB_ERR_NOMEM;
    j->source = (const char *)wrapped->buf.data;
    j->source_len = wrapped->buf.len;
    j->is_c_expr = j->is_expr = true;
    j->end_line = 1;
    j->end_col = 1;
    for (size_t i = 0; i < len; i++) {
        bool is_nl = job->source[i] == '\n';
        j->end_line += is_nl;
        j->end_col = is_nl ? 1 : j->end_col + 1;
    }
    return PB_OK;
}

/* ---- the job ----------------------------------------------------------- */

bool cc_has_errors(const cc_result *r)
{
    for (uint32_t i = 0; i < r->n_diags; i++)
        if (r->diags[i].severity == PB_SEV_ERROR)
            return true;
    return false;
}

/* What is wrong with the source before anything reads it: the language,
 * its size, a NUL byte. false with a diagnostic. */
static bool source_is_acceptable(const cc_job *job, cc_job_ctx *j)
{
    if (job->lang != PB_LANG_C && job->lang != PB_LANG_LISP) {
        cc_add_diag(j, PB_SEV_ERROR, 1, 1,
                    "language '%s' is not supported by this compiler yet",
                    pb_lang_name(job->lang));
        return false;
    }
    if (job->source_len > PB_MAX_SOURCE_BYTES) {
        cc_add_diag(j, PB_SEV_ERROR, 1, 1,
                    "the source is %zu bytes, at most %u", job->source_len,
                    PB_MAX_SOURCE_BYTES);
        return false;
    }
    const char *nul = memchr(job->source, '\0', job->source_len);
    if (nul) {
        uint32_t line = 1;
        for (const char *p = job->source; p < nul; p++)
            line += *p == '\n';
        cc_add_diag(j, PB_SEV_ERROR, line, 1, "the source contains a NUL byte");
        return false;
    }
    return true;
}

/* Lowers a Lisp job to C (compiler/lisp/): on success j reads the
 * generated C and maps positions back; the errors of a source that does
 * not lower are diagnostics at the Lisp positions. PB_ERR_NOMEM or PB_OK
 * (then see the diagnostics). */
static pb_err lower_lisp(const cc_job *job, lisp_arena *a, lisp_c *out,
                         cc_job_ctx *j)
{
    lisp_room_var *vars = calloc(job->n_vars ? job->n_vars : 1, sizeof *vars);
    if (!vars)
        return PB_ERR_NOMEM;
    for (uint32_t i = 0; i < job->n_vars; i++)
        vars[i] = (lisp_room_var){job->vars[i].name, job->vars[i].sig,
                                  job->vars[i].decl};
    int rc =
        lisp_to_c(a, job->source, job->source_len,
                  job->file ? job->file : "patch.cljc", vars, job->n_vars, out);
    free(vars);
    if (rc == -1)
        for (uint32_t i = 0; i < out->n_errs; i++)
            cc_add_diag(j, PB_SEV_ERROR, out->errs[i].line, out->errs[i].col,
                        "%s", out->errs[i].message);
    if (rc == 0) {
        j->source = out->c;
        j->source_len = out->len;
        j->lisp = out;
        j->is_expr = out->is_expr;
        if (job->expr && !out->is_expr)
            cc_add_diag(j, PB_SEV_ERROR, 1, 1,
                        "expected one expression, but the source has "
                        "definitions; evaluate them as definitions");
    }
    return rc == -2 ? PB_ERR_NOMEM : PB_OK;
}

/* The cache key: a hash of everything that shapes the module and the
 * result (the flags, the prelude, the C, and for Lisp the Lisp, whose
 * positions are in the diagnostics). */
static pb_err cache_key(const cc_job *job, const cc_job_ctx *j,
                        const text *prelude, uint8_t key[PB_HASH_BYTES])
{
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
    put(&k, prelude->buf.data, prelude->buf.len);
    put(&k, j->is_expr ? "\0expr\0" : "\0", j->is_expr ? 6 : 1);
    put(&k, j->source, j->source_len);
    if (j->lisp) {
        put(&k, "\0lisp\0", 6);
        put(&k, job->source, job->source_len);
    }
    if (!k.err)
        pb_hash(k.buf.data, k.buf.len, key);
    pb_buf_free(&k.buf);
    return k.err;
}

/* The backend compiles the prelude and the C, then links: out->module,
 * or diagnostics (no module), or PB_ERR_COMPILER_DOWN if the backend
 * itself failed. */
static pb_err build_module(cc_compiler *cc, cc_job_ctx *j, const text *prelude,
                           pb_errmsg *why)
{
    cc_result *out = j->r;
    char err[2048] = "";
    /* the job's flags after the fixed ones (llvm/cc_llvm_args.c) */
    char inc[600];
    snprintf(inc, sizeof inc, "-I%s", cc->abi_dir);
    const char *args[] = {inc, "-include", CC_PRELUDE_PATH, NULL};
    cc_file files[2] = {
        {CC_PRELUDE_PATH, (const char *)prelude->buf.data, prelude->buf.len},
        {CC_MAIN_PATH, j->source, j->source_len},
    };
    uint8_t *obj = NULL;
    size_t obj_len = 0;
    uint64_t t = cc_now_us();
    cc_be_status rc =
        cc->be->compile(cc->be, args, files, 2, cc_on_backend_diag, j, &obj,
                        &obj_len, err, sizeof err);
    out->compile_us = cc_now_us() - t;
    if (rc == CC_BE_FAILED)
        return pb_fail(why, PB_ERR_COMPILER_DOWN, "the compiler failed: %s",
                       err);
    if (rc != CC_BE_OK || cc_has_errors(out)) {
        free(obj);
        return PB_OK;
    }
    t = cc_now_us();
    rc = cc->be->link(cc->be, obj, obj_len, &out->module, &out->module_len, err,
                      sizeof err);
    out->link_us = cc_now_us() - t;
    free(obj);
    if (rc == CC_BE_FAILED)
        return pb_fail(why, PB_ERR_COMPILER_DOWN, "the linker failed: %s", err);
    if (rc != CC_BE_OK)
        cc_add_diag(j, PB_SEV_ERROR, 1, 1, "link failed: %s", err);
    return PB_OK;
}

pb_err cc_compile(cc_compiler *cc, const cc_job *job, cc_result *out,
                  pb_errmsg *why)
{
    memset(out, 0, sizeof *out);
    uint64_t t0 = cc_now_us();
    cc_scan scan = {0};
    cc_job_ctx j = {.r = out,
                    .scan = &scan,
                    .source = job->source,
                    .source_len = job->source_len};
    lisp_arena arena = {0};
    lisp_c lisp;
    text prelude = {0}, wrapped = {0};
    uint8_t key[PB_HASH_BYTES];
    pb_err e = PB_OK;

    if (!source_is_acceptable(job, &j))
        goto done;
    /* a Lisp job that did not lower has its diagnostics (j.lisp unset) */
    if (job->lang == PB_LANG_LISP &&
        ((e = lower_lisp(job, &arena, &lisp, &j)) || !j.lisp ||
         cc_has_errors(out)))
        goto done;
    if (job->lang == PB_LANG_C && job->expr &&
        (e = wrap_c_expr(job, &wrapped, &j)))
        goto done;
    if (cc_scan_source(j.source, j.source_len, &scan) ||
        build_prelude(job, &scan, &prelude)) {
        e = PB_ERR_NOMEM;
        goto done;
    }
    /* Said at once rather than after compiling them all (the module checks
     * say it again for definitions the pre-scan cannot see, made by
     * macros). */
    if (scan.n_defs > PB_MAX_SYMBOLS) {
        cc_add_diag(&j, PB_SEV_ERROR, 1, 1, "%u vars in one patch, at most %u",
                    scan.n_defs, PB_MAX_SYMBOLS);
        goto done;
    }
    if ((e = cache_key(job, &j, &prelude, key)))
        goto done;
    if (cc->cache && cc_cache_get(cc->cache, key, out)) {
        out->cached = true;
    } else {
        if ((e = build_module(cc, &j, &prelude, why)) || !out->module ||
            (e = cc_check_module(&j, why)))
            goto done;
        if (cc->cache && !cc_has_errors(out))
            cc_cache_put(cc->cache, key, out);
    }
    cc_check_signature_changes(job, &j);
done:
    if (e == PB_ERR_NOMEM || (j.oom && !e))
        e = pb_fail(why, PB_ERR_NOMEM, "out of memory");
    out->ok = !e && out->module && !cc_has_errors(out);
    if (!out->ok) {
        free(out->module);
        out->module = NULL;
        out->module_len = 0;
    }
    out->total_us = cc_now_us() - t0;
    out->backend = cc_backend_name(cc);
    pb_buf_free(&prelude.buf);
    pb_buf_free(&wrapped.buf);
    cc_scan_free(&scan);
    lisp_arena_free(&arena);
    return e;
}
