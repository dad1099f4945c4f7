/* samples.h — one deterministic sample of every frame type (and a signed
 * statement chain), shared by the unit tests, the vector generator and the
 * doc generator, so that the committed vectors, the hex examples in
 * docs/PROTOCOL.md and the tests all speak about the same bytes. */
#ifndef PB_TEST_SAMPLES_H
#define PB_TEST_SAMPLES_H

#include "pb_protocol.h"

typedef struct pb_sample {
    const char *name;        /* vector file name, e.g. "eval" */
    const char *description; /* one line for the JSON and the docs */
    pb_frame frame;
} pb_sample;

/* The test relay key, derived from a fixed seed. */
void pb_sample_keypair(uint8_t pk[PB_PUBLICKEY_BYTES],
                       uint8_t sk[PB_SECRETKEY_BYTES]);

/* A signed patch for room "jam" at seq, following prev_hash; the module is
 * an 8-byte empty wasm module plus `variant` so modules differ. Buffers are
 * owned by the caller-provided storage, which must outlive *out. */
typedef struct pb_sample_patch {
    pb_buf stmt;
    uint8_t sig[PB_SIG_BYTES];
    uint8_t module[16];
    char source[96];
    uint8_t hash[PB_HASH_BYTES]; /* hash of stmt */
    pb_patch patch;
} pb_sample_patch;

void pb_sample_patch_make(pb_sample_patch *p, const char *room, uint64_t seq,
                          const uint8_t prev_hash[PB_HASH_BYTES], int variant);
/* An expression's patch (Lisp "(ggg 10)", no symbols) at seq. */
void pb_sample_expr_make(pb_sample_patch *p, const char *room, uint64_t seq,
                         const uint8_t prev_hash[PB_HASH_BYTES]);
/* A replayed patch: definitions that name origin_room/origin_seq as the
 * patch they repeat (a version 3 statement). */
void pb_sample_replay_make(pb_sample_patch *p, const char *room, uint64_t seq,
                           const uint8_t prev_hash[PB_HASH_BYTES],
                           const char *origin_room, uint64_t origin_seq);
void pb_sample_patch_free(pb_sample_patch *p);

/* The signed head of room "jam" at the sample chain's seq 2 (epoch 0),
 * the statement of the "head" sample frame. */
typedef struct pb_sample_head {
    pb_buf stmt;
    uint8_t sig[PB_SIG_BYTES];
} pb_sample_head;
void pb_sample_head_make(pb_sample_head *h,
                         const uint8_t pk[PB_PUBLICKEY_BYTES],
                         const uint8_t sk[PB_SECRETKEY_BYTES]);

/* All samples, built on first call (static storage). */
const pb_sample *pb_samples(size_t *n);

#endif
