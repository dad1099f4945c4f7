/* patchstore.c — the chain of each room in the history file:
 *   patches(room, seq, hash, stmt, sig, module, source, author, created_us)
 *   vars(room, name, sig, decl, deps, seq)   the current definition of each
 *   epochs(room, epoch_us)                   when this history began the
 *                                            room (docs/PROTOCOL.md § The
 *                                            signed head)
 * An append is on disk (synchronous=FULL) when relay_history_append
 * returns, and only then is the patch broadcast. */
#include "history_db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pb_err relay_history_head(relay_history *h, const char *room, uint64_t *seq,
                          uint8_t hash[PB_HASH_BYTES], pb_errmsg *why)
{
    *seq = 0;
    memset(hash, 0, PB_HASH_BYTES);
    TRY_HISTORY(relay_history_ready(h, why));
    sqlite3_stmt *s = relay_history_query(h, Q_HEAD, room);
    int rc = sqlite3_step(s);
    pb_err e = PB_OK;
    if (rc == SQLITE_ROW) {
        *seq = (uint64_t)sqlite3_column_int64(s, 0);
        if (sqlite3_column_bytes(s, 1) == PB_HASH_BYTES)
            memcpy(hash, sqlite3_column_blob(s, 1), PB_HASH_BYTES);
        else
            e = pb_fail(why, PB_ERR_IO,
                        "%s: room %s seq %llu has a damaged hash", h->path,
                        room, (unsigned long long)*seq);
    } else if (rc != SQLITE_DONE) {
        e = relay_history_fail(h, why, "cannot read the chain head");
    }
    sqlite3_reset(s);
    return e;
}

pb_err relay_history_epoch(relay_history *h, const char *room, uint64_t now_us,
                           uint64_t *epoch, pb_errmsg *why)
{
    *epoch = 0;
    TRY_HISTORY(relay_history_ready(h, why));
    if (!h->q[Q_GET_EPOCH])
        return PB_OK; /* read-only, from before epochs: every room is 0 */
    sqlite3_stmt *s = relay_history_query(h, Q_GET_EPOCH, room);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *epoch = (uint64_t)sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    if (rc == SQLITE_ROW || sqlite3_db_readonly(h->db, "main") == 1)
        return PB_OK;
    if (rc != SQLITE_DONE)
        return relay_history_fail(h, why, "cannot read the room's epoch");
    /* First seen here: a room with patches from before epochs is epoch 0
     * (its chain starts at zero); a new one begins now. Recorded before
     * anyone is told it. */
    uint64_t head = 0;
    uint8_t hash[PB_HASH_BYTES];
    pb_err e = relay_history_head(h, room, &head, hash, why);
    if (e)
        return e;
    uint64_t begins = head ? 0 : now_us;
    s = relay_history_query(h, Q_SET_EPOCH, room);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)begins);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return relay_history_fail(h, why, "cannot record the room's epoch");
    *epoch = begins;
    return PB_OK;
}

static char *join_deps(const relay_var_row *v)
{
    size_t n = 1;
    for (uint32_t i = 0; i < v->n_deps; i++)
        n += strlen(v->deps[i]) + 1;
    char *out = malloc(n), *p = out;
    if (!out)
        return NULL;
    *p = '\0';
    for (uint32_t i = 0; i < v->n_deps; i++)
        p += sprintf(p, "%s%s", i ? " " : "", v->deps[i]);
    return out;
}

/* Inserts patch p and its vars, inside the caller's transaction. */
static pb_err insert_patch(relay_history *h, const char *room,
                           const relay_patch_row *p, const relay_var_row *vars,
                           uint32_t n, pb_errmsg *why)
{
    sqlite3_stmt *s = relay_history_query(h, Q_INSERT_PATCH, room);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)p->seq);
    sqlite3_bind_blob(s, 3, p->hash, PB_HASH_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(s, 4, p->stmt, (int)p->stmt_len, SQLITE_STATIC);
    sqlite3_bind_blob(s, 5, p->sig, PB_SIG_BYTES, SQLITE_STATIC);
    sqlite3_bind_blob(s, 6, p->module ? (const void *)p->module : "",
                      (int)p->module_len, SQLITE_STATIC);
    sqlite3_bind_blob(s, 7, p->source ? p->source : "", (int)p->source_len,
                      SQLITE_STATIC);
    sqlite3_bind_text(s, 8, p->author ? p->author : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 9, (sqlite3_int64)p->created_us);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE)
        return relay_history_fail(h, why, "cannot record the patch");
    for (uint32_t i = 0; i < n; i++) {
        char *deps = join_deps(&vars[i]);
        if (!deps)
            return pb_fail(why, PB_ERR_NOMEM, "out of memory");
        s = relay_history_query(h, Q_UPSERT_VAR, room);
        sqlite3_bind_text(s, 2, vars[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, vars[i].sig, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, vars[i].decl ? vars[i].decl : "", -1,
                          SQLITE_STATIC);
        sqlite3_bind_text(s, 5, deps, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 6, (sqlite3_int64)p->seq);
        rc = sqlite3_step(s);
        sqlite3_reset(s);
        free(deps);
        if (rc != SQLITE_DONE)
            return relay_history_fail(h, why, "cannot record a var");
    }
    return PB_OK;
}

