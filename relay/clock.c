/* clock.c — the relay's two clocks. The wall clock is the room clock:
 * statements' created and apply times, welcome's now_us and pong's t1/t2
 * are on it, and runtimes sync to it (docs/ARCHITECTURE.md § The room
 * clock and scheduled commits). The monotonic clock is for what must not jump
 * when the wall clock is set: deadlines, rate-limit buckets, the shutdown
 * grace. */
#include "internal.h"

#include <time.h>

static uint64_t clock_us(clockid_t which)
{
    struct timespec ts;
    clock_gettime(which, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t relay_now_us(void)
{
    return clock_us(CLOCK_REALTIME);
}

uint64_t relay_mono_us(void)
{
    return clock_us(CLOCK_MONOTONIC);
}
