/* cmd_token.c — `patchbay token`: mints a token for one person in one room
 * with one role, signed with the relay's token key from its data directory
 * (created with new keys if missing), and prints the links that carry it in
 * their fragment with the relay's public key. */
#include "cli.h"
#include "relay.h"

#include <string.h>
#include <time.h>

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: patchbay token --room R --role ROLE --name N [options]\n"
        "       patchbay token revoke (--id ID | --room R --name N) (see "
        "--help there)\n"
        "\n"
        "Prints a token for user N to join room R as ROLE, then links to open\n"
        "that carry it (and the relay's public key, which runtimes pin) in "
        "the\n"
        "URL fragment, which browsers do not send to any server.\n"
        "\n"
        "roles: owner (everything, incl. room settings), editor (evaluates\n"
        "code), runtime (runs the room's code), viewer (watches).\n"
        "\n"
        "options:\n"
        "  --room R        room name (1 to 64 bytes)\n"
        "  --role ROLE     owner, editor, runtime or viewer\n"
        "  --name N        the user's name, shown to the room and recorded as\n"
        "                  the author of their patches\n"
        "  --ttl D         valid for D: 90s, 30m, 12h, 7d (default 12h; 1s "
        "to\n"
        "                  366d)\n"
        "  --url URL       the relay's address for the links (default: where\n"
        "                  patchbay serve last listened with this data\n"
        "                  directory, https with TLS; else "
        "http://127.0.0.1:7888);\n"
        "                  URL,URL2,... names more relays of the room to "
        "fail\n"
        "                  over to (&relays= in the links)\n"
        "  --data DIR      data directory of the relay (default $PATCHBAY_DATA "
        "or\n"
        "                  ./patchbay-data); created with new keys if missing\n"
        "  -q, --quiet     print only the token\n"
        "  -h, --help      this help\n");
}

static void revoke_usage(FILE *out)
{
    fprintf(out,
            "usage: patchbay token revoke (--id ID | --room R --name N) "
            "[--data DIR]\n"
            "\n"
            "Revokes one token (by the id `patchbay token` printed) or every "
            "token\n"
            "of user N in room R, in the relay's history: a running relay "
            "closes\n"
            "the sessions that use them within a second and refuses them from "
            "then\n"
            "on, also after a restart.\n"
            "\n"
            "options:\n"
            "  --id ID         the token's id (16 hex digits)\n"
            "  --room R, --name N  every token of user N in room R\n"
            "  --data DIR      data directory of the relay (default "
            "$PATCHBAY_DATA or\n"
            "                  ./patchbay-data)\n"
            "  -h, --help      this help\n");
}

static int cmd_token_revoke(int argc, char **argv)
{
    const char *id = NULL, *room = NULL, *name = NULL, *data = cli_data_dir();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            revoke_usage(stdout);
            return 0;
        } else if (!v) {
            return cli_bad_option("token revoke", a);
        }
        i++;
        if (!strcmp(a, "--id"))
            id = v;
        else if (!strcmp(a, "--room"))
            room = v;
        else if (!strcmp(a, "--name"))
            name = v;
        else if (!strcmp(a, "--data"))
            data = v;
        else
            return cli_bad_option("token revoke", a);
    }
    bool hex = id && strlen(id) == RELAY_TOKEN_ID_CHARS &&
               strspn(id, "0123456789abcdef") == RELAY_TOKEN_ID_CHARS;
    if (id ? (room || name || !hex) : (!room || !name)) {
        fprintf(stderr, "patchbay token revoke: give --id ID (%u hex "
                        "digits, as `patchbay token` printed it), or --room "
                        "and --name\n\n",
                RELAY_TOKEN_ID_CHARS);
        revoke_usage(stderr);
        return 2;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/history.db", data);
    pb_errmsg why = {{0}};
    relay_history *h = relay_history_open_sqlite(path, &why);
    if (!h || relay_history_revoke(h, room, name, id,
                                   (uint64_t)time(NULL), &why)) {
        fprintf(stderr, "patchbay token revoke: %s\n", why.text);
        relay_history_close(h);
        return 1;
    }
    relay_history_close(h);
    if (id)
        printf("revoked token %s\n", id);
    else
        printf("revoked every token of %s in room %s\n", name, room);
    return 0;
}

