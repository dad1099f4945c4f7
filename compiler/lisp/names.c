/* names.c — Lisp names: symbols, their C spelling (docs/LISP.md § Names),
 * which names may be defined or bound, and where a name used in code is
 * found (a local, or defonce state). */
#include "lower.h"

#include "cc.h"

#include <stdlib.h>
#include <string.h>

bool lower_is_sym(const lisp_node *n, const char *s)
{
    return n && n->kind == LISP_SYM && n->len == strlen(s) &&
           !memcmp(n->s, s, n->len);
}

bool lower_sym_eq(const char *a, uint32_t al, const char *b, uint32_t bl)
{
    return al == bl && !memcmp(a, b, al);
}

char *lisp_mangle(lisp_arena *a, const char *name, uint32_t len)
{
    static const struct {
        char c;
        const char *s;
    } subst[] = {{'-', "_"},     {'?', "_p"},  {'!', "_bang"}, {'*', "_star"},
                 {'+', "_plus"}, {'>', "_gt"}, {'<', "_lt"},   {'=', "_eq"},
                 {'\'', "_q"},   {'%', "_pct"}};
    if (!len || (name[0] >= '0' && name[0] <= '9'))
        return NULL;
    size_t cap = (size_t)len * 5 + 1, k = 0;
    char *d = lisp_alloc(a, cap);
    if (!d)
        return NULL;
    for (uint32_t i = 0; i < len; i++) {
        char c = name[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '_') {
            d[k++] = c;
            continue;
        }
        size_t j = 0;
        while (j < sizeof subst / sizeof subst[0] && subst[j].c != c)
            j++;
        if (j == sizeof subst / sizeof subst[0])
            return NULL;
        size_t l = strlen(subst[j].s);
        memcpy(d + k, subst[j].s, l);
        k += l;
    }
    d[k] = '\0';
    return d;
}

bool cc_lisp_c_name(const char *lisp_name, char *out, size_t cap)
{
    lisp_arena a = {0};
    const char *c = lisp_mangle(&a, lisp_name, (uint32_t)strlen(lisp_name));
    bool ok = c && strlen(c) < cap;
    if (ok)
        memcpy(out, c, strlen(c) + 1);
    lisp_arena_free(&a);
    return ok;
}

static bool is_c_reserved(const char *s)
{
    static const char *const kw[] = {
        "auto",     "break",    "case",     "char",   "const",   "continue",
        "default",  "do",       "double",   "else",   "enum",    "extern",
        "float",    "for",      "goto",     "if",     "inline",  "int",
        "long",     "register", "restrict", "return", "short",   "signed",
        "sizeof",   "static",   "struct",   "switch", "typedef", "union",
        "unsigned", "void",     "volatile", "while",  "bool",    "true",
        "false",    "asm",      "typeof",   "main",   "NULL",    "stdout",
        "stderr",   "errno"};
    for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++)
        if (!strcmp(s, kw[i]))
            return true;
    /* generated names: pbl_ helpers, p__/l__/r__ locals, f__N arities */
    return s[0] == '_' || !strncmp(s, "pbl_", 4) || strstr(s, "__");
}

bool lower_push_local(lowering *x, const lisp_node *name, const char *cname,
                      value_type t, int fn)
{
    if (x->n_locals == x->cap_locals) {
        uint32_t cap = x->cap_locals ? x->cap_locals * 2 : 32;
        local *l = realloc(x->locals, cap * sizeof *l);
        if (!l) {
            x->oom = true;
            return false;
        }
        x->locals = l;
        x->cap_locals = cap;
    }
    x->locals[x->n_locals++] = (local){name->s, name->len, cname, t, fn};
    return true;
}

/* The innermost local of that name; *outer says it belongs to an
 * enclosing function (a closure, which is refused). */
