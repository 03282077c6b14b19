"""The integration harness: the gateway process, a raw SMTP client, Postfix's smtp-sink, and the
helpers the tests share. Fixtures built on these live in conftest.py.

Everything binds to loopback on free ports, every socket has a timeout, every wait on a process is
bounded, and everything started is stopped again (also when a test fails).
"""

from __future__ import annotations

import atexit
import datetime
import email.utils
import hashlib
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable, NamedTuple, Optional, Sequence

HOSTNAME = "mx.test.example"  # server.hostname in every test config
DOMAINS = ["example.org", "example.net"]
CLIENT_HELO = "client.test"
DEFAULT_MAX_BYTES = 1024 * 1024  # the size_limit stage of the default test config: "1MiB"

SMTP_SINK = "/usr/sbin/smtp-sink"
SMTP_SOURCE = "/usr/sbin/smtp-source"
SWAKS = "/usr/bin/swaks"

# How much slower the gateway under test runs than a release build (scripts/test.sh sets 2 for
# the AddressSanitizer build, scripts/tsan.sh 8 for ThreadSanitizer): the few bounds on CPU time
# and on a verdict's wait scale with it, so that they still tell a scan stopped at its budget from
# one that never stops, without failing on the sanitizer's own cost.
PACE = float(os.environ.get("MAILGATE_TEST_PACE", "1"))
READY_TIMEOUT = 10.0  # the gateway must accept connections this soon after starting
STOP_TIMEOUT = 15.0  # ... and exit this soon after SIGTERM


