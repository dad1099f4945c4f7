/* cmd_replay.c — `patchbay replay`: a recorded session sent again, as new
 * patches of a room (the same one or another), with its original relative
 * timing scaled by --speed.
 *
 * The session comes from a relay's data directory or from a file written
 * by `patchbay export`, and is verified whole before anything is sent.
 * Each patch goes to the target relay as an eval that names its origin —
 * the room and seq it was first evaluated as (docs/PROTOCOL.md § Replay)
 * — so the replay's own history says what it is, and runtimes seed rand()
 * from the origin and draw what the room drew. Evals are the relay's
 * usual path (compiled against the target room's vars) and its usual
 * rate: one is in flight at a time, and a rate refusal is waited out and
 * the same patch sent again; the summary says how much later than the
 * scaled original that made it. A token that may not evaluate in the
 * target room is refused before anything is sent; Ctrl-C stops after the
 * patch in flight has its answer. */
#include "cli.h"
#include "history.h"
#include "pbc.h"
#include "relay.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: patchbay replay --room SRC [--into DST] [--from SEQ] [--to "
        "SEQ]\n"
        "                       [--speed X] [--data DIR | --file FILE] "
        "[--url URL]\n"
        "                       [--token T | --link URL]\n"
        "\n"
        "Sends room SRC's recorded patches again, in order, as new patches of "
        "room\nDST (default: SRC itself), with the original time between them "
        "divided by\nX. Each new patch names the one it repeats (its origin), "
        "so the replay's\nhistory is honest and runtimes draw what the "
        "original drew. The session is\nverified first; a token that may not "
        "evaluate in DST is refused before\nanything is sent. A progress bar "
        "on a terminal, a line per patch otherwise;\nCtrl-C stops after the "
        "patch in flight.\n"
        "\n"
        "options:\n"
        "  --room SRC     the recorded room\n"
        "  --into DST     the room to replay into (the token's room; default "
        "SRC)\n"
        "  --from SEQ     the first patch to send (default 1)\n"
        "  --to SEQ       the last (default: the last recorded)\n"
        "  --speed X      0.01 to 1000 times the original pace (default 1)\n"
        "  --data DIR     the recording relay's data directory (default "
        "$PATCHBAY_DATA\n"
        "                 or ./patchbay-data)\n"
        "  --file FILE    the session from a bundle or an HTML file from "
        "`patchbay export`\n"
        "  --key HEX      the key the session must be signed with (default: "
        "DIR's\n"
        "                 relay.pub, or the key FILE names)\n"
        "  --link URL     a join link for DST (carries the relay, room and "
        "token)\n"
        "  --url URL      the relay to replay into (default $PATCHBAY_URL or\n"
        "                 ws://127.0.0.1:7888)\n"
        "  --token T      an editor token for DST (default $PATCHBAY_TOKEN)\n"
        "  -h, --help     this help\n"
        "\n"
        "Exit status: 0 replayed, 1 a patch was refused (the ones before it "
        "stay) or\nthe session does not verify, 2 usage, 3 the relay or the "
        "session cannot be\nreached, 130 stopped by Ctrl-C.\n");
}

/* One patch to send again. */
typedef struct item {
    uint64_t seq, created_us;
    pb_lang lang;
    bool is_expr;
    char origin_room[PB_MAX_NAME_BYTES + 1];
    uint64_t origin_seq;
    char *source;
    uint32_t source_len;
} item;

typedef struct replay {
    const char *src, *dst;
    uint64_t from, to;
    double speed;
    item *items;
    size_t n, cap;
    pb_err e;
    pb_errmsg why;
    /* sending */
    pbc *c;
    uint64_t req;
    bool is_answered, is_accepted, is_rate_limited;
    uint64_t new_seq;
    char refusal[PB_MAX_MESSAGE_BYTES + 64];
} replay;

static volatile sig_atomic_t is_stopping;

static void on_signal(int sig)
{
    (void)sig;
    is_stopping = 1;
}

