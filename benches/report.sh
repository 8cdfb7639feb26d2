#!/usr/bin/env bash
# The cost of chain-loading, side by side, in one run (markdown).
#
#   benches/report.sh                 everything: deterministic figures and wall clock
#   benches/report.sh --deterministic instructions, system calls, sizes, memory (no timing)
#   benches/report.sh --check         the deterministic part, then fail if a budget in
#                                     benches/budgets.toml is exceeded (what CI runs)
#
# Instructions: valgrind --tool=callgrind (user space, whole process). System
# calls: strace -f -c (whole process, the exec included). Both run with an
# empty environment, so they are repeatable.
#
# Host dependence of the budgeted figures: the warm plan runs in a namespace
# built below (fixed files), and nested.sh builds its own jails. The
# chainloader's added instructions and system calls are differences against
# the host's own ld.so run directly, so its work cancels out; only its
# program headers (how many PT_LOADs to map) still come from the host's glibc.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-full}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# A figure's budget or target in benches/budgets.toml.
budget() { awk -F'=' -v k="$1" '$1 ~ "^"k"[ ]*$" { gsub(/[ \t]|#.*/, "", $2); print $2 }' benches/budgets.toml; }

cargo build -q --release
# .cargo/config.toml names the target, so builds are under its triple.
rel=target/x86_64-unknown-linux-gnu/release
$rel/ldchain install "$tmp" >/dev/null
cl=$tmp/chainloader
ldso=/lib64/ld-linux-x86-64.so.2
bash=$(command -v bash)
gcc -static -O2 -o "$tmp/static-true" -x c - <<<'int main(void) { return 0; }'
gcc -static -nostdlib -nostartfiles -fno-pie -no-pie -O1 -o "$tmp/execveat" benches/helpers/execveat.c

# The "calls" column of strace -c's total line (the 4th field; "errors" may be empty).
calls() { awk '$NF == "total" { print $4 }' "$1"; }
syscalls() { env -i strace -f -c -o "$tmp/s" "$@" >/dev/null 2>&1 || true; calls "$tmp/s"; }
# From /: ld.so's count moved with the working directory's path (by 9
# between two clones of the repository).
# (--dump-instr=yes: per instruction, which own_instrs reads; the total is the same.)
instrs() { (cd / && env -i valgrind --tool=callgrind --dump-instr=yes --callgrind-out-file="$tmp/cg" "$@" 2>&1 >/dev/null) | awk '/Collected/ {print $4}'; }
# The instructions the last instrs run executed inside the chainloader's
# mapping (valgrind maps a static PIE at 0x108000). "added" also holds how
# ld.so's own count moves with the stack's layout: by up to 290 for the
# same blob under another file name (BENCHMARKS.md).
own_instrs() {
    python3 - "$tmp/cg" <<'PY'
import re, sys
addr, skip, own = 0, False, 0
for line in open(sys.argv[1]):
    if line.startswith("calls="):
        skip = True  # the next cost line is a call's inclusive cost
        continue
    m = re.match(r"(0x[0-9a-f]+|[+-]\d+|\*)\s+\S+\s+(\d+)", line)
    if not m:
        continue
    a = m.group(1)
    addr = int(a, 16) if a.startswith("0x") else addr + int(a) if a != "*" else addr
    if skip:
        skip = False
    elif 0x108000 <= addr < 0x118000:
        own += int(m.group(2))
print(own)
PY
}
row() { # label, scenario, base-syscalls, base-instrs, command...
    local label=$1 scen=$2 bs=$3 bi=$4; shift 4
    local s i; s=$(syscalls "$@"); i=$(instrs "$@")
    if [ -n "$i" ]; then
        echo "| $label | $scen | $s | $((s - bs)) | $i | $((i - bi)) |"
    else
        echo "| $label | $scen | $s | $((s - bs)) | n/a (valgrind cannot follow execveat) | |"
    fi
    last_s=$s; last_i=${i:-0}
}

