/* loader.c — loads a patch module (already verified) with Emscripten's
 * dynamic linker, from the in-memory file system. Every version gets its
 * own file name: dlopen() of a path it has seen returns the old module. */
#include "runtime.h"

#include <dlfcn.h>
#include <emscripten.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

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

pb_err rt_load_module(const uint8_t *module, uint32_t len, uint64_t seq,
                      pb_errmsg *why)
{
    static uint64_t n_files;
    char path[80];
    if (!n_files)
        mkdir("/patches", 0700);
    snprintf(path, sizeof path, "/patches/%llu-%llu.wasm",
             (unsigned long long)seq, (unsigned long long)++n_files);
    FILE *f = fopen(path, "wb");
    bool is_written = f && fwrite(module, 1, len, f) == len;
    if (f && fclose(f))
        is_written = false;
    if (!is_written) {
        unlink(path);
        return pb_fail(why, PB_ERR_IO, "cannot write %s", path);
    }
    rt_load(path); /* errors are collected by rt_prepare_end */
    unlink(path);  /* the loader has its own copy; the name is never reused */
    return PB_OK;
}
