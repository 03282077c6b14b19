"""The gateway's resolver (libunbound, gateway/dns/resolver.cpp) against a real DNS server
(dns_server.DnsServer), through `mailgate resolve [--config FILE] NAME [TYPE]`: record types,
status mapping, the per-query deadline, forwarders with ports, the cache, parallel queries."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import NamedTuple, Optional

import pytest

from dns_server import DnsServer

HUGE_TEXT = "x" * 2000  # over the UDP answer size: truncated, then fetched over TCP
# 2001:db8::10's PTR name (RFC 3596 §2.5): its 32 nibbles, lowest first.
REVERSE6 = ".".join(reversed("20010db8000000000000000000000010")) + ".ip6.arpa"

ZONES = {
    "example.com": [{"TXT": "v=spf1 mx -all"}, {"MX": [10, "mx.example.com"]}, {"MX": [20, "mx2.example.com."]}],
    "mx.example.com": [{"A": "192.0.2.10"}, {"A": "192.0.2.11"}, {"AAAA": "2001:db8::10"}],
    "multi.example.com": [{"TXT": ["v=spf1 ", "ip4:192.0.2.1 ", "-all"]}],
    "odd.example.com": [{"TXT": ["with space", 'a "quote"', "back\\slash", "", "caf\u00e9", b"\xff\x00\x80"]}],
    "huge.example.com": [{"TXT": HUGE_TEXT}],
    "empty-record.example.com": [{"TXT": []}, {"TXT": "v=spf1 -all"}],
    "spf.example.com": [{"SPF": "v=spf1 -all"}],
    "a.b.deep.example.com": [{"A": "192.0.2.20"}],
    "alias.example.com": [{"CNAME": "mx.example.com"}],
    "loop.example.com": [{"CNAME": "LOOP.example.com"}],
    "10.2.0.192.in-addr.arpa": [{"PTR": "mx.example.com"}],
    REVERSE6: [{"PTR": "mx.example.com"}],
    "silent.example.com": ["TIMEOUT"],
    "broken.example.com": ["SERVFAIL"],
    "printer.home.arpa": [{"A": "192.0.2.60"}],
    "client.test": [{"A": "192.0.2.61"}],
    **{f"n{i}.example.com": [{"A": f"192.0.2.{100 + i}"}] for i in range(40)},
    **{f"silent{i}.example.com": ["TIMEOUT"] for i in range(10)},
}


class Run(NamedTuple):
    code: int
    lines: list[str]
    stderr: str
    seconds: float


@pytest.fixture(scope="module")
def binary(mailgate_bin):
    return mailgate_bin


def config(tmp_path: Path, servers: list[str], timeout: str = "1s", retries: int = 1) -> Path:
    path = tmp_path / f"resolve-{len(list(tmp_path.glob('resolve-*.toml')))}.toml"
    quoted = ", ".join(f'"{s}"' for s in servers)
    path.write_text(f'[dns]\nservers = [{quoted}]\ntimeout = "{timeout}"\nretries = {retries}\n')
    return path


def resolve(binary: str, config_path: Path, name: str, qtype: Optional[str] = "A", *,
            stdin: Optional[str] = None) -> Run:
    args = [binary, "resolve", "--config", str(config_path), name] + ([qtype] if qtype else [])
    started = time.monotonic()
    done = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=60)
    return Run(done.returncode, done.stdout.splitlines(), done.stderr, time.monotonic() - started)


@pytest.fixture
def ask(binary, dns, tmp_path):
    """ask(name, type) through the module's server, deadline 1s × (1 + 1 retry)."""
    path = config(tmp_path, [dns.address])
    return lambda name, qtype="A": resolve(binary, path, name, qtype)


# ------------------------------------------------------------------------------ record types
@pytest.mark.parametrize("name, qtype, expected", [
    ("example.com", "TXT", ['example.com. TXT "v=spf1 mx -all"']),
    ("multi.example.com", "TXT", ['multi.example.com. TXT "v=spf1 " "ip4:192.0.2.1 " "-all"']),
    ("spf.example.com", "SPF", ['spf.example.com. SPF "v=spf1 -all"']),
    ("spf.example.com", "spf", ['spf.example.com. SPF "v=spf1 -all"']),
    ("mx.example.com", "A", ["mx.example.com. A 192.0.2.10", "mx.example.com. A 192.0.2.11"]),
    ("mx.example.com", "aaaa", ["mx.example.com. AAAA 2001:db8::10"]),
    ("example.com", "MX", ["example.com. MX 10 mx.example.com", "example.com. MX 20 mx2.example.com"]),
    ("10.2.0.192.in-addr.arpa", "PTR", ["10.2.0.192.in-addr.arpa. PTR mx.example.com"]),
    ("alias.example.com", "A", ["alias.example.com. A 192.0.2.10", "alias.example.com. A 192.0.2.11"]),
    ("MX.Example.COM.", "A", ["MX.Example.COM. A 192.0.2.10", "MX.Example.COM. A 192.0.2.11"]),
])
def test_record_types(ask, name, qtype, expected):
    run = ask(name, qtype)
    assert (run.code, sorted(run.lines)) == (0, expected), run.stderr


