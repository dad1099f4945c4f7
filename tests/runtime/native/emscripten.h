/* emscripten.h — what the runtime's C takes from Emscripten, for its native
 * build (the fuzz target here): exports are plain functions, and the clock
 * is the monotonic one. */
#ifndef PB_NATIVE_EMSCRIPTEN_H
#define PB_NATIVE_EMSCRIPTEN_H

#include <time.h>

#define EMSCRIPTEN_KEEPALIVE

static inline double emscripten_get_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

#endif
