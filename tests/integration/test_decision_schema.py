"""docs/decision-record.schema.json against the records a live gateway writes: every record kind
a session can leave (transaction, session, command, connection), with the fields reviewers search
by (subject decoded, Message-ID, the downstream's queue id) and typed numbers and flags."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from harness import Raw, build_config, make_message, run

jsonschema = pytest.importorskip("jsonschema")  # Debian's python3-jsonschema (scripts/install-deps.sh)

RULES = """\
header PRIZE_SUBJECT Subject =~ /prize/i
describe PRIZE_SUBJECT Subject mentions a prize
score PRIZE_SUBJECT 6.0
"""


@pytest.fixture
def validator(source_dir: Path):
    schema = json.loads((source_dir / "docs" / "decision-record.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def check_valid(validator, record: dict) -> None:
    errors = sorted(validator.iter_errors(record), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors) + f"\nrecord: {record}"


@pytest.mark.time_limit(60)
def test_live_records_of_every_kind_match_the_schema(mailgate_bin, start_gateway, sink, tmp_path, validator):
    rules = tmp_path / "rules.cf"
    rules.write_text(RULES)
    gw = start_gateway(sink=sink, config=build_config(
        server={"idle_timeout": "1s"},
        stages=[{"type": "size_limit", "max_bytes": "1MiB"},
                {"type": "rules", "paths": [str(rules)], "tag_score": 5.0, "reject_score": 15.0}]))

    # RFC 2047 words, a folded Subject and a control character carried inside an encoded word.
    accepted = make_message(subject="=?UTF-8?B?R3LDvMOfZQ==?= aus\r\n =?ISO-8859-1?Q?M=FCnchen=07?=",
                            message_id="<accept.1@client.test>")
    tagged = make_message(subject="You won a prize", message_id="<tag.1@client.test>")
    with Raw.session(gw.port) as c:
        c.transaction("a@example.com", ["b@example.org"], accepted).check(250)
        c.transaction("a@example.com", ["b@example.org"], tagged).check(250)
        sink.data_reply = "250 OK id=1rAbCd-000123-4X"  # Exim's way
        c.transaction("a@example.com", ["b@example.org"], make_message(message_id="<exim.1@client.test>")).check(250)
        c.cmd("MAIL FROM:<a@example.com>").check(250)
        c.cmd("RCPT TO:<x@elsewhere.test>").check(554)  # relay denied: a refused transaction
        c.cmd("RSET").check(250)
        c.cmd("MAIL FROM:<broken").check(501)  # a command refused outside a transaction
        c.cmd("QUIT").check(221)
    with Raw.session(gw.port) as c:  # a session without a transaction
        c.cmd("QUIT").check(221)
    with Raw(gw.port) as c:  # idle past idle_timeout: the gateway closes it
        c.greet()
        c.read_reply(timeout=5.0).check(421, "4.4.2")
        c.expect_closed()

    kinds = {"transaction": 4, "session": 1, "command": 1, "connection": 1}
    deadline = time.monotonic() + 10
    while True:
        records = gw.log_records()
        seen = {kind: sum(r["type"] == kind for r in records) for kind in kinds}
        if all(seen[k] >= n for k, n in kinds.items()) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert all(seen[k] >= n for k, n in kinds.items()), (seen, records)
    for record in records:
        check_valid(validator, record)

    by_id = {r["message_id"]: r for r in records if r["type"] == "transaction" and r["message_id"]}
    first = by_id["<accept.1@client.test>"]
    assert first["subject"] == "Grüße aus München", first  # decoded, unfolded, BEL removed
    # The sink answers "250 2.0.0 Ok: queued as S<connection>M<message>".
    assert re.fullmatch(r"S\d+M\d+", first["queue_id"]), first
    assert first["downstream_reply"].endswith("queued as " + first["queue_id"]), first
    assert by_id["<exim.1@client.test>"]["queue_id"] == "1rAbCd-000123-4X"
    tag = by_id["<tag.1@client.test>"]
    assert (tag["action"], tag["subject"], tag["score"]) == ("tag", "You won a prize", 6.0), tag
    rules_entry = next(s for s in tag["stages"] if s["stage"] == "rules")
    assert rules_entry["tag_score"] == 5.0 and rules_entry["hits"][0]["score"] == 6.0, rules_entry
    refused = [r for r in records if r["type"] == "transaction" and r["action"] == "reject"]
    assert refused and all((r["subject"], r["message_id"], r["queue_id"]) == ("", "", "") for r in refused), refused

    # `mailgate log` finds them by the new fields.
    def found(*args) -> list[str]:
        result = run([mailgate_bin, "log", str(gw.log_path), "--json", *args])
        assert result.returncode == 0, result.stderr
        return [json.loads(line)["message_id"] for line in result.stdout.splitlines()]

    assert found("--subject", "münchen") == ["<accept.1@client.test>"]
    assert found("--message-id", "tag.1@client.test") == ["<tag.1@client.test>"]
