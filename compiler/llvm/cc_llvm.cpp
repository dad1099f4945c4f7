// cc_llvm.cpp — clang and wasm-ld of LLVM 14 used as libraries, behind the C
// interface of cc_llvm.h. A job costs a few milliseconds here against ~50 ms
// for clang-14 and wasm-ld-14 as processes (DESIGN.md, verified facts), but
// the libraries were written for one job per process, so this file undoes
// what a job leaves behind:
//  - cl::opt options are global: before a job's -mllvm flags are parsed,
//    the options the last parse set go back to their defaults (unless the
//    flags are the ones in effect already), and lld parses the link's;
//  - lld 14 keeps per-link state in globals (see reset_lld_globals) and in a
//    CommonLinkerContext that must be destroyed after each link;
//  - clang's driver asks for -disable-free (leak the AST at exit, for speed):
//    turned off, so that memory stays flat;
//  - a crash, a report_fatal_error or an exit() inside clang or lld unwinds
//    to a CrashRecoveryContext (its handlers run on an alternate signal
//    stack, so that a stack overflow is caught too, and sit above LLVM's
//    own crash handlers: init_once) and the job returns CC_LLVM_ECRASH;
//  - a job past its time limit is ended the same way at the next macro
//    expansion (DeadlineCallbacks); in the optimiser, the pass plugin skips
//    the remaining passes instead (pb_pass_set_deadline_check).
// The sandbox is a virtual file system: the job's in-memory files over a
// filter of the real file system that hides every path outside the allowed
// directories (SandboxFS). Per command line, the compiler invocation is
// built once and copied per job.
#include "cc_llvm.h"

#include "clang/Basic/Diagnostic.h"
#include "clang/Basic/DiagnosticIDs.h"
#include "clang/Basic/DiagnosticOptions.h"
#include "clang/CodeGen/CodeGenAction.h"
#include "clang/Driver/Compilation.h"
#include "clang/Driver/Driver.h"
#include "clang/Driver/DriverDiagnostic.h"
#include "clang/Driver/Job.h"
#include "clang/Driver/Tool.h"
#include "clang/Frontend/CompilerInstance.h"
#include "clang/Frontend/CompilerInvocation.h"
#include "clang/Frontend/FrontendActions.h"
#include "clang/Frontend/FrontendDiagnostic.h"
#include "clang/Lex/Preprocessor.h"
#include "clang/Serialization/ASTWriter.h"
#include "clang/Serialization/PCHContainerOperations.h"
#include "lld/Common/CommonLinkerContext.h"
#include "lld/Common/Driver.h"
#include "llvm/Passes/PassPlugin.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/CrashRecoveryContext.h"
#include "llvm/Support/DynamicLibrary.h"
#include "llvm/Support/ErrorHandling.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Signals.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/VirtualFileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <map>
#include <set>
#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#ifndef CC_LLVM_CLANG
#define CC_LLVM_CLANG "/usr/lib/llvm-14/bin/clang"
#endif

using llvm::IntrusiveRefCntPtr;
using llvm::StringRef;

struct cc_llvm {
    std::string sysroot;
    std::vector<std::string> allowed; // real paths
    std::string plugin;
    uint32_t timeout_ms = 0; // 0: none
    IntrusiveRefCntPtr<llvm::vfs::FileSystem> sandbox;
    // Files that outlive a job: PCHs and the headers they were made from.
    std::map<std::string, std::unique_ptr<llvm::MemoryBuffer>> kept;
    std::string link_dir; // private, under /dev/shm
    bool lld_broken = false;
    std::vector<char> altstack;
    void *job_stack = nullptr; // where jobs run (on_job_stack)
    // Invocations by driver command line: the driver's and cc1's answers
    // for a given command line do not change, and asking them cost ~10% of
    // a small job. Each job gets a copy.
    std::map<std::string, std::unique_ptr<clang::CompilerInvocation>>
        invocations;
    // The -mllvm flags whose values are in effect (set since the last
    // reset to defaults); empty and !llvm_args_known after a failure.
    std::set<std::string> llvm_args;
    bool llvm_args_known = false;
    // The sandbox's answers by path (the allowed directories are trusted
    // not to change while the process runs; bounded).
    std::map<std::string, bool> allowed_cache;
};

