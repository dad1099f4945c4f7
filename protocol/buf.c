/* buf.c — byte views (pb_str, pb_bytes), output buffers (pb_buf) and
 * reading a file into one, hex and UTF-8 checks: the small pieces every
 * other file of protocol/ uses. */
#include "internal.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

pb_str pb_cstr(const char *s)
{
    pb_str r = {s, s ? (uint32_t)strlen(s) : 0};
    return r;
}

pb_err pb_str_copy(char *dst, size_t cap, pb_str s)
{
    if (cap == 0)
        return PB_ERR_BUF_TOO_SMALL;
    if ((size_t)s.len >= cap) {
        dst[0] = '\0';
        return PB_ERR_BUF_TOO_SMALL;
    }
    if (s.len)
        memcpy(dst, s.ptr, s.len);
    dst[s.len] = '\0';
    return PB_OK;
}

bool pb_str_eq(pb_str a, const char *b)
{
    size_t n = strlen(b);
    return a.len == n && (n == 0 || memcmp(a.ptr, b, n) == 0);
}

void pb_buf_init(pb_buf *b)
{
    memset(b, 0, sizeof *b);
}

void pb_buf_init_fixed(pb_buf *b, void *mem, size_t cap)
{
    b->data = mem;
    b->len = 0;
    b->cap = cap;
    b->is_fixed = true;
}

void pb_buf_free(pb_buf *b)
{
    if (!b)
        return;
    if (b->is_fixed) {
        b->len = 0;
        return;
    }
    free(b->data);
    memset(b, 0, sizeof *b);
}

pb_err pb_buf_reserve(pb_buf *b, size_t n)
{
    if (n <= b->cap - b->len)
        return PB_OK;
    if (b->is_fixed)
        return PB_ERR_BUF_TOO_SMALL;
    if (n > SIZE_MAX / 2 - b->len)
        return PB_ERR_NOMEM;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n)
        cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p)
        return PB_ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return PB_OK;
}

pb_err pb_buf_append(pb_buf *b, const void *bytes, size_t n)
{
    pb_err e = pb_buf_reserve(b, n);
    if (e)
        return e;
    if (n)
        memcpy(b->data + b->len, bytes, n);
    b->len += n;
    return PB_OK;
}

pb_err pb_buf_read_file(pb_buf *b, FILE *f, const char *name, size_t max_bytes,
                        pb_errmsg *why)
{
    b->len = 0;
    for (;;) {
        /* room for a chunk and the NUL */
        pb_err e = pb_buf_reserve(b, b->cap - b->len > 1 ? 1 : 65536);
        if (e == PB_ERR_BUF_TOO_SMALL && fgetc(f) == EOF && !ferror(f))
            break; /* a fixed buffer the file filled exactly */
        if (e) {
            b->len = 0;
            return pb_fail(why, e, "cannot read %s: %s", name,
                           e == PB_ERR_NOMEM ? "out of memory"
                                             : "too big for the buffer");
        }
        size_t room = b->cap - b->len - 1;
        size_t got = fread(b->data + b->len, 1, room, f);
        b->len += got;
        if (max_bytes && b->len > max_bytes) {
            b->len = 0;
            return pb_fail(why, PB_ERR_TOO_BIG, "%s is over %zu bytes", name,
                           max_bytes);
        }
        if (got < room)
            break; /* the end, or an error */
    }
    if (ferror(f)) {
        int err = errno;
        b->len = 0;
        return pb_fail(why, PB_ERR_IO, "cannot read %s: %s", name,
                       err ? strerror(err) : "read error");
    }
    b->data[b->len] = '\0';
    return PB_OK;
}

pb_err pb_buf_read_path(pb_buf *b, const char *path, size_t max_bytes,
                        pb_errmsg *why)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        b->len = 0;
        return pb_fail(why, PB_ERR_IO, "cannot read %s: %s", path,
                       strerror(errno));
    }
    pb_err e = pb_buf_read_file(b, f, path, max_bytes, why);
    fclose(f);
    return e;
}

void pb_writer_start(pb_writer *w, pb_buf *out, size_t limit)
{
    w->out = out;
    w->limit = limit;
    w->err = PB_OK;
    out->len = 0;
}

int pb_writer_write(void *data, const char *bytes, size_t n)
{
    pb_writer *w = data;
    if (w->err)
        return -1;
    if (n > w->limit - w->out->len)
        w->err = PB_ERR_TOO_BIG;
    else
        w->err = pb_buf_append(w->out, bytes, n);
    return w->err ? -1 : 0;
}

char *pb_hex(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
    return out;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

pb_err pb_unhex(const char *hex, uint8_t *bytes, size_t n)
{
    if (strlen(hex) != 2 * n)
        return PB_ERR_MALFORMED;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return PB_ERR_MALFORMED;
        bytes[i] = (uint8_t)(hi << 4 | lo);
    }
    return PB_OK;
}

size_t pb_utf8_prefix(const char *str, size_t len)
{
    const uint8_t *s = (const uint8_t *)str;
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (len - i - 1 < n)
            return i;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += n + 1;
    }
    return i;
}

bool pb_is_utf8(const char *str, size_t len)
{
    return pb_utf8_prefix(str, len) == len;
}
