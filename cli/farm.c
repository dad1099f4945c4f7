/* farm.c — the device × test matrix of one `patchbay test` run: devices by
 * the relay's client id, tests by name (the union of what the devices
 * report), one cell per pair, and what the whole run comes to. */
#include "farm.h"

#include <stdlib.h>
#include <string.h>

static const char *const outcome_names[] = {
    [FARM_PENDING] = "no answer", [FARM_PASS] = "pass",
    [FARM_FAIL] = "FAIL",         [FARM_TRAP] = "TRAP",
    [FARM_TIMEOUT] = "TIMEOUT",   [FARM_NOT_RUN] = "not run",
    [FARM_GONE] = "gone",         [FARM_STALE] = "stale",
};

const char *farm_outcome_name(farm_outcome o)
{
    return o <= FARM_STALE ? outcome_names[o] : "?";
}

void farm_init(farm_run *r)
{
    memset(r, 0, sizeof *r);
}

void farm_free(farm_run *r)
{
    free(r->devices);
    free(r->tests);
    free(r->cells);
    memset(r, 0, sizeof *r);
}

/* Makes room for n_dev devices and n_test tests, moving the cells to the
 * new shape (device-major: cells[d * cap_tests + t]). */
static int reserve(farm_run *r, uint32_t n_dev, uint32_t n_test)
{
    if (n_dev <= r->cap_devices && n_test <= r->cap_tests)
        return 0;
    /* Both start at 8, even while one list is empty: a realloc to 0 bytes
     * frees the block and returns NULL. */
    uint32_t cd = r->cap_devices ? r->cap_devices : 8;
    uint32_t ct = r->cap_tests ? r->cap_tests : 8;
    while (cd < n_dev)
        cd *= 2;
    while (ct < n_test)
        ct *= 2;
    farm_cell *cells = calloc((size_t)cd * ct, sizeof *cells);
    farm_device *devs = realloc(r->devices, cd * sizeof *devs);
    if (devs)
        r->devices = devs;
    char(*tests)[PB_MAX_NAME_BYTES + 1] = realloc(r->tests, ct * sizeof *tests);
    if (tests)
        r->tests = tests;
    if (!cells || !devs || !tests) {
        free(cells);
        return -1;
    }
    for (uint32_t d = 0; d < r->n_devices; d++)
        for (uint32_t t = 0; t < r->n_tests; t++)
            cells[(size_t)d * ct + t] = r->cells[(size_t)d * r->cap_tests + t];
    free(r->cells);
    r->cells = cells;
    r->cap_devices = cd;
    r->cap_tests = ct;
    return 0;
}

int farm_find_device(const farm_run *r, uint64_t id)
{
    for (uint32_t i = 0; i < r->n_devices; i++)
        if (r->devices[i].id == id)
            return (int)i;
    return -1;
}

static bool label_taken(const farm_run *r, const char *label)
{
    for (uint32_t i = 0; i < r->n_devices; i++)
        if (!strcmp(r->devices[i].label, label))
            return true;
    return false;
}

int farm_add_device(farm_run *r, uint64_t id, const char *label,
                    const char *platform, uint32_t canvas_w, uint32_t canvas_h)
{
    int have = farm_find_device(r, id);
    if (have >= 0)
        return have;
    if (reserve(r, r->n_devices + 1, r->n_tests))
        return -1;
    farm_device *d = &r->devices[r->n_devices];
    memset(d, 0, sizeof *d);
    d->id = id;
    snprintf(d->label, sizeof d->label, "%.*s", PB_MAX_NAME_BYTES,
             label && *label ? label : "runtime");
    if (label_taken(r, d->label)) {
        char base[sizeof d->label];
        memcpy(base, d->label, sizeof base);
        snprintf(d->label, sizeof d->label, "%.*s#%llu", PB_MAX_NAME_BYTES - 8,
                 base, (unsigned long long)id);
    }
    snprintf(d->platform, sizeof d->platform, "%s", platform ? platform : "");
    d->canvas_w = canvas_w;
    d->canvas_h = canvas_h;
    for (uint32_t t = 0; t < r->cap_tests; t++)
        memset(&r->cells[(size_t)r->n_devices * r->cap_tests + t], 0,
               sizeof(farm_cell));
    return (int)r->n_devices++;
}

