/* cmd_test.c — `patchbay test`: runs the room's tests (C PB_TEST, Lisp
 * deftest) on every device of the room at the current seq and prints the
 * device × test matrix (cli/farm.h), optionally as JUnit XML for CI.
 *
 * A device restarted by its watchdog (a test that never returned) leaves
 * and rejoins as a new client with the same name and label, then answers
 * the run it was in: the run waits for it, and only a device that stays
 * away for GONE_GRACE_MS is marked gone. */
#include "cli.h"
#include "farm.h"
#include "farm_room.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GONE_GRACE_MS 5000u

static void usage(FILE *out)
{
    fprintf(out,
            "usage: patchbay test [options]\n"
            "\n"
            "Runs the room's tests (PB_TEST in C, deftest in Lisp) on every "
            "runtime in the\nroom at the room's current seq, and prints a "
            "device x test matrix: pass,\nFAIL with the check's file:line, "
            "TRAP with the var and patch, TIMEOUT, not\nrun, gone, stale "
            "(answered from older code), with durations.\n"
            "\n"
            "options:\n" CLI_CONN_HELP
            "  --filter PREFIX   only tests whose name starts with PREFIX\n"
            "  --timeout DUR     how long devices have to answer (default "
            "10s)\n"
            "  --expect-devices N  first wait until N runtimes are in the "
            "room\n"
            "  --wait DUR        how long to wait for them (default 30s)\n"
            "  --junit FILE      also write JUnit XML, one testsuite per "
            "device\n"
            "  -h, --help        this help\n"
            "\n"
            "example: patchbay test --expect-devices 3 --junit report.xml\n"
            "exit status: 0 every test passed on every device, 1 a test "
            "failed (or\ntrapped, or timed out), 2 usage, 3 relay or "
            "connection error, 4 a device\ndid not answer (or answered from "
            "an older seq), or too few devices came\n");
}

typedef struct test_opts {
    cli_conn_opts conn;
    const char *filter;
    const char *junit;
    uint32_t timeout_ms, wait_ms, expect;
} test_opts;

static int parse(int argc, char **argv, test_opts *o)
{
    memset(o, 0, sizeof *o);
    o->timeout_ms = 10000;
    o->wait_ms = 30000;
    for (int i = 1; i < argc; i++) {
        int taken = cli_conn_option("test", argc, argv, &i, &o->conn);
        if (taken < 0)
            return 2;
        if (taken)
            continue;
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(a, "--filter") && has) {
            o->filter = argv[++i];
            if (strlen(o->filter) > PB_MAX_NAME_BYTES) {
                fprintf(stderr, "patchbay test: --filter is at most %u bytes\n",
                        PB_MAX_NAME_BYTES);
                return 2;
            }
        } else if (!strcmp(a, "--junit") && has) {
            o->junit = argv[++i];
        } else if ((!strcmp(a, "--timeout") || !strcmp(a, "--wait")) && has) {
            uint32_t *slot =
                !strcmp(a, "--timeout") ? &o->timeout_ms : &o->wait_ms;
            uint64_t ms;
            pb_errmsg why;
            if (cli_parse_duration(a, argv[++i], 0, FARM_MAX_WAIT_MS, &ms,
                                   &why))
                return cli_usage_error("test", "%s", why.text);
            *slot = (uint32_t)ms;
        } else if (!strcmp(a, "--expect-devices") && has) {
            pb_errmsg why;
            if (cli_parse_u32(a, argv[++i], 1, PB_MAX_PEERS, &o->expect,
                              &why))
                return cli_usage_error("test", "%s", why.text);
        } else {
            fprintf(stderr,
                    "patchbay test: unknown option or missing value \"%s\" "
                    "(see --help)\n",
                    a);
            return 2;
        }
    }
    return 0;
}

/* The labels of the runtimes here, comma-separated. */
static void here_list(const farm_room *r, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < r->n_devs && n < cap; i++)
        if (r->devs[i].is_here)
            n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? ", " : "",
                                  farm_dev_label(&r->devs[i]));
}

/* Waits until at least o->expect runtimes are in the room: 0, or 4 (too
 * few came; says which are here) or 3. */
