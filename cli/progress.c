/* progress.c — a progress bar for long work (verify, import, export,
 * replay): on stderr, only when it is a terminal, redrawn at most ten
 * times a second so that drawing never costs more than the work. A script
 * reading the output sees only the commands' own lines. */
#include "history.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double cli_now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

void cli_progress_start(cli_progress *p, const char *what, uint64_t total)
{
    memset(p, 0, sizeof *p);
    p->what = what;
    p->total = total;
    p->is_tty = isatty(STDERR_FILENO) && !getenv("PATCHBAY_NO_PROGRESS");
    p->started = cli_now_s();
}

void cli_progress_update(cli_progress *p, uint64_t done, const char *detail)
{
    if (!p || !p->is_tty)
        return;
    double now = cli_now_s();
    if (now - p->drawn < 0.1 && !(p->total && done >= p->total))
        return;
    p->drawn = now;
    char bar[32] = "";
    if (p->total) {
        int fill = (int)(done >= p->total ? 24 : 24 * done / p->total);
        for (int i = 0; i < 24; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[24] = '\0';
    }
    char line[256];
    int n;
    if (p->total)
        n = snprintf(line, sizeof line, "%s [%s] %llu/%llu  %.1f s%s%s",
                     p->what, bar, (unsigned long long)done,
                     (unsigned long long)p->total, now - p->started,
                     detail ? "  " : "", detail ? detail : "");
    else
        n = snprintf(line, sizeof line, "%s %llu  %.1f s%s%s", p->what,
                     (unsigned long long)done, now - p->started,
                     detail ? "  " : "", detail ? detail : "");
    if (n < 0)
        return;
    if (n >= (int)sizeof line)
        n = (int)sizeof line - 1;
    /* pad over what the last line left */
    fprintf(stderr, "\r%s%*s", line, p->width > n ? p->width - n : 0, "");
    fflush(stderr);
    p->width = n;
}

void cli_progress_end(cli_progress *p)
{
    if (!p || !p->is_tty || !p->width)
        return;
    fprintf(stderr, "\r%*s\r", p->width, "");
    fflush(stderr);
    p->width = 0;
}
