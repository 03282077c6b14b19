"""Every reply of the SMTP dialogue (design.md §4), over a raw socket, one command or one pipelined
group at a time. The gateway relays to the Python sink (tests/integration/sink.py)."""

from __future__ import annotations

import pytest

from harness import (CLIENT_HELO, DEFAULT_MAX_BYTES, HOSTNAME, Raw, check_no_valid_recipients,
                     make_message)

pytestmark = pytest.mark.time_limit(60)

MAIL = "MAIL FROM:<a@example.com>"
RCPT = "RCPT TO:<b@example.org>"


def session(gateway) -> Raw:
    return Raw.session(gateway.port)


def test_greeting_names_the_host_and_esmtp(gateway):
    with Raw(gateway.port) as raw:
        greeting = raw.read_reply().check(220)
        assert greeting.text.split()[0] == HOSTNAME
        assert "ESMTP" in greeting.text.split()
        raw.cmd("QUIT").check(221, "2.0.0")
        raw.expect_closed()


def test_ehlo_advertises_the_extensions(gateway):
    with Raw(gateway.port) as raw:
        raw.greet()
        reply = raw.cmd(f"EHLO {CLIENT_HELO}").check(250)
        assert len(reply.lines) > 1, "EHLO must get a multi-line reply"
        assert reply.lines[0].split()[0] == HOSTNAME
        keywords = {line.split()[0].upper(): line.split()[1:] for line in reply.lines[1:]}
        assert keywords.get("SIZE") == [str(DEFAULT_MAX_BYTES)], reply
        for extension in ("PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"):
            assert extension in keywords, f"{extension} not advertised: {reply}"
        assert "STARTTLS" not in keywords, "STARTTLS advertised without a [tls] table"


def test_helo_gets_a_single_250(gateway):
    with Raw(gateway.port) as raw:
        raw.greet()
        reply = raw.cmd(f"HELO {CLIENT_HELO}").check(250)
        assert len(reply.lines) == 1
        raw.cmd(MAIL).check(250, "2.1.0")  # HELO is enough to start a transaction


@pytest.mark.parametrize("command, code, enhanced", [
    ("NOOP", 250, "2.0.0"),
    ("RSET", 250, "2.0.0"),
    ("VRFY postmaster", 252, "2.5.0"),
    ("HELP", 214, "2.0.0"),
    ("noop", 250, "2.0.0"),  # RFC 5321 §2.4: verbs are case-insensitive
])
def test_simple_commands(gateway, command, code, enhanced):
    with session(gateway) as raw:
        raw.cmd(command).check(code, enhanced)
        raw.cmd("NOOP").check(250, "2.0.0")  # still in step


def test_quit_says_bye_and_closes(gateway):
    with session(gateway) as raw:
        raw.cmd("QUIT").check(221, "2.0.0")
        raw.expect_closed()


@pytest.mark.parametrize("command", ["FOOBAR", "MAILFROM:<a@example.com>", "XYZZY with args"])
def test_unknown_command(gateway, command):
    with session(gateway) as raw:
        raw.cmd(command).check(500, "5.5.2")
        raw.cmd("NOOP").check(250, "2.0.0")


@pytest.mark.parametrize("command", ["HELO", "EHLO", "HELO ", "EHLO  "])
def test_helo_without_argument(gateway, command):
    with Raw(gateway.port) as raw:
        raw.greet()
        raw.cmd(command).check(501, "5.5.4")
        raw.cmd(f"EHLO {CLIENT_HELO}").check(250)


def test_data_with_an_argument(gateway):
    with session(gateway) as raw:
        raw.cmd(MAIL).check(250, "2.1.0")
        raw.cmd(RCPT).check(250)
        raw.cmd("DATA now").check(501, "5.5.4")
        # The transaction is intact: a proper DATA still works.
        raw.cmd("DATA").check(354)
        raw.send_data(make_message()).check(250)


