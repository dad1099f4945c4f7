/* The demo room's first patch. Evaluate changes to it with
 *   patchbay eval examples/demo.c      (or: patchbay watch examples/demo.c)
 * and every runtime in the room swaps them in at the same moment. */
#include <patchbay.h>

/* A var: redefine it (say, 59) and everything that calls it follows. */
double ggg(double v) { return v + 58; }

/* Draws one frame at room time t (seconds). */
void pb_frame(double t, pb_canvas *c)
{
    pb_clear(c, pb_rgb(16, 16, 24));
    int r = (int)(ggg(0) + 20 * sin(t * 2));
    pb_circle(c, c->width / 2, c->height / 2, r, pb_rgb(240, 180, 40));
}
