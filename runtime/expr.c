/* expr.c — running an expression's patch (docs/PROTOCOL.md § Expressions,
 * docs/PATCH_ABI.md § Expressions). When such a patch commits, the session
 * hands its pb_expr to the host instead of making it a var
 * (rt_expr_commit); the host calls it between rt_session_expr_begin and
 * rt_session_expr_end, which acks its value and output.
 *
 * The value: the expression calls one pb_rt_value_* function (the
 * compiler's PB_VALUE picks it by type), which prints the value as Clojure
 * prints it into a buffer. Strings come from patch memory, so they are read
 * with a bound and invalid UTF-8 is escaped: the ack must stay a valid
 * frame whatever the patch points at.
 *
 * "A trap changes nothing": no var is rolled back (an expression defines
 * none), and every PB_STATE cell is copied before the expression runs and
 * put back if it traps. */
#include "internal.h"

#include <emscripten.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALUE_BYTES PB_MAX_MESSAGE_BYTES
#define OUT_BYTES   PB_MAX_LOG_BYTES
static const char cut_marker[] = "…";

typedef struct state_copy {
    void *cell;
    uint32_t size;
    struct state_copy *next;
    uint8_t bytes[];
} state_copy;

static struct {
    uint64_t seq; /* the expression waiting to run or running (0: none) */
    uint32_t fn;  /* its pb_expr (a table index) */
    bool is_quiet;
    bool needs_ack; /* quiet, but the end of a catch-up: ack anyway */
    rt_ack_info info;
    bool is_running;
    bool has_value;
    char value[VALUE_BYTES + 1];
    size_t value_len;
    bool is_cut;
    state_copy *states;
    char error[256]; /* why the runtime ended the expression itself */
} X;

static char answer[VALUE_BYTES + OUT_BYTES + 512];

/* ---- the value ----------------------------------------------------------- */

/* Ends the value with the cut marker (once). */
static void value_cut(void)
{
    if (X.is_cut)
        return;
    X.is_cut = true;
    memcpy(X.value + X.value_len, cut_marker, sizeof cut_marker);
    X.value_len += sizeof cut_marker - 1;
}

static void value_put(const char *s, size_t n)
{
    size_t room = VALUE_BYTES - (sizeof cut_marker - 1);
    if (X.is_cut)
        return;
    if (X.value_len + n > room) {
        n = room - X.value_len;
        while (n && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--; /* on a character boundary */
        memcpy(X.value + X.value_len, s, n);
        X.value_len += n;
        value_cut();
        return;
    }
    memcpy(X.value + X.value_len, s, n);
    X.value_len += n;
    X.value[X.value_len] = '\0';
}

/* Starts a value; false outside a running expression (a var that calls
 * pb_rt_value_* from pb_frame has nobody to report to). */
static bool value_begin(void)
{
    if (!X.is_running)
        return false;
    X.value_len = 0;
    X.value[0] = '\0';
    X.is_cut = false;
    X.has_value = true;
    return true;
}

void pb_rt_value_num(double v)
{
    if (!value_begin())
        return;
    char b[40];
    if (isnan(v))
        snprintf(b, sizeof b, "##NaN");
    else if (isinf(v))
        snprintf(b, sizeof b, v > 0 ? "##Inf" : "##-Inf");
    else
        snprintf(b, sizeof b, "%.15g", v); /* as println prints numbers */
    value_put(b, strlen(b));
}

void pb_rt_value_int(long long v)
{
    if (!value_begin())
        return;
    char b[32];
    snprintf(b, sizeof b, "%lld", v);
    value_put(b, strlen(b));
}

void pb_rt_value_uint(unsigned long long v)
{
    if (!value_begin())
        return;
    char b[32];
    snprintf(b, sizeof b, "%llu", v);
    value_put(b, strlen(b));
}

void pb_rt_value_bool(_Bool v)
{
    if (value_begin())
        value_put(v ? "true" : "false", v ? 4 : 5);
}

void pb_rt_value_nil(struct pb__nil *unused)
{
    (void)unused;
    if (value_begin())
        value_put("nil", 3);
}

/* The length of the UTF-8 sequence at s (at most n bytes), or 0 if it is
 * not one: no overlongs, no surrogates, nothing past U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len = c < 0x80                ? 1
                 : c >= 0xc2 && c < 0xe0 ? 2
                 : c >= 0xe0 && c < 0xf0 ? 3
                 : c >= 0xf0 && c < 0xf5 ? 4
                                         : 0;
    if (!len || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] >= 0xa0) ||
        (c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] >= 0x90))
        return 0;
    return len;
}

/* A string as Clojure's pr-str prints it: quoted, with escapes. At most
 * VALUE_BYTES are read from patch memory. */
void pb_rt_value_str(const char *s)
{
    if (!value_begin())
        return;
    if (!s) {
        value_put("nil", 3);
        return;
    }
    size_t n = 0; /* one byte more than fits, to know it was cut */
    while (n <= VALUE_BYTES && s[n])
        n++;
    value_put("\"", 1);
    for (size_t i = 0; i < n && i < VALUE_BYTES && !X.is_cut;) {
        unsigned char c = (unsigned char)s[i];
        char esc[12];
        size_t len = utf8_len((const unsigned char *)s + i, n - i);
        if (c == '"' || c == '\\')
            snprintf(esc, sizeof esc, "\\%c", c);
        else if (c == '\n' || c == '\t' || c == '\r')
            snprintf(esc, sizeof esc, "\\%c",
                     c == '\n'   ? 'n'
                     : c == '\t' ? 't'
                                 : 'r');
        else if (c < 0x20 || c == 0x7f)
            snprintf(esc, sizeof esc, "\\u%04x", c);
        else if (!len)
            snprintf(esc, sizeof esc, "\\x%02x", c); /* not UTF-8 */
        else
            esc[0] = '\0';
        if (esc[0]) {
            value_put(esc, strlen(esc));
            i++;
        } else {
            value_put(s + i, len);
            i += len;
        }
    }
    if (n > VALUE_BYTES)
        value_cut();
    value_put("\"", 1);
}

/* ---- state an expression uses without declaring it ---------------------- */

/* An expression ended by the runtime: the trap carries X.error instead of
 * "unreachable". Only inside a running expression. */
static void expr_fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));
static void expr_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(X.error, sizeof X.error, fmt, ap);
    va_end(ap);
    __builtin_trap();
}

