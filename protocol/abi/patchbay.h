/* patchbay.h — the header every patch includes: the API a patch may call
 * and the declarations that make a definition a var, a state or a test.
 * It is the patch side of the ABI in docs/PATCH_ABI.md; the runtime
 * implements the functions declared here, and the compiler refuses a patch
 * that imports anything not listed in protocol/abi/api.list.
 *
 * A patch is plain C:
 *
 *     #include <patchbay.h>
 *     double ggg(double v) { return v + 49; }
 *
 * Every non-static function defined at top level becomes a var: the runtime
 * swaps it in on commit, and every call to it — from this patch or from any
 * older one — goes through the room's registry. */
#ifndef PATCHBAY_H
#define PATCHBAY_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- The canvas ---------------------------------------------------------
 * pb_frame(t, canvas) draws one frame at room time t (seconds). Pixels are
 * RGBA, one uint32_t each (0xAABBGGRR in memory order R, G, B, A), row-major,
 * width * height of them. */
typedef struct pb_canvas {
    int32_t width;
    int32_t height;
    uint32_t *pixels;
} pb_canvas;

/* Packs a colour; components 0..255. */
static inline uint32_t pb_rgba(int r, int g, int b, int a)
{
    return (uint32_t)(r & 255) | (uint32_t)(g & 255) << 8 |
           (uint32_t)(b & 255) << 16 | (uint32_t)(a & 255) << 24;
}
static inline uint32_t pb_rgb(int r, int g, int b)
{
    return pb_rgba(r, g, b, 255);
}

void pb_clear(pb_canvas *c, uint32_t rgba);
void pb_pixel(pb_canvas *c, int x, int y, uint32_t rgba);
void pb_rect(pb_canvas *c, int x, int y, int w, int h, uint32_t rgba);
void pb_circle(pb_canvas *c, int cx, int cy, int r, uint32_t rgba);
void pb_line(pb_canvas *c, int x0, int y0, int x1, int y1, uint32_t rgba);

/* Room time in seconds and, when the room has a tempo, the beat position
 * (beats since the room's tempo was set; 0 without a tempo). */
double pb_time(void);
double pb_beat(void);

/* The canvas this runtime draws pb_frame on (its size is the device's:
 * a phone's is narrower than a projector's), or NULL on a runtime
 * without one. Tests use it to check what depends on the screen. */
pb_canvas *pb_screen(void);

/* ---- Persistent state ---------------------------------------------------
 * PB_STATE(int, counter, 0); declares storage that keeps its value when the
 * code around it is redefined (like Clojure's defonce): the first patch that
 * declares `counter` creates it with the initial value; later declarations
 * of the same name and size reuse it. A different size is an error at load
 * time. Use it like an ordinary global: counter++. */
#define PB_STATE(type, name, ...)                                            \
    __attribute__((section("pb_state"), used)) type name = __VA_ARGS__

/* ---- Tests ---------------------------------------------------------------
 * PB_TEST(adds) { PB_CHECK(ggg(1) == 50); } defines a test the runtime runs
 * on request (test_req, `patchbay test`); a failed PB_CHECK reports the
 * expression with its file and line and ends the test. PB_FILE is the
 * name the patch was evaluated under (the compiler defines it). */
#ifndef PB_FILE
#define PB_FILE __FILE__
#endif
#define PB_TEST(name) void pb_test__##name(void)
#define PB_CHECK(expr)                                                         \
    do {                                                                       \
        if (!(expr)) {                                                         \
            pb_check_fail(PB_FILE, __LINE__, #expr);                           \
            return;                                                            \
        }                                                                      \
    } while (0)
void pb_check_fail(const char *file, int line, const char *expr);
/* The same without a file, for patches built before pb_check_fail. */
void pb_check_failed(const char *expr, int line);

/* ---- Expressions (docs/PATCH_ABI.md § Expressions) ------------------------
 * An expression's patch defines void pb_expr(void), which the runtime runs
 * once when the patch commits, instead of making it a var. The compiler
 * writes pb_expr around the expression; PB_VALUE(e) hands e's value to the
 * runtime, picking the function for e's type: numbers, booleans, strings
 * (char *) and nothing (void, which the runtime prints as nil). Any other
 * type is a compile error. e is evaluated once. */
struct pb__nil;
/* The state name of an earlier patch, for an expression that uses state it
 * does not declare: PB_STATE_OF(int, counter) = 0. The runtime ends the
 * expression with an error if it has no state of that name and size. */
void *pb_rt_state_ref(const char *name, uint32_t size);
#define PB_STATE_OF(type, name) (*(type *)pb_rt_state_ref(#name, sizeof(type)))
void pb_rt_value_num(double v);
void pb_rt_value_int(long long v);
void pb_rt_value_uint(unsigned long long v);
void pb_rt_value_bool(_Bool v);
void pb_rt_value_str(const char *s);
void pb_rt_value_nil(struct pb__nil *unused);
int pb__value_other(); /* never called: the static assertion fails first */
#define PB__VALUE_OF(e)                                                        \
    __builtin_choose_expr(__builtin_types_compatible_p(__typeof__(e), void),   \
                          ((void)(e), (struct pb__nil *)0), (e))
#define PB__VALUE_FN(e)                                                        \
    _Generic(PB__VALUE_OF(e),                                                  \
        struct pb__nil *: pb_rt_value_nil,                                     \
        _Bool: pb_rt_value_bool,                                               \
        float: pb_rt_value_num,                                                \
        double: pb_rt_value_num,                                               \
        char *: pb_rt_value_str,                                               \
        const char *: pb_rt_value_str,                                         \
        char: pb_rt_value_int,                                                 \
        signed char: pb_rt_value_int,                                          \
        short: pb_rt_value_int,                                                \
        int: pb_rt_value_int,                                                  \
        long: pb_rt_value_int,                                                 \
        long long: pb_rt_value_int,                                            \
        unsigned char: pb_rt_value_uint,                                       \
        unsigned short: pb_rt_value_uint,                                      \
        unsigned int: pb_rt_value_uint,                                        \
        unsigned long: pb_rt_value_uint,                                       \
        unsigned long long: pb_rt_value_uint,                                  \
        default: pb__value_other)
#define PB_VALUE(e)                                                            \
    do {                                                                       \
        _Static_assert(                                                        \
            !__builtin_types_compatible_p(__typeof__(PB__VALUE_FN(e)),         \
                                          __typeof__(pb__value_other)),        \
            "the value of an expression must be a number, a boolean, a "       \
            "string (char *) or nothing (void)");                              \
        PB__VALUE_FN(e)(PB__VALUE_OF(e));                                      \
    } while (0)

/* ---- Used by code the compiler generates; not for patches ---------------- */
void pb_rt_define(const char *name, const char *sig, void *fn);
void *pb_rt_slot(const char *name, const char *sig);
void *pb_rt_state(const char *name, uint32_t size, uint32_t align,
                  const void *init);

#ifdef __cplusplus
}
#endif
#endif /* PATCHBAY_H */