static int wait_for_devices(farm_room *r, const test_opts *o)
{
    uint64_t until = farm_mono_ms() + o->wait_ms;
    uint32_t said = UINT32_MAX;
    char list[1024];
    for (;;) {
        uint32_t n = farm_room_count(r);
        if (n >= o->expect)
            return 0;
        if (n != said) {
            here_list(r, list, sizeof list);
            fprintf(stderr,
                    "patchbay test: waiting for %u devices: %u here%s%s%s\n",
                    o->expect, n, n ? " (" : "", n ? list : "", n ? ")" : "");
            said = n;
        }
        uint64_t now = farm_mono_ms();
        if (now >= until) {
            here_list(r, list, sizeof list);
            fprintf(stderr,
                    "patchbay test: waited %.1f s for %u devices in room %s; "
                    "%u %s here%s%s\n",
                    o->wait_ms / 1000.0, o->expect, r->w.room, n,
                    n == 1 ? "is" : "are", n ? ": " : "", n ? list : "");
            return 4;
        }
        uint64_t left = until - now;
        if (farm_room_wait(r, left < 200 ? (uint32_t)left : 200, NULL,
                           NULL) == PBC_WAIT_CLOSED)
            return 3;
    }
}

typedef struct run_ctx {
    farm_room *r;
    farm_run *run;
    uint64_t req;
    uint64_t started_ms, last_ms;
    bool has_failed; /* the relay refused the request */
} run_ctx;

/* The device of the run a result from runtime id belongs to: itself, or
 * the run's device it replaces: one with the same name and label that has
 * not answered, restarted by its watchdog under a new client id (the relay
 * may not even have noticed the old connection close yet: a browser that
 * ends a worker closes its socket when it gets to it). One that left is
 * taken first. -1 if it is none of the run's. */
static int run_device(run_ctx *k, uint64_t id)
{
    int d = farm_find_device(k->run, id);
    if (d >= 0)
        return d;
    const farm_dev *nd = farm_room_dev(k->r, id);
    if (!nd)
        return -1;
    int pick = -1;
    for (uint32_t i = 0; i < k->run->n_devices; i++) {
        farm_device *fd = &k->run->devices[i];
        const farm_dev *old = farm_room_dev(k->r, fd->id);
        if (!old || fd->has_answered || strcmp(old->name, nd->name) ||
            strcmp(old->label, nd->label))
            continue;
        if (pick < 0 || !old->is_here)
            pick = (int)i;
    }
    if (pick >= 0) {
        k->run->devices[pick].id = id;
        k->run->devices[pick].is_gone = false;
    }
    return pick;
}

static farm_outcome outcome_of(const pb_test_case *tc)
{
    switch (tc->status) {
    case PB_TEST_PASS: return FARM_PASS;
    case PB_TEST_FAIL: return FARM_FAIL;
    case PB_TEST_TRAP: return FARM_TRAP;
    case PB_TEST_TIMEOUT: return FARM_TIMEOUT;
    default: return tc->ok ? FARM_PASS : FARM_FAIL;
    }
}

static void take_result(run_ctx *k, const pb_test_result *tr)
{
    int d = run_device(k, tr->runtime_id);
    if (d < 0)
        return; /* a runtime that joined after the request */
    for (uint32_t i = 0; i < tr->n_results; i++) {
        const pb_test_case *tc = &tr->results[i];
        char name[PB_MAX_NAME_BYTES + 1];
        if (pb_str_copy(name, sizeof name, tc->name))
            continue;
        int t = farm_test_index(k->run, name);
        if (t < 0)
            continue;
        farm_cell *c = farm_cell_at(k->run, (uint32_t)d, (uint32_t)t);
        c->outcome = outcome_of(tc);
        c->us = tc->us;
        c->line = tc->line;
        c->var_seq = tc->var_seq;
        snprintf(c->message, sizeof c->message, "%.*s", (int)tc->message.len,
                 tc->message.ptr ? tc->message.ptr : "");
        snprintf(c->file, sizeof c->file, "%.*s", (int)tc->file.len,
                 tc->file.ptr ? tc->file.ptr : "");
        snprintf(c->var, sizeof c->var, "%.*s", (int)tc->var.len,
                 tc->var.ptr ? tc->var.ptr : "");
    }
    farm_answered(k->run, (uint32_t)d, tr->seq);
    k->last_ms = farm_mono_ms();
}

static int on_frame(void *ctx, const pb_frame *f)
{
    run_ctx *k = ctx;
    if (f->type == PB_T_TEST_RESULT && f->test_result.req == k->req)
        take_result(k, &f->test_result);
    if (f->type == PB_T_ERROR && (f->error.fatal || f->error.req == k->req)) {
        k->has_failed = true;
        return 1;
    }
    return farm_is_complete(k->run);
}

/* Devices of the run that left and did not come back within the grace
 * period are gone; one whose replacement is here is still waited for. A
 * runtime that is a device of the run itself is nobody's replacement (an
 * old connection that outlived its restart, listed beside its successor
 * when the run began: runtimes without a hello device_id). */
