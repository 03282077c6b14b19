"""The rules stage (SpamAssassin-syntax rules scored at the end of data) through the real gateway
and the real downstream (sink.Sink), plus `mailgate rules lint` and `--check-config` on rule files.

Each test writes a small rule file into its tmp_path. A case asserts
  (a) the reply to the end of data: 250 (accepted or tagged), 451 4.7.1 (tempfail_score),
      550 5.7.1 <reject_text> (reject_score);
  (b) what the downstream got: X-Spam-Score, X-Spam-Status (folded when long), X-Spam-Flag and
      the prefixed Subject, each exactly once; the same fields arriving from outside removed; and
      nothing at all when the message was refused;
  (c) the decision log: the rules stage at phase "data" with its verdict, score, tag_score and
      hits [{rule, score, description}], and the transaction's action (and score when tagged).
Then shadow mode, max_scan_bytes, SIGHUP reloads (a changed rule file applies to the next message;
a broken one is refused, names file:line, and keeps the old rules), the linter and --check-config,
and scan_budget: catastrophic rules on 1 MiB messages end at the budget, the stage's timeout
stops a scan, and the pool thread is free again for the next message.
`mailgate check` is in test_check_command.py.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from harness import (
    PACE, Raw, Reply, build_config, delivered_once, make_message, never_delivered, parse_header_block, run)

pytestmark = pytest.mark.time_limit(60)

SENDER = "alice@sender.example"
RCPT = "user@example.org"

# One rule of each kind the stage is expected to run; the scores are chosen so that each verdict
# has its own trigger: tag (SUBJ_PRIZE + BODY_MILLION + META_PRIZE_MONEY = 7.0), below the tag score
# (RAW_SMALL = 1.2), tempfail (URI_TEMPFAIL = 11.0) and reject (FROM_REJECT = 20.0).
RULES = r"""# rules for test_rules.py
header   SUBJ_PRIZE        Subject =~ /\bprize\b/i
describe SUBJ_PRIZE        Subject announces a prize
score    SUBJ_PRIZE        3.0

body     BODY_MILLION      /\bmillion dollars\b/i
describe BODY_MILLION      Body talks about a million dollars
score    BODY_MILLION      2.5

meta     META_PRIZE_MONEY  SUBJ_PRIZE && BODY_MILLION
describe META_PRIZE_MONEY  A prize and a million dollars
score    META_PRIZE_MONEY  1.5

rawbody  RAW_SMALL         /small-marker/
describe RAW_SMALL         A harmless marker
score    RAW_SMALL         1.2

uri      URI_TEMPFAIL      /tempfail\.example\.test/
describe URI_TEMPFAIL      Links to tempfail.example.test
score    URI_TEMPFAIL      11.0

header   FROM_REJECT       From =~ /\@reject\.example\.test/i
describe FROM_REJECT       From: a known spammer domain
score    FROM_REJECT       20.0
"""

DEFERRED_TEXT = "Message deferred as possible spam, try again later"
PRIZE_HITS = [("BODY_MILLION", 2.5, "Body talks about a million dollars"),
              ("META_PRIZE_MONEY", 1.5, "A prize and a million dollars"),
              ("SUBJ_PRIZE", 3.0, "Subject announces a prize")]
FORGED = ["X-Spam-Flag: NO", "X-Spam-Score: -50.0", "X-Spam-Status: No, score=-50.0 required=5.0 tests=FORGED"]


# ------------------------------------------------------------------------------- helpers
def write_rules(directory: Path, text: str = RULES, name: str = "local.cf") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def rules_stage(paths, **keys) -> dict:
    return {"type": "rules", "paths": [str(p) for p in paths], **keys}


STRICT = {"tag_score": 5.0, "tempfail_score": 10.0, "reject_score": 15.0, "subject_prefix": "[SPAM]"}


class Sent(NamedTuple):
    reply: Reply
    content: bytes
    record: dict  # the transaction's decision log record


def send(gw, content: bytes, *, sender: str = SENDER, rcpt: str = RCPT) -> Sent:
    """One transaction (EHLO, MAIL, RCPT, DATA); the reply to the end of data and the log record."""
    with Raw.session(gw.port) as raw:
        port = raw.local_port
        reply = raw.transaction(sender, [rcpt], content, timeout=20.0)
        raw.cmd("QUIT").check(221)
    records = gw.wait_for_records(
        lambda r: r.get("type") == "transaction" and r.get("client", {}).get("port") == port)
    assert len(records) == 1, f"expected one transaction record for client port {port}, got {records}"
    return Sent(reply, content, records[0])


def delivered(sink, sent: Sent) -> bytes:
    """The message as the downstream got it (asserts it arrived exactly once)."""
    return delivered_once(sink, sent.content)


def not_delivered(sink, sent: Sent) -> None:
    never_delivered(sink, sent.content)


def split_message(data: bytes) -> tuple[bytes, bytes]:
    head, separator, body = data.partition(b"\r\n\r\n")
    assert separator, f"no end of the header section: {data[:300]!r}"
    return head + b"\r\n", body


def headers_of(data: bytes) -> list[tuple[str, str]]:
    return parse_header_block(split_message(data)[0])


def values(headers, name: str) -> list[str]:
    return [v for n, v in headers if n.lower() == name.lower()]


def one(headers, name: str) -> str:
    found = values(headers, name)
    assert len(found) == 1, f"expected exactly one {name}, got {found} in {headers}"
    return found[0]


def stage_entry(record: dict, name: str = "rules") -> dict:
    entries = [s for s in record.get("stages", []) if s.get("stage") == name]
    assert len(entries) == 1, f"expected one {name} stage entry, got {record.get('stages')}"
    return entries[0]


def hits_of(entry: dict) -> list[tuple[str, float, str]]:
    """The stage's hits as (rule, score, description); the score as a number, whatever its JSON type."""
    assert isinstance(entry.get("hits"), list), f"no hits list in {entry}"
    return [(h["rule"], float(h["score"]), h["description"]) for h in entry["hits"]]


