#!/usr/bin/env bash
# Installs, builds and runs the gateway. With no arguments it runs on the embedded default:
# 127.0.0.1:2525, mail for localhost / localhost.localdomain delivered into ./var/maildir.
# Arguments are passed to mailgate (e.g. --config /etc/mailgate/mailgate.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target mailgate
exec build/mailgate "$@"