echo "## Deterministic figures"
echo
echo "System calls and user-space instructions per exec, whole process; \"added\" is against (2), running ld.so directly."
echo "System calls: \`env -i strace -f -c COMMAND\`; instructions: \`env -i valgrind --tool=callgrind --dump-instr=yes COMMAND\`, from /; /chainloader as \`ldchain install DIR\` writes it."
echo
echo "| program | scenario | system calls | added | instructions | added |"
echo "|---|---|---|---|---|---|"
for prog in "/bin/true" "$bash -c true"; do
    # shellcheck disable=SC2086
    set -- $prog
    s2=$(syscalls "$ldso" "$@"); i2=$(instrs "$ldso" "$@")
    row "${prog/$bash/bash}" "(1) kernel execs it" "$s2" "$i2" "$@"
    echo "| ${prog/$bash/bash} | (2) exec ld.so PROGRAM | $s2 | 0 | $i2 | 0 |"
    row "${prog/$bash/bash}" "(3) /chainloader FD ld.so PROGRAM" "$s2" "$i2" "$cl" 3 "$ldso" "$@" 3<"$ldso"
    if [ "$prog" = /bin/true ]; then added_s=$((last_s - s2)); added_i=$((last_i - i2)); own_i=$(own_instrs); fi
    row "${prog/$bash/bash}" "(4) execveat(ld.so fd)" "$s2" "$i2" "$tmp/execveat" "$ldso" "$@" 3<"$ldso"
done
[ "${own_i:-0}" -gt 0 ] || { echo "no instructions found at the chainloader's load address under valgrind" >&2; exit 1; }
s5=$(syscalls "$tmp/static-true"); i5=$(instrs "$tmp/static-true")
echo "| static true | (5a) kernel execs it | $s5 | 0 | $i5 | 0 |"
row "static true" "(5b) /chainloader FD it" "$s5" "$i5" "$cl" 3 static-true 3<"$tmp/static-true"

