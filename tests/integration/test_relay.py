"""Relaying to the downstream (design.md §1): what arrives there, which downstream replies reach the
client, and what the client hears when the downstream fails."""

from __future__ import annotations

import collections
import os
import smtplib
import socket
import threading
import time

import pytest

from harness import (
    CLIENT_HELO,
    SMTP_SOURCE,
    Raw,
    check_no_valid_recipients,
    check_received,
    free_port,
    make_message,
    message_id_of,
    open_transaction,
    port_in_use,
    postfix_dump_message,
    prepended_headers,
    run,
    smtplib_send,
    tool_available,
)

pytestmark = pytest.mark.time_limit(60)


# ------------------------------------------------------------------------------- content
def test_message_arrives_byte_identical_after_prepended_headers(gateway, sink):
    body = ("Plain line\r\n"
            ".A line starting with a dot\r\n"
            "..Two dots\r\n"
            ".\r\n"
            "Ünïcödé 8-bit text ✓\r\n"
            "\tTabbed line with trailing spaces   \r\n"
            "\r\n"
            + "x" * 998 + "\r\n"  # the longest line allowed: 998 octets + CRLF
            "Last line\r\n")
    content = make_message(subject="byte identical", body=body)
    refused = smtplib_send(gateway.port, "a@example.com", ["b@example.org", "c@example.net"],
                           content, mail_options=["BODY=8BITMIME"])
    assert refused == {}
    [delivery] = sink.wait_for_messages(1)
    assert delivery.mail_from == "a@example.com"
    assert delivery.rcpts == ["b@example.org", "c@example.net"]
    headers = prepended_headers(delivery.content(), content)
    check_received(headers, helo=CLIENT_HELO)


def test_empty_body_and_headers_only_message(gateway, sink):
    content = b"Subject: headers only\r\nMessage-ID: <empty@client.test>\r\n"
    with Raw.session(gateway.port) as raw:
        open_transaction(raw)
        raw.send_data(content).check(250)
    [delivery] = sink.wait_for_messages(1)
    check_received(prepended_headers(delivery.content(), content))


def test_downstream_reply_to_the_message_is_relayed_on_success(gateway, sink):
    with Raw.session(gateway.port) as raw:
        open_transaction(raw)
        reply = raw.send_data(make_message()).check(250)
        assert reply.enhanced == "2.0.0"
    assert len(sink.wait_for_messages(1)) == 1


def test_long_helo_keeps_every_received_line_within_998_octets(gateway, sink):
    """RFC 5322 §2.1.1: a header line is at most 998 octets. A 990-octet HELO (it fits in a
    1000-octet command line) once made a 1,019-octet Received: line; the name is cut to 255
    octets, the longest domain (RFC 5321 §4.5.3.1.2)."""
    helo = ("a" * 62 + ".") * 15 + "b" * 45
    assert len(helo) == 990
    content = make_message()
    with Raw(gateway.port) as raw:
        raw.greet()
        raw.ehlo(helo)
        raw.transaction("a@example.com", ["b@example.org"], content).check(250)
    [delivery] = sink.wait_for_messages(1)
    prepended = delivery.content()[: -len(content)]
    lines = prepended.split(b"\r\n")[:-1]
    assert max(len(line) for line in lines) <= 998, [len(line) for line in lines]
    headers = prepended_headers(delivery.content(), content)
    check_received(headers, helo=helo[:255])


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback")
def test_listens_on_ipv4_and_ipv6(start_gateway, sink):
    port = free_port()
    while port_in_use(port, "::1"):
        port = free_port()
    gateway = start_gateway(sink=sink, port=port,
                            server={"listen": ["127.0.0.1:{port}", "[::1]:{port}"]})
    content = make_message()
    with Raw.session(port, host="::1") as raw:
        raw.transaction("a@example.com", ["b@example.org"], content).check(250)
        raw.cmd("QUIT")
        client_port = raw.local_port
    [delivery] = sink.wait_for_messages(1)
    check_received(prepended_headers(delivery.content(), content), ip="::1")
    records = gateway.wait_for_records(lambda r: r.get("client", {}).get("port") == client_port
                                       and r.get("action") == "accept")
    assert records and records[0]["client"]["ip"] == "::1", records