# `mailgate resolve 192.0.2.1 PTR` asks what `dig -x` asks: the address's reverse name, not the
# address as a name.
@pytest.mark.parametrize("address, reverse", [
    ("192.0.2.10", "10.2.0.192.in-addr.arpa"),
    ("2001:db8::10", REVERSE6),
    ("2001:DB8:0:0::0010", REVERSE6),
])
def test_ptr_of_an_address_asks_its_reverse_name(ask, dns, address, reverse):
    dns.reset_query_count()
    run = ask(address, "PTR")
    assert (run.code, run.lines) == (0, [f"{reverse}. PTR mx.example.com"]), run.stderr
    assert dns.query_count(reverse, "PTR") == 1, dns.queries()
    assert dns.query_count(address) == 0, dns.queries()


def test_ptr_of_an_address_in_batch_mode_and_of_a_name_as_given(binary, dns, tmp_path):
    run = resolve(binary, config(tmp_path, [dns.address]), "-", "A",
                  stdin="192.0.2.10 PTR\n2001:db8::10 PTR\nmx.example.com PTR\n192.0.2.10\n")
    assert run.lines == ["10.2.0.192.in-addr.arpa. PTR mx.example.com", f"{REVERSE6}. PTR mx.example.com",
                         "mx.example.com. PTR: nodata", "192.0.2.10. A: nxdomain"], run.stderr


def test_txt_octets_come_through_exactly(ask):
    run = ask("odd.example.com", "TXT")
    assert run.lines == [r'odd.example.com. TXT "with space" "a \"quote\"" "back\\slash" "" "caf\195\169" '
                         r'"\255\000\128"']


def test_txt_larger_than_a_udp_answer(ask):
    run = ask("huge.example.com", "TXT")
    [line] = run.lines
    strings = line.split(" TXT ", 1)[1].split(" ")
    assert [len(s) - 2 for s in strings] == [255] * 7 + [2000 - 7 * 255]
    assert "".join(s.strip('"') for s in strings) == HUGE_TEXT


def test_record_of_no_strings_does_not_hide_the_others(ask):
    # libunbound answers SERVFAIL for such an RRset; the resolver reads the answer packet instead
    # (RFC 7208 test suite, "null-text").
    run = ask("empty-record.example.com", "TXT")
    assert (run.code, sorted(run.lines)) == (0, ['empty-record.example.com. TXT "v=spf1 -all"',
                                                 r"empty-record.example.com. TXT \# 0"])


# ------------------------------------------------------------------------------ statuses
@pytest.mark.parametrize("name, qtype, status", [
    ("nothing.example.com", "A", "nxdomain"),
    ("example.com", "AAAA", "nodata"),
    ("deep.example.com", "A", "nodata"),  # an empty non-terminal
    ("spf.example.com", "TXT", "nodata"),
])
def test_negative_answers_exit_0(ask, name, qtype, status):
    run = ask(name, qtype)
    assert (run.code, run.lines) == (0, [f"{name}. {qtype}: {status}"])


def test_servfail(ask, dns):
    dns.reset_query_count()
    run = ask("broken.example.com", "TXT")
    assert (run.code, run.lines) == (1, ["broken.example.com. TXT: servfail"])
    assert run.seconds < 2.0  # an answer, not the deadline
    assert dns.query_count("broken.example.com", "TXT") >= 1


def test_cname_loop_is_servfail(ask):
    run = ask("loop.example.com", "A")
    assert (run.code, run.lines) == (1, ["loop.example.com. A: servfail"])


