/* checks.c — what compile.c checks on a linked module before it is a
 * patch (docs/PATCH_ABI.md is the contract): its size and dylink.0, no
 * exports but the linker's, imports only from the runtime's API
 * (protocol/abi/api.list) or the room's vars, the vars it defines and uses
 * (its pb_meta section), and the signature-change rule. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static void check_imports(const cc_wasm *w, cc_job_ctx *j)
{
    for (uint32_t i = 0; i < w->n_imports; i++) {
        const cc_wasm_import *im = &w->imports[i];
        pb_str f = im->field;
        if (pb_abi_import_allowed(im->module, f, im->kind))
            continue;
        char name[PB_MAX_NAME_BYTES * 2];
        snprintf(name, sizeof name, "%.*s",
                 (int)(f.len < sizeof name - 1 ? f.len : sizeof name - 1),
                 f.ptr);
        cc_add_diag(
            j, PB_SEV_ERROR,
            cc_user_line(j, cc_line_of(j->source, j->source_len, name), NULL),
            1,
            "'%s' is not defined in this patch, not a var of the room, "
            "and not part of the runtime API (protocol/abi/api.list)%s",
            name,
            !strncmp(name, "__", 2)
                ? " — it is a compiler helper; long double and 128-bit "
                  "arithmetic are not supported"
                : "");
    }
    if (w->too_many)
        cc_add_diag(j, PB_SEV_ERROR, 1, 1, "the module has too many imports");
}

/* Reads pb_meta: "def NAME SIG DEPS...", "use NAME SIG", "state ...". */
static int read_meta(const cc_wasm *w, const cc_job_ctx *j, cc_result *r)
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
            s->line = cc_user_line(j, f ? f->line : 0, NULL);
            s->decl =
                f ? cc_strdup(f->decl) : cc_decl_from_sig(s->name, s->sig);
            if (!s->decl)
                rc = -1;
        }
    }
    free(meta);
    return rc;
}

static void check_defs(cc_job_ctx *j)
{
    cc_result *r = j->r;
    if (r->n_defs > PB_MAX_SYMBOLS)
        cc_add_diag(j, PB_SEV_ERROR, 1, 1, "%u vars in one patch, at most %u",
                    r->n_defs, PB_MAX_SYMBOLS);
    for (uint32_t i = 0; i < r->n_defs; i++) {
        const cc_sym *s = &r->defs[i];
        if (!strcmp(s->name, "pb_expr"))
            cc_add_diag(j, PB_SEV_ERROR, s->line, 1,
                        "'pb_expr' is the entry of an expression's patch "
                        "(docs/PATCH_ABI.md § Expressions); choose another "
                        "name");
        else if (pb_abi_has(pb_cstr(s->name), false) ||
                 pb_abi_has(pb_cstr(s->name), true))
            cc_add_diag(j, PB_SEV_ERROR, s->line, 1,
                        "'%s' is part of the runtime API and cannot be "
                        "redefined; rename your function",
                        s->name);
        else if (strlen(s->name) > PB_MAX_NAME_BYTES)
            cc_add_diag(j, PB_SEV_ERROR, s->line, 1,
                        "the var name '%.40s…' is longer than %u bytes",
                        s->name, PB_MAX_NAME_BYTES);
        else if (strlen(s->sig) > PB_MAX_TYPE_BYTES)
            cc_add_diag(j, PB_SEV_ERROR, s->line, 1,
                        "'%s' has more parameters than a var may have",
                        s->name);
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
void cc_check_signature_changes(const cc_job *job, cc_job_ctx *j)
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
            cc_add_diag(j, PB_SEV_ERROR, d->line, 1,
                        "changing the signature of '%s' (%s to %s) would break "
                        "the vars that call it: %s; redefine them in the same "
                        "patch",
                        d->name, old->sig, d->sig, callers);
    }
}

/* An expression's module defines pb_expr and nothing else; the runtime
 * runs it once, so it is not a var: defs become empty. */
static void take_expr_def(cc_job_ctx *j)
{
    cc_result *r = j->r;
    if (r->n_defs != 1 || strcmp(r->defs[0].name, "pb_expr"))
        cc_add_diag(j, PB_SEV_ERROR, 1, 1,
                    "an expression's module must define pb_expr and nothing "
                    "else (it defines %u vars)",
                    r->n_defs);
    for (uint32_t i = 0; i < r->n_defs; i++)
        cc_sym_free(&r->defs[i]);
    free(r->defs);
    r->defs = NULL;
    r->n_defs = 0;
    r->is_expr = true;
}

pb_err cc_check_module(cc_job_ctx *j, pb_errmsg *why)
{
    cc_result *out = j->r;
    if (out->module_len > PB_MAX_MODULE_BYTES) {
        cc_add_diag(
            j, PB_SEV_ERROR, 1, 1,
            "the module is %zu bytes, at most %u (large static arrays?)",
            out->module_len, PB_MAX_MODULE_BYTES);
        return PB_OK;
    }
    cc_wasm w;
    if (cc_wasm_parse(out->module, out->module_len, &w) || !w.has_dylink)
        return pb_fail(why, PB_ERR_INTERNAL,
                       "the linker produced a module without dylink.0");
    /* Only what the linker makes (the link flags export nothing else, and
     * the ABI pass refuses user definitions of reserved names): anything
     * more would enter the runtime's global symbol table. */
    for (uint32_t i = 0; i < w.n_exports; i++)
        if (!pb_str_eq(w.exports[i], "__wasm_call_ctors"))
            return pb_fail(why, PB_ERR_INTERNAL,
                           "the module exports '%.*s' (the ABI pass should "
                           "have hidden it)",
                           (int)w.exports[i].len, w.exports[i].ptr);
    check_imports(&w, j);
    if (read_meta(&w, j, out))
        return pb_fail(why, PB_ERR_NOMEM, "out of memory");
    if (j->is_expr)
        take_expr_def(j);
    else
        check_defs(j);
    return PB_OK;
}
