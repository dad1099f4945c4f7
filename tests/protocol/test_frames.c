/* test_frames.c — every frame type round-trips, and every rejection rule of
 * docs/PROTOCOL.md § Frames is hit for every field of every frame: missing
 * required fields, wrong types, out-of-range lengths, duplicates, bad UTF-8,
 * versions, unknown types, truncation, trailing bytes, hostile headers. */
#include "../check.h"
#include "internal.h"
#include "mutate.h"
#include "samples.h"

static const pb_sample *all(size_t *n)
{
    return pb_samples(n);
}

static int encode(const pb_frame *f, pb_buf *out)
{
    pb_errmsg why;
    pb_err e = pb_frame_encode(f, out, &why);
    if (e)
        fprintf(stderr, "  encode: %s\n", why.text);
    return e;
}

static pb_err decode_expect(const pb_buf *b, pb_err want, const char *what)
{
    pb_frame f;
    pb_errmsg why = {{0}};
    pb_err e = pb_frame_decode(b->data, b->len, &f, &why);
    if (e != want)
        fprintf(stderr, "  %s: got %d (%s: %s), want %d (%s)\n", what, e,
                pb_strerror(e), why.text, want, pb_strerror(want));
    if (e == PB_OK)
        pb_frame_free(&f);
    else if (why.text[0] == '\0')
        fprintf(stderr, "  %s: error without a message\n", what), e = -1;
    return e;
}

TEST(test_every_frame_roundtrips_byte_for_byte)
{
    size_t n;
    const pb_sample *s = all(&n);
    CHECK(n >= PB_T_COUNT_ - 1);
    for (size_t i = 0; i < n; i++) {
        pb_buf a, b;
        pb_buf_init(&a);
        pb_buf_init(&b);
        REQUIRE(encode(&s[i].frame, &a) == PB_OK);
        pb_frame f;
        pb_errmsg why;
        pb_err e = pb_frame_decode(a.data, a.len, &f, &why);
        if (e)
            fprintf(stderr, "  %s: %s\n", s[i].name, why.text);
        CHECK(e == PB_OK);
        CHECK(f.type == s[i].frame.type);
        CHECK(encode(&f, &b) == PB_OK);
        CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
        pb_frame_free(&f);
        pb_frame_free(&f); /* free twice is harmless */
        pb_buf_free(&a);
        pb_buf_free(&b);
    }
}

TEST(test_every_type_has_a_sample)
{
    size_t n;
    const pb_sample *s = all(&n);
    for (int t = PB_T_NONE + 1; t < PB_T_COUNT_; t++) {
        int found = 0;
        for (size_t i = 0; i < n; i++)
            found |= s[i].frame.type == (pb_type)t;
        if (!found)
            fprintf(stderr, "  no sample for %s\n", pb_type_name(t));
        CHECK(found);
    }
}

