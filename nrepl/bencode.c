/* bencode.c — see bencode.h. The scanner is the gate every byte from a
 * client passes: it is linear in the input however it is split into reads,
 * allocates nothing, and bounds nesting, token and message sizes, so the
 * parser behind it only ever sees one well-formed value. */
#include "bencode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the arena ----------------------------------------------------------- */

#define CHUNK_BYTES 16384u

typedef struct ben_chunk {
    struct ben_chunk *next;
    size_t used, cap;
    max_align_t data[];
} ben_chunk;

void *ben_alloc(ben_arena *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) *
        sizeof(max_align_t);
    ben_chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > CHUNK_BYTES ? n : CHUNK_BYTES;
        if (!(c = malloc(sizeof *c + cap))) {
            a->is_oom = true;
            return NULL;
        }
        c->used = 0;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    return p;
}

void ben_arena_free(ben_arena *a)
{
    while (a->head) {
        ben_chunk *c = a->head;
        a->head = c->next;
        free(c);
    }
    a->is_oom = false;
}

/* ---- the scanner --------------------------------------------------------- */

enum { IN_LIST, IN_DICT_KEY, IN_DICT_VALUE };
#define MAX_INT_TOKEN 22u /* i-9223372036854775808e */
#define MAX_LEN_TOKEN 12u /* 4294967295: */

static ben_status fail(char *err, size_t err_len, const char *what, size_t at)
{
    snprintf(err, err_len, "bencode: %s at byte %zu", what, at);
    return BEN_ERROR;
}

/* One item ended at the current depth. */
static bool item_done(ben_scanner *s)
{
    if (s->depth == 0)
        return true;
    if (s->frame[s->depth] == IN_DICT_KEY)
        s->frame[s->depth] = IN_DICT_VALUE;
    else if (s->frame[s->depth] == IN_DICT_VALUE)
        s->frame[s->depth] = IN_DICT_KEY;
    return false;
}

/* Digits (and one leading '-' if is_int) of the token buf[from..to), in
 * canonical form: no leading zeros, no -0. */
static bool is_number(const uint8_t *b, size_t from, size_t to, bool is_int)
{
    if (is_int && from < to && b[from] == '-') {
        from++;
        if (from < to && b[from] == '0')
            return false;
    }
    if (from == to || (b[from] == '0' && to - from > 1))
        return false;
    for (size_t i = from; i < to; i++)
        if (b[i] < '0' || b[i] > '9')
            return false;
    return true;
}

/* A value ended at s->pos: it is the message, if within the limit. */
static ben_status done(const ben_scanner *s, size_t max_bytes, size_t *end,
                       char *err, size_t err_len)
{
    if (s->pos > max_bytes)
        return fail(err, err_len, "a message longer than the limit", max_bytes);
    *end = s->pos;
    return BEN_DONE;
}

ben_status ben_scan(ben_scanner *s, const uint8_t *b, size_t len,
                    size_t max_bytes, size_t *end, char *err, size_t err_len)
{
    for (;;) {
        if (s->in_str) {
            size_t avail = len - s->pos;
            if (avail < s->str_left) {
                s->pos = len;
                s->str_left -= avail;
                break;
            }
            s->pos += s->str_left;
            s->str_left = 0;
            s->in_str = false;
            if (item_done(s))
                return done(s, max_bytes, end, err, err_len);
            continue;
        }
        if (s->pos >= len)
            break;
        s->token = s->pos;
        uint8_t c = b[s->pos];
        bool wants_key = s->depth && s->frame[s->depth] == IN_DICT_KEY;
        if (wants_key && c != 'e' && (c < '0' || c > '9'))
            return fail(err, err_len, "a dictionary key that is not a string",
                        s->pos);
        if (c == 'i') {
            size_t e = s->pos + 1;
            while (e < len && e - s->pos < MAX_INT_TOKEN && b[e] != 'e')
                e++;
            if (e >= len && e - s->pos < MAX_INT_TOKEN)
                break; /* the token is not all here yet */
            if (e >= len || b[e] != 'e' || !is_number(b, s->pos + 1, e, true))
                return fail(err, err_len, "a malformed integer", s->pos);
            s->pos = e + 1;
            if (item_done(s))
                return done(s, max_bytes, end, err, err_len);
        } else if (c >= '0' && c <= '9') {
            size_t e = s->pos;
            while (e < len && e - s->pos < MAX_LEN_TOKEN && b[e] != ':')
                e++;
            if (e >= len && e - s->pos < MAX_LEN_TOKEN)
                break;
            if (e >= len || b[e] != ':' || !is_number(b, s->pos, e, false))
                return fail(err, err_len, "a malformed string length", s->pos);
            uint64_t n = strtoull((const char *)b + s->pos, NULL, 10);
            if (n > max_bytes)
                return fail(err, err_len, "a string longer than the limit",
                            s->pos);
            s->pos = e + 1;
            s->str_left = n;
            s->in_str = true;
        } else if (c == 'l' || c == 'd') {
            if (s->depth == BEN_MAX_DEPTH)
                return fail(err, err_len, "nesting deeper than the limit",
                            s->pos);
            s->frame[++s->depth] = c == 'l' ? IN_LIST : IN_DICT_KEY;
            s->pos++;
        } else if (c == 'e') {
            if (!s->depth)
                return fail(err, err_len, "an 'e' that ends nothing", s->pos);
            if (s->frame[s->depth] == IN_DICT_VALUE)
                return fail(err, err_len, "a dictionary key without a value",
                            s->pos);
            s->depth--;
            s->pos++;
            if (item_done(s))
                return done(s, max_bytes, end, err, err_len);
        } else {
            char what[48];
            snprintf(what, sizeof what, "an unexpected byte 0x%02x", c);
            return fail(err, err_len, what, s->pos);
        }
        if (s->pos > max_bytes)
            break;
    }
    if (len > max_bytes)
        return fail(err, err_len, "a message longer than the limit", max_bytes);
    return BEN_MORE;
}

