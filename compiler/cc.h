/* cc.h — the compiler: patch source to an Emscripten side module that
 * follows the patch ABI (docs/PATCH_ABI.md), or diagnostics. This is the
 * whole public surface of compiler/, used by the compile server
 * (`patchbay cc-server`), the relay (through the server) and
 * `patchbay compile`.
 *
 * A cc_compiler holds a warm backend (clang and lld loaded in this process,
 * from libpb_cc_llvm.so) or the process backend (clang-14 and wasm-ld-14
 * run per job), and a content-hash cache. It is not thread-safe: one job at
 * a time, and at most one warm backend per process. */
#ifndef PB_CC_H
#define PB_CC_H

#include "pb_protocol.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CC_MAX_DIAGS             32u   /* diagnostics kept per job */
#define CC_DEFAULT_TIMEOUT_MS    2000u /* wall time per job */
#define CC_DEFAULT_CACHE_ENTRIES 256u

typedef enum cc_backend {
    CC_BACKEND_AUTO = 0,    /* warm if it loads, else process (the default;
                               cc_backend_fallback says why) */
    CC_BACKEND_WARM = 1,    /* clang + lld in this process, or fail */
    CC_BACKEND_PROCESS = 2, /* clang-14 + wasm-ld-14 as processes */
} cc_backend;

/* A backend from its name, "warm" or "process" (PB_ERR_FIELD_RANGE naming
 * the input otherwise); and the name of one ("auto" for CC_BACKEND_AUTO). */
pb_err cc_backend_parse(const char *name, cc_backend *out,
                        pb_errmsg *why) PB_WUR;
const char *cc_backend_str(cc_backend b);

/* Configuration; zero means the default stated for each field. */
typedef struct cc_desc {
    cc_backend backend;
    const char *abi_dir;     /* where patchbay.h is (default: $PB_ABI_DIR
                                or the build's); the API list is compiled
                                in (pb_abi_import_allowed) */
    const char *pass_plugin; /* the ABI pass .so (default: $PB_PASS_PLUGIN
                                or the build's) */
    uint32_t cache_entries;  /* 0: CC_DEFAULT_CACHE_ENTRIES; cache off if
                                cache_disabled */
    bool cache_disabled;
    uint32_t timeout_ms; /* 0: CC_DEFAULT_TIMEOUT_MS */
    bool unconfined;     /* cc_server_run only: skip the confinement (to measure
                            what it costs, or to debug); default false */
} cc_desc;

/* One of the room's current vars, as the relay knows it. */
typedef struct cc_var {
    const char *name;
    const char *sig;         /* Emscripten letters, e.g. "dd" */
    const char *decl;        /* C prototype, e.g. "double ggg(double v)"
                                (NULL: made from sig) */
    const char *const *deps; /* vars its current definition reaches */
    uint32_t n_deps;
} cc_var;

typedef struct cc_job {
    pb_lang lang;     /* PB_LANG_C or PB_LANG_LISP (docs/LISP.md) */
    const char *file; /* name for diagnostics (default "patch.c") */
    const char *source;
    size_t source_len;
    const cc_var *vars; /* the room's vars (may be NULL) */
    uint32_t n_vars;
    bool expr; /* the source is one expression to run once (docs/PATCH_ABI.md
                  § Expressions); a Lisp source whose only form is not a
                  definition is one without it */
} cc_job;

typedef struct cc_diag {
    uint32_t line, col; /* 1-based, in the user's source */
    pb_severity severity;
    char *message;
} cc_diag;

/* A var the module defines (with what it reaches) or uses. */
typedef struct cc_sym {
    char *name;
    char *sig;
    char *decl;    /* C prototype for other patches' preludes */
    uint32_t line; /* where it is defined (0: unknown) */
    char **deps;
    uint32_t n_deps;
} cc_sym;

typedef struct cc_result {
    bool ok; /* module is valid; else see diags */
    uint8_t *module;
    size_t module_len;
    cc_sym *defs; /* vars defined, in source order */
    uint32_t n_defs;
    cc_sym *uses; /* room vars used (deps unused) */
    uint32_t n_uses;
    cc_diag *diags; /* errors, warnings, notes; may be set when ok */
    uint32_t n_diags;
    bool is_expr; /* an expression's module: it defines pb_expr, which the
                     runtime runs once, and no var (defs is empty) */
    bool cached;  /* served from the cache */
    const char *backend; /* "warm" or "process": who compiled it (a static
                            string, not freed) */
    uint64_t compile_us, link_us, total_us;
} cc_result;

