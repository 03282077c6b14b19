"""A real MTA as the client: Postfix's own SMTP client relaying through the gateway.

design.md §4 ("How real senders talk to a gateway") describes what Postfix 3.7's SMTP client does:
MAIL, RCPT and DATA in one write, SIZE= on every MAIL, BODY=8BITMIME for 8-bit mail, QUIT in the
same write as the final dot, connections reused with RSET between transactions, a 4xx keeps the
message queued, a 5xx bounces it. These tests let the real thing do it:

    sendmail -C DIR ─▶ private Postfix (pickup, cleanup, qmgr, smtp) ─▶ gateway ─▶ sink (sink.py)
                       relayhost = [127.0.0.1]:<gateway port>

Each test starts its own Postfix instance with `postfix -c DIR/etc start`: main.cf and master.cf
written here, queue, data directory and log file (`maillog_file`, through postlogd) all in DIR.
The system's instance (/etc/postfix, /var/spool/postfix) is never written or started; Postfix only
reads its read-only support files from /etc/postfix (postfix-files, dynamicmaps.cf). The instance
is stopped after the test, also when it fails: `postfix stop`, then SIGKILL for any process of that
instance still alive (found by its working directory, which Postfix daemons set to their queue
directory, and by descent from its master); then DIR is removed.

DIR is a fresh directory in the system's temporary folder (/tmp/mailgate-postfix-*), not in the
test's pytest folder: Postfix's daemons run as the user `postfix`, which must be able to reach DIR
(the master opens DIR/data/master.lock with that user's rights), and pytest keeps its folders 0700
and resets /tmp/pytest-of-<user> to 0700 whenever another pytest session starts, so a search bit
added there does not last. What a person needs after a failure is copied into the test's folder
(tmp_path/postfix-N/: main.cf, master.cf, maillog) when the instance stops.

The SMTP client's side of each dialogue is in the instance's maillog (debug_peer_list = 127.0.0.1
logs every command sent and every reply line received); assertion messages quote it.

Needs root (Postfix's master runs as root and its daemons as the `postfix` user) and the Debian
package postfix; the tests skip only when /usr/sbin/postfix is missing.
"""

from __future__ import annotations

import atexit
import grp
import json
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import pytest

from harness import (
    DEFAULT_MAX_BYTES,
    check_received,
    free_port,
    make_message,
    message_id_of,
    prepended_headers,
    tool_available,
)

POSTFIX = "/usr/sbin/postfix"
SENDMAIL = "/usr/sbin/sendmail"  # Postfix's sendmail(1) (Debian package postfix)
POSTQUEUE = "/usr/sbin/postqueue"
POSTFIX_DAEMON_DIRECTORY = "/usr/lib/postfix/sbin"  # Debian's paths (postconf -d ...)
POSTFIX_SHLIB_DIRECTORY = "/usr/lib/postfix"
POSTFIX_META_DIRECTORY = "/etc/postfix"  # postfix-files and dynamicmaps.cf: read only, never written
POSTFIX_MAIL_OWNER = "postfix"
POSTFIX_SETGID_GROUP = "postdrop"

POSTFIX_HOSTNAME = "postfix.test.example"  # myhostname, so also the EHLO name the gateway hears
SENDER = "sender@example.com"  # bounces to it are discarded inside Postfix (transport_maps)
RCPT = "rcpt@example.org"
NOBODY = "nobody@example.org"  # refused by the downstream with 550 5.1.1 in test 2

START_TIMEOUT = 30.0  # postfix start (its check-warn runs find over the config tree)
STOP_TIMEOUT = 15.0  # postfix stop, then the instance's processes must be gone
DELIVERY_TIMEOUT = 40.0  # Postfix logs a final status for a recipient this soon

pytestmark = [
    pytest.mark.time_limit(90),
    pytest.mark.skipif(not tool_available(POSTFIX),
                       reason=f"{POSTFIX} is not installed (Debian package postfix)"),
]


