/* internal.h — private to compiler/: the backend interface, one job's
 * state, the wasm reader, the source pre-scan, the API list, the cache and
 * the compile server's pipe messages. */
#ifndef PB_CC_INTERNAL_H
#define PB_CC_INTERNAL_H

#include "cc.h"

#include <msgpack.h>
#include <stdio.h>

/* ---- backends (backend_process.c, backend_warm.c) ------------------------ */

typedef struct cc_file {
    const char *path; /* virtual absolute path, under CC_VDIR */
    const char *data;
    size_t len;
} cc_file;

#define CC_VDIR         "/pb/"
#define CC_MAIN_PATH    CC_VDIR "patch.c"
#define CC_PRELUDE_PATH CC_VDIR "pb_prelude.h"

/* A diagnostic from a backend: file is a virtual path (CC_MAIN_PATH, ...),
 * a header's path, or "" with line = col = 0 when it has no location. */
typedef void (*cc_diag_fn)(void *ctx, pb_severity severity, const char *file,
                           unsigned line, unsigned col, const char *message);

/* How a backend's compile or link ended. */
typedef enum cc_be_status {
    CC_BE_OK = 0,
    CC_BE_SOURCE_ERRORS, /* the input is wrong: compile diagnostics went to
                            on_diag, link errors are in err */
    CC_BE_FAILED,        /* the backend itself failed (message in err) */
} cc_be_status;

/* What a backend's jobs touch on the file system, for the compile server's
 * confinement (confine.c): read, or read and run programs, beneath each
 * path (a directory or a file), or also write (devices such as /dev/null);
 * NULL-terminated lists. work_dir is the backend's private directory,
 * which jobs read and write and which a server that gives up root hands
 * to the user it becomes. */
#define CC_MAX_PATHS 8
typedef struct cc_paths {
    const char *read[CC_MAX_PATHS + 1];
    const char *exec[CC_MAX_PATHS + 1];
    const char *write[CC_MAX_PATHS + 1];
    const char *work_dir;
} cc_paths;

typedef struct cc_be cc_be;
struct cc_be {
    const char *name;
    /* args: the job's flags (-I, -include), which go after the fixed
     * ones of cc_llvm_base_compile_args(); link() uses
     * cc_llvm_base_link_args() alone. A job that ran out of time or made
     * the compiler crash is CC_BE_SOURCE_ERRORS with a diagnostic saying
     * so. *obj is malloc'd. */
    cc_be_status (*compile)(cc_be *be, const char *const *args,
                            const cc_file *files, size_t n_files,
                            cc_diag_fn on_diag, void *ctx, uint8_t **obj,
                            size_t *obj_len, char *err, size_t err_len);
    /* *wasm is malloc'd. */
    cc_be_status (*link)(cc_be *be, const uint8_t *obj, size_t obj_len,
                         uint8_t **wasm, size_t *wasm_len, char *err,
                         size_t err_len);
    void (*paths)(const cc_be *be, cc_paths *out);
    void (*free)(cc_be *be);
};

typedef struct cc_be_desc {
    const char *abi_dir;
    const char *pass_plugin;
    uint32_t timeout_ms;
} cc_be_desc;

cc_be *cc_be_process_new(const cc_be_desc *d, pb_errmsg *why);
cc_be *cc_be_warm_new(const cc_be_desc *d, pb_errmsg *why);

/* ---- confinement (confine.c) ---------------------------------------------
 * The compile server gives up what its jobs do not need, in this order
 * (docs/SECURITY.md § The compile server). Each returns PB_OK when done
 * or when there is nothing to do, else says in why what it could not. */

/* What cc's backend needs (compile.c). */
void cc_backend_paths(const cc_compiler *cc, cc_paths *out);
/* Started as root: becomes CC_SERVER_USER (hands work_dir to it first).
 * Not done (PB_ERR_INTERNAL) when a path to read is not readable by
 * everyone, since that user could not compile. */
#define CC_SERVER_USER "nobody"
pb_err cc_drop_root(const cc_paths *paths, pb_errmsg *why);
/* Landlock: only the given paths, and on recent enough kernels no TCP and
 * no signals or abstract sockets outside this process. For good. */
