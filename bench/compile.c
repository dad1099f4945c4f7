/* compile.c — bench/compile: how fast a patch becomes a module.
 *
 * Compiles three patches — (a) the seed's one-liner, (b) a 40-line visual
 * pb_frame with sinf/cosf and a state var, (c) a 300-line patch — N times
 * each with every backend available (warm: clang+lld in process; process:
 * clang-14 + wasm-ld-14 as children) and with `emcc -O2 -sSIDE_MODULE=1`
 * in the same run, and prints p50/p95 per backend, the ratios against the
 * warm backend and whether the targets are met. Then the RSS of a
 * real compile server (`patchbay cc-server`, warm backend) over 1,000
 * compiles, each of a different source so that its cache never answers,
 * and what the server's confinement costs (confined / --unconfined).
 * Times on shared machines are noisy; the ratios are the result.
 *
 * usage: bench_compile [--iterations N] [--rss-compiles N]
 *                      [--confine-compiles N] [--no-emcc]
 *                      [--only warm|process|emcc|confine] [--patchbay PATH]
 * (--only runs one part, e.g. under a profiler) */
#include "cc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static const char case_a[] =
    "#include <patchbay.h>\ndouble ggg(double v) { return v + 49; }\n";

static const char case_b[] =
    "#include <patchbay.h>\n"
    "PB_STATE(int, frames, 0);\n"
    "static float wobble(float t, float k) { return sinf(t * k) * cosf(t); }\n"
    "static int clampi(int v, int lo, int hi) {\n"
    "    return v < lo ? lo : v > hi ? hi : v;\n"
    "}\n"
    "void pb_frame(double t, pb_canvas *c) {\n"
    "    float ft = (float)t;\n"
    "    frames++;\n"
    "    for (int y = 0; y < c->height; y++) {\n"
    "        for (int x = 0; x < c->width; x++) {\n"
    "            float u = (float)x / (float)c->width;\n"
    "            float v = (float)y / (float)c->height;\n"
    "            float r = 0.5f + 0.5f * wobble(ft + u * 6.f, 1.3f);\n"
    "            float g = 0.5f + 0.5f * wobble(ft + v * 4.f, 0.7f);\n"
    "            float b = 0.5f + 0.5f * sinf(ft + (u + v) * 3.f);\n"
    "            int ri = clampi((int)(r * 255.f), 0, 255);\n"
    "            int gi = clampi((int)(g * 255.f), 0, 255);\n"
    "            int bi = clampi((int)(b * 255.f), 0, 255);\n"
    "            c->pixels[y * c->width + x] = pb_rgb(ri, gi, bi);\n"
    "        }\n"
    "    }\n"
    "    int cx = c->width / 2, cy = c->height / 2;\n"
    "    int rad = (int)(20.f + 10.f * sinf(ft * 2.f));\n"
    "    pb_circle(c, cx, cy, rad, pb_rgb(255, 255, 255));\n"
    "    for (int i = 0; i < 12; i++) {\n"
    "        float a = ft + (float)i * 0.5236f;\n"
    "        int x1 = cx + (int)(cosf(a) * 60.f);\n"
    "        int y1 = cy + (int)(sinf(a) * 60.f);\n"
    "        pb_line(c, cx, cy, x1, y1, pb_rgb(255, 200, 0));\n"
    "    }\n"
    "    if (frames % 600 == 0)\n"
    "        printf(\"frame %d at t=%.2f\\n\", frames, t);\n"
    "}\n"
    "double speed(double t) {\n"
    "    return 1.0 + 0.5 * sin(t);\n"
    "}\n"
    "int frame_count(void) { return frames; }\n";

