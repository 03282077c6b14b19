"""The greylist stage (issue 17) through the real gateway and the real downstream: the first
attempt of a triplet 451, an early retry 451, a retry after the delay 250 (a 2 s delay here),
across a gateway restart with the embedded SQLite store (also with no store setting at all),
across two gateway instances sharing one real redis-server (Debian's, started here on a free
loopback port and stopped after), Redis killed mid-run (mail passes, the record and the log say
why), and a client allowed by the lists stage skipping it.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from harness import PACE, Raw, free_port, make_message, wait_for_port

REDIS_SERVER = "/usr/bin/redis-server"
# Short, so the suite does not wait minutes; longer under a sanitizer (MAILGATE_TEST_PACE), so that
# an "early" retry still comes before it.
DELAY = max(2, int(2 * PACE))
pytestmark = pytest.mark.time_limit(60 + 4 * DELAY)
RCPT = "user@example.org"
_senders = itertools.count(1)


def grey_stage(**keys) -> dict:
    return {"type": "greylist", "delay": f"{DELAY}s", "retry_window": "60s", **keys}


def attempt_n(gw, sender: str, n: int) -> tuple:
    """The n-th attempt of `sender` at `gw` (records of earlier attempts at this gateway skipped)."""
    with Raw(gw.port, timeout=20.0) as raw:
        raw.greet()
        raw.ehlo("client.example")
        raw.cmd(f"MAIL FROM:<{sender}>").check(250)
        rcpt = raw.cmd(f"RCPT TO:<{RCPT}>")
        if rcpt.code == 250:
            raw.cmd("DATA").check(354)
            raw.send_data(make_message(sender=sender)).check(250)
        raw.cmd("QUIT")
    records = gw.wait_for_records(lambda r: r.get("type") == "transaction" and r.get("sender") == sender, count=n)
    return rcpt, records[n - 1]


def grey_outcome(record: dict) -> dict:
    found = [s for s in record["stages"] if s["stage"] == "greylist"]
    assert found, record
    return found[0]


def check_greylisted(rcpt, seconds_max: int = DELAY) -> None:
    assert rcpt.code == 451, rcpt
    text = rcpt.lines[0]
    assert text.startswith("4.7.1 Greylisted, try again in ") and text.endswith(" seconds"), text
    assert 1 <= int(text.split()[-2]) <= seconds_max, text


def new_sender() -> str:
    return f"sender{next(_senders)}-{time.monotonic_ns()}@example.com"


# ------------------------------------------------------------------------------- embedded store
def test_first_attempt_early_retry_and_retry_after_the_delay(start_gateway, sink, tmp_path):
    gw = start_gateway(sink=sink, stages=[grey_stage(state_dir=str(tmp_path / "state"))])
    sender = new_sender()
    first, record = attempt_n(gw, sender, 1)
    check_greylisted(first)
    outcome = grey_outcome(record)
    assert outcome["verdict"] == "tempfail" and outcome["reason"] == "new triplet", outcome
    assert outcome["network"] == "127.0.0.0/24"
    early, record = attempt_n(gw, sender, 2)
    check_greylisted(early)
    assert grey_outcome(record)["reason"].startswith("retried too early")
    time.sleep(DELAY + 0.5)
    later, record = attempt_n(gw, sender, 3)
    assert later.code == 250, later
    assert grey_outcome(record)["reason"].startswith("retried after")
    # Now known: passes at once.
    again, _ = attempt_n(gw, sender, 4)
    assert again.code == 250
    assert (tmp_path / "state" / "greylist.sqlite").is_file()


def test_the_embedded_store_survives_a_restart(start_gateway, sink, tmp_path):
    stages = [grey_stage(state_dir=str(tmp_path / "state"))]
    first_gw = start_gateway(sink=sink, stages=stages, name="before")
    sender = new_sender()
    first, _ = attempt_n(first_gw, sender, 1)
    check_greylisted(first)
    first_gw.stop()
    time.sleep(DELAY + 0.5)
    second_gw = start_gateway(sink=sink, stages=stages, name="after")
    retry, record = attempt_n(second_gw, sender, 1)
    assert retry.code == 250, retry
    assert grey_outcome(record)["reason"].startswith("retried after")


def test_the_embedded_store_works_with_no_setting(start_gateway, sink, tmp_path):
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    gw = start_gateway(sink=sink, stages=[grey_stage()], cwd=workdir)
    first, record = attempt_n(gw, new_sender(), 1)
    check_greylisted(first)
    assert grey_outcome(record)["store"] == "sqlite var/state/greylist.sqlite"
    assert (workdir / "var" / "state" / "greylist.sqlite").is_file()


def test_a_client_allowed_by_lists_skips_greylisting(start_gateway, sink, tmp_path):
    allow = tmp_path / "allow.txt"
    allow.write_text("127.0.0.1\n")
    gw = start_gateway(sink=sink, stages=[{"type": "lists", "allow": [str(allow)]},
                                          grey_stage(state_dir=str(tmp_path / "state"))])
    rcpt, record = attempt_n(gw, new_sender(), 1)
    assert rcpt.code == 250, rcpt
    assert grey_outcome(record)["reason"] == "skipped: lists: 127.0.0.1"


# ------------------------------------------------------------------------------- redis
class RedisServer:
    """Debian's redis-server on 127.0.0.1:<free port>, no persistence, stopped by stop()."""

    def __init__(self, directory: Path):
        self.port = free_port()
        self.directory = directory
        self.proc = None

    def start(self) -> "RedisServer":
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(self.directory),
                                      "--daemonize", "no"],
                                     stdout=open(self.directory / "redis.log", "wb"), stderr=subprocess.STDOUT)
        wait_for_port(self.port, timeout=10.0)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def redis(tmp_path):
    if not shutil.which(REDIS_SERVER):
        pytest.skip(f"{REDIS_SERVER} is not installed (Debian package redis-server)")
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def test_two_gateways_share_one_redis(start_gateway, sink, redis):
    stages = [grey_stage(store=f"redis://127.0.0.1:{redis.port}")]
    one = start_gateway(sink=sink, stages=stages, name="one")
    two = start_gateway(sink=sink, stages=stages, name="two")
    sender = new_sender()
    first, record = attempt_n(one, sender, 1)
    check_greylisted(first)
    assert grey_outcome(record)["store"] == f"redis 127.0.0.1:{redis.port}"
    early, _ = attempt_n(two, sender, 1)
    check_greylisted(early)
    time.sleep(DELAY + 0.5)
    retry, record = attempt_n(two, sender, 2)
    assert retry.code == 250, retry
    assert grey_outcome(record)["reason"].startswith("retried after")
    # And the first gateway knows the triplet passed too.
    known, _ = attempt_n(one, sender, 2)
    assert known.code == 250


