#!/usr/bin/env bash
# The one test command: installs dependencies, builds, and runs every suite
# plainly (gcc, -Werror), under ASan+UBSan (clang, -Werror), under
# ThreadSanitizer (clang, -Werror) and under valgrind memcheck, then fuzzes
# each tests/fuzz target for a minute with libFuzzer.  Ends with the line
# "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash tests/deps.sh || { echo "deps: install failed"; exit 1; }

passed=0; failed=0; status=0
count() {  # count results of the last meson test run: build dir $1, setup $2
  local log="$1/meson-logs/testlog${2:+-$2}.json"
  [ -f "$log" ] || return
  local p f
  p=$(python3 -c 'import json,sys
ok=fail=0
for l in open(sys.argv[1]):
    r=json.loads(l)["result"]
    if r in ("OK","EXPECTEDFAIL"): ok+=1
    elif r!="SKIP": fail+=1
print(ok,fail)' "$log")
  read -r p f <<<"$p"
  passed=$((passed + p)); failed=$((failed + f))
}
run() {  # run <label> <builddir> <meson test args...>
  local label=$1 dir=$2; shift 2
  echo "== $label"
  local setup=""
  [ "${1:-}" = "--setup" ] && setup=$2
  rm -f "$dir/meson-logs/testlog${setup:+-$setup}.json"
  if ! meson test -C "$dir" --print-errorlogs "$@"; then status=1; fi
  count "$dir" "$setup"
}
setup() {  # setup <builddir> <meson setup args...>
  local dir=$1; shift
  if [ -d "$dir" ]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null || return 1
  else
    meson setup "$dir" "$@" >/dev/null || return 1
  fi
  meson compile -C "$dir" >/dev/null || { meson compile -C "$dir"; return 1; }
}

if setup build-test -Dwerror=true --buildtype=debugoptimized; then
  run "plain (gcc)" build-test
  run "valgrind" build-test --setup valgrind
else
  echo "build failed (gcc)"; status=1; failed=$((failed + 1))
fi

if CC=clang setup build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false; then
  run "ASan+UBSan (clang)" build-asan --setup asan
else
  echo "build failed (clang asan)"; status=1; failed=$((failed + 1))
fi

# ThreadSanitizer over every suite that can run instrumented: the group
# commit, the hub and the shim's store thread (the http-*-tsan suites run the
# instrumented server with and without it).
if CC=clang setup build-tsan -Dwerror=true -Db_sanitize=thread -Db_lundef=false; then
  run "TSan (clang)" build-tsan --setup tsan
else
  echo "build failed (clang tsan)"; status=1; failed=$((failed + 1))
fi

# libFuzzer: each target of tests/fuzz for FUZZ_SECONDS (60) from its seed
# corpus, two at a time; one result per target.  What it finds stays in
# build-fuzz/ (tests/fuzz/run.sh).
echo "== libFuzzer (clang)"
fuzz_log=$(mktemp)
bash tests/fuzz/run.sh 2>&1 | tee "$fuzz_log"
read -r fp ff < <(sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$fuzz_log")
rm -f "$fuzz_log"
if [ -z "${fp:-}" ]; then
  echo "libFuzzer runs did not complete"; fp=0; ff=1
fi
passed=$((passed + fp)); failed=$((failed + ff))

[ "$failed" -gt 0 ] && status=1
echo "tests: $passed passed, $failed failed"
exit $status
