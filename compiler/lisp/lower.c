/* lower.c — the forms of one Lisp eval to C that follows the patch ABI
 * (docs/PATCH_ABI.md), checked on the way so that errors are reported at
 * the Lisp form, and with a position map for whatever clang still finds.
 *
 * The value model (docs/LISP.md): every value is a number (a C double), a
 * boolean, nil, or — inside pb-frame — the canvas. Conditions must be
 * booleans: a number is always true in Clojure, which is never what a test
 * such as (if x …) means here, so it is an error. Expressions lower to C
 * expressions (GNU statement expressions for let, do and loop); a function
 * body lowers in "tail" form, where recur becomes assignments and continue.
 * Positions travel inside the C text as markers "\1LINE:COL\2" and are
 * stripped into the map at the end, so nested strings can be built freely. */
#include "lisp.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Nested lowering of callees defined later in the eval (see call_pfn). */
#define LISP_MAX_FN_NESTING 16u

typedef enum ltype { T_NUM, T_BOOL, T_VOID, T_CANVAS, T_FN, T_STR } ltype;

static const char *type_name(ltype t)
{
    static const char *const n[] = {"a number", "a boolean", "nil",
                                    "the canvas", "a function", "a string"};
    return n[t];
}

static const char *c_type(ltype t)
{
    return t == T_NUM    ? "double"
           : t == T_BOOL ? "_Bool"
           : t == T_CANVAS ? "pb_canvas *"
                           : "void";
}

/* A lowered expression; c == NULL after an error (already reported). */
typedef struct lv {
    const char *c;
    ltype t;
    int fn; /* T_FN: index into ctx.fns */
} lv;

static const lv LV_ERR = {NULL, T_VOID, -1};

typedef struct local {
    const char *name;
    uint32_t len;
    const char *cname; /* NULL for a nil binding */
    ltype t;
    int fn;
} local;

typedef enum fkind {
    F_VAR,     /* defn: a var */
    F_PRIVATE, /* defn-: a static function */
    F_ANON,    /* fn: a static function */
    F_VALUE,   /* def of a value: a var of no arguments, read without a call */
    F_TEST,    /* deftest */
} fkind;

typedef struct pfn {
    const lisp_node *at;
    const char *lname;
    uint32_t llen;
    const char *cname;
    const lisp_node *params; /* a vector; NULL for F_VALUE and F_TEST */
    lisp_node *const *body;
    uint32_t n_body;
    uint32_t arity;
    fkind kind;
    bool host; /* pb-frame or pb-init: fixed signature, returns nothing */
    int state; /* 0 not lowered, 1 being lowered, 2 done */
    ltype ret;
    const lisp_node *assumed_at; /* a recursive call assumed a number */
    const char *code;
    const char *proto;
} pfn;

typedef struct lstate {
    const char *lname;
    uint32_t llen;
    const char *cname;
    const lisp_node *at;
    double init;
} lstate;

/* Where a value in tail position goes. */
typedef struct tailk {
    bool loop;           /* false: return from the function */
    bool discard;        /* host functions and tests return nothing */
    const char *rvar;    /* loop: the result variable */
    const local *target; /* the recur target's bindings */
    uint32_t n_target;
    bool has_t;
    ltype t;
    const lisp_node *t_at;
    bool recurs;
} tailk;

typedef struct ctx {
    lisp_arena *a;
    const char *src;
    const lisp_room_var *vars;
    uint32_t n_vars;
    pfn *fns;
    uint32_t n_fns, cap_fns;
    lstate *states;
    uint32_t n_states, cap_states;
    local *locals;
    uint32_t n_locals, cap_locals;
    uint32_t fn_base; /* locals below belong to an enclosing function */
    uint32_t tmp;
    uint32_t fn_depth; /* lower_fn calls in progress */
    bool in_test;
    bool oom;
    lisp_c *out;
} ctx;

/* ---- text ------------------------------------------------------------------- */

static const char *fmt(ctx *x, const char *f, ...)
    __attribute__((format(printf, 2, 3)));
static const char *fmt(ctx *x, const char *f, ...)
{
    va_list ap, aq;
    va_start(ap, f);
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    char *s = n >= 0 ? lisp_alloc(x->a, (size_t)n + 1) : NULL;
    if (s)
        vsnprintf(s, (size_t)n + 1, f, aq);
    else
        x->oom = true;
    va_end(aq);
    return s ? s : "";
}

/* A growable buffer for longer pieces; sb_done moves it into the arena. */
typedef struct sb {
    char *s;
    size_t len, cap;
    bool oom;
} sb;

static void sb_add(sb *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *t = realloc(b->s, cap);
        if (!t) {
            b->oom = true;
            return;
        }
        b->s = t;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n + 1);
    b->len += n;
}

static const char *sb_done(ctx *x, sb *b)
{
    char *s = lisp_alloc(x->a, b->len + 1);
    if (!s || b->oom)
        x->oom = true;
    else if (b->len)
        memcpy(s, b->s, b->len);
    free(b->s);
    *b = (sb){0};
    return s && !x->oom ? s : "";
}

static const char *mark(ctx *x, const lisp_node *n)
{
    return fmt(x, "\1%u:%u\2", n->line, n->col);
}

static const char *num_lit(ctx *x, double v)
{
    char b[40];
    snprintf(b, sizeof b, "%.17g", v);
    bool plain = !strpbrk(b, ".eni");
    return fmt(x, v < 0 ? "(%s%s)" : "%s%s", b, plain ? ".0" : "");
}

static const char *str_lit(ctx *x, const char *s, size_t n)
{
    sb b = {0};
    sb_add(&b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[8];
        if (c == '"' || c == '\\')
            snprintf(e, sizeof e, "\\%c", c);
        else if (c < 32 || c >= 127 || c == '?')
            snprintf(e, sizeof e, "\\%03o", c); /* also no trigraphs */
        else
            snprintf(e, sizeof e, "%c", c);
        sb_add(&b, e);
    }
    sb_add(&b, "\"");
    return sb_done(x, &b);
}

/* ---- errors ----------------------------------------------------------------- */

static lv err(ctx *x, const lisp_node *n, const char *f, ...)
    __attribute__((format(printf, 3, 4)));
static lv err(ctx *x, const lisp_node *n, const char *f, ...)
{
    lisp_c *o = x->out;
    for (uint32_t i = 0; i < o->n_errs; i++)
        if (o->errs[i].line == n->line && o->errs[i].col == n->col)
            return LV_ERR; /* one message per position */
    if (o->n_errs < LISP_MAX_ERRORS) {
        lisp_error *e = &o->errs[o->n_errs++];
        e->line = n->line;
        e->col = n->col;
        va_list ap;
        va_start(ap, f);
        vsnprintf(e->message, sizeof e->message, f, ap);
        va_end(ap);
    }
    return LV_ERR;
}

static bool is_sym(const lisp_node *n, const char *s)
{
    return n && n->kind == LISP_SYM && n->len == strlen(s) &&
           !memcmp(n->s, s, n->len);
}

static bool sym_eq(const char *a, uint32_t al, const char *b, uint32_t bl)
{
    return al == bl && !memcmp(a, b, al);
}

/* ---- names ------------------------------------------------------------------ */

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

static bool is_c_reserved(const char *s)
{
    static const char *const kw[] = {
        "auto", "break", "case", "char", "const", "continue", "default", "do",
        "double", "else", "enum", "extern", "float", "for", "goto", "if",
        "inline", "int", "long", "register", "restrict", "return", "short",
        "signed", "sizeof", "static", "struct", "switch", "typedef", "union",
        "unsigned", "void", "volatile", "while", "bool", "true", "false",
        "asm", "typeof", "main", "NULL", "stdout", "stderr", "errno"};
    for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++)
        if (!strcmp(s, kw[i]))
            return true;
    /* generated names: pbl_ helpers, p__/l__/r__ locals, f__N arities */
    return s[0] == '_' || !strncmp(s, "pbl_", 4) || strstr(s, "__");
}

/* ---- builtins ----------------------------------------------------------------
 * Arguments: n number, i integer (saturated), u colour (saturated uint32),
 * C canvas. Results: d number, v nothing, u colour (a number), b boolean. */
typedef struct builtin {
    const char *name;
    const char *cfn;
    const char *args;
    char ret;
} builtin;

