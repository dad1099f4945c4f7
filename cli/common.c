/* common.c — what several commands share: this program's own path (the
 * compile server and the node runtime are found from it). */
#include "cli.h"

#include <limits.h>
#include <stdio.h>
#include <unistd.h>

bool cli_self_exe(char *out, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return false;
    exe[n] = '\0';
    return (size_t)snprintf(out, cap, "%s", exe) < cap;
}
