#!/usr/bin/env bash
# Installs, builds and runs every test twice: once on the normal build, once built with
# AddressSanitizer and UndefinedBehaviorSanitizer (build-asan/).
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
exit $status