/* Keeps the patch if it is in the range. */
static bool keep(replay *r, const pb_patch *p, uint64_t seq)
{
    if (seq < r->from || seq > r->to)
        return true;
    pb_statement st;
    if (pb_statement_decode(p->stmt.ptr, p->stmt.len, &st, &r->why)) {
        r->e = PB_ERR_MALFORMED; /* verified already: cannot be */
        return false;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 256;
        item *more = realloc(r->items, cap * sizeof *more);
        if (!more) {
            pb_statement_free(&st);
            r->e = pb_fail(&r->why, PB_ERR_NOMEM, "out of memory");
            return false;
        }
        r->items = more;
        r->cap = cap;
    }
    item *it = &r->items[r->n];
    memset(it, 0, sizeof *it);
    it->seq = st.seq;
    it->created_us = st.created_us;
    it->lang = st.lang;
    it->is_expr = st.kind == PB_KIND_EXPR;
    /* the origin is where it was first evaluated, through replays too */
    pb_str origin = st.origin_seq ? st.origin_room : st.room;
    it->origin_seq = st.origin_seq ? st.origin_seq : st.seq;
    pb_err e = pb_str_copy(it->origin_room, sizeof it->origin_room, origin);
    pb_statement_free(&st);
    if (e) { /* a decoded statement's room fits: cannot be */
        r->e = pb_fail(&r->why, e, "seq %llu: its origin room is too long",
                       (unsigned long long)seq);
        return false;
    }
    it->source = malloc(p->source.len + 1);
    if (!it->source) {
        r->e = pb_fail(&r->why, PB_ERR_NOMEM, "out of memory");
        return false;
    }
    memcpy(it->source, p->source.ptr ? p->source.ptr : "", p->source.len);
    it->source[p->source.len] = '\0';
    it->source_len = p->source.len;
    r->n++;
    return true;
}

typedef struct row_ctx {
    replay *r;
    cli_check *check;
} row_ctx;

static int keep_row(void *ctx, const relay_patch_row *row)
{
    row_ctx *x = ctx;
    pb_patch p;
    if (!cli_check_row(x->check, row, &p))
        return 1;
    return keep(x->r, &p, row->seq) ? 0 : 1;
}

/* The session from a data directory: verified from seq 1, kept from..to. */
static int load_data(replay *r, const char *data, const char *key_hex)
{
    relay_history *h = cli_open_history("replay", data);
    if (!h)
        return 3;
    uint8_t key[PB_PUBLICKEY_BYTES], hash[PB_HASH_BYTES];
    uint64_t head = 0, n_good = 0, bad_seq = 0;
    pb_errmsg why = {{0}};
    int rc = 0;
    if ((key_hex ? cli_parse_key(key_hex, key, &why)
                 : cli_data_key(data, key, &why)) ||
        relay_history_head(h, r->src, &head, hash, &why)) {
        fprintf(stderr, "patchbay replay: %s\n", why.text);
        relay_history_close(h);
        return 3;
    }
    if (r->to > head)
        r->to = head;
    uint64_t epoch = 0;
    pb_err e = relay_history_epoch(h, r->src, 0, &epoch, &why);
    row_ctx x = {r, e ? NULL : cli_check_new(r->src, epoch, key, 0, NULL)};
    if (!e)
        e = x.check ? relay_history_patches(h, r->src, 1, head, false, keep_row,
                                            &x, &why)
                    : PB_ERR_NOMEM;
    pb_errmsg why_check = {{0}};
    if (!e && !r->e && cli_check_end(x.check, &n_good, &bad_seq, &why_check)) {
        fprintf(stderr,
                "patchbay replay: room %s does not verify, nothing sent: %s\n",
                r->src, why_check.text);
        rc = 1;
    } else if (e || r->e) {
        fprintf(stderr, "patchbay replay: %s\n", e ? why.text : r->why.text);
        rc = 3;
    }
    cli_check_free(x.check);
    relay_history_close(h);
    return rc;
}

