/* cmd_snapshot.c — `patchbay snapshot`: every device with a canvas draws
 * the frame of one room time and sends it back as PNG; one file per device,
 * named by its label. With --compare, each picture is compared with a
 * reference pixel by pixel: visual regression across real devices. The
 * pictures come from devices, so each is decoded (cli/farm_png.c) before it
 * is written or compared. */
#include "cli.h"
#include "farm.h"
#include "farm_room.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: patchbay snapshot -o DIR [options]\n"
            "\n"
            "Asks every runtime with a canvas to draw the frame of room time "
            "T and send\nit back; writes DIR/LABEL.png for each. With "
            "--compare, says per device how\nmany pixels differ from "
            "REF.png.\n"
            "\n"
            "options:\n" CLI_CONN_HELP
            "  -o, --out DIR     where the pictures go (created if missing)\n"
            "  --at-time T       the room time to draw: +DUR from now "
            "(default +300ms),\n"
            "                    or seconds since the epoch on the room "
            "clock\n"
            "  --device LABEL    only the device(s) with this label\n"
            "  --compare REF.png count the pixels each picture differs from "
            "REF.png in\n"
            "  --threshold F     the fraction of pixels that may differ "
            "(default 0)\n"
            "  --timeout DUR     how long devices have to answer (default "
            "10s)\n"
            "  -h, --help        this help\n"
            "\n"
            "example: patchbay snapshot -o shots --compare shots/phone.png "
            "--threshold 0.01\n"
            "exit status: 0 every picture arrived (and is within the "
            "threshold), 1 a\npicture differs by more than the threshold, 2 "
            "usage, 3 relay or\nconnection error, 4 a device did not answer "
            "or sent no picture\n");
}

typedef struct snap_opts {
    cli_conn_opts conn;
    const char *out, *compare, *device;
    double threshold;
    uint32_t timeout_ms;
    uint64_t at_us;    /* the room time to draw, if given */
    uint64_t after_ms; /* else this long from now */
} snap_opts;

/* One device asked for a picture. */
typedef struct shot {
    uint64_t id;
    char label[PB_MAX_NAME_BYTES + 24];
    char file[PB_MAX_NAME_BYTES + 24];
    bool has_answered;
    char problem[PB_MAX_MESSAGE_BYTES + 1]; /* no picture: why */
} shot;

typedef struct snap_ctx {
    farm_room *r;
    const snap_opts *o;
    uint64_t req;
    shot *shots;
    uint32_t n_shots, n_answered, n_over;
    farm_image ref;
    uint64_t started_ms, last_ms;
    bool has_failed;
} snap_ctx;

/* --at-time: "+DUR" from now (after_ms), or seconds since the epoch on
 * the room clock (at_us). */
static pb_err parse_at(const char *s, snap_opts *o, pb_errmsg *why)
{
    if (s[0] == '+')
        return cli_parse_duration("--at-time", s + 1, 0, FARM_MAX_WAIT_MS,
                                  &o->after_ms, why);
    char *end;
    double sec = strtod(s, &end);
    if (*end || !(sec > 1e9 && sec < 1e11))
        return pb_fail(why, PB_ERR_FIELD_RANGE,
                       "--at-time wants +DUR (say +2s) or seconds since the "
                       "epoch on the room clock, got \"%s\"",
                       s);
    o->at_us = (uint64_t)(sec * 1e6);
    return PB_OK;
}

