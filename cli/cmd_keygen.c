/* cmd_keygen.c — `patchbay keygen`: creates the relay's keys in its data
 * directory if it has none (serve and token do this too) and prints the
 * public key that runtimes pin. */
#include "cli.h"
#include "relay.h"

#include <string.h>

int cmd_keygen(int argc, char **argv)
{
    const char *data = cli_data_dir();
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: patchbay keygen [--data DIR]\n\n"
                   "Creates the relay's keys in DIR (default $PATCHBAY_DATA "
                   "or ./patchbay-data)\nif it has none, and prints the "
                   "public key. serve and token do this too.\n");
            return 0;
        } else if (!strcmp(argv[i], "--data") && i + 1 < argc) {
            data = argv[++i];
        } else {
            return cli_bad_option("keygen", argv[i]);
        }
    }
    relay_keys k;
    pb_errmsg why = {{0}};
    bool created;
    if (relay_keys_open(data, &k, &created, &why)) {
        fprintf(stderr, "patchbay keygen: %s\n", why.text);
        return 1;
    }
    printf("%s\n", k.pk_hex);
    fprintf(stderr, "%s keys in %s\n", created ? "made new" : "kept the", data);
    relay_keys_close(&k);
    return 0;
}