void *pb_rt_state_ref(const char *name, uint32_t size)
{
    uint32_t have = 0;
    void *cell = name ? rt_state_find(name, &have) : NULL;
    if (!X.is_running)
        return cell && have == size ? cell : NULL;
    if (!cell)
        expr_fail("there is no state '%s' on this runtime: declare it with "
                  "(defonce %s 0) or PB_STATE first",
                  name ? name : "", name ? name : "");
    if (have != size)
        expr_fail("state '%s' is %u bytes here, the expression uses it as "
                  "%u",
                  name, have, size);
    return cell;
}

/* ---- the state snapshot -------------------------------------------------- */

static void copy_state(const char *name, uint32_t size, uint32_t align,
                       const void *data, void *ctx)
{
    (void)name;
    (void)align;
    bool *is_short = ctx;
    state_copy *c = malloc(sizeof *c + size);
    if (!c) {
        *is_short = true;
        return;
    }
    c->cell = (void *)data;
    c->size = size;
    memcpy(c->bytes, data, size);
    c->next = X.states;
    X.states = c;
}

static void drop_states(bool restore)
{
    while (X.states) {
        state_copy *c = X.states;
        X.states = c->next;
        if (restore)
            memcpy(c->cell, c->bytes, c->size);
        free(c);
    }
}

/* ---- the run ------------------------------------------------------------- */

uint32_t rt_expr_commit(uint64_t seq, rt_staged *staged, bool is_quiet,
                        bool needs_ack, const rt_ack_info *info)
{
    void *fn = rt_staged_fn(staged, "pb_expr");
    rt_staged_free(staged); /* an expression defines no var */
    if (!fn) {
        /* a signed expression whose module has no pb_expr: the relay's
         * compiler would not make one, so say so rather than run nothing */
        if (!is_quiet || needs_ack)
            rt_report_failed(seq, PB_ERR_PREPARE, NULL,
                             "seq %llu is an expression, but its module "
                             "defines no pb_expr",
                             (unsigned long long)seq);
        return 0;
    }
    X.seq = seq;
    X.fn = (uint32_t)(uintptr_t)fn;
    X.is_quiet = is_quiet;
    X.needs_ack = needs_ack;
    X.info = *info;
    return X.fn;
}

/* Called by the host right before it calls the committed expression's
 * pb_expr: copies the PB_STATE cells. Returns the table index to call, or
 * 0 if no expression is waiting (or it cannot run: a failed ack says so). */
