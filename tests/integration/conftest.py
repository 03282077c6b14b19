"""Fixtures for the integration tests (the classes and helpers behind them are in harness.py).

Environment:
  MAILGATE_BIN         the gateway binary; when unset, every test that needs it is skipped
  MAILGATE_SOURCE_DIR  the repository root (optional; tests/data lives there)

Fixtures:
  mailgate_bin    path of the binary (skips when MAILGATE_BIN is unset)
  make_sink       factory: make_sink(**knobs) -> a started sink.Sink (stopped after the test)
  sink            one default Sink
  start_gateway   factory: start_gateway(config=None, *, sink=None, downstream_port=None,
                  wait=True, args=(), port=None, name=..., stdout=None, env=None,
                  **build_config_keywords) -> Gateway (env: variables added to the gateway's
                  environment),
                  started and ready; stopped (SIGTERM, exit code 0 asserted) after the test
  gateway         a Gateway on the default test config relaying to `sink`
  smtp_sink       Postfix's smtp-sink (harness.PostfixSink), dumping one file per message

A failing test's report gets extra sections: each gateway's stderr and decision log tail, and
each sink's transcript tail.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

# The helpers themselves (free_port, Gateway, Raw, Reply, PostfixSink, build_config, message
# helpers) live in harness.py; tests import them from there.
from harness import SMTP_SINK, Gateway, PostfixSink, build_config, tool_available
from sink import Sink

DEFAULT_TEST_SECONDS = 90  # per test, setup and teardown included; see the time_limit marker


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "time_limit(seconds): fail the test when it runs longer (default "
        f"{DEFAULT_TEST_SECONDS} s)")


# ------------------------------------------------------------------------------- time limit
@pytest.fixture(autouse=True)
def _time_limit(request):
    """Every test is bounded: SIGALRM raises in the main thread, so teardown still runs."""
    marker = request.node.get_closest_marker("time_limit")
    seconds = int(marker.args[0]) if marker else DEFAULT_TEST_SECONDS
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise TimeoutError(f"test exceeded its time limit of {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# ------------------------------------------------------------------------------- reporting
def _register(request, kind: str, thing) -> None:
    request.node.__dict__.setdefault("_mailgate_" + kind, []).append(thing)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    for gw in item.__dict__.get("_mailgate_gateways", []):
        report.sections.append((f"{gw.name} stderr ({report.when})", gw.stderr_text() or "(empty)"))
        try:
            log = gw.log_path.read_text(errors="replace") if gw.log_path.exists() else ""
        except OSError:
            log = ""
        if log:
            report.sections.append((f"{gw.name} decision log (tail)", log[-8000:]))
    for sink in item.__dict__.get("_mailgate_sinks", []):
        lines = sink.transcript()
        if lines:
            report.sections.append((f"sink :{sink.port} transcript (tail)", "\n".join(lines[-200:])))
    for pf in item.__dict__.get("_mailgate_postfix", []):
        report.sections.append((f"smtp-sink :{pf.port} output", pf.stderr_text() or "(empty)"))


# ------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def mailgate_bin() -> str:
    path = os.environ.get("MAILGATE_BIN")
    if not path:
        pytest.skip("MAILGATE_BIN is not set: the gateway tests need the built mailgate binary "
                    "(e.g. MAILGATE_BIN=build/mailgate)")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"MAILGATE_BIN={path!r} is not an executable file")
    return os.path.abspath(path)


@pytest.fixture(scope="session")
def source_dir() -> Path:
    return Path(os.environ.get("MAILGATE_SOURCE_DIR") or Path(__file__).resolve().parents[2])


@pytest.fixture
def make_sink(request):
    sinks = []

    def make(**knobs) -> Sink:
        s = Sink(**knobs).start()
        sinks.append(s)
        _register(request, "sinks", s)
        return s

    yield make
    for s in sinks:
        s.stop()


@pytest.fixture
def sink(make_sink) -> Sink:
    return make_sink()


@pytest.fixture
def start_gateway(request, mailgate_bin, tmp_path, make_sink):
    # Depends on make_sink so that gateways stop before their sinks do.
    started: list[Gateway] = []

    def start(config: str | None = None, *, sink: Sink | None = None,
              downstream_port: int | None = None, wait: bool = True, args=(), port=None,
              name: str | None = None, cwd=None, stdout=None, env: dict | None = None,
              **config_keywords) -> Gateway:
        index = len(started) + 1
        name = name or ("mailgate" if index == 1 else f"mailgate-{index}")
        if config is None:
            config = build_config(**config_keywords)
        else:
            assert not config_keywords, "give either config text or build_config keywords"
        sink_port = sink.port if sink is not None else downstream_port
        gw = Gateway(mailgate_bin, tmp_path / name, config, port=port, sink_port=sink_port,
                     name=name, args=args, cwd=cwd, stdout=stdout,
                     env={**os.environ, **env} if env else None)
        started.append(gw)
        _register(request, "gateways", gw)
        gw.start(wait=wait)
        return gw

    yield start
    failures = []
    for gw in reversed(started):
        try:
            gw.stop()
        except AssertionError as e:
            failures.append(str(e))
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


@pytest.fixture
def gateway(start_gateway, sink) -> Gateway:
    return start_gateway(sink=sink)


@pytest.fixture
def smtp_sink(request, tmp_path):
    if not tool_available(SMTP_SINK):
        pytest.skip(f"{SMTP_SINK} is not installed (Debian package postfix)")
    pf = PostfixSink(tmp_path / "postfix-sink")
    _register(request, "postfix", pf)
    pf.start()
    yield pf
    pf.stop()


@pytest.fixture(scope="module")
def dns(request, tmp_path_factory):
    """A real DNS server (unbound on loopback) serving the test module's ZONES, for the module."""
    from dns_server import DnsServer

    server = DnsServer(request.module.ZONES, directory=tmp_path_factory.mktemp("dns"))
    server.start()
    yield server
    server.stop()
