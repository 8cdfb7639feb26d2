#!/usr/bin/env bash
# The test suite, with one closing line that counts skips too:
#
#   tools/test.sh [cargo test args...]
#
# cargo reports a test that skipped (a missing tool, not root) as passed;
# tests/support's skip() also appends a line to $LDCHAIN_SKIP_LOG, so the
# summary says how many of the "passed" did not run. Under CI=true a skip is
# a failure instead, so CI's skipped count is always 0.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp) skips=$(mktemp)
trap 'rm -f "$log" "$skips"' EXIT
LDCHAIN_SKIP_LOG=$skips cargo test --workspace "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [ -s "$skips" ]; then
    echo
    echo "Skipped (reported as passed by cargo):"
    sed 's/^/  /' "$skips"
fi
awk -v s="$(wc -l < "$skips")" '
    /^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
    END { printf "\ntests: %d passed, %d failed, %d skipped\n", p - s, f, s; if (p - s <= 0 || f > 0) exit 1 }' "$log" || status=1
exit "$status"