# ------------------------------------------------------------------------------- refusals
def test_downstream_refused_recipient_is_relayed_and_others_still_work(start_gateway, make_sink):
    sink = make_sink(reject_rcpts={"nobody@example.org": "550 5.1.1 <nobody@example.org>: User unknown"})
    gateway = start_gateway(sink=sink)
    content = make_message()
    with Raw.session(gateway.port) as raw:
        raw.cmd("MAIL FROM:<a@example.com>").check(250, "2.1.0")
        raw.cmd("RCPT TO:<good@example.org>").check(250)
        raw.cmd("RCPT TO:<nobody@example.org>").check(550, "5.1.1")
        raw.cmd("RCPT TO:<other@example.net>").check(250)
        raw.cmd("DATA").check(354)
        raw.send_data(content).check(250)
    [delivery] = sink.wait_for_messages(1)
    assert delivery.rcpts == ["good@example.org", "other@example.net"]
    assert delivery.content().endswith(content)


def test_downstream_refused_recipient_in_a_pipelined_group(start_gateway, make_sink):
    sink = make_sink(reject_rcpts={"nobody@example.org": "550 5.1.1 User unknown"})
    gateway = start_gateway(sink=sink)
    with Raw.session(gateway.port) as raw:
        raw.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<nobody@example.org>\r\n"
                 "RCPT TO:<good@example.org>\r\nDATA\r\n")
        mail, refused, accepted, data = raw.read_replies(4)
        mail.check(250)
        refused.check(550, "5.1.1")
        accepted.check(250)
        data.check(354)
        raw.send_data(make_message()).check(250)
    [delivery] = sink.wait_for_messages(1)
    assert delivery.rcpts == ["good@example.org"]


def test_every_recipient_refused_by_the_downstream(start_gateway, make_sink):
    sink = make_sink(reject_rcpts={"x@example.org": "550 5.1.1 User unknown",
                                   "y@example.org": "450 4.2.1 Mailbox busy"})
    gateway = start_gateway(sink=sink)
    with Raw.session(gateway.port) as raw:
        raw.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<x@example.org>\r\n"
                 "RCPT TO:<y@example.org>\r\nDATA\r\n")
        mail, x, y, data = raw.read_replies(4)
        x.check(550, "5.1.1")
        y.check(450, "4.2.1")
        data.check(554, "5.5.1")
        raw.cmd("RSET").check(250)
        # The next transaction on the same connection is relayed normally.
        raw.transaction("a@example.com", ["ok@example.org"], make_message()).check(250)
    [delivery] = sink.wait_for_messages(1)
    assert delivery.rcpts == ["ok@example.org"]


@pytest.mark.parametrize("downstream_reply", [
    "554 5.7.1 Message refused by policy",
    "452 4.3.1 Insufficient system storage",
    "550 5.6.0 Content rejected",
])
def test_downstream_reply_to_end_of_data_is_relayed(start_gateway, make_sink, downstream_reply):
    sink = make_sink(data_reply=downstream_reply)
    gateway = start_gateway(sink=sink)
    code, enhanced = downstream_reply.split()[:2]
    with Raw.session(gateway.port) as raw:
        open_transaction(raw)
        raw.send_data(make_message()).check(int(code), enhanced)
        raw.cmd("NOOP").check(250)  # the session goes on
    assert sink.messages == []


def test_downstream_refusing_mail_from_is_relayed_at_rcpt(start_gateway, make_sink):
    sink = make_sink(mail_reply="451 4.3.0 Try again later")
    gateway = start_gateway(sink=sink)
    with Raw.session(gateway.port) as raw:
        raw.cmd("MAIL FROM:<a@example.com>").check(250, "2.1.0")
        reply = raw.cmd("RCPT TO:<b@example.org>")
        assert reply.code // 100 == 4, f"downstream trouble must be a 4xx, got {reply}"