/* ---- the parser (on a value ben_scan accepted) ----------------------------
 */

/* Room for slots item pointers in v (a dictionary holds 2 per pair). */
static bool ensure(ben_arena *a, ben *v, uint32_t slots)
{
    if (slots <= v->cap)
        return true;
    uint32_t cap = v->cap ? v->cap : 8;
    while (cap < slots)
        cap *= 2;
    ben **items = ben_alloc(a, cap * sizeof *items);
    if (!items)
        return false;
    if (v->n)
        memcpy(items, v->items,
               (v->kind == BEN_DICT ? 2 * v->n : v->n) * sizeof *items);
    v->items = items;
    v->cap = cap;
    return true;
}

static bool add_item(ben_arena *a, ben *list, ben *item)
{
    if (!ensure(a, list, list->n + 1))
        return false;
    list->items[list->n++] = item;
    return true;
}

static bool add_pair(ben_arena *a, ben *dict, ben *key, ben *val)
{
    if (!ensure(a, dict, 2 * dict->n + 2))
        return false;
    dict->items[2 * dict->n] = key;
    dict->items[2 * dict->n + 1] = val;
    dict->n++;
    return true;
}

static ben *parse_at(ben_arena *a, const uint8_t *b, size_t len, size_t *pos)
{
    ben *v = ben_alloc(a, sizeof *v);
    if (!v || *pos >= len)
        return NULL;
    memset(v, 0, sizeof *v);
    uint8_t c = b[*pos];
    if (c == 'i') {
        v->kind = BEN_INT;
        v->i = strtoll((const char *)b + *pos + 1, NULL, 10);
        const uint8_t *e = memchr(b + *pos, 'e', len - *pos);
        *pos = (size_t)(e - b) + 1;
        return v;
    }
    if (c >= '0' && c <= '9') {
        const uint8_t *colon = memchr(b + *pos, ':', len - *pos);
        v->kind = BEN_STR;
        v->len = (uint32_t)strtoul((const char *)b + *pos, NULL, 10);
        v->s = (const char *)colon + 1;
        *pos = (size_t)(colon + 1 - b) + v->len;
        return v;
    }
    v->kind = c == 'l' ? BEN_LIST : BEN_DICT;
    (*pos)++;
    while (*pos < len && b[*pos] != 'e') {
        ben *item = parse_at(a, b, len, pos);
        if (!item)
            return NULL;
        if (v->kind == BEN_LIST) {
            if (!add_item(a, v, item))
                return NULL;
            continue;
        }
        ben *val = parse_at(a, b, len, pos);
        if (!val || !add_pair(a, v, item, val))
            return NULL;
    }
    (*pos)++;
    return v;
}

ben *ben_parse(ben_arena *a, const uint8_t *buf, size_t len)
{
    size_t pos = 0;
    ben *v = parse_at(a, buf, len, &pos);
    return a->is_oom ? NULL : v;
}

const ben *ben_get(const ben *dict, const char *key)
{
    size_t n = strlen(key);
    for (uint32_t i = 0; dict && dict->kind == BEN_DICT && i < dict->n; i++) {
        const ben *k = dict->items[2 * i];
        if (k->kind == BEN_STR && k->len == n && !memcmp(k->s, key, n))
            return dict->items[2 * i + 1];
    }
    return NULL;
}

