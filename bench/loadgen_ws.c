/* loadgen_ws.c — the load generator's sockets: one epoll loop over
 * non-blocking connections and a minimal WebSocket client (RFC 6455: the
 * upgrade, masked client frames, unmasked unfragmented server frames, pings
 * answered). Written by hand because 10,000 connections with an lws
 * context each would cost more than the relay they measure. */
#define _GNU_SOURCE /* memmem, IP_BIND_ADDRESS_NO_PORT */
#include "loadgen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

uint64_t lg_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void lg_fail(lg *g, const char *fmt, ...)
{
    if (g->fail[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->fail, sizeof g->fail, fmt, ap);
    va_end(ap);
}

/* ---- sockets ------------------------------------------------------------- */

static void conn_close(lg *g, lg_conn *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    if (c->is_editor) { /* the counters are the runtimes' */
        c->state = LG_CLOSED;
        return;
    }
    if (c->state == LG_CONNECTING || c->state == LG_UPGRADING ||
        c->state == LG_JOINING)
        g->handshaking--;
    if (c->state == LG_READY)
        g->ready--;
    if (c->state != LG_CLOSED && c->state != LG_IDLE)
        g->closed++;
    c->state = LG_CLOSED;
}

static void conn_watch(lg *g, lg_conn *c, bool want_write)
{
    struct epoll_event ev = {.events = EPOLLIN | (want_write ? EPOLLOUT : 0),
                             .data.u32 = (uint32_t)(c - g->conns)};
    epoll_ctl(g->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static int conn_flush(lg *g, lg_conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn_watch(g, c, true);
            return 0;
        }
        if (n <= 0)
            return -1;
        c->out_off += (size_t)n;
    }
    c->out_len = c->out_off = 0;
    return 0;
}

static int conn_write(lg *g, lg_conn *c, const uint8_t *b, size_t len)
{
    if (c->out_len + len > SIZE_MAX / 2)
        return -1;
    uint8_t *o = realloc(c->out, c->out_len + len);
    if (!o)
        return -1;
    c->out = o;
    memcpy(c->out + c->out_len, b, len);
    c->out_len += len;
    return conn_flush(g, c);
}

/* Sends one masked binary WebSocket message (RFC 6455 § 5.3). */
int lg_ws_send(lg *g, lg_conn *c, int opcode, const uint8_t *p, size_t len)
{
    uint8_t *f = malloc(len + 14);
    if (!f)
        return -1;
    size_t h = 0;
    f[h++] = (uint8_t)(0x80 | opcode);
    if (len < 126) {
        f[h++] = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        f[h++] = 0x80 | 126;
        f[h++] = (uint8_t)(len >> 8);
        f[h++] = (uint8_t)len;
    } else {
        f[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            f[h++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    uint32_t r = (uint32_t)random();
    uint8_t mask[4] = {(uint8_t)r, (uint8_t)(r >> 8), (uint8_t)(r >> 16),
                       (uint8_t)(r >> 24)};
    memcpy(f + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < len; i++)
        f[h + i] = p[i] ^ mask[i & 3];
    int rc = conn_write(g, c, f, h + len);
    free(f);
    return rc;
}

int lg_send_frame(lg *g, lg_conn *c, const pb_frame *f)
{
    pb_buf b;
    pb_buf_init(&b);
    pb_errmsg why;
    int rc = pb_frame_encode(f, &b, &why)
                 ? -1
                 : lg_ws_send(g, c, LG_WS_OPCODE_BIN, b.data, b.len);
    pb_buf_free(&b);
    return rc;
}

/* The relay a connection uses: runtimes spread over --url's relays. */
static const struct sockaddr_in *conn_dst(const lg *g, const lg_conn *c)
{
    size_t i = (size_t)(c - g->conns);
    return &g->dst[c->is_editor ? g->n_dst : i % g->n_dst];
}

void lg_conn_open(lg *g, lg_conn *c, uint32_t i)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        lg_fail(g, "cannot open socket %u: %s (raise ulimit -n?)", i,
                strerror(errno));
        c->state = LG_CLOSED;
        g->closed++;
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (g->o.src_addrs > 1) {
        /* 127.0.0.1 .. 127.0.0.N: more source ports to loopback */
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f000001u + i % g->o.src_addrs);
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
                   sizeof one);
        if (bind(c->fd, (struct sockaddr *)&src, sizeof src) < 0)
            lg_fail(g, "cannot bind 127.0.0.%u: %s", 1 + i % g->o.src_addrs,
                    strerror(errno));
    }
    c->state = LG_CONNECTING;
    if (!c->is_editor) {
        g->handshaking++;
        g->opened++;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = i};
    epoll_ctl(g->ep, EPOLL_CTL_ADD, c->fd, &ev);
    const struct sockaddr_in *dst = conn_dst(g, c);
    if (connect(c->fd, (const struct sockaddr *)dst, sizeof *dst) < 0 &&
        errno != EINPROGRESS) {
        lg_fail(g, "cannot connect to %s:%d: %s", inet_ntoa(dst->sin_addr),
                ntohs(dst->sin_port), strerror(errno));
        conn_close(g, c);
    }
}

static int send_upgrade(lg *g, lg_conn *c)
{
    char room[3 * PB_MAX_NAME_BYTES + 1], req[1024];
    pbc_url_encode(g->o.target.room, room, sizeof room);
    int n = snprintf(req, sizeof req,
                     "GET %s%s HTTP/1.1\r\nHost: %s:%d\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: bG9hZGdlbi1wYXRjaGJheQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s\r\n",
                     g->o.raw || !room[0] ? "/" : "/r/", g->o.raw ? "" : room,
                     g->o.target.host, g->o.target.port,
                     g->o.raw ? "" : "Sec-WebSocket-Protocol: patchbay\r\n");
    c->state = LG_UPGRADING;
    return conn_write(g, c, (const uint8_t *)req, (size_t)n);
}

int lg_become_ready(lg *g, lg_conn *c)
{
    c->state = LG_READY;
    if (!c->is_editor) {
        g->handshaking--;
        g->ready++;
    }
    return 0;
}

static int parse_upgrade(lg *g, lg_conn *c)
{
    uint8_t *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!end)
        return c->in_len > 8192 ? -1 : 0;
    if (c->in_len < 12 || memcmp(c->in + 9, "101", 3)) {
        lg_fail(g, "client %u: the server refused the WebSocket upgrade: %.*s",
                (unsigned)(c - g->conns),
                (int)strcspn((char *)c->in, "\r\n") & 0xff, (char *)c->in);
        return -1;
    }
    size_t used = (size_t)(end + 4 - c->in);
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    return lg_on_upgraded(g, c) < 0 ? -1 : 1;
}

