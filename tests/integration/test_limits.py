"""Limits (design.md §3, §4, §6): connections in total and per client, idle timeout, recipients per
transaction, message size at MAIL and at DATA, line length, and DATA framing (bare LF / bare CR,
SMTP smuggling)."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from harness import (
    DEFAULT_MAX_BYTES,
    Raw,
    make_message,
    open_transaction,
)

pytestmark = pytest.mark.time_limit(60)


def greeting_when_possible(port: int, source: str = "127.0.0.1", timeout: float = 5.0) -> Raw:
    """Connects until the gateway greets with 220 (a slot freed a moment ago may take a moment
    to be counted free); returns the greeted connection."""
    deadline = time.monotonic() + timeout
    while True:
        raw = Raw(port, source=source)
        reply = raw.read_reply()
        if reply.code == 220:
            return raw
        raw.close()
        assert time.monotonic() < deadline, f"still refused after {timeout} s: {reply}"
        time.sleep(0.1)


def expect_refused_connection(port: int, source: str = "127.0.0.1") -> int:
    """Asserts a new connection gets 421 4.7.0 and is closed; returns its local port."""
    with Raw(port, source=source) as raw:
        raw.read_reply().check(421, "4.7.0")
        raw.expect_closed()
        return raw.local_port


# ------------------------------------------------------------------------------- connections
def test_max_connections(start_gateway, sink):
    gateway = start_gateway(sink=sink, server={"max_connections": 3, "max_connections_per_client": 3})
    time.sleep(0.2)  # let the readiness probe's connection be forgotten
    held = [Raw(gateway.port, source=f"127.0.0.{10 + i}") for i in range(3)]
    try:
        for raw in held:
            raw.greet()
        refused_port = expect_refused_connection(gateway.port, source="127.0.0.20")
        # Held sessions are unaffected.
        for raw in held:
            raw.ehlo()
        # Closing one frees a slot.
        held.pop().cmd("QUIT").check(221)
        with greeting_when_possible(gateway.port, source="127.0.0.21") as raw:
            raw.ehlo()
    finally:
        for raw in held:
            raw.close()
    # A refused connection leaves a decision record too.
    records = gateway.wait_for_records(
        lambda r: r.get("client", {}).get("port") == refused_port
        and str(r.get("reply", "")).startswith("421"))
    assert records, "no decision record for the refused connection"


def test_max_connections_per_client(start_gateway, sink):
    gateway = start_gateway(sink=sink, server={"max_connections": 100, "max_connections_per_client": 2})
    held = [Raw(gateway.port, source="127.0.0.2") for _ in range(2)]
    try:
        for raw in held:
            raw.greet()
        expect_refused_connection(gateway.port, source="127.0.0.2")
        # Another client is not affected.
        with Raw(gateway.port, source="127.0.0.3") as other:
            other.greet()
            other.ehlo()
        # A freed slot can be used again by the same client.
        held.pop().close()
        with greeting_when_possible(gateway.port, source="127.0.0.2") as raw:
            raw.ehlo()
    finally:
        for raw in held:
            raw.close()


def test_idle_timeout_after_greeting(start_gateway, sink):
    gateway = start_gateway(sink=sink, server={"idle_timeout": "1s"})
    with Raw(gateway.port) as raw:
        raw.greet()
        started = time.monotonic()
        raw.read_reply(timeout=6).check(421, "4.4.2")
        assert 0.5 <= time.monotonic() - started < 5
        raw.expect_closed()


def test_idle_timeout_restarts_with_each_command(start_gateway, sink):
    gateway = start_gateway(sink=sink, server={"idle_timeout": "1s"})
    with Raw.session(gateway.port) as raw:
        for _ in range(5):  # 2.5 s of activity, never 1 s idle
            time.sleep(0.5)
            raw.cmd("NOOP").check(250)
        raw.cmd("MAIL FROM:<a@example.com>").check(250)
        raw.read_reply(timeout=6).check(421, "4.4.2")  # idle inside a transaction, too
        raw.expect_closed()
    assert sink.messages == []


def test_idle_timeout_in_the_middle_of_data(start_gateway, sink):
    gateway = start_gateway(sink=sink, server={"idle_timeout": "1s", "command_timeout": "1s"})
    with Raw.session(gateway.port) as raw:
        open_transaction(raw)
        raw.send(b"Subject: never finished\r\n\r\nsome text\r\n")
        raw.read_reply(timeout=6).check(421, "4.4.2")
        raw.expect_closed()
    time.sleep(0.3)
    assert sink.messages == [], "a message that never ended was delivered"


# ------------------------------------------------------------------------------- recipients
def test_a_slow_reader_gets_every_pipelined_reply_and_the_221(gateway):
    """A client that pipelined many commands ending in QUIT and reads its replies slowly, after a
    pause of a few seconds, still gets every one of them, the 221 included: the gateway gives its
    last replies 10 s to leave before it closes (the README's fixed limit), not 10 ms."""
    client = socket.socket()
    # A small receive buffer, set before connecting, keeps the replies in the gateway: more than
    # its socket can hold (Linux lets that grow to net.ipv4.tcp_wmem's 4 MiB) wait in its queue.
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
    client.settimeout(30)
    client.connect(("127.0.0.1", gateway.port))
    try:
        received = b""
        while not received.endswith(b"\r\n"):
            received += client.recv(4096)
        assert received.startswith(b"220 "), received
        client.sendall(b"EHLO client.test\r\n")
        one = b""
        while b"\r\n250 " not in one or not one.endswith(b"\r\n"):
            one += client.recv(4096)
        count = (8 << 20) // len(one) + 1  # about 8 MiB of replies
        commands = b"EHLO client.test\r\n" * count + b"QUIT\r\n"
        sender = threading.Thread(target=client.sendall, args=(commands,), daemon=True)
        sender.start()
        time.sleep(3)  # the client is busy elsewhere: nothing is read
        chunks = []
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            try:
                chunk = client.recv(16 * 1024)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            time.sleep(0.002)  # a slow reader: a few MB/s
        sender.join(timeout=5)
        replies = b"".join(chunks)
    finally:
        client.close()
    assert replies.count(one) == count, (
        f"{replies.count(one)} of {count} EHLO replies arrived; the stream ended with {replies[-200:]!r}")
    assert replies.endswith(b"221 2.0.0 Bye\r\n"), f"no 221 at the end: {replies[-200:]!r}"
    assert len(replies) == count * len(one) + len(b"221 2.0.0 Bye\r\n")


def test_max_recipients(start_gateway, sink):
    gateway = start_gateway(sink=sink, server={"max_recipients": 3})
    with Raw.session(gateway.port) as raw:
        raw.cmd("MAIL FROM:<a@example.com>").check(250)
        for i in range(3):
            raw.cmd(f"RCPT TO:<user{i}@example.org>").check(250)
        raw.cmd("RCPT TO:<user3@example.org>").check(452, "4.5.3")
        raw.cmd("RCPT TO:<user4@example.org>").check(452, "4.5.3")
        raw.cmd("DATA").check(354)
        raw.send_data(make_message()).check(250)
    [delivery] = sink.wait_for_messages(1)
    assert delivery.rcpts == [f"user{i}@example.org" for i in range(3)]


def test_max_recipients_pipelined_and_reset_per_transaction(start_gateway, sink):
    gateway = start_gateway(sink=sink, server={"max_recipients": 2})
    with Raw.session(gateway.port) as raw:
        for _ in range(2):  # the count starts again with each transaction
            raw.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<u1@example.org>\r\n"
                     "RCPT TO:<u2@example.org>\r\nRCPT TO:<u3@example.org>\r\nDATA\r\n")
            mail, r1, r2, r3, data = raw.read_replies(5)
            assert (mail.code, r1.code, r2.code, data.code) == (250, 250, 250, 354)
            r3.check(452, "4.5.3")
            raw.send_data(make_message()).check(250)
    deliveries = sink.wait_for_messages(2)
    assert [d.rcpts for d in deliveries] == [["u1@example.org", "u2@example.org"]] * 2