const local *lower_find_local(lowering *x, const char *s, uint32_t len,
                              bool *outer)
{
    for (uint32_t i = x->n_locals; i-- > 0;)
        if (lower_sym_eq(x->locals[i].name, x->locals[i].len, s, len)) {
            *outer = i < x->fn_base;
            return &x->locals[i];
        }
    return NULL;
}

const state_def *lower_find_state(lowering *x, const char *s, uint32_t len)
{
    for (uint32_t i = 0; i < x->n_states; i++)
        if (lower_sym_eq(x->states[i].lname, x->states[i].llen, s, len))
            return &x->states[i];
    return NULL;
}

/* Appends a state; NULL out of memory. */
state_def *lower_add_state(lowering *x, state_def s)
{
    if (x->n_states == x->cap_states) {
        uint32_t cap = x->cap_states ? x->cap_states * 2 : 8;
        state_def *t = realloc(x->states, cap * sizeof *t);
        if (!t) {
            x->oom = true;
            return NULL;
        }
        x->states = t;
        x->cap_states = cap;
    }
    x->states[x->n_states] = s;
    return &x->states[x->n_states++];
}

const state_def *lower_state_for(lowering *x, const lisp_node *name)
{
    if (name->kind != LISP_SYM)
        return NULL;
    const state_def *s = lower_find_state(x, name->s, name->len);
    if (s || !x->in_expression)
        return s;
    bool outer;
    const char *c = lisp_mangle(x->a, name->s, name->len);
    if (!c || lower_find_local(x, name->s, name->len, &outer) ||
        memchr(name->s, '/', name->len) || memchr(name->s, '.', name->len))
        return NULL;
    /* the accessor lisp_to_c writes for it, which asks the runtime */
    return lower_add_state(x, (state_def){name->s, name->len,
                                          lower_fmt(x, "(*pbl_state_%s())", c),
                                          name, 0, true});
}

/* A binding name: a plain symbol that is not a reserved word. */
bool lower_check_binding_name(lowering *x, const lisp_node *n, const char *what)
{
    if (n->kind != LISP_SYM) {
        lower_error(x, n, "%s must be a symbol%s", what,
                    n->kind == LISP_VECTOR || n->kind == LISP_MAP
                        ? " (destructuring is not supported)"
                        : "");
        return false;
    }
    if (lower_is_sym(n, "&")) {
        lower_error(x, n, "variadic parameters (&) are not supported");
        return false;
    }
    if (!lisp_mangle(x->a, n->s, n->len) || memchr(n->s, '/', n->len) ||
        memchr(n->s, '.', n->len)) {
        lower_error(x, n, "'%.*s' cannot be used as a name here", (int)n->len,
                    n->s);
        return false;
    }
    return true;
}

/* Checks and mangles a definition's name. */
const char *lower_def_name(lowering *x, const lisp_node *n, const char *what)
{
    if (!n || n->kind != LISP_SYM) {
        lower_error(x, n, "%s needs a name", what);
        return NULL;
    }
    if (memchr(n->s, '/', n->len) || memchr(n->s, '.', n->len)) {
        lower_error(x, n, "'%.*s': qualified names are not supported",
                    (int)n->len, n->s);
        return NULL;
    }
    const char *c = lisp_mangle(x->a, n->s, n->len);
    if (!c) {
        lower_error(x, n, "'%.*s' cannot be a var name (it has no C spelling)",
                    (int)n->len, n->s);
        return NULL;
    }
    if (lower_find_builtin(n->s, n->len) || lower_is_special(n->s, n->len)) {
        lower_error(x, n, "'%.*s' is a builtin; choose another name",
                    (int)n->len, n->s);
        return NULL;
    }
    if (is_c_reserved(c) || (!strncmp(c, "pb_", 3) && strcmp(c, "pb_frame") &&
                             strcmp(c, "pb_init"))) {
        lower_error(
            x, n,
            "'%.*s' is reserved (C keywords, names starting with pb- other "
            "than pb-frame and pb-init, and a leading _)",
            (int)n->len, n->s);
        return NULL;
    }
    return c;
}