/* Parses whole WebSocket frames from c->in. The relay sends each frame as
 * one unfragmented message; a fragmented one is refused, not guessed. */
static int parse_frames(lg *g, lg_conn *c)
{
    size_t off = 0;
    while (c->in_len - off >= 2) {
        const uint8_t *h = c->in + off;
        int opcode = h[0] & 0x0f;
        bool fin = h[0] & 0x80, masked = h[1] & 0x80;
        uint64_t len = h[1] & 0x7f;
        size_t hl = 2;
        if (len == 126) {
            if (c->in_len - off < 4)
                break;
            len = (uint64_t)h[2] << 8 | h[3];
            hl = 4;
        } else if (len == 127) {
            if (c->in_len - off < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | h[2 + i];
            hl = 10;
        }
        if (masked || !fin || opcode == LG_WS_OPCODE_CONT || len > LG_MAX_MSG) {
            lg_fail(g,
                    "client %u: a WebSocket frame we do not take (opcode %d, "
                    "%llu bytes%s%s)",
                    (unsigned)(c - g->conns), opcode, (unsigned long long)len,
                    masked ? ", masked" : "", fin ? "" : ", fragmented");
            return -1;
        }
        if (c->in_len - off - hl < len)
            break;
        const uint8_t *p = h + hl;
        int rc = 0;
        if (opcode == LG_WS_OPCODE_BIN)
            rc = lg_on_frame(g, c, p, (size_t)len);
        else if (opcode == LG_WS_OPCODE_PING)
            rc = lg_ws_send(g, c, LG_WS_OPCODE_PONG, p, (size_t)len);
        else if (opcode == LG_WS_OPCODE_CLOSE)
            rc = -1;
        if (rc < 0)
            return -1;
        off += hl + (size_t)len;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    return 0;
}

static int on_readable(lg *g, lg_conn *c)
{
    for (;;) {
        if (c->in_cap - c->in_len < 4096) {
            size_t cap = c->in_cap ? c->in_cap * 2 : 8192;
            if (cap > 2 * LG_MAX_MSG)
                return -1;
            uint8_t *b = realloc(c->in, cap);
            if (!b)
                return -1;
            c->in = b;
            c->in_cap = cap;
        }
        ssize_t n = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0)
            return -1;
        c->in_len += (size_t)n;
        int rc = c->state == LG_UPGRADING ? parse_upgrade(g, c) : 1;
        if (rc < 0 || (rc > 0 && parse_frames(g, c) < 0))
            return -1;
    }
}

static void on_event(lg *g, uint32_t i, uint32_t events)
{
    lg_conn *c = &g->conns[i];
    if (c->state == LG_CLOSED)
        return;
    int rc = 0;
    if (c->state == LG_CONNECTING && (events & (EPOLLOUT | EPOLLERR))) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            const struct sockaddr_in *dst = conn_dst(g, c);
            lg_fail(g, "cannot connect to %s:%d: %s", inet_ntoa(dst->sin_addr),
                    ntohs(dst->sin_port), strerror(err));
            rc = -1;
        } else {
            conn_watch(g, c, false);
            rc = send_upgrade(g, c);
        }
    } else if (events & EPOLLOUT) {
        rc = conn_flush(g, c);
        if (rc == 0 && c->out_len == 0)
            conn_watch(g, c, false);
    }
    if (rc == 0 && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
        rc = on_readable(g, c);
    if (rc < 0)
        conn_close(g, c);
}

/* Services the sockets for up to timeout_ms, or until done(g) holds. */
void lg_serve(lg *g, uint32_t timeout_ms, bool (*done)(lg *))
{
    struct epoll_event evs[256];
    uint64_t until = lg_now_us() + (uint64_t)timeout_ms * 1000;
    while (!done(g) && !g->fail[0]) {
        uint64_t t = lg_now_us();
        if (t >= until)
            return;
        int wait = (int)((until - t + 999) / 1000);
        int n = epoll_wait(g->ep, evs, 256, wait > 50 ? 50 : wait);
        for (int k = 0; k < n; k++)
            on_event(g, evs[k].data.u32, evs[k].events);
    }
}
