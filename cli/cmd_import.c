/* cmd_import.c — `patchbay import FILE --room NEW`: a session exported by
 * another relay (or this one) becomes a room of this relay.
 *
 * The whole bundle is checked first — every signature by the key it names
 * (or --key), every link, every hash — and nothing is written unless all
 * of it verifies. Then each patch is signed again by this relay, for room
 * NEW, as a version 3 statement naming its origin (the room and seq it was
 * first evaluated as; docs/PROTOCOL.md § Replay), with its module, source,
 * author and times as they were, and the whole room is written in one
 * transaction. The runtimes of NEW pin this relay's key, so they can
 * verify it; the origins keep the history honest and its pictures the same
 * (rand() is seeded from the origin).
 *
 * Import does not go through evals: it needs no compiler (the modules are
 * kept byte for byte) and is not subject to the eval rate. It writes the
 * relay's data directory directly, so it refuses while a relay serves it
 * (relay.lock): stop the relay, import, start it again. */
#include "cli.h"
#include "history.h"
#include "relay.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: patchbay import FILE --room NEW [--data DIR] [--key HEX]\n"
            "\n"
            "Imports a bundle written by `patchbay export --format bundle` as "
            "room NEW\nof the relay whose data directory is DIR. Every "
            "signature, link and hash is\nchecked first, and nothing is "
            "written unless all of it verifies; then the\npatches are signed "
            "again by this relay for room NEW, each naming the patch\nit "
            "comes from (its origin), and written in one transaction. NEW "
            "must have\nno patches. Stop the relay first: import writes its "
            "history directly (it\ndoes not go through evals, so the "
            "modules stay as they were and the eval\nrate does not apply).\n"
            "\n"
            "options:\n"
            "  --room NEW   the room to create\n"
            "  --data DIR   the relay's data directory (default "
            "$PATCHBAY_DATA or\n"
            "               ./patchbay-data; created with new keys if "
            "missing)\n"
            "  --key HEX    the key the bundle must be signed with (default: "
            "the key it\n"
            "               names, which is printed: only --key proves whose "
            "it is)\n"
            "  -h, --help   this help\n"
            "\n"
            "Exit status: 0 imported, 1 the bundle does not verify, NEW has "
            "patches or\nthe relay runs, 2 usage, 3 FILE or DIR cannot be "
            "read or written.\n");
}

/* What relay_history_import asks for, patch by patch. */
typedef struct import_ctx {
    cli_bundle *bundle;
    const relay_keys *keys;
    const char *room;
    pb_chain head;  /* of the new room */
    pb_frame frame; /* the patch being imported */
    pb_statement st;
    pb_buf stmt; /* its new statement */
    uint8_t sig[PB_SIG_BYTES];
    char author[PB_MAX_NAME_BYTES + 1];
    relay_var_row vars[PB_MAX_SYMBOLS];
    char names[PB_MAX_SYMBOLS][PB_MAX_NAME_BYTES + 1];
    char types[PB_MAX_SYMBOLS][PB_MAX_TYPE_BYTES + 1];
    cli_progress bar;
} import_ctx;

static void drop_current(import_ctx *x)
{
    pb_statement_free(&x->st);
    pb_frame_free(&x->frame);
}

