/* ipc.c — the compile server's pipe protocol: each message is a 4-byte
 * big-endian length and a msgpack array. A request carries one job; a
 * response one result. It is private to compiler/ (the relay talks to the
 * server through cc_client, cc.h), so it is simpler than the wire format:
 * positional arrays, no versioning beyond "both ends are one build". */
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IPC_MAX_BYTES (8u << 20)

/* ---- framing ---------------------------------------------------------------
 */

static int write_full(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads exactly n bytes before deadline_us (0: no deadline). */
static cc_ipc_status read_full(int fd, void *p, size_t n, uint64_t deadline_us)
{
    uint8_t *b = p;
    while (n) {
        if (deadline_us) {
            uint64_t now = cc_now_us();
            if (now >= deadline_us)
                return CC_IPC_TIMEOUT;
            struct pollfd pfd = {fd, POLLIN, 0};
            int r = poll(&pfd, 1, (int)((deadline_us - now) / 1000 + 1));
            if (r < 0 && errno == EINTR)
                continue;
            if (r == 0)
                return CC_IPC_TIMEOUT;
            if (r < 0)
                return CC_IPC_CLOSED;
        }
        ssize_t got = read(fd, b, n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return CC_IPC_CLOSED;
        b += got;
        n -= (size_t)got;
    }
    return CC_IPC_OK;
}

int cc_ipc_send(int fd, const pb_buf *msg)
{
    uint8_t hdr[4] = {(uint8_t)(msg->len >> 24), (uint8_t)(msg->len >> 16),
                      (uint8_t)(msg->len >> 8), (uint8_t)msg->len};
    return write_full(fd, hdr, 4) || write_full(fd, msg->data, msg->len) ? -1
                                                                         : 0;
}

cc_ipc_status cc_ipc_recv(int fd, uint8_t **msg, size_t *len,
                          uint64_t deadline_us)
{
    uint8_t hdr[4];
    cc_ipc_status r = read_full(fd, hdr, 4, deadline_us);
    if (r)
        return r;
    size_t n = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 |
               (size_t)hdr[2] << 8 | hdr[3];
    if (n > IPC_MAX_BYTES || !(*msg = malloc(n ? n : 1)))
        return CC_IPC_CLOSED;
    if ((r = read_full(fd, *msg, n, deadline_us))) {
        free(*msg);
        *msg = NULL;
        return r;
    }
    *len = n;
    return CC_IPC_OK;
}

/* ---- packing helpers ------------------------------------------------------
 */

/* Starts a message in out: a packer whose writes fail, stickily, past
 * IPC_MAX_BYTES (the receiver would refuse it) or when out cannot grow. */
static void pack_start(msgpack_packer *pk, pb_writer *w, pb_buf *out)
{
    pb_writer_start(w, out, IPC_MAX_BYTES);
    msgpack_packer_init(pk, w, pb_writer_write);
}

/* The end of a message: PB_OK, or why it could not be packed (and out is
 * emptied, so that half a message is never sent). */
static pb_err pack_end(pb_writer *w, const char *what, pb_errmsg *why)
{
    if (!w->err)
        return PB_OK;
    w->out->len = 0;
    return pb_fail(why, w->err,
                   "cannot pack the %s for the compile server's pipe: %s "
                   "(a message is at most %u bytes)",
                   what, pb_strerror(w->err), IPC_MAX_BYTES);
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    msgpack_pack_str_with_body(pk, s ? s : "", n);
}

static const char *obj_str(const msgpack_object *o, char **owned)
{
    if (o->type != MSGPACK_OBJECT_STR && o->type != MSGPACK_OBJECT_BIN)
        return NULL;
    *owned = cc_strndup(o->via.str.ptr ? o->via.str.ptr : "", o->via.str.size);
    return *owned;
}

static char *dup_obj(const msgpack_object *o)
{
    char *s = NULL;
    obj_str(o, &s);
    return s;
}

static uint64_t obj_u64(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o->via.u64 : 0;
}

static bool is_array(const msgpack_object *o, uint32_t min)
{
    return o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size >= min;
}

/* ---- jobs
 * ---------------------------------------------------------------------- */

/* [id, lang, file, source, [[name, sig, decl, [deps...]]...], expr] */
pb_err cc_ipc_pack_job(uint64_t id, const cc_job *job, pb_buf *out,
                       pb_errmsg *why)
{
    msgpack_packer pk;
    pb_writer w;
    pack_start(&pk, &w, out);
    msgpack_pack_array(&pk, 6);
    msgpack_pack_uint64(&pk, id);
    msgpack_pack_uint32(&pk, (uint32_t)job->lang);
    pack_str(&pk, job->file);
    msgpack_pack_bin_with_body(&pk, job->source, job->source_len);
    msgpack_pack_array(&pk, job->n_vars);
    for (uint32_t i = 0; i < job->n_vars; i++) {
        const cc_var *v = &job->vars[i];
        msgpack_pack_array(&pk, 4);
        pack_str(&pk, v->name);
        pack_str(&pk, v->sig);
        pack_str(&pk, v->decl);
        msgpack_pack_array(&pk, v->n_deps);
        for (uint32_t k = 0; k < v->n_deps; k++)
            pack_str(&pk, v->deps[k]);
    }
    job->expr ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    return pack_end(&w, "job", why);
}

void cc_ipc_job_free(cc_ipc_job *j)
{
    free(j->file);
    free(j->source);
    for (uint32_t i = 0; i < j->job.n_vars; i++) {
        cc_var *v = &j->vars[i];
        free((char *)v->name);
        free((char *)v->sig);
        free((char *)v->decl);
        for (uint32_t k = 0; k < v->n_deps; k++)
            free((char *)v->deps[k]);
        free((void *)v->deps);
    }
    free(j->vars);
    memset(j, 0, sizeof *j);
}

int cc_ipc_unpack_job(const uint8_t *p, size_t len, cc_ipc_job *j)
{
    memset(j, 0, sizeof *j);
    msgpack_object o;
    msgpack_zone *z;
    if (cc_ipc_unpack_raw(p, len, &o, &z))
        return -1;
    int rc = -1;
    if (!is_array(&o, 6))
        goto done;
    const msgpack_object *a = o.via.array.ptr;
    j->id = obj_u64(&a[0]);
    j->job.expr = a[5].type == MSGPACK_OBJECT_BOOLEAN && a[5].via.boolean;
    j->job.lang = (pb_lang)obj_u64(&a[1]);
    j->file = dup_obj(&a[2]);
    j->source = dup_obj(&a[3]);
    if (!j->file || !j->source || !is_array(&a[4], 0))
        goto done;
    j->job.file = j->file;
    j->job.source = j->source;
    j->job.source_len = a[3].via.bin.size;
    uint32_t n = a[4].via.array.size;
    if (n && !(j->vars = calloc(n, sizeof *j->vars)))
        goto done;
    j->job.vars = j->vars;
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *v = &a[4].via.array.ptr[i];
        if (!is_array(v, 4) || !is_array(&v->via.array.ptr[3], 0))
            goto done;
        cc_var *cv = &j->vars[i];
        j->job.n_vars = i + 1;
        cv->name = dup_obj(&v->via.array.ptr[0]);
        cv->sig = dup_obj(&v->via.array.ptr[1]);
        char *decl = dup_obj(&v->via.array.ptr[2]);
        if (decl && !*decl) {
            free(decl);
            decl = NULL;
        }
        cv->decl = decl;
        const msgpack_object *deps = &v->via.array.ptr[3];
        if (deps->via.array.size) {
            char **d = calloc(deps->via.array.size, sizeof *d);
            if (!d)
                goto done;
            cv->deps = (const char *const *)d;
            for (uint32_t k = 0; k < deps->via.array.size; k++) {
                if (!(d[k] = dup_obj(&deps->via.array.ptr[k])))
                    goto done;
                cv->n_deps = k + 1;
            }
        }
        if (!cv->name || !cv->sig)
            goto done;
    }
    rc = 0;
done:
    msgpack_zone_free(z);
    if (rc)
        cc_ipc_job_free(j);
    return rc;
}

/* ---- results
 * -------------------------------------------------------------------- */

static void pack_syms(msgpack_packer *pk, const cc_sym *s, uint32_t n)
{
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        msgpack_pack_array(pk, 5);
        pack_str(pk, s[i].name);
        pack_str(pk, s[i].sig);
        pack_str(pk, s[i].decl);
        msgpack_pack_uint32(pk, s[i].line);
        msgpack_pack_array(pk, s[i].n_deps);
        for (uint32_t k = 0; k < s[i].n_deps; k++)
            pack_str(pk, s[i].deps[k]);
    }
}

