"""Connect and HELO as first-class phases, through the real gateway with the `lists` stage: a
client refused at the greeting with the stage's own reply (RFC 5321 §3.1: 554, then 503 to
everything but QUIT), a refusal decided at connect and answered at RCPT (logged with the
envelope), an allow entry that skips a later refusal, a 4xx greeting that closes, and the one
"session" record a session without a transaction leaves (EHLO then QUIT; dropped).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import Raw, make_message, never_delivered, delivered_once

pytestmark = pytest.mark.time_limit(60)

BLOCK_REPLY = "554 5.7.1 Service unavailable; client [127.0.0.1] is on our block list"


def lists_stage(tmp_path: Path, block: list[str] = (), allow: list[str] = (), **keys) -> dict:
    stage: dict = {"type": "lists"}
    for name, entries in (("block", block), ("allow", allow)):
        if entries:
            path = tmp_path / f"{name}.txt"
            path.write_text("# test list\n" + "\n".join(entries) + "\n")
            stage[name] = [str(path)]
    stage.update(keys)
    return stage


def client_records(gateway, port: int, kind: str) -> list[dict]:
    """The records of the session from client port `port`."""
    return gateway.wait_for_records(lambda r: r.get("type") == kind and r.get("client", {}).get("port") == port)


def records_of(gateway, kind: str, count: int = 1) -> list[dict]:
    """Records of `kind`, but the readiness probe's (a session that said no HELO)."""
    return gateway.wait_for_records(lambda r: r.get("type") == kind and not is_probe(r), count=count)


def is_probe(record: dict) -> bool:
    return record.get("type") == "session" and record.get("helo") == "" and record.get("reason") == "quit"


def test_a_client_refused_at_connect_hears_the_stages_own_reply_then_503_until_quit(start_gateway, sink, tmp_path):
    gateway = start_gateway(sink=sink, stages=[lists_stage(tmp_path, block=["127.0.0.0/8"], block_reply=BLOCK_REPLY)])
    with Raw(gateway.port) as raw:
        assert str(raw.read_reply()) == BLOCK_REPLY
        raw.cmd("EHLO client.example").check(503, "5.5.1")
        raw.cmd("MAIL FROM:<a@example.com>").check(503, "5.5.1")
        raw.cmd("QUIT").check(221)
        raw.expect_closed()
        port = raw.local_port
    [record] = client_records(gateway, port, "session")
    assert record["reply"] == BLOCK_REPLY
    assert record["action"] == "reject"
    assert record["reason"] == "quit"
    [stage] = record["stages"]
    assert (stage["stage"], stage["phase"], stage["verdict"]) == ("lists", "connect", "reject")
    assert stage["blocked"] == "127.0.0.0/8"
    assert not [r for r in gateway.log_records() if r.get("type") == "transaction"]


def test_the_greeting_text_is_the_stages_own(start_gateway, sink, tmp_path):
    gateway = start_gateway(sink=sink, stages=[lists_stage(tmp_path, block=["127.0.0.1"], block_reply=BLOCK_REPLY)])
    with Raw(gateway.port) as raw:
        reply = raw.read_reply()
        assert str(reply) == BLOCK_REPLY, reply


def test_a_4xx_at_connect_closes_with_421_and_the_stages_words(start_gateway, sink, tmp_path):
    gateway = start_gateway(sink=sink, stages=[lists_stage(tmp_path, block=["127.0.0.1"],
                                                          block_reply="450 4.7.1 Come back later")])
    with Raw(gateway.port) as raw:
        reply = raw.read_reply().check(421, "4.7.1")
        assert "Come back later" in str(reply)
        raw.expect_closed()
        port = raw.local_port
    [record] = client_records(gateway, port, "session")
    assert record["action"] == "tempfail"


