/* util.c — string and clock helpers for compiler/. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

char *cc_strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *cc_strdup(const char *s)
{
    return s ? cc_strndup(s, strlen(s)) : NULL;
}

uint64_t cc_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void cc_timeout_message(char *msg, size_t cap, uint32_t timeout_ms)
{
    snprintf(msg, cap,
             "compiling took longer than the %u ms limit (a macro that "
             "expands without end, or too much code for one patch?)",
             timeout_ms);
}

