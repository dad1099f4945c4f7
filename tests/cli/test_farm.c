/* test_farm.c — the test farm's outputs without a relay (cli/farm.h): the
 * device × test matrix fills in from answers, gone and stale devices, the
 * exit status, the printed matrix, JUnit XML, and PNG decoding of good,
 * damaged and oversized images with the pixel comparison. */
#include "../check.h"
#include "farm.h"

#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static void set_cell(farm_run *r, int d, const char *test, farm_outcome o,
                     const char *msg)
{
    int t = farm_test_index(r, test);
    farm_cell *c = farm_cell_at(r, (uint32_t)d, (uint32_t)t);
    c->outcome = o;
    c->us = 120;
    snprintf(c->message, sizeof c->message, "%s", msg ? msg : "");
    if (o == FARM_FAIL) {
        snprintf(c->file, sizeof c->file, "wide.c");
        c->line = 9;
    }
}

/* Three devices, three tests; "fits" fails on the narrow one. */
static void sample(farm_run *r)
{
    farm_init(r);
    r->seq = 5;
    int wide = farm_add_device(r, 11, "desk", "node 20", 1024, 600);
    int narrow = farm_add_device(r, 12, "phone", "Chromium", 390, 844);
    int fox = farm_add_device(r, 13, "fox", "Firefox 153", 800, 450);
    const char *tests[] = {"adds", "fits", "draws"};
    for (int d = wide; d <= fox; d++) {
        for (int t = 0; t < 3; t++)
            set_cell(r, d, tests[t],
                     d == narrow && t == 1 ? FARM_FAIL : FARM_PASS,
                     d == narrow && t == 1 ? "pb_screen()->width >= 500" : "");
        farm_answered(r, (uint32_t)d, 5);
    }
}

static char *print(const farm_run *r)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    farm_print_matrix(r, f);
    fclose(f);
    return text;
}

TEST(test_farm_one_failure_on_the_narrow_device_exits_1)
{
    farm_run r;
    sample(&r);
    CHECK(farm_is_complete(&r));
    farm_counts n = farm_count(&r);
    CHECK_EQ_INT(n.pass, 8);
    CHECK_EQ_INT(n.fail, 1);
    CHECK_EQ_INT(farm_exit_status(&r), 1);
    char *text = print(&r);
    CHECK(strstr(text, "test  desk        phone       fox\n") != NULL);
    CHECK(strstr(text, "FAIL 120us") != NULL);
    CHECK(strstr(text, "fits on phone: wide.c:9: pb_screen()->width >= 500") !=
          NULL);
    CHECK(strstr(text, "3 tests on 3 devices in 0.00 s: 8 passed, 1 failed") !=
          NULL);
    free(text);
    farm_free(&r);
}

TEST(test_farm_all_passing_exits_0_and_a_missing_test_is_not_run)
{
    farm_run r;
    farm_init(&r);
    r.seq = 2;
    int a = farm_add_device(&r, 1, "a", "", 0, 0);
    int b = farm_add_device(&r, 2, "b", "", 0, 0);
    set_cell(&r, a, "x", FARM_PASS, NULL);
    farm_answered(&r, (uint32_t)a, 2);
    set_cell(&r, b, "x", FARM_PASS, NULL);
    set_cell(&r, b, "y", FARM_PASS, NULL); /* a never had y */
    farm_answered(&r, (uint32_t)b, 2);
    CHECK_EQ_INT(farm_cell_get(&r, (uint32_t)a, 1)->outcome, FARM_NOT_RUN);
    CHECK_EQ_INT(farm_exit_status(&r), 0);
    farm_free(&r);
}

/* Devices come before any test is known (a run starts with who is there);
 * growing past the first eight must not resize the empty test list to 0
 * bytes, which realloc frees (the farm test's double free). */
TEST(test_farm_many_devices_before_any_test)
{
    farm_run r;
    farm_init(&r);
    for (uint64_t id = 1; id <= 20; id++)
        CHECK_EQ_INT(farm_add_device(&r, id, "d", "", 0, 0), (int)id - 1);
    int t = farm_test_index(&r, "x");
    CHECK_EQ_INT(t, 0);
    CHECK_EQ_INT(farm_cell_get(&r, 19, (uint32_t)t)->outcome, FARM_PENDING);
    farm_free(&r);
}

