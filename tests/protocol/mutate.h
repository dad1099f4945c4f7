/* mutate.h — test helpers that rewrite an encoded frame map: drop a key,
 * replace a key's value, duplicate a key or add an unknown one. They are how
 * the tests reach every rejection path of every field generically. */
#ifndef PB_TEST_MUTATE_H
#define PB_TEST_MUTATE_H

#include "pb_protocol.h"

#include <msgpack.h>

typedef enum {
    MUT_DROP,      /* remove key */
    MUT_REPLACE,   /* set key's value to `with` */
    MUT_DUPLICATE, /* repeat key (same value) */
    MUT_ADD,       /* add key with value `with` at the end */
} mut_op;

/* Re-encodes the top-level map in `in` with one change into out (growable).
 * `with` is a packing callback for the new value. Returns 0 on success. */
typedef void (*mut_value_fn)(msgpack_packer *pk, void *arg);
int mutate_map(const pb_buf *in, mut_op op, const char *key, mut_value_fn with,
               void *arg, pb_buf *out);

/* Ready-made value writers. */
void mut_nil(msgpack_packer *pk, void *arg);
void mut_str_n(msgpack_packer *pk, void *arg); /* arg: size_t* length */
void mut_bin_n(msgpack_packer *pk, void *arg); /* arg: size_t* length */
void mut_uint(msgpack_packer *pk, void *arg);  /* arg: uint64_t* */
void mut_neg(msgpack_packer *pk, void *arg);   /* -1 */
void mut_raw(msgpack_packer *pk, void *arg);   /* arg: pb_buf* raw bytes */

#endif
