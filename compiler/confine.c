/* confine.c — the compile server gives up, once the compiler is loaded,
 * what its jobs do not need (docs/SECURITY.md § The compile server). A job
 * is hostile source run through clang: should a bug in clang or lld let it
 * run code, that code should find nothing of the relay's — not the signing
 * key in the data directory, not the relay's memory (ptrace), not the
 * network, not a signal to the relay. Three layers, each used where the
 * system has it, in this order:
 *
 * - the uid: a server started as root becomes nobody (cc_drop_root);
 * - Landlock (Linux 5.13+): reading only beneath the directories the
 *   backend names (the headers, the pass plugin; for the process backend
 *   the programs it runs), writing only beneath the backend's own work
 *   directory; with ABI 4 no TCP, with ABI 6 no signals or abstract
 *   sockets outside the server. Landlock also stops ptrace of processes
 *   outside the domain. The numbers below are the kernel's
 *   (include/uapi/linux/landlock.h); Debian 12's headers stop at ABI 2;
 * - seccomp: no sockets, no other process's memory, none of the kernel's
 *   rarer interfaces (cc_confine_syscalls). */
#define _GNU_SOURCE /* syscall, O_PATH, close_range */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define CC_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CC_SANITIZED 1
#endif
#endif

#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#endif
#define CC_LL_NET_BIND_TCP        (1ULL << 0) /* ABI 4 */
#define CC_LL_NET_CONNECT_TCP     (1ULL << 1)
#define CC_LL_SCOPE_ABSTRACT_UNIX (1ULL << 0) /* ABI 6 */
#define CC_LL_SCOPE_SIGNAL        (1ULL << 1)

/* struct landlock_ruleset_attr as of ABI 6; the kernel reads the fields
 * its ABI knows, as told by the size passed. */
typedef struct ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
} ruleset_attr;

#define FS_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define FS_EXEC (FS_READ | LANDLOCK_ACCESS_FS_EXECUTE)
#define FS_WRITE                                                               \
    (FS_READ | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_REMOVE_DIR | \
     LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR |            \
     LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_TRUNCATE)
/* the rights that apply to a file rather than a directory */
#define FS_FILE_RIGHTS                                                         \
    (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE |            \
     LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_TRUNCATE |                \
     LANDLOCK_ACCESS_FS_IOCTL_DEV)

/* ---- Landlock ---------------------------------------------------------- */

static int landlock_abi(void)
{
    long v = syscall(SYS_landlock_create_ruleset, NULL, 0,
                     LANDLOCK_CREATE_RULESET_VERSION);
    return v < 0 ? 0 : (int)v;
}

/* Every filesystem right this ABI knows: what the server gives up unless
 * a rule gives it back. */
static uint64_t fs_rights(int abi)
{
    uint64_t all = LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |
                   LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |
                   LANDLOCK_ACCESS_FS_REMOVE_DIR |
                   LANDLOCK_ACCESS_FS_REMOVE_FILE |
                   LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |
                   LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |
                   LANDLOCK_ACCESS_FS_MAKE_FIFO |
                   LANDLOCK_ACCESS_FS_MAKE_BLOCK | LANDLOCK_ACCESS_FS_MAKE_SYM;
    if (abi >= 2)
        all |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        all |= LANDLOCK_ACCESS_FS_TRUNCATE;
    if (abi >= 5)
        all |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
    return all;
}

/* Allows access (within what the ruleset handles) beneath path, or on it
 * if it is a file. A path that does not exist is skipped. */
static pb_err allow(int ruleset, const char *path, uint64_t access,
                    uint64_t handled, pb_errmsg *why)
{
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? PB_OK
                               : pb_fail(why, PB_ERR_IO, "cannot open %s: %s",
                                         path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
        access &= FS_FILE_RIGHTS;
    struct landlock_path_beneath_attr rule = {access & handled, fd};
    int rc = syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH,
                     &rule, 0);
    int err = errno;
    close(fd);
    return rc ? pb_fail(why, PB_ERR_INTERNAL,
                        "Landlock refused a rule for %s: %s", path,
                        strerror(err))
              : PB_OK;
}

/* The first number after key (e.g. "Threads:") in a /proc status file, or
 * -1. */
static long status_field(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    char line[128];
    long n = -1;
    size_t len = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, len))
            n = strtol(line + len, NULL, 10);
    if (f)
        fclose(f);
    return n;
}

/* Landlock confines the calling thread and those it starts later: a
 * thread already running would stay free. */
static long thread_count(void)
{
    return status_field("/proc/self/status", "Threads:");
}

