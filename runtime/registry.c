/* registry.c — the room's vars as a runtime holds them: one slot per var
 * name whose address never changes (patch modules bind to it at load time
 * and call through it), the definition staged by the patch being prepared,
 * and the definitions it replaced (for rollback). Also the persistent state
 * cells of PB_STATE. This is the runtime side of docs/PATCH_ABI.md.
 *
 * Every definition remembers the seq of the patch that brought it, so that
 * a trap can take back exactly that patch (rt_rollback_seq). A prepared
 * patch's definitions can be taken out of the registry (rt_prepare_take)
 * to wait for their apply time while later patches are prepared. */
#include "runtime.h"

#include <emscripten.h>
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
    uint64_t seq; /* patch of the current definition (0: none/unknown) */
    void *prev[RT_MAX_HISTORY];
    char prev_sig[RT_MAX_HISTORY][PB_MAX_TYPE_BYTES + 1];
    uint64_t prev_seq[RT_MAX_HISTORY];
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

static rt_var *rt_var_find(const char *name)
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

EMSCRIPTEN_KEEPALIVE
void rt_prepare_begin(void)
{
    preparing = true;
    errors[0] = '\0';
    n_errors = 0;
}

EMSCRIPTEN_KEEPALIVE
int rt_prepare_end(void)
{
    preparing = false;
    if (n_errors)
        rt_prepare_abort();
    return (int)n_errors;
}

EMSCRIPTEN_KEEPALIVE
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

/* Makes fn the current definition of v, keeping the old one for rollback. */
static void var_swap(rt_var *v, void *fn, const char *sig, uint64_t seq)
{
    if (v->cell) {
        if (v->n_prev == RT_MAX_HISTORY) {
            memmove(v->prev, v->prev + 1,
                    (RT_MAX_HISTORY - 1) * sizeof v->prev[0]);
            memmove(v->prev_sig, v->prev_sig + 1,
                    (RT_MAX_HISTORY - 1) * sizeof v->prev_sig[0]);
            memmove(v->prev_seq, v->prev_seq + 1,
                    (RT_MAX_HISTORY - 1) * sizeof v->prev_seq[0]);
            v->n_prev--;
        }
        v->prev[v->n_prev] = v->cell;
        v->prev_seq[v->n_prev] = v->seq;
        strcpy(v->prev_sig[v->n_prev++], v->sig);
    }
    v->cell = fn;
    v->seq = seq;
    strcpy(v->sig, sig);
}

EMSCRIPTEN_KEEPALIVE
int rt_commit(void)
{
    int n = 0;
    for (uint32_t b = 0; b < BUCKETS; b++)
        for (rt_var *v = vars[b]; v; v = v->next) {
            if (!v->has_pending)
                continue;
            var_swap(v, v->pending, v->pending_sig, 0);
            v->has_pending = false;
            n++;
        }
    return n;
}

/* ---- prepared patches waiting for their apply time ----------------------- */

typedef struct rt_def {
    rt_var *var;
    void *fn;
    char sig[PB_MAX_TYPE_BYTES + 1];
} rt_def;

struct rt_staged {
    uint32_t n;
    rt_def defs[];
};

rt_staged *rt_prepare_take(void)
{
    uint32_t n = 0;
    for (uint32_t b = 0; b < BUCKETS; b++)
        for (rt_var *v = vars[b]; v; v = v->next)
            n += v->has_pending;
    rt_staged *s = malloc(sizeof *s + n * sizeof s->defs[0]);
    if (!s) {
        rt_prepare_abort();
        return NULL;
    }
    s->n = 0;
    for (uint32_t b = 0; b < BUCKETS; b++)
        for (rt_var *v = vars[b]; v; v = v->next) {
            if (!v->has_pending)
                continue;
            rt_def *d = &s->defs[s->n++];
            d->var = v;
            d->fn = v->pending;
            strcpy(d->sig, v->pending_sig);
            v->has_pending = false;
        }
    return s;
}

uint32_t rt_staged_count(const rt_staged *s)
{
    return s ? s->n : 0;
}

const char *rt_staged_name(const rt_staged *s, uint32_t i)
{
    return s && i < s->n ? s->defs[i].var->name : "";
}

void *rt_staged_fn(const rt_staged *s, const char *name)
{
    for (uint32_t i = 0; s && i < s->n; i++)
        if (!strcmp(s->defs[i].var->name, name))
            return s->defs[i].fn;
    return NULL;
}

int rt_staged_commit(rt_staged *s, uint64_t seq)
{
    if (!s)
        return 0;
    int n = (int)s->n;
    for (uint32_t i = 0; i < s->n; i++)
        var_swap(s->defs[i].var, s->defs[i].fn, s->defs[i].sig, seq);
    free(s);
    return n;
}

void rt_staged_free(rt_staged *s)
{
    free(s);
}

/* Puts back v's previous definition; a var with none becomes undefined. */
static void var_restore(rt_var *v)
{
    if (v->n_prev == 0) {
        v->cell = NULL;
        v->seq = 0;
        v->sig[0] = '\0';
        return;
    }
    v->n_prev--;
    v->cell = v->prev[v->n_prev];
    v->seq = v->prev_seq[v->n_prev];
    strcpy(v->sig, v->prev_sig[v->n_prev]);
}

EMSCRIPTEN_KEEPALIVE
int rt_rollback(const char *name)
{
    rt_var *v = rt_var_find(name);
    if (!v || v->n_prev == 0)
        return -1;
    var_restore(v);
    return 0;
}

int rt_rollback_seq(uint64_t seq, void (*each)(const char *name, void *ctx),
                    void *ctx)
{
    int n = 0;
    if (!seq)
        return 0;
    for (uint32_t b = 0; b < BUCKETS; b++)
        for (rt_var *v = vars[b]; v; v = v->next)
            if (v->cell && v->seq == seq) {
                var_restore(v);
                if (each)
                    each(v->name, ctx);
                n++;
            }
    return n;
}

uint64_t rt_var_seq(const char *name)
{
    rt_var *v = rt_var_find(name);
    return v && v->cell ? v->seq : 0;
}

int rt_vars_with_prefix(const char *prefix,
                        void (*each)(const char *name, void *ctx), void *ctx)
{
    int n = 0;
    size_t len = strlen(prefix);
    for (uint32_t b = 0; b < BUCKETS; b++)
        for (rt_var *v = vars[b]; v; v = v->next)
            if (v->cell && !strncmp(v->name, prefix, len)) {
                each(v->name, ctx);
                n++;
            }
    return n;
}

EMSCRIPTEN_KEEPALIVE
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

void *rt_state_find(const char *name, uint32_t *size)
{
    for (rt_state *st = states; st; st = st->next)
        if (!strcmp(st->name, name)) {
            *size = st->size;
            return st->data;
        }
    return NULL;
}

int rt_states_each(void (*each)(const char *name, uint32_t size, uint32_t align,
                                const void *data, void *ctx),
                   void *ctx)
{
    int n = 0;
    for (rt_state *st = states; st; st = st->next, n++)
        each(st->name, st->size, st->align, st->data, ctx);
    return n;
}
