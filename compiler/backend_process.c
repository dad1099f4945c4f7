/* backend_process.c — the process backend: clang-14 and wasm-ld-14 run as
 * child processes per job, with the same flags and pass plugin as the warm
 * backend (so the same module comes out). It is the fallback when the warm
 * backend cannot load and the baseline of bench/compile.
 *
 * Sandbox: clang reads files itself here, so it gets a virtual file system
 * too: an overlay (-ivfsoverlay) that maps only the allowed directories
 * and the job's own and does not fall through to the real file system, so
 * every other path does not exist, to #include and __has_include alike, as
 * in the warm backend. The overlay resolves ".." by name, not symlinks, so
 * before compiling, a preprocessor pass (-M) lists every file the source
 * includes, and any whose real path is outside the allowed directories
 * fails the job before the compiler proper sees it. Each child gets a
 * wall-time limit. */
#include "internal.h"
#include "llvm/cc_llvm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define CLANG                 "/usr/bin/clang-14"
#define WASM_LD               "/usr/bin/wasm-ld-14"
#define MAX_ARGS              128
#define CC_CHILD_MEMORY_BYTES (2048ull << 20)

typedef struct proc_be {
    cc_be be;
    char abi_dir[512];
    char plugin[512];
    char resource_include[600]; /* clang's own headers (stddef.h, ...) */
    char work_dir[64];          /* private, in /tmp: each job's directory */
    uint32_t timeout_ms;
} proc_be;

/* What a tool wrote to path, NUL-terminated (the caller frees it); NULL
 * if it cannot be read whole. */
static char *read_all(const char *path, size_t *len)
{
    pb_buf b;
    pb_buf_init(&b);
    if (pb_buf_read_path(&b, path, 0, NULL)) {
        pb_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return (char *)b.data;
}

static int write_all(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(p, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* How a child process ended. */
typedef enum child_end {
    CHILD_EXITED,    /* with the exit status run() returns in *status */
    CHILD_TIMED_OUT, /* killed at the time limit */
    CHILD_KILLED,    /* by a signal (running out of memory ends that way) */
    CHILD_NOT_RUN,   /* it could not start */
} child_end;

/* Each program run (the pre-pass, the compile, the link) gets the whole
 * time limit; the compile server's watchdog bounds the job. */
static uint64_t run_deadline_us(const proc_be *proc)
{
    return cc_now_us() + (uint64_t)proc->timeout_ms * 1000u;
}

/* Runs argv with stdout to out_path and stderr to err_path, until
 * deadline_us (cc_now_us time) and within CC_CHILD_MEMORY_BYTES of address
 * space. */
static child_end run(char *const argv[], const char *out_path,
                     const char *err_path, uint64_t deadline_us, int *status)
{
    *status = -1;
    pid_t pid = fork();
    if (pid < 0)
        return CHILD_NOT_RUN;
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 ||
            dup2(out, 1) < 0 || dup2(err, 2) < 0)
            _exit(127);
        struct rlimit as = {CC_CHILD_MEMORY_BYTES, CC_CHILD_MEMORY_BYTES};
        setrlimit(RLIMIT_AS, &as);
        execve(argv[0], argv, environ);
        _exit(127);
    }
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            if (WIFSIGNALED(st))
                return CHILD_KILLED;
            *status = WEXITSTATUS(st);
            return *status == 127 ? CHILD_NOT_RUN : CHILD_EXITED;
        }
        if (r < 0 && errno != EINTR)
            return CHILD_NOT_RUN;
        if (cc_now_us() > deadline_us) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return CHILD_TIMED_OUT;
        }
        struct timespec ts = {0, 200000}; /* 0.2 ms */
        nanosleep(&ts, NULL);
    }
}

/* What a child that did not exit means for the job: the source made it
 * time out or run out of memory (a diagnostic), or the backend is broken. */
