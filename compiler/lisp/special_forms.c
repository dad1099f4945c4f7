/* special_forms.c — the forms a body is made of (let, if/when/cond, do,
 * and/or/not, fn, println/print, is, reset!/swap!/deref on state) as C
 * expressions, and lower_expr, which dispatches every form. */
#include "lower.h"

#include <string.h>

/* Sequential bindings [a 1 b (+ a 1)] as C declarations; pushes locals. */
bool lower_bindings(lowering *x, const lisp_node *form, const char *what,
                    lower_buf *decls, bool need_values)
{
    const lisp_node *vec = form->n > 1 ? form->items[1] : NULL;
    if (!vec || vec->kind != LISP_VECTOR) {
        lower_error(x, vec ? vec : form,
                    "%s needs a binding vector [name value …]", what);
        return false;
    }
    if (vec->n % 2) {
        lower_error(
            x, vec,
            "%s bindings come in pairs [name value …]; this vector has %u "
            "form%s",
            what, vec->n, vec->n == 1 ? "" : "s");
        return false;
    }
    for (uint32_t i = 0; i < vec->n; i += 2) {
        const lisp_node *name = vec->items[i], *val = vec->items[i + 1];
        if (!lower_check_binding_name(x, name, "a binding name"))
            return false;
        lowered v = lower_expr(x, val, true);
        if (!v.c)
            return false;
        if (v.t == T_STR) {
            lower_need(x, val, v, T_NUM);
            return false;
        }
        if (need_values && v.t != T_NUM && v.t != T_BOOL) {
            lower_error(x, val,
                        "loop bindings must be numbers or booleans, not %s",
                        lower_type_name(v.t));
            return false;
        }
        const char *cname = NULL;
        if (v.t == T_VOID) {
            lower_buf_add(decls, lower_fmt(x, "%s; ", v.c));
        } else if (v.t != T_FN) {
            cname = lower_fmt(x, "l__%s_%u",
                              lisp_mangle(x->a, name->s, name->len), ++x->tmp);
            lower_buf_add(decls, lower_fmt(x, "%s %s = %s; ", lower_c_type(v.t),
                                           cname, v.c));
        }
        if (!lower_push_local(x, name, cname, v.t, v.fn_index))
            return false;
    }
    return true;
}

/* (do a b c) as an expression: a and b for effect, c's value. */
static lowered lower_body(lowering *x, lisp_node *const *body, uint32_t n,
                          bool want, const lisp_node *at)
{
    if (n == 0)
        return (lowered){"((void)0)", T_VOID, -1};
    if (n == 1)
        return lower_expr(x, body[0], want);
    lower_buf s = {0};
    lower_buf_add(&s, "({ ");
    bool ok = true;
    lowered last = LOWERED_ERR;
    for (uint32_t i = 0; i < n; i++) {
        lowered v = lower_expr(x, body[i], want && i == n - 1);
        ok = ok && v.c;
        if (!v.c)
            continue;
        if (i < n - 1)
            lower_buf_add(&s, lower_fmt(x, "(void)(%s); ", v.c));
        else
            last = v;
    }
    if (ok && last.t == T_FN)
        ok = false,
        lower_error(x, body[n - 1], "a function cannot be the value here");
    if (ok)
        lower_buf_add(&s, lower_fmt(x, "%s; })", last.c));
    const char *c = lower_buf_done(x, &s);
    (void)at;
    return ok ? (lowered){c, last.t, -1} : LOWERED_ERR;
}

static lowered lower_let(lowering *x, const lisp_node *n, bool want)
{
    uint32_t saved = x->n_locals;
    lower_buf s = {0};
    lower_buf_add(&s, lower_mark(x, n));
    lower_buf_add(&s, "({ ");
    lowered r = LOWERED_ERR;
    if (lower_bindings(x, n, "let", &s, false)) {
        r = lower_body(x, n->items + 2, n->n - 2, want, n);
        if (r.c && r.t == T_FN)
            r = lower_error(x, n, "let cannot return a function");
        if (r.c)
            lower_buf_add(&s, lower_fmt(x, "%s; })", r.c));
    }
    x->n_locals = saved;
    const char *c = lower_buf_done(x, &s);
    return r.c ? (lowered){c, r.t, -1} : LOWERED_ERR;
}