# ------------------------------------------------------------------------------- protocol violations
# RFC 5321 §4.3.2 lists the replies each command may get. A downstream that answers out of that
# list is broken: the client hears 451 4.4.2, never the reply's own code, and nothing is delivered.
def _transaction_record(gateway, sender="a@example.com"):
    [record] = gateway.wait_for_records(lambda r: r.get("type") == "transaction" and r.get("sender") == sender)
    return record


@pytest.mark.parametrize("reply_to_data", ["250 2.0.0 Ok", "221 2.0.0 Bye", "334 VXNlcm5hbWU6"])
def test_downstream_answering_data_with_anything_but_354_or_an_error_gives_451_4_4_2(
        start_gateway, make_sink, reply_to_data):
    """The issue's case: a 250 to DATA was taken as the final reply, so the client heard 250 while
    nothing was delivered. (4xx and 5xx to DATA are relayed: see
    test_downstream_refusing_data_leaves_the_connection_fit_for_the_next_transaction.)"""
    sink = make_sink(data_command_reply=reply_to_data)
    gateway = start_gateway(sink=sink)
    with Raw.session(gateway.port) as raw:
        open_transaction(raw)
        raw.send_data(make_message()).check(451, "4.4.2")
        # The session goes on, and the next transaction gets a fresh downstream connection.
        sink.data_command_reply = None
        raw.transaction("b@example.com", ["b@example.org"], make_message(subject="after")).check(250)
    [delivery] = sink.wait_for_messages(1)
    assert delivery.mail_from == "b@example.com", "the message refused at DATA was delivered"
    record = _transaction_record(gateway)
    assert record["action"] == "tempfail" and record["reply"].startswith("451 4.4.2"), record
    assert record["downstream_reply"] == reply_to_data, record
    assert "protocol violation" in record["reason"] and "DATA" in record["reason"], record


def test_downstream_354_to_rcpt_is_not_an_accepted_recipient(start_gateway, make_sink):
    sink = make_sink(rcpt_reply="354 Go ahead")
    gateway = start_gateway(sink=sink)
    with Raw.session(gateway.port) as raw:
        raw.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        mail, rcpt, data = raw.read_replies(3)
        mail.check(250, "2.1.0")
        rcpt.check(451, "4.4.2")
        check_no_valid_recipients(data)
        raw.cmd("RSET").check(250)
    assert sink.messages == []
    record = _transaction_record(gateway)
    [recipient] = record["recipients"]
    assert recipient["reply"].startswith("451 4.4.2") and "354" in recipient["reply"], record


def test_downstream_354_to_mail_is_not_an_accepted_sender(start_gateway, make_sink):
    sink = make_sink(mail_reply="354 Go ahead")
    gateway = start_gateway(sink=sink)
    with Raw.session(gateway.port) as raw:
        raw.cmd("MAIL FROM:<a@example.com>").check(250, "2.1.0")
        raw.cmd("RCPT TO:<b@example.org>").check(451, "4.4.2")
        raw.cmd("RCPT TO:<c@example.org>").check(451)  # the next one is no luckier
    assert sink.messages == []


def test_downstream_greeting_that_is_no_greeting_gives_451_4_4_2(start_gateway, make_sink):
    sink = make_sink(greeting="250 sink.test hello")
    gateway = start_gateway(sink=sink)
    with Raw.session(gateway.port) as raw:
        raw.cmd("MAIL FROM:<a@example.com>").check(250)
        raw.cmd("RCPT TO:<b@example.org>").check(451, "4.4.2")


def test_downstream_answering_rset_out_of_protocol_is_not_reused(start_gateway, make_sink):
    """RSET may only get 250: a downstream answering otherwise is out of step, and its
    connection is dropped rather than used for the next transaction."""
    sink = make_sink(rset_reply="354 what now")
    gateway = start_gateway(sink=sink)
    with Raw.session(gateway.port) as raw:
        raw.cmd("MAIL FROM:<a@example.com>").check(250)
        raw.cmd("RCPT TO:<b@example.org>").check(250)
        raw.cmd("RSET").check(250)  # the client's RSET: the gateway sends one downstream
        # Commands pipelined behind that RSET would share its fate: wait until it is answered.
        deadline = time.monotonic() + 5
        while not any(line.endswith("S: 354 what now") for line in sink.transcript()):
            assert time.monotonic() < deadline, "the gateway sent no RSET downstream"
            time.sleep(0.05)
        time.sleep(0.2)
        raw.transaction("a@example.com", ["b@example.org"], make_message()).check(250)
    [delivery] = sink.wait_for_messages(1)
    assert delivery.connection == 2, "the connection that broke the protocol was used again"


