"""A real DNS server for the integration tests: Debian's unbound daemon on loopback, serving test
zones written in the format of the RFC 7208 test suite's `zonedata` (tests/data or
/work/shared/testdata/spf/rfc7208-tests.yml):

    zones = {
        "example.com": [{"TXT": "v=spf1 mx -all"}, {"MX": [10, "mx.example.com"]}],
        "mx.example.com": [{"A": "192.0.2.1"}, {"AAAA": "2001:db8::1"}],
        "multi.example.com": [{"TXT": ["v=spf1 ", "-all"]}],   # one record of two strings
        "slow.example.com": ["TIMEOUT"],                        # no answer at all
        "broken.example.com": ["SERVFAIL"],                     # rcode SERVFAIL, at once
    }
    with DnsServer(zones) as dns:
        config = f'[dns]\\nservers = ["{dns.address}"]\\n'
        ...
        assert dns.query_count("example.com", "TXT") == 1

Record types: TXT and SPF (a string: one record, split into 255-octet strings when longer; a list:
one record of exactly those strings; [] is a record of no strings), A, AAAA, MX ([preference,
name]), PTR, CNAME. Strings are encoded with `encoding` (UTF-8 unless given); pass bytes for exact
octets. The RFC 7208 suite's "\\xEF"-style escapes mean octets: load it with encoding="latin-1".
Its {TXT: "NONE"} means "no TXT record" (it stops a driver copying SPF records to TXT), and is
taken so here. Names are case-insensitive, a final dot is optional.

How the answers are made (verified against unbound 1.17, see tests/integration/test_dns_server.py):
- All records sit in one authoritative zone for "." (unbound's auth-zone), so NXDOMAIN and NODATA
  come out as from a real authoritative server: a name with records of other types, and an empty
  non-terminal (a.b.example.com exists, so b.example.com does), answer NODATA; any other name
  NXDOMAIN, with the zone's SOA (negative TTL = `ttl`). CNAMEs inside the data are followed.
- TIMEOUT: the query is dropped. Alone, through an RPZ rule on that exact name (rpz-drop), so names
  below it still answer. With records of its own (the suite's "spftimeout": TXT answers, SPF times
  out), through a local-zone of type deny holding those records, which drops the other types, and
  also every undeclared name below it.
- SERVFAIL: the name and everything below it are forwarded to an address unbound may not ask
  (do-not-query-localhost), which answers SERVFAIL at once, without any packet sent. A SERVFAIL
  name's own records (if any) still answer (local-zone typetransparent).
- unbound's built-in local zones (localhost, test., invalid., the AS112 reverse zones that include
  TEST-NET's 2.0.192.in-addr.arpa and 2001:db8::/32) are turned off, so test data there answers.

The server listens on 127.0.0.1 and, when the host has it, ::1, on one free port (UDP and TCP);
every query it receives is logged (log-queries), which query_count() reads.
"""

from __future__ import annotations

import atexit
import ipaddress
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterable, Optional, Union

import dnslib

UNBOUND = "/usr/sbin/unbound"
START_TIMEOUT = 10.0  # unbound answers its first query this soon after starting
STOP_TIMEOUT = 5.0  # ... and exits this soon after SIGTERM
DEFAULT_TTL = 3600

_TYPES = {"A": 1, "CNAME": 5, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "SPF": 99}
# RFC 6895 §3.1 private use: a record nobody asks for, that makes a TIMEOUT or SERVFAIL name (which
# is answered elsewhere) exist in the zone, so that its parents are empty non-terminals.
_PLACEHOLDER_TYPE = "TYPE65534"
_RPZ_ORIGIN = "rpz.invalid."
_READY_NAME = "ready.dns-server.invalid."  # the start-up probe; left out of query_count()
# unbound's default local zones that remain with unblock-lan-zones: yes (services/localzone.c).
_DEFAULT_LOCAL_ZONES = ["localhost.", "127.in-addr.arpa.", "1." + "0." * 31 + "ip6.arpa.",
                        "home.arpa.", "onion.", "test.", "invalid."]
# log-queries writes "[time] unbound[pid:thread] info: 127.0.0.1 example.com. TXT IN".
_QUERY_LINE = re.compile(r"\] info: (\S+) (\S+) (\S+) IN$")

Name = Union[str, bytes]
_live: set = set()


@atexit.register
def _kill_leftovers() -> None:
    # Last resort (pytest interrupted): never leave an unbound running.
    for proc in list(_live):
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)