static cc_be_status child_failure(child_end end, const char *tool,
                                  uint32_t timeout_ms, cc_diag_fn on_diag,
                                  void *ctx, char *err, size_t err_len)
{
    char msg[256];
    if (end == CHILD_TIMED_OUT) {
        cc_timeout_message(msg, sizeof msg, timeout_ms);
        on_diag(ctx, PB_SEV_ERROR, "", 0, 0, msg);
        return CC_BE_SOURCE_ERRORS;
    }
    if (end == CHILD_KILLED) {
        snprintf(msg, sizeof msg,
                 "%s ran out of memory or crashed on this source (limit %u "
                 "MiB)",
                 tool, (unsigned)(CC_CHILD_MEMORY_BYTES >> 20));
        on_diag(ctx, PB_SEV_ERROR, "", 0, 0, msg);
        return CC_BE_SOURCE_ERRORS;
    }
    snprintf(err, err_len, "cannot run %s", tool);
    return CC_BE_FAILED;
}

/* Writes dir/sandbox.yaml: a clang VFS overlay in which only dir and the
 * allowed directories exist ('fallthrough': false). Returns its path in
 * out. */
static int write_overlay(const char *dir, const char *const *allowed,
                         size_t n_allowed, char *out, size_t cap)
{
    snprintf(out, cap, "%s/sandbox.yaml", dir);
    FILE *f = fopen(out, "w");
    if (!f)
        return -1;
    fprintf(f, "{'version': 0, 'fallthrough': false, 'roots': [\n");
    for (size_t i = 0; i < n_allowed; i++) {
        /* YAML single-quoted: a quote is written twice */
        fprintf(f, "%s{'type': 'directory-remap', 'name': '", i ? ",\n" : "");
        for (int k = 0; k < 2; k++) {
            for (const char *c = allowed[i]; *c; c++)
                fprintf(f, *c == '\'' ? "''" : "%c", *c);
            fprintf(f, k ? "'}" : "', 'external-contents': '");
        }
    }
    fprintf(f, "]}\n");
    bool written = !ferror(f);
    return fclose(f) == 0 && written ? 0 : -1;
}

/* Maps a virtual path (/pb/...) to the job's directory. */
static const char *map_arg(const char *a, const char *dir, char *buf,
                           size_t cap)
{
    const char *v = strstr(a, CC_VDIR);
    if (!v)
        return a;
    snprintf(buf, cap, "%.*s%s/%s", (int)(v - a), a, dir, v + strlen(CC_VDIR));
    return buf;
}

static bool under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0');
}

/* Parses clang's "file:line:col: severity: message" lines. */
static void report_diags(const char *text, const char *dir, cc_diag_fn fn,
                         void *ctx)
{
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        char line[2048];
        snprintf(line, sizeof line, "%.*s", (int)n, p);
        p += n + (eol ? 1 : 0);
        static const struct {
            const char *tag;
            pb_severity sev;
        } sevs[] = {{"fatal error: ", PB_SEV_ERROR},
                    {"error: ", PB_SEV_ERROR},
                    {"warning: ", PB_SEV_WARNING},
                    {"note: ", PB_SEV_NOTE}};
        char *sev_at = NULL;
        const char *msg = NULL;
        pb_severity sev = PB_SEV_NOTE;
        for (size_t k = 0; k < sizeof sevs / sizeof sevs[0]; k++) {
            char *at = strstr(line, sevs[k].tag);
            if (at && (!sev_at || at < sev_at)) {
                sev_at = at;
                sev = sevs[k].sev;
                msg = at + strlen(sevs[k].tag);
            }
        }
        if (!sev_at)
            continue;
        unsigned ln = 0, col = 0;
        char file[1024] = "";
        *sev_at = '\0';
        /* "path:line:col: " or "path: " or "" */
        char *c1 = strchr(line, ':');
        if (c1) {
            *c1 = '\0';
            if (sscanf(c1 + 1, "%u:%u", &ln, &col) < 1)
                ln = col = 0;
            if (under(line, dir))
                snprintf(file, sizeof file, "%s%s", CC_VDIR,
                         line + strlen(dir) + 1);
            else
                snprintf(file, sizeof file, "%s", line);
        }
        fn(ctx, sev, file, ln, col, msg);
    }
}