def test_redis_killed_mid_run_lets_mail_through(start_gateway, sink, redis):
    gw = start_gateway(sink=sink, stages=[grey_stage(store=f"redis://127.0.0.1:{redis.port}")])
    first, _ = attempt_n(gw, new_sender(), 1)
    check_greylisted(first)
    redis.kill()
    sender = new_sender()
    rcpt, record = attempt_n(gw, sender, 1)
    assert rcpt.code == 250, rcpt
    outcome = grey_outcome(record)
    assert outcome["verdict"] == "continue"
    assert outcome["reason"].startswith("store unavailable, let through: "), outcome
    assert "redis" in outcome["store_error"], outcome
    assert record["action"] == "accept"
    assert f"greylist: redis 127.0.0.1:{redis.port}:" in gw.stderr_text()


def test_shadow_mode_logs_the_451_and_lets_mail_through(start_gateway, sink, tmp_path):
    gw = start_gateway(sink=sink, stages=[grey_stage(state_dir=str(tmp_path / "state"), mode="shadow")])
    rcpt, record = attempt_n(gw, new_sender(), 1)
    assert rcpt.code == 250, rcpt
    outcome = grey_outcome(record)
    assert outcome["shadow"] is True and outcome["verdict"] == "tempfail", outcome
    assert outcome["reply"].startswith("451 4.7.1 Greylisted, try again in ")


