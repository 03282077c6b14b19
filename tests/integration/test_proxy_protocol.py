"""server.proxy_protocol: a trusted load balancer tells the real client address with a PROXY
header (v1 text or v2 binary) before the SMTP session; anyone else is cut off."""

from __future__ import annotations

import socket
import struct

import pytest

from harness import Raw, make_message, wait_for_port

pytestmark = pytest.mark.time_limit(60)


def proxied(port: int, header: bytes) -> Raw:
    raw = Raw(port)
    raw.send(header)
    return raw


def deliver(raw: Raw) -> None:
    raw.greet().check(220)
    raw.ehlo().check(250)
    raw.transaction("a@example.com", ["b@example.org"], make_message()).check(250)
    raw.cmd("QUIT").check(221)


def test_v1_header_gives_the_client_address(start_gateway, sink):
    gw = start_gateway(sink=sink, server={"proxy_protocol": True})
    with proxied(gw.port, b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 25\r\n") as raw:
        deliver(raw)
    [delivery] = sink.wait_for_messages(1)
    assert b"([192.0.2.7])" in delivery.content().split(b"\r\n\r\n")[0]
    [record] = gw.wait_for_records(lambda r: r.get("type") == "transaction")
    assert record["client"] == {"ip": "192.0.2.7", "port": 40000}


def test_v2_header_gives_the_client_address(start_gateway, sink):
    gw = start_gateway(sink=sink, server={"proxy_protocol": True})
    addresses = socket.inet_pton(socket.AF_INET6, "2001:db8::7") + socket.inet_pton(socket.AF_INET6, "::1") \
        + struct.pack("!HH", 50000, 25)
    header = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x21]) + struct.pack("!H", len(addresses)) + addresses
    with proxied(gw.port, header) as raw:
        deliver(raw)
    [record] = gw.wait_for_records(lambda r: r.get("type") == "transaction")
    assert record["client"] == {"ip": "2001:db8::7", "port": 50000}


def test_per_client_limit_counts_the_real_client(start_gateway, sink):
    gw = start_gateway(sink=sink, server={"proxy_protocol": True, "max_connections_per_client": 1})
    first = proxied(gw.port, b"PROXY TCP4 192.0.2.7 127.0.0.1 1 25\r\n")
    first.greet().check(220)
    other = proxied(gw.port, b"PROXY TCP4 192.0.2.8 127.0.0.1 2 25\r\n")
    other.greet().check(220)
    same = proxied(gw.port, b"PROXY TCP4 192.0.2.7 127.0.0.1 3 25\r\n")
    same.read_reply().check(421, "4.7.0")
    for raw in (first, other, same):
        raw.close()


def test_missing_or_malformed_header_closes_without_a_session(start_gateway, sink):
    gw = start_gateway(sink=sink, server={"proxy_protocol": True})
    for header in (b"EHLO client.test\r\n", b"PROXY TCP4 999.0.2.7 127.0.0.1 1 25\r\n"):
        with proxied(gw.port, header) as raw:
            raw.expect_closed()
    records = gw.wait_for_records(lambda r: r.get("type") == "connection", count=2)
    assert all("PROXY" in r["reason"] for r in records)


@pytest.mark.parametrize("command, family", [(0x21, 0xF1), (0x21, 0x13), (0x21, 0x41), (0x20, 0xF1)])
def test_v2_header_with_an_unknown_family_closes_without_a_session(start_gateway, sink, command, family):
    """proxy-protocol.txt §2.2: other values of the 14th byte "must be rejected as invalid by
    receivers"; they were taken for UNSPEC (the proxy's own address became the client's). A LOCAL
    command (0x20) is held to it too."""
    gw = start_gateway(sink=sink, server={"proxy_protocol": True})
    addresses = socket.inet_pton(socket.AF_INET, "192.0.2.7") + socket.inet_pton(socket.AF_INET, "127.0.0.1") \
        + struct.pack("!HH", 40000, 25)
    header = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([command, family]) + struct.pack("!H", len(addresses)) + addresses
    with proxied(gw.port, header) as raw:
        raw.expect_closed()
    [record] = gw.wait_for_records(lambda r: r.get("type") == "connection")
    assert "PROXY" in record["reason"] and f"0x{family:02x}" in record["reason"], record


def test_v2_local_with_unspec_is_a_health_check(start_gateway, sink):
    """A LOCAL command with UNSPEC is what a proxy's health check sends: a session on the proxy's
    own address."""
    gw = start_gateway(sink=sink, server={"proxy_protocol": True})
    with proxied(gw.port, b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20, 0x00, 0, 0])) as raw:
        deliver(raw)
    [record] = gw.wait_for_records(lambda r: r.get("type") == "transaction")
    assert record["client"]["ip"] == "127.0.0.1", record


def test_untrusted_source_is_refused(start_gateway, sink):
    gw = start_gateway(sink=sink, wait=False, server={"proxy_protocol": True, "proxy_sources": ["192.0.2.0/24"]})
    wait_for_port(gw.port)
    with proxied(gw.port, b"PROXY TCP4 192.0.2.7 127.0.0.1 1 25\r\n") as raw:
        raw.expect_closed()
    assert sink.messages == []