static cc_be_status proc_compile(cc_be *be, const char *const *args,
                                 const cc_file *files, size_t n_files,
                                 cc_diag_fn on_diag, void *ctx, uint8_t **obj,
                                 size_t *obj_len, char *err, size_t err_len)
{
    proc_be *proc = (proc_be *)be;
    char dir[128];
    char path[1024], out[1024], errf[1024], overlay[1024];
    char mapped[MAX_ARGS][1024];
    char *argv[MAX_ARGS + 16];
    cc_be_status rc = CC_BE_FAILED;
    size_t n = 0;
    char *text = NULL;
    *obj = NULL;
    snprintf(dir, sizeof dir, "%s/job.XXXXXX", proc->work_dir);
    if (!mkdtemp(dir)) {
        snprintf(err, err_len, "cannot create a job directory: %s",
                 strerror(errno));
        return CC_BE_FAILED;
    }
    for (size_t i = 0; i < n_files; i++) {
        map_arg(files[i].path, dir, path, sizeof path);
        if (write_all(path, files[i].data, files[i].len)) {
            snprintf(err, err_len, "cannot write %s", path);
            goto done;
        }
    }
    const char *allowed[] = {dir, proc->abi_dir,
                             CC_LLVM_DEFAULT_SYSROOT "/include",
                             proc->resource_include};
    const size_t n_allowed = sizeof allowed / sizeof allowed[0];
    if (write_overlay(dir, allowed, n_allowed, overlay, sizeof overlay)) {
        snprintf(err, err_len, "cannot write %s", overlay);
        goto done;
    }
    argv[n++] = CLANG;
    for (const char *const *a = cc_llvm_base_compile_args(); *a; a++)
        argv[n++] = (char *)*a;
    argv[n++] = "-ivfsoverlay";
    argv[n++] = overlay;
    for (size_t i = 0; args[i] && n < MAX_ARGS; i++)
        argv[n++] = (char *)map_arg(args[i], dir, mapped[i], sizeof mapped[i]);
    snprintf(path, sizeof path, "%s/patch.c", dir);
    snprintf(out, sizeof out, "%s/deps", dir);
    snprintf(errf, sizeof errf, "%s/stderr", dir);

    /* 1. the sandbox: which files does the source include? */
    size_t base = n;
    argv[n++] = "-M";
    argv[n++] = path;
    argv[n] = NULL;
    int st;
    child_end end = run(argv, out, errf, run_deadline_us(proc), &st);
    if (end != CHILD_EXITED) {
        rc = child_failure(end, "clang", proc->timeout_ms, on_diag, ctx, err,
                           err_len);
        goto done;
    }
    size_t len;
    text = read_all(out, &len);
    if (text) {
        /* "patch.o: a b \\\n c ..." — every path after the colon */
        char *save = NULL, *tokp = strchr(text, ':');
        for (char *t = tokp ? strtok_r(tokp + 1, " \\\n", &save) : NULL; t;
             t = strtok_r(NULL, " \\\n", &save)) {
            char real[4096];
            const char *p = realpath(t, real) ? real : t;
            bool ok = false;
            for (size_t k = 0; k < n_allowed; k++)
                ok |= under(p, allowed[k]);
            if (!ok) {
                char msg[1200];
                snprintf(msg, sizeof msg,
                         "'%s' is outside the sandbox: a patch may include "
                         "only <patchbay.h> and the C library headers",
                         t);
                on_diag(ctx, PB_SEV_ERROR, "", 0, 0, msg);
                rc = CC_BE_SOURCE_ERRORS;
                goto done;
            }
        }
    }
    free(text);
    text = NULL;
    if (st != 0) { /* preprocessor errors: report them, compile nothing */
        text = read_all(errf, &len);
        if (text)
            report_diags(text, dir, on_diag, ctx);
        rc = CC_BE_SOURCE_ERRORS;
        goto done;
    }

    /* 2. compile */
    char plugin_arg[600];
    snprintf(plugin_arg, sizeof plugin_arg, "-fpass-plugin=%s", proc->plugin);
    n = base;
    argv[n++] = plugin_arg;
    argv[n++] = "-c";
    argv[n++] = path;
    argv[n++] = "-o";
    snprintf(out, sizeof out, "%s/patch.o", dir);
    argv[n++] = out;
    argv[n] = NULL;
    end = run(argv, "/dev/null", errf, run_deadline_us(proc), &st);
    if (end != CHILD_EXITED) {
        rc = child_failure(end, "clang", proc->timeout_ms, on_diag, ctx, err,
                           err_len);
        goto done;
    }
    text = read_all(errf, &len);
    if (text)
        report_diags(text, dir, on_diag, ctx);
    if (st != 0) {
        rc = CC_BE_SOURCE_ERRORS;
        goto done;
    }
    if (!(*obj = (uint8_t *)read_all(out, obj_len))) {
        snprintf(err, err_len, "clang wrote no object");
        goto done;
    }
    rc = CC_BE_OK;
done:
    free(text);
    for (size_t i = 0; i < n_files; i++) {
        map_arg(files[i].path, dir, path, sizeof path);
        unlink(path);
    }
    const char *leftovers[] = {"deps", "stderr", "patch.o", "sandbox.yaml"};
    for (size_t i = 0; i < sizeof leftovers / sizeof leftovers[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, leftovers[i]);
        unlink(path);
    }
    rmdir(dir);
    return rc;
}

