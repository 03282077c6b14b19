"""The decision history (gateway/history/): every record kept in SQLite by the gateway, searched by
`mailgate log --history` with the same answers as the log files, served on the [metrics] listener
as a web page (tested in a real browser in test_history_page.py), bounded by retention and size."""

from __future__ import annotations

import base64
import hashlib
import json
import smtplib
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from harness import build_config, free_port, make_message, run, smtplib_send, toml_table

RULES = """\
header PRIZE_SUBJECT Subject =~ /prize/i
describe PRIZE_SUBJECT Subject mentions a prize
score PRIZE_SUBJECT 6.0
body WIRE_MONEY /wire the money/i
describe WIRE_MONEY Asks for a wire transfer
score WIRE_MONEY 20.0
"""
PASSWORD = "correct horse battery staple"


def get(url: str, headers: dict | None = None, timeout: float = 10.0):
    """(status, body, headers); headers is the message object (get_all for repeated fields)."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers


def history_config(tmp_path, *, metrics: dict | None = None, history: dict | None = None, **keys) -> tuple[str, int]:
    rules = tmp_path / "rules.cf"
    rules.write_text(RULES)
    port = free_port()
    extra = toml_table("[metrics]", {"listen": f"127.0.0.1:{port}", **(metrics or {})})
    extra += toml_table("[history]", {"path": "{tmp}/history.sqlite", **(history or {})})
    stages = [{"type": "size_limit", "max_bytes": "1MiB"},
              {"type": "rules", "paths": [str(rules)], "tag_score": 5.0, "reject_score": 15.0}]
    return build_config(stages=stages, extra=extra, **keys), port


def send_known_traffic(gw) -> dict[str, str]:
    """Three accepted, one tagged, one refused by rules, one relay denial; the Message-IDs by name."""
    ids = {}
    for n in range(3):
        ids[f"plain{n}"] = f"<plain{n}.{time.time_ns()}@client.test>"
        smtplib_send(gw.port, f"alice{n}@sender.example", ["bob@example.org"],
                     make_message(subject=f"Minutes {n}", message_id=ids[f"plain{n}"], sender=f"alice{n}@sender.example"))
    ids["tagged"] = f"<tagged.{time.time_ns()}@client.test>"
    smtplib_send(gw.port, "promo@news.bulk.example", ["carol@example.net"],
                 make_message(subject="You won a prize", message_id=ids["tagged"], sender="promo@news.bulk.example"))
    ids["refused"] = f"<refused.{time.time_ns()}@client.test>"
    with pytest.raises(smtplib.SMTPDataError) as refused:
        smtplib_send(gw.port, "boss@fraud.example", ["dave@example.org"],
                     make_message(subject="Urgent <b>payment</b> & more", body="Please wire the money today.",
                                  message_id=ids["refused"], sender="boss@fraud.example"))
    assert refused.value.smtp_code == 550, refused.value
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        smtplib_send(gw.port, "someone@sender.example", ["victim@elsewhere.example"], make_message())
    gw.wait_for_records(lambda r: r.get("type") == "transaction", count=6, timeout=10)
    return ids


def mailgate_log(mailgate_bin, *args, cwd=None) -> str:
    result = run([mailgate_bin, "log", *args], cwd=cwd)
    assert result.returncode == 0, result
    return result.stdout


def history_holds_the_log(gw, timeout: float = 10.0) -> int:
    """Waits until the history holds exactly the records of the log file; returns how many."""
    deadline = time.monotonic() + timeout
    while True:
        logged = len(gw.log_records())
        stored = wait_for_history(gw.workdir / "history.sqlite", logged, timeout=0.5)
        if stored == logged or time.monotonic() > deadline:
            assert stored == logged, f"history {stored} records, log {logged}"
            return stored


def wait_for_history(path, count: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    stored = 0
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                stored = db.execute("SELECT count(*) FROM decisions").fetchone()[0]
        except sqlite3.Error:
            stored = 0
        if stored >= count:
            return stored
        time.sleep(0.1)
    return stored


QUERIES = [
    [],
    ["--from", "sender.example"],
    ["--from", "alice1@SENDER.example"],
    ["--from", "bulk.example"],
    ["--to", "example.net"],
    ["--to", "bob@example.org"],
    ["--action", "reject"],
    ["--action", "accept,tag"],
    ["--client", "127.0.0.0/8"],
    ["--client", "192.0.2.0/24"],
    ["--subject", "PRIZE"],
    ["--stage", "rules"],
    ["--stage", "smtp"],
    ["--rule", "wire_money"],
    ["--since", "1h"],
    ["--until", "1h"],
    ["minutes"],
    ["--action", "accept", "--from", "alice2@sender.example", "Minutes"],
]


@pytest.mark.time_limit(90)
def test_history_answers_every_query_as_the_log_files_do(start_gateway, sink, tmp_path, mailgate_bin):
    config, metrics_port = history_config(tmp_path)
    gw = start_gateway(config, sink=sink)
    ids = send_known_traffic(gw)
    history = gw.workdir / "history.sqlite"
    history_holds_the_log(gw)
    for query in QUERIES + [["--message-id", ids["tagged"]], ["--message-id", ids["refused"].strip("<>")]]:
        from_files = mailgate_log(mailgate_bin, str(gw.log_path), "--json", *query)
        from_history = mailgate_log(mailgate_bin, f"--history={history}", "--json", *query)
        assert from_history == from_files, query
        assert mailgate_log(mailgate_bin, f"--history={history}", "--summary", *query) == \
            mailgate_log(mailgate_bin, str(gw.log_path), "--summary", *query), query
    # The history's counters on /metrics say the same.
    status, text, _ = get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert status == 200
    assert f"mailgate_history_records_stored_total {len(gw.log_records())}\n" in text, text
    assert "mailgate_history_records_dropped_total 0\n" in text
    # Not vacuous: the queries select different, known sets.
    def count(*query):
        return len(mailgate_log(mailgate_bin, f"--history={history}", "--json", *query).splitlines())
    assert count("--action", "reject") == 2  # the rules' refusal and the relay denial
    assert count("--from", "sender.example") == 4
    assert count("--rule", "PRIZE_SUBJECT") == 1
    assert count("--message-id", ids["refused"]) == 1
    assert count("--client", "192.0.2.0/24") == 0
    # --config FILE's [history] is the default file; the table is the same as the log's.
    assert mailgate_log(mailgate_bin, "--history", "--config", str(gw.config_path), "--wide") == \
        mailgate_log(mailgate_bin, str(gw.log_path), "--wide")


def test_history_usage_errors(mailgate_bin, tmp_path):
    result = run([mailgate_bin, "log", "--history"], cwd=tmp_path)
    assert result.returncode == 1 and "--history needs the file" in result.stderr, result
    result = run([mailgate_bin, "log", f"--history={tmp_path}/none.sqlite"], cwd=tmp_path)
    assert result.returncode == 1 and "none.sqlite" in result.stderr, result
    log = tmp_path / "decisions.jsonl"
    log.write_text("")
    result = run([mailgate_bin, "log", "--history=x.sqlite", str(log)], cwd=tmp_path)
    assert result.returncode == 2 and "not FILES" in result.stderr, result
    result = run([mailgate_bin, "log", "--history=x.sqlite", "--follow"], cwd=tmp_path)
    assert result.returncode == 2 and "--follow" in result.stderr, result
    not_history = tmp_path / "other.sqlite"
    sqlite3.connect(not_history).execute("CREATE TABLE t (x)").connection.commit()
    result = run([mailgate_bin, "log", f"--history={not_history}"], cwd=tmp_path)
    assert result.returncode == 1 and "not a mailgate history" in result.stderr, result


def test_check_config_reports_history_mistakes(mailgate_bin, tmp_path):
    head = build_config().replace("{port}", str(free_port())).replace("{sink_port}", "2525").replace("{tmp}", str(tmp_path))
    path = tmp_path / "mailgate.toml"
    cases = [
        ({}, "history.path: is required"),
        ({"path": str(tmp_path / "missing-folder" / "h.sqlite")}, "no folder"),
        ({"path": str(tmp_path)}, "is a folder"),
        ({"path": str(tmp_path / "h.sqlite"), "max_size": "10KiB"}, "history.max_size: must be at least 1MiB"),
        ({"path": str(tmp_path / "h.sqlite"), "retention": "0s"}, "history.retention: must be more than 0"),
        ({"path": str(tmp_path / "h.sqlite"), "retain": "30d"}, "retain"),
    ]
    (tmp_path / "not-sqlite.txt").write_text("hello, I am not a database, but long enough\n")
    cases.append(({"path": str(tmp_path / "not-sqlite.txt")}, "is not an SQLite file"))
    for table, expected in cases:
        path.write_text(head + toml_table("[history]", table))
        result = run([mailgate_bin, "--check-config", str(path)], cwd=tmp_path)
        assert result.returncode == 1, (table, result)
        assert expected in result.stderr, (table, result.stderr)
    path.write_text(head + toml_table("[history]", {"path": str(tmp_path / "h.sqlite"), "retention": "7d", "max_size": "64MiB"}))
    result = run([mailgate_bin, "--check-config", str(path)], cwd=tmp_path)
    assert result.returncode == 0, result
    assert not (tmp_path / "h.sqlite").exists(), "--check-config creates nothing"


@pytest.mark.time_limit(60)
def test_the_page_searches_pages_and_shows_details(start_gateway, sink, tmp_path):
    config, port = history_config(tmp_path)
    gw = start_gateway(config, sink=sink)
    ids = send_known_traffic(gw)
    for n in range(60):  # more than one page of results (50 rows)
        smtplib_send(gw.port, f"bulk{n}@many.example", ["bob@example.org"],
                     make_message(subject=f"Bulk {n}", sender=f"bulk{n}@many.example"))
    assert len(gw.wait_for_records(lambda r: r.get("type") == "transaction", count=66, timeout=20)) == 66
    history_holds_the_log(gw)
    base = f"http://127.0.0.1:{port}"

    status, page, headers = get(base + "/history?" + urllib.parse.urlencode({"from": "fraud.example"}))
    assert status == 200, page
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert page.count('class="decision"') == 1
    # What the sender wrote is shown escaped, never as markup.
    assert "Urgent &lt;b&gt;payment&lt;/b&gt; &amp; more" in page and "<b>payment" not in page
    detail = page.split('href="/history/decision?id=')[1].split('"')[0]

    status, page, _ = get(base + f"/history/decision?id={detail}")
    assert status == 200, page
    assert 'id="action">reject<' in page
    assert "WIRE_MONEY" in page and "Asks for a wire transfer" in page
    assert ids["refused"].replace("<", "&lt;").replace(">", "&gt;") in page or ids["refused"].strip("<>") in page
    assert "550 5.7.1" in page

    # Paging: 50 newest, then the older ones; no row twice, none missed.
    seen = []
    status, page, _ = get(base + "/history?from=many.example")
    while True:
        assert status == 200, page
        seen += [row.split('"')[0] for row in page.split('data-id="')[1:]]
        if 'id="older"' not in page:
            break
        older = page.split('id="older" href="')[1].split('"')[0].replace("&amp;", "&")
        status, page, _ = get(base + older)
    assert len(seen) == 60 and len(set(seen)) == 60
    newer = page.split('id="newer" href="')[1].split('"')[0].replace("&amp;", "&")
    status, page, _ = get(base + newer)
    assert [row.split('"')[0] for row in page.split('data-id="')[1:]] == seen[:50]

    status, page, _ = get(base + "/history/summary")
    assert status == 200, page
    assert '<td class="accept">accept</td><td class="num">63</td>' in page, page
    assert '<td class="reject">reject</td><td class="num">2</td>' in page
    assert page.count('class="bar ') >= 2 and 'id="chart"' in page
    # Usage errors are answered, not guessed at.
    status, page, _ = get(base + "/history?since=yesterday-ish")
    assert status == 400 and "--since" in page
    assert get(base + "/history/decision?id=99999999")[0] == 404
    assert get(base + "/history/decision?id=abc")[0] == 400


@pytest.mark.time_limit(60)
def test_off_loopback_the_page_needs_the_password(start_gateway, sink, tmp_path, mailgate_bin):
    digest = hashlib.sha256(PASSWORD.encode()).hexdigest()
    # Without the hash the gateway does not start listening on a public address.
    config, port = history_config(tmp_path, metrics={"listen": f"0.0.0.0:{free_port()}"})
    path = tmp_path / "bad.toml"
    path.write_text(config.replace("{port}", str(free_port())).replace("{sink_port}", "2525").replace("{tmp}", str(tmp_path)))
    result = run([mailgate_bin, "--check-config", str(path)], cwd=tmp_path)
    assert result.returncode == 1 and "token_sha256" in result.stderr, result
    port = free_port()
    config, _ = history_config(tmp_path, metrics={"listen": f"0.0.0.0:{port}", "token_sha256": digest})
    gw = start_gateway(config, sink=sink)
    send_known_traffic(gw)
    history_holds_the_log(gw)
    url = f"http://127.0.0.1:{port}/history?action=reject"
    status, page, headers = get(url)
    assert status == 401 and "rules" not in page
    challenges = headers.get_all("WWW-Authenticate")
    assert "Bearer" in challenges and any(c.startswith("Basic realm=") for c in challenges), challenges
    wrong = base64.b64encode(b"admin:guess").decode()
    assert get(url, {"Authorization": f"Basic {wrong}"})[0] == 401
    right = base64.b64encode(f"anyone:{PASSWORD}".encode()).decode()
    status, page, _ = get(url, {"Authorization": f"Basic {right}"})
    assert status == 200 and page.count('class="decision"') == 2
    assert get(url, {"Authorization": f"Bearer {PASSWORD}"})[0] == 200


@pytest.mark.time_limit(60)
def test_retention_deletes_the_oldest_from_the_history_only(start_gateway, sink, tmp_path, mailgate_bin):
    config, _ = history_config(tmp_path, history={"retention": "2s"})
    gw = start_gateway(config, sink=sink)
    history = gw.workdir / "history.sqlite"
    smtplib_send(gw.port, "old@sender.example", ["bob@example.org"], make_message(subject="old"))
    gw.wait_for_records(lambda r: r.get("subject") == "old")
    history_holds_the_log(gw)
    time.sleep(3)
    smtplib_send(gw.port, "new@sender.example", ["bob@example.org"], make_message(subject="new"))
    deadline = time.monotonic() + 10
    while True:
        stored = [json.loads(line) for line in mailgate_log(mailgate_bin, f"--history={history}", "--json").splitlines()]
        subjects = [r["subject"] for r in stored if r["type"] == "transaction"]
        if subjects == ["new"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert subjects == ["new"], stored
    # The log file keeps everything: retention is the history's alone.
    assert [r["subject"] for r in gw.log_records() if r.get("type") == "transaction"] == ["old", "new"]