def check_entry(entry: dict, *, verdict: str, score: float, hits, tag_score: float = 5.0) -> None:
    assert entry["phase"] == "data", entry
    assert entry["verdict"] == verdict, entry
    assert isinstance(entry.get("score"), (int, float)) and not isinstance(entry["score"], bool), entry
    assert entry["score"] == pytest.approx(score), entry
    assert isinstance(entry["tag_score"], float) and entry["tag_score"] == pytest.approx(tag_score), entry
    assert all(isinstance(h["score"], (int, float)) for h in entry["hits"]), entry  # JSON numbers
    assert hits_of(entry) == [(r, pytest.approx(s), d) for r, s, d in hits], entry


@pytest.fixture
def rules_gateway(start_gateway, sink, tmp_path):
    """rules_gateway(rules_text=RULES, **stage_keys): a gateway with one rules stage on a rule file
    in tmp_path, relaying to `sink`."""

    def start(text: str = RULES, **keys):
        path = write_rules(tmp_path / "rules", text)
        return start_gateway(sink=sink, stages=[rules_stage([path], **keys)])

    return start


# ------------------------------------------------------------------------------- verdicts
def test_tagged_message_gets_the_spam_fields_and_the_subject_prefix(rules_gateway, sink):
    gw = rules_gateway(**STRICT)
    content = make_message(subject="You won a prize", body="Claim your million dollars today.\r\n",
                           extra_headers=FORGED)
    sent = send(gw, content)
    assert sent.reply.code == 250, sent.reply

    data = delivered(sink, sent)
    headers = headers_of(data)
    assert one(headers, "X-Spam-Score") == "7.0"
    # 15 + 86 characters: folded after a comma (RFC 5322's 78), so unfolded it has a tab there.
    status = one(headers, "X-Spam-Status")
    assert ",\t" in status, status
    assert status.replace(",\t", ",") == "Yes, score=7.0 required=5.0 tests=BODY_MILLION,META_PRIZE_MONEY,SUBJ_PRIZE"
    assert one(headers, "X-Spam-Flag") == "YES"
    assert one(headers, "Subject") == "[SPAM] You won a prize"
    # The forged fields are gone; the rest of the message is as sent.
    assert b"-50.0" not in data and b"X-Spam-Flag: NO" not in data
    assert split_message(data)[1] == split_message(content)[1]
    for name in ("From", "To", "Message-ID", "Date"):
        assert values(headers, name) == values(headers_of(content), name)

    assert sent.record["action"] == "tag"
    assert sent.record["score"] == pytest.approx(7.0)
    check_entry(stage_entry(sent.record), verdict="tag", score=7.0, hits=PRIZE_HITS)


def test_tag_without_subject_prefix_keeps_the_subject(rules_gateway, sink):
    gw = rules_gateway(tag_score=5.0)
    content = make_message(subject="You won a prize", body="A million dollars.\r\n")
    sent = send(gw, content)
    assert sent.reply.code == 250, sent.reply
    headers = headers_of(delivered(sink, sent))
    assert one(headers, "Subject") == "You won a prize"
    assert one(headers, "X-Spam-Flag") == "YES"


def test_tag_prefixes_a_folded_subject_once(rules_gateway, sink):
    gw = rules_gateway(**STRICT)
    content = make_message(subject="Congratulations, you have been selected\r\n\tfor a prize",
                           body="A million dollars.\r\n")
    sent = send(gw, content)
    assert sent.reply.code == 250, sent.reply
    data = delivered(sink, sent)
    headers = headers_of(data)
    assert one(headers, "Subject") == "[SPAM] Congratulations, you have been selected\tfor a prize"
    # The original (folded) Subject field is gone, its continuation line too.
    assert data.count(b"\tfor a prize") == 1, data[:800]


