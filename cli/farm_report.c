/* farm_report.c — what a finished `patchbay test` run prints and writes:
 * the device × test matrix for a person, and JUnit XML (one testsuite per
 * device) for a CI system. */
#include "farm.h"

#include <stdlib.h>
#include <string.h>

#define MIN_COL   11u
#define MAX_COL   18u
#define MAX_TESTW 32u

static void duration(uint64_t us, char *out, size_t cap)
{
    if (us < 1000)
        snprintf(out, cap, "%lluus", (unsigned long long)us);
    else if (us < 10000)
        snprintf(out, cap, "%.1fms", us / 1000.0);
    else if (us < 1000000)
        snprintf(out, cap, "%.0fms", us / 1000.0);
    else
        snprintf(out, cap, "%.1fs", us / 1e6);
}

static void cell_text(const farm_cell *c, char *out, size_t cap)
{
    char d[24];
    duration(c->us, d, sizeof d);
    switch (c->outcome) {
    case FARM_PASS:
    case FARM_FAIL:
    case FARM_TRAP:
        snprintf(out, cap, "%s %s", farm_outcome_name(c->outcome), d);
        break;
    case FARM_NOT_RUN: snprintf(out, cap, "-"); break;
    case FARM_PENDING: snprintf(out, cap, "?"); break;
    default: snprintf(out, cap, "%s", farm_outcome_name(c->outcome)); break;
    }
}

/* Appends s to line in exactly w columns and a space (cut with '~' when
 * longer). */
static void column(char *line, size_t cap, const char *s, size_t w)
{
    size_t at = strlen(line), n = strlen(s);
    if (n > w)
        snprintf(line + at, cap - at, "%.*s~ ", (int)(w - 1), s);
    else
        snprintf(line + at, cap - at, "%-*s ", (int)w, s);
}

/* Prints line without its trailing spaces, and empties it. */
static void end_line(FILE *out, char *line)
{
    size_t n = strlen(line);
    while (n && line[n - 1] == ' ')
        n--;
    fprintf(out, "%.*s\n", (int)n, line);
    line[0] = '\0';
}

