// job_guard.cpp — how the warm engine runs a job so that a crash or the
// time limit costs that job only: under an llvm::CrashRecoveryContext
// whose handlers run on an alternate signal stack (so that a stack
// overflow is caught too) and sit above LLVM's own crash handlers; on a
// stack mapping of its own, retired after the job is unwound; and with a
// deadline that the preprocessor (check_deadline) and the pass plugin
// (deadline_passed) look at. A crash, a report_fatal_error, an exit() or
// the deadline inside clang or lld then ends the job with CC_LLVM_ECRASH
// or CC_LLVM_ETIME, and the next job works.
#include "engine.h"

#include "llvm/Support/CrashRecoveryContext.h"
#include "llvm/Support/ErrorHandling.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Signals.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>

static char fatal_reason[512];
static bool fatal_hit;
static bool deadline_hit; // set by deadline_passed

// ---- crash recovery --------------------------------------------------------

// report_fatal_error and out-of-memory inside LLVM: end the job, not the
// process. Outside a job there is nothing to return to.
static void on_fatal(void *, const char *reason, bool)
{
    snprintf(fatal_reason, sizeof fatal_reason, "%s", reason);
    fatal_hit = true;
    if (llvm::CrashRecoveryContext *crc =
            llvm::CrashRecoveryContext::GetCurrent())
        crc->HandleExit(70);
    abort();
}

void init_crash_recovery()
{
    static bool done;
    if (done)
        return;
    done = true;
    llvm::install_fatal_error_handler(on_fatal, nullptr);
    llvm::install_bad_alloc_error_handler(on_fatal, nullptr);
    // LLVM installs its own crash handlers the first time a job creates a
    // temporary file (a PCH, lld's output): they would sit above the
    // crash-recovery handlers, and an abort() would then end the process.
    // Make LLVM install them now, once (it never does it twice), and the
    // crash-recovery handlers above them.
    std::string probe = "/nonexistent/pb-cc-llvm-signal-probe";
    llvm::sys::RemoveFileOnSignal(probe);
    llvm::sys::DontRemoveFileOnSignal(probe);
    llvm::CrashRecoveryContext::Enable();
    // A stack overflow can only be handled on another stack: make the
    // crash-recovery handlers use the alternate stack each job installs.
    for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP}) {
        struct sigaction sa;
        if (sigaction(sig, nullptr, &sa) == 0) {
            sa.sa_flags |= SA_ONSTACK;
            sigaction(sig, &sa, nullptr);
        }
    }
}

// ---- the job stack ---------------------------------------------------------