def test_mail_before_helo(gateway):
    with Raw(gateway.port) as raw:
        raw.greet()
        raw.cmd(MAIL).check(503, "5.5.1")


def test_mail_inside_a_transaction(gateway):
    with session(gateway) as raw:
        raw.cmd(MAIL).check(250, "2.1.0")
        raw.cmd("MAIL FROM:<other@example.com>").check(503, "5.5.1")


def test_rcpt_before_mail(gateway):
    with session(gateway) as raw:
        raw.cmd(RCPT).check(503, "5.5.1")


def test_data_before_mail_and_before_rcpt(gateway):
    with session(gateway) as raw:
        raw.cmd("DATA").check(503, "5.5.1")
        raw.cmd(MAIL).check(250, "2.1.0")
        raw.cmd("DATA").check(503, "5.5.1")


def test_rset_ends_the_transaction(gateway):
    with session(gateway) as raw:
        raw.cmd(MAIL).check(250, "2.1.0")
        raw.cmd("RSET").check(250, "2.0.0")
        raw.cmd(RCPT).check(503, "5.5.1")
        raw.cmd(MAIL).check(250, "2.1.0")


@pytest.mark.parametrize("sender", ["<user@>", "<user@example..com>", "<user@@example.com>"])
def test_bad_sender_syntax(gateway, sender):
    with session(gateway) as raw:
        raw.cmd(f"MAIL FROM:{sender}").check(501, "5.1.7")
        raw.cmd(MAIL).check(250, "2.1.0")


def test_null_sender_is_accepted(gateway):
    with session(gateway) as raw:
        raw.cmd("MAIL FROM:<>").check(250, "2.1.0")


@pytest.mark.parametrize("recipient", ["<user@>", "<user@example..org>", "<user@@example.org>"])
def test_bad_recipient_syntax(gateway, recipient):
    with session(gateway) as raw:
        raw.cmd(MAIL).check(250, "2.1.0")
        raw.cmd(f"RCPT TO:{recipient}").check(501, "5.1.3")
        raw.cmd(RCPT).check(250)


def test_unknown_mail_parameter(gateway):
    with session(gateway) as raw:
        raw.cmd(f"{MAIL} FROBNICATE=yes").check(555, "5.5.4")
        raw.cmd(MAIL).check(250, "2.1.0")


def test_unknown_rcpt_parameter(gateway):
    with session(gateway) as raw:
        raw.cmd(MAIL).check(250, "2.1.0")
        raw.cmd(f"{RCPT} FROBNICATE=yes").check(555, "5.5.4")
        raw.cmd(RCPT).check(250)


def test_mail_with_known_parameters(gateway):
    with session(gateway) as raw:
        raw.cmd(f"{MAIL} SIZE=1000 BODY=8BITMIME").check(250, "2.1.0")
        raw.cmd("RSET").check(250)
        raw.cmd(f"{MAIL} BODY=7BIT").check(250, "2.1.0")


def test_recipient_accepted_and_message_delivered(gateway, sink):
    content = make_message()
    with session(gateway) as raw:
        raw.cmd(MAIL).check(250, "2.1.0")
        rcpt = raw.cmd(RCPT)
        assert rcpt.code == 250 and rcpt.enhanced and rcpt.enhanced.startswith("2.1."), rcpt
        raw.cmd("DATA").check(354)
        raw.send_data(content).check(250)
        raw.cmd("QUIT").check(221, "2.0.0")
    [delivery] = sink.wait_for_messages(1)
    assert delivery.mail_from == "a@example.com" and delivery.rcpts == ["b@example.org"]


def test_recipient_domains_are_case_insensitive(gateway, sink):
    with session(gateway) as raw:
        raw.cmd(MAIL).check(250, "2.1.0")
        raw.cmd("RCPT TO:<b@EXAMPLE.Org>").check(250)
        raw.cmd("RCPT TO:<c@example.net>").check(250)