# ------------------------------------------------------------------------------ encoding
def _octets(value: Name, encoding: str) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode(encoding)


def _labels(name: Name, encoding: str) -> list[bytes]:
    raw = _octets(name, encoding)
    if raw.endswith(b"."):
        raw = raw[:-1]
    if not raw:
        return []  # the root
    labels = raw.split(b".")
    if any(not 1 <= len(label) <= 63 for label in labels) or len(raw) > 253:  # RFC 1035 §2.3.4
        raise ValueError(f"not a valid domain name: {name!r}")
    return labels


def _wire_name(labels: list[bytes]) -> bytes:
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\0"


def _escape_label(label: bytes) -> str:
    if label == b"*":
        return "*"  # a wildcard, as in any zone file
    return "".join(chr(c) if chr(c).isalnum() and c < 128 or c in b"-_" else f"\\{c:03d}" for c in label)


def _text_name(labels: list[bytes]) -> str:
    """Zone-file form, every octet that is not a letter, digit, '-' or '_' as \\DDD (RFC 1035
    §5.1), so that no quote, space or backslash reaches unbound.conf or a zone file as itself."""
    return "".join(_escape_label(label) + "." for label in labels) or "."


def _character_strings(value, encoding: str) -> bytes:
    """RFC 1035 §3.3.14: each string a length octet and at most 255 octets."""
    if isinstance(value, (list, tuple)):
        strings = [_octets(part, encoding) for part in value]
        if any(len(s) > 255 for s in strings):
            raise ValueError(f"a TXT string is longer than 255 octets: {value!r}")
    else:
        data = _octets(value, encoding)
        strings = [data[i:i + 255] for i in range(0, len(data), 255)] or [b""]
    return b"".join(bytes([len(s)]) + s for s in strings)


def _rdata(rtype: str, value, encoding: str) -> str:
    """The record's type and data as a zone file line takes them. Everything but addresses goes as
    RFC 3597 generic data (\\# length hex), which needs no quoting or escaping at all."""
    if rtype == "A":
        return f"A {ipaddress.IPv4Address(value)}"
    if rtype == "AAAA":
        return f"AAAA {ipaddress.IPv6Address(value).compressed}"
    if rtype in ("TXT", "SPF"):
        data = _character_strings(value, encoding)
    elif rtype == "MX":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ValueError(f"MX is [preference, exchange], not {value!r}")
        preference, exchange = value
        data = int(preference).to_bytes(2, "big") + _wire_name(_labels(exchange, encoding))
    elif rtype in ("PTR", "CNAME"):
        data = _wire_name(_labels(value, encoding))
    else:
        raise ValueError(f"record type {rtype!r} is not supported (one of {sorted(_TYPES)})")
    return f"{rtype} \\# {len(data)} {data.hex()}".rstrip()


class _Name:
    """One owner name of the zones, its records and markers."""

    def __init__(self, text: str):
        self.text = text
        self.records: list[str] = []  # "TXT \\# 3 026869" ...
        self.timeout = False
        self.servfail = False


