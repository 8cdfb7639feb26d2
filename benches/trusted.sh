#!/usr/bin/env bash
# What hostile requests cost the trusted process: `ldchain run` runs each
# script of benches/trusted/ in a throwaway jail (bound read-only at /amp)
# and, once it prints "done", this reads ldchain's peak memory (VmHWM), its
# descriptors, and its exec service's CPU time (the ldchain-exec threads'
# utime + stime from /proc/PID/task/*/stat), then ends the run.
#
#   benches/trusted.sh LDCHAIN
set -euo pipefail
ldchain=$(realpath "$1")
here=$(cd "$(dirname "$0")/trusted" && pwd)
tick=$(getconf CLK_TCK)
probe() { # NAME SCRIPT [ENV=VALUE...] : runs, measures, prints a row
    local name=$1 script=$2; shift 2
    local out; out=$(mktemp)
    (ulimit -Sn 1024; exec "$ldchain" run --ro-bind "$here" /amp "${@/#/--env=}" -- /bin/bash "/amp/$script" >"$out" 2>&1) &
    local pid=$!
    for _ in $(seq 1 1200); do grep -q '^done' "$out" && break; sleep 0.25; done
    local hwm fds cpu
    hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")
    fds=$(ls "/proc/$pid/fd" | wc -l)
    cpu=$(cat /proc/"$pid"/task/*/stat 2>/dev/null | awk -v t="$tick" '$2 ~ /ldchain-exec/ { s += $14 + $15 } END { printf "%.2f", s / t }')
    echo "| $name | $(head -1 "$out") | $((hwm / 1024)) MB | $fds | $cpu s |"
    kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$out"
}
echo "| run | script said | ldchain's peak RSS | descriptors | service CPU |"
echo "|---|---|---|---|---|"
probe "1 amplifying request (≈50,000 relative entries, 4 KB cwd)" amplify.sh N=1
probe "10 amplifying requests" amplify.sh N=10
probe "100 wide cacheable requests (200 deep entries)" wide.sh
probe "10,000 execs from distinct directories, ulimit -Sn 1024" dirs.sh N=10000
