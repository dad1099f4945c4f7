/* test_buf.c — output buffers (pb_buf) and the msgpack sink over them
 * (pb_writer): a growable buffer grows and keeps its contents, a fixed one
 * never touches memory past its end or reallocates the caller's memory,
 * and every failure leaves the buffer as it was. */
#include "../check.h"
#include "pb_protocol.h"

#include <msgpack.h>
#include <stdint.h>
#include <string.h>

TEST(test_a_growable_buffer_grows_and_keeps_its_contents)
{
    pb_buf b;
    pb_buf_init(&b);
    CHECK(pb_buf_reserve(&b, 0) == PB_OK);
    for (int i = 0; i < 1000; i++) {
        uint8_t byte = (uint8_t)i;
        REQUIRE(pb_buf_append(&b, &byte, 1) == PB_OK);
    }
    REQUIRE(b.len == 1000 && b.cap >= 1000);
    for (int i = 0; i < 1000; i++)
        CHECK(b.data[i] == (uint8_t)i);
    size_t len = b.len;
    REQUIRE(pb_buf_reserve(&b, 5000) == PB_OK);
    CHECK(b.len == len && b.cap - b.len >= 5000);
    CHECK(b.data[999] == (uint8_t)999);
    pb_buf_free(&b);
    CHECK(b.data == NULL && b.len == 0 && b.cap == 0);
    pb_buf_free(NULL);
}

TEST(test_a_fixed_buffer_fills_to_its_end_and_no_further)
{
    uint8_t mem[10];
    pb_buf b;
    pb_buf_init_fixed(&b, mem, sizeof mem);
    CHECK(pb_buf_append(&b, "0123456", 7) == PB_OK);
    CHECK(pb_buf_reserve(&b, 3) == PB_OK);
    CHECK(pb_buf_reserve(&b, 4) == PB_ERR_BUF_TOO_SMALL);
    CHECK(pb_buf_append(&b, "789A", 4) == PB_ERR_BUF_TOO_SMALL);
    CHECK(b.data == mem && b.len == 7 && b.cap == sizeof mem);
    CHECK(pb_buf_append(&b, "789", 3) == PB_OK);
    CHECK(b.len == 10 && !memcmp(mem, "0123456789", 10));
    CHECK(pb_buf_append(&b, "", 0) == PB_OK);
    CHECK(pb_buf_append(&b, "x", 1) == PB_ERR_BUF_TOO_SMALL);
    pb_buf_free(&b); /* empties; the memory stays the caller's */
    CHECK(b.data == mem && b.len == 0 && b.is_fixed);
}

TEST(test_an_impossible_reservation_is_out_of_memory_and_harmless)
{
    pb_buf b;
    pb_buf_init(&b);
    REQUIRE(pb_buf_append(&b, "abc", 3) == PB_OK);
    uint8_t *data = b.data;
    CHECK(pb_buf_reserve(&b, SIZE_MAX) == PB_ERR_NOMEM);
    CHECK(pb_buf_reserve(&b, SIZE_MAX / 2) == PB_ERR_NOMEM);
    CHECK(b.data == data && b.len == 3 && !memcmp(b.data, "abc", 3));
    pb_buf_free(&b);
}

TEST(test_a_writer_stops_at_its_limit_and_stays_stopped)
{
    pb_buf b;
    pb_buf_init(&b);
    REQUIRE(pb_buf_append(&b, "old", 3) == PB_OK);
    pb_writer w;
    msgpack_packer pk;
    pb_writer_start(&w, &b, 9);
    msgpack_packer_init(&pk, &w, pb_writer_write);
    CHECK(b.len == 0); /* a writer replaces the contents */
    CHECK(msgpack_pack_str_with_body(&pk, "abcdef", 6) == 0); /* 7 bytes */
    CHECK(w.err == PB_OK && b.len == 7);
    /* the header byte fits (8), the 2-byte body does not (10) */
    CHECK(msgpack_pack_str_with_body(&pk, "ab", 2) != 0);
    CHECK(w.err == PB_ERR_TOO_BIG && b.len == 8);
    CHECK(msgpack_pack_nil(&pk) != 0); /* 1 byte would fit: still stopped */
    CHECK(w.err == PB_ERR_TOO_BIG && b.len == 8);
    pb_buf_free(&b);

    uint8_t mem[4];
    pb_buf_init_fixed(&b, mem, sizeof mem);
    pb_writer_start(&w, &b, 100);
    msgpack_packer_init(&pk, &w, pb_writer_write);
    CHECK(msgpack_pack_str_with_body(&pk, "abcdef", 6) != 0);
    CHECK(w.err == PB_ERR_BUF_TOO_SMALL && b.data == mem);
}

