/* A test program for ldchain: prints facts about how it was started.
 * Built by the test harness with gcc, musl-gcc, -static and -static-pie.
 * Usage: probe COMMAND [ARGS...]; see main() for the commands. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/syscall.h>
#include <link.h>
#include <unistd.h>

extern char **environ;

/* The linker's symbols for this program's own ELF header and entry point:
 * what the kernel's auxv would describe had it exec'd this program. */
extern const ElfW(Ehdr) __ehdr_start __attribute__((visibility("hidden")));
extern char _start[];

/* Large enough that its end and the start of the brk area are far apart. */
static char big_bss[256 << 20];

static int slurp(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t n = 0;
    ssize_t r;
    while (n < cap - 1 && (r = read(fd, buf + n, cap - 1 - n)) > 0) n += (size_t)r;
    close(fd);
    buf[n] = 0;
    return (int)n;
}

static int count_lines_containing(const char *text, const char *needle) {
    int count = 0;
    for (const char *p = text; (p = strstr(p, needle)); p++) count++;
    return count;
}

int main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "args";
    static char buf[1 << 20];
    if (!strcmp(cmd, "args")) {
        printf("argc=%d\n", argc);
        for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    } else if (!strcmp(cmd, "env")) {
        int n = 0;
        for (char **e = environ; *e; e++, n++) printf("env=%s\n", *e);
        printf("envc=%d\n", n);
    } else if (!strcmp(cmd, "exit")) {
        printf("exiting with %s\n", argv[2]);
        fflush(stdout);
        exit(atoi(argv[2]));
    } else if (!strcmp(cmd, "maps")) {
        if (slurp("/proc/self/maps", buf, sizeof buf) < 0) { perror("maps"); return 2; }
        char *line = strtok(buf, "\n");
        for (; line; line = strtok(NULL, "\n"))
            if (strstr(line, "[stack]")) printf("stack=%.4s\n", strchr(line, ' ') + 1);
    } else if (!strcmp(cmd, "brk")) {
        /* Touch the bss, grow the heap with brk(2) directly (musl's sbrk
         * refuses non-zero increments), use it, and count [heap] mappings. */
        big_bss[0] = 1;
        big_bss[sizeof big_bss - 1] = 1;
        char *cur = (char *)syscall(SYS_brk, 0);
        char *want = cur + (4 << 20);
        char *got = (char *)syscall(SYS_brk, want);
        if (got != want) { printf("brk failed\n"); return 3; }
        memset(cur, 0x5a, 4 << 20);
        if (slurp("/proc/self/maps", buf, sizeof buf) < 0) { perror("maps"); return 2; }
        printf("heaps=%d\n", count_lines_containing(buf, "[heap]"));
        printf("bss_below_brk=%d\n", (unsigned long)&big_bss[sizeof big_bss - 1] < (unsigned long)cur);
    } else if (!strcmp(cmd, "fd")) {
        int fd = atoi(argv[2]);
        int r = fcntl(fd, F_GETFD);
        printf("fd %d %s\n", fd, r < 0 && errno == EBADF ? "closed" : "open");
    } else if (!strcmp(cmd, "cmdline")) {
        int n = slurp("/proc/self/cmdline", buf, sizeof buf);
        for (int i = 0; i < n; i++) if (!buf[i]) buf[i] = '|';
        printf("cmdline=%s\n", buf);
    } else if (!strcmp(cmd, "comm")) {
        slurp("/proc/self/comm", buf, sizeof buf);
        printf("comm=%s", buf);
    } else if (!strcmp(cmd, "mapsall")) {
        if (slurp("/proc/self/maps", buf, sizeof buf) < 0) { perror("maps"); return 2; }
        fputs(buf, stdout);
    } else if (!strcmp(cmd, "auxv")) {
        /* The auxv entries that describe the program, printed as "own" when
         * they describe this image and otherwise independently of where
         * things were mapped, so that a run through the chainloader can be
         * compared with a kernel run line by line. */
        unsigned long phdr = getauxval(AT_PHDR), entry = getauxval(AT_ENTRY);
        unsigned long own_phdr = (unsigned long)&__ehdr_start + __ehdr_start.e_phoff;
        printf("AT_BASE=%#lx\n", getauxval(AT_BASE));
        if (phdr == own_phdr) printf("AT_PHDR=own\n"); else printf("AT_PHDR=foreign\n");
        printf("AT_PHENT=%lu\n", getauxval(AT_PHENT));
        if (getauxval(AT_PHNUM) == __ehdr_start.e_phnum) printf("AT_PHNUM=own\n");
        else printf("AT_PHNUM=%lu (own %u)\n", getauxval(AT_PHNUM), __ehdr_start.e_phnum);
        if (entry == (unsigned long)_start) printf("AT_ENTRY=own\n");
        else printf("AT_ENTRY=AT_PHDR%+ld\n", (long)(entry - phdr));
    } else if (!strcmp(cmd, "exe")) {
        ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
        if (n < 0) { perror("exe"); return 2; }
        buf[n] = 0;
        printf("exe=%s\n", buf);
    } else if (!strcmp(cmd, "kill")) {
        fflush(stdout);
        kill(getpid(), atoi(argv[2]));
    } else {
        fprintf(stderr, "probe: unknown command %s\n", cmd);
        return 64;
    }
    return 0;
}