pb_err cc_confine_files(const cc_paths *paths, pb_errmsg *why);
/* RLIMIT_NPROC: CC_SERVER_TASKS tasks more than the server's uid has now
 * (confine.c says why relative). Not for root, where it does not hold. */
#define CC_SERVER_TASKS 64
pb_err cc_limit_tasks(pb_errmsg *why);
/* seccomp: the system calls no job makes fail with EPERM. For good. */
pb_err cc_confine_syscalls(pb_errmsg *why);

/* ---- one job (compile.c, diag.c, checks.c) -------------------------------
 * The state of the job cc_compile is running: where its diagnostics go and
 * how positions in the C that was compiled map back to what the user wrote
 * (the same C, or Lisp). */
typedef struct lisp_c lisp_c;

typedef struct cc_job_ctx {
    cc_result *r;
    const struct cc_scan *scan;
    const char *source; /* the C compiled: the user's, or lowered from Lisp */
    size_t source_len;
    bool oom;           /* a diagnostic could not be kept */
    const lisp_c *lisp; /* a Lisp job: maps source back to the Lisp */
    bool is_expr;       /* an expression (docs/PATCH_ABI.md § Expressions) */
    bool is_c_expr;     /* a C expression inside the wrapper of wrap_expr */
    uint32_t end_line, end_col; /* where that expression ends */
} cc_job_ctx;

/* The lines of the wrapper around a C expression are numbered from
 * CC_WRAPPER_LINE (#line), or from CC_WRAPPER_END_LINE right after a copy
 * of the expression, whose own lines keep their numbers: a diagnostic about
 * the wrapper is put at the start, or the end, of the expression. */
#define CC_WRAPPER_LINE     1000000u
#define CC_WRAPPER_END_LINE 2000000u

