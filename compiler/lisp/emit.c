/* emit.c — the text the lowering generates: printf into the arena, a
 * growable buffer, C literals, and the position markers that travel inside
 * the text until lower_strip_marks moves them into the map that
 * lisp_c_locate reads, so every clang diagnostic lands on a Lisp form. */
#include "lower.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *lower_c_type(value_type t)
{
    return t == T_NUM      ? "double"
           : t == T_BOOL   ? "_Bool"
           : t == T_CANVAS ? "pb_canvas *"
                           : "void";
}

const char *lower_fmt(lowering *x, const char *f, ...)
{
    va_list ap, aq;
    va_start(ap, f);
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    char *s = n >= 0 ? lisp_alloc(x->a, (size_t)n + 1) : NULL;
    if (s)
        vsnprintf(s, (size_t)n + 1, f, aq);
    else
        x->oom = true;
    va_end(aq);
    return s ? s : "";
}

void lower_buf_add(lower_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *t = realloc(b->s, cap);
        if (!t) {
            b->oom = true;
            return;
        }
        b->s = t;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n + 1);
    b->len += n;
}

const char *lower_buf_done(lowering *x, lower_buf *b)
{
    char *s = lisp_alloc(x->a, b->len + 1);
    if (!s || b->oom)
        x->oom = true;
    else if (b->len)
        memcpy(s, b->s, b->len);
    free(b->s);
    *b = (lower_buf){0};
    return s && !x->oom ? s : "";
}

const char *lower_mark(lowering *x, const lisp_node *n)
{
    return lower_fmt(x, "\1%u:%u\2", n->line, n->col);
}

const char *lower_num_lit(lowering *x, double v)
{
    char b[40];
    snprintf(b, sizeof b, "%.17g", v);
    bool plain = !strpbrk(b, ".eni");
    return lower_fmt(x, v < 0 ? "(%s%s)" : "%s%s", b, plain ? ".0" : "");
}

const char *lower_str_lit(lowering *x, const char *s, size_t n)
{
    lower_buf b = {0};
    lower_buf_add(&b, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[8];
        if (c == '"' || c == '\\')
            snprintf(e, sizeof e, "\\%c", c);
        else if (c < 32 || c >= 127 || c == '?')
            snprintf(e, sizeof e, "\\%03o", c); /* also no trigraphs */
        else
            snprintf(e, sizeof e, "%c", c);
        lower_buf_add(&b, e);
    }
    lower_buf_add(&b, "\"");
    return lower_buf_done(x, &b);
}

/* Moves the position markers out of the text into the map. */
int lower_strip_marks(lowering *x, const char *text, lisp_c *out)
{
    size_t n = strlen(text), k = 0, cap = 64;
    char *c = lisp_alloc(x->a, n + 1);
    lisp_loc *map = malloc(cap * sizeof *map);
    uint32_t nm = 0, line = 1, col = 1;
    if (!c || !map) {
        free(map);
        return -2;
    }
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\1') {
            unsigned l = 0, cl = 0;
            const char *end = strchr(text + i, '\2');
            if (!end || sscanf(text + i + 1, "%u:%u", &l, &cl) != 2) {
                free(map);
                return -2; /* cannot happen: the markers are ours */
            }
            if (nm == cap) {
                lisp_loc *t = realloc(map, (cap *= 2) * sizeof *map);
                if (!t) {
                    free(map);
                    return -2;
                }
                map = t;
            }
            map[nm++] = (lisp_loc){line, col, l, cl};
            i = (size_t)(end - text);
            continue;
        }
        c[k++] = text[i];
        if (text[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    out->c = c;
    out->len = k;
    out->map = lisp_alloc(x->a, (nm ? nm : 1) * sizeof *map);
    if (!out->map) {
        free(map);
        return -2;
    }
    memcpy(out->map, map, nm * sizeof *map);
    out->n_map = nm;
    free(map);
    return 0;
}

void lisp_c_locate(const lisp_c *c, uint32_t c_line, uint32_t c_col,
                   uint32_t *line, uint32_t *col)
{
    *line = 1;
    *col = 1;
    uint32_t lo = 0, hi = c->n_map; /* the last entry at or before */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const lisp_loc *m = &c->map[mid];
        if (m->c_line < c_line || (m->c_line == c_line && m->c_col <= c_col))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo) {
        *line = c->map[lo - 1].line;
        *col = c->map[lo - 1].col;
    }
}
