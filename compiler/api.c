/* api.c — protocol/abi/api.list, the symbols a patch may import. The
 * runtime exports exactly these; a module importing anything else would
 * load and fail only when the call runs, so the compiler refuses it. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct api_entry {
    char *name;
    bool is_data;
} api_entry;

struct cc_api {
    api_entry *e;
    size_t n;
};

cc_api *cc_api_load(const char *path, pb_errmsg *why)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        pb_fail(why, PB_ERR_IO, "cannot read the API list %s: %s", path,
                strerror(errno));
        return NULL;
    }
    cc_api *a = calloc(1, sizeof *a);
    char line[256];
    while (a && fgets(line, sizeof line, f)) {
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\n' || *p == '\0')
            continue;
        bool data = !strncmp(p, "data ", 5);
        if (data)
            p += 5;
        p[strcspn(p, " \t\r\n")] = '\0';
        api_entry *e = realloc(a->e, (a->n + 1) * sizeof *e);
        if (!e || !(e[a->n].name = cc_strdup(p))) {
            free(e ? e : a->e);
            free(a);
            a = NULL;
            break;
        }
        e[a->n].is_data = data;
        a->e = e;
        a->n++;
    }
    fclose(f);
    if (!a)
        pb_fail(why, PB_ERR_NOMEM, "out of memory reading %s", path);
    return a;
}

static const api_entry *find(const cc_api *a, const char *name, size_t len)
{
    for (size_t i = 0; i < a->n; i++)
        if (strlen(a->e[i].name) == len && !memcmp(a->e[i].name, name, len))
            return &a->e[i];
    return NULL;
}

bool cc_api_has_func(const cc_api *a, const char *name, size_t len)
{
    const api_entry *e = find(a, name, len);
    return e && !e->is_data;
}

bool cc_api_has_data(const cc_api *a, const char *name, size_t len)
{
    const api_entry *e = find(a, name, len);
    return e && e->is_data;
}

void cc_api_free(cc_api *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++)
        free(a->e[i].name);
    free(a->e);
    free(a);
}
