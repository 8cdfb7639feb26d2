#!/bin/bash
# In the jail: N execs, each from a directory of its own, with a search path
# of their own (so each asks the service), then stay for the measurement.
fail=0
for i in $(seq 1 "${N:-10000}"); do
    mkdir -p /tmp/d$i && cd /tmp/d$i && { LD_LIBRARY_PATH=/x /bin/true || fail=$((fail + 1)); }
done
echo "done failures=$fail"; sleep 60