/* A file of n bytes (a pattern), opened for reading; NULL if the test
 * system cannot make one. */
static FILE *file_of(size_t n)
{
    FILE *f = tmpfile();
    for (size_t i = 0; f && i < n; i++)
        fputc('a' + (int)(i % 26), f);
    if (f)
        rewind(f);
    return f;
}

TEST(test_a_file_is_read_whole_and_ends_with_a_nul)
{
    size_t sizes[] = {0, 1, 65534, 65535, 65536, 200000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        FILE *f = file_of(sizes[k]);
        if (!f)
            SKIP("no temporary files here");
        pb_buf b;
        pb_buf_init(&b);
        pb_errmsg why = {{0}};
        CHECK(pb_buf_read_file(&b, f, "t", 0, &why) == PB_OK);
        CHECK_EQ_INT(b.len, sizes[k]);
        CHECK(b.len < b.cap && b.data[b.len] == '\0');
        CHECK(b.len == 0 || (b.data[0] == 'a' &&
                             b.data[b.len - 1] == 'a' + (b.len - 1) % 26));
        fclose(f);
        pb_buf_free(&b);
    }
}

TEST(test_a_file_over_the_limit_is_too_big_and_leaves_nothing)
{
    FILE *f = file_of(1001);
    if (!f)
        SKIP("no temporary files here");
    pb_buf b;
    pb_buf_init(&b);
    pb_errmsg why = {{0}};
    CHECK(pb_buf_read_file(&b, f, "big.c", 1000, &why) == PB_ERR_TOO_BIG);
    CHECK_EQ_INT(b.len, 0);
    CHECK(strstr(why.text, "big.c") != NULL);
    rewind(f);
    CHECK(pb_buf_read_file(&b, f, "big.c", 1001, &why) == PB_OK);
    CHECK_EQ_INT(b.len, 1001);
    fclose(f);
    pb_buf_free(&b);
}

/* fopen() of a directory succeeds and fread() then fails: a reader that
 * does not check ferror() takes it for an empty file. */
TEST(test_a_read_error_is_reported_not_taken_for_the_end)
{
    FILE *f = fopen("/", "r");
    if (!f)
        SKIP("this system does not open a directory as a file");
    pb_buf b;
    pb_buf_init(&b);
    pb_errmsg why = {{0}};
    CHECK(pb_buf_read_file(&b, f, "/", 0, &why) == PB_ERR_IO);
    CHECK_EQ_INT(b.len, 0);
    CHECK(strstr(why.text, "cannot read /") != NULL);
    fclose(f);
    pb_buf_free(&b);
}

TEST(test_a_fixed_buffer_takes_a_file_that_fits_exactly)
{
    uint8_t mem[11];
    pb_buf b;
    pb_buf_init_fixed(&b, mem, sizeof mem);
    pb_errmsg why = {{0}};
    FILE *f = file_of(10);
    if (!f)
        SKIP("no temporary files here");
    CHECK(pb_buf_read_file(&b, f, "t", 0, &why) == PB_OK);
    CHECK(b.len == 10 && mem[10] == '\0');
    fclose(f);
    f = file_of(11);
    CHECK(pb_buf_read_file(&b, f, "t", 0, &why) == PB_ERR_BUF_TOO_SMALL);
    CHECK(b.len == 0 && b.data == mem);
    fclose(f);
}

static const pb_test tests[] = {
    T(test_a_growable_buffer_grows_and_keeps_its_contents),
    T(test_a_fixed_buffer_fills_to_its_end_and_no_further),
    T(test_an_impossible_reservation_is_out_of_memory_and_harmless),
    T(test_a_writer_stops_at_its_limit_and_stays_stopped),
    T(test_a_file_is_read_whole_and_ends_with_a_nul),
    T(test_a_file_over_the_limit_is_too_big_and_leaves_nothing),
    T(test_a_read_error_is_reported_not_taken_for_the_end),
    T(test_a_fixed_buffer_takes_a_file_that_fits_exactly),
};
PB_TEST_MAIN(tests, NULL)
