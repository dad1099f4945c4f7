// pb_pass.cpp — the LLVM pass that turns a compiled patch into the patch
// ABI of docs/PATCH_ABI.md. It runs at the start of the optimisation
// pipeline (before inlining), loaded as a pass plugin by both compile
// backends (in-process and clang-14 as a process), so both produce the same
// module. It is the second of the compiler's two C++ files; everything it
// needs from the rest of patchbay arrives in the IR itself.
//
// What it does to the module:
//  - every defined external function F (a var) is renamed pb__def.F, made
//    internal, and registered from a constructor: pb_rt_define("F", sig, F);
//  - every reference to a var — one defined here, or one of the room's vars
//    that the prelude declared (named in @pb__room_vars) — is replaced by a
//    call to an internal trampoline that calls through the registry slot
//    (pb_rt_slot), so redefining a var anywhere reaches every caller;
//  - every global in section "pb_state" (PB_STATE) is replaced by storage
//    owned by the runtime (pb_rt_state), so it survives redefinitions;
//  - every other global becomes internal: a side module exports no user
//    names, because Emscripten's dynamic linker binds the first definition
//    of a name forever;
//  - inline assembly is refused (it can .incbin files);
//  - what it found is written to the custom section "pb_meta" (one line
//    per item) for the compiler to read back from the linked module.
// It also lets the process that loads it cut the optimiser short at a time
// limit (pb_pass_set_deadline_check), which the warm backend uses.
#include "llvm/IR/Constants.h"
#include "llvm/IR/DiagnosticInfo.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/InlineAsm.h"
#include "llvm/IR/Instructions.h"
#include "llvm/IR/Module.h"
#include "llvm/IR/PassInstrumentation.h"
#include "llvm/IR/PassManager.h"
#include "llvm/IR/ReplaceConstant.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Passes/PassPlugin.h"
#include "llvm/Transforms/Utils/ModuleUtils.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <csignal>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <map>
#include <set>
#include <string>
#include <vector>

using namespace llvm;

