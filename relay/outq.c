/* outq.c — what the relay sends: each encoded frame is one reference-
 * counted message with LWS_PRE bytes of headroom, shared by every client it
 * goes to (a broadcast encodes once); each client has a bounded queue of
 * references, drained one lws_write per WRITEABLE callback. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

relay_msg *relay_msg_new(const uint8_t *data, size_t len)
{
    relay_msg *m = malloc(sizeof *m + LWS_PRE + len);
    if (!m)
        return NULL;
    m->refs = 1;
    m->len = len;
    memcpy(m->bytes + LWS_PRE, data, len);
    return m;
}

relay_msg *relay_msg_encode(const pb_frame *f, pb_errmsg *why)
{
    pb_buf b;
    pb_buf_init(&b);
    pb_err e = pb_frame_encode(f, &b, why);
    relay_msg *m = e ? NULL : relay_msg_new(b.data, b.len);
    pb_buf_free(&b);
    return m;
}

void relay_msg_unref(relay_msg *m)
{
    if (m && --m->refs == 0)
        free(m);
}

pb_err relay_outq_push(relay_outq *q, relay_msg *m, size_t max_bytes)
{
    if (q->bytes + m->len > max_bytes)
        return PB_ERR_SLOW_CONSUMER;
    relay_outq_item *it = malloc(sizeof *it);
    if (!it)
        return PB_ERR_NOMEM;
    it->msg = m;
    it->next = NULL;
    m->refs++;
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    q->bytes += m->len;
    q->count++;
    return PB_OK;
}

relay_msg *relay_outq_peek(const relay_outq *q)
{
    return q->head ? q->head->msg : NULL;
}

void relay_outq_pop(relay_outq *q)
{
    relay_outq_item *it = q->head;
    if (!it)
        return;
    q->head = it->next;
    if (!q->head)
        q->tail = NULL;
    q->bytes -= it->msg->len;
    q->count--;
    relay_msg_unref(it->msg);
    free(it);
}

void relay_outq_clear(relay_outq *q)
{
    while (q->head)
        relay_outq_pop(q);
}
