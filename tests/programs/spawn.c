/* A parent for ldchain's nested-exec tests: starts PROGRAM and reports how
 * it ended. Built static (glibc and musl) and dynamic.
 * Usage: spawn MODE PROGRAM [ARGS...]
 *   libc  fork, then execv(PROGRAM, ARGS) from libc
 *   raw   fork, then syscall(SYS_execve, ...) with no libc wrapper
 *   drop  fork, setgid/setuid(65534), then execv (for setuid children)
 *   env   fork, then execve with the environment given as ARGS up to "--"
 * Prints "spawn: status N" (or "spawn: signal N") after the child ends. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: spawn libc|raw|drop|env PROGRAM [ARGS...]\n");
        return 64;
    }
    const char *mode = argv[1];
    char **args = argv + 2;
    char **envp = environ;
    if (!strcmp(mode, "env")) {
        /* spawn env NAME=VALUE... -- PROGRAM ARGS... */
        envp = argv + 2;
        int i = 2;
        while (i < argc && strcmp(argv[i], "--")) i++;
        if (i >= argc - 1) return 64;
        argv[i] = NULL;
        args = argv + i + 1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 70; }
    if (pid == 0) {
        if (!strcmp(mode, "drop") && (setgid(65534) || setuid(65534))) { perror("setuid"); _exit(71); }
        if (!strcmp(mode, "raw"))
            syscall(SYS_execve, args[0], args, envp);
        else
            execve(args[0], args, envp);
        fprintf(stderr, "spawn: exec %s: %s\n", args[0], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0) { perror("waitpid"); return 70; }
    if (WIFEXITED(status)) printf("spawn: status %d\n", WEXITSTATUS(status));
    else printf("spawn: signal %d\n", WTERMSIG(status));
    return 0;
}