namespace
{

constexpr const char *kRoomVars = "pb__room_vars";
constexpr const char *kStateSection = "pb_state";
// Static data a patch may define (the module itself is also bounded by
// PB_MAX_MODULE_BYTES after linking; zero-filled data is not in the module
// but is allocated when it loads).
constexpr uint64_t kMaxStaticBytes = 16u << 20;

// Set by fail(); a failed module is emptied so that code generation does
// not spend time on what will be thrown away (a 1 GiB array, say).
bool g_failed;

void fail(Module &M, const Twine &msg, const Function *where = nullptr)
{
    g_failed = true;
    if (where)
        M.getContext().diagnose(DiagnosticInfoUnsupported(
            *where, msg,
            where->getSubprogram() ? DiagnosticLocation(where->getSubprogram())
                                   : DiagnosticLocation()));
    else
        M.getContext().diagnose(
            DiagnosticInfoInlineAsm(msg, DiagnosticSeverity::DS_Error));
}

// Emscripten's signature letters: v i j f d (return first, then params).
bool sig_char(Type *t, std::string &out)
{
    if (t->isVoidTy())
        out += 'v';
    else if (t->isPointerTy() ||
             (t->isIntegerTy() && t->getIntegerBitWidth() <= 32))
        out += 'i';
    else if (t->isIntegerTy(64))
        out += 'j';
    else if (t->isFloatTy())
        out += 'f';
    else if (t->isDoubleTy())
        out += 'd';
    else
        return false;
    return true;
}

bool signature(FunctionType *ft, std::string &sig)
{
    sig.clear();
    if (ft->isVarArg() || !sig_char(ft->getReturnType(), sig))
        return false;
    for (Type *p : ft->params())
        if (!sig_char(p, sig))
            return false;
    return true;
}

bool is_reserved(StringRef name)
{
    return name.startswith("pb__") || name.startswith("__") ||
           name.startswith("llvm.");
}

// Reserved, and not LLVM's own (llvm.used, llvm.global_ctors, ...).
bool is_user_reserved(StringRef name)
{
    return is_reserved(name) && !name.startswith("llvm.");
}

std::string reserved_message(StringRef name)
{
    return ("\"" + name +
            "\": names that begin with __ or pb__ are reserved for the "
            "compiler, the linker and the runtime; rename it (or make it "
            "static)")
        .str();
}

std::vector<std::string> room_vars(Module &M)
{
    std::vector<std::string> names;
    GlobalVariable *g = M.getGlobalVariable(kRoomVars, true);
    if (!g)
        return names;
    if (auto *cds = dyn_cast_or_null<ConstantDataSequential>(
            g->hasInitializer() ? g->getInitializer() : nullptr)) {
        StringRef all = cds->getRawDataValues();
        while (!all.empty()) {
            auto cut = all.split('\0');
            if (!cut.first.empty())
                names.push_back(cut.first.str());
            all = cut.second;
        }
    }
    g->eraseFromParent();
    return names;
}

// An internal function with the var's type that calls through its slot.
Function *make_trampoline(Module &M, StringRef name, FunctionType *ft,
                          GlobalVariable *slot)
{
    Function *t = Function::Create(ft, GlobalValue::InternalLinkage,
                                   "pb__var." + name, M);
    t->addFnAttr(Attribute::AlwaysInline);
    IRBuilder<> b(BasicBlock::Create(M.getContext(), "entry", t));
    PointerType *fp = ft->getPointerTo();
    Value *cell = b.CreateLoad(fp->getPointerTo(), slot, "cell");
    Value *fn = b.CreateLoad(fp, cell, "fn");
    std::vector<Value *> args;
    for (Argument &a : t->args())
        args.push_back(&a);
    CallInst *call = b.CreateCall(ft, fn, args);
    if (ft->getReturnType()->isVoidTy())
        b.CreateRetVoid();
    else
        b.CreateRet(call);
    return t;
}

// Replaces every use of state global g by a load of ptr_cell; constant
// expressions that use g are turned into instructions first.
bool rewrite_state_uses(Module &M, GlobalVariable *g, GlobalVariable *cell)
{
    // Constants left behind by erased globals (llvm.used) still "use" g.
    g->removeDeadConstantUsers();
    // Turn constant-expression users into instructions.
    for (bool changed = true; changed;) {
        changed = false;
        for (User *u : std::vector<User *>(g->user_begin(), g->user_end())) {
            auto *ce = dyn_cast<ConstantExpr>(u);
            if (!ce)
                continue;
            std::vector<User *> ce_users(ce->user_begin(), ce->user_end());
            for (User *cu : ce_users) {
                if (auto *inst = dyn_cast<Instruction>(cu)) {
                    convertConstantExprsToInstructions(inst, ce);
                    changed = true;
                } else if (isa<ConstantExpr>(cu)) {
                    // nested: handled when its instruction user converts
                    for (User *cuu :
                         std::vector<User *>(cu->user_begin(), cu->user_end()))
                        if (auto *inst = dyn_cast<Instruction>(cuu)) {
                            convertConstantExprsToInstructions(inst, ce);
                            changed = true;
                        }
                }
            }
            if (ce->use_empty())
                ce->destroyConstant();
        }
    }
    for (Use &use : make_early_inc_range(g->uses())) {
        auto *inst = dyn_cast<Instruction>(use.getUser());
        if (!inst) {
            fail(M, "state \"" + g->getName() +
                        "\" is used in a global initializer; take its address "
                        "inside a function instead");
            return false;
        }
        Instruction *at = inst;
        if (auto *phi = dyn_cast<PHINode>(inst))
            at = phi->getIncomingBlock(use)->getTerminator();
        IRBuilder<> b(at);
        Value *p = b.CreateLoad(g->getType(), cell, g->getName() + ".ptr");
        use.set(p);
    }
    return true;
}

#ifdef PB_PASS_FAULTS
// Fault injection for tests/compiler/test_faults.c (only in the test build
// of this plugin, libpb_pass_faults.so): a patch that defines one of these
// functions makes the compiler crash in that way, inside clang, as a
// compiler bug or an exhausted memory limit would.
int *volatile nowhere;

__attribute__((noinline)) int overflow(volatile char *up)
{
    volatile char frame[512];
    frame[0] = up ? up[0] : 1;
    return overflow(frame) + frame[1];
}

void inject_faults(Module &M)
{
    if (M.getFunction("pb_fault_segv"))
        *nowhere = 1;
    if (M.getFunction("pb_fault_abort"))
        abort();
    if (M.getFunction("pb_fault_fatal"))
        report_fatal_error("injected fatal error");
    if (M.getFunction("pb_fault_stack"))
        overflow(nullptr);
    if (M.getFunction("pb_fault_oom")) // what LLVM does when malloc fails
        report_bad_alloc_error("injected out of memory");
    // Code running in the compiler, as a compiler bug exploited by a
    // hostile patch would: it reads the file named by pb_fault_read_path,
    // or connects to 127.0.0.1 at the port pb_fault_connect_port names,
    // and says what it got, or why not, in an error.
    GlobalVariable *path = M.getGlobalVariable("pb_fault_read_path", true);
    auto *text = path && path->hasInitializer()
                     ? dyn_cast<ConstantDataSequential>(path->getInitializer())
                     : nullptr;
    if (text && text->isCString()) {
        std::string name = text->getAsCString().str();
        char got[64];
        FILE *f = fopen(name.c_str(), "rb");
        size_t n = f ? fread(got, 1, sizeof got, f) : 0;
        fail(M,
             f ? "pb_fault_read: read " + std::to_string(n) + " bytes of " +
                     name
               : "pb_fault_read: cannot open " + name + ": " + strerror(errno));
        if (f)
            fclose(f);
    }
    // ... or starts as many processes as pb_fault_fork_count (or
    // pb_fault_fork_and_hang) says, each waiting until it is killed (and
    // called pb_fault_fork_name if the patch says), says how many it could
    // and ends them (or leaves them and never returns).
    GlobalVariable *forks = M.getGlobalVariable("pb_fault_fork_count", true);
    GlobalVariable *hang = M.getGlobalVariable("pb_fault_fork_and_hang", true);
    if (!forks)
        forks = hang;
    auto *count = forks && forks->hasInitializer()
                      ? dyn_cast<ConstantInt>(forks->getInitializer())
                      : nullptr;
    if (count) {
        std::vector<pid_t> kids;
        std::string why = "none refused";
        GlobalVariable *named = M.getGlobalVariable("pb_fault_fork_name", true);
        auto *name =
            named && named->hasInitializer()
                ? dyn_cast<ConstantDataSequential>(named->getInitializer())
                : nullptr;
        std::string kid_name =
            name && name->isCString() ? name->getAsCString().str() : "";
        for (uint64_t i = 0; i < count->getZExtValue(); i++) {
            pid_t pid = fork();
            if (pid == 0) {
                if (!kid_name.empty())
                    prctl(PR_SET_NAME, kid_name.c_str());
                pause();
                _exit(0);
            }
            if (pid < 0) {
                why = strerror(errno);
                break;
            }
            kids.push_back(pid);
        }
        while (hang)
            pause();
        for (pid_t pid : kids) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
        fail(M, "pb_fault_fork: uid " + std::to_string(getuid()) + " started " +
                    std::to_string(kids.size()) + " of " +
                    std::to_string(count->getZExtValue()) + " (" + why + ")");
    }
    GlobalVariable *port = M.getGlobalVariable("pb_fault_connect_port", true);
    auto *number = port && port->hasInitializer()
                       ? dyn_cast<ConstantInt>(port->getInitializer())
                       : nullptr;
    if (number) {
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons((uint16_t)number->getZExtValue());
        to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (s < 0)
            fail(M, std::string("pb_fault_connect: no socket: ") +
                        strerror(errno));
        else if (connect(s, (const sockaddr *)&to, sizeof to))
            fail(M, std::string("pb_fault_connect: cannot connect: ") +
                        strerror(errno));
        else
            fail(M, "pb_fault_connect: connected");
        if (s >= 0)
            close(s);
    }
}
#endif

// The rewrite of one module, step by step (PatchAbiPass::transform runs
// the steps in order). A step that finds something wrong calls fail() and
// the steps after it still run, so that every problem is reported; the
// failed module is emptied afterwards.
class PatchAbi
{
  public:
    explicit PatchAbi(Module &M)
        : M(M), C(M.getContext()), i8p(Type::getInt8PtrTy(C)),
          i32(Type::getInt32Ty(C))
    {
    }

