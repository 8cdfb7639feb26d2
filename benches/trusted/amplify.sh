#!/bin/bash
# In the jail: N requests whose search paths are ~50,000 relative entries
# under a 4 KB working directory (two ~128 KiB variables, the most execve
# takes), then stay for the measurement.
d=/tmp; for i in $(seq 1 16); do d=$d/$(printf 'x%.0s' $(seq 1 250)); done
mkdir -p "$d" && cd "$d" || exit 1
A=$(printf 'a%x:' $(seq 1 21500)); B=$(printf 'b%x:' $(seq 1 21500))
for n in $(seq 1 "${N:-3}"); do LDSO_PATH=$A LD_LIBRARY_PATH=$B /bin/true; done
echo done; sleep 60