EMSCRIPTEN_KEEPALIVE
uint32_t rt_session_expr_begin(void)
{
    if (!X.seq || X.is_running)
        return 0;
    bool is_short = false;
    rt_states_each(copy_state, &is_short);
    if (is_short) { /* it could not be undone: it does not run */
        drop_states(false);
        if (!X.is_quiet || X.needs_ack)
            rt_report_failed(X.seq, PB_ERR_NOMEM, NULL,
                             "seq %llu: no memory to copy the states before "
                             "the expression runs; it did not run",
                             (unsigned long long)X.seq);
        X.seq = 0;
        X.fn = 0;
        return 0;
    }
    X.is_running = true;
    X.error[0] = '\0';
    X.has_value = false;
    X.value_len = 0;
    X.value[0] = '\0';
    return X.fn;
}

/* Pushes out what the expression printed without a newline yet, so that
 * the host's print callbacks have all of it before rt_session_expr_end. */
EMSCRIPTEN_KEEPALIVE
void rt_session_flush_output(void)
{
    fflush(NULL);
}

/* Cuts text to what fits an ack's out field, on a character boundary. */
static size_t out_len(const char *out, bool *is_cut)
{
    size_t n = strlen(out);
    *is_cut = n > OUT_BYTES;
    if (!*is_cut)
        return n;
    n = OUT_BYTES - (sizeof cut_marker - 1);
    while (n && ((unsigned char)out[n] & 0xc0) == 0x80)
        n--;
    return n;
}

/* Called by the host after the call returned (ok) or trapped (var: the var
 * whose code trapped, message: the trap). out is what the expression
 * printed. Acks the value, or the trap (and logs it) after putting the
 * states back; now_us is the room time.
 * Returns JSON {"seq","ok","value","out"} or {"seq","ok","var","error",
 * "out"}. */
EMSCRIPTEN_KEEPALIVE
const char *rt_session_expr_end(int ok, const char *var, const char *message,
                                const char *out, double now_us)
{
    rt_json j;
    rt_json_init(&j, answer, sizeof answer);
    rt_json_open(&j, NULL, '{');
    if (!X.is_running) {
        rt_json_close(&j, '}');
        return rt_json_text(&j);
    }
    bool is_cut = false;
    size_t n = out_len(out ? out : "", &is_cut);
    char *text = malloc(n + sizeof cut_marker);
    if (text) {
        memcpy(text, out ? out : "", n);
        memcpy(text + n, is_cut ? cut_marker : "",
               is_cut ? sizeof cut_marker : 1);
    }
    const char *value = X.has_value ? X.value : "nil";
    if (!ok && X.error[0]) { /* the runtime ended it, not the code */
        var = "pb_expr";
        message = X.error;
    }
    drop_states(!ok);
    if (!X.is_quiet || X.needs_ack)
        rt_report_expr(X.seq, &X.info, ok ? value : NULL, var, message,
                       text ? text : "");
    if (!ok) {
        char line[PB_MAX_MESSAGE_BYTES / 2];
        snprintf(line, sizeof line,
                 "trap in '%s' while expression seq %llu ran: %s (nothing "
                 "changed)",
                 var ? var : "pb_expr", (unsigned long long)X.seq,
                 message ? message : "");
        rt_session_log(PB_LOG_TRAP, line, var ? var : "", (double)X.seq,
                       now_us);
    }
    rt_json_num(&j, "seq", (double)X.seq);
    rt_json_bool(&j, "ok", ok != 0);
    if (ok) {
        rt_json_str(&j, "value", value, strlen(value));
    } else {
        rt_json_str(&j, "var", var ? var : "", var ? strlen(var) : 0);
        rt_json_str(&j, "error", message ? message : "",
                    message ? strlen(message) : 0);
    }
    rt_json_str(&j, "out", text ? text : "", text ? strlen(text) : 0);
    rt_json_close(&j, '}');
    free(text);
    X.seq = 0;
    X.fn = 0;
    X.is_running = false;
    return rt_json_text(&j);
}

/* The host's watchdog restarted the runtime because the expression of seq
 * never returned: it is not run again (if it is waiting to run, it is
 * dropped) and a failed ack says why. */
EMSCRIPTEN_KEEPALIVE
void rt_session_expr_stopped(double seq, const char *message)
{
    if (X.seq == (uint64_t)seq && !X.is_running) {
        X.seq = 0;
        X.fn = 0;
    }
    rt_report_failed((uint64_t)seq, PB_ERR_TRAP, "pb_expr", "%s", message);
}
