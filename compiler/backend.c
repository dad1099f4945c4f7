/* backend.c — the backends' names, as the command line and the compile
 * server's own command line spell them ("warm", "process"). */
#include "internal.h"

#include <string.h>

static const char *const names[] = {
    [CC_BACKEND_WARM] = "warm",
    [CC_BACKEND_PROCESS] = "process",
};

pb_err cc_backend_parse(const char *name, cc_backend *out, pb_errmsg *why)
{
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i] && name && !strcmp(name, names[i])) {
            *out = (cc_backend)i;
            return PB_OK;
        }
    return pb_fail(why, PB_ERR_FIELD_RANGE,
                   "the backend is warm or process, not \"%s\"",
                   name ? name : "");
}

const char *cc_backend_str(cc_backend b)
{
    return (size_t)b < sizeof names / sizeof names[0] && names[b] ? names[b]
                                                                  : "auto";
}