static void settle_gone(run_ctx *k)
{
    uint64_t now = farm_mono_ms();
    for (uint32_t i = 0; i < k->run->n_devices; i++) {
        farm_device *fd = &k->run->devices[i];
        const farm_dev *dev = farm_room_dev(k->r, fd->id);
        if (fd->has_answered || fd->is_gone || !dev || dev->is_here)
            continue;
        bool is_back = false;
        for (uint32_t j = 0; j < k->r->n_devs; j++) {
            const farm_dev *o = &k->r->devs[j];
            is_back |= o->is_here && o->id != dev->id &&
                       farm_find_device(k->run, o->id) < 0 &&
                       !strcmp(o->name, dev->name) &&
                       !strcmp(o->label, dev->label);
        }
        if (!is_back && now - dev->left_ms >= GONE_GRACE_MS)
            farm_gone(k->run, i);
    }
}

static int run_tests(farm_room *r, const test_opts *o)
{
    farm_run run;
    farm_init(&run);
    run.seq = r->head_seq;
    for (uint32_t i = 0; i < r->n_devs; i++) {
        const farm_dev *d = &r->devs[i];
        char label[PB_MAX_NAME_BYTES + 24];
        if (d->is_here &&
            farm_add_device(&run, d->id,
                            farm_room_label(r, d, label, sizeof label),
                            d->platform, d->d.canvas_w, d->d.canvas_h) < 0) {
            fprintf(stderr, "patchbay test: out of memory\n");
            farm_free(&run);
            return 3;
        }
    }
    if (!run.n_devices) {
        fprintf(stderr,
                "patchbay test: no runtime in room %s to run tests on "
                "(--expect-devices N waits for them)\n",
                r->w.room);
        farm_free(&run);
        return 4;
    }
    run_ctx k = {r,
                 &run,
                 (uint64_t)time(NULL) << 8 | (uint64_t)getpid() % 256,
                 farm_mono_ms(),
                 0,
                 false};
    pb_frame f = {.type = PB_T_TEST_REQ};
    f.test_req.req = k.req;
    f.test_req.filter = pb_cstr(o->filter);
    f.test_req.seq = run.seq;
    pb_errmsg why = {{0}};
    if (pbc_send(r->c, &f, &why)) {
        fprintf(stderr, "patchbay test: cannot send the request: %s\n",
                why.text);
        farm_free(&run);
        return 3;
    }
    fprintf(stderr, "patchbay test: room %s at seq %llu, %u device%s%s%s\n",
            r->w.room, (unsigned long long)run.seq, run.n_devices,
            run.n_devices == 1 ? "" : "s", o->filter ? ", tests " : "",
            o->filter ? o->filter : "");
    uint64_t until = k.started_ms + o->timeout_ms;
    pbc_wait_end end = PBC_WAIT_DEADLINE;
    while (!farm_is_complete(&run) && !k.has_failed) {
        uint64_t now = farm_mono_ms();
        if (now >= until)
            break;
        uint64_t left = until - now;
        end = farm_room_wait(r, left < 100 ? (uint32_t)left : 100, on_frame,
                             &k);
        if (end == PBC_WAIT_CLOSED)
            break;
        settle_gone(&k);
    }
    if (end == PBC_WAIT_CLOSED || k.has_failed) {
        if (k.has_failed)
            fprintf(stderr, "patchbay test: the relay refused: %s\n", r->error);
        farm_free(&run);
        return 3;
    }
    run.seconds =
        ((k.last_ms ? k.last_ms : farm_mono_ms()) - k.started_ms) / 1000.0;
    printf("room %s, seq %llu\n\n", r->w.room, (unsigned long long)run.seq);
    farm_print_matrix(&run, stdout);
    if (!run.n_tests && farm_is_complete(&run))
        fprintf(stderr, "patchbay test: no test%s%s on any device\n",
                o->filter ? " starts with " : "", o->filter ? o->filter : "");
    int status = farm_exit_status(&run);
    if (o->junit && farm_write_junit(&run, o->junit, &why)) {
        fprintf(stderr, "patchbay test: %s\n", why.text);
        status = 3;
    }
    farm_free(&run);
    return status;
}

int cmd_test(int argc, char **argv)
{
    test_opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : rc;
    farm_room r;
    rc = farm_room_open(&r, "test", &o.conn, 5000);
    if (!rc && r.w.role != PB_ROLE_EDITOR && r.w.role != PB_ROLE_OWNER) {
        fprintf(stderr,
                "patchbay test: running tests needs an editor token; this "
                "one is a %s's\n",
                pb_role_name(r.w.role));
        rc = 3;
    }
    if (!rc && o.expect)
        rc = wait_for_devices(&r, &o);
    if (!rc)
        rc = run_tests(&r, &o);
    farm_room_close(&r);
    return rc;
}