// Installs cc's alternate signal stack on this thread for one job unless the
// thread has one already (ASan installs its own), and restores it after.
class AltStack
{
  public:
    explicit AltStack(cc_llvm *cc)
    {
        stack_t cur;
        if (sigaltstack(nullptr, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
            return;
        stack_t ss = {};
        ss.ss_sp = cc->altstack.data();
        ss.ss_size = cc->altstack.size();
        installed = sigaltstack(&ss, &old) == 0;
    }
    ~AltStack()
    {
        if (installed) {
            stack_t off = {};
            off.ss_flags = SS_DISABLE;
            sigaltstack(&off, nullptr);
        }
    }

  private:
    stack_t old = {};
    bool installed = false;
};

// Runs fn under a CrashRecoveryContext on this thread; a crash, a fatal
// error or an exit() inside fn returns -2 with a message naming what (who:
// "clang", "wasm-ld") and sets *unwound.
static int run_guarded_here(cc_llvm *cc, const char *who,
                            const std::function<int()> &fn, char *err,
                            size_t err_len, bool *unwound)
{
    AltStack alt(cc);
    fatal_hit = deadline_hit = false;
    int rc = CC_LLVM_ECRASH, code = 0;
    {
        llvm::CrashRecoveryContext crc;
        *unwound = !crc.RunSafely([&] { rc = fn(); });
        if (*unwound)
            code = crc.RetCode;
    } // the context's destructor runs the cleanups clang registered
    // past the deadline: unwound in the preprocessor, or returned early
    // when the pass plugin cut the optimiser short
    if (deadline_hit)
        return fail(err, err_len, CC_LLVM_ETIME,
                    "%s took longer than the %u ms limit", who, cc->timeout_ms);
    if (!*unwound)
        return rc;
    if (fatal_hit)
        return fail(err, err_len, CC_LLVM_ECRASH, "%s: fatal error: %s", who,
                    fatal_reason);
    if (code > 128)
        return fail(err, err_len, CC_LLVM_ECRASH, "%s crashed (%s)", who,
                    strsignal(code - 128));
    return fail(err, err_len, CC_LLVM_ECRASH, "%s exited with status %d", who,
                code);
}

// Every guarded call runs on the job stack, a mapping of its own that this
// thread switches to (swapcontext) for the call. A job that is unwound (a
// crash, the time limit) leaves objects on its dead frames that LLVM still
// knows about: the Timer that clang's EmitAssemblyHelper puts in LLVM's
// global timer list, value handles that analyses keep on the job's module.
// Writing into those frames later (by reusing the stack) would corrupt
// whatever lives there then, so after an unwind the stack is retired: left
// mapped and never used again. The next call (the job's clean-up, first)
// gets a new stack. (A thread per stack would do the same, but waking it
// costs more than a small job on a busy machine.)
static constexpr size_t kJobStackBytes = 8u << 20; // as clang's cc1 thread
static constexpr size_t kGuardBytes = 64u << 10;   // at its bottom, no access

// AddressSanitizer, when the process has it, must be told about the
// switches (this library is not instrumented, its callers may be).
extern "C" {
void __sanitizer_start_switch_fiber(void **fake_stack_save, const void *bottom,
                                    size_t size) __attribute__((weak));
void __sanitizer_finish_switch_fiber(void *fake_stack_save,
                                     const void **bottom_old, size_t *size_old)
    __attribute__((weak));
}

struct StackCall {
    const std::function<bool()> *task; // returns whether it was unwound
    bool unwound;
    ucontext_t caller, callee;
    const void *caller_bottom;
    size_t caller_size;
};
static StackCall *stack_call; // the running one (one at a time)

static void stack_call_main()
{
    StackCall *c = stack_call;
    if (__sanitizer_finish_switch_fiber)
        __sanitizer_finish_switch_fiber(nullptr, &c->caller_bottom,
                                        &c->caller_size);
    c->unwound = (*c->task)();
    if (__sanitizer_start_switch_fiber)
        __sanitizer_start_switch_fiber(nullptr, c->caller_bottom,
                                       c->caller_size);
    // returning continues at c->caller (uc_link)
}

// Runs task on the job stack, and retires the stack if task says it was
// unwound. false if no stack can be mapped (message in err).
static bool on_job_stack(cc_llvm *cc, const std::function<bool()> &task,
                         char *err, size_t err_len)
{
    if (!cc->job_stack) {
        void *p = mmap(nullptr, kJobStackBytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                       -1, 0);
        if (p == MAP_FAILED) {
            fail(err, err_len, CC_LLVM_ECRASH, "cannot map a job stack: %s",
                 strerror(errno));
            return false;
        }
        mprotect(p, kGuardBytes, PROT_NONE); // a stack overflow faults here
        cc->job_stack = p;
    }
    StackCall c = {};
    c.task = &task;
    getcontext(&c.callee);
    c.callee.uc_stack.ss_sp = (char *)cc->job_stack + kGuardBytes;
    c.callee.uc_stack.ss_size = kJobStackBytes - kGuardBytes;
    c.callee.uc_link = &c.caller;
    makecontext(&c.callee, stack_call_main, 0);
    StackCall *outer = stack_call;
    stack_call = &c;
    void *fake_stack = nullptr;
    if (__sanitizer_start_switch_fiber)
        __sanitizer_start_switch_fiber(&fake_stack, c.callee.uc_stack.ss_sp,
                                       c.callee.uc_stack.ss_size);
    swapcontext(&c.caller, &c.callee);
    if (__sanitizer_finish_switch_fiber)
        __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
    stack_call = outer;
    if (c.unwound)
        cc->job_stack = nullptr; // retired, left mapped (see above)
    return true;
}

// Runs job, then clean_up, each guarded (run_guarded_here) on the job
// stack: both in one turn when the job returns, the clean-up on a new stack
// after the job was unwound.
int run_guarded(cc_llvm *cc, const char *who, const std::function<int()> &job,
                const std::function<int()> &clean_up, bool *clean_up_failed,
                char *err, size_t err_len)
{
    int rc = CC_LLVM_ECRASH, clean_rc = CC_LLVM_ECRASH;
    bool cleaned = false;
    char ignored[64];
    auto do_clean_up = [&] {
        bool unwound = true;
        clean_rc = run_guarded_here(cc, who, clean_up, ignored, sizeof ignored,
                                    &unwound);
        cleaned = true;
        return unwound;
    };
    bool ran = on_job_stack(
        cc,
        [&] {
            bool unwound = true;
            rc = run_guarded_here(cc, who, job, err, err_len, &unwound);
            return unwound || do_clean_up();
        },
        err, err_len);
    if (ran && !cleaned)
        on_job_stack(cc, do_clean_up, ignored, sizeof ignored);
    *clean_up_failed = clean_rc != CC_LLVM_OK;
    return rc;
}

void free_job_stack(cc_llvm *cc)
{
    if (cc->job_stack) // retired stacks stay mapped
        munmap(cc->job_stack, kJobStackBytes);
    cc->job_stack = nullptr;
}

// ---- the deadline ----------------------------------------------------------

// A job that expands macros without end (2^40 tokens from 40 #defines) would
// keep clang busy forever, and 170 KB of small loops keep the optimiser busy
// for minutes. The preprocessor looks at the clock every 256 macro
// expansions and, past the deadline, ends the job through the crash-recovery
// context, which unwinds it like a crash. The optimiser cannot be unwound
// safely (its analyses hold handles on the module's values from frames that
// would be gone), so the pass plugin asks before every pass and, past the
// deadline, skips the rest and empties the module; the job then ends
// normally and is reported as over time. Parsing is bounded by the source
// size and clang's own limits (nesting depth, error count); code generation
// and linking, which have no such hook, by the server's watchdog
// (server.c).
static uint64_t now_us()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

// The deadline of the running job (0: none).
static uint64_t job_deadline_us;

void set_deadline(uint32_t timeout_ms)
{
    job_deadline_us = timeout_ms ? now_us() + (uint64_t)timeout_ms * 1000u : 0;
}

bool deadline_passed()
{
    if (!job_deadline_us || now_us() < job_deadline_us)
        return false;
    deadline_hit = true;
    return true;
}

void check_deadline()
{
    if (!deadline_passed())
        return;
    if (llvm::CrashRecoveryContext *crc =
            llvm::CrashRecoveryContext::GetCurrent())
        crc->HandleExit(75);
}
