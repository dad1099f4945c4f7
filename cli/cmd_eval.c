/* cmd_eval.c — `patchbay eval` and `patchbay watch`: send a file to a
 * room's relay as an eval, print the compiler's diagnostics in the
 * FILE:LINE:COL form editors parse, then the acks of the room's runtimes;
 * for an expression (docs/PROTOCOL.md § Expressions), what it printed and
 * its value: `=> 59`, or `=> 58 on 2 runtimes, 59 on 8` when the runtimes
 * disagree. watch re-sends a file whenever it changes, so any text editor
 * works. */
#include "cli.h"
#include "pbc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef struct eval_opts {
    cli_conn_opts conn;
    pbc_target target; /* from conn */
    pb_lang lang;
    uint32_t wait_ms;
    bool has_wait_ms;
    uint32_t runtimes;
    bool quiet;
    bool expr;             /* --expr: FILE is one expression */
    const char *expr_text; /* -e EXPR */
    const char *files[64];
    int n_files;
} eval_opts;

static void usage(FILE *out, const char *cmd)
{
    fprintf(
        out,
        "usage: patchbay %s [options] %s\n"
        "\n"
        "%s\n"
        "\n"
        "options:\n"
        "  --link URL        a join link printed by `patchbay token` (carries "
        "the\n"
        "                    relay address, room and token)\n"
        "  --url URL         the relay (default $PATCHBAY_URL or "
        "ws://127.0.0.1:7888)\n"
        "  --token T         an editor token (default $PATCHBAY_TOKEN)\n"
        "  --ca FILE         for wss:// and https://: trust this PEM CA "
        "(default\n"
        "                    $PATCHBAY_CA, else the system's CAs)\n"
        "  --room R          refuse to send unless the token is for room R\n"
        "  --lang c|lisp     default: from the file name (.c, or "
        ".cljc/.clj/.jank);\n"
        "                    for -e, c\n"
        "%s"
        "  --wait-ms N       after an accepted patch, print runtime acks for "
        "N ms\n"
        "                    (default 1000; for an expression 5000, or "
        "until every\n"
        "                    runtime of the room answered)\n"
        "  --runtimes N      stop waiting once N runtimes committed\n"
        "  -q, --quiet       print only diagnostics (and an expression's "
        "value)\n"
        "  -h, --help        this help\n"
        "\n"
        "exit status: 0 accepted, 1 compile errors, 2 usage, 3 relay or "
        "connection error%s\n",
        cmd, !strcmp(cmd, "eval") ? "FILE|-|-e EXPR" : "FILE...",
        !strcmp(cmd, "eval")
            ? "Evaluates FILE (or stdin) in the token's room: the relay "
              "compiles it, and\nevery runtime in the room swaps it in. "
              "An expression (-e 'ggg(10)', or a Lisp\nfile whose only "
              "form is not a definition) runs once on every runtime,\n"
              "which reports its value: => 59, or => 58 on 2 runtimes, 59 "
              "on 8."
            : "Evaluates each FILE now and again whenever it is saved.",
        !strcmp(cmd, "eval")
            ? "  -e EXPR           evaluate the expression EXPR once on "
              "every runtime\n"
              "  --expr            FILE holds one expression (C needs it; "
              "Lisp finds it)\n"
            : "",
        !strcmp(cmd, "eval") ? ", 4 the expression trapped on a runtime" : "");
}

