/* cmd_devices.c — `patchbay devices`: the runtimes of a room, as the relay
 * lists them: what each said it runs on (label, canvas, screen, platform,
 * wasm features, memory) and how it is doing (its last ack, its clock's
 * uncertainty, how far its last commit was from the room's, its heap). */
#include "cli.h"
#include "farm_room.h"

#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: patchbay devices [options]\n"
            "\n"
            "Lists the runtimes in the token's room (phones, projectors, "
            "browsers,\nheadless runtimes): label, canvas, last ack, clock "
            "uncertainty, heap, and\nwhat each runs on.\n"
            "\n"
            "options:\n" CLI_CONN_HELP
            "  --json            one JSON object per runtime, one per line\n"
            "  -h, --help        this help\n"
            "\n"
            "exit status: 0 listed, 2 usage, 3 relay or connection error\n");
}

static void bytes_text(uint64_t n, char *out, size_t cap)
{
    if (!n)
        snprintf(out, cap, "-");
    else if (n >= 1ull << 30)
        snprintf(out, cap, "%.1fGiB", n / (double)(1ull << 30));
    else
        snprintf(out, cap, "%.1fMiB", n / (double)(1ull << 20));
}

static void json_str(const char *key, const char *s)
{
    printf("\"%s\":\"", key);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    printf("\",");
}

static void print_json(const farm_dev *d)
{
    printf("{\"id\":%llu,", (unsigned long long)d->id);
    json_str("label", d->label);
    json_str("name", d->name);
    json_str("platform", d->platform);
    json_str("features", d->features);
    printf("\"canvas_w\":%u,\"canvas_h\":%u,\"screen_w\":%u,\"screen_h\":%u,"
           "\"dpr\":%g,\"ram_bytes\":%llu,\"cores\":%u,\"last_ack\":\"%s\","
           "\"last_seq\":%llu,\"skew_us\":%lld,\"unc_us\":%llu,"
           "\"mem_bytes\":%llu}\n",
           d->d.canvas_w, d->d.canvas_h, d->d.screen_w, d->d.screen_h, d->d.dpr,
           (unsigned long long)d->d.ram_bytes, d->d.cores,
           pb_ack_state_name(d->last_ack), (unsigned long long)d->last_seq,
           (long long)d->skew_us, (unsigned long long)d->unc_us,
           (unsigned long long)d->mem_bytes);
}

static void print_row(const farm_dev *d)
{
    char canvas[32] = "-", ack[48] = "-", clock[24] = "-", heap[24];
    if (d->d.canvas_w)
        snprintf(canvas, sizeof canvas, "%ux%u", d->d.canvas_w, d->d.canvas_h);
    if (d->last_ack)
        snprintf(ack, sizeof ack, "%s #%llu", pb_ack_state_name(d->last_ack),
                 (unsigned long long)d->last_seq);
    if (d->unc_us)
        snprintf(clock, sizeof clock, "+-%.1fms", d->unc_us / 1000.0);
    bytes_text(d->mem_bytes, heap, sizeof heap);
    printf("%-16s %-10s %-15s %-9s %-9s %s", farm_dev_label(d), canvas, ack,
           clock, heap, d->platform[0] ? d->platform : "?");
    if (d->d.screen_w)
        printf(" | screen %ux%u @%gx", d->d.screen_w, d->d.screen_h,
               d->d.dpr ? d->d.dpr : 1.0);
    if (d->d.cores || d->d.ram_bytes) {
        char ram[24];
        bytes_text(d->d.ram_bytes, ram, sizeof ram);
        printf(" | %u cores, %s", d->d.cores, ram);
    }
    if (d->features[0])
        printf(" | wasm %s", d->features);
    printf("\n");
}

int cmd_devices(int argc, char **argv)
{
    cli_conn_opts o = {0};
    bool is_json = false;
    for (int i = 1; i < argc; i++) {
        int taken = cli_conn_option("devices", argc, argv, &i, &o);
        if (taken < 0)
            return 2;
        if (taken)
            continue;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            is_json = true;
        } else {
            fprintf(stderr,
                    "patchbay devices: unknown option \"%s\" (see --help)\n",
                    argv[i]);
            return 2;
        }
    }
    farm_room r;
    int rc = farm_room_open(&r, "devices", &o, 5000);
    if (rc) {
        farm_room_close(&r);
        return rc;
    }
    uint32_t n = farm_room_count(&r);
    if (!is_json) {
        printf("room %s: %u runtime%s, head seq %llu\n", r.w.room, n,
               n == 1 ? "" : "s", (unsigned long long)r.head_seq);
        if (n)
            printf("%-16s %-10s %-15s %-9s %-9s %s\n", "label", "canvas",
                   "last ack", "clock", "heap", "platform");
    }
    for (uint32_t i = 0; i < r.n_devs; i++) {
        if (!r.devs[i].is_here)
            continue;
        if (is_json)
            print_json(&r.devs[i]);
        else
            print_row(&r.devs[i]);
    }
    farm_room_close(&r);
    return 0;
}