LONG_TEXT = "x" * 4000


@pytest.mark.parametrize("knob, reply", [
    ("reject_rcpts", "550 5.1.1 " + LONG_TEXT),
    ("reject_rcpts", "550-5.1.1 " + LONG_TEXT + "\r\n550 5.1.1 " + "é" * 2000),
    ("reject_rcpts", "450 " + LONG_TEXT),
    ("data_reply", "250 2.0.0 Ok: queued as " + LONG_TEXT),
], ids=["rcpt-550", "rcpt-550-multiline-utf8", "rcpt-450-no-enhanced", "end-of-data-250"])
def test_downstream_reply_lines_reach_the_client_within_512_octets(start_gateway, make_sink, knob, reply):
    """RFC 5321 §4.5.3.1.5 and the README: no reply line over 512 octets reaches the client, even
    when the downstream sends one. The reply keeps its code and enhanced code (a 250 after the
    message was delivered must stay a 250, or the client would send it again)."""
    refused = "long@example.org"
    sink = make_sink(**({"reject_rcpts": {refused: reply}} if knob == "reject_rcpts" else {"data_reply": reply}))
    gateway = start_gateway(sink=sink)
    code = int(reply[:3])
    enhanced = reply[4:].split(" ", 1)[0] if reply[4:5].isdigit() else None
    with Raw.session(gateway.port) as raw:
        raw.cmd("MAIL FROM:<a@example.com>").check(250)
        if knob == "reject_rcpts":
            heard = raw.cmd(f"RCPT TO:<{refused}>")
        else:
            raw.cmd("RCPT TO:<b@example.org>").check(250)
            raw.cmd("DATA").check(354)
            heard = raw.send_data(make_message())
        heard.check(code, enhanced)
        assert len(heard.lines) == reply.count("\r\n") + 1
        for line in heard.lines:
            octets = len(f"{code} {line}\r\n".encode())
            assert octets <= 512, f"a reply line of {octets} octets reached the client"
            assert "\ufffd" not in line, "a line was cut inside a UTF-8 sequence"
        # What is kept is the downstream's own text, cut, not made up.
        assert heard.lines[0].endswith("x" * 100)
        raw.cmd("NOOP").check(250)
    if knob == "data_reply":
        assert len(sink.wait_for_messages(1)) == 1


# ------------------------------------------------------------------------------- failures
def test_downstream_unreachable_gives_451_at_rcpt_quickly(start_gateway):
    dead_port = free_port()  # nothing listens there: connections are refused at once
    gateway = start_gateway(downstream_port=dead_port,
                            downstream={"timeout": "20s", "connect_timeout": "20s"})
    with Raw.session(gateway.port) as raw:
        raw.cmd("MAIL FROM:<a@example.com>").check(250, "2.1.0")
        started = time.monotonic()
        raw.cmd("RCPT TO:<b@example.org>").check(451, "4.4.1")
        assert time.monotonic() - started < 3.0, "a refused connection must not wait for the timeout"
        # Still usable: the next recipient gets the same answer, never a 5xx.
        raw.cmd("RCPT TO:<c@example.org>").check(451, "4.4.1")
        check_no_valid_recipients(raw.cmd("DATA"))
        raw.cmd("QUIT").check(221)


def test_downstream_slow_past_its_timeout_gives_451(start_gateway, make_sink):
    sink = make_sink(delay_seconds=4.0, delay_commands={"."})
    gateway = start_gateway(sink=sink, downstream={"timeout": "1s"})
    with Raw.session(gateway.port) as raw:
        open_transaction(raw)
        started = time.monotonic()
        raw.send_data(make_message(), timeout=10).check(451, "4.4.1")
        assert time.monotonic() - started < 3.5, "the downstream timeout was not applied"


