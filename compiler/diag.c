/* diag.c — a job's diagnostics, at the positions the user wrote: clang's
 * (from either backend) mapped from the compiled C back to the user's C or
 * Lisp, messages about the room's declarations or a header said as such,
 * and location-less ones placed at the var they name. */
#include "internal.h"
#include "lisp/lisp.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

uint32_t cc_user_line(const cc_job_ctx *j, uint32_t line, uint32_t *col)
{
    if (j->is_c_expr && line >= CC_WRAPPER_LINE) {
        bool is_before = line < CC_WRAPPER_END_LINE;
        if (col)
            *col = is_before ? 1 : j->end_col;
        return is_before ? 1 : j->end_line;
    }
    if (!j->lisp || !line)
        return line;
    uint32_t l, c;
    lisp_c_locate(j->lisp, line, col && *col ? *col : 1, &l, &c);
    if (col)
        *col = c;
    return l;
}

void cc_add_diag(cc_job_ctx *j, pb_severity sev, uint32_t line, uint32_t col,
                 const char *fmt, ...)
{
    cc_result *r = j->r;
    if (r->n_diags >= CC_MAX_DIAGS)
        return;
    char msg[PB_MAX_MESSAGE_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    msg[pb_utf8_prefix(msg, strlen(msg))] = '\0'; /* cut mid-character? */
    if (!r->diags && !(r->diags = calloc(CC_MAX_DIAGS, sizeof *r->diags))) {
        j->oom = true;
        return;
    }
    cc_diag *d = &r->diags[r->n_diags];
    if (!(d->message = cc_strdup(msg))) {
        j->oom = true;
        return;
    }
    d->line = line ? line : 1;
    d->col = col ? col : 1;
    d->severity = sev;
    r->n_diags++;
}

uint32_t cc_line_of(const char *src, size_t len, const char *name)
{
    size_t n = strlen(name);
    uint32_t line = 1;
    for (size_t i = 0; i + n <= len; i++) {
        if (src[i] == '\n')
            line++;
        if (!memcmp(src + i, name, n) &&
            (i == 0 ||
             !(isalnum((unsigned char)src[i - 1]) || src[i - 1] == '_')) &&
            (i + n == len ||
             !(isalnum((unsigned char)src[i + n]) || src[i + n] == '_')))
            return line;
    }
    return 0;
}

/* A quoted var name in a location-less message ("function \"f\" ..."). */
static uint32_t line_of_quoted(const cc_job_ctx *j, const char *msg)
{
    const char *q = strchr(msg, '"');
    if (!q)
        return 0;
    const char *e = strchr(q + 1, '"');
    if (!e || e - q - 1 > (ptrdiff_t)PB_MAX_NAME_BYTES)
        return 0;
    char name[PB_MAX_NAME_BYTES + 1];
    snprintf(name, sizeof name, "%.*s", (int)(e - q - 1), q + 1);
    const cc_found *f = cc_scan_find(j->scan, name);
    return cc_user_line(
        j, f ? f->line : cc_line_of(j->source, j->source_len, name), NULL);
}

void cc_on_backend_diag(void *ctx, pb_severity sev, const char *file,
                        unsigned line, unsigned col, const char *message)
{
    cc_job_ctx *j = ctx;
    if (j->lisp && sev != PB_SEV_ERROR)
        return; /* warnings about generated C would only confuse */
    if (!strcmp(file, CC_MAIN_PATH)) {
        /* after an error in a C expression, what clang says about the
         * wrapper around it only follows from that one */
        if (j->is_c_expr && line >= CC_WRAPPER_LINE && cc_has_errors(j->r))
            return;
        line = cc_user_line(j, line, &col);
        /* PB_VALUE's static assertion, which clang prefixes with its
         * condition: the message is what the user needs */
        const char *quote = strchr(message, '"');
        if (j->is_c_expr && !strncmp(message, "static_assert failed", 20) &&
            quote && strstr(quote, "the value of an expression"))
            message = quote;
        for (uint32_t i = 0; i < j->r->n_diags; i++)
            if (j->r->diags[i].line == line && j->r->diags[i].col == col &&
                !strcmp(j->r->diags[i].message, message))
                return; /* the prototype and the definition of one Lisp
                           form, or the two copies of a C expression */
        cc_add_diag(j, sev, line, col, "%s", message);
    } else if (!strcmp(file, CC_PRELUDE_PATH)) {
        cc_add_diag(j, sev, 1, 1, "in the room's declarations: %s", message);
    } else if (file[0]) {
        const char *base = strrchr(file, '/');
        cc_add_diag(j, sev, 1, 1, "in %s:%u: %s", base ? base + 1 : file, line,
                    message);
    } else {
        cc_add_diag(j, sev, line_of_quoted(j, message), 1, "%s", message);
    }
}
