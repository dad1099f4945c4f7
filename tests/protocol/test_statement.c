/* test_statement.c — the patch statement's canonical form, ed25519 against
 * libsodium's known-answer vectors, BLAKE2b, and pb_patch_verify's checks
 * in order: the signature (before the statement is decoded), the
 * statement, module and source hash mismatch. */
#include "../check.h"
#include "internal.h"
#include "samples.h"

#include <sodium.h>

/* The first three ed25519 vectors of libsodium's test/default/sign.c (the
 * same as RFC 8032 § 7.1 tests 1-3): seed, public key, signature, message. */
static const char *const ed25519_kat[][4] = {
    {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e0652249015"
     "55fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
     ""},
    {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69d"
     "a085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
     "72"},
    {"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3a"
     "c18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
     "af82"},
};

TEST(test_ed25519_matches_known_answers)
{
    for (size_t i = 0; i < sizeof ed25519_kat / sizeof ed25519_kat[0]; i++) {
        uint8_t seed[32], pk_want[32], sig_want[64], msg[8];
        uint8_t pk[32], sk[64], sig[64];
        size_t mlen = strlen(ed25519_kat[i][3]) / 2;
        REQUIRE(pb_unhex(ed25519_kat[i][0], seed, 32) == PB_OK);
        REQUIRE(pb_unhex(ed25519_kat[i][1], pk_want, 32) == PB_OK);
        REQUIRE(pb_unhex(ed25519_kat[i][2], sig_want, 64) == PB_OK);
        REQUIRE(pb_unhex(ed25519_kat[i][3], msg, mlen) == PB_OK);
        crypto_sign_seed_keypair(pk, sk, seed);
        CHECK(memcmp(pk, pk_want, 32) == 0);
        pb_sign(msg, mlen, sk, sig);
        CHECK(memcmp(sig, sig_want, 64) == 0);
        CHECK(pb_verify(msg, mlen, sig_want, pk_want) == PB_OK);
        sig[0] ^= 1;
        CHECK(pb_verify(msg, mlen, sig, pk_want) == PB_ERR_BAD_SIGNATURE);
    }
}

TEST(test_blake2b_256_known_answer)
{
    /* BLAKE2b-256 of the empty string (RFC 7693 reference parameters). */
    uint8_t h[32], want[32];
    REQUIRE(pb_unhex("0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45"
                     "cdf12fe3a8",
                     want, 32) == PB_OK);
    pb_hash("", 0, h);
    CHECK(memcmp(h, want, 32) == 0);
}

TEST(test_statement_roundtrips_and_hashes_its_bytes)
{
    pb_sample_patch p;
    pb_sample_patch_make(&p, "jam", 1, NULL, 0);
    pb_statement s;
    pb_errmsg why;
    REQUIRE(pb_statement_decode(p.stmt.data, p.stmt.len, &s, &why) == PB_OK);
    CHECK(s.seq == 1);
    CHECK(pb_str_eq(s.room, "jam"));
    CHECK(pb_str_eq(s.author, "ada"));
    CHECK(s.lang == PB_LANG_C);
    REQUIRE(s.n_symbols == 1);
    CHECK(pb_str_eq(s.symbols[0].name, "ggg"));
    CHECK(pb_str_eq(s.symbols[0].type, "d(d)"));
    CHECK(memcmp(s.hash, p.hash, PB_HASH_BYTES) == 0);
    CHECK(s.apply_us == s.created_us + 50000);
    pb_buf again;
    pb_buf_init(&again);
    CHECK(pb_statement_encode(&s, &again, NULL) == PB_OK);
    CHECK(again.len == p.stmt.len &&
          memcmp(again.data, p.stmt.data, again.len) == 0);
    pb_buf_free(&again);
    pb_statement_free(&s);
    pb_statement_free(&s);
    pb_sample_patch_free(&p);
}