TEST(test_decoded_fields_match_what_was_encoded)
{
    size_t n;
    const pb_sample *s = all(&n);
    pb_buf a;
    pb_buf_init(&a);
    for (size_t i = 0; i < n; i++) {
        pb_frame f;
        if (s[i].frame.type == PB_T_EVAL && s[i].frame.eval.origin_seq) {
            REQUIRE(encode(&s[i].frame, &a) == PB_OK);
            REQUIRE(pb_frame_decode(a.data, a.len, &f, NULL) == PB_OK);
            CHECK(f.eval.req == 45);
            CHECK(pb_str_eq(f.eval.origin_room, "jam"));
            CHECK(f.eval.origin_seq == 1);
            pb_frame_free(&f);
            continue;
        }
        if (s[i].frame.type == PB_T_EVAL && s[i].frame.eval.buffer) {
            /* an eval from a shared buffer names it and the range */
            REQUIRE(encode(&s[i].frame, &a) == PB_OK);
            REQUIRE(pb_frame_decode(a.data, a.len, &f, NULL) == PB_OK);
            CHECK(f.eval.buffer == 1);
            CHECK(pb_str_eq(f.eval.name, "main.c"));
            CHECK(f.eval.start.len == 4 && f.eval.end.len == 4);
            CHECK(f.eval.end.ptr[2] == 0x27);
            pb_frame_free(&f);
        }
        if (s[i].frame.type == PB_T_BUFFER_SYNC) {
            /* stored updates come back byte for byte, in order */
            REQUIRE(encode(&s[i].frame, &a) == PB_OK);
            REQUIRE(pb_frame_decode(a.data, a.len, &f, NULL) == PB_OK);
            REQUIRE(f.buffer_sync.n_updates == 2);
            CHECK(f.buffer_sync.useq == 2);
            CHECK(f.buffer_sync.updates[1].data.len == 6);
            CHECK(memcmp(f.buffer_sync.updates[0].data.ptr,
                         s[i].frame.buffer_sync.updates[0].data.ptr,
                         s[i].frame.buffer_sync.updates[0].data.len) == 0);
            pb_frame_free(&f);
        }
        if (s[i].frame.type == PB_T_EVAL && !s[i].frame.eval.expr &&
            !s[i].frame.eval.buffer) {
            REQUIRE(encode(&s[i].frame, &a) == PB_OK);
            REQUIRE(pb_frame_decode(a.data, a.len, &f, NULL) == PB_OK);
            CHECK(f.eval.req == 42);
            CHECK(f.eval.lang == PB_LANG_C);
            CHECK(pb_str_eq(f.eval.name, "ggg.c"));
            CHECK(pb_str_eq(f.eval.source,
                            "double ggg(double v) { return v + 49; }"));
            CHECK(!f.eval.expr);
            pb_frame_free(&f);
        }
        if (s[i].frame.type == PB_T_EVAL && s[i].frame.eval.expr) {
            REQUIRE(encode(&s[i].frame, &a) == PB_OK);
            REQUIRE(pb_frame_decode(a.data, a.len, &f, NULL) == PB_OK);
            CHECK(f.eval.expr);
            CHECK(pb_str_eq(f.eval.source, "(ggg 10)"));
            pb_frame_free(&f);
        }
        if (s[i].frame.type == PB_T_ACK && s[i].frame.ack.value.len) {
            /* an expression's value and output come back in its ack */
            REQUIRE(encode(&s[i].frame, &a) == PB_OK);
            REQUIRE(pb_frame_decode(a.data, a.len, &f, NULL) == PB_OK);
            CHECK(pb_str_eq(f.ack.value, "58"));
            CHECK(pb_str_eq(f.ack.out, "ggg called with 10\n"));
            pb_frame_free(&f);
        }
        if (s[i].frame.type == PB_T_ACK &&
            s[i].frame.ack.state == PB_ACK_FAILED) {
            /* a failed ack says why as a code, for tools to act on */
            REQUIRE(encode(&s[i].frame, &a) == PB_OK);
            REQUIRE(pb_frame_decode(a.data, a.len, &f, NULL) == PB_OK);
            CHECK(f.ack.code == PB_ERR_TRAP);
            CHECK(pb_str_eq(f.ack.var, "ggg"));
            pb_frame_free(&f);
        }
        if (s[i].frame.type == PB_T_PEERS) {
            REQUIRE(encode(&s[i].frame, &a) == PB_OK);
            REQUIRE(pb_frame_decode(a.data, a.len, &f, NULL) == PB_OK);
            REQUIRE(f.peers.n_peers == 2);
            CHECK(f.peers.peers[1].id == 9);
            CHECK(f.peers.peers[1].role == PB_ROLE_RUNTIME);
            CHECK(f.peers.peers[1].skew_us == -300);
            CHECK(f.peers.peers[1].last_ack == PB_ACK_COMMITTED);
            CHECK(f.peers.peers[0].last_ack == PB_ACK_NONE);
            pb_frame_free(&f);
        }
        if (s[i].frame.type == PB_T_ROOM) {
            REQUIRE(encode(&s[i].frame, &a) == PB_OK);
            REQUIRE(pb_frame_decode(a.data, a.len, &f, NULL) == PB_OK);
            CHECK(f.room.tempo_bpm == 120.0);
            CHECK(f.room.quantum == 4);
            pb_frame_free(&f);
        }
    }
    pb_buf_free(&a);
}

/* For every field of every sample: dropping a required field gives
 * MISSING_FIELD, dropping an optional one still decodes, nil gives
 * FIELD_TYPE, and a duplicate gives DUPLICATE_FIELD. */
