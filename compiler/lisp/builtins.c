/* builtins.c — the builtin functions (math, predicates, the drawing API),
 * arithmetic, min/max and comparison chains, and the static helpers every
 * lowered eval starts with. */
#include "lower.h"

#include <string.h>

/* Arguments: n number, i integer (saturated), u colour (saturated uint32),
 * C canvas. Results: d number, v nothing, u colour (a number), b boolean. */
typedef struct lower_builtin {
    const char *name;
    const char *cfn;
    const char *args;
    char ret;
} lower_builtin;

static const lower_builtin BUILTINS[] = {
    {"sin", "sin", "n", 'd'},
    {"cos", "cos", "n", 'd'},
    {"tan", "tan", "n", 'd'},
    {"asin", "asin", "n", 'd'},
    {"acos", "acos", "n", 'd'},
    {"atan", "atan", "n", 'd'},
    {"atan2", "atan2", "nn", 'd'},
    {"sinh", "sinh", "n", 'd'},
    {"cosh", "cosh", "n", 'd'},
    {"tanh", "tanh", "n", 'd'},
    {"exp", "exp", "n", 'd'},
    {"log", "log", "n", 'd'},
    {"log10", "log10", "n", 'd'},
    {"log2", "log2", "n", 'd'},
    {"pow", "pow", "nn", 'd'},
    {"sqrt", "sqrt", "n", 'd'},
    {"cbrt", "cbrt", "n", 'd'},
    {"hypot", "hypot", "nn", 'd'},
    {"abs", "fabs", "n", 'd'},
    {"floor", "floor", "n", 'd'},
    {"ceil", "ceil", "n", 'd'},
    {"round", "round", "n", 'd'},
    {"trunc", "trunc", "n", 'd'},
    {"rem", "fmod", "nn", 'd'},
    {"mod", "pbl_mod", "nn", 'd'},
    {"quot", "pbl_quot", "nn", 'd'},
    {"inc", "pbl_inc", "n", 'd'},
    {"dec", "pbl_dec", "n", 'd'},
    {"rand", "pbl_rand", "", 'd'},
    {"zero?", "pbl_zero", "n", 'b'},
    {"pos?", "pbl_pos", "n", 'b'},
    {"neg?", "pbl_neg", "n", 'b'},
    {"even?", "pbl_even", "n", 'b'},
    {"odd?", "pbl_odd", "n", 'b'},
    {"pb-clear", "pb_clear", "Cu", 'v'},
    {"pb-pixel", "pb_pixel", "Ciiu", 'v'},
    {"pb-rect", "pb_rect", "Ciiiiu", 'v'},
    {"pb-circle", "pb_circle", "Ciiiu", 'v'},
    {"pb-line", "pb_line", "Ciiiiu", 'v'},
    {"pb-rgb", "pb_rgb", "iii", 'u'},
    {"pb-rgba", "pb_rgba", "iiii", 'u'},
    {"pb-time", "pb_time", "", 'd'},
    {"pb-beat", "pb_beat", "", 'd'},
    {"pb-width", "pbl_width", "C", 'd'},
    {"pb-height", "pbl_height", "C", 'd'},
};

/* Forms and variadic functions handled in code (for messages and for
 * refusing them as names). */
static const char *const SPECIAL[] = {
    "if",    "when",  "when-not", "cond",    "do",    "let",     "loop",
    "recur", "fn",    "and",      "or",      "not",   "println", "print",
    "is",    "set!",  "swap!",    "reset!",  "deref", "quote",   "def",
    "defn",  "defn-", "defonce",  "deftest", "atom",  "+",       "-",
    "*",     "/",     "<",        ">",       "<=",    ">=",      "=",
    "==",    "not=",  "min",      "max",     "ns",    "comment", "declare"};

const lower_builtin *lower_find_builtin(const char *s, uint32_t len)
{
    if (len > 5 && !memcmp(s, "Math/", 5)) {
        s += 5;
        len -= 5;
    }
    for (size_t i = 0; i < sizeof BUILTINS / sizeof BUILTINS[0]; i++)
        if (lower_sym_eq(s, len, BUILTINS[i].name,
                         (uint32_t)strlen(BUILTINS[i].name)))
            return &BUILTINS[i];
    return NULL;
}

bool lower_is_special(const char *s, uint32_t len)
{
    for (size_t i = 0; i < sizeof SPECIAL / sizeof SPECIAL[0]; i++)
        if (lower_sym_eq(s, len, SPECIAL[i], (uint32_t)strlen(SPECIAL[i])))
            return true;
    return false;
}

const char lower_helpers[] =
    "static inline int pbl_i(double x) { return x != x ? 0 : x <= "
    "-2147483648.0 "
    "? (-2147483647 - 1) : x >= 2147483647.0 ? 2147483647 : (int)x; }\n"
    "static inline uint32_t pbl_u(double x) { return x != x || x <= 0 ? 0u : "
    "x >= 4294967295.0 ? 4294967295u : (uint32_t)x; }\n"
    "static inline double pbl_mod(double a, double b) { double m = fmod(a, b); "
    "return m != 0 && (m < 0) != (b < 0) ? m + b : m; }\n"
    "static inline double pbl_quot(double a, double b) { return trunc(a / b); "
    "}\n"
    "static inline double pbl_inc(double a) { return a + 1; }\n"
    "static inline double pbl_dec(double a) { return a - 1; }\n"
    "static inline double pbl_rand(void) { return (double)rand() / "
    "((double)RAND_MAX + 1); }\n"
    "static inline _Bool pbl_zero(double a) { return a == 0; }\n"
    "static inline _Bool pbl_pos(double a) { return a > 0; }\n"
    "static inline _Bool pbl_neg(double a) { return a < 0; }\n"
    "static inline _Bool pbl_even(double a) { return fmod(a, 2) == 0; }\n"
    "static inline _Bool pbl_odd(double a) { return fabs(fmod(a, 2)) == 1; }\n"
    "static inline double pbl_width(pb_canvas *c) { return c->width; }\n"
    "static inline double pbl_height(pb_canvas *c) { return c->height; }\n"
    "static inline double pbl_min(double a, double b) { return a != a || b != "
    "b ? a + b : a < b ? a : b; }\n"
    "static inline double pbl_max(double a, double b) { return a != a || b != "
    "b ? a + b : a > b ? a : b; }\n";