TEST(test_non_canonical_statement_is_rejected)
{
    pb_sample_patch p;
    pb_sample_patch_make(&p, "jam", 1, NULL, 0);
    /* Element 2 (seq = 1) is the positive fixint 0x01 right after the room
     * string; re-spell it as uint8 0xcc 0x01: same value, other bytes. */
    size_t at = 1 + 1 + 1 + 3; /* array hdr, version, fixstr hdr, "jam" */
    REQUIRE(p.stmt.data[at] == 0x01);
    uint8_t *b = malloc(p.stmt.len + 1);
    memcpy(b, p.stmt.data, at);
    b[at] = 0xcc;
    b[at + 1] = 0x01;
    memcpy(b + at + 2, p.stmt.data + at + 1, p.stmt.len - at - 1);
    pb_statement s;
    pb_errmsg why;
    CHECK(pb_statement_decode(b, p.stmt.len + 1, &s, &why) ==
          PB_ERR_NOT_CANONICAL);
    CHECK(s.priv_ == NULL && s.seq == 0);
    free(b);
    pb_sample_patch_free(&p);
}

TEST(test_statement_shape_errors)
{
    pb_statement s;
    static const uint8_t not_array[] = {0x80};
    CHECK(pb_statement_decode(not_array, 1, &s, NULL) == PB_ERR_FIELD_TYPE);
    static const uint8_t short_array[] = {0x91, 0x01};
    CHECK(pb_statement_decode(short_array, 2, &s, NULL) == PB_ERR_FIELD_TYPE);
    CHECK(pb_statement_decode(NULL, 0, &s, NULL) == PB_ERR_TRUNCATED);
    /* version 4; and version 2 (an expression's) or 3 (a replay's) with
     * 12 elements */
    pb_sample_patch p;
    pb_sample_patch_make(&p, "jam", 1, NULL, 0);
    uint8_t *b = malloc(p.stmt.len);
    memcpy(b, p.stmt.data, p.stmt.len);
    b[1] = 0x04;
    CHECK(pb_statement_decode(b, p.stmt.len, &s, NULL) == PB_ERR_VERSION);
    b[1] = 0x03;
    CHECK(pb_statement_decode(b, p.stmt.len, &s, NULL) == PB_ERR_FIELD_TYPE);
    b[1] = 0x02;
    CHECK(pb_statement_decode(b, p.stmt.len, &s, NULL) == PB_ERR_FIELD_TYPE);
    free(b);
    /* every truncation */
    for (size_t len = 1; len < p.stmt.len; len++) {
        b = malloc(len);
        memcpy(b, p.stmt.data, len);
        pb_err e = pb_statement_decode(b, len, &s, NULL);
        free(b);
        if (e != PB_ERR_TRUNCATED) {
            CHECK(e == PB_ERR_TRUNCATED);
            break;
        }
    }
    pb_sample_patch_free(&p);
}

