/* reference.c — writes and checks the protocol's reference material from
 * the code itself, so that it cannot drift:
 *
 *   pb_reference vectors --write|--check DIR
 *       tests/protocol/vectors/: every sample frame (NAME.msgpack plus
 *       NAME.json describing the same msgpack value) and bad/ frames with
 *       the error code decode must return. --check also decodes every file.
 *   pb_reference docs --write|--check FILE
 *       the generated part of docs/PROTOCOL.md (between the BEGIN/END
 *       GENERATED markers): limits, error codes, enums, every frame's fields
 *       and a hex example per frame type.
 *   pb_reference js --write|--check FILE
 *       runtime/pb_protocol.js: the numbers of pb_protocol.h that the
 *       JavaScript (runtime host, pages) uses — limits, error codes, log
 *       levels — by their C names, so no JS file writes a wire number.
 *
 * Exit status 0 when everything matches; the closing line is in the
 * "N passed, N failed" form the test runners read. */
#include "internal.h"
#include "mutate.h"
#include "samples.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- a growable text buffer ---------------------------------------------- */

typedef struct text {
    char *s;
    size_t len, cap;
} text;

static void tx(text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void tx(text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = t->cap - t->len;
        int n = vsnprintf(t->s ? t->s + t->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            abort();
        if ((size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        t->cap = (t->cap + (size_t)n + 1) * 2;
        t->s = realloc(t->s, t->cap);
        if (!t->s)
            abort();
    }
}

/* ---- msgpack value -> JSON ----------------------------------------------- */

static void json_str(text *t, const char *p, size_t n)
{
    tx(t, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\')
            tx(t, "\\%c", c);
        else if (c == '\n')
            tx(t, "\\n");
        else if (c < 0x20)
            tx(t, "\\u%04x", c);
        else
            tx(t, "%c", c);
    }
    tx(t, "\"");
}

static void json_value(text *t, const msgpack_object *o, int indent)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: tx(t, "null"); return;
    case MSGPACK_OBJECT_BOOLEAN:
        tx(t, o->via.boolean ? "true" : "false");
        return;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        tx(t, "%llu", (unsigned long long)o->via.u64);
        return;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        tx(t, "%lld", (long long)o->via.i64);
        return;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: {
        char buf[40];
        snprintf(buf, sizeof buf, "%.17g", o->via.f64);
        if (!strpbrk(buf, ".eE"))
            strcat(buf, ".0");
        tx(t, "%s", buf);
        return;
    }
    case MSGPACK_OBJECT_STR:
        json_str(t, o->via.str.ptr, o->via.str.size);
        return;
    case MSGPACK_OBJECT_BIN: {
        tx(t, "{\"$bin\": \"");
        for (uint32_t i = 0; i < o->via.bin.size; i++)
            tx(t, "%02x", (unsigned char)o->via.bin.ptr[i]);
        tx(t, "\"}");
        return;
    }
    case MSGPACK_OBJECT_ARRAY:
        tx(t, "[");
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            tx(t, "%s\n%*s", i ? "," : "", indent + 2, "");
            json_value(t, &o->via.array.ptr[i], indent + 2);
        }
        tx(t, o->via.array.size ? "\n%*s]" : "]", indent, "");
        return;
    case MSGPACK_OBJECT_MAP:
        tx(t, "{");
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            tx(t, "%s\n%*s", i ? "," : "", indent + 2, "");
            json_value(t, &o->via.map.ptr[i].key, indent + 2);
            tx(t, ": ");
            json_value(t, &o->via.map.ptr[i].val, indent + 2);
        }
        tx(t, o->via.map.size ? "\n%*s}" : "}", indent, "");
        return;
    case MSGPACK_OBJECT_EXT: tx(t, "{\"$ext\": %d}", o->via.ext.type); return;
    }
}

