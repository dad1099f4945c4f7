/* cc_llvm_args.c — the one list of the flags every patch is compiled and
 * linked with (cc_llvm.h), kept apart from the C++ engine so that the
 * process backend uses the same lists without linking LLVM; compile.c adds
 * only the job's -I and -include. The compile flags are what
 * `emcc -v -O2 -sSIDE_MODULE=1` passes to clang-14 with Emscripten 3.1.6
 * (minus the C++-only -D_LIBCPP_ABI_VERSION, -fno-threadsafe-statics and
 * the SDL include), plus the sandbox's -fno-gnu-inline-asm and patchbay's
 * diagnostics; the link flags are what it passes to wasm-ld-14, plus
 * --threads=1 and with only __wasm_call_ctors exported. */
#include "cc_llvm.h"

static const char *const compile_args[] = {
    "--target=wasm32-unknown-emscripten",
    "--sysroot=" CC_LLVM_DEFAULT_SYSROOT,
    "-fPIC",
    "-O2",
    "-DEMSCRIPTEN",
    "-D__EMSCRIPTEN_major__=3",
    "-D__EMSCRIPTEN_minor__=1",
    "-D__EMSCRIPTEN_tiny__=6",
    "-fignore-exceptions",
    "-fvisibility=default",
    "-Dunix",
    "-D__unix",
    "-D__unix__",
    "-Werror=implicit-function-declaration",
    "-Xclang",
    "-iwithsysroot/include/compat",
    "-mllvm",
    "-combiner-global-alias-analysis=false",
    "-mllvm",
    "-enable-emscripten-sjlj",
    "-mllvm",
    "-disable-lsr",
    /* The assembler's .incbin and .include read any file, outside clang's
     * virtual file system: no inline assembly at all (asm labels still
     * work). */
    "-fno-gnu-inline-asm",
    /* patchbay's own: no common symbols (a var is one definition) */
    "-fno-common",
    /* diagnostics: no implicit declarations, the rest as warnings */
    "-Wall",
    "-Wno-unused-function",
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

static const char *const link_args[] = {
    "-shared",
    "--experimental-pic",
    "--import-undefined",
    "--import-memory",
    "--export-dynamic",
    "--no-gc-sections",
    "--strip-debug",
    /* lld's thread pool is process-wide state; one thread keeps it out of
     * the picture (and a small link gains nothing from threads). */
    "--threads=1",
    "-L" CC_LLVM_DEFAULT_SYSROOT "/lib/wasm32-emscripten/pic",
    "-mllvm",
    "-combiner-global-alias-analysis=false",
    "-mllvm",
    "-enable-emscripten-sjlj",
    "-mllvm",
    "-disable-lsr",
    /* emcc also exports main, malloc, free, stackSave and a few more if
     * defined; a patch exports no user names (docs/PATCH_ABI.md: the first
     * definition of a name would win in the dynamic linker), only its
     * constructors. */
    "--export-if-defined=__wasm_call_ctors",
    NULL,
};

const char *const *cc_llvm_base_compile_args(void)
{
    return compile_args;
}

const char *const *cc_llvm_base_link_args(void)
{
    return link_args;
}