static int parse(int argc, char **argv, snap_opts *o)
{
    memset(o, 0, sizeof *o);
    o->timeout_ms = 10000;
    o->after_ms = 300;
    for (int i = 1; i < argc; i++) {
        int taken = cli_conn_option("snapshot", argc, argv, &i, &o->conn);
        if (taken < 0)
            return 2;
        if (taken)
            continue;
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--out")) && has) {
            o->out = argv[++i];
        } else if (!strcmp(a, "--at-time") && has) {
            pb_errmsg why;
            if (parse_at(argv[++i], o, &why))
                return cli_usage_error("snapshot", "%s", why.text);
        } else if (!strcmp(a, "--device") && has) {
            o->device = argv[++i];
        } else if (!strcmp(a, "--compare") && has) {
            o->compare = argv[++i];
        } else if (!strcmp(a, "--threshold") && has) {
            pb_errmsg why;
            if (cli_parse_number(a, argv[++i], 0, 1, false, &o->threshold,
                                 &why))
                return cli_usage_error("snapshot", "%s", why.text);
        } else if (!strcmp(a, "--timeout") && has) {
            uint64_t ms;
            pb_errmsg why;
            if (cli_parse_duration(a, argv[++i], 0, FARM_MAX_WAIT_MS, &ms,
                                   &why))
                return cli_usage_error("snapshot", "%s", why.text);
            o->timeout_ms = (uint32_t)ms;
        } else {
            fprintf(stderr,
                    "patchbay snapshot: unknown option or missing value "
                    "\"%s\" (see --help)\n",
                    a);
            return 2;
        }
    }
    if (!o->out) {
        fprintf(stderr, "patchbay snapshot: -o DIR is required (see --help)\n");
        return 2;
    }
    return 0;
}

/* A file name from a (unique) label: letters, digits, '.', '-' and '_'
 * stay. */
static void file_name(const char *label, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = label; *p && n + 1 < cap; p++) {
        bool is_kept = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                       (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' ||
                       (*p == '.' && n);
        out[n++] = is_kept ? *p : '_';
    }
    out[n] = '\0';
    if (!n)
        snprintf(out, cap, "runtime");
}

static shot *shot_of(snap_ctx *k, uint64_t id)
{
    for (uint32_t i = 0; i < k->n_shots; i++)
        if (k->shots[i].id == id)
            return &k->shots[i];
    return NULL;
}

static void take_picture(snap_ctx *k, shot *s, const pb_snapshot *sn)
{
    char path[4096];
    pb_errmsg why = {{0}};
    farm_image img;
    if (!sn->png.len) {
        snprintf(s->problem, sizeof s->problem, "no picture: %.*s",
                 (int)sn->error.len, sn->error.ptr ? sn->error.ptr : "?");
    } else if (farm_png_decode(sn->png.ptr, sn->png.len, &img, &why)) {
        snprintf(s->problem, sizeof s->problem, "refused its picture: %s",
                 why.text);
    } else {
        snprintf(path, sizeof path, "%s/%s.png", k->o->out, s->file);
        if (farm_write_file(path, sn->png.ptr, sn->png.len, &why))
            snprintf(s->problem, sizeof s->problem, "%s", why.text);
        else {
            printf("%-18s %4ux%-5u seq %-4llu +%.2fs  %s", s->label, img.width,
                   img.height, (unsigned long long)sn->seq,
                   (farm_mono_ms() - k->started_ms) / 1000.0, path);
            if (k->ref.rgba) {
                uint64_t differ, total;
                farm_image_diff(&img, &k->ref, &differ, &total);
                double frac = total ? (double)differ / (double)total : 0;
                bool is_over = frac > k->o->threshold;
                k->n_over += is_over;
                printf("\n%18s %llu of %llu pixels differ (%.3f%%)%s%s", "",
                       (unsigned long long)differ, (unsigned long long)total,
                       frac * 100,
                       img.width != k->ref.width || img.height != k->ref.height
                           ? ": the sizes differ"
                           : "",
                       is_over ? ", over the threshold" : "");
            }
            printf("\n");
        }
        farm_image_free(&img);
    }
    if (s->problem[0])
        printf("%-18s %s\n", s->label, s->problem);
    s->has_answered = true;
    k->n_answered++;
    k->last_ms = farm_mono_ms();
}

static int on_frame(void *ctx, const pb_frame *f)
{
    snap_ctx *k = ctx;
    if (f->type == PB_T_SNAPSHOT && f->snapshot.req == k->req) {
        shot *s = shot_of(k, f->snapshot.runtime_id);
        if (s && !s->has_answered)
            take_picture(k, s, &f->snapshot);
    }
    if (f->type == PB_T_ERROR && (f->error.fatal || f->error.req == k->req)) {
        k->has_failed = true;
        return 1;
    }
    return k->n_answered == k->n_shots;
}

