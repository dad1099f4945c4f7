/* cmd_verify.c — `patchbay verify`: checks a recorded history offline from
 * seq 1 — every signature by the relay key, every link of the hash chain,
 * every module and source hash — for one room, every room of a data
 * directory, or a file written by `patchbay export` (a bundle or an HTML
 * page). The first broken link is named exactly (cli_check, check.c).
 * Exit status: 0 everything verifies, 1 something does not (or the file
 * is not a bundle), 2 usage, 3 the input cannot be read. */
#include "cli.h"
#include "history.h"
#include "relay.h"

#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: patchbay verify [--room R] [--data DIR] [--key HEX] [-q]\n"
            "       patchbay verify FILE [--key HEX] [-q]\n"
            "\n"
            "Checks a recorded history from seq 1: each statement's signature "
            "by the\nrelay key, the hash chain linking every patch to the one "
            "before, and each\nmodule and source against the hashes its "
            "statement signs. The first broken\nlink is named: its seq and "
            "what is wrong with it.\n"
            "\n"
            "Without FILE: room R of the relay's data directory (default: "
            "every room),\nwith DIR's relay.pub as the key (or --key). With "
            "FILE: a bundle or an HTML\nfile written by `patchbay export`, "
            "with --key, else the key the file\nnames (said so: only --key "
            "proves it is the relay you trust).\n"
            "\n"
            "options:\n"
            "  --room R      one room (default: every room of DIR)\n"
            "  --data DIR    the relay's data directory (default "
            "$PATCHBAY_DATA or\n"
            "                ./patchbay-data)\n"
            "  --key HEX     the relay's public key (64 hex digits)\n"
            "  --threads N   signature checks in parallel (default: one per "
            "core)\n"
            "  -q, --quiet   print only what is broken\n"
            "  -h, --help    this help\n"
            "\n"
            "Exit status: 0 everything verifies, 1 a patch does not (or FILE "
            "is not a\nbundle), 2 usage, 3 the history or FILE cannot be "
            "read.\n");
}

typedef struct verify_opts {
    const uint8_t *key;
    uint32_t threads;
    bool quiet;
} verify_opts;

/* Prints the verdict on one room; 0 it verifies, 1 it does not. */
static int report(const char *what, pb_err e, uint64_t n_good, uint64_t bad_seq,
                  const pb_errmsg *why, double secs, const verify_opts *o)
{
    if (e) {
        if (bad_seq)
            printf("%s: BROKEN: %s (the %llu patch%s before seq %llu "
                   "verify)\n",
                   what, why->text, (unsigned long long)n_good,
                   n_good == 1 ? "" : "es", (unsigned long long)bad_seq);
        else
            printf("%s: BROKEN: %s\n", what, why->text);
        return 1;
    }
    if (!o->quiet)
        printf("%s: %llu patch%s verify (signatures, links, hashes) in %.2f "
               "s\n",
               what, (unsigned long long)n_good, n_good == 1 ? "" : "es", secs);
    return 0;
}

static int verify_room(relay_history *h, const char *room, uint64_t head,
                       const verify_opts *o)
{
    char what[PB_MAX_NAME_BYTES + 16];
    snprintf(what, sizeof what, "room %s", room);
    cli_progress bar;
    cli_progress_start(&bar, what, head);
    double t0 = cli_now_s();
    pb_errmsg why = {{0}};
    uint64_t n_good = 0, bad_seq = 0, epoch = 0;
    pb_err e = relay_history_epoch(h, room, 0, &epoch, &why);
    cli_check *c =
        e ? NULL : cli_check_new(room, epoch, o->key, o->threads, &bar);
    if (!e)
        e = c ? cli_check_room(c, h, room, &why) : PB_ERR_NOMEM;
    if (!e)
        e = cli_check_end(c, &n_good, &bad_seq, &why);
    cli_check_free(c);
    cli_progress_end(&bar);
    if (!e && n_good != head) {
        e = pb_fail(&why, PB_ERR_CHAIN_GAP,
                    "%llu patches verify, but the history's head is seq %llu",
                    (unsigned long long)n_good, (unsigned long long)head);
        bad_seq = n_good + 1;
    }
    return report(what, e, n_good, bad_seq, &why, cli_now_s() - t0, o);
}

typedef struct room_list {
    char (*names)[PB_MAX_NAME_BYTES + 1];
    uint64_t *heads;
    size_t n, cap;
} room_list;

