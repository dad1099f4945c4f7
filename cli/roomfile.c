/* roomfile.c — the room file of `patchbay compile --room`: it stands in for
 * a relay's var table, so that patches can be compiled against earlier ones
 * offline. One var per line, NAME<TAB>SIG<TAB>DEP,DEP<TAB>DECL; a line
 * without a signature is skipped. Saving replaces the file through a
 * temporary one and rename, so a failure never leaves half a file. */
#include "cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_room_free(cli_room *r)
{
    for (uint32_t i = 0; i < r->n; i++) {
        cc_var *v = &r->vars[i];
        free((char *)v->name);
        free((char *)v->sig);
        free((char *)v->decl);
        for (uint32_t k = 0; k < v->n_deps; k++)
            free((char *)v->deps[k]);
        free((void *)v->deps);
    }
    free(r->vars);
    memset(r, 0, sizeof *r);
}

/* Splits deps ("a,b,c") into v's list. */
static bool add_deps(cc_var *v, char *list)
{
    uint32_t n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    char **deps = calloc(n, sizeof *deps);
    if (!deps)
        return false;
    v->deps = (const char *const *)deps;
    char *save = NULL;
    for (char *d = strtok_r(list, ",", &save); d;
         d = strtok_r(NULL, ",", &save))
        if (!(deps[v->n_deps++] = strdup(d)))
            return false;
    return true;
}

/* Adds the var of one line (fields split in place). */
static bool add_line(cli_room *r, char *line, uint32_t *cap)
{
    char *field[4] = {line, NULL, NULL, NULL};
    for (int k = 1; k < 4 && field[k - 1]; k++) {
        char *tab = strchr(field[k - 1], '\t');
        if (tab) {
            *tab = '\0';
            field[k] = tab + 1;
        }
    }
    if (!field[1])
        return true; /* no signature: not a var */
    if (r->n == *cap) {
        uint32_t n = *cap ? *cap * 2 : 16;
        cc_var *vars = realloc(r->vars, n * sizeof *vars);
        if (!vars)
            return false;
        r->vars = vars;
        *cap = n;
    }
    cc_var *v = &r->vars[r->n++];
    memset(v, 0, sizeof *v);
    if (!(v->name = strdup(field[0])) || !(v->sig = strdup(field[1])))
        return false;
    if (field[3] && *field[3] && !(v->decl = strdup(field[3])))
        return false;
    return !field[2] || !*field[2] || add_deps(v, field[2]);
}

pb_err cli_room_load(const char *path, cli_room *r, pb_errmsg *why)
{
    memset(r, 0, sizeof *r);
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT
                   ? PB_OK /* a new room */
                   : pb_fail(why, PB_ERR_IO, "cannot read room file %s: %s",
                             path, strerror(errno));
    pb_buf text;
    pb_buf_init(&text);
    pb_err e = pb_buf_read_file(&text, f, path, CLI_MAX_FILE_BYTES, why);
    fclose(f);
    uint32_t cap = 0;
    char *save = NULL;
    for (char *line = e ? NULL : strtok_r((char *)text.data, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save))
        if (!add_line(r, line, &cap)) {
            e = pb_fail(why, PB_ERR_NOMEM, "out of memory reading room file %s",
                        path);
            break;
        }
    pb_buf_free(&text);
    if (e)
        cli_room_free(r);
    return e;
}

static void write_var(FILE *f, const char *name, const char *sig,
                      const char *const *deps, uint32_t n_deps,
                      const char *decl)
{
    fprintf(f, "%s\t%s\t", name, sig);
    for (uint32_t k = 0; k < n_deps; k++)
        fprintf(f, "%s%s", k ? "," : "", deps[k]);
    fprintf(f, "\t%s\n", decl ? decl : "");
}

pb_err cli_room_save(const char *path, const cli_room *r, const cc_result *res,
                     pb_errmsg *why)
{
    char tmp[4200];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
        return pb_fail(why, PB_ERR_IO, "room file name too long: %s", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return pb_fail(why, PB_ERR_IO, "cannot write room file %s: %s", tmp,
                       strerror(errno));
    for (uint32_t i = 0; i < r->n; i++) {
        const cc_var *v = &r->vars[i];
        bool replaced = false;
        for (uint32_t k = 0; k < res->n_defs && !replaced; k++)
            replaced = !strcmp(res->defs[k].name, v->name);
        if (!replaced)
            write_var(f, v->name, v->sig, v->deps, v->n_deps, v->decl);
    }
    for (uint32_t i = 0; i < res->n_defs; i++) {
        const cc_sym *s = &res->defs[i];
        write_var(f, s->name, s->sig, (const char *const *)s->deps, s->n_deps,
                  s->decl);
    }
    bool written = !ferror(f);
    if (fclose(f) != 0 || !written || rename(tmp, path) != 0) {
        int err = errno;
        unlink(tmp);
        return pb_fail(why, PB_ERR_IO, "cannot write room file %s: %s", path,
                       strerror(err));
    }
    return PB_OK;
}
