/* runtime.h — the runtime's C interface: the var registry (prepare,
 * commit, rollback) and module loading. The functions patches call
 * (pb_rt_define, pb_rt_slot, pb_rt_state and the canvas API) are declared
 * in protocol/abi/patchbay.h. The JS host (node harness, Web Worker) calls
 * the rt_* functions, which are exported from the main module. */
#ifndef PB_RUNTIME_H
#define PB_RUNTIME_H

#include "pb_protocol.h"
#include <patchbay.h>

#include <stdbool.h>

/* Staging: between rt_prepare_begin and rt_prepare_end, loading a module
 * runs its pb__bind constructor, which stages definitions. rt_prepare_end
 * returns the number of errors (then nothing is staged; the text is in
 * rt_prepare_errors()). */
void rt_prepare_begin(void);
int rt_prepare_end(void);
void rt_prepare_abort(void);
const char *rt_prepare_errors(void);
/* Records a prepare error (the patch will not be staged). */
void rt_prepare_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Swaps every staged definition in at once; returns how many. */
int rt_commit(void);
/* Restores a var's previous definition; -1 if it has none. */
int rt_rollback(const char *name);

/* Prepared patches wait for their apply time outside the registry, so
 * that later patches can be prepared meanwhile. rt_prepare_take (after a
 * successful rt_prepare_end) moves the staged definitions into a new set
 * (NULL if out of memory; then nothing stays staged). rt_staged_commit
 * swaps the set in, recording seq as the patch of each definition, and
 * frees it; rt_staged_free drops a set uncommitted. */
typedef struct rt_staged rt_staged;
rt_staged *rt_prepare_take(void);
uint32_t rt_staged_count(const rt_staged *s);
const char *rt_staged_name(const rt_staged *s, uint32_t i);
/* The staged definition of name in s (a table index), or NULL. */
void *rt_staged_fn(const rt_staged *s, const char *name);
int rt_staged_commit(rt_staged *s, uint64_t seq);
void rt_staged_free(rt_staged *s);

/* Takes back every var whose current definition came from patch seq (its
 * previous definition returns; a var it introduced becomes undefined),
 * calling each(name) for each; returns how many. */
int rt_rollback_seq(uint64_t seq, void (*each)(const char *name, void *ctx),
                    void *ctx);
/* The patch of a var's current definition; 0 if undefined or unknown. */
uint64_t rt_var_seq(const char *name);
/* Calls each(name) for every defined var whose name starts with prefix. */
int rt_vars_with_prefix(const char *prefix,
                        void (*each)(const char *name, void *ctx), void *ctx);

/* The PB_STATE cell called name and its size, or NULL. */
void *rt_state_find(const char *name, uint32_t *size);
/* Calls each(...) for every PB_STATE cell (for a generation reload). */
int rt_states_each(void (*each)(const char *name, uint32_t size, uint32_t align,
                                const void *data, void *ctx),
                   void *ctx);

/* The current definition of a var (a function table index), or NULL. */
void *rt_var_fn(const char *name);
const char *rt_var_sig(const char *name);

/* Loads a side module from the in-memory file system inside a prepare:
 * returns 0, or -1 with the loader's message in rt_prepare_errors(). */
int rt_load(const char *path);
/* Loads a verified side module (len bytes) inside a prepare: writes it
 * under a new file name and rt_load()s it. PB_ERR_IO, said in why, if it
 * could not be written. A native build (tests/runtime/native/) has one
 * that loads nothing. */
pb_err rt_load_module(const uint8_t *module, uint32_t len, uint64_t seq,
                      pb_errmsg *why);

/* Room time and beat for pb_time()/pb_beat(). */
void rt_set_time(double t, double beat);
/* The canvas pb_screen() returns (NULL: none); the host sets it with the
 * canvas it draws pb_frame on. */