def test_relay_to_a_domain_not_served_is_denied_without_touching_the_downstream(gateway, sink):
    with session(gateway) as raw:
        raw.cmd(MAIL).check(250, "2.1.0")
        raw.cmd("RCPT TO:<c@elsewhere.test>").check(554, "5.7.1")
        raw.cmd("RCPT TO:<d@sub.example.org>").check(554, "5.7.1")  # subdomains are not served
        check_no_valid_recipients(raw.cmd("DATA"))
        raw.cmd("QUIT").check(221)
        raw.expect_closed()
    assert sink.connections == 0, "the downstream was contacted for a relay attempt"


def test_pipelined_group_is_answered_in_order(gateway, sink):
    with session(gateway) as raw:
        raw.send(f"{MAIL}\r\n{RCPT}\r\nRCPT TO:<c@elsewhere.test>\r\nDATA\r\n")
        mail, rcpt_ok, rcpt_denied, data = raw.read_replies(4)
        mail.check(250, "2.1.0")
        assert rcpt_ok.code == 250, rcpt_ok
        rcpt_denied.check(554, "5.7.1")
        data.check(354)
        content = make_message()
        raw.send_data(content).check(250)
    [delivery] = sink.wait_for_messages(1)
    assert delivery.rcpts == ["b@example.org"]


def test_pipelined_group_with_every_recipient_refused(gateway, sink):
    with session(gateway) as raw:
        raw.send(f"{MAIL}\r\nRCPT TO:<c@elsewhere.test>\r\nRCPT TO:<d@elsewhere.test>\r\nDATA\r\n")
        mail, first, second, data = raw.read_replies(4)
        mail.check(250, "2.1.0")
        first.check(554, "5.7.1")
        second.check(554, "5.7.1")
        data.check(554, "5.5.1")
        # RFC 2920 §3.1: the client sends nothing more for this transaction; the session goes on.
        raw.cmd("RSET").check(250, "2.0.0")
        raw.cmd("NOOP").check(250, "2.0.0")
    assert sink.messages == []


def test_whole_transaction_and_quit_in_two_writes_like_postfix(gateway, sink):
    """Postfix's client: MAIL, RCPT and DATA in one write; the message, the dot and QUIT in the
    next. The reply to the dot must come before the 221."""
    content = make_message()
    with session(gateway) as raw:
        raw.send(f"{MAIL} SIZE={len(content)}\r\n{RCPT}\r\nDATA\r\n")
        assert [r.code for r in raw.read_replies(3)] == [250, 250, 354]
        raw.send(content + b".\r\nQUIT\r\n")
        raw.read_reply().check(250)
        raw.read_reply().check(221, "2.0.0")
        raw.expect_closed()
    [delivery] = sink.wait_for_messages(1)
    assert delivery.content().endswith(content)


def test_several_transactions_on_one_connection(gateway, sink):
    contents = [make_message(subject=f"number {i}") for i in range(3)]
    with session(gateway) as raw:
        for i, content in enumerate(contents):
            raw.transaction("a@example.com", [f"user{i}@example.org"], content).check(250)
            raw.cmd("RSET").check(250, "2.0.0")
    deliveries = sink.wait_for_messages(3)
    assert [d.rcpts for d in deliveries] == [[f"user{i}@example.org"] for i in range(3)]
    for delivery, content in zip(deliveries, contents):
        assert delivery.content().endswith(content)


def test_ehlo_again_resets_the_transaction(gateway, sink):
    with session(gateway) as raw:
        raw.cmd(MAIL).check(250, "2.1.0")
        raw.cmd(RCPT).check(250)
        raw.cmd(f"EHLO {CLIENT_HELO}").check(250)
        raw.cmd("DATA").check(503, "5.5.1")
        raw.transaction("a@example.com", ["b@example.org"], make_message()).check(250)
    assert len(sink.wait_for_messages(1)) == 1