def test_below_tag_score_is_delivered_unflagged_and_forged_fields_removed(rules_gateway, sink):
    gw = rules_gateway(**STRICT)
    content = make_message(subject="Lunch", body="see the small-marker here\r\n",
                           extra_headers=["X-Spam-Flag: YES", "X-Spam-Score: 99.0",
                                          "X-Spam-Status: Yes, score=99.0 required=5.0\r\n\ttests=FORGED"])
    sent = send(gw, content)
    assert sent.reply.code == 250, sent.reply

    data = delivered(sink, sent)
    headers = headers_of(data)
    assert one(headers, "X-Spam-Score") == "1.2"
    assert one(headers, "X-Spam-Status") == "No, score=1.2 required=5.0 tests=RAW_SMALL"
    assert values(headers, "X-Spam-Flag") == []
    assert one(headers, "Subject") == "Lunch"
    assert b"99.0" not in data and b"FORGED" not in data

    assert sent.record["action"] == "accept"
    check_entry(stage_entry(sent.record), verdict="continue", score=1.2,
                hits=[("RAW_SMALL", 1.2, "A harmless marker")])


def test_every_x_spam_field_from_outside_is_removed(rules_gateway, sink):
    """Issue 12: a reader takes any X-Spam-* field for this gateway's word, not only the three the
    stage writes: X-Spam-Level, X-Spam-Report, X-Spam-Checker-Version and the rest from outside do
    not reach the downstream, whatever the case of their names or blanks before the colon
    (RFC 5322 §4.5.3). Fields merely starting alike (X-Spam:, X-Spamd-Result:) are not ours."""
    outside = ["X-Spam-Level: " + "*" * 50,
               "X-Spam-Report: \r\n\t* -50 FORGED_WELCOMELIST the sender is on a welcome list",
               "X-Spam-Checker-Version: SpamAssassin 3.4.6 (2021-04-09) on forged.example",
               "x-spam-flag : NO",
               "X-SPAM-STATUS\t: No, score=-50.0 required=5.0 tests=FORGED",
               "X-Spam-Virus: No (forged)"]
    kept = ["X-Spam: kept-1", "X-Spamd-Result: default: False [0.00 / 15.00] kept-2"]
    gw = rules_gateway(**STRICT)
    content = make_message(subject="Lunch", body="see the small-marker here\r\n", extra_headers=[*outside, *kept])
    sent = send(gw, content)
    assert sent.reply.code == 250, sent.reply
    data = delivered(sink, sent)
    headers = headers_of(data)
    assert b"FORGED" not in data and b"forged" not in data and b"*****" not in data, data[:1000]
    assert [n for n, _ in headers if n.lower().startswith("x-spam-")] == ["X-Spam-Score", "X-Spam-Status"], headers
    assert one(headers, "X-Spam-Status") == "No, score=1.2 required=5.0 tests=RAW_SMALL"
    assert values(headers, "X-Spam") == ["kept-1"]
    assert values(headers, "X-Spamd-Result") == ["default: False [0.00 / 15.00] kept-2"]
    assert split_message(data)[1] == split_message(content)[1]


def test_clean_message_scores_zero(rules_gateway, sink):
    gw = rules_gateway(**STRICT)
    sent = send(gw, make_message(subject="Minutes", body="Nothing to see.\r\n"))
    assert sent.reply.code == 250, sent.reply
    headers = headers_of(delivered(sink, sent))
    assert one(headers, "X-Spam-Score") == "0.0"
    assert one(headers, "X-Spam-Status") == "No, score=0.0 required=5.0 tests=none"
    assert values(headers, "X-Spam-Flag") == []
    assert sent.record["action"] == "accept"
    entry = stage_entry(sent.record)
    assert entry["verdict"] == "continue" and entry["hits"] == [], entry
    assert entry["score"] == 0, entry  # logged even at 0: the scan ran
    assert sent.record["score"] == 0, sent.record


def test_tempfail_score_defers_and_nothing_reaches_the_downstream(rules_gateway, sink):
    gw = rules_gateway(**STRICT)
    content = make_message(subject="Newsletter", body="Read it at http://tempfail.example.test/news\r\n")
    sent = send(gw, content)
    sent.reply.check(451, "4.7.1")
    assert sent.reply.text == "4.7.1 " + DEFERRED_TEXT
    not_delivered(sink, sent)
    assert sent.record["action"] == "tempfail"
    assert sent.record["reply"].startswith("451 4.7.1"), sent.record
    entry = stage_entry(sent.record)
    check_entry(entry, verdict="tempfail", score=11.0,
                hits=[("URI_TEMPFAIL", 11.0, "Links to tempfail.example.test")])
    assert entry["reply"].startswith("451 4.7.1"), entry


def test_reject_score_refuses_with_the_configured_text(rules_gateway, sink):
    gw = rules_gateway(**STRICT, reject_text="Refused: this looks like spam")
    content = make_message(sender="boss@reject.example.test", subject="Hi", body="small-marker\r\n")
    sent = send(gw, content)
    sent.reply.check(550, "5.7.1")
    assert sent.reply.text == "5.7.1 Refused: this looks like spam"
    not_delivered(sink, sent)
    assert sent.record["action"] == "reject"
    entry = stage_entry(sent.record)
    check_entry(entry, verdict="reject", score=21.2,
                hits=[("FROM_REJECT", 20.0, "From: a known spammer domain"),
                      ("RAW_SMALL", 1.2, "A harmless marker")])
    assert entry["reply"] == "550 5.7.1 Refused: this looks like spam", entry
    assert sent.record["score"] == 21.2, sent.record  # what it was refused for