/* [id, status, error, ok, module, defs, uses, diags, cached, c_us, l_us, t_us,
 *  is_expr, backend] */
pb_err cc_ipc_pack_result(uint64_t id, pb_err status, const char *error,
                          const cc_result *r, pb_buf *out, pb_errmsg *why)
{
    msgpack_packer pk;
    pb_writer w;
    pack_start(&pk, &w, out);
    msgpack_pack_array(&pk, 14);
    msgpack_pack_uint64(&pk, id);
    msgpack_pack_uint32(&pk, (uint32_t)status);
    pack_str(&pk, error);
    r->ok ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    msgpack_pack_bin_with_body(&pk, r->module ? (const char *)r->module : "",
                               r->module_len);
    pack_syms(&pk, r->defs, r->n_defs);
    pack_syms(&pk, r->uses, r->n_uses);
    msgpack_pack_array(&pk, r->n_diags);
    for (uint32_t i = 0; i < r->n_diags; i++) {
        msgpack_pack_array(&pk, 4);
        msgpack_pack_uint32(&pk, r->diags[i].line);
        msgpack_pack_uint32(&pk, r->diags[i].col);
        msgpack_pack_uint32(&pk, (uint32_t)r->diags[i].severity);
        pack_str(&pk, r->diags[i].message);
    }
    r->cached ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    msgpack_pack_uint64(&pk, r->compile_us);
    msgpack_pack_uint64(&pk, r->link_us);
    msgpack_pack_uint64(&pk, r->total_us);
    r->is_expr ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    pack_str(&pk, r->backend);
    return pack_end(&w, "result", why);
}