TEST(test_every_field_is_typed_required_and_unique)
{
    size_t n;
    const pb_sample *s = all(&n);
    pb_buf a, b;
    pb_buf_init(&a);
    pb_buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        const pb_obj *o = pb_frame_obj(s[i].frame.type);
        REQUIRE(o != NULL);
        REQUIRE(encode(&s[i].frame, &a) == PB_OK);
        for (uint32_t k = 0; k < o->n_fields; k++) {
            const pb_field *fd = &o->fields[k];
            char what[128];
            snprintf(what, sizeof what, "%s.%s", s[i].name, fd->key);
            REQUIRE(mutate_map(&a, MUT_DROP, fd->key, NULL, NULL, &b) == 0);
            CHECK(decode_expect(&b, fd->required ? PB_ERR_MISSING_FIELD : PB_OK,
                                what) ==
                  (fd->required ? PB_ERR_MISSING_FIELD : PB_OK));
            REQUIRE(mutate_map(&a, MUT_REPLACE, fd->key, mut_nil, NULL, &b) ==
                    0);
            if (b.len != a.len || memcmp(a.data, b.data, a.len))
                CHECK(decode_expect(&b, PB_ERR_FIELD_TYPE, what) ==
                      PB_ERR_FIELD_TYPE);
            REQUIRE(mutate_map(&a, MUT_DUPLICATE, fd->key, NULL, NULL, &b) ==
                    0);
            if (b.len != a.len)
                CHECK(decode_expect(&b, PB_ERR_DUPLICATE_FIELD, what) ==
                      PB_ERR_DUPLICATE_FIELD);
        }
    }
    pb_buf_free(&a);
    pb_buf_free(&b);
}

/* Every string, byte and array field one past its limit is rejected with
 * FIELD_RANGE, and exactly at its limit accepted (where the frame fits). */
TEST(test_every_length_limit_is_enforced)
{
    size_t n;
    const pb_sample *s = all(&n);
    pb_buf a, b;
    pb_buf_init(&a);
    pb_buf_init(&b);
    int checked = 0;
    for (size_t i = 0; i < n; i++) {
        const pb_obj *o = pb_frame_obj(s[i].frame.type);
        REQUIRE(encode(&s[i].frame, &a) == PB_OK);
        for (uint32_t k = 0; k < o->n_fields; k++) {
            const pb_field *fd = &o->fields[k];
            char what[128];
            snprintf(what, sizeof what, "%s.%s", s[i].name, fd->key);
            size_t len;
            mut_value_fn fn = NULL;
            if (fd->kind == PB_K_STR)
                fn = mut_str_n;
            else if (fd->kind == PB_K_BIN || fd->kind == PB_K_SIG ||
                     fd->kind == PB_K_HASH)
                fn = mut_bin_n;
            if (!fn)
                continue;
            len = fd->kind == PB_K_SIG    ? PB_SIG_BYTES + 1
                  : fd->kind == PB_K_HASH ? PB_HASH_BYTES - 1
                                          : (size_t)fd->max + 1;
            REQUIRE(mutate_map(&a, MUT_REPLACE, fd->key, fn, &len, &b) == 0);
            if (b.len == a.len && !memcmp(a.data, b.data, a.len))
                continue; /* field absent in this sample */
            CHECK(decode_expect(&b, PB_ERR_FIELD_RANGE, what) ==
                  PB_ERR_FIELD_RANGE);
            len = fd->kind == PB_K_SIG    ? PB_SIG_BYTES
                  : fd->kind == PB_K_HASH ? PB_HASH_BYTES
                                          : (size_t)fd->max;
            REQUIRE(mutate_map(&a, MUT_REPLACE, fd->key, fn, &len, &b) == 0);
            CHECK(decode_expect(&b, PB_OK, what) == PB_OK);
            checked++;
        }
    }
    CHECK(checked >= 18); /* top-level str/bin fields present in samples */
    pb_buf_free(&a);
    pb_buf_free(&b);
}

static int grow_write(void *data, const char *buf, size_t len)
{
    pb_buf *b = data;
    if (b->cap - b->len < len) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < len)
            cap *= 2;
        b->data = realloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, buf, len);
    b->len += len;
    return 0;
}

static void pack_key(msgpack_packer *pk, const char *k)
{
    msgpack_pack_str_with_body(pk, k, strlen(k));
}

