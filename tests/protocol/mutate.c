/* mutate.c — see mutate.h. */
#include "mutate.h"

#include <stdlib.h>
#include <string.h>

static int sbuf_write(void *data, const char *buf, size_t len)
{
    pb_buf *b = data;
    if (b->cap - b->len < len) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < len)
            cap *= 2;
        uint8_t *p = realloc(b->data, cap);
        if (!p)
            return -1;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, buf, len);
    b->len += len;
    return 0;
}

int mutate_map(const pb_buf *in, mut_op op, const char *key, mut_value_fn with,
               void *arg, pb_buf *out)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, (const char *)in->data, in->len, &off) !=
            MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy(&u);
        return -1;
    }
    out->len = 0;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, sbuf_write);
    const msgpack_object_map *m = &u.data.via.map;
    size_t klen = strlen(key);
    uint32_t n = m->size, found = 0;
    for (uint32_t i = 0; i < m->size; i++)
        if (m->ptr[i].key.type == MSGPACK_OBJECT_STR &&
            m->ptr[i].key.via.str.size == klen &&
            memcmp(m->ptr[i].key.via.str.ptr, key, klen) == 0)
            found++;
    if (op == MUT_DROP)
        n -= found;
    if (op == MUT_DUPLICATE)
        n += found;
    if (op == MUT_ADD)
        n += 1;
    msgpack_pack_map(&pk, n);
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object_kv *kv = &m->ptr[i];
        int match = kv->key.type == MSGPACK_OBJECT_STR &&
                    kv->key.via.str.size == klen &&
                    memcmp(kv->key.via.str.ptr, key, klen) == 0;
        if (match && op == MUT_DROP)
            continue;
        msgpack_pack_object(&pk, kv->key);
        if (match && op == MUT_REPLACE)
            with(&pk, arg);
        else
            msgpack_pack_object(&pk, kv->val);
        if (match && op == MUT_DUPLICATE) {
            msgpack_pack_object(&pk, kv->key);
            msgpack_pack_object(&pk, kv->val);
        }
    }
    if (op == MUT_ADD) {
        msgpack_pack_str_with_body(&pk, key, klen);
        with(&pk, arg);
    }
    msgpack_unpacked_destroy(&u);
    return 0;
}

void mut_nil(msgpack_packer *pk, void *arg)
{
    (void)arg;
    msgpack_pack_nil(pk);
}

void mut_str_n(msgpack_packer *pk, void *arg)
{
    size_t n = *(size_t *)arg;
    char *s = malloc(n ? n : 1);
    memset(s, 'x', n);
    msgpack_pack_str_with_body(pk, s, n);
    free(s);
}

void mut_bin_n(msgpack_packer *pk, void *arg)
{
    size_t n = *(size_t *)arg;
    char *s = calloc(1, n ? n : 1);
    msgpack_pack_bin_with_body(pk, s, n);
    free(s);
}

void mut_uint(msgpack_packer *pk, void *arg)
{
    msgpack_pack_uint64(pk, *(uint64_t *)arg);
}

void mut_neg(msgpack_packer *pk, void *arg)
{
    (void)arg;
    msgpack_pack_int64(pk, -1);
}

void mut_raw(msgpack_packer *pk, void *arg)
{
    pb_buf *b = arg;
    msgpack_pack_str_with_body(pk, (const char *)b->data, b->len);
}