static int unpack_syms(const msgpack_object *o, cc_sym **out, uint32_t *n_out)
{
    if (!is_array(o, 0))
        return -1;
    uint32_t n = o->via.array.size;
    if (!n)
        return 0;
    cc_sym *s = calloc(n, sizeof *s);
    if (!s)
        return -1;
    *out = s;
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        if (!is_array(e, 5) || !is_array(&e->via.array.ptr[4], 0))
            return -1;
        *n_out = i + 1;
        s[i].name = dup_obj(&e->via.array.ptr[0]);
        s[i].sig = dup_obj(&e->via.array.ptr[1]);
        s[i].decl = dup_obj(&e->via.array.ptr[2]);
        s[i].line = (uint32_t)obj_u64(&e->via.array.ptr[3]);
        const msgpack_object *d = &e->via.array.ptr[4];
        if (d->via.array.size &&
            !(s[i].deps = calloc(d->via.array.size, sizeof *s[i].deps)))
            return -1;
        for (uint32_t k = 0; k < d->via.array.size; k++) {
            if (!(s[i].deps[k] = dup_obj(&d->via.array.ptr[k])))
                return -1;
            s[i].n_deps = k + 1;
        }
        if (!s[i].name || !s[i].sig || !s[i].decl)
            return -1;
    }
    return 0;
}

int cc_ipc_unpack_result(const uint8_t *p, size_t len, uint64_t *id,
                         pb_err *status, char *error, size_t error_len,
                         cc_result *r)
{
    memset(r, 0, sizeof *r);
    msgpack_object o;
    msgpack_zone *z;
    if (cc_ipc_unpack_raw(p, len, &o, &z))
        return -1;
    int rc = -1;
    if (!is_array(&o, 14))
        goto done;
    const msgpack_object *a = o.via.array.ptr;
    *id = obj_u64(&a[0]);
    *status = (pb_err)obj_u64(&a[1]);
    snprintf(error, error_len, "%.*s",
             a[2].type == MSGPACK_OBJECT_STR ? (int)a[2].via.str.size : 0,
             a[2].type == MSGPACK_OBJECT_STR ? a[2].via.str.ptr : "");
    r->ok = a[3].type == MSGPACK_OBJECT_BOOLEAN && a[3].via.boolean;
    if (a[4].type != MSGPACK_OBJECT_BIN)
        goto done;
    if (a[4].via.bin.size) {
        if (!(r->module = malloc(a[4].via.bin.size)))
            goto done;
        memcpy(r->module, a[4].via.bin.ptr, a[4].via.bin.size);
        r->module_len = a[4].via.bin.size;
    }
    if (unpack_syms(&a[5], &r->defs, &r->n_defs) ||
        unpack_syms(&a[6], &r->uses, &r->n_uses) || !is_array(&a[7], 0))
        goto done;
    uint32_t nd = a[7].via.array.size;
    if (nd && !(r->diags = calloc(nd, sizeof *r->diags)))
        goto done;
    for (uint32_t i = 0; i < nd; i++) {
        const msgpack_object *d = &a[7].via.array.ptr[i];
        if (!is_array(d, 4))
            goto done;
        r->n_diags = i + 1;
        r->diags[i].line = (uint32_t)obj_u64(&d->via.array.ptr[0]);
        r->diags[i].col = (uint32_t)obj_u64(&d->via.array.ptr[1]);
        r->diags[i].severity = (pb_severity)obj_u64(&d->via.array.ptr[2]);
        if (!(r->diags[i].message = dup_obj(&d->via.array.ptr[3])))
            goto done;
    }
    r->cached = a[8].type == MSGPACK_OBJECT_BOOLEAN && a[8].via.boolean;
    r->compile_us = obj_u64(&a[9]);
    r->link_us = obj_u64(&a[10]);
    r->total_us = obj_u64(&a[11]);
    r->is_expr = a[12].type == MSGPACK_OBJECT_BOOLEAN && a[12].via.boolean;
    /* a static name, as from cc_compile */
    static const char *const backends[] = {"warm", "process"};
    for (size_t i = 0; i < 2 && a[13].type == MSGPACK_OBJECT_STR; i++)
        if (a[13].via.str.size == strlen(backends[i]) &&
            !memcmp(a[13].via.str.ptr, backends[i], a[13].via.str.size))
            r->backend = backends[i];
    rc = 0;
done:
    msgpack_zone_free(z);
    if (rc)
        cc_result_free(r);
    return rc;
}

int cc_ipc_unpack_raw(const uint8_t *p, size_t len, msgpack_object *o,
                      msgpack_zone **z)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, (const char *)p, len, &off) !=
            MSGPACK_UNPACK_SUCCESS ||
        off != len) {
        msgpack_unpacked_destroy(&u);
        return -1;
    }
    *o = u.data;
    *z = msgpack_unpacked_release_zone(&u);
    msgpack_unpacked_destroy(&u);
    if (!*z)
        *z = msgpack_zone_new(256);
    return *z ? 0 : -1;
}