static cc_be_status proc_link(cc_be *be, const uint8_t *obj, size_t obj_len,
                              uint8_t **wasm, size_t *wasm_len, char *err,
                              size_t err_len)
{
    proc_be *proc = (proc_be *)be;
    char dir[128];
    char in[1024], out[1024], errf[1024];
    char *argv[MAX_ARGS];
    size_t n = 0;
    cc_be_status rc = CC_BE_FAILED;
    *wasm = NULL;
    snprintf(dir, sizeof dir, "%s/link.XXXXXX", proc->work_dir);
    if (!mkdtemp(dir)) {
        snprintf(err, err_len, "cannot create a job directory: %s",
                 strerror(errno));
        return CC_BE_FAILED;
    }
    snprintf(in, sizeof in, "%s/patch.o", dir);
    snprintf(out, sizeof out, "%s/patch.wasm", dir);
    snprintf(errf, sizeof errf, "%s/stderr", dir);
    if (write_all(in, obj, obj_len)) {
        snprintf(err, err_len, "cannot write %s", in);
        goto done;
    }
    argv[n++] = WASM_LD;
    for (const char *const *a = cc_llvm_base_link_args(); *a; a++)
        argv[n++] = (char *)*a;
    argv[n++] = "-o";
    argv[n++] = out;
    argv[n++] = in;
    argv[n] = NULL;
    int st;
    child_end end = run(argv, "/dev/null", errf, run_deadline_us(proc), &st);
    if (end != CHILD_EXITED || st != 0) {
        size_t len;
        char *text = read_all(errf, &len);
        snprintf(err, err_len, "%s",
                 end == CHILD_TIMED_OUT ? "wasm-ld timed out"
                 : end == CHILD_KILLED  ? "wasm-ld ran out of memory or crashed"
                 : end == CHILD_NOT_RUN ? "cannot run wasm-ld"
                 : text                 ? text
                                        : "wasm-ld failed");
        free(text);
        rc = end == CHILD_NOT_RUN ? CC_BE_FAILED : CC_BE_SOURCE_ERRORS;
        goto done;
    }
    if (!(*wasm = (uint8_t *)read_all(out, wasm_len))) {
        snprintf(err, err_len, "wasm-ld wrote no module");
        goto done;
    }
    rc = CC_BE_OK;
done:
    unlink(in);
    unlink(out);
    unlink(errf);
    rmdir(dir);
    return rc;
}

/* Where clang-14 keeps its own headers: `clang-14 -print-resource-dir`
 * (real path) + "/include". */
