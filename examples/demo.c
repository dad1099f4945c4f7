/* The demo room's first patch. Change a number and evaluate it again —
 * Ctrl-Enter in the editor page, or from a shell:
 *   patchbay eval examples/demo.c      (or: patchbay watch examples/demo.c)
 * — and every screen in the room swaps the new code in at the same moment. */
#include <patchbay.h>

/* A var: redefine it (say, 59) and everything that calls it follows,
 * without re-sending pb_frame. */
double ggg(double v) { return v + 58; }

/* State: kept when the code around it is redefined. pb_init runs each time
 * a patch that defines it commits, so every evaluation of this file adds a
 * dot at the top of every screen. */
PB_STATE(int, evaluations, 0);

void pb_init(void)
{
    evaluations++;
    printf("evaluation %d\n", evaluations);
}

/* Draws one frame at room time t (seconds): the same t on every screen. */
void pb_frame(double t, pb_canvas *c)
{
    int w = c->width, h = c->height;
    pb_clear(c, pb_rgb(16, 16, 24));
    for (int i = 0; i < 12; i++) {
        double a = t * 0.8 + i * (6.2831853 / 12);
        int x = w / 2 + (int)(cos(a) * w * 0.3);
        int y = h / 2 + (int)(sin(a * 2) * h * 0.25);
        pb_circle(c, x, y, 4 + i / 2, pb_rgb(60 + 15 * i, 90, 200 - 10 * i));
    }
    int r = (int)(ggg(0) / 2 + 8 * sin(t * 2));
    pb_circle(c, w / 2, h / 2, r, pb_rgb(240, 180, 40));
    for (int i = 0; i < evaluations && i < 40; i++)
        pb_rect(c, 8 + i * 10, 8, 6, 6, pb_rgb(120, 220, 140));
}
