#!/usr/bin/env bash
# Rebuild embed/blobs/ — the chainloader binaries every jail gets, their
# SHA256SUMS and BUILD-INFO — from chainloader/, bit for bit:
#
#   tools/rebuild-chainloaders.sh                        rebuild, write embed/blobs/
#   tools/rebuild-chainloaders.sh --check [--blobs DIR]  rebuild, compare with embed/blobs/
#                                                        (or DIR); exit 1 naming each file
#                                                        that differs (what CI runs)
#
# Pinned, so that any machine gets the same bytes: the Rust toolchain
# (TOOLCHAIN below; installed with rustup if missing, with every target in
# chainloader/src/machine.rs), the linker (that toolchain's own rust-lld: no C
# compiler, no Debian package), the flags (embed/build.rs), the dependencies
# (Cargo.lock, --locked, offline) and the paths (--remap-path-prefix; the
# build's own target directory). The build itself is embed/build.rs with
# LDCHAIN_CHAINLOADER_FROM_SOURCE=1: one set of flags for both.
#
# Bump TOOLCHAIN deliberately: a new rustc changes the bytes, so the blobs
# are rebuilt and reviewed (sizes: benches/report.sh --check) with it.
set -euo pipefail
TOOLCHAIN=1.95.0

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
check=no blobs=$repo/embed/blobs
while [ $# -gt 0 ]; do
    case $1 in
        --check) check=yes ;;
        --blobs) [ $# -ge 2 ] || usage; blobs=$(cd "$2" && pwd); shift ;;
        *) usage ;;
    esac
    shift
done
[ "$check" = yes ] || [ "$blobs" = "$repo/embed/blobs" ] || usage

# The toolchain and the targets (the machine table's triples). An installed
# toolchain of exactly that release (stable, often) is the same compiler:
# use it rather than download it again.
for have in $(rustup toolchain list | cut -d' ' -f1); do
    if rustup run "$have" rustc -V 2>/dev/null | grep -q "^rustc $TOOLCHAIN "; then
        TOOLCHAIN=$have
        break
    fi
done
if ! rustup run "$TOOLCHAIN" rustc -V >/dev/null 2>&1; then
    echo "installing Rust $TOOLCHAIN (rustup)" >&2
    rustup toolchain install "$TOOLCHAIN" --profile minimal >&2
fi
mapfile -t targets < <(sed -n 's/^ *triple: "\(.*\)",$/\1/p' chainloader/src/machine.rs)
[ ${#targets[@]} -gt 0 ] || { echo "no triples found in chainloader/src/machine.rs" >&2; exit 2; }
installed=$(rustup target list --installed --toolchain "$TOOLCHAIN")
for t in "${targets[@]}"; do
    grep -qx "$t" <<<"$installed" || rustup target add --toolchain "$TOOLCHAIN" "$t" >&2
done

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "building ${targets[*]} with $(rustup run "$TOOLCHAIN" rustc -V)" >&2
LDCHAIN_CHAINLOADER_FROM_SOURCE=1 LDCHAIN_CHAINLOADER_EXPORT=$out/blobs \
    CARGO_TARGET_DIR=$repo/target/rebuild-chainloaders \
    cargo "+$TOOLCHAIN" check -q --locked --offline -p ldchain-embed

if [ "$check" = no ]; then
    rm -f "$blobs"/chainloader-* "$blobs"/SHA256SUMS "$blobs"/BUILD-INFO
    cp "$out"/blobs/* "$blobs"/
    echo "wrote embed/blobs:"
    (cd "$blobs" && for f in chainloader-*; do printf '  %-22s %6d bytes  sha256 %s\n' "$f" "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -d' ' -f1)"; done)
    echo "review and commit them with the source change (sizes: benches/report.sh --check)"
    exit 0
fi

stale=0
for f in "$out"/blobs/*; do
    name=$(basename "$f")
    if [ ! -e "$blobs/$name" ]; then
        echo "STALE: $blobs/$name is missing (a rebuild writes it)"; stale=1
    elif ! cmp -s "$f" "$blobs/$name"; then
        echo "STALE: $blobs/$name differs from a rebuild from source:"
        if [[ $name == chainloader-* ]]; then
            echo "  committed $(stat -c %s "$blobs/$name") bytes, sha256 $(sha256sum "$blobs/$name" | cut -d' ' -f1)"
            echo "  rebuilt   $(stat -c %s "$f") bytes, sha256 $(sha256sum "$f" | cut -d' ' -f1)"
        else
            diff "$blobs/$name" "$f" | sed 's/^/  /' || true
        fi
        stale=1
    fi
done
for f in "$blobs"/*; do
    [ -e "$out/blobs/$(basename "$f")" ] || { echo "STALE: $f is not produced by a rebuild"; stale=1; }
done
if [ $stale = 1 ]; then
    echo "embed/blobs does not match chainloader/ built with Rust $TOOLCHAIN: run tools/rebuild-chainloaders.sh and commit the result"
    exit 1
fi
echo "embed/blobs matches a rebuild from source, bit for bit ($(cd "$blobs" && echo chainloader-*))"
