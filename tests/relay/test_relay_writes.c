/* test_relay_writes.c — how the relay writes (docs/ARCHITECTURE.md
 * § relay/, How the relay writes): a frame goes onto the socket at once
 * when nothing of its session waits, else it waits its turn, and lws
 * keeps what a socket did not take. These tests read the relay's bytes
 * themselves, with a plain socket whose receive buffer is tiny, so that
 * most writes are cut short by the kernel: every WebSocket frame must
 * still arrive whole, in order, never interleaved with another, between
 * the pongs lws sends for the client's pings.
 *
 * usage: test_relay_writes PATCHBAY BACKEND [TEST...] */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

PB_TEST_RUNNER

/* ---- a plain WebSocket client (RFC 6455), one blocking socket ------------ */

typedef struct raw {
    int fd;
    uint8_t *in; /* bytes read and not yet parsed */
    size_t len, cap;
} raw;

static bool write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        b += k;
        n -= (size_t)k;
    }
    return true;
}

/* A client frame: FIN, the opcode, masked (with a fixed mask: the relay
 * must unmask whatever it is). */
static bool raw_send(raw *c, int opcode, const uint8_t *p, size_t n)
{
    uint8_t h[14] = {(uint8_t)(0x80 | opcode)}, mask[4] = {1, 2, 3, 4};
    size_t hl = 2;
    if (n < 126) {
        h[1] = (uint8_t)(0x80 | n);
    } else if (n < 65536) {
        h[1] = 0x80 | 126;
        h[2] = (uint8_t)(n >> 8);
        h[3] = (uint8_t)n;
        hl = 4;
    } else {
        h[1] = 0x80 | 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
        hl = 10;
    }
    memcpy(h + hl, mask, 4);
    hl += 4;
    uint8_t *m = malloc(n ? n : 1);
    if (!m)
        return false;
    for (size_t i = 0; i < n; i++)
        m[i] = p[i] ^ mask[i & 3];
    bool ok = write_all(c->fd, h, hl) && write_all(c->fd, m, n);
    free(m);
    return ok;
}

static bool raw_send_frame(raw *c, const pb_frame *f)
{
    pb_buf b;
    pb_buf_init(&b);
    pb_errmsg why;
    bool ok =
        pb_frame_encode(f, &b, &why) == PB_OK && raw_send(c, 2, b.data, b.len);
    pb_buf_free(&b);
    return ok;
}

/* Connects with a receive buffer of rcvbuf bytes (set before connect, so
 * that the window is small from the start) and upgrades to a patchbay
 * WebSocket. */
static bool raw_open(raw *c, int port, int rcvbuf)
{
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        return false;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0)
        return false;
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Protocol: patchbay\r\n\r\n",
                     port);
    if (!write_all(c->fd, req, (size_t)n))
        return false;
    char resp[2048];
    size_t got = 0;
    while (got < sizeof resp - 1) { /* the response, a byte at a time */
        if (recv(c->fd, resp + got, 1, 0) != 1)
            return false;
        got++;
        resp[got] = '\0';
        if (got >= 4 && !memcmp(resp + got - 4, "\r\n\r\n", 4))
            return strstr(resp, " 101 ") != NULL;
    }
    return false;
}

static void raw_close(raw *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->in);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

/* What the relay sent, frame by frame. */
typedef struct seen {
    uint32_t frames, bad; /* WebSocket frames; ones not whole or not ours */
    char first_bad[200];
    patch_log log;      /* the catch-up and live patches, verified */
    uint64_t live_last; /* the last live patch's seq */
    uint32_t live_out_of_order;
    /* the answer to one history_req: its items' seqs must run 1.. */
    uint64_t hist_req, hist_next;
    bool hist_done, hist_refused;
    /* lws's pongs to our pings "p0".."p7": lws answers the latest ping
     * it holds (RFC 6455 § 5.5.3), so some may be skipped, never
     * reordered */
    int ws_pong_last;
    uint32_t ws_pongs_wrong;
    uint32_t pongs, pongs_wrong; /* the relay's pongs (frames) */
    uint64_t fatal;              /* a fatal error's code */
    bool closed;
} seen;

static void bad(seen *s, const char *fmt, unsigned long long x)
{
    if (!s->bad++)
        snprintf(s->first_bad, sizeof s->first_bad, fmt, x);
}

