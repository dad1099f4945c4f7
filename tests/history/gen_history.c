/* gen_history.c — pb_gen_history, a long signed history without a compiler
 * or a relay, for the history tests and benchmarks (verify at 100,000
 * patches, scrub at 10,000):
 *
 *   pb_gen_history DATA ROOM COUNT [--gap-ms N] [LIKE.frame...]
 *
 * Appends COUNT patches to room ROOM (which must be empty) of the data
 * directory DATA (its keys are made if missing), signed by its relay key,
 * chained, in one transaction — as a relay would have recorded them. Each
 * copies the module, source, symbols, lang and kind of the LIKE patch
 * frames in turn (real modules, say recorded from a relay, so that
 * runtimes can run them); without any, a small placeholder module that
 * only verification reads. Patch i is created GAP ms after patch i-1
 * (default 100) and applies 50 ms after its creation. The room's epoch is
 * the first patch's creation time (its seq 1 links to that genesis). Exit
 * status 0, or 1 with a message. */
#include "pb_protocol.h"
#include "relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct like {
    uint8_t *bytes;
    pb_frame f;
    pb_statement st;
} like;

typedef struct gen {
    const relay_keys *keys;
    const char *room;
    uint64_t count, seq, base_us, gap_us;
    like *likes;
    int n_likes;
    pb_chain head;
    pb_buf stmt;
    uint8_t sig[PB_SIG_BYTES];
    uint8_t module[64];
    char source[96];
    pb_symbol sym;
    relay_var_row var;
    char var_name[PB_MAX_NAME_BYTES + 1], var_type[PB_MAX_TYPE_BYTES + 1];
} gen;