    // Inline assembly can .incbin files outside the sandbox.
    void refuse_inline_asm()
    {
        if (!M.getModuleInlineAsm().empty())
            fail(M, "inline assembly is not allowed in a patch");
        for (Function &F : M)
            for (BasicBlock &bb : F)
                for (Instruction &i : bb)
                    if (auto *cb = dyn_cast<CallBase>(&i))
                        if (cb->isInlineAsm())
                            fail(M, "inline assembly is not allowed in a patch",
                                 &F);
    }

    // A patch is loaded (dlopen runs its constructors) when it arrives, up
    // to PB_MAX_APPLY_AHEAD_US before its apply time, at a different moment
    // on every runtime, and also when it is part of a catch-up that is then
    // refused: nothing of it may run before it commits (docs/PATCH_ABI.md
    // § What the compiler produces). The only constructor is the binder.
    void refuse_constructors()
    {
        static const struct {
            const char *list, *what;
        } lists[] = {{"llvm.global_ctors", "constructor"},
                     {"llvm.global_dtors", "destructor"}};
        for (const auto &l : lists) {
            GlobalVariable *g = M.getGlobalVariable(l.list, true);
            auto *list = g && g->hasInitializer()
                             ? dyn_cast<ConstantArray>(g->getInitializer())
                             : nullptr;
            if (!list)
                continue;
            for (const Use &entry : list->operands()) {
                auto *e = dyn_cast<ConstantStruct>(entry.get());
                auto *fn = e && e->getNumOperands() > 1
                               ? dyn_cast<Function>(
                                     e->getOperand(1)->stripPointerCasts())
                               : nullptr;
                std::string name = fn ? fn->getName().str() : "?";
                fail(M,
                     "\"" + name + "\" is a " + l.what +
                         ": patch code may not run before the patch commits "
                         "(a patch is loaded ahead of its apply time); put "
                         "one-time set-up in pb_init, which runs right after "
                         "the patch commits",
                     fn);
            }
        }
    }

