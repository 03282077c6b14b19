"""The embedded Maildir delivery, used when no [downstream] is configured (design.md §1, §6)."""

from __future__ import annotations

import time

import pytest

from harness import (
    CLIENT_HELO,
    SWAKS,
    Gateway,
    Raw,
    check_received,
    make_message,
    message_id_of,
    port_in_use,
    prepended_headers,
    run,
    smtplib_send,
    tool_available,
)

pytestmark = pytest.mark.time_limit(60)


def wait_for_files(gateway: Gateway, count: int, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while True:
        files = gateway.maildir_files("new")
        if len(files) >= count or time.monotonic() > deadline:
            return files
        time.sleep(0.05)


@pytest.fixture
def maildir_gateway(start_gateway):
    return start_gateway(downstream=None)


def test_message_lands_in_new_with_the_received_header(maildir_gateway):
    gateway = maildir_gateway
    content = make_message(body="Hello Maildir.\r\n.leading dot\r\n")
    # The client hears 250 only after the file is in new/ (and fsynced).
    assert smtplib_send(gateway.port, "a@example.com", ["user@example.org"], content) == {}
    files = gateway.maildir_files("new")
    assert len(files) == 1, f"expected one file in new/ right after the 250: {files}"
    data = files[0].read_bytes()
    check_received(prepended_headers(data, content), helo=CLIENT_HELO)
    assert gateway.maildir_files("tmp") == [], "a file was left in tmp/"


def test_each_message_gets_its_own_file(maildir_gateway):
    gateway = maildir_gateway
    contents = [make_message(subject=f"message {i}") for i in range(5)]
    with Raw.session(gateway.port) as raw:
        for content in contents:
            raw.transaction("a@example.com", ["user@example.org", "other@example.net"], content).check(250)
    files = wait_for_files(gateway, len(contents))
    assert len(files) == len(contents)
    assert len({f.name for f in files}) == len(contents)
    ids = sorted(message_id_of(f.read_bytes()) for f in files)
    assert ids == sorted(message_id_of(c) for c in contents)


def test_refused_messages_leave_no_file(maildir_gateway):
    gateway = maildir_gateway
    with Raw.session(gateway.port) as raw:
        raw.cmd("MAIL FROM:<a@example.com>").check(250)
        raw.cmd("RCPT TO:<b@example.org>").check(250)
        raw.cmd("DATA").check(354)
        raw.send(b"Subject: bare LF\r\n\r\nbad\nline\r\n.\r\n")
        raw.read_reply().check(550, "5.5.2")
        raw.cmd("MAIL FROM:<a@example.com>").check(250)
        raw.cmd("RCPT TO:<b@elsewhere.test>").check(554, "5.7.1")
    time.sleep(0.3)
    assert gateway.maildir_files("new") == []
    assert gateway.maildir_files("tmp") == []


@pytest.mark.skipif(not tool_available(SWAKS), reason="swaks is not installed")
def test_swaks_delivers(maildir_gateway):
    gateway = maildir_gateway
    result = run([SWAKS, "--server", f"127.0.0.1:{gateway.port}", "--to", "user@example.org",
                  "--from", "a@example.com", "--helo", CLIENT_HELO, "--timeout", "20"], timeout=40)
    assert result.returncode == 0, f"swaks failed:\n{result.stdout}\n{result.stderr}"
    files = wait_for_files(gateway, 1)
    assert len(files) == 1
    data = files[0].read_bytes()
    assert data.startswith(b"Received: from " + CLIENT_HELO.encode())
    assert b"X-Mailer: swaks" in data


@pytest.mark.skipif(not tool_available(SWAKS), reason="swaks is not installed")
def test_swaks_pipelining_delivers(maildir_gateway):
    gateway = maildir_gateway
    result = run([SWAKS, "--server", f"127.0.0.1:{gateway.port}", "--to", "user@example.org",
                  "--from", "a@example.com", "--pipeline", "--timeout", "20"], timeout=40)
    assert result.returncode == 0, f"swaks failed:\n{result.stdout}\n{result.stderr}"
    assert len(wait_for_files(gateway, 1)) == 1


def test_embedded_default_config(mailgate_bin, tmp_path, request):
    """No --config: 127.0.0.1:2525 and Maildir delivery under ./var/maildir."""
    if port_in_use(2525):
        pytest.skip("127.0.0.1:2525 is in use; the embedded default cannot be started")
    gw = Gateway(mailgate_bin, tmp_path / "default", None, port=2525, name="mailgate-default")
    request.node.__dict__.setdefault("_mailgate_gateways", []).append(gw)
    with gw:
        with Raw(2525) as raw:
            raw.greet()
            reply = raw.ehlo()
            assert any(line.split()[0] == "SIZE" for line in reply.lines[1:]), reply
            raw.cmd("QUIT").check(221)
