/* key.c — the relay's keys in its data directory. The ed25519 seed
 * (relay.key) and the token secret (token.key) are 32 random bytes each,
 * written 0600 through a temporary file and rename, so a crash never
 * leaves half a key; a secret file that group or others may read is
 * refused rather than used, since anyone who can read it can sign patches
 * or mint tokens. The data directory itself must belong to this user and
 * be writable by nobody else (who could swap the files in it), and keys
 * are made under DIR/keys.lock, so that two processes starting on a new
 * directory (a relay, `patchbay token`) never make two different keys. */
#include "relay.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads exactly n secret bytes from path. PB_ERR_OK, or a message; *missing
 * is set (and PB_ERR_IO returned) when the file does not exist. */
static pb_err read_secret(const char *path, uint8_t *out, size_t n,
                          bool *missing, pb_errmsg *why)
{
    *missing = false;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        *missing = errno == ENOENT;
        return pb_fail(why, PB_ERR_IO, "cannot open %s: %s", path,
                       strerror(errno));
    }
    struct stat sb;
    pb_err e = PB_OK;
    if (fstat(fd, &sb) != 0) {
        e = pb_fail(why, PB_ERR_IO, "cannot stat %s: %s", path,
                    strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        e = pb_fail(why, PB_ERR_IO, "%s is not a regular file", path);
    } else if (sb.st_mode & 077) {
        e = pb_fail(why, PB_ERR_IO,
                    "%s is readable by others (mode %03o); refusing to use a "
                    "secret key others can read: chmod 600 it, or replace it",
                    path, (unsigned)(sb.st_mode & 0777));
    } else if ((size_t)sb.st_size != n) {
        e = pb_fail(why, PB_ERR_IO, "%s has %lld bytes, a key has %zu", path,
                    (long long)sb.st_size, n);
    } else {
        ssize_t got = read(fd, out, n);
        if (got != (ssize_t)n)
            e = pb_fail(why, PB_ERR_IO, "cannot read %s: %s", path,
                        got < 0 ? strerror(errno) : "short read");
    }
    close(fd);
    return e;
}

static pb_err write_file(const char *path, const void *data, size_t n,
                         mode_t mode, pb_errmsg *why)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd =
        open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return pb_fail(why, PB_ERR_IO, "cannot create %s: %s", tmp,
                       strerror(errno));
    bool ok = fchmod(fd, mode) == 0 && write(fd, data, n) == (ssize_t)n &&
              fsync(fd) == 0;
    int err = errno;
    close(fd);
    if (!ok || rename(tmp, path) != 0) {
        if (ok)
            err = errno;
        unlink(tmp);
        return pb_fail(why, PB_ERR_IO, "cannot write %s: %s", path,
                       strerror(err));
    }
    return PB_OK;
}

static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* The data directory: a directory of this user that no one else may
 * write to. */
static pb_err check_dir(const char *dir, pb_errmsg *why)
{
    struct stat sb;
    if (stat(dir, &sb) != 0)
        return pb_fail(why, PB_ERR_IO, "cannot stat the data directory %s: %s",
                       dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return pb_fail(why, PB_ERR_IO,
                       "the data directory %s is not a directory", dir);
    if (sb.st_uid != geteuid())
        return pb_fail(why, PB_ERR_IO,
                       "the data directory %s belongs to uid %u, not to this "
                       "user (uid %u): run the relay as its owner",
                       dir, (unsigned)sb.st_uid, (unsigned)geteuid());
    if (sb.st_mode & 022)
        return pb_fail(why, PB_ERR_IO,
                       "the data directory %s can be written by group or "
                       "others (mode %03o), who could replace its keys or "
                       "history: chmod 700 %s",
                       dir, (unsigned)(sb.st_mode & 0777), dir);
    return PB_OK;
}

static pb_err open_keys(const char *dir, relay_keys *k, bool *created,
                        pb_errmsg *why);

pb_err relay_keys_open(const char *dir, relay_keys *k, bool *created,
                       pb_errmsg *why)
{
    memset(k, 0, sizeof *k);
    if (created)
        *created = false;
    if (pb_init())
        return pb_fail(why, PB_ERR_INTERNAL, "libsodium does not initialise");
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return pb_fail(why, PB_ERR_IO,
                       "cannot create the data directory %s: %s", dir,
                       strerror(errno));
    pb_err e = check_dir(dir, why);
    if (e)
        return e;
    char lock_path[4200];
    snprintf(lock_path, sizeof lock_path, "%s/keys.lock", dir);
    int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lock < 0)
        return pb_fail(why, PB_ERR_IO, "cannot open %s: %s", lock_path,
                       strerror(errno));
    while (flock(lock, LOCK_EX) != 0 && errno == EINTR)
        ;
    e = open_keys(dir, k, created, why);
    close(lock); /* and its lock */
    return e;
}

/* Reads the keys of dir, or makes them if neither exists (under the
 * lock). */
