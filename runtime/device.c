/* device.c — what a runtime tells the room about the device it runs on,
 * and the pictures it draws on request (docs/PROTOCOL.md § Device
 * testing). The host measures the device (screen, pixel ratio, memory,
 * wasm features: things only JS can see) and draws the picture; the frames
 * are built here, like every frame the runtime sends, so they are exactly
 * what the relay checks. */
#include "internal.h"

#include <emscripten.h>
#include <stdio.h>
#include <string.h>

static struct {
    pb_device d; /* its strings point at the arrays below */
    char id[PB_MAX_NAME_BYTES + 1];
    char label[PB_MAX_NAME_BYTES + 1];
    char platform[PB_MAX_CLIENT_BYTES + 1];
    char features[PB_MAX_CLIENT_BYTES + 1];
} dev;

static uint32_t side(uint32_t v)
{
    return v <= PB_MAX_CANVAS_SIDE ? v : 0;
}

/* Strings longer than the protocol allows are cut (on a UTF-8 boundary),
 * numbers out of range are left out: a description is informative, never
 * a reason not to join. */
static pb_str cut(char *dst, size_t cap, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n >= cap) {
        n = cap - 1;
        while (n && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    if (n)
        memcpy(dst, s, n);
    dst[n] = '\0';
    return pb_cstr(dst);
}

EMSCRIPTEN_KEEPALIVE
int rt_session_set_device(const char *id, const char *label,
                          const char *platform, const char *features,
                          uint32_t canvas_w, uint32_t canvas_h,
                          uint32_t screen_w, uint32_t screen_h, double dpr,
                          double ram_bytes, uint32_t cores)
{
    memset(&dev, 0, sizeof dev);
    cut(dev.id, sizeof dev.id, id);
    dev.d.label = cut(dev.label, sizeof dev.label, label);
    dev.d.platform = cut(dev.platform, sizeof dev.platform, platform);
    dev.d.features = cut(dev.features, sizeof dev.features, features);
    dev.d.canvas_w = side(canvas_w);
    dev.d.canvas_h = side(canvas_h);
    dev.d.screen_w = side(screen_w);
    dev.d.screen_h = side(screen_h);
    dev.d.dpr = dpr > 0 && dpr < 64 ? dpr : 0;
    dev.d.ram_bytes =
        ram_bytes > 0 && ram_bytes < 1e18 ? (uint64_t)ram_bytes : 0;
    dev.d.cores = cores;
    return PB_OK;
}

void rt_device_fill(pb_hello *h)
{
    h->device_id = pb_cstr(dev.id);
    h->device = dev.d;
}

EMSCRIPTEN_KEEPALIVE
int rt_session_snapshot(double req, double editor_id, double seq, double at_us,
                        uint32_t width, uint32_t height, const uint8_t *png,
                        uint32_t png_len, const char *error)
{
    pb_frame f = {.type = PB_T_SNAPSHOT};
    f.snapshot.req = (uint64_t)req;
    f.snapshot.editor_id = (uint64_t)editor_id;
    f.snapshot.seq = (uint64_t)seq;
    f.snapshot.at_us = (uint64_t)at_us;
    char big[160], msg[PB_MAX_MESSAGE_BYTES / 2];
    if (png && png_len > PB_MAX_PNG_BYTES) {
        snprintf(big, sizeof big,
                 "the %ux%u picture is %u bytes as PNG, more than the %u a "
                 "snapshot may carry",
                 width, height, png_len, PB_MAX_PNG_BYTES);
        png = NULL;
        error = big;
    }
    if (png) {
        f.snapshot.width = width;
        f.snapshot.height = height;
        f.snapshot.png = (pb_bytes){png, png_len};
    } else {
        f.snapshot.error = cut(msg, sizeof msg, error ? error : "no picture");
    }
    return rt_out_frame(&f) ? PB_OK : PB_ERR_INTERNAL;
}