pb_err cc_confine_files(const cc_paths *paths, pb_errmsg *why)
{
    int abi = landlock_abi();
    if (abi < 1)
        return pb_fail(why, PB_ERR_INTERNAL, "this kernel has no Landlock (%s)",
                       errno == EOPNOTSUPP ? "disabled at boot"
                                           : "not built in");
    long threads = thread_count();
    if (threads != 1)
        return pb_fail(why, PB_ERR_INTERNAL,
                       "%ld threads where Landlock needs one to confine them "
                       "all",
                       threads);
    ruleset_attr attr = {fs_rights(abi), 0, 0};
    size_t size = sizeof attr.handled_access_fs;
    if (abi >= 4) {
        attr.handled_access_net = CC_LL_NET_BIND_TCP | CC_LL_NET_CONNECT_TCP;
        size = offsetof(ruleset_attr, scoped);
    }
    if (abi >= 6) {
        attr.scoped = CC_LL_SCOPE_ABSTRACT_UNIX | CC_LL_SCOPE_SIGNAL;
        size = sizeof attr;
    }
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    if (ruleset < 0)
        return pb_fail(why, PB_ERR_INTERNAL, "Landlock: %s", strerror(errno));
    pb_err e = PB_OK;
    const struct {
        const char *const *list;
        uint64_t access;
    } kinds[] = {{paths->read, FS_READ},
                 {paths->exec, FS_EXEC},
                 {paths->write, FS_WRITE}};
    for (size_t k = 0; k < 3 && !e; k++)
        for (size_t i = 0; i < CC_MAX_PATHS && kinds[k].list[i] && !e; i++)
            e = allow(ruleset, kinds[k].list[i], kinds[k].access,
                      attr.handled_access_fs, why);
    if (!e && paths->work_dir)
        e = allow(ruleset, paths->work_dir, FS_WRITE, attr.handled_access_fs,
                  why);
    /* and removing it when the server ends: an empty directory in /tmp or
     * /dev/shm of its own user (sticky), the one thing granted there */
    char parent[PATH_MAX];
    if (!e && paths->work_dir &&
        snprintf(parent, sizeof parent, "%s", paths->work_dir) <
            (int)sizeof parent &&
        strrchr(parent, '/') > parent) {
        *strrchr(parent, '/') = '\0';
        e = allow(ruleset, parent, LANDLOCK_ACCESS_FS_REMOVE_DIR,
                  attr.handled_access_fs, why);
    }
    /* its own /proc entry (the sanitizers read it) */
    if (!e)
        e = allow(ruleset, "/proc/self", FS_READ, attr.handled_access_fs, why);
    if (!e && (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
               syscall(SYS_landlock_restrict_self, ruleset, 0)))
        e = pb_fail(why, PB_ERR_INTERNAL, "Landlock: %s", strerror(errno));
    close(ruleset);
    return e;
}

/* ---- the uid -------------------------------------------------------------
 * A server started as root (a relay run as root) becomes nobody: root can
 * read every file whatever Landlock allows on a kernel without it, and
 * nobody owns none of the relay's (its key is 0600). The work directory
 * is handed over first, so that jobs can still write there. */

/* Whether any user may read path (and search every directory above it),
 * going by the mode bits: the user the server becomes owns none of them. */
static bool is_public(const char *path)
{
    char buf[PATH_MAX];
    if (!realpath(path, buf))
        return true; /* missing: nothing to lose (allow() skips it too) */
    struct stat st;
    if (stat(buf, &st))
        return false;
    mode_t need = S_ISDIR(st.st_mode) ? S_IROTH | S_IXOTH : S_IROTH;
    if ((st.st_mode & need) != need)
        return false;
    for (char *slash = strrchr(buf, '/'); slash && slash != buf;
         slash = strrchr(buf, '/')) {
        *slash = '\0';
        if (stat(buf, &st) || !(st.st_mode & S_IXOTH))
            return false;
    }
    return true;
}

pb_err cc_drop_root(const cc_paths *paths, pb_errmsg *why)
{
    if (geteuid() != 0 && getuid() != 0)
        return PB_OK; /* not root: nothing to drop */
    const char *const *lists[] = {paths->read, paths->exec};
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < CC_MAX_PATHS && lists[k][i]; i++)
            if (!is_public(lists[k][i]))
                return pb_fail(why, PB_ERR_INTERNAL,
                               "stays root: %s is not readable by everyone, "
                               "so %s could not compile (make it readable, "
                               "or run the relay as a user of its own)",
                               lists[k][i], CC_SERVER_USER);
    const struct passwd *pw = getpwnam(CC_SERVER_USER);
    uid_t uid = pw ? pw->pw_uid : 65534;
    gid_t gid = pw ? pw->pw_gid : 65534;
    if (paths->work_dir && chown(paths->work_dir, uid, gid))
        return pb_fail(why, PB_ERR_IO, "cannot give %s to %s: %s",
                       paths->work_dir, CC_SERVER_USER, strerror(errno));
    if (setgroups(0, NULL) || setresgid(gid, gid, gid) ||
        setresuid(uid, uid, uid))
        return pb_fail(why, PB_ERR_INTERNAL, "cannot become %s: %s",
                       CC_SERVER_USER, strerror(errno));
    if (setuid(0) == 0) /* must be impossible now */
        return pb_fail(why, PB_ERR_INTERNAL, "still root after becoming %s",
                       CC_SERVER_USER);
    return PB_OK;
}

