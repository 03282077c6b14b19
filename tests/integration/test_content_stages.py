"""The clamav and attachments stages together: `mailgate check` (the clamav stage asks the
configured clamd), SIGHUP reload of their keys, and the shipped example config
(deploy/examples/attachments.toml) passing --check-config. The stages' own cases are in
test_clamav.py and test_attachments.py."""

from __future__ import annotations

import json
import signal
import time

import pytest

import clamd as clamd_module
from clamd import EICAR, REPORTED, Clamd
from harness import build_config, run
from test_attachments import attachment, send
from test_clamav import with_attachment

pytestmark = [pytest.mark.time_limit(90),
              pytest.mark.skipif(not clamd_module.available(), reason="clamav-daemon is not installed")]


@pytest.fixture(scope="module")
def clamd(tmp_path_factory):
    daemon = Clamd(tmp_path_factory.mktemp("clamd")).start()
    yield daemon
    daemon.stop()


def stages(socket_path: str, block) -> list[dict]:
    return [{"type": "attachments", "block": block},
            {"type": "clamav", "clamd": socket_path, "timeout": "10s"}]


def test_check_command_runs_both_stages(mailgate_bin, tmp_path, clamd):
    config = tmp_path / "mailgate.toml"
    (tmp_path / "spool").mkdir()
    config.write_text(build_config(stages=stages(clamd.socket_path, ["*.exe"])).replace("{port}", "2525")
                      .replace("{sink_port}", "2526").replace("{tmp}", str(tmp_path)))
    cases = [(with_attachment("eicar.txt", EICAR), f"554 5.7.0 Message refused: virus found ({REPORTED})"),
             (attachment("setup.exe", b"x"), '554 5.7.1 Message refused: attachment "setup.exe" is not allowed')]
    for content, expected in cases:
        message = tmp_path / "message.eml"
        message.write_bytes(content)
        result = run([mailgate_bin, "check", "--config", str(config), "--json", str(message)])
        out = json.loads(result.stdout)
        assert out["reply"] == expected, out
    message.write_bytes(attachment("notes.txt", b"hello\n"))
    out = json.loads(run([mailgate_bin, "check", "--config", str(config), "--json", str(message)]).stdout)
    assert out["reply"].startswith("250"), out
    assert {"name": "X-Virus-Scanned", "value": "clamav"} in out["headers"], out


def wait_for_stderr(gw, needle: str, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while gw.stderr_text(tail=10 ** 7).count(needle) < count:
        assert time.monotonic() < deadline, gw.stderr_text()
        time.sleep(0.05)


def test_sighup_reloads_the_stages(start_gateway, sink, clamd, tmp_path):
    gw = start_gateway(sink=sink, stages=[{"type": "attachments", "block": ["*.exe"]}])
    reply, _ = send(gw, attachment("screen.scr", b"x"))
    assert reply.code == 250, reply
    reply, _ = send(gw, with_attachment("eicar.txt", EICAR))
    assert reply.code == 250, reply  # no virus scanning yet

    gw.write_config(build_config(stages=stages(clamd.socket_path, ["*.scr"])))
    gw.signal(signal.SIGHUP)
    wait_for_stderr(gw, "configuration reloaded", 1)
    reply, _ = send(gw, attachment("screen.scr", b"x"))
    assert (reply.code, reply.text) == (554, '5.7.1 Message refused: attachment "screen.scr" is not allowed'), reply
    reply, record = send(gw, with_attachment("eicar.txt", EICAR))
    assert (reply.code, reply.text) == (554, f"5.7.0 Message refused: virus found ({REPORTED})"), reply

    # A broken stage table is refused and the running pipeline kept.
    gw.write_config(build_config(stages=[{"type": "clamav", "clamd": "nowhere"}]))
    gw.signal(signal.SIGHUP)
    wait_for_stderr(gw, "stage[0].clamd", 1)
    reply, _ = send(gw, attachment("screen.scr", b"x"))
    assert reply.code == 554, reply


def test_example_config_is_valid(mailgate_bin, source_dir):
    result = run([mailgate_bin, "--check-config", str(source_dir / "deploy/examples/attachments.toml")])
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "3 stages" in result.stdout + result.stderr