static const builtin BUILTINS[] = {
    {"sin", "sin", "n", 'd'},        {"cos", "cos", "n", 'd'},
    {"tan", "tan", "n", 'd'},        {"asin", "asin", "n", 'd'},
    {"acos", "acos", "n", 'd'},      {"atan", "atan", "n", 'd'},
    {"atan2", "atan2", "nn", 'd'},   {"sinh", "sinh", "n", 'd'},
    {"cosh", "cosh", "n", 'd'},      {"tanh", "tanh", "n", 'd'},
    {"exp", "exp", "n", 'd'},        {"log", "log", "n", 'd'},
    {"log10", "log10", "n", 'd'},    {"log2", "log2", "n", 'd'},
    {"pow", "pow", "nn", 'd'},       {"sqrt", "sqrt", "n", 'd'},
    {"cbrt", "cbrt", "n", 'd'},      {"hypot", "hypot", "nn", 'd'},
    {"abs", "fabs", "n", 'd'},       {"floor", "floor", "n", 'd'},
    {"ceil", "ceil", "n", 'd'},      {"round", "round", "n", 'd'},
    {"trunc", "trunc", "n", 'd'},    {"rem", "fmod", "nn", 'd'},
    {"mod", "pbl_mod", "nn", 'd'},   {"quot", "pbl_quot", "nn", 'd'},
    {"inc", "pbl_inc", "n", 'd'},    {"dec", "pbl_dec", "n", 'd'},
    {"rand", "pbl_rand", "", 'd'},   {"zero?", "pbl_zero", "n", 'b'},
    {"pos?", "pbl_pos", "n", 'b'},   {"neg?", "pbl_neg", "n", 'b'},
    {"even?", "pbl_even", "n", 'b'}, {"odd?", "pbl_odd", "n", 'b'},
    {"pb-clear", "pb_clear", "Cu", 'v'},
    {"pb-pixel", "pb_pixel", "Ciiu", 'v'},
    {"pb-rect", "pb_rect", "Ciiiiu", 'v'},
    {"pb-circle", "pb_circle", "Ciiiu", 'v'},
    {"pb-line", "pb_line", "Ciiiiu", 'v'},
    {"pb-rgb", "pb_rgb", "iii", 'u'},
    {"pb-rgba", "pb_rgba", "iiii", 'u'},
    {"pb-time", "pb_time", "", 'd'}, {"pb-beat", "pb_beat", "", 'd'},
    {"pb-width", "pbl_width", "C", 'd'},
    {"pb-height", "pbl_height", "C", 'd'},
};

/* Forms and variadic functions handled in code (for messages and for
 * refusing them as names). */
static const char *const SPECIAL[] = {
    "if", "when", "when-not", "cond", "do", "let", "loop", "recur", "fn",
    "and", "or", "not", "println", "print", "is", "set!", "swap!", "reset!",
    "deref", "quote", "def", "defn", "defn-", "defonce", "deftest", "atom",
    "+", "-", "*", "/", "<", ">", "<=", ">=", "=", "==", "not=", "min", "max",
    "ns", "comment", "declare"};

static const builtin *find_builtin(const char *s, uint32_t len)
{
    if (len > 5 && !memcmp(s, "Math/", 5)) {
        s += 5;
        len -= 5;
    }
    for (size_t i = 0; i < sizeof BUILTINS / sizeof BUILTINS[0]; i++)
        if (sym_eq(s, len, BUILTINS[i].name, (uint32_t)strlen(BUILTINS[i].name)))
            return &BUILTINS[i];
    return NULL;
}

static bool is_special(const char *s, uint32_t len)
{
    for (size_t i = 0; i < sizeof SPECIAL / sizeof SPECIAL[0]; i++)
        if (sym_eq(s, len, SPECIAL[i], (uint32_t)strlen(SPECIAL[i])))
            return true;
    return false;
}

static const char HELPERS[] =
    "static inline int pbl_i(double x) { return x != x ? 0 : x <= -2147483648.0 "
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

/* ---- scopes ------------------------------------------------------------------ */

static bool push_local(ctx *x, const lisp_node *name, const char *cname,
                       ltype t, int fn)
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
static const local *find_local(ctx *x, const char *s, uint32_t len,
                               bool *outer)
{
    for (uint32_t i = x->n_locals; i-- > 0;)
        if (sym_eq(x->locals[i].name, x->locals[i].len, s, len)) {
            *outer = i < x->fn_base;
            return &x->locals[i];
        }
    return NULL;
}

static const lstate *find_state(ctx *x, const char *s, uint32_t len)
{
    for (uint32_t i = 0; i < x->n_states; i++)
        if (sym_eq(x->states[i].lname, x->states[i].llen, s, len))
            return &x->states[i];
    return NULL;
}

/* A binding name: a plain symbol that is not a reserved word. */
static bool check_binding_name(ctx *x, const lisp_node *n, const char *what)
{
    if (n->kind != LISP_SYM) {
        err(x, n,
            "%s must be a symbol%s", what,
            n->kind == LISP_VECTOR || n->kind == LISP_MAP
                ? " (destructuring is not supported)"
                : "");
        return false;
    }
    if (is_sym(n, "&")) {
        err(x, n, "variadic parameters (&) are not supported");
        return false;
    }
    if (!lisp_mangle(x->a, n->s, n->len) || memchr(n->s, '/', n->len) ||
        memchr(n->s, '.', n->len)) {
        err(x, n, "'%.*s' cannot be used as a name here", (int)n->len, n->s);
        return false;
    }
    return true;
}

/* ---- lowering: declarations -------------------------------------------------- */

static lv lower(ctx *x, const lisp_node *n, bool want);
static const char *lower_tail(ctx *x, const lisp_node *n, tailk *k);
static int lower_fn(ctx *x, int i);

/* A condition: a boolean (or the literal nil, which is false). */
static const char *lower_cond(ctx *x, const lisp_node *n)
{
    lv v = lower(x, n, true);
    if (!v.c)
        return NULL;
    if (v.t == T_BOOL)
        return v.c;
    if (n->kind == LISP_NIL)
        return "0";
    if (v.t == T_NUM)
        err(x, n,
            "this condition is a number, which is always true in Clojure; "
            "compare it instead, e.g. (pos? x) or (not= x 0)");
    else
        err(x, n, "a condition must be a boolean, not %s", type_name(v.t));
    return NULL;
}

static const char *need(ctx *x, const lisp_node *n, lv v, ltype t)
{
    if (!v.c)
        return NULL;
    if (v.t != t) {
        if (v.t == T_FN && t == T_NUM)
            err(x, n, "this is a function; to use its value, call it");
        else if (v.t == T_STR)
            err(x, n,
                "strings can only be printed (println \"…\"); there are no "
                "string values");
        else
            err(x, n, "expected %s here, not %s", type_name(t),
                type_name(v.t));
        return NULL;
    }
    return v.c;
}

static const char *arg_as(ctx *x, const lisp_node *n, char kind)
{
    if (kind == 'C')
        return need(x, n, lower(x, n, true), T_CANVAS);
    const char *c = need(x, n, lower(x, n, true), T_NUM);
    if (!c)
        return NULL;
    return kind == 'i'   ? fmt(x, "pbl_i(%s)", c)
           : kind == 'u' ? fmt(x, "pbl_u(%s)", c)
                         : c;
}

/* ---- calls ------------------------------------------------------------------- */

static lv call_builtin(ctx *x, const lisp_node *n, const builtin *b)
{
    uint32_t want = (uint32_t)strlen(b->args), got = n->n - 1;
    if (got != want)
        return err(x, n, "%s takes %u argument%s, given %u", b->name, want,
                   want == 1 ? "" : "s", got);
    sb s = {0};
    sb_add(&s, mark(x, n));
    sb_add(&s, b->cfn);
    sb_add(&s, "(");
    bool ok = true;
    for (uint32_t i = 0; i < want; i++) {
        const char *a = arg_as(x, n->items[i + 1], b->args[i]);
        ok = ok && a;
        if (a) {
            if (i)
                sb_add(&s, ", ");
            sb_add(&s, a);
        }
    }
    sb_add(&s, ")");
    const char *c = sb_done(x, &s);
    if (!ok)
        return LV_ERR;
    switch (b->ret) {
    case 'v': return (lv){c, T_VOID, -1};
    case 'b': return (lv){c, T_BOOL, -1};
    case 'u': return (lv){fmt(x, "((double)%s)", c), T_NUM, -1};
    default: return (lv){c, T_NUM, -1};
    }
}

