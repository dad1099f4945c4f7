/* forms.c — the top-level forms of Clojure source, with their positions,
 * and what a definition says (name, arglists, docstring). Enough of a
 * reader to split an nREPL client's code into the units the room evaluates
 * and to describe the room's vars; the compiler's reader (compiler/lisp/)
 * still checks everything sent. Strings, characters, comments, #_ and the
 * reader's prefixes are understood, so brackets inside them do not count;
 * nesting is bounded, so hostile code cannot exhaust the stack. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 128u

typedef struct reader {
    const char *s;
    size_t len, pos;
    uint32_t line, col;
    uint32_t depth;
    char *err;
    size_t err_len;
    bool failed;
} reader;

static void advance(reader *r)
{
    if (r->pos >= r->len)
        return;
    if (r->s[r->pos] == '\n') {
        r->line++;
        r->col = 1;
    } else {
        r->col++;
    }
    r->pos++;
}

static char peek(const reader *r, size_t k)
{
    return r->pos + k < r->len ? r->s[r->pos + k] : '\0';
}

static void skip_space(reader *r)
{
    while (r->pos < r->len) {
        char c = r->s[r->pos];
        if (c == ';' || (c == '#' && peek(r, 1) == '!')) {
            while (r->pos < r->len && r->s[r->pos] != '\n')
                advance(r);
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
                   c == ',' || c == '\f') {
            advance(r);
        } else {
            return;
        }
    }
}

static bool is_delimiter(char c)
{
    return strchr(" \t\r\n,()[]{}\";\f", c) != NULL || c == '\0';
}

static void fail_at(reader *r, uint32_t line, uint32_t col, const char *what)
{
    if (!r->failed)
        snprintf(r->err, r->err_len, "%u:%u: %s", line, col, what);
    r->failed = true;
}

static void read_form(reader *r);

static void read_until(reader *r, char close, uint32_t line, uint32_t col)
{
    if (++r->depth > MAX_DEPTH) {
        fail_at(r, line, col, "nested deeper than 128 levels");
        return;
    }
    for (;;) {
        skip_space(r);
        if (r->failed)
            return;
        if (r->pos >= r->len) {
            char what[64];
            snprintf(what, sizeof what, "'%c' is never closed",
                     close == ')'   ? '('
                     : close == ']' ? '['
                                    : '{');
            fail_at(r, line, col, what);
            return;
        }
        char c = r->s[r->pos];
        if (c == close) {
            advance(r);
            r->depth--;
            return;
        }
        if (c == ')' || c == ']' || c == '}') {
            char what[64];
            snprintf(what, sizeof what, "'%c' does not close anything here", c);
            fail_at(r, r->line, r->col, what);
            return;
        }
        read_form(r);
    }
}

static void read_string(reader *r)
{
    uint32_t line = r->line, col = r->col;
    advance(r); /* the opening quote */
    while (r->pos < r->len && r->s[r->pos] != '"') {
        if (r->s[r->pos] == '\\')
            advance(r);
        advance(r);
    }
    if (r->pos >= r->len)
        fail_at(r, line, col, "a string that is never closed");
    advance(r);
}

/* One form from r->pos (no space before it). */
static void read_form(reader *r)
{
    if (r->failed || r->pos >= r->len)
        return;
    uint32_t line = r->line, col = r->col;
    char c = r->s[r->pos];
    switch (c) {
    case '(':
        advance(r);
        read_until(r, ')', line, col);
        return;
    case '[':
        advance(r);
        read_until(r, ']', line, col);
        return;
    case '{':
        advance(r);
        read_until(r, '}', line, col);
        return;
    case '"': read_string(r); return;
    case '\\': /* a character: \a, \( , \newline */
        advance(r);
        advance(r);
        while (!is_delimiter(peek(r, 0)))
            advance(r);
        return;
    case '\'':
    case '`':
    case '@':
    case '~':
        advance(r);
        if (c == '~' && peek(r, 0) == '@')
            advance(r);
        skip_space(r);
        read_form(r);
        return;
    case '^': /* metadata, then the form it is on */
        advance(r);
        skip_space(r);
        read_form(r);
        skip_space(r);
        read_form(r);
        return;
    case '#':
        advance(r);
        if (peek(r, 0) == '_' || peek(r, 0) == '\'' || peek(r, 0) == '#' ||
            peek(r, 0) == '?' || peek(r, 0) == ':') {
            char d = peek(r, 0);
            advance(r);
            if (d == '?' && peek(r, 0) == '@')
                advance(r);
            if (d == ':') { /* #:ns{…} */
                while (!is_delimiter(peek(r, 0)))
                    advance(r);
            }
            skip_space(r);
        }
        read_form(r); /* #{…} #(…) #"…" and the rest */
        return;
    case ')':
    case ']':
    case '}': {
        char what[64];
        snprintf(what, sizeof what, "'%c' does not close anything", c);
        fail_at(r, line, col, what);
        return;
    }
    default: /* an atom: a symbol, a number, a keyword */
        while (!is_delimiter(peek(r, 0)))
            advance(r);
        return;
    }
}

/* The symbol at p (after spaces), copied into out; p moves past it. */
static size_t symbol_at(const char *s, size_t len, size_t p, char *out,
                        size_t cap)
{
    while (p < len && strchr(" \t\r\n,", s[p]))
        p++;
    size_t from = p;
    while (p < len && !is_delimiter(s[p]))
        p++;
    size_t n = p - from < cap - 1 ? p - from : cap - 1;
    memcpy(out, s + from, n);
    out[n] = '\0';
    return p;
}

