/* reader.c — Clojure syntax to lisp_node trees, with the line and column of
 * every form: lists, vectors, maps, sets, symbols, keywords, strings,
 * characters, numbers, nil/true/false, comments, #_ discard, 'quote and
 * @deref. Reader macros the lowering could never use (syntax-quote,
 * metadata, regexes, tagged literals) are refused here, at their position,
 * rather than half-read. */
#include "lisp.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ------------------------------------------------------------------ */

struct lisp_chunk {
    struct lisp_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *lisp_alloc(lisp_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct lisp_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        c = malloc(sizeof *c + cap);
        if (!c) {
            a->oom = true;
            return NULL;
        }
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

void lisp_arena_free(lisp_arena *a)
{
    while (a->head) {
        struct lisp_chunk *n = a->head->next;
        free(a->head);
        a->head = n;
    }
    a->oom = false;
}

const char *lisp_kind_name(lisp_kind k)
{
    switch (k) {
    case LISP_LIST: return "(";
    case LISP_VECTOR: return "[";
    case LISP_MAP: return "{";
    case LISP_SET: return "#{";
    default: return "form";
    }
}

/* ---- reader ----------------------------------------------------------------- */

typedef struct reader {
    lisp_arena *a;
    const char *s;
    size_t len, pos;
    uint32_t line, col;
    lisp_error *err;
    bool failed;
} reader;

static int fail_at(reader *r, uint32_t line, uint32_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(reader *r, uint32_t line, uint32_t col, const char *fmt, ...)
{
    if (!r->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err->message, sizeof r->err->message, fmt, ap);
        va_end(ap);
        r->err->line = line;
        r->err->col = col;
        r->failed = true;
    }
    return -1;
}

static int peek(const reader *r)
{
    return r->pos < r->len ? (unsigned char)r->s[r->pos] : -1;
}

static void advance(reader *r)
{
    if (r->s[r->pos] == '\n') {
        r->line++;
        r->col = 1;
    } else {
        r->col++;
    }
    r->pos++;
}

static void skip_space(reader *r)
{
    for (int c; (c = peek(r)) >= 0;) {
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' ||
            c == '\f') {
            advance(r);
        } else if (c == ';') {
            while (peek(r) >= 0 && peek(r) != '\n')
                advance(r);
        } else if (c == '#' && r->pos + 1 < r->len && r->s[r->pos + 1] == '!' &&
                   r->pos == 0) {
            while (peek(r) >= 0 && peek(r) != '\n') /* a shebang line */
                advance(r);
        } else {
            break;
        }
    }
}

/* Characters that may continue a symbol, keyword or number. */
static bool is_token_char(int c)
{
    return c > ' ' && c != '(' && c != ')' && c != '[' && c != ']' &&
           c != '{' && c != '}' && c != '"' && c != ';' && c != ',' &&
           c != '@' && c != '^' && c != '`' && c != '~' && c != '\\' &&
           c != 127;
}

static lisp_node *node(reader *r, lisp_kind k, uint32_t line, uint32_t col,
                       size_t off)
{
    lisp_node *n = lisp_alloc(r->a, sizeof *n);
    if (!n)
        return NULL;
    n->kind = k;
    n->line = line;
    n->col = col;
    n->off = (uint32_t)off;
    return n;
}

static char *copy(reader *r, const char *s, size_t n)
{
    char *d = lisp_alloc(r->a, n + 1);
    if (d)
        memcpy(d, s, n);
    return d;
}

static int read_form(reader *r, unsigned depth, lisp_node **out);

/* Reads forms until the closer; the opener has been consumed. */
static int read_seq(reader *r, lisp_node *n, char closer, const char *opener,
                    unsigned depth)
{
    lisp_node **items = NULL;
    uint32_t count = 0, cap = 0;
    int rc = 0;
    for (;;) {
        skip_space(r);
        int c = peek(r);
        if (c < 0) {
            rc = fail_at(r, n->line, n->col,
                         "'%s' is never closed: expected '%c' before the end "
                         "of the source",
                         opener, closer);
            break;
        }
        if (c == closer) {
            advance(r);
            break;
        }
        if (c == ')' || c == ']' || c == '}') {
            rc = fail_at(r, r->line, r->col,
                         "unexpected '%c': the '%s' opened at %u:%u is closed "
                         "by '%c'",
                         c, opener, n->line, n->col, closer);
            break;
        }
        lisp_node *item = NULL;
        if ((rc = read_form(r, depth + 1, &item)))
            break;
        if (!item) /* #_ discarded the form */
            continue;
        if (count == cap) {
            uint32_t nc = cap ? cap * 2 : 8;
            lisp_node **t = realloc(items, nc * sizeof *t);
            if (!t) {
                rc = -2;
                break;
            }
            items = t;
            cap = nc;
        }
        items[count++] = item;
    }
    if (!rc && count) {
        n->items = lisp_alloc(r->a, count * sizeof *n->items);
        if (!n->items)
            rc = -2;
        else
            memcpy(n->items, items, count * sizeof *n->items);
    }
    n->n = count;
    free(items);
    return rc;
}

static int utf8_put(char *d, unsigned cp)
{
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xc0 | cp >> 6);
        d[1] = (char)(0x80 | (cp & 63));
        return 2;
    }
    d[0] = (char)(0xe0 | cp >> 12);
    d[1] = (char)(0x80 | ((cp >> 6) & 63));
    d[2] = (char)(0x80 | (cp & 63));
    return 3;
}

