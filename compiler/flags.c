/* flags.c — the flags patchbay adds to the base flags of every compile
 * (cc_llvm_base_compile_args in llvm/cc_llvm_args.c: what
 * `emcc -O2 -sSIDE_MODULE=1` passes to clang-14, plus the sandbox's
 * -fno-gnu-inline-asm). Both backends pass base + these + the job's
 * include flags, so they produce the same module; the link flags are
 * cc_llvm_base_link_args() alone. */
#include "internal.h"

const char *const cc_compile_flags[] = {
    "-fno-common",
    /* diagnostics: no implicit declarations, the rest as warnings */
    "-Wall",
    "-Wno-unused-function",
    "-Werror=implicit-function-declaration",
    "-Werror=implicit-int",
    "-Werror=return-type",
    "-Werror=int-conversion",
    "-Werror=incompatible-pointer-types",
    "-ferror-limit=20",
    "-fno-caret-diagnostics",
    "-fno-color-diagnostics",
    /* a crashing clang-14 must not write reproducers to /tmp */
    "-fno-crash-diagnostics",
    NULL,
};