TEST(test_expression_statement_is_version_2_with_its_kind_last)
{
    pb_sample_patch p;
    pb_sample_expr_make(&p, "jam", 3, NULL);
    /* 0x9d: an array of 13; version 2; ... the last element "expr" */
    REQUIRE(p.stmt.len > 6);
    CHECK(p.stmt.data[0] == 0x9d && p.stmt.data[1] == 0x02);
    CHECK(!memcmp(p.stmt.data + p.stmt.len - 5, "\xa4" "expr", 5));
    pb_statement s;
    pb_errmsg why;
    REQUIRE(pb_statement_decode(p.stmt.data, p.stmt.len, &s, &why) == PB_OK);
    CHECK(s.kind == PB_KIND_EXPR);
    CHECK(s.n_symbols == 0);
    CHECK(s.lang == PB_LANG_LISP);
    pb_buf again;
    pb_buf_init(&again);
    CHECK(pb_statement_encode(&s, &again, NULL) == PB_OK);
    CHECK(again.len == p.stmt.len &&
          !memcmp(again.data, p.stmt.data, again.len));
    /* an expression names no symbols */
    pb_symbol sym = {pb_cstr("ggg"), pb_cstr("dd")};
    s.symbols = &sym;
    s.n_symbols = 1;
    CHECK(pb_statement_encode(&s, &again, NULL) == PB_ERR_FIELD_RANGE);
    s.n_symbols = 0;
    s.kind = (pb_patch_kind)7;
    CHECK(pb_statement_encode(&s, &again, NULL) == PB_ERR_FIELD_RANGE);
    pb_buf_free(&again);
    pb_statement_free(&s);

    uint8_t *b = malloc(p.stmt.len);
    /* an unknown kind: "expq" */
    memcpy(b, p.stmt.data, p.stmt.len);
    b[p.stmt.len - 1] = 'q';
    CHECK(pb_statement_decode(b, p.stmt.len, &s, &why) == PB_ERR_FIELD_RANGE);
    /* the kind as another type: fixstr 4 -> bin 4 is one more byte, so
     * make it a positive int in place of the whole string instead */
    memcpy(b, p.stmt.data, p.stmt.len - 5);
    b[p.stmt.len - 5] = 0x01;
    CHECK(pb_statement_decode(b, p.stmt.len - 4, &s, &why) ==
          PB_ERR_FIELD_TYPE);
    /* version 1 with 13 elements */
    memcpy(b, p.stmt.data, p.stmt.len);
    b[1] = 0x01;
    CHECK(pb_statement_decode(b, p.stmt.len, &s, &why) == PB_ERR_FIELD_TYPE);
    free(b);
    pb_sample_patch_free(&p);

    /* definitions stay version 1 with 12 elements */
    pb_sample_patch_make(&p, "jam", 1, NULL, 0);
    CHECK(p.stmt.data[0] == 0x9c && p.stmt.data[1] == 0x01);
    REQUIRE(pb_statement_decode(p.stmt.data, p.stmt.len, &s, &why) == PB_OK);
    CHECK(s.kind == PB_KIND_DEFS);
    pb_statement_free(&s);
    pb_sample_patch_free(&p);
}

