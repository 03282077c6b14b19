"""Self-tests of dns_server.DnsServer (no gateway needed): what unbound answers for the test zones,
checked with dnslib as a forwarding resolver would ask."""

from __future__ import annotations

import socket
import time

import dnslib
import pytest

from dns_server import DnsServer

NOERROR, SERVFAIL, NXDOMAIN = 0, 2, 3
LONG_TEXT = "v=spf1 " + " ".join(f"ip4:192.0.2.{i}" for i in range(1, 30)) + " -all"  # > 255 octets
HUGE_TEXT = "x" * 2000  # more than a UDP answer holds (EDNS 1232): truncated, then over TCP

ZONES = {
    "example.com": [{"TXT": "v=spf1 mx -all"}, {"MX": [10, "mx.example.com"]}, {"MX": [20, "mx2.example.com."]}],
    "mx.example.com": [{"A": "192.0.2.10"}, {"AAAA": "2001:DB8:0:0::10"}],
    "multi.example.com": [{"TXT": ["v=spf1 ", "ip4:192.0.2.1 ", "-all"]}, {"TXT": "second record"}],
    "odd.example.com": [{"TXT": ["with space", 'a "quote"', "back\\slash", "", "caf\u00e9", b"\xff\x00\x80"]}],
    "long.example.com": [{"TXT": LONG_TEXT}],
    "huge.example.com": [{"TXT": HUGE_TEXT}],
    "empty-record.example.com": [{"TXT": []}, {"TXT": "v=spf1 -all"}],
    "spf-only.example.com": [{"SPF": "v=spf1 -all"}, {"TXT": "NONE"}],
    "a.b.deep.example.com": [{"A": "192.0.2.20"}],
    "alias.example.com": [{"CNAME": "mx.example.com"}],
    "10.2.0.192.in-addr.arpa": [{"PTR": "mx.example.com"}],
    "null-mx.example.com": [{"MX": [0, ""]}],
    "Mixed.Case.example.com": [{"A": "192.0.2.30"}],
    "silent.example.com": ["TIMEOUT"],
    "spftimeout.example.com": [{"TXT": "v=spf1 -all"}, "TIMEOUT"],
    "broken.example.com": ["SERVFAIL"],
}


def ask(dns: DnsServer, name: str, qtype: str, **kwargs) -> dnslib.DNSRecord:
    reply = dns.ask(name, qtype, **kwargs)
    assert reply is not None, f"no answer for {name} {qtype}"
    return reply


def strings(reply: dnslib.DNSRecord) -> list[list[bytes]]:
    """Each TXT/SPF record's character-strings, read off the wire (dnslib parses type 99 as
    opaque data, and an empty rdata as '')."""
    records = []
    for rr in reply.rr:
        if rr.rtype not in (dnslib.QTYPE.TXT, 99):
            continue
        buffer = dnslib.DNSBuffer()
        if rr.rdata != "":
            rr.rdata.pack(buffer)
        raw, parts, at = bytes(buffer.data), [], 0
        while at < len(raw):
            parts.append(raw[at + 1:at + 1 + raw[at]])
            at += 1 + raw[at]
        records.append(parts)
    return records


def test_txt_records_of_several_strings(dns):
    reply = ask(dns, "multi.example.com", "TXT")
    assert reply.header.rcode == NOERROR
    assert sorted(strings(reply)) == [[b"second record"], [b"v=spf1 ", b"ip4:192.0.2.1 ", b"-all"]]


def test_txt_strings_keep_every_octet(dns):
    assert strings(ask(dns, "odd.example.com", "TXT")) == [
        [b"with space", b'a "quote"', b"back\\slash", b"", "caf\u00e9".encode(), b"\xff\x00\x80"]]


def test_long_txt_is_split_into_255_octet_strings(dns):
    [parts] = strings(ask(dns, "long.example.com", "TXT"))
    assert [len(p) for p in parts] == [255, len(LONG_TEXT) - 255]
    assert b"".join(parts) == LONG_TEXT.encode()


def test_txt_larger_than_udp_is_truncated_then_served_over_tcp(dns):
    question = dnslib.DNSRecord.question("huge.example.com", "TXT")
    question.add_ar(dnslib.EDNS0(udp_len=1232))
    udp = dnslib.DNSRecord.parse(question.send(dns.host, dns.port, timeout=2))
    assert udp.header.tc == 1
    [parts] = strings(ask(dns, "huge.example.com", "TXT", tcp=True))
    assert b"".join(parts) == HUGE_TEXT.encode()


def test_record_of_no_strings(dns):
    assert sorted(strings(ask(dns, "empty-record.example.com", "TXT"))) == [[], [b"v=spf1 -all"]]


def test_spf_type_99_and_the_suites_none(dns):
    assert strings(ask(dns, "spf-only.example.com", "SPF")) == [[b"v=spf1 -all"]]
    reply = ask(dns, "spf-only.example.com", "TXT")
    assert (reply.header.rcode, reply.rr) == (NOERROR, [])


