/* lower.c — the top level of a Lisp eval (docs/LISP.md): collects its
 * definitions (defn, defn-, def, defonce, deftest), lowers each function
 * (lower.h lists the files that do the work) and assembles the C of the
 * patch. lisp_to_c is the entry point. */
#include "lower.h"

#include <stdlib.h>
#include <string.h>

static void add_defn_arity(lowering *x, const lisp_node *form,
                           const lisp_node *name, const char *cname,
                           const lisp_node *params, lisp_node *const *body,
                           uint32_t n_body, fn_kind kind, bool several)
{
    if (params->kind != LISP_VECTOR) {
        lower_error(x, params, "expected a parameter vector [x y …]");
        return;
    }
    fn_def f = {0};
    f.at = form;
    f.lname = name->s;
    f.llen = name->len;
    f.params = params;
    f.body = body;
    f.n_body = n_body;
    f.arity = params->n;
    f.kind = kind;
    f.cname = several ? lower_fmt(x, "%s__%u", cname, f.arity) : cname;
    f.host = !strcmp(cname, "pb_frame") || !strcmp(cname, "pb_init");
    if (!strcmp(cname, "pb_frame") && f.arity != 2) {
        lower_error(x, params, "pb-frame takes [t canvas]");
        return;
    }
    if (!strcmp(cname, "pb_init") && f.arity != 0) {
        lower_error(x, params, "pb-init takes no parameters: []");
        return;
    }
    for (uint32_t i = 0; i < x->n_fns; i++)
        if (x->fns[i].kind != F_ANON && !strcmp(x->fns[i].cname, f.cname)) {
            lower_error(x, name, "'%.*s' is defined twice in this eval",
                        (int)name->len, name->s);
            return;
        }
    lower_add_fn(x, f);
}

static void collect_defn(lowering *x, const lisp_node *n, bool private_)
{
    const char *what = private_ ? "defn-" : "defn";
    const char *cname = lower_def_name(x, n->n > 1 ? n->items[1] : n, what);
    if (!cname)
        return;
    uint32_t i = 2;
    if (i < n->n && n->items[i]->kind == LISP_STR)
        i++; /* docstring */
    if (i < n->n && n->items[i]->kind == LISP_MAP)
        i++; /* attributes */
    if (i >= n->n) {
        lower_error(x, n, "%s needs a parameter vector: (%s name [x] …)", what,
                    what);
        return;
    }
    fn_kind kind = private_ ? F_PRIVATE : F_VAR;
    if (n->items[i]->kind == LISP_VECTOR) {
        add_defn_arity(x, n, n->items[1], cname, n->items[i], n->items + i + 1,
                       n->n - i - 1, kind, false);
        return;
    }
    bool several = n->n - i > 1;
    for (; i < n->n; i++) {
        const lisp_node *a = n->items[i];
        if (a->kind != LISP_LIST || a->n == 0) {
            lower_error(x, a, "expected an arity: ([x] body…)");
            return;
        }
        add_defn_arity(x, a, n->items[1], cname, a->items[0], a->items + 1,
                       a->n - 1, kind, several);
    }
}