    // PB_STATE marks its global `used` so the front end keeps it; the
    // binder (emit_binder) keeps it from here on.
    void drop_used_lists()
    {
        for (const char *n : {"llvm.used", "llvm.compiler.used"})
            if (GlobalVariable *u = M.getGlobalVariable(n, true))
                u->eraseFromParent();
    }

    // Vars defined here, and the room's vars declared by the prelude.
    void find_vars()
    {
        std::vector<std::string> room = room_vars(M);
        std::set<std::string> room_set(room.begin(), room.end());
        for (Function &F : M) {
            StringRef n = F.getName();
            if (F.isIntrinsic() || is_reserved(n))
                continue;
            bool is_def = !F.isDeclaration() && F.hasExternalLinkage();
            bool is_foreign = F.isDeclaration() && room_set.count(n.str());
            if (!is_def && !is_foreign)
                continue;
            std::string sig;
            if (!signature(F.getFunctionType(), sig)) {
                fail(M,
                     "function \"" + n +
                         "\" cannot be a var: variadic, or a parameter or "
                         "result type that is not an integer, pointer, "
                         "float or double (make it static to keep it "
                         "private to this patch)",
                     is_def ? &F : nullptr);
                continue;
            }
            vars.push_back({n.str(), sig, &F, nullptr, nullptr, nullptr});
        }
    }