/* (c): 40 functions of ~7 lines, calling each other: ~300 lines. */
static char *make_case_c(void)
{
    size_t cap = 64 * 1024, n = 0;
    char *s = malloc(cap);
    n += (size_t)snprintf(s + n, cap - n, "#include <patchbay.h>\n");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(
            s + n, cap - n,
            "double f%d(double x) {\n"
            "    double acc = 0;\n"
            "    for (int i = 0; i < %d; i++)\n"
            "        acc += sin(x * i) / (1.0 + i);\n"
            "    if (acc > %d.0) acc = %d.0;\n"
            "    return acc%s;\n"
            "}\n",
            i, 3 + i % 5, i + 1, i + 1,
            i ? (i % 2 ? " + f0(x)" : " * 0.5") : "");
    return s;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct stats {
    double p50_ms, p95_ms;
    int ok;
    double cpu_p50_ms; /* CPU time of this process and its children */
} stats;

/* CPU time used so far by this process and by its waited-for children
 * (clang-14, wasm-ld-14, emcc and what it runs). On a shared machine the
 * wall time includes waiting for a core; this does not. */
static uint64_t cpu_us(void)
{
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    const struct timeval *tv[] = {&self.ru_utime, &self.ru_stime,
                                  &kids.ru_utime, &kids.ru_stime};
    uint64_t us = 0;
    for (size_t i = 0; i < 4; i++)
        us += (uint64_t)tv[i]->tv_sec * 1000000u + (uint64_t)tv[i]->tv_usec;
    return us;
}

static stats summarise(uint64_t *t, uint64_t *cpu, int n)
{
    stats s = {0, 0, n > 0, 0};
    if (n <= 0)
        return s;
    qsort(t, (size_t)n, sizeof *t, cmp_u64);
    qsort(cpu, (size_t)n, sizeof *cpu, cmp_u64);
    s.p50_ms = t[n / 2] / 1000.0;
    s.p95_ms = t[(n * 95) / 100 < n ? (n * 95) / 100 : n - 1] / 1000.0;
    s.cpu_p50_ms = cpu[n / 2] / 1000.0;
    return s;
}

static stats bench_backend(cc_backend b, const char *src, int iters)
{
    cc_desc d = {0};
    d.backend = b;
    d.cache_disabled = true;
    pb_errmsg why;
    cc_compiler *cc = cc_new(&d, &why);
    stats none = {0, 0, 0, 0};
    if (!cc) {
        fprintf(stderr, "  (%s backend unavailable: %s)\n",
                b == CC_BACKEND_WARM ? "warm" : "process", why.text);
        return none;
    }
    uint64_t *t = calloc((size_t)iters, sizeof *t);
    uint64_t *cpu = calloc((size_t)iters, sizeof *cpu);
    cc_job job = {PB_LANG_C, "bench.c", src, strlen(src), NULL, 0, false};
    for (int i = -2; i < iters; i++) { /* two warm-up runs */
        cc_result r;
        uint64_t t0 = now_us(), c0 = cpu_us();
        pb_err e = cc_compile(cc, &job, &r, &why);
        uint64_t dt = now_us() - t0, dc = cpu_us() - c0;
        if (e || !r.ok) {
            fprintf(stderr, "  compile failed: %s\n",
                    e ? why.text : r.n_diags ? r.diags[0].message : "?");
            cc_result_free(&r);
            free(t);
            free(cpu);
            cc_free(cc);
            return none;
        }
        cc_result_free(&r);
        if (i >= 0) {
            t[i] = dt;
            cpu[i] = dc;
        }
    }
    stats s = summarise(t, cpu, iters);
    free(t);
    free(cpu);
    cc_free(cc);
    return s;
}

static stats bench_emcc(const char *src, int iters)
{
    stats none = {0, 0, 0, 0};
    char dir[] = "/tmp/pbbench.XXXXXX";
    if (!mkdtemp(dir))
        return none;
    char in[256], out[256], inc[600];
    snprintf(in, sizeof in, "%s/bench.c", dir);
    snprintf(out, sizeof out, "%s/bench.wasm", dir);
    snprintf(inc, sizeof inc, "-I%s", PB_ABI_DIR);
    FILE *f = fopen(in, "w");
    fputs(src, f);
    fclose(f);
    setenv("NODE_PATH", "/usr/share/nodejs", 1);
    setenv("EMSDK_PYTHON", "/usr/bin/python3", 1);
    uint64_t *t = calloc((size_t)iters, sizeof *t);
    uint64_t *cpu = calloc((size_t)iters, sizeof *cpu);
    stats s = none;
    for (int i = -1; i < iters; i++) {
        fflush(stdout); /* the child must not repeat our buffered output */
        uint64_t t0 = now_us(), c0 = cpu_us();
        pid_t pid = fork();
        if (pid == 0) {
            freopen("/dev/null", "w", stdout);
            execlp("emcc", "emcc", "-O2", "-sSIDE_MODULE=1", inc, in, "-o",
                   out, (char *)NULL);
            _exit(127);
        }
        int st;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st)) {
            fprintf(stderr, "  (emcc failed; skipping it)\n");
            goto done;
        }
        if (i >= 0) {
            t[i] = now_us() - t0;
            cpu[i] = cpu_us() - c0;
        }
    }
    s = summarise(t, cpu, iters);