static int parse(int argc, char **argv, const char *cmd, eval_opts *o)
{
    memset(o, 0, sizeof *o);
    o->wait_ms = 1000;
    for (int i = 1; i < argc; i++) {
        int taken = cli_conn_option(cmd, argc, argv, &i, &o->conn);
        if (taken < 0)
            return 2;
        if (taken)
            continue;
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout, cmd);
            return 1;
        } else if (!strcmp(a, "--lang") && has) {
            o->lang = pb_lang_parse(pb_cstr(argv[++i]));
            if (!o->lang)
                return cli_usage_error(cmd, "--lang is c or lisp, not \"%s\"",
                                       argv[i]);
        } else if ((!strcmp(a, "--wait-ms") || !strcmp(a, "--runtimes")) &&
                   has) {
            pb_errmsg why;
            uint32_t v;
            if (cli_parse_u32(a, argv[++i], 0, 3600000, &v, &why))
                return cli_usage_error(cmd, "%s", why.text);
            if (!strcmp(a, "--wait-ms")) {
                o->wait_ms = v;
                o->has_wait_ms = true;
            } else
                o->runtimes = v;
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o->quiet = true;
        } else if (!strcmp(cmd, "eval") && !strcmp(a, "-e") && has) {
            o->expr_text = argv[++i];
            o->expr = true;
        } else if (!strcmp(cmd, "eval") && !strcmp(a, "--expr")) {
            o->expr = true;
        } else if (a[0] == '-' && a[1]) {
            return cli_bad_option(cmd, a);
        } else if (o->n_files < 64) {
            o->files[o->n_files++] = a;
        }
    }
    if ((!o->n_files && !o->expr_text) ||
        (!strcmp(cmd, "eval") && o->n_files + !!o->expr_text > 1)) {
        usage(stderr, cmd);
        return 2;
    }
    if (o->expr && !o->has_wait_ms)
        o->wait_ms = 5000;
    pb_errmsg why;
    if (cli_target(&o->conn, &o->target, &why))
        return cli_usage_error(cmd, "%s", why.text);
    return 0;
}

/* The room's runtimes, and what they said about an expression: a runtime
 * present when it was accepted runs it; one that joins later catches up
 * without running it (docs/PROTOCOL.md § Expressions). */
typedef struct eval_state {
    const eval_opts *o;
    const char *file;
    uint64_t req;
    bool is_accepted; /* an ok diag came: now the runtimes' acks */
    int status; /* exit status so far */
    uint64_t seq;
    bool is_expr;
    uint32_t committed, failed;
    pbc_runtimes runtimes; /* the room's (peers) */
    uint32_t n_expected;   /* runtimes present at acceptance */
    pbc_answers answers;
} eval_state;

/* As many runtimes answered as were in the room when the expression was
 * accepted. One that left may still answer: a runtime restarted by its
 * watchdog inside the expression says so from its new connection. */
static bool all_answered(const eval_state *st)
{
    return st->n_expected && st->answers.n >= st->n_expected;
}

/* Prints what the expression printed (each different output once), then
 * its value: => 59, or => 58 on 2 runtimes, 59 on 8; failures likewise, on
 * stderr. Returns 4 if it failed anywhere. */
static int print_answers(const eval_state *st)
{
    const pbc_answers *a = &st->answers;
    for (uint32_t i = 0; i < a->n; i++) {
        bool is_seen = false;
        for (uint32_t k = 0; k < i && !is_seen; k++)
            is_seen = !strcmp(a->items[k].out, a->items[i].out);
        if (!is_seen)
            fputs(a->items[i].out, stdout);
    }
    char text[8192];
    if (pbc_answers_count(a, true)) {
        pbc_answers_describe(a, true, text, sizeof text);
        printf("=> %s\n", text);
    }
    if (!pbc_answers_count(a, false))
        return 0;
    pbc_answers_describe(a, false, text, sizeof text);
    fprintf(stderr, "failed: %s\n", text);
    return 4;
}

