/* tail.c — tail position: a function body or loop body lowered as
 * statements, where the value is returned (or stored in the loop's result)
 * and recur becomes assignments and continue, so recursion in tail position
 * never grows the stack. */
#include "lower.h"

#include <string.h>

static const char *deliver(lowering *x, const lisp_node *n, lowered v,
                           tail_dest *k)
{
    if (!v.c)
        return NULL;
    const char *go = k->loop ? "break;" : "return;";
    if (k->discard)
        return v.t == T_FN ? go : lower_fmt(x, "(void)(%s); %s", v.c, go);
    if (v.t == T_FN || v.t == T_STR || v.t == T_CANVAS) {
        lower_error(x, n, "%s cannot be returned", lower_type_name(v.t));
        return NULL;
    }
    if (!k->has_t) {
        k->has_t = true;
        k->t = v.t;
        k->t_at = n;
    } else if (k->t != v.t) {
        lower_error(
            x, n, "this gives %s, but %u:%u gives %s; every branch must agree",
            lower_type_name(v.t), k->t_at->line, k->t_at->col,
            lower_type_name(k->t));
        return NULL;
    }
    if (v.t == T_VOID)
        return lower_fmt(x, "%s; %s", v.c, go);
    return k->loop ? lower_fmt(x, "%s = %s; break;", k->rvar, v.c)
                   : lower_fmt(x, "return %s;", v.c);
}

const char *lower_tail_body(lowering *x, lisp_node *const *body, uint32_t n,
                            const lisp_node *at, tail_dest *k)
{
    if (n == 0)
        return deliver(x, at, (lowered){"((void)0)", T_VOID, -1}, k);
    lower_buf s = {0};
    bool ok = true;
    for (uint32_t i = 0; i + 1 < n; i++) {
        lowered v = lower_expr(x, body[i], false);
        ok = ok && v.c;
        if (v.c && v.t != T_FN)
            lower_buf_add(&s, lower_fmt(x, "(void)(%s); ", v.c));
    }
    const char *t = lower_tail(x, body[n - 1], k);
    ok = ok && t;
    if (t)
        lower_buf_add(&s, t);
    const char *c = lower_buf_done(x, &s);
    return ok ? c : NULL;
}

static const char *tail_recur(lowering *x, const lisp_node *n, tail_dest *k)
{
    if (!k->target) {
        lower_error(x, n, "recur outside a loop or function");
        return NULL;
    }
    if (n->n - 1 != k->n_target) {
        lower_error(
            x, n, "recur takes %u argument%s here (one per binding), given %u",
            k->n_target, k->n_target == 1 ? "" : "s", n->n - 1);
        return NULL;
    }
    lower_buf s = {0};
    lower_buf_add(&s, "{ ");
    bool ok = true;
    uint32_t base = x->tmp;
    x->tmp += k->n_target;
    for (uint32_t i = 0; i < k->n_target; i++) {
        const local *l = &k->target[i];
        const char *a = lower_need(x, n->items[i + 1],
                                   lower_expr(x, n->items[i + 1], true), l->t);
        ok = ok && a;
        if (a)
            lower_buf_add(&s, lower_fmt(x, "%s l__r%u = %s; ",
                                        lower_c_type(l->t), base + i, a));
    }
    for (uint32_t i = 0; i < k->n_target; i++)
        lower_buf_add(
            &s, lower_fmt(x, "%s = l__r%u; ", k->target[i].cname, base + i));
    lower_buf_add(&s, "continue; }");
    k->recurs = true;
    const char *c = lower_buf_done(x, &s);
    return ok ? c : NULL;
}

