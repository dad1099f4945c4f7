/* cc_llvm.h — clang and wasm-ld (LLVM 14) kept loaded in this process: C
 * source in memory to a wasm32-emscripten object, objects to an Emscripten
 * side module (dylink.0), without a process per job. This header is all the
 * C code of patchbay sees of the C++ engine behind it (the .cpp files of
 * compiler/llvm/).
 *
 * Thread safety: none. clang's and lld's option parsers, lld's linker state
 * and the crash-recovery signal handlers are process-wide, so use at most one
 * cc_llvm at a time in a process, from one thread at a time.
 *
 * What a job may read (the sandbox): the in-memory files given to the job,
 * the files given to cc_llvm_make_pch, and files whose real path (symlinks
 * and ".." resolved) lies under an allowed directory (cc_llvm_desc). Every
 * other path looks like it does not exist, to #include and __has_include
 * alike. GNU inline assembly is refused (cc_llvm_base_compile_args), because
 * the assembler's .incbin/.include read files outside clang's file system.
 * The object never touches the disk; linking goes through a private 0700
 * directory in /dev/shm (a memory file system) that is emptied after each
 * link and removed by cc_llvm_free.
 *
 * Errors: functions return CC_LLVM_OK (0), CC_LLVM_EJOB (-1: the input is
 * wrong; compile diagnostics went to the callback, link errors are in err),
 * CC_LLVM_ECRASH (-2: clang or lld crashed or hit an internal error, the
 * message is in err; the next job works) or CC_LLVM_ETIME (-3: the
 * preprocessor was still expanding macros at the time limit). Outputs are set
 * only on success. err may be NULL; otherwise it always holds a NUL-terminated
 * message when the return is not CC_LLVM_OK. */
#ifndef CC_LLVM_H
#define CC_LLVM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility; its build defines this to
 * export what follows. */
#ifndef CC_LLVM_API
#define CC_LLVM_API
#endif

#define CC_LLVM_DEFAULT_SYSROOT "/usr/share/emscripten/cache/sysroot"

enum {
    CC_LLVM_OK = 0,
    CC_LLVM_EJOB = -1,   /* compile or link errors in the input */
    CC_LLVM_ECRASH = -2, /* the compiler itself failed; message in err */
    CC_LLVM_ETIME = -3,  /* the job ran past cc_llvm_desc.timeout_ms */
};

typedef struct cc_llvm cc_llvm;

/* Configuration; zero means the default stated for each field. */
typedef struct cc_llvm_desc {
    const char *sysroot; /* NULL: CC_LLVM_DEFAULT_SYSROOT */
    const char *const
        *allowed_dirs;       /* NULL-terminated list of further
                                directories clang may read; NULL: none.
                                Always allowed, added here:
                                <sysroot>/include and clang's resource
                                include directory (<resource dir>/include,
                                where the clang driver finds it) */
    const char *pass_plugin; /* LLVM new-pass-manager plugin (.so) run
                                in every compile, as clang's
                                -fpass-plugin=; loaded once by
                                cc_llvm_new to check it. NULL: none */
    uint32_t timeout_ms;     /* a compile or PCH job still expanding
                                macros, or still optimising, after this
                                long ends with CC_LLVM_ETIME (checked
                                every 256 expansions and, if the pass
                                plugin exports pb_pass_set_deadline_check,
                                before every optimisation pass, after
                                which the rest are skipped; parsing, code
                                generation and linking are not
                                interrupted: bound those from outside).
                                0: no limit */
} cc_llvm_desc;

/* A file that exists only in memory, visible to clang at path (absolute,
 * e.g. "/pb/src/patch.c"). Borrowed for the duration of the call. */
typedef struct cc_llvm_file {
    const char *path;
    const char *data;
    size_t len;
} cc_llvm_file;

typedef enum cc_llvm_severity {
    CC_LLVM_NOTE = 0, /* notes and remarks */
    CC_LLVM_WARNING = 1,
    CC_LLVM_ERROR = 2,
    CC_LLVM_FATAL = 3,
} cc_llvm_severity;

/* One diagnostic, as clang would print it. file is the path as clang saw it
 * (an in-memory path such as "/pb/src/patch.c", a header path, or "" with
 * line = col = 0 when it has no location); line and col are 1-based and
 * honour #line. message includes the warning flag, e.g. "unused variable
 * 'x' [-Wunused-variable]". The strings live until the callback returns. */
typedef struct cc_llvm_diag {
    cc_llvm_severity severity;
    const char *file;
    unsigned line, col;
    const char *message;
} cc_llvm_diag;

