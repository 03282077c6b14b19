"""Self-tests of the harness: the downstream sink (driven by smtplib and the raw client), the config
builder, the message helpers and Postfix's smtp-sink. None of them needs the gateway."""

from __future__ import annotations

import email.utils
import os
import smtplib
import threading
import time
import tomllib

import pytest

from harness import (
    SMTP_SOURCE,
    Gateway,
    Raw,
    build_config,
    check_received,
    dot_stuff,
    make_message,
    message_id_of,
    parse_header_block,
    postfix_dump_message,
    prepended_headers,
    run,
    tool_available,
)


def smtp(sink, helo="client.test") -> smtplib.SMTP:
    return smtplib.SMTP("127.0.0.1", sink.port, local_hostname=helo, timeout=10)


def test_delivery_is_recorded_with_envelope_and_unstuffed_data(sink):
    msg = make_message(body=".starts with a dot\r\n..two dots\r\n.\r\nend\r\n")
    with smtp(sink) as c:
        assert c.sendmail("a@example.com", ["b@example.org", "c@example.org"], msg) == {}
        c.quit()
    [d] = sink.wait_for_messages(1)
    mail_from, rcpts, data, peer = d
    assert mail_from == "a@example.com"
    assert rcpts == ["b@example.org", "c@example.org"]
    assert data == msg
    assert peer[0] == "127.0.0.1"
    assert d.helo == "client.test" and d.size == len(msg) and d.content() == msg
    assert sink.connections == 1


def test_ehlo_is_multiline_and_raw_client_reads_it_whole(sink):
    with Raw(sink.port) as raw:
        raw.greet()
        reply = raw.ehlo()
        assert reply.lines[0] == "sink.test"
        assert {"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"} <= set(reply.lines)
        assert any(line.startswith("SIZE") for line in reply.lines)
        raw.cmd("NOOP").check(250, "2.0.0")
        raw.cmd("RSET").check(250, "2.0.0")
        raw.cmd("QUIT").check(221, "2.0.0")
        raw.expect_closed()


def test_pipelined_commands_are_answered_in_order(sink):
    with Raw.session(sink.port) as raw:
        raw.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n"
                 "RCPT TO:<c@example.org>\r\nDATA\r\n")
        replies = raw.read_replies(4)
        assert [r.code for r in replies] == [250, 250, 250, 354]
        raw.send(b"Subject: x\r\n\r\nbody\r\n.\r\nMAIL FROM:<d@example.com>\r\n"
                 b"RCPT TO:<e@example.org>\r\nDATA\r\nSubject: y\r\n\r\nsecond\r\n.\r\nQUIT\r\n")
        assert [r.code for r in raw.read_replies(5)] == [250, 250, 250, 354, 250]
        raw.read_reply().check(221)
        raw.expect_closed()
    first, second = sink.wait_for_messages(2)
    assert first.data == b"Subject: x\r\n\r\nbody\r\n" and first.rcpts == ["b@example.org", "c@example.org"]
    assert second.data == b"Subject: y\r\n\r\nsecond\r\n" and second.mail_from == "d@example.com"


def test_rejected_recipient_and_sequence_errors(make_sink):
    sink = make_sink(reject_rcpts={"Nobody@Example.org": "550 5.1.1 User unknown"})
    with smtp(sink) as c:
        refused = c.sendmail("a@example.com", ["nobody@example.org", "b@example.org"], make_message())
        assert refused == {"nobody@example.org": (550, b"5.1.1 User unknown")}
        assert c.rcpt("x@example.org")[0] == 503  # no MAIL any more
        c.quit()
    [d] = sink.wait_for_messages(1)
    assert d.rcpts == ["b@example.org"]


def test_data_reply_override_records_nothing(make_sink):
    sink = make_sink(data_reply="554 5.7.1 No thanks")
    with smtp(sink) as c:
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail("a@example.com", ["b@example.org"], make_message())
        assert e.value.smtp_code == 554
    sink.data_reply = "451 4.3.0 Later"
    with smtp(sink) as c:
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail("a@example.com", ["b@example.org"], make_message())
        assert e.value.smtp_code == 451
    sink.data_reply = None  # knobs are read when used
    with smtp(sink) as c:
        c.sendmail("a@example.com", ["b@example.org"], make_message())
    assert len(sink.wait_for_messages(1)) == 1
    assert sink.connections == 3