/* Calls a function of this patch (or an fn) with the call's arguments. */
static lv call_pfn(ctx *x, const lisp_node *n, int fi, uint32_t first)
{
    pfn *f = &x->fns[fi];
    uint32_t got = n->n - first;
    /* A callee defined later is lowered first, for its type; a long chain
     * of them is left for the main loop (bounded recursion), as for a
     * recursive call: the call assumes a number and lower_fn checks. */
    if (f->state == 0 && x->fn_depth < LISP_MAX_FN_NESTING &&
        lower_fn(x, fi) < 0)
        return LV_ERR;
    f = &x->fns[fi]; /* lower_fn may grow the table */
    ltype ret = f->ret;
    if (f->state != 2) { /* recursion: the type is not known yet */
        ret = T_NUM;
        if (!f->assumed_at)
            f->assumed_at = n;
    }
    /* lowering the arguments may add fns and move the table */
    const char *cname = f->cname;
    bool host = f->host;
    sb s = {0};
    sb_add(&s, mark(x, n));
    sb_add(&s, cname);
    sb_add(&s, "(");
    bool ok = true;
    for (uint32_t i = 0; i < got; i++) {
        ltype pt = host && i == 1 ? T_CANVAS : T_NUM;
        const char *a = need(x, n->items[first + i],
                             lower(x, n->items[first + i], true), pt);
        ok = ok && a;
        if (a) {
            if (i)
                sb_add(&s, ", ");
            sb_add(&s, a);
        }
    }
    sb_add(&s, ")");
    const char *c = sb_done(x, &s);
    return ok ? (lv){c, ret, -1} : LV_ERR;
}

/* The type a room var's C prototype returns, and its parameter kinds. */
static bool room_var_types(const lisp_room_var *v, ltype *ret, char *params,
                           size_t cap)
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

static const lisp_room_var *find_room_var(ctx *x, const char *cname)
{
    for (uint32_t i = 0; i < x->n_vars; i++)
        if (!strcmp(x->vars[i].name, cname))
            return &x->vars[i];
    return NULL;
}

static lv call_room_var(ctx *x, const lisp_node *n, const lisp_room_var *v,
                        uint32_t first)
{
    ltype ret;
    char params[64];
    if (!room_var_types(v, &ret, params, sizeof params))
        return err(x, n,
                   "'%s' (%s) takes or returns pointers; it cannot be called "
                   "from Lisp",
                   v->name, v->decl ? v->decl : v->sig);
    uint32_t want = (uint32_t)strlen(params), got = n->n - first;
    if (want != got)
        return err(x, n, "'%s' takes %u argument%s (%s), given %u", v->name,
                   want, want == 1 ? "" : "s", v->decl ? v->decl : v->sig, got);
    sb s = {0};
    sb_add(&s, mark(x, n));
    sb_add(&s, v->name);
    sb_add(&s, "(");
    bool ok = true;
    for (uint32_t i = 0; i < got; i++) {
        const char *a = arg_as(x, n->items[first + i], params[i]);
        ok = ok && a;
        if (a) {
            if (i)
                sb_add(&s, ", ");
            sb_add(&s, a);
        }
    }
    sb_add(&s, ")");
    const char *c = sb_done(x, &s);
    return ok ? (lv){c, ret, -1} : LV_ERR;
}

/* The patch function or room var called (f a b …), by name and arity. */
static lv call_named(ctx *x, const lisp_node *n, const lisp_node *head)
{
    uint32_t got = n->n - 1;
    bool outer = false;
    const local *l = find_local(x, head->s, head->len, &outer);
    if (l) {
        if (outer && l->t != T_FN)
            return err(x, head,
                       "fn cannot use '%.*s' of the function around it "
                       "(closures are not supported); pass it as an argument",
                       (int)head->len, head->s);
        if (l->t != T_FN)
            return err(x, head, "'%.*s' is %s, not a function", (int)head->len,
                       head->s, type_name(l->t));
        if (x->fns[l->fn].arity != got)
            return err(x, n, "this fn takes %u argument%s, given %u",
                       x->fns[l->fn].arity, x->fns[l->fn].arity == 1 ? "" : "s",
                       got);
        return call_pfn(x, n, l->fn, 1);
    }
    bool named = false;
    for (uint32_t i = 0; i < x->n_fns; i++) {
        pfn *f = &x->fns[i];
        if (f->kind == F_ANON || f->kind == F_TEST ||
            !sym_eq(f->lname, f->llen, head->s, head->len))
            continue;
        named = true;
        if (f->kind == F_VALUE)
            return err(x, head,
                       "'%.*s' is a value (def), not a function; use it "
                       "without parentheses",
                       (int)head->len, head->s);
        if (f->arity == got)
            return call_pfn(x, n, (int)i, 1);
    }
    if (named)
        return err(x, n, "'%.*s' is not defined with %u argument%s here",
                   (int)head->len, head->s, got, got == 1 ? "" : "s");
    const builtin *b = find_builtin(head->s, head->len);
    if (b)
        return call_builtin(x, n, b);
    const char *cname = lisp_mangle(x->a, head->s, head->len);
    if (cname) {
        const lisp_room_var *v = find_room_var(x, cname);
        const lisp_room_var *va = find_room_var(x, fmt(x, "%s__%u", cname, got));
        if (va)
            return call_room_var(x, n, va, 1);
        if (v)
            return call_room_var(x, n, v, 1);
    }
    if (find_state(x, head->s, head->len))
        return err(x, head, "'%.*s' is state (defonce), not a function",
                   (int)head->len, head->s);
    return err(x, head,
               "unknown function '%.*s': not defined in this eval, not a var "
               "of the room, not a builtin",
               (int)head->len, head->s);
}

/* ---- lowering: special forms -------------------------------------------------- */

/* Sequential bindings [a 1 b (+ a 1)] as C declarations; pushes locals. */
static bool bind_all(ctx *x, const lisp_node *form, const char *what,
                     sb *decls, bool need_values)
{
    const lisp_node *vec = form->n > 1 ? form->items[1] : NULL;
    if (!vec || vec->kind != LISP_VECTOR) {
        err(x, vec ? vec : form, "%s needs a binding vector [name value …]",
            what);
        return false;
    }
    if (vec->n % 2) {
        err(x, vec,
            "%s bindings come in pairs [name value …]; this vector has %u "
            "form%s",
            what, vec->n, vec->n == 1 ? "" : "s");
        return false;
    }
    for (uint32_t i = 0; i < vec->n; i += 2) {
        const lisp_node *name = vec->items[i], *val = vec->items[i + 1];
        if (!check_binding_name(x, name, "a binding name"))
            return false;
        lv v = lower(x, val, true);
        if (!v.c)
            return false;
        if (v.t == T_STR) {
            need(x, val, v, T_NUM);
            return false;
        }
        if (need_values && v.t != T_NUM && v.t != T_BOOL) {
            err(x, val, "loop bindings must be numbers or booleans, not %s",
                type_name(v.t));
            return false;
        }
        const char *cname = NULL;
        if (v.t == T_VOID) {
            sb_add(decls, fmt(x, "%s; ", v.c));
        } else if (v.t != T_FN) {
            cname = fmt(x, "l__%s_%u", lisp_mangle(x->a, name->s, name->len),
                        ++x->tmp);
            sb_add(decls, fmt(x, "%s %s = %s; ", c_type(v.t), cname, v.c));
        }
        if (!push_local(x, name, cname, v.t, v.fn))
            return false;
    }
    return true;
}

/* (do a b c) as an expression: a and b for effect, c's value. */
static lv lower_body(ctx *x, lisp_node *const *body, uint32_t n, bool want,
                     const lisp_node *at)
{
    if (n == 0)
        return (lv){"((void)0)", T_VOID, -1};
    if (n == 1)
        return lower(x, body[0], want);
    sb s = {0};
    sb_add(&s, "({ ");
    bool ok = true;
    lv last = LV_ERR;
    for (uint32_t i = 0; i < n; i++) {
        lv v = lower(x, body[i], want && i == n - 1);
        ok = ok && v.c;
        if (!v.c)
            continue;
        if (i < n - 1)
            sb_add(&s, fmt(x, "(void)(%s); ", v.c));
        else
            last = v;
    }
    if (ok && last.t == T_FN)
        ok = false, err(x, body[n - 1], "a function cannot be the value here");
    if (ok)
        sb_add(&s, fmt(x, "%s; })", last.c));
    const char *c = sb_done(x, &s);
    (void)at;
    return ok ? (lv){c, last.t, -1} : LV_ERR;
}

static lv lower_let(ctx *x, const lisp_node *n, bool want)
{
    uint32_t saved = x->n_locals;
    sb s = {0};
    sb_add(&s, mark(x, n));
    sb_add(&s, "({ ");
    lv r = LV_ERR;
    if (bind_all(x, n, "let", &s, false)) {
        r = lower_body(x, n->items + 2, n->n - 2, want, n);
        if (r.c && r.t == T_FN)
            r = err(x, n, "let cannot return a function");
        if (r.c)
            sb_add(&s, fmt(x, "%s; })", r.c));
    }
    x->n_locals = saved;
    const char *c = sb_done(x, &s);
    return r.c ? (lv){c, r.t, -1} : LV_ERR;
}