static int next_patch(void *vctx, relay_patch_row *row,
                      const relay_var_row **vars, uint32_t *n, pb_errmsg *why)
{
    import_ctx *x = vctx;
    drop_current(x);
    bool done = false;
    /* the bytes were checked whole before: these are the same bytes (the
     * bundle is a private copy), so decoding cannot fail but for memory */
    if (cli_bundle_next(x->bundle, &x->frame, &done, why))
        return -1;
    if (done)
        return 0;
    const pb_patch *p = &x->frame.patch;
    if (pb_statement_decode(p->stmt.ptr, p->stmt.len, &x->st, why))
        return -1;
    pb_statement s = x->st;
    s.room = pb_cstr(x->room);
    memcpy(s.prev_hash, x->head.hash, PB_HASH_BYTES);
    memcpy(s.key, x->keys->pk, PB_PUBLICKEY_BYTES);
    if (!x->st.origin_seq) { /* its origin is where it was first evaluated */
        s.origin_room = x->st.room;
        s.origin_seq = x->st.seq;
    }
    if (pb_statement_encode(&s, &x->stmt, why))
        return -1;
    pb_sign(x->stmt.data, x->stmt.len, x->keys->sk, x->sig);
    pb_statement again;
    if (pb_statement_decode(x->stmt.data, x->stmt.len, &again, why))
        return -1;
    pb_chain_advance(&x->head, &again);
    pb_statement_free(&again);
    memset(row, 0, sizeof *row);
    row->seq = s.seq;
    memcpy(row->hash, x->head.hash, PB_HASH_BYTES);
    row->stmt = x->stmt.data;
    row->stmt_len = x->stmt.len;
    row->sig = x->sig;
    row->module = p->module.ptr;
    row->module_len = p->module.len;
    row->source = p->source.ptr ? p->source.ptr : "";
    row->source_len = p->source.len;
    /* a decoded statement's names are within these sizes already */
    if (pb_str_copy(x->author, sizeof x->author, s.author)) {
        pb_fail(why, PB_ERR_FIELD_RANGE, "seq %" PRIu64 ": author too long",
                s.seq);
        return -1;
    }
    row->author = x->author;
    row->created_us = s.created_us;
    /* the vars it defines, as the compiler will see them; their C
     * prototypes are made from the signatures (decl empty) */
    for (uint32_t i = 0; i < s.n_symbols; i++) {
        if (pb_str_copy(x->names[i], sizeof x->names[i], s.symbols[i].name) ||
            pb_str_copy(x->types[i], sizeof x->types[i], s.symbols[i].type)) {
            pb_fail(why, PB_ERR_FIELD_RANGE,
                    "seq %" PRIu64 ": a var's name or type is too long", s.seq);
            return -1;
        }
        x->vars[i] =
            (relay_var_row){x->names[i], x->types[i], "", NULL, 0, s.seq};
    }
    *vars = x->vars;
    *n = s.n_symbols;
    cli_progress_update(&x->bar, s.seq, NULL);
    return 1;
}