TEST(test_farm_gone_stale_and_silent_devices_exit_4)
{
    farm_run r;
    farm_init(&r);
    r.seq = 7;
    int a = farm_add_device(&r, 1, "a", "", 0, 0);
    int gone = farm_add_device(&r, 2, "b", "", 0, 0);
    set_cell(&r, a, "x", FARM_PASS, NULL);
    farm_answered(&r, (uint32_t)a, 7);
    CHECK(!farm_is_complete(&r));
    farm_gone(&r, (uint32_t)gone);
    CHECK(farm_is_complete(&r));
    CHECK_EQ_INT(farm_cell_get(&r, (uint32_t)gone, 0)->outcome, FARM_GONE);
    CHECK_EQ_INT(farm_exit_status(&r), 4);
    /* a device that answers from an older seq: its passes count for nothing */
    int old = farm_add_device(&r, 3, "c", "", 0, 0);
    set_cell(&r, old, "x", FARM_PASS, NULL);
    farm_answered(&r, (uint32_t)old, 6);
    CHECK_EQ_INT(farm_cell_get(&r, (uint32_t)old, 0)->outcome, FARM_STALE);
    /* a silent device at the deadline */
    farm_add_device(&r, 4, "d", "", 0, 0);
    farm_counts n = farm_count(&r);
    CHECK_EQ_INT(n.pass, 1);
    CHECK_EQ_INT(n.gone, 1);
    CHECK_EQ_INT(n.stale, 1);
    CHECK_EQ_INT(n.pending, 1);
    CHECK_EQ_INT(farm_exit_status(&r), 4);
    char *text = print(&r);
    CHECK(strstr(text, "b: left the room before answering") != NULL);
    CHECK(strstr(text, "c: answered from seq 6; the run is at seq 7") != NULL);
    CHECK(strstr(text, "d: did not answer in time") != NULL);
    free(text);
    /* a failure outranks a missing device */
    set_cell(&r, a, "y", FARM_TIMEOUT, "did not return within 2000 ms");
    CHECK_EQ_INT(farm_exit_status(&r), 1);
    farm_free(&r);
}

TEST(test_farm_a_check_without_a_file_says_its_line)
{
    farm_run r;
    farm_init(&r);
    int d = farm_add_device(&r, 1, "lispy", "", 0, 0);
    set_cell(&r, d, "wrong", FARM_FAIL, "(= (ggg 1) 51)");
    farm_cell *c = farm_cell_at(&r, (uint32_t)d, 0);
    c->file[0] = '\0'; /* Lisp's is reports a line only */
    c->line = 3;
    farm_answered(&r, (uint32_t)d, 0);
    char *text = print(&r);
    CHECK(strstr(text, "wrong on lispy: line 3: (= (ggg 1) 51)\n") != NULL);
    free(text);
    farm_free(&r);
}

TEST(test_farm_labels_are_unique)
{
    farm_run r;
    farm_init(&r);
    farm_add_device(&r, 1, "phone", "", 0, 0);
    int b = farm_add_device(&r, 2, "phone", "", 0, 0);
    int c = farm_add_device(&r, 3, "", "", 0, 0);
    CHECK(!strcmp(r.devices[b].label, "phone#2"));
    CHECK(!strcmp(r.devices[c].label, "runtime"));
    CHECK_EQ_INT(farm_add_device(&r, 2, "x", "", 0, 0), b); /* known id */
    farm_free(&r);
}