def test_reject_has_a_default_text(rules_gateway, sink):
    gw = rules_gateway(reject_score=15.0)
    sent = send(gw, make_message(sender="x@reject.example.test"))
    sent.reply.check(550, "5.7.1")
    assert sent.reply.text == "5.7.1 Message refused as spam"
    not_delivered(sink, sent)


def test_reject_wins_over_tempfail_and_the_next_message_is_unaffected(rules_gateway, sink):
    gw = rules_gateway(**STRICT)
    spam = make_message(sender="x@reject.example.test", body="http://tempfail.example.test/\r\n")
    send(gw, spam).reply.check(550, "5.7.1")
    ok = send(gw, make_message(subject="Fine"))
    assert ok.reply.code == 250, ok.reply
    delivered(sink, ok)
    assert len(sink.messages) == 1


def test_shadow_mode_logs_the_reject_and_delivers(rules_gateway, sink):
    gw = rules_gateway(mode="shadow", reject_score=15.0)
    content = make_message(sender="boss@reject.example.test", subject="Hi")
    sent = send(gw, content)
    assert sent.reply.code == 250, sent.reply
    delivered(sink, sent)
    assert sent.record["action"] == "accept"
    entry = stage_entry(sent.record)
    assert entry.get("shadow") is True, entry
    check_entry(entry, verdict="reject", score=20.0, hits=[("FROM_REJECT", 20.0, "From: a known spammer domain")])
    assert entry["reply"] == "550 5.7.1 Message refused as spam", entry


def test_shadow_mode_adds_nothing_but_still_removes_forged_spam_fields(rules_gateway, sink):
    gw = rules_gateway(mode="shadow", subject_prefix="[SPAM]")
    sent = send(gw, make_message(sender="boss@reject.example.test", subject="Hi", extra_headers=FORGED))
    assert sent.reply.code == 250, sent.reply
    data = delivered(sink, sent)
    assert b"X-Spam-" not in data, data[:600]
    assert b"\r\nSubject: Hi\r\n" in data and b"[SPAM]" not in data


@pytest.mark.parametrize("length", [12, 25, 43, 44])
def test_long_status_is_folded(rules_gateway, sink, length):
    # Rule names of `length` characters; 43 makes "Yes, score=... tests=NAME," fill 78 columns of
    # the value exactly, so the field name must count towards the line's width.
    names = [f"R{i:02d}_".ljust(length, "X") for i in range(12)]
    text = "".join(f"body {n} /folding-marker/\nscore {n} 0.5\ndescribe {n} rule {i}\n"
                   for i, n in enumerate(names))
    gw = rules_gateway(text)
    content = make_message(subject="Fold", body="folding-marker\r\n")
    sent = send(gw, content)
    assert sent.reply.code == 250, sent.reply
    data = delivered(sink, sent)
    head = split_message(data)[0].decode()
    m = re.search(r"^X-Spam-Status:.*\r\n(?:[ \t].*\r\n)*", head, re.M)
    assert m, head
    lines = m.group(0).split("\r\n")[:-1]
    assert len(lines) > 1, f"X-Spam-Status of 12 long rule names was not folded: {lines}"
    assert all(line.startswith("\t") for line in lines[1:]), lines
    # RFC 5322 2.1.1: at most 78 characters a line, unless a line holds one test name that does not
    # fit on it whatever the fold.
    assert all(len(line) <= 78 or line.rstrip(",").count(",") == (1 if line.startswith("X-") else 0)
               for line in lines), f"a folded line is longer than 78 characters: {lines}"
    assert all(len(line) <= 78 for line in lines if length <= 25), lines
    status = one(headers_of(data), "X-Spam-Status")
    assert status.replace(",\t", ",") == "Yes, score=6.0 required=5.0 tests=" + ",".join(sorted(names))


# ------------------------------------------------------------------------------- max_scan_bytes
SCAN_RULES = r"""
body     EARLY_MARK  /early-marker/
describe EARLY_MARK  Near the start
score    EARLY_MARK  1.0
body     LATE_MARK   /late-marker/
describe LATE_MARK   Past the first KiB
score    LATE_MARK   2.0
"""


def scan_message() -> bytes:
    filler = "".join(f"filler line {i:04d} of plain text to push the marker further down\r\n" for i in range(80))
    return make_message(subject="Scan bound", body="early-marker\r\n" + filler + "late-marker\r\n")


def test_max_scan_bytes_bounds_what_the_rules_see(start_gateway, sink, tmp_path):
    path = write_rules(tmp_path / "rules", SCAN_RULES)
    bounded = start_gateway(sink=sink, name="bounded", stages=[rules_stage([path], max_scan_bytes="1KiB")])
    unbounded = start_gateway(sink=sink, name="unbounded", stages=[rules_stage([path])])
    content = scan_message()
    assert len(content) > 4096 and content.index(b"late-marker") > 4096

    sent = send(bounded, content)
    assert sent.reply.code == 250, sent.reply
    entry = stage_entry(sent.record)
    check_entry(entry, verdict="continue", score=1.0, hits=[("EARLY_MARK", 1.0, "Near the start")])
    assert isinstance(entry["scanned_bytes"], int) and 0 < entry["scanned_bytes"] <= 1024, entry
    data = delivered(sink, sent)
    assert one(headers_of(data), "X-Spam-Status") == "No, score=1.0 required=5.0 tests=EARLY_MARK"
    # Scanned in part, delivered whole.
    assert split_message(data)[1] == split_message(content)[1]

    # The same message under the default bound: the late marker counts.
    sent = send(unbounded, make_message(subject="Scan bound", body=split_message(content)[1]))
    entry = stage_entry(sent.record)
    check_entry(entry, verdict="continue", score=3.0,
                hits=[("EARLY_MARK", 1.0, "Near the start"), ("LATE_MARK", 2.0, "Past the first KiB")])
    assert "scanned_bytes" not in entry, entry


