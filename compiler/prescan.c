/* prescan.c — the lexical pre-scan of C source (see internal.h): top-level
 * function definitions with their line and prototype text, and the set of
 * identifiers the source mentions. It never fails on odd input; it only
 * finds less. */
#include "internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static uint32_t fnv(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static int ident_add(cc_scan *s, const char *p, size_t n)
{
    if (s->n_idents * 2 >= s->cap_idents) {
        uint32_t cap = s->cap_idents ? s->cap_idents * 2 : 256;
        char **t = calloc(cap, sizeof *t);
        if (!t)
            return -1;
        for (uint32_t i = 0; i < s->cap_idents; i++) {
            if (!s->idents[i])
                continue;
            uint32_t h = fnv(s->idents[i], strlen(s->idents[i])) & (cap - 1);
            while (t[h])
                h = (h + 1) & (cap - 1);
            t[h] = s->idents[i];
        }
        free(s->idents);
        s->idents = t;
        s->cap_idents = cap;
    }
    uint32_t h = fnv(p, n) & (s->cap_idents - 1);
    while (s->idents[h]) {
        if (strlen(s->idents[h]) == n && !memcmp(s->idents[h], p, n))
            return 0;
        h = (h + 1) & (s->cap_idents - 1);
    }
    if (!(s->idents[h] = cc_strndup(p, n)))
        return -1;
    s->n_idents++;
    return 0;
}

bool cc_scan_mentions(const cc_scan *s, const char *name)
{
    if (!s->cap_idents)
        return false;
    size_t n = strlen(name);
    uint32_t h = fnv(name, n) & (s->cap_idents - 1);
    while (s->idents[h]) {
        if (!strcmp(s->idents[h], name))
            return true;
        h = (h + 1) & (s->cap_idents - 1);
    }
    return false;
}

const cc_found *cc_scan_find(const cc_scan *s, const char *name)
{
    for (uint32_t i = 0; i < s->n_defs; i++)
        if (!strcmp(s->defs[i].name, name))
            return &s->defs[i];
    return NULL;
}