def test_downstream_dropping_during_data_gives_451_and_delivers_nothing(start_gateway, make_sink):
    sink = make_sink(drop_during_data=True)
    gateway = start_gateway(sink=sink)
    content = make_message(body="line of text to make the message longer\r\n" * 8000)  # ~330 KB
    with Raw.session(gateway.port) as raw:
        open_transaction(raw)
        raw.send_data(content, timeout=15).check(451, "4.4.1")
        # The gateway reconnects for the next transaction of the same session.
        sink.drop_during_data = False
        raw.cmd("RSET").check(250)
        raw.transaction("a@example.com", ["b@example.org"], make_message(subject="retry")).check(250)
    deliveries = sink.wait_for_messages(1)
    assert len(deliveries) == 1 and b"Subject: retry" in deliveries[0].content()
    assert sink.connections >= 2


def test_downstream_dropping_after_the_dot_gives_451_and_delivers_nothing(start_gateway, make_sink):
    sink = make_sink(drop_after_dot=True)
    gateway = start_gateway(sink=sink)
    with Raw.session(gateway.port) as raw:
        open_transaction(raw)
        raw.send_data(make_message(), timeout=15).check(451, "4.4.1")
        raw.cmd("NOOP").check(250)
    time.sleep(0.3)
    assert sink.messages == []


def test_downstream_greeting_421_gives_a_4xx_at_rcpt(start_gateway, make_sink):
    sink = make_sink(greeting="421 4.3.2 sink.test Service not available")
    gateway = start_gateway(sink=sink)
    with Raw.session(gateway.port) as raw:
        raw.cmd("MAIL FROM:<a@example.com>").check(250)
        reply = raw.cmd("RCPT TO:<b@example.org>")
        assert reply.code // 100 == 4, f"downstream trouble must be a 4xx, got {reply}"


