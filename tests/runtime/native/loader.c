/* loader.c — the native build's stand-in for runtime/loader.c: instead of
 * loading a wasm module it does what a module's constructors do, reading
 * what to do from the module's first custom section (fuzz_session.c makes
 * them): "e" defines pb_expr; "v" with a variant defines ggg, and pb_init
 * too for variant 2; variant 3 fails to load, variant 9 cannot be written.
 * A function is its patch's seq + 1, never called. */
#include "runtime.h"

#include <stdint.h>

pb_err rt_load_module(const uint8_t *module, uint32_t len, uint64_t seq,
                      pb_errmsg *why)
{
    uint8_t name = len > 11 ? module[11] : 0;
    uint8_t variant = len > 12 ? module[12] : 0;
    void *fn = (void *)(uintptr_t)(seq + 1);
    if (variant == 9)
        return pb_fail(why, PB_ERR_IO, "native loader: cannot write seq %llu",
                       (unsigned long long)seq);
    if (name == 'e') {
        pb_rt_define("pb_expr", "v()", fn);
    } else if (variant == 3) {
        rt_prepare_error("native loader: variant %u does not load", variant);
    } else {
        pb_rt_define("ggg", "d(d)", fn);
        if (variant == 2)
            pb_rt_define("pb_init", "v()", fn);
    }
    return PB_OK;
}

/* library.js's: the function table's size, reported in acks. */
uint32_t rt_js_table_size(void);
uint32_t rt_js_table_size(void)
{
    return 0;
}