# --------------------------------------------------------------------------------------- ports
def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind port 0, read it back, release it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could not listen on the port (SO_REUSEADDR, as servers do, so that
    connections in TIME_WAIT from an earlier test do not count)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
        return False


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 10.0,
                  alive: Optional[Callable[[], bool]] = None) -> None:
    """Waits until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None and not alive():
            raise RuntimeError(f"process exited before {host}:{port} accepted connections")
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing accepted connections on {host}:{port} within {timeout} s")
            time.sleep(0.05)


# --------------------------------------------------------------------------------------- replies
class ConnectionClosed(AssertionError):
    """The server closed the connection while the client expected more."""


_REPLY_LINE = re.compile(rb"^(\d{3})(?:([ -])(.*))?$", re.S)
_ENHANCED = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")


class Reply(NamedTuple):
    """One SMTP reply: the code and the text of all its lines, joined with "\\n"."""

    code: int
    text: str

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    @property
    def enhanced(self) -> Optional[str]:
        """The enhanced status code (RFC 3463) at the start of the first line, if any."""
        first = self.text.split(" ", 1)[0] if self.text else ""
        return first if _ENHANCED.match(first) else None

    def check(self, code: int, enhanced: Optional[str] = None) -> "Reply":
        """Asserts the code (and the enhanced code, when given); returns the reply."""
        assert self.code == code and (enhanced is None or self.enhanced == enhanced), (
            f"expected {code} {enhanced or ''}, got: {self}")
        return self

    def __str__(self) -> str:
        return " | ".join(f"{self.code} {line}" for line in self.lines)


def check_no_valid_recipients(reply: Reply) -> Reply:
    """DATA after every recipient was refused. Pipelined, RFC 2920 §3.1 and design.md §4 say
    554 5.5.1; sent on its own (not pipelined) 503 5.5.1 "need RCPT" is just as right."""
    assert reply.code in (503, 554) and reply.enhanced == "5.5.1", (
        f"expected 554 5.5.1 (or 503 5.5.1), got: {reply}")
    return reply


class Raw:
    """A raw SMTP client over a plain socket: send bytes exactly as given, read replies whole.

    Nothing is read or sent implicitly: Raw(port) connects, and the greeting is the first reply.
    """

    def __init__(self, port: int, host: str = "127.0.0.1", *, timeout: float = 10.0,
                 source: Optional[str] = None):
        self.host = host
        self.port = port
        self.timeout = timeout
        self.buffer = b""
        source_address = (source, 0) if source else None
        self.sock = socket.create_connection((host, port), timeout=min(timeout, 5.0),
                                             source_address=source_address)
        self.sock.settimeout(timeout)

    # -- plumbing
    @property
    def local_port(self) -> int:
        return self.sock.getsockname()[1]

    @property
    def local_ip(self) -> str:
        return self.sock.getsockname()[0]

    def __enter__(self) -> "Raw":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def send_line(self, line: str | bytes) -> None:
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.send(line + b"\r\n")

    def _read_line(self, timeout: Optional[float]) -> bytes:
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no complete reply within {timeout or self.timeout} s "
                    f"(received so far: {self.buffer!r})")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except ConnectionResetError:
                chunk = b""
            finally:
                self.sock.settimeout(self.timeout)
            if not chunk:
                raise ConnectionClosed(f"connection closed by the server (pending: {self.buffer!r})")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        assert line.endswith(b"\r"), f"reply line not ended by CRLF: {line!r}"
        return line[:-1]

    # -- replies
    def read_reply(self, timeout: Optional[float] = None) -> Reply:
        """Reads one complete (possibly multi-line) reply."""
        code = None
        texts = []
        while True:
            line = self._read_line(timeout)
            m = _REPLY_LINE.match(line)
            assert m, f"malformed reply line: {line!r}"
            this = int(m.group(1))
            assert code is None or this == code, f"code changed inside a multi-line reply: {line!r}"
            code = this
            texts.append((m.group(3) or b"").decode("utf-8", "replace"))
            if m.group(2) != b"-":
                return Reply(code, "\n".join(texts))

    def read_replies(self, n: int, timeout: Optional[float] = None) -> list[Reply]:
        return [self.read_reply(timeout) for _ in range(n)]

    def cmd(self, line: str | bytes, timeout: Optional[float] = None) -> Reply:
        """Sends one command line and reads its reply."""
        self.send_line(line)
        return self.read_reply(timeout)

    def expect_closed(self, timeout: float = 5.0) -> None:
        """Asserts the server closes the connection within `timeout`, sending nothing more."""
        deadline = time.monotonic() + timeout
        extra = self.buffer
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"connection still open after {timeout} s (unread: {extra!r})")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                assert not extra, f"unexpected bytes before the close: {extra!r}"
                return
            extra += chunk

    def expect_silence(self, seconds: float) -> None:
        """Asserts that nothing arrives (and the connection stays open) for `seconds`."""
        assert not self.buffer, f"unexpected bytes: {self.buffer!r}"
        self.sock.settimeout(seconds)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return
        finally:
            self.sock.settimeout(self.timeout)
        raise AssertionError(f"expected no reply yet, got {chunk!r}" if chunk else
                             "expected no reply yet, but the connection was closed")

    # -- conversations
    def greet(self) -> Reply:
        return self.read_reply().check(220)

    def ehlo(self, name: str = CLIENT_HELO) -> Reply:
        return self.cmd(f"EHLO {name}").check(250)

    @classmethod
    def session(cls, port: int, helo: str = CLIENT_HELO, **kw) -> "Raw":
        """Connected, greeted, and EHLO said."""
        raw = cls(port, **kw)
        try:
            raw.greet()
            raw.ehlo(helo)
        except BaseException:
            raw.close()
            raise
        return raw

    def send_data(self, content: bytes, timeout: Optional[float] = None) -> Reply:
        """Sends message content (dot-stuffed here) and the end of data; returns the reply."""
        self.send(dot_stuff(content))
        return self.read_reply(timeout)

    def transaction(self, sender: str, recipients: Sequence[str], content: bytes,
                    timeout: Optional[float] = None) -> Reply:
        """One transaction, command by command, each reply checked for success; returns the
        reply to the end of data."""
        self.cmd(f"MAIL FROM:<{sender}>").check(250)
        for rcpt in recipients:
            reply = self.cmd(f"RCPT TO:<{rcpt}>")
            assert reply.code == 250, f"RCPT TO:<{rcpt}>: {reply}"
        self.cmd("DATA").check(354)
        return self.send_data(content, timeout)


# --------------------------------------------------------------------------------------- messages
def open_transaction(raw: "Raw", recipients=("b@example.org",)) -> None:
    """MAIL, RCPT(s) and DATA pipelined, each expected to succeed."""
    raw.send("MAIL FROM:<a@example.com>\r\n" + "".join(f"RCPT TO:<{r}>\r\n" for r in recipients)
             + "DATA\r\n")
    replies = raw.read_replies(len(recipients) + 2)
    assert [r.code for r in replies] == [250] * (len(recipients) + 1) + [354], replies


def dot_stuff(content: bytes) -> bytes:
    """RFC 5321 §4.5.2 transparency for CRLF-terminated content, plus the end of data."""
    if content and not content.endswith(b"\r\n"):
        content += b"\r\n"
    if content.startswith(b"."):
        content = b"." + content
    return content.replace(b"\r\n.", b"\r\n..") + b".\r\n"


def new_message_id() -> str:
    return f"<{uuid.uuid4().hex}@client.test>"


def make_message(*, subject: str = "test message", body: str | bytes = "Hello.\r\n",
                 message_id: Optional[str] = None, sender: str = "a@example.com",
                 to: str = "b@example.org", extra_headers: Iterable[str] = ()) -> bytes:
    """A small RFC 5322 message with CRLF line ends (ending in CRLF)."""
    headers = [
        f"From: <{sender}>",
        f"To: <{to}>",
        f"Subject: {subject}",
        f"Message-ID: {message_id or new_message_id()}",
        f"Date: {email.utils.formatdate(localtime=False)}",
        *extra_headers,
    ]
    if isinstance(body, str):
        body = body.encode("utf-8")
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    return ("\r\n".join(headers) + "\r\n\r\n").encode("utf-8") + body


def message_id_of(data: bytes) -> Optional[str]:
    m = re.search(rb"^Message-ID:\s*(<[^>\r\n]*>)", data, re.M | re.I)
    return m.group(1).decode() if m else None


def delivered_once(sink, content: bytes, timeout: float = 5.0) -> bytes:
    """The message with `content`'s Message-ID as the downstream got it; asserts it arrived once."""
    message_id = message_id_of(content)
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in sink.messages if m.data is not None and message_id_of(m.data) == message_id]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(found) == 1, f"message {message_id} reached the downstream {len(found)} times"
    return found[0].data