/* Adds a diagnostic (up to CC_MAX_DIAGS; line or col 0 become 1). */
void cc_add_diag(cc_job_ctx *j, pb_severity sev, uint32_t line, uint32_t col,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* A position in the compiled source as the user wrote it: the same for C,
 * through the lowering's map for Lisp (col too, if not NULL). Line 0
 * (unknown) stays 0. */
uint32_t cc_user_line(const cc_job_ctx *j, uint32_t line, uint32_t *col);
/* The line of the first whole-word occurrence of name in src (0: none). */
uint32_t cc_line_of(const char *src, size_t len, const char *name);
/* The backends' diagnostic callback (cc_diag_fn); ctx is the cc_job_ctx. */
void cc_on_backend_diag(void *ctx, pb_severity sev, const char *file,
                        unsigned line, unsigned col, const char *message);
bool cc_has_errors(const cc_result *r);
/* A C prototype made from a signature, for vars whose source text is
 * unknown (malloc'd). */
char *cc_decl_from_sig(const char *name, const char *sig);

/* The checks on a linked module (out->module): its size and dylink.0, its
 * exports, imports, pb_meta and defined vars. Diagnostics for what the
 * source did; PB_ERR_INTERNAL or PB_ERR_NOMEM for what the compiler did. */
pb_err cc_check_module(cc_job_ctx *j, pb_errmsg *why);
/* Refuses a signature change that vars not redefined here still call. */
void cc_check_signature_changes(const cc_job *job, cc_job_ctx *j);

/* ---- wasm reader (wasm.c) ------------------------------------------------ */

#define CC_WASM_MAX_IMPORTS 256u
#define CC_WASM_MAX_EXPORTS 64u

typedef struct cc_wasm_import {
    pb_str module, field;
    uint8_t kind; /* 0 func, 1 table, 2 memory, 3 global */
} cc_wasm_import;

typedef struct cc_wasm {
    bool has_dylink; /* dylink.0 is the first section */
    cc_wasm_import imports[CC_WASM_MAX_IMPORTS];
    uint32_t n_imports;
    pb_str exports[CC_WASM_MAX_EXPORTS];
    uint32_t n_exports;
    bool too_many;
    pb_str meta; /* contents of custom section pb_meta */
} cc_wasm;

/* Reads p with pb_wasm_read; PB_ERR_MALFORMED if it is not a wasm module.
 * Names point into p. */
pb_err cc_wasm_parse(const uint8_t *p, size_t len, cc_wasm *w);

/* ---- source pre-scan (prescan.c) -----------------------------------------
 * A lexical pass over C source that finds top-level function definitions
 * (name, line, prototype text) without parsing: it decides which room vars
 * the prelude must not declare (the patch redefines them) and records each
 * var's prototype for other patches. Macros that generate definitions are
 * not seen (PB_TEST is understood). */
typedef struct cc_found {
    char name[PB_MAX_NAME_BYTES + 1];
    uint32_t line;
    char *decl; /* malloc'd prototype text, whitespace collapsed */
} cc_found;

typedef struct cc_scan {
    cc_found *defs;
    uint32_t n_defs;
    /* identifiers that appear anywhere in the source (hashed set) */
    char **idents;
    uint32_t n_idents, cap_idents;
} cc_scan;

int cc_scan_source(const char *src, size_t len, cc_scan *out);
const cc_found *cc_scan_find(const cc_scan *s, const char *name);
bool cc_scan_mentions(const cc_scan *s, const char *name);
void cc_scan_free(cc_scan *s);

/* ---- cache (cache.c) ----------------------------------------------------- */

typedef struct cc_cache cc_cache;
cc_cache *cc_cache_new(uint32_t entries);
/* A copy of the cached result for key, or false. */
bool cc_cache_get(cc_cache *c, const uint8_t key[PB_HASH_BYTES],
                  cc_result *out);
void cc_cache_put(cc_cache *c, const uint8_t key[PB_HASH_BYTES],
                  const cc_result *r);
void cc_cache_free(cc_cache *c);

/* Deep copy of a result (used by the cache). */
int cc_result_copy(const cc_result *src, cc_result *dst);
/* Frees what one var of a result holds. */
void cc_sym_free(cc_sym *s);

/* ---- the compile server's pipe protocol (ipc.c) -------------------------- */

typedef struct cc_ipc_job {
    uint64_t id;
    cc_job job; /* points into the fields below */
    char *file, *source;
    cc_var *vars;
} cc_ipc_job;

/* 0, or -1 if the message could not be written whole. */
int cc_ipc_send(int fd, const pb_buf *msg);

typedef enum cc_ipc_status {
    CC_IPC_OK = 0,
    CC_IPC_CLOSED,  /* end of input, a read error or a message over limit */
    CC_IPC_TIMEOUT, /* the deadline passed first */
} cc_ipc_status;

/* Reads one message into *msg (malloc'd, *len bytes) before deadline_us
 * (cc_now_us() time; 0: none). */
cc_ipc_status cc_ipc_recv(int fd, uint8_t **msg, size_t *len,
                          uint64_t deadline_us);
/* Pack a message into out (its contents replaced). On failure out is empty
 * and why says what: PB_ERR_TOO_BIG over the pipe's limit, or out could not
 * grow (PB_ERR_BUF_TOO_SMALL for a fixed buffer, PB_ERR_NOMEM). */
pb_err cc_ipc_pack_job(uint64_t id, const cc_job *job, pb_buf *out,
                       pb_errmsg *why) PB_WUR;
int cc_ipc_unpack_job(const uint8_t *p, size_t len, cc_ipc_job *j);
void cc_ipc_job_free(cc_ipc_job *j);
pb_err cc_ipc_pack_result(uint64_t id, pb_err status, const char *error,
                          const cc_result *r, pb_buf *out,
                          pb_errmsg *why) PB_WUR;
int cc_ipc_unpack_result(const uint8_t *p, size_t len, uint64_t *id,
                         pb_err *status, char *error, size_t error_len,
                         cc_result *r);
int cc_ipc_unpack_raw(const uint8_t *p, size_t len, msgpack_object *o,
                      msgpack_zone **z);

/* Small helpers (util.c); errors are filled with pb_fail (pb_protocol.h). */
char *cc_strdup(const char *s);
char *cc_strndup(const char *s, size_t n);
uint64_t cc_now_us(void);

#endif
