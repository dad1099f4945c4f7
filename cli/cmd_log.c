/* cmd_log.c — `patchbay log`: lists the rooms of a relay's history, or one
 * room's patches with their lockstep figures. Read-only: safe while the
 * relay runs. */
#include "cli.h"
#include "relay.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static void print_room(void *ctx, const char *room, uint64_t head)
{
    (void)ctx;
    printf("%-24s %llu patch%s\n", room, (unsigned long long)head,
           head == 1 ? "" : "es");
}

/* The recorded commit stats of a room, in seq order, walked alongside its
 * patches. */
typedef struct log_stats {
    relay_commit_stats *v;
    size_t n, cap, pos;
    bool oom;
} log_stats;

static void collect_stats(void *ctx, const relay_commit_stats *st)
{
    log_stats *l = ctx;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        relay_commit_stats *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->oom = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *st;
}

static int print_patch(void *ctx, const relay_patch_row *p)
{
    log_stats *l = ctx;
    pb_statement st;
    pb_errmsg why;
    char when[32] = "?";
    time_t t = (time_t)(p->created_us / 1000000u);
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    while (l->pos < l->n && l->v[l->pos].seq < p->seq)
        l->pos++;
    char spread[48] = "-";
    if (l->pos < l->n && l->v[l->pos].seq == p->seq) {
        const relay_commit_stats *c = &l->v[l->pos];
        snprintf(spread, sizeof spread, "%u in %.2f ms", c->runtimes,
                 (double)c->spread_us / 1000.0);
    }
    printf("%6llu  %s  %-12s %8zu  %-17s  ", (unsigned long long)p->seq, when,
           p->author, p->module_len, spread);
    if (pb_statement_decode(p->stmt, p->stmt_len, &st, &why)) {
        printf("(statement does not decode: %s)\n", why.text);
        return 0;
    }
    if (st.kind == PB_KIND_EXPR) { /* its text: = (ggg 10) */
        size_t n = 0, from = 0;
        while (from < p->source_len && strchr(" \t\r\n", p->source[from]))
            from++; /* an editor's eval is blanked into its place */
        while (from + n < p->source_len && n < 60 &&
               p->source[from + n] != '\n')
            n++;
        printf("= %.*s%s\n", (int)n, p->source ? p->source + from : "",
               from + n < p->source_len ? " …" : "");
    }
    for (uint32_t i = 0; i < st.n_symbols; i++)
        printf("%s%.*s", i ? ", " : "", (int)st.symbols[i].name.len,
               st.symbols[i].name.ptr);
    if (st.kind != PB_KIND_EXPR)
        printf("%s\n", st.n_symbols ? "" : "(no vars)");
    pb_statement_free(&st);
    return 0;
}

int cmd_log(int argc, char **argv)
{
    const char *data = cli_data_dir(), *room = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            printf("usage: patchbay log [--room R] [--data DIR]\n\n"
                   "Lists room R's history: seq, time (UTC), author, module "
                   "bytes, lockstep\n(how many runtimes committed the patch "
                   "live, and the spread of their\ncommit times on the room "
                   "clock; \"-\" until it settles, about 2 s after its\n"
                   "apply time) and the vars each patch defines. Without "
                   "--room, lists the\nrooms and their patch counts. Safe "
                   "while the relay runs.\n");
            return 0;
        } else if (!strcmp(argv[i], "--room") && i + 1 < argc) {
            room = argv[++i];
        } else if (!strcmp(argv[i], "--data") && i + 1 < argc) {
            data = argv[++i];
        } else {
            return cli_bad_option("log", argv[i]);
        }
    }
    relay_history *h = cli_open_history("log", data);
    if (!h)
        return 1;
    pb_errmsg why = {{0}};
    pb_err e;
    if (!room) {
        e = relay_history_rooms(h, print_room, NULL, &why);
    } else {
        printf("%6s  %-19s  %-12s %8s  %-17s  %s\n", "seq", "time (UTC)",
               "author", "bytes", "lockstep", "vars");
        log_stats stats = {0};
        e = relay_history_commit_stats(h, room, 1, UINT64_MAX, collect_stats,
                                       &stats, &why);
        if (!e && stats.oom) {
            e = PB_ERR_NOMEM;
            snprintf(why.text, sizeof why.text, "out of memory");
        }
        if (!e)
            e = relay_history_patches(h, room, 1, UINT64_MAX, false,
                                      print_patch, &stats, &why);
        free(stats.v);
    }
    relay_history_close(h);
    if (e) {
        fprintf(stderr, "patchbay log: %s\n", why.text);
        return 1;
    }
    return 0;
}
