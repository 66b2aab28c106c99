#!/bin/sh
# install.sh MESON PKG_CONFIG BUILD_DIR CONSUMER_C -- CC...
#
# `meson install --destdir` into a temporary directory, check that the
# header, the shared and static libraries and the pkg-config file are in
# place, then build consumer.c out of tree with only what pkg-config says
# (once against the shared library, once statically against the archive,
# which needs Requires.private / Libs.private) and run both.
set -eu
unset LD_LIBRARY_PATH  # meson test points it at the build tree
meson=$1 pkgconfig=$2 build=$3 src=$4
shift 4
[ "$1" = "--" ] && shift
# "$@" is now the C compiler command.

tmp=$(mktemp -d "${TMPDIR:-/tmp}/lss-install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
dest=$tmp/dest

fail() {
    echo "install: $*" >&2
    exit 1
}

"$meson" install -C "$build" --destdir "$dest" --no-rebuild >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "meson install failed"; }

pc=$(find "$dest" -path '*/pkgconfig/streamstore.pc' | head -n 1)
[ -n "$pc" ] || fail "no streamstore.pc under $dest"
pcdir=$(dirname "$pc")
prefix=$(sed -n 's/^prefix=//p' "$pc")
[ -n "$prefix" ] || fail "no prefix= in $pc"
echo "installed pkg-config file: ${pc#"$dest"}"
cat "$pc"

# Point the .pc file's prefix at the staging copy.
pkgc() {
    PKG_CONFIG_PATH=$pcdir "$pkgconfig" --define-variable=prefix="$dest$prefix" "$@"
}
libdir=$(pkgc --variable=libdir streamstore)
includedir=$(pkgc --variable=includedir streamstore)
case $libdir in "$dest"/*) ;; *) fail "libdir $libdir is not under the destdir" ;; esac

for f in "$includedir/streamstore.h" "$libdir/libstreamstore.so" \
         "$libdir/libstreamstore.a"; do
    [ -f "$f" ] || fail "missing ${f#"$dest"}"
    echo "installed: ${f#"$dest"}"
done
ls "$libdir"/libstreamstore.so.* >/dev/null 2>&1 || fail "no versioned libstreamstore.so.*"
grep -q '^Requires.private:.*sqlite3' "$pc" || fail "Requires.private lacks sqlite3"
grep -q '^Requires.private:.*libcrypto' "$pc" || fail "Requires.private lacks libcrypto"
grep -q '^Libs.private:.*pthread' "$pc" || fail "Libs.private lacks threads"

cflags=$(pkgc --cflags streamstore)
libs=$(pkgc --libs streamstore)
static_libs=$(pkgc --static --libs streamstore)
warn="-std=c11 -Wall -Wextra -Wpedantic -Werror"
echo "cflags: $cflags"
echo "libs: $libs"
echo "static libs: $static_libs"

# Shared: found at run time through LD_LIBRARY_PATH only.
# shellcheck disable=SC2086
"$@" $warn $cflags "$src" -o "$tmp/consumer" $libs || fail "shared build failed"
LD_LIBRARY_PATH=$libdir ldd "$tmp/consumer" | grep -q "$dest.*libstreamstore" ||
    fail "consumer does not load the installed libstreamstore"
LD_LIBRARY_PATH=$libdir "$tmp/consumer" || fail "shared consumer failed"

# Static: the archive plus the private dependencies the .pc file lists.
static_libs=$(printf '%s\n' "$static_libs" |
    sed 's/-lstreamstore/-Wl,-Bstatic -lstreamstore -Wl,-Bdynamic/')
# shellcheck disable=SC2086
"$@" $warn $cflags "$src" -o "$tmp/consumer-static" $static_libs ||
    fail "static build failed"
if ldd "$tmp/consumer-static" | grep -q libstreamstore; then
    fail "consumer-static still needs libstreamstore.so"
fi
"$tmp/consumer-static" || fail "static consumer failed"
echo "install: ok"
