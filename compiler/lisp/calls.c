/* calls.c — calls: of a function of this eval (lowered first when it is
 * defined later, for its type), and of the room's vars through the C
 * prototype the room recorded (arity, parameter kinds, result type). */
#include "lower.h"

#include <string.h>

/* The C call cfn(a, b, …) of n's arguments n->items[first…], one per
 * letter of kinds, each lowered as lower_arg_as that kind; NULL after an
 * error (every argument is still checked, so all errors are reported). */
const char *lower_call_text(lowering *x, const lisp_node *n, const char *cfn,
                            uint32_t first, const char *kinds)
{
    lower_buf s = {0};
    lower_buf_add(&s, lower_mark(x, n));
    lower_buf_add(&s, cfn);
    lower_buf_add(&s, "(");
    bool ok = true;
    for (uint32_t i = 0; kinds[i]; i++) {
        const char *a = lower_arg_as(x, n->items[first + i], kinds[i]);
        ok = ok && a;
        if (a) {
            if (i)
                lower_buf_add(&s, ", ");
            lower_buf_add(&s, a);
        }
    }
    lower_buf_add(&s, ")");
    const char *c = lower_buf_done(x, &s);
    return ok ? c : NULL;
}

/* Calls a function of this patch (or an fn) with the call's arguments. */
lowered lower_call_fn(lowering *x, const lisp_node *n, int fi, uint32_t first)
{
    fn_def *f = &x->fns[fi];
    uint32_t got = n->n - first;
    /* A callee defined later is lowered first, for its type; a long chain
     * of them is left for the main loop (bounded recursion), as for a
     * recursive call: the call assumes a number and lower_fn checks. */
    if (f->progress == FN_PENDING && x->fn_depth < LISP_MAX_FN_NESTING &&
        lower_fn(x, fi) < 0)
        return LOWERED_ERR;
    f = &x->fns[fi]; /* lower_fn may grow the table */
    value_type ret = f->ret;
    if (f->progress != FN_LOWERED) { /* recursion: the type is not known yet */
        ret = T_NUM;
        if (!f->assumed_at)
            f->assumed_at = n;
    }
    /* numbers, and the canvas for a host function's second parameter */
    char *kinds = lisp_alloc(x->a, got + 1);
    if (!kinds) {
        x->oom = true;
        return LOWERED_ERR;
    }
    for (uint32_t i = 0; i < got; i++)
        kinds[i] = f->host && i == 1 ? 'C' : 'n';
    kinds[got] = '\0';
    /* lowering the arguments may add fns and move the table: f is stale */
    const char *c = lower_call_text(x, n, f->cname, first, kinds);
    return c ? (lowered){c, ret, -1} : LOWERED_ERR;
}

/* The type a room var's C prototype returns, and its parameter kinds. */
static bool room_var_types(const lisp_room_var *v, value_type *ret,
                           char *params, size_t cap)
{
    size_t np = strlen(v->sig) - 1;
    if (np >= cap)
        return false;
    *ret = v->sig[0] == 'v' ? T_VOID : T_NUM;
    for (size_t i = 0; i < np; i++)
        params[i] = 'n';
    params[np] = '\0';
    if (!v->decl)
        return true;
    const char *open = strchr(v->decl, '(');
    if (!open)
        return true;
    size_t name_at = (size_t)(open - v->decl);
    if (!strncmp(v->decl, "_Bool", 5) || !strncmp(v->decl, "bool ", 5))
        *ret = T_BOOL;
    else if (memchr(v->decl, '*', name_at))
        return false; /* returns a pointer */
    const char *p = open + 1;
    for (size_t i = 0; i < np && *p; i++) {
        const char *end = p;
        int depth = 0;
        while (*end && (depth || (*end != ',' && *end != ')'))) {
            depth += *end == '(';
            depth -= *end == ')';
            end++;
        }
        if (memchr(p, '*', (size_t)(end - p))) {
            const char *cv = strstr(p, "pb_canvas");
            if (!cv || cv > end)
                return false;
            params[i] = 'C';
        }
        p = *end ? end + 1 : end;
    }
    return true;
}

