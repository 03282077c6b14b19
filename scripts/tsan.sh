#!/usr/bin/env bash
# Builds the gateway and the unit tests with ThreadSanitizer (clang 16, Debug, build-tsan/) and
# runs the unit tests and the integration tests where the threads meet: several event loops
# (workers), the thread pool busy with content stages and timeouts, the resolver's thread behind
# the DNS stages, the decision log's and the history's writer threads, the HTTP listener's threads,
# reloads and signals. Every report of every
# process goes to a file; any report fails the run and is printed.
#   scripts/tsan.sh            build and run all of it
#   scripts/tsan.sh PYTEST...  build, run the unit tests and these integration tests/arguments
#   TSAN_BUILD_ONLY=1 scripts/tsan.sh   build only (scripts/test.sh builds while other tests run)
set -euo pipefail
cd "$(dirname "$0")/.."
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DMAILGATE_TSAN=ON -DMAILGATE_WERROR=ON \
  -DCMAKE_CXX_COMPILER="$(command -v clang++-16)" "${launcher[@]}" >/dev/null
cmake --build build-tsan -j"$(nproc)" --target mailgate unit_tests
[ "${TSAN_BUILD_ONLY:-}" = 1 ] && exit 0

reports="$(mktemp -d)"
trap 'rm -rf "$reports"' EXIT
# Stacks with names: clang 16 looks for the symbolizer beside itself, Debian has it in /usr/bin.
symbolizer="$(command -v llvm-symbolizer || true)"
export TSAN_OPTIONS="log_path=$reports/tsan second_deadlock_stack=1${symbolizer:+ external_symbolizer_path=$symbolizer}"
status=0
echo "-- unit tests"
build-tsan/tests/unit_tests --log_level=error --report_level=short || status=1
tests=(tests/integration/test_session_phases.py tests/integration/test_lifecycle.py
  tests/integration/test_resolver.py tests/integration/test_spf.py tests/integration/test_dkim.py
  tests/integration/test_dmarc.py tests/integration/test_rules.py tests/integration/test_relay.py
  tests/integration/test_check_matches_session.py tests/integration/test_dnsbl.py
  tests/integration/test_greylist.py tests/integration/test_history.py)
[ $# -gt 0 ] && tests=("$@")
echo "-- integration tests: ${tests[*]}"
MAILGATE_BIN="$PWD/build-tsan/mailgate" MAILGATE_SOURCE_DIR="$PWD" MAILGATE_TEST_PACE=8 \
  /usr/bin/python3 -m pytest -q -p no:cacheprovider "${tests[@]}" || status=1

if compgen -G "$reports/tsan*" >/dev/null; then
  echo "ThreadSanitizer reported races or misuse:"
  cat "$reports"/tsan*
  status=1
else
  echo "ThreadSanitizer: no reports"
fi
exit $status