@pytest.mark.parametrize("timeout, retries, deadline", [("1s", 1, 2.0), ("500ms", 0, 0.5), ("700ms", 2, 2.1)])
def test_timeout_comes_at_the_deadline(binary, dns, tmp_path, timeout, retries, deadline):
    run = resolve(binary, config(tmp_path, [dns.address], timeout, retries), "silent.example.com", "TXT")
    assert (run.code, run.lines) == (1, ["silent.example.com. TXT: timeout"])
    # dns.timeout × (dns.retries + 1), plus the process's own start and stop.
    assert deadline <= run.seconds <= deadline + 1.0, run.seconds


@pytest.mark.parametrize("name", ["x" * 64 + ".example.com", ("a" * 60 + ".") * 4 + "example.com", "a..example.com", ""])
def test_bad_names_are_refused_without_a_query(ask, dns, name):
    dns.reset_query_count()
    run = ask(name, "A")
    assert run.code == 1 and run.lines[0].endswith(": error"), run
    assert dns.query_count() == 0


def test_unknown_type(ask):
    assert ask("example.com", "HINFO").code == 2


def test_special_use_names(ask, dns):
    # Private and documentation reverse zones and home.arpa go to the servers (the site's own
    # resolvers know them); test., invalid., onion. and localhost are answered by libunbound itself
    # (RFC 6761, RFC 7686), so test data under them is never asked for.
    assert ask("printer.home.arpa").lines == ["printer.home.arpa. A 192.0.2.60"]
    dns.reset_query_count()
    assert ask("client.test").lines == ["client.test. A: nxdomain"]
    assert ask("localhost").lines == ["localhost. A 127.0.0.1"]
    assert dns.query_count() == 0


# ------------------------------------------------------------------------------ forwarders
def test_forwarder_over_ipv6_with_port(binary, dns, tmp_path):
    if not dns.ipv6:
        pytest.skip("no ::1 on this host")
    run = resolve(binary, config(tmp_path, [dns.address6]), "mx.example.com", "AAAA")
    assert (run.code, run.lines) == (0, ["mx.example.com. AAAA 2001:db8::10"])


def test_a_dead_forwarder_before_a_live_one(binary, dns, tmp_path):
    # libunbound ignores ICMP port unreachable: each try of the dead one costs the resend floor
    # (1 s here, see resendSchedule in gateway/dns/resolver.cpp) before the live one is asked.
    path = config(tmp_path, [f"127.0.0.1:{_closed_port()}", dns.address], timeout="3s", retries=1)
    for i in range(3):
        run = resolve(binary, path, f"n{i}.example.com", "A")
        assert (run.code, run.lines) == (0, [f"n{i}.example.com. A 192.0.2.{100 + i}"]), run


# ------------------------------------------------------------------------------ one resolver, many questions
def test_answers_come_from_the_cache_once_the_server_is_gone(binary, tmp_path):
    server = DnsServer({"cached.example.com": [{"A": "192.0.2.50"}], "other.example.com": [{"A": "192.0.2.51"}]},
                       directory=tmp_path / "dns").start()
    try:
        proc = subprocess.Popen([binary, "resolve", "--config", str(config(tmp_path, [server.address])), "-", "A"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def ask(name: str) -> tuple[str, float]:
            started = time.monotonic()
            proc.stdin.write(name + "\n")
            proc.stdin.flush()
            return proc.stdout.readline().strip(), time.monotonic() - started

        assert ask("cached.example.com")[0] == "cached.example.com. A 192.0.2.50"
        assert server.query_count("cached.example.com") == 1
        server.stop()
        line, seconds = ask("cached.example.com")
        assert line == "cached.example.com. A 192.0.2.50" and seconds < 0.5
        assert ask("other.example.com")[0] == "other.example.com. A: timeout"
        proc.stdin.close()
        assert proc.wait(timeout=30) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.cleanup()


def test_fifty_parallel_queries(binary, dns, tmp_path):
    # 40 answered and 10 that time out, interleaved: in parallel the whole batch takes one
    # deadline (2 s), in series it would take ten.
    names = [f"n{i}.example.com" for i in range(40)]
    for i in range(10):
        names.insert(i * 5, f"silent{i}.example.com")
    dns.reset_query_count()
    run = resolve(binary, config(tmp_path, [dns.address]), "-", "A", stdin="".join(n + "\n" for n in names))
    expected = [f"{n}. A: timeout" if n.startswith("silent") else f"{n}. A 192.0.2.{100 + int(n[1:].split('.')[0])}"
                for n in names]
    assert run.lines == expected
    assert run.code == 1
    assert run.seconds < 2.0 + 2.0, run.seconds
    assert all(dns.query_count(n, "A") >= 1 for n in names)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