TEST(test_farm_cells_survive_growth)
{
    farm_run r;
    farm_init(&r);
    r.seq = 1;
    char name[32];
    for (int d = 0; d < 20; d++) {
        snprintf(name, sizeof name, "dev%d", d);
        int i = farm_add_device(&r, (uint64_t)d + 1, name, "", 0, 0);
        for (int t = 0; t < 40; t++) {
            snprintf(name, sizeof name, "t%02d", t);
            set_cell(&r, i, name, (d + t) % 3 ? FARM_PASS : FARM_FAIL, "m");
        }
        farm_answered(&r, (uint32_t)i, 1);
    }
    int wrong = 0;
    for (int d = 0; d < 20; d++)
        for (int t = 0; t < 40; t++)
            wrong += farm_cell_get(&r, (uint32_t)d, (uint32_t)t)->outcome !=
                     ((d + t) % 3 ? FARM_PASS : FARM_FAIL);
    CHECK_EQ_INT(wrong, 0);
    farm_free(&r);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

TEST(test_farm_junit_has_a_suite_per_device_and_escapes_text)
{
    farm_run r;
    sample(&r);
    set_cell(&r, 0, "draws", FARM_TRAP, "RuntimeError: <unreachable> & \"x\"");
    farm_cell *c = farm_cell_at(&r, 0, 2);
    snprintf(c->var, sizeof c->var, "helper");
    c->var_seq = 4;
    char path[] = "/tmp/pb-junit-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    pb_errmsg why = {{0}};
    REQUIRE(farm_write_junit(&r, path, &why) == 0);
    const char *x = slurp(path);
    REQUIRE(x != NULL);
    CHECK(strstr(x, "<testsuite name=\"phone\" tests=\"3\" failures=\"1\" "
                    "errors=\"0\"") != NULL);
    CHECK(strstr(x, "<testsuite name=\"desk\" tests=\"3\" failures=\"0\" "
                    "errors=\"1\"") != NULL);
    CHECK(strstr(x, "<failure type=\"check\" message=\"pb_screen()-&gt;width "
                    "&gt;= 500\">wide.c:9: pb_screen()-&gt;width &gt;= "
                    "500</failure>") != NULL);
    CHECK(strstr(x, "trap in helper (patch seq 4): RuntimeError: "
                    "&lt;unreachable&gt; &amp; &quot;x&quot;") != NULL);
    CHECK(strstr(x, "<testsuites name=\"patchbay\" tests=\"9\" failures=\"1\" "
                    "errors=\"1\"") != NULL);
    unlink(path);
    /* a folder that does not exist: an error naming the file */
    CHECK(farm_write_junit(&r, "/nonexistent-dir/x.xml", &why) == -1);
    CHECK(strstr(why.text, "/nonexistent-dir/x.xml") != NULL);
    farm_free(&r);
}

/* ---- PNG ------------------------------------------------------------------
 */

/* A PNG written by libpng's own encoder. */
static uint8_t *make_png(uint32_t w, uint32_t h, uint8_t seed, size_t *len)
{
    uint8_t *px = malloc((size_t)w * h * 4);
    for (size_t i = 0; i < (size_t)w * h * 4; i++)
        px[i] = (uint8_t)(i * 31 + seed);
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    pi.width = w;
    pi.height = h;
    pi.format = PNG_FORMAT_RGBA;
    png_alloc_size_t n = 0;
    png_image_write_to_memory(&pi, NULL, &n, 0, px, 0, NULL);
    uint8_t *out = malloc(n);
    if (!png_image_write_to_memory(&pi, out, &n, 0, px, 0, NULL)) {
        free(out);
        out = NULL;
    }
    free(px);
    *len = n;
    return out;
}

TEST(test_farm_png_round_trip_and_diff)
{
    size_t la, lb;
    uint8_t *a = make_png(31, 17, 0, &la), *b = make_png(31, 17, 0, &lb);
    REQUIRE(a && b);
    farm_image ia, ib;
    pb_errmsg why = {{0}};
    REQUIRE(farm_png_decode(a, la, &ia, &why) == PB_OK);
    REQUIRE(farm_png_decode(b, lb, &ib, &why) == PB_OK);
    CHECK_EQ_INT(ia.width, 31);
    CHECK_EQ_INT(ia.height, 17);
    CHECK_EQ_INT(ia.rgba[4 * 3 + 1], (uint8_t)((4 * 3 + 1) * 31));
    uint64_t differ, total;
    farm_image_diff(&ia, &ib, &differ, &total);
    CHECK_EQ_INT(differ, 0);
    CHECK_EQ_INT(total, 31 * 17);
    ib.rgba[4 * 100 + 3] ^= 1; /* one channel of one pixel */
    ib.rgba[4 * 200] ^= 0x80;
    farm_image_diff(&ia, &ib, &differ, &total);
    CHECK_EQ_INT(differ, 2);
    farm_image_free(&ib);
    size_t lc;
    uint8_t *c = make_png(40, 10, 0, &lc);
    farm_image ic;
    REQUIRE(farm_png_decode(c, lc, &ic, &why) == PB_OK);
    farm_image_diff(&ia, &ic, &differ, &total);
    CHECK_EQ_INT(differ, 527); /* sizes differ: all of the larger one */
    CHECK_EQ_INT(total, 527);
    farm_image_free(&ia);
    farm_image_free(&ic);
    free(a);
    free(b);
    free(c);
}

TEST(test_farm_png_refuses_damaged_and_huge_images)
{
    size_t len;
    uint8_t *a = make_png(8, 8, 3, &len);
    REQUIRE(a);
    farm_image img;
    pb_errmsg why = {{0}};
    /* not a PNG at all */
    CHECK(farm_png_decode((const uint8_t *)"GIF89a..", 8, &img, &why) ==
          PB_ERR_MALFORMED);
    CHECK(strstr(why.text, "not a PNG") != NULL);
    CHECK(img.rgba == NULL);
    /* cut short */
    CHECK(farm_png_decode(a, len / 2, &img, &why) == PB_ERR_MALFORMED);
    CHECK(img.rgba == NULL);
    /* a flipped bit in the IHDR chunk: its CRC no longer matches */
    uint8_t *bad = malloc(len);
    memcpy(bad, a, len);
    bad[20] ^= 1;
    CHECK(farm_png_decode(bad, len, &img, &why) == PB_ERR_MALFORMED);
    CHECK(img.rgba == NULL);
    /* a header claiming 100000 x 100000 pixels (with a valid CRC) is
     * refused before any pixel memory is asked for */
    memcpy(bad, a, len);
    bad[16] = 0, bad[17] = 1, bad[18] = 0x86, bad[19] = 0xa0;
    bad[20] = 0, bad[21] = 1, bad[22] = 0x86, bad[23] = 0xa0;
    uint32_t crc = (uint32_t)crc32(0, bad + 12, 17);
    bad[29] = (uint8_t)(crc >> 24), bad[30] = (uint8_t)(crc >> 16);
    bad[31] = (uint8_t)(crc >> 8), bad[32] = (uint8_t)crc;
    CHECK(farm_png_decode(bad, len, &img, &why) == PB_ERR_TOO_BIG);
    CHECK(strstr(why.text, "100000x100000") != NULL);
    CHECK(img.rgba == NULL);
    /* a file that is not there */
    CHECK(farm_png_load("/nonexistent.png", &img, &why) == PB_ERR_IO);
    CHECK(strstr(why.text, "/nonexistent.png") != NULL);
    free(bad);
    free(a);
}

/* --compare's reference image, read from a file: the whole file, and
 * every way it can fail names the file. */
TEST(test_farm_png_load_reads_a_file_and_names_it_when_it_cannot)
{
    size_t len;
    uint8_t *a = make_png(8, 5, 3, &len);
    REQUIRE(a);
    char dir[] = "/tmp/pb-farm-png-XXXXXX", path[64];
    REQUIRE(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/ref.png", dir);
    FILE *f = fopen(path, "wb");
    REQUIRE(f);
    CHECK(fwrite(a, 1, len, f) == len);
    CHECK(fclose(f) == 0);
    farm_image img;
    pb_errmsg why = {{0}};
    CHECK(farm_png_load(path, &img, &why) == PB_OK);
    CHECK(img.width == 8 && img.height == 5 && img.rgba != NULL);
    farm_image_free(&img);
    /* half of it */
    REQUIRE(truncate(path, (off_t)(len / 2)) == 0);
    CHECK(farm_png_load(path, &img, &why) == PB_ERR_MALFORMED);
    CHECK(strstr(why.text, path) != NULL);
    CHECK(img.rgba == NULL);
    /* a directory opens, but cannot be read */
    CHECK(farm_png_load(dir, &img, &why) == PB_ERR_IO);
    CHECK(strstr(why.text, dir) != NULL);
    CHECK(img.rgba == NULL);
    unlink(path);
    rmdir(dir);
    free(a);
}

static const pb_test tests[] = {
    T(test_farm_one_failure_on_the_narrow_device_exits_1),
    T(test_farm_all_passing_exits_0_and_a_missing_test_is_not_run),
    T(test_farm_many_devices_before_any_test),
    T(test_farm_gone_stale_and_silent_devices_exit_4),
    T(test_farm_a_check_without_a_file_says_its_line),
    T(test_farm_labels_are_unique),
    T(test_farm_cells_survive_growth),
    T(test_farm_junit_has_a_suite_per_device_and_escapes_text),
    T(test_farm_png_round_trip_and_diff),
    T(test_farm_png_refuses_damaged_and_huge_images),
    T(test_farm_png_load_reads_a_file_and_names_it_when_it_cannot),
};
PB_TEST_MAIN(tests, NULL)
