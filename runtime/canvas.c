/* canvas.c — the drawing API of patchbay.h on a software RGBA framebuffer.
 * Every function clips to the canvas, so no patch can write outside it. */
#include "runtime.h"

#include <emscripten.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pb_clear(pb_canvas *c, uint32_t rgba)
{
    if (!c || !c->pixels)
        return;
    size_t n = (size_t)c->width * (size_t)c->height;
    for (size_t i = 0; i < n; i++)
        c->pixels[i] = rgba;
}

void pb_pixel(pb_canvas *c, int x, int y, uint32_t rgba)
{
    if (c && c->pixels && x >= 0 && y >= 0 && x < c->width && y < c->height)
        c->pixels[(size_t)y * (size_t)c->width + (size_t)x] = rgba;
}

void pb_rect(pb_canvas *c, int x, int y, int w, int h, uint32_t rgba)
{
    if (!c || !c->pixels)
        return;
    int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    int x1 = x + w > c->width ? c->width : x + w;
    int y1 = y + h > c->height ? c->height : y + h;
    for (int yy = y0; yy < y1; yy++)
        for (int xx = x0; xx < x1; xx++)
            c->pixels[(size_t)yy * (size_t)c->width + (size_t)xx] = rgba;
}

void pb_circle(pb_canvas *c, int cx, int cy, int r, uint32_t rgba)
{
    if (r < 0)
        return;
    for (int y = -r; y <= r; y++)
        for (int x = -r; x <= r; x++)
            if (x * x + y * y <= r * r)
                pb_pixel(c, cx + x, cy + y, rgba);
}

void pb_line(pb_canvas *c, int x0, int y0, int x1, int y1, uint32_t rgba)
{
    int dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    int dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (int steps = 0; steps < 1 << 16; steps++) {
        pb_pixel(c, x0, y0, rgba);
        if (x0 == x1 && y0 == y1)
            break;
        int e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y0 += sy;
        }
    }
}

static double room_time, room_beat;

double pb_time(void)
{
    return room_time;
}

double pb_beat(void)
{
    return room_beat;
}

EMSCRIPTEN_KEEPALIVE
void rt_set_time(double t, double beat)
{
    room_time = t;
    room_beat = beat;
}

static pb_canvas *screen;

pb_canvas *pb_screen(void)
{
    return screen;
}

EMSCRIPTEN_KEEPALIVE
void rt_set_screen(pb_canvas *c)
{
    screen = c;
}

/* The first failed check of the running test; rt_check_take hands it to
 * the host and starts afresh. */
static struct check {
    bool has_failed;
    char expr[256];
    char file[128];
    int line;
} check, taken;

void pb_check_fail(const char *file, int line, const char *expr)
{
    if (check.has_failed)
        return;
    check.has_failed = true;
    snprintf(check.expr, sizeof check.expr, "%s", expr ? expr : "");
    snprintf(check.file, sizeof check.file, "%s", file ? file : "");
    check.line = line;
}

void pb_check_failed(const char *expr, int line)
{
    pb_check_fail(NULL, line, expr);
}

EMSCRIPTEN_KEEPALIVE
const char *rt_check_take(void)
{
    taken = check;
    memset(&check, 0, sizeof check);
    return taken.has_failed ? taken.expr : "";
}

EMSCRIPTEN_KEEPALIVE
const char *rt_check_file(void)
{
    return taken.file;
}

EMSCRIPTEN_KEEPALIVE
int rt_check_line(void)
{
    return taken.line;
}
