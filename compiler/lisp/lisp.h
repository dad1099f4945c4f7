/* lisp.h — private to compiler/: the Lisp front end. A reader for Clojure
 * syntax with exact line/column positions (reader.c) and the lowering of the
 * forms a patch may contain to C that follows the patch ABI (lower.c and the
 * files lower.h lists), with a map from every generated C position back to
 * the Lisp form it came from, so that no diagnostic ever points at generated
 * C. The value model and the supported forms are documented in docs/LISP.md.
 *
 * Everything a read or a lowering allocates lives in one lisp_arena, freed
 * at once by lisp_arena_free. Not thread-safe per arena; no global state. */
#ifndef PB_LISP_H
#define PB_LISP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deeper nesting is refused by the reader (the lowering recurses too). */
#define LISP_MAX_DEPTH  128u
#define LISP_MAX_ERRORS 16u

typedef struct lisp_arena {
    struct lisp_chunk *head;
    bool oom; /* an allocation failed; results are unusable */
} lisp_arena;

void *lisp_alloc(lisp_arena *a, size_t n);
void lisp_arena_free(lisp_arena *a); /* a zeroed arena is fine */

typedef enum lisp_kind {
    LISP_NIL,
    LISP_BOOL,
    LISP_NUM,
    LISP_STR,
    LISP_CHAR,
    LISP_SYM,
    LISP_KEYWORD,
    LISP_LIST,
    LISP_VECTOR,
    LISP_MAP,
    LISP_SET,
} lisp_kind;

typedef struct lisp_node {
    lisp_kind kind;
    uint32_t line, col; /* 1-based; col counts bytes, like clang */
    uint32_t off, end;  /* the form's bytes in the source: [off, end) */
    bool truth;         /* LISP_BOOL */
    double num;         /* LISP_NUM */
    const char *s;      /* SYM, KEYWORD (without ':'), STR (decoded), CHAR */
    uint32_t len;
    struct lisp_node **items; /* LIST, VECTOR, MAP (k v k v…), SET */
    uint32_t n;
} lisp_node;

typedef struct lisp_error {
    uint32_t line, col;
    char message[240];
} lisp_error;

/* Reads every top-level form of src[0..len). Returns 0 with *forms and
 * *n_forms (in the arena), -1 with the first syntax error in *err, or -2 if
 * memory ran out. */
int lisp_read(lisp_arena *a, const char *src, size_t len, lisp_node ***forms,
              uint32_t *n_forms, lisp_error *err);

/* A name as written, for messages: "(", "[", "{", "#{". */
const char *lisp_kind_name(lisp_kind k);

/* One of the room's vars, as the compiler knows it (cc_var's fields). */
typedef struct lisp_room_var {
    const char *name;
    const char *sig;  /* Emscripten letters, return first */
    const char *decl; /* C prototype or NULL */
} lisp_room_var;

/* A position in the generated C and the Lisp position it came from. */
typedef struct lisp_loc {
    uint32_t c_line, c_col;
    uint32_t line, col;
} lisp_loc;

typedef struct lisp_c {
    char *c; /* generated C, NUL-terminated (in the arena) */
    size_t len;
    lisp_loc *map; /* sorted by C position */
    uint32_t n_map;
    lisp_error errs[LISP_MAX_ERRORS];
    uint32_t n_errs;
    bool is_expr; /* the eval is one expression: the C defines pb_expr */
} lisp_c;

/* Lowers the Lisp source of one eval to C: its definitions, or its one
 * expression (any top-level form that is not a definition; defonce may
 * come with it) as pb_expr (docs/PATCH_ABI.md § Expressions). file names
 * the source in the generated C's header comment. Returns 0 (out->c is
 * set), -1 (the source has errors: out->errs, at Lisp positions) or -2
 * (out of memory). */
int lisp_to_c(lisp_arena *a, const char *src, size_t len, const char *file,
              const lisp_room_var *vars, uint32_t n_vars, lisp_c *out);

/* The Lisp position for a position clang reported in the generated C. */
void lisp_c_locate(const lisp_c *c, uint32_t c_line, uint32_t c_col,
                   uint32_t *line, uint32_t *col);

/* The C identifier for a Lisp name (my-fn → my_fn, ok? → ok_p, swap! →
 * swap_bang, ->x → _gt_x), or NULL if it has no C spelling. In the arena. */
char *lisp_mangle(lisp_arena *a, const char *name, uint32_t len);

#endif /* PB_LISP_H */