def never_delivered(sink, content: bytes) -> None:
    """Asserts the message with `content`'s Message-ID is not at the downstream. Called after the
    refusal was answered: the gateway never relays a refused message later, and a short settle
    catches a bug that would."""
    time.sleep(0.1)
    message_id = message_id_of(content)
    assert not [m for m in sink.messages if m.data is not None and message_id_of(m.data) == message_id], (
        f"refused message {message_id} reached the downstream")


def parse_header_block(block: bytes) -> list[tuple[str, str]]:
    """Parses CRLF-terminated header lines (folding allowed) into (name, unfolded value)."""
    assert block, "no header lines"
    assert block.endswith(b"\r\n"), f"header block does not end in CRLF: {block[-80:]!r}"
    headers: list[list] = []
    for line in block[:-2].split(b"\r\n"):
        assert b"\n" not in line and b"\r" not in line, f"bare CR/LF in a header line: {line!r}"
        assert len(line) <= 998, f"header line longer than 998 octets: {line[:80]!r}..."
        if line[:1] in (b" ", b"\t"):
            assert headers, f"continuation line without a header: {line!r}"
            headers[-1][1] += line  # RFC 5322 §2.2.3: unfolding removes the CRLF only
            continue
        name, colon, value = line.partition(b":")
        assert colon and re.fullmatch(rb"[!-9;-~]+", name), f"not a header line: {line!r}"
        headers.append([name, value])
    return [(n.decode("ascii"), v.decode("utf-8", "replace").strip()) for n, v in headers]


def prepended_headers(data: bytes, original: bytes) -> list[tuple[str, str]]:
    """Asserts `data` is `original` with header lines prepended; returns those headers."""
    assert len(data) > len(original) and data.endswith(original), (
        "the downstream did not get the client's bytes unchanged after prepended headers:\n"
        f"  sent     ({len(original)} bytes): {original[:300]!r}\n"
        f"  received ({len(data)} bytes): {data[:600]!r}")
    return parse_header_block(data[: len(data) - len(original)])


_RECEIVED = re.compile(
    r"^from\s+(?P<helo>\S+)\s+\((?:[^\s()\[\]]+\s+)?\[(?:IPv6:)?(?P<ip>[0-9A-Fa-f:.]+)\]\)"
    r"\s+by\s+(?P<by>\S+)(?P<rest>.*);\s*(?P<date>[^;]+)$",
    re.S,
)


