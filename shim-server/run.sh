#!/usr/bin/env bash
# The one run command: installs dependencies, builds (release), and starts
# shim-server on the embedded default (a durable SQLite store in
# ./streamstore-data, port 8080); arguments are passed on as server flags.
# A build without the shim (meson -Dshim=disabled) runs the quickstart
# example against that store instead.
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
bash "$src/tests/deps.sh"
if [ -d "$src/build-release" ]; then
  meson setup --reconfigure "$src/build-release" "$src" --buildtype=release >/dev/null
else
  meson setup "$src/build-release" "$src" --buildtype=release >/dev/null
fi
meson compile -C "$src/build-release" >/dev/null
if [ -x "$src/build-release/shim-server/shim-server" ]; then
  exec "$src/build-release/shim-server/shim-server" "$@"
fi
exec "$src/build-release/examples/quickstart" "${1:-./streamstore-data}"
