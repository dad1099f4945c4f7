/* index.c — the room's vars as an editor asks about them (completions,
 * lookup, info, eldoc): from every patch the room sends — its catch-up and
 * each live patch — the vars its statement names, with what its source
 * says of each: for Lisp the form (name as written, arglists, docstring),
 * for C the prototype and the definition. A later patch's definition of a
 * var replaces the earlier one, as in the room. Expressions define nothing. */
#include "internal.h"

#include "cc.h"

#include <stdlib.h>
#include <string.h>

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void var_clear(nrepl_var *v)
{
    free(v->arglists);
    free(v->doc);
    free(v->source);
    memset(v, 0, sizeof *v);
}

void index_free(nrepl_index *ix)
{
    for (uint32_t i = 0; i < ix->n; i++)
        var_clear(&ix->vars[i]);
    free(ix->vars);
    memset(ix, 0, sizeof *ix);
}

/* The entry for C name, new or emptied for a new definition. */
static nrepl_var *var_slot(nrepl_index *ix, pb_str name)
{
    for (uint32_t i = 0; i < ix->n; i++)
        if (pb_str_eq(name, ix->vars[i].name)) {
            var_clear(&ix->vars[i]);
            if (pb_str_copy(ix->vars[i].name, sizeof ix->vars[i].name, name))
                return NULL;
            return &ix->vars[i];
        }
    if (ix->n == ix->cap) {
        uint32_t cap = ix->cap ? ix->cap * 2 : 32;
        nrepl_var *v = realloc(ix->vars, cap * sizeof *v);
        if (!v)
            return NULL;
        ix->vars = v;
        ix->cap = cap;
    }
    nrepl_var *v = &ix->vars[ix->n];
    memset(v, 0, sizeof *v);
    if (pb_str_copy(v->name, sizeof v->name, name))
        return NULL;
    ix->n++;
    return v;
}

/* Is c_name the var Lisp name lname defines (itself, or one arity of it:
 * area__2)? */
static bool defines(const char *lname, const char *c_name)
{
    char c[PB_MAX_NAME_BYTES + 1];
    if (!cc_lisp_c_name(lname, c, sizeof c))
        return false;
    size_t n = strlen(c);
    return !strncmp(c_name, c, n) &&
           (!c_name[n] || (c_name[n] == '_' && c_name[n + 1] == '_'));
}

/* The line of byte off in src. */
static uint32_t line_of(const char *src, size_t off)
{
    uint32_t line = 1;
    for (size_t i = 0; i < off; i++)
        line += src[i] == '\n';
    return line;
}

static void from_lisp(nrepl_var *v, const char *src, size_t len)
{
    nrepl_form forms[256];
    char err[128];
    int n = forms_split(src, len, forms, 256, err, sizeof err);
    for (int i = 0; i < n; i++) {
        if (forms[i].kind != FORM_DEFINITION ||
            !defines(forms[i].name, v->name))
            continue;
        snprintf(v->lname, sizeof v->lname, "%s", forms[i].name);
        forms_def_info(src, &forms[i], &v->arglists, &v->doc);
        v->source = dup_n(src + forms[i].from, forms[i].to - forms[i].from);
        v->line = forms[i].line;
        return;
    }
}

/* A C definition of name: from the start of its line to its closing brace;
 * the prototype is the text up to its closing parenthesis. */
static void from_c(nrepl_var *v, const char *src, size_t len)
{
    size_t n = strlen(v->name);
    for (size_t i = 0; i + n < len; i++) {
        unsigned char b = i ? (unsigned char)src[i - 1] : ' ';
        bool starts = !(b == '_' || (unsigned)((b | 32) - 'a') < 26u ||
                        (unsigned)(b - '0') < 10u);
        if (!starts || memcmp(src + i, v->name, n))
            continue;
        size_t p = i + n;
        while (p < len && (src[p] == ' ' || src[p] == '\t'))
            p++;
        if (p >= len || src[p] != '(')
            continue;
        size_t line = i;
        while (line > 0 && src[line - 1] != '\n')
            line--;
        const char *close = memchr(src + p, ')', len - p);
        const char *open =
            close ? memchr(close, '{', len - (size_t)(close - src)) : NULL;
        if (!open)
            continue;
        int depth = 0;
        size_t e = (size_t)(open - src);
        for (; e < len; e++) {
            depth += src[e] == '{';
            depth -= src[e] == '}';
            if (!depth)
                break;
        }
        v->arglists = dup_n(src + line, (size_t)(close - src) + 1 - line);
        v->source = dup_n(src + line, (e < len ? e + 1 : len) - line);
        v->line = line_of(src, line);
        return;
    }
}

void index_add_patch(nrepl_index *ix, const pb_patch *p)
{
    pb_statement st;
    if (pb_statement_decode(p->stmt.ptr, p->stmt.len, &st, NULL))
        return;
    for (uint32_t i = 0; st.kind == PB_KIND_DEFS && i < st.n_symbols; i++) {
        nrepl_var *v = var_slot(ix, st.symbols[i].name);
        if (!v)
            break;
        if (pb_str_copy(v->sig, sizeof v->sig, st.symbols[i].type) ||
            pb_str_copy(v->author, sizeof v->author, st.author))
            v->author[0] = '\0';
        snprintf(v->lang, sizeof v->lang, "%s", pb_lang_name(st.lang));
        v->seq = st.seq;
        if (st.seq > ix->seq)
            ix->seq = st.seq;
        if (p->source.ptr && st.lang == PB_LANG_LISP)
            from_lisp(v, p->source.ptr, p->source.len);
        else if (p->source.ptr)
            from_c(v, p->source.ptr, p->source.len);
    }
    pb_statement_free(&st);
}

const nrepl_var *index_find(const nrepl_index *ix, const char *name)
{
    for (uint32_t i = 0; i < ix->n; i++)
        if (!strcmp(ix->vars[i].lname, name))
            return &ix->vars[i];
    for (uint32_t i = 0; i < ix->n; i++)
        if (!strcmp(ix->vars[i].name, name))
            return &ix->vars[i];
    return NULL;
}
