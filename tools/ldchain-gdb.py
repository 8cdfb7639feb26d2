# gdb support for programs started through the chainloader.
#
# The kernel's auxv (which gdb reads from /proc/PID/auxv) describes the
# chainloader, not ld.so: gdb finds no dynamic linker and loads no symbols.
# This script adds one command:
#
#   (gdb) ldchain-start
#
# It starts the inferior, lets the chainloader run until it hands control to
# the image it loaded (ld.so, or a static program), loads that image's
# symbols at its real address, and from then on loads the symbols of every
# object ld.so maps (the program, libc, ...) each time ld.so reports a change
# (_dl_debug_state). Pending breakpoints on `main`, `puts`, ... then resolve
# as usual. Use it like this:
#
#   gdb -x tools/ldchain-gdb.py -ex 'set breakpoint pending on' -ex ldchain-start \
#       -ex 'break main' -ex continue --args /chainloader 7 ld.so /bin/prog 7</lib64/ld-linux-x86-64.so.2

import os
import struct

import gdb


def _maps(pid):
    """(start, end, path) of every file mapping of process pid."""
    out = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].startswith("/"):
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                out.append((lo, hi, parts[5].strip()))
    return out


def _first_vaddr(path):
    """The page-aligned p_vaddr of the first PT_LOAD of an ELF file, or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF":
                return None
            is64 = head[4] == 2
            if is64:
                phoff, = struct.unpack_from("<Q", head, 32)
                phentsize, phnum = struct.unpack_from("<HH", head, 54)
            else:
                phoff, = struct.unpack_from("<I", head, 28)
                phentsize, phnum = struct.unpack_from("<HH", head, 42)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return None
    for i in range(phnum):
        p = table[i * phentsize:(i + 1) * phentsize]
        if struct.unpack_from("<I", p, 0)[0] == 1:
            vaddr = struct.unpack_from("<Q", p, 16)[0] if is64 else struct.unpack_from("<I", p, 8)[0]
            return vaddr & ~0xfff
    return None


class _Loader:
    def __init__(self, skip):
        self.loaded = set(skip)

    def load_new(self):
        pid = gdb.selected_inferior().pid
        bases = {}
        for lo, hi, path in _maps(pid):
            if path in self.loaded:
                continue
            bases[path] = min(lo, bases.get(path, lo))
        for path, base in sorted(bases.items(), key=lambda kv: kv[1]):
            first = _first_vaddr(path)
            if first is None:
                continue
            self.loaded.add(path)
            gdb.execute("add-symbol-file %s -o %#x" % (path, base - first), to_string=True)
            gdb.write("ldchain: symbols for %s at %#x\n" % (path, base))


class _DebugState(gdb.Breakpoint):
    """Runs at ld.so's _dl_debug_state (its r_brk): load what was mapped."""

    def __init__(self, loader):
        super().__init__("_dl_debug_state", internal=True)
        self.loader = loader

    def stop(self):
        self.loader.load_new()
        return False


class LdchainStart(gdb.Command):
    """Start a program under /chainloader and follow it into the image it loads."""

    def __init__(self):
        super().__init__("ldchain-start", gdb.COMMAND_RUNNING)

    def invoke(self, arg, from_tty):
        gdb.execute("set suppress-cli-notifications on")
        gdb.execute("starti", to_string=True)
        pid = gdb.selected_inferior().pid
        chainloader = os.readlink("/proc/%d/exe" % pid)
        ours = [(lo, hi) for lo, hi, path in _maps(pid) if path == chainloader]
        # The chainloader's last system call is prctl(PR_SET_NAME); after it
        # come only the auxv rewrite and the jump.
        catch = gdb.execute("catch syscall prctl", to_string=True)
        number = int(catch.split()[1])
        gdb.execute("continue", to_string=True)  # syscall entry
        gdb.execute("continue", to_string=True)  # syscall return
        gdb.execute("delete %d" % number)
        # Quiet: no frame line for each of the steps (gdb >= 12).
        gdb.execute("set suppress-cli-notifications on")
        try:
            for _ in range(100000):
                pc = int(gdb.parse_and_eval("$pc"))
                if not any(lo <= pc < hi for lo, hi in ours):
                    break
                gdb.execute("stepi", to_string=True)
            else:
                raise gdb.GdbError("ldchain: the chainloader never jumped")
        finally:
            gdb.execute("set suppress-cli-notifications off")
        loader = _Loader({chainloader})
        loader.load_new()
        try:
            _DebugState(loader)
        except gdb.error:
            pass  # a static program: no dynamic linker to follow
        gdb.write("ldchain: stopped at the entry of the loaded image (pc %#x)\n" % pc)


LdchainStart()