# ------------------------------------------------------------------------------- the instance
# Everything in main.cf that is not a path. Retries are made slow on purpose: a message Postfix
# defers stays deferred until a test flushes the queue (postqueue -f), so "exactly once" does not
# depend on when Postfix's own retry happens to run.
MAIN_CF_DEFAULTS: dict[str, str] = {
    "compatibility_level": "3.6",
    "mail_owner": POSTFIX_MAIL_OWNER,
    "setgid_group": POSTFIX_SETGID_GROUP,
    "daemon_directory": POSTFIX_DAEMON_DIRECTORY,
    "command_directory": "/usr/sbin",
    "shlib_directory": POSTFIX_SHLIB_DIRECTORY,
    "meta_directory": POSTFIX_META_DIRECTORY,
    "myhostname": POSTFIX_HOSTNAME,
    "mydomain": "test.example",
    "myorigin": "$myhostname",
    "mydestination": "",
    "local_recipient_maps": "",
    "alias_maps": "",
    "alias_database": "",
    "relay_domains": "",
    "inet_interfaces": "127.0.0.1",
    "inet_protocols": "ipv4",
    "smtp_dns_support_level": "disabled",
    "smtp_host_lookup": "native",
    "smtp_tls_security_level": "none",
    "biff": "no",
    "append_dot_mydomain": "no",
    # No postmaster notices; the bounce notices to the sender go nowhere (discard transport), so
    # the only mail Postfix sends to the gateway is what a test submitted.
    "notify_classes": "",
    "transport_maps": "inline:{example.com=discard:}",
    "delay_warning_time": "0",
    # Retry and queue timing.
    "queue_run_delay": "300s",
    "minimal_backoff_time": "300s",
    "maximal_backoff_time": "600s",
    "maximal_queue_lifetime": "1d",
    "bounce_queue_lifetime": "1d",
    # Delivery: no rate delay; two parallel connections at most, so that a backlog builds up and
    # the SMTP client caches and reuses its connections (smtp_connection_cache_on_demand).
    "default_destination_rate_delay": "0",
    "smtp_destination_concurrency_limit": "2",
    "smtp_connection_cache_on_demand": "yes",
    # A gateway that hangs shows as a deferral inside the test's time limit, not after 5 minutes.
    "smtp_connect_timeout": "10s",
    "smtp_helo_timeout": "30s",
    "smtp_mail_timeout": "30s",
    "smtp_rcpt_timeout": "30s",
    "smtp_data_init_timeout": "30s",
    "smtp_data_xfer_timeout": "30s",
    "smtp_data_done_timeout": "30s",
    "smtp_quit_timeout": "30s",
    "smtp_rset_timeout": "20s",
    # Log the SMTP client's dialogue with the gateway ("> ...: MAIL FROM:<...>", "< ...: 250 ...").
    "debug_peer_list": "127.0.0.1",
    "debug_peer_level": "1",
}

# Postfix's default master.cf (Debian's /usr/share/postfix/master.cf.dist) cut down to what an
# instance that only relays needs: no smtpd, no local delivery, no TLS, and nothing chrooted (a
# chroot would need copies of /etc files inside the queue directory).
MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command + args
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

# "Nov 25 08:58:11 postfix postfix/smtp[16169]: C8CA1A740F4: to=<rcpt@example.org>,
#  relay=127.0.0.1[127.0.0.1]:2526, conn_use=2, delay=0.31, delays=0.26/0.01/0/0.04, dsn=2.0.0,
#  status=sent (250 2.0.0 Ok: queued as S1M1)"
_STATUS = re.compile(
    r"postfix/(?P<service>[\w-]+)\[\d+\]: (?P<qid>[0-9A-Za-z]+): to=<(?P<to>[^>]*)>,"
    r"(?: orig_to=<[^>]*>,)? relay=(?P<relay>[^,]+),(?: conn_use=(?P<conn_use>\d+),)?"
    r" delay=[^,]+, delays=[^,]+, dsn=(?P<dsn>[0-9.]+), status=(?P<status>\w+) \((?P<text>.*)\)$")
_MESSAGE_ID = re.compile(r"postfix/cleanup\[\d+\]: (?P<qid>[0-9A-Za-z]+): message-id=(?P<mid><[^>]*>)")
_LOG_NOISE = re.compile(
    r"\]: (smtp_stream_setup|send attr |input attribute |[\w/]+ socket: wanted attribute|"
    r"connect to subsystem|vstream_tweak|fd=\d+: stream buffer|smtp_session_(?:activate|passivate)|"
    r"match_list_match|match_hostname|flush_add|flush_send|dict_|maps_find|mail_addr_find|"
    r"event_|ctable_|smtp_connect_|smtp_addr_|smtp_find_self|name_mask)")
_DIALOGUE = re.compile(r"postfix/smtp\[(?P<pid>\d+)\]: (?P<dir>[<>]) 127\.0\.0\.1\[127\.0\.0\.1\]"
                       r":(?P<port>\d+): (?P<line>.*)$")


@dataclass
class Status:
    """One final-or-deferred status line of Postfix's delivery agents."""

    service: str
    qid: str
    to: str
    relay: str
    conn_use: int
    dsn: str
    status: str  # sent | bounced | deferred | ...
    text: str  # the reason: the remote reply and "(in reply to ... command)", or Postfix's own

    def __str__(self) -> str:
        return (f"{self.qid} to=<{self.to}> relay={self.relay} dsn={self.dsn} status={self.status}"
                f" ({self.text})")