static uint64_t stmt_seq(const pb_patch *p)
{
    pb_statement st;
    pb_errmsg why;
    if (pb_statement_decode(p->stmt.ptr, p->stmt.len, &st, &why))
        return 0;
    uint64_t seq = st.seq;
    pb_statement_free(&st);
    return seq;
}

static void on_message(seen *s, const uint8_t *p, size_t n)
{
    pb_frame f;
    pb_errmsg why;
    if (pb_frame_decode(p, n, &f, &why)) {
        bad(s, "a binary message of %llu bytes that does not decode",
            (unsigned long long)n);
        return;
    }
    if (f.type == PB_T_PATCH) {
        uint64_t seq = stmt_seq(&f.patch);
        if (seq <= s->live_last)
            s->live_out_of_order++;
        s->live_last = seq;
        collect(&s->log, &f);
    } else if (f.type == PB_T_HISTORY && f.history.req == 0) {
        collect(&s->log, &f);
    } else if (f.type == PB_T_HISTORY && f.history.req == s->hist_req) {
        for (uint32_t i = 0; i < f.history.n_items; i++)
            if (stmt_seq(&f.history.items[i]) != s->hist_next++)
                bad(s, "history item out of order (want seq %llu)",
                    (unsigned long long)s->hist_next - 1);
        s->hist_done = !f.history.more;
    } else if (f.type == PB_T_ERROR && f.error.req == s->hist_req &&
               !f.error.fatal) {
        s->hist_refused = true; /* (a catch-up still being sent) */
    } else if (f.type == PB_T_PONG) {
        s->pongs_wrong += f.pong.t0_us != 1000 + s->pongs;
        s->pongs++;
    } else if (f.type == PB_T_HEAD) {
        collect(&s->log, &f);
    } else if (f.type == PB_T_ERROR && f.error.fatal) {
        s->fatal = f.error.code;
    } else if (f.type == PB_T_ERROR) {
        bad(s, "an error frame (code %llu)", (unsigned long long)f.error.code);
    }
    pb_frame_free(&f);
}

/* Parses every whole WebSocket frame in c->in. */
static void parse(raw *c, seen *s)
{
    size_t at = 0;
    for (;;) {
        const uint8_t *h = c->in + at;
        size_t avail = c->len - at, hl = 2;
        if (avail < 2)
            break;
        uint64_t n = h[1] & 0x7f;
        if (n == 126)
            hl = 4;
        else if (n == 127)
            hl = 10;
        if (avail < hl)
            break;
        if (n == 126)
            n = (uint64_t)h[2] << 8 | h[3];
        else if (n == 127) {
            n = 0;
            for (int i = 0; i < 8; i++)
                n = n << 8 | h[2 + i];
        }
        if (avail - hl < n)
            break;
        int op = h[0] & 0x0f;
        s->frames++;
        if (!(h[0] & 0x80) || (h[1] & 0x80) || (h[0] & 0x70))
            bad(s,
                "a frame cut in fragments, masked or with RSV bits "
                "(byte 0x%02llx)",
                (unsigned long long)h[0]);
        else if (op == 2)
            on_message(s, h + hl, (size_t)n);
        else if (op == 0xA) {
            int k = n == 2 && h[hl] == 'p' ? h[hl + 1] - '0' : -1;
            s->ws_pongs_wrong += k <= s->ws_pong_last;
            s->ws_pong_last = k;
        } else if (op == 8)
            s->closed = true;
        else
            bad(s, "a frame of opcode %llu", (unsigned long long)op);
        at += hl + (size_t)n;
    }
    memmove(c->in, c->in + at, c->len - at);
    c->len -= at;
}

/* Reads slowly, chunk bytes at a time with a pause every 16 reads, until
 * done(s) or ms pass. */
static bool read_slowly(raw *c, seen *s, size_t chunk, uint32_t ms,
                        bool (*done)(const seen *))
{
    uint64_t until = now_ms() + ms;
    for (unsigned reads = 0; !done(s) && !s->closed && now_ms() < until;) {
        if (c->cap - c->len < chunk) {
            size_t cap = c->cap ? c->cap * 2 : 65536;
            uint8_t *p = realloc(c->in, cap);
            if (!p)
                return false;
            c->in = p;
            c->cap = cap;
        }
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t k = recv(c->fd, c->in + c->len, chunk, 0);
        if (k <= 0)
            break;
        c->len += (size_t)k;
        parse(c, s);
        if (++reads % 16 == 0)
            sleep_ms(1);
    }
    return done(s);
}