/* if / when / when-not / cond as an expression. */
static lowered lower_if(lowering *x, const lisp_node *n, const char *cond,
                        const lisp_node *then, lisp_node *const *then_body,
                        uint32_t n_then, const lisp_node *els, bool want,
                        bool negate)
{
    lowered a = then ? lower_expr(x, then, want)
                     : lower_body(x, then_body, n_then, want, n);
    lowered b =
        els ? lower_expr(x, els, want) : (lowered){"((void)0)", T_VOID, -1};
    if (!cond || !a.c || !b.c)
        return LOWERED_ERR;
    const char *c = negate ? lower_fmt(x, "!(%s)", cond) : cond;
    if (a.t == b.t && a.t != T_FN && a.t != T_STR)
        return (lowered){
            lower_fmt(x, "%s(%s ? %s : %s)", lower_mark(x, n), c, a.c, b.c),
            a.t, -1};
    if (!want && a.t != T_FN && b.t != T_FN)
        return (lowered){lower_fmt(x, "%s(%s ? (void)(%s) : (void)(%s))",
                                   lower_mark(x, n), c, a.c, b.c),
                         T_VOID, -1};
    if (!els || b.t == T_VOID)
        return lower_error(x, n,
                           "this has no value when the test is %s; give both "
                           "branches a value, e.g. (if test a b)",
                           negate ? "true" : "false");
    return lower_error(x, n, "the branches give %s and %s; they must agree",
                       lower_type_name(a.t), lower_type_name(b.t));
}

static lowered lower_cond_form(lowering *x, const lisp_node *n, uint32_t i,
                               bool want)
{
    if (i >= n->n)
        return (lowered){"((void)0)", T_VOID, -1};
    if (i + 1 >= n->n)
        return lower_error(x, n->items[i],
                           "cond needs a value after this test");
    const lisp_node *t = n->items[i];
    if (t->kind == LISP_KEYWORD || (t->kind == LISP_BOOL && t->truth))
        return lower_expr(x, n->items[i + 1], want);
    const char *c = lower_condition(x, t);
    lowered a = lower_expr(x, n->items[i + 1], want);
    lowered b = lower_cond_form(x, n, i + 2, want);
    if (!c || !a.c || !b.c)
        return LOWERED_ERR;
    if (a.t == b.t && a.t != T_FN && a.t != T_STR)
        return (lowered){
            lower_fmt(x, "%s(%s ? %s : %s)", lower_mark(x, t), c, a.c, b.c),
            a.t, -1};
    if (!want)
        return (lowered){
            lower_fmt(x, "(%s ? (void)(%s) : (void)(%s))", c, a.c, b.c), T_VOID,
            -1};
    return lower_error(
        x, t,
        "cond's branches must all give the same kind of value (here "
        "%s and %s), and a cond used as a value needs an :else",
        lower_type_name(a.t), lower_type_name(b.t));
}

static lowered lower_andor(lowering *x, const lisp_node *n, bool is_and)
{
    if (n->n == 1)
        return (lowered){is_and ? "((_Bool)1)" : "((_Bool)0)", T_BOOL, -1};
    lower_buf s = {0};
    lower_buf_add(&s, lower_mark(x, n));
    lower_buf_add(&s, "(");
    bool ok = true;
    for (uint32_t i = 1; i < n->n; i++) {
        const char *c = lower_condition(x, n->items[i]);
        ok = ok && c;
        if (!c)
            continue;
        if (i > 1)
            lower_buf_add(&s, is_and ? " && " : " || ");
        lower_buf_add(&s, lower_fmt(x, "(%s)", c));
    }
    lower_buf_add(&s, ")");
    const char *c = lower_buf_done(x, &s);
    return ok ? (lowered){c, T_BOOL, -1} : LOWERED_ERR;
}

static lowered lower_print(lowering *x, const lisp_node *n, bool newline)
{
    lower_buf f = {0}, a = {0};
    bool ok = true;
    for (uint32_t i = 1; i < n->n; i++) {
        lowered v = lower_expr(x, n->items[i], true);
        if (!v.c) {
            ok = false;
            continue;
        }
        if (i > 1)
            lower_buf_add(&f, " ");
        switch (v.t) {
        case T_STR:
            lower_buf_add(&f, "%s");
            lower_buf_add(&a, lower_fmt(x, ", %s", v.c));
            break;
        case T_NUM:
            lower_buf_add(&f, "%.15g");
            lower_buf_add(&a, lower_fmt(x, ", (double)(%s)", v.c));
            break;
        case T_BOOL:
            lower_buf_add(&f, "%s");
            lower_buf_add(&a,
                          lower_fmt(x, ", (%s) ? \"true\" : \"false\"", v.c));
            break;
        case T_VOID:
            lower_buf_add(&f, "%s");
            lower_buf_add(&a, lower_fmt(x, ", ((void)(%s), \"nil\")", v.c));
            break;
        default:
            ok = false;
            lower_error(x, n->items[i], "cannot print %s",
                        lower_type_name(v.t));
        }
    }
    if (newline)
        lower_buf_add(&f, "\\n");
    const char *ff = lower_buf_done(x, &f), *aa = lower_buf_done(x, &a);
    if (!ok)
        return LOWERED_ERR;
    return (lowered){
        lower_fmt(x, "%s((void)printf(\"%s\"%s))", lower_mark(x, n), ff, aa),
        T_VOID, -1};
}

