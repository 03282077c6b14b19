"""The lists stage (issue 17 item 2) through the real gateway: each entry kind refused at the phase
it is known (client at the greeting, helo: at HELO, from: at MAIL, to: at RCPT) with block_reply,
an allow entry whose allow_skips names one stage (that stage's refusal skipped, another's given),
and SIGHUP reloading a changed list file. (The connect phase, decide = "rcpt" and allow over a
later stage are in test_session_phases.py; the entry syntax in the unit tests; load and match
times in bench/lists_bench.)
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from harness import Raw, build_config

pytestmark = pytest.mark.time_limit(60)

BLOCK_REPLY = "550 5.7.1 Blocked by local policy"


def write_list(path: Path, entries) -> str:
    path.write_text("# test list\n" + "\n".join(entries) + "\n")
    return str(path)


def test_each_entry_kind_is_refused_at_its_phase(start_gateway, sink, tmp_path):
    block = write_list(tmp_path / "block.txt", ["helo:bad.example", "from:spam.example", "from:evil@x.example",
                                                "to:closed@example.org", "to:shut.example.org"])
    gw = start_gateway(sink=sink, server={"domains": ["example.org", "shut.example.org"]},
                       stages=[{"type": "lists", "block": [block], "block_reply": BLOCK_REPLY}])
    with Raw(gw.port) as raw:
        raw.greet()
        reply = raw.cmd("EHLO Bad.Example")
        assert (reply.code, reply.lines[0]) == (550, "5.7.1 Blocked by local policy"), reply
    with Raw.session(gw.port) as raw:
        assert raw.cmd("MAIL FROM:<a@mail.spam.example>").code == 550  # subdomains too
        raw.cmd("RSET").check(250)
        assert raw.cmd("MAIL FROM:<evil@x.example>").code == 550
        raw.cmd("RSET").check(250)
        raw.cmd("MAIL FROM:<good@x.example>").check(250)
        assert raw.cmd("RCPT TO:<closed@example.org>").code == 550
        assert raw.cmd("RCPT TO:<anyone@shut.example.org>").code == 550
        raw.cmd("RCPT TO:<open@example.org>").check(250)


def test_allow_skips_names_the_stages_it_lifts(start_gateway, sink, tmp_path):
    from dns_server import DnsServer

    allow = write_list(tmp_path / "allow.txt", ["127.0.0.1"])
    blocked = write_list(tmp_path / "blocked.txt", ["from:blocked.example"])
    with DnsServer({"1.0.0.127.bl.example": [{"A": "127.0.0.2"}]}, directory=tmp_path / "dns") as dns:
        gw = start_gateway(sink=sink, stages=[
            {"type": "lists", "allow": [allow], "allow_skips": ["dnsbl"]},
            {"type": "dnsbl", "zones": ["bl.example"]},
            {"type": "lists", "block": [blocked]},
        ], extra=f'[dns]\nservers = ["{dns.address}"]\ntimeout = "1s"\nretries = 0\n')
        with Raw.session(gw.port) as raw:
            # dnsbl (named) would refuse 127.0.0.1 at RCPT: lifted, and logged as such.
            raw.cmd("MAIL FROM:<a@good.example>").check(250)
            raw.cmd("RCPT TO:<user@example.org>").check(250)
            raw.cmd("RSET").check(250)
            # The second lists stage is not named: its refusal stands.
            assert raw.cmd("MAIL FROM:<a@blocked.example>").code == 550
        records = gw.wait_for_records(lambda r: r.get("type") == "transaction" and r.get("sender") == "a@good.example")
        dnsbl = [s for s in records[0]["stages"] if s["stage"] == "dnsbl" and s["phase"] == "rcpt"][0]
        assert dnsbl["verdict"] == "reject" and dnsbl["allowed_by"] == "lists: 127.0.0.1", dnsbl


def test_sighup_reloads_a_changed_list_file(start_gateway, sink, tmp_path):
    block_path = tmp_path / "block.txt"
    write_list(block_path, ["from:first.example"])
    config = build_config(stages=[{"type": "lists", "block": [str(block_path)]}])
    gw = start_gateway(config, sink=sink)
    with Raw.session(gw.port) as raw:
        assert raw.cmd("MAIL FROM:<a@first.example>").code == 550
        raw.cmd("RSET").check(250)
        raw.cmd("MAIL FROM:<a@second.example>").check(250)
    write_list(block_path, ["from:second.example"])
    gw.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "configuration reloaded" not in gw.stderr_text():
        assert time.monotonic() < deadline, gw.stderr_text()
        time.sleep(0.05)
    with Raw.session(gw.port) as raw:
        raw.cmd("MAIL FROM:<a@first.example>").check(250)
        raw.cmd("RSET").check(250)
        assert raw.cmd("MAIL FROM:<a@second.example>").code == 550