/* Copies src[a..b) without comments, whitespace collapsed, no "inline". */
static char *clean_decl(const char *src, size_t a, size_t b)
{
    char *out = malloc(b - a + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    for (size_t i = a; i < b;) {
        if (src[i] == '/' && i + 1 < b && src[i + 1] == '*') {
            const char *e = strstr(src + i + 2, "*/");
            i = e && (size_t)(e - src) + 2 <= b ? (size_t)(e - src) + 2 : b;
            if (n && out[n - 1] != ' ')
                out[n++] = ' ';
            continue;
        }
        if (src[i] == '/' && i + 1 < b && src[i + 1] == '/') {
            while (i < b && src[i] != '\n')
                i++;
            continue;
        }
        if (isspace((unsigned char)src[i])) {
            if (n && out[n - 1] != ' ')
                out[n++] = ' ';
            i++;
            continue;
        }
        out[n++] = src[i++];
    }
    while (n && out[n - 1] == ' ')
        n--;
    out[n] = '\0';
    /* drop "inline " tokens */
    char *p;
    while ((p = strstr(out, "inline ")) &&
           (p == out || !isalnum((unsigned char)p[-1])))
        memmove(p, p + 7, strlen(p + 7) + 1);
    return out;
}

typedef struct tok {
    size_t at, len;
    char kind; /* 'i' identifier, or the punctuation char, or 0 */
} tok;

/* Records a definition whose header is src[start..close_paren]. */
static int found_def(cc_scan *s, const char *src, size_t start,
                     size_t close_paren, const tok *toks, size_t n_toks,
                     const uint32_t *lines)
{
    /* name: the identifier right before the first '(' of the header */
    size_t k;
    for (k = 0; k < n_toks && toks[k].kind != '('; k++)
        if (toks[k].kind == 'i' && toks[k].len == 6 &&
            !memcmp(src + toks[k].at, "static", 6))
            return 0;
    if (k == 0 || k == n_toks || toks[k - 1].kind != 'i')
        return 0;
    const tok *nm = &toks[k - 1];
    cc_found f = {{0}, lines[k - 1], NULL};
    if (nm->len == 7 && !memcmp(src + nm->at, "PB_TEST", 7)) {
        if (k + 2 >= n_toks || toks[k + 1].kind != 'i')
            return 0;
        const tok *t = &toks[k + 1];
        if (t->len + 9 > PB_MAX_NAME_BYTES)
            return 0;
        memcpy(f.name, "pb_test__", 9);
        memcpy(f.name + 9, src + t->at, t->len);
        f.name[9 + t->len] = '\0';
        size_t dl = strlen(f.name) + 16;
        if (!(f.decl = malloc(dl)))
            return -1;
        snprintf(f.decl, dl, "void %s(void)", f.name);
    } else {
        if (nm->len > PB_MAX_NAME_BYTES)
            return 0;
        memcpy(f.name, src + nm->at, nm->len);
        if (!(f.decl = clean_decl(src, start, close_paren + 1)))
            return -1;
    }
    cc_found *d = realloc(s->defs, (s->n_defs + 1) * sizeof *d);
    if (!d) {
        free(f.decl);
        return -1;
    }
    s->defs = d;
    s->defs[s->n_defs++] = f;
    return 0;
}

int cc_scan_source(const char *src, size_t len, cc_scan *s)
{
    memset(s, 0, sizeof *s);
    uint32_t line = 1;
    int brace = 0, paren = 0;
    size_t stmt_start = 0;
    bool at_line_start = true;
    char last = 0;         /* last significant token kind at top level */
    size_t last_close = 0; /* position of the last ')' at top level */
    /* tokens of the current top-level statement (for the name) */
    tok toks[64];
    uint32_t tok_lines[64];
    size_t n_toks = 0;

    for (size_t i = 0; i < len;) {
        char c = src[i];
        if (c == '\n') {
            line++;
            i++;
            at_line_start = true;
            continue;
        }
        if (isspace((unsigned char)c)) {
            i++;
            continue;
        }
        if (c == '#' && at_line_start) {
            /* preprocessor line, with continuations: a boundary */
            while (i < len && src[i] != '\n') {
                if (src[i] == '\\' && i + 1 < len && src[i + 1] == '\n') {
                    line++;
                    i++;
                }
                i++;
            }
            if (brace == 0 && paren == 0) {
                stmt_start = i;
                n_toks = 0;
                last = 0;
            }
            continue;
        }
        at_line_start = false;
        if (c == '/' && i + 1 < len && src[i + 1] == '/') {
            while (i < len && src[i] != '\n')
                i++;
            continue;
        }
        if (c == '/' && i + 1 < len && src[i + 1] == '*') {
            i += 2;
            while (i < len &&
                   !(src[i] == '*' && i + 1 < len && src[i + 1] == '/')) {
                if (src[i] == '\n')
                    line++;
                i++;
            }
            i = i + 2 <= len ? i + 2 : len;
            continue;
        }
        if (c == '"' || c == '\'') {
            i++;
            while (i < len && src[i] != c && src[i] != '\n') {
                if (src[i] == '\\' && i + 1 < len)
                    i++;
                i++;
            }
            i++;
            last = 'l';
            continue;
        }
        if (isalpha((unsigned char)c) || c == '_') {
            size_t a = i;
            while (i < len && (isalnum((unsigned char)src[i]) || src[i] == '_'))
                i++;
            if (ident_add(s, src + a, i - a))
                return -1;
            if (brace == 0 && n_toks < 64) {
                toks[n_toks] = (tok){a, i - a, 'i'};
                tok_lines[n_toks++] = line;
            }
            last = 'i';
            continue;
        }
        if (isdigit((unsigned char)c)) {
            while (i < len && (isalnum((unsigned char)src[i]) || src[i] == '.'))
                i++;
            last = 'n';
            continue;
        }
        /* punctuation */
        if (brace == 0 && n_toks < 64 && (c == '(' || c == ')')) {
            toks[n_toks] = (tok){i, 1, c};
            tok_lines[n_toks++] = line;
        }
        if (c == '(')
            paren++;
        else if (c == ')') {
            if (paren > 0)
                paren--;
            if (brace == 0 && paren == 0)
                last_close = i;
        } else if (c == '{') {
            if (brace == 0 && paren == 0 && last == ')' &&
                found_def(s, src, stmt_start, last_close, toks, n_toks,
                          tok_lines))
                return -1;
            brace++;
        } else if (c == '}') {
            if (brace > 0)
                brace--;
            if (brace == 0) {
                stmt_start = i + 1;
                n_toks = 0;
            }
        } else if (c == ';' && brace == 0 && paren == 0) {
            stmt_start = i + 1;
            n_toks = 0;
        }
        last = c;
        i++;
    }
    return 0;
}

void cc_scan_free(cc_scan *s)
{
    for (uint32_t i = 0; i < s->n_defs; i++)
        free(s->defs[i].decl);
    free(s->defs);
    for (uint32_t i = 0; i < s->cap_idents; i++)
        free(s->idents[i]);
    free(s->idents);
    memset(s, 0, sizeof *s);
}
