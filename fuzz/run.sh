#!/usr/bin/env bash
# Run every cargo-fuzz target for a bounded time (default 30 s each) on the
# committed corpus in fuzz/corpus/TARGET. New inputs go to a scratch
# directory, so the checkout is not changed; a crash fails the run and leaves
# its input in fuzz/artifacts/TARGET (turn it into a named regression test).
# Needs a nightly toolchain (sanitizers) and cargo-fuzz.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-30}
scratch=$(mktemp -d); trap 'rm -rf "$scratch"' EXIT
for t in elf_plan shebang ldpath ldsoconf plan_exec exec_request; do
    mkdir -p "$scratch/$t"
    echo "==> fuzz $t for ${secs}s"
    status=0
    cargo +nightly fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 >"$scratch/log" 2>&1 || status=$?
    grep -E '^(Done|stat::number_of_executed_units|INFO: seed corpus)' "$scratch/log" || true
    # A build error or a crash: show it and fail.
    if [ "$status" -ne 0 ] || ! grep -q '^Done' "$scratch/log"; then
        tail -40 "$scratch/log"
        echo "FUZZ FAILURE in $t (status $status)"
        exit 1
    fi
done