pb_err relay_history_append(relay_history *h, const char *room,
                            const relay_patch_row *p, const relay_var_row *vars,
                            uint32_t n, pb_errmsg *why)
{
    TRY_HISTORY(relay_history_begin(h, why));
    uint64_t head = 0;
    uint8_t head_hash[PB_HASH_BYTES];
    pb_err e = relay_history_head(h, room, &head, head_hash, why);
    if (e)
        goto rollback;
    if (p->seq != head + 1) {
        e = pb_fail(why,
                    p->seq <= head ? PB_ERR_CHAIN_REPLAY : PB_ERR_CHAIN_GAP,
                    "room %s: patch seq %llu does not follow the head %llu",
                    room, (unsigned long long)p->seq, (unsigned long long)head);
        goto rollback;
    }
    if ((e = insert_patch(h, room, p, vars, n, why)))
        goto rollback;
    if (sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        e = relay_history_fail(h, why, "cannot commit the patch");
        goto rollback;
    }
    return PB_OK;
rollback:
    relay_history_rollback(h);
    return e;
}

pb_err relay_history_import(relay_history *h, const char *room,
                            relay_import_fn next, void *ctx, pb_errmsg *why)
{
    TRY_HISTORY(relay_history_begin(h, why));
    uint64_t head = 0;
    uint8_t head_hash[PB_HASH_BYTES];
    pb_err e = relay_history_head(h, room, &head, head_hash, why);
    if (!e && head)
        e = pb_fail(why, PB_ERR_CHAIN_REPLAY,
                    "room %s already has %llu patches: import into a new "
                    "room",
                    room, (unsigned long long)head);
    for (uint64_t seq = 1; !e; seq++) {
        relay_patch_row p;
        const relay_var_row *vars = NULL;
        uint32_t n = 0;
        memset(&p, 0, sizeof p);
        int more = next(ctx, &p, &vars, &n, why);
        if (more < 0)
            e = PB_ERR_INTERNAL; /* next said why */
        if (more <= 0)
            break;
        if (p.seq != seq)
            e = pb_fail(why, PB_ERR_CHAIN_GAP,
                        "room %s: import gave seq %llu where %llu belongs",
                        room, (unsigned long long)p.seq,
                        (unsigned long long)seq);
        else
            e = insert_patch(h, room, &p, vars, n, why);
    }
    return relay_history_end(h, e, why);
}

pb_err relay_history_vars(relay_history *h, const char *room,
                          void (*fn)(void *ctx, const relay_var_row *v),
                          void *ctx, pb_errmsg *why)
{
    TRY_HISTORY(relay_history_ready(h, why));
    sqlite3_stmt *s = relay_history_query(h, Q_VARS, room);
    int rc;
    pb_err e = PB_OK;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        char *deps = strdup(relay_history_text(s, 3));
        const char *list[PB_MAX_SYMBOLS * 4];
        uint32_t n = 0;
        if (!deps) {
            e = pb_fail(why, PB_ERR_NOMEM, "out of memory");
            break;
        }
        for (char *save = NULL, *t = strtok_r(deps, " ", &save);
             t && n < sizeof list / sizeof list[0];
             t = strtok_r(NULL, " ", &save))
            list[n++] = t;
        relay_var_row v = {relay_history_text(s, 0),
                           relay_history_text(s, 1),
                           relay_history_text(s, 2),
                           list,
                           n,
                           (uint64_t)sqlite3_column_int64(s, 4)};
        fn(ctx, &v);
        free(deps);
    }
    if (!e && rc != SQLITE_DONE)
        e = relay_history_fail(h, why, "cannot read the room's vars");
    sqlite3_reset(s);
    return e;
}