static void json_of_msgpack(text *t, const pb_buf *b, int indent)
{
    msgpack_object o;
    msgpack_zone *z;
    if (pb_unpack(b->data, b->len, PB_MAX_FRAME_OBJECTS, &o, &z, "vector",
                  NULL) != PB_OK)
        abort();
    json_value(t, &o, indent);
    msgpack_zone_free(z);
}

/* ---- names ------------------------------------------------------------- */

typedef struct err_name {
    pb_err code;
    const char *name;
} err_name;

#define E(x)                                                                   \
    {                                                                          \
        x, #x                                                                  \
    }
static const err_name err_names[] = {
    E(PB_OK),
    E(PB_ERR_NOMEM),
    E(PB_ERR_TRUNCATED),
    E(PB_ERR_MALFORMED),
    E(PB_ERR_TOO_BIG),
    E(PB_ERR_NOT_A_MAP),
    E(PB_ERR_VERSION),
    E(PB_ERR_UNKNOWN_TYPE),
    E(PB_ERR_MISSING_FIELD),
    E(PB_ERR_FIELD_TYPE),
    E(PB_ERR_FIELD_RANGE),
    E(PB_ERR_DUPLICATE_FIELD),
    E(PB_ERR_BAD_UTF8),
    E(PB_ERR_NOT_CANONICAL),
    E(PB_ERR_BAD_SIGNATURE),
    E(PB_ERR_WRONG_KEY),
    E(PB_ERR_HASH_MISMATCH),
    E(PB_ERR_CHAIN_GAP),
    E(PB_ERR_CHAIN_FORK),
    E(PB_ERR_CHAIN_REPLAY),
    E(PB_ERR_WRONG_ROOM),
    E(PB_ERR_BUF_TOO_SMALL),
    E(PB_ERR_AUTH_MALFORMED),
    E(PB_ERR_AUTH_BAD_MAC),
    E(PB_ERR_AUTH_EXPIRED),
    E(PB_ERR_AUTH_WRONG_ROOM),
    E(PB_ERR_AUTH_UNKNOWN_ROLE),
    E(PB_ERR_AUTH_TIMEOUT),
    E(PB_ERR_FORBIDDEN),
    E(PB_ERR_RATE_LIMITED),
    E(PB_ERR_ROOM_FULL),
    E(PB_ERR_SLOW_CONSUMER),
    E(PB_ERR_UNEXPECTED),
    E(PB_ERR_REPLACED),
    E(PB_ERR_AUTH_REVOKED),
    E(PB_ERR_COMPILE),
    E(PB_ERR_COMPILER_DOWN),
    E(PB_ERR_PREPARE),
    E(PB_ERR_TRAP),
    E(PB_ERR_IO),
    E(PB_ERR_INTERNAL),
};
#define N_ERR_NAMES (sizeof err_names / sizeof err_names[0])

static const char *err_name_of(pb_err e)
{
    for (size_t i = 0; i < N_ERR_NAMES; i++)
        if (err_names[i].code == e)
            return err_names[i].name;
    return "?";
}

typedef struct limit {
    const char *name;
    unsigned long long value;
    const char *meaning;
} limit;

#define L(x, m)                                                                \
    {                                                                          \
#x, x, m                                                               \
    }
