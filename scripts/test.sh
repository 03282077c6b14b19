#!/usr/bin/env bash
# Installs, builds and runs every test:
# - GCC Release (build/) and GCC Debug with AddressSanitizer + UndefinedBehaviorSanitizer
#   (build-asan/): the unit and integration suites on both;
# - a short soak on the Release build (bench/soak --messages 5000: the whole pipeline while the
#   downstream is killed and the DNS server stalled, some clients cut off in DATA; fails on any
#   message lost or delivered twice, a leaked descriptor or a log record missing; under a minute);
# - clang 16 Debug with ThreadSanitizer (build-tsan/, scripts/tsan.sh): the unit tests and the
#   integration tests where the threads meet, any report failing the run;
# - every libFuzzer target for a fixed budget (build-fuzz/, scripts/fuzz.sh), whose core compiles
#   every source of the gateway with clang 16 (so clang builds it too).
# Warnings are errors in every build here (MAILGATE_WERROR; a release build by hand keeps them
# warnings). The clang trees are built at the lowest CPU priority while the GCC trees' tests run,
# so the whole takes about 45 minutes on two cores. Every part runs even when one before it
# failed; the exit status is non-zero when any did.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
jobs="$(nproc)"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
configure() {  # configure DIR ARGS...
  local dir="$1"
  shift
  cmake -S . -B "$dir" -DMAILGATE_WERROR=ON "${launcher[@]}" "$@" >/dev/null
}

configure build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$jobs"
configure build-asan -DCMAKE_BUILD_TYPE=Debug -DMAILGATE_SANITIZE=ON
cmake --build build-asan -j"$jobs"

clang_log="$(mktemp)"
trap 'rm -f "$clang_log"' EXIT
(
  set -e
  renice -n 19 -p "$BASHPID" >/dev/null  # before anything starts: every compiler inherits it
  TSAN_BUILD_ONLY=1 scripts/tsan.sh
  FUZZ_BUILD_ONLY=1 scripts/fuzz.sh
) >"$clang_log" 2>&1 &
clang_builds=$!

# A small quarantine: ASan's default keeps 256 MiB of freed memory, which would hide the
# integration tests' bound on peak memory for a 50 MiB message.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:quarantine_size_mb=1:thread_local_quarantine_size_kb=64"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
echo "== tests (GCC Release)"
ctest --test-dir build --output-on-failure || status=1
echo "== soak (short)"
bench/soak --messages 5000 --mailgate build/mailgate || status=1
echo "== tests (GCC Debug, AddressSanitizer + UndefinedBehaviorSanitizer)"
MAILGATE_TEST_PACE=2 ctest --test-dir build-asan --output-on-failure || status=1

echo "== builds: clang 16 Debug + ThreadSanitizer, the fuzz targets"
if wait "$clang_builds"; then
  echo "built"
else
  grep -E -B2 -A8 'error|Error' "$clang_log" | head -n 80 || tail -n 80 "$clang_log"
  echo "a clang build failed"
  status=1
fi
echo "== tests (clang 16 Debug, ThreadSanitizer)"
scripts/tsan.sh || status=1
echo "== fuzz (libFuzzer, ASan + UBSan, fixed budgets)"
scripts/fuzz.sh || status=1
exit $status
