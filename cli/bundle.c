/* bundle.c — bundle files (docs/PROTOCOL.md § Bundle files): a `bundle`
 * frame, then one `patch` frame per patch, back to back. The reader maps
 * the file (a bundle of a long session is large and read once or twice)
 * and cuts it into frames with the protocol's bounded scan, so a damaged
 * file is refused at the offset where it goes wrong; what the patches
 * say is cli_check's business. An HTML file written by `patchbay export`
 * carries its bundle in base64 inside a script element, which the reader
 * decodes. */
#define _GNU_SOURCE /* memmem */
#include "history.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HTML_TAG "<script type=\"application/x-patchbay-bundle\">"

/* The bundle inside an exported HTML page, decoded into b. */
static pb_err from_html(const char *path, const uint8_t *page, size_t len,
                        cli_bundle *b, pb_errmsg *why)
{
    const char *start = memmem(page, len, HTML_TAG, strlen(HTML_TAG));
    if (!start)
        return pb_fail(why, PB_ERR_MALFORMED,
                       "%s is an HTML file without a patchbay bundle in it",
                       path);
    start += strlen(HTML_TAG);
    const char *stop = memmem(start, len - (size_t)(start - (const char *)page),
                              "</script>", 9);
    if (!stop)
        return pb_fail(why, PB_ERR_TRUNCATED,
                       "%s: the bundle's script element never ends", path);
    size_t b64 = (size_t)(stop - start);
    if (!(b->bytes = malloc(b64 / 4 * 3 + 3)))
        return pb_fail(why, PB_ERR_NOMEM, "%s: out of memory", path);
    const char *end = NULL;
    if (sodium_base642bin(b->bytes, b64 / 4 * 3 + 3, start, b64, " \t\r\n",
                          &b->len, &end, sodium_base64_VARIANT_ORIGINAL) ||
        end != stop)
        return pb_fail(why, PB_ERR_MALFORMED,
                       "%s: the bundle in it is not base64 (at byte %zu of "
                       "the page)",
                       path,
                       (size_t)((end ? end : start) - (const char *)page));
    b->is_html = true;
    return PB_OK;
}

pb_err cli_bundle_open(const char *path, bool is_copied, cli_bundle *b,
                       pb_errmsg *why)
{
    memset(b, 0, sizeof *b);
    pb_err e = PB_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb)) {
        e = pb_fail(why, PB_ERR_IO, "cannot read %s: %s", path,
                    strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        e = pb_fail(why, PB_ERR_IO, "cannot read %s: not a regular file", path);
        goto done;
    }
    if (sb.st_size == 0) {
        e = pb_fail(why, PB_ERR_TRUNCATED, "%s is empty: not a patchbay bundle",
                    path);
        goto done;
    }
    size_t len = (size_t)sb.st_size;
    uint8_t *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        e = pb_fail(why, PB_ERR_IO, "cannot map %s: %s", path, strerror(errno));
        goto done;
    }
    size_t lead = 0;
    while (lead < len && strchr(" \t\r\n", map[lead]))
        lead++;
    if (lead < len && map[lead] == '<') {
        e = from_html(path, map, len, b, why);
        munmap(map, len);
        if (e)
            goto done;
    } else if (is_copied) {
        /* what is checked is what is used, whatever happens to the file */
        b->bytes = malloc(len);
        if (b->bytes) {
            memcpy(b->bytes, map, len);
            b->len = len;
        }
        munmap(map, len);
        if (!b->bytes) {
            e = pb_fail(why, PB_ERR_NOMEM, "%s: out of memory", path);
            goto done;
        }
    } else {
        b->bytes = map;
        b->len = len;
        b->is_mapped = true;
    }
    size_t n = 0;
    if ((e = pb_frame_length(b->bytes, b->len, &n, why)) ||
        (e = pb_frame_decode(b->bytes, n, &b->head, why))) {
        pb_errmsg inner = *why;
        e = pb_fail(why, e == PB_ERR_TRUNCATED ? e : PB_ERR_MALFORMED,
                    "%s is not a patchbay bundle: %s", path, inner.text);
        goto done;
    }
    if (b->head.type != PB_T_BUNDLE) {
        e = pb_fail(why, PB_ERR_MALFORMED,
                    "%s is not a patchbay bundle: it starts with a %s frame",
                    path, pb_type_name(b->head.type));
        goto done;
    }
    b->first = b->at = n;
done:
    if (fd >= 0)
        close(fd);
    if (e)
        cli_bundle_close(b);
    return e;
}