static size_t clamp(size_t v, size_t lo, size_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* A failed check as "file:line: expr" ("line N: expr" when the patch did
 * not say its file, as Lisp tests do not). */
static void failure_text(const farm_cell *c, char *out, size_t cap)
{
    if (c->file[0])
        snprintf(out, cap, "%s:%u: %s", c->file, c->line, c->message);
    else if (c->line)
        snprintf(out, cap, "line %u: %s", c->line, c->message);
    else
        snprintf(out, cap, "%s", c->message);
}

/* One line for a cell that is not a pass: where and why. */
static void print_problem(FILE *out, const farm_run *r, uint32_t d, uint32_t t,
                          const farm_cell *c)
{
    const farm_device *dev = &r->devices[d];
    char text[sizeof c->message + sizeof c->file + 32];
    switch (c->outcome) {
    case FARM_FAIL:
        failure_text(c, text, sizeof text);
        fprintf(out, "  %s on %s: %s\n", r->tests[t], dev->label, text);
        break;
    case FARM_TRAP:
        fprintf(out, "  %s on %s: trap in %s (patch seq %llu): %s\n",
                r->tests[t], dev->label, c->var[0] ? c->var : r->tests[t],
                (unsigned long long)c->var_seq, c->message);
        break;
    case FARM_TIMEOUT:
        fprintf(out, "  %s on %s: timeout: %s\n", r->tests[t], dev->label,
                c->message[0] ? c->message : "did not return");
        break;
    default: break;
    }
}

void farm_print_matrix(const farm_run *r, FILE *out)
{
    size_t tw = 4;
    for (uint32_t t = 0; t < r->n_tests; t++)
        tw = clamp(strlen(r->tests[t]), tw, MAX_TESTW);
    size_t *cw = calloc(r->n_devices ? r->n_devices : 1, sizeof *cw);
    size_t cap = MAX_TESTW + 2 + (size_t)r->n_devices * (MAX_COL + 1) + 1;
    char *line = calloc(1, cap);
    if (!cw || !line) {
        free(cw);
        free(line);
        return;
    }
    for (uint32_t d = 0; d < r->n_devices; d++)
        cw[d] = clamp(strlen(r->devices[d].label), MIN_COL, MAX_COL);
    column(line, cap, "test", tw);
    for (uint32_t d = 0; d < r->n_devices; d++)
        column(line, cap, r->devices[d].label, cw[d]);
    end_line(out, line);
    for (uint32_t t = 0; t < r->n_tests; t++) {
        column(line, cap, r->tests[t], tw);
        for (uint32_t d = 0; d < r->n_devices; d++) {
            char s[64];
            cell_text(farm_cell_get(r, d, t), s, sizeof s);
            column(line, cap, s, cw[d]);
        }
        end_line(out, line);
    }
    free(cw);
    free(line);

    bool has_header = false;
    for (uint32_t t = 0; t < r->n_tests; t++)
        for (uint32_t d = 0; d < r->n_devices; d++) {
            const farm_cell *c = farm_cell_get(r, d, t);
            if (c->outcome != FARM_FAIL && c->outcome != FARM_TRAP &&
                c->outcome != FARM_TIMEOUT)
                continue;
            if (!has_header)
                fprintf(out, "\nfailures:\n");
            has_header = true;
            print_problem(out, r, d, t, c);
        }
    has_header = false;
    for (uint32_t d = 0; d < r->n_devices; d++) {
        const farm_device *dev = &r->devices[d];
        const char *why = NULL;
        char buf[96];
        if (dev->is_gone && !dev->has_answered)
            why = "left the room before answering";
        else if (!dev->has_answered)
            why = "did not answer in time";
        else if (dev->seq < r->seq) {
            snprintf(buf, sizeof buf,
                     "answered from seq %llu; the run is at seq %llu",
                     (unsigned long long)dev->seq, (unsigned long long)r->seq);
            why = buf;
        }
        if (!why)
            continue;
        if (!has_header)
            fprintf(out, "\ndevices without an answer at seq %llu:\n",
                    (unsigned long long)r->seq);
        has_header = true;
        fprintf(out, "  %s: %s\n", dev->label, why);
    }

    farm_counts n = farm_count(r);
    fprintf(out, "\n%u test%s on %u device%s in %.2f s: %u passed", r->n_tests,
            r->n_tests == 1 ? "" : "s", r->n_devices,
            r->n_devices == 1 ? "" : "s", r->seconds, n.pass);
    const struct {
        uint32_t n;
        const char *what;
    } more[] = {{n.fail, "failed"},       {n.trap, "trapped"},
                {n.timeout, "timed out"}, {n.not_run, "not run"},
                {n.gone, "gone"},         {n.stale, "stale"},
                {n.pending, "no answer"}};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
        if (more[i].n)
            fprintf(out, ", %u %s", more[i].n, more[i].what);
    fputc('\n', out);
}

/* ---- JUnit XML ----------------------------------------------------------- */

/* Writes s as XML character data / attribute value. Characters XML 1.0
 * cannot carry (controls other than tab and newlines) become '?'. */
static void xml(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        case '\t':
        case '\n':
        case '\r': fputc(*p, f); break;
        default: fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f); break;
        }
    }
}