void rt_set_screen(pb_canvas *c);
/* The expression of the first failed PB_CHECK since the last call ("" if
 * none), then clears it; the host calls it after each test. Its file ("" if
 * the patch did not say) and line stay readable until the next take. */
const char *rt_check_take(void);
const char *rt_check_file(void);
int rt_check_line(void);

/* ---- The session (session.c, report.c): what the JS host calls ------------
 * The host passes every frame it receives, raw, to rt_session_receive, and
 * sends every frame in the outbox (rt_session_out_*) after each call.
 * Times are µs on the room clock, passed as doubles (exact below 2^53).
 * Functions returning const char * return JSON in a buffer that the next
 * call reuses. runtime/README.md has the whole protocol between the two. */
const char *rt_session_open(const char *room, const char *key_hex,
                            uint32_t max_module_bytes);
const char *rt_session_receive(const uint8_t *buf, uint32_t len, double now_us);
const char *rt_session_refuse(double len);
int rt_session_tick(double now_us);
const char *rt_session_take_commits(void);
const char *rt_session_trap(const char *var, const char *message,
                            double now_us);
void rt_session_load_failed(const char *message);
int rt_session_hello(const char *token, const char *client, double since_seq);
/* The verifier instance (verifier.c, runtime/README.md § The verifier
 * instance). */
int rt_session_verify_only(void);
int rt_session_behind_verifier(void);
int rt_session_pass(void);
const uint8_t *rt_session_passed_data(void);
uint32_t rt_session_passed_len(void);
int rt_session_ping(double t0_us, double unc_us);
/* What this runtime runs on, said in every hello from now on (device.c);
 * id: the hello's device_id. */
int rt_session_set_device(const char *id, const char *label,
                          const char *platform, const char *features,
                          uint32_t canvas_w, uint32_t canvas_h,
                          uint32_t screen_w, uint32_t screen_h, double dpr,
                          double ram_bytes, uint32_t cores);
/* Queues a snapshot answer: the picture (PNG bytes) or, with png NULL, the
 * error saying why there is none. */
int rt_session_snapshot(double req, double editor_id, double seq, double at_us,
                        uint32_t width, uint32_t height, const uint8_t *png,
                        uint32_t png_len, const char *error);
double rt_session_head_seq(void);
double rt_session_committed_seq(void);
double rt_session_pending_count(void);
double rt_session_next_apply_us(void);
double rt_session_var_seq(const char *name);
const char *rt_session_tests(const char *filter);
int rt_session_test_begin(double req);
int rt_session_test_case(const char *name, int status, const char *message,
                         double us, const char *file, int line, const char *var,
                         double var_seq);
int rt_session_test_end(double seq);
void rt_session_set_log_limits(uint32_t per_second, uint32_t burst,
                               uint32_t max_bytes);
int rt_session_log(int level, const char *text, const char *var, double seq,
                   double now_us);
uint32_t rt_session_out_len(void);
const uint8_t *rt_session_out_data(void);
void rt_session_out_pop(void);
uint32_t rt_session_out_dropped(void);
/* Running an expression's patch (expr.c, runtime/README.md). */
uint32_t rt_session_expr_begin(void);
void rt_session_flush_output(void);
const char *rt_session_expr_end(int ok, const char *var, const char *message,
                                const char *out, double now_us);
void rt_session_expr_stopped(double seq, const char *message);
/* Generation reload (runtime/README.md § Generation reload). */
double rt_session_modules(void);
const char *rt_session_generation(void);
int rt_session_adopt(double seq, const char *hash_hex, double committed_seq,
                     const char *rand_hex);
/* Signed heads and the floor (head.c, runtime/README.md § Rollback). */
const char *rt_session_head(void);
int rt_session_floor(double epoch, double seq, const char *hash_hex);
void rt_session_set_stale(double since_us);
/* Seeds rand() before a call into patch code (rand.c). */
void rt_seed_rand(int call, double t_us);
const char *rt_session_reload_patch(const uint8_t *buf, uint32_t len,
                                    double seq);

#endif