static lowered lower_is(lowering *x, const lisp_node *n)
{
    if (!x->in_test)
        return lower_error(x, n, "(is …) is only allowed inside deftest");
    if (n->n < 2 || n->n > 3)
        return lower_error(x, n,
                           "is takes an expression and an optional message");
    const char *c = lower_condition(x, n->items[1]);
    if (!c)
        return LOWERED_ERR;
    const lisp_node *e = n->n == 3 ? n->items[2] : n->items[1];
    const char *text =
        e->kind == LISP_STR
            ? lower_str_lit(x, e->s, e->len)
            : lower_str_lit(x, x->src + e->off,
                            e->end - e->off > 200 ? 200 : e->end - e->off);
    return (lowered){
        lower_fmt(x,
                  "%s({ if (!(%s)) { pb_check_failed(%s, %u); return; } "
                  "(void)0; })",
                  lower_mark(x, n), c, text, n->items[1]->line),
        T_VOID, -1};
}

/* (fn name? [params] body…): a static function; the value names it. */
static lowered lower_fn_form(lowering *x, const lisp_node *n)
{
    uint32_t i = 1;
    const lisp_node *name = NULL;
    if (i < n->n && n->items[i]->kind == LISP_SYM)
        name = n->items[i++];
    if (i < n->n && n->items[i]->kind == LISP_LIST)
        return lower_error(x, n->items[i],
                           "fn with several arities is not supported");
    if (i >= n->n || n->items[i]->kind != LISP_VECTOR)
        return lower_error(x, n, "fn needs a parameter vector: (fn [x] …)");
    fn_def f = {0};
    f.at = n;
    f.lname = name ? name->s : "fn";
    f.llen = name ? name->len : 2;
    f.cname = lower_fmt(x, "pbl_fn%u", ++x->tmp);
    f.params = n->items[i];
    f.body = n->items + i + 1;
    f.n_body = n->n - i - 1;
    f.arity = f.params->n;
    f.kind = F_ANON;
    int fi = lower_add_fn(x, f);
    if (fi < 0)
        return LOWERED_ERR;
    if (name) { /* visible inside its own body, for recursion */
        x->fns[fi].lname = name->s;
    }
    if (lower_fn(x, fi) < 0)
        return LOWERED_ERR;
    return (lowered){"", T_FN, fi};
}

/* reset! / set! / swap! on defonce state. */
static lowered lower_mutate(lowering *x, const lisp_node *n, const char *op)
{
    if (n->n < 3)
        return lower_error(x, n, "%s needs the state and a %s", op,
                           strcmp(op, "swap!") ? "value" : "function");
    const lisp_node *t = n->items[1];
    const state_def *s = lower_state_for(x, t);
    if (!s)
        return lower_error(
            x, t,
            "%s works on state declared with defonce in this eval "
            "(repeat the (defonce …) to use state from another one)",
            op);
    const char *cname = s->cname; /* lowering the value may add states */
    const char *v;
    if (strcmp(op, "swap!")) {
        if (n->n != 3)
            return lower_error(x, n, "%s takes the state and one value", op);
        v = lower_need(x, n->items[2], lower_expr(x, n->items[2], true), T_NUM);
    } else {
        /* (swap! s f a …) is (reset! s (f s a …)) */
        lisp_node *call = lisp_alloc(x->a, sizeof *call);
        lisp_node **items = lisp_alloc(x->a, (n->n - 1) * sizeof *items);
        if (!call || !items) {
            x->oom = true;
            return LOWERED_ERR;
        }
        *call = *n->items[2];
        call->kind = LISP_LIST;
        call->items = items;
        call->n = n->n - 1;
        items[0] = n->items[2];
        items[1] = n->items[1];
        for (uint32_t i = 3; i < n->n; i++)
            items[i - 1] = n->items[i];
        v = lower_need(x, n->items[2], lower_expr(x, call, true), T_NUM);
    }
    if (!v)
        return LOWERED_ERR;
    return (lowered){lower_fmt(x, "%s(%s = (%s))", lower_mark(x, n), cname, v),
                     T_NUM, -1};
}

