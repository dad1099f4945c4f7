/* backend_warm.c — the warm backend: clang and lld kept loaded in this
 * process (compiler/llvm/), behind the same interface as the
 * process backend, with the same flags and pass plugin, so the same module
 * comes out.
 *
 * The engine is a shared library, libpb_cc_llvm.so, opened here at run
 * time rather than linked: it is the only code that links LLVM, and it is
 * built without the sanitizers, so the ASan/UBSan build of everything else
 * keeps working. It is looked for in $PB_CC_LLVM, next to the executable,
 * in ../lib/patchbay/ from the executable, in the build tree and in the
 * install prefix; dlopen()ed RTLD_GLOBAL because the ABI pass plugin that
 * LLVM loads later resolves LLVM's symbols from the process. It is never
 * closed (LLVM registers exit-time destructors).
 *
 * Precompiled header: from the second job on, <patchbay.h> and the libc
 * headers it includes come from a PCH built once with the job's flags, so
 * a small patch costs only its own code. (The first job parses them: a
 * one-shot `patchbay compile` would not win back the PCH's cost.) */
#include "internal.h"
#include "llvm/cc_llvm.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PB_CC_LLVM_BUILD_PATH
#define PB_CC_LLVM_BUILD_PATH ""
#endif
#ifndef PB_CC_LLVM_INSTALL_PATH
#define PB_CC_LLVM_INSTALL_PATH ""
#endif
/* Under ASan (the test build), LeakSanitizer does not track what LLVM
 * allocates: LLVM is outside the sanitized build by design, and a job that
 * crashed or ran out of time is unwound with longjmp past clang's frames,
 * which leaks by construction (a little, once per such job). Whether the
 * engine's memory stays flat is measured by bench/compile over 1,000
 * compiles instead. */
#if defined(__SANITIZE_ADDRESS__)
#define CC_WARM_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CC_WARM_LSAN 1
#endif
#endif
#ifdef CC_WARM_LSAN
#include <sanitizer/lsan_interface.h>
#define LSAN_OFF() __lsan_disable()
#define LSAN_ON()  __lsan_enable()
#else
#define LSAN_OFF() ((void)0)
#define LSAN_ON()  ((void)0)
#endif

#define CC_LLVM_SO       "libpb_cc_llvm.so"
#define CC_PCH_HEADER    CC_VDIR "pb_pch.h"
#define CC_PCH_PATH      CC_VDIR "pb_pch.h.pch"
#define CC_WARM_MAX_ARGS 96

typedef struct warm_api {
    cc_llvm *(*new_)(const cc_llvm_desc *, char *, size_t);
    void (*free_)(cc_llvm *);
    int (*compile)(cc_llvm *, const char *const *, const char *,
                   const cc_llvm_file *, size_t, cc_llvm_diag_fn, void *,
                   uint8_t **, size_t *, char *, size_t);
    int (*make_pch)(cc_llvm *, const char *const *, const char *,
                    const cc_llvm_file *, size_t, const char *, cc_llvm_diag_fn,
                    void *, char *, size_t);
    int (*link)(cc_llvm *, const uint8_t *const *, const size_t *, size_t,
                uint8_t **, size_t *, char *, size_t);
    const char *const *(*read_dirs)(const cc_llvm *);
    const char *(*work_dir)(const cc_llvm *);
} warm_api;

typedef enum pch_state {
    PCH_NOT_YET,
    PCH_DUE,
    PCH_READY,
    PCH_FAILED
} pch_state;

typedef struct warm_be {
    cc_be be;
    warm_api api;
    cc_llvm *llvm;
    uint32_t timeout_ms;
    char plugin[512];
    pch_state pch;
    char *pch_args; /* the flags the PCH was built with, joined by '\n' */
} warm_be;

static bool live; /* cc_llvm allows one instance per process */

/* ---- finding and opening the library ------------------------------------ */

