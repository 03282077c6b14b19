"""`mailgate log`: the real binary reading generated decision logs (decision_records.py: every
record kind, scores as numbers and strings, subjects and Message-IDs on some transactions only),
split over two gzip-rotated files and a plain one, with malformed and blank lines among them.

Every filter is checked against plain Python over the same records, the table against what the
generator knows decided each record, --json against the lines themselves, --summary against
counts Python makes, and --follow against lines appended (and a rotation and a truncation) while
it runs. One test reads the log of a real gateway after real SMTP sessions.
"""

from __future__ import annotations

import collections
import gzip
import ipaddress
import json
import os
import pty
import queue
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

import decision_records
from decision_records import MALFORMED_LINES, Generated, encode_line, generate, iso
from harness import Raw, make_message, run

pytestmark = pytest.mark.time_limit(120)

START_MS = 1796601600000 + 8 * 3600 * 1000  # 2026-12-07T08:00:00Z
RECORDS = 8000  # about 7 MiB: several chunks per file, selected at once
FOLLOW_TIMEOUT = 10.0  # --follow polls every 200 ms: appended lines show well within this


# ------------------------------------------------------------------------------- the log
class Log:
    """The generated records, written oldest first into decisions.jsonl.2.gz, .1.gz and the
    plain decisions.jsonl, with each malformed line once and a few blank lines in between."""

    def __init__(self, folder: Path, records: list[Generated]):
        self.records = records
        self.folder = folder
        thirds = [records[: len(records) // 3], records[len(records) // 3: 2 * len(records) // 3],
                  records[2 * len(records) // 3:]]
        names = ["decisions.jsonl.2.gz", "decisions.jsonl.1.gz", "decisions.jsonl"]
        malformed = list(MALFORMED_LINES)
        self.files = []
        for index, (name, part) in enumerate(zip(names, thirds)):
            lines = [encode_line(g.line) for g in part]
            # Malformed and blank lines land inside each file, never first (a file's first record
            # orders it).
            for bad in malformed[index::3]:
                lines.insert(1 + (len(lines) * 7 // 11), encode_line(bad))
            lines.insert(len(lines) // 2, b"")
            lines.insert(len(lines) // 3, b"   ")
            data = b"\n".join(lines) + b"\n"
            path = folder / name
            path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
            self.files.append(path)
        self.malformed = len(MALFORMED_LINES)

    def paths(self, order=(2, 0, 1)) -> list[str]:
        """The files in an order that is not time order, so that the command must sort them."""
        return [str(self.files[i]) for i in order]


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Log:
    return Log(tmp_path_factory.mktemp("log"), generate(RECORDS, START_MS))


def mailgate_log(mailgate_bin, *args, input: bytes | None = None, timeout: float = 60.0):
    result = subprocess.run([mailgate_bin, "log", *map(str, args)], capture_output=True, timeout=timeout,
                            input=input, stdin=None if input is not None else subprocess.DEVNULL)
    return result.returncode, result.stdout.decode("utf-8", "replace"), result.stderr.decode("utf-8", "replace")


def json_lines(mailgate_bin, log: Log, *args) -> list[str]:
    rc, out, err = mailgate_log(mailgate_bin, *log.paths(), "--json", *args)
    assert rc == 0, err
    assert f"{log.malformed} malformed lines skipped" in err
    return out.splitlines()


def lines_of(records) -> list[str]:
    return [g.line for g in records]


# ------------------------------------------------------------------------------- Python's answers
def ms_of(record: dict) -> int:
    moment = record["time"]
    parsed = decision_records.datetime.datetime.strptime(moment, "%Y-%m-%dT%H:%M:%S.%fZ")
    return int(parsed.replace(tzinfo=decision_records.datetime.timezone.utc).timestamp() * 1000)


def address_matches(pattern: str, address: str) -> bool:
    if pattern == "<>":
        return address == ""
    if "@" in pattern.lstrip("@"):
        return address.lower() == pattern.lower()
    domain = pattern.lstrip("@").lower()
    host = address.rpartition("@")[2].lower() if "@" in address else None
    return host is not None and (host == domain or host.endswith("." + domain))


def in_network(record: dict, network: str) -> bool:
    ip = record.get("client", {}).get("ip")
    return ip is not None and ipaddress.ip_address(ip) in ipaddress.ip_network(network, strict=False)


def rules_of(record: dict) -> list[str]:
    return [hit["rule"] for stage in record.get("stages", []) for hit in stage.get("hits", [])]


def network_of(ip: str) -> str:
    prefix = 24 if ipaddress.ip_address(ip).version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def refusal_key(stage: str, reply: str) -> str:
    words = reply.split()
    key = f"{stage} {words[0]}"
    return key + f" {words[1]}" if len(words) > 1 and words[1].count(".") == 2 else key


# ------------------------------------------------------------------------------- filters
HOUR = 3600 * 1000

FILTERS = {
    "since": (["--since", iso(START_MS + 3 * HOUR)], lambda g: ms_of(g.record) >= START_MS + 3 * HOUR),
    "until": (["--until", "2026-12-07 12:00"], lambda g: ms_of(g.record) < START_MS + 4 * HOUR),
    "since_until_date": (["--since", "2026-12-07T10:30:00Z", "--until", "2026-12-07 11:15"],
                         lambda g: START_MS + 2.5 * HOUR <= ms_of(g.record) < START_MS + 3.25 * HOUR),
    "action": (["--action", "reject"], lambda g: g.record.get("action") == "reject"),
    "actions_comma": (["--action", "tempfail,tag"], lambda g: g.record.get("action") in ("tempfail", "tag")),
    "actions_repeated": (["--action", "accept", "--action", "abandoned"],
                         lambda g: g.record.get("action") in ("accept", "abandoned")),
    "from_address": (["--from", "ALICE@example.com"],
                     lambda g: "sender" in g.record and address_matches("alice@example.com", g.record["sender"])),
    "from_domain": (["--from", "bad.example"],
                    lambda g: "sender" in g.record and address_matches("bad.example", g.record["sender"])),
    "from_at_domain": (["--from", "@example.com"],
                       lambda g: "sender" in g.record and address_matches("example.com", g.record["sender"])),
    "from_null": (["--from", "<>"], lambda g: g.record.get("sender") == ""),
    "to_address": (["--to", "boss@example.org"],
                   lambda g: any(address_matches("boss@example.org", r["address"]) for r in g.record.get("recipients", []))),
    "to_domain": (["--to", "example.org"],
                  lambda g: any(address_matches("example.org", r["address"]) for r in g.record.get("recipients", []))),
    "client_ip": (["--client", "198.51.100.20"], lambda g: in_network(g.record, "198.51.100.20/32")),
    "client_cidr4": (["--client", "192.0.2.0/24"], lambda g: in_network(g.record, "192.0.2.0/24")),
    "client_cidr6": (["--client", "2001:db8:1::/48"], lambda g: in_network(g.record, "2001:db8:1::/48")),
    "subject": (["--subject", "INVOICE"], lambda g: "invoice" in g.record.get("subject", "").lower()),
    "stage_rules": (["--stage", "rules"], lambda g: g.stage == "rules"),
    "stage_smtp": (["--stage", "smtp"], lambda g: g.stage == "smtp"),
    "stage_downstream": (["--stage", "downstream"], lambda g: g.stage == "downstream"),
    "stage_spf": (["--stage", "spf"], lambda g: g.stage == "spf"),  # never for a shadow refusal
    "rule": (["--rule", "MG_URI_SHORTENER"], lambda g: "MG_URI_SHORTENER" in rules_of(g.record)),
    "free_text": (["relay", "ACCESS"], lambda g: "relay" in g.line.lower() and "access" in g.line.lower()),
    "free_text_after_dashes": (["--", "mx.bad.example"], lambda g: "mx.bad.example" in g.line),
    "combined": (["--action", "reject", "--client", "2001:db8::/32", "--from", "example.com"],
                 lambda g: g.record.get("action") == "reject" and in_network(g.record, "2001:db8::/32")
                 and "sender" in g.record and address_matches("example.com", g.record["sender"])),
}


@pytest.mark.parametrize("name", list(FILTERS))
def test_each_filter_selects_what_python_selects(mailgate_bin, log, name):
    args, wanted = FILTERS[name]
    expected = lines_of(g for g in log.records if wanted(g))
    assert expected, f"the generated log has no record for {name}: the test would prove nothing"
    assert len(expected) < len(log.records)
    assert json_lines(mailgate_bin, log, *args) == expected


def test_message_id_with_or_without_angle_brackets(mailgate_bin, log):
    with_id = [g for g in log.records if "message_id" in g.record]
    target = with_id[len(with_id) // 2]
    message_id = target.record["message_id"]
    assert message_id.startswith("<") and message_id.endswith(">")
    for given in (message_id, message_id[1:-1]):
        assert json_lines(mailgate_bin, log, "--message-id", given) == [target.line]
    assert json_lines(mailgate_bin, log, "--message-id", message_id[1:-3]) == []  # exact, not a part


def test_records_without_subject_never_match_subject(mailgate_bin, log):
    without = [g for g in log.records if g.record.get("type") == "transaction" and "subject" not in g.record]
    assert without
    got = set(json_lines(mailgate_bin, log, "--subject", "o"))  # in nearly every subject
    assert got and not got & set(lines_of(without))


def test_relative_since(mailgate_bin, tmp_path):
    now = int(time.time() * 1000)
    records = [g for g in generate(1300, now - 10 * HOUR, seed=7, mean_gap_ms=30_000) if ms_of(g.record) < now]
    path = tmp_path / "recent.jsonl"
    path.write_text("".join(g.line + "\n" for g in records))
    before = int(time.time() * 1000)
    rc, out, err = mailgate_log(mailgate_bin, path, "--json", "--since", "2h")
    after = int(time.time() * 1000)
    assert rc == 0, err
    got = out.splitlines()
    surely = lines_of(g for g in records if ms_of(g.record) >= after - 2 * HOUR)
    maybe = lines_of(g for g in records if ms_of(g.record) >= before - 2 * HOUR)
    assert surely and len(surely) < len(records)
    assert surely == got[len(got) - len(surely):] and set(got) <= set(maybe)


# ------------------------------------------------------------------------------- outputs
def test_json_is_every_record_unchanged_in_time_order(mailgate_bin, log):
    assert json_lines(mailgate_bin, log) == lines_of(log.records)


def test_the_table_shows_each_record_and_what_decided_it(mailgate_bin, log):
    rc, out, err = mailgate_log(mailgate_bin, *log.paths(), "--wide")
    assert rc == 0
    assert err.strip() == f"mailgate log: {log.malformed} malformed lines skipped"
    rows = out.splitlines()
    header = rows[0].split()
    assert header == ["TIME", "CLIENT", "SENDER", "RECIPIENTS", "ACTION", "REPLY", "STAGE", "REASON"]
    rows = rows[1:]
    assert len(rows) == len(log.records)
    starts = {title: rows_start for title, rows_start in ((t, out.splitlines()[0].index(t)) for t in header)}
    for row, generated in zip(rows, log.records):
        record = generated.record
        assert row.startswith(record["time"][:10] + " " + record["time"][11:19] + "  "), row
        client = record.get("client", {}).get("ip", "-")
        assert row[starts["CLIENT"]:].startswith(client + " "), row
        sender = record.get("sender")
        assert row[starts["SENDER"]:].startswith(("-" if sender is None else sender or "<>") + " "), row
        recipients = record.get("recipients", [])
        cell = recipients[0]["address"] + (f" +{len(recipients) - 1}" if len(recipients) > 1 else "") if recipients else "-"
        assert row[starts["RECIPIENTS"]:].startswith(cell + " "), row
        assert row[starts["ACTION"]:].startswith(record.get("action", "-") + " "), row
        assert row[starts["REPLY"]:].startswith((record.get("reply") or "-") + " "), row
        assert row[starts["STAGE"]:].startswith(generated.stage + " ") or row[starts["STAGE"]:] == generated.stage, row
        assert row[starts["REASON"]:] == generated.reason if generated.reason else len(row) <= starts["REASON"], row


def test_the_table_cuts_long_fields_unless_wide(mailgate_bin, tmp_path):
    reason = "score 31.5 (" + ",".join(f"MG_RULE_NUMBER_{i}" for i in range(12)) + ")"
    record = {"type": "transaction", "time": "2026-12-07T10:00:00.000Z", "client": {"ip": "192.0.2.1", "port": 1},
              "sender": "a-very-long-local-part-for-a-sender@subdomain.of.a.long.example",
              "recipients": [{"address": "x@example.org", "reply": "250 2.1.5 Ok", "action": "accept"}],
              "action": "reject", "reply": "550 5.7.1 Message rejected as spam, and this reply goes on and on",
              "stages": [{"stage": "rules", "phase": "data", "verdict": "reject", "reason": reason,
                          "reply": "550 5.7.1 Message rejected as spam, and this reply goes on and on"}]}
    path = tmp_path / "long.jsonl"
    path.write_text(decision_records.dump(record) + "\n")
    rc, narrow, _ = mailgate_log(mailgate_bin, path)
    assert rc == 0
    assert reason not in narrow and "…" in narrow.splitlines()[1]
    assert record["sender"] not in narrow
    rc, wide, _ = mailgate_log(mailgate_bin, path, "--wide")
    assert reason in wide and record["sender"] in wide and record["reply"] in wide and "…" not in wide


def test_summary_counts_exactly(mailgate_bin, log):
    rc, out, err = mailgate_log(mailgate_bin, *log.paths(), "--summary", "--json", "--top", "1000")
    assert rc == 0, err
    summary = json.loads(out)
    records = [g for g in log.records if g.record["type"] != "log_overflow"]
    overflow = [g.record for g in log.records if g.record["type"] == "log_overflow"]
    assert summary["records"] == len(records)
    assert summary["types"] == collections.Counter(g.record["type"] for g in records)
    assert summary["actions"] == collections.Counter(g.record["action"] for g in records)
    refusals = collections.Counter(refusal_key(g.stage, g.record["reply"]) for g in records
                                   if g.record["action"] in ("reject", "tempfail"))
    assert {r["reason"]: r["count"] for r in summary["refusal_reasons"]} == refusals
    domains = collections.Counter((g.record["sender"].rpartition("@")[2].lower() or "<>") for g in records
                                  if "sender" in g.record)
    assert {d["domain"]: d["count"] for d in summary["sender_domains"]} == domains
    networks = collections.Counter(network_of(g.record["client"]["ip"]) for g in records)
    assert {n["network"]: n["count"] for n in summary["client_networks"]} == networks
    rules = collections.Counter(rule for g in records for rule in rules_of(g.record))
    assert {r["rule"]: r["count"] for r in summary["rules"]} == rules
    hours = collections.defaultdict(collections.Counter)
    for g in records:
        hours[g.record["time"][:13] + ":00Z"][g.record["action"]] += 1
    assert {h.pop("hour"): h for h in summary["hours"]} == {
        hour: {**counts, "total": sum(counts.values())} for hour, counts in hours.items()}
    assert summary["log_overflow"] == {"records": len(overflow), "dropped": sum(r["dropped"] for r in overflow)}
    assert summary["malformed_lines"] == log.malformed


def test_summary_top_and_text(mailgate_bin, log):
    rc, out, _ = mailgate_log(mailgate_bin, *log.paths(), "--summary", "--json", "--top", "3")
    assert rc == 0
    summary = json.loads(out)
    domains = collections.Counter((g.record["sender"].rpartition("@")[2].lower() or "<>") for g in log.records
                                  if "sender" in g.record)
    ranked = sorted(domains.items(), key=lambda item: (-item[1], item[0]))[:3]
    assert [(d["domain"], d["count"]) for d in summary["sender_domains"]] == ranked
    assert all(len(summary[key]) == 3 for key in ("refusal_reasons", "client_networks", "rules"))

    rc, text, _ = mailgate_log(mailgate_bin, *log.paths(), "--summary", "--action", "reject")
    assert rc == 0
    rejected = [g for g in log.records if g.record.get("action") == "reject"]
    assert text.splitlines()[0].startswith(f"Records: {len(rejected)} (")
    assert [line.split()[:2] for line in text.splitlines() if line.startswith("  reject ")] == [["reject", str(len(rejected))]]
    for section in ("By action:", "Top refusal reasons", "Top sender domains:", "Top client networks:",
                    "Top rules (hits):", "Per hour (UTC):"):
        assert section in text
    hours = collections.Counter(g.record["time"][:10] + " " + g.record["time"][11:13] + ":00" for g in rejected)
    per_hour = {" ".join(line.split()[:2]): line.split()[2:] for line in text.splitlines() if line.startswith("  2026-")}
    assert per_hour == {hour: [str(n), str(n)] for hour, n in hours.items()}  # reject column, total column


def test_summary_text_counts_kinds_and_the_records_the_gateway_dropped(mailgate_bin, log):
    rc, text, _ = mailgate_log(mailgate_bin, *log.paths(), "--summary")
    assert rc == 0
    records = [g.record for g in log.records if g.record["type"] != "log_overflow"]
    kinds = collections.Counter(r["type"] for r in records)
    assert set(kinds) == {"transaction", "command", "connection", "session"}
    listed = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
    assert text.splitlines()[0] == f"Records: {len(records)} ({listed})"
    none = sum(1 for r in records if r["action"] == "none")
    assert none and [line.split()[:2] for line in text.splitlines() if line.startswith("  none ")] == [["none", str(none)]]
    overflow = [g.record for g in log.records if g.record["type"] == "log_overflow"]
    dropped = sum(r["dropped"] for r in overflow)
    assert (f"Log overflow: {dropped} records were dropped by the gateway ({len(overflow)} log_overflow records)"
            in text.splitlines())
    assert f"Malformed lines skipped: {log.malformed}" in text.splitlines()


# ------------------------------------------------------------------------------- inputs
def test_standard_input_plain_and_gzip(mailgate_bin, log):
    plain = log.files[2].read_bytes()
    rc, out, err = mailgate_log(mailgate_bin, "--json", input=plain)
    third = log.records[2 * len(log.records) // 3:]
    assert rc == 0 and out.splitlines() == lines_of(third), err
    rc, out, _ = mailgate_log(mailgate_bin, "-", "--json", "--action", "tag", input=log.files[0].read_bytes())
    first = log.records[: len(log.records) // 3]
    assert rc == 0 and out.splitlines() == lines_of(g for g in first if g.record.get("action") == "tag")


def test_config_names_the_log_and_its_rotated_files(mailgate_bin, log, tmp_path):
    config = tmp_path / "mailgate.toml"
    config.write_text(f'[server]\nlisten = ["127.0.0.1:2525"]\nhostname = "mx.test"\ndomains = ["example.org"]\n'
                      f'[maildir]\npath = "{tmp_path}/maildir"\n[log]\npath = "{log.files[2]}"\n'
                      '[[stage]]\ntype = "size_limit"\nmax_bytes = "1MiB"\n')
    rc, out, err = mailgate_log(mailgate_bin, "--config", config, "--json")
    assert rc == 0, err
    assert out.splitlines() == lines_of(log.records)


def test_no_files_on_a_terminal_says_what_is_needed(mailgate_bin):
    controller, terminal = pty.openpty()
    try:
        result = subprocess.run([mailgate_bin, "log"], stdin=terminal, capture_output=True, text=True, timeout=10)
    finally:
        os.close(controller)
        os.close(terminal)
    assert result.returncode == 2
    assert "--config" in result.stderr and "pipe" in result.stderr


def test_malformed_lines_are_counted_never_fatal(mailgate_bin, tmp_path):
    path = tmp_path / "bad.jsonl"
    good = generate(3, START_MS)
    path.write_bytes(b"\n".join(encode_line(line) for line in MALFORMED_LINES + [g.line for g in good]) + b"\n")
    rc, out, err = mailgate_log(mailgate_bin, path, "--json")
    assert rc == 0
    assert out.splitlines() == lines_of(good)
    assert f"mailgate log: {len(MALFORMED_LINES)} malformed lines skipped" in err


def test_a_last_line_without_newline_is_read(mailgate_bin, tmp_path):
    records = generate(4, START_MS, seed=9)
    plain = tmp_path / "decisions.jsonl"
    plain.write_text("\n".join(g.line for g in records))
    rotated = tmp_path / "decisions.jsonl.1.gz"
    rotated.write_bytes(gzip.compress("\n".join(g.line for g in records).encode()))
    for path in (plain, rotated):
        rc, out, err = mailgate_log(mailgate_bin, path, "--json")
        assert rc == 0 and err == ""
        assert out.splitlines() == lines_of(records)


def test_unreadable_files_and_bad_options(mailgate_bin, log, tmp_path):
    cut = tmp_path / "cut.jsonl.1.gz"
    cut.write_bytes(log.files[0].read_bytes()[:-100])
    rc, out, err = mailgate_log(mailgate_bin, cut, log.files[2], "--json")
    assert rc == 1
    assert "cut short" in err
    assert set(lines_of(log.records[2 * len(log.records) // 3:])) <= set(out.splitlines())  # the rest still read
    for args in (["--action", "bounce"], ["--since", "yesterday"], ["--client", "300.1.1.1"], ["--colour"],
                 [str(tmp_path / "missing.jsonl")]):
        rc, _, err = mailgate_log(mailgate_bin, *args, input=b"")
        assert rc == 2, args
        assert "usage: mailgate log" in err


# ------------------------------------------------------------------------------- --follow
class Follower:
    """`mailgate log --follow ...` with its output read line by line on a thread."""

    def __init__(self, mailgate_bin, *args):
        self.proc = subprocess.Popen([mailgate_bin, "log", "--follow", *map(str, args)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.decode("utf-8", "replace").rstrip("\n"))

    def take(self, count: int) -> list[str]:
        deadline = time.monotonic() + FOLLOW_TIMEOUT
        got = []
        while len(got) < count:
            try:
                got.append(self.lines.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"--follow printed {got} then nothing within {FOLLOW_TIMEOUT} s")
        return got

    def nothing_more(self, seconds: float = 0.6) -> None:
        time.sleep(seconds)
        assert self.lines.empty(), self.lines.get()

    def interrupt(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        rc = self.proc.wait(timeout=5)
        return rc, self.proc.stderr.read().decode()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)


@pytest.fixture
def follow(mailgate_bin):
    started = []

    def start(*args) -> Follower:
        follower = Follower(mailgate_bin, *args)
        started.append(follower)
        return follower

    yield start
    for follower in started:
        follower.close()


def append(path: Path, data: str) -> None:
    with open(path, "a") as f:
        f.write(data)


def test_follow_prints_appended_lines_across_rotation(follow, tmp_path):
    records = generate(20, START_MS, seed=3)
    path = tmp_path / "decisions.jsonl"
    path.write_text("".join(g.line + "\n" for g in records[:5]))
    follower = follow(path, "--json")
    assert follower.take(5) == lines_of(records[:5])

    # Appended, the last line in two writes: it shows once whole.
    append(path, records[5].line + "\n" + records[6].line + "\n" + records[7].line[:50])
    assert follower.take(2) == lines_of(records[5:7])
    follower.nothing_more()
    append(path, records[7].line[50:] + "\nnot a record\n")
    assert follower.take(1) == [records[7].line]

    # logrotate: renamed, the gateway writes one more record to the old file before it reopens,
    # then writes to a new file at the path.
    os.rename(path, tmp_path / "decisions.jsonl.1")
    append(tmp_path / "decisions.jsonl.1", records[8].line + "\n")
    path.write_text(records[9].line + "\n" + records[10].line + "\n")
    assert follower.take(3) == lines_of(records[8:11])

    # copytruncate: the same file emptied and written again from its start.
    with open(path, "w") as f:
        f.write(records[11].line + "\n")
    assert follower.take(1) == [records[11].line]
    follower.nothing_more()

    rc, err = follower.interrupt()
    assert rc == 0
    assert "1 malformed line skipped" in err


def test_follow_filters_and_prints_a_table(follow, tmp_path):
    records = generate(60, START_MS, seed=5)
    path = tmp_path / "decisions.jsonl"
    path.write_text(records[0].line + "\n")
    follower = follow(path, "--action", "reject")
    assert follower.take(1)[0].split() == ["TIME", "CLIENT", "SENDER", "RECIPIENTS", "ACTION", "REPLY", "STAGE", "REASON"]
    if records[0].record.get("action") == "reject":
        follower.take(1)
    append(path, "".join(g.line + "\n" for g in records[1:]))
    rejected = [g for g in records[1:] if g.record.get("action") == "reject"]
    assert rejected
    rows = follower.take(len(rejected))
    for row, g in zip(rows, rejected):
        assert " reject " in row and g.record["reply"][:20] in row
    follower.nothing_more()
    rc, _ = follower.interrupt()
    assert rc == 0


# ------------------------------------------------------------------------------- a real gateway
def test_reads_the_log_a_real_gateway_wrote(mailgate_bin, gateway, sink):
    with Raw.session(gateway.port) as client:
        client.transaction("alice@sender.example", ["bob@example.org"], make_message(subject="hello"))
        client.cmd("MAIL FROM:<carol@sender.example>").check(250)
        client.cmd("RCPT TO:<x@elsewhere.example>").check(554)
        client.cmd("RSET").check(250)
        client.cmd("FOO").check(500)
        client.cmd("QUIT")
    gateway.stop()
    written = [json.loads(line) for line in gateway.log_path.read_text().splitlines()]

    rc, out, err = mailgate_log(mailgate_bin, "--config", gateway.config_path, "--summary", "--json")
    assert rc == 0 and "malformed" not in err, err
    summary = json.loads(out)
    assert summary["records"] == len(written)
    assert summary["actions"] == collections.Counter(r["action"] for r in written)
    assert summary["actions"]["accept"] == 1 and summary["actions"]["reject"] == 2

    rc, out, _ = mailgate_log(mailgate_bin, "--config", gateway.config_path, "--wide")
    rows = out.splitlines()
    accepted = [row for row in rows if "alice@sender.example" in row]
    assert len(accepted) == 1 and " accept " in accepted[0] and " downstream" in accepted[0]
    denied = [row for row in rows if "x@elsewhere.example" in row]
    assert len(denied) == 1 and "Relay access denied" in denied[0] and " smtp " in denied[0]
    command = [row for row in rows if "command FOO" in row]
    assert len(command) == 1 and " 500 5.5." in command[0]
    assert json_lines_of(mailgate_bin, gateway.log_path, "--from", "sender.example", "--action", "accept") == [
        gateway.log_path.read_text().splitlines()[[r.get("sender") for r in written].index("alice@sender.example")]]


def test_the_shipped_logrotate_file_rotates_a_live_log_that_reads_back_whole(mailgate_bin, gateway, source_dir,
                                                                             tmp_path):
    """deploy/examples/logrotate.mailgate run by the real logrotate, forced three times against a
    gateway taking mail: every transaction is read back once, in order, across the live file,
    the plain .1 (delaycompress) and the gzipped older ones."""
    if shutil.which("logrotate") is None:
        pytest.skip("logrotate is not installed (Debian package logrotate)")
    shipped = (source_dir / "deploy" / "examples" / "logrotate.mailgate").read_text()
    # Only the path and the way to reach the server differ from what an operator installs.
    signal_command = "systemctl kill -s USR1 mailgate.service"
    assert "/var/log/mailgate/decisions.jsonl {" in shipped and signal_command in shipped
    config = tmp_path / "logrotate.conf"
    config.write_text(shipped.replace("/var/log/mailgate/decisions.jsonl", str(gateway.log_path))
                      .replace(signal_command, f"kill -USR1 {gateway.pid}"))
    sent: list[str] = []

    def send(count: int) -> None:
        for _ in range(count):
            sender = f"n{len(sent)}@sender.example"
            with Raw.session(gateway.port) as client:
                client.transaction(sender, ["bob@example.org"], make_message()).check(250)
            sent.append(sender)
        wait_for(lambda: sent[-1] in gateway.log_path.read_text(), "the last record in the live log")

    for _ in range(3):
        send(2)
        rotate = subprocess.run(["logrotate", "--force", "--state", str(tmp_path / "logrotate.state"), str(config)],
                                capture_output=True, text=True, timeout=30)
        assert rotate.returncode == 0, rotate.stderr
        wait_for(gateway.log_path.exists, "the gateway to reopen log.path")
    send(2)
    folder = gateway.log_path.parent
    assert (folder / "decisions.jsonl.1").read_bytes()[:1] == b"{"  # delaycompress: the newest stays plain
    for older in ("decisions.jsonl.2.gz", "decisions.jsonl.3.gz"):
        assert (folder / older).read_bytes()[:2] == b"\x1f\x8b", older

    rc, out, err = mailgate_log(mailgate_bin, "--config", gateway.config_path, "--json")
    assert rc == 0 and "malformed" not in err, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["sender"] for r in records if r["type"] == "transaction"] == sent


def wait_for(condition, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def json_lines_of(mailgate_bin, path: Path, *args) -> list[str]:
    rc, out, err = mailgate_log(mailgate_bin, path, "--json", *args)
    assert rc == 0, err
    return out.splitlines()