int cmd_import(int argc, char **argv)
{
    const char *data = cli_data_dir(), *room = NULL, *file = NULL;
    const char *key_hex = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--room") && v) {
            room = argv[++i];
        } else if (!strcmp(a, "--data") && v) {
            data = argv[++i];
        } else if (!strcmp(a, "--key") && v) {
            key_hex = argv[++i];
        } else if (a[0] != '-' && !file) {
            file = a;
        } else {
            return cli_bad_option("import", a);
        }
    }
    if (!file || !room) {
        fprintf(stderr, "patchbay import: FILE and --room are required\n\n");
        usage(stderr);
        return 2;
    }
    pb_chain probe;
    if (pb_chain_init(&probe, room))
        return cli_usage_error("import",
                               "--room \"%s\" is not a room name (1 to %u "
                               "bytes)",
                               room, PB_MAX_NAME_BYTES);
    pb_errmsg why = {{0}};
    uint8_t pinned[PB_PUBLICKEY_BYTES];
    if (key_hex && cli_parse_key(key_hex, pinned, &why))
        return cli_usage_error("import", "--key: %s", why.text);
    if (pb_init()) {
        fprintf(stderr, "patchbay import: libsodium does not initialise\n");
        return 3;
    }

    cli_bundle b;
    pb_err e = cli_bundle_open(file, true, &b, &why);
    if (e) {
        fprintf(stderr, "patchbay import: %s\n", why.text);
        return e == PB_ERR_IO ? 3 : 1;
    }
    const pb_bundle *head = &b.head.bundle;
    char from_room[PB_MAX_NAME_BYTES + 1] = "";
    if (pb_str_copy(from_room, sizeof from_room, head->room))
        from_room[0] = 0; /* cli_bundle_open checked it: cannot happen */
    const uint8_t *key = key_hex ? pinned : head->key;
    char hex[2 * PB_PUBLICKEY_BYTES + 1];
    pb_hex(key, PB_PUBLICKEY_BYTES, hex);

    /* 1. everything verifies, or nothing is written */
    cli_progress bar;
    cli_progress_start(&bar, "checking", head->count);
    uint64_t n_good = 0, bad_seq = 0;
    e = cli_bundle_check(&b, key, 0, &bar, &n_good, &bad_seq, &why);
    cli_progress_end(&bar);
    if (e) {
        fprintf(stderr,
                "patchbay import: %s does not verify, nothing imported: %s "
                "(the %llu patches before seq %llu verify)\n",
                file, why.text, (unsigned long long)n_good,
                (unsigned long long)bad_seq);
        cli_bundle_close(&b);
        return 1;
    }
    if (!n_good) {
        fprintf(stderr,
                "patchbay import: %s has no patches: nothing to "
                "import\n",
                file);
        cli_bundle_close(&b);
        return 1;
    }

    /* 2. this relay's keys and history, with no relay running on them */
    relay_keys keys;
    bool made = false;
    int rc = 0, lock = -1;
    relay_history *h = NULL;
    import_ctx *x = NULL;
    if (relay_keys_open(data, &keys, &made, &why)) {
        fprintf(stderr, "patchbay import: %s\n", why.text);
        cli_bundle_close(&b);
        return 3;
    }
    if ((lock = relay_data_lock(data, &why)) < 0) {
        fprintf(stderr,
                "patchbay import: %s: stop the relay first (import writes "
                "its history directly)\n",
                why.text);
        rc = 1;
        goto done;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/history.db", data);
    if (!(h = relay_history_open_sqlite(path, &why))) {
        fprintf(stderr, "patchbay import: %s\n", why.text);
        rc = 3;
        goto done;
    }

    /* 3. signed again for NEW, in one transaction */
    if (!(x = calloc(1, sizeof *x))) {
        fprintf(stderr, "patchbay import: out of memory\n");
        rc = 1;
        goto done;
    }
    x->bundle = &b;
    x->keys = &keys;
    x->room = room;
    pb_buf_init(&x->stmt);
    /* the new room's history begins now: its own epoch, as a relay gives
     * a room it meets (docs/PROTOCOL.md § The signed head) */
    uint64_t epoch = 0;
    if (relay_history_epoch(h, room, (uint64_t)time(NULL) * 1000000u, &epoch,
                            &why) ||
        pb_chain_init_epoch(&x->head, room, epoch, keys.pk)) {
        fprintf(stderr, "patchbay import: room %s: %s\n", room,
                why.text[0] ? why.text : "not a room name");
        rc = 1;
        goto done;
    }
    cli_bundle_rewind(&b);
    cli_progress_start(&x->bar, "importing", n_good);
    e = relay_history_import(h, room, next_patch, x, &why);
    cli_progress_end(&x->bar);
    if (!e && head->tempo_bpm) {
        pb_room settings = {head->tempo_bpm, head->quantum, 0};
        e = relay_history_set_settings(h, room, &settings, &why);
    }
    if (e) {
        fprintf(stderr, "patchbay import: nothing imported: %s\n", why.text);
        rc = 1;
        goto done;
    }
    if (made)
        printf("patchbay import: made new relay keys in %s\n", data);
    printf("imported %llu patches of room %s (signed by %s%s) as room %s, "
           "signed by this relay (%s); each names its origin\n",
           (unsigned long long)n_good, from_room, hex,
           key_hex ? "" : ", the key the file names", room, keys.pk_hex);
done:
    if (x) {
        drop_current(x);
        pb_buf_free(&x->stmt);
        free(x);
    }
    relay_history_close(h);
    if (lock >= 0)
        close(lock);
    relay_keys_close(&keys);
    cli_bundle_close(&b);
    return rc;
}