def test_addresses_mx_ptr(dns):
    assert [str(rr.rdata) for rr in ask(dns, "mx.example.com", "A").rr] == ["192.0.2.10"]
    assert [str(rr.rdata) for rr in ask(dns, "mx.example.com", "AAAA").rr] == ["2001:db8::10"]
    mx = sorted((rr.rdata.preference, str(rr.rdata.label)) for rr in ask(dns, "example.com", "MX").rr)
    assert mx == [(10, "mx.example.com."), (20, "mx2.example.com.")]
    assert [str(rr.rdata) for rr in ask(dns, "10.2.0.192.in-addr.arpa", "PTR").rr] == ["mx.example.com."]
    assert [str(rr.rdata.label) for rr in ask(dns, "null-mx.example.com", "MX").rr] == ["."]


def test_cname_is_followed_inside_the_data(dns):
    reply = ask(dns, "alias.example.com", "A")
    assert [(rr.rtype, str(rr.rdata)) for rr in reply.rr] == [
        (dnslib.QTYPE.CNAME, "mx.example.com."), (dnslib.QTYPE.A, "192.0.2.10")]


def test_nxdomain_nodata_and_empty_non_terminals(dns):
    def status(name, qtype):
        reply = ask(dns, name, qtype)
        return dnslib.RCODE[reply.header.rcode], len(reply.rr)

    assert status("example.com", "A") == ("NOERROR", 0)  # other types only
    assert status("nothing.example.com", "TXT") == ("NXDOMAIN", 0)
    assert status("deep.example.com", "A") == ("NOERROR", 0)  # empty non-terminals
    assert status("b.deep.example.com", "A") == ("NOERROR", 0)
    assert status("c.a.b.deep.example.com", "A") == ("NXDOMAIN", 0)
    assert status("com", "A") == ("NOERROR", 0)
    assert status("example.org", "A") == ("NXDOMAIN", 0)
    # Negative answers carry the SOA, so resolvers cache them (RFC 2308 §3).
    assert [rr.rtype for rr in ask(dns, "nothing.example.com", "A").auth] == [dnslib.QTYPE.SOA]


def test_names_are_case_insensitive(dns):
    assert [str(rr.rdata) for rr in ask(dns, "mixed.CASE.example.COM", "A").rr] == ["192.0.2.30"]
    assert strings(ask(dns, "EXAMPLE.com", "TXT")) == [[b"v=spf1 mx -all"]]


def test_builtin_zones_are_off(dns):
    # unbound would answer these itself (AS112, RFC 6761 names): test data there must win.
    assert ask(dns, "10.2.0.192.in-addr.arpa", "PTR").rr
    assert ask(dns, "localhost", "A").header.rcode == NXDOMAIN


def test_timeout_name_gets_no_answer(dns):
    started = time.monotonic()
    assert dns.ask("silent.example.com", "TXT", timeout=1.5) is None
    assert time.monotonic() - started >= 1.4
    assert dns.ask("silent.example.com", "A", timeout=0.5) is None
    # Only that name: below it, an ordinary NXDOMAIN.
    assert ask(dns, "below.silent.example.com", "TXT").header.rcode == NXDOMAIN
    # ... and its parent stays an empty non-terminal of the zone.
    assert ask(dns, "example.com", "AAAA").header.rcode == NOERROR


def test_timeout_name_with_records_answers_those(dns):
    assert strings(ask(dns, "spftimeout.example.com", "TXT")) == [[b"v=spf1 -all"]]
    assert dns.ask("spftimeout.example.com", "SPF", timeout=1.0) is None


def test_servfail_name_fails_at_once(dns):
    for name in ("broken.example.com", "below.broken.example.com"):
        started = time.monotonic()
        reply = ask(dns, name, "TXT", timeout=2)
        assert reply.header.rcode == SERVFAIL
        assert time.monotonic() - started < 0.5


def test_query_count(dns):
    dns.reset_query_count()
    ask(dns, "example.com", "TXT")
    ask(dns, "Example.COM.", "TXT")
    ask(dns, "example.com", "MX")
    ask(dns, "nothing.example.com", "A")
    dns.ask("silent.example.com", "A", timeout=0.3)
    assert dns.query_count() == 5
    assert dns.query_count("example.com") == 3
    assert dns.query_count("EXAMPLE.com.", "txt") == 2
    assert dns.query_count("silent.example.com", "A") == 1
    dns.reset_query_count()
    assert dns.query_count() == 0


def test_listens_on_ipv6_loopback_too(dns):
    if not dns.ipv6:
        pytest.skip("no ::1 on this host")
    assert [str(rr.rdata) for rr in ask(dns, "mx.example.com", "A", host="::1").rr] == ["192.0.2.10"]


def test_bad_zone_data_is_refused():
    with pytest.raises(ValueError):
        DnsServer({"x" * 64 + ".example.com": [{"A": "192.0.2.1"}]})
    with pytest.raises(ValueError):
        DnsServer({"example.com": [{"HINFO": "x"}]})
    with pytest.raises(ValueError):
        DnsServer({"example.com": [{"A": "not an address"}]})
    with pytest.raises(ValueError):
        DnsServer({"example.com": [{"TXT": ["y" * 256]}]})


def test_stop_ends_the_process_and_frees_the_port(tmp_path):
    server = DnsServer({"example.com": [{"A": "192.0.2.1"}]}, directory=tmp_path).start()
    port, proc = server.port, server.proc
    assert server.running
    server.stop()
    assert proc.poll() is not None and not server.running
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))