/* ---- processes -----------------------------------------------------------
 * RLIMIT_NPROC bounds the tasks (processes and threads) of the real uid,
 * counted over the whole system, when one more is made; it does not hold
 * for root. So the server, once it is not root, may make CC_SERVER_TASKS
 * more than its uid has when it confines itself: a job that forks without
 * end (code in the compiler, a runaway program of the process backend)
 * stops there. Other processes of the same uid share that headroom (other
 * relays' servers, all nobody); a pid namespace or a cgroup would count
 * the server's alone. */

/* The tasks of uid now, from /proc; -1 if /proc cannot be read. */
static long tasks_of(uid_t uid)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -1;
    long n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        char path[64];
        if (e->d_name[0] < '1' || e->d_name[0] > '9' ||
            snprintf(path, sizeof path, "/proc/%s/status", e->d_name) >=
                (int)sizeof path)
            continue;
        long threads = status_field(path, "Threads:");
        if (status_field(path, "Uid:") == (long)uid && threads > 0)
            n += threads;
    }
    closedir(d);
    return n;
}

pb_err cc_limit_tasks(pb_errmsg *why)
{
    uid_t uid = getuid();
    if (uid == 0)
        return pb_fail(why, PB_ERR_INTERNAL,
                       "no limit on processes: RLIMIT_NPROC does not hold "
                       "for root");
    long n = tasks_of(uid);
    if (n < 0)
        return pb_fail(why, PB_ERR_IO, "no limit on processes: %s",
                       strerror(errno));
    struct rlimit r = {(rlim_t)n + CC_SERVER_TASKS,
                       (rlim_t)n + CC_SERVER_TASKS};
    struct rlimit now;
    if (!getrlimit(RLIMIT_NPROC, &now) && now.rlim_max < r.rlim_max)
        r = now; /* already lower: kept */
    if (setrlimit(RLIMIT_NPROC, &r))
        return pb_fail(why, PB_ERR_INTERNAL, "no limit on processes: %s",
                       strerror(errno));
    return PB_OK;
}

/* ---- seccomp ------------------------------------------------------------
 * System calls a compile job never makes and that would widen what code
 * running in it could reach: the network and every other socket (pathname
 * Unix sockets are beyond Landlock on today's kernels), other processes'
 * memory, the kernel's rarer interfaces (BPF, io_uring, perf, keys,
 * namespaces, mounts, modules), and leaving its process group (by which
 * the relay ends it and all it started, compiler/client.c). They fail
 * with EPERM. The sanitizers'
 * leak check ptraces its own threads at exit, so ptrace stays allowed in
 * a sanitizer build (Landlock still confines it to the server). */
#if defined(__x86_64__)
#define CC_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define CC_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

pb_err cc_confine_syscalls(pb_errmsg *why)
{
#ifdef CC_AUDIT_ARCH
    static const int denied[] = {
        __NR_socket,
        __NR_process_vm_readv,
        __NR_process_vm_writev,
#ifndef CC_SANITIZED
        __NR_ptrace,
#endif
        __NR_bpf,
        __NR_io_uring_setup,
        __NR_perf_event_open,
        __NR_userfaultfd,
        __NR_keyctl,
        __NR_add_key,
        __NR_request_key,
        __NR_unshare,
        __NR_setns,
        __NR_setsid, /* its process group is how the relay ends it whole */
        __NR_setpgid,
        __NR_mount,
        __NR_umount2,
        __NR_pivot_root,
        __NR_chroot,
        __NR_open_by_handle_at,
        __NR_kexec_load,
        __NR_init_module,
        __NR_finit_module,
        __NR_delete_module,
    };
    enum { N = sizeof denied / sizeof denied[0] };
    struct sock_filter f[N + 8];
    size_t n = 0;
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, arch));
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                          CC_AUDIT_ARCH, 1, 0);
    f[n++] =
        (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                          offsetof(struct seccomp_data, nr));
#if defined(__x86_64__) /* x32 calls are another table: none of them */
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K,
                                          __X32_SYSCALL_BIT, N + 1, 0);
#endif
    for (size_t i = 0; i < N; i++)
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
                                              (uint32_t)denied[i],
                                              (uint8_t)(N - i), 0);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
                                          SECCOMP_RET_ERRNO | EPERM);
    struct sock_fprog prog = {(unsigned short)n, f};
    /* every thread (TSYNC), not only this one */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC,
                &prog))
        return pb_fail(why, PB_ERR_INTERNAL, "seccomp: %s", strerror(errno));
    return PB_OK;
#else
    return pb_fail(why, PB_ERR_INTERNAL,
                   "no seccomp filter for this architecture");
#endif
}
