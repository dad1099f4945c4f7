// link.cpp — linking objects into a side module with lld 14 as a library
// (cc_llvm_link). lld was written for one link per process: its globals are
// cleared before and after each link, its CommonLinkerContext destroyed
// after each, and the link's -mllvm options applied over the compile's.
// Objects and the module pass through the engine's private directory in
// /dev/shm (lld reads and writes files), emptied after each link.
#include "engine.h"

#include "lld/Common/CommonLinkerContext.h"
#include "lld/Common/Driver.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