/* ---- the tests ---------------------------------------------------------- */

enum { BIG_PATCHES = 8, LIVE_PATCHES = 3, WS_PINGS = 8, APP_PINGS = 3 };

/* n patches of about kb KB of source each, seq from_req.., vars
 * a<from_req>.. (the room's seq follows its evals' reqs) */
static void big_patches(pbc *ed, unsigned n, unsigned from_req, size_t kb)
{
    size_t pad = kb * 1024;
    char *src = malloc(pad + 256);
    REQUIRE(src);
    for (unsigned i = 0; i < n; i++) {
        var_source(src, 256, from_req + i, i);
        size_t l = strlen(src);
        memset(src + l, ' ', pad);
        snprintf(src + l + pad, 64, "/* %u */\n", from_req + i);
        CHECK_EQ_INT(eval(ed, from_req + i, src, NULL), from_req + i);
    }
    free(src);
}

static uint64_t want_live; /* the live patch burst_done waits for */
static bool burst_done(const seen *s)
{
    return s->log.caught_up && (s->hist_done || s->hist_refused) &&
           s->live_last == want_live && s->ws_pong_last == WS_PINGS - 1 &&
           s->pongs == APP_PINGS;
}

/* A runtime with a 4 KiB receive buffer joins a room of 8 patches of
 * ~40 KB and, before reading a byte, asks for the whole history again,
 * sends WebSocket pings and patchbay pings between, while 3 more patches
 * are broadcast: ~750 KB owed to a socket that takes a few KB at a time.
 * Then it reads slowly: every frame whole and in order (catch-up, the
 * answer, the live patches, verified and chained), every pong. */