static void *try_open(const char *path, char *tried, size_t cap, pb_errmsg *why,
                      bool *load_failed)
{
    size_t n = strlen(tried);
    snprintf(tried + n, cap - n, "%s%s", n ? ", " : "", path);
    if (!*path || access(path, R_OK) != 0)
        return NULL;
    void *h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
        *load_failed = true;
        pb_fail(why, PB_ERR_INTERNAL,
                "cannot load %s: %s (are libclang-cpp14, liblld-14 and "
                "libllvm14 installed?)",
                path, dlerror());
    }
    return h;
}

static void *open_library(pb_errmsg *why)
{
    char tried[2048] = "";
    bool load_failed = false;
    const char *env = getenv("PB_CC_LLVM");
    if (env && *env) {
        void *h = try_open(env, tried, sizeof tried, why, &load_failed);
        if (!h && !load_failed)
            pb_fail(why, PB_ERR_INTERNAL,
                    "PB_CC_LLVM=%s: no such file (" CC_LLVM_SO ")", env);
        return h;
    }
    char exe[1024], dir[1024], path[1100];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[len > 0 ? len : 0] = '\0';
    const char *slash = strrchr(exe, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - exe) : 0, exe);
    void *h = NULL;
    if (*dir) {
        snprintf(path, sizeof path, "%s/" CC_LLVM_SO, dir);
        h = try_open(path, tried, sizeof tried, why, &load_failed);
        if (!h && !load_failed) {
            snprintf(path, sizeof path, "%s/../lib/patchbay/" CC_LLVM_SO, dir);
            h = try_open(path, tried, sizeof tried, why, &load_failed);
        }
    }
    if (!h && !load_failed)
        h = try_open(PB_CC_LLVM_BUILD_PATH, tried, sizeof tried, why,
                     &load_failed);
    if (!h && !load_failed)
        h = try_open(PB_CC_LLVM_INSTALL_PATH, tried, sizeof tried, why,
                     &load_failed);
    if (!h && !load_failed)
        pb_fail(why, PB_ERR_INTERNAL,
                CC_LLVM_SO " not found (build target pb_cc_llvm or set "
                           "PB_CC_LLVM; looked at %s)",
                tried);
    return h;
}

static int load_api(void *h, warm_api *a, pb_errmsg *why)
{
    const struct {
        const char *name;
        void **slot;
    } syms[] = {
        {"cc_llvm_new", (void **)&a->new_},
        {"cc_llvm_free", (void **)&a->free_},
        {"cc_llvm_compile", (void **)&a->compile},
        {"cc_llvm_make_pch", (void **)&a->make_pch},
        {"cc_llvm_link", (void **)&a->link},
        {"cc_llvm_read_dirs", (void **)&a->read_dirs},
        {"cc_llvm_work_dir", (void **)&a->work_dir},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++)
        if (!(*syms[i].slot = dlsym(h, syms[i].name))) {
            pb_fail(why, PB_ERR_INTERNAL,
                    CC_LLVM_SO " lacks %s (a library from another build?)",
                    syms[i].name);
            return -1;
        }
    return 0;
}

/* ---- jobs ------------------------------------------------------------------
 */

/* A job's diagnostics are held until it ends: one that ran out of time or
 * crashed reports that alone, as the process backend does (whose clang
 * output is lost with the killed child). */
#define CC_WARM_MAX_DIAGS 64

typedef struct held_diag {
    pb_severity severity;
    char *file, *message;
    unsigned line, col;
} held_diag;

typedef struct diag_hold {
    held_diag d[CC_WARM_MAX_DIAGS];
    size_t n;
} diag_hold;

static void on_llvm_diag(void *ctx, const cc_llvm_diag *d)
{
    diag_hold *h = ctx;
    if (h->n == CC_WARM_MAX_DIAGS)
        return;
    held_diag *k = &h->d[h->n];
    k->severity = d->severity >= CC_LLVM_ERROR     ? PB_SEV_ERROR
                  : d->severity == CC_LLVM_WARNING ? PB_SEV_WARNING
                                                   : PB_SEV_NOTE;
    k->file = cc_strdup(d->file);
    k->message = cc_strdup(d->message);
    k->line = d->line;
    k->col = d->col;
    if (!k->file || !k->message) {
        free(k->file);
        free(k->message);
        return;
    }
    h->n++;
}