# ------------------------------------------------------------------------------- SIGHUP
def wait_for_stderr(gw, needle: str, count: int, timeout: float = 10.0) -> str:
    """Waits until `needle` occurs `count` times in the gateway's stderr; returns the stderr."""
    deadline = time.monotonic() + timeout
    while True:
        text = gw.stderr_text(tail=10 ** 7)
        if text.count(needle) >= count:
            return text
        assert gw.running, f"{gw.name} exited\n{text}"
        assert time.monotonic() < deadline, f"no {count}x {needle!r} in stderr within {timeout} s:\n{text}"
        time.sleep(0.05)


def prize_rules(score: float) -> str:
    return f"header SUBJ_PRIZE Subject =~ /prize/\ndescribe SUBJ_PRIZE A prize\nscore SUBJ_PRIZE {score}\n"


def test_sighup_reloads_the_rules_and_refuses_a_broken_file(start_gateway, sink, tmp_path):
    # A relative `paths` entry is read from the config file's folder (the gateway's work directory
    # here), not from the working directory; and a folder means its *.cf files.
    workdir = tmp_path / "mailgate"
    rule_file = write_rules(workdir / "rules", prize_rules(3.0), name="10_local.cf")
    (workdir / "rules" / "README.txt").write_text("not a rule file: body X /(/\n")
    config = build_config(stages=[rules_stage(["rules"], subject_prefix="[SPAM]")])
    gw = start_gateway(config, sink=sink, cwd=tmp_path)

    first = send(gw, make_message(subject="a prize"))
    headers = headers_of(delivered(sink, first))
    assert one(headers, "X-Spam-Score") == "3.0"
    assert values(headers, "X-Spam-Flag") == []

    write_rules(workdir / "rules", prize_rules(6.0), name="10_local.cf")
    gw.signal(signal.SIGHUP)
    wait_for_stderr(gw, "configuration reloaded", 1)
    second = send(gw, make_message(subject="a prize"))
    headers = headers_of(delivered(sink, second))
    assert one(headers, "X-Spam-Score") == "6.0"
    assert one(headers, "X-Spam-Flag") == "YES"
    assert one(headers, "Subject") == "[SPAM] a prize"
    check_entry(stage_entry(second.record), verdict="tag", score=6.0, hits=[("SUBJ_PRIZE", 6.0, "A prize")])

    # Line 4 has a regex that does not compile: the reload is refused, naming file:line.
    write_rules(workdir / "rules", prize_rules(1.0) + "body BROKEN /(unclosed/\n", name="10_local.cf")
    gw.signal(signal.SIGHUP)
    stderr = wait_for_stderr(gw, "reload refused", 1)
    refused = [line for line in stderr.splitlines() if "reload refused" in line]
    assert any(f"{rule_file}:4" in line for line in refused), refused
    assert stderr.count("configuration reloaded") == 1, stderr
    third = send(gw, make_message(subject="a prize"))
    headers = headers_of(delivered(sink, third))
    assert one(headers, "X-Spam-Score") == "6.0", "the old rules must stay in force"
    assert gw.running

    # Fixed again: the next reload takes.
    write_rules(workdir / "rules", prize_rules(1.0), name="10_local.cf")
    gw.signal(signal.SIGHUP)
    wait_for_stderr(gw, "configuration reloaded", 2)
    fourth = send(gw, make_message(subject="a prize"))
    assert one(headers_of(delivered(sink, fourth)), "X-Spam-Score") == "1.0"


# ------------------------------------------------------------------------------- --check-config
def write_config(tmp_path: Path, stages: list[dict]) -> Path:
    text = (build_config(stages=stages).replace("{port}", "2525").replace("{sink_port}", "2526")
            .replace("{tmp}", str(tmp_path)))
    (tmp_path / "spool").mkdir(exist_ok=True)
    path = tmp_path / "mailgate.toml"
    path.write_text(text)
    return path


def test_check_config_loads_the_rules(mailgate_bin, tmp_path):
    good = write_rules(tmp_path / "rules", RULES)
    config = write_config(tmp_path, [rules_stage([good], **STRICT)])
    result = run([mailgate_bin, "--check-config", str(config)])
    assert result.returncode == 0, result
    assert "configuration is valid" in result.stdout, result


