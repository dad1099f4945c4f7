/* cmd_logs.c — `patchbay logs`: the `adb logcat` of a room. Every device's
 * console output, traps and per-patch timings, tagged with the device's
 * label, in the order each device sent them: first what the relay still
 * holds (log_req, docs/PROTOCOL.md § Device testing), then, with --follow,
 * everything live. */
#include "cli.h"
#include "farm_room.h"

#include <signal.h>
#include <string.h>
#include <time.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: patchbay logs [options]\n"
            "\n"
            "Prints the recent output of the room's devices (the relay keeps "
            "the last\n1000 lines and acks): console output, traps with the "
            "var and patch, and\neach patch's timings, one line each, tagged "
            "[label]. --follow keeps\nprinting as it happens.\n"
            "\n"
            "options:\n" CLI_CONN_HELP
            "  -f, --follow      keep printing new output (Ctrl-C stops)\n"
            "  --device LABEL    only the device(s) with this label (or "
            "token name)\n"
            "  -h, --help        this help\n"
            "\n"
            "exit status: 0 done, 2 usage, 3 relay or connection error, 4 no "
            "such device\n");
}

static volatile sig_atomic_t stop;
static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

typedef struct logs_ctx {
    farm_room *r;
    const char *device; /* NULL: every device */
    uint64_t req;
    bool is_done; /* log_end arrived */
    uint32_t printed;
} logs_ctx;

static void stamp(uint64_t us)
{
    time_t s = (time_t)(us / 1000000u);
    struct tm tm;
    localtime_r(&s, &tm);
    printf("%02d:%02d:%02d.%03u ", tm.tm_hour, tm.tm_min, tm.tm_sec,
           (unsigned)(us / 1000u % 1000u));
}

/* Whether runtime_id's output is wanted; its name goes to label. */
static bool wanted(logs_ctx *k, uint64_t runtime_id, char *label, size_t cap)
{
    const farm_dev *d = farm_room_dev(k->r, runtime_id);
    if (d)
        farm_room_label(k->r, d, label, cap);
    else /* it left before this command joined */
        snprintf(label, cap, "#%llu", (unsigned long long)runtime_id);
    return !k->device ||
           (d && (!strcmp(d->label, k->device) || !strcmp(d->name, k->device)));
}

static void print_log(logs_ctx *k, const pb_log *l)
{
    char label[PB_MAX_NAME_BYTES + 24];
    if (!wanted(k, l->runtime_id, label, sizeof label))
        return;
    int n = (int)l->text.len;
    while (n && (l->text.ptr[n - 1] == '\n' || l->text.ptr[n - 1] == '\r'))
        n--;
    stamp(l->time_us ? l->time_us : farm_room_now_us(k->r));
    if (l->level == PB_LOG_TRAP)
        printf("[%s] TRAP in %.*s (seq %llu): %.*s\n", label, (int)l->var.len,
               l->var.ptr ? l->var.ptr : "?", (unsigned long long)l->seq, n,
               l->text.ptr);
    else
        printf("[%s] %s%sseq %llu %.*s: %.*s\n", label,
               l->level == PB_LOG_INFO ? "" : pb_log_level_name(l->level),
               l->level == PB_LOG_INFO ? "" : " ", (unsigned long long)l->seq,
               l->var.len ? (int)l->var.len : 1, l->var.len ? l->var.ptr : "-",
               n, l->text.ptr);
    k->printed++;
}

static void print_ack(logs_ctx *k, const pb_ack *a)
{
    char label[PB_MAX_NAME_BYTES + 24];
    if (!wanted(k, a->runtime_id, label, sizeof label))
        return;
    if (a->commit_at_us)
        stamp(a->commit_at_us);
    else /* a prepared or failed ack carries no time */
        printf("%13s", "");
    printf("[%s] seq %llu %s", label, (unsigned long long)a->seq,
           pb_ack_state_name(a->state));
    if (a->state == PB_ACK_PREPARED)
        printf(" (verify %.2f ms, load %.2f ms)", a->verify_us / 1000.0,
               a->prepare_us / 1000.0);
    else if (a->state == PB_ACK_COMMITTED)
        printf(" %.3f ms %s its apply time",
               (double)(a->late_us < 0 ? -a->late_us : a->late_us) / 1000.0,
               a->late_us < 0 ? "before" : "after");
    else
        printf("%s%.*s: %.*s (%s)", a->var.len ? " in " : "", (int)a->var.len,
               a->var.ptr ? a->var.ptr : "", (int)a->error.len,
               a->error.ptr ? a->error.ptr : "", pb_strerror((pb_err)a->code));
    printf("\n");
    k->printed++;
}

static int on_frame(void *ctx, const pb_frame *f)
{
    logs_ctx *k = ctx;
    if (f->type == PB_T_LOG)
        print_log(k, &f->log);
    else if (f->type == PB_T_ACK)
        print_ack(k, &f->ack);
    else if (f->type == PB_T_LOG_END && f->log_end.req == k->req) {
        k->is_done = true;
        if (f->log_end.dropped)
            fprintf(stderr,
                    "patchbay logs: (%llu older lines are no longer kept)\n",
                    (unsigned long long)f->log_end.dropped);
    }
    fflush(stdout);
    return stop;
}

int cmd_logs(int argc, char **argv)
{
    cli_conn_opts o = {0};
    bool follow = false;
    const char *device = NULL;
    for (int i = 1; i < argc; i++) {
        int taken = cli_conn_option("logs", argc, argv, &i, &o);
        if (taken < 0)
            return 2;
        if (taken)
            continue;
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--follow")) {
            follow = true;
        } else if (!strcmp(a, "--device") && i + 1 < argc) {
            device = argv[++i];
        } else {
            fprintf(stderr,
                    "patchbay logs: unknown option or missing value \"%s\" "
                    "(see --help)\n",
                    a);
            return 2;
        }
    }
    farm_room r;
    int rc = farm_room_open(&r, "logs", &o, 5000);
    if (rc) {
        farm_room_close(&r);
        return rc;
    }
    logs_ctx k = {&r, device, (uint64_t)time(NULL), false, 0};
    if (device && !follow) {
        bool found = false;
        for (uint32_t i = 0; i < r.n_devs; i++)
            found |= !strcmp(r.devs[i].label, device) ||
                     !strcmp(r.devs[i].name, device);
        if (!found) {
            fprintf(stderr,
                    "patchbay logs: no device labelled \"%s\" in room %s "
                    "(patchbay devices lists them)\n",
                    device, r.w.room);
            farm_room_close(&r);
            return 4;
        }
    }
    pb_frame f = {.type = PB_T_LOG_REQ};
    f.log_req.req = k.req;
    pb_errmsg why = {{0}};
    if (pbc_send(r.c, &f, &why)) {
        fprintf(stderr, "patchbay logs: %s\n", why.text);
        farm_room_close(&r);
        return 3;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    rc = 0;
    bool has_said = false;
    while (!stop && (follow || !k.is_done)) {
        if (farm_room_wait(&r, 200, on_frame, &k) == PBC_WAIT_CLOSED) {
            rc = 3;
            break;
        }
        if (!follow && !k.is_done && r.error_code) {
            fprintf(stderr, "patchbay logs: the relay refused: %s\n", r.error);
            rc = 3;
            break;
        }
        if (k.is_done && !k.printed && !has_said) {
            fprintf(stderr,
                    "patchbay logs: no device output kept in room %s%s\n",
                    r.w.room, follow ? "; waiting for some" : "");
            has_said = true;
        }
    }
    farm_room_close(&r);
    return rc;
}