static int read_string(reader *r, lisp_node *n)
{
    advance(r); /* the opening quote */
    char *d = lisp_alloc(r->a, r->len - r->pos + 1);
    if (!d)
        return -2;
    size_t k = 0;
    for (;;) {
        int c = peek(r);
        if (c < 0)
            return fail_at(r, n->line, n->col,
                           "this string is never closed: expected '\"'");
        if (c == '"') {
            advance(r);
            break;
        }
        if (c != '\\') {
            d[k++] = (char)c;
            advance(r);
            continue;
        }
        uint32_t el = r->line, ec = r->col;
        advance(r);
        c = peek(r);
        switch (c) {
        case 'n': d[k++] = '\n'; break;
        case 't': d[k++] = '\t'; break;
        case 'r': d[k++] = '\r'; break;
        case 'b': d[k++] = '\b'; break;
        case 'f': d[k++] = '\f'; break;
        case '"': d[k++] = '"'; break;
        case '\\': d[k++] = '\\'; break;
        case 'u': {
            unsigned cp = 0;
            for (int i = 0; i < 4; i++) {
                advance(r);
                int h = peek(r);
                int v = h >= '0' && h <= '9'   ? h - '0'
                        : h >= 'a' && h <= 'f' ? h - 'a' + 10
                        : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                               : -1;
                if (v < 0)
                    return fail_at(r, el, ec,
                                   "\\u needs four hex digits, e.g. \\u00e9");
                cp = cp * 16 + (unsigned)v;
            }
            if (cp == 0)
                return fail_at(r, el, ec, "\\u0000 is not allowed in a string");
            k += (size_t)utf8_put(d + k, cp);
            break;
        }
        default:
            return fail_at(r, el, ec,
                           "unknown escape '\\%c' in a string (known: \\n \\t "
                           "\\r \\b \\f \\\" \\\\ \\uXXXX)",
                           c < 0 ? ' ' : c);
        }
        advance(r);
    }
    n->s = d;
    n->len = (uint32_t)k;
    n->kind = LISP_STR;
    return 0;
}

