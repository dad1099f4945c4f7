// sandbox_fs.cpp — the file system a warm job sees (cc_llvm.h, "what a job
// may read"): the job's in-memory files and the kept ones (PCHs and their
// headers) over a filter of the real file system that hides every path
// outside the allowed directories, to #include and __has_include alike.
#include "engine.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

using llvm::IntrusiveRefCntPtr;
using llvm::StringRef;

namespace
{

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

} // namespace

IntrusiveRefCntPtr<llvm::vfs::FileSystem>
make_sandbox_fs(std::vector<std::string> allowed)
{
    return llvm::makeIntrusiveRefCnt<SandboxFS>(llvm::vfs::getRealFileSystem(),
                                                std::move(allowed));
}

// A job's file shadows a kept file of the same path.
IntrusiveRefCntPtr<llvm::vfs::FileSystem>
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