typedef void (*cc_llvm_diag_fn)(void *ctx, const cc_llvm_diag *d);

/* The fixed flags every patch is compiled and linked with, NULL-terminated,
 * for the default sysroot; the process backend (clang-14 and wasm-ld-14 as
 * programs) passes exactly these too. They are the flags of
 * `emcc -O2 -sSIDE_MODULE=1` (Emscripten 3.1.6, emcc -v) plus
 * -fno-gnu-inline-asm (the sandbox), patchbay's diagnostics flags and
 * --threads=1, exporting only __wasm_call_ctors. Compile flags exclude
 * "clang", -c, -o and inputs; link flags exclude "wasm-ld", -o and inputs.
 * They live in cc_llvm_args.c, which needs no LLVM (the process backend
 * compiles it in too). */
CC_LLVM_API const char *const *cc_llvm_base_compile_args(void);
CC_LLVM_API const char *const *cc_llvm_base_link_args(void);

/* Loads and warms up clang and lld. Returns NULL with a message in err if
 * the sysroot, a directory or the pass plugin cannot be used. */
CC_LLVM_API cc_llvm *cc_llvm_new(const cc_llvm_desc *desc, char *err,
                                 size_t err_len);

/* The directories a job may read beneath (real paths: <sysroot>/include,
 * clang's resource headers and cc_llvm_desc.allowed_dirs), NULL-terminated,
 * and the private directory (in /dev/shm) where links and PCHs are written:
 * what a process confining itself to its jobs must keep. Owned by cc. */
CC_LLVM_API const char *const *cc_llvm_read_dirs(const cc_llvm *cc);
CC_LLVM_API const char *cc_llvm_work_dir(const cc_llvm *cc);

/* Frees cc and its PCHs and removes its /dev/shm directory. NULL is fine. */
CC_LLVM_API void cc_llvm_free(cc_llvm *cc);

/* Compiles main_path (one of files, or a file in an allowed directory) to a
 * wasm object. args: NULL-terminated clang driver flags added after the base
 * flags (e.g. "-O2", "-DX=1", "-include", "/pb/prelude.h", "-include-pch",
 * "/pb/libc.pch", "-Wall", "-mllvm", "-foo"); they come from the program,
 * not the user (a flag such as -MF could write files). -mllvm options are
 * applied afresh for each job. Every diagnostic goes to on_diag (may be
 * NULL), none to stderr (except LLVM's own complaint about an -mllvm flag
 * given twice in one job, which it prints there; the job fails). On CC_LLVM_OK,
 * *obj is a malloc'd object of *obj_len bytes that the caller frees; warnings
 * may have been reported. */
CC_LLVM_API int cc_llvm_compile(cc_llvm *cc, const char *const *args,
                                const char *main_path,
                                const cc_llvm_file *files, size_t n_files,
                                cc_llvm_diag_fn on_diag, void *ctx,
                                uint8_t **obj, size_t *obj_len, char *err,
                                size_t err_len);

/* Precompiles header_path (with args, as for cc_llvm_compile) and keeps the
 * PCH in memory at pch_path, so that later compiles given
 * "-include-pch", pch_path skip parsing what it includes. The given files
 * (the header and whatever it includes from memory) stay visible to every
 * later job too, since clang checks the PCH against them; a later PCH at the
 * same pch_path replaces the earlier one. Compiles that use the PCH must use
 * the same args (clang refuses a PCH built with other macros, -O level or
 * target). Header diagnostics go to on_diag. */
CC_LLVM_API int cc_llvm_make_pch(cc_llvm *cc, const char *const *args,
                                 const char *header_path,
                                 const cc_llvm_file *files, size_t n_files,
                                 const char *pch_path, cc_llvm_diag_fn on_diag,
                                 void *ctx, char *err, size_t err_len);

/* Links n objects into one side module with cc_llvm_base_link_args() (and
 * -L<sysroot>/lib/wasm32-emscripten/pic for a non-default sysroot).
 * Undefined functions become imports from "env". On CC_LLVM_OK, *wasm is a
 * malloc'd module of *wasm_len bytes that the caller frees; on CC_LLVM_EJOB
 * err holds wasm-ld's messages. */
CC_LLVM_API int cc_llvm_link(cc_llvm *cc, const uint8_t *const *objs,
                             const size_t *obj_lens, size_t n, uint8_t **wasm,
                             size_t *wasm_len, char *err, size_t err_len);

#ifdef __cplusplus
}
#endif
#endif /* CC_LLVM_H */
