#!/usr/bin/env bash
# The cost of nested exec (interp mode), against the same jail with the real
# ld.so at PT_INTERP. Called by benches/report.sh; prints markdown rows and,
# on the last line, "nested_added_syscalls=N nested_wall_ratio=R".
#
#   benches/nested.sh LDCHAIN TMPDIR [--no-timing]
#
# Two --root jails with the same files (dash as /bin/sh, /bin/true, libc):
#   real:   glibc's ld.so at /lib64/ld-linux-x86-64.so.2 (the kernel runs it)
#   interp: glibc's ld.so only at /opt/ld (--ldso-path); ldchain places the
#           stub at /lib64 in its private view and serves every exec
# Both are started with `ldchain run --root`, so the setup cost is the same.
set -euo pipefail
ldchain=$1 tmp=$2 timing=${3:-yes}
ldso=$(readlink -f /lib64/ld-linux-x86-64.so.2)
# As root, ldchain run runs the jail's programs as uid 65534: the jails (and
# the directory holding them) must be searchable by it.
chmod 755 "$tmp"

make_jail() { # dir, where-ld.so-goes
    mkdir -p "$1/bin" "$1/lib/x86_64-linux-gnu" "$1/tmp" "$(dirname "$1$2")"
    cp /bin/dash "$1/bin/sh"
    cp /bin/true "$1/bin/true"
    cp /lib/x86_64-linux-gnu/libc.so.6 "$1/lib/x86_64-linux-gnu/"
    cp "$ldso" "$1$2"
}
make_jail "$tmp/real" /lib64/ld-linux-x86-64.so.2
make_jail "$tmp/interp" /opt/ld/ld-linux-x86-64.so.2

loop() { # n: the shell loop, as sh -c's script
    echo "i=0; while [ \$i -lt $1 ]; do /bin/true; i=\$((i+1)); done"
}
run_in() { # jail, n
    "$ldchain" run --root "$tmp/$1" --ldso-path /opt/ld -i -- /bin/sh -c "$(loop "$2")"
}

# System calls per exec, whole tree (ldchain, its service threads, sh, the
# children), from the difference between 100 and 0 execs.
calls() { awk '$NF == "total" { print $4 }' "$1"; }
per_exec() { # jail
    strace -f -c -o "$tmp/n0" "$ldchain" run --root "$tmp/$1" --ldso-path /opt/ld -i -- /bin/sh -c "$(loop 0)"
    strace -f -c -o "$tmp/n100" "$ldchain" run --root "$tmp/$1" --ldso-path /opt/ld -i -- /bin/sh -c "$(loop 100)"
    echo $(( ($(calls "$tmp/n100") - $(calls "$tmp/n0")) / 100 ))
}
s_real=$(per_exec real)
s_interp=$(per_exec interp)
echo "| system calls per exec of /bin/true from sh, real ld.so at PT_INTERP | $s_real |"
echo "| system calls per exec of /bin/true from sh, interp mode (stub + exec service) | $s_interp |"
added=$((s_interp - s_real))
echo "| system calls interp mode adds per exec (stub and service together) | $added |"

ratio=n/a
if [ "$timing" = yes ]; then
    # 300 execs, 5 samples each, alternating; median wall clock of each.
    ms() { local t0 t1; t0=$(date +%s%N); run_in "$1" 300; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
    run_in real 10; run_in interp 10 # warm caches
    real=() interp=()
    for _ in 1 2 3 4 5; do real+=("$(ms real)"); interp+=("$(ms interp)"); done
    median() { printf '%s\n' "$@" | sort -n | sed -n 3p; }
    mr=$(median "${real[@]}"); mi=$(median "${interp[@]}")
    ratio=$(awk -v a="$mi" -v b="$mr" 'BEGIN { printf "%.3f", a / b }')
    echo "| 300 execs from sh, real ld.so at PT_INTERP (ms, median of 5: ${real[*]}) | $mr |"
    echo "| 300 execs from sh, interp mode (ms, median of 5: ${interp[*]}) | $mi |"
    echo "| interp mode / real ld.so, wall clock | $ratio |"
fi
echo "nested_added_syscalls=$added nested_wall_ratio=$ratio"
