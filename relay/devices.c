/* devices.c — the room's runtimes as a test farm (docs/PROTOCOL.md § Device
 * testing): what each runtime says it runs on, test requests stamped with
 * the seq they are for, snapshot requests and the pictures routed back to
 * the editor who asked (checked first: a device is not trusted), and the
 * room's recent device output kept for `patchbay logs`.
 *
 * The output ring holds references to the very messages that were
 * forwarded to the editors (outq.c), so keeping them costs no copy; it is
 * bounded by count and by bytes. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- what a runtime runs on ------------------------------------------------
 */

void relay_device_set(relay_session *s, const pb_hello *h)
{
    relay_device *rd = &s->device;
    const pb_device *d = &h->device;
    memset(rd, 0, sizeof *rd);
    rd->d = *d;
    /* the strings point into the hello frame: keep copies */
    if (pb_str_copy(rd->id, sizeof rd->id, h->device_id))
        rd->id[0] = '\0';
    if (pb_str_copy(rd->label, sizeof rd->label, d->label))
        rd->label[0] = '\0';
    if (pb_str_copy(rd->platform, sizeof rd->platform, d->platform))
        rd->platform[0] = '\0';
    if (pb_str_copy(rd->features, sizeof rd->features, d->features))
        rd->features[0] = '\0';
    rd->d.label = pb_cstr(rd->label);
    rd->d.platform = pb_cstr(rd->platform);
    rd->d.features = pb_cstr(rd->features);
}

/* A runtime restarted by its watchdog, or a phone back on another network,
 * says hello on a new socket while its old one may not have closed yet (a
 * browser closes a terminated worker's socket about 2 s after terminating
 * it; a half-open one stays until lws' validity check gives up on it,
 * ping at 300 s and hang up at 310 s by default). Its
 * device_id says it is the same runtime: the old connection leaves the room
 * before the new one joins, so editors and `patchbay test` list the device
 * once. Only a runtime of the same token name can do this, and a device_id
 * is never sent to anyone else. */
void relay_device_replace(relay_room *r, const relay_session *s)
{
    if (s->role != PB_ROLE_RUNTIME || !s->device.id[0])
        return;
    for (relay_session *o = r->members, *next; o; o = next) {
        next = o->room_next;
        if (o->state != RELAY_SESS_LIVE || o->role != PB_ROLE_RUNTIME ||
            strcmp(o->device.id, s->device.id) || strcmp(o->name, s->name))
            continue;
        lwsl_user("client %llu left room %s (%s): replaced by client %llu, "
                  "the same runtime\n",
                  (unsigned long long)o->client_id, r->name, o->name,
                  (unsigned long long)s->client_id);
        relay_session_send_error(o, PB_ERR_REPLACED, 0, true,
                                 "this runtime joined again as client %llu "
                                 "(the same device_id); closing this older "
                                 "connection",
                                 (unsigned long long)s->client_id);
        relay_catchup_end(o); /* its turn goes to someone who stays */
        relay_room_leave(o);
        relay_room_announce(r, o, PB_PEERS_LEAVE);
    }
}

/* ---- tests and snapshots ---------------------------------------------------
 */

static relay_session *member(relay_room *r, uint64_t client_id)
{
    for (relay_session *o = r->members; o; o = o->room_next)
        if (o->client_id == client_id && o->state == RELAY_SESS_LIVE)
            return o;
    return NULL;
}

/* Sends f to the room's runtimes (all, or the one runtime_id names). */
static void to_runtimes(relay_session *s, const pb_frame *f,
                        uint64_t runtime_id)
{
    pb_errmsg why;
    relay_msg *m = relay_msg_encode(f, &why);
    if (!m) {
        relay_session_send_error(s, PB_ERR_INTERNAL, 0, false,
                                 "cannot forward %s: %s", pb_type_name(f->type),
                                 why.text);
        return;
    }
    for (relay_session *o = s->room->members; o; o = o->room_next)
        if (o->role == PB_ROLE_RUNTIME &&
            (!runtime_id || runtime_id == o->client_id))
            relay_session_send(o, m);
    relay_msg_unref(m);
}

void relay_on_test_req(relay_session *s, pb_frame *f)
{
    /* a run is for one seq: the room's broadcast head unless the editor
     * names one, so a runtime still waiting for that patch's apply time
     * runs its tests after it, and an answer from older code is stale */
    if (!f->test_req.seq)
        f->test_req.seq = s->room->head_seq;
    to_runtimes(s, f, f->test_req.runtime_id);
}

void relay_on_snapshot_req(relay_session *s, pb_frame *f)
{
    f->snapshot_req.editor_id = s->client_id;
    to_runtimes(s, f, f->snapshot_req.runtime_id);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static uint32_t crc32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
    }
    return ~c;
}