_LIVE_INSTANCES: set = set()


@atexit.register
def _stop_leftover_instances() -> None:
    # Last resort (e.g. pytest interrupted): never leave a private Postfix running.
    for instance in list(_LIVE_INSTANCES):
        try:
            instance.stop()
        except Exception:
            pass


def _check_searchable_by(path: Path, uid: int, gid: int) -> None:
    """Postfix's master opens data_directory/master.lock with the mail owner's rights, and its
    daemons run as that user: every directory down to the instance must be searchable by it."""
    for directory in [path, *path.parents]:
        st = directory.stat()
        mode = stat.S_IMODE(st.st_mode)
        if not (mode & 0o001 or (st.st_uid == uid and mode & 0o100)
                or (st.st_gid == gid and mode & 0o010)):
            pytest.fail(f"{directory} is not searchable by the user {POSTFIX_MAIL_OWNER!r}, so a "
                        f"private Postfix cannot run in {path}: point TMPDIR to a folder it can reach")


class PostfixInstance:
    """A private Postfix in DIR (a fresh /tmp/mailgate-postfix-*): DIR/etc (main.cf, master.cf),
    DIR/queue, DIR/data, DIR/maillog. `record_dir` (in the test's folder) gets copies of the
    configuration and the log when the instance stops; DIR itself is removed then."""

    def __init__(self, record_dir: Path, relay_port: int, settings: Optional[dict] = None):
        self.record_dir = Path(record_dir)
        self.root = Path(tempfile.mkdtemp(prefix="mailgate-postfix-")).resolve()
        _LIVE_INSTANCES.add(self)  # from here on, stop() cleans up (also at exit)
        os.chmod(self.root, 0o755)
        self.config_dir = self.root / "etc"
        self.queue_dir = self.root / "queue"
        self.data_dir = self.root / "data"
        self.maillog = self.root / "maillog"
        self.relay_port = relay_port
        self.settings = {**MAIN_CF_DEFAULTS, **(settings or {})}
        self.started = False
        self.stopped = False
        self.master_pid: Optional[int] = None
        self.env = {**os.environ, "MAIL_CONFIG": str(self.config_dir)}

    # -- set-up
    def prepare(self) -> "PostfixInstance":
        """Writes the configuration and lets `postfix check` create the queue directories."""
        if os.geteuid() != 0:
            pytest.fail("a private Postfix instance needs root: its master runs as root and its "
                        f"daemons as {POSTFIX_MAIL_OWNER!r}")
        try:
            owner = pwd.getpwnam(POSTFIX_MAIL_OWNER)
            grp.getgrnam(POSTFIX_SETGID_GROUP)
        except KeyError as e:
            pytest.fail(f"the Postfix user or group is missing ({e}): is the postfix package "
                        "installed properly?")
        for d in (self.config_dir, self.queue_dir, self.data_dir):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o755)
        # queue_directory and config_directory: root-owned, not group/other writable (postfix
        # check); data_directory: owned by the mail owner, which keeps master.lock there.
        os.chown(self.data_dir, owner.pw_uid, owner.pw_gid)
        _check_searchable_by(self.root, owner.pw_uid, owner.pw_gid)
        self.write_config()
        result = self.command([POSTFIX, "-c", str(self.config_dir), "check"], timeout=START_TIMEOUT)
        assert result.returncode == 0, f"postfix check failed:\n{result.stdout}{result.stderr}"
        return self

    def main_cf(self) -> str:
        paths = {
            "config_directory": str(self.config_dir),
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": str(self.root),  # the default allows /var and /dev/stdout only
            "relayhost": f"[127.0.0.1]:{self.relay_port}",
        }
        values = {**paths, **self.settings}
        return "".join(f"{key} = {value}\n" for key, value in values.items())

    def write_config(self) -> None:
        (self.config_dir / "main.cf").write_text(self.main_cf())
        (self.config_dir / "master.cf").write_text(MASTER_CF)

    def command(self, cmd: Sequence[str], *, input: Optional[bytes] = None,
                timeout: float = 30.0) -> subprocess.CompletedProcess:
        """Runs a Postfix command for this instance (bounded; output captured as text)."""
        result = subprocess.run(list(cmd), input=input if input is not None else b"",
                                capture_output=True, timeout=timeout, env=self.env)
        return subprocess.CompletedProcess(result.args, result.returncode,
                                           result.stdout.decode("utf-8", "replace"),
                                           result.stderr.decode("utf-8", "replace"))

    # -- start and stop
    def start(self) -> "PostfixInstance":
        self.started = True
        result = self.command([POSTFIX, "-c", str(self.config_dir), "start"], timeout=START_TIMEOUT)
        assert result.returncode == 0, (f"postfix start failed:\n{result.stdout}{result.stderr}\n"
                                        f"maillog:\n{self.log_tail()}")
        pid_file = self.queue_dir / "pid" / "master.pid"
        deadline = time.monotonic() + 10
        while self.master_pid is None:
            try:
                self.master_pid = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                assert time.monotonic() < deadline, f"no {pid_file} after postfix start"
                time.sleep(0.05)
        return self

    def processes(self) -> set[int]:
        """The processes of this instance: the master and its descendants, and anything whose
        working directory is inside the instance (Postfix daemons chdir to the queue)."""
        parents: dict[int, int] = {}
        ours: set[int] = set()
        root = str(self.root)
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            pid = int(entry)
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                parents[pid] = int(fields[1])
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except (OSError, IndexError, ValueError):
                continue
            if cwd == root or cwd.startswith(root + "/"):
                ours.add(pid)
        if self.master_pid is not None and self.master_pid in parents:
            ours.add(self.master_pid)
        changed = True
        while changed:
            children = {pid for pid, ppid in parents.items() if ppid in ours} - ours
            changed = bool(children)
            ours |= children
        return ours

    def stop(self) -> None:
        """`postfix stop`, SIGKILL for whatever of this instance is still alive, the configuration
        and the log copied to record_dir, DIR removed."""
        if self.stopped:
            return
        self.stopped = True
        if self.started:
            try:
                self.command([POSTFIX, "-c", str(self.config_dir), "stop"], timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
            deadline = time.monotonic() + STOP_TIMEOUT
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.1)
        leftovers = self.processes()
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while leftovers and time.monotonic() < deadline:
            leftovers = {pid for pid in leftovers if os.path.exists(f"/proc/{pid}")}
            time.sleep(0.05)
        try:
            self.record_dir.mkdir(parents=True, exist_ok=True)
            for path in (self.config_dir / "main.cf", self.config_dir / "master.cf", self.maillog):
                if path.exists():
                    shutil.copy2(path, self.record_dir / path.name)
        except OSError:
            pass  # the record is a courtesy; cleaning up is not
        shutil.rmtree(self.root, ignore_errors=True)
        _LIVE_INSTANCES.discard(self)

    # -- mail
    def submit(self, sender: str, recipients: Sequence[str], content: bytes) -> None:
        """Postfix's sendmail(1): the message (CRLF or LF line ends) into this instance's maildrop.
        Works before start too: pickup takes it when the instance starts. -i: a line with a lone
        dot is content, not the end of input."""
        result = self.command([SENDMAIL, "-C", str(self.config_dir), "-i", "-f", sender, "--",
                               *recipients], input=content.replace(b"\r\n", b"\n"))
        assert result.returncode == 0, f"sendmail failed ({result.returncode}): {result.stderr}"

    def queue(self) -> list[dict]:
        """`postqueue -j`: one JSON object per queued message (queue_name, queue_id, sender,
        recipients with their delay_reason)."""
        result = self.command([POSTQUEUE, "-c", str(self.config_dir), "-j"])
        assert result.returncode == 0, f"postqueue -j failed: {result.stderr}"
        return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]

    def queue_listing(self) -> str:
        """`postqueue -p`, for people reading a failure."""
        result = self.command([POSTQUEUE, "-c", str(self.config_dir), "-p"])
        return result.stdout + result.stderr

    def flush(self) -> None:
        result = self.command([POSTQUEUE, "-c", str(self.config_dir), "-f"])
        assert result.returncode == 0, f"postqueue -f failed: {result.stderr}"

    # -- the log
    def log_lines(self) -> list[str]:
        try:
            text = self.maillog.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return []
        return text.split("\n")[:-1]  # a last line without "\n" is still being written

    def log_tail(self, lines: int = 150) -> str:
        """The end of the log without the internals that debug_peer_level also logs."""
        kept = [line for line in self.log_lines() if not _LOG_NOISE.search(line)]
        return "\n".join(kept[-lines:]) or "(empty)"

    def statuses(self) -> list[Status]:
        out = []
        for line in self.log_lines():
            m = _STATUS.search(line)
            if m:
                out.append(Status(m["service"], m["qid"], m["to"], m["relay"],
                                  int(m["conn_use"] or 1), m["dsn"], m["status"], m["text"]))
        return out

    def queue_id(self, message_id: str, timeout: float = 15.0) -> str:
        """The queue id cleanup gave the message with this Message-ID."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_lines():
                m = _MESSAGE_ID.search(line)
                if m and m["mid"] == message_id:
                    return m["qid"]
            assert time.monotonic() < deadline, self.explain(f"no queue id for {message_id}")
            time.sleep(0.05)

    def wait_for_statuses(self, predicate: Callable[[Status], bool], count: int = 1,
                          timeout: float = DELIVERY_TIMEOUT) -> list[Status]:
        """Waits until `count` status lines match; returns the matching ones (asserts on time-out)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [s for s in self.statuses() if predicate(s)]
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, self.explain(
                f"expected {count} matching status lines within {timeout} s, found {len(found)}")
            time.sleep(0.1)

    def wait_for_log(self, pattern: str, timeout: float = 10.0) -> str:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_lines():
                if regex.search(line):
                    return line
            assert time.monotonic() < deadline, self.explain(f"no maillog line matches {pattern!r}")
            time.sleep(0.05)

    def wait_queue_empty(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            queue = self.queue()
            if not queue:
                return
            assert time.monotonic() < deadline, self.explain(
                f"the queue is not empty after {timeout} s: {queue}")
            time.sleep(0.1)

    def dialogue(self) -> list[tuple[int, str, str]]:
        """The SMTP client's dialogue with the relay host: (smtp pid, ">" or "<", line)."""
        out = []
        for line in self.log_lines():
            m = _DIALOGUE.search(line)
            if m and int(m["port"]) == self.relay_port:
                out.append((int(m["pid"]), m["dir"], m["line"]))
        return out

    def ehlo_keywords(self) -> set[str]:
        """The EHLO keywords the relay host advertised to Postfix (from the logged replies)."""
        keywords = set()
        in_ehlo: dict[int, bool] = {}
        for pid, direction, line in self.dialogue():
            if direction == ">":
                in_ehlo[pid] = line.upper().startswith("EHLO ")
            elif in_ehlo.get(pid) and line.startswith("250"):
                words = line[4:].split()
                if words and not line.startswith("250-" + POSTFIX_HOSTNAME):
                    keywords.add(" ".join(words).upper())
        return keywords

    def explain(self, what: str) -> str:
        """An assertion message with what Postfix saw: its queue and its log."""
        return (f"{what}\n----- postqueue -p -----\n{self.queue_listing()}"
                f"----- maillog (tail; whole in {self.record_dir / 'maillog'}) -----\n"
                f"{self.log_tail()}")


@pytest.fixture
def postfix(tmp_path, start_gateway):
    """Factory: postfix(relay_port, settings=None, start=True) -> a prepared (and started)
    PostfixInstance relaying to 127.0.0.1:relay_port. Depends on start_gateway so that Postfix
    (and the connections it caches) stops before the gateways and sinks do."""
    instances: list[PostfixInstance] = []

    def make(relay_port: int, settings: Optional[dict] = None, *,
             start: bool = True) -> PostfixInstance:
        instance = PostfixInstance(tmp_path / f"postfix-{len(instances) + 1}", relay_port, settings)
        instances.append(instance)
        instance.prepare()
        if start:
            instance.start()
        return instance

    yield make
    for instance in reversed(instances):
        instance.stop()


# ------------------------------------------------------------------------------- helpers
def bare(address) -> str:
    return str(address or "").strip("<>")


def postfix_message(index: int, *, subject: str = "via postfix", body: Optional[str] = None,
                    to: str = RCPT) -> bytes:
    """A message as submitted to sendmail, with every header cleanup would otherwise add (From,
    Date, Message-ID), so that what reaches the sink is this message after prepended headers.
    The body has what can go wrong on the way: 8-bit text (Postfix sends BODY=8BITMIME only to a
    server that advertised 8BITMIME, and converts to quoted-printable otherwise), lines starting
    with dots and a line that is just a dot (dot-stuffed by Postfix, unstuffed by the gateway,
    stuffed again towards the downstream), a tab, trailing spaces, an empty line, a 990-octet line."""
    if body is None:
        body = (f"Message {index} through Postfix and the gateway.\r\n"
                "Ünïcödé 8-bit text ✓\r\n"
                ".A line starting with a dot\r\n"
                "..Two dots\r\n"
                ".\r\n"
                "\tTabbed line with trailing spaces   \r\n"
                "\r\n"
                + "x" * 990 + "\r\n"
                f"Last line of message {index}\r\n")
    return make_message(subject=f"{subject} {index}", body=body, sender=SENDER, to=to,
                        message_id=f"<postfix-{index}-{time.monotonic_ns()}@client.test>",
                        extra_headers=["MIME-Version: 1.0",
                                       "Content-Type: text/plain; charset=utf-8",
                                       "Content-Transfer-Encoding: 8bit"])


def check_arrived_intact(data: bytes, content: bytes) -> None:
    """What the downstream got is the submitted message after prepended headers: the gateway's
    Received (first, naming Postfix's EHLO name) and Postfix's own Received."""
    headers = prepended_headers(data, content)
    check_received(headers, helo=POSTFIX_HOSTNAME)
    assert any(name.lower() == "received" and f"by {POSTFIX_HOSTNAME} (Postfix" in value
               for name, value in headers[1:]), f"no Received header of Postfix's: {headers}"


def is_sender_transaction(record: dict) -> bool:
    """A transaction record (not a record of a refused command) of a message from SENDER."""
    return (record.get("type", "transaction") == "transaction"
            and bare(record.get("sender")) == SENDER)


def sender_records(gateway) -> list[dict]:
    return [r for r in gateway.log_records() if is_sender_transaction(r)]


def recipient_replies(record: dict) -> dict[str, str]:
    return {bare(r.get("address")): str(r.get("reply", ""))
            for r in record.get("recipients", []) if isinstance(r, dict)}


def pipelined_transactions(pf: PostfixInstance) -> int:
    """How many transactions Postfix sent as MAIL, RCPT..., DATA in one go (no reply read in
    between: RFC 2920 pipelining, the way design.md §4 says real senders talk)."""
    count = 0
    sent: dict[int, list[str]] = {}  # per smtp process: the verbs sent since the last reply read
    for pid, direction, line in pf.dialogue():
        if direction == "<":
            sent[pid] = []
            continue
        verbs = sent.setdefault(pid, [])
        verbs.append(line.split(" ", 1)[0].upper())
        if verbs[-1] == "DATA" and "MAIL" in verbs:
            group = verbs[verbs.index("MAIL"):]
            if len(group) >= 3 and all(v == "RCPT" for v in group[1:-1]):
                count += 1
    return count


def quit_with_the_dot(pf: PostfixInstance) -> int:
    """How often Postfix sent QUIT right after the final dot, before reading the dot's reply."""
    count = 0
    last: dict[int, str] = {}
    for pid, direction, line in pf.dialogue():
        if direction == ">":
            if line == "QUIT" and last.get(pid) == ".":
                count += 1
            last[pid] = line
    return count


# ------------------------------------------------------------------------------- tests
MESSAGES = 20


def test_postfix_delivers_every_message_exactly_once(start_gateway, sink, postfix):
    """20 messages queued before Postfix starts: it delivers them over two parallel, reused
    connections (conn_use > 1), MAIL/RCPT/DATA pipelined; every message reaches the sink exactly
    once, byte for byte after the prepended headers; one accepted decision per message."""
    gateway = start_gateway(sink=sink)
    pf = postfix(gateway.port, start=False)
    contents = [postfix_message(i) for i in range(MESSAGES)]
    for content in contents:
        pf.submit(SENDER, [RCPT], content)
    pf.start()  # pickup finds all 20 at once: a backlog, so the SMTP client caches connections

    # One status line per message: retries are minutes away, so a deferral shows up here too.
    statuses = pf.wait_for_statuses(lambda s: s.to == RCPT, MESSAGES)
    not_sent = [str(s) for s in statuses if s.status != "sent"]
    assert not not_sent, pf.explain(f"Postfix did not deliver everything: {not_sent}")
    relay = f"127.0.0.1[127.0.0.1]:{gateway.port}"
    for s in statuses:
        assert s.relay == relay and s.dsn.startswith("2."), pf.explain(f"unexpected status: {s}")
    deferred = [str(s) for s in pf.statuses() if s.status == "deferred"]
    assert not deferred, pf.explain(f"the gateway made Postfix defer: {deferred}")
    assert len({s.qid for s in statuses}) == MESSAGES, pf.explain("a queue id was logged twice")
    pf.wait_queue_empty()

    sink.wait_for_messages(MESSAGES, timeout=10)
    time.sleep(0.5)  # a duplicate, if any, would be there by now
    deliveries = sink.messages
    expected = {message_id_of(c): c for c in contents}
    arrived = [message_id_of(d.content()) for d in deliveries]
    duplicates = sorted({m for m in arrived if arrived.count(m) > 1})
    assert not duplicates, f"delivered more than once: {duplicates}"
    missing = sorted(set(expected) - set(arrived))
    assert not missing and len(deliveries) == MESSAGES, pf.explain(
        f"{len(deliveries)} of {MESSAGES} messages reached the sink; missing: {missing}")
    for d in deliveries:
        assert d.mail_from == SENDER and d.rcpts == [RCPT], (d.mail_from, d.rcpts)
        check_arrived_intact(d.content(), expected[message_id_of(d.content())])

    gateway.wait_for_records(is_sender_transaction, MESSAGES)
    time.sleep(0.3)  # an extra record, if any, would be there by now
    records = sender_records(gateway)
    assert len(records) == MESSAGES, (
        f"expected {MESSAGES} decision records for {SENDER}, got {len(records)}: {records}")
    actions = sorted({str(r.get("action")) for r in records})
    assert actions == ["accept"], f"decision actions {actions}, expected only accept: {records}"
    for r in records:
        assert recipient_replies(r).get(RCPT, "").startswith("250"), r

    # What Postfix did with the gateway: ESMTP PIPELINING, cached connections used again (with
    # RSET), and so several transactions per gateway session.
    pf.wait_for_log(r"Using ESMTP PIPELINING")
    assert pipelined_transactions(pf) == MESSAGES, pf.explain(
        f"{pipelined_transactions(pf)} of {MESSAGES} transactions had MAIL/RCPT/DATA pipelined")
    assert max(s.conn_use for s in statuses) > 1, pf.explain("Postfix never reused a connection")
    ports = {r.get("client", {}).get("port") for r in records}
    assert len(ports) < MESSAGES, f"every transaction came on its own connection: {sorted(ports)}"
    assert any(line == "RSET" for _, direction, line in pf.dialogue() if direction == ">"), (
        pf.explain("Postfix never sent RSET on a reused connection"))


def test_recipient_refused_downstream_bounces_and_the_other_is_delivered(start_gateway, make_sink,
                                                                         postfix):
    """The downstream refuses one of two recipients with 550 5.1.1: Postfix bounces that one at
    once (not deferred, out of the queue), the other recipient gets the message."""
    sink = make_sink(reject_rcpts={NOBODY: "550 5.1.1 <nobody@example.org>: User unknown"})
    gateway = start_gateway(sink=sink)
    pf = postfix(gateway.port)
    content = postfix_message(1, subject="one refused recipient")
    pf.submit(SENDER, [RCPT, NOBODY], content)
    qid = pf.queue_id(message_id_of(content))

    statuses = pf.wait_for_statuses(lambda s: s.qid == qid and s.to in (RCPT, NOBODY), 2)
    by_rcpt = {s.to: s for s in statuses}
    assert len(statuses) == 2, pf.explain(f"more than one status per recipient: {statuses}")
    refused = by_rcpt[NOBODY]
    assert refused.status == "bounced" and refused.dsn == "5.1.1", pf.explain(
        f"the refused recipient was not bounced with 5.1.1: {refused}")
    assert "550 5.1.1" in refused.text and "RCPT TO" in refused.text, pf.explain(
        f"Postfix did not hear the downstream's 550 5.1.1 at RCPT: {refused}")
    assert by_rcpt[RCPT].status == "sent", pf.explain(f"the other recipient: {by_rcpt[RCPT]}")
    pf.wait_for_log(rf"{qid}: sender non-delivery notification")
    pf.wait_queue_empty()  # not deferred: gone from the queue
    assert not [s for s in pf.statuses() if s.status == "deferred"], pf.explain("something deferred")

    [delivery] = sink.wait_for_messages(1)
    time.sleep(0.3)
    assert len(sink.messages) == 1, f"delivered {len(sink.messages)} times"
    assert delivery.rcpts == [RCPT], delivery.rcpts
    check_arrived_intact(delivery.content(), content)

    [record] = gateway.wait_for_records(is_sender_transaction)
    assert record.get("action") == "accept", record
    replies = recipient_replies(record)
    assert replies.get(RCPT, "").startswith("250"), record
    assert replies.get(NOBODY, "").startswith("550 5.1.1"), record
    # One message, no backlog: the connection is not cached, QUIT goes with the final dot, and
    # the gateway still answers the dot first.
    assert quit_with_the_dot(pf) >= 1, pf.explain("Postfix never sent QUIT with the final dot")


def test_downstream_down_keeps_the_message_deferred_until_it_is_back(start_gateway, make_sink,
                                                                    postfix):
    """Nothing listens where the gateway relays: it answers 451 4.4.1, Postfix keeps the message
    in its deferred queue and nothing is delivered anywhere. Once the downstream is back and the
    queue is flushed, the message arrives exactly once."""
    downstream_port = free_port()  # nothing listens here yet
    gateway = start_gateway(downstream_port=downstream_port)
    pf = postfix(gateway.port)
    content = postfix_message(1, subject="downstream down")
    pf.submit(SENDER, [RCPT], content)
    qid = pf.queue_id(message_id_of(content))

    [deferral] = pf.wait_for_statuses(lambda s: s.qid == qid)
    assert deferral.status == "deferred" and deferral.dsn.startswith("4."), pf.explain(
        f"expected a deferral, got: {deferral}")
    assert "451 4.4.1" in deferral.text, pf.explain(
        f"the gateway did not answer 451 4.4.1 with the downstream down: {deferral}")
    queue = pf.queue()
    assert [(q.get("queue_id"), q.get("queue_name")) for q in queue] == [(qid, "deferred")], (
        pf.explain(f"the message is not (only) in the deferred queue: {queue}"))
    reasons = [r.get("delay_reason", "") for r in queue[0].get("recipients", [])]
    assert len(reasons) == 1 and "451 4.4.1" in reasons[0], pf.explain(f"delay reason: {reasons}")

    records = gateway.wait_for_records(is_sender_transaction)
    assert records and all(r.get("action") == "tempfail" for r in records), (
        f"expected tempfail decisions only: {records}")
    assert recipient_replies(records[0]).get(RCPT, "").startswith("451"), records[0]

    # The downstream comes back; Postfix's own retry is minutes away (minimal_backoff_time), so
    # what delivers it is the flush.
    sink = make_sink(port=downstream_port)
    assert not sink.messages
    pf.flush()
    sent = pf.wait_for_statuses(lambda s: s.qid == qid and s.status != "deferred")
    assert [s.status for s in sent] == ["sent"], pf.explain(f"after the flush: {sent}")
    pf.wait_queue_empty()
    [delivery] = sink.wait_for_messages(1)
    time.sleep(0.5)
    assert len(sink.messages) == 1, f"delivered {len(sink.messages)} times"
    assert delivery.mail_from == SENDER and delivery.rcpts == [RCPT]
    check_arrived_intact(delivery.content(), content)
    accepted = [r for r in sender_records(gateway) if r.get("action") == "accept"]
    assert len(accepted) == 1, f"expected one accepted decision after the flush: {sender_records(gateway)}"


def test_message_over_the_size_limit_bounces_and_is_never_delivered(start_gateway, sink, postfix):
    """A message over the gateway's size_limit (1 MiB in the test config): Postfix reads SIZE in
    the EHLO reply and does not send it (or sends it and hears 552 5.3.4): it bounces with 5.3.4,
    at once, and nothing reaches the downstream. A small message after it is delivered."""
    gateway = start_gateway(sink=sink)
    pf = postfix(gateway.port)
    big = postfix_message(1, subject="too big", body=("z" * 78 + "\r\n") * 20000)  # 1.6 MB
    assert len(big) > DEFAULT_MAX_BYTES * 1.5
    pf.submit(SENDER, [RCPT], big)
    big_qid = pf.queue_id(message_id_of(big))

    [status] = pf.wait_for_statuses(lambda s: s.qid == big_qid)
    assert status.status == "bounced" and status.dsn == "5.3.4", pf.explain(
        f"the big message was not bounced with 5.3.4: {status}")
    keywords = pf.ehlo_keywords()
    if f"SIZE {DEFAULT_MAX_BYTES}" in keywords:
        # Postfix's own refusal (smtp_proto.c): it never sent MAIL for it.
        assert "exceeds size limit" in status.text, pf.explain(
            f"SIZE {DEFAULT_MAX_BYTES} was advertised, yet Postfix sent the message: {status}")
    else:
        assert "552 5.3.4" in status.text, pf.explain(
            f"no SIZE {DEFAULT_MAX_BYTES} in the EHLO reply ({sorted(keywords)}), and the gateway "
            f"did not refuse the message with 552 5.3.4: {status}")
    pf.wait_for_log(rf"{big_qid}: sender non-delivery notification")

    small = postfix_message(2, subject="small one after the big one")
    pf.submit(SENDER, [RCPT], small)
    small_qid = pf.queue_id(message_id_of(small))
    [small_status] = pf.wait_for_statuses(lambda s: s.qid == small_qid)
    assert small_status.status == "sent", pf.explain(f"the small message: {small_status}")
    pf.wait_queue_empty()

    [delivery] = sink.wait_for_messages(1)
    time.sleep(0.3)
    assert len(sink.messages) == 1, [message_id_of(d.content()) for d in sink.messages]
    check_arrived_intact(delivery.content(), small)
    records = sender_records(gateway)
    accepted = [r for r in records if r.get("action") == "accept"]
    assert len(accepted) == 1 and accepted[0].get("size", 0) < DEFAULT_MAX_BYTES, records