pb_err relay_history_patches(relay_history *h, const char *room, uint64_t from,
                             uint64_t to, bool state_only, relay_patch_fn fn,
                             void *ctx, pb_errmsg *why)
{
    TRY_HISTORY(relay_history_ready(h, why));
    sqlite3_stmt *s = relay_history_query(h, Q_PATCHES, room);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)from);
    sqlite3_bind_int64(s, 3, to > INT64_MAX ? INT64_MAX : (sqlite3_int64)to);
    sqlite3_bind_int(s, 4, state_only);
    int rc;
    pb_err e = PB_OK;
    /* One statement is one read transaction in SQLite: a state query's rows
     * and its EXISTS test see the same snapshot, even while the relay
     * appends. */
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        relay_patch_row p;
        memset(&p, 0, sizeof p);
        p.seq = (uint64_t)sqlite3_column_int64(s, 0);
        if (sqlite3_column_bytes(s, 1) != PB_HASH_BYTES ||
            sqlite3_column_bytes(s, 3) != PB_SIG_BYTES) {
            e = pb_fail(why, PB_ERR_IO, "%s: room %s seq %llu is damaged",
                        h->path, room, (unsigned long long)p.seq);
            break;
        }
        memcpy(p.hash, sqlite3_column_blob(s, 1), PB_HASH_BYTES);
        p.stmt = sqlite3_column_blob(s, 2);
        p.stmt_len = (size_t)sqlite3_column_bytes(s, 2);
        p.sig = sqlite3_column_blob(s, 3);
        if (sqlite3_column_int(s, 4)) {
            p.module = sqlite3_column_blob(s, 5);
            p.module_len = (size_t)sqlite3_column_bytes(s, 5);
            p.source = sqlite3_column_blob(s, 6);
            p.source_len = (size_t)sqlite3_column_bytes(s, 6);
            if (!p.source)
                p.source = "";
        }
        p.author = relay_history_text(s, 7);
        p.created_us = (uint64_t)sqlite3_column_int64(s, 8);
        if (fn(ctx, &p))
            break;
    }
    if (!e && rc != SQLITE_DONE && rc != SQLITE_ROW)
        e = relay_history_fail(h, why, "cannot read the room's patches");
    sqlite3_reset(s);
    return e;
}

typedef struct verify_ctx {
    const uint8_t *key;
    pb_chain chain;
    uint64_t n;
    pb_err e;
    pb_errmsg *why;
} verify_ctx;

static int verify_one(void *vctx, const relay_patch_row *p)
{
    verify_ctx *c = vctx;
    pb_patch patch = {{p->stmt, (uint32_t)p->stmt_len},
                      {p->sig, PB_SIG_BYTES},
                      {p->module, (uint32_t)p->module_len},
                      {p->source, (uint32_t)p->source_len}};
    pb_statement st;
    pb_errmsg why = {{0}};
    pb_err e = pb_patch_verify(&patch, c->key, &st, &why);
    if (!e) {
        if ((e = pb_chain_check(&c->chain, &st, &why)) == PB_OK) {
            if (st.seq != p->seq || memcmp(st.hash, p->hash, PB_HASH_BYTES)) {
                e = PB_ERR_HASH_MISMATCH;
                snprintf(why.text, sizeof why.text,
                         "the stored seq or hash does not match the "
                         "statement");
            } else {
                pb_chain_advance(&c->chain, &st);
            }
        }
        pb_statement_free(&st);
    }
    if (e) {
        c->e = e;
        pb_fail(c->why, e, "seq %llu: %s", (unsigned long long)p->seq,
                why.text);
        return 1;
    }
    c->n++;
    return 0;
}

pb_err relay_history_verify(relay_history *h, const char *room,
                            const uint8_t key[PB_PUBLICKEY_BYTES],
                            uint64_t *n_checked, pb_errmsg *why)
{
    *n_checked = 0;
    TRY_HISTORY(relay_history_ready(h, why));
    verify_ctx c = {key, {{0}, 0, 0, {0}}, 0, PB_OK, why};
    uint64_t epoch = 0;
    pb_err e = relay_history_epoch(h, room, 0, &epoch, why);
    if (e)
        return e;
    if ((e = pb_chain_init_epoch(&c.chain, room, epoch, key)))
        return pb_fail(why, e, "bad room name \"%s\"", room);
    if (sqlite3_exec(h->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return relay_history_fail(h, why, "cannot begin a read");
    e = relay_history_patches(h, room, 1, UINT64_MAX, false, verify_one, &c,
                              why);
    sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL);
    *n_checked = c.n;
    return e ? e : c.e;
}
