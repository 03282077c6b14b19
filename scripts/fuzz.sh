#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/README.md) in build-fuzz/ with clang 16, ASan and UBSan,
# and runs each for a fixed number of inputs from a fixed seed (-seed=1), starting from seeds made
# from the repository's own data, one target at a time. A short run that keeps the targets
# building and catches regressions; longer runs are made by hand (README there).
# Prints each target's executions and time; exits non-zero when any target finds a crash, a leak,
# a timeout or a broken invariant, and keeps that input in build-fuzz/findings/.
#   scripts/fuzz.sh            build and run every target
#   scripts/fuzz.sh NAME...    build and run only these (e.g. smtp_session_fuzz)
set -euo pipefail
cd "$(dirname "$0")/.."

# Inputs per target: together about two to three minutes on two cores (figures in the README).
# spf_fuzz keeps the budget it had in scripts/test.sh.
declare -A runs=(
  [spf_fuzz]=200000
  [smtp_session_fuzz]=8000
  [smtp_client_fuzz]=60000
  [proxy_protocol_fuzz]=300000
  [config_fuzz]=8000
  [rule_file_fuzz]=1500
  [mime_fuzz]=4000
  [dkim_fuzz]=6000
  [auth_results_fuzz]=12000
)
targets=(spf_fuzz smtp_session_fuzz smtp_client_fuzz proxy_protocol_fuzz config_fuzz rule_file_fuzz mime_fuzz dkim_fuzz
  auth_results_fuzz)
[ $# -gt 0 ] && targets=("$@")

compiler="$(command -v clang++-16 || true)"
if [ -z "$compiler" ]; then
  echo "fuzz: clang++-16 is missing (scripts/install-deps.sh --test installs it)" >&2
  exit 1
fi
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cmake -S . -B build-fuzz -DMAILGATE_FUZZ=ON -DCMAKE_CXX_COMPILER="$compiler" "${launcher[@]}" >/dev/null
if ! cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]}" >"$work/build.log" 2>&1; then
  grep -E -B2 -A6 'error' "$work/build.log" | head -n 60
  echo "fuzz: the build failed" >&2
  exit 1
fi

# Stacks with names: clang 16 looks for the symbolizer beside itself, Debian has it in /usr/bin.
symbolizer="$(command -v llvm-symbolizer || true)"
[ -n "$symbolizer" ] && export ASAN_SYMBOLIZER_PATH="$symbolizer" UBSAN_SYMBOLIZER_PATH="$symbolizer"

mkdir -p build-fuzz/findings
status=0
total_ms=0
for target in "${targets[@]}"; do
  name="${target%_fuzz}"
  mkdir -p "$work/$target/corpus" "$work/$target/findings"
  if [ "$target" = spf_fuzz ]; then
    /usr/bin/python3 tests/fuzz/spf_seeds.py "$work/$target/seeds" >/dev/null
  else
    /usr/bin/python3 tests/fuzz/seeds.py "$target" "$work/$target/seeds" >/dev/null
  fi
  options=(-seed=1 -runs="${runs[$target]}" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1
    -artifact_prefix="$work/$target/findings/")
  [ -f "tests/fuzz/$name.dict" ] && options+=(-dict="tests/fuzz/$name.dict")
  start=$(date +%s%3N)
  if "build-fuzz/tests/fuzz/$target" "${options[@]}" "$work/$target/corpus" "$work/$target/seeds" >"$work/$target/log" 2>&1; then
    result=ok
  else
    result=FOUND
    status=1
  fi
  ms=$(($(date +%s%3N) - start))
  total_ms=$((total_ms + ms))
  executed=$(grep -Eo 'stat::number_of_executed_units: *[0-9]+' "$work/$target/log" | grep -Eo '[0-9]+$' | tail -n 1)
  coverage=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$work/$target/log" | tail -n 1)
  printf '%-20s %-5s %8s execs %5d.%d s  %s\n' "$target" "$result" "${executed:-?}" $((ms / 1000)) $((ms % 1000 / 100)) "${coverage:-}"
  if [ "$result" = FOUND ]; then
    grep -E -A 30 'invariant broken|what\(\)|ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error|ALARM|out-of-memory' \
      "$work/$target/log" | head -n 50 || tail -n 50 "$work/$target/log"
    for finding in "$work/$target/findings"/*; do
      [ -e "$finding" ] || continue
      cp "$finding" "build-fuzz/findings/$target-$(basename "$finding")"
      echo "fuzz: $target kept build-fuzz/findings/$target-$(basename "$finding") (replay: build-fuzz/tests/fuzz/$target FILE)"
    done
  fi
done
printf 'fuzz: %d targets, %d s of fuzzing\n' "${#targets[@]}" $((total_ms / 1000))
exit $status