/* if / when / when-not / cond as an expression. */
static lv lower_if(ctx *x, const lisp_node *n, const char *cond,
                   const lisp_node *then, lisp_node *const *then_body,
                   uint32_t n_then, const lisp_node *els, bool want,
                   bool negate)
{
    lv a = then ? lower(x, then, want) : lower_body(x, then_body, n_then, want, n);
    lv b = els ? lower(x, els, want) : (lv){"((void)0)", T_VOID, -1};
    if (!cond || !a.c || !b.c)
        return LV_ERR;
    const char *c = negate ? fmt(x, "!(%s)", cond) : cond;
    if (a.t == b.t && a.t != T_FN && a.t != T_STR)
        return (lv){fmt(x, "%s(%s ? %s : %s)", mark(x, n), c, a.c, b.c), a.t,
                    -1};
    if (!want && a.t != T_FN && b.t != T_FN)
        return (lv){fmt(x, "%s(%s ? (void)(%s) : (void)(%s))", mark(x, n), c,
                        a.c, b.c),
                    T_VOID, -1};
    if (!els || b.t == T_VOID)
        return err(x, n,
                   "this has no value when the test is %s; give both "
                   "branches a value, e.g. (if test a b)",
                   negate ? "true" : "false");
    return err(x, n, "the branches give %s and %s; they must agree",
               type_name(a.t), type_name(b.t));
}

static lv lower_cond_form(ctx *x, const lisp_node *n, uint32_t i, bool want)
{
    if (i >= n->n)
        return (lv){"((void)0)", T_VOID, -1};
    if (i + 1 >= n->n)
        return err(x, n->items[i], "cond needs a value after this test");
    const lisp_node *t = n->items[i];
    if (t->kind == LISP_KEYWORD || (t->kind == LISP_BOOL && t->truth))
        return lower(x, n->items[i + 1], want);
    const char *c = lower_cond(x, t);
    lv a = lower(x, n->items[i + 1], want);
    lv b = lower_cond_form(x, n, i + 2, want);
    if (!c || !a.c || !b.c)
        return LV_ERR;
    if (a.t == b.t && a.t != T_FN && a.t != T_STR)
        return (lv){fmt(x, "%s(%s ? %s : %s)", mark(x, t), c, a.c, b.c), a.t,
                    -1};
    if (!want)
        return (lv){fmt(x, "(%s ? (void)(%s) : (void)(%s))", c, a.c, b.c),
                    T_VOID, -1};
    return err(x, t,
               "cond's branches must all give the same kind of value (here "
               "%s and %s), and a cond used as a value needs an :else",
               type_name(a.t), type_name(b.t));
}

/* + - * / */
static lv lower_arith(ctx *x, const lisp_node *n, char op)
{
    uint32_t got = n->n - 1;
    if (got == 0) {
        if (op == '-' || op == '/')
            return err(x, n, "(%c) needs at least one argument", op);
        return (lv){op == '+' ? "0.0" : "1.0", T_NUM, -1};
    }
    sb s = {0};
    sb_add(&s, mark(x, n));
    sb_add(&s, "(");
    if (got == 1 && op == '-')
        sb_add(&s, "-");
    if (got == 1 && op == '/')
        sb_add(&s, "1.0 / ");
    bool ok = true;
    for (uint32_t i = 1; i <= got; i++) {
        const char *a = need(x, n->items[i], lower(x, n->items[i], true), T_NUM);
        ok = ok && a;
        if (!a)
            continue;
        if (i > 1)
            sb_add(&s, fmt(x, " %c ", op));
        sb_add(&s, fmt(x, "(%s)", a));
    }
    sb_add(&s, ")");
    const char *c = sb_done(x, &s);
    return ok ? (lv){c, T_NUM, -1} : LV_ERR;
}

static lv lower_minmax(ctx *x, const lisp_node *n, bool is_min)
{
    if (n->n < 2)
        return err(x, n, "%s needs at least one argument", is_min ? "min" : "max");
    const char *acc = NULL;
    for (uint32_t i = 1; i < n->n; i++) {
        const char *a = need(x, n->items[i], lower(x, n->items[i], true), T_NUM);
        if (!a)
            return LV_ERR;
        acc = acc ? fmt(x, "pbl_%s(%s, %s)", is_min ? "min" : "max", acc, a) : a;
    }
    return (lv){fmt(x, "%s%s", mark(x, n), acc), T_NUM, -1};
}

/* < > <= >= = == not=: chains evaluate each argument once. */
static lv lower_compare(ctx *x, const lisp_node *n, const char *op)
{
    uint32_t got = n->n - 1;
    bool eq = !strcmp(op, "==") || !strcmp(op, "!=");
    if (got < 1)
        return err(x, n, "a comparison needs at least one argument");
    lv first = lower(x, n->items[1], true);
    if (!first.c)
        return LV_ERR;
    ltype t = first.t;
    if (!(t == T_NUM || (eq && t == T_BOOL)))
        return err(x, n->items[1], "cannot compare %s", type_name(t));
    if (got == 1)
        return (lv){fmt(x, "((void)(%s), (_Bool)%d)", first.c, strcmp(op, "!=") != 0),
                    T_BOOL, -1};
    if (!strcmp(op, "!=") && got != 2)
        return err(x, n, "not= takes two arguments here");
    const char **args = lisp_alloc(x->a, got * sizeof *args);
    if (!args) {
        x->oom = true;
        return LV_ERR;
    }
    args[0] = first.c;
    bool ok = true;
    for (uint32_t i = 2; i <= got; i++) {
        args[i - 1] = need(x, n->items[i], lower(x, n->items[i], true), t);
        ok = ok && args[i - 1];
    }
    if (!ok)
        return LV_ERR;
    if (got == 2)
        return (lv){fmt(x, "%s((%s) %s (%s))", mark(x, n), args[0], op, args[1]),
                    T_BOOL, -1};
    sb s = {0};
    sb_add(&s, mark(x, n));
    sb_add(&s, "({ ");
    uint32_t base = x->tmp;
    x->tmp += got;
    for (uint32_t i = 0; i < got; i++)
        sb_add(&s, fmt(x, "%s l__c%u = %s; ", c_type(t), base + i, args[i]));
    for (uint32_t i = 0; i + 1 < got; i++)
        sb_add(&s, fmt(x, "%sl__c%u %s l__c%u", i ? " && " : "", base + i, op,
                       base + i + 1));
    sb_add(&s, "; })");
    return (lv){sb_done(x, &s), T_BOOL, -1};
}

static lv lower_andor(ctx *x, const lisp_node *n, bool is_and)
{
    if (n->n == 1)
        return (lv){is_and ? "((_Bool)1)" : "((_Bool)0)", T_BOOL, -1};
    sb s = {0};
    sb_add(&s, mark(x, n));
    sb_add(&s, "(");
    bool ok = true;
    for (uint32_t i = 1; i < n->n; i++) {
        const char *c = lower_cond(x, n->items[i]);
        ok = ok && c;
        if (!c)
            continue;
        if (i > 1)
            sb_add(&s, is_and ? " && " : " || ");
        sb_add(&s, fmt(x, "(%s)", c));
    }
    sb_add(&s, ")");
    const char *c = sb_done(x, &s);
    return ok ? (lv){c, T_BOOL, -1} : LV_ERR;
}

static lv lower_print(ctx *x, const lisp_node *n, bool newline)
{
    sb f = {0}, a = {0};
    bool ok = true;
    for (uint32_t i = 1; i < n->n; i++) {
        lv v = lower(x, n->items[i], true);
        if (!v.c) {
            ok = false;
            continue;
        }
        if (i > 1)
            sb_add(&f, " ");
        switch (v.t) {
        case T_STR:
            sb_add(&f, "%s");
            sb_add(&a, fmt(x, ", %s", v.c));
            break;
        case T_NUM:
            sb_add(&f, "%.15g");
            sb_add(&a, fmt(x, ", (double)(%s)", v.c));
            break;
        case T_BOOL:
            sb_add(&f, "%s");
            sb_add(&a, fmt(x, ", (%s) ? \"true\" : \"false\"", v.c));
            break;
        case T_VOID:
            sb_add(&f, "%s");
            sb_add(&a, fmt(x, ", ((void)(%s), \"nil\")", v.c));
            break;
        default:
            ok = false;
            err(x, n->items[i], "cannot print %s", type_name(v.t));
        }
    }
    if (newline)
        sb_add(&f, "\\n");
    const char *ff = sb_done(x, &f), *aa = sb_done(x, &a);
    if (!ok)
        return LV_ERR;
    return (lv){fmt(x, "%s((void)printf(\"%s\"%s))", mark(x, n), ff, aa), T_VOID,
                -1};
}

