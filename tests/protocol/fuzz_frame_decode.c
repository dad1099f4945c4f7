/* fuzz_frame_decode.c — libFuzzer target for the bytes that enter from the
 * network: frame decode, and statement decode plus verification. Beyond "no
 * crash, no leak, no overread" (ASan/UBSan), it checks one property: a frame
 * that decodes re-encodes, and that encoding decodes and re-encodes to the
 * same bytes. Seed corpus: tests/protocol/vectors (good and bad frames). */
#include "pb_protocol.h"

#include <stdlib.h>
#include <string.h>

static uint8_t pinned[PB_PUBLICKEY_BYTES];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        if (pb_init() != PB_OK)
            abort();
        ready = 1;
    }
    pb_frame f;
    if (pb_frame_decode(data, size, &f, NULL) == PB_OK) {
        pb_buf a, b;
        pb_buf_init(&a);
        pb_buf_init(&b);
        if (pb_frame_encode(&f, &a, NULL) != PB_OK)
            abort(); /* decoded frames must be encodable */
        pb_frame g;
        if (pb_frame_decode(a.data, a.len, &g, NULL) != PB_OK)
            abort();
        if (pb_frame_encode(&g, &b, NULL) != PB_OK || a.len != b.len ||
            memcmp(a.data, b.data, a.len) != 0)
            abort();
        if (f.type == PB_T_PATCH) {
            pb_statement s;
            if (pb_patch_verify(&f.patch, pinned, &s, NULL) == PB_OK)
                pb_statement_free(&s);
        }
        pb_frame_free(&g);
        pb_frame_free(&f);
        pb_buf_free(&a);
        pb_buf_free(&b);
    }
    pb_statement s;
    if (pb_statement_decode(data, size, &s, NULL) == PB_OK) {
        pb_chain head;
        if (pb_chain_init(&head, "jam") != PB_OK)
            abort();
        if (pb_chain_check(&head, &s, NULL) == PB_OK)
            pb_chain_advance(&head, &s);
        pb_statement_free(&s);
    }
    return 0;
}