static int next(void *ctx, relay_patch_row *row, const relay_var_row **vars,
                uint32_t *n, pb_errmsg *why)
{
    gen *g = ctx;
    if (g->seq == g->count)
        return 0;
    uint64_t seq = ++g->seq;
    pb_statement s = {0};
    pb_bytes module;
    pb_str source;
    if (g->n_likes) {
        const like *l = &g->likes[(seq - 1) % (uint64_t)g->n_likes];
        s = l->st;
        module = l->f.patch.module;
        source = l->f.patch.source;
    } else {
        /* a wasm header and a custom section "p" holding the seq */
        static const uint8_t wasm[] = {0, 'a', 's', 'm', 1, 0,
                                       0, 0,   0,   10,  1, 'p'};
        memcpy(g->module, wasm, sizeof wasm);
        for (int i = 0; i < 8; i++)
            g->module[sizeof wasm + i] = (uint8_t)(seq >> (8 * i));
        module = (pb_bytes){g->module, sizeof wasm + 8};
        snprintf(g->source, sizeof g->source,
                 "double ggg(double v) { return v + %llu; }",
                 (unsigned long long)seq);
        source = pb_cstr(g->source);
        g->sym = (pb_symbol){pb_cstr("ggg"), pb_cstr("dd")};
        s.symbols = &g->sym;
        s.n_symbols = 1;
        s.author = pb_cstr("gen");
        s.lang = PB_LANG_C;
        s.kind = PB_KIND_DEFS;
    }
    s.room = pb_cstr(g->room);
    s.seq = seq;
    s.origin_room = (pb_str){0};
    s.origin_seq = 0;
    memcpy(s.prev_hash, g->head.hash, PB_HASH_BYTES);
    pb_hash(module.ptr, module.len, s.module_hash);
    pb_hash(source.ptr, source.len, s.source_hash);
    s.created_us = g->base_us + (seq - 1) * g->gap_us;
    s.apply_us = s.created_us + 50000;
    memcpy(s.key, g->keys->pk, PB_PUBLICKEY_BYTES);
    if (pb_statement_encode(&s, &g->stmt, why))
        return -1;
    pb_sign(g->stmt.data, g->stmt.len, g->keys->sk, g->sig);
    memset(row, 0, sizeof *row);
    row->seq = seq;
    pb_hash(g->stmt.data, g->stmt.len, row->hash);
    g->head.seq = seq;
    memcpy(g->head.hash, row->hash, PB_HASH_BYTES);
    row->stmt = g->stmt.data;
    row->stmt_len = g->stmt.len;
    row->sig = g->sig;
    row->module = module.ptr;
    row->module_len = module.len;
    row->source = source.ptr;
    row->source_len = source.len;
    row->author = "gen";
    row->created_us = s.created_us;
    *n = 0;
    if (s.n_symbols) { /* the first var is enough for the compiler's view */
        if (pb_str_copy(g->var_name, sizeof g->var_name, s.symbols[0].name) ||
            pb_str_copy(g->var_type, sizeof g->var_type, s.symbols[0].type))
            return -1;
        g->var = (relay_var_row){g->var_name, g->var_type, "", NULL, 0, seq};
        *vars = &g->var;
        *n = 1;
    }
    return 1;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0, got;
    uint8_t *b = malloc(cap);
    while (b && (got = fread(b + n, 1, cap - n, f)) > 0)
        if ((n += got) == cap)
            b = realloc(b, cap *= 2);
    fclose(f);
    *len = n;
    return b;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: pb_gen_history DATA ROOM COUNT [--gap-ms N] "
                        "[LIKE.frame...]\n");
        return 1;
    }
    gen g = {0};
    g.room = argv[2];
    g.count = strtoull(argv[3], NULL, 10);
    g.gap_us = 100000;
    g.base_us = (uint64_t)time(NULL) * 1000000u - g.count * g.gap_us;
    g.likes = calloc((size_t)argc, sizeof *g.likes);
    pb_errmsg why = {{0}};
    if (pb_init() || !g.likes)
        return 1;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--gap-ms") && i + 1 < argc) {
            g.gap_us = strtoull(argv[++i], NULL, 10) * 1000u;
            g.base_us = (uint64_t)time(NULL) * 1000000u - g.count * g.gap_us;
            continue;
        }
        like *l = &g.likes[g.n_likes];
        size_t len = 0;
        if (!(l->bytes = slurp(argv[i], &len)) ||
            pb_frame_decode(l->bytes, len, &l->f, &why) ||
            l->f.type != PB_T_PATCH ||
            pb_statement_decode(l->f.patch.stmt.ptr, l->f.patch.stmt.len,
                                &l->st, &why)) {
            fprintf(stderr, "pb_gen_history: %s is not a patch frame: %s\n",
                    argv[i], why.text);
            return 1;
        }
        g.n_likes++;
    }
    relay_keys keys;
    if (relay_keys_open(argv[1], &keys, NULL, &why)) {
        fprintf(stderr, "pb_gen_history: %s\n", why.text);
        return 1;
    }
    g.keys = &keys;
    pb_buf_init(&g.stmt);
    char path[4200];
    snprintf(path, sizeof path, "%s/history.db", argv[1]);
    relay_history *h = relay_history_open_sqlite(path, &why);
    /* the room's epoch, as a relay gives a room it meets */
    uint64_t epoch = 0;
    pb_err e =
        h ? relay_history_epoch(h, g.room, g.base_us, &epoch, &why) : PB_ERR_IO;
    if (!e && pb_chain_init_epoch(&g.head, g.room, epoch, keys.pk))
        e = pb_fail(&why, PB_ERR_FIELD_RANGE, "bad room name %s", g.room);
    if (!e)
        e = relay_history_import(h, g.room, next, &g, &why);
    relay_history_close(h);
    relay_keys_close(&keys);
    pb_buf_free(&g.stmt);
    for (int i = 0; i < g.n_likes; i++) {
        pb_statement_free(&g.likes[i].st);
        pb_frame_free(&g.likes[i].f);
        free(g.likes[i].bytes);
    }
    free(g.likes);
    if (e) {
        fprintf(stderr, "pb_gen_history: %s\n", why.text);
        return 1;
    }
    printf("%llu patches in room %s of %s\n", (unsigned long long)g.count,
           g.room, argv[1]);
    return 0;
}
