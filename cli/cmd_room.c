/* cmd_room.c — `patchbay room`: shows a room's settings (tempo, quantum,
 * lead) or, with an owner token, changes them. The relay sends the current
 * settings right after welcome and broadcasts every change to the room, so
 * the command waits for its own change to come back before it reports it. */
#include "cli.h"
#include "pbc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: patchbay room [options]\n"
            "\n"
            "Shows the settings of the token's room, or changes them (owner "
            "token):\n"
            "patches then apply on the next quantum boundary of the room's "
            "tempo, after\n"
            "the lead. Every runtime and editor page sees the change at "
            "once.\n"
            "\n"
            "options:\n"
            "  --tempo BPM       beats per minute, 1 to 999; 0 turns the "
            "tempo off\n"
            "  --quantum BEATS   patches apply on multiples of BEATS beats (0: "
            "at the lead);\n"
            "                    one quantum lasts at most 60 s\n"
            "  --lead-ms N       time from acceptance to apply, at most 10000; "
            "0: adaptive\n"
            "                    (50 ms, more if the room's slowest runtime "
            "needs it)\n"
            "  --link URL        a join link printed by `patchbay token`\n"
            "  --url URL         the relay (default $PATCHBAY_URL or "
            "ws://127.0.0.1:7888)\n"
            "  --token T         a token (default $PATCHBAY_TOKEN); changing "
            "needs owner\n"
            "  --room R          refuse unless the token is for room R\n"
            "  -h, --help        this help\n"
            "\n"
            "example: patchbay room --tempo 120 --quantum 4\n"
            "exit status: 0 done, 2 usage, 3 relay or connection error (e.g. "
            "not an owner)\n");
}

typedef struct room_wait {
    bool have;
    pb_room room;
    char error[PB_MAX_MESSAGE_BYTES + 1];
    bool want_change;
    pb_room change;
} room_wait;

static bool same(const pb_room *a, const pb_room *b)
{
    return fabs(a->tempo_bpm - b->tempo_bpm) < 1e-9 &&
           a->quantum == b->quantum && a->lead_us == b->lead_us;
}

static int on_frame(void *ctx, const pb_frame *f)
{
    room_wait *w = ctx;
    if (f->type == PB_T_ERROR) {
        snprintf(w->error, sizeof w->error, "%.*s", (int)f->error.message.len,
                 f->error.message.ptr);
        return 1;
    }
    if (f->type != PB_T_ROOM)
        return 0;
    w->room = f->room;
    w->have = true;
    return !w->want_change || same(&f->room, &w->change);
}

static void print_settings(const char *room, const pb_room *r)
{
    printf("room %s: ", room);
    if (r->tempo_bpm > 0)
        printf("tempo %g BPM, ", r->tempo_bpm);
    else
        printf("no tempo, ");
    if (r->tempo_bpm > 0 && r->quantum)
        printf("patches apply every %u beats (%.3f s), ", r->quantum,
               r->quantum * 60.0 / r->tempo_bpm);
    else
        printf("patches apply after the lead, ");
    if (r->lead_us)
        printf("lead %.1f ms\n", r->lead_us / 1000.0);
    else
        printf("lead adaptive (50 ms or what the slowest runtime needs)\n");
}

int cmd_room(int argc, char **argv)
{
    cli_conn_opts conn = {0};
    double tempo = -1, quantum = -1, lead_ms = -1;
    pb_errmsg why = {{0}};
    for (int i = 1; i < argc; i++) {
        int taken = cli_conn_option("room", argc, argv, &i, &conn);
        if (taken < 0)
            return 2;
        if (taken)
            continue;
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--tempo") && has) {
            if (cli_parse_number(a, argv[++i], 0, 999, false, &tempo, &why))
                return cli_usage_error("room", "%s", why.text);
        } else if (!strcmp(a, "--quantum") && has) {
            if (cli_parse_number(a, argv[++i], 0, 64, true, &quantum, &why))
                return cli_usage_error("room", "%s", why.text);
        } else if (!strcmp(a, "--lead-ms") && has) {
            if (cli_parse_number(a, argv[++i], 0, 10000, false, &lead_ms, &why))
                return cli_usage_error("room", "%s", why.text);
        } else {
            return cli_bad_option("room", a);
        }
    }
    pbc_target t;
    if (cli_target(&conn, &t, &why))
        return cli_usage_error("room", "%s", why.text);
    pbc_welcome w;
    pbc *c = cli_join("room", &t, conn.room, 5000, &w);
    if (!c)
        return 3;
    int status = 3;
    room_wait rw;
    memset(&rw, 0, sizeof rw);
    /* the current settings come right after welcome */
    if (pbc_wait(c, 5000, on_frame, &rw, &why) != PBC_WAIT_STOPPED ||
        !rw.have) {
        fprintf(stderr, "patchbay room: %s\n",
                rw.error[0] ? rw.error
                            : "the relay did not send the room's settings");
        goto done;
    }
    if (tempo < 0 && quantum < 0 && lead_ms < 0) {
        print_settings(w.room, &rw.room);
        status = 0;
        goto done;
    }
    if (w.role != PB_ROLE_OWNER) {
        fprintf(stderr,
                "patchbay room: the token's role is %s; changing the "
                "room's settings needs an owner token\n",
                pb_role_name(w.role));
        goto done;
    }
    rw.change = rw.room;
    if (tempo >= 0)
        rw.change.tempo_bpm = tempo;
    if (quantum >= 0)
        rw.change.quantum = (uint32_t)quantum;
    if (lead_ms >= 0)
        rw.change.lead_us = (uint64_t)(lead_ms * 1000.0 + 0.5);
    rw.want_change = true;
    rw.have = false;
    pb_frame f = {.type = PB_T_ROOM};
    f.room = rw.change;
    if (pbc_send(c, &f, &why) ||
        pbc_wait(c, 5000, on_frame, &rw, &why) != PBC_WAIT_STOPPED ||
        rw.error[0] || !same(&rw.room, &rw.change)) {
        fprintf(stderr, "patchbay room: the relay refused the change: %s\n",
                rw.error[0]   ? rw.error
                : why.text[0] ? why.text
                              : "no answer");
        goto done;
    }
    print_settings(w.room, &rw.room);
    status = 0;
done:
    pbc_close(c);
    return status;
}
