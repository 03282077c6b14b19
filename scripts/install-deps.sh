#!/usr/bin/env bash
# Installs what mailgate needs from Debian's packages. `--test` adds what the test suite runs:
# Postfix's smtp-sink/smtp-source and a private Postfix (never the system's daemon), swaks,
# Debian's python3 with pytest, clang 16 for the fuzz targets and a clang build. `--bench` adds, to
# those, the peer stack bench/peers measures the gateway against.
set -euo pipefail

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# libunbound.pc names libevent, nettle and hogweed in Requires.private, which pkg-config insists
# on although libunbound-dev does not depend on their -dev packages.
# libspf2-dev: the SPF check (filters/spf); python3-yaml turns the RFC 7208 suite into JSON when
# the unit tests build. libopendkim-dev: DKIM verification (filters/dkim); libopendmarc-dev and
# publicsuffix (the organizational domain, RFC 7489 §3.2): DMARC (filters/dmarc).
# libgmime-3.0-dev: RFC 5322 address lists (DMARC's From: domains) and MIME decoding for the rule
# engine; libpcre2-dev: the rule engine's regexes (rules/). libmagic-dev and libarchive-dev: the
# attachments stage (a file's type from its content; names and contents inside archives).
# libsqlite3-dev: the greylist stage's embedded store; libhiredis-dev: its Redis store (the
# protocol: command formatting and reply parsing).
# zlib1g-dev: `mailgate log` reads gzip-rotated decision logs (already pulled in by
# libgmime-3.0-dev through libglib2.0-dev, named here because mailgate links it directly);
# libsimdjson-dev: `mailgate log` parses records with it, 15-30x faster than nlohmann-json.
# libmicrohttpd-dev: the [metrics] HTTP listener (/metrics, /healthz, /readyz) on its own thread.
build_packages=(cmake g++ make pkg-config libuv1-dev libtomlplusplus-dev nlohmann-json3-dev
  libboost-test-dev libssl-dev libunbound-dev libevent-dev nettle-dev libspf2-dev python3-yaml
  libopendkim-dev libopendmarc-dev publicsuffix libgmime-3.0-dev libpcre2-dev
  libmagic-dev libarchive-dev libsqlite3-dev libhiredis-dev zlib1g-dev libsimdjson-dev libmicrohttpd-dev)
# unbound: the DNS server of the integration tests (tests/integration/dns_server.py), never the
# system's resolver; python3-dnslib: their DNS client. python3-dkim: the independent signer of the
# DKIM and DMARC tests and bench/dkim; python3-cryptography makes their keys (and the TLS tests'
# certificates). openssl: `openssl s_client -starttls smtp` in tests/integration/test_tls.py.
test_packages=(postfix swaks python3 python3-pytest procps unbound python3-dnslib python3-dkim python3-cryptography
  openssl)
# redis-server: the real Redis that tests/integration/test_greylist.py starts on a free loopback
# port (never the system's daemon) to share greylisting state between two gateways.
test_packages+=(redis-server)
# clang 16 and its libFuzzer runtime: tests/fuzz (scripts/fuzz.sh), and the whole project built
# with clang (CXX=clang++-16). 16, not Debian's default 14: the gateway's sources need
# std::expected from libstdc++ 12 (CMakeLists.txt says why).
# llvm: llvm-symbolizer, for the stacks of what they find.
test_packages+=(clang-16 libclang-rt-16-dev llvm)
# spamassassin: its rule files (/usr/share/spamassassin) and `spamassassin -t`, which
# tests/integration/test_spamassassin_compat.py compares the rule engine with (bench/rules too).
test_packages+=(spamassassin)
# clamav-daemon and clamav: a real clamd for tests/integration/test_clamav.py and bench/content,
# started by the tests on a unix socket with a signature database they write (no freshclam).
test_packages+=(clamav-daemon clamav)
# zip and p7zip-full: encrypted zip and 7z archives for tests/integration/test_attachments.py
# (Python's zipfile cannot encrypt).
test_packages+=(zip p7zip-full)
# logrotate: tests/integration/test_log_command.py runs deploy/examples/logrotate.mailgate with it.
test_packages+=(logrotate)
# python3-jsonschema: tests/integration/test_decision_schema.py checks live decision records
# against docs/decision-record.schema.json.
test_packages+=(python3-jsonschema)

# chromium, chromium-driver and python3-selenium: tests/integration/test_history_page.py drives
# the decision-history page in a real headless browser (started by the test, on loopback).
test_packages+=(chromium chromium-driver python3-selenium)

# postfix-policyd-spf-python and opendkim: the stack an operator would otherwise build (Postfix with
# an SPF policy service and a DKIM-verifying milter), which bench/peers runs as a private instance
# on loopback next to the gateway. Never the system's daemons (stopped below where they start).
bench_packages=(postfix-policyd-spf-python opendkim)

packages=("${build_packages[@]}")
if [ "${1:-}" = "--test" ]; then packages+=("${test_packages[@]}"); fi
if [ "${1:-}" = "--bench" ]; then packages+=("${test_packages[@]}" "${bench_packages[@]}"); fi

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

# unbound is installed for the tests' own DNS servers only; its package starts and enables the
# system daemon (port 53, and unbound-resolvconf, which may point /etc/resolv.conf at it) where
# services may start (not in containers with policy-rc.d or without an init): undo that.
if [[ " ${missing[*]} " == *" unbound "* ]]; then
  if [ -d /run/systemd/system ]; then
    $sudo systemctl disable --now unbound.service unbound-resolvconf.service >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/unbound ]; then
    $sudo /etc/init.d/unbound stop >/dev/null 2>&1 || true
    $sudo update-rc.d unbound disable >/dev/null 2>&1 || true
  fi
fi

# redis-server likewise: installed for the tests' own instances only (port 6379 stays free).
if [[ " ${missing[*]} " == *" redis-server "* ]]; then
  if [ -d /run/systemd/system ]; then
    $sudo systemctl disable --now redis-server.service >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/redis-server ]; then
    $sudo /etc/init.d/redis-server stop >/dev/null 2>&1 || true
    $sudo update-rc.d redis-server disable >/dev/null 2>&1 || true
  fi
fi

# opendkim likewise: bench/peers starts its own (a loopback port, its own configuration); the
# package's daemon would otherwise run where services may start.
if [[ " ${missing[*]} " == *" opendkim "* ]]; then
  if [ -d /run/systemd/system ]; then
    $sudo systemctl disable --now opendkim.service >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/opendkim ]; then
    $sudo /etc/init.d/opendkim stop >/dev/null 2>&1 || true
    $sudo update-rc.d opendkim disable >/dev/null 2>&1 || true
  fi
fi
