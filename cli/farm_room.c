/* farm_room.c — see farm_room.h. */
#include "farm_room.h"
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t farm_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

const char *farm_dev_label(const farm_dev *d)
{
    return d->label[0] ? d->label : d->name;
}

const char *farm_room_label(const farm_room *r, const farm_dev *d, char *out,
                            size_t cap)
{
    const char *label = farm_dev_label(d);
    bool is_shared = false;
    for (uint32_t i = 0; i < r->n_devs; i++)
        is_shared |= r->devs[i].id != d->id &&
                     !strcmp(farm_dev_label(&r->devs[i]), label);
    if (is_shared)
        snprintf(out, cap, "%s#%llu", label, (unsigned long long)d->id);
    else
        snprintf(out, cap, "%s", label);
    return out;
}

farm_dev *farm_room_dev(farm_room *r, uint64_t id)
{
    for (uint32_t i = 0; i < r->n_devs; i++)
        if (r->devs[i].id == id)
            return &r->devs[i];
    return NULL;
}

uint32_t farm_room_count(const farm_room *r)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->n_devs; i++)
        n += r->devs[i].is_here;
    return n;
}

uint64_t farm_room_now_us(const farm_room *r)
{
    return r->room_us + (mono_us() - r->mono_us);
}

static void copy_str(char *dst, size_t cap, pb_str s, pb_str *view)
{
    if (pb_str_copy(dst, cap, s))
        dst[0] = '\0';
    *view = pb_cstr(dst);
}

/* A runtime as the peers frame lists it (added, or updated in place). */
static void see_peer(farm_room *r, const pb_peer *p, bool is_leave)
{
    if (p->role != PB_ROLE_RUNTIME)
        return;
    farm_dev *d = farm_room_dev(r, p->id);
    if (!d) {
        if (is_leave)
            return;
        if (r->n_devs == r->cap_devs) {
            uint32_t cap = r->cap_devs ? r->cap_devs * 2 : 16;
            farm_dev *devs = realloc(r->devs, cap * sizeof *devs);
            if (!devs)
                return;
            r->devs = devs;
            r->cap_devs = cap;
        }
        d = &r->devs[r->n_devs++];
        memset(d, 0, sizeof *d);
        d->id = p->id;
    }
    if (is_leave) {
        d->is_here = false;
        d->left_ms = farm_mono_ms();
        return;
    }
    d->is_here = true;
    if (pb_str_copy(d->name, sizeof d->name, p->name))
        d->name[0] = '\0';
    d->d = p->device;
    copy_str(d->label, sizeof d->label, p->device.label, &d->d.label);
    copy_str(d->platform, sizeof d->platform, p->device.platform,
             &d->d.platform);
    copy_str(d->features, sizeof d->features, p->device.features,
             &d->d.features);
    d->last_ack = p->last_ack;
    d->last_seq = p->last_seq;
    d->skew_us = p->skew_us;
    d->mem_bytes = p->mem_bytes;
    d->unc_us = p->unc_us;
}

static int by_id(const void *a, const void *b)
{
    uint64_t x = ((const farm_dev *)a)->id, y = ((const farm_dev *)b)->id;
    return x < y ? -1 : x > y;
}

static void track(farm_room *r, const pb_frame *f)
{
    switch (f->type) {
    case PB_T_PEERS:
        if (f->peers.event == PB_PEERS_SNAPSHOT) {
            for (uint32_t i = 0; i < r->n_devs; i++)
                r->devs[i].is_here = false;
            r->has_peers = true;
        }
        for (uint32_t i = 0; i < f->peers.n_peers; i++)
            see_peer(r, &f->peers.peers[i], f->peers.event == PB_PEERS_LEAVE);
        /* in the order they joined (a snapshot lists the newest first;
         * ids grow) */
        if (r->n_devs > 1)
            qsort(r->devs, r->n_devs, sizeof *r->devs, by_id);
        break;
    case PB_T_PATCH: {
        pb_statement st;
        if (pb_statement_decode(f->patch.stmt.ptr, f->patch.stmt.len, &st,
                                NULL) == PB_OK) {
            if (st.seq > r->head_seq)
                r->head_seq = st.seq;
            pb_statement_free(&st);
        }
        break;
    }
    case PB_T_ACK:
        if (f->ack.runtime_id) {
            farm_dev *d = farm_room_dev(r, f->ack.runtime_id);
            if (d) {
                d->last_ack = f->ack.state;
                d->last_seq = f->ack.seq;
            }
        }
        break;
    case PB_T_ERROR:
        r->error_code = f->error.code;
        r->error_req = f->error.req;
        r->is_fatal = f->error.fatal;
        snprintf(r->error, sizeof r->error, "%.*s", (int)f->error.message.len,
                 f->error.message.ptr ? f->error.message.ptr : "");
        break;
    default: break;
    }
}

typedef struct relay_ctx {
    farm_room *r;
    pbc_frame_fn fn;
    void *ctx;
} relay_ctx;

static int trampoline(void *ctx, const pb_frame *f)
{
    relay_ctx *k = ctx;
    track(k->r, f);
    return k->fn ? k->fn(k->ctx, f) : 0;
}

pbc_wait_end farm_room_wait(farm_room *r, uint32_t ms, pbc_frame_fn fn,
                            void *ctx)
{
    relay_ctx k = {r, fn, ctx};
    pb_errmsg why = {{0}};
    pbc_wait_end rc = pbc_wait(r->c, ms, trampoline, &k, &why);
    if (rc == PBC_WAIT_CLOSED)
        fprintf(stderr, "patchbay %s: the connection to the relay ended: %s\n",
                r->cmd,
                r->is_fatal && r->error[0] ? r->error
                : why.text[0]              ? why.text
                                           : "closed");
    return rc;
}

static int until_peers(void *ctx, const pb_frame *f)
{
    (void)f;
    return ((farm_room *)ctx)->has_peers || ((farm_room *)ctx)->is_fatal;
}

int farm_room_open(farm_room *r, const char *cmd, const cli_conn_opts *o,
                   uint32_t timeout_ms)
{
    memset(r, 0, sizeof *r);
    r->cmd = cmd;
    pbc_target t;
    pb_errmsg why = {{0}};
    if (cli_target(o, &t, &why))
        return cli_usage_error(cmd, "%s", why.text);
    if (!(r->c = cli_join(cmd, &t, o->room, timeout_ms, &r->w)))
        return 3;
    r->mono_us = mono_us();
    r->room_us = r->w.now_us;
    r->head_seq = r->w.head_seq;
    if (r->w.role == PB_ROLE_RUNTIME) {
        fprintf(stderr,
                "patchbay %s: this is a runtime token; use an editor (or "
                "viewer) token of room \"%s\"\n",
                cmd, r->w.room);
        return 3;
    }
    /* the member list follows the catch-up */
    if (farm_room_wait(r, timeout_ms, until_peers, r) == PBC_WAIT_CLOSED)
        return 3;
    if (!r->has_peers) {
        fprintf(stderr,
                "patchbay %s: the relay did not list the room's members "
                "within %u ms\n",
                cmd, timeout_ms);
        return 3;
    }
    return 0;
}

void farm_room_close(farm_room *r)
{
    pbc_close(r->c);
    free(r->devs);
    memset(r, 0, sizeof *r);
}