static const limit limits[] = {
    L(PB_PROTOCOL_VERSION, "value of \"v\" in every frame"),
    L(PB_STATEMENT_VERSION, "first element of a statement of definitions"),
    L(PB_STATEMENT_VERSION_EXPR, "first element of an expression's statement"),
    L(PB_STATEMENT_VERSION_ORIGIN,
      "first element of a replayed or restored patch's statement"),
    L(PB_MAX_FRAME_BYTES, "bytes in one encoded frame"),
    L(PB_MAX_FRAME_OBJECTS, "msgpack values in one frame"),
    L(PB_MAX_NESTING, "depth of nested arrays/maps"),
    L(PB_MAX_MODULE_BYTES, "bytes in one side module"),
    L(PB_MAX_SOURCE_BYTES, "bytes of source in one eval"),
    L(PB_MAX_STATEMENT_BYTES, "bytes in one encoded statement"),
    L(PB_MAX_SYMBOLS, "vars defined by one patch"),
    L(PB_MAX_NAME_BYTES, "room, user, var names"),
    L(PB_MAX_TYPE_BYTES, "a var's signature string"),
    L(PB_MAX_TOKEN_BYTES, "hello.token"),
    L(PB_MAX_CLIENT_BYTES, "client descriptions"),
    L(PB_MAX_PATH_BYTES, "eval.name"),
    L(PB_MAX_MESSAGE_BYTES, "error, diag, ack and test messages"),
    L(PB_MAX_LOG_BYTES, "log.text"),
    L(PB_MAX_DIAGS, "diag.items"),
    L(PB_MAX_HISTORY_ITEMS, "history.items"),
    L(PB_MAX_TESTS, "test_result.results"),
    L(PB_MAX_PEERS, "peers.peers"),
    L(PB_MAX_PNG_BYTES, "snapshot.png"),
    L(PB_MAX_CANVAS_SIDE, "canvas, screen and picture sides, pixels"),
    L(PB_MAX_BUFFER_BYTES, "one buffer update or snapshot"),
    L(PB_MAX_BUFFERS, "buffers.buffers"),
    L(PB_MAX_BUFFER_SYNC_ITEMS, "buffer_sync.updates"),
    L(PB_MAX_AWARENESS_BYTES, "buffer_aware.data"),
    L(PB_MAX_RELPOS_BYTES, "a position in a buffer (eval.start, .end)"),
    L(PB_MIN_TEMPO_BPM, "room.tempo_bpm when not 0"),
    L(PB_MAX_TEMPO_BPM, "room.tempo_bpm"),
    L(PB_MAX_LEAD_US, "room.lead_us, and any lead the relay chooses"),
    L(PB_MAX_QUANTUM_US, "one quantum: quantum x 60 / tempo_bpm seconds"),
    L(PB_MAX_APPLY_AHEAD_US, "apply_us - created_us; runtimes refuse a "
                             "patch due later than this from now"),
    L(PB_MAX_HEAD_BYTES, "bytes in one encoded head statement"),
    L(PB_HEAD_VERSION, "second element of every head statement"),
    L(PB_HEAD_EVERY_US, "the relay signs each room's head at least this "
                        "often"),
    L(PB_HEAD_STALE_US, "a runtime whose freshest signed head is older is "
                        "stale"),
    L(PB_SILENT_US, "a runtime that received nothing for this long "
                    "reconnects"),
};

/* Sizes the JS needs besides the limits (not in the docs' limits table). */
static const limit sizes[] = {
    L(PB_HASH_BYTES, "BLAKE2b-256 hash"),
    L(PB_SIG_BYTES, "ed25519 signature"),
    L(PB_PUBLICKEY_BYTES, "ed25519 public key"),
};

/* pb_log_level, the level argument of rt_session_log. */
static const struct {
    pb_log_level level;
    const char *name;
} log_levels[] = {
    {PB_LOG_INFO, "PB_LOG_INFO"},
    {PB_LOG_WARN, "PB_LOG_WARN"},
    {PB_LOG_ERROR, "PB_LOG_ERROR"},
    {PB_LOG_TRAP, "PB_LOG_TRAP"},
};

static const struct {
    pb_test_status status;
    const char *name;
} test_statuses[] = {
    {PB_TEST_PASS, "PB_TEST_PASS"},
    {PB_TEST_FAIL, "PB_TEST_FAIL"},
    {PB_TEST_TRAP, "PB_TEST_TRAP"},
    {PB_TEST_TIMEOUT, "PB_TEST_TIMEOUT"},
};

