/* answers.c — what the runtimes of a room said of one expression
 * (docs/PROTOCOL.md § Expressions), gathered from their acks, and the words
 * both `patchbay eval` and `patchbay nrepl` use for it: "59" when they
 * agree, "58 on 2 runtimes, 59 on 8" when they do not (in the order the
 * answers came); and which runtimes are in the room to answer. See
 * pbc.h. */
#include "pbc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_str(pb_str s)
{
    char *d = malloc(s.len + 1);
    if (d) {
        memcpy(d, s.ptr ? s.ptr : "", s.len);
        d[s.len] = '\0';
    }
    return d;
}

bool pbc_answers_add(pbc_answers *a, const pb_ack *ack)
{
    bool is_value = ack->state == PB_ACK_COMMITTED && ack->value.ptr;
    if (!is_value && ack->state != PB_ACK_FAILED)
        return false; /* prepared, or a bare commit: not an answer */
    for (uint32_t i = 0; i < a->n; i++)
        if (a->items[i].runtime_id == ack->runtime_id)
            return false;
    if (a->n == a->cap) {
        uint32_t cap = a->cap ? a->cap * 2 : 16;
        pbc_answer *items = realloc(a->items, cap * sizeof *items);
        if (!items)
            return false;
        a->items = items;
        a->cap = cap;
    }
    pbc_answer *x = &a->items[a->n];
    x->runtime_id = ack->runtime_id;
    x->ok = is_value;
    x->text = dup_str(is_value ? ack->value : ack->error);
    x->out = dup_str(ack->out);
    if (!x->text || !x->out) { /* out of memory: that answer is lost */
        free(x->text);
        free(x->out);
        return false;
    }
    a->n++;
    return true;
}

/* The first answer like i (the same outcome and text), and how many. */
static uint32_t like(const pbc_answers *a, uint32_t i, uint32_t *first)
{
    uint32_t n = 0;
    *first = i;
    for (uint32_t k = 0; k < a->n; k++)
        if (a->items[k].ok == a->items[i].ok &&
            !strcmp(a->items[k].text, a->items[i].text)) {
            n++;
            if (k < *first)
                *first = k;
        }
    return n;
}

uint32_t pbc_answers_count(const pbc_answers *a, bool ok)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < a->n; i++)
        n += a->items[i].ok == ok;
    return n;
}

/* printf at out[*n], never past cap. */
static void append(char *out, size_t cap, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void append(char *out, size_t cap, size_t *n, const char *fmt, ...)
{
    if (*n + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(out + *n, cap - *n, fmt, ap);
    va_end(ap);
    *n = w < 0 ? *n : *n + (size_t)w < cap ? *n + (size_t)w : cap - 1;
}

uint32_t pbc_answers_describe(const pbc_answers *a, bool ok, char *out,
                              size_t cap)
{
    uint32_t groups = 0, first;
    for (uint32_t i = 0; i < a->n; i++)
        groups += a->items[i].ok == ok && like(a, i, &first) && first == i;
    /* the count only where it tells something */
    bool is_counted = groups > 1 || pbc_answers_count(a, !ok);
    size_t n = 0;
    out[0] = '\0';
    for (uint32_t i = 0, shown = 0; i < a->n; i++) {
        uint32_t count = like(a, i, &first);
        if (a->items[i].ok != ok || first != i)
            continue;
        append(out, cap, &n, "%s%s", shown ? ", " : "", a->items[i].text);
        if (is_counted && shown)
            append(out, cap, &n, " on %u", count);
        else if (is_counted)
            append(out, cap, &n, " on %u runtime%s", count,
                   count == 1 ? "" : "s");
        shown++;
    }
    return groups;
}

void pbc_answers_free(pbc_answers *a)
{
    for (uint32_t i = 0; i < a->n; i++) {
        free(a->items[i].text);
        free(a->items[i].out);
    }
    free(a->items);
    memset(a, 0, sizeof *a);
}

void pbc_runtimes_track(pbc_runtimes *r, const pb_peers *p)
{
    if (p->event == PB_PEERS_SNAPSHOT)
        r->n = 0;
    for (uint32_t i = 0; i < p->n_peers; i++) {
        const pb_peer *peer = &p->peers[i];
        if (peer->role != PB_ROLE_RUNTIME)
            continue;
        uint32_t k = 0;
        while (k < r->n && r->ids[k] != peer->id)
            k++;
        if (p->event == PB_PEERS_LEAVE) {
            if (k < r->n) {
                r->n--;
                r->ids[k] = r->ids[r->n];
                memcpy(r->names[k], r->names[r->n], sizeof r->names[k]);
            }
        } else if (k < PB_MAX_PEERS) {
            if (k == r->n)
                r->n++;
            r->ids[k] = peer->id;
            if (pb_str_copy(r->names[k], sizeof r->names[k], peer->name))
                r->names[k][0] = '\0';
        }
    }
}

const char *pbc_runtimes_name(const pbc_runtimes *r, uint64_t id)
{
    for (uint32_t k = 0; k < r->n; k++)
        if (r->ids[k] == id)
            return r->names[k];
    return "";
}
