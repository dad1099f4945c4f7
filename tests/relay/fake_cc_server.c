/* fake_cc_server.c — a compile server that misbehaves on purpose, for the
 * relay's tests: it speaks the real pipe protocol (compiler/ipc.c) but
 * answers every job with more diagnostics than a real one ever sends, as a
 * broken or hostile compile server could. The relay must bound what it
 * reads from the pipe.
 *
 * usage: fake_cc_server many-diags [--timeout-ms N] */
#include "internal.h" /* compiler/'s private header: the pipe protocol */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_DIAGS 100u /* more than CC_MAX_DIAGS and PB_MAX_DIAGS */

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "many-diags")) {
        fprintf(stderr, "usage: fake_cc_server many-diags\n");
        return 2;
    }
    static cc_diag diags[N_DIAGS];
    static char text[N_DIAGS][32];
    for (uint32_t i = 0; i < N_DIAGS; i++) {
        snprintf(text[i], sizeof text[i], "fake error %u", i + 1);
        diags[i] = (cc_diag){i + 1, 1, PB_SEV_ERROR, text[i]};
    }
    cc_result res = {0};
    res.diags = diags;
    res.n_diags = N_DIAGS;
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