/* A diag frame with n items whose message is msg_len bytes long. */
static void pack_diag(pb_buf *b, uint32_t n, size_t msg_len)
{
    msgpack_packer pk;
    b->len = 0;
    msgpack_packer_init(&pk, b, grow_write);
    msgpack_pack_map(&pk, 5);
    pack_key(&pk, "v");
    msgpack_pack_uint32(&pk, PB_PROTOCOL_VERSION);
    pack_key(&pk, "t");
    pack_key(&pk, "diag");
    pack_key(&pk, "req");
    msgpack_pack_uint32(&pk, 1);
    pack_key(&pk, "ok");
    msgpack_pack_false(&pk);
    pack_key(&pk, "items");
    msgpack_pack_array(&pk, n);
    char *msg = malloc(msg_len + 1);
    memset(msg, 'm', msg_len);
    for (uint32_t i = 0; i < n; i++) {
        msgpack_pack_map(&pk, 4);
        pack_key(&pk, "line");
        msgpack_pack_uint32(&pk, 1);
        pack_key(&pk, "col");
        msgpack_pack_uint32(&pk, 1);
        pack_key(&pk, "severity");
        pack_key(&pk, "error");
        pack_key(&pk, "message");
        msgpack_pack_str_with_body(&pk, msg, msg_len);
    }
    free(msg);
}

TEST(test_limits_inside_arrays_are_enforced)
{
    pb_buf b;
    pb_buf_init(&b);
    pack_diag(&b, PB_MAX_DIAGS, PB_MAX_MESSAGE_BYTES);
    CHECK(decode_expect(&b, PB_OK, "diag at limits") == PB_OK);
    pack_diag(&b, PB_MAX_DIAGS + 1, 1);
    CHECK(decode_expect(&b, PB_ERR_FIELD_RANGE, "too many diags") ==
          PB_ERR_FIELD_RANGE);
    pack_diag(&b, 2, PB_MAX_MESSAGE_BYTES + 1);
    pb_frame f;
    pb_errmsg why;
    CHECK(pb_frame_decode(b.data, b.len, &f, &why) == PB_ERR_FIELD_RANGE);
    CHECK(strstr(why.text, "diag frame.items[0]") != NULL);
    /* an element that is not a map */
    msgpack_packer pk;
    b.len = 0;
    msgpack_packer_init(&pk, &b, grow_write);
    msgpack_pack_map(&pk, 4);
    pack_key(&pk, "v");
    msgpack_pack_uint32(&pk, PB_PROTOCOL_VERSION);
    pack_key(&pk, "t");
    pack_key(&pk, "peers");
    pack_key(&pk, "event");
    pack_key(&pk, "join");
    pack_key(&pk, "peers");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_uint32(&pk, 5);
    CHECK(decode_expect(&b, PB_ERR_NOT_A_MAP, "peer not a map") ==
          PB_ERR_NOT_A_MAP);
    /* the encoder refuses what the decoder would refuse */
    pb_diag_item *items = calloc(PB_MAX_DIAGS + 1, sizeof *items);
    for (unsigned i = 0; i <= PB_MAX_DIAGS; i++)
        items[i] = (pb_diag_item){1, 1, 0, 0, PB_SEV_NOTE, pb_cstr("x")};
    pb_frame d = {.type = PB_T_DIAG};
    d.diag.req = 1;
    d.diag.items = items;
    d.diag.n_items = PB_MAX_DIAGS + 1;
    CHECK(pb_frame_encode(&d, &b, NULL) == PB_ERR_FIELD_RANGE);
    d.diag.n_items = PB_MAX_DIAGS;
    CHECK(pb_frame_encode(&d, &b, NULL) == PB_OK);
    items[3].severity = PB_SEV_NONE;
    CHECK(pb_frame_encode(&d, &b, NULL) == PB_ERR_FIELD_RANGE);
    free(items);
    pb_buf_free(&b);
}

TEST(test_enum_fields_reject_unknown_names)
{
    pb_frame f = {.type = PB_T_EVAL};
    f.eval.req = 1;
    f.eval.lang = PB_LANG_C;
    f.eval.source = pb_cstr("int x;");
    pb_buf a, b;
    pb_buf_init(&a);
    pb_buf_init(&b);
    REQUIRE(encode(&f, &a) == PB_OK);
    size_t four = 4;
    REQUIRE(mutate_map(&a, MUT_REPLACE, "lang", mut_str_n, &four, &b) == 0);
    pb_frame d;
    pb_errmsg why;
    CHECK(pb_frame_decode(b.data, b.len, &d, &why) == PB_ERR_FIELD_RANGE);
    CHECK(strstr(why.text, "lang") != NULL);
    CHECK(strstr(why.text, "c|lisp") != NULL);
    /* encoding an out-of-range enum is refused too */
    f.eval.lang = (pb_lang)7;
    CHECK(pb_frame_encode(&f, &a, NULL) == PB_ERR_FIELD_RANGE);
    f.eval.lang = PB_LANG_NONE;
    CHECK(pb_frame_encode(&f, &a, NULL) == PB_ERR_FIELD_RANGE);
    pb_buf_free(&a);
    pb_buf_free(&b);
}