done:
    free(t);
    free(cpu);
    unlink(in);
    unlink(out);
    rmdir(dir);
    return s;
}

static long rss_kb(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

/* The compile server's RSS while it compiles n different patches (case
 * (b) with a counter in a comment, so that the cache never answers). */
static void bench_server_rss(const char *patchbay, const char *src, int n)
{
    const char *argv[] = {patchbay, "cc-server", NULL};
    cc_client_desc d = {argv, CC_BACKEND_WARM, 0};
    pb_errmsg why;
    cc_client *c = cc_client_new(&d, &why);
    if (!c) {
        printf("\ncompile server unavailable: %s\n", why.text);
        return;
    }
    size_t len = strlen(src);
    char *buf = malloc(len + 64);
    const int marks[] = {10, 100, 250, 500, 750, 1000, 2000, 5000};
    printf("\ncompile server (warm) RSS over %d compiles:", n);
    for (int i = 1; i <= n; i++) {
        int m = snprintf(buf, len + 64, "%s// %d\n", src, i);
        cc_job job = {PB_LANG_C, "rss.c", buf, (size_t)m, NULL, 0, false};
        cc_result r;
        if (cc_client_compile(c, &job, &r, &why) != PB_OK || !r.ok) {
            printf(" failed at %d\n", i);
            cc_result_free(&r);
            break;
        }
        cc_result_free(&r);
        bool mark = i == n;
        for (size_t k = 0; k < sizeof marks / sizeof marks[0]; k++)
            mark |= i == marks[k];
        if (mark)
            printf(" %d: %.1f MiB;", i, rss_kb(cc_client_pid(c)) / 1024.0);
    }
    printf(" %u server start(s)\n", cc_client_starts(c));
    free(buf);
    cc_client_free(c);
}

/* CPU time of process pid and its reaped children, in ms (clock ticks:
 * meaningful summed over many compiles). */
static double cpu_ms_of(int pid)
{
    char path[64], text[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f)
        fclose(f);
    text[n] = '\0';
    const char *p = strrchr(text, ')'); /* the name may hold spaces */
    unsigned long long v[4] = {0, 0, 0, 0};
    /* after ")": state, then fields 4..13, then utime stime cutime cstime */
    if (!p || sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu "
                     "%llu %llu",
                     &v[0], &v[1], &v[2], &v[3]) != 4)
        return 0;
    return (double)(v[0] + v[1] + v[2] + v[3]) * 1000.0 /
           (double)sysconf(_SC_CLK_TCK);
}

/* What the compile server's confinement costs (docs/SECURITY.md § The
 * compile server): two real servers of one backend, one confined as the
 * relay runs it and one started with --unconfined, compile the same
 * sources in turn (case (b) with a counter, so that no cache answers);
 * round trip through the pipe, p50/p95, and the servers' CPU time per
 * compile (which waiting for a core does not inflate), each with the
 * ratio confined / unconfined. */