def test_reply_knobs_for_rcpt_data_and_rset(make_sink):
    """Replies a broken downstream gives: the sink sends them as told, and keeps its own state as
    documented (no recipient for a RCPT reply that is not 2xx, no message after a DATA reply)."""
    long_line = "550 5.1.1 " + "x" * 4000
    sink = make_sink(rcpt_reply="354 Go ahead", rset_reply="354 what now",
                     reject_rcpts={"long@example.org": long_line})
    with Raw(sink.port) as raw:
        raw.greet()
        raw.ehlo()
        raw.cmd("MAIL FROM:<a@example.com>").check(250)
        raw.cmd("RCPT TO:<b@example.org>").check(354)
        assert raw.cmd("RCPT TO:<long@example.org>").text == long_line[4:]
        raw.cmd("DATA").check(554)  # no recipient was taken
        raw.cmd("RSET").check(354)
        sink.rcpt_reply = None
        sink.data_command_reply = "250 2.0.0 Ok"
        raw.cmd("MAIL FROM:<a@example.com>").check(250)
        raw.cmd("RCPT TO:<b@example.org>").check(250)
        raw.cmd("DATA").check(250)
        raw.cmd("QUIT").check(221)
    assert sink.messages == []


@pytest.mark.parametrize("knob", ["drop_during_data", "drop_after_dot"])
def test_dropping_knobs_close_without_reply_and_record_nothing(make_sink, knob):
    sink = make_sink(**{knob: True})
    with smtp(sink) as c:
        with pytest.raises(smtplib.SMTPServerDisconnected):
            c.sendmail("a@example.com", ["b@example.org"], make_message(body="x" * 200_000))
    assert sink.wait_idle(5)
    assert sink.messages == []
    assert any("dropping connection" in line for line in sink.transcript())


def test_drop_during_data_happens_before_the_end_of_data(make_sink):
    sink = make_sink(drop_during_data=True)
    with Raw.session(sink.port) as raw:
        raw.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        assert [r.code for r in raw.read_replies(3)] == [250, 250, 354]
        raw.send("Subject: partial\r\n")  # no end of data: the sink must not wait for it
        raw.expect_closed(5)
    assert sink.messages == []


def test_delay_applies_to_chosen_replies(make_sink):
    sink = make_sink(delay_seconds=0.5, delay_commands={"."})
    with smtp(sink) as c:
        c.ehlo()
        started = time.monotonic()
        c.noop()
        assert time.monotonic() - started < 0.4
        started = time.monotonic()
        c.sendmail("a@example.com", ["b@example.org"], make_message())
        assert time.monotonic() - started >= 0.5


def test_counts_connections_and_serves_them_concurrently(sink):
    clients = [Raw(sink.port) for _ in range(3)]
    try:
        for raw in clients:
            raw.greet()
        assert sink.connections == 3
    finally:
        for raw in clients:
            raw.close()
    assert sink.wait_idle(5)


