/* lower.c — the top level of a Lisp eval (docs/LISP.md): collects its
 * definitions (defn, defn-, def, defonce, deftest) or its one expression,
 * lowers each function (lower.h lists the files that do the work) and
 * assembles the C of the patch. lisp_to_c is the entry point. */
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

/* Any other form is an expression: the eval is then that one expression
 * (with the defonce declarations it uses), run once on every runtime. */
static void collect_expr(lowering *x, const lisp_node *n)
{
    if (!x->expr)
        x->expr = n;
    else if (!x->extra_expr)
        x->extra_expr = n;
}

static void collect(lowering *x, const lisp_node *n)
{
    if (n->kind != LISP_LIST || n->n == 0 || n->items[0]->kind != LISP_SYM) {
        collect_expr(x, n);
        return;
    }
    const lisp_node *h = n->items[0];
    if (lower_is_sym(h, "ns") || lower_is_sym(h, "comment") ||
        lower_is_sym(h, "declare"))
        return;
    if (!lower_is_sym(h, "defonce") && !x->first_def &&
        (lower_is_sym(h, "defn") || lower_is_sym(h, "defn-") ||
         lower_is_sym(h, "def") || lower_is_sym(h, "deftest")))
        x->first_def = n;
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
        lower_add_state(
            x, (state_def){n->items[1]->s, n->items[1]->len, cname, n,
                           v->kind == LISP_NUM ? v->num : v->truth, false});
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
        collect_expr(x, n);
    }
}

/* The eval's one expression as the pb_expr the runtime runs once
 * (docs/PATCH_ABI.md § Expressions): PB_VALUE hands its value over. */
static const char *lower_expression(lowering *x)
{
    if (x->extra_expr) {
        lower_error(x, x->extra_expr,
                    "one expression per eval: evaluate each on its own, or "
                    "wrap them in (do …)");
        return NULL;
    }
    if (x->first_def) {
        lower_error(x, x->expr,
                    "this expression is in an eval that also defines vars "
                    "(line %u); evaluate definitions and expressions "
                    "separately",
                    x->first_def->line);
        return NULL;
    }
    x->in_expression = true;
    lowered v = lower_expr(x, x->expr, true);
    x->in_expression = false;
    if (!v.c)
        return NULL;
    if (v.t == T_FN || v.t == T_CANVAS) {
        lower_error(x, x->expr,
                    "%s has no value to print; an expression gives a "
                    "number, a boolean, a string or nil",
                    lower_type_name(v.t));
        return NULL;
    }
    /* the Lisp type decides (a comparison is a C int, but a boolean) */
    const char *as = v.t == T_NUM    ? "(double)"
                     : v.t == T_BOOL ? "(_Bool)"
                     : v.t == T_STR  ? "(const char *)"
                                     : "";
    return lower_fmt(x, "%svoid pb_expr(void)\n{\n    PB_VALUE(%s(%s));\n}\n",
                     lower_mark(x, x->expr), as, v.c);
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
    const char *expr = x.expr && !x.oom ? lower_expression(&x) : NULL;
    out->is_expr = x.expr != NULL;
    rc = x.oom || a->oom ? -2 : out->n_errs ? -1 : 0;
    if (!rc) {
        lower_buf s = {0};
        lower_buf_add(&s, "/* generated by patchbay's Lisp front end from ");
        lower_buf_add(&s, file && !strstr(file, "*/") ? file : "a Lisp eval");
        lower_buf_add(&s, " (docs/LISP.md) */\n#include <patchbay.h>\n");
        lower_buf_add(&s, lower_helpers);
        for (uint32_t i = 0; i < x.n_states; i++) {
            const state_def *st = &x.states[i];
            if (st->is_ref) /* the runtime traps if it has no such state */
                lower_buf_add(
                    &s, lower_fmt(&x,
                                  "%sstatic double *pbl_state_%s(void) { "
                                  "return (double *)pb_rt_state_ref(\"%s\", "
                                  "sizeof(double)); }\n",
                                  lower_mark(&x, st->at),
                                  lisp_mangle(a, st->lname, st->llen),
                                  lisp_mangle(a, st->lname, st->llen)));
            else
                lower_buf_add(&s, lower_fmt(&x, "%sPB_STATE(double, %s, %s);\n",
                                            lower_mark(&x, st->at), st->cname,
                                            lower_num_lit(&x, st->init)));
        }
        for (uint32_t i = 0; i < x.n_fns; i++)
            lower_buf_add(&s, x.fns[i].proto);
        for (uint32_t i = 0; i < x.n_fns; i++)
            lower_buf_add(&s, x.fns[i].code);
        if (expr)
            lower_buf_add(&s, expr);
        const char *text = lower_buf_done(&x, &s);
        rc = x.oom ? -2 : lower_strip_marks(&x, text, out);
    }
    free(x.fns);
    free(x.states);
    free(x.locals);
    return rc;
}