static lowered lower_list(lowering *x, const lisp_node *n, bool want)
{
    if (n->n == 0)
        return lower_error(x, n, "() is not a call");
    const lisp_node *h = n->items[0];
    if (h->kind == LISP_LIST) { /* ((fn [x] …) 3) */
        lowered f = lower_expr(x, h, true);
        if (!f.c)
            return LOWERED_ERR;
        if (f.t != T_FN)
            return lower_error(x, h, "%s is not a function",
                               lower_type_name(f.t));
        if (x->fns[f.fn_index].arity != n->n - 1)
            return lower_error(x, n, "this fn takes %u argument%s, given %u",
                               x->fns[f.fn_index].arity,
                               x->fns[f.fn_index].arity == 1 ? "" : "s",
                               n->n - 1);
        return lower_call_fn(x, n, f.fn_index, 1);
    }
    if (h->kind != LISP_SYM)
        return lower_error(x, h, "%s cannot be called",
                           h->kind == LISP_NUM   ? "a number"
                           : h->kind == LISP_STR ? "a string"
                                                 : "this");
    bool outer;
    if (lower_find_local(x, h->s, h->len, &outer))
        return lower_call_named(x, n, h);
    if (lower_is_sym(h, "if")) {
        if (n->n < 3 || n->n > 4)
            return lower_error(x, n,
                               "if takes a test, a then and an optional else");
        return lower_if(x, n, lower_condition(x, n->items[1]), n->items[2],
                        NULL, 0, n->n == 4 ? n->items[3] : NULL, want, false);
    }
    if (lower_is_sym(h, "when") || lower_is_sym(h, "when-not")) {
        if (n->n < 2)
            return lower_error(x, n, "%.*s needs a test", (int)h->len, h->s);
        return lower_if(x, n, lower_condition(x, n->items[1]), NULL,
                        n->items + 2, n->n - 2, NULL, want,
                        lower_is_sym(h, "when-not"));
    }
    if (lower_is_sym(h, "cond")) {
        if (n->n % 2 == 0)
            return lower_error(x, n, "cond takes test/value pairs");
        return lower_cond_form(x, n, 1, want);
    }
    if (lower_is_sym(h, "do"))
        return lower_body(x, n->items + 1, n->n - 1, want, n);
    if (lower_is_sym(h, "let"))
        return lower_let(x, n, want);
    if (lower_is_sym(h, "loop"))
        return lower_loop(x, n, want);
    if (lower_is_sym(h, "recur"))
        return lower_error(
            x, n,
            "recur must be in tail position (the last thing a loop or "
            "function does)");
    if (lower_is_sym(h, "fn"))
        return lower_fn_form(x, n);
    if (lower_is_sym(h, "and") || lower_is_sym(h, "or"))
        return lower_andor(x, n, lower_is_sym(h, "and"));
    if (lower_is_sym(h, "not")) {
        if (n->n != 2)
            return lower_error(x, n, "not takes one argument");
        const char *c = lower_condition(x, n->items[1]);
        return c ? (lowered){lower_fmt(x, "(!(%s))", c), T_BOOL, -1}
                 : LOWERED_ERR;
    }
    if (lower_is_sym(h, "println") || lower_is_sym(h, "print"))
        return lower_print(x, n, lower_is_sym(h, "println"));
    if (lower_is_sym(h, "is"))
        return lower_is(x, n);
    if (lower_is_sym(h, "reset!") || lower_is_sym(h, "set!") ||
        lower_is_sym(h, "swap!"))
        return lower_mutate(x, n, h->s);
    if (lower_is_sym(h, "deref")) {
        const lisp_node *t = n->n == 2 ? n->items[1] : NULL;
        if (!t || !lower_state_for(x, t))
            return lower_error(
                x, n, "only defonce state can be dereferenced (@name)");
        return lower_expr(x, t, true);
    }
    if (lower_is_sym(h, "quote"))
        return lower_error(x, n, "quoted data is not supported");
    if (lower_is_sym(h, "atom"))
        return lower_error(x, n,
                           "atom is only supported as (defonce name (atom n))");
    if (lower_is_sym(h, "def") || lower_is_sym(h, "defn") ||
        lower_is_sym(h, "defn-") || lower_is_sym(h, "defonce") ||
        lower_is_sym(h, "deftest"))
        return lower_error(x, n, "%.*s is only allowed at the top level",
                           (int)h->len, h->s);
    if (h->len == 1 && strchr("+-*/", h->s[0]))
        return lower_arith(x, n, h->s[0]);
    if (lower_is_sym(h, "min") || lower_is_sym(h, "max"))
        return lower_minmax(x, n, lower_is_sym(h, "min"));
    static const struct {
        const char *l, *c;
    } cmp[] = {{"<", "<"},  {">", ">"},   {"<=", "<="},  {">=", ">="},
               {"=", "=="}, {"==", "=="}, {"not=", "!="}};
    for (size_t i = 0; i < sizeof cmp / sizeof cmp[0]; i++)
        if (lower_is_sym(h, cmp[i].l))
            return lower_compare(x, n, cmp[i].c);
    return lower_call_named(x, n, h);
}