/* Hands the held diagnostics to fn (unless fn is NULL) and frees them. */
static void release_diags(diag_hold *h, cc_diag_fn fn, void *ctx)
{
    for (size_t i = 0; i < h->n; i++) {
        held_diag *k = &h->d[i];
        if (fn)
            fn(ctx, k->severity, k->file, k->line, k->col, k->message);
        free(k->file);
        free(k->message);
    }
    h->n = 0;
}

/* The job's flags without "-include PRELUDE": the flags a PCH is built
 * with, joined, so that a change of flags is noticed. */
static char *pch_flags(const char *const *args, const char **out, size_t cap)
{
    size_t n = 0, len = 1;
    for (size_t i = 0; args[i] && n + 1 < cap; i++) {
        if (!strcmp(args[i], "-include") && args[i + 1] &&
            !strcmp(args[i + 1], CC_PRELUDE_PATH)) {
            i++;
            continue;
        }
        out[n++] = args[i];
        len += strlen(args[i]) + 1;
    }
    out[n] = NULL;
    char *joined = malloc(len);
    if (!joined)
        return NULL;
    size_t at = 0;
    for (size_t i = 0; i < n; i++)
        at += (size_t)sprintf(joined + at, "%s\n", out[i]);
    joined[at] = '\0';
    return joined;
}

/* Builds the PCH when it is due (the second job) or when the flags
 * changed. A PCH that fails to build is not retried: jobs then parse the
 * headers themselves, which is slower but the same. */
static void prepare_pch(warm_be *w, const char *const *args)
{
    const char *flags[CC_WARM_MAX_ARGS];
    if (w->pch == PCH_FAILED)
        return;
    char *joined = pch_flags(args, flags, CC_WARM_MAX_ARGS);
    if (!joined)
        return;
    if (w->pch == PCH_READY && !strcmp(joined, w->pch_args)) {
        free(joined);
        return;
    }
    if (w->pch == PCH_NOT_YET) {
        w->pch = PCH_DUE;
        free(joined);
        return;
    }
    static const char header[] = "#include <patchbay.h>\n";
    cc_llvm_file f = {CC_PCH_HEADER, header, sizeof header - 1};
    char err[512];
    LSAN_OFF();
    int rc = w->api.make_pch(w->llvm, flags, CC_PCH_HEADER, &f, 1, CC_PCH_PATH,
                             NULL, NULL, err, sizeof err);
    LSAN_ON();
    if (rc != CC_LLVM_OK) {
        w->pch = PCH_FAILED;
        free(joined);
        return;
    }
    free(w->pch_args);
    w->pch_args = joined;
    w->pch = PCH_READY;
}

static cc_be_status warm_compile(cc_be *be, const char *const *args,
                                 const cc_file *files, size_t n_files,
                                 cc_diag_fn on_diag, void *ctx, uint8_t **obj,
                                 size_t *obj_len, char *err, size_t err_len)
{
    warm_be *w = (warm_be *)be;
    const char *full[CC_WARM_MAX_ARGS + 3];
    cc_llvm_file lf[8];
    size_t n = 0;
    *obj = NULL;
    if (n_files > sizeof lf / sizeof lf[0]) {
        snprintf(err, err_len, "too many files for one job");
        return CC_BE_FAILED;
    }
    prepare_pch(w, args);
    for (; args[n] && n < CC_WARM_MAX_ARGS; n++)
        full[n] = args[n];
    if (w->pch == PCH_READY) {
        full[n++] = "-include-pch";
        full[n++] = CC_PCH_PATH;
    }
    full[n] = NULL;
    for (size_t i = 0; i < n_files; i++)
        lf[i] = (cc_llvm_file){files[i].path, files[i].data, files[i].len};
    diag_hold *held = calloc(1, sizeof *held);
    if (!held) {
        snprintf(err, err_len, "out of memory");
        return CC_BE_FAILED;
    }
    LSAN_OFF();
    int rc = w->api.compile(w->llvm, full, CC_MAIN_PATH, lf, n_files,
                            on_llvm_diag, held, obj, obj_len, err, err_len);
    LSAN_ON();
    char msg[1200];
    switch (rc) {
    case CC_LLVM_OK:
    case CC_LLVM_EJOB: release_diags(held, on_diag, ctx); break;
    case CC_LLVM_ETIME:
        release_diags(held, NULL, NULL);
        cc_timeout_message(msg, sizeof msg, w->timeout_ms);
        on_diag(ctx, PB_SEV_ERROR, "", 0, 0, msg);
        break;
    default: /* a crash in clang: this source made it crash */
        release_diags(held, NULL, NULL);
        snprintf(msg, sizeof msg, "the compiler failed on this source: %s",
                 err);
        on_diag(ctx, PB_SEV_ERROR, "", 0, 0, msg);
        break;
    }
    free(held);
    return rc == CC_LLVM_OK ? CC_BE_OK : CC_BE_SOURCE_ERRORS;
}