int farm_test_index(farm_run *r, const char *name)
{
    for (uint32_t t = 0; t < r->n_tests; t++)
        if (!strcmp(r->tests[t], name))
            return (int)t;
    if (reserve(r, r->n_devices, r->n_tests + 1))
        return -1;
    uint32_t t = r->n_tests++;
    snprintf(r->tests[t], sizeof r->tests[t], "%s", name);
    /* devices that already answered did not report it */
    for (uint32_t d = 0; d < r->n_devices; d++) {
        farm_cell *c = farm_cell_at(r, d, t);
        memset(c, 0, sizeof *c);
        if (r->devices[d].is_gone && !r->devices[d].has_answered)
            c->outcome = FARM_GONE;
        else if (r->devices[d].has_answered)
            c->outcome = r->devices[d].seq < r->seq ? FARM_STALE : FARM_NOT_RUN;
    }
    return (int)t;
}

farm_cell *farm_cell_at(farm_run *r, uint32_t device, uint32_t test)
{
    return &r->cells[(size_t)device * r->cap_tests + test];
}

const farm_cell *farm_cell_get(const farm_run *r, uint32_t device,
                               uint32_t test)
{
    return &r->cells[(size_t)device * r->cap_tests + test];
}

void farm_answered(farm_run *r, uint32_t device, uint64_t seq)
{
    farm_device *d = &r->devices[device];
    d->has_answered = true;
    d->is_gone = false;
    d->seq = seq;
    /* results of older code say nothing about this seq, whatever they are */
    for (uint32_t t = 0; t < r->n_tests; t++) {
        farm_cell *c = farm_cell_at(r, device, t);
        if (seq < r->seq)
            c->outcome = FARM_STALE;
        else if (c->outcome == FARM_PENDING || c->outcome == FARM_GONE)
            c->outcome = FARM_NOT_RUN;
    }
}

void farm_gone(farm_run *r, uint32_t device)
{
    farm_device *d = &r->devices[device];
    if (d->has_answered)
        return;
    d->is_gone = true;
    for (uint32_t t = 0; t < r->n_tests; t++) {
        farm_cell *c = farm_cell_at(r, device, t);
        if (c->outcome == FARM_PENDING)
            c->outcome = FARM_GONE;
    }
}

bool farm_is_complete(const farm_run *r)
{
    for (uint32_t d = 0; d < r->n_devices; d++)
        if (!r->devices[d].has_answered && !r->devices[d].is_gone)
            return false;
    return true;
}

farm_counts farm_count(const farm_run *r)
{
    farm_counts n;
    memset(&n, 0, sizeof n);
    for (uint32_t d = 0; d < r->n_devices; d++) {
        const farm_device *dev = &r->devices[d];
        if (!r->n_tests) { /* nothing reported: still count the device */
            if (dev->is_gone)
                n.gone++;
            else if (!dev->has_answered)
                n.pending++;
            else if (dev->seq < r->seq)
                n.stale++;
        }
        for (uint32_t t = 0; t < r->n_tests; t++) {
            switch (farm_cell_get(r, d, t)->outcome) {
            case FARM_PENDING: n.pending++; break;
            case FARM_PASS: n.pass++; break;
            case FARM_FAIL: n.fail++; break;
            case FARM_TRAP: n.trap++; break;
            case FARM_TIMEOUT: n.timeout++; break;
            case FARM_NOT_RUN: n.not_run++; break;
            case FARM_GONE: n.gone++; break;
            case FARM_STALE: n.stale++; break;
            }
        }
    }
    return n;
}

int farm_exit_status(const farm_run *r)
{
    farm_counts n = farm_count(r);
    if (n.fail || n.trap || n.timeout)
        return 1;
    if (n.gone || n.stale || n.pending)
        return 4;
    return 0;
}
