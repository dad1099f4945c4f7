/* farm.h — a room's devices as a test farm, as the command line holds it:
 * the devices of one run, the device × test matrix their answers fill in,
 * and what becomes of it (the printed matrix, JUnit XML, the exit status),
 * plus the PNG reading and comparing of `patchbay snapshot`.
 *
 * Nothing here talks to a relay: cmd_test.c and cmd_snapshot.c feed it what
 * arrives, so the outputs are tested on their own (tests/cli/). Not
 * thread-safe; every string is copied in (and cut to its buffer). */
#ifndef PB_CLI_FARM_H
#define PB_CLI_FARM_H

#include "pb_protocol.h"

#include <stdio.h>

/* What one device said about one test. */
typedef enum farm_outcome {
    FARM_PENDING = 0, /* no answer (yet): at the end, the device timed out */
    FARM_PASS,
    FARM_FAIL,    /* a check failed: file, line and message */
    FARM_TRAP,    /* the code trapped: var and var_seq say where */
    FARM_TIMEOUT, /* the test did not return; the runtime restarted */
    FARM_NOT_RUN, /* the device has no such test */
    FARM_GONE,    /* the device left the room before answering */
    FARM_STALE,   /* it answered, but from an older seq than the run's */
} farm_outcome;

/* "pass", "FAIL", ...: the word the matrix and the JUnit XML use. */
const char *farm_outcome_name(farm_outcome o);

typedef struct farm_cell {
    farm_outcome outcome;
    uint64_t us; /* how long the test ran on the device */
    char message[PB_MAX_MESSAGE_BYTES / 4];
    char file[PB_MAX_PATH_BYTES / 2];
    uint32_t line;
    char var[PB_MAX_NAME_BYTES + 1]; /* trap: the var that trapped */
    uint64_t var_seq;                /* and the patch that defined it */
} farm_cell;

/* One device: a runtime of the room, by the relay's client id. */
typedef struct farm_device {
    uint64_t id;
    char label[PB_MAX_NAME_BYTES + 8]; /* unique within the farm */
    char platform[PB_MAX_CLIENT_BYTES + 1];
    uint32_t canvas_w, canvas_h;
    uint64_t seq;      /* the seq its answer came from (0: none yet) */
    bool has_answered; /* its test_result arrived */
    bool is_gone;      /* it left the room */
} farm_device;

typedef struct farm_run {
    farm_device *devices;
    uint32_t n_devices;
    char (*tests)[PB_MAX_NAME_BYTES + 1]; /* the union of every device's */
    uint32_t n_tests;
    farm_cell *cells; /* n_devices * n_tests, device-major; grows */
    uint32_t cap_devices, cap_tests;
    uint64_t seq;   /* the seq the run asked for */
    double seconds; /* from the request to the last answer */
} farm_run;

void farm_init(farm_run *r);
void farm_free(farm_run *r);

/* Adds a device (label: its chosen label, else its token name; a label
 * another device already has gets "#ID" appended). Returns its index, or
 * -1 when out of memory. */
int farm_add_device(farm_run *r, uint64_t id, const char *label,
                    const char *platform, uint32_t canvas_w, uint32_t canvas_h);
/* The index of device id, or -1. */
int farm_find_device(const farm_run *r, uint64_t id);
/* The index of test name, added if new (-1: out of memory). */
int farm_test_index(farm_run *r, const char *name);
farm_cell *farm_cell_at(farm_run *r, uint32_t device, uint32_t test);
const farm_cell *farm_cell_get(const farm_run *r, uint32_t device,
                               uint32_t test);

/* Records that device answered from seq (a result's cells are set with
 * farm_cell_at); an answer from below the run's seq makes its cells
 * FARM_STALE. Then every test the device did not report is FARM_NOT_RUN. */
void farm_answered(farm_run *r, uint32_t device, uint64_t seq);
/* The device left: its unanswered cells become FARM_GONE. */
void farm_gone(farm_run *r, uint32_t device);
/* True when every device has answered or is gone. */
bool farm_is_complete(const farm_run *r);

typedef struct farm_counts {
    uint32_t pass, fail, trap, timeout, not_run, gone, stale, pending;
} farm_counts;
farm_counts farm_count(const farm_run *r);

/* The exit status of `patchbay test` for a finished run: 1 if a test
 * failed, trapped or timed out; else 4 if a device did not answer (gone,
 * stale, or still pending); else 0. A real failure outranks a missing
 * device: it says something about the code. */
int farm_exit_status(const farm_run *r);

/* The matrix, one row per test and one column per device, then one line
 * per failure with its file:line and message, then the totals. */
void farm_print_matrix(const farm_run *r, FILE *out);

/* JUnit XML, one <testsuite> per device. 0, or -1 (errno set) if the file
 * cannot be written; the file appears whole or not at all. */
int farm_write_junit(const farm_run *r, const char *path, pb_errmsg *why);

/* ---- PNG (farm_png.c, with libpng) ------------------------------------- */

#define FARM_PNG_MAX_SIDE 8192u /* pixels; larger images are refused */

typedef struct farm_image {
    uint32_t width, height;
    uint8_t *rgba; /* width * height * 4 bytes, row-major; free() it */
} farm_image;

/* Decodes PNG bytes to 8-bit RGBA. On failure *img is zeroed and why says
 * what was wrong with the bytes ("not a PNG", "4000×9000 is larger than
 * ..."). */
pb_err farm_png_decode(const uint8_t *bytes, size_t len, farm_image *img,
                       pb_errmsg *why) PB_WUR;
/* Reads and decodes a PNG file. */
pb_err farm_png_load(const char *path, farm_image *img, pb_errmsg *why) PB_WUR;
void farm_image_free(farm_image *img);

/* How many pixels differ between a and b (any channel). Images of
 * different sizes differ everywhere: *differ = *total = the larger one's
 * pixel count. */
void farm_image_diff(const farm_image *a, const farm_image *b, uint64_t *differ,
                     uint64_t *total);

/* Writes bytes to path through a temporary file and a rename. */
int farm_write_file(const char *path, const uint8_t *bytes, size_t len,
                    pb_errmsg *why);

#endif
