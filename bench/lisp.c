/* lisp.c — bench/lisp: what the Lisp front end costs on top of C.
 *
 * Compiles the seed demo written in Lisp, `(defn ggg [v] (+ v 49))`, and
 * the same var written in C, alternately, N times each with the cache off,
 * with one backend (default: the process backend, or --backend warm), and
 * prints p50/p95 of both, the difference of the medians (the target: within
 * 1 ms of C) and the lowering alone (reader + lowering to C, no clang).
 *
 * usage: bench_lisp [--iterations N] [--backend warm|process] */
#include "cc.h"
#include "lisp/lisp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, int n, int p)
{
    qsort(v, (size_t)n, sizeof *v, cmp_u64);
    int i = n * p / 100;
    return v[i < n ? i : n - 1];
}

static const char LISP_SRC[] = "(defn ggg [v] (+ v 49))\n";
static const char C_SRC[] =
    "#include <patchbay.h>\ndouble ggg(double v) { return v + 49; }\n";

static int compile_once(cc_compiler *cc, pb_lang lang, const char *src,
                        uint64_t *us)
{
    cc_job job = {.lang = lang,
                  .file = lang == PB_LANG_LISP ? "seed.cljc" : "seed.c",
                  .source = src,
                  .source_len = strlen(src)};
    cc_result r;
    pb_errmsg why = {{0}};
    uint64_t t0 = now_us();
    pb_err e = cc_compile(cc, &job, &r, &why);
    *us = now_us() - t0;
    int ok = e == PB_OK && r.ok;
    if (!ok)
        fprintf(stderr, "bench_lisp: compile failed: %s%s\n", why.text,
                r.n_diags ? r.diags[0].message : "");
    cc_result_free(&r);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    int n = 50;
    cc_desc desc = {.backend = CC_BACKEND_PROCESS, .cache_disabled = true,
                    .abi_dir = PB_ABI_DIR};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--iterations") && i + 1 < argc) {
            n = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--backend") && i + 1 < argc) {
            const char *b = argv[++i];
            desc.backend = !strcmp(b, "warm") ? CC_BACKEND_WARM
                                              : CC_BACKEND_PROCESS;
        } else {
            printf("usage: bench_lisp [--iterations N] [--backend "
                   "warm|process]\n");
            return strcmp(argv[i], "--help") && strcmp(argv[i], "-h") ? 2 : 0;
        }
    }
    if (n < 1 || n > 100000) {
        fprintf(stderr, "bench_lisp: --iterations is 1..100000\n");
        return 2;
    }
    pb_errmsg why = {{0}};
    cc_compiler *cc = cc_new(&desc, &why);
    if (!cc) {
        fprintf(stderr, "bench_lisp: %s\n", why.text);
        return 1;
    }
    uint64_t *tl = calloc((size_t)n, sizeof *tl);
    uint64_t *tc = calloc((size_t)n, sizeof *tc);
    uint64_t *tw = calloc((size_t)n, sizeof *tw);
    int rc = 1;
    if (!tl || !tc || !tw)
        goto done;
    uint64_t warm;
    if (compile_once(cc, PB_LANG_C, C_SRC, &warm) ||
        compile_once(cc, PB_LANG_LISP, LISP_SRC, &warm))
        goto done;
    for (int i = 0; i < n; i++) /* alternate, so drift hits both alike */
        if (compile_once(cc, PB_LANG_LISP, LISP_SRC, &tl[i]) ||
            compile_once(cc, PB_LANG_C, C_SRC, &tc[i]))
            goto done;
    for (int i = 0; i < n; i++) {
        lisp_arena a = {0};
        lisp_c out;
        uint64_t t0 = now_us();
        int lr = lisp_to_c(&a, LISP_SRC, strlen(LISP_SRC), "seed.cljc", NULL, 0,
                           &out);
        tw[i] = now_us() - t0;
        lisp_arena_free(&a);
        if (lr)
            goto done;
    }
    uint64_t l50 = pct(tl, n, 50), c50 = pct(tc, n, 50);
    printf("# bench_lisp: the seed demo, %d compiles each, %s backend, cache "
           "off\n",
           n, cc_backend_name(cc));
    printf("C     p50 %8.2f ms  p95 %8.2f ms\n", c50 / 1000.0,
           pct(tc, n, 95) / 1000.0);
    printf("Lisp  p50 %8.2f ms  p95 %8.2f ms\n", l50 / 1000.0,
           pct(tl, n, 95) / 1000.0);
    printf("Lisp - C (p50): %+.2f ms; ratio Lisp/C %.3f\n",
           ((double)l50 - (double)c50) / 1000.0, (double)l50 / (double)c50);
    printf("lowering alone (read + lower, no clang): p50 %.1f us, p95 %.1f us\n",
           (double)pct(tw, n, 50), (double)pct(tw, n, 95));
    rc = 0;
done:
    free(tl);
    free(tc);
    free(tw);
    cc_free(cc);
    return rc;
}