const lisp_room_var *lower_find_room_var(lowering *x, const char *cname)
{
    for (uint32_t i = 0; i < x->n_vars; i++)
        if (!strcmp(x->vars[i].name, cname))
            return &x->vars[i];
    return NULL;
}

lowered lower_call_room_var(lowering *x, const lisp_node *n,
                            const lisp_room_var *v, uint32_t first)
{
    value_type ret;
    char params[64];
    if (!room_var_types(v, &ret, params, sizeof params))
        return lower_error(
            x, n,
            "'%s' (%s) takes or returns pointers; it cannot be called "
            "from Lisp",
            v->name, v->decl ? v->decl : v->sig);
    uint32_t want = (uint32_t)strlen(params), got = n->n - first;
    if (want != got)
        return lower_error(x, n, "'%s' takes %u argument%s (%s), given %u",
                           v->name, want, want == 1 ? "" : "s",
                           v->decl ? v->decl : v->sig, got);
    const char *c = lower_call_text(x, n, v->name, first, params);
    return c ? (lowered){c, ret, -1} : LOWERED_ERR;
}

/* The patch function or room var called (f a b …), by name and arity. */
lowered lower_call_named(lowering *x, const lisp_node *n, const lisp_node *head)
{
    uint32_t got = n->n - 1;
    bool outer = false;
    const local *l = lower_find_local(x, head->s, head->len, &outer);
    if (l) {
        if (outer && l->t != T_FN)
            return lower_error(
                x, head,
                "fn cannot use '%.*s' of the function around it "
                "(closures are not supported); pass it as an argument",
                (int)head->len, head->s);
        if (l->t != T_FN)
            return lower_error(x, head, "'%.*s' is %s, not a function",
                               (int)head->len, head->s, lower_type_name(l->t));
        if (x->fns[l->fn_index].arity != got)
            return lower_error(x, n, "this fn takes %u argument%s, given %u",
                               x->fns[l->fn_index].arity,
                               x->fns[l->fn_index].arity == 1 ? "" : "s", got);
        return lower_call_fn(x, n, l->fn_index, 1);
    }
    bool named = false;
    for (uint32_t i = 0; i < x->n_fns; i++) {
        fn_def *f = &x->fns[i];
        if (f->kind == F_ANON || f->kind == F_TEST ||
            !lower_sym_eq(f->lname, f->llen, head->s, head->len))
            continue;
        named = true;
        if (f->kind == F_VALUE)
            return lower_error(
                x, head,
                "'%.*s' is a value (def), not a function; use it "
                "without parentheses",
                (int)head->len, head->s);
        if (f->arity == got)
            return lower_call_fn(x, n, (int)i, 1);
    }
    if (named)
        return lower_error(x, n,
                           "'%.*s' is not defined with %u argument%s here",
                           (int)head->len, head->s, got, got == 1 ? "" : "s");
    const lower_builtin *b = lower_find_builtin(head->s, head->len);
    if (b)
        return lower_call_builtin(x, n, b);
    const char *cname = lisp_mangle(x->a, head->s, head->len);
    if (cname) {
        const lisp_room_var *v = lower_find_room_var(x, cname);
        const lisp_room_var *va =
            lower_find_room_var(x, lower_fmt(x, "%s__%u", cname, got));
        if (va)
            return lower_call_room_var(x, n, va, 1);
        if (v)
            return lower_call_room_var(x, n, v, 1);
    }
    if (lower_find_state(x, head->s, head->len))
        return lower_error(x, head, "'%.*s' is state (defonce), not a function",
                           (int)head->len, head->s);
    return lower_error(
        x, head,
        "unknown function '%.*s': not defined in this eval, not a var "
        "of the room, not a builtin",
        (int)head->len, head->s);
}