static void bench_confinement(const char *patchbay, cc_backend b,
                              const char *src, int n)
{
    const char *confined[] = {patchbay, "cc-server", NULL};
    const char *unconfined[] = {patchbay, "cc-server", "--unconfined", NULL};
    const char *const *argvs[] = {confined, unconfined};
    cc_client *c[2] = {NULL, NULL};
    uint64_t *t[2] = {calloc((size_t)n, sizeof(uint64_t)),
                      calloc((size_t)n, sizeof(uint64_t))};
    size_t len = strlen(src);
    char *buf = malloc(len + 64);
    pb_errmsg why;
    for (int k = 0; k < 2; k++) {
        cc_client_desc d = {argvs[k], b, 0};
        if (!(c[k] = cc_client_new(&d, &why))) {
            printf("  compile server unavailable: %s\n", why.text);
            goto done;
        }
    }
    double cpu0[2] = {0, 0};
    for (int i = -3; i < n; i++) /* three to warm up */
        for (int k = 0; k < 2; k++) {
            if (i == 0)
                cpu0[k] = cpu_ms_of(cc_client_pid(c[k]));
            int m = snprintf(buf, len + 64, "%s// %d %d\n", src, i, k);
            cc_job job = {.lang = PB_LANG_C,
                          .file = "confine.c",
                          .source = buf,
                          .source_len = (size_t)m};
            cc_result r;
            uint64_t t0 = now_us();
            pb_err e = cc_client_compile(c[k], &job, &r, &why);
            uint64_t dt = now_us() - t0;
            bool ok = !e && r.ok;
            cc_result_free(&r);
            if (!ok) {
                printf("  compile failed (%s)\n", e ? why.text : "diagnostics");
                goto done;
            }
            if (i >= 0)
                t[k][i] = dt;
        }
    stats s[2];
    double cpu[2];
    for (int k = 0; k < 2; k++) {
        s[k] = summarise(t[k], t[k], n); /* (its cpu field is unused) */
        cpu[k] = (cpu_ms_of(cc_client_pid(c[k])) - cpu0[k]) / n;
    }
    printf("  %-8s round trip: confined %7.2f / %7.2f ms, unconfined %7.2f / "
           "%7.2f ms, ratio %.3f (p50)\n"
           "  %-8s server CPU per compile: confined %.2f ms, unconfined %.2f "
           "ms, ratio %.3f\n",
           cc_backend_str(b), s[0].p50_ms, s[0].p95_ms, s[1].p50_ms,
           s[1].p95_ms, s[0].p50_ms / s[1].p50_ms, "", cpu[0], cpu[1],
           cpu[0] / cpu[1]);
done:
    for (int k = 0; k < 2; k++) {
        cc_client_free(c[k]);
        free(t[k]);
    }
    free(buf);
}

static void report_target(const char *what, double value, double limit,
                          bool below)
{
    bool met = below ? value <= limit : value >= limit;
    printf("  %-44s %8.2f  %s (target %s %.0f)\n", what, value,
           met ? "met" : "MISSED", below ? "<=" : ">=", limit);
}