# ------------------------------------------------------------------------------- size
def test_size_parameter_over_the_limit_is_refused_at_mail(gateway, sink):
    with Raw.session(gateway.port) as raw:
        raw.cmd(f"MAIL FROM:<a@example.com> SIZE={DEFAULT_MAX_BYTES + 1}").check(552, "5.3.4")
        raw.cmd("MAIL FROM:<a@example.com> SIZE=20000000000").check(552, "5.3.4")
        # No transaction was started; a smaller one is fine.
        raw.cmd(f"MAIL FROM:<a@example.com> SIZE={DEFAULT_MAX_BYTES}").check(250, "2.1.0")
        raw.cmd("RCPT TO:<b@example.org>").check(250)


def test_message_over_the_limit_is_refused_after_the_end_of_data(gateway, sink):
    line = b"y" * 78 + b"\r\n"
    too_big = make_message(body=line * ((DEFAULT_MAX_BYTES + 64 * 1024) // len(line)))
    assert len(too_big) > DEFAULT_MAX_BYTES
    with Raw.session(gateway.port) as raw:
        open_transaction(raw)
        raw.send(too_big)
        raw.expect_silence(0.5)  # keep reading, discard, and answer only at the end
        raw.send(b".\r\n")
        raw.read_reply(timeout=15).check(552, "5.3.4")
        # The connection is still usable.
        raw.cmd("NOOP").check(250)
        small = make_message(subject="small one")
        raw.transaction("a@example.com", ["b@example.org"], small).check(250)
    [delivery] = sink.wait_for_messages(1)
    assert delivery.content().endswith(small)


def test_message_just_under_the_limit_is_accepted(gateway, sink):
    line = b"z" * 78 + b"\r\n"
    content = make_message(body=line * ((DEFAULT_MAX_BYTES - 16 * 1024) // len(line)))
    assert len(content) < DEFAULT_MAX_BYTES - 8 * 1024  # room for prepended headers
    with Raw.session(gateway.port) as raw:
        raw.cmd(f"MAIL FROM:<a@example.com> SIZE={len(content)}").check(250)
        raw.cmd("RCPT TO:<b@example.org>").check(250)
        raw.cmd("DATA").check(354)
        raw.send_data(content, timeout=15).check(250)
    [delivery] = sink.wait_for_messages(1)
    assert delivery.content().endswith(content)


# ------------------------------------------------------------------------------- line length
def test_command_line_over_1000_octets(gateway):
    with Raw.session(gateway.port) as raw:
        raw.send(b"NOOP " + b"x" * 994 + b"\r\n")  # 1001 octets with the CRLF
        raw.read_reply().check(500, "5.5.2")
        raw.cmd("NOOP").check(250, "2.0.0")


def test_command_line_of_exactly_1000_octets_is_accepted(gateway):
    with Raw.session(gateway.port) as raw:
        raw.send(b"NOOP " + b"x" * 993 + b"\r\n")  # 1000 octets with the CRLF
        raw.read_reply().check(250)


def test_very_long_line_is_one_error_and_its_tail_is_not_a_command(gateway):
    with Raw.session(gateway.port) as raw:
        # A 10 kB line whose tail looks like a command, sent in pieces.
        raw.send(b"NOOP " + b"a" * 5000)
        time.sleep(0.1)
        raw.send(b"b" * 5000 + b"QUIT\r\n")
        raw.read_reply().check(500, "5.5.2")
        raw.cmd("NOOP").check(250, "2.0.0")  # exactly one reply for the long line, not closed


def test_data_line_over_1000_octets_refuses_the_message(gateway, sink):
    content = make_message(body=b"short\r\n" + b"L" * 999 + b"\r\nafter\r\n")  # 1001 octets
    with Raw.session(gateway.port) as raw:
        open_transaction(raw)
        raw.send_data(content).check(500, "5.5.2")
        raw.cmd("NOOP").check(250)
    time.sleep(0.3)
    assert sink.messages == []


# ------------------------------------------------------------------------------- framing
@pytest.mark.parametrize("flaw", [
    pytest.param(b"line one\nline two\r\n", id="bare-LF"),
    pytest.param(b"line one\rline two\r\n", id="bare-CR"),
    pytest.param(b"ends in bare LF\n", id="bare-LF-before-end"),
])
def test_bare_lf_or_cr_in_data_refuses_the_message(gateway, sink, flaw):
    with Raw.session(gateway.port) as raw:
        open_transaction(raw)
        raw.send(b"Subject: flawed\r\n\r\nbefore\r\n" + flaw + b"after\r\n.\r\n")
        raw.read_reply().check(550, "5.5.2")
        # Nothing was delivered, and the session goes on.
        raw.transaction("a@example.com", ["b@example.org"], make_message(subject="clean")).check(250)
    sink.wait_for_messages(1)
    time.sleep(0.3)  # a second delivery, if any, would have arrived by now
    deliveries = sink.messages
    assert len(deliveries) == 1 and b"Subject: clean" in deliveries[0].content()
    assert all(b"Subject: flawed" not in d.content() for d in deliveries)


SMUGGLED = (b"MAIL FROM:<evil@example.com>\r\n"
            b"RCPT TO:<victim@example.org>\r\n"
            b"DATA\r\n"
            b"From: <ceo@example.org>\r\nSubject: smuggled\r\n\r\nPay the invoice.\r\n")


@pytest.mark.parametrize("fake_end", [
    pytest.param(b"\n.\r\n", id="LF.CRLF"),
    pytest.param(b"\r\n.\n", id="CRLF.LF"),
    pytest.param(b"\r.\r", id="CR.CR"),
    pytest.param(b"\n.\n", id="LF.LF"),
    pytest.param(b"\r\n.\r", id="CRLF.CR"),
])
def test_smtp_smuggling_never_makes_a_second_message(gateway, sink, fake_end):
    with Raw.session(gateway.port) as raw:
        open_transaction(raw)
        raw.send(b"Subject: legit\r\n\r\nhello" + fake_end + SMUGGLED + b".\r\n")
        replies = []
        raw.send(b"QUIT\r\n")
        try:
            while True:
                reply = raw.read_reply(timeout=10)
                replies.append(reply)
                if reply.code in (221, 421):
                    break
        except ConnectionError:
            pass
        assert replies, "no reply to the end of data"
        replies[0].check(550, "5.5.2")
        assert [r.code for r in replies] == [550, 221], [str(r) for r in replies]
    time.sleep(0.5)
    smuggled = [d for d in sink.messages if d.mail_from == "evil@example.com"
                or b"smuggled" in d.content()]
    assert not smuggled, f"a smuggled message reached the downstream: {smuggled}"
    assert sink.messages == [], "a message with a bare CR/LF reached the downstream"


def test_proper_crlf_dot_crlf_inside_a_line_is_not_an_end(gateway, sink):
    """"." alone ends DATA only after CRLF: "a.\\r\\n" or "x\\r\\n.x" are content."""
    content = make_message(body="a.\r\n.x\r\n. \r\n..\r\nend\r\n")
    with Raw.session(gateway.port) as raw:
        open_transaction(raw)
        raw.send_data(content).check(250)
    [delivery] = sink.wait_for_messages(1)
    assert delivery.content().endswith(content)


def test_refused_connection_client_address_in_log(start_gateway, sink):
    """Every refusal is logged with the client: here a per-client limit from 127.0.0.5."""
    gateway = start_gateway(sink=sink, server={"max_connections_per_client": 1})
    with Raw(gateway.port, source="127.0.0.5") as held:
        held.greet()
        port = expect_refused_connection(gateway.port, source="127.0.0.5")
    records = gateway.wait_for_records(lambda r: r.get("client", {}).get("port") == port)
    assert len(records) == 1, f"expected one decision record for the refused connection: {records}"
    [record] = records
    assert record["client"]["ip"] == "127.0.0.5"
    assert str(record.get("reply", "")).startswith("421 4.7.0")
    assert record.get("action") in ("tempfail", "reject")


def test_connection_reset_mid_data_delivers_nothing(gateway, sink):
    raw = Raw.session(gateway.port)
    open_transaction(raw)
    raw.send(b"Subject: cut off\r\n\r\n" + b"text\r\n" * 1000)
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()  # RST
    time.sleep(0.5)
    assert sink.messages == []
    with Raw.session(gateway.port) as again:  # the gateway is fine
        again.cmd("NOOP").check(250)


def test_command_timeout_times_one_line_not_a_progressing_message(start_gateway, sink):
    """server.command_timeout bounds one line; DATA that keeps completing lines is not cut."""
    gw = start_gateway(sink=sink, server={"command_timeout": "1s", "idle_timeout": "5s"})
    with Raw.session(gw.port) as raw:
        open_transaction(raw)
        raw.send(b"Subject: slow\r\n\r\nfirst part")
        for number in range(8):  # 3.2 s in all, always with a partial line buffered
            time.sleep(0.4)
            raw.send(f" rest {number}\r\nnext part".encode())
        raw.send(b"\r\n.\r\n")
        raw.read_reply(timeout=10).check(250)
    [delivery] = sink.wait_for_messages(1)
    assert b"rest 7" in delivery.content()


def test_command_timeout_cuts_a_line_that_never_ends(start_gateway, sink):
    gw = start_gateway(sink=sink, server={"command_timeout": "1s", "idle_timeout": "5s"})
    with Raw.session(gw.port) as raw:
        raw.send(b"NOOP")
        try:
            for _ in range(6):  # a byte now and then keeps the idle timer away, not the line timer
                time.sleep(0.3)
                raw.send(b" ")
        except OSError:
            pass  # closed after the 421, as it should be
        raw.read_reply(timeout=5).check(421, "4.4.2")
