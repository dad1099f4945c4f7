/* registry.c — the room's vars as a runtime holds them: one slot per var
 * name whose address never changes (patch modules bind to it at load time
 * and call through it), the definition staged by the patch being prepared,
 * and the definitions it replaced (for rollback). Also the persistent state
 * cells of PB_STATE. This is the runtime side of docs/PATCH_ABI.md. */
#include "runtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RT_MAX_HISTORY 8 /* earlier definitions kept for rollback */

typedef struct rt_var {
    void *cell; /* the slot: current function (table index) */
    char name[PB_MAX_NAME_BYTES + 1];
    char sig[PB_MAX_TYPE_BYTES + 1];
    void *pending; /* staged by the patch being prepared */
    char pending_sig[PB_MAX_TYPE_BYTES + 1];
    bool has_pending;
    void *prev[RT_MAX_HISTORY];
    char prev_sig[RT_MAX_HISTORY][PB_MAX_TYPE_BYTES + 1];
    uint32_t n_prev;
    struct rt_var *next; /* hash chain */
} rt_var;

typedef struct rt_state {
    char name[PB_MAX_NAME_BYTES + 1];
    uint32_t size, align;
    void *data;
    struct rt_state *next;
} rt_state;

#define BUCKETS 256u
static rt_var *vars[BUCKETS];
static rt_state *states;
static char errors[2048];
static uint32_t n_errors;
static bool preparing;

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 16777619u;
    return h % BUCKETS;
}

void rt_prepare_error(const char *fmt, ...)
{
    size_t n = strlen(errors);
    if (n && n < sizeof errors - 2) {
        errors[n++] = ';';
        errors[n++] = ' ';
        errors[n] = '\0';
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errors + n, sizeof errors - n, fmt, ap);
    va_end(ap);
    n_errors++;
}

rt_var *rt_var_find(const char *name)
{
    for (rt_var *v = vars[hash(name)]; v; v = v->next)
        if (!strcmp(v->name, name))
            return v;
    return NULL;
}

static rt_var *var_get(const char *name)
{
    rt_var *v = rt_var_find(name);
    if (v)
        return v;
    if (strlen(name) > PB_MAX_NAME_BYTES || !(v = calloc(1, sizeof *v)))
        return NULL;
    strcpy(v->name, name);
    uint32_t h = hash(name);
    v->next = vars[h];
    vars[h] = v;
    return v;
}

/* ---- called by patch modules while they load (pb__bind) ------------------ */

void pb_rt_define(const char *name, const char *sig, void *fn)
{
    rt_var *v = var_get(name);
    if (!preparing || !v || strlen(sig) > PB_MAX_TYPE_BYTES) {
        rt_prepare_error("cannot define var '%s'", name);
        return;
    }
    if (v->has_pending) {
        rt_prepare_error("var '%s' is defined twice in one patch", name);
        return;
    }
    v->pending = fn;
    strcpy(v->pending_sig, sig);
    v->has_pending = true;
}

void *pb_rt_slot(const char *name, const char *sig)
{
    rt_var *v = var_get(name);
    if (!v) {
        rt_prepare_error("cannot create var '%s'", name);
        return NULL;
    }
    const char *have = v->has_pending ? v->pending_sig : v->sig;
    if (have[0] && strcmp(have, sig) != 0)
        rt_prepare_error("the patch calls '%s' as %s, but it is %s", name, sig,
                         have);
    return &v->cell;
}

void *pb_rt_state(const char *name, uint32_t size, uint32_t align,
                  const void *init)
{
    for (rt_state *s = states; s; s = s->next) {
        if (strcmp(s->name, name))
            continue;
        if (s->size != size)
            rt_prepare_error("state '%s' is %u bytes, the patch declares it "
                             "with %u: keep its type, or give it a new name",
                             name, s->size, size);
        return s->data;
    }
    rt_state *s = calloc(1, sizeof *s);
    if (!s || strlen(name) > PB_MAX_NAME_BYTES ||
        !(s->data =
              aligned_alloc(align ? align : 1,
                            (size + (align ? align : 1) - 1) /
                                (align ? align : 1) * (align ? align : 1)))) {
        free(s);
        rt_prepare_error("cannot allocate state '%s'", name);
        return NULL;
    }
    strcpy(s->name, name);
    s->size = size;
    s->align = align;
    memcpy(s->data, init, size);
    s->next = states;
    states = s;
    return s->data;
}

/* ---- prepare / commit
 * ---------------------------------------------------------- */

void rt_prepare_begin(void)
{
    preparing = true;
    errors[0] = '\0';
    n_errors = 0;
}

int rt_prepare_end(void)
{
    preparing = false;
    if (n_errors)
        rt_prepare_abort();
    return (int)n_errors;
}

const char *rt_prepare_errors(void)
{
    return errors;
}

void rt_prepare_abort(void)
{
    for (uint32_t b = 0; b < BUCKETS; b++)
        for (rt_var *v = vars[b]; v; v = v->next)
            v->has_pending = false;
    preparing = false;
}

int rt_commit(void)
{
    int n = 0;
    for (uint32_t b = 0; b < BUCKETS; b++)
        for (rt_var *v = vars[b]; v; v = v->next) {
            if (!v->has_pending)
                continue;
            if (v->cell) {
                if (v->n_prev == RT_MAX_HISTORY) {
                    memmove(v->prev, v->prev + 1,
                            (RT_MAX_HISTORY - 1) * sizeof v->prev[0]);
                    memmove(v->prev_sig, v->prev_sig + 1,
                            (RT_MAX_HISTORY - 1) * sizeof v->prev_sig[0]);
                    v->n_prev--;
                }
                v->prev[v->n_prev] = v->cell;
                strcpy(v->prev_sig[v->n_prev++], v->sig);
            }
            v->cell = v->pending;
            strcpy(v->sig, v->pending_sig);
            v->has_pending = false;
            n++;
        }
    return n;
}

int rt_rollback(const char *name)
{
    rt_var *v = rt_var_find(name);
    if (!v || v->n_prev == 0)
        return -1;
    v->n_prev--;
    v->cell = v->prev[v->n_prev];
    strcpy(v->sig, v->prev_sig[v->n_prev]);
    return 0;
}

void *rt_var_fn(const char *name)
{
    rt_var *v = rt_var_find(name);
    return v ? v->cell : NULL;
}

const char *rt_var_sig(const char *name)
{
    rt_var *v = rt_var_find(name);
    return v ? v->sig : "";
}