/* Creates a compiler. Returns NULL with a message in why on failure (e.g.
 * the warm backend could not load, a path does not exist). */
typedef struct cc_compiler cc_compiler;
cc_compiler *cc_new(const cc_desc *desc, pb_errmsg *why);
void cc_free(cc_compiler *cc);

/* Compiles one job. Returns PB_OK with out->ok true (a module) or false
 * (diagnostics: the source is wrong); any other code means the compiler
 * itself failed (PB_ERR_COMPILER_DOWN: a crash or timeout inside the
 * backend; the next job works). Free *out with cc_result_free in all
 * cases. */
pb_err cc_compile(cc_compiler *cc, const cc_job *job, cc_result *out,
                  pb_errmsg *why) PB_WUR;
void cc_result_free(cc_result *r);
/* The diagnostic of a job that ran out of time, the same from every
 * backend and from the server's supervisor (the relay penalises its
 * author). */
void cc_timeout_message(char *msg, size_t cap, uint32_t timeout_ms);

/* The C name of a Lisp name (my-fn → my_fn, ok? → ok_p; docs/LISP.md
 * § Names) into out (cap bytes): false if it has none or does not fit.
 * Tools that show the room's vars in Lisp spelling use it. */
bool cc_lisp_c_name(const char *lisp_name, char *out, size_t cap);

/* The backend's name ("warm" or "process"). */
const char *cc_backend_name(const cc_compiler *cc);
/* Why CC_BACKEND_AUTO runs the process backend (the warm one could not
 * load: a message for one log line), or NULL if it did not fall back. */
const char *cc_backend_fallback(const cc_compiler *cc);

/* ---- The compile server ----------------------------------------------------
 * The relay compiles in a separate process so that a crash, a runaway job
 * or a memory blow-up inside clang costs one request, not the relay. */

/* Serves jobs read from in_fd, answering on out_fd, until in_fd closes.
 * A job running longer than desc->timeout_ms ends the process with exit
 * status CC_EXIT_TIMEOUT (the client reports it and starts a new one).
 * Once the compiler is loaded, the process closes every other file but
 * stderr, moves to "/" and confines itself to what jobs need (started as
 * root it becomes nobody; Landlock; seccomp; docs/SECURITY.md § The
 * compile server): call it in a process of its own.
 * Returns 0 on a clean end of input. */
#define CC_EXIT_TIMEOUT 3
int cc_server_run(int in_fd, int out_fd, const cc_desc *desc);

typedef struct cc_client_desc {
    /* The server command (required): a program that runs cc_server_run on
     * its stdin and stdout, such as {"/usr/bin/patchbay", "cc-server",
     * NULL}. "--backend warm|process" is appended unless CC_BACKEND_AUTO,
     * then "--timeout-ms N". At most 12 words. It runs with PATH, the
     * PB_ABI_DIR, PB_PASS_PLUGIN and PB_CC_LLVM that configure the
     * compiler and the sanitizers' options from this environment, nothing
     * else of it. */
    const char *const *argv;
    cc_backend backend;
    uint32_t timeout_ms; /* per job; 0: CC_DEFAULT_TIMEOUT_MS */
} cc_client_desc;

typedef struct cc_client cc_client;
/* Starts the server (and restarts it when it dies). */
cc_client *cc_client_new(const cc_client_desc *desc, pb_errmsg *why);
/* Like cc_compile, through the server. A job that times out comes back as
 * a result with a diagnostic saying so; a server that crashed or could not
 * start is PB_ERR_COMPILER_DOWN (the next call starts a new one). */
pb_err cc_client_compile(cc_client *c, const cc_job *job, cc_result *out,
                         pb_errmsg *why) PB_WUR;
/* Like cc_client_compile, but a job on a warm server that is still
 * compiling after budget_ms (less than the time limit) is stopped there:
 * the server is killed (the next call starts another), *stopped is set
 * and out holds nothing, so that the caller can run the job again where
 * it may take the whole limit. A cold server's first job, or a budget of
 * 0, gets the whole limit. */
pb_err cc_client_compile_within(cc_client *c, const cc_job *job,
                                uint32_t budget_ms, bool *stopped,
                                cc_result *out, pb_errmsg *why) PB_WUR;
/* The server's process id (0 if none is running). */
int cc_client_pid(const cc_client *c);
/* Number of servers started so far. */
uint32_t cc_client_starts(const cc_client *c);
void cc_client_free(cc_client *c);

#ifdef __cplusplus
}
#endif
#endif /* PB_CC_H */