static int run(farm_room *r, snap_ctx *k)
{
    const snap_opts *o = k->o;
    uint64_t at =
        o->at_us ? o->at_us : farm_room_now_us(r) + o->after_ms * 1000;
    k->shots = calloc(r->n_devs ? r->n_devs : 1, sizeof *k->shots);
    if (!k->shots)
        return 3;
    for (uint32_t i = 0; i < r->n_devs; i++) {
        const farm_dev *d = &r->devs[i];
        if (!d->is_here || !d->d.canvas_w ||
            (o->device && strcmp(d->label, o->device) &&
             strcmp(d->name, o->device)))
            continue;
        shot *s = &k->shots[k->n_shots++];
        s->id = d->id;
        farm_room_label(r, d, s->label, sizeof s->label);
        file_name(s->label, s->file, sizeof s->file);
    }
    if (!k->n_shots) {
        fprintf(stderr,
                "patchbay snapshot: no device %s%s%swith a canvas in room %s\n",
                o->device ? "labelled \"" : "", o->device ? o->device : "",
                o->device ? "\" " : "", r->w.room);
        return 4;
    }
    if (mkdir(o->out, 0777) && errno != EEXIST) {
        fprintf(stderr, "patchbay snapshot: cannot create %s: %s\n", o->out,
                strerror(errno));
        return 3;
    }
    pb_frame f = {.type = PB_T_SNAPSHOT_REQ};
    f.snapshot_req.req = k->req;
    f.snapshot_req.at_us = at;
    f.snapshot_req.runtime_id = k->n_shots == 1 ? k->shots[0].id : 0;
    pb_errmsg why = {{0}};
    if (pbc_send(r->c, &f, &why)) {
        fprintf(stderr, "patchbay snapshot: %s\n", why.text);
        return 3;
    }
    k->started_ms = farm_mono_ms();
    uint64_t room_now = farm_room_now_us(r);
    uint64_t until = k->started_ms +
                     (at > room_now ? (at - room_now) / 1000u : 0) +
                     o->timeout_ms;
    while (k->n_answered < k->n_shots && !k->has_failed) {
        uint64_t now = farm_mono_ms();
        if (now >= until)
            break;
        uint64_t left = until - now;
        if (farm_room_wait(r, left < 100 ? (uint32_t)left : 100, on_frame,
                           k) == PBC_WAIT_CLOSED)
            return 3;
    }
    if (k->has_failed) {
        fprintf(stderr, "patchbay snapshot: the relay refused: %s\n", r->error);
        return 3;
    }
    uint32_t missing = 0, pictures = 0;
    for (uint32_t i = 0; i < k->n_shots; i++) {
        const shot *s = &k->shots[i];
        const farm_dev *d = farm_room_dev(r, s->id);
        if (!s->has_answered)
            printf("%-18s %s\n", s->label,
                   d && !d->is_here ? "left the room before answering"
                                    : "did not answer in time");
        missing += !s->has_answered || s->problem[0];
        pictures += s->has_answered && !s->problem[0];
    }
    printf("\n%u picture%s of %u device%s in %.2f s (drawn at room time "
           "%.3f)\n",
           pictures, pictures == 1 ? "" : "s", k->n_shots,
           k->n_shots == 1 ? "" : "s",
           ((k->last_ms ? k->last_ms : farm_mono_ms()) - k->started_ms) /
               1000.0,
           at / 1e6);
    return k->n_over ? 1 : missing ? 4 : 0;
}

int cmd_snapshot(int argc, char **argv)
{
    snap_opts o;
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : rc;
    snap_ctx k;
    memset(&k, 0, sizeof k);
    k.o = &o;
    k.req = (uint64_t)time(NULL);
    pb_errmsg why = {{0}};
    if (o.compare && farm_png_load(o.compare, &k.ref, &why)) {
        fprintf(stderr, "patchbay snapshot: --compare: %s\n", why.text);
        return 2;
    }
    farm_room r;
    rc = farm_room_open(&r, "snapshot", &o.conn, 5000);
    k.r = &r;
    if (!rc && r.w.role != PB_ROLE_EDITOR && r.w.role != PB_ROLE_OWNER) {
        fprintf(stderr,
                "patchbay snapshot: asking for pictures needs an editor "
                "token; this one is a %s's\n",
                pb_role_name(r.w.role));
        rc = 3;
    }
    if (!rc)
        rc = run(&r, &k);
    farm_room_close(&r);
    farm_image_free(&k.ref);
    free(k.shots);
    return rc;
}
