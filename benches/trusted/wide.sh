#!/bin/bash
# In the jail: 100 cacheable requests with 200 deep entries (7.4 KiB).
L=$(for i in $(seq 1 200); do printf '/%x/aaaaaaaaaa/bbbbbbbbbb/cccccccccc:' "$i"; done)
for n in $(seq 1 100); do LD_LIBRARY_PATH=${L}/x$n /bin/true || echo fail; done
echo done; sleep 60
