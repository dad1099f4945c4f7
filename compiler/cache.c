/* cache.c — the content-hash cache: BLAKE2b of everything that determines
 * a module (compiler version, flags, prelude, source) to the compile
 * result, least recently used out first. Re-sending an unchanged
 * definition costs a hash and a copy. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    uint8_t key[PB_HASH_BYTES];
    uint64_t used;
    bool full;
    cc_result r;
} entry;

struct cc_cache {
    entry *e;
    uint32_t n;
    uint64_t tick;
};

cc_cache *cc_cache_new(uint32_t entries)
{
    cc_cache *c = calloc(1, sizeof *c);
    if (!c || !(c->e = calloc(entries ? entries : 1, sizeof *c->e))) {
        free(c);
        return NULL;
    }
    c->n = entries ? entries : 1;
    return c;
}

bool cc_cache_get(cc_cache *c, const uint8_t key[PB_HASH_BYTES], cc_result *out)
{
    for (uint32_t i = 0; i < c->n; i++) {
        entry *e = &c->e[i];
        if (e->full && !memcmp(e->key, key, PB_HASH_BYTES)) {
            if (cc_result_copy(&e->r, out))
                return false;
            e->used = ++c->tick;
            return true;
        }
    }
    return false;
}

void cc_cache_put(cc_cache *c, const uint8_t key[PB_HASH_BYTES],
                  const cc_result *r)
{
    entry *victim = &c->e[0];
    for (uint32_t i = 0; i < c->n; i++) {
        if (!c->e[i].full) {
            victim = &c->e[i];
            break;
        }
        if (c->e[i].used < victim->used)
            victim = &c->e[i];
    }
    cc_result copy;
    if (cc_result_copy(r, &copy))
        return; /* out of memory: just don't cache */
    if (victim->full)
        cc_result_free(&victim->r);
    memcpy(victim->key, key, PB_HASH_BYTES);
    victim->r = copy;
    victim->full = true;
    victim->used = ++c->tick;
}

void cc_cache_free(cc_cache *c)
{
    if (!c)
        return;
    for (uint32_t i = 0; i < c->n; i++)
        if (c->e[i].full)
            cc_result_free(&c->e[i].r);
    free(c->e);
    free(c);
}
