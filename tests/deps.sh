#!/usr/bin/env bash
# Installs what building and testing libstreamstore needs on Debian 12, from
# Debian's packages only.  Idempotent: installs nothing when all is present.
set -euo pipefail

PKGS=(
  meson ninja-build pkg-config gcc g++ clang libclang-rt-14-dev
  libsqlite3-dev libpq-dev libcjson-dev libcmocka-dev libssl-dev
  valgrind python3 postgresql
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