def test_check_config_names_the_broken_rule_file_and_line(mailgate_bin, tmp_path):
    bad = write_rules(tmp_path / "rules", "# fine\nbody OK /ok/\nbody BAD_RE /(unclosed/\n", name="bad.cf")
    config = write_config(tmp_path, [rules_stage([bad])])
    result = run([mailgate_bin, "--check-config", str(config)])
    assert result.returncode == 1, result
    assert f"{bad}:3" in result.stderr, result
    assert "configuration is valid" not in result.stdout


@pytest.mark.parametrize("keys, word", [
    ({}, "paths"),
    ({"paths": ["/nonexistent/rules.cf"]}, "/nonexistent/rules.cf"),
    ({"paths": ["RULES"], "tag_score": 5.0, "reject_score": 2.0}, "reject_score"),
    ({"paths": ["RULES"], "tempfail_score": 12.0, "reject_score": 11.0}, "reject_score"),
    ({"paths": ["RULES"], "max_scan_bytes": 100}, "max_scan_bytes"),
    ({"paths": ["RULES"], "scan_budget": "0ms"}, "scan_budget"),
    ({"paths": ["RULES"], "scan_budget": "11m"}, "scan_budget"),
    ({"paths": ["RULES"], "subject_prefix": "x" * 65}, "subject_prefix"),
])
def test_check_config_refuses_bad_settings(mailgate_bin, tmp_path, keys, word):
    good = write_rules(tmp_path / "rules", RULES)
    stage = {"type": "rules", **keys}
    if "paths" in stage:
        stage["paths"] = [str(good) if p == "RULES" else p for p in stage["paths"]]
    config = write_config(tmp_path, [stage])
    result = run([mailgate_bin, "--check-config", str(config)])
    assert result.returncode == 1, result
    assert word in result.stderr, result


# ------------------------------------------------------------------------------- rules lint
SUMMARY = re.compile(r"^(\d+) rules loaded, (\d+) errors, (\d+) lines skipped, (\d+) rules that never match$")


def lint(mailgate_bin, *paths):
    result = run([mailgate_bin, "rules", "lint", *map(str, paths)])
    lines = result.stdout.splitlines()
    assert lines, result
    m = SUMMARY.match(lines[-1])
    assert m, f"no summary line at the end of: {result.stdout!r}"
    return result, lines[:-1], tuple(int(g) for g in m.groups())


def test_lint_clean_set(mailgate_bin, tmp_path):
    path = write_rules(tmp_path / "rules", RULES)
    result, lines, summary = lint(mailgate_bin, path)
    assert result.returncode == 0, result
    assert lines == [], lines
    assert summary == (6, 0, 0, 0), result.stdout


def test_lint_reads_a_folder(mailgate_bin, tmp_path):
    write_rules(tmp_path / "rules", RULES, name="10_a.cf")
    write_rules(tmp_path / "rules", prize_rules(1.0).replace("SUBJ_PRIZE", "OTHER"), name="20_b.cf")
    write_rules(tmp_path / "rules", "body IGNORED /(/\n", name="notes.txt")
    result, lines, summary = lint(mailgate_bin, tmp_path / "rules")
    assert result.returncode == 0, result
    assert summary == (7, 0, 0, 0), result.stdout


def test_lint_reports_unsupported_lines_as_skipped(mailgate_bin, tmp_path):
    path = write_rules(tmp_path / "rules",
                       "# unsupported things\n"
                       "loadplugin Foo\n"
                       "body GOOD /good/\n"
                       "header X_EVAL eval:check_something()\n"
                       "score GOOD 1.0\n")
    result, lines, summary = lint(mailgate_bin, path)
    assert result.returncode == 0, result
    skipped = [line for line in lines if line.startswith("skipped: ")]
    assert any(line.startswith(f"skipped: {path}:2: ") and "Foo" in line for line in skipped), lines
    assert any(line.startswith(f"skipped: {path}:4: ") for line in skipped), lines
    assert not [line for line in lines if line.startswith("error: ")], lines
    assert summary == (1, 0, 2, 0), result.stdout


def test_lint_reports_a_bad_regex_as_error(mailgate_bin, tmp_path):
    path = write_rules(tmp_path / "rules", "body GOOD /good/\nscore GOOD 1\nbody BAD_RE /(unclosed/\n")
    result, lines, summary = lint(mailgate_bin, path)
    assert result.returncode == 1, result
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {path}:3: "), lines
    assert summary[1] == 1, result.stdout


def test_lint_reports_rules_that_never_match(mailgate_bin, tmp_path):
    path = write_rules(tmp_path / "rules", "body OFF /off/\nscore OFF 0\nbody ON /on/\nscore ON 1\n")
    result, lines, summary = lint(mailgate_bin, path)
    assert result.returncode == 0, result
    never = [line for line in lines if line.startswith("never matches: ")]
    assert len(never) == 1 and f"{path}:2: OFF" in never[0], lines
    assert summary[3] == 1, result.stdout


@pytest.mark.parametrize("args", [["rules"], ["rules", "lint"], ["rules", "check", "x.cf"]])
def test_rules_command_usage(mailgate_bin, args):
    result = run([mailgate_bin, *args])
    assert result.returncode == 2, result
    assert "usage" in result.stderr, result


