/* lower.h — private to compiler/lisp/: the state of one lowering (one Lisp
 * eval to C) and the functions its files share. lisp.h is what the rest of
 * the compiler sees; this header is for the files of the lowering only:
 *
 *   lower.c          the top level: definitions and expressions of an eval
 *   names.c          Lisp names, their C spelling, and name lookup
 *   errors.c         errors at Lisp positions; the checks of a value's kind
 *   special_forms.c  let, if, cond, do, fn, and, or, print, is, state, and
 *                    the dispatch of every form
 *   builtins.c       the builtin functions and operators (+, <, sin, pb-rect…)
 *   calls.c          calls of this eval's functions and of the room's vars
 *   tail.c           tail position: return, loop and recur
 *   functions.c      one function definition to C
 *   emit.c           the generated text and its position map
 *
 * The value model (docs/LISP.md): every value is a number (a C double), a
 * boolean, nil, or — inside pb-frame — the canvas. Expressions lower to C
 * expressions (GNU statement expressions for let, do and loop); a function
 * body lowers in "tail" form, where recur becomes assignments and continue.
 * Positions travel inside the C text as markers "\1LINE:COL\2" and are
 * stripped into the map at the end (emit.c), so nested strings can be built
 * freely. Everything is allocated in the eval's lisp_arena, except the
 * growable tables of lowering, which lisp_to_c frees. */
#ifndef PB_LISP_LOWER_H
#define PB_LISP_LOWER_H

#include "lisp.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Nested lowering of callees defined later in the eval (see lower_call_fn). */
#define LISP_MAX_FN_NESTING 16u

/* The kind of a Lisp value, as the lowering tracks it. */
typedef enum value_type {
    T_NUM,
    T_BOOL,
    T_VOID,
    T_CANVAS,
    T_FN,
    T_STR
} value_type;

/* A lowered expression; c == NULL after an error (already reported). */
typedef struct lowered {
    const char *c;
    value_type t;
    int fn_index; /* T_FN: index into lowering.fns */
} lowered;

#define LOWERED_ERR ((lowered){NULL, T_VOID, -1})

/* A name bound by let, loop or a parameter list. */
typedef struct local {
    const char *name;
    uint32_t len;
    const char *cname; /* NULL for a nil binding */
    value_type t;
    int fn_index; /* T_FN: index into lowering.fns */
} local;

typedef enum fn_kind {
    F_VAR,     /* defn: a var */
    F_PRIVATE, /* defn-: a static function */
    F_ANON,    /* fn: a static function */
    F_VALUE,   /* def of a value: a var of no arguments, read without a call */
    F_TEST,    /* deftest */
} fn_kind;

/* Where a function is in its lowering: a callee defined later is lowered
 * on demand, so a recursive call finds its function FN_LOWERING. */
typedef enum fn_progress {
    FN_PENDING = 0,
    FN_LOWERING,
    FN_LOWERED,
} fn_progress;

/* A function of this eval: a defn arity, a def, a deftest or an fn. */
typedef struct fn_def {
    const lisp_node *at;
    const char *lname;
    uint32_t llen;
    const char *cname;
    const lisp_node *params; /* a vector; NULL for F_VALUE and F_TEST */
    lisp_node *const *body;
    uint32_t n_body;
    uint32_t arity;
    fn_kind kind;
    bool host; /* pb-frame or pb-init: fixed signature, returns nothing */
    fn_progress progress;
    value_type ret;
    const lisp_node *assumed_at; /* a recursive call assumed a number */
    const char *code;
    const char *proto;
} fn_def;

/* A defonce of this eval, or (is_ref) a state an expression uses without
 * declaring it: the runtime finds it by name when the expression runs. */
typedef struct state_def {
    const char *lname;
    uint32_t llen;
    const char *cname; /* the C lvalue */
    const lisp_node *at;
    double init;
    bool is_ref;
} state_def;

/* Where a value in tail position goes. */
typedef struct tail_dest {
    bool loop;           /* false: return from the function */
    bool discard;        /* host functions and tests return nothing */
    const char *rvar;    /* loop: the result variable */
    const local *target; /* the recur target's bindings */
    uint32_t n_target;
    bool has_t;
    value_type t;
    const lisp_node *t_at;
    bool recurs;
} tail_dest;

/* One lowering: the eval's functions, states and the locals in scope. */
typedef struct lowering {
    lisp_arena *a;
    const char *src;
    const lisp_room_var *vars;
    uint32_t n_vars;
    fn_def *fns;
    uint32_t n_fns, cap_fns;
    state_def *states;
    uint32_t n_states, cap_states;
    local *locals;
    uint32_t n_locals, cap_locals;
    uint32_t fn_base; /* locals below belong to an enclosing function */
    uint32_t tmp;
    uint32_t fn_depth; /* lower_fn calls in progress */
    bool in_test;
    bool oom;
    const lisp_node *expr;       /* the eval's expression, if it is one */
    const lisp_node *extra_expr; /* a second one (an error) */
    const lisp_node *first_def;  /* a defn, def or deftest beside it */
    bool in_expression;          /* lowering the expression itself */
    lisp_c *out;
} lowering;

/* ---- emit.c: text ------------------------------------------------------- */

/* printf into the arena ("" after running out of memory, which is noted). */
const char *lower_fmt(lowering *x, const char *f, ...)
    __attribute__((format(printf, 2, 3)));

/* A growable buffer for longer pieces; lower_buf_done moves it into the
 * arena and resets it. */