TEST(test_integer_fields_check_sign_and_width)
{
    pb_frame f = {.type = PB_T_ERROR};
    f.error.code = PB_ERR_COMPILE;
    f.error.message = pb_cstr("x");
    pb_buf a, b;
    pb_buf_init(&a);
    pb_buf_init(&b);
    REQUIRE(encode(&f, &a) == PB_OK);
    uint64_t big = (uint64_t)UINT32_MAX + 1;
    REQUIRE(mutate_map(&a, MUT_REPLACE, "code", mut_uint, &big, &b) == 0);
    CHECK(decode_expect(&b, PB_ERR_FIELD_RANGE, "u32 overflow") ==
          PB_ERR_FIELD_RANGE);
    REQUIRE(mutate_map(&a, MUT_REPLACE, "code", mut_neg, NULL, &b) == 0);
    CHECK(decode_expect(&b, PB_ERR_FIELD_TYPE, "negative u32") ==
          PB_ERR_FIELD_TYPE);
    /* i64 accepts negative, rejects > INT64_MAX */
    pb_frame g = {.type = PB_T_ACK};
    g.ack.seq = 1;
    g.ack.state = PB_ACK_PREPARED;
    g.ack.late_us = -5;
    REQUIRE(encode(&g, &a) == PB_OK);
    CHECK(decode_expect(&a, PB_OK, "negative i64") == PB_OK);
    uint64_t huge = (uint64_t)INT64_MAX + 1;
    REQUIRE(mutate_map(&a, MUT_REPLACE, "late_us", mut_uint, &huge, &b) == 0);
    CHECK(decode_expect(&b, PB_ERR_FIELD_RANGE, "i64 overflow") ==
          PB_ERR_FIELD_RANGE);
    /* room.quantum is bounded */
    pb_frame r = {.type = PB_T_ROOM};
    r.room.quantum = 65;
    CHECK(pb_frame_encode(&r, &a, NULL) == PB_ERR_FIELD_RANGE);
    pb_buf_free(&a);
    pb_buf_free(&b);
}

TEST(test_unknown_fields_are_ignored)
{
    size_t n;
    const pb_sample *s = all(&n);
    pb_buf a, b;
    pb_buf_init(&a);
    pb_buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        REQUIRE(encode(&s[i].frame, &a) == PB_OK);
        REQUIRE(mutate_map(&a, MUT_ADD, "future_field", mut_nil, NULL, &b) ==
                0);
        CHECK(decode_expect(&b, PB_OK, s[i].name) == PB_OK);
    }
    pb_buf_free(&a);
    pb_buf_free(&b);
}

TEST(test_invalid_utf8_in_a_string_is_rejected)
{
    pb_frame f = {.type = PB_T_EVAL};
    f.eval.req = 1;
    f.eval.lang = PB_LANG_C;
    f.eval.source = pb_cstr("int x;");
    pb_buf a, b, raw;
    pb_buf_init(&a);
    pb_buf_init(&b);
    REQUIRE(encode(&f, &a) == PB_OK);
    const char *bad[] = {"\xff", "a\xc0\x80", "\xed\xa0\x80", "\xe2\x82",
                         "\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pb_buf_init_fixed(&raw, (void *)bad[i], strlen(bad[i]));
        raw.len = strlen(bad[i]);
        REQUIRE(mutate_map(&a, MUT_REPLACE, "source", mut_raw, &raw, &b) == 0);
        CHECK(decode_expect(&b, PB_ERR_BAD_UTF8, bad[i]) == PB_ERR_BAD_UTF8);
    }
    const char *good = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x8e\xb9";
    pb_buf_init_fixed(&raw, (void *)good, strlen(good));
    raw.len = strlen(good);
    REQUIRE(mutate_map(&a, MUT_REPLACE, "source", mut_raw, &raw, &b) == 0);
    CHECK(decode_expect(&b, PB_OK, "good utf8") == PB_OK);
    f.eval.source = pb_cstr("\xff");
    CHECK(pb_frame_encode(&f, &a, NULL) == PB_ERR_BAD_UTF8);
    pb_buf_free(&a);
    pb_buf_free(&b);
}