/* The session from a bundle or an exported page. */
static int load_file(replay *r, const char *path, const char *key_hex,
                     const char **room)
{
    cli_bundle b;
    pb_errmsg why = {{0}};
    pb_err e = cli_bundle_open(path, true, &b, &why);
    if (e) {
        fprintf(stderr, "patchbay replay: %s\n", why.text);
        return e == PB_ERR_IO ? 3 : 1;
    }
    static char file_room[PB_MAX_NAME_BYTES + 1];
    if (pb_str_copy(file_room, sizeof file_room, b.head.bundle.room))
        file_room[0] = '\0'; /* cli_bundle_open checked it: cannot be */
    if (*room && strcmp(*room, file_room)) {
        fprintf(stderr, "patchbay replay: %s holds room %s, not %s\n", path,
                file_room, *room);
        cli_bundle_close(&b);
        return 2;
    }
    *room = r->src = file_room;
    uint8_t pinned[PB_PUBLICKEY_BYTES];
    if (key_hex && cli_parse_key(key_hex, pinned, &why)) {
        cli_bundle_close(&b);
        return cli_usage_error("replay", "--key: %s", why.text);
    }
    uint64_t n_good = 0, bad_seq = 0;
    if (cli_bundle_check(&b, key_hex ? pinned : b.head.bundle.key, 0, NULL,
                         &n_good, &bad_seq, &why)) {
        fprintf(stderr,
                "patchbay replay: %s does not verify, nothing sent: "
                "%s\n",
                path, why.text);
        cli_bundle_close(&b);
        return 1;
    }
    if (r->to > n_good)
        r->to = n_good;
    cli_bundle_rewind(&b);
    int rc = 0;
    for (uint64_t seq = 1;; seq++) {
        pb_frame f;
        bool done = false;
        if (cli_bundle_next(&b, &f, &done, &why) || done)
            break;
        bool ok = keep(r, &f.patch, seq);
        pb_frame_free(&f);
        if (!ok) {
            fprintf(stderr, "patchbay replay: %s\n", r->why.text);
            rc = 3;
            break;
        }
    }
    cli_bundle_close(&b);
    return rc;
}

static int on_frame(void *ctx, const pb_frame *f)
{
    replay *r = ctx;
    if (f->type == PB_T_DIAG && f->diag.req == r->req) {
        r->is_answered = true;
        r->is_accepted = f->diag.ok;
        r->new_seq = f->diag.seq;
        if (!f->diag.ok) {
            const pb_diag_item *d = f->diag.n_items ? &f->diag.items[0] : NULL;
            snprintf(r->refusal, sizeof r->refusal,
                     "it does not compile in room %s%s%.*s", r->dst,
                     d ? ": " : "", d ? (int)d->message.len : 0,
                     d ? d->message.ptr : "");
        }
        return 1;
    }
    if (f->type == PB_T_ERROR && (f->error.req == r->req || f->error.fatal)) {
        r->is_answered = true;
        r->is_accepted = false;
        r->is_rate_limited =
            f->error.code == PB_ERR_RATE_LIMITED && !f->error.fatal;
        snprintf(r->refusal, sizeof r->refusal, "%.*s (%s)",
                 (int)f->error.message.len, f->error.message.ptr,
                 pb_strerror((pb_err)f->error.code));
        return 1;
    }
    return 0;
}

static void sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL); /* a signal ends it early: the loop checks */
}

/* Sends one patch and waits for its answer; retries after a rate refusal.
 * Returns 0 accepted, 1 refused, 3 the connection ended. *held_s grows by
 * the time the relay's rate held it back. */