const char *lower_tail(lowering *x, const lisp_node *n, tail_dest *k)
{
    if (n->kind != LISP_LIST || n->n == 0 || n->items[0]->kind != LISP_SYM)
        return deliver(x, n, lower_expr(x, n, !k->discard), k);
    const lisp_node *h = n->items[0];
    bool outer;
    if (lower_find_local(x, h->s, h->len, &outer))
        return deliver(x, n, lower_expr(x, n, !k->discard), k);
    if (lower_is_sym(h, "recur"))
        return tail_recur(x, n, k);
    if (lower_is_sym(h, "if") && n->n >= 3 && n->n <= 4) {
        const char *c = lower_condition(x, n->items[1]);
        const char *a = lower_tail(x, n->items[2], k);
        const char *b =
            n->n == 4 ? lower_tail(x, n->items[3], k)
                      : deliver(x, n, (lowered){"((void)0)", T_VOID, -1}, k);
        if (!c || !a || !b)
            return NULL;
        return lower_fmt(x, "%sif (%s) { %s } else { %s }", lower_mark(x, n), c,
                         a, b);
    }
    if ((lower_is_sym(h, "when") || lower_is_sym(h, "when-not")) && n->n >= 2) {
        const char *c = lower_condition(x, n->items[1]);
        const char *a = lower_tail_body(x, n->items + 2, n->n - 2, n, k);
        const char *b = deliver(x, n, (lowered){"((void)0)", T_VOID, -1}, k);
        if (!c || !a || !b)
            return NULL;
        return lower_fmt(x, "%sif (%s(%s)) { %s } else { %s }",
                         lower_mark(x, n),
                         lower_is_sym(h, "when-not") ? "!" : "", c, a, b);
    }
    if (lower_is_sym(h, "cond") && n->n % 2 == 1) {
        lower_buf s = {0};
        bool ok = true, closed = false;
        for (uint32_t i = 1; i + 1 < n->n; i += 2) {
            const lisp_node *t = n->items[i];
            const char *body = lower_tail(x, n->items[i + 1], k);
            ok = ok && body;
            if (t->kind == LISP_KEYWORD || (t->kind == LISP_BOOL && t->truth)) {
                if (body)
                    lower_buf_add(&s, lower_fmt(x, "{ %s }", body));
                closed = true;
                break;
            }
            const char *c = lower_condition(x, t);
            ok = ok && c;
            if (c && body)
                lower_buf_add(&s, lower_fmt(x, "%sif (%s) { %s } else ",
                                            lower_mark(x, t), c, body));
        }
        if (!closed) {
            const char *e =
                deliver(x, n, (lowered){"((void)0)", T_VOID, -1}, k);
            ok = ok && e;
            if (e)
                lower_buf_add(&s, lower_fmt(x, "{ %s }", e));
        }
        const char *c = lower_buf_done(x, &s);
        return ok ? c : NULL;
    }
    if (lower_is_sym(h, "do"))
        return lower_tail_body(x, n->items + 1, n->n - 1, n, k);
    if (lower_is_sym(h, "let")) {
        uint32_t saved = x->n_locals;
        lower_buf s = {0};
        const char *r = NULL;
        lower_buf_add(&s, "{ ");
        if (lower_bindings(x, n, "let", &s, false))
            r = lower_tail_body(x, n->items + 2, n->n - 2, n, k);
        if (r)
            lower_buf_add(&s, lower_fmt(x, "%s }", r));
        x->n_locals = saved;
        const char *c = lower_buf_done(x, &s);
        return r ? c : NULL;
    }
    return deliver(x, n, lower_expr(x, n, !k->discard), k);
}

lowered lower_loop(lowering *x, const lisp_node *n, bool want)
{
    (void)want;
    uint32_t saved = x->n_locals;
    lower_buf s = {0};
    lower_buf_add(&s, lower_mark(x, n));
    lower_buf_add(&s, "({ ");
    lowered r = LOWERED_ERR;
    if (lower_bindings(x, n, "loop", &s, true)) {
        uint32_t first = saved, count = x->n_locals - saved;
        local *target = lisp_alloc(x->a, (count ? count : 1) * sizeof *target);
        if (!target) {
            x->oom = true;
        } else {
            if (count) /* no locals at all: x->locals is NULL */
                memcpy(target, x->locals + first, count * sizeof *target);
            tail_dest k = {.loop = true,
                           .rvar = lower_fmt(x, "r__%u", ++x->tmp),
                           .target = target,
                           .n_target = count};
            const char *body =
                lower_tail_body(x, n->items + 2, n->n - 2, n, &k);
            if (body) {
                value_type t = k.has_t ? k.t : T_VOID;
                if (t != T_VOID)
                    lower_buf_add(
                        &s, lower_fmt(x, "%s %s; ", lower_c_type(t), k.rvar));
                lower_buf_add(&s, lower_fmt(x, "for (;;) { %s } ", body));
                lower_buf_add(&s, t != T_VOID ? lower_fmt(x, "%s; })", k.rvar)
                                              : "(void)0; })");
                r = (lowered){"", t, -1};
            }
        }
    }
    x->n_locals = saved;
    const char *c = lower_buf_done(x, &s);
    if (!r.c)
        return LOWERED_ERR;
    r.c = c;
    return r;
}
