/* fake_cc_server.c — a compile server that misbehaves on purpose, for the
 * relay's tests: it speaks the real pipe protocol (compiler/ipc.c) but
 * answers every job the way a broken or hostile compile server could.
 * The relay must bound what it reads from the pipe and check a module
 * before it signs it.
 *
 * usage: fake_cc_server MODE [--timeout-ms N]
 *   many-diags      more diagnostics than a real one ever sends
 *   import-system   a module "defining f" that imports env.system
 *   export-evil     a module "defining f" that exports evil
 *   lying-defs      a module whose pb_meta defines pb_frame, said to
 *                   define f
 *   plain           a well-formed module defining f (the control) */
#include "internal.h" /* compiler/'s private header: the pipe protocol */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_DIAGS 100u /* more than CC_MAX_DIAGS and PB_MAX_DIAGS */

/* A section: id, size, bytes (every size here is under 128: one byte). */
static size_t section(uint8_t *out, uint8_t id, const uint8_t *body, size_t n)
{
    out[0] = id;
    out[1] = (uint8_t)n;
    memcpy(out + 2, body, n);
    return n + 2;
}

/* A name: its length (under 128), then its bytes. */
static size_t wname(uint8_t *out, const char *s)
{
    size_t n = strlen(s);
    out[0] = (uint8_t)n;
    memcpy(out + 1, s, n);
    return n + 1;
}

/* The module of mode: dylink.0, then an import or export if the mode
 * wants one, then pb_meta. Returns its length. */
static size_t module_of(const char *mode, uint8_t *m)
{
    static const uint8_t magic[8] = {0, 'a', 's', 'm', 1, 0, 0, 0};
    uint8_t body[128];
    size_t n = 8, b;
    memcpy(m, magic, 8);
    b = wname(body, "dylink.0");
    n += section(m + n, 0, body, b);
    if (!strcmp(mode, "import-system")) {
        body[0] = 1; /* one import: env.system, a function of type 0 */
        b = 1 + wname(body + 1, "env");
        b += wname(body + b, "system");
        body[b++] = 0;
        body[b++] = 0;
        n += section(m + n, 2, body, b);
    }
    const char *export = !strcmp(mode, "export-evil") ? "evil"
                         : !strcmp(mode, "plain")     ? "__wasm_call_ctors"
                                                      : NULL;
    if (export) {
        body[0] = 1; /* one export: function 0 */
        b = 1 + wname(body + 1, export);
        body[b++] = 0;
        body[b++] = 0;
        n += section(m + n, 7, body, b);
    }
    b = wname(body, "pb_meta");
    const char *meta =
        !strcmp(mode, "lying-defs") ? "def pb_frame v()\n" : "def f d(d)\n";
    memcpy(body + b, meta, strlen(meta));
    b += strlen(meta);
    n += section(m + n, 0, body, b);
    return n;
}

int main(int argc, char **argv)
{
    const char *modes[] = {"many-diags", "import-system", "export-evil",
                           "lying-defs", "plain"};
    size_t k = 0;
    while (argc >= 2 && k < 5 && strcmp(argv[1], modes[k]))
        k++;
    if (argc < 2 || k == 5) {
        fprintf(stderr, "usage: fake_cc_server many-diags|import-system|"
                        "export-evil|lying-defs|plain\n");
        return 2;
    }
    static cc_diag diags[N_DIAGS];
    static char text[N_DIAGS][32];
    for (uint32_t i = 0; i < N_DIAGS; i++) {
        snprintf(text[i], sizeof text[i], "fake error %u", i + 1);
        diags[i] = (cc_diag){i + 1, 1, PB_SEV_ERROR, text[i]};
    }
    static uint8_t module[512];
    static char f_name[] = "f", f_sig[] = "d(d)",
                f_decl[] = "double f(double);";
    static cc_sym def = {f_name, f_sig, f_decl, 1, NULL, 0};
    cc_result res = {0};
    if (k == 0) {
        res.diags = diags;
        res.n_diags = N_DIAGS;
    } else {
        res.ok = true;
        res.module = module;
        res.module_len = module_of(argv[1], module);
        res.defs = &def;
        res.n_defs = 1;
    }
    uint8_t *msg;
    size_t len;
    while (cc_ipc_recv(0, &msg, &len, 0) == 0) {
        cc_ipc_job job;
        int bad = cc_ipc_unpack_job(msg, len, &job);
        free(msg);
        if (bad)
            return 1;
        pb_buf out;
        pb_buf_init(&out);
        pb_errmsg why;
        if (cc_ipc_pack_result(job.id, PB_OK, "", &res, &out, &why) ||
            cc_ipc_send(1, &out))
            return 1;
        pb_buf_free(&out);
        cc_ipc_job_free(&job);
    }
    return 0;
}