pb_err cli_bundle_next(cli_bundle *b, pb_frame *f, bool *done, pb_errmsg *why)
{
    memset(f, 0, sizeof *f);
    *done = false;
    uint64_t n = b->n_read;
    if (n == b->head.bundle.count) {
        *done = true;
        if (b->at != b->len)
            return pb_fail(why, PB_ERR_MALFORMED,
                           "%zu bytes after the last of the %llu patches the "
                           "bundle announces",
                           b->len - b->at, (unsigned long long)n);
        return PB_OK;
    }
    if (b->at == b->len)
        return pb_fail(why, PB_ERR_TRUNCATED,
                       "the file ends after %llu of the %llu patches it "
                       "announces (cut short?)",
                       (unsigned long long)n,
                       (unsigned long long)b->head.bundle.count);
    size_t len = 0;
    pb_errmsg inner = {{0}};
    pb_err e = pb_frame_length(b->bytes + b->at, b->len - b->at, &len, &inner);
    if (!e)
        e = pb_frame_decode(b->bytes + b->at, len, f, &inner);
    if (!e && f->type != PB_T_PATCH) {
        e = pb_fail(&inner, PB_ERR_MALFORMED, "a %s frame, not a patch",
                    pb_type_name(f->type));
        pb_frame_free(f);
    }
    if (e == PB_ERR_TRUNCATED && !len)
        return pb_fail(why, e,
                       "the file ends inside patch %llu (at byte %zu of "
                       "%zu): cut short?",
                       (unsigned long long)n + 1, b->at, b->len);
    if (e)
        return pb_fail(why, e,
                       "patch %llu of the file (at byte %zu) is damaged: %s",
                       (unsigned long long)n + 1, b->at, inner.text);
    b->at += len;
    b->n_read++;
    return PB_OK;
}

void cli_bundle_rewind(cli_bundle *b)
{
    b->at = b->first;
    b->n_read = 0;
}

void cli_bundle_close(cli_bundle *b)
{
    if (!b)
        return;
    pb_frame_free(&b->head);
    if (b->is_mapped)
        munmap(b->bytes, b->len);
    else
        free(b->bytes);
    memset(b, 0, sizeof *b);
}

static pb_err write_frame(FILE *out, const pb_frame *f, pb_errmsg *why)
{
    pb_buf buf;
    pb_buf_init(&buf);
    pb_err e = pb_frame_encode(f, &buf, why);
    if (!e && fwrite(buf.data, 1, buf.len, out) != buf.len)
        e = pb_fail(why, PB_ERR_IO, "cannot write: %s", strerror(errno));
    pb_buf_free(&buf);
    return e;
}

pb_err cli_bundle_write_head(FILE *out, const pb_bundle *head, pb_errmsg *why)
{
    pb_frame f = {.type = PB_T_BUNDLE};
    f.bundle = *head;
    return write_frame(out, &f, why);
}

pb_err cli_bundle_write_patch(FILE *out, const pb_patch *p, pb_errmsg *why)
{
    pb_frame f = {.type = PB_T_PATCH};
    f.patch = *p;
    return write_frame(out, &f, why);
}

pb_err cli_bundle_check(cli_bundle *b, const uint8_t key[PB_PUBLICKEY_BYTES],
                        unsigned threads, cli_progress *bar, uint64_t *n_good,
                        uint64_t *bad_seq, pb_errmsg *why)
{
    const pb_bundle *head = &b->head.bundle;
    char room[PB_MAX_NAME_BYTES + 1] = "";
    *n_good = *bad_seq = 0;
    if (pb_str_copy(room, sizeof room, head->room) || !room[0])
        return pb_fail(why, PB_ERR_FIELD_RANGE, "the bundle names no room");
    cli_check *c = cli_check_new(room, head->epoch, key, threads, bar);
    if (!c)
        return pb_fail(why, PB_ERR_NOMEM, "out of memory");
    cli_bundle_rewind(b);
    pb_err e = PB_OK;
    for (bool done = false; !e;) {
        pb_frame f;
        if ((e = cli_bundle_next(b, &f, &done, why)) || done)
            break;
        bool more = cli_check_add(c, &f.patch, NULL);
        pb_frame_free(&f);
        if (!more)
            break;
    }
    /* a broken patch before a damaged part of the file is the verdict */
    pb_errmsg why_check = {{0}};
    pb_err e_check = cli_check_end(c, n_good, bad_seq, &why_check);
    if (e_check || !e) {
        e = e_check;
        if (why)
            *why = why_check;
    } else {
        *bad_seq = *n_good + 1; /* the file is damaged there */
    }
    if (!e && memcmp(cli_check_head_hash(c), head->head_hash, PB_HASH_BYTES)) {
        e = pb_fail(why, PB_ERR_CHAIN_FORK,
                    "the last patch (seq %llu) is not the head the file "
                    "announces",
                    (unsigned long long)*n_good);
        *bad_seq = *n_good;
    }
    cli_check_free(c);
    return e;
}