static int on_frame(void *ctx, const pb_frame *f)
{
    eval_state *st = ctx;
    if (f->type == PB_T_PEERS) {
        pbc_runtimes_track(&st->runtimes, &f->peers);
        return st->is_expr && st->is_accepted && all_answered(st);
    }
    if (f->type == PB_T_DIAG && f->diag.req == st->req) {
        for (uint32_t i = 0; i < f->diag.n_items; i++) {
            const pb_diag_item *d = &f->diag.items[i];
            fprintf(stderr, "%s:%u:%u: %s: %.*s\n", st->file, d->line, d->col,
                    pb_severity_name(d->severity), (int)d->message.len,
                    d->message.ptr);
        }
        if (!f->diag.ok) {
            st->status = 1;
            return 1;
        }
        st->seq = f->diag.seq;
        st->is_expr = f->diag.expr;
        st->is_accepted = true;
        st->n_expected = st->runtimes.n;
        if (!st->o->quiet && !st->is_expr)
            printf("%s: accepted as seq %llu\n", st->file,
                   (unsigned long long)st->seq);
        return 1; /* then wait for acks, if asked to */
    }
    if (f->type == PB_T_ERROR && (f->error.req == st->req || f->error.fatal)) {
        fprintf(stderr, "%s: error: %.*s\n", st->file,
                (int)f->error.message.len, f->error.message.ptr);
        st->status = 3;
        return 1;
    }
    if (f->type == PB_T_ACK && st->is_accepted && f->ack.seq == st->seq) {
        if (f->ack.state == PB_ACK_COMMITTED)
            st->committed++;
        if (f->ack.state == PB_ACK_FAILED)
            st->failed++;
        if (st->is_expr) {
            pbc_answers_add(&st->answers, &f->ack);
            return all_answered(st) ||
                   (st->o->runtimes && st->answers.n >= st->o->runtimes);
        }
        if (!st->o->quiet) {
            printf("  runtime %llu: %s", (unsigned long long)f->ack.runtime_id,
                   pb_ack_state_name(f->ack.state));
            if (f->ack.prepare_us)
                printf(", prepared in %.2f ms", f->ack.prepare_us / 1000.0);
            if (f->ack.state == PB_ACK_COMMITTED)
                printf(", %+.2f ms from the apply time",
                       f->ack.late_us / 1000.0);
            if (f->ack.error.len)
                printf(": %.*s", (int)f->ack.error.len, f->ack.error.ptr);
            printf("\n");
        }
        if (st->o->runtimes && st->committed >= st->o->runtimes)
            return 1;
    }
    return 0;
}

static int eval_one(pbc *c, const eval_opts *o, const char *file,
                    uint64_t req)
{
    pb_buf src;
    pb_buf_init(&src);
    pb_errmsg why = {{0}};
    if (!o->expr_text && cli_read_file(file, &src, &why)) {
        fprintf(stderr, "patchbay eval: %s\n", why.text);
        pb_buf_free(&src);
        return 2;
    }
    const char *shown = o->expr_text        ? "expr"
                        : strcmp(file, "-") ? file
                                            : "stdin";
    pb_frame f = {.type = PB_T_EVAL};
    f.eval.req = req;
    f.eval.lang = o->expr_text ? (o->lang ? o->lang : PB_LANG_C)
                               : cli_lang_of(file, o->lang);
    f.eval.name = pb_cstr(shown);
    f.eval.source = o->expr_text
                        ? pb_cstr(o->expr_text)
                        : (pb_str){(const char *)src.data, (uint32_t)src.len};
    f.eval.expr = o->expr;
    pb_err e = pbc_send(c, &f, &why);
    pb_buf_free(&src);
    if (e) {
        fprintf(stderr, "%s: error: %s\n", shown, why.text);
        return 2;
    }
    eval_state *st = calloc(1, sizeof *st);
    if (!st) {
        fprintf(stderr, "%s: error: out of memory\n", shown);
        return 3;
    }
    st->o = o;
    st->file = shown;
    st->req = req;
    /* compile first (bounded by the relay's own limits), then acks */
    pbc_wait_end r = pbc_wait(c, 30000, on_frame, st, &why);
    int status = 0;
    if (r == PBC_WAIT_CLOSED) {
        fprintf(stderr, "%s: error: %s\n", st->file, why.text);
        status = 3;
    } else if (r == PBC_WAIT_DEADLINE && !st->is_accepted) {
        fprintf(stderr, "%s: error: no answer from the relay in 30 s\n",
                st->file);
        status = 3;
    } else {
        if (st->is_accepted && o->wait_ms &&
            !(o->runtimes && st->committed >= o->runtimes) &&
            !(st->is_expr && all_answered(st)))
            pbc_wait(c, o->wait_ms, on_frame, st, &why);
        status = st->status;
        if (st->is_accepted && st->is_expr && st->answers.n)
            status = print_answers(st);
        else if (st->is_accepted && st->is_expr)
            fprintf(stderr,
                    "%s: seq %llu ran on no runtime: none in the room "
                    "answered within %u ms\n",
                    st->file, (unsigned long long)st->seq, o->wait_ms);
        else if (st->is_accepted && !o->quiet)
            printf("%s: seq %llu committed by %u runtime%s%s\n", st->file,
                   (unsigned long long)st->seq, st->committed,
                   st->committed == 1 ? "" : "s",
                   st->failed ? ", failed on some (see above)" : "");
    }
    pbc_answers_free(&st->answers);
    free(st);
    return status;
}

