"""The [metrics] HTTP listener (gateway/metrics/): /metrics scraped after known traffic matches it
exactly, /healthz, /readyz following the downstream, and the token rule off loopback."""

from __future__ import annotations

import hashlib
import re
import time
import urllib.error
import urllib.request

import pytest

from harness import Raw, build_config, free_port, make_message, run, toml_table
from sink import Sink

RULES = """\
header PRIZE_SUBJECT Subject =~ /prize/i
describe PRIZE_SUBJECT Subject mentions a prize
score PRIZE_SUBJECT 6.0
"""
TOKEN = "s3cret-scrape-token"
# For the `dns` fixture (conftest.py): the spf stage's questions.
ZONES = {
    "pass.metrics.example": [{"TXT": "v=spf1 ip4:127.0.0.0/8 -all"}],
    "client.test": [{"TXT": "v=spf1 ip4:127.0.0.0/8 -all"}],
}


def get(url: str, token: str | None = None, timeout: float = 5.0) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def samples(text: str) -> dict[str, float]:
    """The exposition's samples: 'name{labels}' (or 'name') to value."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def metrics_config(metrics: dict | None = None, extra: str = "", **keys) -> tuple[str, int]:
    port = free_port()
    table = toml_table("[metrics]", {"listen": f"127.0.0.1:{port}", **(metrics or {})})
    return build_config(extra=extra + table, **keys), port


def wait_until(predicate, timeout: float = 10.0, step: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


@pytest.mark.time_limit(60)
def test_metrics_match_known_traffic(start_gateway, sink, tmp_path):
    rules = tmp_path / "rules.cf"
    rules.write_text(RULES)
    config, port = metrics_config(
        server={"max_connections_per_client": 2},
        stages=[{"type": "size_limit", "max_bytes": "1MiB"},
                {"type": "rules", "paths": [str(rules)], "tag_score": 5.0, "reject_score": 15.0}])
    gw = start_gateway(config, sink=sink)
    base = f"http://127.0.0.1:{port}"
    status, text = get(base + "/metrics")
    assert status == 200, text
    before = samples(text)
    assert before['mailgate_transactions_total{action="accept"}'] == 0
    assert any(k.startswith("mailgate_build_info{version=") for k in before), text

    with Raw.session(gw.port) as c:
        for _ in range(2):
            c.transaction("a@example.com", ["b@example.org"], make_message()).check(250)
        c.transaction("a@example.com", ["b@example.org"], make_message(subject="a prize for you")).check(250)
        sink.data_reply = "451 4.3.0 Try again later"
        c.transaction("a@example.com", ["b@example.org"], make_message()).check(451)
        sink.data_reply = "554 5.7.1 Not wanted"
        c.transaction("a@example.com", ["b@example.org"], make_message()).check(554)
        sink.data_reply = None
        with Raw.session(gw.port) as second:  # the client's second connection: allowed
            with Raw(gw.port) as third:  # its third: refused
                third.read_reply().check(421)
                third.expect_closed()
            second.cmd("QUIT").check(221)
        c.cmd("QUIT").check(221)

    want = {
        'mailgate_transactions_total{action="accept"}': 2,
        'mailgate_transactions_total{action="tag"}': 1,
        'mailgate_transactions_total{action="tempfail"}': 1,
        'mailgate_transactions_total{action="reject"}': 1,
        'mailgate_connections_refused_total{reason="max_connections_per_client"}': 1,
        'mailgate_connections_refused_total{reason="max_connections"}': 0,
        'mailgate_connections_total': 3,
        'mailgate_connections_open': 0,
        'mailgate_stage_verdicts_total{stage="rules",verdict="tag"}': 1,
        'mailgate_stage_verdicts_total{stage="rules",verdict="continue"}': 4,
        'mailgate_rule_hits_total{rule="PRIZE_SUBJECT"}': 1,
        'mailgate_downstream_replies_total{class="2xx"}': 3,
        'mailgate_downstream_replies_total{class="4xx"}': 1,
        'mailgate_downstream_replies_total{class="5xx"}': 1,
        'mailgate_sessions_without_transaction_total{action="none"}': 1,
        'mailgate_stage_duration_seconds_count{stage="rules"}': 5,
        'mailgate_downstream_duration_seconds_count': 5,
        'mailgate_spool_bytes': 0,
        'mailgate_log_records_dropped_total': 0,
    }

    gauges = {"mailgate_connections_open", "mailgate_spool_bytes"}

    def change(now: dict) -> dict:
        # The harness's own check that the port answers made a connection before `before`.
        return {k: now.get(k, 0) - (0 if k in gauges else before.get(k, 0)) for k in want}

    def settled():
        now = samples(get(base + "/metrics")[1])
        return now if change(now) == want else None

    now = wait_until(settled) or samples(get(base + "/metrics")[1])
    assert change(now) == want
    now = {k: v - before.get(k, 0) for k, v in now.items()}
    # Replies by class: 220 x2 greetings (the refused one is 421), 250s for EHLO, MAIL, RCPT and
    # five final replies less the two refusals, 354 x5, 221 x2.
    assert now['mailgate_replies_total{class="4xx"}'] == 2  # the 451 and the 421
    assert now['mailgate_replies_total{class="5xx"}'] == 1
    assert now['mailgate_replies_total{class="3xx"}'] == 5
    assert now['mailgate_replies_total{class="2xx"}'] == 2 + 2 + 5 * 2 + 3 + 2
    assert get(base + "/healthz") == (200, "ok\n")
    assert get(base + "/nothing")[0] == 404


@pytest.mark.time_limit(60)
def test_readyz_follows_the_downstream(start_gateway, tmp_path):
    downstream = Sink().start()
    sink_port = downstream.port
    try:
        config, port = metrics_config()
        start_gateway(config, downstream_port=sink_port)
        base = f"http://127.0.0.1:{port}"
        assert get(base + "/readyz") == (200, "ready\n")
        downstream.stop()
        status = wait_until(lambda: get(base + "/readyz")[0] == 503)
        assert status, get(base + "/readyz")
        code, body = get(base + "/readyz")
        assert code == 503 and body.startswith("not ready: 127.0.0.1:"), body
        assert get(base + "/healthz") == (200, "ok\n")  # still serving
        downstream = Sink(port=sink_port).start()  # back on the same port
        assert wait_until(lambda: get(base + "/readyz")[0] == 200), get(base + "/readyz")
        # A downstream that greets with 554 takes no mail (RFC 5321 §3.1): not ready either.
        downstream.greeting = "554 sink.test no service"
        assert wait_until(lambda: get(base + "/readyz")[0] == 503), get(base + "/readyz")
    finally:
        downstream.stop()


def test_off_loopback_a_token_is_required_at_check_config(mailgate_bin, tmp_path):
    port = free_port()
    head = build_config().replace("{port}", str(free_port())).replace("{sink_port}", "2525").replace("{tmp}", str(tmp_path))
    path = tmp_path / "mailgate.toml"
    path.write_text(head + toml_table("[metrics]", {"listen": f"0.0.0.0:{port}"}))
    result = run([mailgate_bin, "--check-config", str(path)], cwd=tmp_path)
    assert result.returncode == 1, result
    assert "metrics.listen" in result.stderr and "set metrics.token_sha256" in result.stderr, result.stderr
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    path.write_text(head + toml_table("[metrics]", {"listen": f"0.0.0.0:{port}", "token_sha256": digest}))
    result = run([mailgate_bin, "--check-config", str(path)], cwd=tmp_path)
    assert result.returncode == 0, result


@pytest.mark.time_limit(30)
def test_with_a_token_requests_without_it_get_401(start_gateway, sink):
    config, port = metrics_config(metrics={"token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest()})
    start_gateway(config, sink=sink)
    base = f"http://127.0.0.1:{port}"
    for path in ("/metrics", "/healthz", "/readyz"):
        assert get(base + path)[0] == 401, path
        assert get(base + path, token="wrong")[0] == 401, path
        assert get(base + path, token=TOKEN)[0] == 200, path
    status, text = get(base + "/metrics", token=TOKEN)
    assert re.search(r'^mailgate_transactions_total\{action="accept"\} 0$', text, re.M), text
    # Without [history] there is no page, and the answer says what to add.
    status, text = get(base + "/history", token=TOKEN)
    assert status == 404 and "[history]" in text, text



@pytest.mark.time_limit(60)
def test_dns_questions_and_cache_hits(start_gateway, sink, dns):
    config, port = metrics_config(stages=[{"type": "spf", "on_fail": "reject"}],
                                  extra=f'[dns]\nservers = ["{dns.address}"]\ntimeout = "2s"\nretries = 0\n')
    gw = start_gateway(config, sink=sink)
    url = f"http://127.0.0.1:{port}/metrics"

    def dns_counts() -> tuple[float, float]:
        now = samples(get(url)[1])
        return now["mailgate_dns_questions_total"], now["mailgate_dns_cache_hits_total"]

    def send() -> None:
        sender = "a@pass.metrics.example"
        with Raw.session(gw.port) as c:
            c.transaction(sender, ["b@example.org"], make_message(sender=sender)).check(250)

    questions0, hits0 = dns_counts()
    send()
    questions1, hits1 = dns_counts()
    asked = questions1 - questions0
    assert asked >= 1 and hits1 == hits0, (questions0, hits0, questions1, hits1)  # nothing cached yet
    send()  # the same questions again: every one from the answer cache
    questions2, hits2 = dns_counts()
    assert (questions2 - questions1, hits2 - hits1) == (asked, asked), (questions1, hits1, questions2, hits2)
