/* Prints the descriptors it started with: "fds: 0 1 2 ...". Built dynamic
 * (through the stub) and static (the reference) by the nested-exec tests.
 * A program of its own, so that the probes' layout (which the hostile-image
 * corpus mutates) does not change with it. */
#include <fcntl.h>
#include <stdio.h>

int main(void) {
    printf("fds:");
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0) printf(" %d", fd);
    printf("\n");
    return 0;
}