/* A token that starts with a digit, or a sign and a digit. */
static int parse_number(reader *r, lisp_node *n, const char *t, size_t len)
{
    char buf[64];
    if (len >= sizeof buf)
        return fail_at(r, n->line, n->col, "the number '%.20s…' is too long",
                       t);
    memcpy(buf, t, len);
    buf[len] = '\0';
    const char *p = buf;
    bool neg = false;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    char *end = NULL;
    errno = 0;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        unsigned long long v = strtoull(p + 2, &end, 16);
        if (end == p + 2 || *end || errno)
            goto bad;
        n->num = neg ? -(double)v : (double)v;
    } else {
        for (const char *q = p; *q; q++)
            if (*q == '/')
                return fail_at(r, n->line, n->col,
                               "ratios such as '%s' are not supported; write "
                               "a decimal (numbers are doubles)",
                               buf);
        size_t l = strlen(p);
        if (l && (p[l - 1] == 'M' || p[l - 1] == 'N'))
            return fail_at(r, n->line, n->col,
                           "'%s': BigDecimal and BigInt literals are not "
                           "supported (numbers are doubles)",
                           buf);
        double v = strtod(p, &end);
        if (end == p || *end)
            goto bad;
        if (isinf(v))
            return fail_at(r, n->line, n->col,
                           "the number '%s' is too large for a double", buf);
        n->num = neg ? -v : v;
    }
    n->kind = LISP_NUM;
    return 0;
bad:
    return fail_at(r, n->line, n->col, "'%s' is not a number", buf);
}

static int read_token(reader *r, lisp_node *n)
{
    size_t start = r->pos;
    while (peek(r) >= 0 && is_token_char(peek(r)))
        advance(r);
    const char *t = r->s + start;
    size_t len = r->pos - start;
    if (len == 0)
        return fail_at(r, n->line, n->col, "unexpected character '%c'",
                       r->s[start]);
    int c0 = (unsigned char)t[0];
    if ((c0 >= '0' && c0 <= '9') ||
        ((c0 == '+' || c0 == '-') && len > 1 && t[1] >= '0' && t[1] <= '9'))
        return parse_number(r, n, t, len);
    if (c0 == ':') {
        if (len == 1 || (len == 2 && t[1] == ':'))
            return fail_at(r, n->line, n->col, "a keyword needs a name");
        size_t skip = t[1] == ':' ? 2 : 1;
        n->kind = LISP_KEYWORD;
        n->s = copy(r, t + skip, len - skip);
        n->len = (uint32_t)(len - skip);
        return n->s ? 0 : -2;
    }
    if (len == 3 && !memcmp(t, "nil", 3)) {
        n->kind = LISP_NIL;
        return 0;
    }
    if ((len == 4 && !memcmp(t, "true", 4)) ||
        (len == 5 && !memcmp(t, "false", 5))) {
        n->kind = LISP_BOOL;
        n->truth = len == 4;
        return 0;
    }
    n->kind = LISP_SYM;
    n->s = copy(r, t, len);
    n->len = (uint32_t)len;
    return n->s ? 0 : -2;
}

/* True at the end of the source or of the enclosing form. */
static bool nothing_follows(reader *r)
{
    skip_space(r);
    int c = peek(r);
    return c < 0 || c == ')' || c == ']' || c == '}';
}

/* 'x → (quote x), @x → (deref x) */
static int read_wrapped(reader *r, lisp_node *n, const char *head,
                        unsigned depth)
{
    lisp_node *h = node(r, LISP_SYM, n->line, n->col, n->off);
    lisp_node *inner = NULL;
    if (!h)
        return -2;
    h->s = head;
    h->len = (uint32_t)strlen(head);
    if (nothing_follows(r))
        return fail_at(r, n->line, n->col, "nothing follows '%s'",
                       !strcmp(head, "quote") ? "'" : "@");
    int rc = read_form(r, depth + 1, &inner);
    if (rc)
        return rc;
    if (!inner)
        return fail_at(r, n->line, n->col, "nothing follows '%s'",
                       !strcmp(head, "quote") ? "'" : "@");
    n->kind = LISP_LIST;
    n->items = lisp_alloc(r->a, 2 * sizeof *n->items);
    if (!n->items)
        return -2;
    n->items[0] = h;
    n->items[1] = inner;
    n->n = 2;
    return 0;
}

/* Reads one form at the current position (after skip_space). *out is NULL
 * when the form was discarded with #_. */
