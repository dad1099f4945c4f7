/* farm_png.c — reading the PNGs of `patchbay snapshot` (from the devices,
 * and the reference image of --compare) with libpng's simplified API, and
 * counting the pixels two images differ in. A device is not trusted: its
 * bytes are decoded with a size limit checked before any pixel memory is
 * allocated, and every libpng complaint becomes a message, not an exit. */
#include "farm.h"

#include <errno.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void farm_image_free(farm_image *img)
{
    if (!img)
        return;
    free(img->rgba);
    memset(img, 0, sizeof *img);
}

pb_err farm_png_decode(const uint8_t *bytes, size_t len, farm_image *img,
                       pb_errmsg *why)
{
    memset(img, 0, sizeof *img);
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    if (len < 8 || png_sig_cmp(bytes, 0, 8))
        return pb_fail(why, PB_ERR_MALFORMED,
                       "not a PNG (the first bytes are not the PNG "
                       "signature)");
    if (!png_image_begin_read_from_memory(&pi, bytes, len))
        return pb_fail(why, PB_ERR_MALFORMED, "not a valid PNG: %s",
                       pi.message);
    if (!pi.width || !pi.height || pi.width > FARM_PNG_MAX_SIDE ||
        pi.height > FARM_PNG_MAX_SIDE) {
        pb_err e = pb_fail(why, PB_ERR_TOO_BIG,
                           "a %ux%u PNG: each side must be 1..%u pixels",
                           pi.width, pi.height, FARM_PNG_MAX_SIDE);
        png_image_free(&pi);
        return e;
    }
    pi.format = PNG_FORMAT_RGBA;
    size_t size = PNG_IMAGE_SIZE(pi);
    uint8_t *px = malloc(size);
    if (!px) {
        png_image_free(&pi);
        return pb_fail(why, PB_ERR_NOMEM, "no memory for a %ux%u image",
                       pi.width, pi.height);
    }
    if (!png_image_finish_read(&pi, NULL, px, 0, NULL)) {
        pb_err e =
            pb_fail(why, PB_ERR_MALFORMED, "not a valid PNG: %s", pi.message);
        free(px);
        png_image_free(&pi);
        return e;
    }
    img->width = pi.width;
    img->height = pi.height;
    img->rgba = px;
    return PB_OK;
}

pb_err farm_png_load(const char *path, farm_image *img, pb_errmsg *why)
{
    memset(img, 0, sizeof *img);
    /* a PNG of the largest allowed size compresses far below this */
    enum { MAX_FILE = 64 << 20 };
    pb_buf bytes;
    pb_buf_init(&bytes);
    pb_err e = pb_buf_read_path(&bytes, path, MAX_FILE, why);
    if (!e) {
        pb_errmsg inner = {{0}};
        e = farm_png_decode(bytes.data, bytes.len, img, &inner);
        if (e)
            pb_fail(why, e, "%s: %s", path, inner.text);
    }
    pb_buf_free(&bytes);
    return e;
}

void farm_image_diff(const farm_image *a, const farm_image *b, uint64_t *differ,
                     uint64_t *total)
{
    uint64_t na = (uint64_t)a->width * a->height;
    uint64_t nb = (uint64_t)b->width * b->height;
    if (a->width != b->width || a->height != b->height) {
        *differ = *total = na > nb ? na : nb;
        return;
    }
    uint64_t n = 0;
    for (uint64_t i = 0; i < na; i++)
        n += memcmp(a->rgba + i * 4, b->rgba + i * 4, 4) != 0;
    *differ = n;
    *total = na;
}

int farm_write_file(const char *path, const uint8_t *bytes, size_t len,
                    pb_errmsg *why)
{
    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp) {
        pb_fail(why, PB_ERR_NOMEM, "out of memory");
        return -1;
    }
    snprintf(tmp, n, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(bytes, 1, len, f) == len;
    if (f && fclose(f))
        ok = 0;
    if (!ok || rename(tmp, path)) {
        pb_fail(why, PB_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}