    // Slots and trampolines: every use of a var goes through its slot, so
    // that redefining it anywhere reaches every caller.
    void route_calls_through_slots()
    {
        for (Var &v : vars) {
            PointerType *slot_type =
                v.original->getFunctionType()->getPointerTo()->getPointerTo();
            v.slot = new GlobalVariable(
                M, slot_type, false, GlobalValue::InternalLinkage,
                ConstantPointerNull::get(slot_type), "pb__slot." + v.name);
            v.trampoline = make_trampoline(
                M, v.name, v.original->getFunctionType(), v.slot);
            v.original->replaceAllUsesWith(v.trampoline);
            if (v.original->isDeclaration()) {
                v.original->eraseFromParent();
            } else {
                v.definition = v.original;
                v.definition->setName("pb__def." + v.name);
                v.definition->setLinkage(GlobalValue::InternalLinkage);
            }
            v.original = nullptr;
        }
    }

    // Which vars each definition reaches, directly or through static
    // functions of this patch (for the signature-change check).
    void find_deps()
    {
        std::map<const Function *, std::string> var_of_trampoline;
        for (Var &v : vars)
            var_of_trampoline[v.trampoline] = v.name;
        for (Var &v : vars) {
            if (!v.definition)
                continue;
            std::set<const Function *> seen;
            std::vector<const Function *> todo{v.definition};
            while (!todo.empty()) {
                const Function *f = todo.back();
                todo.pop_back();
                if (!seen.insert(f).second)
                    continue;
                for (const BasicBlock &bb : *f)
                    for (const Instruction &i : bb)
                        for (const Value *op : i.operands()) {
                            const auto *g =
                                dyn_cast<Function>(op->stripPointerCasts());
                            if (!g)
                                continue;
                            auto it = var_of_trampoline.find(g);
                            if (it != var_of_trampoline.end()) {
                                if (it->second != v.name)
                                    deps[v.name].insert(it->second);
                            } else if (!g->isDeclaration() &&
                                       g->hasLocalLinkage()) {
                                todo.push_back(g);
                            }
                        }
            }
        }
    }

    // A var that nothing here references needs no slot.
    void drop_unused_slots()
    {
        for (Var &v : vars) {
            if (!v.trampoline->use_empty())
                continue;
            v.trampoline->eraseFromParent();
            v.slot->eraseFromParent();
            v.trampoline = nullptr;
            v.slot = nullptr;
        }
    }

    // Every PB_STATE global becomes storage the runtime owns: its uses load
    // a pointer to it, and its initial value stays behind as a constant.
    void move_state_to_the_runtime()
    {
        const DataLayout &dl = M.getDataLayout();
        for (GlobalVariable &g : make_early_inc_range(M.globals())) {
            if (g.getSection() != kStateSection)
                continue;
            std::string name = g.getName().str();
            State s{name, dl.getTypeAllocSize(g.getValueType()),
                    g.getAlign() ? g.getAlign()->value()
                                 : dl.getABITypeAlign(g.getValueType()).value(),
                    nullptr, nullptr};
            s.cell = new GlobalVariable(
                M, g.getType(), false, GlobalValue::InternalLinkage,
                ConstantPointerNull::get(g.getType()), "pb__state." + name);
            if (!rewrite_state_uses(M, &g, s.cell))
                continue;
            g.setName("pb__init." + name);
            g.setSection("");
            g.setConstant(true);
            g.setLinkage(GlobalValue::PrivateLinkage);
            s.initial = &g;
            states.push_back(s);
        }
    }

    void check_static_data()
    {
        const DataLayout &dl = M.getDataLayout();
        uint64_t static_bytes = 0;
        for (GlobalVariable &g : M.globals())
            if (!g.isDeclaration())
                static_bytes += dl.getTypeAllocSize(g.getValueType());
        if (static_bytes > kMaxStaticBytes)
            fail(M, "the patch defines " + Twine(static_bytes) +
                        " bytes of static data, at most " +
                        Twine(kMaxStaticBytes) +
                        " (allocate large buffers with malloc, or keep them "
                        "in a PB_STATE pointer)");
    }