def check_received(headers: Sequence[tuple[str, str]], *, helo: str = CLIENT_HELO,
                   ip: str = "127.0.0.1", hostname: str = HOSTNAME) -> None:
    """The first prepended header is the gateway's own hop: `Received: from <helo> ([<ip>]) by
    <hostname> ...; <date>` (RFC 5321 §4.4)."""
    name, value = headers[0]
    assert name.lower() == "received", f"first prepended header is not Received: {headers[0]}"
    m = _RECEIVED.match(value)
    assert m, f"Received header not of the form 'from <helo> ([<ip>]) by <host> ...; <date>': {value!r}"
    assert m.group("helo") == helo, f"Received: from {m.group('helo')}, expected {helo}: {value!r}"
    assert m.group("ip") == ip, f"Received: address {m.group('ip')}, expected {ip}: {value!r}"
    assert m.group("by") == hostname, f"Received: by {m.group('by')}, expected {hostname}: {value!r}"
    date_text = re.sub(r"\s*\([^()]*\)\s*$", "", m.group("date").strip())
    try:
        when = email.utils.parsedate_to_datetime(date_text)
    except (TypeError, ValueError):
        raise AssertionError(f"Received: date is not an RFC 5322 date: {date_text!r}")
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - when).total_seconds()) < 3600, f"Received: date {date_text!r} is not now"


def smtplib_send(port: int, sender: str, recipients: Sequence[str], content: bytes, *,
                 helo: str = CLIENT_HELO, mail_options: Sequence[str] = (), timeout: float = 30.0):
    """Delivers one message with smtplib; returns sendmail()'s dict of refused recipients."""
    with smtplib.SMTP("127.0.0.1", port, local_hostname=helo, timeout=timeout) as client:
        refused = client.sendmail(sender, list(recipients), content, mail_options=list(mail_options))
        client.quit()
    return refused


# --------------------------------------------------------------------------------------- config
def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string for everything the tests write
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")


def toml_table(header: str, values: dict) -> str:
    lines = [header]
    lines += [f"{key} = {toml_value(value)}" for key, value in values.items() if value is not None]
    return "\n".join(lines) + "\n"


DEFAULT = object()


def build_config(*, server: Optional[dict] = None, downstream=DEFAULT, maildir: Optional[dict] = None,
                 stages: Optional[list[dict]] = None, spool: Optional[dict] = None,
                 log: Optional[dict] = None, extra: str = "") -> str:
    """A test config with placeholders {port}, {sink_port} and {tmp} (see Gateway.render).

    Each table's dict is merged over the defaults; a key set to None is left out. downstream=None
    leaves out [downstream] (Maildir delivery into {tmp}/maildir).
    """
    server_values = {
        "listen": ["127.0.0.1:{port}"],
        "hostname": HOSTNAME,
        "domains": DOMAINS,
        "workers": 2,
    }
    server_values.update(server or {})
    parts = [toml_table("[server]", server_values)]
    if downstream is not None:
        values = {"address": "127.0.0.1:{sink_port}", "timeout": "5s"}
        if downstream is not DEFAULT:
            values.update(downstream)
        parts.append(toml_table("[downstream]", values))
    if downstream is None or maildir is not None:
        parts.append(toml_table("[maildir]", {"path": "{tmp}/maildir", **(maildir or {})}))
    parts.append(toml_table("[spool]", {"path": "{tmp}/spool", **(spool or {})}))
    parts.append(toml_table("[log]", {"path": "{tmp}/decisions.jsonl", **(log or {})}))
    for stage in stages if stages is not None else [{"type": "size_limit", "max_bytes": "1MiB"}]:
        parts.append(toml_table("[[stage]]", stage))
    if extra:
        parts.append(extra if extra.endswith("\n") else extra + "\n")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------- gateway
_LIVE_PROCESSES: set = set()


@atexit.register
def _kill_leftovers() -> None:
    # Last resort (e.g. pytest interrupted): never leave a gateway or smtp-sink running.
    for proc in list(_LIVE_PROCESSES):
        if proc.poll() is None:
            proc.kill()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