static bool head_is(const char *head, const char *const *names)
{
    for (; *names; names++)
        if (!strcmp(head, *names))
            return true;
    return false;
}

static void classify(const char *s, nrepl_form *f)
{
    static const char *const defs[] = {"defn",    "defn-",   "def",
                                       "defonce", "deftest", NULL};
    static const char *const ignored[] = {
        "comment",       "declare", "require", "use",   "import", "refer",
        "refer-clojure", "set!",    "load",    "in-ns", NULL};
    f->kind = FORM_EXPRESSION;
    f->name[0] = '\0';
    if (s[f->from] != '(')
        return;
    char head[96];
    size_t p = symbol_at(s, f->to, f->from + 1, head, sizeof head);
    if (head_is(head, defs)) {
        f->kind = FORM_DEFINITION;
        symbol_at(s, f->to, p, f->name, sizeof f->name);
    } else if (!strcmp(head, "ns")) {
        f->kind = FORM_NS;
        symbol_at(s, f->to, p, f->name, sizeof f->name);
    } else if (!strcmp(head, "in-ns")) {
        f->kind = FORM_NS;
        while (p < f->to && strchr(" \t\r\n,'", s[p]))
            p++;
        symbol_at(s, f->to, p, f->name, sizeof f->name);
    } else if (head_is(head, ignored) || !strncmp(head, "clojure.", 8)) {
        /* the namespace tooling of editors (CIDER's require of
         * clojure.main/repl-requires, (clojure.core/…)): nothing to run
         * in a room */
        f->kind = FORM_IGNORED;
    }
}

int forms_split(const char *src, size_t len, nrepl_form *out, uint32_t max,
                char *err, size_t err_len)
{
    reader r = {src, len, 0, 1, 1, 0, err, err_len, false};
    uint32_t n = 0;
    for (;;) {
        skip_space(&r);
        if (r.failed || r.pos >= r.len)
            break;
        bool is_discarded = src[r.pos] == '#' && peek(&r, 1) == '_';
        nrepl_form f = {(uint32_t)r.pos, 0, r.line, r.col, FORM_EXPRESSION, ""};
        read_form(&r);
        if (r.failed)
            break;
        f.to = (uint32_t)r.pos;
        if (is_discarded)
            continue;
        if (n == max) {
            snprintf(err, err_len, "%u:%u: more than %u top-level forms",
                     f.line, f.col, max);
            return -1;
        }
        classify(src, &f);
        out[n++] = f;
    }
    return r.failed ? -1 : (int)n;
}

/* ---- what a definition says --------------------------------------------- */

/* Appends s[from..to) to *buf (malloc'd, NUL-terminated). */
static void append(char **buf, const char *s, size_t n)
{
    size_t have = *buf ? strlen(*buf) : 0;
    char *b = realloc(*buf, have + n + 1);
    if (!b)
        return;
    memcpy(b + have, s, n);
    b[have + n] = '\0';
    *buf = b;
}

/* The end of the form at p (spaces skipped first); *start its start. */
static size_t next_form(const char *s, size_t len, size_t p, size_t *start)
{
    char err[8];
    reader r = {s, len, p, 1, 1, 0, err, sizeof err, false};
    skip_space(&r);
    *start = r.pos;
    read_form(&r);
    return r.failed ? len : r.pos;
}

void forms_def_info(const char *s, const nrepl_form *f, char **arglists,
                    char **doc)
{
    *arglists = NULL;
    *doc = NULL;
    if (f->kind != FORM_DEFINITION || s[f->from] != '(')
        return;
    size_t end = f->to - 1; /* the closing paren */
    size_t start, p = next_form(s, end, f->from + 1, &start); /* the head */
    bool is_def = p - start == 3 && !memcmp(s + start, "def", 3);
    p = next_form(s, end, p, &start); /* the name */
    p = next_form(s, end, p, &start);
    if (start < end && s[start] == '"') { /* a docstring */
        append(doc, s + start + 1, p - start - 2);
        p = next_form(s, end, p, &start);
    }
    if (start < end && s[start] == '{') /* an attribute map */
        p = next_form(s, end, p, &start);
    if (is_def && start < end && s[start] == '(') { /* (def f (fn [x] …)) */
        size_t v_end = p - 1, head, q = next_form(s, v_end, start + 1, &head);
        if (q - head != 2 || memcmp(s + head, "fn", 2))
            return;
        size_t ps, pe = next_form(s, v_end, q, &ps);
        if (ps < v_end && s[ps] != '[') /* (fn name [x] …) */
            pe = next_form(s, v_end, pe, &ps);
        if (ps < v_end && s[ps] == '[') {
            append(arglists, "(", 1);
            append(arglists, s + ps, pe - ps);
            append(arglists, ")", 1);
        }
        return;
    }
    if (start < end && s[start] == '[') { /* one arity */
        append(arglists, "(", 1);
        append(arglists, s + start, p - start);
        append(arglists, ")", 1);
        return;
    }
    while (start < end && s[start] == '(') { /* several: ([x] …) ([x y] …) */
        size_t v_start, v_end = next_form(s, p - 1, start + 1, &v_start);
        append(arglists, *arglists ? " " : "(", 1);
        append(arglists, s + v_start, v_end - v_start);
        p = next_form(s, end, p, &start);
    }
    if (*arglists)
        append(arglists, ")", 1);
}
