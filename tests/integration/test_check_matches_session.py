"""`mailgate check` and a live session run the same transaction driver: the same message with the
same envelope, client address and HELO gives the same decision record, field by field, timings
and per-run identifiers aside. Messages: clean, tagged, refused by each stage (rules reject and
tempfail, spf fail at RCPT through a real DNS server, a lists block at MAIL, a recipient outside
server.domains), each through the real gateway with a real downstream and through `check --record`.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from harness import Raw, run
from test_rules import RULES, STRICT, rules_stage, write_rules

pytestmark = pytest.mark.time_limit(120)

HELO = "client.compare.example"
ZONES = {
    "pass.compare.example": [{"TXT": "v=spf1 ip4:127.0.0.0/8 -all"}],
    "fail.compare.example": [{"TXT": "v=spf1 ip4:192.0.2.0/24 -all"}],
    HELO: [{"TXT": "v=spf1 ip4:127.0.0.0/8 -all"}],
}

CASES = {
    "clean": ("a@pass.compare.example", ["user@example.org"],
              "From: <a@pass.compare.example>\r\nSubject: Lunch\r\n\r\nSee you at noon.\r\n"),
    "tagged": ("a@pass.compare.example", ["user@example.org"],
               "From: <a@pass.compare.example>\r\nSubject: You won a prize\r\n\r\nA million dollars today.\r\n"),
    "rules_reject": ("boss@pass.compare.example", ["user@example.org"],
                     "From: Boss <boss@reject.example.test>\r\nSubject: Hello\r\n\r\nNothing else.\r\n"),
    "rules_tempfail": ("a@pass.compare.example", ["user@example.org"],
                       "From: <a@pass.compare.example>\r\nSubject: x\r\n\r\nhttp://tempfail.example.test/x\r\n"),
    "spf_fail": ("a@fail.compare.example", ["user@example.org"],
                 "From: <a@fail.compare.example>\r\nSubject: forged\r\n\r\nHello.\r\n"),
    "lists_block": ("spammer@blocked.compare.example", ["user@example.org"],
                    "From: <spammer@blocked.compare.example>\r\nSubject: hi\r\n\r\nHello.\r\n"),
    "relay_denied": ("a@pass.compare.example", ["victim@elsewhere.example"],
                     "From: <a@pass.compare.example>\r\nSubject: relay\r\n\r\nHello.\r\n"),
    "two_recipients_one_denied": ("a@pass.compare.example", ["victim@elsewhere.example", "user@example.org"],
                                  "From: <a@pass.compare.example>\r\nSubject: Two\r\n\r\nHello.\r\n"),
}

# Differ by nature between two runs: when, which session, which client port, how long.
PER_RUN = ("time", "started", "session", "transaction", "durations")


def comparable(record: dict) -> dict:
    record = copy.deepcopy(record)
    for key in PER_RUN:
        record.pop(key, None)
    record.get("client", {}).pop("port", None)
    for stage in record.get("stages", []):
        stage.pop("ms", None)
    # An accepted message's final reply is the downstream's own ("queued as <its id>", the
    # queue_id); check delivers nowhere and says so.
    if record.get("action") in ("accept", "tag"):
        record.pop("reply", None)
        record.pop("downstream_reply", None)
        record.pop("queue_id", None)
    return record


@pytest.fixture
def config_text(tmp_path, dns) -> str:
    rules = write_rules(tmp_path / "rules", RULES)
    block = tmp_path / "block.txt"
    block.write_text("from:blocked.compare.example\n")
    return dict(stages=[{"type": "lists", "block": [str(block)]},
                        {"type": "spf", "on_fail": "reject"},
                        {"type": "dkim"},
                        rules_stage([rules], **STRICT)],
                extra=f'[dns]\nservers = ["{dns.address}"]\ntimeout = "2s"\nretries = 0\n')


def live(gateway, sender: str, recipients: list[str], message: str) -> dict:
    with Raw.session(gateway.port, helo=HELO) as raw:
        port = raw.local_port
        accepted = raw.cmd(f"MAIL FROM:<{sender}>").code == 250
        any_recipient = False
        if accepted:
            for rcpt in recipients:
                any_recipient |= raw.cmd(f"RCPT TO:<{rcpt}>").code == 250
        if accepted and any_recipient:
            raw.cmd("DATA").check(354)
            raw.send_data(message.encode())
        raw.cmd("QUIT").check(221)
    [record] = gateway.wait_for_records(lambda r: r.get("client", {}).get("port") == port
                                        and r.get("type") == "transaction")
    return record


def checked(mailgate_bin, config: Path, tmp_path: Path, sender: str, recipients: list[str], message: str) -> dict:
    path = tmp_path / "message.eml"
    path.write_bytes(message.encode())
    args = [mailgate_bin, "check", "--record", "--config", str(config), "--ip", "127.0.0.1", "--helo", HELO,
            "--from", sender]
    for rcpt in recipients:
        args += ["--rcpt", rcpt]
    result = run(args + [str(path)])
    assert result.returncode == 0, result
    return json.loads(result.stdout)


def test_check_gives_the_record_a_session_gives(start_gateway, sink, mailgate_bin, tmp_path, config_text):
    gateway = start_gateway(sink=sink, **config_text)
    config = gateway.config_path  # the very file the gateway runs with
    actions = {}
    for name, (sender, recipients, message) in CASES.items():
        session_record = live(gateway, sender, recipients, message)
        check_record = checked(mailgate_bin, config, tmp_path, sender, recipients, message)
        assert comparable(check_record) == comparable(session_record), name
        actions[name] = session_record["action"]
    # The cases cover every outcome, so the comparison means something.
    assert actions == {"clean": "accept", "tagged": "tag", "rules_reject": "reject", "rules_tempfail": "tempfail",
                       "spf_fail": "reject", "lists_block": "reject", "relay_denied": "reject",
                       "two_recipients_one_denied": "accept"}, actions
