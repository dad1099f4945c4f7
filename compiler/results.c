/* results.c — a job's result (cc_result, cc.h): freeing it and the deep
 * copy the cache keeps. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

void cc_sym_free(cc_sym *s)
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
        cc_sym_free(&r->defs[i]);
    free(r->defs);
    for (uint32_t i = 0; i < r->n_uses; i++)
        cc_sym_free(&r->uses[i]);
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
    b->backend = a->backend;
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