typedef struct lower_buf {
    char *s;
    size_t len, cap;
    bool oom;
} lower_buf;

void lower_buf_add(lower_buf *b, const char *s);
const char *lower_buf_done(lowering *x, lower_buf *b);

/* The position marker of a form, to put before the C it becomes. */
const char *lower_mark(lowering *x, const lisp_node *n);
const char *lower_num_lit(lowering *x, double v);
const char *lower_str_lit(lowering *x, const char *s, size_t n);
const char *lower_c_type(value_type t);
/* Moves the position markers out of text into out's map. 0 or -2. */
int lower_strip_marks(lowering *x, const char *text, lisp_c *out);

/* ---- errors.c: errors and checks of kinds ------------------------------- */

/* Reports an error at n (one per position, at most LISP_MAX_ERRORS);
 * returns LOWERED_ERR so that a failing path reads return lower_error(…). */
lowered lower_error(lowering *x, const lisp_node *n, const char *f, ...)
    __attribute__((format(printf, 3, 4)));
const char *lower_type_name(value_type t);
/* The C of v if it is of type t; else reports why and returns NULL. */
const char *lower_need(lowering *x, const lisp_node *n, lowered v,
                       value_type t);
/* A condition: a boolean (or the literal nil, which is false). */
const char *lower_condition(lowering *x, const lisp_node *n);
/* An argument of a builtin or room var: 'n' number, 'i' integer
 * (saturated), 'u' colour, 'C' the canvas. */
const char *lower_arg_as(lowering *x, const lisp_node *n, char kind);

/* ---- names.c: names and their lookup ------------------------------------- */

bool lower_is_sym(const lisp_node *n, const char *s);
bool lower_sym_eq(const char *a, uint32_t al, const char *b, uint32_t bl);
/* Checks and mangles a definition's name; NULL after reporting why. */
const char *lower_def_name(lowering *x, const lisp_node *n, const char *what);
/* A binding name: a plain symbol that is not a reserved word. */
bool lower_check_binding_name(lowering *x, const lisp_node *n,
                              const char *what);
bool lower_push_local(lowering *x, const lisp_node *name, const char *cname,
                      value_type t, int fn_index);
/* The innermost local of that name; *outer says it belongs to an
 * enclosing function (a closure, which is refused). */
const local *lower_find_local(lowering *x, const char *s, uint32_t len,
                              bool *outer);
const state_def *lower_find_state(lowering *x, const char *s, uint32_t len);
state_def *lower_add_state(lowering *x, state_def s);
/* The state name names for reset!, swap! or @: declared in this eval, or,
 * in an expression, one of the room's by name (a ref). NULL otherwise (no
 * error reported). */
const state_def *lower_state_for(lowering *x, const lisp_node *name);

/* ---- builtins.c ---------------------------------------------------------- */

typedef struct lower_builtin lower_builtin;
const lower_builtin *lower_find_builtin(const char *s, uint32_t len);
/* A special form or variadic builtin handled in code (if, +, min…). */
bool lower_is_special(const char *s, uint32_t len);
/* The static inline helpers every lowered eval starts with. */
extern const char lower_helpers[];
lowered lower_call_builtin(lowering *x, const lisp_node *n,
                           const lower_builtin *b);
lowered lower_arith(lowering *x, const lisp_node *n, char op);
lowered lower_minmax(lowering *x, const lisp_node *n, bool is_min);
lowered lower_compare(lowering *x, const lisp_node *n, const char *op);

/* ---- calls.c ------------------------------------------------------------- */

/* The C call cfn(…) of the arguments n->items[first…], one per letter of
 * kinds (lower_arg_as); NULL after an error. */
const char *lower_call_text(lowering *x, const lisp_node *n, const char *cfn,
                            uint32_t first, const char *kinds);
/* Calls fns[fi] with the arguments n->items[first…]. */
lowered lower_call_fn(lowering *x, const lisp_node *n, int fi, uint32_t first);
const lisp_room_var *lower_find_room_var(lowering *x, const char *cname);
lowered lower_call_room_var(lowering *x, const lisp_node *n,
                            const lisp_room_var *v, uint32_t first);
/* (f a b …) where f names a local fn, a function of this eval, a builtin
 * or a room var. */
lowered lower_call_named(lowering *x, const lisp_node *n,
                         const lisp_node *head);

/* ---- special_forms.c ----------------------------------------------------- */

/* Any form as a C expression; want says its value is used. */
lowered lower_expr(lowering *x, const lisp_node *n, bool want);
/* Sequential bindings [a 1 b (+ a 1)] of form as C declarations into
 * decls; pushes the locals. */
bool lower_bindings(lowering *x, const lisp_node *form, const char *what,
                    lower_buf *decls, bool need_values);

/* ---- tail.c -------------------------------------------------------------- */

const char *lower_tail(lowering *x, const lisp_node *n, tail_dest *k);
const char *lower_tail_body(lowering *x, lisp_node *const *body, uint32_t n,
                            const lisp_node *at, tail_dest *k);
lowered lower_loop(lowering *x, const lisp_node *n, bool want);

/* ---- functions.c --------------------------------------------------------- */

/* Adds a function to the table; its index, or -1 out of memory. */
int lower_add_fn(lowering *x, fn_def f);
/* Lowers fns[i] (once). Returns 0, or -1 after reporting errors. */
int lower_fn(lowering *x, int i);

#endif /* PB_LISP_LOWER_H */