static int fail(char *err, size_t err_len, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t err_len, int code, const char *fmt, ...)
{
    if (err && err_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return code;
}

// ---- process-wide set-up ---------------------------------------------------

static char fatal_reason[512];
static bool fatal_hit;
static bool deadline_hit; // set by the time limit (DeadlineCallbacks)

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

static void init_once()
{
    static bool done;
    if (done)
        return;
    done = true;
    LLVMInitializeWebAssemblyTargetInfo();
    LLVMInitializeWebAssemblyTarget();
    LLVMInitializeWebAssemblyTargetMC();
    LLVMInitializeWebAssemblyAsmPrinter();
    LLVMInitializeWebAssemblyAsmParser();
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
template <typename Fn>
static int run_guarded_here(cc_llvm *cc, const char *who, Fn &fn, char *err,
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
// after the job was unwound. Returns the job's result;
// *clean_up_failed says whether the clean-up crashed (then whatever it was
// freeing is leaked).
template <typename Job, typename CleanUp>
static int run_guarded(cc_llvm *cc, const char *who, Job &&job,
                       CleanUp &&clean_up, bool *clean_up_failed, char *err,
                       size_t err_len)
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

// ---- the sandbox -----------------------------------------------------------

// The real file system as seen by a job: a path exists only if its real path
// (absolute, symlinks and ".." resolved by the kernel) is under an allowed
// directory. Everything else is "no such file", so a job learns nothing about
// files outside. Paths are checked, then opened by the same name; the
// allowed directories are trusted not to change while the process runs
// (answers are remembered).
class SandboxFS : public llvm::vfs::ProxyFileSystem
{
  public:
    SandboxFS(IntrusiveRefCntPtr<llvm::vfs::FileSystem> real,
              std::vector<std::string> allowed)
        : ProxyFileSystem(std::move(real)), allowed(std::move(allowed))
    {
    }

    llvm::ErrorOr<llvm::vfs::Status> status(const llvm::Twine &p) override
    {
        if (!is_allowed(p))
            return std::make_error_code(std::errc::no_such_file_or_directory);
        return ProxyFileSystem::status(p);
    }
    llvm::ErrorOr<std::unique_ptr<llvm::vfs::File>>
    openFileForRead(const llvm::Twine &p) override
    {
        if (!is_allowed(p))
            return std::make_error_code(std::errc::no_such_file_or_directory);
        return ProxyFileSystem::openFileForRead(p);
    }
    llvm::vfs::directory_iterator dir_begin(const llvm::Twine &p,
                                            std::error_code &ec) override
    {
        if (!is_allowed(p)) {
            ec = std::make_error_code(std::errc::no_such_file_or_directory);
            return {};
        }
        return ProxyFileSystem::dir_begin(p, ec);
    }
    std::error_code getRealPath(const llvm::Twine &p,
                                llvm::SmallVectorImpl<char> &out) const override
    {
        if (!is_allowed(p))
            return std::make_error_code(std::errc::no_such_file_or_directory);
        return ProxyFileSystem::getRealPath(p, out);
    }
    std::error_code setCurrentWorkingDirectory(const llvm::Twine &) override
    {
        return std::make_error_code(std::errc::operation_not_permitted);
    }

  private:
    std::vector<std::string> allowed;
    // Answers by path: a job looks up the same headers as the last one.
    // Bounded, since a job chooses the paths it asks about.
    mutable std::map<std::string, bool> remembered;
    static constexpr size_t kMaxRemembered = 4096;

    bool is_allowed(const llvm::Twine &p) const
    {
        llvm::SmallString<256> path;
        p.toVector(path);
        llvm::sys::fs::make_absolute("/", path); // the job's cwd is "/"
        std::string key(path.str());
        auto hit = remembered.find(key);
        if (hit != remembered.end())
            return hit->second;
        bool ok = false;
        char real[PATH_MAX];
        if (realpath(path.c_str(), real))
            for (const std::string &dir : allowed) {
                size_t n = dir.size();
                ok |= !strncmp(real, dir.c_str(), n) &&
                      (real[n] == '/' || real[n] == '\0');
            }
        if (remembered.size() >= kMaxRemembered)
            remembered.clear();
        remembered[key] = ok;
        return ok;
    }
};

// The job's view: its own files and the kept ones in memory, over the
// sandbox. A job's file shadows a kept file of the same path.
static IntrusiveRefCntPtr<llvm::vfs::FileSystem>
job_fs(cc_llvm *cc, const cc_llvm_file *files, size_t n)
{
    auto mem = llvm::makeIntrusiveRefCnt<llvm::vfs::InMemoryFileSystem>();
    mem->setCurrentWorkingDirectory("/");
    // Copied: clang's lexer needs a NUL after the last byte.
    for (size_t i = 0; i < n; i++)
        mem->addFile(
            files[i].path, 0,
            llvm::MemoryBuffer::getMemBufferCopy(
                StringRef(files[i].data, files[i].len), files[i].path));
    for (auto &kv : cc->kept)
        mem->addFileNoOwn(kv.first, 0, kv.second->getMemBufferRef());
    auto fs =
        llvm::makeIntrusiveRefCnt<llvm::vfs::OverlayFileSystem>(cc->sandbox);
    fs->pushOverlay(mem);
    return fs;
}

// ---- diagnostics -----------------------------------------------------------

// Hands every clang diagnostic to the caller's callback, formatted as clang
// prints it (message and [-Wflag]), with the presumed location.
class DiagSink : public clang::DiagnosticConsumer
{
  public:
    DiagSink(cc_llvm_diag_fn fn, void *ctx) : fn(fn), ctx(ctx)
    {
    }

    void HandleDiagnostic(clang::DiagnosticsEngine::Level level,
                          const clang::Diagnostic &info) override
    {
        using L = clang::DiagnosticsEngine;
        DiagnosticConsumer::HandleDiagnostic(level, info); // counts
        if (!fn || level == L::Ignored)
            return;
        llvm::SmallString<256> msg;
        info.FormatDiagnostic(msg);
        unsigned id = info.getID();
        bool as_error = level == L::Error &&
                        clang::DiagnosticIDs::isBuiltinWarningOrExtension(id) &&
                        !clang::DiagnosticIDs::isDefaultMappingAsError(id);
        StringRef opt = clang::DiagnosticIDs::getWarningOptionForDiag(id);
        if (as_error || !opt.empty()) {
            msg += " [";
            if (as_error)
                msg += opt.empty() ? "-Werror" : "-Werror,";
            if (!opt.empty())
                msg += (level == L::Remark ? "-R" : "-W") + opt.str();
            msg += "]";
        }
        cc_llvm_diag d = {};
        std::string file;
        if (info.getLocation().isValid() && info.hasSourceManager()) {
            clang::PresumedLoc pl =
                info.getSourceManager().getPresumedLoc(info.getLocation());
            if (pl.isValid()) {
                file = pl.getFilename();
                d.line = pl.getLine();
                d.col = pl.getColumn();
            }
        }
        d.severity = level == L::Fatal     ? CC_LLVM_FATAL
                     : level == L::Error   ? CC_LLVM_ERROR
                     : level == L::Warning ? CC_LLVM_WARNING
                                           : CC_LLVM_NOTE;
        d.file = file.c_str();
        d.message = msg.c_str();
        fn(ctx, &d);
    }

  private:
    cc_llvm_diag_fn fn;
    void *ctx;
};

// ---- compiling -------------------------------------------------------------

// Runs the clang driver on base flags + args + mode + input to get the one
// cc1 job, as `clang -###` would print it, and turns it into an invocation
// set up for this process.
static std::unique_ptr<clang::CompilerInvocation>
make_invocation(cc_llvm *cc, const char *const *args,
                std::initializer_list<const char *> mode, const char *input,
                IntrusiveRefCntPtr<llvm::vfs::FileSystem> fs,
                clang::DiagnosticsEngine &diags)
{
    std::vector<const char *> argv = {CC_LLVM_CLANG};
    for (const char *const *a = cc_llvm_base_compile_args(); *a; a++)
        argv.push_back(*a);
    std::string sysroot = "--sysroot=" + cc->sysroot;
    argv.push_back(sysroot.c_str());
    for (const char *const *a = args; a && *a; a++)
        argv.push_back(*a);
    argv.insert(argv.end(), mode);
    argv.push_back(input);

    std::string key;
    for (const char *a : argv)
        key.append(a).push_back('\0');
    auto hit = cc->invocations.find(key);
    if (hit == cc->invocations.end()) {
        clang::driver::Driver drv(CC_LLVM_CLANG, "wasm32-unknown-emscripten",
                                  diags, "clang", fs);
        std::unique_ptr<clang::driver::Compilation> comp(
            drv.BuildCompilation(argv));
        if (!comp || comp->containsError() || diags.hasErrorOccurred())
            return nullptr;
        const clang::driver::JobList &jobs = comp->getJobs();
        if (jobs.size() != 1 ||
            !llvm::isa<clang::driver::Command>(*jobs.begin()) ||
            StringRef(jobs.begin()->getCreator().getName()) != "clang") {
            std::string line;
            for (size_t i = 1; i < argv.size(); i++)
                line += (i > 1 ? " " : "") + std::string(argv[i]);
            diags.Report(clang::diag::err_fe_expected_compiler_job) << line;
            return nullptr;
        }
        auto made = std::make_unique<clang::CompilerInvocation>();
        if (!clang::CompilerInvocation::CreateFromArgs(
                *made, jobs.begin()->getArguments(), diags, CC_LLVM_CLANG))
            return nullptr;
        made->getFrontendOpts().DisableFree = false;
        made->getCodeGenOpts().DisableFree = false;
        // ShowCarets makes ExecuteAction print "N warnings generated.".
        made->getDiagnosticOpts().ShowCarets = false;
        if (!cc->plugin.empty())
            made->getCodeGenOpts().PassPlugins.push_back(cc->plugin);
        if (cc->invocations.size() >= 16)
            cc->invocations.clear();
        hit = cc->invocations.emplace(key, std::move(made)).first;
    }
    // A deep copy: the job may change its invocation.
    return std::make_unique<clang::CompilerInvocation>(*hit->second);
}

// -mllvm flags are process-wide cl::opt values: put every option back to its
// default, then apply this job's (the way cc1 and lld do, minus the exit()
// on a bad flag).
static void reset_llvm_options()
{
    // The options the last job set (by its -mllvm flags, clang's or lld's)
    // are the ones with occurrences; only they can differ from the default.
    for (auto &kv : llvm::cl::getRegisteredOptions())
        if (kv.second->getNumOccurrences())
            kv.second->setDefault();
    llvm::cl::ResetAllOptionOccurrences();
}

static bool apply_llvm_args(cc_llvm *cc,
                            const std::vector<std::string> &llvm_args,
                            clang::DiagnosticsEngine &diags)
{
    // The same flags as in effect: the options already hold exactly these
    // values (the usual case: every compile passes the same flags).
    std::set<std::string> wanted(llvm_args.begin(), llvm_args.end());
    if (cc->llvm_args_known && wanted == cc->llvm_args)
        return true;
    cc->llvm_args_known = false;
    std::vector<const char *> v = {"clang (LLVM option parsing)"};
    for (const std::string &a : llvm_args)
        v.push_back(a.c_str());
    reset_llvm_options();
    std::string why;
    llvm::raw_string_ostream os(why);
    if (llvm::cl::ParseCommandLineOptions((int)v.size(), v.data(), "", &os)) {
        cc->llvm_args = std::move(wanted);
        cc->llvm_args_known = true;
        return true;
    }
    os.flush();
    while (!why.empty() && why.back() == '\n')
        why.pop_back();
    diags.Report(clang::diag::err_drv_invalid_value) << "-mllvm" << why;
    return false;
}

// ---- the time limit --------------------------------------------------------

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

// The deadline of the running job (0: none). Process-wide like LLVM's own
// state: one job runs at a time.
static uint64_t job_deadline_us;

// Whether the running job is past its deadline (and, if so, remembers it:
// the job then ends with CC_LLVM_ETIME however it ends).
static bool deadline_passed()
{
    if (!job_deadline_us || now_us() < job_deadline_us)
        return false;
    deadline_hit = true;
    return true;
}

// Ends the job at once if it is past its deadline, unwinding it like a crash:
// safe in the preprocessor, not in the middle of an optimisation pass (the
// pass plugin skips the rest of the pipeline instead).
static void check_deadline()
{
    if (!deadline_passed())
        return;
    if (llvm::CrashRecoveryContext *crc =
            llvm::CrashRecoveryContext::GetCurrent())
        crc->HandleExit(75);
}

class DeadlineCallbacks : public clang::PPCallbacks
{
  public:
    void MacroExpands(const clang::Token &, const clang::MacroDefinition &,
                      clang::SourceRange, const clang::MacroArgs *) override
    {
        if (++n % 256 == 0)
            check_deadline();
    }

  private:
    unsigned n = 0;
};

// The job's action, with the deadline hooked into its preprocessor.
class TimedAction : public clang::WrapperFrontendAction
{
  public:
    explicit TimedAction(std::unique_ptr<clang::FrontendAction> act)
        : WrapperFrontendAction(std::move(act))
    {
    }

  protected:
    bool BeginSourceFileAction(clang::CompilerInstance &ci) override
    {
        if (!WrapperFrontendAction::BeginSourceFileAction(ci))
            return false;
        ci.getPreprocessor().addPPCallbacks(
            std::make_unique<DeadlineCallbacks>());
        return true;
    }
};

// ---- one frontend job ------------------------------------------------------

// One frontend job (compile or PCH) from driver flags to the action's end.
// The CompilerInstance and action are owned by the caller's frame, so that
// after a crash they are freed outside the crashed frames.
struct Job {
    std::unique_ptr<clang::CompilerInstance> ci;
    std::unique_ptr<clang::FrontendAction> act;
};

static int run_frontend(cc_llvm *cc, Job &job, const char *const *args,
                        std::initializer_list<const char *> mode,
                        const char *input,
                        IntrusiveRefCntPtr<llvm::vfs::FileSystem> fs,
                        clang::DiagnosticConsumer &sink,
                        std::unique_ptr<clang::FrontendAction> act,
                        std::unique_ptr<llvm::raw_pwrite_stream> out,
                        const std::string &out_path)
{
    IntrusiveRefCntPtr<clang::DiagnosticIDs> ids(new clang::DiagnosticIDs());
    IntrusiveRefCntPtr<clang::DiagnosticOptions> opts(
        new clang::DiagnosticOptions());
    clang::DiagnosticsEngine diags(ids, opts, &sink, false);
    std::shared_ptr<clang::CompilerInvocation> inv =
        make_invocation(cc, args, mode, input, fs, diags);
    if (!inv)
        return CC_LLVM_EJOB;
    if (!apply_llvm_args(cc, inv->getFrontendOpts().LLVMArgs, diags))
        return CC_LLVM_EJOB;
    if (!out_path.empty())
        inv->getFrontendOpts().OutputFile = out_path;
    job.ci = std::make_unique<clang::CompilerInstance>();
    clang::CompilerInstance &ci = *job.ci;
    ci.setInvocation(std::move(inv));
    ci.createDiagnostics(&sink, false);
    ci.createFileManager(fs);
    if (out)
        ci.setOutputStream(std::move(out));
    job.act = std::make_unique<TimedAction>(std::move(act));
    bool ok = ci.ExecuteAction(*job.act);
    return ok && !ci.getDiagnostics().hasErrorOccurred() ? CC_LLVM_OK
                                                         : CC_LLVM_EJOB;
}

// Runs a frontend job guarded, then frees it (guarded too: freeing what a
// crashed job left may crash again; then it is leaked).
static int frontend_job(cc_llvm *cc, const char *const *args,
                        std::initializer_list<const char *> mode,
                        const char *input, const cc_llvm_file *files,
                        size_t n_files, cc_llvm_diag_fn on_diag, void *ctx,
                        std::unique_ptr<clang::FrontendAction> act,
                        std::unique_ptr<llvm::raw_pwrite_stream> out,
                        const std::string &out_path, char *err, size_t err_len)
{
    DiagSink sink(on_diag, ctx);
    IntrusiveRefCntPtr<llvm::vfs::FileSystem> fs = job_fs(cc, files, n_files);
    job_deadline_us =
        cc->timeout_ms ? now_us() + (uint64_t)cc->timeout_ms * 1000u : 0;
    Job job;
    bool clean_up_failed;
    int rc = run_guarded(
        cc, "clang",
        [&] {
            return run_frontend(cc, job, args, mode, input, fs, sink,
                                std::move(act), std::move(out), out_path);
        },
        [&] {
            // The instance first: after a job that did not finish, its
            // consumer still owns the module, and the action owns the
            // module's LLVMContext.
            job.ci.reset();
            job.act.reset();
            return CC_LLVM_OK;
        },
        &clean_up_failed, err, err_len);
    job_deadline_us = 0;
    if (rc == CC_LLVM_EJOB && sink.getNumErrors() == 0)
        return fail(err, err_len, CC_LLVM_EJOB,
                    "clang failed without a diagnostic");
    if (rc == CC_LLVM_EJOB)
        fail(err, err_len, CC_LLVM_EJOB, "%u error(s), see the diagnostics",
             sink.getNumErrors());
    return rc;
}

int cc_llvm_compile(cc_llvm *cc, const char *const *args, const char *main_path,
                    const cc_llvm_file *files, size_t n_files,
                    cc_llvm_diag_fn on_diag, void *ctx, uint8_t **obj,
                    size_t *obj_len, char *err, size_t err_len)
{
    // Declared before the job, so that it outlives the stream clang owns.
    llvm::SmallVector<char, 0> buf;
    int rc = frontend_job(
        cc, args, {"-c", "-o", "/dev/null/patch.o"}, main_path, files, n_files,
        on_diag, ctx, std::make_unique<clang::EmitObjAction>(),
        std::make_unique<llvm::raw_svector_ostream>(buf), "", err, err_len);
    if (rc != CC_LLVM_OK)
        return rc;
    uint8_t *p = (uint8_t *)malloc(buf.size() ? buf.size() : 1);
    if (!p)
        return fail(err, err_len, CC_LLVM_ECRASH, "out of memory");
    memcpy(p, buf.data(), buf.size());
    *obj = p;
    *obj_len = buf.size();
    return CC_LLVM_OK;
}

static std::string shm_path(cc_llvm *cc, const char *name)
{
    return cc->link_dir + "/" + name;
}

int cc_llvm_make_pch(cc_llvm *cc, const char *const *args,
                     const char *header_path, const cc_llvm_file *files,
                     size_t n_files, const char *pch_path,
                     cc_llvm_diag_fn on_diag, void *ctx, char *err,
                     size_t err_len)
{
    std::string tmp = shm_path(cc, "pch.tmp");
    int rc = frontend_job(cc, args, {"-x", "c-header", "-o", "/dev/null/x.pch"},
                          header_path, files, n_files, on_diag, ctx,
                          std::make_unique<clang::GeneratePCHAction>(), nullptr,
                          tmp, err, err_len);
    if (rc != CC_LLVM_OK) {
        unlink(tmp.c_str());
        return rc;
    }
    llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> pch =
        llvm::MemoryBuffer::getFile(tmp, /*IsText=*/false,
                                    /*RequiresNullTerminator=*/false);
    unlink(tmp.c_str());
    if (!pch)
        return fail(err, err_len, CC_LLVM_ECRASH, "cannot read the PCH: %s",
                    pch.getError().message().c_str());
    // The files stay visible to every later job (clang checks the PCH
    // against them); a buffer copied under its own name.
    for (size_t i = 0; i < n_files; i++)
        cc->kept[files[i].path] = llvm::MemoryBuffer::getMemBufferCopy(
            StringRef(files[i].data, files[i].len), files[i].path);
    cc->kept[pch_path] =
        llvm::MemoryBuffer::getMemBufferCopy((*pch)->getBuffer(), pch_path);
    return CC_LLVM_OK;
}

// ---- linking ---------------------------------------------------------------

// lld 14 keeps the state of a link in namespace-scope globals of liblldWasm
// (its headers are not installed, hence these declarations of the same
// names; a static data member's mangled name does not include its type).
// Pointers left from the previous link would dangle into the freed
// CommonLinkerContext, so every one is cleared before and after each link.
namespace lld
{
namespace wasm
{
struct Configuration;
class SymbolTable;
struct OutStruct;
extern Configuration *config;
extern SymbolTable *symtab;
extern OutStruct out; // 16 section pointers (nm -S: 0x80 bytes)
struct WasmSym {
    static void *callCtors, *callDtors, *initMemory, *applyDataRelocs,
        *applyGlobalRelocs, *applyGlobalTLSRelocs, *initTLS, *startFunction,
        *dsoHandle, *dataEnd, *globalBase, *heapBase, *initMemoryFlag,
        *stackPointer, *tlsBase, *tlsSize, *tlsAlign, *tableBase, *tableBase32,
        *definedTableBase, *definedTableBase32, *memoryBase, *definedMemoryBase,
        *indirectFunctionTable;
};
} // namespace wasm
} // namespace lld

static void reset_lld_globals()
{
    using W = lld::wasm::WasmSym;
    lld::wasm::config = nullptr;
    lld::wasm::symtab = nullptr;
    memset((void *)&lld::wasm::out, 0, 16 * sizeof(void *));
    for (void **p : {&W::callCtors,
                     &W::callDtors,
                     &W::initMemory,
                     &W::applyDataRelocs,
                     &W::applyGlobalRelocs,
                     &W::applyGlobalTLSRelocs,
                     &W::initTLS,
                     &W::startFunction,
                     &W::dsoHandle,
                     &W::dataEnd,
                     &W::globalBase,
                     &W::heapBase,
                     &W::initMemoryFlag,
                     &W::stackPointer,
                     &W::tlsBase,
                     &W::tlsSize,
                     &W::tlsAlign,
                     &W::tableBase,
                     &W::tableBase32,
                     &W::definedTableBase,
                     &W::definedTableBase32,
                     &W::memoryBase,
                     &W::definedMemoryBase,
                     &W::indirectFunctionTable})
        *p = nullptr;
}

static int write_file(const std::string &path, const void *p, size_t n)
{
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    const char *c = (const char *)p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return close(fd);
}

int cc_llvm_link(cc_llvm *cc, const uint8_t *const *objs,
                 const size_t *obj_lens, size_t n, uint8_t **wasm,
                 size_t *wasm_len, char *err, size_t err_len)
{
    if (cc->lld_broken)
        return fail(err, err_len, CC_LLVM_ECRASH,
                    "wasm-ld crashed while cleaning up an earlier link; this "
                    "process cannot link any more (restart it)");
    std::vector<std::string> inputs;
    std::string out = shm_path(cc, "out.wasm");
    int rc = CC_LLVM_ECRASH;
    std::vector<const char *> argv = {"wasm-ld"};
    for (const char *const *a = cc_llvm_base_link_args(); *a; a++)
        argv.push_back(*a);
    std::string libdir = "-L" + cc->sysroot + "/lib/wasm32-emscripten/pic";
    if (cc->sysroot != CC_LLVM_DEFAULT_SYSROOT)
        argv.push_back(libdir.c_str());
    argv.push_back("-o");
    argv.push_back(out.c_str());
    for (size_t i = 0; i < n; i++) {
        inputs.push_back(
            shm_path(cc, ("in" + std::to_string(i) + ".o").c_str()));
        if (write_file(inputs.back(), objs[i], obj_lens[i])) {
            fail(err, err_len, CC_LLVM_ECRASH, "cannot write %s: %s",
                 inputs.back().c_str(), strerror(errno));
            goto done;
        }
    }
    for (const std::string &in : inputs)
        argv.push_back(in.c_str());
    {
        std::string out_text, err_text;
        llvm::raw_string_ostream os(out_text), es(err_text);
        // lld parses its own -mllvm flags, resetting occurrences but not
        // values (as wasm-ld does). If they are among the flags in effect
        // (the compile's: clang adds one lld does not take), it sets what
        // is set already and the state stays as it was; otherwise start it
        // from the defaults.
        std::set<std::string> wanted;
        for (size_t i = 0; i + 1 < argv.size(); i++)
            if (!strcmp(argv[i], "-mllvm"))
                wanted.insert(argv[i + 1]);
        bool subset = cc->llvm_args_known &&
                      std::includes(cc->llvm_args.begin(), cc->llvm_args.end(),
                                    wanted.begin(), wanted.end());
        if (!subset) {
            reset_llvm_options();
            cc->llvm_args = wanted;
        }
        cc->llvm_args_known = false;
        reset_lld_globals();
        bool clean_up_failed;
        rc = run_guarded(
            cc, "wasm-ld",
            [&] {
                return lld::wasm::link(argv, os, es, /*exitEarly=*/false,
                                       /*disableOutput=*/false)
                           ? CC_LLVM_OK
                           : CC_LLVM_EJOB;
            },
            [] {
                lld::CommonLinkerContext::destroy();
                return CC_LLVM_OK;
            },
            &clean_up_failed, err, err_len);
        if (clean_up_failed)
            cc->lld_broken = true;
        reset_lld_globals();
        cc->llvm_args_known = rc == CC_LLVM_OK || rc == CC_LLVM_EJOB;
        es.flush();
        if (rc == CC_LLVM_EJOB) {
            while (!err_text.empty() && err_text.back() == '\n')
                err_text.pop_back();
            fail(err, err_len, CC_LLVM_EJOB, "%s",
                 err_text.empty() ? "wasm-ld failed" : err_text.c_str());
        }
    }
    if (rc == CC_LLVM_OK) {
        llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> mb =
            llvm::MemoryBuffer::getFile(out, /*IsText=*/false,
                                        /*RequiresNullTerminator=*/false);
        uint8_t *p =
            mb ? (uint8_t *)malloc((*mb)->getBufferSize() + 1) : nullptr;
        if (!p) {
            rc = fail(err, err_len, CC_LLVM_ECRASH,
                      "cannot read the linked module");
            goto done;
        }
        memcpy(p, (*mb)->getBufferStart(), (*mb)->getBufferSize());
        *wasm = p;
        *wasm_len = (*mb)->getBufferSize();
    }
done:
    for (const std::string &in : inputs)
        unlink(in.c_str());
    unlink(out.c_str());
    return rc;
}

// ---- life cycle ------------------------------------------------------------

static bool is_dir(const std::string &p)
{
    struct stat st;
    return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

cc_llvm *cc_llvm_new(const cc_llvm_desc *desc, char *err, size_t err_len)
{
    cc_llvm_desc d = desc ? *desc : cc_llvm_desc{};
    std::unique_ptr<cc_llvm> cc(new (std::nothrow) cc_llvm());
    if (!cc) {
        fail(err, err_len, CC_LLVM_ECRASH, "out of memory");
        return nullptr;
    }
    cc->sysroot = d.sysroot && *d.sysroot ? d.sysroot : CC_LLVM_DEFAULT_SYSROOT;
    cc->timeout_ms = d.timeout_ms;
    // clang's own headers (stddef.h, ...), where its driver looks for them
    std::vector<std::string> dirs = {
        cc->sysroot + "/include",
        clang::driver::Driver::GetResourcesPath(CC_LLVM_CLANG) + "/include"};
    for (const char *const *a = d.allowed_dirs; a && *a; a++)
        dirs.push_back(*a);
    for (const std::string &dir : dirs) {
        char real[PATH_MAX];
        if (!realpath(dir.c_str(), real) || !is_dir(real)) {
            fail(err, err_len, CC_LLVM_ECRASH,
                 "%s is not a directory (clang-14 and the Emscripten sysroot "
                 "installed?)",
                 dir.c_str());
            return nullptr;
        }
        cc->allowed.push_back(real);
    }
    init_once();
    if (d.pass_plugin && *d.pass_plugin) {
        llvm::Expected<llvm::PassPlugin> p =
            llvm::PassPlugin::Load(d.pass_plugin);
        if (!p) {
            fail(err, err_len, CC_LLVM_ECRASH,
                 "cannot load the pass plugin: %s",
                 llvm::toString(p.takeError()).c_str());
            return nullptr;
        }
        cc->plugin = d.pass_plugin;
        // A plugin that offers it asks deadline_passed before every pass.
        using set_fn = void (*)(bool (*)(void));
        if (auto set = (set_fn)llvm::sys::DynamicLibrary::getPermanentLibrary(
                           d.pass_plugin)
                           .getAddressOfSymbol("pb_pass_set_deadline_check"))
            set(deadline_passed);
    }
    const char *shm = is_dir("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string tmpl = std::string(shm) + "/pbcc.XXXXXX";
    std::vector<char> t(tmpl.begin(), tmpl.end());
    t.push_back('\0');
    if (!mkdtemp(t.data())) {
        fail(err, err_len, CC_LLVM_ECRASH,
             "cannot create a directory in %s: %s", shm, strerror(errno));
        return nullptr;
    }
    cc->link_dir = t.data();
    cc->altstack.resize(1u << 16);
    cc->sandbox = llvm::makeIntrusiveRefCnt<SandboxFS>(
        llvm::vfs::getRealFileSystem(), cc->allowed);
    return cc.release();
}

void cc_llvm_free(cc_llvm *cc)
{
    if (!cc)
        return;
    if (!cc->link_dir.empty()) {
        if (DIR *d = opendir(cc->link_dir.c_str())) {
            while (struct dirent *e = readdir(d))
                if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                    unlink((cc->link_dir + "/" + e->d_name).c_str());
            closedir(d);
        }
        rmdir(cc->link_dir.c_str());
    }
    if (cc->job_stack) // retired stacks stay mapped
        munmap(cc->job_stack, kJobStackBytes);
    delete cc;
}
