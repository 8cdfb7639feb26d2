#!/usr/bin/env bash
# Deterministic cost of chain-loading glibc's ld.so, against running ld.so
# directly: file size, system calls (strace -f -c) and user-space
# instructions (valgrind --tool=callgrind). Usage: benches/chainload-cost.sh [PROGRAM]
set -euo pipefail
cd "$(dirname "$0")/.."
program=${1:-/bin/true}
ldso=/lib64/ld-linux-x86-64.so.2   # the PT_INTERP path: same argv[0] both ways
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cargo run -q --release -- install "$tmp" >/dev/null
cl=$tmp/chainloader

syscalls() { env -i strace -f -c -o "$tmp/s" "$@" >/dev/null 2>&1 || true; awk '/total$/ {print $(NF-2)}' "$tmp/s"; }
instrs() { env -i valgrind --tool=callgrind --callgrind-out-file="$tmp/cg" "$@" 2>&1 >/dev/null | awk '/Collected/ {print $4}'; }

s_direct=$(syscalls "$ldso" "$program")
s_chain=$(syscalls "$cl" 3 "$ldso" "$program" 3<"$ldso")
i_direct=$(instrs "$ldso" "$program")
i_chain=$(instrs "$cl" 3 "$ldso" "$program" 3<"$ldso")
echo "| figure | ld.so directly | through the chainloader | added |"
echo "|---|---|---|---|"
echo "| system calls | $s_direct | $s_chain | $((s_chain - s_direct)) |"
echo "| user-space instructions | $i_direct | $i_chain | $((i_chain - i_direct)) |"
echo "| chainloader size (bytes) | | $(stat -c %s "$cl") | |"

# The resolver: system calls of one warm plan_exec for $program on /,
# from the difference between 1 and 101 warm plans.
cargo build -q --release -p ldchain-resolver --example plan
plan=target/release/examples/plan
PLAN_REPEAT=0 strace -f -c -o "$tmp/p0" "$plan" / "$program" >/dev/null
PLAN_REPEAT=100 strace -f -c -o "$tmp/p100" "$plan" / "$program" >/dev/null
p0=$(awk '/total$/ {print $(NF-2)}' "$tmp/p0"); p100=$(awk '/total$/ {print $(NF-2)}' "$tmp/p100")
echo "| system calls per warm plan_exec | | $(( (p100 - p0) / 100 )) | |"