static const char *kind_doc(const pb_field *f, char *buf, size_t cap)
{
    switch (f->kind) {
    case PB_K_U64: return "uint";
    case PB_K_U32:
        if (f->max) {
            snprintf(buf, cap, "uint ≤ %u", f->max);
            return buf;
        }
        return "uint ≤ 2³²−1";
    case PB_K_I64: return "int";
    case PB_K_BOOL: return "bool";
    case PB_K_F64: return "float64 (finite)";
    case PB_K_STR: snprintf(buf, cap, "str ≤ %u B", f->max); return buf;
    case PB_K_BIN: snprintf(buf, cap, "bin ≤ %u B", f->max); return buf;
    case PB_K_SIG: return "bin, 64 B";
    case PB_K_HASH: return "bin, 32 B";
    case PB_K_ENUM: {
        size_t n = (size_t)snprintf(buf, cap, "str: ");
        for (uint32_t i = 1; i <= f->max && n < cap; i++)
            n += (size_t)snprintf(buf + n, cap - n, "%s`%s`",
                                  i > 1 ? " \\| " : "", f->names[i]);
        return buf;
    }
    case PB_K_ARRAY:
        snprintf(buf, cap, "array ≤ %u of %s", f->max, f->elem->what);
        return buf;
    }
    return "?";
}

static void hexdump(text *t, const uint8_t *p, size_t n)
{
    tx(t, "```\n");
    for (size_t i = 0; i < n; i++)
        tx(t, "%02x%s", p[i], (i + 1) % 32 == 0 || i + 1 == n ? "\n" : " ");
    tx(t, "```\n");
}

static void field_table(text *t, const pb_obj *o)
{
    tx(t, "| field | type | required |\n|---|---|---|\n");
    for (uint32_t k = 0; k < o->n_fields; k++) {
        char buf[160];
        const pb_field *f = &o->fields[k];
        tx(t, "| `%s` | %s | %s |\n", f->key, kind_doc(f, buf, sizeof buf),
           f->required ? "yes" : "");
    }
}

/* ---- the generated part of docs/PROTOCOL.md ------------------------------ */

static void gen_docs(text *t)
{
    tx(t,
       "<!-- BEGIN GENERATED by pb_reference docs --write; do not edit -->\n");
    tx(t, "\n## Limits\n\n| constant | value | bounds |\n|---|---|---|\n");
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++)
        tx(t, "| `%s` | %llu | %s |\n", limits[i].name, limits[i].value,
           limits[i].meaning);
    tx(t, "\n## Error codes\n\nCarried in `error.code`; numbers are never "
          "reused.\n\n| code | name | meaning |\n|---|---|---|\n");
    for (size_t i = 0; i < N_ERR_NAMES; i++)
        tx(t, "| %d | `%s` | %s |\n", (int)err_names[i].code, err_names[i].name,
           pb_strerror(err_names[i].code));
    tx(t,
       "\n## Frame reference\n\nEvery frame also has `v` (uint, "
       "= %u) and `t` (str, the frame type), written first.\n",
       PB_PROTOCOL_VERSION);
    size_t n;
    const pb_sample *s = pb_samples(&n);
    for (int type = PB_T_NONE + 1; type < PB_T_COUNT_; type++) {
        const pb_obj *o = pb_frame_obj((pb_type)type);
        tx(t, "\n### `%s`\n\n", pb_type_name((pb_type)type));
        field_table(t, o);
        for (uint32_t k = 0; k < o->n_fields; k++) {
            if (o->fields[k].kind != PB_K_ARRAY)
                continue;
            tx(t, "\nEach %s:\n\n", o->fields[k].elem->what);
            field_table(t, o->fields[k].elem);
        }
        for (size_t i = 0; i < n; i++) {
            if (s[i].frame.type != (pb_type)type)
                continue;
            pb_buf b;
            pb_buf_init(&b);
            if (pb_frame_encode(&s[i].frame, &b, NULL) != PB_OK)
                abort();
            tx(t, "\nExample (`vectors/%s.msgpack`, %s), %zu bytes:\n\n",
               s[i].name, s[i].description, b.len);
            hexdump(t, b.data, b.len);
            pb_buf_free(&b);
            break; /* one example per type in the docs */
        }
    }
    pb_sample_patch p;
    pb_sample_patch_make(&p, "jam", 1, NULL, 0);
    tx(t,
       "\n### Example statement\n\nThe statement inside the `patch` "
       "example above (`vectors/statement.msgpack`), %zu bytes:\n\n",
       p.stmt.len);
    hexdump(t, p.stmt.data, p.stmt.len);
    pb_sample_patch_free(&p);
    pb_sample_expr_make(&p, "jam", 3, NULL);
    tx(t,
       "\nAn expression's statement (`vectors/statement_expr.msgpack`: "
       "version 2, no symbols, the kind last), %zu bytes:\n\n",
       p.stmt.len);
    hexdump(t, p.stmt.data, p.stmt.len);
    pb_sample_patch_free(&p);
    size_t n_samples;
    const pb_sample *head = pb_samples(&n_samples);
    while (head->frame.type != PB_T_HEAD)
        head++;
    tx(t,
       "\nThe head statement inside the `head` example above "
       "(`vectors/head_statement.msgpack`), %u bytes:\n\n",
       head->frame.head.stmt.len);
    hexdump(t, head->frame.head.stmt.ptr, head->frame.head.stmt.len);
    pb_sample_replay_make(&p, "jam2", 1, NULL, "jam", 1);
    tx(t,
       "\nA replayed patch's statement (`vectors/statement_replay.msgpack`: "
       "version 3, seq 1 of room jam2 repeating seq 1 of room jam; the kind "
       "\"\" for definitions, then the origin room and seq), %zu bytes:\n\n",
       p.stmt.len);
    hexdump(t, p.stmt.data, p.stmt.len);
    pb_sample_patch_free(&p);
    tx(t, "\n<!-- END GENERATED -->\n");
}