TEST(test_replayed_statement_is_version_3_naming_its_origin)
{
    pb_sample_patch p;
    pb_sample_replay_make(&p, "jam2", 1, NULL, "jam", 7);
    /* 0x9f: an array of 15; version 3; ... kind "", "jam", 7 */
    REQUIRE(p.stmt.len > 8);
    CHECK(p.stmt.data[0] == 0x9f && p.stmt.data[1] == 0x03);
    CHECK(!memcmp(p.stmt.data + p.stmt.len - 6, "\xa0\xa3jam\x07", 6));
    pb_statement s;
    pb_errmsg why;
    REQUIRE(pb_statement_decode(p.stmt.data, p.stmt.len, &s, &why) == PB_OK);
    CHECK(s.kind == PB_KIND_DEFS);
    CHECK(pb_str_eq(s.origin_room, "jam"));
    CHECK(s.origin_seq == 7);
    CHECK(pb_str_eq(s.room, "jam2") && s.seq == 1);
    pb_buf again;
    pb_buf_init(&again);
    CHECK(pb_statement_encode(&s, &again, NULL) == PB_OK);
    CHECK(again.len == p.stmt.len &&
          !memcmp(again.data, p.stmt.data, again.len));
    /* both or neither */
    s.origin_seq = 0;
    CHECK(pb_statement_encode(&s, &again, &why) == PB_ERR_FIELD_RANGE);
    CHECK(strstr(why.text, "origin seq") != NULL);
    s.origin_seq = 7;
    s.origin_room = pb_cstr("");
    CHECK(pb_statement_encode(&s, &again, &why) == PB_ERR_FIELD_RANGE);
    CHECK(strstr(why.text, "origin room") != NULL);
    /* an expression replayed keeps its kind */
    s.origin_room = pb_cstr("jam");
    s.kind = PB_KIND_EXPR;
    s.n_symbols = 0;
    CHECK(pb_statement_encode(&s, &again, NULL) == PB_OK);
    CHECK(again.data[0] == 0x9f);
    pb_buf_free(&again);
    pb_statement_free(&s);

    uint8_t *b = malloc(p.stmt.len + 1);
    /* origin seq 0 */
    memcpy(b, p.stmt.data, p.stmt.len);
    b[p.stmt.len - 1] = 0x00;
    CHECK(pb_statement_decode(b, p.stmt.len, &s, &why) == PB_ERR_FIELD_RANGE);
    /* an empty origin room: "jam" -> "", the seq right after */
    memcpy(b, p.stmt.data, p.stmt.len - 5);
    b[p.stmt.len - 5] = 0xa0;
    b[p.stmt.len - 4] = 0x07;
    CHECK(pb_statement_decode(b, p.stmt.len - 3, &s, &why) ==
          PB_ERR_FIELD_RANGE);
    /* the origin seq as a str */
    memcpy(b, p.stmt.data, p.stmt.len);
    b[p.stmt.len - 1] = 0xa0;
    CHECK(pb_statement_decode(b, p.stmt.len, &s, &why) == PB_ERR_FIELD_TYPE);
    /* version 2 with 15 elements, version 3 with 13 */
    memcpy(b, p.stmt.data, p.stmt.len);
    b[1] = 0x02;
    CHECK(pb_statement_decode(b, p.stmt.len, &s, &why) == PB_ERR_FIELD_TYPE);
    /* version 4 is not known */
    b[1] = 0x04;
    CHECK(pb_statement_decode(b, p.stmt.len, &s, &why) == PB_ERR_VERSION);
    /* an unknown kind in version 3 */
    memcpy(b, p.stmt.data, p.stmt.len - 6);
    memcpy(b + p.stmt.len - 6, "\xa1x\xa3jam\x07", 7);
    CHECK(pb_statement_decode(b, p.stmt.len + 1, &s, &why) ==
          PB_ERR_FIELD_RANGE);
    free(b);
    pb_sample_patch_free(&p);

    /* and the empty kind is version 3's alone: version 2 refuses it */
    pb_sample_expr_make(&p, "jam", 3, NULL);
    b = malloc(p.stmt.len);
    memcpy(b, p.stmt.data, p.stmt.len - 5);
    b[p.stmt.len - 5] = 0xa0;
    CHECK(pb_statement_decode(b, p.stmt.len - 4, &s, &why) ==
          PB_ERR_FIELD_RANGE);
    free(b);
    pb_sample_patch_free(&p);
}

