// engine.h — what the files of the warm engine (libpb_cc_llvm.so) share:
// the engine's state, guarded jobs (job_guard.cpp: crash recovery, the job
// stack, the deadline), the sandbox's file system (sandbox_fs.cpp) and the
// reset of LLVM's process-wide options (cc_llvm.cpp). Private to
// compiler/llvm/; the C interface is cc_llvm.h.
#ifndef CC_LLVM_ENGINE_H
#define CC_LLVM_ENGINE_H

#include "cc_llvm.h"

#include "clang/Frontend/CompilerInvocation.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/VirtualFileSystem.h"

#include <stdarg.h>
#include <stdio.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

struct cc_llvm {
    std::string sysroot;
    std::vector<std::string> read_dirs;    // real paths a job may read beneath
    std::vector<const char *> read_dirs_c; // the same, NULL-terminated
    std::string plugin;
    uint32_t timeout_ms = 0; // 0: none
    llvm::IntrusiveRefCntPtr<llvm::vfs::FileSystem> sandbox;
    // Files that outlive a job: PCHs and the headers they were made from.
    std::map<std::string, std::unique_ptr<llvm::MemoryBuffer>> kept;
    std::string link_dir; // private, under /dev/shm
    bool lld_broken = false;
    std::vector<char> altstack;
    void *job_stack = nullptr; // where jobs run (job_guard.cpp)
    // Invocations by driver command line: the driver's and cc1's answers
    // for a given command line do not change, and asking them cost ~10% of
    // a small job. Each job gets a copy.
    std::map<std::string, std::unique_ptr<clang::CompilerInvocation>>
        invocations;
    // The -mllvm flags whose values are in effect (set since the last
    // reset to defaults); empty and !llvm_args_known after a failure.
    std::set<std::string> llvm_args;
    bool llvm_args_known = false;
};

// Writes a message into err (if any) and returns code: the engine's
// failing paths read `return fail(err, err_len, CC_LLVM_ECRASH, ...)`.
static inline int fail(char *err, size_t err_len, int code, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));
static inline int fail(char *err, size_t err_len, int code, const char *fmt,
                       ...)
{
    if (err && err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return code;
}

// A file in the engine's private directory (under /dev/shm).
static inline std::string shm_path(const cc_llvm *cc, const char *name)
{
    return cc->link_dir + "/" + name;
}

// ---- guarded jobs (job_guard.cpp) ------------------------------------------

// Installs the crash-recovery handlers (once per process; see there).
void init_crash_recovery();

// Runs job, then clean_up, each under a CrashRecoveryContext on the job
// stack. Returns the job's result (a CC_LLVM_* code), or CC_LLVM_ECRASH
// with a message naming who crashed or CC_LLVM_ETIME if the job passed its
// deadline; *clean_up_failed says whether the clean-up crashed (then
// whatever it was freeing is leaked).
int run_guarded(cc_llvm *cc, const char *who, const std::function<int()> &job,
                const std::function<int()> &clean_up, bool *clean_up_failed,
                char *err, size_t err_len);

// Unmaps the current job stack (retired ones stay mapped).
void free_job_stack(cc_llvm *cc);

// The deadline of the jobs that follow (0 ms: none), process-wide like
// LLVM's own state, since one job runs at a time.
void set_deadline(uint32_t timeout_ms);
// Whether the running job is past its deadline (if so, it ends with
// CC_LLVM_ETIME however it ends). The pass plugin asks this.
bool deadline_passed();
// Ends the running job at once if it is past its deadline, unwinding it
// like a crash: safe in the preprocessor, not inside an optimisation pass.
void check_deadline();

// ---- the sandbox (sandbox_fs.cpp) ------------------------------------------

// The real file system in which only paths under the allowed directories
// (real paths) exist.
llvm::IntrusiveRefCntPtr<llvm::vfs::FileSystem>
make_sandbox_fs(std::vector<std::string> allowed);
// A job's view: its files and the kept ones in memory, over cc->sandbox.
llvm::IntrusiveRefCntPtr<llvm::vfs::FileSystem>
job_fs(cc_llvm *cc, const cc_llvm_file *files, size_t n);

// ---- LLVM's options (cc_llvm.cpp) ------------------------------------------

// Puts every cl::opt option that the last parse set back to its default.
void reset_llvm_options();

#endif