static lv lower_is(ctx *x, const lisp_node *n)
{
    if (!x->in_test)
        return err(x, n, "(is …) is only allowed inside deftest");
    if (n->n < 2 || n->n > 3)
        return err(x, n, "is takes an expression and an optional message");
    const char *c = lower_cond(x, n->items[1]);
    if (!c)
        return LV_ERR;
    const lisp_node *e = n->n == 3 ? n->items[2] : n->items[1];
    const char *text = e->kind == LISP_STR
                           ? str_lit(x, e->s, e->len)
                           : str_lit(x, x->src + e->off,
                                     e->end - e->off > 200 ? 200 : e->end - e->off);
    return (lv){fmt(x,
                    "%s({ if (!(%s)) { pb_check_failed(%s, %u); return; } "
                    "(void)0; })",
                    mark(x, n), c, text, n->items[1]->line),
                T_VOID, -1};
}

/* (fn name? [params] body…): a static function; the value names it. */
static int add_fn(ctx *x, pfn f)
{
    if (x->n_fns == x->cap_fns) {
        uint32_t cap = x->cap_fns ? x->cap_fns * 2 : 16;
        pfn *t = realloc(x->fns, cap * sizeof *t);
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

static lv lower_fn_form(ctx *x, const lisp_node *n)
{
    uint32_t i = 1;
    const lisp_node *name = NULL;
    if (i < n->n && n->items[i]->kind == LISP_SYM)
        name = n->items[i++];
    if (i < n->n && n->items[i]->kind == LISP_LIST)
        return err(x, n->items[i], "fn with several arities is not supported");
    if (i >= n->n || n->items[i]->kind != LISP_VECTOR)
        return err(x, n, "fn needs a parameter vector: (fn [x] …)");
    pfn f = {0};
    f.at = n;
    f.lname = name ? name->s : "fn";
    f.llen = name ? name->len : 2;
    f.cname = fmt(x, "pbl_fn%u", ++x->tmp);
    f.params = n->items[i];
    f.body = n->items + i + 1;
    f.n_body = n->n - i - 1;
    f.arity = f.params->n;
    f.kind = F_ANON;
    int fi = add_fn(x, f);
    if (fi < 0)
        return LV_ERR;
    if (name) { /* visible inside its own body, for recursion */
        x->fns[fi].lname = name->s;
    }
    if (lower_fn(x, fi) < 0)
        return LV_ERR;
    return (lv){"", T_FN, fi};
}

/* reset! / set! / swap! on defonce state. */
static lv lower_mutate(ctx *x, const lisp_node *n, const char *op)
{
    if (n->n < 3)
        return err(x, n, "%s needs the state and a %s", op,
                   strcmp(op, "swap!") ? "value" : "function");
    const lisp_node *t = n->items[1];
    const lstate *s = t->kind == LISP_SYM ? find_state(x, t->s, t->len) : NULL;
    if (!s)
        return err(x, t,
                   "%s works on state declared with defonce in this eval "
                   "(repeat the (defonce …) to use state from another one)",
                   op);
    const char *v;
    if (strcmp(op, "swap!")) {
        if (n->n != 3)
            return err(x, n, "%s takes the state and one value", op);
        v = need(x, n->items[2], lower(x, n->items[2], true), T_NUM);
    } else {
        /* (swap! s f a …) is (reset! s (f s a …)) */
        lisp_node *call = lisp_alloc(x->a, sizeof *call);
        lisp_node **items = lisp_alloc(x->a, (n->n - 1) * sizeof *items);
        if (!call || !items) {
            x->oom = true;
            return LV_ERR;
        }
        *call = *n->items[2];
        call->kind = LISP_LIST;
        call->items = items;
        call->n = n->n - 1;
        items[0] = n->items[2];
        items[1] = n->items[1];
        for (uint32_t i = 3; i < n->n; i++)
            items[i - 1] = n->items[i];
        v = need(x, n->items[2], lower(x, call, true), T_NUM);
    }
    if (!v)
        return LV_ERR;
    return (lv){fmt(x, "%s(%s = (%s))", mark(x, n), s->cname, v), T_NUM, -1};
}

static lv lower_loop(ctx *x, const lisp_node *n, bool want);

static lv lower_list(ctx *x, const lisp_node *n, bool want)
{
    if (n->n == 0)
        return err(x, n, "() is not a call");
    const lisp_node *h = n->items[0];
    if (h->kind == LISP_LIST) { /* ((fn [x] …) 3) */
        lv f = lower(x, h, true);
        if (!f.c)
            return LV_ERR;
        if (f.t != T_FN)
            return err(x, h, "%s is not a function", type_name(f.t));
        if (x->fns[f.fn].arity != n->n - 1)
            return err(x, n, "this fn takes %u argument%s, given %u",
                       x->fns[f.fn].arity, x->fns[f.fn].arity == 1 ? "" : "s",
                       n->n - 1);
        return call_pfn(x, n, f.fn, 1);
    }
    if (h->kind != LISP_SYM)
        return err(x, h, "%s cannot be called",
                   h->kind == LISP_NUM   ? "a number"
                   : h->kind == LISP_STR ? "a string"
                                         : "this");
    bool outer;
    if (find_local(x, h->s, h->len, &outer))
        return call_named(x, n, h);
    if (is_sym(h, "if")) {
        if (n->n < 3 || n->n > 4)
            return err(x, n, "if takes a test, a then and an optional else");
        return lower_if(x, n, lower_cond(x, n->items[1]), n->items[2], NULL, 0,
                        n->n == 4 ? n->items[3] : NULL, want, false);
    }
    if (is_sym(h, "when") || is_sym(h, "when-not")) {
        if (n->n < 2)
            return err(x, n, "%.*s needs a test", (int)h->len, h->s);
        return lower_if(x, n, lower_cond(x, n->items[1]), NULL, n->items + 2,
                        n->n - 2, NULL, want, is_sym(h, "when-not"));
    }
    if (is_sym(h, "cond")) {
        if (n->n % 2 == 0)
            return err(x, n, "cond takes test/value pairs");
        return lower_cond_form(x, n, 1, want);
    }
    if (is_sym(h, "do"))
        return lower_body(x, n->items + 1, n->n - 1, want, n);
    if (is_sym(h, "let"))
        return lower_let(x, n, want);
    if (is_sym(h, "loop"))
        return lower_loop(x, n, want);
    if (is_sym(h, "recur"))
        return err(x, n,
                   "recur must be in tail position (the last thing a loop or "
                   "function does)");
    if (is_sym(h, "fn"))
        return lower_fn_form(x, n);
    if (is_sym(h, "and") || is_sym(h, "or"))
        return lower_andor(x, n, is_sym(h, "and"));
    if (is_sym(h, "not")) {
        if (n->n != 2)
            return err(x, n, "not takes one argument");
        const char *c = lower_cond(x, n->items[1]);
        return c ? (lv){fmt(x, "(!(%s))", c), T_BOOL, -1} : LV_ERR;
    }
    if (is_sym(h, "println") || is_sym(h, "print"))
        return lower_print(x, n, is_sym(h, "println"));
    if (is_sym(h, "is"))
        return lower_is(x, n);
    if (is_sym(h, "reset!") || is_sym(h, "set!") || is_sym(h, "swap!"))
        return lower_mutate(x, n, h->s);
    if (is_sym(h, "deref")) {
        const lisp_node *t = n->n == 2 ? n->items[1] : NULL;
        if (!t || t->kind != LISP_SYM || !find_state(x, t->s, t->len))
            return err(x, n, "only defonce state can be dereferenced (@name)");
        return lower(x, t, true);
    }
    if (is_sym(h, "quote"))
        return err(x, n, "quoted data is not supported");
    if (is_sym(h, "atom"))
        return err(x, n, "atom is only supported as (defonce name (atom n))");
    if (is_sym(h, "def") || is_sym(h, "defn") || is_sym(h, "defn-") ||
        is_sym(h, "defonce") || is_sym(h, "deftest"))
        return err(x, n, "%.*s is only allowed at the top level", (int)h->len,
                   h->s);
    if (h->len == 1 && strchr("+-*/", h->s[0]))
        return lower_arith(x, n, h->s[0]);
    if (is_sym(h, "min") || is_sym(h, "max"))
        return lower_minmax(x, n, is_sym(h, "min"));
    static const struct {
        const char *l, *c;
    } cmp[] = {{"<", "<"},   {">", ">"},   {"<=", "<="},   {">=", ">="},
               {"=", "=="},  {"==", "=="}, {"not=", "!="}};
    for (size_t i = 0; i < sizeof cmp / sizeof cmp[0]; i++)
        if (is_sym(h, cmp[i].l))
            return lower_compare(x, n, cmp[i].c);
    return call_named(x, n, h);
}

static lv lower_sym(ctx *x, const lisp_node *n)
{
    if (is_sym(n, "Math/PI"))
        return (lv){"3.14159265358979323846", T_NUM, -1};
    if (is_sym(n, "Math/E"))
        return (lv){"2.71828182845904523536", T_NUM, -1};
    bool outer = false;
    const local *l = find_local(x, n->s, n->len, &outer);
    if (l) {
        if (outer)
            return err(x, n,
                       "fn cannot use '%.*s' of the function around it "
                       "(closures are not supported); pass it as an argument",
                       (int)n->len, n->s);
        if (l->t == T_FN)
            return (lv){"", T_FN, l->fn};
        if (!l->cname)
            return (lv){"((void)0)", T_VOID, -1};
        return (lv){fmt(x, "%s%s", mark(x, n), l->cname), l->t, -1};
    }
    const lstate *s = find_state(x, n->s, n->len);
    if (s)
        return (lv){fmt(x, "%s%s", mark(x, n), s->cname), T_NUM, -1};
    for (uint32_t i = 0; i < x->n_fns; i++) {
        pfn *f = &x->fns[i];
        if (f->kind == F_ANON || !sym_eq(f->lname, f->llen, n->s, n->len))
            continue;
        if (f->kind == F_VALUE) {
            lisp_node call = *n;
            call.kind = LISP_LIST;
            call.n = 1;
            return call_pfn(x, &call, (int)i, 1);
        }
        if (f->kind != F_TEST)
            return (lv){"", T_FN, (int)i};
    }
    const char *cname = lisp_mangle(x->a, n->s, n->len);
    const lisp_room_var *v = cname ? find_room_var(x, cname) : NULL;
    if (v && strlen(v->sig) == 1) { /* a def of another eval: read it */
        lisp_node call = *n;
        call.kind = LISP_LIST;
        call.n = 1;
        return call_room_var(x, &call, v, 1);
    }
    if (v)
        return err(x, n, "'%.*s' is a function; call it: (%.*s …)", (int)n->len,
                   n->s, (int)n->len, n->s);
    if (find_builtin(n->s, n->len) || is_special(n->s, n->len))
        return err(x, n,
                   "'%.*s' is a builtin and cannot be used as a value; call "
                   "it: (%.*s …)",
                   (int)n->len, n->s, (int)n->len, n->s);
    return err(x, n, "unknown symbol '%.*s'", (int)n->len, n->s);
}

static lv lower(ctx *x, const lisp_node *n, bool want)
{
    if (x->oom)
        return LV_ERR;
    switch (n->kind) {
    case LISP_NUM: return (lv){num_lit(x, n->num), T_NUM, -1};
    case LISP_BOOL: return (lv){n->truth ? "((_Bool)1)" : "((_Bool)0)", T_BOOL, -1};
    case LISP_NIL: return (lv){"((void)0)", T_VOID, -1};
    case LISP_STR: return (lv){str_lit(x, n->s, n->len), T_STR, -1};
    case LISP_SYM: return lower_sym(x, n);
    case LISP_LIST: return lower_list(x, n, want);
    case LISP_KEYWORD:
        return err(x, n, "keywords are only used as cond's :else");
    case LISP_CHAR:
        return err(x, n, "characters are not supported (use a string)");
    case LISP_VECTOR:
        return err(x, n, "vectors are only used for parameters and bindings");
    case LISP_MAP: return err(x, n, "maps are not supported in compiled code");
    case LISP_SET: return err(x, n, "sets are not supported in compiled code");
    }
    return LV_ERR;
}

/* ---- tail position ------------------------------------------------------------ */

static const char *deliver(ctx *x, const lisp_node *n, lv v, tailk *k)
{
    if (!v.c)
        return NULL;
    const char *go = k->loop ? "break;" : "return;";
    if (k->discard)
        return v.t == T_FN ? go : fmt(x, "(void)(%s); %s", v.c, go);
    if (v.t == T_FN || v.t == T_STR || v.t == T_CANVAS) {
        err(x, n, "%s cannot be returned", type_name(v.t));
        return NULL;
    }
    if (!k->has_t) {
        k->has_t = true;
        k->t = v.t;
        k->t_at = n;
    } else if (k->t != v.t) {
        err(x, n, "this gives %s, but %u:%u gives %s; every branch must agree",
            type_name(v.t), k->t_at->line, k->t_at->col, type_name(k->t));
        return NULL;
    }
    if (v.t == T_VOID)
        return fmt(x, "%s; %s", v.c, go);
    return k->loop ? fmt(x, "%s = %s; break;", k->rvar, v.c)
                   : fmt(x, "return %s;", v.c);
}

static const char *tail_body(ctx *x, lisp_node *const *body, uint32_t n,
                             const lisp_node *at, tailk *k)
{
    if (n == 0)
        return deliver(x, at, (lv){"((void)0)", T_VOID, -1}, k);
    sb s = {0};
    bool ok = true;
    for (uint32_t i = 0; i + 1 < n; i++) {
        lv v = lower(x, body[i], false);
        ok = ok && v.c;
        if (v.c && v.t != T_FN)
            sb_add(&s, fmt(x, "(void)(%s); ", v.c));
    }
    const char *t = lower_tail(x, body[n - 1], k);
    ok = ok && t;
    if (t)
        sb_add(&s, t);
    const char *c = sb_done(x, &s);
    return ok ? c : NULL;
}

static const char *tail_recur(ctx *x, const lisp_node *n, tailk *k)
{
    if (!k->target) {
        err(x, n, "recur outside a loop or function");
        return NULL;
    }
    if (n->n - 1 != k->n_target) {
        err(x, n, "recur takes %u argument%s here (one per binding), given %u",
            k->n_target, k->n_target == 1 ? "" : "s", n->n - 1);
        return NULL;
    }
    sb s = {0};
    sb_add(&s, "{ ");
    bool ok = true;
    uint32_t base = x->tmp;
    x->tmp += k->n_target;
    for (uint32_t i = 0; i < k->n_target; i++) {
        const local *l = &k->target[i];
        const char *a = need(x, n->items[i + 1], lower(x, n->items[i + 1], true),
                             l->t);
        ok = ok && a;
        if (a)
            sb_add(&s, fmt(x, "%s l__r%u = %s; ", c_type(l->t), base + i, a));
    }
    for (uint32_t i = 0; i < k->n_target; i++)
        sb_add(&s, fmt(x, "%s = l__r%u; ", k->target[i].cname, base + i));
    sb_add(&s, "continue; }");
    k->recurs = true;
    const char *c = sb_done(x, &s);
    return ok ? c : NULL;
}

static const char *lower_tail(ctx *x, const lisp_node *n, tailk *k)
{
    if (n->kind != LISP_LIST || n->n == 0 || n->items[0]->kind != LISP_SYM)
        return deliver(x, n, lower(x, n, !k->discard), k);
    const lisp_node *h = n->items[0];
    bool outer;
    if (find_local(x, h->s, h->len, &outer))
        return deliver(x, n, lower(x, n, !k->discard), k);
    if (is_sym(h, "recur"))
        return tail_recur(x, n, k);
    if (is_sym(h, "if") && n->n >= 3 && n->n <= 4) {
        const char *c = lower_cond(x, n->items[1]);
        const char *a = lower_tail(x, n->items[2], k);
        const char *b = n->n == 4 ? lower_tail(x, n->items[3], k)
                                  : deliver(x, n, (lv){"((void)0)", T_VOID, -1}, k);
        if (!c || !a || !b)
            return NULL;
        return fmt(x, "%sif (%s) { %s } else { %s }", mark(x, n), c, a, b);
    }
    if ((is_sym(h, "when") || is_sym(h, "when-not")) && n->n >= 2) {
        const char *c = lower_cond(x, n->items[1]);
        const char *a = tail_body(x, n->items + 2, n->n - 2, n, k);
        const char *b = deliver(x, n, (lv){"((void)0)", T_VOID, -1}, k);
        if (!c || !a || !b)
            return NULL;
        return fmt(x, "%sif (%s(%s)) { %s } else { %s }", mark(x, n),
                   is_sym(h, "when-not") ? "!" : "", c, a, b);
    }
    if (is_sym(h, "cond") && n->n % 2 == 1) {
        sb s = {0};
        bool ok = true, closed = false;
        for (uint32_t i = 1; i + 1 < n->n; i += 2) {
            const lisp_node *t = n->items[i];
            const char *body = lower_tail(x, n->items[i + 1], k);
            ok = ok && body;
            if (t->kind == LISP_KEYWORD || (t->kind == LISP_BOOL && t->truth)) {
                if (body)
                    sb_add(&s, fmt(x, "{ %s }", body));
                closed = true;
                break;
            }
            const char *c = lower_cond(x, t);
            ok = ok && c;
            if (c && body)
                sb_add(&s, fmt(x, "%sif (%s) { %s } else ", mark(x, t), c, body));
        }
        if (!closed) {
            const char *e = deliver(x, n, (lv){"((void)0)", T_VOID, -1}, k);
            ok = ok && e;
            if (e)
                sb_add(&s, fmt(x, "{ %s }", e));
        }
        const char *c = sb_done(x, &s);
        return ok ? c : NULL;
    }
    if (is_sym(h, "do"))
        return tail_body(x, n->items + 1, n->n - 1, n, k);
    if (is_sym(h, "let")) {
        uint32_t saved = x->n_locals;
        sb s = {0};
        const char *r = NULL;
        sb_add(&s, "{ ");
        if (bind_all(x, n, "let", &s, false))
            r = tail_body(x, n->items + 2, n->n - 2, n, k);
        if (r)
            sb_add(&s, fmt(x, "%s }", r));
        x->n_locals = saved;
        const char *c = sb_done(x, &s);
        return r ? c : NULL;
    }
    return deliver(x, n, lower(x, n, !k->discard), k);
}

static lv lower_loop(ctx *x, const lisp_node *n, bool want)
{
    (void)want;
    uint32_t saved = x->n_locals;
    sb s = {0};
    sb_add(&s, mark(x, n));
    sb_add(&s, "({ ");
    lv r = LV_ERR;
    if (bind_all(x, n, "loop", &s, true)) {
        uint32_t first = saved, count = x->n_locals - saved;
        local *target = lisp_alloc(x->a, (count ? count : 1) * sizeof *target);
        if (!target) {
            x->oom = true;
        } else {
            memcpy(target, x->locals + first, count * sizeof *target);
            tailk k = {.loop = true,
                       .rvar = fmt(x, "r__%u", ++x->tmp),
                       .target = target,
                       .n_target = count};
            const char *body = tail_body(x, n->items + 2, n->n - 2, n, &k);
            if (body) {
                ltype t = k.has_t ? k.t : T_VOID;
                if (t != T_VOID)
                    sb_add(&s, fmt(x, "%s %s; ", c_type(t), k.rvar));
                sb_add(&s, fmt(x, "for (;;) { %s } ", body));
                sb_add(&s, t != T_VOID ? fmt(x, "%s; })", k.rvar) : "(void)0; })");
                r = (lv){"", t, -1};
            }
        }
    }
    x->n_locals = saved;
    const char *c = sb_done(x, &s);
    if (!r.c)
        return LV_ERR;
    r.c = c;
    return r;
}

/* ---- functions ----------------------------------------------------------------- */

/* Lowers fns[i] (once). Returns 0, or -1 after reporting errors. */
static int lower_fn(ctx *x, int i)
{
    pfn *f = &x->fns[i];
    if (f->state)
        return 0;
    f->state = 1;
    x->fn_depth++;
    uint32_t saved_locals = x->n_locals, saved_base = x->fn_base;
    bool saved_test = x->in_test;
    x->fn_base = x->n_locals;
    x->in_test = f->kind == F_TEST;
    bool ok = true;
    sb params = {0};
    if (f->kind == F_ANON && !sym_eq(f->lname, f->llen, "fn", 2)) {
        lisp_node self = *f->at;
        self.s = f->lname;
        self.len = f->llen;
        ok = push_local(x, &self, NULL, T_FN, i);
    }
    uint32_t first_param = x->n_locals;
    for (uint32_t p = 0; ok && f->params && p < f->params->n; p++) {
        const lisp_node *pn = f->params->items[p];
        if (!check_binding_name(x, pn, "a parameter")) {
            ok = false;
            break;
        }
        ltype t = f->host && p == 1 ? T_CANVAS : T_NUM;
        const char *cname = fmt(x, "p__%s", lisp_mangle(x->a, pn->s, pn->len));
        for (uint32_t q = first_param; q < x->n_locals; q++)
            if (x->locals[q].cname && !strcmp(x->locals[q].cname, cname)) {
                err(x, pn, "the parameter '%.*s' appears twice", (int)pn->len,
                    pn->s);
                ok = false;
            }
        if (!ok || !push_local(x, pn, cname, t, -1)) {
            ok = false;
            break;
        }
        sb_add(&params, fmt(x, "%s%s%s%s", p ? ", " : "", c_type(t),
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
    tailk k = {.discard = f->host || f->kind == F_TEST,
               .target = target,
               .n_target = n_target};
    static const lisp_node none = {0};
    const char *body =
        ok ? tail_body(x, f->body, f->n_body, f->n_body ? f->body[0] : &none, &k)
           : NULL;
    const char *pl = sb_done(x, &params);
    f = &x->fns[i];
    x->n_locals = saved_locals;
    x->fn_base = saved_base;
    x->in_test = saved_test;
    x->fn_depth--;
    if (!body) {
        f->state = 2;
        f->ret = T_NUM;
        return -1;
    }
    f->ret = k.discard ? T_VOID : k.has_t ? k.t : T_VOID;
    if (f->assumed_at && f->ret != T_NUM) {
        err(x, f->assumed_at,
            "'%.*s' is called before its type is known (it calls itself, or "
            "is defined after a long chain of callers), so it must return a "
            "number; it returns %s",
            (int)f->llen, f->lname, type_name(f->ret));
        f->state = 2;
        return -1;
    }
    const char *stat = f->kind == F_VAR || f->kind == F_VALUE ||
                               f->kind == F_TEST
                           ? ""
                           : "static ";
    const char *head;
    if (f->kind == F_TEST)
        head = fmt(x, "void %s(void)", f->cname);
    else
        head = fmt(x, "%s%s %s(%s)", stat, c_type(f->ret), f->cname,
                   *pl ? pl : "void");
    f->proto = fmt(x, "%s%s;\n", mark(x, f->at), head);
    f->code = fmt(x, "%s%s {\n%s%s%s\n}\n", mark(x, f->at), head,
                  k.recurs ? "for (;;) { " : "", body, k.recurs ? " }" : "");
    f->state = 2;
    return 0;
}

/* ---- top level ------------------------------------------------------------------ */

/* Checks and mangles a definition's name. */
static const char *def_name(ctx *x, const lisp_node *n, const char *what)
{
    if (!n || n->kind != LISP_SYM) {
        err(x, n, "%s needs a name", what);
        return NULL;
    }
    if (memchr(n->s, '/', n->len) || memchr(n->s, '.', n->len)) {
        err(x, n, "'%.*s': qualified names are not supported", (int)n->len,
            n->s);
        return NULL;
    }
    const char *c = lisp_mangle(x->a, n->s, n->len);
    if (!c) {
        err(x, n, "'%.*s' cannot be a var name (it has no C spelling)",
            (int)n->len, n->s);
        return NULL;
    }
    if (find_builtin(n->s, n->len) || is_special(n->s, n->len)) {
        err(x, n, "'%.*s' is a builtin; choose another name", (int)n->len,
            n->s);
        return NULL;
    }
    if (is_c_reserved(c) ||
        (!strncmp(c, "pb_", 3) && strcmp(c, "pb_frame") && strcmp(c, "pb_init"))) {
        err(x, n,
            "'%.*s' is reserved (C keywords, names starting with pb- other "
            "than pb-frame and pb-init, and a leading _)",
            (int)n->len, n->s);
        return NULL;
    }
    return c;
}

static void add_defn_arity(ctx *x, const lisp_node *form, const lisp_node *name,
                           const char *cname, const lisp_node *params,
                           lisp_node *const *body, uint32_t n_body, fkind kind,
                           bool several)
{
    if (params->kind != LISP_VECTOR) {
        err(x, params, "expected a parameter vector [x y …]");
        return;
    }
    pfn f = {0};
    f.at = form;
    f.lname = name->s;
    f.llen = name->len;
    f.params = params;
    f.body = body;
    f.n_body = n_body;
    f.arity = params->n;
    f.kind = kind;
    f.cname = several ? fmt(x, "%s__%u", cname, f.arity) : cname;
    f.host = !strcmp(cname, "pb_frame") || !strcmp(cname, "pb_init");
    if (!strcmp(cname, "pb_frame") && f.arity != 2) {
        err(x, params, "pb-frame takes [t canvas]");
        return;
    }
    if (!strcmp(cname, "pb_init") && f.arity != 0) {
        err(x, params, "pb-init takes no parameters: []");
        return;
    }
    for (uint32_t i = 0; i < x->n_fns; i++)
        if (x->fns[i].kind != F_ANON && !strcmp(x->fns[i].cname, f.cname)) {
            err(x, name, "'%.*s' is defined twice in this eval", (int)name->len,
                name->s);
            return;
        }
    add_fn(x, f);
}

static void collect_defn(ctx *x, const lisp_node *n, bool private_)
{
    const char *what = private_ ? "defn-" : "defn";
    const char *cname = def_name(x, n->n > 1 ? n->items[1] : n, what);
    if (!cname)
        return;
    uint32_t i = 2;
    if (i < n->n && n->items[i]->kind == LISP_STR)
        i++; /* docstring */
    if (i < n->n && n->items[i]->kind == LISP_MAP)
        i++; /* attributes */
    if (i >= n->n) {
        err(x, n, "%s needs a parameter vector: (%s name [x] …)", what, what);
        return;
    }
    fkind kind = private_ ? F_PRIVATE : F_VAR;
    if (n->items[i]->kind == LISP_VECTOR) {
        add_defn_arity(x, n, n->items[1], cname, n->items[i], n->items + i + 1,
                       n->n - i - 1, kind, false);
        return;
    }
    bool several = n->n - i > 1;
    for (; i < n->n; i++) {
        const lisp_node *a = n->items[i];
        if (a->kind != LISP_LIST || a->n == 0) {
            err(x, a, "expected an arity: ([x] body…)");
            return;
        }
        add_defn_arity(x, a, n->items[1], cname, a->items[0], a->items + 1,
                       a->n - 1, kind, several);
    }
}

static void collect(ctx *x, const lisp_node *n)
{
    if (n->kind != LISP_LIST || n->n == 0 || n->items[0]->kind != LISP_SYM) {
        err(x, n,
            "only definitions can be evaluated (defn, def, defonce, "
            "deftest); to run code when a patch commits, define "
            "(defn pb-init [] …)");
        return;
    }
    const lisp_node *h = n->items[0];
    if (is_sym(h, "ns") || is_sym(h, "comment") || is_sym(h, "declare"))
        return;
    if (is_sym(h, "defn") || is_sym(h, "defn-")) {
        collect_defn(x, n, is_sym(h, "defn-"));
    } else if (is_sym(h, "def")) {
        const char *cname = def_name(x, n->n > 1 ? n->items[1] : n, "def");
        if (!cname)
            return;
        uint32_t vi = n->n == 4 && n->items[2]->kind == LISP_STR ? 3 : 2;
        if (vi + 1 != n->n) {
            err(x, n, "def takes a name, an optional docstring and a value");
            return;
        }
        const lisp_node *v = n->items[vi];
        if (v->kind == LISP_LIST && v->n >= 2 && is_sym(v->items[0], "fn")) {
            uint32_t pi = v->items[1]->kind == LISP_SYM ? 2 : 1;
            if (pi >= v->n) {
                err(x, v, "fn needs a parameter vector");
                return;
            }
            add_defn_arity(x, n, n->items[1], cname, v->items[pi],
                           v->items + pi + 1, v->n - pi - 1, F_VAR, false);
            return;
        }
        pfn f = {0};
        f.at = n;
        f.lname = n->items[1]->s;
        f.llen = n->items[1]->len;
        f.cname = cname;
        f.body = n->items + vi;
        f.n_body = 1;
        f.kind = F_VALUE;
        for (uint32_t i = 0; i < x->n_fns; i++)
            if (!strcmp(x->fns[i].cname, cname)) {
                err(x, n->items[1], "'%s' is defined twice in this eval", cname);
                return;
            }
        add_fn(x, f);
    } else if (is_sym(h, "defonce")) {
        const char *cname = def_name(x, n->n > 1 ? n->items[1] : n, "defonce");
        if (!cname)
            return;
        const lisp_node *v = n->n == 3 ? n->items[2] : NULL;
        if (v && v->kind == LISP_LIST && v->n == 2 && is_sym(v->items[0], "atom"))
            v = v->items[1];
        if (!v || (v->kind != LISP_NUM && v->kind != LISP_BOOL)) {
            err(x, v ? v : n,
                "defonce takes a name and a number: (defonce n 0) or "
                "(defonce n (atom 0))");
            return;
        }
        if (find_state(x, n->items[1]->s, n->items[1]->len)) {
            err(x, n->items[1], "'%s' is declared twice in this eval", cname);
            return;
        }
        if (x->n_states == x->cap_states) {
            uint32_t cap = x->cap_states ? x->cap_states * 2 : 8;
            lstate *t = realloc(x->states, cap * sizeof *t);
            if (!t) {
                x->oom = true;
                return;
            }
            x->states = t;
            x->cap_states = cap;
        }
        x->states[x->n_states++] =
            (lstate){n->items[1]->s, n->items[1]->len, cname, n,
                     v->kind == LISP_NUM ? v->num : v->truth};
    } else if (is_sym(h, "deftest")) {
        if (n->n < 2 || n->items[1]->kind != LISP_SYM) {
            err(x, n, "deftest needs a name: (deftest adds (is …))");
            return;
        }
        const char *cname = lisp_mangle(x->a, n->items[1]->s, n->items[1]->len);
        if (!cname) {
            err(x, n->items[1], "'%.*s' cannot be a test name",
                (int)n->items[1]->len, n->items[1]->s);
            return;
        }
        pfn f = {0};
        f.at = n;
        f.lname = n->items[1]->s;
        f.llen = n->items[1]->len;
        f.cname = fmt(x, "pb_test__%s", cname);
        f.body = n->items + 2;
        f.n_body = n->n - 2;
        f.kind = F_TEST;
        add_fn(x, f);
    } else {
        err(x, n,
            "only definitions can be evaluated (defn, def, defonce, "
            "deftest); to run code when a patch commits, define "
            "(defn pb-init [] …)");
    }
}

/* Moves the position markers out of the text into the map. */
static int strip_marks(ctx *x, const char *text, lisp_c *out)
{
    size_t n = strlen(text), k = 0, cap = 64;
    char *c = lisp_alloc(x->a, n + 1);
    lisp_loc *map = malloc(cap * sizeof *map);
    uint32_t nm = 0, line = 1, col = 1;
    if (!c || !map) {
        free(map);
        return -2;
    }
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\1') {
            unsigned l = 0, cl = 0;
            const char *end = strchr(text + i, '\2');
            if (!end || sscanf(text + i + 1, "%u:%u", &l, &cl) != 2) {
                free(map);
                return -2; /* cannot happen: the markers are ours */
            }
            if (nm == cap) {
                lisp_loc *t = realloc(map, (cap *= 2) * sizeof *map);
                if (!t) {
                    free(map);
                    return -2;
                }
                map = t;
            }
            map[nm++] = (lisp_loc){line, col, l, cl};
            i = (size_t)(end - text);
            continue;
        }
        c[k++] = text[i];
        if (text[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    out->c = c;
    out->len = k;
    out->map = lisp_alloc(x->a, (nm ? nm : 1) * sizeof *map);
    if (!out->map) {
        free(map);
        return -2;
    }
    memcpy(out->map, map, nm * sizeof *map);
    out->n_map = nm;
    free(map);
    return 0;
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
    ctx x = {.a = a, .src = src, .vars = vars, .n_vars = n_vars, .out = out};
    for (uint32_t i = 0; i < n_forms; i++)
        collect(&x, forms[i]);
    if (!out->n_errs && !n_forms)
        err(&x, &(lisp_node){.line = 1, .col = 1},
            "nothing to evaluate: the source has no forms");
    for (uint32_t i = 0; i < x.n_fns && !x.oom; i++)
        if (x.fns[i].kind != F_ANON)
            (void)lower_fn(&x, (int)i);
    rc = x.oom || a->oom ? -2 : out->n_errs ? -1 : 0;
    if (!rc) {
        sb s = {0};
        sb_add(&s, "/* generated by patchbay's Lisp front end from ");
        sb_add(&s, file && !strstr(file, "*/") ? file : "a Lisp eval");
        sb_add(&s, " (docs/LISP.md) */\n#include <patchbay.h>\n");
        sb_add(&s, HELPERS);
        for (uint32_t i = 0; i < x.n_states; i++)
            sb_add(&s, fmt(&x, "%sPB_STATE(double, %s, %s);\n",
                           mark(&x, x.states[i].at), x.states[i].cname,
                           num_lit(&x, x.states[i].init)));
        for (uint32_t i = 0; i < x.n_fns; i++)
            sb_add(&s, x.fns[i].proto);
        for (uint32_t i = 0; i < x.n_fns; i++)
            sb_add(&s, x.fns[i].code);
        const char *text = sb_done(&x, &s);
        rc = x.oom ? -2 : strip_marks(&x, text, out);
    }
    free(x.fns);
    free(x.states);
    free(x.locals);
    return rc;
}

void lisp_c_locate(const lisp_c *c, uint32_t c_line, uint32_t c_col,
                   uint32_t *line, uint32_t *col)
{
    *line = 1;
    *col = 1;
    uint32_t lo = 0, hi = c->n_map; /* the last entry at or before */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const lisp_loc *m = &c->map[mid];
        if (m->c_line < c_line || (m->c_line == c_line && m->c_col <= c_col))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo) {
        *line = c->map[lo - 1].line;
        *col = c->map[lo - 1].col;
    }
}