static pb_err open_keys(const char *dir, relay_keys *k, bool *created,
                        pb_errmsg *why)
{
    char key_path[4200], tok_path[4200], pub_path[4200];
    snprintf(key_path, sizeof key_path, "%s/relay.key", dir);
    snprintf(tok_path, sizeof tok_path, "%s/token.key", dir);
    snprintf(pub_path, sizeof pub_path, "%s/relay.pub", dir);

    uint8_t seed[crypto_sign_SEEDBYTES];
    bool missing_key, missing_tok;
    pb_err e = read_secret(key_path, seed, sizeof seed, &missing_key, why);
    if (e && !missing_key)
        return e;
    pb_errmsg why_tok;
    pb_err e_tok = read_secret(tok_path, k->token_key, sizeof k->token_key,
                               &missing_tok, &why_tok);
    if (e_tok && !missing_tok) {
        sodium_memzero(seed, sizeof seed);
        *why = why_tok;
        return e_tok;
    }
    if (missing_key != missing_tok) {
        sodium_memzero(seed, sizeof seed);
        return pb_fail(why, PB_ERR_IO,
                       "%s exists but %s does not; restore the missing file "
                       "from a backup, or remove both to make new keys (old "
                       "tokens and links stop working)",
                       missing_key ? tok_path : key_path,
                       missing_key ? key_path : tok_path);
    }
    if (missing_key) {
        randombytes_buf(seed, sizeof seed);
        randombytes_buf(k->token_key, sizeof k->token_key);
        if ((e = write_file(key_path, seed, sizeof seed, 0600, why)) ||
            (e = write_file(tok_path, k->token_key, sizeof k->token_key, 0600,
                            why))) {
            sodium_memzero(seed, sizeof seed);
            relay_keys_close(k);
            return e;
        }
        if (created)
            *created = true;
    }
    crypto_sign_seed_keypair(k->pk, k->sk, seed);
    sodium_memzero(seed, sizeof seed);
    pb_hex(k->pk, sizeof k->pk, k->pk_hex);
    if (missing_key) {
        char line[2 * PB_PUBLICKEY_BYTES + 2];
        snprintf(line, sizeof line, "%s\n", k->pk_hex);
        if ((e = write_file(pub_path, line, strlen(line), 0644, why))) {
            relay_keys_close(k);
            return e;
        }
        sync_dir(dir);
    }
    return PB_OK;
}

/* dir/relay.pub, the signer's public key as it wrote it (hex, a newline):
 * public, so any mode, but a regular file of this data directory. */
static pb_err read_signer_key(const char *dir, relay_keys *k, pb_errmsg *why)
{
    char path[4200], text[2 * PB_PUBLICKEY_BYTES + 4];
    snprintf(path, sizeof path, "%s/relay.pub", dir);
    /* (O_NONBLOCK: a FIFO there must not hold the relay) */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT)
        return pb_fail(why, PB_ERR_IO,
                       "%s does not exist: an edge checks patches and heads "
                       "with the signer's public key, never with one Redis "
                       "gives; copy the signer's relay.pub there",
                       path);
    if (fd < 0)
        return pb_fail(why, PB_ERR_IO, "cannot open %s: %s", path,
                       strerror(errno));
    struct stat sb;
    ssize_t n = fstat(fd, &sb) || !S_ISREG(sb.st_mode)
                    ? -1
                    : read(fd, text, sizeof text - 1);
    close(fd);
    text[n > 0 ? n : 0] = '\0';
    text[strcspn(text, "\r\n")] = '\0';
    if (strlen(text) != 2 * PB_PUBLICKEY_BYTES ||
        pb_unhex(text, k->pk, sizeof k->pk))
        return pb_fail(why, PB_ERR_IO,
                       "%s is not a public key (a file of %d hex digits on "
                       "one line, as the signer writes it): copy the "
                       "signer's relay.pub again",
                       path, 2 * PB_PUBLICKEY_BYTES);
    memcpy(k->pk_hex, text, sizeof k->pk_hex);
    return PB_OK;
}

pb_err relay_keys_open_edge(const char *dir, relay_keys *k, pb_errmsg *why)
{
    memset(k, 0, sizeof *k);
    if (pb_init())
        return pb_fail(why, PB_ERR_INTERNAL, "libsodium does not initialise");
    pb_errmsg dir_why;
    pb_err e = check_dir(dir, &dir_why);
    if (e)
        return pb_fail(why, e,
                       "%s (an edge's data directory: make it, mode "
                       "0700, with the signer's token.key in it)",
                       dir_why.text);
    char path[4200];
    snprintf(path, sizeof path, "%s/token.key", dir);
    bool missing;
    e = read_secret(path, k->token_key, sizeof k->token_key, &missing, why);
    if (missing)
        return pb_fail(why, e,
                       "%s does not exist: an edge checks tokens with the "
                       "signer's token.key; copy it there (mode 0600)",
                       path);
    if (!e)
        e = read_signer_key(dir, k, why);
    if (e)
        relay_keys_close(k);
    return e;
}

void relay_keys_close(relay_keys *k)
{
    sodium_memzero(k, sizeof *k);
}

/* One relay per data directory: a second would fork the chains. The lock
 * goes away with the process, however it ends. */
int relay_data_lock(const char *dir, pb_errmsg *why)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/relay.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        pb_fail(why, PB_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        pb_fail(why, PB_ERR_IO,
                "another relay is already using the data directory %s "
                "(%s is locked)",
                dir, path);
        close(fd);
        return -1;
    }
    return fd;
}
