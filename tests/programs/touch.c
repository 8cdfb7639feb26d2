/* Create the file named by argv[1]: a trace that the program ran. */
#include <fcntl.h>
int main(int argc, char **argv) { return argc < 2 || creat(argv[1], 0644) < 0; }