static cc_be_status warm_link(cc_be *be, const uint8_t *obj, size_t obj_len,
                              uint8_t **wasm, size_t *wasm_len, char *err,
                              size_t err_len)
{
    warm_be *w = (warm_be *)be;
    *wasm = NULL;
    LSAN_OFF();
    int rc =
        w->api.link(w->llvm, &obj, &obj_len, 1, wasm, wasm_len, err, err_len);
    LSAN_ON();
    return rc == CC_LLVM_OK     ? CC_BE_OK
           : rc == CC_LLVM_EJOB ? CC_BE_SOURCE_ERRORS
                                : CC_BE_FAILED;
}

/* The headers (the engine's sandbox), the pass plugin, and the engine's
 * work directory. */
static void warm_paths(const cc_be *be, cc_paths *out)
{
    const warm_be *w = (const warm_be *)be;
    size_t n = 0;
    for (const char *const *d = w->api.read_dirs(w->llvm);
         *d && n < CC_MAX_PATHS - 1; d++)
        out->read[n++] = *d;
    out->read[n] = w->plugin;
    out->work_dir = w->api.work_dir(w->llvm);
}

static void warm_free(cc_be *be)
{
    warm_be *w = (warm_be *)be;
    if (w->llvm) {
        LSAN_OFF();
        w->api.free_(w->llvm);
        LSAN_ON();
        live = false;
    }
    free(w->pch_args);
    free(w);
}

cc_be *cc_be_warm_new(const cc_be_desc *d, pb_errmsg *why)
{
    if (live) {
        pb_fail(why, PB_ERR_INTERNAL,
                "a warm backend is already running in this process (LLVM's "
                "state is process-wide: one at a time)");
        return NULL;
    }
    if (access(d->pass_plugin, R_OK) != 0) {
        pb_fail(why, PB_ERR_INTERNAL, "the ABI pass plugin %s is missing",
                d->pass_plugin);
        return NULL;
    }
    static void *lib; /* opened once, never closed */
    if (!lib && !(lib = open_library(why)))
        return NULL;
    warm_be *w = calloc(1, sizeof *w);
    if (!w) {
        pb_fail(why, PB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (load_api(lib, &w->api, why))
        goto fail;
    char real[4096];
    const char *abi = realpath(d->abi_dir, real) ? real : d->abi_dir;
    const char *const dirs[] = {abi, NULL};
    cc_llvm_desc ld = {
        .allowed_dirs = dirs,
        .pass_plugin = d->pass_plugin,
        .timeout_ms = d->timeout_ms,
    };
    char err[1024];
    LSAN_OFF();
    w->llvm = w->api.new_(&ld, err, sizeof err);
    LSAN_ON();
    if (!w->llvm) {
        pb_fail(why, PB_ERR_INTERNAL, "the warm backend cannot start: %s", err);
        goto fail;
    }
    live = true;
    w->be.name = "warm";
    w->be.compile = warm_compile;
    w->be.link = warm_link;
    w->be.paths = warm_paths;
    w->be.free = warm_free;
    w->timeout_ms = d->timeout_ms;
    snprintf(w->plugin, sizeof w->plugin, "%s", d->pass_plugin);
    return &w->be;
fail:
    warm_free(&w->be);
    return NULL;
}