class Gateway:
    """One mailgate process.

    `config` is TOML text with placeholders: {port} (the listen port, free unless given), {sink_port}
    (the downstream's port) and {tmp} (this gateway's work directory). Use as a context manager,
    or call start() and stop().
    """

    def __init__(self, binary: str, workdir: Path, config: Optional[str] = None, *,
                 port: Optional[int] = None, sink_port: Optional[int] = None,
                 host: str = "127.0.0.1", name: str = "mailgate", args: Sequence[str] = (),
                 cwd: Optional[Path] = None, env: Optional[dict] = None,
                 stdout: Optional[int] = None):
        self.binary = binary
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.sink_port = sink_port
        self.extra_args = list(args)
        self.cwd = Path(cwd) if cwd else self.workdir
        self.env = env
        self.spool_dir = self.workdir / "spool"
        self.spool_dir.mkdir(exist_ok=True)
        self.maildir = self.workdir / "maildir"
        self.log_path = self.workdir / "decisions.jsonl"
        self.stderr_path = self.workdir / "stderr.txt"
        self.stdout_path = self.workdir / "stdout.txt"
        self.stdout_fd = stdout  # e.g. a pipe's write end, instead of stdout.txt
        self.config_path: Optional[Path] = None
        self.proc: Optional[subprocess.Popen] = None
        self._files = []
        self._stopped = False
        if config is not None:
            self.config_path = self.workdir / "mailgate.toml"
            self.write_config(config)

    # -- config
    def render(self, text: str) -> str:
        if "{sink_port}" in text and self.sink_port is None:
            raise ValueError("the config names {sink_port} but no downstream port was given")
        return (text.replace("{port}", str(self.port))
                .replace("{sink_port}", str(self.sink_port))
                .replace("{tmp}", str(self.workdir)))

    def write_config(self, text: str) -> Path:
        """(Re)writes the config file (placeholders rendered); send SIGHUP to reload it."""
        assert self.config_path is not None, "this gateway runs on its embedded default config"
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(self.render(text))
        os.replace(tmp, self.config_path)
        return self.config_path

    # -- process
    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        cmd = [self.binary]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        return cmd + self.extra_args

    def start(self, wait: bool = True) -> "Gateway":
        assert self.proc is None, "already started"
        stdout = open(self.stdout_path, "ab") if self.stdout_fd is None else self.stdout_fd
        stderr = open(self.stderr_path, "ab")
        self._files = [stdout, stderr] if self.stdout_fd is None else [stderr]
        self.proc = subprocess.Popen(self.command(), cwd=self.cwd, stdin=subprocess.DEVNULL,
                                     stdout=stdout, stderr=stderr, env=self.env)
        _LIVE_PROCESSES.add(self.proc)
        if wait:
            try:
                self.wait_ready()
            except BaseException:
                self.kill()
                raise
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Ready = the listen port accepts a connection and greets: with 220, or with the 554 or 421
        a connect-phase stage refuses this client with (the gateway is up either way). The probe
        says QUIT and waits for the close, so it does not hold a connection slot afterwards; it
        leaves a "session" record with an empty helo."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.proc.returncode} before it was ready\n"
                    f"command: {' '.join(self.command())}\nstderr:\n{self.stderr_text()}")
            try:
                with Raw(self.port, self.host, timeout=2.0) as probe:
                    if self.speaks_proxy_protocol:
                        probe.send(b"PROXY UNKNOWN\r\n")  # a health check, as HAProxy sends it
                    greeting = probe.read_reply()
                    if greeting.code not in (220, 421, 554):
                        raise AssertionError(f"not a greeting: {greeting}")
                    if greeting.code != 421:
                        probe.cmd("QUIT")
                    probe.expect_closed(2.0)
                return
            except (OSError, AssertionError):
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{self.name} did not accept connections on {self.host}:{self.port} within "
                        f"{timeout} s\nstderr:\n{self.stderr_text()}")
                time.sleep(0.05)

    @property
    def speaks_proxy_protocol(self) -> bool:
        if self.config_path is None:
            return False
        return re.search(r"^proxy_protocol\s*=\s*true", self.config_path.read_text(), re.M) is not None

    def signal(self, sig: int) -> None:
        assert self.running, f"{self.name} is not running"
        os.kill(self.proc.pid, sig)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        """Waits for the process to exit (after a signal sent by the test); returns the code."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.name} did not exit within {timeout} s\n"
                                 f"stderr:\n{self.stderr_text()}")

    def stop(self, timeout: float = STOP_TIMEOUT, check: bool = True) -> Optional[int]:
        """SIGTERM, wait up to `timeout`, kill on timeout; asserts exit code 0 when `check`."""
        if self.proc is None or self._stopped:
            return self.proc.returncode if self.proc else None
        self._stopped = True
        timed_out = False
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=10)
            _LIVE_PROCESSES.discard(self.proc)
            for f in self._files:
                f.close()
        rc = self.proc.returncode
        if check:
            assert not timed_out, (f"{self.name} did not exit within {timeout} s of SIGTERM (killed)"
                                   f"\nstderr:\n{self.stderr_text()}")
            assert rc == 0, f"{self.name} exited with {rc} after SIGTERM\nstderr:\n{self.stderr_text()}"
        return rc

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if self.proc is not None:
            _LIVE_PROCESSES.discard(self.proc)
        self._stopped = True
        for f in self._files:
            f.close()

    def __enter__(self) -> "Gateway":
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self.stop(check=exc_type is None)
        finally:
            if exc_type is not None:
                print(f"----- {self.name} stderr -----\n{self.stderr_text()}")

    # -- observation
    def stderr_text(self, tail: int = 20000) -> str:
        try:
            data = self.stderr_path.read_bytes()
        except FileNotFoundError:
            return ""
        return data[-tail:].decode("utf-8", "replace")

    def log_records(self) -> list[dict]:
        """The decision log, one parsed JSON object per complete line."""
        try:
            text = self.log_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        records = []
        for line in text.split("\n")[:-1]:  # a last line without "\n" is still being written
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise AssertionError(f"decision log line is not JSON ({e}): {line!r}")
            assert isinstance(record, dict), f"decision log line is not an object: {line!r}"
            records.append(record)
        return records

    def wait_for_records(self, predicate: Callable[[dict], bool], count: int = 1,
                         timeout: float = 5.0) -> list[dict]:
        """Waits until at least `count` log records match; returns the matching ones."""
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.log_records() if predicate(r)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def vm_hwm_kib(self) -> int:
        """Peak resident set size (VmHWM) of the process, in KiB."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        raise AssertionError("no VmHWM in /proc/<pid>/status")

    def maildir_files(self, sub: str = "new") -> list[Path]:
        d = self.maildir / sub
        return sorted(p for p in d.iterdir() if p.is_file()) if d.is_dir() else []


