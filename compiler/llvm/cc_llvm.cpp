// cc_llvm.cpp — clang and wasm-ld of LLVM 14 used as libraries, behind the C
// interface of cc_llvm.h: the engine (its life cycle, compiling and PCHs).
// A job costs a few milliseconds here against ~50 ms for clang-14 and
// wasm-ld-14 as processes (DESIGN.md, verified facts), but the libraries
// were written for one job per process, so the engine undoes what a job
// leaves behind:
//  - cl::opt options are global: before a job's -mllvm flags are parsed,
//    the options the last parse set go back to their defaults (unless the
//    flags are the ones in effect already), and lld parses the link's;
//  - lld 14 keeps per-link state in globals and in a CommonLinkerContext
//    that must be destroyed after each link (link.cpp);
//  - clang's driver asks for -disable-free (leak the AST at exit, for speed):
//    turned off, so that memory stays flat;
//  - a crash, a report_fatal_error or an exit() inside clang or lld unwinds
//    the job, which runs on a stack of its own (job_guard.cpp), and returns
//    CC_LLVM_ECRASH;
//  - a job past its time limit is ended the same way at the next macro
//    expansion (DeadlineCallbacks); in the optimiser, the pass plugin skips
//    the remaining passes instead (pb_pass_set_deadline_check).
// The sandbox is a virtual file system (sandbox_fs.cpp). Per command line,
// the compiler invocation is built once and copied per job.
#include "engine.h"

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
#include "clang/Frontend/FrontendActions.h"
#include "clang/Frontend/FrontendDiagnostic.h"
#include "clang/Lex/Preprocessor.h"
#include "clang/Serialization/ASTWriter.h"
#include "clang/Serialization/PCHContainerOperations.h"
#include "llvm/Passes/PassPlugin.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/DynamicLibrary.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef CC_LLVM_CLANG
#define CC_LLVM_CLANG "/usr/lib/llvm-14/bin/clang"
#endif

using llvm::IntrusiveRefCntPtr;
using llvm::StringRef;

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
void reset_llvm_options()
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

// ---- the time limit in the preprocessor ------------------------------------

// A macro that expands without end (2^40 tokens from 40 #defines) would
// keep clang busy forever: the preprocessor looks at the clock every 256
// macro expansions and, past the deadline, ends the job through the
// crash-recovery context (check_deadline, job_guard.cpp).
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
    set_deadline(cc->timeout_ms);
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
    set_deadline(0);
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

// ---- life cycle ------------------------------------------------------------

// The target, once per process, and the crash-recovery handlers.
static void init_engine()
{
    static bool done;
    if (!done) {
        LLVMInitializeWebAssemblyTargetInfo();
        LLVMInitializeWebAssemblyTarget();
        LLVMInitializeWebAssemblyTargetMC();
        LLVMInitializeWebAssemblyAsmPrinter();
        LLVMInitializeWebAssemblyAsmParser();
        done = true;
    }
    init_crash_recovery();
}

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
    std::vector<std::string> allowed; // real paths
    for (const std::string &dir : dirs) {
        char real[PATH_MAX];
        if (!realpath(dir.c_str(), real) || !is_dir(real)) {
            fail(err, err_len, CC_LLVM_ECRASH,
                 "%s is not a directory (clang-14 and the Emscripten sysroot "
                 "installed?)",
                 dir.c_str());
            return nullptr;
        }
        allowed.push_back(real);
    }
    init_engine();
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
    cc->read_dirs = allowed;
    for (const std::string &dir : cc->read_dirs)
        cc->read_dirs_c.push_back(dir.c_str());
    cc->read_dirs_c.push_back(nullptr);
    cc->sandbox = make_sandbox_fs(std::move(allowed));
    return cc.release();
}

const char *const *cc_llvm_read_dirs(const cc_llvm *cc)
{
    return cc->read_dirs_c.data();
}

const char *cc_llvm_work_dir(const cc_llvm *cc)
{
    return cc->link_dir.c_str();
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
    free_job_stack(cc);
    delete cc;
}
