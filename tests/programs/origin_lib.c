/* A shared library found only through its program's RUNPATH $ORIGIN/../lib
 * ($ORIGIN through a symlink). */
const char *origin_lib_greeting(void) { return "hello from liborigin"; }
