"""The open-file limit (README "Many connections"): the gateway raises its soft RLIMIT_NOFILE at
start to what server.max_connections needs, as far as the hard limit allows; a hard limit too low
is a warning (stderr, --check-config), and when descriptors run out new clients are told 421
while the gateway keeps serving, without spinning. Each gateway runs under util-linux prlimit."""

from __future__ import annotations

import subprocess
import time

import pytest

from harness import Gateway, Raw, build_config, delivered_once, make_message, smtplib_send

pytestmark = pytest.mark.time_limit(60)

WORKERS = 2
# gateway/net/descriptor_limit.h: 2 per connection, 256 besides, per worker 4 and 1 per listener.
def needed(max_connections: int) -> int:
    return 2 * max_connections + 256 + WORKERS * (4 + 1)


class LimitedGateway(Gateway):
    """A gateway started by `prlimit --nofile=SOFT:HARD` (which execs it: same pid)."""

    def __init__(self, *args, soft: int, hard: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.limits = f"--nofile={soft}:{hard}"

    def command(self) -> list[str]:
        return ["prlimit", self.limits, "--"] + super().command()


@pytest.fixture
def start_limited(mailgate_bin, tmp_path, sink):
    started = []

    def start(soft: int, hard: int, **server) -> LimitedGateway:
        config = build_config(server={"workers": WORKERS, **server})
        gw = LimitedGateway(mailgate_bin, tmp_path / f"mailgate-{len(started)}", config, sink_port=sink.port,
                            soft=soft, hard=hard)
        started.append(gw)
        gw.start()
        return gw

    yield start
    for gw in started:
        gw.stop()


def open_files_limit(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/limits") as f:
        fields = next(line for line in f if line.startswith("Max open files")).split()
    return int(fields[3]), int(fields[4])


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def send_one(gw: Gateway, sink) -> None:
    content = make_message(subject="after the crowd")
    assert smtplib_send(gw.port, "a@example.com", ["b@example.org"], content) == {}
    delivered_once(sink, content)


def test_the_soft_limit_is_raised_to_what_max_connections_needs(start_limited, sink):
    gw = start_limited(64, 4096, max_connections=500, max_connections_per_client=500)
    assert open_files_limit(gw.pid) == (needed(500), 4096)
    assert "hard limit" not in gw.stderr_text()
    # More clients at once than the limit the process was started with.
    held = []
    try:
        for _ in range(150):
            raw = Raw(gw.port)
            raw.greet()
            held.append(raw)
        held[-1].ehlo()
        send_one(gw, sink)
    finally:
        for raw in held:
            raw.close()


def test_a_hard_limit_too_low_warns_and_refuses_what_does_not_fit_without_spinning(
        start_limited, sink, mailgate_bin, tmp_path):
    gw = start_limited(48, 48)
    warning = (f"needs {needed(10000)} open files but the hard limit (RLIMIT_NOFILE) is 48")
    stderr = gw.stderr_text()
    assert warning in stderr and f"LimitNOFILE={needed(10000)}" in stderr and "ulimit -n" in stderr, stderr
    assert stderr.count("hard limit (RLIMIT_NOFILE)") == 1, stderr
    check = subprocess.run(["prlimit", "--nofile=48:48", "--", mailgate_bin, "--check-config", str(gw.config_path)],
                           capture_output=True, text=True, timeout=20, cwd=tmp_path)
    assert check.returncode == 0 and warning in check.stderr, check

    held, codes = [], []
    try:
        for _ in range(80):
            raw = Raw(gw.port, timeout=10)
            held.append(raw)
            try:
                codes.append(raw.read_reply(timeout=2).code)
            except AssertionError:
                # Still in the listen queue: the worker's spare descriptor was taken by another
                # thread between its close and the accept, and nothing has closed since.
                codes.append("waiting")
            if 421 in codes and len(codes) > codes.index(421) + 5:
                break
        assert set(codes) <= {220, 421, "waiting"} and 421 in codes and 220 in codes, codes
        # With every descriptor in use the workers wait: they do not retry accept in a loop.
        before = cpu_seconds(gw.pid)
        time.sleep(2)
        assert cpu_seconds(gw.pid) - before < 0.5, "the gateway spins while out of descriptors"
        assert "out of open files (RLIMIT_NOFILE 48)" in gw.stderr_text()
    finally:
        for raw in held:
            raw.close()
    # Once the crowd has gone, mail flows again.
    deadline = time.monotonic() + 10
    while True:
        try:
            send_one(gw, sink)
            break
        except Exception:
            assert time.monotonic() < deadline, gw.stderr_text()
            time.sleep(0.2)
