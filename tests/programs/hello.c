/* A small program for the gdb test: a breakpoint in main and in puts. */
#include <stdio.h>
int helper(int x) { return x * 2; }
int main(int argc, char **argv) { puts("hello from main"); return helper(argc) - 2 * argc; }