TEST(test_version_and_type_are_checked)
{
    pb_frame f = {.type = PB_T_PING};
    f.ping.t0_us = 1;
    pb_buf a, b;
    pb_buf_init(&a);
    pb_buf_init(&b);
    REQUIRE(encode(&f, &a) == PB_OK);
    uint64_t two = 2;
    REQUIRE(mutate_map(&a, MUT_REPLACE, "v", mut_uint, &two, &b) == 0);
    CHECK(decode_expect(&b, PB_ERR_VERSION, "v=2") == PB_ERR_VERSION);
    REQUIRE(mutate_map(&a, MUT_DROP, "v", NULL, NULL, &b) == 0);
    CHECK(decode_expect(&b, PB_ERR_MISSING_FIELD, "no v") ==
          PB_ERR_MISSING_FIELD);
    REQUIRE(mutate_map(&a, MUT_REPLACE, "v", mut_nil, NULL, &b) == 0);
    CHECK(decode_expect(&b, PB_ERR_FIELD_TYPE, "v nil") == PB_ERR_FIELD_TYPE);
    REQUIRE(mutate_map(&a, MUT_DUPLICATE, "t", NULL, NULL, &b) == 0);
    CHECK(decode_expect(&b, PB_ERR_DUPLICATE_FIELD, "t twice") ==
          PB_ERR_DUPLICATE_FIELD);
    REQUIRE(mutate_map(&a, MUT_DROP, "t", NULL, NULL, &b) == 0);
    CHECK(decode_expect(&b, PB_ERR_MISSING_FIELD, "no t") ==
          PB_ERR_MISSING_FIELD);
    size_t three = 3;
    REQUIRE(mutate_map(&a, MUT_REPLACE, "t", mut_str_n, &three, &b) == 0);
    CHECK(decode_expect(&b, PB_ERR_UNKNOWN_TYPE, "t=xxx") ==
          PB_ERR_UNKNOWN_TYPE);
    REQUIRE(mutate_map(&a, MUT_REPLACE, "t", mut_nil, NULL, &b) == 0);
    CHECK(decode_expect(&b, PB_ERR_FIELD_TYPE, "t nil") == PB_ERR_FIELD_TYPE);
    pb_frame bad = {.type = PB_T_COUNT_};
    CHECK(pb_frame_encode(&bad, &a, NULL) == PB_ERR_UNKNOWN_TYPE);
    pb_buf_free(&a);
    pb_buf_free(&b);
}

static pb_err decode_bytes(const void *p, size_t n)
{
    pb_frame f;
    pb_errmsg why = {{0}};
    pb_err e = pb_frame_decode(p, n, &f, &why);
    if (e == PB_OK)
        pb_frame_free(&f);
    else if (!why.text[0])
        return -1;
    return e;
}

TEST(test_every_truncation_of_every_frame_is_rejected)
{
    size_t n;
    const pb_sample *s = all(&n);
    pb_buf a;
    pb_buf_init(&a);
    for (size_t i = 0; i < n; i++) {
        REQUIRE(encode(&s[i].frame, &a) == PB_OK);
        for (size_t len = 0; len < a.len; len++) {
            /* a copy of exactly len bytes, so ASan sees any overread */
            uint8_t *p = malloc(len ? len : 1);
            memcpy(p, a.data, len);
            pb_err e = decode_bytes(p, len);
            free(p);
            if (e != PB_ERR_TRUNCATED) {
                fprintf(stderr, "  %s cut at %zu: %d\n", s[i].name, len, e);
                CHECK(e == PB_ERR_TRUNCATED);
                break;
            }
        }
    }
    pb_buf_free(&a);
}