int main(int argc, char **argv)
{
    int iters = 50, rss_compiles = 1000, confine_compiles = 50, emcc = 1;
    bool want[4] = {true, true, true, true}; /* warm, process, emcc, confine */
    const char *patchbay = PB_CLI;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--iterations") && i + 1 < argc)
            iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rss-compiles") && i + 1 < argc)
            rss_compiles = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--confine-compiles") && i + 1 < argc)
            confine_compiles = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-emcc"))
            emcc = 0;
        else if (!strcmp(argv[i], "--patchbay") && i + 1 < argc)
            patchbay = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) {
            const char *b = argv[++i];
            int k = !strcmp(b, "warm")      ? 0
                    : !strcmp(b, "process") ? 1
                    : !strcmp(b, "emcc")    ? 2
                    : !strcmp(b, "confine") ? 3
                                            : -1;
            if (k < 0) {
                fprintf(stderr,
                        "bench_compile: --only %s: expected warm, "
                        "process, emcc or confine\n",
                        b);
                return 2;
            }
            want[0] = want[1] = want[2] = want[3] = false;
            want[k] = true;
        } else {
            fprintf(stderr, "usage: bench_compile [--iterations N] "
                            "[--rss-compiles N] [--confine-compiles N] "
                            "[--no-emcc] [--only warm|process|emcc|confine] "
                            "[--patchbay PATH]\n");
            return 2;
        }
    }
    if (iters < 1)
        iters = 1;
    if (pb_init() != PB_OK)
        return 1;
    char *case_c = make_case_c();
    const struct {
        const char *name, *src;
    } cases[] = {{"(a) seed one-liner", case_a},
                 {"(b) 40-line visual", case_b},
                 {"(c) 300-line patch", case_c}};
    int p_iters = iters / 2 > 3 ? iters / 2 : 3;
    int e_iters = iters / 5 > 3 ? iters / 5 : 3;
    printf("bench/compile: per case, %d compiles with warm, %d with "
           "process, %d with emcc\n(cache off; p50/p95 in ms; ratio = p50 "
           "/ warm p50;\ncpu = CPU time of the compiler and its child "
           "processes, which waiting for a core does not inflate)\n\n",
           iters, p_iters, e_iters);
    printf("%-20s %-8s %9s %9s %9s %10s %9s\n", "case", "backend", "p50 ms",
           "p95 ms", "ratio", "cpu p50 ms", "cpu ratio");
    stats all[3][3];
    for (size_t k = 0; k < 3; k++) {
        stats none = {0, 0, 0, 0};
        stats w = want[0] ? bench_backend(CC_BACKEND_WARM, cases[k].src, iters)
                          : none;
        stats p = want[1]
                      ? bench_backend(CC_BACKEND_PROCESS, cases[k].src, p_iters)
                      : none;
        stats e = emcc && want[2] ? bench_emcc(cases[k].src, e_iters) : none;
        const struct {
            const char *name;
            stats s;
        } rows[] = {{"warm", w}, {"process", p}, {"emcc", e}};
        for (size_t r = 0; r < 3; r++) {
            all[k][r] = rows[r].s;
            if (!rows[r].s.ok)
                continue;
            printf("%-20s %-8s %9.2f %9.2f", cases[k].name, rows[r].name,
                   rows[r].s.p50_ms, rows[r].s.p95_ms);
            if (w.ok)
                printf(" %8.1fx %10.2f %8.1fx", rows[r].s.p50_ms / w.p50_ms,
                       rows[r].s.cpu_p50_ms,
                       rows[r].s.cpu_p50_ms / w.cpu_p50_ms);
            printf("\n");
        }
    }
    printf("\ntargets (issue 4):\n");
    if (all[0][0].ok)
        report_target("warm p50, (a) seed, ms", all[0][0].p50_ms, 4, true);
    if (all[1][0].ok)
        report_target("warm p50, (b) visual, ms", all[1][0].p50_ms, 10, true);
    for (size_t k = 0; k < 3; k++) {
        char what[96];
        if (all[k][0].ok && all[k][2].ok) {
            snprintf(what, sizeof what, "emcc / warm, %s", cases[k].name);
            report_target(what, all[k][2].p50_ms / all[k][0].p50_ms, 30,
                          false);
        }
        if (all[k][0].ok && all[k][1].ok) {
            snprintf(what, sizeof what, "process / warm, %s", cases[k].name);
            report_target(what, all[k][1].p50_ms / all[k][0].p50_ms, 8,
                          false);
        }
    }
    if (rss_compiles > 0 && want[0])
        bench_server_rss(patchbay, case_b, rss_compiles);
    if (confine_compiles > 0 && want[3]) {
        printf("\nconfinement of the compile server, (b) 40-line visual, "
               "%d compiles each:\n",
               confine_compiles);
        bench_confinement(patchbay, CC_BACKEND_WARM, case_b, confine_compiles);
        bench_confinement(patchbay, CC_BACKEND_PROCESS, case_b,
                          confine_compiles / 2 > 3 ? confine_compiles / 2 : 3);
    }
    free(case_c);
    return 0;
}