static void collect_room(void *ctx, const char *room, uint64_t head)
{
    room_list *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        void *names = realloc(l->names, cap * sizeof *l->names);
        if (names)
            l->names = names;
        void *heads = realloc(l->heads, cap * sizeof *l->heads);
        if (heads)
            l->heads = heads;
        if (!names || !heads)
            return; /* the rooms that fit are verified */
        l->cap = cap;
    }
    snprintf(l->names[l->n], sizeof l->names[0], "%s", room);
    l->heads[l->n++] = head;
}

static int verify_data(const char *data, const char *room, const verify_opts *o)
{
    relay_history *h = cli_open_history("verify", data);
    if (!h)
        return 3;
    pb_errmsg why = {{0}};
    room_list l = {0};
    pb_err e = PB_OK;
    if (room) {
        uint8_t hash[PB_HASH_BYTES];
        uint64_t head = 0;
        if (!(e = relay_history_head(h, room, &head, hash, &why)))
            collect_room(&l, room, head);
    } else {
        e = relay_history_rooms(h, collect_room, &l, &why);
    }
    int failures = 0;
    for (size_t i = 0; !e && i < l.n; i++)
        failures += verify_room(h, l.names[i], l.heads[i], o);
    if (!e && !l.n && !o->quiet)
        printf(room ? "room %s: no patches recorded\n"
                    : "no rooms recorded yet\n",
               room);
    free(l.names);
    free(l.heads);
    relay_history_close(h);
    if (e) {
        fprintf(stderr, "patchbay verify: %s\n", why.text);
        return 3;
    }
    return failures ? 1 : 0;
}

static int verify_file(const char *path, const uint8_t *pinned, verify_opts *o)
{
    cli_bundle b;
    pb_errmsg why = {{0}};
    pb_err e = cli_bundle_open(path, false, &b, &why);
    if (e) {
        fprintf(stderr, "patchbay verify: %s\n", why.text);
        return e == PB_ERR_IO ? 3 : 1;
    }
    const pb_bundle *head = &b.head.bundle;
    char room[PB_MAX_NAME_BYTES + 1] = "";
    if (pb_str_copy(room, sizeof room, head->room))
        room[0] = 0; /* cli_bundle_open checked it: cannot happen */
    char what[PB_MAX_NAME_BYTES + 512];
    snprintf(what, sizeof what, "%s (room %s)", path, room);
    o->key = pinned ? pinned : head->key;
    cli_progress bar;
    cli_progress_start(&bar, "verifying", head->count);
    double t0 = cli_now_s();
    uint64_t n_good = 0, bad_seq = 0;
    e = cli_bundle_check(&b, o->key, o->threads, &bar, &n_good, &bad_seq, &why);
    cli_progress_end(&bar);
    int rc = report(what, e, n_good, bad_seq, &why, cli_now_s() - t0, o);
    char hex[2 * PB_PUBLICKEY_BYTES + 1];
    if (!rc && !pinned && !o->quiet)
        printf("  signed by %s, the key the file names: pass --key to check "
               "it is the relay you trust\n",
               pb_hex(head->key, PB_PUBLICKEY_BYTES, hex));
    cli_bundle_close(&b);
    return rc;
}

int cmd_verify(int argc, char **argv)
{
    const char *data = cli_data_dir(), *room = NULL, *key_hex = NULL;
    const char *file = NULL;
    bool has_data = false;
    verify_opts o = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o.quiet = true;
        } else if (!strcmp(a, "--room") && v) {
            room = argv[++i];
        } else if (!strcmp(a, "--data") && v) {
            data = argv[++i];
            has_data = true;
        } else if (!strcmp(a, "--key") && v) {
            key_hex = argv[++i];
        } else if (!strcmp(a, "--threads") && v) {
            pb_errmsg why;
            if (cli_parse_u32(a, argv[++i], 1, 16, &o.threads, &why))
                return cli_usage_error("verify", "%s", why.text);
        } else if (a[0] != '-' && !file) {
            file = a;
        } else {
            return cli_bad_option("verify", a);
        }
    }
    if (file && (room || has_data))
        return cli_usage_error("verify", "FILE is checked on its own: --room "
                                         "and --data are for a data "
                                         "directory");
    if (pb_init()) {
        fprintf(stderr, "patchbay verify: libsodium does not initialise\n");
        return 3;
    }
    uint8_t key[PB_PUBLICKEY_BYTES];
    pb_errmsg why = {{0}};
    if (key_hex && cli_parse_key(key_hex, key, &why))
        return cli_usage_error("verify", "--key: %s", why.text);
    if (file)
        return verify_file(file, key_hex ? key : NULL, &o);
    if (!key_hex && cli_data_key(data, key, &why)) {
        fprintf(stderr, "patchbay verify: %s\n", why.text);
        return 3;
    }
    o.key = key;
    return verify_data(data, room, &o);
}