# ------------------------------------------------------------------------------ the server
class DnsServer:
    """unbound serving `zones` (see the module's docstring) on 127.0.0.1 (and ::1), port `port`.
    `directory` holds its configuration, zone files and logs (a temporary one when not given,
    removed again by cleanup() and the context manager). `ttl` is every record's TTL and the
    negative-caching TTL of NXDOMAIN and NODATA answers."""

    def __init__(self, zones: Optional[dict] = None, *, directory: Optional[Path] = None,
                 ttl: int = DEFAULT_TTL, encoding: str = "utf-8", ipv6: Optional[bool] = None):
        self.ttl = int(ttl)
        self._names: dict[bytes, _Name] = {}
        for name, entries in (zones or {}).items():
            self._add(name, entries, encoding)
        self.host = "127.0.0.1"
        self.ipv6 = _ipv6_available() if ipv6 is None else ipv6
        self._own_directory = directory is None
        self.directory = Path(tempfile.mkdtemp(prefix="dns-server-")) if directory is None else Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log_path = self.directory / "unbound.log"
        self.stderr_path = self.directory / "unbound.stderr"
        self.port = 0
        self.proc: Optional[subprocess.Popen] = None
        self._log_offset = 0

    # --------------------------------------------------------------- zones → configuration
    def _add(self, name: Name, entries: Iterable, encoding: str) -> None:
        labels = _labels(name, encoding)
        key = b".".join(labels).lower()
        owner = self._names.setdefault(key, _Name(_text_name(labels)))
        for entry in entries:
            if entry in ("TIMEOUT", "SERVFAIL"):
                owner.timeout |= entry == "TIMEOUT"
                owner.servfail |= entry == "SERVFAIL"
                continue
            if not isinstance(entry, dict):
                raise ValueError(f"{name!r}: a record is {{TYPE: value}}, 'TIMEOUT' or 'SERVFAIL', not {entry!r}")
            for rtype, value in entry.items():
                if value == "NONE":
                    continue  # the RFC 7208 suite's "no record of this type"
                owner.records.append(_rdata(str(rtype).upper(), value, encoding))

    def _zone_file(self) -> str:
        ttl = self.ttl
        lines = [f". {ttl} IN SOA invalid. hostmaster.invalid. 1 3600 600 86400 {ttl}"]
        for owner in self._names.values():
            lines += [f"{owner.text} {ttl} IN {record}" for record in owner.records]
            if (owner.timeout or owner.servfail) and not owner.records:
                lines.append(f"{owner.text} {ttl} IN {_PLACEHOLDER_TYPE} \\# 0")
        return "\n".join(lines) + "\n"

    def _rpz_file(self) -> str:
        lines = [f"{_RPZ_ORIGIN} {self.ttl} IN SOA invalid. hostmaster.invalid. 1 3600 600 86400 {self.ttl}"]
        for owner in self._names.values():
            if owner.timeout and not owner.records and owner.text != ".":
                lines.append(f"{owner.text}{_RPZ_ORIGIN} {self.ttl} IN CNAME rpz-drop.")
        return "\n".join(lines) + "\n"

    def config_text(self) -> str:
        d = self.directory
        interfaces = [self.host] + (["::1"] if self.ipv6 else [])
        server = [
            *[f"interface: {address}@{self.port}" for address in interfaces],
            f"port: {self.port}",
            "do-daemonize: no", 'chroot: ""', 'username: ""', f'directory: "{d}"',
            f'pidfile: "{d}/unbound.pid"', f'logfile: "{self.log_path}"', "use-syslog: no",
            "log-queries: yes", "log-replies: yes", "verbosity: 1", "num-threads: 1",
            # A second server picking the same port must fail to start, not share the queries.
            "so-reuseport: no", "interface-automatic: no",
            "access-control: 127.0.0.0/8 allow", "access-control: ::1 allow",
            "ratelimit: 0", "ip-ratelimit: 0", "unwanted-reply-threshold: 0",
            # Answers come from the zones, so caches only hold SERVFAILs: keep them small and short.
            "msg-cache-size: 64k", "rrset-cache-size: 64k", "cache-max-ttl: 0",
            "cache-max-negative-ttl: 0", "prefetch: no", "serve-expired: no",
            # respip is what RPZ needs; no validator: the test zones are unsigned.
            'module-config: "respip iterator"',
            # The SERVFAIL mechanism: forwarding to 127.0.0.1 is refused without a packet sent.
            "do-not-query-localhost: yes",
            "unblock-lan-zones: yes", "insecure-lan-zones: yes",
            *[f'local-zone: "{zone}" nodefault' for zone in _DEFAULT_LOCAL_ZONES],
        ]
        for owner in self._names.values():
            kind = "deny" if owner.timeout else "typetransparent" if owner.servfail else None
            if kind and owner.records:
                server.append(f'local-zone: "{owner.text}" {kind}')
                server += [f'local-data: "{owner.text} {self.ttl} IN {record}"' for record in owner.records]
        sections = ["server:\n" + "".join(f"  {line}\n" for line in server)]
        sections.append(f'auth-zone:\n  name: "."\n  zonefile: "{d}/root.zone"\n'
                        "  for-downstream: yes\n  for-upstream: no\n  fallback-enabled: no\n")
        sections.append(f'rpz:\n  name: "{_RPZ_ORIGIN}"\n  zonefile: "{d}/rpz.zone"\n  rpz-log: no\n')
        for owner in self._names.values():
            if owner.servfail:
                # An empty zone that answers nothing itself carves the name out of ".", so the
                # query reaches the forwarder below.
                zone = d / f"servfail-{len(sections)}.zone"
                zone.write_text(f"{owner.text} {self.ttl} IN SOA invalid. hostmaster.invalid. 1 3600 600 86400 {self.ttl}\n")
                sections.append(f'auth-zone:\n  name: "{owner.text}"\n  zonefile: "{zone}"\n'
                                "  for-downstream: no\n  for-upstream: no\n")
                sections.append(f'forward-zone:\n  name: "{owner.text}"\n  forward-addr: 127.0.0.1@1\n')
        return "".join(sections)

    # --------------------------------------------------------------- start and stop
    def start(self) -> "DnsServer":
        assert self.proc is None, "already started"
        (self.directory / "root.zone").write_text(self._zone_file())
        (self.directory / "rpz.zone").write_text(self._rpz_file())
        for attempt in range(3):  # the free port may be taken in between: try another
            self.port = _free_port(self.ipv6)
            config = self.directory / "unbound.conf"
            config.write_text(self.config_text())
            self.log_path.write_text("")
            with open(self.stderr_path, "wb") as stderr:
                self.proc = subprocess.Popen([UNBOUND, "-d", "-c", str(config)], stdin=subprocess.DEVNULL,
                                             stdout=stderr, stderr=stderr, start_new_session=True)
            _live.add(self.proc)
            if self._wait_ready():
                self._check_log()
                self.reset_query_count()
                return self
            self._terminate()
            if "could not open ports" not in self.log_text() + self.stderr_text():
                break
        raise RuntimeError(f"unbound did not start:\n{self.stderr_text()}\n{self.log_text()[-4000:]}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self.ask(_READY_NAME, "A", timeout=0.2) is not None:
                return True
        return False

    def _check_log(self) -> None:
        # unbound starts even when a zone file has a bad record; the test data must not be lost.
        errors = [line for line in self.log_text().splitlines() if " error: " in line]
        if errors:
            self.stop()
            raise ValueError("unbound refused the test zones:\n" + "\n".join(errors))

    def _terminate(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT)
        _live.discard(proc)

    def stop(self) -> None:
        self._terminate()

    def cleanup(self) -> None:
        """Stops the server and removes its directory when it made it itself."""
        self.stop()
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> "DnsServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def address(self) -> str:
        """For dns.servers: "127.0.0.1:PORT"."""
        return f"{self.host}:{self.port}"

    @property
    def address6(self) -> Optional[str]:
        return f"[::1]:{self.port}" if self.ipv6 else None

    # --------------------------------------------------------------- what it saw
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def queries(self) -> list[tuple[str, str]]:
        """(name without the final dot, lower case; type) of each query received since start or
        the last reset_query_count(), in order."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                text = log.read().decode(errors="replace")
        except OSError:
            return []
        found = []
        for line in text.splitlines():
            match = _QUERY_LINE.search(line)
            if match and match.group(2).lower() != _READY_NAME:
                found.append((match.group(2).rstrip(".").lower(), match.group(3)))
        return found

    def query_count(self, name: Optional[Name] = None, qtype: Optional[str] = None) -> int:
        """Queries received (all, or for one name, and one type such as "TXT")."""
        key = None if name is None else _logged_name(_octets(name, "utf-8"))
        return sum(1 for n, t in self.queries()
                   if (key is None or n == key) and (qtype is None or t == qtype.upper()))

    def reset_query_count(self) -> None:
        """Counts from now on."""
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0

    # --------------------------------------------------------------- a client for the tests
    def ask(self, name: str, qtype: str = "A", *, timeout: float = 2.0, tcp: bool = False,
            host: Optional[str] = None) -> Optional[dnslib.DNSRecord]:
        """One query with dnslib (recursion desired, as a forwarding resolver sends it); None when
        no answer came within `timeout`."""
        question = dnslib.DNSRecord.question(name, qtype)
        try:
            reply = question.send(host or self.host, self.port, tcp=tcp, timeout=timeout,
                                  ipv6=":" in (host or self.host))
        except (socket.timeout, TimeoutError, ConnectionError, OSError):
            return None
        return dnslib.DNSRecord.parse(reply)


def _logged_name(name: bytes) -> str:
    """How unbound's log writes a name (dname_str): octets other than letters, digits, '-', '_'
    and '*' as '?'."""
    name = name.rstrip(b".").lower()
    return "".join(chr(c) if (chr(c).isalnum() and c < 128) or c in b"-_*." else "?" for c in name)


def _ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def _free_port(ipv6: bool) -> int:
    """A port that was free a moment ago for UDP and TCP on 127.0.0.1 (and ::1)."""
    hosts = [(socket.AF_INET, "127.0.0.1")] + ([(socket.AF_INET6, "::1")] if ipv6 else [])
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        sockets = []
        try:
            for family, host in hosts:
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    s = socket.socket(family, kind)
                    sockets.append(s)
                    if kind == socket.SOCK_STREAM:
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free port for the DNS server")