bool ben_is_str(const ben *v)
{
    return v && v->kind == BEN_STR;
}

const char *ben_cstr(ben_arena *a, const ben *v)
{
    if (!ben_is_str(v))
        return "";
    char *s = ben_alloc(a, (size_t)v->len + 1);
    if (!s)
        return "";
    memcpy(s, v->s, v->len);
    s[v->len] = '\0';
    return s;
}

/* ---- building -------------------------------------------------------------
 */

static ben *new_value(ben_arena *a, ben_kind kind)
{
    ben *v = ben_alloc(a, sizeof *v);
    if (v) {
        memset(v, 0, sizeof *v);
        v->kind = kind;
    }
    return v;
}

ben *ben_new_dict(ben_arena *a)
{
    return new_value(a, BEN_DICT);
}

ben *ben_new_list(ben_arena *a)
{
    return new_value(a, BEN_LIST);
}

ben *ben_new_int(ben_arena *a, int64_t i)
{
    ben *v = new_value(a, BEN_INT);
    if (v)
        v->i = i;
    return v;
}

ben *ben_new_str(ben_arena *a, const char *s, size_t len)
{
    ben *v = new_value(a, BEN_STR);
    char *copy = ben_alloc(a, len + 1);
    if (!v || !copy)
        return NULL;
    memcpy(copy, s, len);
    copy[len] = '\0';
    v->s = copy;
    v->len = (uint32_t)len;
    return v;
}

ben *ben_new_cstr(ben_arena *a, const char *s)
{
    return ben_new_str(a, s ? s : "", s ? strlen(s) : 0);
}

void ben_push(ben_arena *a, ben *list, ben *v)
{
    if (!list || !v || !add_item(a, list, v))
        a->is_oom = true;
}

void ben_put(ben_arena *a, ben *dict, const char *key, ben *v)
{
    if (!dict || !v) {
        a->is_oom = true;
        return;
    }
    size_t n = strlen(key);
    for (uint32_t i = 0; i < dict->n; i++) {
        ben *k = dict->items[2 * i];
        if (k->len == n && !memcmp(k->s, key, n)) {
            dict->items[2 * i + 1] = v;
            return;
        }
    }
    ben *k = ben_new_cstr(a, key);
    if (!k || !add_pair(a, dict, k, v))
        a->is_oom = true;
}

void ben_put_cstr(ben_arena *a, ben *dict, const char *key, const char *v)
{
    ben_put(a, dict, key, ben_new_cstr(a, v));
}

/* ---- encoding -------------------------------------------------------------
 */

typedef struct out {
    uint8_t *p;
    size_t len, cap;
    bool is_oom;
} out;

static void put(out *o, const void *s, size_t n)
{
    if (o->is_oom)
        return;
    if (o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 256;
        while (cap < o->len + n)
            cap *= 2;
        uint8_t *p = realloc(o->p, cap);
        if (!p) {
            o->is_oom = true;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static int key_order(const ben *a, const ben *b)
{
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->s, b->s, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

static void encode(out *o, const ben *v)
{
    char num[32];
    switch (v->kind) {
    case BEN_INT:
        put(o, num,
            (size_t)snprintf(num, sizeof num, "i%llde", (long long)v->i));
        return;
    case BEN_STR:
        put(o, num, (size_t)snprintf(num, sizeof num, "%u:", v->len));
        put(o, v->s, v->len);
        return;
    case BEN_LIST:
        put(o, "l", 1);
        for (uint32_t i = 0; i < v->n; i++)
            encode(o, v->items[i]);
        put(o, "e", 1);
        return;
    case BEN_DICT: {
        /* keys in sorted order; dictionaries are small, so an index sort */
        uint32_t order[256], n = v->n < 256 ? v->n : 256;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t k = i;
            while (k > 0 &&
                   key_order(v->items[2 * order[k - 1]], v->items[2 * i]) > 0) {
                order[k] = order[k - 1];
                k--;
            }
            order[k] = i;
        }
        put(o, "d", 1);
        for (uint32_t i = 0; i < n; i++) {
            encode(o, v->items[2 * order[i]]);
            encode(o, v->items[2 * order[i] + 1]);
        }
        put(o, "e", 1);
        return;
    }
    }
}

uint8_t *ben_encode(const ben *v, size_t *len)
{
    out o = {0};
    encode(&o, v);
    if (o.is_oom) {
        free(o.p);
        return NULL;
    }
    *len = o.len;
    return o.p;
}