static void collect(lowering *x, const lisp_node *n)
{
    if (n->kind != LISP_LIST || n->n == 0 || n->items[0]->kind != LISP_SYM) {
        lower_error(x, n,
                    "only definitions can be evaluated (defn, def, defonce, "
                    "deftest); to run code when a patch commits, define "
                    "(defn pb-init [] …)");
        return;
    }
    const lisp_node *h = n->items[0];
    if (lower_is_sym(h, "ns") || lower_is_sym(h, "comment") ||
        lower_is_sym(h, "declare"))
        return;
    if (lower_is_sym(h, "defn") || lower_is_sym(h, "defn-")) {
        collect_defn(x, n, lower_is_sym(h, "defn-"));
    } else if (lower_is_sym(h, "def")) {
        const char *cname =
            lower_def_name(x, n->n > 1 ? n->items[1] : n, "def");
        if (!cname)
            return;
        uint32_t vi = n->n == 4 && n->items[2]->kind == LISP_STR ? 3 : 2;
        if (vi + 1 != n->n) {
            lower_error(x, n,
                        "def takes a name, an optional docstring and a value");
            return;
        }
        const lisp_node *v = n->items[vi];
        if (v->kind == LISP_LIST && v->n >= 2 &&
            lower_is_sym(v->items[0], "fn")) {
            uint32_t pi = v->items[1]->kind == LISP_SYM ? 2 : 1;
            if (pi >= v->n) {
                lower_error(x, v, "fn needs a parameter vector");
                return;
            }
            add_defn_arity(x, n, n->items[1], cname, v->items[pi],
                           v->items + pi + 1, v->n - pi - 1, F_VAR, false);
            return;
        }
        fn_def f = {0};
        f.at = n;
        f.lname = n->items[1]->s;
        f.llen = n->items[1]->len;
        f.cname = cname;
        f.body = n->items + vi;
        f.n_body = 1;
        f.kind = F_VALUE;
        for (uint32_t i = 0; i < x->n_fns; i++)
            if (!strcmp(x->fns[i].cname, cname)) {
                lower_error(x, n->items[1],
                            "'%s' is defined twice in this eval", cname);
                return;
            }
        lower_add_fn(x, f);
    } else if (lower_is_sym(h, "defonce")) {
        const char *cname =
            lower_def_name(x, n->n > 1 ? n->items[1] : n, "defonce");
        if (!cname)
            return;
        const lisp_node *v = n->n == 3 ? n->items[2] : NULL;
        if (v && v->kind == LISP_LIST && v->n == 2 &&
            lower_is_sym(v->items[0], "atom"))
            v = v->items[1];
        if (!v || (v->kind != LISP_NUM && v->kind != LISP_BOOL)) {
            lower_error(x, v ? v : n,
                        "defonce takes a name and a number: (defonce n 0) or "
                        "(defonce n (atom 0))");
            return;
        }
        if (lower_find_state(x, n->items[1]->s, n->items[1]->len)) {
            lower_error(x, n->items[1], "'%s' is declared twice in this eval",
                        cname);
            return;
        }
        if (x->n_states == x->cap_states) {
            uint32_t cap = x->cap_states ? x->cap_states * 2 : 8;
            state_def *t = realloc(x->states, cap * sizeof *t);
            if (!t) {
                x->oom = true;
                return;
            }
            x->states = t;
            x->cap_states = cap;
        }
        x->states[x->n_states++] =
            (state_def){n->items[1]->s, n->items[1]->len, cname, n,
                        v->kind == LISP_NUM ? v->num : v->truth};
    } else if (lower_is_sym(h, "deftest")) {
        if (n->n < 2 || n->items[1]->kind != LISP_SYM) {
            lower_error(x, n, "deftest needs a name: (deftest adds (is …))");
            return;
        }
        const char *cname = lisp_mangle(x->a, n->items[1]->s, n->items[1]->len);
        if (!cname) {
            lower_error(x, n->items[1], "'%.*s' cannot be a test name",
                        (int)n->items[1]->len, n->items[1]->s);
            return;
        }
        fn_def f = {0};
        f.at = n;
        f.lname = n->items[1]->s;
        f.llen = n->items[1]->len;
        f.cname = lower_fmt(x, "pb_test__%s", cname);
        f.body = n->items + 2;
        f.n_body = n->n - 2;
        f.kind = F_TEST;
        lower_add_fn(x, f);
    } else {
        lower_error(x, n,
                    "only definitions can be evaluated (defn, def, defonce, "
                    "deftest); to run code when a patch commits, define "
                    "(defn pb-init [] …)");
    }
}

int lisp_to_c(lisp_arena *a, const char *src, size_t len, const char *file,
              const lisp_room_var *vars, uint32_t n_vars, lisp_c *out)
{
    memset(out, 0, sizeof *out);
    lisp_node **forms = NULL;
    uint32_t n_forms = 0;
    int rc = lisp_read(a, src, len, &forms, &n_forms, &out->errs[0]);
    if (rc == -1)
        out->n_errs = 1;
    if (rc)
        return rc;
    lowering x = {
        .a = a, .src = src, .vars = vars, .n_vars = n_vars, .out = out};
    for (uint32_t i = 0; i < n_forms; i++)
        collect(&x, forms[i]);
    if (!out->n_errs && !n_forms)
        lower_error(&x, &(lisp_node){.line = 1, .col = 1},
                    "nothing to evaluate: the source has no forms");
    for (uint32_t i = 0; i < x.n_fns && !x.oom; i++)
        if (x.fns[i].kind != F_ANON)
            (void)lower_fn(&x, (int)i);
    rc = x.oom || a->oom ? -2 : out->n_errs ? -1 : 0;
    if (!rc) {
        lower_buf s = {0};
        lower_buf_add(&s, "/* generated by patchbay's Lisp front end from ");
        lower_buf_add(&s, file && !strstr(file, "*/") ? file : "a Lisp eval");
        lower_buf_add(&s, " (docs/LISP.md) */\n#include <patchbay.h>\n");
        lower_buf_add(&s, lower_helpers);
        for (uint32_t i = 0; i < x.n_states; i++)
            lower_buf_add(&s, lower_fmt(&x, "%sPB_STATE(double, %s, %s);\n",
                                        lower_mark(&x, x.states[i].at),
                                        x.states[i].cname,
                                        lower_num_lit(&x, x.states[i].init)));
        for (uint32_t i = 0; i < x.n_fns; i++)
            lower_buf_add(&s, x.fns[i].proto);
        for (uint32_t i = 0; i < x.n_fns; i++)
            lower_buf_add(&s, x.fns[i].code);
        const char *text = lower_buf_done(&x, &s);
        rc = x.oom ? -2 : lower_strip_marks(&x, text, out);
    }
    free(x.fns);
    free(x.states);
    free(x.locals);
    return rc;
}