/* What the relay can check of a picture without decoding it (it must not
 * spend its event loop inflating what a device sends): the PNG signature,
 * an intact IHDR for an 8-bit RGBA image of the size the frame claims, and
 * an IEND at the end. The editor's side decodes it fully. */
pb_err relay_png_check(const pb_snapshot *sn, pb_errmsg *why)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const uint8_t iend[12] = {0,   0,   0,    0,    'I',  'E',
                                     'N', 'D', 0xae, 0x42, 0x60, 0x82};
    const uint8_t *p = sn->png.ptr;
    uint32_t n = sn->png.len;
    if (!sn->width || !sn->height)
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "snapshot: a picture needs its width and height");
    if (n < 8 + 25 + 12 || memcmp(p, sig, 8))
        return pb_fail(why, PB_ERR_MALFORMED,
                       "snapshot: the png field is not a PNG (%u bytes)", n);
    if (be32(p + 8) != 13 || memcmp(p + 12, "IHDR", 4) ||
        be32(p + 29) != crc32(p + 12, 17))
        return pb_fail(why, PB_ERR_MALFORMED,
                       "snapshot: the PNG's IHDR chunk is damaged");
    uint32_t w = be32(p + 16), h = be32(p + 20);
    if (w != sn->width || h != sn->height)
        return pb_fail(why, PB_ERR_MALFORMED,
                       "snapshot: the PNG is %ux%u, the frame says %ux%u", w, h,
                       sn->width, sn->height);
    if (p[24] != 8 || p[25] != 6 || p[28] != 0)
        return pb_fail(why, PB_ERR_MALFORMED,
                       "snapshot: the PNG must be 8-bit RGBA, not "
                       "interlaced (depth %u, colour type %u, interlace %u)",
                       p[24], p[25], p[28]);
    if (memcmp(p + n - 12, iend, 12))
        return pb_fail(why, PB_ERR_MALFORMED,
                       "snapshot: the PNG does not end with IEND (cut "
                       "short?)");
    return PB_OK;
}

/* A runtime's picture goes to the editor who asked, and to no one else:
 * pictures are large and only that editor waits for them. */
void relay_on_snapshot(relay_session *s, pb_frame *f)
{
    pb_snapshot *sn = &f->snapshot;
    pb_errmsg why = {{0}};
    if (sn->png.ptr && relay_png_check(sn, &why)) {
        relay_session_refuse(s, PB_ERR_MALFORMED, sn->req, "%s", why.text);
        return;
    }
    sn->runtime_id = s->client_id;
    relay_session *to = member(s->room, sn->editor_id);
    if (!to || (to->role != PB_ROLE_EDITOR && to->role != PB_ROLE_OWNER))
        return; /* it left: nobody waits for this picture */
    relay_session_send_frame(to, f);
}

/* ---- recent device output -------------------------------------------------
 */

void relay_logring_push(relay_room *r, relay_msg *m, uint64_t runtime_id)
{
    relay_logring *lr = &r->logs;
    if (!lr->items && !(lr->items = calloc(RELAY_LOG_KEEP, sizeof *lr->items)))
        return;
    if (lr->count == RELAY_LOG_KEEP || lr->bytes + m->len > RELAY_LOG_BYTES) {
        /* the oldest goes (the newest always fits: frames are < 2 MiB) */
        while (lr->count && (lr->count == RELAY_LOG_KEEP ||
                             lr->bytes + m->len > RELAY_LOG_BYTES)) {
            relay_logitem *old = &lr->items[lr->first];
            lr->bytes -= old->msg->len;
            relay_msg_unref(old->msg);
            old->msg = NULL;
            lr->first = (lr->first + 1) % RELAY_LOG_KEEP;
            lr->count--;
            lr->dropped++;
        }
    }
    relay_logitem *it = &lr->items[(lr->first + lr->count) % RELAY_LOG_KEEP];
    m->refs++;
    it->msg = m;
    it->runtime_id = runtime_id;
    lr->bytes += m->len;
    lr->count++;
}

void relay_logring_free(relay_logring *lr)
{
    for (uint32_t i = 0; i < lr->count; i++)
        relay_msg_unref(lr->items[(lr->first + i) % RELAY_LOG_KEEP].msg);
    free(lr->items);
    memset(lr, 0, sizeof *lr);
}

void relay_on_log_req(relay_session *s, const pb_log_req *q)
{
    relay_logring *lr = &s->room->logs;
    uint32_t n = 0;
    for (uint32_t i = 0; i < lr->count; i++) {
        relay_logitem *it = &lr->items[(lr->first + i) % RELAY_LOG_KEEP];
        if (q->runtime_id && q->runtime_id != it->runtime_id)
            continue;
        relay_session_send(s, it->msg);
        n++;
    }
    pb_frame f = {.type = PB_T_LOG_END};
    f.log_end.req = q->req;
    f.log_end.count = n;
    f.log_end.dropped = lr->dropped;
    relay_session_send_frame(s, &f);
}
