#!/usr/bin/env bash
# Installs what mailgate needs from Debian's packages. `--test` adds what the test suite runs:
# Postfix's smtp-sink/smtp-source and a private Postfix (never the system's daemon), swaks,
# Debian's python3 with pytest.
set -euo pipefail

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

build_packages=(cmake g++ make pkg-config libuv1-dev libtomlplusplus-dev nlohmann-json3-dev
  libboost-test-dev libssl-dev)
test_packages=(postfix swaks python3 python3-pytest procps)

packages=("${build_packages[@]}")
if [ "${1:-}" = "--test" ]; then packages+=("${test_packages[@]}"); fi

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

export DEBIAN_FRONTEND=noninteractive
# Postfix is installed for its tools only: no configuration, so no daemon starts.
echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
