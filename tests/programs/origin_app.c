/* A program with RUNPATH $ORIGIN/../lib that needs liborigin.so: it starts
 * only if ld.so takes $ORIGIN from the file's own directory. */
#include <stdio.h>
const char *origin_lib_greeting(void);
int main(int argc, char **argv) {
    (void)argc;
    printf("%s\nargv[0]=%s\n", origin_lib_greeting(), argv[0]);
    return 0;
}
