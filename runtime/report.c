/* report.c — what the runtime tells others: the outbox of encoded frames
 * the host drains and sends to the relay (acks, logs, test results, hello,
 * ping), the JSON answers the session gives the host, and the log budget.
 *
 * Frames are encoded here, in C, with the protocol library, so that the
 * runtime speaks exactly the format the relay checks; the host never
 * builds a frame itself. Log output from patches is rate limited with a
 * token bucket on the room clock (so a test can drive it) and cut at a
 * byte limit with a visible marker: a patch printing in every frame must
 * not flood the relay or the editors. */
#include "internal.h"

#include <emscripten.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- JSON ---------------------------------------------------------------- */

void rt_json_init(rt_json *j, char *buf, size_t cap)
{
    j->buf = buf;
    j->cap = cap;
    j->len = 0;
    j->needs_comma = false;
    j->is_cut = false;
    buf[0] = '\0';
}

static void put(rt_json *j, const char *s, size_t n)
{
    if (j->is_cut || j->len + n + 1 > j->cap) {
        j->is_cut = true;
        return;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

void rt_json_raw(rt_json *j, const char *s)
{
    put(j, s, strlen(s));
}

static void put_string(rt_json *j, const char *s, size_t len)
{
    put(j, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(j, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(j, esc, 6);
        } else {
            put(j, (const char *)&c, 1);
        }
    }
    put(j, "\"", 1);
}

/* Starts a value: the comma before it and, inside an object, its key. */
void rt_json_key(rt_json *j, const char *key)
{
    if (j->needs_comma)
        put(j, ",", 1);
    if (key) {
        put_string(j, key, strlen(key));
        put(j, ":", 1);
    }
    j->needs_comma = false;
}

void rt_json_str(rt_json *j, const char *key, const char *s, size_t len)
{
    rt_json_key(j, key);
    put_string(j, s, len);
    j->needs_comma = true;
}

void rt_json_num(rt_json *j, const char *key, double v)
{
    char n[40];
    rt_json_key(j, key);
    /* integers up to 2^53 print exactly; times in µs stay below that */
    snprintf(n, sizeof n, "%.17g", v);
    put(j, n, strlen(n));
    j->needs_comma = true;
}

void rt_json_bool(rt_json *j, const char *key, bool v)
{
    rt_json_key(j, key);
    rt_json_raw(j, v ? "true" : "false");
    j->needs_comma = true;
}

void rt_json_open(rt_json *j, const char *key, char bracket)
{
    rt_json_key(j, key);
    put(j, &bracket, 1);
    j->needs_comma = false;
}

void rt_json_close(rt_json *j, char bracket)
{
    put(j, &bracket, 1);
    j->needs_comma = true;
}

const char *rt_json_text(rt_json *j)
{
    return j->is_cut ? "null" : j->buf;
}

/* ---- the outbox ---------------------------------------------------------- */

#define OUTBOX_MAX_FRAMES 4096u /* the host drains after every call */

typedef struct out_frame {
    struct out_frame *next;
    uint32_t len;
    uint8_t data[];
} out_frame;

static out_frame *out_first, *out_last;
static uint32_t out_count, out_dropped;

bool rt_out_frame(const pb_frame *f)
{
    pb_buf b;
    pb_errmsg why = {{0}};
    pb_buf_init(&b);
    out_frame *o = NULL;
    if (out_count >= OUTBOX_MAX_FRAMES || pb_frame_encode(f, &b, &why) ||
        !(o = malloc(sizeof *o + b.len))) {
        out_dropped++;
        pb_buf_free(&b);
        return false;
    }
    o->next = NULL;
    o->len = (uint32_t)b.len;
    memcpy(o->data, b.data, b.len);
    pb_buf_free(&b);
    if (out_last)
        out_last->next = o;
    else
        out_first = o;
    out_last = o;
    out_count++;
    return true;
}

EMSCRIPTEN_KEEPALIVE
uint32_t rt_session_out_len(void)
{
    return out_first ? out_first->len : 0;
}

EMSCRIPTEN_KEEPALIVE
const uint8_t *rt_session_out_data(void)
{
    return out_first ? out_first->data : NULL;
}

EMSCRIPTEN_KEEPALIVE
void rt_session_out_pop(void)
{
    out_frame *o = out_first;
    if (!o)
        return;
    out_first = o->next;
    if (!out_first)
        out_last = NULL;
    out_count--;
    free(o);
}

EMSCRIPTEN_KEEPALIVE
uint32_t rt_session_out_dropped(void)
{
    return out_dropped;
}

/* ---- acks ---------------------------------------------------------------- */

static uint32_t n_modules;

extern uint32_t rt_js_table_size(void); /* library.js */

void rt_report_set_modules(uint32_t n)
{
    n_modules = n;
}

static uint64_t stale_since_us; /* rt_session_set_stale */

/* The host says since when its freshest signed head is too old (0: it is
 * fresh); every ack says so (docs/PROTOCOL.md § The signed head). */
EMSCRIPTEN_KEEPALIVE
void rt_session_set_stale(double since_us)
{
    stale_since_us = since_us > 0 ? (uint64_t)since_us : 0;
}

static void fill_figures(pb_ack *a)
{
#ifdef __wasm__
    a->mem_bytes = (uint64_t)__builtin_wasm_memory_size(0) * 65536u;
#else /* a native build of the session (tests/runtime/native/) */
    a->mem_bytes = 0;
#endif
    a->table_size = rt_js_table_size();
    a->modules = n_modules;
    a->stale_since_us = stale_since_us;
}

void rt_report_ack(uint64_t seq, pb_ack_state state, const rt_ack_info *info)
{
    pb_frame f = {.type = PB_T_ACK};
    f.ack.seq = seq;
    f.ack.state = state;
    if (info) {
        f.ack.verify_us = info->verify_us;
        f.ack.prepare_us = info->prepare_us;
        f.ack.commit_at_us = info->commit_at_us;
        f.ack.late_us = info->late_us;
    }
    fill_figures(&f.ack);
    rt_out_frame(&f);
}

void rt_report_failed(uint64_t seq, pb_err code, const char *var,
                      const char *fmt, ...)
{
    char msg[PB_MAX_MESSAGE_BYTES / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pb_frame f = {.type = PB_T_ACK};
    f.ack.seq = seq;
    f.ack.state = PB_ACK_FAILED;
    f.ack.code = (uint32_t)code;
    f.ack.error = pb_cstr(msg);
    f.ack.var = pb_cstr(var && strlen(var) <= PB_MAX_NAME_BYTES ? var : NULL);
    fill_figures(&f.ack);
    rt_out_frame(&f);
}

void rt_report_expr(uint64_t seq, const rt_ack_info *info, const char *value,
                    const char *var, const char *message, const char *out)
{
    char msg[PB_MAX_MESSAGE_BYTES / 2];
    pb_frame f = {.type = PB_T_ACK};
    f.ack.seq = seq;
    f.ack.commit_at_us = info->commit_at_us;
    f.ack.late_us = info->late_us;
    f.ack.out = pb_cstr(out && *out ? out : NULL);
    if (value) {
        f.ack.state = PB_ACK_COMMITTED;
        f.ack.value = pb_cstr(value);
    } else {
        snprintf(msg, sizeof msg,
                 "trap in '%s': %s (the expression changed "
                 "nothing)",
                 var && *var ? var : "pb_expr", message ? message : "");
        f.ack.state = PB_ACK_FAILED;
        f.ack.code = PB_ERR_TRAP;
        f.ack.error = pb_cstr(msg);
        f.ack.var = pb_cstr(
            var && *var && strlen(var) <= PB_MAX_NAME_BYTES ? var : NULL);
    }
    fill_figures(&f.ack);
    rt_out_frame(&f);
}

/* ---- logs ---------------------------------------------------------------- */

#define LOG_LINES_PER_SECOND 20u
#define LOG_BURST            40u
static const char truncated_marker[] = " [truncated by the runtime]";

static struct {
    uint32_t per_second; /* 0: LOG_LINES_PER_SECOND */
    uint32_t burst;      /* 0: LOG_BURST */
    uint32_t max_bytes;  /* 0: PB_MAX_LOG_BYTES */
    double tokens;
    uint64_t last_us;
    bool has_started;
    uint32_t dropped;
} logs;

EMSCRIPTEN_KEEPALIVE
void rt_session_set_log_limits(uint32_t per_second, uint32_t burst,
                               uint32_t max_bytes)
{
    logs.per_second = per_second ? per_second : LOG_LINES_PER_SECOND;
    logs.burst = burst ? burst : LOG_BURST;
    logs.max_bytes = max_bytes && max_bytes <= PB_MAX_LOG_BYTES
                         ? max_bytes
                         : PB_MAX_LOG_BYTES;
    if (logs.max_bytes < sizeof truncated_marker + 8)
        logs.max_bytes = sizeof truncated_marker + 8;
    logs.tokens = logs.burst;
}

static void refill(uint64_t now_us)
{
    if (!logs.per_second)
        rt_session_set_log_limits(0, 0, 0);
    if (!logs.has_started || now_us < logs.last_us) {
        logs.has_started = true;
        logs.last_us = now_us;
        return;
    }
    logs.tokens += (double)(now_us - logs.last_us) * logs.per_second / 1e6;
    if (logs.tokens > logs.burst)
        logs.tokens = logs.burst;
    logs.last_us = now_us;
}

static void send_log(pb_log_level level, const char *text, size_t len,
                     bool is_truncated, const char *var, uint64_t seq,
                     uint64_t now_us)
{
    pb_frame f = {.type = PB_T_LOG};
    f.log.level = level;
    f.log.text = (pb_str){text, (uint32_t)len};
    f.log.var =
        pb_cstr(var && *var && strlen(var) <= PB_MAX_NAME_BYTES ? var : NULL);
    f.log.seq = seq;
    f.log.truncated = is_truncated;
    f.log.time_us = now_us;
    rt_out_frame(&f);
}

static void send_dropped_marker(uint64_t now_us)
{
    char msg[160];
    int n = snprintf(msg, sizeof msg,
                     "[%u log lines dropped: more than %u lines per second]",
                     logs.dropped, logs.per_second);
    send_log(PB_LOG_WARN, msg, (size_t)n, false, NULL, 0, now_us);
    logs.dropped = 0;
}

void rt_report_log_tick(uint64_t now_us)
{
    refill(now_us);
    if (logs.dropped && logs.tokens >= 1.0) {
        logs.tokens -= 1.0;
        send_dropped_marker(now_us);
    }
}

/* Cuts len so that text[0..len) ends on a UTF-8 character boundary. */
static size_t utf8_cut(const char *text, size_t len)
{
    while (len && ((unsigned char)text[len] & 0xc0) == 0x80)
        len--;
    return len;
}

/* Forwards one line of patch output (level: 1 info, 2 warn, 3 error, 4
 * trap; var and seq say whose code printed it). Returns 1 if sent, 0 if
 * dropped by the rate limit. */
EMSCRIPTEN_KEEPALIVE
int rt_session_log(int level, const char *text, const char *var, double seq,
                   double now_us)
{
    if (level < PB_LOG_INFO || level > PB_LOG_TRAP)
        level = PB_LOG_INFO;
    rt_report_log_tick((uint64_t)now_us);
    if (logs.tokens < 1.0) {
        logs.dropped++;
        return 0;
    }
    logs.tokens -= 1.0;
    size_t len = strlen(text);
    bool is_cut = len > logs.max_bytes;
    if (!is_cut) {
        send_log((pb_log_level)level, text, len, false, var, (uint64_t)seq,
                 (uint64_t)now_us);
        return 1;
    }
    size_t keep =
        utf8_cut(text, logs.max_bytes - (sizeof truncated_marker - 1));
    char *cut = malloc(keep + sizeof truncated_marker);
    if (!cut)
        return 0;
    memcpy(cut, text, keep);
    memcpy(cut + keep, truncated_marker, sizeof truncated_marker);
    send_log((pb_log_level)level, cut, keep + sizeof truncated_marker - 1, true,
             var, (uint64_t)seq, (uint64_t)now_us);
    free(cut);
    return 1;
}

/* ---- test results -------------------------------------------------------- */

#define TEST_MESSAGE_BYTES 512u

typedef struct test_case {
    char name[PB_MAX_NAME_BYTES + 1];
    char message[TEST_MESSAGE_BYTES];
    pb_test_status status;
    uint64_t us;
    char file[PB_MAX_PATH_BYTES / 2];
    uint32_t line;
    char var[PB_MAX_NAME_BYTES + 1];
    uint64_t var_seq;
} test_case;

static struct {
    uint64_t req;
    test_case *cases;
    uint32_t n;
} tests;

/* Starts collecting the results for test_req req. */
EMSCRIPTEN_KEEPALIVE
int rt_session_test_begin(double req)
{
    free(tests.cases);
    tests.cases = calloc(PB_MAX_TESTS, sizeof *tests.cases);
    tests.n = 0;
    tests.req = (uint64_t)req;
    return tests.cases ? PB_OK : PB_ERR_NOMEM;
}

/* Adds one result; name without the pb_test__ prefix; status a
 * pb_test_status (docs/PROTOCOL.md § Device testing says which of file,
 * line, var and var_seq go with which). Results past PB_MAX_TESTS are
 * dropped (returns PB_ERR_FIELD_RANGE). */
EMSCRIPTEN_KEEPALIVE
int rt_session_test_case(const char *name, int status, const char *message,
                         double us, const char *file, int line, const char *var,
                         double var_seq)
{
    if (!tests.cases || tests.n >= PB_MAX_TESTS)
        return PB_ERR_FIELD_RANGE;
    if (status < PB_TEST_PASS || status > PB_TEST_TIMEOUT)
        return PB_ERR_FIELD_RANGE;
    test_case *c = &tests.cases[tests.n++];
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->message, sizeof c->message, "%s", message ? message : "");
    c->status = (pb_test_status)status;
    c->us = (uint64_t)us;
    snprintf(c->file, sizeof c->file, "%s", file ? file : "");
    c->line = line > 0 ? (uint32_t)line : 0;
    snprintf(c->var, sizeof c->var, "%s", var ? var : "");
    c->var_seq = var_seq > 0 ? (uint64_t)var_seq : 0;
    return PB_OK;
}

/* Queues the test_result frame; seq is the committed head the tests ran
 * against. */
EMSCRIPTEN_KEEPALIVE
int rt_session_test_end(double seq)
{
    pb_test_case *items = calloc(tests.n ? tests.n : 1, sizeof *items);
    if (!items)
        return PB_ERR_NOMEM;
    for (uint32_t i = 0; i < tests.n; i++) {
        const test_case *c = &tests.cases[i];
        items[i].name = pb_cstr(c->name);
        items[i].ok = c->status == PB_TEST_PASS;
        items[i].status = c->status;
        items[i].message = pb_cstr(c->message[0] ? c->message : NULL);
        items[i].us = c->us;
        items[i].file = pb_cstr(c->file[0] ? c->file : NULL);
        items[i].line = c->line;
        items[i].var = pb_cstr(c->var[0] ? c->var : NULL);
        items[i].var_seq = c->var_seq;
    }
    pb_frame f = {.type = PB_T_TEST_RESULT};
    f.test_result.req = tests.req;
    f.test_result.seq = (uint64_t)seq;
    f.test_result.results = items;
    f.test_result.n_results = tests.n;
    bool is_sent = rt_out_frame(&f);
    free(items);
    free(tests.cases);
    tests.cases = NULL;
    tests.n = 0;
    return is_sent ? PB_OK : PB_ERR_INTERNAL;
}