TEST(a_slow_reader_gets_every_frame_whole_and_in_order)
{
    relay r;
    REQUIRE(serve_start(&r, "slowread", NULL));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    REQUIRE(ed);
    big_patches(ed, BIG_PATCHES, 1, 40);
    raw c;
    REQUIRE(raw_open(&c, r.port, 4096));
    seen s;
    memset(&s, 0, sizeof s);
    patch_log_init(&s.log, &r, "jam");
    s.hist_req = 7;
    s.hist_next = 1;
    s.ws_pong_last = -1;
    want_live = BIG_PATCHES + LIVE_PATCHES;
    char tok[PB_MAX_TOKEN_BYTES + 1];
    make_token(&r, "jam", PB_ROLE_RUNTIME, "slow", 3600, tok);
    pb_frame hello = {.type = PB_T_HELLO};
    hello.hello.token = pb_cstr(tok);
    hello.hello.client = pb_cstr("test_relay_writes");
    CHECK(raw_send_frame(&c, &hello));
    pb_frame q = {.type = PB_T_HISTORY_REQ};
    q.history_req.req = s.hist_req;
    q.history_req.mode = PB_HISTORY_RANGE;
    for (unsigned i = 0; i < WS_PINGS; i++) {
        uint8_t ping[2] = {'p', (uint8_t)('0' + i)};
        CHECK(raw_send(&c, 9, ping, 2));
        if (i == 1)
            CHECK(raw_send_frame(&c, &q));
        if (i < APP_PINGS) {
            pb_frame p = {.type = PB_T_PING};
            p.ping.t0_us = 1000 + i;
            CHECK(raw_send_frame(&c, &p));
        }
        sleep_ms(20);
    }
    char src[256];
    for (unsigned i = 0; i < LIVE_PATCHES; i++) {
        var_source(src, sizeof src, 20 + i, i);
        CHECK_EQ_INT(eval(ed, 100 + i, src, NULL), BIG_PATCHES + 1 + i);
    }
    sleep_ms(300);
    CHECK(read_slowly(&c, &s, 1024, 60000, burst_done));
    if (s.bad)
        fprintf(stderr, "  %u bad frames of %u; the first: %s\n", s.bad,
                s.frames, s.first_bad);
    if (s.log.errors)
        fprintf(stderr, "  %s\n", s.log.first_error);
    CHECK_EQ_INT(s.bad, 0);
    CHECK_EQ_INT(s.log.errors, 0);
    CHECK(!s.closed);
    CHECK(s.log.caught_up);
    CHECK(s.hist_done); /* (the catch-up fits in the queue: not refused) */
    CHECK_EQ_INT(s.hist_next, BIG_PATCHES + 1);
    CHECK_EQ_INT(s.live_last, BIG_PATCHES + LIVE_PATCHES);
    CHECK_EQ_INT(s.live_out_of_order, 0);
    CHECK_EQ_INT(s.log.last_seq, BIG_PATCHES + LIVE_PATCHES);
    CHECK_EQ_INT(s.ws_pong_last, WS_PINGS - 1);
    CHECK_EQ_INT(s.ws_pongs_wrong, 0);
    CHECK_EQ_INT(s.pongs, APP_PINGS);
    CHECK_EQ_INT(s.pongs_wrong, 0);
    /* and it is still served: one more patch, live */
    var_source(src, sizeof src, 30, 1);
    uint64_t seq = eval(ed, 200, src, NULL);
    CHECK_EQ_INT(seq, BIG_PATCHES + LIVE_PATCHES + 1);
    want_live = seq;
    CHECK(read_slowly(&c, &s, 1024, 10000, burst_done));
    CHECK_EQ_INT(s.live_last, seq);
    CHECK_EQ_INT(s.bad, 0);
    raw_close(&c);
    pbc_close(ed);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

static bool never(const seen *s)
{
    (void)s;
    return false;
}

/* A runtime with a 4 KiB receive buffer that stops reading, in a room
 * whose queue bound is 256 KiB: the relay writes what its socket takes,
 * queues the rest, and when the queue passes the bound drops it (the log
 * says so) while the room goes on for everyone else; what the viewer then
 * reads is whole frames, the fatal error, the close. */
TEST(a_reader_that_stops_is_still_cut_off)
{
    const char *const opts[] = {"--max-queue-bytes",
                                "262144",
                                "--max-evals-per-name",
                                "1000",
                                "--evals-per-second",
                                "1000",
                                "--room-evals-per-second",
                                "1000",
                                NULL};
    relay r;
    REQUIRE(serve_start(&r, "stopped", opts));
    pbc *ed = join(&r, "jam", PB_ROLE_EDITOR, "ed", NULL);
    pbc *rt = join(&r, "jam", PB_ROLE_RUNTIME, "rt", NULL);
    REQUIRE(ed && rt);
    raw c;
    REQUIRE(raw_open(&c, r.port, 4096));
    char tok[PB_MAX_TOKEN_BYTES + 1];
    make_token(&r, "jam", PB_ROLE_RUNTIME, "stopped", 3600, tok);
    pb_frame hello = {.type = PB_T_HELLO};
    hello.hello.token = pb_cstr(tok);
    CHECK(raw_send_frame(&c, &hello));
    /* patches of ~200 KB to a socket that takes a few KB, until the relay
     * gives up on it (the kernel's buffers hold some, up to a few MB on
     * loopback: how much varies) */
    unsigned n = 0;
    while (n < 40 && !log_has(&r, "slow consumer"))
        big_patches(ed, 1, ++n, 200);
    CHECK(log_has(&r, "slow consumer"));
    patch_log l;
    patch_log_init(&l, &r, "jam");
    CHECK(collect_until(rt, &l, n, 10000)); /* the others are served */
    CHECK_EQ_INT(l.errors, 0);
    /* what it reads now ends with the error and the close */
    seen s;
    memset(&s, 0, sizeof s);
    patch_log_init(&s.log, &r, "jam");
    read_slowly(&c, &s, 65536, 10000, never);
    CHECK_EQ_INT(s.bad, 0); /* whole frames, then the error, the close */
    CHECK_EQ_INT(s.fatal, PB_ERR_SLOW_CONSUMER);
    CHECK(s.closed);
    CHECK(ping_ok(ed));
    raw_close(&c);
    pbc_close(ed);
    pbc_close(rt);
    CHECK_EQ_INT(serve_stop(&r), 0);
}

static const pb_test tests[] = {
    T(a_slow_reader_gets_every_frame_whole_and_in_order),
    T(a_reader_that_stops_is_still_cut_off),
};

int main(int argc, char **argv)
{
    return harness_main(tests, sizeof tests / sizeof tests[0], argc, argv);
}