TEST(test_trailing_bytes_and_non_maps_are_rejected)
{
    pb_frame f = {.type = PB_T_PING};
    f.ping.t0_us = 1;
    pb_buf a;
    pb_buf_init(&a);
    REQUIRE(encode(&f, &a) == PB_OK);
    uint8_t *p = malloc(a.len + 1);
    memcpy(p, a.data, a.len);
    p[a.len] = 0xc0;
    CHECK(decode_bytes(p, a.len + 1) == PB_ERR_MALFORMED);
    free(p);
    static const uint8_t arr[] = {0x92, 0x01, 0x02};
    CHECK(decode_bytes(arr, sizeof arr) == PB_ERR_NOT_A_MAP);
    static const uint8_t num[] = {0x07};
    CHECK(decode_bytes(num, sizeof num) == PB_ERR_NOT_A_MAP);
    static const uint8_t reserved[] = {0xc1};
    CHECK(decode_bytes(reserved, sizeof reserved) == PB_ERR_MALFORMED);
    static const uint8_t intkey[] = {0x81, 0x01, 0x02};
    CHECK(decode_bytes(intkey, sizeof intkey) == PB_ERR_MISSING_FIELD);
    CHECK(decode_bytes("", 0) == PB_ERR_TRUNCATED);
    pb_buf_free(&a);
}

/* Headers that claim billions of elements or bytes must be rejected before
 * anything is allocated for them (run under ASan, which would abort on a
 * huge allocation). */