# ------------------------------------------------------------------------------- scan budget
# Rules that backtrack catastrophically on what they were written for, against 1 MiB messages: the
# scan stops at its budget (scan_budget, 100 ms of CPU by default) and the verdict uses the hits
# found; the log names the rules cut short. Before the budget, the issue's message took 18.5 s of
# CPU at 441 KB, and at 1 MiB the stage timed out while its pool thread kept burning CPU.
MIB = 1024 * 1024
A24 = "a" * 24
ISSUE_PARAGRAPH = A24 + "b\r\n\r\n"  # 1,900 of them fill a part's 50,000 octets of body text
# Bounds asserted, wide for a loaded machine: the gateway's CPU time for the whole transaction
# (receiving, spooling and parsing 1 MiB, and the scan's 100 ms), and the wait for the verdict.
CPU_BOUND = 0.7 * PACE
VERDICT_BOUND = 3.0 * PACE

BUDGET_RULES = r"""
header   EARLY  To =~ /\@example\.org/
describe EARLY  Runs first and hits
score    EARLY  6.0
{kind}   SLOW   {regex}
describe SLOW   Backtracks catastrophically
score    SLOW   1.0
full     LATE   /^From:/m
describe LATE   Runs last: not run once the budget is spent
score    LATE   1.0
"""


def hostile_subject(text: str) -> str:
    """Body rules see the Subject first, so it is hostile too: a body rule stops at its first hit,
    and (a|a?)+$ hits any harmless line at its end."""
    return text.split("\r\n")[0]