TEST(test_statement_encode_checks_limits)
{
    pb_statement s = {0};
    pb_buf b;
    pb_buf_init(&b);
    s.room = pb_cstr("jam");
    s.seq = 1;
    s.lang = PB_LANG_C;
    CHECK(pb_statement_encode(&s, &b, NULL) == PB_OK);
    s.seq = 0;
    CHECK(pb_statement_encode(&s, &b, NULL) == PB_ERR_FIELD_RANGE);
    s.seq = 1;
    s.room = pb_cstr("");
    CHECK(pb_statement_encode(&s, &b, NULL) == PB_ERR_FIELD_RANGE);
    char longname[PB_MAX_NAME_BYTES + 2];
    memset(longname, 'r', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    s.room = pb_cstr(longname);
    CHECK(pb_statement_encode(&s, &b, NULL) == PB_ERR_FIELD_RANGE);
    s.room = pb_cstr("jam");
    s.lang = PB_LANG_NONE;
    CHECK(pb_statement_encode(&s, &b, NULL) == PB_ERR_FIELD_RANGE);
    s.lang = PB_LANG_LISP;
    pb_symbol *syms = calloc(PB_MAX_SYMBOLS + 1, sizeof *syms);
    for (unsigned i = 0; i <= PB_MAX_SYMBOLS; i++)
        syms[i] = (pb_symbol){pb_cstr("f"), pb_cstr("v()")};
    s.symbols = syms;
    s.n_symbols = PB_MAX_SYMBOLS + 1;
    CHECK(pb_statement_encode(&s, &b, NULL) == PB_ERR_FIELD_RANGE);
    s.n_symbols = PB_MAX_SYMBOLS;
    CHECK(pb_statement_encode(&s, &b, NULL) == PB_OK);
    pb_statement d;
    CHECK(pb_statement_decode(b.data, b.len, &d, NULL) == PB_OK);
    CHECK(d.n_symbols == PB_MAX_SYMBOLS);
    pb_statement_free(&d);
    syms[3].type = pb_cstr("");
    CHECK(pb_statement_encode(&s, &b, NULL) == PB_ERR_FIELD_RANGE);
    free(syms);
    pb_buf_free(&b);
}

TEST(test_patch_verify_accepts_a_good_patch)
{
    pb_sample_patch p;
    pb_sample_patch_make(&p, "jam", 1, NULL, 0);
    uint8_t pk[32], sk[64];
    pb_sample_keypair(pk, sk);
    pb_statement s;
    pb_errmsg why;
    pb_err e = pb_patch_verify(&p.patch, pk, &s, &why);
    if (e)
        fprintf(stderr, "  %s\n", why.text);
    CHECK(e == PB_OK);
    CHECK(s.seq == 1);
    pb_statement_free(&s);
    /* without the optional source, still fine */
    p.patch.source = (pb_str){0};
    CHECK(pb_patch_verify(&p.patch, pk, &s, NULL) == PB_OK);
    pb_statement_free(&s);
    /* a superseded patch in catch-up comes without its module */
    p.patch.module = (pb_bytes){0};
    CHECK(pb_patch_verify(&p.patch, pk, &s, NULL) == PB_OK);
    CHECK(s.seq == 1);
    pb_statement_free(&s);
    pb_sample_patch_free(&p);
}

TEST(test_patch_verify_rejects_each_tampering_with_its_own_code)
{
    pb_sample_patch p;
    pb_sample_patch_make(&p, "jam", 1, NULL, 0);
    uint8_t pk[32], sk[64], other_pk[32], other_sk[64];
    pb_sample_keypair(pk, sk);
    crypto_sign_keypair(other_pk, other_sk);
    pb_statement s;
    pb_errmsg why;

    /* signed by another relay: the signature does not verify with ours */
    CHECK(pb_patch_verify(&p.patch, other_pk, &s, &why) ==
          PB_ERR_BAD_SIGNATURE);
    CHECK(strstr(why.text, "room's key") != NULL);
    CHECK(s.priv_ == NULL);

    uint8_t sig[64];
    memcpy(sig, p.sig, 64);
    sig[10] ^= 0x40;
    pb_patch bad = p.patch;
    bad.sig.ptr = sig;
    CHECK(pb_patch_verify(&bad, pk, &s, &why) == PB_ERR_BAD_SIGNATURE);

    /* A statement re-signed by another key but claiming the pinned key. */
    pb_sign(p.stmt.data, p.stmt.len, other_sk, sig);
    CHECK(pb_patch_verify(&bad, pk, &s, &why) == PB_ERR_BAD_SIGNATURE);

    uint8_t module[16];
    memcpy(module, p.module, sizeof module);
    module[7] ^= 1;
    bad = p.patch;
    bad.module.ptr = module;
    CHECK(pb_patch_verify(&bad, pk, &s, &why) == PB_ERR_HASH_MISMATCH);
    CHECK(strstr(why.text, "module") != NULL);

    bad = p.patch;
    bad.source = pb_cstr("double ggg(double v) { return v + 50; }");
    CHECK(pb_patch_verify(&bad, pk, &s, &why) == PB_ERR_HASH_MISMATCH);
    CHECK(strstr(why.text, "source") != NULL);

    /* Tampered statement bytes: still canonical, so the signature fails. */
    uint8_t *stmt = malloc(p.stmt.len);
    memcpy(stmt, p.stmt.data, p.stmt.len);
    stmt[p.stmt.len - 40] ^= 1; /* inside created/apply time or the key */
    bad = p.patch;
    bad.stmt.ptr = stmt;
    pb_err e = pb_patch_verify(&bad, pk, &s, &why);
    CHECK(e == PB_ERR_BAD_SIGNATURE || e == PB_ERR_WRONG_KEY ||
          e == PB_ERR_NOT_CANONICAL);
    CHECK(e != PB_OK);
    free(stmt);
    pb_sample_patch_free(&p);
}

/* Nothing unauthenticated reaches the statement decoder: bytes that are
 * not even msgpack, under a signature that does not verify, are a bad
 * signature (before, a decode error: the statement was parsed first). The
 * same bytes signed with the pinned key are decoded, and refused for what
 * they are. A statement signed with the pinned key that names another key
 * is PB_ERR_WRONG_KEY. */
TEST(test_patch_verify_checks_the_signature_before_decoding)
{
    uint8_t pk[32], sk[64];
    pb_sample_keypair(pk, sk);
    static const uint8_t junk[] = {0xc1, 0xc1, 0xc1, 0xc1};
    uint8_t sig[64] = {0};
    pb_patch bad = {.stmt = {junk, sizeof junk}, .sig = {sig, sizeof sig}};
    pb_statement s;
    pb_errmsg why;
    CHECK(pb_patch_verify(&bad, pk, &s, &why) == PB_ERR_BAD_SIGNATURE);
    CHECK(s.priv_ == NULL);
    pb_sign(junk, sizeof junk, sk, sig);
    CHECK(pb_patch_verify(&bad, pk, &s, &why) == PB_ERR_MALFORMED);
    CHECK(s.priv_ == NULL);

    pb_sample_patch p;
    pb_sample_patch_make(&p, "jam", 1, NULL, 0);
    pb_statement st;
    REQUIRE(pb_statement_decode(p.stmt.data, p.stmt.len, &st, NULL) == PB_OK);
    memset(st.key, 7, sizeof st.key);
    pb_buf b;
    pb_buf_init(&b);
    REQUIRE(pb_statement_encode(&st, &b, NULL) == PB_OK);
    pb_statement_free(&st);
    pb_sign(b.data, b.len, sk, sig);
    pb_patch named = p.patch;
    named.stmt = (pb_bytes){b.data, (uint32_t)b.len};
    named.sig = (pb_bytes){sig, sizeof sig};
    CHECK(pb_patch_verify(&named, pk, &s, &why) == PB_ERR_WRONG_KEY);
    CHECK(strstr(why.text, "naming key 0707") != NULL);
    pb_buf_free(&b);
    pb_sample_patch_free(&p);
}

static const pb_test tests[] = {
    T(test_ed25519_matches_known_answers),
    T(test_blake2b_256_known_answer),
    T(test_statement_roundtrips_and_hashes_its_bytes),
    T(test_non_canonical_statement_is_rejected),
    T(test_statement_shape_errors),
    T(test_expression_statement_is_version_2_with_its_kind_last),
    T(test_replayed_statement_is_version_3_naming_its_origin),
    T(test_statement_encode_checks_limits),
    T(test_patch_verify_accepts_a_good_patch),
    T(test_patch_verify_rejects_each_tampering_with_its_own_code),
    T(test_patch_verify_checks_the_signature_before_decoding),
};

static int setup(void)
{
    return pb_init() == PB_OK ? 0 : 1;
}
PB_TEST_MAIN(tests, setup)
