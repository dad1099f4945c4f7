/* functions.c — one function of the eval (defn arity, def, deftest, fn)
 * to a C definition and prototype: parameters, the body in tail form, the
 * return type from what the body gives. */
#include "lower.h"

#include <stdlib.h>
#include <string.h>

int lower_add_fn(lowering *x, fn_def f)
{
    if (x->n_fns == x->cap_fns) {
        uint32_t cap = x->cap_fns ? x->cap_fns * 2 : 16;
        fn_def *t = realloc(x->fns, cap * sizeof *t);
        if (!t) {
            x->oom = true;
            return -1;
        }
        x->fns = t;
        x->cap_fns = cap;
    }
    x->fns[x->n_fns] = f;
    return (int)x->n_fns++;
}

/* Lowers fns[i] (once). Returns 0, or -1 after reporting errors. */
int lower_fn(lowering *x, int i)
{
    fn_def *f = &x->fns[i];
    if (f->progress != FN_PENDING)
        return 0;
    f->progress = FN_LOWERING;
    x->fn_depth++;
    uint32_t saved_locals = x->n_locals, saved_base = x->fn_base;
    bool saved_test = x->in_test;
    x->fn_base = x->n_locals;
    x->in_test = f->kind == F_TEST;
    bool ok = true;
    lower_buf params = {0};
    if (f->kind == F_ANON && !lower_sym_eq(f->lname, f->llen, "fn", 2)) {
        lisp_node self = *f->at;
        self.s = f->lname;
        self.len = f->llen;
        ok = lower_push_local(x, &self, NULL, T_FN, i);
    }
    uint32_t first_param = x->n_locals;
    for (uint32_t p = 0; ok && f->params && p < f->params->n; p++) {
        const lisp_node *pn = f->params->items[p];
        if (!lower_check_binding_name(x, pn, "a parameter")) {
            ok = false;
            break;
        }
        value_type t = f->host && p == 1 ? T_CANVAS : T_NUM;
        const char *cname =
            lower_fmt(x, "p__%s", lisp_mangle(x->a, pn->s, pn->len));
        for (uint32_t q = first_param; q < x->n_locals; q++)
            if (x->locals[q].cname && !strcmp(x->locals[q].cname, cname)) {
                lower_error(x, pn, "the parameter '%.*s' appears twice",
                            (int)pn->len, pn->s);
                ok = false;
            }
        if (!ok || !lower_push_local(x, pn, cname, t, -1)) {
            ok = false;
            break;
        }
        lower_buf_add(&params,
                      lower_fmt(x, "%s%s%s%s", p ? ", " : "", lower_c_type(t),
                                t == T_CANVAS ? "" : " ", cname));
    }
    local *target = NULL;
    uint32_t n_target = x->n_locals - first_param;
    if (ok && n_target) {
        target = lisp_alloc(x->a, n_target * sizeof *target);
        if (target)
            memcpy(target, x->locals + first_param, n_target * sizeof *target);
        else
            x->oom = true;
    }
    tail_dest k = {.discard = f->host || f->kind == F_TEST,
                   .target = target,
                   .n_target = n_target};
    static const lisp_node none = {0};
    const char *body = ok ? lower_tail_body(x, f->body, f->n_body,
                                            f->n_body ? f->body[0] : &none, &k)
                          : NULL;
    const char *pl = lower_buf_done(x, &params);
    f = &x->fns[i];
    x->n_locals = saved_locals;
    x->fn_base = saved_base;
    x->in_test = saved_test;
    x->fn_depth--;
    if (!body) {
        f->progress = FN_LOWERED;
        f->ret = T_NUM;
        return -1;
    }
    f->ret = k.discard ? T_VOID : k.has_t ? k.t : T_VOID;
    if (f->assumed_at && f->ret != T_NUM) {
        lower_error(
            x, f->assumed_at,
            "'%.*s' is called before its type is known (it calls itself, or "
            "is defined after a long chain of callers), so it must return a "
            "number; it returns %s",
            (int)f->llen, f->lname, lower_type_name(f->ret));
        f->progress = FN_LOWERED;
        return -1;
    }
    const char *stat =
        f->kind == F_VAR || f->kind == F_VALUE || f->kind == F_TEST ? ""
                                                                    : "static ";
    const char *head;
    if (f->kind == F_TEST)
        head = lower_fmt(x, "void %s(void)", f->cname);
    else
        head = lower_fmt(x, "%s%s %s(%s)", stat, lower_c_type(f->ret), f->cname,
                         *pl ? pl : "void");
    f->proto = lower_fmt(x, "%s%s;\n", lower_mark(x, f->at), head);
    f->code =
        lower_fmt(x, "%s%s {\n%s%s%s\n}\n", lower_mark(x, f->at), head,
                  k.recurs ? "for (;;) { " : "", body, k.recurs ? " }" : "");
    f->progress = FN_LOWERED;
    return 0;
}