def multipart_message(paragraph: str, size: int = MIB) -> bytes:
    """Nearly `size` octets: text parts of `paragraph` repeated, each part as much body text as a
    body rule reads of one (50,000 octets)."""
    part = "--cut\r\nContent-Type: text/plain\r\n\r\n" + paragraph * (50_000 // len(paragraph)) + "\r\n"
    body = part * ((size - 1024) // len(part)) + "--cut--\r\n"
    return make_message(subject=hostile_subject(paragraph), body=body,
                        extra_headers=["MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="cut"'])


def lines_message(line: str, size: int = MIB) -> bytes:
    return make_message(subject=hostile_subject(line), body=line * ((size - 2048) // len(line)))


def cpu_seconds(gw) -> float:
    """The gateway process's CPU time so far (user + system, all threads)."""
    fields = Path(f"/proc/{gw.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Timed(NamedTuple):
    sent: Sent
    seconds: float  # from the first octet of the message to the verdict
    cpu: float      # the gateway's CPU time meanwhile


def timed_send(gw, content: bytes) -> Timed:
    with Raw.session(gw.port) as raw:
        port = raw.local_port
        raw.cmd(f"MAIL FROM:<{SENDER}>").check(250)
        raw.cmd(f"RCPT TO:<{RCPT}>").check(250)
        raw.cmd("DATA").check(354)
        cpu, started = cpu_seconds(gw), time.monotonic()
        reply = raw.send_data(content, timeout=60.0)
        seconds, cpu = time.monotonic() - started, cpu_seconds(gw) - cpu
        raw.cmd("QUIT").check(221)
    records = gw.wait_for_records(
        lambda r: r.get("type") == "transaction" and r.get("client", {}).get("port") == port)
    assert len(records) == 1, records
    return Timed(Sent(reply, content, records[0]), seconds, cpu)


def check_cut_short(entry: dict, stopped: str, rule: str = "SLOW") -> None:
    assert entry.get("scan_stopped") == stopped, entry
    assert {"rule": rule, "why": stopped} in entry.get("cut_short", []), entry


CATASTROPHIC = [
    pytest.param("body", "/(a+)+$/", lambda: multipart_message(ISSUE_PARAGRAPH), id="nested-plus"),
    pytest.param("body", "/(a|aa)+$/", lambda: multipart_message(ISSUE_PARAGRAPH), id="overlapping-alternatives"),
    pytest.param("body", "/(a|a?)+$/", lambda: multipart_message(ISSUE_PARAGRAPH), id="optional-alternative"),
    pytest.param("body", r"/^(\w+\s?)*$/", lambda: multipart_message("aaaa " * 17 + "aaaa!\r\n\r\n"), id="words"),
    # One match over the whole message: no line start reaches PCRE2's step limit on its own.
    pytest.param("full", "/(.*a){12}/", lambda: lines_message("a" * 11 + "x" * 900 + "\r\n"), id="dot-star-group"),
    pytest.param("rawbody", "/(a|aa)+$/", lambda: multipart_message(ISSUE_PARAGRAPH), id="rawbody"),
]


@pytest.mark.parametrize("kind, regex, message", CATASTROPHIC)
def test_a_catastrophic_rule_is_cut_at_the_scan_budget(start_gateway, sink, tmp_path, kind, regex, message):
    path = write_rules(tmp_path / "rules", BUDGET_RULES.format(kind=kind, regex=regex))
    gw = start_gateway(sink=sink, stages=[rules_stage([path])])
    content = message()
    assert MIB - 60_000 < len(content) <= MIB
    timed = timed_send(gw, content)
    assert timed.cpu < CPU_BOUND, f"the gateway spent {timed.cpu:.2f} s of CPU on the message"
    assert timed.seconds < VERDICT_BOUND, f"the verdict took {timed.seconds:.2f} s"
    # Tagged on the hit found before the budget ran out, and delivered.
    assert timed.sent.reply.code == 250, timed.sent.reply
    headers = headers_of(delivered(sink, timed.sent))
    assert one(headers, "X-Spam-Flag") == "YES"
    entry = stage_entry(timed.sent.record)
    check_entry(entry, verdict="tag", score=6.0, hits=[("EARLY", 6.0, "Runs first and hits")])
    check_cut_short(entry, "budget")
    assert entry["rules_not_run"] == 1, entry
    assert "scan cut short (budget)" in entry["reason"], entry


def test_a_scan_cut_short_still_refuses_on_the_hits_it_found(start_gateway, sink, tmp_path):
    # A safe choice: a hostile message cannot buy its way past the rules that did run.
    path = write_rules(tmp_path / "rules", BUDGET_RULES.format(kind="body", regex="/(a+)+$/"))
    gw = start_gateway(sink=sink, stages=[rules_stage([path], reject_score=5.0)])
    timed = timed_send(gw, multipart_message(ISSUE_PARAGRAPH))
    assert timed.cpu < CPU_BOUND and timed.seconds < VERDICT_BOUND, timed[1:]
    timed.sent.reply.check(550, "5.7.1")
    not_delivered(sink, timed.sent)
    entry = stage_entry(timed.sent.record)
    assert entry["verdict"] == "reject", entry
    check_cut_short(entry, "budget")


@pytest.mark.parametrize("budget, bound", [("30ms", 0.5), ("400ms", 1.2)])
def test_scan_budget_sets_the_cpu_a_scan_may_take(start_gateway, sink, tmp_path, budget, bound):
    path = write_rules(tmp_path / "rules", BUDGET_RULES.format(kind="body", regex="/(a|aa)+$/"))
    gw = start_gateway(sink=sink, stages=[rules_stage([path], scan_budget=budget)])
    timed = timed_send(gw, multipart_message(ISSUE_PARAGRAPH))
    assert timed.cpu < bound * PACE, f"{timed.cpu:.2f} s of CPU with scan_budget {budget}"
    assert timed.sent.reply.code == 250, timed.sent.reply
    check_cut_short(stage_entry(timed.sent.record), "budget")


# One pool thread: a second message can only be scanned once the first one's work is over.
ONE_POOL_THREAD = {"UV_THREADPOOL_SIZE": "1"}


def test_the_pool_thread_is_free_after_a_scan_cut_at_its_budget(start_gateway, sink, tmp_path):
    path = write_rules(tmp_path / "rules", BUDGET_RULES.format(kind="body", regex="/(a+)+$/"))
    gw = start_gateway(sink=sink, stages=[rules_stage([path])], env=ONE_POOL_THREAD)
    first = timed_send(gw, multipart_message(ISSUE_PARAGRAPH))
    assert first.seconds < VERDICT_BOUND, f"the verdict took {first.seconds:.2f} s"
    assert first.sent.reply.code == 250, first.sent.reply
    second = timed_send(gw, make_message(subject="Minutes", body="Nothing to see.\r\n"))
    assert second.seconds < 1.0, f"the second message waited {second.seconds:.2f} s"
    assert second.sent.reply.code == 250, second.sent.reply
    delivered(sink, second.sent)
    entry = stage_entry(second.sent.record)
    check_entry(entry, verdict="tag", score=7.0, hits=[("EARLY", 6.0, "Runs first and hits"),
                                                      ("LATE", 1.0, "Runs last: not run once the budget is spent")])
    assert "scan_stopped" not in entry and "cut_short" not in entry, entry


def test_a_scan_past_the_stage_timeout_is_abandoned(start_gateway, sink, tmp_path):
    # No budget to speak of: the stage's timeout answers 451 and stops the scan, so that the one
    # pool thread stops burning CPU and the next message is scanned at once.
    path = write_rules(tmp_path / "rules", BUDGET_RULES.format(kind="body", regex="/(a|aa)+$/"))
    gw = start_gateway(sink=sink, stages=[rules_stage([path], scan_budget="10m", timeout="300ms")],
                       env=ONE_POOL_THREAD)
    first = timed_send(gw, multipart_message(ISSUE_PARAGRAPH))
    first.sent.reply.check(451, "4.3.0")
    assert first.seconds < VERDICT_BOUND, f"the timeout took {first.seconds:.2f} s"
    not_delivered(sink, first.sent)
    assert "did not answer within 300 ms" in stage_entry(first.sent.record)["reason"], first.sent.record

    cpu = cpu_seconds(gw)
    time.sleep(1.0)
    idle = cpu_seconds(gw) - cpu
    # A pool thread still scanning burns about 1 s in 1 s; a sanitizer's own threads some tenths.
    assert idle < (0.3 if PACE == 1 else 0.7), f"the gateway kept burning CPU after the timeout: {idle:.2f} s in 1 s"

    second = timed_send(gw, make_message(subject="Minutes", body="Nothing to see.\r\n"))
    assert second.seconds < 1.0, f"the second message waited {second.seconds:.2f} s"
    assert second.sent.reply.code == 250, second.sent.reply
    delivered(sink, second.sent)