def test_decided_at_connect_refused_at_rcpt_with_the_envelope_logged(start_gateway, sink, tmp_path):
    gateway = start_gateway(sink=sink, stages=[lists_stage(tmp_path, block=["127.0.0.0/8"], decide="rcpt",
                                                          block_reply=BLOCK_REPLY)])
    content = make_message(subject="decided at connect")
    with Raw.session(gateway.port) as raw:
        raw.cmd("MAIL FROM:<sender@example.com>").check(250)
        assert str(raw.cmd("RCPT TO:<user@example.org>")) == BLOCK_REPLY
        assert str(raw.cmd("RCPT TO:<other@example.org>")) == BLOCK_REPLY
        raw.cmd("DATA").check(554, "5.5.1")
        raw.cmd("QUIT").check(221)
    never_delivered(sink, content)
    [record] = records_of(gateway, "transaction")
    assert record["sender"] == "sender@example.com"
    assert [r["address"] for r in record["recipients"]] == ["user@example.org", "other@example.org"]
    assert record["action"] == "reject"
    assert record["reply"] == BLOCK_REPLY
    [stage] = record["stages"]
    assert (stage["stage"], stage["phase"], stage["answer_at"]) == ("lists", "connect", "rcpt")


def test_an_allowed_sender_skips_a_refusal_decided_at_connect(start_gateway, sink, tmp_path):
    gateway = start_gateway(sink=sink, stages=[lists_stage(tmp_path, block=["127.0.0.0/8"],
                                                          allow=["from:partner.example"], decide="rcpt")])
    content = make_message(subject="from a partner")
    with Raw.session(gateway.port) as raw:
        raw.transaction("billing@mail.partner.example", ["user@example.org"], content).check(250)
        raw.cmd("MAIL FROM:<someone@else.example>").check(250)
        raw.cmd("RCPT TO:<user@example.org>").check(550, "5.7.1")
        raw.cmd("QUIT").check(221)
    delivered_once(sink, content)
    records = records_of(gateway, "transaction", count=2)
    allowed = next(r for r in records if r["sender"] == "billing@mail.partner.example")
    assert allowed["action"] == "accept"
    assert any(s.get("allowed") == "from:partner.example" for s in allowed["stages"]), allowed


def test_an_allowed_client_skips_a_later_stages_refusal(start_gateway, sink, tmp_path):
    (tmp_path / "second").mkdir()
    stages = [lists_stage(tmp_path, allow=["127.0.0.1"]), lists_stage(tmp_path / "second", block=["from:blocked.example"])]
    gateway = start_gateway(sink=sink, stages=stages)
    content = make_message(subject="allowed client")
    with Raw.session(gateway.port) as raw:
        raw.transaction("a@blocked.example", ["user@example.org"], content).check(250)
        raw.cmd("QUIT").check(221)
    delivered_once(sink, content)
    [record] = records_of(gateway, "transaction")
    refused = [s for s in record["stages"] if s["verdict"] == "reject"]
    assert refused and refused[0]["allowed_by"] == "lists: 127.0.0.1", record


def test_ehlo_then_quit_leaves_one_session_record(gateway):
    with Raw.session(gateway.port, helo="just.looking.example") as raw:
        raw.cmd("QUIT").check(221)
    [record] = records_of(gateway, "session")
    assert record["helo"] == "just.looking.example"
    assert record["reason"] == "quit"
    assert record["action"] == "none"
    assert record["client"]["ip"] == "127.0.0.1"


def test_a_dropped_session_leaves_one_session_record(gateway):
    with Raw.session(gateway.port, helo="dropper.example"):
        pass  # closed without QUIT
    [record] = records_of(gateway, "session")
    assert record["helo"] == "dropper.example"
    assert record["reason"] == "client disconnected"


def test_a_session_with_a_transaction_leaves_no_session_record(gateway, sink):
    content = make_message(subject="one transaction")
    with Raw.session(gateway.port) as raw:
        raw.transaction("a@example.com", ["b@example.org"], content).check(250)
        raw.cmd("QUIT").check(221)
    delivered_once(sink, content)
    records_of(gateway, "transaction")
    assert not [r for r in gateway.log_records() if r.get("type") == "session" and not is_probe(r)]