    // Names that begin with __ or pb__ are the compiler's, the linker's and
    // the runtime's: an external definition of one would leave the module
    // (hide_user_names keeps them) and land in the runtime's one global
    // symbol table, where the first definition of a name wins. Run after
    // find_vars, which removed the prelude's pb__room_vars.
    void refuse_reserved_definitions()
    {
        for (Function &F : M)
            if (!F.isDeclaration() && !F.hasLocalLinkage() &&
                is_user_reserved(F.getName()))
                fail(M, reserved_message(F.getName()), &F);
        for (GlobalVariable &g : M.globals())
            if (!g.isDeclaration() && !g.hasLocalLinkage() &&
                is_user_reserved(g.getName()))
                fail(M, reserved_message(g.getName()));
    }

    // No user names leave the module.
    void hide_user_names()
    {
        for (GlobalVariable &g : M.globals())
            if (!g.isDeclaration() && !is_reserved(g.getName()) &&
                g.hasExternalLinkage())
                g.setLinkage(GlobalValue::InternalLinkage);
        for (Function &F : M)
            if (!F.isDeclaration() && F.hasExternalLinkage() &&
                !is_reserved(F.getName()))
                F.setLinkage(GlobalValue::InternalLinkage);
    }

    // The constructor that binds everything at load time. It runs before
    // any user constructor (priority 0).
    void emit_binder()
    {
        FunctionCallee define = M.getOrInsertFunction(
            "pb_rt_define", Type::getVoidTy(C), i8p, i8p, i8p);
        FunctionCallee slot =
            M.getOrInsertFunction("pb_rt_slot", i8p, i8p, i8p);
        FunctionCallee state_fn =
            M.getOrInsertFunction("pb_rt_state", i8p, i8p, i32, i32, i8p);
        Function *ctor =
            Function::Create(FunctionType::get(Type::getVoidTy(C), false),
                             GlobalValue::InternalLinkage, "pb__bind", M);
        IRBuilder<> b(BasicBlock::Create(C, "entry", ctor));
        for (State &s : states) {
            Value *p =
                b.CreateCall(state_fn, {b.CreateGlobalStringPtr(s.name),
                                        ConstantInt::get(i32, s.size),
                                        ConstantInt::get(i32, s.align),
                                        b.CreateBitCast(s.initial, i8p)});
            b.CreateStore(b.CreateBitCast(p, s.cell->getValueType()), s.cell);
        }
        for (Var &v : vars)
            if (v.definition)
                b.CreateCall(define, {b.CreateGlobalStringPtr(v.name),
                                      b.CreateGlobalStringPtr(v.sig),
                                      b.CreateBitCast(v.definition, i8p)});
        for (Var &v : vars) {
            if (!v.slot)
                continue;
            Value *cell = b.CreateCall(slot, {b.CreateGlobalStringPtr(v.name),
                                              b.CreateGlobalStringPtr(v.sig)});
            b.CreateStore(b.CreateBitCast(cell, v.slot->getValueType()),
                          v.slot);
        }
        b.CreateRetVoid();
        appendToGlobalCtors(M, ctor, 0);
    }

    // What the compiler reads back: definitions with what they reach, the
    // room vars this patch uses, and states.
    void emit_meta()
    {
        std::string meta;
        for (Var &v : vars) {
            if (v.definition) {
                meta += "def " + v.name + " " + v.sig;
                for (const std::string &d : deps[v.name])
                    meta += " " + d;
                meta += "\n";
            } else if (v.trampoline) {
                meta += "use " + v.name + " " + v.sig + "\n";
            }
        }
        for (State &s : states)
            meta += "state " + s.name + " " + std::to_string(s.size) + " " +
                    std::to_string(s.align) + "\n";
        NamedMDNode *sections =
            M.getOrInsertNamedMetadata("wasm.custom_sections");
        sections->addOperand(MDNode::get(
            C, {MDString::get(C, "pb_meta"), MDString::get(C, meta)}));
    }

