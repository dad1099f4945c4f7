/* loader.c — loads a patch module (already verified) with Emscripten's
 * dynamic linker. Every version gets its own file name: dlopen() of a path
 * it has seen returns the old module. */
#include "runtime.h"

#include <dlfcn.h>
#include <emscripten.h>

EMSCRIPTEN_KEEPALIVE
int rt_load(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        rt_prepare_error("loading %s failed: %s", path,
                         e ? e : "dlopen failed");
        return -1;
    }
    return 0;
}
