/* run_cmd.h — running a program the way a user would, for the C tests
 * that check what a command says: argv[0] with argv (NULL-terminated, at
 * most 15 arguments), stdin from /dev/null; what it writes to stderr —
 * and to stdout too with with_stdout — is read into out (cap bytes,
 * NUL-terminated, the rest dropped). Returns its exit status, or -1 if it
 * did not exit (a signal) or could not be started. */
#ifndef PB_TEST_RUN_CMD_H
#define PB_TEST_RUN_CMD_H

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static inline int run_cmd(const char *const *argv, bool with_stdout, char *out,
                          size_t cap)
{
    int p[2];
    out[0] = '\0';
    if (pipe(p))
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(with_stdout ? p[1] : null, 1);
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        execv(argv[0], (char **)argv);
        _exit(127);
    }
    close(p[1]);
    size_t n = 0;
    ssize_t got;
    while (n + 1 < cap && (got = read(p[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)got;
    out[n] = '\0';
    close(p[0]);
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

#endif
