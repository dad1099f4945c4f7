/* quota.c — one person's share of a room: what a token name may ask of
 * the relay in its room, kept while that name's sessions come and go, so
 * that reconnecting never refills it (docs/SECURITY.md § Limits). It holds
 * the name's eval and history_req rates, how many of its evals are waiting
 * or compiling and how many catch-ups it is being sent, and a penalty after
 * a compile that ran into the time limit. A quota lives as long as the
 * name has a session, a job or a penalty, and a while after (so that
 * leaving and coming back is no way around it). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* How long a quota outlives its name's last session, job and penalty. */
#define QUOTA_LINGER_US (10u * 60u * 1000000u)

relay_quota *relay_quota_get(relay_room *r, const char *name)
{
    for (relay_quota *q = r->quotas; q; q = q->next)
        if (!strcmp(q->name, name))
            return q;
    relay_quota *q = calloc(1, sizeof *q);
    if (!q || strlen(name) > PB_MAX_NAME_BYTES) {
        free(q);
        return NULL;
    }
    strcpy(q->name, name);
    q->next = r->quotas;
    r->quotas = q;
    return q;
}

static bool is_idle(const relay_quota *q, uint64_t now_us)
{
    return !q->sessions && !q->jobs && !q->catchups &&
           now_us > q->heavy_until_us + QUOTA_LINGER_US &&
           now_us > q->idle_us + QUOTA_LINGER_US;
}

void relay_quotas_sweep(relay_room *r, uint64_t now_us)
{
    for (relay_quota **p = &r->quotas; *p;) {
        relay_quota *q = *p;
        if (is_idle(q, now_us)) {
            *p = q->next;
            free(q);
        } else {
            p = &q->next;
        }
    }
}

void relay_quotas_free(relay_room *r)
{
    while (r->quotas) {
        relay_quota *q = r->quotas;
        r->quotas = q->next;
        free(q);
    }
}