/* ---- runtime/pb_protocol.js ---------------------------------------------- */

static void gen_js(text *t)
{
    tx(t, "// pb_protocol.js — GENERATED from protocol/pb_protocol.h by\n"
          "// `pb_reference js --write runtime/pb_protocol.js`; do not edit "
          "(the test\n"
          "// protocol_js fails when it differs from what the code "
          "produces).\n"
          "// The wire numbers the runtime host and the pages use, by their C "
          "names:\n"
          "// limits, error codes (docs/PROTOCOL.md § Error codes), log "
          "levels and\n// test statuses.\n\n");
    tx(t, "// Limits and sizes\n");
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++)
        tx(t, "export const %s = %llu; // %s\n", limits[i].name,
           limits[i].value, limits[i].meaning);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        tx(t, "export const %s = %llu; // %s\n", sizes[i].name,
           sizes[i].value, sizes[i].meaning);
    tx(t, "\n// Error codes (pb_err): on the wire in error.code and ack.code\n");
    for (size_t i = 0; i < N_ERR_NAMES; i++)
        tx(t, "export const %s = %d; // %s\n", err_names[i].name,
           (int)err_names[i].code, pb_strerror(err_names[i].code));
    tx(t, "\n// Log levels (pb_log_level), as rt_session_log takes them\n");
    for (size_t i = 0; i < sizeof log_levels / sizeof log_levels[0]; i++)
        tx(t, "export const %s = %d; // \"%s\"\n", log_levels[i].name,
           (int)log_levels[i].level, pb_log_level_name(log_levels[i].level));
    tx(t, "\n// Test statuses (pb_test_status): a test case's \"status\"\n");
    for (size_t i = 0; i < sizeof test_statuses / sizeof test_statuses[0]; i++)
        tx(t, "export const %s = %d; // \"%s\"\n", test_statuses[i].name,
           (int)test_statuses[i].status,
           pb_test_status_name(test_statuses[i].status));
}

/* ---- vectors ------------------------------------------------------------- */