static int send_one(replay *r, const item *it, double *held_s)
{
    double backoff = 0.1;
    for (;;) {
        pb_frame f = {.type = PB_T_EVAL};
        char name[PB_MAX_NAME_BYTES * 2 + 32];
        snprintf(name, sizeof name, "%s#%llu", it->origin_room,
                 (unsigned long long)it->origin_seq);
        f.eval.req = ++r->req;
        f.eval.lang = it->lang;
        f.eval.name = pb_cstr(name);
        f.eval.source = (pb_str){it->source, it->source_len};
        f.eval.expr = it->is_expr;
        f.eval.origin_room = pb_cstr(it->origin_room);
        f.eval.origin_seq = it->origin_seq;
        r->is_answered = r->is_accepted = r->is_rate_limited = false;
        pb_errmsg why = {{0}};
        if (pbc_send(r->c, &f, &why)) {
            snprintf(r->refusal, sizeof r->refusal, "%s", why.text);
            return 3;
        }
        /* the answer comes (the relay bounds a compile); Ctrl-C waits for
         * it, so that what was sent is known */
        pbc_wait_end w = pbc_wait(r->c, 60000, on_frame, r, &why);
        if (w == PBC_WAIT_CLOSED) {
            snprintf(r->refusal, sizeof r->refusal, "%s", why.text);
            return 3;
        }
        if (w == PBC_WAIT_DEADLINE) {
            snprintf(r->refusal, sizeof r->refusal,
                     "no answer from the relay in 60 s");
            return 3;
        }
        if (r->is_accepted)
            return 0;
        if (!r->is_rate_limited || is_stopping)
            return 1;
        double t0 = cli_now_s();
        sleep_s(backoff);
        *held_s += cli_now_s() - t0;
        backoff = backoff < 1.6 ? backoff * 2 : 2;
    }
}

static int run(replay *r, const pbc_target *target)
{
    pb_errmsg why = {{0}};
    pbc_welcome w;
    r->c = pbc_connect(target, "patchbay-replay/" PB_VERSION_STRING, 5000, &w,
                       &why);
    if (!r->c) {
        fprintf(stderr, "patchbay replay: %s:%d: %s\n", target->host,
                target->port, why.text);
        return 3;
    }
    /* refused before anything is sent */
    if (strcmp(w.room, r->dst)) {
        fprintf(stderr,
                "patchbay replay: the token is for room \"%s\", not \"%s\": "
                "nothing sent\n",
                w.room, r->dst);
        return 1;
    }
    if (w.role != PB_ROLE_EDITOR && w.role != PB_ROLE_OWNER) {
        fprintf(stderr,
                "patchbay replay: the token's role is %s; replaying into "
                "room %s needs an editor or owner token: nothing sent\n",
                pb_role_name(w.role), r->dst);
        return 1;
    }
    cli_progress bar;
    cli_progress_start(&bar, "replaying", r->n);
    double start = cli_now_s(), held = 0, worst_late = 0;
    uint64_t first_new = 0, last_new = 0;
    size_t sent = 0;
    int rc = 0;
    for (size_t i = 0; i < r->n && !rc; i++) {
        const item *it = &r->items[i];
        double due = start + (double)(it->created_us - r->items[0].created_us) /
                                 1e6 / r->speed;
        while (!is_stopping && cli_now_s() < due) {
            double left = due - cli_now_s();
            /* keep the socket serviced while waiting */
            pbc_wait(r->c, left > 0.1 ? 100 : (uint32_t)(left * 1000) + 1, NULL,
                     NULL, &why);
        }
        if (is_stopping)
            break;
        double late = cli_now_s() - due;
        rc = send_one(r, it, &held);
        if (rc) {
            cli_progress_end(&bar);
            fprintf(stderr,
                    "patchbay replay: seq %llu of room %s was not accepted "
                    "into room %s: %s\n",
                    (unsigned long long)it->seq, r->src, r->dst, r->refusal);
            break;
        }
        sent++;
        if (!first_new)
            first_new = r->new_seq;
        last_new = r->new_seq;
        if (late > worst_late)
            worst_late = late;
        char detail[96];
        snprintf(detail, sizeof detail, "seq %llu -> %s#%llu",
                 (unsigned long long)it->seq, r->dst,
                 (unsigned long long)r->new_seq);
        if (bar.is_tty)
            cli_progress_update(&bar, sent, detail);
        else
            printf("seq %llu -> %s#%llu at +%.2f s (%+.0f ms)\n",
                   (unsigned long long)it->seq, r->dst,
                   (unsigned long long)r->new_seq, cli_now_s() - start,
                   late * 1000);
        fflush(stdout);
    }
    cli_progress_end(&bar);
    double took = cli_now_s() - start;
    double original =
        r->n
            ? (double)(r->items[r->n - 1].created_us - r->items[0].created_us) /
                  1e6
            : 0;
    if (sent)
        printf("replayed %zu patch%s of room %s (seq %llu-%llu) into room %s "
               "as seq %llu-%llu in %.1f s (the original took %.1f s; at "
               "%gx, %.1f s)%s",
               sent, sent == 1 ? "" : "es", r->src,
               (unsigned long long)r->items[0].seq,
               (unsigned long long)r->items[sent - 1].seq, r->dst,
               (unsigned long long)first_new, (unsigned long long)last_new,
               took, original, r->speed, original / r->speed,
               held > 0 ? "" : "\n");
    if (sent && held > 0)
        printf("; the relay's eval rate held it back %.1f s in all\n", held);
    if (sent)
        printf("  each patch sent at most %.0f ms after its scaled time\n",
               worst_late * 1000);
    if (is_stopping && !rc) {
        fprintf(stderr,
                "patchbay replay: stopped by Ctrl-C after %zu of %zu "
                "patches%s\n",
                sent, r->n,
                sent ? " (each sent patch was answered and stays)" : "");
        return 130;
    }
    return rc;
}

