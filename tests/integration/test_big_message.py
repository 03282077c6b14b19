"""A 50 MiB message through the gateway: it arrives byte-identical, and the gateway spools it to disk
instead of holding it in memory (design.md §1: "a 50 MiB message does not cost 50 MiB of memory")."""

from __future__ import annotations

import hashlib
import time

import pytest

from harness import CLIENT_HELO, Raw, check_received, make_message, parse_header_block

pytestmark = pytest.mark.time_limit(180)

MIB = 1024 * 1024
BLOCKS = 50  # of about 1 MiB each
RSS_GROWTH_LIMIT_KIB = 16 * 1024


def make_block() -> bytes:
    """About 1 MiB of 80-octet lines, some starting with dots (so stuffing is exercised)."""
    text = (b"abcdefghijklmnopqrstuvwxyz0123456789" * 2)[:69]
    lines = []
    for i in range(MIB // 80):
        if i % 1000 == 0:
            lines.append(b"." + b"d" * 77 + b"\r\n")
        elif i % 1000 == 500:
            lines.append(b"..dots" + b"e" * 72 + b"\r\n")
        else:
            lines.append(b"%08d " % i + text + b"\r\n")
    return b"".join(lines)


def stuff(lines: bytes) -> bytes:
    """Dot-stuffing of whole CRLF-terminated lines, without the end of data."""
    if lines.startswith(b"."):
        lines = b"." + lines
    return lines.replace(b"\r\n.", b"\r\n..")


@pytest.fixture
def big_gateway(start_gateway, make_sink, tmp_path):
    store = tmp_path / "sink-store"
    store.mkdir()
    sink = make_sink(store_dir=str(store), store_threshold=4 * MIB, timeout=120)
    gateway = start_gateway(sink=sink,
                            server={"workers": 1},
                            downstream={"timeout": "60s"},
                            spool={"memory_limit": "1MiB"},
                            stages=[{"type": "size_limit", "max_bytes": "100MiB"}])
    return gateway, sink


def test_50_mib_message_arrives_byte_identical_with_bounded_memory(big_gateway):
    gateway, sink = big_gateway
    header = make_message(subject="fifty mebibytes", body=b"")  # headers and the blank line
    block = make_block()
    original_size = len(header) + BLOCKS * len(block)
    original_hash = hashlib.sha256(header)
    for _ in range(BLOCKS):
        original_hash.update(block)

    with Raw.session(gateway.port, timeout=120) as raw:
        # Warm up: one small message through the same paths, so that what is measured next is
        # the cost of the big one, not of first use.
        raw.transaction("a@example.com", ["b@example.org"], make_message(body="warm up\r\n")).check(250)
        raw.cmd("RSET").check(250)
        sink.wait_for_messages(1)
        baseline = gateway.vm_hwm_kib()

        raw.send(f"MAIL FROM:<a@example.com> SIZE={original_size}\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        assert [r.code for r in raw.read_replies(3)] == [250, 250, 354]
        raw.send(stuff(header))
        stuffed_block = stuff(block)
        for _ in range(BLOCKS):
            raw.send(stuffed_block)
        started = time.monotonic()
        raw.send(b".\r\n")
        raw.read_reply(timeout=120).check(250)
        relay_seconds = time.monotonic() - started
        peak = gateway.vm_hwm_kib()
        raw.cmd("QUIT").check(221)

    deliveries = sink.wait_for_messages(2, timeout=30)
    assert len(deliveries) == 2
    big = deliveries[1]
    assert big.size > original_size, f"the downstream got {big.size} bytes of {original_size}"
    assert big.tail_sha256(original_size) == original_hash.hexdigest(), (
        "the 50 MiB message did not arrive byte-identical")
    headers = parse_header_block(big.head(big.size - original_size))
    check_received(headers, helo=CLIENT_HELO)

    growth = peak - baseline
    assert growth < RSS_GROWTH_LIMIT_KIB, (
        f"peak RSS grew by {growth} KiB ({baseline} -> {peak}) for a 50 MiB message: "
        "it should be spooled to a file (spool.memory_limit = 1MiB)")
    print(f"50 MiB: relay after end of data took {relay_seconds:.1f} s; VmHWM {baseline} -> {peak} KiB")

    leftovers = [p for p in gateway.spool_dir.iterdir() if p.is_file()]
    assert leftovers == [], f"spool files left behind: {leftovers}"


def test_message_over_a_large_limit_is_refused_without_growing_memory(big_gateway):
    """101 MiB against a 100 MiB limit, without SIZE=: read, discarded, refused with 552 at the
    end, and not held in memory while it arrives."""
    gateway, sink = big_gateway
    block = stuff(make_block())
    with Raw.session(gateway.port, timeout=120) as raw:
        baseline = gateway.vm_hwm_kib()
        raw.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        assert [r.code for r in raw.read_replies(3)] == [250, 250, 354]
        raw.send(b"Subject: too big\r\n\r\n")
        for _ in range(101):
            raw.send(block)
        raw.send(b".\r\n")
        raw.read_reply(timeout=60).check(552, "5.3.4")
        peak = gateway.vm_hwm_kib()
        raw.cmd("NOOP").check(250)
    assert peak - baseline < RSS_GROWTH_LIMIT_KIB, f"VmHWM {baseline} -> {peak} KiB"
    time.sleep(0.3)
    assert sink.messages == []
