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

/* The current definition of a var (a function table index), or NULL. */
void *rt_var_fn(const char *name);
const char *rt_var_sig(const char *name);

/* Loads a side module from the in-memory file system inside a prepare:
 * returns 0, or -1 with the loader's message in rt_prepare_errors(). */
int rt_load(const char *path);

/* Room time and beat for pb_time()/pb_beat(). */
void rt_set_time(double t, double beat);

#endif