def test_concurrent_smtplib_clients(sink):
    def send(n):
        with smtp(sink) as c:
            for i in range(10):
                c.sendmail("a@example.com", ["b@example.org"], make_message(subject=f"{n}-{i}"))

    threads = [threading.Thread(target=send, args=(n,)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(sink.wait_for_messages(50)) == 50


def test_big_message_is_stored_in_a_file(make_sink, tmp_path):
    sink = make_sink(store_dir=str(tmp_path), store_threshold=1 << 20)
    body = b"".join(b"%07d .line with some text to make it longer\r\n" % i for i in range(60_000))
    body += b".\r\n..\r\n"
    msg = make_message(body=body)
    with smtp(sink) as c:
        c.sendmail("a@example.com", ["b@example.org"], msg)
    [d] = sink.wait_for_messages(1)
    assert d.data is None and d.path and os.path.getsize(d.path) == len(msg) == d.size
    assert d.content() == msg
    import hashlib
    assert d.sha256 == hashlib.sha256(msg).hexdigest()
    assert d.tail_sha256(len(body)) == hashlib.sha256(body).hexdigest()
    assert d.head(10) == msg[:10]


def test_sink_end_of_data_is_lenient_so_smuggling_would_show(sink):
    """The sink ends DATA at "\\n.\\r\\n" too: a gateway passing such bytes through would make a
    second, smuggled message appear here (which is what the gateway tests check)."""
    with Raw.session(sink.port) as raw:
        raw.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        raw.read_replies(3)
        raw.send(b"Subject: legit\r\n\r\nhello\n.\r\nMAIL FROM:<evil@example.com>\r\n"
                 b"RCPT TO:<victim@example.org>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n.\r\n")
        assert [r.code for r in raw.read_replies(4)] == [250, 250, 250, 354]
        raw.read_reply().check(250)
    messages = sink.wait_for_messages(2)
    assert [m.mail_from for m in messages] == ["a@example.com", "evil@example.com"]


def test_sink_on_ipv6(make_sink):
    try:
        sink = make_sink(host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback")
    with Raw(sink.port, "::1") as raw:
        raw.greet()


# ------------------------------------------------------------------------------- helpers
def test_build_config_renders_valid_toml(tmp_path):
    text = build_config(server={"max_recipients": 3, "idle_timeout": "1s", "workers": None},
                        stages=[{"type": "size_limit", "max_bytes": "2MiB"}],
                        extra='[metrics]\nlisten = "127.0.0.1:{port}"')
    gw = Gateway("/bin/false", tmp_path / "gw", text, port=12345, sink_port=23456)
    parsed = tomllib.loads(gw.config_path.read_text())
    assert parsed["server"]["listen"] == ["127.0.0.1:12345"]
    assert parsed["server"]["max_recipients"] == 3 and "workers" not in parsed["server"]
    assert parsed["downstream"] == {"address": "127.0.0.1:23456", "timeout": "5s"}
    assert parsed["spool"]["path"] == str(tmp_path / "gw" / "spool")
    assert parsed["log"]["path"] == str(tmp_path / "gw" / "decisions.jsonl")
    assert parsed["stage"] == [{"type": "size_limit", "max_bytes": "2MiB"}]
    assert parsed["metrics"]["listen"] == "127.0.0.1:12345"
    assert "maildir" not in parsed

    maildir_only = tomllib.loads(Gateway("/bin/false", tmp_path / "m", build_config(downstream=None))
                                 .config_path.read_text())
    assert "downstream" not in maildir_only
    assert maildir_only["maildir"]["path"] == str(tmp_path / "m" / "maildir")


def test_dot_stuff():
    assert dot_stuff(b".a\r\nb\r\n.\r\n") == b"..a\r\nb\r\n..\r\n.\r\n"
    assert dot_stuff(b"no newline") == b"no newline\r\n.\r\n"


def test_prepended_headers_and_received_check():
    original = make_message()
    date = email.utils.formatdate(localtime=False)
    prefix = (f"Received: from client.test ([127.0.0.1])\r\n\tby mx.test.example (mailgate)"
              f" with ESMTP id 1234\r\n\tfor <b@example.org>; {date}\r\n"
              "X-Other: yes\r\n").encode()
    headers = prepended_headers(prefix + original, original)
    assert [n for n, _ in headers] == ["Received", "X-Other"]
    check_received(headers)
    with pytest.raises(AssertionError):
        check_received(headers, helo="other.test")
    with pytest.raises(AssertionError):
        prepended_headers(prefix + original[:-3] + b"!\r\n", original)
    with pytest.raises(AssertionError):
        prepended_headers(original, original)  # nothing prepended
    with pytest.raises(AssertionError):
        parse_header_block(b"not a header\r\n")
    assert message_id_of(original).startswith("<")


def test_raw_client_rejects_malformed_replies(sink):
    # The sink's replies are well formed; a 3-digit code followed by garbage is not.
    with Raw(sink.port) as raw:
        raw.buffer = b"25x oops\r\n"
        with pytest.raises(AssertionError):
            raw.read_reply()


# ------------------------------------------------------------------------------- Postfix tools
def test_postfix_smtp_sink_dumps_one_file_per_message(smtp_sink):
    ids = []
    with smtplib.SMTP("127.0.0.1", smtp_sink.port, timeout=10) as c:
        for _ in range(3):
            msg = make_message(body="line\r\n.dot line\r\n")
            ids.append(message_id_of(msg))
            c.sendmail("a@example.com", ["b@example.org"], msg)
        c.quit()
    dumps = smtp_sink.wait_for(3)
    assert len(dumps) == 3
    assert sorted(message_id_of(postfix_dump_message(d)) for d in dumps) == sorted(ids)


@pytest.mark.skipif(not tool_available(SMTP_SOURCE), reason="smtp-source is not installed")
def test_postfix_smtp_source_into_smtp_sink(smtp_sink):
    result = run([SMTP_SOURCE, "-s", "3", "-m", "12", "-l", "2000", "-f", "a@example.com",
                  "-t", "b@example.org", f"127.0.0.1:{smtp_sink.port}"], timeout=30)
    assert result.returncode == 0, result.stderr
    assert len(smtp_sink.wait_for(12)) == 12