typedef struct vector {
    char name[64];
    char description[160];
    pb_err expect; /* PB_OK for good vectors */
    pb_buf bytes;
} vector;

static int n_vectors;
static vector vectors[128];

static vector *add_vector(const char *name, const char *description,
                          pb_err expect)
{
    vector *v = &vectors[n_vectors++];
    snprintf(v->name, sizeof v->name, "%s", name);
    snprintf(v->description, sizeof v->description, "%s", description);
    v->expect = expect;
    pb_buf_init(&v->bytes);
    return v;
}

static void raw_bytes(vector *v, const void *p, size_t n)
{
    v->bytes.data = malloc(n);
    memcpy(v->bytes.data, p, n);
    v->bytes.len = v->bytes.cap = n;
}

static void build_vectors(void)
{
    size_t n;
    const pb_sample *s = pb_samples(&n);
    pb_buf eval;
    pb_buf_init(&eval);
    for (size_t i = 0; i < n; i++) {
        vector *v = add_vector(s[i].name, s[i].description, PB_OK);
        if (pb_frame_encode(&s[i].frame, &v->bytes, NULL) != PB_OK)
            abort();
        if (s[i].frame.type == PB_T_EVAL && !eval.len && /* the first */
            pb_frame_encode(&s[i].frame, &eval, NULL) != PB_OK)
            abort();
    }
    pb_sample_patch p;
    pb_sample_patch_make(&p, "jam", 1, NULL, 0);
    vector *st = add_vector("statement", "the patch statement of seq 1", PB_OK);
    raw_bytes(st, p.stmt.data, p.stmt.len);
    pb_sample_patch_free(&p);
    pb_sample_expr_make(&p, "jam", 3, NULL);
    st = add_vector("statement_expr", "an expression's statement (version 2)",
                    PB_OK);
    raw_bytes(st, p.stmt.data, p.stmt.len);
    pb_sample_patch_free(&p);
    for (size_t i = 0; i < n; i++)
        if (s[i].frame.type == PB_T_HEAD) {
            st = add_vector("head_statement",
                            "the signed head of room jam at seq 2", PB_OK);
            raw_bytes(st, s[i].frame.head.stmt.ptr, s[i].frame.head.stmt.len);
        }
    pb_sample_replay_make(&p, "jam2", 1, NULL, "jam", 1);
    st = add_vector("statement_replay",
                    "seq 1 of room jam2, replayed from seq 1 of room jam "
                    "(version 3)",
                    PB_OK);
    raw_bytes(st, p.stmt.data, p.stmt.len);
    pb_sample_patch_free(&p);

    /* Bad frames, each with the code decode must return. */
    uint64_t two = 2;
    size_t len;
    vector *v;
    v = add_vector("bad/eval_missing_source", "eval without its source",
                   PB_ERR_MISSING_FIELD);
    mutate_map(&eval, MUT_DROP, "source", NULL, NULL, &v->bytes);
    v = add_vector("bad/eval_req_is_nil", "eval.req is nil", PB_ERR_FIELD_TYPE);
    mutate_map(&eval, MUT_REPLACE, "req", mut_nil, NULL, &v->bytes);
    v = add_vector("bad/version_2", "a frame of protocol version 2",
                   PB_ERR_VERSION);
    mutate_map(&eval, MUT_REPLACE, "v", mut_uint, &two, &v->bytes);
    v = add_vector("bad/unknown_type", "t is \"xxxx\"", PB_ERR_UNKNOWN_TYPE);
    len = 4;
    mutate_map(&eval, MUT_REPLACE, "t", mut_str_n, &len, &v->bytes);
    v = add_vector("bad/duplicate_source", "eval with source twice",
                   PB_ERR_DUPLICATE_FIELD);
    mutate_map(&eval, MUT_DUPLICATE, "source", NULL, NULL, &v->bytes);
    v = add_vector("bad/name_too_long", "eval.name one byte over its limit",
                   PB_ERR_FIELD_RANGE);
    len = PB_MAX_PATH_BYTES + 1;
    mutate_map(&eval, MUT_REPLACE, "name", mut_str_n, &len, &v->bytes);
    v = add_vector("bad/lang_unknown", "eval.lang is \"xxxx\"",
                   PB_ERR_FIELD_RANGE);
    len = 4;
    mutate_map(&eval, MUT_REPLACE, "lang", mut_str_n, &len, &v->bytes);
    v = add_vector("bad/source_not_utf8", "eval.source is not UTF-8",
                   PB_ERR_BAD_UTF8);
    pb_buf raw;
    static const char bad_utf8[] = "int x = \xff;";
    pb_buf_init_fixed(&raw, (void *)bad_utf8, sizeof bad_utf8 - 1);
    raw.len = sizeof bad_utf8 - 1;
    mutate_map(&eval, MUT_REPLACE, "source", mut_raw, &raw, &v->bytes);
    v = add_vector("bad/truncated", "the eval example cut in half",
                   PB_ERR_TRUNCATED);
    raw_bytes(v, eval.data, eval.len / 2);
    v = add_vector("bad/trailing_byte", "the eval example plus one byte",
                   PB_ERR_MALFORMED);
    raw_bytes(v, eval.data, eval.len);
    v->bytes.data = realloc(v->bytes.data, eval.len + 1);
    v->bytes.data[eval.len] = 0xc0;
    v->bytes.len = eval.len + 1;
    static const uint8_t huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0};
    v = add_vector("bad/huge_array_header",
                   "an array header claiming 2^32-1 values", PB_ERR_TRUNCATED);
    raw_bytes(v, huge, sizeof huge);
    static const uint8_t not_map[] = {0x92, 0xa1, 'v', 0x01};
    v = add_vector("bad/not_a_map", "an array instead of a map",
                   PB_ERR_NOT_A_MAP);
    raw_bytes(v, not_map, sizeof not_map);
    uint8_t deep[40];
    memset(deep, 0x91, sizeof deep);
    deep[sizeof deep - 1] = 0xc0;
    v = add_vector("bad/too_deep", "39 nested arrays", PB_ERR_MALFORMED);
    raw_bytes(v, deep, sizeof deep);
    static const uint8_t reserved[] = {0xc1};
    v = add_vector("bad/reserved_byte", "the never-used byte 0xc1",
                   PB_ERR_MALFORMED);
    raw_bytes(v, reserved, sizeof reserved);
    pb_buf_free(&eval);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            buf = realloc(buf, (cap *= 2) + 1);
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "pb_reference: cannot write %s: %s\n", path,
                strerror(errno));
        return -1;
    }
    return 0;
}

