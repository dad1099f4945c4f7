/* datadir.c — a relay's data directory for the history commands: its
 * public key, and a room of its history fed to the chain check. */
#include "history.h"
#include "relay.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

pb_err cli_parse_key(const char *hex, uint8_t key[PB_PUBLICKEY_BYTES],
                     pb_errmsg *why)
{
    if (strlen(hex) != 2 * PB_PUBLICKEY_BYTES ||
        pb_unhex(hex, key, PB_PUBLICKEY_BYTES))
        return pb_fail(why, PB_ERR_MALFORMED,
                       "the key \"%.80s\" is not %u hex digits", hex,
                       2 * PB_PUBLICKEY_BYTES);
    return PB_OK;
}

pb_err cli_data_key(const char *data, uint8_t key[PB_PUBLICKEY_BYTES],
                    pb_errmsg *why)
{
    /* the relay's public key, as key.c writes it: hex and a newline */
    char path[4200];
    snprintf(path, sizeof path, "%s/relay.pub", data);
    pb_buf pub;
    pb_buf_init(&pub);
    pb_errmsg read_why = {{0}};
    pb_err e = pb_buf_read_path(&pub, path, 4096, &read_why);
    if (e || !pub.len) {
        pb_buf_free(&pub);
        return e ? pb_fail(why, PB_ERR_IO, "%s (or pass --key)", read_why.text)
                 : pb_fail(why, PB_ERR_MALFORMED,
                           "%s does not hold a relay key (64 hex digits; or "
                           "pass --key)",
                           path);
    }
    char *hex = (char *)pub.data;
    hex[strcspn(hex, "\r\n")] = '\0';
    e = cli_parse_key(hex, key, NULL);
    pb_buf_free(&pub);
    if (e)
        return pb_fail(why, PB_ERR_MALFORMED,
                       "%s does not hold a relay key (64 hex digits; or pass "
                       "--key)",
                       path);
    return PB_OK;
}

bool cli_check_row(cli_check *c, const relay_patch_row *row, pb_patch *p)
{
    *p = (pb_patch){{row->stmt, (uint32_t)row->stmt_len},
                    {row->sig, PB_SIG_BYTES},
                    {row->module, (uint32_t)row->module_len},
                    {row->source, (uint32_t)row->source_len}};
    return cli_check_add(c, p, row->hash);
}

static int feed(void *ctx, const relay_patch_row *row)
{
    pb_patch p;
    return cli_check_row(ctx, row, &p) ? 0 : 1;
}

pb_err cli_check_room(cli_check *c, relay_history *h, const char *room,
                      pb_errmsg *why)
{
    return relay_history_patches(h, room, 1, UINT64_MAX, false, feed, c, why);
}