lowered lower_call_builtin(lowering *x, const lisp_node *n,
                           const lower_builtin *b)
{
    uint32_t want = (uint32_t)strlen(b->args), got = n->n - 1;
    if (got != want)
        return lower_error(x, n, "%s takes %u argument%s, given %u", b->name,
                           want, want == 1 ? "" : "s", got);
    const char *c = lower_call_text(x, n, b->cfn, 1, b->args);
    if (!c)
        return LOWERED_ERR;
    switch (b->ret) {
    case 'v': return (lowered){c, T_VOID, -1};
    case 'b': return (lowered){c, T_BOOL, -1};
    case 'u': return (lowered){lower_fmt(x, "((double)%s)", c), T_NUM, -1};
    default: return (lowered){c, T_NUM, -1};
    }
}

/* + - * / */
lowered lower_arith(lowering *x, const lisp_node *n, char op)
{
    uint32_t got = n->n - 1;
    if (got == 0) {
        if (op == '-' || op == '/')
            return lower_error(x, n, "(%c) needs at least one argument", op);
        return (lowered){op == '+' ? "0.0" : "1.0", T_NUM, -1};
    }
    lower_buf s = {0};
    lower_buf_add(&s, lower_mark(x, n));
    lower_buf_add(&s, "(");
    if (got == 1 && op == '-')
        lower_buf_add(&s, "-");
    if (got == 1 && op == '/')
        lower_buf_add(&s, "1.0 / ");
    bool ok = true;
    for (uint32_t i = 1; i <= got; i++) {
        const char *a =
            lower_need(x, n->items[i], lower_expr(x, n->items[i], true), T_NUM);
        ok = ok && a;
        if (!a)
            continue;
        if (i > 1)
            lower_buf_add(&s, lower_fmt(x, " %c ", op));
        lower_buf_add(&s, lower_fmt(x, "(%s)", a));
    }
    lower_buf_add(&s, ")");
    const char *c = lower_buf_done(x, &s);
    return ok ? (lowered){c, T_NUM, -1} : LOWERED_ERR;
}

lowered lower_minmax(lowering *x, const lisp_node *n, bool is_min)
{
    if (n->n < 2)
        return lower_error(x, n, "%s needs at least one argument",
                           is_min ? "min" : "max");
    const char *acc = NULL;
    for (uint32_t i = 1; i < n->n; i++) {
        const char *a =
            lower_need(x, n->items[i], lower_expr(x, n->items[i], true), T_NUM);
        if (!a)
            return LOWERED_ERR;
        acc =
            acc ? lower_fmt(x, "pbl_%s(%s, %s)", is_min ? "min" : "max", acc, a)
                : a;
    }
    return (lowered){lower_fmt(x, "%s%s", lower_mark(x, n), acc), T_NUM, -1};
}

/* < > <= >= = == not=: chains evaluate each argument once. */
lowered lower_compare(lowering *x, const lisp_node *n, const char *op)
{
    uint32_t got = n->n - 1;
    bool eq = !strcmp(op, "==") || !strcmp(op, "!=");
    if (got < 1)
        return lower_error(x, n, "a comparison needs at least one argument");
    lowered first = lower_expr(x, n->items[1], true);
    if (!first.c)
        return LOWERED_ERR;
    value_type t = first.t;
    if (!(t == T_NUM || (eq && t == T_BOOL)))
        return lower_error(x, n->items[1], "cannot compare %s",
                           lower_type_name(t));
    if (got == 1)
        return (lowered){lower_fmt(x, "((void)(%s), (_Bool)%d)", first.c,
                                   strcmp(op, "!=") != 0),
                         T_BOOL, -1};
    if (!strcmp(op, "!=") && got != 2)
        return lower_error(x, n, "not= takes two arguments here");
    const char **args = lisp_alloc(x->a, got * sizeof *args);
    if (!args) {
        x->oom = true;
        return LOWERED_ERR;
    }
    args[0] = first.c;
    bool ok = true;
    for (uint32_t i = 2; i <= got; i++) {
        args[i - 1] =
            lower_need(x, n->items[i], lower_expr(x, n->items[i], true), t);
        ok = ok && args[i - 1];
    }
    if (!ok)
        return LOWERED_ERR;
    if (got == 2)
        return (lowered){lower_fmt(x, "%s((%s) %s (%s))", lower_mark(x, n),
                                   args[0], op, args[1]),
                         T_BOOL, -1};
    lower_buf s = {0};
    lower_buf_add(&s, lower_mark(x, n));
    lower_buf_add(&s, "({ ");
    uint32_t base = x->tmp;
    x->tmp += got;
    for (uint32_t i = 0; i < got; i++)
        lower_buf_add(&s, lower_fmt(x, "%s l__c%u = %s; ", lower_c_type(t),
                                    base + i, args[i]));
    for (uint32_t i = 0; i + 1 < got; i++)
        lower_buf_add(&s, lower_fmt(x, "%sl__c%u %s l__c%u", i ? " && " : "",
                                    base + i, op, base + i + 1));
    lower_buf_add(&s, "; })");
    return (lowered){lower_buf_done(x, &s), T_BOOL, -1};
}