static int passed, failed;

static void result(int ok, const char *what, const char *detail)
{
    printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", what, detail ? ": " : "",
           detail ? detail : "");
    ok ? passed++ : failed++;
}

/* Compares or writes one file. */
static void sync_file(const char *path, const void *want, size_t n, int write)
{
    if (write) {
        result(write_file(path, want, n) == 0, path, "written");
        return;
    }
    size_t have_len;
    char *have = read_file(path, &have_len);
    int ok = have && have_len == n && memcmp(have, want, n) == 0;
    result(ok, path,
           ok     ? NULL
           : have ? "differs from what the code produces (run "
                    "pb_reference with --write and review the diff)"
                  : "missing");
    free(have);
}

static int cmd_vectors(const char *dir, int write)
{
    build_vectors();
    char path[512];
    if (write) {
        mkdir(dir, 0755);
        snprintf(path, sizeof path, "%s/bad", dir);
        mkdir(path, 0755);
    }
    for (int i = 0; i < n_vectors; i++) {
        vector *v = &vectors[i];
        text j = {0};
        tx(&j, "{\n  \"name\": \"%s\",\n  \"description\": ", v->name);
        json_str(&j, v->description, strlen(v->description));
        if (v->expect == PB_OK) {
            tx(&j, ",\n  \"value\": ");
            json_of_msgpack(&j, &v->bytes, 2);
        } else {
            tx(&j, ",\n  \"expect\": \"%s\",\n  \"code\": %d",
               err_name_of(v->expect), (int)v->expect);
        }
        tx(&j, "\n}\n");
        snprintf(path, sizeof path, "%s/%s.msgpack", dir, v->name);
        sync_file(path, v->bytes.data, v->bytes.len, write);
        snprintf(path, sizeof path, "%s/%s.json", dir, v->name);
        sync_file(path, j.s, j.len, write);
        free(j.s);

        /* What the committed bytes decode to, in this build. */
        pb_errmsg why = {{0}};
        pb_err e;
        if (!strncmp(v->name, "statement", 9)) {
            pb_statement st;
            e = pb_statement_decode(v->bytes.data, v->bytes.len, &st, &why);
            pb_statement_free(&st);
        } else if (!strcmp(v->name, "head_statement")) {
            pb_head h;
            e = pb_head_decode(v->bytes.data, v->bytes.len, &h, &why);
            pb_head_free(&h);
        } else {
            pb_frame f;
            e = pb_frame_decode(v->bytes.data, v->bytes.len, &f, &why);
            pb_frame_free(&f);
        }
        char detail[320];
        snprintf(detail, sizeof detail, "decode gives %s%s%s", err_name_of(e),
                 e ? " — " : "", why.text);
        result(e == v->expect, v->name, e == v->expect ? NULL : detail);
        pb_buf_free(&v->bytes);
    }
    return failed ? 1 : 0;
}