  private:
    // A var defined here or one of the room's that this patch mentions.
    struct Var {
        std::string name, sig;
        Function *original;   // as compiled; gone after the routing
        Function *definition; // renamed pb__def.NAME, or null if foreign
        Function *trampoline; // calls through the slot; null if unused
        GlobalVariable *slot; // the registry cell's address, at load
    };
    // A PB_STATE global.
    struct State {
        std::string name;
        uint64_t size, align;
        GlobalVariable *initial; // its initial value, a private constant
        GlobalVariable *cell;    // the runtime's storage's address, at load
    };

    Module &M;
    LLVMContext &C;
    Type *i8p, *i32;
    std::vector<Var> vars;
    std::vector<State> states;
    std::map<std::string, std::set<std::string>> deps; // var -> vars it reaches
};

struct PatchAbiPass : PassInfoMixin<PatchAbiPass> {
    PreservedAnalyses run(Module &M, ModuleAnalysisManager &)
    {
#ifdef PB_PASS_FAULTS
        inject_faults(M);
#endif
        g_failed = false;
        transform(M);
        if (g_failed)
            empty(M);
        return PreservedAnalyses::none();
    }

    static void empty(Module &M)
    {
        for (const char *n : {"llvm.global_ctors", "llvm.global_dtors"})
            if (GlobalVariable *g = M.getGlobalVariable(n, true))
                g->eraseFromParent();
        for (Function &F : M)
            if (!F.isDeclaration()) {
                F.deleteBody();
                F.setLinkage(GlobalValue::ExternalLinkage);
            }
        for (GlobalVariable &g : M.globals())
            if (g.hasInitializer()) {
                g.setInitializer(nullptr);
                g.setLinkage(GlobalValue::ExternalLinkage);
            }
        M.setModuleInlineAsm("");
    }

    static void transform(Module &M)
    {
        PatchAbi abi(M);
        abi.refuse_inline_asm();
        abi.refuse_constructors();
        abi.drop_used_lists();
        abi.find_vars();
        abi.refuse_reserved_definitions();
        abi.route_calls_through_slots();
        abi.find_deps();
        abi.drop_unused_slots();
        abi.move_state_to_the_runtime();
        abi.check_static_data();
        abi.hide_user_names();
        abi.emit_binder();
        abi.emit_meta();
    }
};

} // namespace

// The warm backend's time limit (compiler/llvm/job_guard.cpp) sets this to a
// function that says whether the running job is past its deadline. From
// then on every optional pass is skipped and, at the end of the pipeline,
// every function body is dropped, so that the job reaches its end at once
// (code generation has nothing left to do) without being unwound from the
// middle of a pass; the backend then throws the output away and reports the
// limit. Inside clang-14 as a process nothing sets it: the parent kills a
// process that runs too long.
static bool (*g_expired)(void);

extern "C" void pb_pass_set_deadline_check(bool (*expired)(void))
{
    g_expired = expired;
}

namespace
{
struct DropBodiesPass : PassInfoMixin<DropBodiesPass> {
    PreservedAnalyses run(Module &M, ModuleAnalysisManager &)
    {
        if (!g_expired || !g_expired())
            return PreservedAnalyses::all();
        for (Function &F : M)
            if (!F.isDeclaration())
                F.deleteBody();
        return PreservedAnalyses::none();
    }
    static bool isRequired()
    {
        return true;
    }
};
} // namespace

extern "C" LLVM_ATTRIBUTE_WEAK PassPluginLibraryInfo llvmGetPassPluginInfo()
{
    return {LLVM_PLUGIN_API_VERSION, "patchbay-abi", "1", [](PassBuilder &pb) {
                pb.registerPipelineStartEPCallback(
                    [](ModulePassManager &mpm, OptimizationLevel) {
                        mpm.addPass(PatchAbiPass());
                    });
                PassInstrumentationCallbacks *pic =
                    pb.getPassInstrumentationCallbacks();
                if (!g_expired || !pic)
                    return;
                pic->registerShouldRunOptionalPassCallback(
                    [](StringRef, Any) { return !g_expired(); });
                pb.registerOptimizerLastEPCallback(
                    [](ModulePassManager &mpm, OptimizationLevel) {
                        mpm.addPass(DropBodiesPass());
                    });
            }};
}