def test_mailgate_check_asks_the_store(mailgate_bin, tmp_path):
    config = tmp_path / "check.toml"
    config.write_text('[server]\nlisten = ["127.0.0.1:2525"]\ndomains = ["example.org"]\n'
                      f'[[stage]]\ntype = "greylist"\ndelay = "{DELAY}s"\nretry_window = "60s"\n'
                      f'state_dir = "{tmp_path / "state"}"\n')
    message = tmp_path / "m.eml"
    message.write_bytes(make_message())
    command = [mailgate_bin, "check", "--config", str(config), "--ip", "192.0.2.7", "--from", "a@example.com",
               "--rcpt", RCPT, str(message)]
    first = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert "451 4.7.1 Greylisted, try again in" in first.stdout, first.stdout + first.stderr
    time.sleep(DELAY + 0.5)
    retry = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert "451 4.7.1" not in retry.stdout, retry.stdout
    assert "verdict: accept" in retry.stdout and "retried after" in retry.stdout, retry.stdout


def test_an_spf_pass_from_a_listed_domain_skips_greylisting(start_gateway, sink, tmp_path):
    from dns_server import DnsServer

    zones = {"partner.example": [{"TXT": "v=spf1 ip4:127.0.0.0/8 -all"}],
             "other.example": [{"TXT": "v=spf1 ip4:127.0.0.0/8 -all"}]}
    with DnsServer(zones, directory=tmp_path / "dns") as dns:
        gw = start_gateway(sink=sink, stages=[
            {"type": "spf"},
            grey_stage(state_dir=str(tmp_path / "state"), skip_spf_pass_domains=["Partner.Example"]),
        ], extra=f'[dns]\nservers = ["{dns.address}"]\ntimeout = "1s"\nretries = 0\n')
        partner = f"a{next(_senders)}@partner.example"
        rcpt, record = attempt_n(gw, partner, 1)
        assert rcpt.code == 250, rcpt
        assert grey_outcome(record)["reason"] == "skipped: SPF pass for partner.example"
        # A pass from a domain not listed is greylisted as any other.
        rcpt, _ = attempt_n(gw, f"a{next(_senders)}@other.example", 1)
        check_greylisted(rcpt)


@pytest.mark.parametrize("keys, error", [
    ({"delay": "10m", "retry_window": "5m"}, "stage[0].retry_window"),
    ({"store": "redis://localhost:6379"}, "stage[0].store"),
    ({"store": "redis://127.0.0.1:6379", "state_dir": "x"}, "stage[0].state_dir"),
    ({"delay": "0s"}, "stage[0].delay"),
    ({"auto_allow_after": -1}, "stage[0].auto_allow_after"),
])
def test_check_config_refuses_bad_values(mailgate_bin, tmp_path, keys, error):
    from harness import toml_table

    config = tmp_path / "bad.toml"
    config.write_text('[server]\nlisten = ["127.0.0.1:2525"]\n' + toml_table("[[stage]]", {"type": "greylist", **keys}))
    result = subprocess.run([mailgate_bin, "--check-config", str(config)], capture_output=True, text=True, timeout=20,
                            cwd=tmp_path)
    assert result.returncode == 1, result
    assert error in result.stderr, result.stderr
    assert not (tmp_path / "var").exists()  # checking creates no store


def test_check_config_creates_no_store(mailgate_bin, tmp_path):
    config = tmp_path / "good.toml"
    config.write_text('[server]\nlisten = ["127.0.0.1:2525"]\n[[stage]]\ntype = "greylist"\n')
    result = subprocess.run([mailgate_bin, "--check-config", str(config)], capture_output=True, text=True, timeout=20,
                            cwd=tmp_path)
    assert result.returncode == 0, result
    assert not (tmp_path / "var").exists()