int cmd_token(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "revoke"))
        return cmd_token_revoke(argc - 1, argv + 1);
    relay_token t;
    memset(&t, 0, sizeof t);
    const char *room = NULL, *role = NULL, *name = NULL, *ttl = "12h";
    const char *url = NULL, *data = cli_data_dir();
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = true;
            continue;
        } else if (!v) {
            return cli_bad_option("token", a);
        }
        i++;
        if (!strcmp(a, "--room"))
            room = v;
        else if (!strcmp(a, "--role"))
            role = v;
        else if (!strcmp(a, "--name"))
            name = v;
        else if (!strcmp(a, "--ttl"))
            ttl = v;
        else if (!strcmp(a, "--url"))
            url = v;
        else if (!strcmp(a, "--data"))
            data = v;
        else
            return cli_bad_option("token", a);
    }
    if (!room || !role || !name) {
        fprintf(stderr, "patchbay token: --room, --role and --name are "
                        "required\n\n");
        usage(stderr);
        return 2;
    }
    t.role = pb_role_parse(pb_cstr(role));
    if (!t.role) {
        fprintf(stderr,
                "patchbay token: --role is owner, editor, runtime or "
                "viewer, not \"%s\"\n",
                role);
        return 2;
    }
    uint64_t ttl_ms = 0;
    pb_errmsg why = {{0}};
    if (cli_parse_duration("--ttl", ttl, 1000,
                           (uint64_t)RELAY_TOKEN_MAX_TTL_S * 1000, &ttl_ms,
                           &why))
        return cli_usage_error("token", "%s", why.text);
    if (strlen(room) > PB_MAX_NAME_BYTES || strlen(name) > PB_MAX_NAME_BYTES) {
        fprintf(stderr,
                "patchbay token: --room and --name are at most %u "
                "bytes\n",
                PB_MAX_NAME_BYTES);
        return 2;
    }
    snprintf(t.room, sizeof t.room, "%s", room);
    snprintf(t.name, sizeof t.name, "%s", name);
    t.expires_s = (uint64_t)time(NULL) + ttl_ms / 1000;

    char saved_url[1024];
    if (!url)
        url = cli_relay_url_load(data, saved_url, sizeof saved_url)
                  ? saved_url
                  : "http://127.0.0.1:7888";

    /* URL,URL2,...: the pages come from the first, the others are the
     * links' relays=, which clients try in turn (docs/PROTOCOL.md) */
    pbc_target check = {0};
    if (pbc_parse_url(url, &check, &why)) {
        fprintf(stderr, "patchbay token: --url %s\n", why.text);
        return 2;
    }
    const char *comma = strchr(url, ',');
    size_t ul = comma ? (size_t)(comma - url) : strlen(url);
    char more[1100] = "";
    if (comma)
        snprintf(more, sizeof more, "&relays=%s", comma + 1);

    relay_keys k;
    bool created = false;
    if (relay_keys_open(data, &k, &created, &why)) {
        fprintf(stderr, "patchbay token: %s\n", why.text);
        return 1;
    }
    char tok[PB_MAX_TOKEN_BYTES + 1];
    pb_err e = relay_token_make(&k, &t, tok, sizeof tok, &why);
    if (e) {
        relay_keys_close(&k);
        fprintf(stderr, "patchbay token: %s\n", why.text);
        return 2;
    }
    if (created)
        fprintf(stderr, "patchbay token: made new relay keys in %s\n", data);
    printf("%s\n", tok);
    if (!quiet) {
        char room_enc[3 * PB_MAX_NAME_BYTES + 1];
        pbc_url_encode(room, room_enc, sizeof room_enc);
        while (ul && url[ul - 1] == '/')
            ul--;
        char when[32];
        time_t exp = (time_t)t.expires_s;
        strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&exp));
        char id[RELAY_TOKEN_ID_CHARS + 1];
        relay_token_id(tok, strlen(tok), id);
        printf("\n%s %s in room %s, valid until %s (token id %s: `patchbay "
               "token revoke --id %s` revokes it)\n",
               role, name, room, when, id, id);
        printf("  editor page:  %.*s/editor.html#room=%s&token=%s&key=%s%s\n",
               (int)ul, url, room_enc, tok, k.pk_hex, more);
        printf("  runtime page: %.*s/runtime.html#room=%s&token=%s&key=%s%s\n",
               (int)ul, url, room_enc, tok, k.pk_hex, more);
        printf("  command line: export PATCHBAY_URL=%.*s%s PATCHBAY_TOKEN=%s\n",
               (int)ul, url, comma ? comma : "", tok);
    }
    relay_keys_close(&k);
    return 0;
}
