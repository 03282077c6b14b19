#!/usr/bin/env bash
# Installs, builds and runs every test twice: once on the normal build, once built with
# AddressSanitizer and UndefinedBehaviorSanitizer (build-asan/); then the SPF fuzz target
# (build-fuzz/) for a fixed number of runs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
jobs="$(nproc)"

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DMAILGATE_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"

# A small quarantine: ASan's default keeps 256 MiB of freed memory, which would hide the
# integration tests' bound on peak memory for a 50 MiB message.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:quarantine_size_mb=1:thread_local_quarantine_size_kb=64"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
echo "== tests (release build)"
ctest --test-dir build --output-on-failure || status=1
echo "== tests (AddressSanitizer + UndefinedBehaviorSanitizer build)"
ctest --test-dir build-asan --output-on-failure || status=1

# The SPF layer's libFuzzer target (tests/fuzz/README.md), from the RFC 7208 suite's records, for
# a fixed number of runs from a fixed seed, so that a finding here is one anybody can replay.
echo "== fuzz: spf_fuzz (libFuzzer, ASan + UBSan), 200000 runs"
cmake -S . -B build-fuzz -DMAILGATE_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build build-fuzz -j"$jobs"
fuzz_dir="$(mktemp -d)"
trap 'rm -rf "$fuzz_dir"' EXIT
mkdir "$fuzz_dir/corpus" "$fuzz_dir/findings"
/usr/bin/python3 tests/fuzz/spf_seeds.py "$fuzz_dir/seeds" >/dev/null
if ! build-fuzz/tests/fuzz/spf_fuzz -seed=1 -runs=200000 -dict=tests/fuzz/spf.dict \
    -artifact_prefix="$fuzz_dir/findings/" "$fuzz_dir/corpus" "$fuzz_dir/seeds" >"$fuzz_dir/log" 2>&1; then
  tail -n 60 "$fuzz_dir/log"
  mkdir -p build-fuzz/findings && cp "$fuzz_dir"/findings/* build-fuzz/findings/ 2>/dev/null || true
  echo "spf_fuzz found a problem; the input is in build-fuzz/findings/ (replay: build-fuzz/tests/fuzz/spf_fuzz FILE)"
  status=1
else
  grep -E '^Done|stat::number_of_executed_units' "$fuzz_dir/log" | tail -n 1
fi
exit $status
