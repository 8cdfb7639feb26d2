#!/usr/bin/env bash
# The sandbox's start: `ldchain run -- /bin/true` against bubblewrap doing
# the same isolation (PID and mount namespaces, /proc, /dev, read-only /usr
# and /etc, a tmpfs /tmp, a new session).
#
#   benches/startup.sh LDCHAIN [--no-timing]
#
# Prints markdown rows, then `run_true_syscalls=N` (strace -f -c, the whole
# run) and, with timing, `startup_ratio=R`: the median of N interleaved
# runs of each (N=${STARTUP_RUNS:-41}), ldchain's over bwrap's. Wall clock
# is reported, never budgeted: CI machines are shared.
set -euo pipefail
ldchain=$1 timing=${2:-yes}
bwrap_args=(--unshare-pid --proc /proc --dev /dev --ro-bind /usr /usr --ro-bind /etc /etc
    --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --tmpfs /tmp
    --new-session --die-with-parent /bin/true)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
calls() { awk '$NF == "total" { print ($4 ~ /^[0-9]+$/) ? $4 : $3 }' "$1"; }
strace -f -c -o "$tmp/l" "$ldchain" run -- /bin/true >/dev/null 2>&1
echo "| system calls, \`ldchain run -- /bin/true\` (strace -f -c) | $(calls "$tmp/l") |"
if command -v bwrap >/dev/null; then
    strace -f -c -o "$tmp/b" bwrap "${bwrap_args[@]}" >/dev/null 2>&1
    echo "| system calls, bwrap with the same isolation | $(calls "$tmp/b") |"
fi
echo "run_true_syscalls=$(calls "$tmp/l")"
if [ "$timing" = yes ] && command -v bwrap >/dev/null; then
    for _ in $(seq "${STARTUP_RUNS:-41}"); do
        a=$(date +%s%N); "$ldchain" run -- /bin/true; b=$(date +%s%N)
        bwrap "${bwrap_args[@]}"; c=$(date +%s%N)
        echo "$(( (b - a) / 1000 )) $(( (c - b) / 1000 ))"
    done > "$tmp/t"
    python3 - "$tmp/t" <<'PY'
import statistics, sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1])]
l = statistics.median(r[0] for r in rows); b = statistics.median(r[1] for r in rows)
print(f"| median wall clock: ldchain / bwrap ({len(rows)} interleaved pairs) | {l/1000:.2f} ms / {b/1000:.2f} ms |")
print(f"startup_ratio={l/b:.2f}")
PY
fi