echo
echo "The chainloader's own instructions in (3) for /bin/true (inside its mapping; callgrind --dump-instr=yes): $own_i"
echo
echo "## Sizes and memory"
echo
echo "Sizes: \`stat -c %s\` of the files \`ldchain install DIR\` writes. Memory: \`/proc/self/maps\` of \`/bin/cat\` run through the chainloader."
echo
echo "| figure | value |"
echo "|---|---|"
declare -A size
for f in "$tmp"/chainloader*; do
    arch=$(basename "$f"); arch=${arch#chainloader}; arch=${arch#-}; arch=${arch:-x86_64}
    size[$arch]=$(stat -c %s "$f")
    echo "| chainloader size, $arch (bytes) | ${size[$arch]} |"
done
left=0
while read -r range _ _ _ _ path; do
    [ "$path" = "$cl" ] || continue
    left=$(( left + (16#${range#*-} - 16#${range%-*}) / 1024 ))
done < <(env -i "$cl" 3 "$ldso" /bin/cat /proc/self/maps 3<"$ldso")
echo "| memory still mapped from the chainloader after ld.so runs (KiB) | $left |"

# A warm plan_exec is measured on a namespace built here, never on the
# host's root: its /etc/ld.so.conf.d (one more conf file from a package)
# would change the count. Debian's layout, fixed: ld.so.conf including two
# conf.d files naming three directories, /bin/true, libc, ld.so.
ns=$tmp/ns
mkdir -p "$ns/bin" "$ns/lib/x86_64-linux-gnu" "$ns/lib64" "$ns/etc/ld.so.conf.d"
cp /bin/true "$ns/bin/true"
cp /lib/x86_64-linux-gnu/libc.so.6 "$ns/lib/x86_64-linux-gnu/"
cp "$(readlink -f "$ldso")" "$ns/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
ln -s ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$ns/lib64/ld-linux-x86-64.so.2"
echo 'include /etc/ld.so.conf.d/*.conf' > "$ns/etc/ld.so.conf"
echo '/usr/local/lib' > "$ns/etc/ld.so.conf.d/libc.conf"
printf '%s\n' /usr/local/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu \
    > "$ns/etc/ld.so.conf.d/x86_64-linux-gnu.conf"
cargo build -q --release -p ldchain-resolver --example plan
# Warm: the difference between 110 and 10 plans (a resolver keeps plans
# from its second on, so the first few make and watch them), per plan.
warm_calls() { # ROOT: system calls per warm plan of /bin/true
    env -i PLAN_REPEAT=10 strace -f -c -o "$tmp/p10" $rel/examples/plan "$1" /bin/true >/dev/null
    env -i PLAN_REPEAT=110 strace -f -c -o "$tmp/p110" $rel/examples/plan "$1" /bin/true >/dev/null
    echo $(( ($(calls "$tmp/p110") - $(calls "$tmp/p10")) / 100 ))
}
warm=$(warm_calls "$ns")
echo "| system calls per warm plan_exec (/bin/true in the bench's namespace) | $warm |"
warm_host=$(warm_calls /)
echo "| system calls per warm plan_exec (/bin/true on the host's root: \`strace -f -c\` of \`PLAN_REPEAT=110\` minus \`=10\` of \`$rel/examples/plan / /bin/true\`, / 100) | $warm_host |"
# The exec service answering 16 requests that were all waiting (it is
# stopped while they connect and send, then traced): the look for changes
# and the comparison of held files are made once for the batch.
queued=$(SERVICE_LOAD_QUEUED=16 SERVICE_LOAD_ROOT="$ns" cargo bench -q --bench service_load 2>/dev/null | sed -n 's/.*service_queued_syscalls=\([0-9]*\).*/\1/p')
echo "| system calls of the exec service answering 16 waiting requests in the bench's namespace (\`SERVICE_LOAD_QUEUED=16 SERVICE_LOAD_ROOT=NS cargo bench --bench service_load\`: stopped while they connect, then \`strace -f -c\`; 210 when each answer looked for changes itself) | $queued |"

echo
echo "## Nested exec (interp mode)"
echo
echo "| figure | value |"
echo "|---|---|"
nested_timing=--no-timing
[ "$mode" = full ] && nested_timing=yes
benches/nested.sh $rel/ldchain "$tmp" "$nested_timing" > "$tmp/nested"
grep '^|' "$tmp/nested"
nested_added=$(sed -n 's/.*nested_added_syscalls=\([0-9-]*\).*/\1/p' "$tmp/nested")
nested_llp_added=$(sed -n 's/.*nested_llp_added_syscalls=\([0-9-]*\).*/\1/p' "$tmp/nested")
if [ "$mode" = full ]; then
    # Wall clock is compared, never failed on: CI machines are shared.
    echo
    for kind in nested nested_llp; do
        ratio=$(sed -n "s/.*${kind}_wall_ratio=\([0-9.]*\).*/\1/p" "$tmp/nested")
        max=$(budget "${kind}_wall_ratio_max")
        verdict=$(awk -v r="$ratio" -v m="$max" 'BEGIN { print (r <= m) ? "within" : "OVER" }')
        label="interp mode / real ld.so"
        [ "$kind" = nested_llp ] && label="$label, LD_LIBRARY_PATH exported"
        echo "$label: $ratio ($verdict the $max in benches/budgets.toml)"
    done
    echo "(command: benches/nested.sh $rel/ldchain TMPDIR)"
fi

echo
echo "## The sandbox's start"
echo
echo "| figure | value |"
echo "|---|---|"
startup_timing=--no-timing
[ "$mode" = full ] && startup_timing=yes
benches/startup.sh $rel/ldchain "$startup_timing" > "$tmp/startup"
grep '^|' "$tmp/startup"
run_true=$(sed -n 's/^run_true_syscalls=\([0-9]*\)$/\1/p' "$tmp/startup")
if [ "$mode" = full ]; then
    echo
    echo "ldchain run / bwrap, median start: $(sed -n 's/^startup_ratio=//p' "$tmp/startup")"
fi

if [ "$mode" = full ]; then
    echo
    echo "## Wall clock"
    echo
    cargo bench -q --bench exec 2>/dev/null | sed -n '/^Wall clock/,$p'
    echo
    echo '`cargo bench --bench resolver` (warm plans and fork + exec + wait of /bin/true, sampled in turn):'
    echo
    cargo bench -q --bench resolver 2>/dev/null > "$tmp/plans"
    sed -n '/^plan_exec/,$p' "$tmp/plans"
    # The issue's target for a warm plan on the host's root (its
    # ld.so.conf.d varies, so not a CI budget): compared, never failed on.
    share=$(sed -n 's/.*warm plan \/ fork+exec+wait: \([0-9.]*\) %.*/\1/p' "$tmp/plans")
    max_calls=$(budget plan_exec_warm_host_syscalls_max)
    max_share=$(budget plan_exec_warm_share_max_percent)
    echo
    echo "warm plan on the host's root: $warm_host system calls ($(awk -v v="$warm_host" -v b="$max_calls" 'BEGIN { print (v <= b) ? "within" : "OVER" }') the <= $max_calls in benches/budgets.toml), ${share:-NOT MEASURED} % of a fork + exec + wait ($(awk -v v="${share:-1e9}" -v b="$max_share" 'BEGIN { print (v <= b) ? "within" : "OVER" }') the <= $max_share)"
    echo
    echo "## The exec service under load"
    echo
    echo '`cargo bench --bench service_load -- 64 5` (`ldchain serve --root /`, 64 client threads, LD_LIBRARY_PATH in every request):'
    echo
    cargo bench -q --bench service_load -- 64 5 2>/dev/null > "$tmp/load"
    sed -n '/^  a request not answered\|^ldchain serve/,/^  service RSS after/p' "$tmp/load"
    # The issue's target ("at least 20,000 answers/s and p99 at most 2 ms",
    # 64 clients), compared, never failed on (wall clock). Printed for both
    # loads: at the target's rate (open loop), and at saturation (closed
    # loop), whose p99 is the queue of 64 requests always in flight, printed
    # beside the protocol's floor measured in the same run.
    echo
    closed=$(grep '^service_load: answers_per_s=' "$tmp/load" || true)
    open=$(grep '^service_load: offered=20000 ' "$tmp/load" || true)
    field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<" $2"; }
    verdict() { awk -v v="$1" -v b="$2" -v op="$3" 'BEGIN { ok = (op == "min") ? v >= b : v <= b; print ok ? "within" : "OUTSIDE" }'; }
    min_rate=$(budget service_load_answers_per_s_min)
    max_p99=$(budget service_load_p99_us_max)
    if [ -z "$closed" ] || [ -z "$open" ]; then
        echo "the exec service under load: NOT MEASURED (cargo bench --bench service_load -- 64 5 failed)"
    else
        rate=$(field answers_per_s "$closed") p99=$(field p99_us "$closed")
        echo "at the target's rate, 20000 requests/s from 64 clients: $(field answers_per_s "$open") answers/s, p99 $(field p99_us "$open") µs ($(verdict "$(field p99_us "$open")" "$max_p99" max) the <= $max_p99 in benches/budgets.toml)"
        echo "closed loop, 64 clients: $rate answers/s ($(verdict "$rate" "$min_rate" min) the >= $min_rate), p99 $p99 µs ($(verdict "$p99" "$max_p99" max) the <= $max_p99); the protocol's floor, same run: $(field floor_answers_per_s "$closed") answers/s, p99 $(field floor_p99_us "$closed") µs; ldchain / floor p99: $(field p99_vs_floor "$closed")"
    fi
fi

if [ "$mode" = --check ]; then
    fail=0
    check() { # name, value, budget
        if [ "$2" -gt "$3" ]; then echo "BUDGET EXCEEDED: $1 = $2 > $3"; fail=1; else echo "budget ok: $1 = $2 <= $3"; fi
    }
    echo
    check chainloader_added_instructions "$added_i" "$(budget chainloader_added_instructions)"
    check chainloader_own_instructions "$own_i" "$(budget chainloader_own_instructions)"
    check chainloader_added_syscalls "$added_s" "$(budget chainloader_added_syscalls)"
    for arch in "${!size[@]}"; do
        check "chainloader_size_$arch" "${size[$arch]}" "$(budget "chainloader_size_$arch")"
    done
    check plan_exec_warm_syscalls "$warm" "$(budget plan_exec_warm_syscalls)"
    if [ -z "$queued" ]; then
        echo "NOT MEASURED: service_queued_syscalls (SERVICE_LOAD_QUEUED=16 cargo bench --bench service_load failed)"; fail=1
    else
        check service_queued_syscalls "$queued" "$(budget service_queued_syscalls)"
    fi
    check nested_added_syscalls "$nested_added" "$(budget nested_added_syscalls)"
    check nested_llp_added_syscalls "$nested_llp_added" "$(budget nested_llp_added_syscalls)"
    check run_true_syscalls "$run_true" "$(budget run_true_syscalls)"
    exit $fail
fi
