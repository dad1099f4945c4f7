/* errors.c — errors at Lisp positions (one per position, at most
 * LISP_MAX_ERRORS per eval) and the checks of a value's kind that make most
 * of them: conditions must be booleans (docs/LISP.md § The value model). */
#include "lower.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *lower_type_name(value_type t)
{
    static const char *const n[] = {"a number",   "a boolean",  "nil",
                                    "the canvas", "a function", "a string"};
    return n[t];
}

lowered lower_error(lowering *x, const lisp_node *n, const char *f, ...)
{
    lisp_c *o = x->out;
    for (uint32_t i = 0; i < o->n_errs; i++)
        if (o->errs[i].line == n->line && o->errs[i].col == n->col)
            return LOWERED_ERR; /* one message per position */
    if (o->n_errs < LISP_MAX_ERRORS) {
        lisp_error *e = &o->errs[o->n_errs++];
        e->line = n->line;
        e->col = n->col;
        va_list ap;
        va_start(ap, f);
        vsnprintf(e->message, sizeof e->message, f, ap);
        va_end(ap);
    }
    return LOWERED_ERR;
}

/* A condition: a boolean (or the literal nil, which is false). */
const char *lower_condition(lowering *x, const lisp_node *n)
{
    lowered v = lower_expr(x, n, true);
    if (!v.c)
        return NULL;
    if (v.t == T_BOOL)
        return v.c;
    if (n->kind == LISP_NIL)
        return "0";
    if (v.t == T_NUM)
        lower_error(
            x, n,
            "this condition is a number, which is always true in Clojure; "
            "compare it instead, e.g. (pos? x) or (not= x 0)");
    else
        lower_error(x, n, "a condition must be a boolean, not %s",
                    lower_type_name(v.t));
    return NULL;
}

const char *lower_need(lowering *x, const lisp_node *n, lowered v, value_type t)
{
    if (!v.c)
        return NULL;
    if (v.t != t) {
        if (v.t == T_FN && t == T_NUM)
            lower_error(x, n, "this is a function; to use its value, call it");
        else if (v.t == T_STR)
            lower_error(
                x, n,
                "strings can only be printed (println \"…\"); there are no "
                "string values");
        else
            lower_error(x, n, "expected %s here, not %s", lower_type_name(t),
                        lower_type_name(v.t));
        return NULL;
    }
    return v.c;
}

const char *lower_arg_as(lowering *x, const lisp_node *n, char kind)
{
    if (kind == 'C')
        return lower_need(x, n, lower_expr(x, n, true), T_CANVAS);
    const char *c = lower_need(x, n, lower_expr(x, n, true), T_NUM);
    if (!c)
        return NULL;
    return kind == 'i'   ? lower_fmt(x, "pbl_i(%s)", c)
           : kind == 'u' ? lower_fmt(x, "pbl_u(%s)", c)
                         : c;
}