static void junit_case(FILE *f, const farm_run *r, uint32_t d, uint32_t t)
{
    const farm_device *dev = &r->devices[d];
    const farm_cell *c = farm_cell_get(r, d, t);
    fputs("    <testcase classname=\"", f);
    xml(f, dev->label);
    fputs("\" name=\"", f);
    xml(f, r->tests[t]);
    fprintf(f, "\" time=\"%.6f\"", c->us / 1e6);
    if (c->file[0]) {
        fputs(" file=\"", f);
        xml(f, c->file);
        fprintf(f, "\" line=\"%u\"", c->line);
    }
    char msg[sizeof c->message + sizeof c->file + 160];
    switch (c->outcome) {
    case FARM_PASS: fputs("/>\n", f); return;
    case FARM_NOT_RUN: fputs(">\n      <skipped/>\n", f); break;
    case FARM_FAIL:
        failure_text(c, msg, sizeof msg);
        fputs(">\n      <failure type=\"check\" message=\"", f);
        xml(f, c->message);
        fputs("\">", f);
        xml(f, msg);
        fputs("</failure>\n", f);
        break;
    default: {
        /* trap, timeout, gone, stale, no answer: the test could not give
         * a verdict, which JUnit calls an error */
        if (c->outcome == FARM_TRAP)
            snprintf(msg, sizeof msg, "trap in %s (patch seq %llu): %s",
                     c->var[0] ? c->var : r->tests[t],
                     (unsigned long long)c->var_seq, c->message);
        else if (c->outcome == FARM_STALE)
            snprintf(msg, sizeof msg,
                     "the device answered from seq %llu; the run is at seq "
                     "%llu",
                     (unsigned long long)dev->seq, (unsigned long long)r->seq);
        else if (c->outcome == FARM_GONE)
            snprintf(msg, sizeof msg,
                     "the device left the room before answering");
        else if (c->outcome == FARM_PENDING)
            snprintf(msg, sizeof msg, "the device did not answer in time");
        else
            snprintf(msg, sizeof msg, "%s",
                     c->message[0] ? c->message : "did not return");
        fprintf(f, ">\n      <error type=\"%s\" message=\"",
                farm_outcome_name(c->outcome));
        xml(f, msg);
        fputs("\"/>\n", f);
        break;
    }
    }
    fputs("    </testcase>\n", f);
}

static void junit_suite(FILE *f, const farm_run *r, uint32_t d)
{
    const farm_device *dev = &r->devices[d];
    uint32_t failures = 0, errors = 0, skipped = 0;
    uint64_t us = 0;
    for (uint32_t t = 0; t < r->n_tests; t++) {
        const farm_cell *c = farm_cell_get(r, d, t);
        us += c->us;
        failures += c->outcome == FARM_FAIL;
        skipped += c->outcome == FARM_NOT_RUN;
        errors += c->outcome != FARM_FAIL && c->outcome != FARM_PASS &&
                  c->outcome != FARM_NOT_RUN;
    }
    fputs("  <testsuite name=\"", f);
    xml(f, dev->label);
    fprintf(f,
            "\" tests=\"%u\" failures=\"%u\" errors=\"%u\" skipped=\"%u\" "
            "time=\"%.6f\" hostname=\"",
            r->n_tests, failures, errors, skipped, us / 1e6);
    xml(f, dev->label);
    fputs("\">\n    <properties>\n      <property name=\"platform\" value=\"",
          f);
    xml(f, dev->platform);
    fprintf(f,
            "\"/>\n      <property name=\"canvas\" value=\"%ux%u\"/>\n"
            "      <property name=\"seq\" value=\"%llu\"/>\n"
            "    </properties>\n",
            dev->canvas_w, dev->canvas_h, (unsigned long long)dev->seq);
    for (uint32_t t = 0; t < r->n_tests; t++)
        junit_case(f, r, d, t);
    fputs("  </testsuite>\n", f);
}

int farm_write_junit(const farm_run *r, const char *path, pb_errmsg *why)
{
    char *xml_text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&xml_text, &len);
    if (!f) {
        pb_fail(why, PB_ERR_NOMEM, "out of memory");
        return -1;
    }
    farm_counts n = farm_count(r);
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<testsuites name=\"patchbay\" tests=\"%u\" failures=\"%u\" "
            "errors=\"%u\" time=\"%.3f\">\n",
            r->n_tests * r->n_devices, n.fail,
            n.trap + n.timeout + n.gone + n.stale + n.pending, r->seconds);
    for (uint32_t d = 0; d < r->n_devices; d++)
        junit_suite(f, r, d);
    fputs("</testsuites>\n", f);
    int rc = -1;
    if (fclose(f) || !xml_text)
        pb_fail(why, PB_ERR_NOMEM, "out of memory");
    else
        rc = farm_write_file(path, (const uint8_t *)xml_text, len, why);
    free(xml_text);
    return rc;
}