def records_for_client(records: Iterable[dict], port: int) -> list[dict]:
    """The log records of the session whose client port is `port`."""
    out = []
    for r in records:
        client = r.get("client")
        if isinstance(client, dict) and client.get("port") == port:
            out.append(r)
    return out


def run(cmd: Sequence[str], *, timeout: float = 30.0, **kw) -> subprocess.CompletedProcess:
    """A bounded subprocess run with output captured as text."""
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, **kw)


# --------------------------------------------------------------------------------------- smtp-sink
class PostfixSink:
    """Postfix's smtp-sink on 127.0.0.1:<free port>, dumping each message into its own file
    (-d), so a test can count deliveries and read them back. The dump holds smtp-sink's own
    X-* and Received lines, then the message as received (LF line ends, dots unstuffed), then
    an empty line."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.dump_dir = self.workdir / "smtp-sink-dump"
        self.dump_dir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = self.workdir / "smtp-sink.stderr"
        self.port = free_port()
        self.proc: Optional[subprocess.Popen] = None
        self._stderr = None

    def command(self) -> list[str]:
        cmd = [SMTP_SINK, "-h", "postfix-sink.test", "-d", f"{self.dump_dir}/%Y%m%d%H%M%S."]
        if os.geteuid() == 0:
            # smtp-sink refuses to run as root without -u; root keeps the dump directory writable.
            cmd += ["-u", "root"]
        return cmd + [f"127.0.0.1:{self.port}", "256"]

    def start(self) -> "PostfixSink":
        self._stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=self._stderr, stderr=self._stderr)
        _LIVE_PROCESSES.add(self.proc)
        try:
            wait_for_port(self.port, timeout=10.0, alive=lambda: self.proc.poll() is None)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self.proc is not None:
            _LIVE_PROCESSES.discard(self.proc)
        if self._stderr:
            self._stderr.close()

    def files(self) -> list[Path]:
        return sorted(p for p in self.dump_dir.rglob("*") if p.is_file())

    def messages(self) -> list[bytes]:
        return [p.read_bytes() for p in self.files()]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[bytes]:
        """Waits until `count` complete dumps exist (each ends with the empty line smtp-sink
        writes after a message); returns all dumps."""
        deadline = time.monotonic() + timeout
        while True:
            dumps = self.messages()
            complete = [d for d in dumps if d.endswith(b"\n\n")]
            if len(complete) >= count or time.monotonic() > deadline:
                return dumps
            time.sleep(0.05)

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-20000:]
        except FileNotFoundError:
            return ""


def postfix_dump_message(dump: bytes) -> bytes:
    """The message part of an smtp-sink dump: after smtp-sink's own 3-line Received header."""
    m = re.search(rb"^Received: from .*\n\tby .*\(smtp-sink\).*\n\t.*\n", dump, re.M)
    assert m, f"not an smtp-sink dump: {dump[:300]!r}"
    return dump[m.end():]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tool_available(path: str) -> bool:
    return os.path.exists(path) and os.access(path, os.X_OK) or shutil.which(path) is not None