# ------------------------------------------------------------------------------- load
@pytest.mark.time_limit(120)
def test_1000_messages_from_20_concurrent_clients_arrive_exactly_once(gateway, sink):
    clients, per_client = 20, 50
    sent: dict[str, bytes] = {}
    lock = threading.Lock()
    errors: list[str] = []

    def client(n: int) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", gateway.port, local_hostname=f"client{n}.test",
                              timeout=30) as smtp:
                for i in range(per_client):
                    mid = f"<c{n}-m{i}-{time.monotonic_ns()}@client.test>"
                    content = make_message(message_id=mid, subject=f"client {n} message {i}",
                                           body=f"Body of message {i} from client {n}.\r\n" * (1 + i % 7))
                    with lock:
                        sent[mid] = content
                    smtp.sendmail("a@example.com", [f"user{n}@example.org"], content)
                smtp.quit()
        except Exception as e:  # reported below, with the client number
            errors.append(f"client {n}: {e!r}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=100)
    assert not any(t.is_alive() for t in threads), "clients still running after 100 s"
    assert not errors, "\n".join(errors[:10])
    assert len(sent) == clients * per_client

    deliveries = sink.wait_for_messages(len(sent), timeout=20)
    counts = collections.Counter(message_id_of(d.content()) for d in deliveries)
    duplicates = {mid: n for mid, n in counts.items() if n > 1}
    assert not duplicates, f"delivered more than once: {list(duplicates.items())[:5]}"
    assert set(counts) == set(sent), (f"missing: {list(set(sent) - set(counts))[:5]}, "
                                      f"unexpected: {list(set(counts) - set(sent))[:5]}")
    for d in deliveries:
        content = sent[message_id_of(d.content())]
        prepended_headers(d.content(), content)
        n = int(message_id_of(content)[2:].split("-")[0])
        assert d.rcpts == [f"user{n}@example.org"]


# ------------------------------------------------------------------------------- Postfix
def test_relay_to_postfix_smtp_sink(start_gateway, smtp_sink):
    gateway = start_gateway(downstream_port=smtp_sink.port)
    contents = [make_message(subject=f"to postfix {i}", body=f"hello {i}\r\n..dotted\r\n")
                for i in range(5)]
    with smtplib.SMTP("127.0.0.1", gateway.port, local_hostname=CLIENT_HELO, timeout=30) as smtp:
        for content in contents:
            assert smtp.sendmail("a@example.com", ["b@example.org"], content) == {}
        smtp.quit()
    dumps = smtp_sink.wait_for(len(contents))
    assert len(dumps) == len(contents)
    by_id = {message_id_of(postfix_dump_message(d)): postfix_dump_message(d) for d in dumps}
    for content in contents:
        dumped = by_id[message_id_of(content)]
        # smtp-sink dumps with LF line ends (dots unstuffed) and an empty line after the message.
        expected = content.replace(b"\r\n", b"\n") + b"\n"
        assert dumped.endswith(expected), dumped
        assert dumped.startswith(b"Received: from " + CLIENT_HELO.encode() + b" ([127.0.0.1])")


@pytest.mark.skipif(not tool_available(SMTP_SOURCE), reason="smtp-source is not installed")
@pytest.mark.time_limit(90)
def test_postfix_smtp_source_through_the_gateway_into_smtp_sink(start_gateway, smtp_sink):
    gateway = start_gateway(downstream_port=smtp_sink.port)
    count = 100
    result = run([SMTP_SOURCE, "-s", "5", "-m", str(count), "-l", "4000", "-d",
                  "-f", "sender@example.com", "-t", "user@example.org",
                  f"127.0.0.1:{gateway.port}"], timeout=60)
    assert result.returncode == 0, f"smtp-source failed:\n{result.stdout}\n{result.stderr}"
    assert len(smtp_sink.wait_for(count, timeout=20)) == count


# ------------------------------------------------------------------------- connection reuse
def test_downstream_connection_is_reused_by_the_next_session(start_gateway, sink):
    """downstream.idle_connections: a session's downstream connection waits for the next one."""
    gw = start_gateway(sink=sink, server={"workers": 1})
    for number in range(3):
        assert smtplib_send(gw.port, "a@example.com", ["b@example.org"], make_message(subject=f"reuse {number}")) == {}
    sink.wait_for_messages(3)
    assert sink.connections == 1


def test_idle_downstream_connection_is_closed_after_idle_timeout(start_gateway, sink):
    gw = start_gateway(sink=sink, server={"workers": 1}, downstream={"idle_timeout": "1s"})
    assert smtplib_send(gw.port, "a@example.com", ["b@example.org"], make_message()) == {}
    sink.wait_for_messages(1)
    deadline = time.monotonic() + 5
    while sink.active_connections and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sink.active_connections == 0, "the idle downstream connection was not closed"
    assert smtplib_send(gw.port, "a@example.com", ["b@example.org"], make_message()) == {}
    sink.wait_for_messages(2)
    assert sink.connections == 2


def test_session_arriving_while_an_idle_downstream_connection_says_quit_gets_a_fresh_one(start_gateway, sink):
    """The idle timeout's QUIT is on its way (the mailbox server is slow to answer it) when the
    next session comes: that connection is closing and must not be handed out. It was (bench/soak
    found it): the session's MAIL and RCPT went out behind the QUIT, the 221 closed the connection
    with them unanswered, and the client waited for its RCPT reply until it gave up."""
    sink.delay_seconds = 3.0
    sink.delay_commands = {"QUIT"}
    gw = start_gateway(sink=sink, server={"workers": 1}, downstream={"idle_timeout": "1s"})
    assert smtplib_send(gw.port, "a@example.com", ["b@example.org"], make_message(subject="first")) == {}
    sink.wait_for_messages(1)
    deadline = time.monotonic() + 5
    while not any(line.endswith("C: QUIT") for line in sink.transcript()):
        assert time.monotonic() < deadline, "the idle downstream connection was not closed"
        time.sleep(0.05)
    assert smtplib_send(gw.port, "a@example.com", ["b@example.org"], make_message(subject="second"),
                        timeout=10) == {}
    [_, second] = sink.wait_for_messages(2)
    assert b"Subject: second" in second.content()
    assert sink.connections == 2


def test_no_idle_downstream_connections_when_disabled(start_gateway, sink):
    gw = start_gateway(sink=sink, server={"workers": 1}, downstream={"idle_connections": 0})
    for number in range(2):
        assert smtplib_send(gw.port, "a@example.com", ["b@example.org"], make_message(subject=f"n {number}")) == {}
    sink.wait_for_messages(2)
    assert sink.connections == 2


def test_downstream_closing_an_idle_connection_does_not_fail_the_next_session(start_gateway, make_sink):
    """The mailbox server may close an idle connection first; the next session gets a fresh one."""
    sink = make_sink()
    gw = start_gateway(sink=sink, server={"workers": 1})
    assert smtplib_send(gw.port, "a@example.com", ["b@example.org"], make_message()) == {}
    sink.wait_for_messages(1)
    sink.close_idle_connections()
    time.sleep(0.3)
    assert smtplib_send(gw.port, "a@example.com", ["b@example.org"], make_message()) == {}
    sink.wait_for_messages(2)


def test_downstream_refusing_data_leaves_the_connection_fit_for_the_next_transaction(gateway, sink):
    """A 4xx to DATA downstream: the client hears it, the downstream gets RSET, and the next
    transaction on the same connections goes through (no nested MAIL downstream)."""
    sink.data_command_reply = "452 4.3.1 Insufficient system storage"
    with Raw.session(gateway.port) as raw:
        raw.transaction("a@example.com", ["b@example.org"], make_message(subject="first")).check(452, "4.3.1")
        sink.data_command_reply = None
        raw.transaction("a@example.com", ["b@example.org"], make_message(subject="second")).check(250)
    [delivery] = sink.wait_for_messages(1)
    assert b"Subject: second" in delivery.content()


def _socket_inode(local_port, remote_port, timeout=5.0):
    """The inode of the TCP socket local_port <-> remote_port on loopback, from /proc/net/tcp."""
    deadline = time.monotonic() + timeout
    while True:
        with open("/proc/net/tcp") as table:
            for row in table.read().splitlines()[1:]:
                fields = row.split()
                local, remote, inode = fields[1], fields[2], fields[9]
                if int(local.split(":")[1], 16) == local_port and int(remote.split(":")[1], 16) == remote_port and inode != "0":
                    return inode
        assert time.monotonic() < deadline, "no such socket in /proc/net/tcp"
        time.sleep(0.05)


def _holds_socket(pid, inode):
    """Whether process pid has a descriptor open on socket inode."""
    target = f"socket:[{inode}]"
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                return True
        except FileNotFoundError:
            pass  # closed while we looked
    return False


def test_a_client_that_never_reads_is_closed_after_a_linger(start_gateway, sink):
    """The gateway stops reading from a client that leaves replies unread, times it out, and
    closes its socket within idle_timeout + the 10 s linger, although the last reply cannot be
    written (no descriptor kept forever)."""
    gw = start_gateway(sink=sink, server={"idle_timeout": "1s"})
    hog = socket.socket()
    hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    hog.connect(("127.0.0.1", gw.port))
    try:
        # Follow this one connection's descriptor, not a count of all descriptors: workers of a
        # loaded machine may still be opening theirs when the test starts.
        gateway_side = _socket_inode(local_port=gw.port, remote_port=hog.getsockname()[1])
        accept_deadline = time.monotonic() + 5
        while not _holds_socket(gw.pid, gateway_side):
            assert time.monotonic() < accept_deadline, "the gateway never accepted the connection"
            time.sleep(0.05)
        hog.settimeout(3)
        payload = b"NOOP\r\n" * 100000
        try:
            for _ in range(40):
                hog.sendall(payload)
        except (socket.timeout, OSError):
            pass  # the gateway stopped reading: its replies are piling up unread
        deadline = time.monotonic() + 20
        while _holds_socket(gw.pid, gateway_side):
            assert time.monotonic() < deadline, "the connection that never reads was never closed"
            time.sleep(0.5)
    finally:
        hog.close()
