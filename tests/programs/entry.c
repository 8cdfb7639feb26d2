/* A freestanding static executable (no libc, no start files) that checks the
 * process-entry state the chainloader must hand over, as the x86-64 psABI
 * defines it: %rsp 16-byte aligned and pointing at argc, %rdx 0 (no atexit
 * function). It writes "entry ok argc=N" and exits 0, or names what is wrong
 * and exits 1. Built with: gcc -static -nostdlib -nostartfiles -fno-pie -no-pie */
__asm__(
    ".globl _start\n"
    "_start:\n"
    "    mov %rsp, %rdi\n"       /* arg 1: the entry stack pointer */
    "    mov %rdx, %rsi\n"       /* arg 2: the atexit register */
    "    and $-16, %rsp\n"
    "    call check\n"
    "    hlt\n");

static long sys3(long n, long a, long b, long c) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

static void say(const char *s) {
    long n = 0;
    while (s[n]) n++;
    sys3(1, 1, (long)s, n);
}

__attribute__((noreturn, used)) void check(unsigned long *sp, unsigned long rdx) {
    int bad = 0;
    if ((unsigned long)sp & 15) { say("misaligned stack\n"); bad = 1; }
    if (rdx != 0) { say("rdx not zero\n"); bad = 1; }
    if (!bad) {
        char msg[] = "entry ok argc=0\n";
        msg[14] = (char)('0' + (*sp % 10));
        say(msg);
    }
    sys3(231, bad, 0, 0);
    for (;;) {}
}
