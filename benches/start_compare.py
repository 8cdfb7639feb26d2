#!/usr/bin/env python3
"""Compare the sandbox's start of several ldchain builds with bubblewrap's,
in one run: `ldchain run -- /bin/true` for each build and bwrap doing the
same isolation (PID and mount namespaces, /proc, /dev, read-only /usr and
/etc, a tmpfs /tmp, a new session), in a new shuffled order each round, so
that a host whose speed moves from one minute to the next moves all of them
alike.

    benches/start_compare.py NAME=LDCHAIN [NAME=LDCHAIN...]

ROUNDS (default 301) rounds. Prints, for each: its median wall clock, the
ratio of its median to bwrap's, and the median of the per-round ratios.
Wall clock: printed, never asserted."""
import os
import random
import statistics
import subprocess
import sys
import time

BWRAP = ["bwrap", "--unshare-pid", "--proc", "/proc", "--dev", "/dev",
         "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc",
         "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
         "--symlink", "usr/lib64", "/lib64", "--tmpfs", "/tmp",
         "--new-session", "--die-with-parent", "/bin/true"]


def main():
    if len(sys.argv) < 2 or any("=" not in a for a in sys.argv[1:]):
        sys.exit(__doc__)
    rounds = int(os.environ.get("ROUNDS", "301"))
    cmds = {"bwrap": BWRAP}
    for arg in sys.argv[1:]:
        name, path = arg.split("=", 1)
        cmds[name] = [path, "run", "--", "/bin/true"]
    times = {name: [] for name in cmds}
    for _ in range(rounds):
        order = list(cmds)
        random.shuffle(order)
        for name in order:
            start = time.perf_counter()
            done = subprocess.run(cmds[name], stdout=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - start)
            if done.returncode != 0:
                sys.exit(f"{name}: exit status {done.returncode}")
    base = statistics.median(times["bwrap"])
    for name, t in times.items():
        median = statistics.median(t)
        pairs = statistics.median(x / y for x, y in zip(t, times["bwrap"]))
        print(f"{name:10s} median {median * 1e3:.2f} ms  ratio of medians {median / base:.3f}"
              f"  median round ratio {pairs:.3f}")


main()