int cmd_replay(int argc, char **argv)
{
    replay r = {0};
    r.speed = 1;
    r.from = 1;
    r.to = UINT64_MAX;
    const char *data = cli_data_dir(), *file = NULL, *key_hex = NULL;
    cli_conn_opts conn = {0};
    bool has_data = false;
    pb_errmsg why = {{0}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double n;
        /* --room is the recorded room here, not the shared "refuse unless
         * the token is for R" (that is --into's room) */
        int taken = strcmp(a, "--room")
                        ? cli_conn_option("replay", argc, argv, &i, &conn)
                        : 0;
        if (taken < 0)
            return 2;
        if (taken)
            continue;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!v) {
            return cli_bad_option("replay", a);
        }
        i++;
        if (!strcmp(a, "--room")) {
            r.src = v;
        } else if (!strcmp(a, "--into")) {
            r.dst = v;
        } else if (!strcmp(a, "--from") || !strcmp(a, "--to")) {
            if (cli_parse_number(a, v, 1, 9007199254740992.0, true, &n, &why))
                return cli_usage_error("replay", "%s", why.text);
            *(a[2] == 'f' ? &r.from : &r.to) = (uint64_t)n;
        } else if (!strcmp(a, "--speed")) {
            if (cli_parse_number(a, v, 0.01, 1000, false, &r.speed, &why))
                return cli_usage_error("replay", "%s", why.text);
        } else if (!strcmp(a, "--data")) {
            data = v;
            has_data = true;
        } else if (!strcmp(a, "--file")) {
            file = v;
        } else if (!strcmp(a, "--key")) {
            key_hex = v;
        } else {
            return cli_bad_option("replay", a);
        }
    }
    if (!r.src && !file)
        return cli_usage_error("replay", "--room SRC (or --file FILE) is "
                                         "required (see patchbay replay "
                                         "--help)");
    if (file && has_data)
        return cli_usage_error("replay", "the session comes from --data or "
                                         "--file, not both");
    if (r.from > r.to)
        return cli_usage_error("replay",
                               "--from %llu is after --to %llu: nothing to "
                               "replay",
                               (unsigned long long)r.from,
                               (unsigned long long)r.to);
    pbc_target target;
    if (cli_target(&conn, &target, &why))
        return cli_usage_error("replay", "%s", why.text);
    if (pb_init()) {
        fprintf(stderr, "patchbay replay: libsodium does not initialise\n");
        return 3;
    }
    const char *room = r.src;
    int rc = file ? load_file(&r, file, key_hex, &room)
                  : load_data(&r, data, key_hex);
    if (!rc && !r.n) {
        fprintf(stderr,
                "patchbay replay: room %s has no patches from seq %llu: "
                "nothing to replay\n",
                r.src, (unsigned long long)r.from);
        rc = 1;
    }
    if (!r.dst)
        r.dst = target.room[0] ? target.room : r.src;
    if (!rc) {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGPIPE, SIG_IGN);
        rc = run(&r, &target);
    }
    pbc_close(r.c);
    for (size_t i = 0; i < r.n; i++)
        free(r.items[i].source);
    free(r.items);
    return rc;
}
