#!/usr/bin/env bash
# libFuzzer runs of every target in tests/fuzz (RELIABILITY.md "Fuzzing").
#
#   tests/fuzz/run.sh [target...]      default: every target
#
# Builds build-fuzz with clang (-fsanitize=fuzzer,address,undefined; the
# library instrumented with fuzzer-no-link), then gives each target
# FUZZ_SECONDS (default 60) starting from its seed corpus and dictionary,
# FUZZ_JOBS (default 2) targets at a time.  Any crash, leak, timeout, UB or
# property violation fails the target; the reproducer is kept under
# build-fuzz/fuzz-run/<target>/ (with the log), never in the source tree:
# the inputs libFuzzer finds go there too, not into tests/fuzz/corpus.
# To keep a reproducer, copy it into tests/fuzz/corpus/<target>/ so that
# `meson test --suite fuzz` replays it from then on.
# Prints one line per target and ends with "fuzz: N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-2}
dir=build-fuzz
all=(json rpc http ndjson names)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")

declare -A max_len=([json]=8192 [rpc]=8192 [http]=20000 [ndjson]=4096 [names]=600)

opts=(-Dwerror=true -Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false
      -Dc_args=-fsanitize=fuzzer-no-link -Dbench=disabled -Dexamples=disabled
      -Dshim=disabled -Dpostgres=disabled)
if [ -d "$dir" ]; then
  CC=clang meson setup --reconfigure "$dir" "${opts[@]}" >/dev/null
else
  CC=clang meson setup "$dir" "${opts[@]}" >/dev/null
fi || { echo "fuzz: setup failed"; echo "fuzz: 0 passed, ${#targets[@]} failed"; exit 1; }
exes=()
for t in "${targets[@]}"; do exes+=("tests/fuzz/fuzz-$t"); done
if ! meson compile -C "$dir" "${exes[@]}" >"$dir/fuzz-build.log" 2>&1; then
  tail -n 30 "$dir/fuzz-build.log"
  echo "fuzz: 0 passed, ${#targets[@]} failed"
  exit 1
fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# fuzz_one <target>: runs it, writes <work>/result (one line).
fuzz_one() {
  local t=$1 work="$dir/fuzz-run/$1"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  "$dir/tests/fuzz/fuzz-$t" -max_total_time="$secs" -rss_limit_mb=2048 \
    -malloc_limit_mb=1024 -timeout=10 -max_len="${max_len[$t]:-4096}" \
    -dict="tests/fuzz/$t.dict" -artifact_prefix="$work/artifacts/" \
    -print_final_stats=1 "$work/corpus" "tests/fuzz/corpus/$t" \
    >"$work/log" 2>&1
  local rc=$?
  local execs eps cov
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log")
  cov=$(grep -E '^#[0-9]+' "$work/log" | grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*' | tail -n 1)
  if [ $rc -eq 0 ]; then
    echo "fuzz-$t: ok, ${execs:-?} execs (${eps:-?}/s), ${cov:-no stats}" >"$work/result"
  else
    local why art
    why=$(grep -m1 -E 'property violated|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|SUMMARY' "$work/log")
    art=$(ls "$work/artifacts" 2>/dev/null | head -n 1)
    echo "fuzz-$t: FAILED (exit $rc): ${why:-see log}; reproducer: $work/artifacts/${art:-none}; log: $work/log" >"$work/result"
  fi
}

running=0
for t in "${targets[@]}"; do
  fuzz_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n
    running=$((running - 1))
  fi
done
wait

passed=0; failed=0
for t in "${targets[@]}"; do
  line=$(cat "$dir/fuzz-run/$t/result" 2>/dev/null || echo "fuzz-$t: FAILED (no result)")
  echo "$line"
  case $line in *": ok,"*) passed=$((passed + 1)) ;; *) failed=$((failed + 1)) ;; esac
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