static int read_form(reader *r, unsigned depth, lisp_node **out)
{
    *out = NULL;
    skip_space(r);
    int c = peek(r);
    if (c < 0)
        return fail_at(r, r->line, r->col, "unexpected end of the source");
    if (depth > LISP_MAX_DEPTH)
        return fail_at(r, r->line, r->col,
                       "forms are nested more than %u deep", LISP_MAX_DEPTH);
    lisp_node *n = node(r, LISP_NIL, r->line, r->col, r->pos);
    if (!n)
        return -2;
    int rc = 0;
    switch (c) {
    case '(':
    case '[':
    case '{': {
        advance(r);
        n->kind = c == '(' ? LISP_LIST : c == '[' ? LISP_VECTOR : LISP_MAP;
        char closer = c == '(' ? ')' : c == '[' ? ']' : '}';
        char opener[2] = {(char)c, 0};
        rc = read_seq(r, n, closer, opener, depth);
        if (!rc && n->kind == LISP_MAP && n->n % 2)
            rc = fail_at(r, n->line, n->col,
                         "a map needs an even number of forms (key value "
                         "pairs); this one has %u",
                         n->n);
        break;
    }
    case ')':
    case ']':
    case '}':
        return fail_at(r, r->line, r->col, "unexpected '%c' with nothing open",
                       c);
    case '"': rc = read_string(r, n); break;
    case '\'':
        advance(r);
        rc = read_wrapped(r, n, "quote", depth);
        break;
    case '@':
        advance(r);
        rc = read_wrapped(r, n, "deref", depth);
        break;
    case '\\': {
        advance(r);
        size_t start = r->pos;
        if (peek(r) >= 0)
            advance(r);
        while (peek(r) >= 0 && is_token_char(peek(r)))
            advance(r);
        if (r->pos == start)
            return fail_at(r, n->line, n->col,
                           "a character literal needs a character");
        n->kind = LISP_CHAR;
        n->s = copy(r, r->s + start, r->pos - start);
        n->len = (uint32_t)(r->pos - start);
        if (!n->s)
            return -2;
        break;
    }
    case '#': {
        advance(r);
        int d = peek(r);
        if (d == '_') {
            advance(r);
            if (nothing_follows(r))
                return fail_at(r, n->line, n->col, "nothing follows '#_'");
            lisp_node *gone = NULL;
            if ((rc = read_form(r, depth + 1, &gone)))
                return rc;
            if (!gone)
                return fail_at(r, n->line, n->col, "nothing follows '#_'");
            return 0; /* discarded */
        }
        if (d == '{') {
            advance(r);
            n->kind = LISP_SET;
            rc = read_seq(r, n, '}', "#{", depth);
            break;
        }
        return fail_at(r, n->line, n->col,
                       "the reader macro '#%c' is not supported (supported: "
                       "#_ and #{})",
                       d < 0 ? ' ' : d);
    }
    case '`':
    case '~':
        return fail_at(r, n->line, n->col,
                       "syntax-quote and unquote ('%c') are not supported: "
                       "there are no macros",
                       c);
    case '^':
        return fail_at(r, n->line, n->col,
                       "metadata ('^') is not supported");
    default: rc = read_token(r, n); break;
    }
    if (rc)
        return rc;
    n->end = (uint32_t)r->pos;
    *out = n;
    return 0;
}

int lisp_read(lisp_arena *a, const char *src, size_t len, lisp_node ***forms,
              uint32_t *n_forms, lisp_error *err)
{
    reader r = {a, src, len, 0, 1, 1, err, false};
    lisp_node **v = NULL;
    uint32_t count = 0, cap = 0;
    int rc = 0;
    *forms = NULL;
    *n_forms = 0;
    for (;;) {
        skip_space(&r);
        if (peek(&r) < 0)
            break;
        lisp_node *f = NULL;
        if ((rc = read_form(&r, 0, &f)))
            break;
        if (!f)
            continue;
        if (count == cap) {
            uint32_t nc = cap ? cap * 2 : 16;
            lisp_node **t = realloc(v, nc * sizeof *t);
            if (!t) {
                rc = -2;
                break;
            }
            v = t;
            cap = nc;
        }
        v[count++] = f;
    }
    if (!rc && a->oom)
        rc = -2;
    if (!rc && count) {
        *forms = lisp_alloc(a, count * sizeof **forms);
        if (!*forms)
            rc = -2;
        else
            memcpy(*forms, v, count * sizeof **forms);
    }
    if (!rc)
        *n_forms = count;
    free(v);
    return rc;
}