/* Joins the room; o->target.first becomes the relay that answered. */
static pbc *connect_to(eval_opts *o, const char *cmd)
{
    pbc_welcome w;
    pbc *c = cli_join(cmd, &o->target, o->conn.room, 5000, &w);
    if (!c)
        return NULL;
    o->target.first = w.relay;
    if (w.role != PB_ROLE_EDITOR && w.role != PB_ROLE_OWNER) {
        fprintf(stderr,
                "patchbay %s: the token's role is %s; evaluating needs an "
                "editor or owner token\n",
                cmd, pb_role_name(w.role));
        pbc_close(c);
        return NULL;
    }
    return c;
}

int cmd_eval(int argc, char **argv)
{
    eval_opts o;
    int r = parse(argc, argv, "eval", &o);
    if (r)
        return r == 1 ? 0 : r;
    pbc *c = connect_to(&o, "eval");
    if (!c)
        return 3;
    int status = eval_one(c, &o, o.files[0], 1);
    pbc_close(c);
    return status;
}

int cmd_watch(int argc, char **argv)
{
    eval_opts o;
    int r = parse(argc, argv, "watch", &o);
    if (r)
        return r == 1 ? 0 : r;
    struct timespec seen[64];
    memset(seen, 0, sizeof seen);
    uint64_t req = 0;
    uint32_t backoff_ms = 250;
    pbc *c = NULL;
    printf("watching %d file%s; Ctrl-C stops\n", o.n_files,
           o.n_files == 1 ? "" : "s");
    fflush(stdout);
    unsigned relays = pbc_target_relays(&o.target);
    for (;;) {
        if (!c) {
            c = connect_to(&o, "watch");
            if (!c) {
                struct timespec ts = {backoff_ms / 1000,
                                      (long)(backoff_ms % 1000) * 1000000L};
                nanosleep(&ts, NULL);
                backoff_ms = backoff_ms < 8000 ? backoff_ms * 2 : 8000;
                continue;
            }
            backoff_ms = 250;
        }
        for (int i = 0; i < o.n_files; i++) {
            struct stat sb;
            if (stat(o.files[i], &sb) != 0)
                continue;
            if (sb.st_mtim.tv_sec == seen[i].tv_sec &&
                sb.st_mtim.tv_nsec == seen[i].tv_nsec)
                continue;
            seen[i] = sb.st_mtim;
            if (eval_one(c, &o, o.files[i], ++req) == 3) {
                pbc_close(c);
                c = NULL;
                o.target.first = (o.target.first + 1) % relays;
                memset(&seen[i], 0, sizeof seen[i]); /* retry after reconnect */
                break;
            }
            fflush(stdout);
        }
        pb_errmsg why;
        if (c && pbc_wait(c, 200, NULL, NULL, &why) == PBC_WAIT_CLOSED) {
            fprintf(stderr, "patchbay watch: %s; reconnecting\n", why.text);
            pbc_close(c);
            c = NULL;
            o.target.first = (o.target.first + 1) % relays; /* the next */
        }
    }
    return 0;
}