static int cmd_docs(const char *path, int write)
{
    static const char begin[] = "<!-- BEGIN GENERATED";
    static const char end[] = "<!-- END GENERATED -->\n";
    size_t len;
    char *doc = read_file(path, &len);
    if (!doc) {
        fprintf(stderr, "pb_reference: cannot read %s: %s\n", path,
                strerror(errno));
        return 1;
    }
    char *b = strstr(doc, begin), *e = b ? strstr(b, end) : NULL;
    if (!b || !e) {
        result(0, path, "has no BEGIN/END GENERATED markers");
        free(doc);
        return 1;
    }
    e += strlen(end);
    text gen = {0};
    gen_docs(&gen);
    text whole = {0};
    tx(&whole, "%.*s%s%s", (int)(b - doc), doc, gen.s, e);
    sync_file(path, whole.s, whole.len, write);
    /* every code with a description is listed */
    for (int c = 0; c < 256; c++) {
        if (!strcmp(pb_strerror((pb_err)c), "unknown error"))
            continue;
        if (!strcmp(err_name_of((pb_err)c), "?")) {
            char what[64];
            snprintf(what, sizeof what, "error code %d", c);
            result(0, what, "has no name in reference.c");
        }
    }
    free(gen.s);
    free(whole.s);
    free(doc);
    return failed ? 1 : 0;
}

static int cmd_js(const char *path, int write)
{
    text gen = {0};
    gen_js(&gen);
    sync_file(path, gen.s, gen.len, write);
    free(gen.s);
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc != 4 ||
        (strcmp(argv[2], "--write") && strcmp(argv[2], "--check"))) {
        fprintf(stderr, "usage: pb_reference vectors|docs|js --write|--check "
                        "DIR|FILE\n");
        return 2;
    }
    if (pb_init() != PB_OK)
        return 1;
    int write = !strcmp(argv[2], "--write");
    int rc;
    if (!strcmp(argv[1], "vectors"))
        rc = cmd_vectors(argv[3], write);
    else if (!strcmp(argv[1], "docs"))
        rc = cmd_docs(argv[3], write);
    else if (!strcmp(argv[1], "js"))
        rc = cmd_js(argv[3], write);
    else {
        fprintf(stderr, "pb_reference: unknown mode \"%s\"\n", argv[1]);
        return 2;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return rc;
}