static lowered lower_sym(lowering *x, const lisp_node *n)
{
    if (lower_is_sym(n, "Math/PI"))
        return (lowered){"3.14159265358979323846", T_NUM, -1};
    if (lower_is_sym(n, "Math/E"))
        return (lowered){"2.71828182845904523536", T_NUM, -1};
    bool outer = false;
    const local *l = lower_find_local(x, n->s, n->len, &outer);
    if (l) {
        if (outer)
            return lower_error(
                x, n,
                "fn cannot use '%.*s' of the function around it "
                "(closures are not supported); pass it as an argument",
                (int)n->len, n->s);
        if (l->t == T_FN)
            return (lowered){"", T_FN, l->fn_index};
        if (!l->cname)
            return (lowered){"((void)0)", T_VOID, -1};
        return (lowered){lower_fmt(x, "%s%s", lower_mark(x, n), l->cname), l->t,
                         -1};
    }
    const state_def *s = lower_find_state(x, n->s, n->len);
    if (s)
        return (lowered){lower_fmt(x, "%s%s", lower_mark(x, n), s->cname),
                         T_NUM, -1};
    for (uint32_t i = 0; i < x->n_fns; i++) {
        fn_def *f = &x->fns[i];
        if (f->kind == F_ANON || !lower_sym_eq(f->lname, f->llen, n->s, n->len))
            continue;
        if (f->kind == F_VALUE) {
            lisp_node call = *n;
            call.kind = LISP_LIST;
            call.n = 1;
            return lower_call_fn(x, &call, (int)i, 1);
        }
        if (f->kind != F_TEST)
            return (lowered){"", T_FN, (int)i};
    }
    const char *cname = lisp_mangle(x->a, n->s, n->len);
    const lisp_room_var *v = cname ? lower_find_room_var(x, cname) : NULL;
    if (v && strlen(v->sig) == 1) { /* a def of another eval: read it */
        lisp_node call = *n;
        call.kind = LISP_LIST;
        call.n = 1;
        return lower_call_room_var(x, &call, v, 1);
    }
    if (v)
        return lower_error(x, n, "'%.*s' is a function; call it: (%.*s …)",
                           (int)n->len, n->s, (int)n->len, n->s);
    if (lower_find_builtin(n->s, n->len) || lower_is_special(n->s, n->len))
        return lower_error(
            x, n,
            "'%.*s' is a builtin and cannot be used as a value; call "
            "it: (%.*s …)",
            (int)n->len, n->s, (int)n->len, n->s);
    return lower_error(x, n, "unknown symbol '%.*s'", (int)n->len, n->s);
}

lowered lower_expr(lowering *x, const lisp_node *n, bool want)
{
    if (x->oom)
        return LOWERED_ERR;
    switch (n->kind) {
    case LISP_NUM: return (lowered){lower_num_lit(x, n->num), T_NUM, -1};
    case LISP_BOOL:
        return (lowered){n->truth ? "((_Bool)1)" : "((_Bool)0)", T_BOOL, -1};
    case LISP_NIL: return (lowered){"((void)0)", T_VOID, -1};
    case LISP_STR: return (lowered){lower_str_lit(x, n->s, n->len), T_STR, -1};
    case LISP_SYM: return lower_sym(x, n);
    case LISP_LIST: return lower_list(x, n, want);
    case LISP_KEYWORD:
        return lower_error(x, n, "keywords are only used as cond's :else");
    case LISP_CHAR:
        return lower_error(x, n, "characters are not supported (use a string)");
    case LISP_VECTOR:
        return lower_error(x, n,
                           "vectors are only used for parameters and bindings");
    case LISP_MAP:
        return lower_error(x, n, "maps are not supported in compiled code");
    case LISP_SET:
        return lower_error(x, n, "sets are not supported in compiled code");
    }
    return LOWERED_ERR;
}
