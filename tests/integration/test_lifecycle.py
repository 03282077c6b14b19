"""The process around the sessions: config validation (--check-config), SIGTERM (drain, then exit 0),
SIGHUP (reload, reopen the log), SIGUSR1 (reopen the log), stray signals, the listen address held by
another process, and the decision log, also when nobody reads it (design.md §3 "Config", "Logs"; §4)."""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from harness import (
    CLIENT_HELO,
    ConnectionClosed,
    Gateway,
    Raw,
    Reply,
    build_config,
    dot_stuff,
    free_port,
    make_message,
    open_transaction,
    records_for_client,
    run,
)

pytestmark = pytest.mark.time_limit(60)


# ------------------------------------------------------------------------------- --check-config
def check_config(binary: str, path: Path):
    # Run in the file's directory so nothing can land in the source tree.
    return run([binary, "--check-config", str(path)], timeout=10, cwd=path.parent)


def write(tmp_path: Path, text: str, name: str = "mailgate.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def assert_config_error(result, path: Path, line: int, key: str | None) -> None:
    """Exit 1 and a "FILE:LINE: key: message" line on stderr. The key may carry its table's
    path ("server.max_recipients", "stage[0].max_bytes")."""
    assert result.returncode == 1, (f"expected exit 1, got {result.returncode}\n"
                                    f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    prefix = re.escape(f"{path}:{line}:")
    if key is None:
        pattern = prefix + r" \S"
    else:
        pattern = prefix + r" (?:[\w\[\]]+\.)*" + re.escape(key) + r": \S"
    assert re.search(pattern, result.stderr, re.M), (
        f"no error line like '{path}:{line}: {key or '...'}: message' on stderr:\n{result.stderr}")


SERVER_HEAD = """\
[server]
listen = ["127.0.0.1:2600"]
hostname = "mx.test.example"
domains = ["example.org"]
"""  # lines 1-4


def test_check_config_accepts_the_test_config(mailgate_bin, tmp_path):
    text = (build_config(server={"max_recipients": 10, "idle_timeout": "5m"},
                         downstream={"timeout": "30s", "connect_timeout": "5s"},
                         spool={"memory_limit": "1MiB"})
            .replace("{port}", "2600").replace("{sink_port}", "2601").replace("{tmp}", str(tmp_path)))
    path = write(tmp_path, text)
    result = check_config(mailgate_bin, path)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def test_check_config_accepts_a_maildir_config(mailgate_bin, tmp_path):
    text = build_config(downstream=None).replace("{port}", "2600").replace("{tmp}", str(tmp_path))
    result = check_config(mailgate_bin, write(tmp_path, text))
    assert result.returncode == 0, result.stderr


def test_check_config_does_not_start_a_server(mailgate_bin, tmp_path):
    port = free_port()
    text = (build_config().replace("{port}", str(port)).replace("{sink_port}", "2601")
            .replace("{tmp}", str(tmp_path)))
    started = time.monotonic()
    assert check_config(mailgate_bin, write(tmp_path, text)).returncode == 0
    assert time.monotonic() - started < 5
    with pytest.raises(OSError):
        Raw(port, timeout=1).close()


@pytest.mark.parametrize("line5, key", [
    ('max_recipients = "lots"', "max_recipients"),
    ("max_recipients = 0", "max_recipients"),
    ('idle_timeout = "soon"', "idle_timeout"),
    ("workers = -1", "workers"),
    ('colour = "blue"', "colour"),  # unknown key: a typo must not be ignored
])
def test_check_config_names_file_line_and_key(mailgate_bin, tmp_path, line5, key):
    path = write(tmp_path, SERVER_HEAD + line5 + "\n")
    assert_config_error(check_config(mailgate_bin, path), path, 5, key)


def test_check_config_unknown_table(mailgate_bin, tmp_path):
    path = write(tmp_path, SERVER_HEAD + "\n[frobnicator]\nlevel = 3\n")
    result = check_config(mailgate_bin, path)
    assert result.returncode == 1 and "frobnicator" in result.stderr, result.stderr
    assert re.search(re.escape(str(path)) + r":(6|7):", result.stderr), result.stderr


def test_check_config_bad_stage_setting(mailgate_bin, tmp_path):
    text = SERVER_HEAD + '\n[[stage]]\ntype = "size_limit"\nmax_bytes = "lots"\n'  # line 8
    path = write(tmp_path, text)
    assert_config_error(check_config(mailgate_bin, path), path, 8, "max_bytes")


def test_check_config_unknown_stage_type(mailgate_bin, tmp_path):
    text = SERVER_HEAD + '\n[[stage]]\ntype = "teleport"\n'  # line 7
    path = write(tmp_path, text)
    result = check_config(mailgate_bin, path)
    assert_config_error(result, path, 7, "type")
    assert "teleport" in result.stderr


def test_check_config_toml_syntax_error(mailgate_bin, tmp_path):
    path = write(tmp_path, '[server]\nlisten = ["127.0.0.1:2600"]\nhostname = "unterminated\n')
    assert_config_error(check_config(mailgate_bin, path), path, 3, None)


def test_check_config_reports_every_error(mailgate_bin, tmp_path):
    path = write(tmp_path, SERVER_HEAD + 'max_recipients = "lots"\ncolour = "blue"\n')
    result = check_config(mailgate_bin, path)
    assert_config_error(result, path, 5, "max_recipients")
    assert_config_error(result, path, 6, "colour")


def test_check_config_missing_file(mailgate_bin, tmp_path):
    path = tmp_path / "does-not-exist.toml"
    result = check_config(mailgate_bin, path)
    assert result.returncode == 1 and str(path) in result.stderr, result.stderr


def test_invalid_config_does_not_start(mailgate_bin, tmp_path):
    port = free_port()
    path = write(tmp_path, SERVER_HEAD.replace("2600", str(port)) + 'max_recipients = "lots"\n')
    result = run([mailgate_bin, "--config", str(path)], timeout=10, cwd=tmp_path)
    assert result.returncode != 0
    assert f"{path}:5:" in result.stderr, result.stderr


# ------------------------------------------------------------------------------- defaults said, sections refused
DEFAULT_SIZE_NOTICE = "no [[stage]]: using the default size_limit of 25 MiB"
DEFAULT_SIZE_LIMIT = 25 * 1024 * 1024


def test_check_config_without_stages_keeps_the_default_size_limit_and_says_so(mailgate_bin, tmp_path):
    path = write(tmp_path, SERVER_HEAD)
    result = check_config(mailgate_bin, path)
    assert result.returncode == 0, result.stderr
    assert f"{path}: {DEFAULT_SIZE_NOTICE}" in result.stderr, result.stderr
    assert "(1 stages)" in result.stdout, result.stdout
    # With a [[stage]] of its own the operator chose the pipeline: nothing to say.
    path = write(tmp_path, SERVER_HEAD + '[[stage]]\ntype = "size_limit"\nmax_bytes = "1MiB"\n')
    result = check_config(mailgate_bin, path)
    assert result.returncode == 0 and "[[stage]]" not in result.stderr, result.stderr


def test_gateway_without_stages_enforces_the_default_size_limit(start_gateway, sink):
    """SIZE= over 25 MiB gets 552 at MAIL, a 30 MiB message 552 after its end, and the start
    says which limit applies."""
    gateway = start_gateway(sink=sink, stages=[])
    assert DEFAULT_SIZE_NOTICE in gateway.stderr_text(), gateway.stderr_text()
    with Raw(gateway.port) as raw:
        raw.greet()
        ehlo = raw.cmd(f"EHLO {CLIENT_HELO}").check(250)
        assert f"SIZE {DEFAULT_SIZE_LIMIT}" in ehlo.lines, ehlo
        raw.cmd("MAIL FROM:<a@example.com> SIZE=99999999999").check(552, "5.3.4")
        line = b"w" * 998 + b"\r\n"
        too_big = make_message(body=line * (31 * 1024 * 1024 // len(line)))
        assert len(too_big) > 30 * 1024 * 1024
        open_transaction(raw)
        raw.send(dot_stuff(too_big))
        raw.read_reply(timeout=30).check(552, "5.3.4")
    assert sink.messages == []


# ------------------------------------------------------------------------------- SIGTERM
def new_connection_refused(port: int) -> bool:
    """True when a new connection is not served: refused, reset, closed, greeted with 421, or
    left unanswered (accepted by the kernel's backlog only). False when it is greeted with 220."""
    try:
        raw = Raw(port, timeout=2)
    except OSError:
        return True
    with raw:
        try:
            reply = raw.read_reply(timeout=2)
        except ConnectionClosed:
            return True
        except AssertionError:  # no greeting at all
            return True
        if reply.code == 421:
            return True
        assert reply.code == 220, f"unexpected greeting while shutting down: {reply}"
        return False


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.1)


def finish_politely(raw: Raw) -> None:
    """After the drain: QUIT gets 221, or the gateway already said 421 4.3.2, or closed."""
    try:
        raw.send_line("QUIT")
        reply = raw.read_reply(timeout=5)
    except (ConnectionClosed, OSError):
        return
    assert reply.code == 221 or (reply.code == 421 and reply.enhanced == "4.3.2"), reply


def test_sigterm_lets_a_transaction_in_data_finish(start_gateway, sink):
    gateway = start_gateway(sink=sink, server={"shutdown_timeout": "10s"})
    content = make_message(body="a line of the message being drained\r\n" * 2000)
    wire = dot_stuff(content)
    raw = Raw.session(gateway.port)
    try:
        raw.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        assert [r.code for r in raw.read_replies(3)] == [250, 250, 354]
        raw.send(wire[: len(wire) // 2])
        time.sleep(0.2)
        gateway.signal(signal.SIGTERM)
        wait_until(lambda: new_connection_refused(gateway.port), 5, "new connections to be refused")
        assert gateway.running, "the gateway exited with a transaction in flight"
        raw.send(wire[len(wire) // 2:])
        raw.read_reply(timeout=10).check(250)
        finish_politely(raw)
    finally:
        raw.close()
    started = time.monotonic()
    assert gateway.wait(15) == 0
    assert time.monotonic() - started < 5, "exit waited for shutdown_timeout with nothing in flight"
    [delivery] = sink.wait_for_messages(1)
    assert delivery.content().endswith(content)


def test_sigterm_closes_idle_sessions_with_421(start_gateway, sink):
    gateway = start_gateway(sink=sink, server={"shutdown_timeout": "10s"})
    between = Raw.session(gateway.port)  # idle between transactions
    greeted = Raw(gateway.port)  # idle before HELO
    try:
        between.transaction("a@example.com", ["b@example.org"], make_message()).check(250)
        greeted.greet()
        gateway.signal(signal.SIGTERM)
        for raw in (between, greeted):
            raw.read_reply(timeout=5).check(421, "4.3.2")
            raw.expect_closed()
    finally:
        between.close()
        greeted.close()
    assert gateway.wait(15) == 0


def test_sigterm_with_nothing_connected_exits_promptly(start_gateway, sink):
    gateway = start_gateway(sink=sink)
    started = time.monotonic()
    gateway.signal(signal.SIGTERM)
    assert gateway.wait(15) == 0
    assert time.monotonic() - started < 5


def test_sigterm_drain_is_bounded_by_shutdown_timeout(start_gateway, sink):
    gateway = start_gateway(sink=sink, server={"shutdown_timeout": "2s"})
    raw = Raw.session(gateway.port)
    try:
        raw.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
        assert [r.code for r in raw.read_replies(3)] == [250, 250, 354]
        raw.send(b"Subject: stuck\r\n\r\nthe client never finishes\r\n")
        started = time.monotonic()
        gateway.signal(signal.SIGTERM)
        assert gateway.wait(12) == 0
        assert time.monotonic() - started < 8, "shutdown_timeout was not applied"
        try:
            reply = raw.read_reply(timeout=2)
            assert reply.code == 421, reply
        except ConnectionClosed:
            pass
    finally:
        raw.close()
    assert sink.messages == []


# ------------------------------------------------------------------------------- SIGHUP
def recipients_accepted(port: int, tries: int) -> int:
    """Opens a session, offers `tries` recipients in one pipelined group, counts the 250s."""
    with Raw.session(port) as raw:
        raw.send("MAIL FROM:<a@example.com>\r\n"
                 + "".join(f"RCPT TO:<user{i}@example.org>\r\n" for i in range(tries)))
        raw.read_reply().check(250)
        replies = raw.read_replies(tries)
        for r in replies:
            assert r.code == 250 or (r.code, r.enhanced) == (452, "4.5.3"), r
        raw.cmd("QUIT")
        return sum(r.code == 250 for r in replies)


def test_sighup_reloads_the_config(start_gateway, sink):
    gateway = start_gateway(sink=sink, server={"max_recipients": 2})
    assert recipients_accepted(gateway.port, 4) == 2
    survivor = Raw.session(gateway.port)
    try:
        gateway.write_config(build_config(server={"max_recipients": 5}))
        gateway.signal(signal.SIGHUP)
        wait_until(lambda: recipients_accepted(gateway.port, 7) == 5, 5,
                   "a new session to see max_recipients = 5")
        # The reload dropped no connection: the older session still works end to end.
        survivor.cmd("NOOP").check(250)
        survivor.transaction("a@example.com", ["b@example.org"], make_message()).check(250)
    finally:
        survivor.close()
    assert gateway.running
    assert len(sink.wait_for_messages(1)) == 1


def test_sighup_with_an_invalid_config_keeps_the_old_one(start_gateway, sink):
    gateway = start_gateway(sink=sink, server={"max_recipients": 2})
    gateway.write_config(build_config(server={"max_recipients": "lots"}))
    gateway.signal(signal.SIGHUP)
    time.sleep(1.0)
    assert gateway.running, "an invalid config on reload must not stop the gateway"
    assert recipients_accepted(gateway.port, 4) == 2
    assert "max_recipients" in gateway.stderr_text(), "the reload error was not reported"


# ------------------------------------------------------------------------------- decision log
RECORD_KEYS = ("time", "session", "client", "helo", "tls", "sender", "recipients", "size", "stages",
               "action", "reply", "downstream_reply")


def bare(address) -> str:
    return str(address or "").strip("<>")


def transaction_records(gateway: Gateway, port: int, sender: str, count: int = 1) -> list[dict]:
    records = gateway.wait_for_records(
        lambda r: r.get("client", {}).get("port") == port and bare(r.get("sender")) == sender,
        count=count)
    return records


def check_record(record: dict, *, port: int, helo: str, sender: str, action: str, reply: Reply,
                 accepted: list[str] = ()) -> None:
    missing = [k for k in RECORD_KEYS if k not in record]
    assert not missing, f"decision record lacks {missing}: {record}"
    when = datetime.datetime.fromisoformat(str(record["time"]).replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    assert abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()) < 600, record["time"]
    assert record["session"] not in (None, ""), record
    assert record["client"].get("ip") == "127.0.0.1" and record["client"].get("port") == port, record
    assert record["helo"] == helo
    # In the clear on both legs (tests/integration/test_tls.py has the encrypted ones).
    assert record["tls"] == {"version": None, "cipher": None, "sni": None, "downstream": False}, record["tls"]
    assert bare(record["sender"]) == sender
    assert isinstance(record["recipients"], list)
    for r in record["recipients"]:
        assert isinstance(r, dict) and "address" in r and "reply" in r, record["recipients"]
    by_address = {bare(r["address"]): str(r["reply"]) for r in record["recipients"]}
    for address in accepted:
        assert by_address.get(address, "").startswith("250"), (address, record["recipients"])
    assert isinstance(record["size"], int) and record["size"] >= 0, record
    assert isinstance(record["stages"], list)
    for s in record["stages"]:
        assert isinstance(s, dict) and {"stage", "verdict", "reason"} <= set(s), record["stages"]
    assert record["action"] == action, f"action {record['action']!r}, expected {action!r}: {record}"
    first_line = f"{reply.code} {reply.lines[0]}".rstrip()
    assert str(record["reply"]).split("\n")[0].rstrip("\r ") == first_line, (
        f"logged reply {record['reply']!r} is not what the client got: {first_line!r}")


def test_decision_log_one_record_per_transaction(gateway, sink):
    sessions = []

    def run_session(helo: str, content: bytes, *, raw_body: bytes | None = None):
        with Raw.session(gateway.port, helo=helo) as raw:
            raw.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
            assert [r.code for r in raw.read_replies(3)] == [250, 250, 354]
            raw.send(raw_body if raw_body is not None else dot_stuff(content))
            final = raw.read_reply(timeout=15)
            raw.cmd("QUIT")
            sessions.append((raw.local_port, helo))
            return final, raw.local_port

    accepted_content = make_message(body="accepted\r\n")
    ok, ok_port = run_session("accept.test", accepted_content)
    ok.check(250)
    big = make_message(body=(b"z" * 78 + b"\r\n") * 14000)  # 1.12 MB, over the 1 MiB limit
    too_big, big_port = run_session("big.test", big)
    too_big.check(552, "5.3.4")
    bare_lf, lf_port = run_session("lf.test", b"", raw_body=b"Subject: x\r\n\r\nbad\nline\r\n.\r\n")
    bare_lf.check(550, "5.5.2")
    sink.data_reply = "451 4.3.0 Downstream busy"
    busy, busy_port = run_session("busy.test", make_message())
    busy.check(451, "4.3.0")
    sink.data_reply = "554 5.7.1 Downstream says no"
    refused, refused_port = run_session("refused.test", make_message())
    refused.check(554, "5.7.1")
    sink.data_reply = None

    expectations = [
        (ok_port, "accept.test", "accept", ok),
        (big_port, "big.test", "reject", too_big),
        (lf_port, "lf.test", "reject", bare_lf),
        (busy_port, "busy.test", "tempfail", busy),
        (refused_port, "refused.test", "reject", refused),
    ]
    session_ids = set()
    for port, helo, action, reply in expectations:
        transaction_records(gateway, port, "a@example.com")
        time.sleep(0.1)  # a second record, if any, would be there by now
        records = transaction_records(gateway, port, "a@example.com")
        assert len(records) == 1, f"{helo}: expected one transaction record, got {records}"
        check_record(records[0], port=port, helo=helo, sender="a@example.com", action=action,
                     reply=reply, accepted=["b@example.org"])
        session_ids.add(str(records[0]["session"]))
    assert len(session_ids) == len(expectations), "session ids are not distinct"

    [ok_record] = transaction_records(gateway, ok_port, "a@example.com")
    assert str(ok_record["downstream_reply"]).startswith("250"), ok_record
    assert ok_record["size"] >= len(accepted_content)
    [refused_record] = transaction_records(gateway, refused_port, "a@example.com")
    assert str(refused_record["downstream_reply"]).startswith("554"), refused_record


def test_decision_log_lists_every_recipient_with_its_reply(start_gateway, make_sink):
    sink = make_sink(reject_rcpts={"nobody@example.org": "550 5.1.1 User unknown"})
    gateway = start_gateway(sink=sink)
    with Raw.session(gateway.port) as raw:
        raw.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\n"
                 "RCPT TO:<nobody@example.org>\r\nRCPT TO:<c@elsewhere.test>\r\nDATA\r\n")
        mail, b, nobody, elsewhere, data = raw.read_replies(5)
        assert (b.code, nobody.code, elsewhere.code, data.code) == (250, 550, 554, 354)
        final = raw.send_data(make_message()).check(250)
        raw.cmd("QUIT")
        port = raw.local_port
    records = gateway.wait_for_records(
        lambda r: r.get("client", {}).get("port") == port and r.get("action") == "accept")
    assert len(records) == 1, records_for_client(gateway.log_records(), port)
    record = records[0]
    check_record(record, port=port, helo=CLIENT_HELO, sender="a@example.com", action="accept",
                 reply=final, accepted=["b@example.org"])
    replies = {bare(r["address"]): str(r["reply"]) for r in record["recipients"]}
    assert replies.get("nobody@example.org", "").startswith("550 5.1.1"), record["recipients"]
    assert replies.get("c@elsewhere.test", "").startswith("554 5.7.1"), record["recipients"]


def test_decision_log_two_transactions_in_one_session(gateway):
    with Raw.session(gateway.port) as raw:
        first = raw.transaction("a@example.com", ["b@example.org"], make_message())
        raw.cmd("RSET").check(250)
        second = raw.transaction("a@example.com", ["c@example.org"], make_message())
        raw.cmd("QUIT")
        port = raw.local_port
    transaction_records(gateway, port, "a@example.com", count=2)
    time.sleep(0.3)  # a third record, if any, would be there by now
    records = transaction_records(gateway, port, "a@example.com", count=2)
    assert len(records) == 2, records
    for record, reply, rcpt in zip(records, (first, second), ("b@example.org", "c@example.org")):
        check_record(record, port=port, helo=CLIENT_HELO, sender="a@example.com", action="accept",
                     reply=reply, accepted=[rcpt])
    assert records[0]["session"] == records[1]["session"]


def test_decision_log_records_refusals_at_mail(gateway):
    with Raw.session(gateway.port) as raw:
        reply = raw.cmd("MAIL FROM:<a@example.com> SIZE=999999999").check(552, "5.3.4")
        raw.cmd("QUIT")
        port = raw.local_port
    records = gateway.wait_for_records(
        lambda r: r.get("client", {}).get("port") == port and str(r.get("reply", "")).startswith("552"))
    assert len(records) == 1, records_for_client(gateway.log_records(), port)
    assert records[0].get("action") == "reject"
    assert str(records[0]["reply"]).startswith(f"{reply.code} {reply.lines[0]}".rstrip())


# ------------------------------------------------------------------------------- a stuck log
REPLY_BOUND = 5.0  # every reply, while the log is stuck, within this (seconds)
LOG_STUCK_SECONDS = 30.0
# Refused MAILs, each one decision record of ~0.7 KiB: ~16 MB, twice the log's 8 MiB queue.
FLOOD_RECORDS = 24_000


class PipeReader:
    """Reads a pipe to its end in a background thread."""

    def __init__(self, fd: int):
        self.fd = fd
        self.data = bytearray()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return
            self.data += chunk

    def text(self) -> str:
        return bytes(self.data).decode("utf-8")

    def wait_closed(self, timeout: float) -> str:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the log pipe was not closed"
        return self.text()


def refused_mails(port: int, count: int) -> None:
    """`count` MAILs refused by the size_limit stage (one decision record each), pipelined in
    batches, each reply in time. Batches, not one block: a reply's bound then measures the gateway,
    not how long a sanitizer build takes to work through thousands of commands sent at once."""
    batch = 200
    with Raw.session(port, timeout=REPLY_BOUND) as raw:
        for start in range(0, count, batch):
            size = min(batch, count - start)
            raw.send("MAIL FROM:<flood@example.com> SIZE=999999999\r\n" * size)
            for _ in range(size):
                raw.read_reply().check(552, "5.3.4")
        raw.cmd("QUIT").check(221)


def parse_log(text: str) -> list[dict]:
    """Every line one whole JSON object: a split or interleaved record fails here."""
    assert text == "" or text.endswith("\n"), f"the log ends in a partial line: {text[-200:]!r}"
    records = []
    for line in text.split("\n")[:-1]:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise AssertionError(f"decision log line is not JSON ({e}): {line[:300]!r}")
    return records


@pytest.mark.time_limit(120)
def test_a_log_nobody_reads_does_not_stop_mail(start_gateway, sink):
    # log.path = "-" with standard output a pipe the test does not read for 30 s: it holds 64 KiB,
    # then the gateway's queue fills, then records are counted and dropped. Mail never waits.
    read_end, write_end = os.pipe()
    reader = None
    try:
        try:
            gateway = start_gateway(sink=sink, log={"path": "-"}, stdout=write_end)
        finally:
            os.close(write_end)
        started = time.monotonic()
        errors: list[str] = []
        floods = [threading.Thread(target=lambda: errors.extend(run_guarded(refused_mails, gateway.port,
                                                                            FLOOD_RECORDS // 2)))
                  for _ in range(2)]
        for t in floods:
            t.start()
        for t in floods:
            t.join(60)
        assert not errors, errors
        messages = 0
        while time.monotonic() - started < LOG_STUCK_SECONDS:
            with Raw.session(gateway.port, timeout=REPLY_BOUND) as raw:
                raw.transaction("a@example.com", ["b@example.org"],
                                make_message(subject=f"message {messages}")).check(250)
                raw.cmd("QUIT").check(221)
            messages += 1
            time.sleep(0.1)
        assert gateway.running
        assert len(sink.wait_for_messages(messages)) == messages
        # The operator heard of it while the log was stuck (a report every 10 s).
        reports = re.findall(r"decision log -: (\d+) records dropped \((\d+) since start\)", gateway.stderr_text())
        assert reports, f"no report of dropped records on stderr:\n{gateway.stderr_text()}"

        reader = PipeReader(read_end)
        wait_until(lambda: '"log_overflow"' in reader.text(), 15, "the log_overflow record")
        gateway.stop()
        text = reader.wait_closed(10)
    finally:
        os.close(read_end)  # when the test failed early, a stuck gateway gets EPIPE and can stop
    records = parse_log(text)
    overflows = [r for r in records if r.get("type") == "log_overflow"]
    dropped = sum(r["dropped"] for r in overflows)
    transactions = [r for r in records if r.get("type") == "transaction"]
    assert dropped > 0 and overflows[-1]["dropped_total"] == dropped, overflows
    # Every record is either in the log or counted: none lost silently, none twice.
    assert len(transactions) + dropped == FLOOD_RECORDS + messages, (
        f"{len(transactions)} records + {dropped} dropped != {FLOOD_RECORDS} + {messages}")
    totals = [int(total) for _, total in re.findall(r"decision log -: (\d+) records dropped \((\d+) since start\)",
                                                    gateway.stderr_text())]
    assert max(totals) == dropped, gateway.stderr_text()


def run_guarded(function, *args) -> list[str]:
    """Runs `function` in a thread; returns its failure as a list of one message (or none)."""
    try:
        function(*args)
    except BaseException as e:  # noqa: BLE001 - reported to the test's thread
        return [f"{type(e).__name__}: {e}"]
    return []


# ------------------------------------------------------------------------------- log rotation
class Traffic:
    """Transactions one after another in a background thread, each with its own sender."""

    def __init__(self, port: int):
        self.port = port
        self.sent: list[str] = []
        self.errors: list[str] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stopping.is_set():
                sender = f"n{len(self.sent)}@example.com"
                with Raw.session(self.port, timeout=REPLY_BOUND) as raw:
                    raw.transaction(sender, ["b@example.org"], make_message(sender=sender)).check(250)
                    raw.cmd("QUIT")
                self.sent.append(sender)
        except BaseException as e:  # noqa: BLE001 - reported by stop()
            self.errors.append(f"{type(e).__name__}: {e}")

    def stop(self) -> list[str]:
        self.stopping.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "the traffic thread did not finish"
        assert not self.errors, self.errors
        assert self.sent, "no transaction was sent"
        return self.sent


def transaction_senders(path: Path) -> list[str]:
    return [bare(r.get("sender")) for r in parse_log(path.read_text() if path.exists() else "")
            if r.get("type") == "transaction"]


@pytest.mark.parametrize("sig", [signal.SIGUSR1, signal.SIGHUP], ids=["SIGUSR1", "SIGHUP"])
def test_log_rotation_loses_and_splits_no_record(start_gateway, sink, sig):
    gateway = start_gateway(sink=sink)
    rotated = gateway.log_path.with_name("decisions.jsonl.1")
    traffic = Traffic(gateway.port)
    time.sleep(1.0)
    os.rename(gateway.log_path, rotated)  # as logrotate does, then it signals
    gateway.signal(sig)
    wait_until(lambda: gateway.log_path.exists(), 5, "the log to be reopened at log.path")
    time.sleep(1.0)
    sent = traffic.stop()
    assert gateway.running, f"{sig.name} ended the gateway"

    def logged() -> list[str]:
        return transaction_senders(rotated) + transaction_senders(gateway.log_path)

    wait_until(lambda: set(sent) <= set(logged()), 5, "a record for every transaction")
    time.sleep(0.2)  # a duplicate, if any, would be there by now
    old, new = transaction_senders(rotated), transaction_senders(gateway.log_path)
    assert old and new, f"{len(old)} records in the rotated file, {len(new)} in the new one"
    assert sorted(old + new) == sorted(sent), "each transaction must have exactly one record"
    # Records before the signal stayed in the old file, those after it went to the new one.
    assert max(sent.index(s) for s in old) < min(sent.index(s) for s in new)
    if sig == signal.SIGHUP:
        assert "configuration reloaded" in gateway.stderr_text()


def test_sighup_moves_the_log_to_a_new_log_path(start_gateway, sink):
    gateway = start_gateway(sink=sink)
    with Raw.session(gateway.port) as raw:
        raw.transaction("before@example.com", ["b@example.org"], make_message()).check(250)
    moved = gateway.workdir / "moved.jsonl"
    gateway.write_config(build_config(log={"path": str(moved)}))
    gateway.signal(signal.SIGHUP)
    wait_until(moved.exists, 5, "the log to be reopened at the new log.path")
    with Raw.session(gateway.port) as raw:
        raw.transaction("after@example.com", ["b@example.org"], make_message()).check(250)
    wait_until(lambda: "after@example.com" in transaction_senders(moved), 5, "the record in the new file")
    assert transaction_senders(gateway.log_path) == ["before@example.com"]
    assert transaction_senders(moved) == ["after@example.com"]


# ------------------------------------------------------------------------------- stray signals
# What an operator, a library or the system may send; each one's default would end the process
# at once (README "Signals").
STRAY_SIGNALS = [signal.SIGUSR2, signal.SIGALRM, signal.SIGPIPE, signal.SIGVTALRM, signal.SIGPROF,
                 signal.SIGIO, signal.SIGPWR, signal.SIGSTKFLT, signal.SIGXFSZ, signal.SIGRTMIN,
                 signal.SIGRTMIN + 5, signal.SIGRTMAX]


def test_stray_signals_do_not_end_the_gateway(start_gateway, sink):
    gateway = start_gateway(sink=sink)
    with Raw.session(gateway.port) as raw:  # a session open across every signal
        for number, sig in enumerate(STRAY_SIGNALS):
            gateway.signal(sig)
            time.sleep(0.2)
            assert gateway.running, f"signal {sig} ended the gateway"
            raw.transaction("a@example.com", ["b@example.org"],
                            make_message(subject=f"after signal {int(sig)}")).check(250)
        raw.cmd("QUIT").check(221)
    assert len(sink.wait_for_messages(len(STRAY_SIGNALS))) == len(STRAY_SIGNALS)
    # ... and SIGTERM still drains and exits 0 (the fixture checks).


def test_sigxcpu_drains_like_sigterm(start_gateway, sink):
    gateway = start_gateway(sink=sink)
    gateway.signal(signal.SIGXCPU)  # RLIMIT_CPU's soft limit: clean up before SIGKILL
    assert gateway.wait(15) == 0
    assert "stopping" in gateway.stderr_text()


def test_sigusr1_while_draining_does_not_end_the_gateway(start_gateway, sink):
    gateway = start_gateway(sink=sink, server={"shutdown_timeout": "10s"})
    raw = Raw.session(gateway.port)
    try:
        open_transaction(raw)
        raw.send(b"Subject: in flight\r\n\r\nstill coming\r\n")
        gateway.signal(signal.SIGTERM)
        wait_until(lambda: new_connection_refused(gateway.port), 5, "the drain to start")
        gateway.signal(signal.SIGUSR1)  # logrotate does not know the gateway is stopping
        gateway.signal(signal.SIGHUP)
        time.sleep(0.3)
        assert gateway.running, "a signal during the drain ended the gateway"
        raw.send(b".\r\n")
        raw.read_reply(timeout=10).check(250)
        finish_politely(raw)
    finally:
        raw.close()
    assert gateway.wait(15) == 0


# ------------------------------------------------------------------------------- address in use
def test_a_second_gateway_on_a_live_address_refuses_to_start(start_gateway, sink):
    first = start_gateway(sink=sink)
    # A test instance with no stages, on the live address: it must not take a share of the mail.
    second = start_gateway(sink=sink, port=first.port, stages=[], wait=False, name="second")
    try:
        code = second.wait(10)
    finally:
        second.stop(check=False)  # kills it if it is still running
    assert code != 0, "the second gateway exited 0"
    stderr = second.stderr_text()
    assert f"127.0.0.1:{first.port}" in stderr and "in use" in stderr, stderr
    for n in range(8):
        with Raw.session(first.port) as raw:
            raw.transaction("a@example.com", ["b@example.org"], make_message(subject=f"m{n}")).check(250)
            raw.cmd("QUIT")
    assert len(sink.wait_for_messages(8)) == 8
    assert len(first.wait_for_records(lambda r: r.get("type") == "transaction", count=8)) == 8


def time_wait_sockets(port: int) -> int:
    """Connections on local port `port` in TIME_WAIT (state 06 in /proc/net/tcp)."""
    count = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and fields[3] == "06":
                count += 1
    return count


def test_a_restart_right_after_stop_binds_despite_time_wait(start_gateway, sink):
    first = start_gateway(sink=sink, server={"workers": 4})
    for _ in range(3):
        with Raw.session(first.port) as raw:
            raw.transaction("a@example.com", ["b@example.org"], make_message()).check(250)
            raw.cmd("QUIT").check(221)
            raw.expect_closed()  # the gateway closed first: its side waits in TIME_WAIT
    first.stop()
    assert time_wait_sockets(first.port) > 0, "no connection in TIME_WAIT: the test proves nothing"
    again = start_gateway(sink=sink, port=first.port, server={"workers": 4}, name="restarted")
    with Raw.session(again.port) as raw:
        raw.transaction("a@example.com", ["b@example.org"], make_message()).check(250)