static pb_err find_resource_include(proc_be *proc, pb_errmsg *why)
{
    char dir[128], out[160], errf[160];
    snprintf(dir, sizeof dir, "%s/probe.XXXXXX", proc->work_dir);
    if (!mkdtemp(dir))
        return pb_fail(why, PB_ERR_IO, "cannot create a directory in /tmp: %s",
                       strerror(errno));
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(errf, sizeof errf, "%s/err", dir);
    char *argv[] = {CLANG, "-print-resource-dir", NULL};
    int st;
    child_end end = run(argv, out, errf, cc_now_us() + 10000000u, &st);
    size_t len = 0;
    char *text = end == CHILD_EXITED && st == 0 ? read_all(out, &len) : NULL;
    unlink(out);
    unlink(errf);
    rmdir(dir);
    while (text && len && (text[len - 1] == '\n' || text[len - 1] == ' '))
        text[--len] = '\0';
    char inc[600], real[4096];
    snprintf(inc, sizeof inc, "%s/include", text ? text : "");
    free(text);
    if (!len || !realpath(inc, real))
        return pb_fail(why, PB_ERR_INTERNAL,
                       "cannot find clang-14's own headers (%s "
                       "-print-resource-dir gave %s)",
                       CLANG, len ? inc : "nothing");
    snprintf(proc->resource_include, sizeof proc->resource_include, "%s", real);
    return PB_OK;
}

/* clang-14 and wasm-ld-14 and what they load (beneath /usr on Debian
 * 12, with /lib and /lib64 leading there), the ABI headers and the pass
 * plugin, and the work directory. */
static void proc_paths(const cc_be *be, cc_paths *out)
{
    const proc_be *proc = (const proc_be *)be;
    static const char *const exec[] = {"/usr", "/lib", "/lib64", "/bin"};
    for (size_t i = 0; i < sizeof exec / sizeof exec[0]; i++)
        out->exec[i] = exec[i];
    out->read[0] = proc->abi_dir;
    out->read[1] = proc->plugin;
    out->read[2] = "/etc/ld.so.cache";
    out->write[0] = "/dev/null";
    out->work_dir = proc->work_dir;
}

static void proc_free(cc_be *be)
{
    proc_be *proc = (proc_be *)be;
    if (proc->work_dir[0])
        rmdir(proc->work_dir);
    free(proc);
}

cc_be *cc_be_process_new(const cc_be_desc *d, pb_errmsg *why)
{
    const char *need[] = {CLANG, WASM_LD};
    for (size_t i = 0; i < 2; i++)
        if (access(need[i], X_OK) != 0) {
            pb_fail(why, PB_ERR_INTERNAL,
                    "%s is missing (apt-get install "
                    "clang-14 lld-14)",
                    need[i]);
            return NULL;
        }
    if (access(d->pass_plugin, R_OK) != 0) {
        pb_fail(why, PB_ERR_INTERNAL, "the ABI pass plugin %s is missing",
                d->pass_plugin);
        return NULL;
    }
    proc_be *proc = calloc(1, sizeof *proc);
    if (!proc) {
        pb_fail(why, PB_ERR_NOMEM, "out of memory");
        return NULL;
    }
    proc->be.name = "process";
    proc->be.compile = proc_compile;
    proc->be.link = proc_link;
    proc->be.paths = proc_paths;
    proc->be.free = proc_free;
    char real[4096];
    snprintf(proc->abi_dir, sizeof proc->abi_dir, "%s",
             realpath(d->abi_dir, real) ? real : d->abi_dir);
    snprintf(proc->plugin, sizeof proc->plugin, "%s", d->pass_plugin);
    proc->timeout_ms = d->timeout_ms;
    snprintf(proc->work_dir, sizeof proc->work_dir, "/tmp/pbcc.XXXXXX");
    if (!mkdtemp(proc->work_dir)) {
        pb_fail(why, PB_ERR_IO, "cannot create a directory in /tmp: %s",
                strerror(errno));
        proc->work_dir[0] = '\0';
        proc_free(&proc->be);
        return NULL;
    }
    if (find_resource_include(proc, why)) {
        proc_free(&proc->be);
        return NULL;
    }
    return &proc->be;
}
