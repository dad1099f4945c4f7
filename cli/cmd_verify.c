/* cmd_verify.c — `patchbay verify`: checks a recorded history offline from
 * seq 1 (signatures by the relay key, the hash chain, module and source
 * hashes), one room or every room; exit status 1 if anything fails. */
#include "cli.h"
#include "relay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct verify_all {
    relay_history *h;
    const uint8_t *key;
    int failures;
} verify_all;

static void verify_room(void *ctx, const char *room, uint64_t head)
{
    verify_all *v = ctx;
    uint64_t n = 0;
    pb_errmsg why = {{0}};
    char r[PB_MAX_NAME_BYTES + 1];
    snprintf(r, sizeof r, "%s", room); /* the row is reused below */
    if (relay_history_verify(v->h, r, v->key, &n, &why)) {
        printf("room %s: FAILED after %llu good patches: %s\n", r,
               (unsigned long long)n, why.text);
        v->failures++;
    } else if (n != head) {
        printf("room %s: FAILED: %llu patches verify but the head is %llu\n", r,
               (unsigned long long)n, (unsigned long long)head);
        v->failures++;
    } else {
        printf("room %s: %llu patches verify (signatures, hashes, chain)\n", r,
               (unsigned long long)n);
    }
}

typedef struct room_list {
    char names[256][PB_MAX_NAME_BYTES + 1];
    uint64_t heads[256];
    int n;
} room_list;

static void collect_room(void *ctx, const char *room, uint64_t head)
{
    room_list *l = ctx;
    if (l->n < 256) {
        snprintf(l->names[l->n], sizeof l->names[0], "%s", room);
        l->heads[l->n++] = head;
    }
}

int cmd_verify(int argc, char **argv)
{
    const char *data = cli_data_dir(), *room = NULL, *key_hex = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: patchbay verify [--room R] [--data DIR] [--key "
                   "HEX]\n\n"
                   "Checks every recorded patch of room R (default: every "
                   "room) from seq 1:\nthe statement's signature by the "
                   "relay key (DIR's relay.pub, or --key), the\nhash chain, "
                   "and the module and source hashes. Exit status 1 if "
                   "any fails.\n");
            return 0;
        } else if (!strcmp(argv[i], "--room") && i + 1 < argc) {
            room = argv[++i];
        } else if (!strcmp(argv[i], "--data") && i + 1 < argc) {
            data = argv[++i];
        } else if (!strcmp(argv[i], "--key") && i + 1 < argc) {
            key_hex = argv[++i];
        } else {
            return cli_bad_option("verify", argv[i]);
        }
    }
    uint8_t key[PB_PUBLICKEY_BYTES];
    if (key_hex && (strlen(key_hex) != 2 * PB_PUBLICKEY_BYTES ||
                    pb_unhex(key_hex, key, sizeof key))) {
        fprintf(stderr,
                "patchbay verify: the key \"%s\" is not 64 hex "
                "digits\n",
                key_hex);
        return 2;
    }
    if (!key_hex) {
        /* the relay's public key, as key.c writes it: hex and a newline */
        char path[4200];
        snprintf(path, sizeof path, "%s/relay.pub", data);
        pb_buf pub;
        pb_buf_init(&pub);
        pb_errmsg why = {{0}};
        if (cli_read_file(path, &pub, &why)) {
            fprintf(stderr, "patchbay verify: %s (or pass --key)\n", why.text);
            pb_buf_free(&pub);
            return 1;
        }
        char *hex = (char *)pub.data;
        hex[strcspn(hex, "\r\n")] = '\0';
        bool is_key = strlen(hex) == 2 * PB_PUBLICKEY_BYTES &&
                      !pb_unhex(hex, key, sizeof key);
        pb_buf_free(&pub);
        if (!is_key) {
            fprintf(stderr,
                    "patchbay verify: %s does not hold a relay key (64 hex "
                    "digits; or pass --key)\n",
                    path);
            return 1;
        }
    }
    if (pb_init()) {
        fprintf(stderr, "patchbay verify: libsodium does not initialise\n");
        return 1;
    }
    relay_history *h = cli_open_history("verify", data);
    if (!h)
        return 1;
    verify_all v = {h, key, 0};
    pb_errmsg why = {{0}};
    pb_err e = PB_OK;
    if (room) {
        uint64_t head = 0;
        uint8_t hash[PB_HASH_BYTES];
        e = relay_history_head(h, room, &head, hash, &why);
        if (!e)
            verify_room(&v, room, head);
    } else {
        room_list *l = calloc(1, sizeof *l);
        if (!l) {
            relay_history_close(h);
            return 1;
        }
        e = relay_history_rooms(h, collect_room, l, &why);
        for (int i = 0; !e && i < l->n; i++)
            verify_room(&v, l->names[i], l->heads[i]);
        if (!e && !l->n)
            printf("no rooms recorded yet\n");
        free(l);
    }
    relay_history_close(h);
    if (e) {
        fprintf(stderr, "patchbay verify: %s\n", why.text);
        return 1;
    }
    return v.failures ? 1 : 0;
}
