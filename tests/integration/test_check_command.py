"""`mailgate check`: the configured pipeline run offline on one message file, through the real
binary. Text and --json output for tag, reject and accept by a rules stage (verdict, reply, score,
hits with descriptions, the headers that would be added, every stage's outcome); an spf stage
resolving through a real DNS server (dns_server.DnsServer: Debian's unbound on loopback) for the
--ip/--from/--helo given, pass and fail (fail: 550 5.7.23 at RCPT, the rules never run); the
arguments checked as a session checks them, the default client named, a message on standard input;
and the exit codes (0 ran, 1 bad config or message, 2 usage and bad arguments).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from harness import HOSTNAME, build_config, run
from test_rules import RULES, STRICT, rules_stage, write_rules

pytestmark = pytest.mark.time_limit(60)

CLIENT_IN = "192.0.2.7"  # inside pass.check.example's SPF record
CLIENT_OUT = "203.0.113.9"  # outside it
HELO = "mail.check.example"
DNS_TIMEOUT = "1s"

ZONES = {
    "pass.check.example": [{"TXT": "v=spf1 ip4:192.0.2.0/24 -all"}],
    HELO: [{"TXT": "v=spf1 ip4:192.0.2.0/24 -all"}, {"A": CLIENT_IN}],
}

# LF line ends, as message files on disk mostly have them (check reads them as CRLF).
TAG_MESSAGE = ("From: Alice <alice@sender.example>\n"
               "To: <user@example.org>\n"
               "Subject: You won a prize\n"
               "Message-ID: <tag-1@sender.example>\n"
               "X-Spam-Flag: NO\n"
               "\n"
               "Claim your million dollars today.\n")
REJECT_MESSAGE = ("From: Boss <boss@reject.example.test>\n"
                  "To: <user@example.org>\n"
                  "Subject: Hello\n"
                  "\n"
                  "Nothing else.\n")
ACCEPT_MESSAGE = ("From: Bob <bob@sender.example>\n"
                  "To: <user@example.org>\n"
                  "Subject: Lunch\n"
                  "\n"
                  "See the small-marker at noon.\n")

TAG_STATUS = "Yes, score=7.0 required=5.0 tests=BODY_MILLION,META_PRIZE_MONEY,SUBJ_PRIZE"
PRIZE_HITS = [{"rule": "BODY_MILLION", "score": 2.5, "description": "Body talks about a million dollars"},
              {"rule": "META_PRIZE_MONEY", "score": 1.5, "description": "A prize and a million dollars"},
              {"rule": "SUBJ_PRIZE", "score": 3.0, "description": "Subject announces a prize"}]


# ------------------------------------------------------------------------------- helpers
def write_config(tmp_path: Path, stages: list[dict], extra: str = "") -> Path:
    """A config file for `check` (the listen and downstream ports are never used)."""
    text = (build_config(stages=stages, extra=extra).replace("{port}", "2525").replace("{sink_port}", "2526")
            .replace("{tmp}", str(tmp_path)))
    (tmp_path / "spool").mkdir(exist_ok=True)
    path = tmp_path / "mailgate.toml"
    path.write_text(text)
    return path


def write_message(tmp_path: Path, text: str, name: str = "message.eml") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


@pytest.fixture
def rules_config(tmp_path) -> Path:
    rules = write_rules(tmp_path / "rules", RULES)
    return write_config(tmp_path, [rules_stage([rules], **STRICT, reject_text="Refused: this looks like spam")])


def check(mailgate_bin, config: Path, message: Path, *args: str):
    return run([mailgate_bin, "check", "--config", str(config), *args, str(message)])


def check_json(mailgate_bin, config: Path, message: Path, *args: str) -> dict:
    result = check(mailgate_bin, config, message, "--json", *args)
    assert result.returncode == 0, result
    out = json.loads(result.stdout)
    for key in ("verdict", "reply", "score", "hits", "headers", "recipients", "stages"):
        assert key in out, f"no {key!r} in {out}"
    return out


def headers(out: dict) -> list[tuple[str, str]]:
    """(name, value) of the headers that would be added, values unfolded (a fold is CRLF + tab
    after a comma in X-Spam-Status)."""
    for h in out["headers"]:
        assert all(line.startswith(("\t", " ")) for line in h["value"].split("\r\n")[1:]), h
    return [(h["name"], h["value"].replace("\r\n\t", "")) for h in out["headers"]]


def stage(out: dict, name: str, phase: str | None = None) -> dict:
    found = [s for s in out["stages"] if s["stage"] == name and (phase is None or s["phase"] == phase)]
    assert len(found) == 1, f"expected one {name} stage entry, got {out['stages']}"
    return found[0]


# ------------------------------------------------------------------------------- rules: --json
def test_json_tag(mailgate_bin, tmp_path, rules_config):
    out = check_json(mailgate_bin, rules_config, write_message(tmp_path, TAG_MESSAGE))
    assert out["verdict"] == "tag"
    assert out["reply"].startswith("250 2.0.0"), out
    assert out["score"] == pytest.approx(7.0)
    assert out["hits"] == [{**h, "score": pytest.approx(h["score"])} for h in PRIZE_HITS]
    assert headers(out) == [("X-Spam-Score", "7.0"), ("X-Spam-Status", TAG_STATUS), ("X-Spam-Flag", "YES"),
                            ("Subject", "[SPAM] You won a prize")]
    # No --rcpt: <postmaster>, which RFC 5321 §4.5.1 has every server accept.
    assert out["recipients"] == [{"address": "postmaster", "reply": "250 2.1.5 Ok"}]
    entry = stage(out, "rules")
    assert (entry["phase"], entry["verdict"]) == ("data", "tag"), entry
    assert entry["score"] == pytest.approx(7.0)
    assert [h["rule"] for h in entry["hits"]] == [h["rule"] for h in PRIZE_HITS]


def test_json_reject(mailgate_bin, tmp_path, rules_config):
    out = check_json(mailgate_bin, rules_config, write_message(tmp_path, REJECT_MESSAGE),
                     "--from", "boss@reject.example.test", "--rcpt", "user@example.org")
    assert out["verdict"] == "reject"
    assert out["reply"] == "550 5.7.1 Refused: this looks like spam"
    assert out["score"] == pytest.approx(20.0)
    assert out["hits"] == [{"rule": "FROM_REJECT", "score": pytest.approx(20.0),
                            "description": "From: a known spammer domain"}]
    assert out["headers"] == [], "a refused message gets no headers"
    assert out["recipients"] == [{"address": "user@example.org", "reply": "250 2.1.5 Ok"}]
    entry = stage(out, "rules")
    assert entry["verdict"] == "reject" and entry["reply"] == "550 5.7.1 Refused: this looks like spam", entry


def test_json_accept(mailgate_bin, tmp_path, rules_config):
    out = check_json(mailgate_bin, rules_config, write_message(tmp_path, ACCEPT_MESSAGE))
    assert out["verdict"] == "accept"
    assert out["reply"].startswith("250 "), out
    assert out["score"] == pytest.approx(1.2)
    assert out["hits"] == [{"rule": "RAW_SMALL", "score": pytest.approx(1.2), "description": "A harmless marker"}]
    # No X-Spam-Flag (the empty "remove only" field is not shown), and the Subject is left alone.
    assert headers(out) == [("X-Spam-Score", "1.2"), ("X-Spam-Status", "No, score=1.2 required=5.0 tests=RAW_SMALL")]
    assert stage(out, "rules")["verdict"] == "continue"


def test_recipients_outside_server_domains_are_refused_as_the_session_refuses_them(mailgate_bin, tmp_path,
                                                                                     rules_config):
    message = write_message(tmp_path, ACCEPT_MESSAGE)
    out = check_json(mailgate_bin, rules_config, message, "--rcpt", "a@elsewhere.example", "--rcpt", "user@example.org")
    assert out["recipients"] == [
        {"address": "a@elsewhere.example", "reply": "554 5.7.1 <a@elsewhere.example>: Relay access denied"},
        {"address": "user@example.org", "reply": "250 2.1.5 Ok"}]
    assert out["verdict"] == "accept", out
    only_foreign = check_json(mailgate_bin, rules_config, message, "--rcpt", "a@elsewhere.example")
    assert only_foreign["verdict"] == "reject"
    assert only_foreign["reply"] == "554 5.7.1 <a@elsewhere.example>: Relay access denied"
    assert [s["stage"] for s in only_foreign["stages"]] == [], "no content stage runs for a refused envelope"


def test_json_tempfail(mailgate_bin, tmp_path, rules_config):
    message = write_message(tmp_path, ACCEPT_MESSAGE.replace("at noon.", "at http://tempfail.example.test/x"))
    out = check_json(mailgate_bin, rules_config, message)
    assert out["verdict"] == "tempfail"
    assert out["reply"] == "451 4.7.1 Message deferred as possible spam, try again later"
    assert out["headers"] == []


def test_crlf_and_lf_message_files_give_the_same_result(mailgate_bin, tmp_path, rules_config):
    lf = check_json(mailgate_bin, rules_config, write_message(tmp_path, TAG_MESSAGE, "lf.eml"))
    crlf = check_json(mailgate_bin, rules_config,
                      write_message(tmp_path, TAG_MESSAGE.replace("\n", "\r\n"), "crlf.eml"))
    for out in (lf, crlf):
        for s in out["stages"]:
            s.pop("ms", None)
    assert lf == crlf


# ------------------------------------------------------------------------------- rules: text
def test_text_tag(mailgate_bin, tmp_path, rules_config):
    result = check(mailgate_bin, rules_config, write_message(tmp_path, TAG_MESSAGE))
    assert result.returncode == 0, result
    out = result.stdout
    assert re.search(r"^verdict:\s+tag$", out, re.M), out
    assert re.search(r"^reply:\s+250 2\.0\.0 ", out, re.M), out
    assert re.search(r"^score:\s+7\.0$", out, re.M), out
    for hit in PRIZE_HITS:
        assert re.search(rf"^\s+{hit['score']:.1f}\s+{hit['rule']}\s+{re.escape(hit['description'])}$", out, re.M), out
    assert re.search(r"^headers added:$", out, re.M), out
    for line in ("X-Spam-Score: 7.0", "X-Spam-Flag: YES", "Subject: [SPAM] You won a prize"):
        assert re.search(rf"^\s+{re.escape(line)}$", out, re.M), (line, out)
    # X-Spam-Status is long enough to be shown folded, its continuation line indented by a tab.
    m = re.search(r"^\s+(X-Spam-Status: .*,)\n\t(.*)$", out, re.M)
    assert m and m.group(1) + m.group(2) == f"X-Spam-Status: {TAG_STATUS}", out
    assert re.search(r"^stages:\n\s+rules\s+data\s+tag\b", out, re.M), out


def test_text_reject_and_accept(mailgate_bin, tmp_path, rules_config):
    result = check(mailgate_bin, rules_config, write_message(tmp_path, REJECT_MESSAGE))
    assert result.returncode == 0, result
    assert re.search(r"^verdict:\s+reject$", result.stdout, re.M), result.stdout
    assert re.search(r"^reply:\s+550 5\.7\.1 Refused: this looks like spam$", result.stdout, re.M), result.stdout
    assert re.search(r"^headers added: none$", result.stdout, re.M), result.stdout
    assert "FROM_REJECT" in result.stdout and "From: a known spammer domain" in result.stdout

    result = check(mailgate_bin, rules_config, write_message(tmp_path, "Subject: plain\n\nhello\n", "plain.eml"))
    assert result.returncode == 0, result
    assert re.search(r"^verdict:\s+accept$", result.stdout, re.M), result.stdout
    assert re.search(r"^score:\s+0\.0$", result.stdout, re.M), result.stdout
    assert re.search(r"^rule hits: none$", result.stdout, re.M), result.stdout
    assert re.search(r"^\s+X-Spam-Status: No, score=0\.0 required=5\.0 tests=none$", result.stdout, re.M), result.stdout
    assert "X-Spam-Flag" not in result.stdout


# ------------------------------------------------------------------------------- exit codes
def test_usage_errors_exit_2(mailgate_bin, tmp_path, rules_config):
    for args in (["check"], ["check", "--config", str(rules_config)], ["check", "--bogus", "m.eml"],
                 ["check", "a.eml", "b.eml"], ["check", "m.eml", "--from"]):
        result = run([mailgate_bin, *args])
        assert result.returncode == 2, (args, result)
        assert "usage" in result.stderr, (args, result)


def test_unreadable_message_exits_1(mailgate_bin, tmp_path, rules_config):
    result = check(mailgate_bin, rules_config, tmp_path / "missing.eml")
    assert result.returncode == 1, result
    assert "missing.eml" in result.stderr and result.stdout == "", result


def test_bad_config_exits_1(mailgate_bin, tmp_path):
    bad = write_rules(tmp_path / "rules", "body OK /ok/\nbody BAD /(unclosed/\n", name="bad.cf")
    config = write_config(tmp_path, [rules_stage([bad])])
    result = check(mailgate_bin, config, write_message(tmp_path, TAG_MESSAGE))
    assert result.returncode == 1, result
    assert f"{bad}:2" in result.stderr, result
    assert result.stdout == "", result

    missing = check(mailgate_bin, tmp_path / "nonexistent.toml", write_message(tmp_path, TAG_MESSAGE))
    assert missing.returncode == 1, missing


def test_message_from_standard_input(mailgate_bin, tmp_path, rules_config):
    """MESSAGE "-" is read from standard input, with the same result as the file."""
    from_file = check_json(mailgate_bin, rules_config, write_message(tmp_path, TAG_MESSAGE))
    piped = subprocess.run([mailgate_bin, "check", "--config", str(rules_config), "--json", "-"],
                           input=TAG_MESSAGE, capture_output=True, text=True, timeout=30)
    assert piped.returncode == 0, piped
    out = json.loads(piped.stdout)
    assert (out["verdict"], out["score"], out["hits"]) == ("tag", 7.0, PRIZE_HITS), out
    assert headers(out) == headers(from_file)


# ------------------------------------------------------------------------------- arguments
@pytest.mark.parametrize("option, value, why", [
    ("--ip", "not-an-ip", "not an IPv4 or IPv6 address"),
    ("--ip", "192.0.2.1:25", "not an IPv4 or IPv6 address"),
    ("--ip", "[2001:db8::1]", "not an IPv4 or IPv6 address"),
    ("--ip", "192.0.2.300", "not an IPv4 or IPv6 address"),
    ("--helo", "two words", "not a HELO argument"),
    ("--helo", "", "not a HELO argument"),
    pytest.param("--helo", "x" * 994, "not a HELO argument", id="--helo-over-a-line"),  # "EHLO " + CRLF: 1001
    ("--from", "not an address", "501 5.1.7"),
    ("--from", "alice@pass.check.example> SIZE=1", "501 5.1.7"),
    ("--rcpt", "not an address", "501 5.1.3"),
    ("--rcpt", "<>", "501 5.1.3"),
])
def test_arguments_a_session_would_refuse_exit_2(mailgate_bin, tmp_path, spf_config, dns, option, value, why):
    """--ip, --helo, --from and --rcpt are checked as a session checks them, before anything runs:
    exit 2, the option, the value and the reason on stderr, no verdict, no DNS query."""
    dns.reset_query_count()
    result = check(mailgate_bin, spf_config, write_message(tmp_path, ACCEPT_MESSAGE), option, value)
    assert result.returncode == 2, result
    assert f"mailgate check: {option} {value}: " in result.stderr and why in result.stderr, result.stderr
    assert result.stdout == "", result.stdout
    assert dns.query_count() == 0, dns.queries()


def test_without_ip_the_output_names_the_default_client(mailgate_bin, tmp_path, spf_config):
    """No --ip: the check runs for 127.0.0.1, and says so (here SPF fails for it)."""
    message = write_message(tmp_path, ACCEPT_MESSAGE)
    text = check(mailgate_bin, spf_config, message, "--from", "alice@pass.check.example")
    assert text.returncode == 0, text
    assert re.search(r"^client:\s+127\.0\.0\.1 \(the default: no --ip given\), HELO localhost$", text.stdout,
                     re.M), text.stdout
    out = check_json(mailgate_bin, spf_config, message, "--from", "alice@pass.check.example")
    assert out["client"] == {"ip": "127.0.0.1", "ip_is_default": True, "helo": "localhost"}, out
    assert (stage(out, "spf", "rcpt")["result"], out["verdict"]) == ("fail", "reject"), out

    out = check_json(mailgate_bin, spf_config, message, "--from", "alice@pass.check.example",
                     "--ip", CLIENT_IN, "--helo", HELO)
    assert out["client"] == {"ip": CLIENT_IN, "ip_is_default": False, "helo": HELO}, out
    assert out["verdict"] == "accept", out
    text = check(mailgate_bin, spf_config, message, "--ip", CLIENT_IN)
    assert re.search(rf"^client:\s+{re.escape(CLIENT_IN)}, HELO localhost$", text.stdout, re.M), text.stdout


# ------------------------------------------------------------------------------- spf through DNS
@pytest.fixture
def spf_config(tmp_path, dns) -> Path:
    rules = write_rules(tmp_path / "rules", RULES)
    dns_table = f'[dns]\nservers = ["{dns.address}"]\ntimeout = "{DNS_TIMEOUT}"\nretries = 0\n'
    return write_config(tmp_path, [{"type": "spf", "on_fail": "reject"}, rules_stage([rules], **STRICT)],
                        extra=dns_table)


def test_spf_pass(mailgate_bin, tmp_path, spf_config):
    out = check_json(mailgate_bin, spf_config, write_message(tmp_path, ACCEPT_MESSAGE),
                     "--ip", CLIENT_IN, "--from", "alice@pass.check.example", "--helo", HELO,
                     "--rcpt", "user@example.org")
    assert out["verdict"] == "accept", out
    assert out["recipients"] == [{"address": "user@example.org", "reply": "250 2.1.5 Ok"}]
    spf = stage(out, "spf", "rcpt")
    assert (spf["phase"], spf["verdict"], spf["result"]) == ("rcpt", "continue", "pass"), spf
    assert (spf["identity"], spf["domain"]) == ("mailfrom", "pass.check.example"), spf
    names = [name for name, _ in headers(out)]
    received_spf = [v for n, v in headers(out) if n == "Received-SPF"]
    assert len(received_spf) == 1 and received_spf[0].startswith("pass"), out["headers"]
    assert f"client-ip={CLIENT_IN}" in received_spf[0], received_spf
    auth = [v for n, v in headers(out) if n == "Authentication-Results"]
    assert len(auth) == 1 and auth[0].startswith(HOSTNAME), out["headers"]
    assert "spf=pass smtp.mailfrom=alice@pass.check.example" in auth[0] or \
        "spf=pass smtp.mailfrom=pass.check.example" in auth[0], auth
    # The rules ran too, after SPF.
    assert "X-Spam-Score" in names and stage(out, "rules")["verdict"] == "continue"

    text = check(mailgate_bin, spf_config, write_message(tmp_path, ACCEPT_MESSAGE),
                 "--ip", CLIENT_IN, "--from", "alice@pass.check.example", "--helo", HELO)
    assert text.returncode == 0, text
    assert re.search(r"^\s+spf\s+rcpt\s+continue\s+pass", text.stdout, re.M), text.stdout
    assert re.search(r"^\s+Received-SPF: pass", text.stdout, re.M), text.stdout


def test_spf_fail_rejects_at_rcpt(mailgate_bin, tmp_path, spf_config):
    out = check_json(mailgate_bin, spf_config, write_message(tmp_path, TAG_MESSAGE),
                     "--ip", CLIENT_OUT, "--from", "alice@pass.check.example", "--helo", HELO,
                     "--rcpt", "user@example.org")
    assert out["verdict"] == "reject", out
    assert out["reply"].startswith("550 5.7.23 "), out
    assert "pass.check.example" in out["reply"], out
    assert len(out["recipients"]) == 1 and out["recipients"][0]["reply"].startswith("550 5.7.23 "), out
    spf = stage(out, "spf", "rcpt")
    assert (spf["phase"], spf["verdict"], spf["result"]) == ("rcpt", "reject", "fail"), spf
    # Refused before DATA: no rules ran, nothing is added.
    assert [s for s in out["stages"] if s["stage"] == "rules"] == []
    assert out["hits"] == [] and out["headers"] == []

    text = check(mailgate_bin, spf_config, write_message(tmp_path, TAG_MESSAGE),
                 "--ip", CLIENT_OUT, "--from", "alice@pass.check.example", "--helo", HELO)
    assert text.returncode == 0, text
    assert re.search(r"^verdict:\s+reject$", text.stdout, re.M), text.stdout
    assert re.search(r"^reply:\s+550 5\.7\.23 ", text.stdout, re.M), text.stdout


def test_spf_null_sender_checks_the_helo(mailgate_bin, tmp_path, spf_config):
    out = check_json(mailgate_bin, spf_config, write_message(tmp_path, ACCEPT_MESSAGE),
                     "--ip", CLIENT_IN, "--helo", HELO)
    spf = stage(out, "spf", "rcpt")
    assert (spf["identity"], spf["result"]) == ("helo", "pass"), spf
    assert out["verdict"] == "accept"

    out = check_json(mailgate_bin, spf_config, write_message(tmp_path, ACCEPT_MESSAGE),
                     "--ip", CLIENT_OUT, "--helo", HELO)
    assert (stage(out, "spf", "rcpt")["result"], out["verdict"]) == ("fail", "reject"), out
    assert out["reply"].startswith("550 5.7.23 "), out


# ------------------------------------------------------------------------------- scores
def test_hit_scores_keep_their_precision(mailgate_bin, tmp_path):
    # SpamAssassin scores some rules 0.001 (LOTS_OF_MONEY): shown with one decimal that would be 0.0,
    # a rule that did not count.
    rules = write_rules(tmp_path / "rules", "body TINY /tiny-marker/\ndescribe TINY Tiny\nscore TINY 0.001\n"
                                            "body HALF /tiny-marker/\nscore HALF 0.25\n")
    config = write_config(tmp_path, [rules_stage([rules])])
    out = check_json(mailgate_bin, config, write_message(tmp_path, "Subject: s\n\na tiny-marker\n"))
    assert out["hits"] == [{"rule": "HALF", "score": pytest.approx(0.25), "description": ""},
                           {"rule": "TINY", "score": pytest.approx(0.001), "description": "Tiny"}]
    assert out["score"] == pytest.approx(0.251)
    entry = stage(out, "rules")
    assert [float(h["score"]) for h in entry["hits"]] == [pytest.approx(0.25), pytest.approx(0.001)], entry
    assert headers(out)[0] == ("X-Spam-Score", "0.3")
    # The text shows scores the way the headers do (one decimal, halves rounded away from zero).
    text = check(mailgate_bin, config, write_message(tmp_path, "Subject: s\n\na tiny-marker\n"))
    assert re.search(r"^score:\s+0\.3$", text.stdout, re.M), text.stdout
    assert re.search(r"^\s+0\.3\s+HALF\s*$", text.stdout, re.M), text.stdout


def test_relative_rule_paths_are_read_from_the_config_folder(mailgate_bin, tmp_path):
    conf = tmp_path / "conf"
    write_rules(conf / "rules", RULES, name="10_local.cf")
    config = write_config(conf, [rules_stage(["rules"], **STRICT)])
    message = write_message(tmp_path, TAG_MESSAGE)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for config_argument, cwd in ((str(config), elsewhere), ("conf/mailgate.toml", tmp_path)):
        result = run([mailgate_bin, "check", "--config", config_argument, "--json", str(message)], cwd=cwd)
        assert result.returncode == 0, result
        assert json.loads(result.stdout)["verdict"] == "tag", result.stdout
        valid = run([mailgate_bin, "--check-config", config_argument], cwd=cwd)
        assert valid.returncode == 0, valid
