/* backend_warm.c — the warm backend: clang and lld kept loaded in this
 * process (compiler/llvm/cc_llvm.cpp), behind the same interface as the
 * process backend. */
#include "internal.h"

cc_be *cc_be_warm_new(const cc_be_desc *d, pb_errmsg *why)
{
    (void)d;
    cc_fail(why, PB_ERR_INTERNAL,
            "the warm backend is not built into this binary; use the process "
            "backend (--backend process)");
    return NULL;
}