TEST(test_hostile_length_headers_allocate_nothing)
{
    static const uint8_t arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t map32[] = {0xdf, 0x7f, 0xff, 0xff, 0xff, 0xc0};
    static const uint8_t str32[] = {0xdb, 0xff, 0xff, 0xff, 0xf0, 'a'};
    static const uint8_t bin32[] = {0xc6, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t ext32[] = {0xc9, 0xff, 0xff, 0xff, 0xff, 0x01};
    CHECK(decode_bytes(arr32, sizeof arr32) == PB_ERR_TRUNCATED);
    CHECK(decode_bytes(map32, sizeof map32) == PB_ERR_TRUNCATED);
    CHECK(decode_bytes(str32, sizeof str32) == PB_ERR_TRUNCATED);
    CHECK(decode_bytes(bin32, sizeof bin32) == PB_ERR_TRUNCATED);
    CHECK(decode_bytes(ext32, sizeof ext32) == PB_ERR_TRUNCATED);
    /* many tiny values: more than PB_MAX_FRAME_OBJECTS */
    size_t n = PB_MAX_FRAME_OBJECTS + 10;
    uint8_t *p = malloc(n + 5);
    p[0] = 0xdd;
    p[1] = (uint8_t)(n >> 24);
    p[2] = (uint8_t)(n >> 16);
    p[3] = (uint8_t)(n >> 8);
    p[4] = (uint8_t)n;
    memset(p + 5, 0xc0, n);
    CHECK(decode_bytes(p, n + 5) == PB_ERR_TOO_BIG);
    free(p);
}

TEST(test_deep_nesting_is_rejected)
{
    uint8_t p[64];
    size_t n = 0;
    for (int i = 0; i < 40; i++)
        p[n++] = 0x91; /* array of one */
    p[n++] = 0xc0;
    CHECK(decode_bytes(p, n) == PB_ERR_MALFORMED);
    /* nesting exactly at the limit is not a scan error */
    n = 0;
    p[n++] = 0x81;
    p[n++] = 0xa1;
    p[n++] = 'x';
    for (unsigned i = 0; i + 1 < PB_MAX_NESTING; i++)
        p[n++] = 0x91;
    p[n++] = 0xc0;
    CHECK(decode_bytes(p, n) == PB_ERR_MISSING_FIELD);
}

TEST(test_oversized_frames_are_rejected)
{
    size_t n = PB_MAX_FRAME_BYTES + 1;
    uint8_t *p = calloc(1, n);
    CHECK(decode_bytes(p, n) == PB_ERR_TOO_BIG);
    free(p);
    /* encoding a frame over the limit fails rather than truncating */
    pb_frame f = {.type = PB_T_HISTORY};
    pb_patch items[3];
    uint8_t *module = calloc(1, PB_MAX_MODULE_BYTES);
    uint8_t sig[PB_SIG_BYTES] = {0};
    for (int i = 0; i < 3; i++) {
        items[i].stmt = (pb_bytes){sig, 1};
        items[i].sig = (pb_bytes){sig, PB_SIG_BYTES};
        items[i].module = (pb_bytes){module, PB_MAX_MODULE_BYTES};
        items[i].source = (pb_str){0};
    }
    f.history.req = 1;
    f.history.head_seq = 3;
    f.history.items = items;
    f.history.n_items = 3;
    pb_buf a;
    pb_buf_init(&a);
    pb_errmsg why;
    CHECK(pb_frame_encode(&f, &a, &why) == PB_ERR_TOO_BIG);
    CHECK(a.len == 0);
    /* two modules fit */
    f.history.n_items = 1;
    CHECK(pb_frame_encode(&f, &a, &why) == PB_OK);
    free(module);
    pb_buf_free(&a);
}

TEST(test_fixed_buffers_do_not_grow)
{
    size_t n;
    const pb_sample *s = all(&n);
    uint8_t mem[16];
    pb_buf b;
    pb_buf_init_fixed(&b, mem, sizeof mem);
    CHECK(pb_frame_encode(&s[0].frame, &b, NULL) == PB_ERR_BUF_TOO_SMALL);
    CHECK(b.len == 0);
    uint8_t big[4096];
    pb_buf_init_fixed(&b, big, sizeof big);
    CHECK(pb_frame_encode(&s[0].frame, &b, NULL) == PB_OK);
    CHECK(b.len > 0 && b.data == big);
    pb_buf_free(&b);
}

TEST(test_error_messages_name_the_frame_and_field)
{
    pb_frame f = {.type = PB_T_EVAL};
    f.eval.req = 1;
    f.eval.lang = PB_LANG_LISP;
    f.eval.source = pb_cstr("(defn ggg [v] (+ v 49))");
    pb_buf a, b;
    pb_buf_init(&a);
    pb_buf_init(&b);
    REQUIRE(encode(&f, &a) == PB_OK);
    REQUIRE(mutate_map(&a, MUT_DROP, "source", NULL, NULL, &b) == 0);
    pb_frame d;
    pb_errmsg why;
    CHECK(pb_frame_decode(b.data, b.len, &d, &why) == PB_ERR_MISSING_FIELD);
    CHECK(strstr(why.text, "eval frame") != NULL);
    CHECK(strstr(why.text, "\"source\"") != NULL);
    uint64_t n = 5;
    REQUIRE(mutate_map(&a, MUT_REPLACE, "source", mut_uint, &n, &b) == 0);
    CHECK(pb_frame_decode(b.data, b.len, &d, &why) == PB_ERR_FIELD_TYPE);
    CHECK(strstr(why.text, "must be str, got int") != NULL);
    pb_buf_free(&a);
    pb_buf_free(&b);
}

TEST(test_strerror_names_every_code)
{
    for (int c = 0; c < 100; c++) {
        const char *s = pb_strerror((pb_err)c);
        CHECK(s != NULL && s[0] != '\0');
    }
    CHECK(strcmp(pb_strerror(PB_ERR_CHAIN_FORK), "chain fork") == 0);
    CHECK(strcmp(pb_strerror((pb_err)99), "unknown error") == 0);
}

TEST(test_enum_names_roundtrip)
{
    for (int r = PB_ROLE_OWNER; r <= PB_ROLE_VIEWER; r++)
        CHECK(pb_role_parse(pb_cstr(pb_role_name(r))) == (pb_role)r);
    CHECK(pb_role_parse(pb_cstr("admin")) == PB_ROLE_NONE);
    CHECK(pb_lang_parse(pb_cstr("lisp")) == PB_LANG_LISP);
    CHECK(strcmp(pb_type_name(PB_T_HISTORY_REQ), "history_req") == 0);
    CHECK(strcmp(pb_type_name(PB_T_COUNT_), "") == 0);
}

static const pb_test tests[] = {
    T(test_every_frame_roundtrips_byte_for_byte),
    T(test_every_type_has_a_sample),
    T(test_decoded_fields_match_what_was_encoded),
    T(test_every_field_is_typed_required_and_unique),
    T(test_every_length_limit_is_enforced),
    T(test_limits_inside_arrays_are_enforced),
    T(test_enum_fields_reject_unknown_names),
    T(test_integer_fields_check_sign_and_width),
    T(test_unknown_fields_are_ignored),
    T(test_invalid_utf8_in_a_string_is_rejected),
    T(test_version_and_type_are_checked),
    T(test_every_truncation_of_every_frame_is_rejected),
    T(test_trailing_bytes_and_non_maps_are_rejected),
    T(test_hostile_length_headers_allocate_nothing),
    T(test_deep_nesting_is_rejected),
    T(test_oversized_frames_are_rejected),
    T(test_fixed_buffers_do_not_grow),
    T(test_error_messages_name_the_frame_and_field),
    T(test_strerror_names_every_code),
    T(test_enum_names_roundtrip),
};
static int setup(void)
{
    return pb_init() == PB_OK ? 0 : 1;
}
PB_TEST_MAIN(tests, setup)
