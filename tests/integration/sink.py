"""A downstream SMTP server for the integration tests: the "mailbox server" behind the gateway.

It speaks enough ESMTP for the gateway's relay (EHLO with PIPELINING/8BITMIME/SIZE/
ENHANCEDSTATUSCODES, HELO, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT), answers
pipelined commands in order (several commands may arrive in one read), and records every message
it accepted as a `Delivery` (which unpacks as the tuple (mail_from, rcpts, data, peer)).

Knobs (plain attributes, read when they are used, so a test may change them between transactions):
  reject_rcpts      {address: reply}: RCPT replies for chosen recipients (case-insensitive),
                    e.g. {"nobody@example.org": "550 5.1.1 User unknown"}
  mail_reply        reply to every MAIL instead of 250 (e.g. "451 4.3.0 Try later"); unless it
                    starts with "2" the sink holds no sender afterwards (so a "354" here is a
                    refusal to the sink, whatever a client makes of it)
  rcpt_reply        reply to every RCPT instead of 250 (reject_rcpts still wins); the recipient
                    is taken only when it starts with "2" (e.g. "354 Go ahead": no recipient)
  data_command_reply  reply to the DATA command instead of 354; the message is not read, and
                    nothing is recorded (e.g. "250 2.0.0 Ok", which no client may take for a 354)
  data_reply        reply to the final dot instead of "250 2.0.0 Ok: queued as N"; a message is
                    recorded only when this reply is 2xx
  rset_reply        reply to RSET instead of 250 (the sink resets all the same)
  Any reply knob may hold several lines ("550-5.1.1 a\r\n550 5.1.1 b") and lines of any length
  (RFC 5321 §4.5.3.1.5 allows 512 octets; a broken server sends more).
  drop_during_data  after the 354, read some message bytes, then close without a reply
  drop_after_dot    read the whole message, then close without a reply (nothing recorded)
  delay_seconds     sleep this long before each reply ...
  delay_commands    ... or only before the replies to these verbs ("CONNECT" is the greeting,
                    "." the end of data); None: every reply
  greeting          the greeting line (default "220 <hostname> ESMTP sink")
  broken_starttls   advertise STARTTLS, answer it with 220, wait for the client's hello, then
                    answer it with a line of plaintext and close (a server whose TLS is broken)
  store_dir         when set, a message larger than store_threshold is written to a file there
                    (Delivery.path) instead of being kept in memory (Delivery.data is None then)

The end of DATA is recognised leniently, like many real servers: a "." line ending in CRLF *or in
a bare LF*, after any line ending in LF. So a gateway that lets "\\n.\\r\\n" or "\\r\\n.\\n"
through would make a second (smuggled) message appear here: exactly what the tests look for.
"""

from __future__ import annotations

import hashlib
import os
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

CRLF = b"\r\n"
MAX_COMMAND_LINE = 64 * 1024  # far above RFC 5321's 512: the sink is lenient, the gateway is not


@dataclass
class Delivery:
    """One message the sink accepted."""

    mail_from: str
    rcpts: list[str]
    data: Optional[bytes]  # after dot-unstuffing; None when stored in `path`
    peer: tuple
    size: int = 0
    sha256: str = ""
    path: Optional[str] = None
    helo: str = ""
    mail_params: str = ""  # everything after MAIL FROM:<...>, e.g. "SIZE=123 BODY=8BITMIME"
    connection: int = 0  # the sink's connection number, from 1

    def __iter__(self) -> Iterator:
        # Unpacks as (mail_from, rcpts, data, peer), the shape the tests were specified with.
        return iter((self.mail_from, self.rcpts, self.data, self.peer))

    def content(self) -> bytes:
        """The message bytes, read back from the file when the sink stored it on disk."""
        if self.data is not None:
            return self.data
        with open(self.path, "rb") as f:
            return f.read()

    def tail_sha256(self, length: int) -> str:
        """SHA-256 of the last `length` bytes (the client's original after prepended headers)."""
        h = hashlib.sha256()
        if self.data is not None:
            h.update(self.data[self.size - length:])
            return h.hexdigest()
        with open(self.path, "rb") as f:
            f.seek(self.size - length)
            while True:
                block = f.read(1 << 20)
                if not block:
                    break
                h.update(block)
        return h.hexdigest()

    def head(self, length: int) -> bytes:
        """The first `length` bytes (the headers the gateway prepended)."""
        if self.data is not None:
            return self.data[:length]
        with open(self.path, "rb") as f:
            return f.read(length)


class _Closed(Exception):
    """The peer closed the connection (or it timed out)."""


class _Body:
    """Collects one message: in memory, or in a file once it passes the threshold."""

    def __init__(self, store_dir: Optional[str], threshold: int):
        self.store_dir = store_dir
        self.threshold = threshold
        self.memory = bytearray()
        self.file = None
        self.path = None
        self.size = 0
        self.hash = hashlib.sha256()

    def write(self, block: bytes) -> None:
        if not block:
            return
        self.size += len(block)
        self.hash.update(block)
        if self.file is None:
            self.memory += block
            if self.store_dir is not None and len(self.memory) > self.threshold:
                fd, self.path = tempfile.mkstemp(prefix="msg-", suffix=".eml", dir=self.store_dir)
                self.file = os.fdopen(fd, "wb", buffering=1 << 20)
                self.file.write(self.memory)
                self.memory = bytearray()
        else:
            self.file.write(block)

    def finish(self) -> tuple[Optional[bytes], Optional[str]]:
        if self.file is not None:
            self.file.close()
            return None, self.path
        return bytes(self.memory), None

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()
            os.unlink(self.path)
        self.memory = bytearray()


def _address(argument: str, keyword: str) -> tuple[Optional[str], str]:
    """'FROM:<a@b> SIZE=1' -> ('a@b', 'SIZE=1'); (None, '') when the syntax is wrong."""
    if not argument[: len(keyword)].upper() == keyword:
        return None, ""
    rest = argument[len(keyword):].lstrip(" ")
    if not rest.startswith("<"):
        return None, ""
    end = rest.find(">")
    if end < 0:
        return None, ""
    return rest[1:end], rest[end + 1:].strip()


class Sink:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        hostname: str = "sink.test",
        reject_rcpts: Optional[dict[str, str]] = None,
        mail_reply: Optional[str] = None,
        rcpt_reply: Optional[str] = None,
        data_reply: Optional[str] = None,
        rset_reply: Optional[str] = None,
        data_command_reply: Optional[str] = None,
        drop_during_data: bool = False,
        drop_after_dot: bool = False,
        delay_seconds: float = 0.0,
        delay_commands: Optional[set[str]] = None,
        greeting: Optional[str] = None,
        max_size: int = 0,
        store_dir: Optional[str] = None,
        store_threshold: int = 4 << 20,
        timeout: float = 60.0,
        broken_starttls: bool = False,
    ):
        self.host = host
        self.hostname = hostname
        self.reject_rcpts = {k.lower(): v for k, v in (reject_rcpts or {}).items()}
        self.mail_reply = mail_reply
        self.rcpt_reply = rcpt_reply
        self.data_reply = data_reply
        self.rset_reply = rset_reply
        self.data_command_reply = data_command_reply  # instead of 354 to the DATA command
        self.drop_during_data = drop_during_data
        self.drop_after_dot = drop_after_dot
        self.delay_seconds = delay_seconds
        self.delay_commands = delay_commands
        self.greeting = greeting
        self.max_size = max_size
        self.store_dir = store_dir
        self.store_threshold = store_threshold
        self.timeout = timeout
        self.broken_starttls = broken_starttls

        self._lock = threading.Condition()
        self._messages: list[Delivery] = []
        self._connections = 0
        self._active = 0
        self._transcript: list[str] = []
        self._queued = 0
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(128)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"sink-{self.port}", daemon=True)

    # ----------------------------------------------------------------------------- lifecycle
    def start(self) -> "Sink":
        self._acceptor.start()
        return self

    def stop(self) -> None:
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            sockets = list(self._sockets)
        try:
            self._listener.close()
        except OSError:
            pass
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._acceptor.join(timeout=5)
        for t in list(self._threads):
            t.join(timeout=5)

    def __enter__(self) -> "Sink":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ----------------------------------------------------------------------------- observation
    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def messages(self) -> list[Delivery]:
        with self._lock:
            return list(self._messages)

    @property
    def connections(self) -> int:
        """How many connections the sink has accepted so far."""
        with self._lock:
            return self._connections

    @property
    def active_connections(self) -> int:
        with self._lock:
            return self._active

    def transcript(self) -> list[str]:
        """Every line received and sent, prefixed with the connection number (for diagnostics)."""
        with self._lock:
            return list(self._transcript)

    def wait_for_messages(self, count: int, timeout: float = 10.0) -> list[Delivery]:
        """Waits until at least `count` messages arrived; returns all of them (maybe fewer)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            return list(self._messages)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Waits until no connection is open; returns whether that happened."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._active:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
            return True

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def close_idle_connections(self) -> None:
        """Closes every open connection, as a server's own idle timeout would (for connections
        that are idle between transactions)."""
        with self._lock:
            sockets = list(self._sockets)
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # ----------------------------------------------------------------------------- server
    def _accept_loop(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
            try:
                conn, peer = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                if self._stopping:
                    conn.close()
                    return
                self._connections += 1
                self._active += 1
                number = self._connections
                self._sockets.add(conn)
            t = threading.Thread(target=self._serve, args=(conn, peer, number),
                                 name=f"sink-{self.port}-{number}", daemon=True)
            self._threads.append(t)
            t.start()

    def _log(self, number: int, direction: str, line: str) -> None:
        with self._lock:
            if len(self._transcript) < 20000:
                self._transcript.append(f"{number} {direction} {line}")

    def _serve(self, conn: socket.socket, peer: tuple, number: int) -> None:
        conn.settimeout(self.timeout)
        # Replies go out at once, as a real MTA sends them (Nagle would hold each for ~40 ms).
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        session = _Session(self, conn, peer, number)
        try:
            session.run()
        except (_Closed, OSError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass
            with self._lock:
                self._sockets.discard(conn)
                self._active -= 1
                self._lock.notify_all()

    def _record(self, delivery: Delivery) -> None:
        with self._lock:
            self._messages.append(delivery)
            self._lock.notify_all()


class _Session:
    """One connection to the sink."""

    def __init__(self, sink: Sink, conn: socket.socket, peer: tuple, number: int):
        self.sink = sink
        self.conn = conn
        self.peer = peer
        self.number = number
        self.buf = bytearray()
        self.pos = 0
        self.helo = ""
        self.reset()

    def reset(self) -> None:
        self.mail_from: Optional[str] = None
        self.mail_params = ""
        self.rcpts: list[str] = []

    # I/O ---------------------------------------------------------------------------------
    def fill(self) -> None:
        """Reads more bytes into the buffer; raises _Closed at EOF."""
        if self.pos > (1 << 20) or (self.pos and self.pos == len(self.buf)):
            del self.buf[: self.pos]
            self.pos = 0
        try:
            chunk = self.conn.recv(1 << 18)
        except socket.timeout:
            raise _Closed()
        if not chunk:
            raise _Closed()
        self.buf += chunk

    def line(self, limit: int) -> bytes:
        """The next line including its LF (a lenient reader: LF ends a line)."""
        while True:
            nl = self.buf.find(b"\n", self.pos)
            if nl >= 0:
                line = bytes(self.buf[self.pos: nl + 1])
                self.pos = nl + 1
                return line
            if len(self.buf) - self.pos > limit:
                raise _Closed()
            self.fill()

    def reply(self, verb: str, text: str) -> None:
        delay = self.sink.delay_seconds
        commands = self.sink.delay_commands
        if delay and (commands is None or verb in commands):
            time.sleep(delay)
        self.sink._log(self.number, "S:", text.replace("\r\n", " | "))
        self.conn.sendall(text.encode("utf-8") + CRLF)

    def drop(self, why: str) -> None:
        self.sink._log(self.number, "--", f"dropping connection ({why})")
        try:
            self.conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        raise _Closed()

    # protocol --------------------------------------------------------------------------
    def run(self) -> None:
        sink = self.sink
        self.reply("CONNECT", sink.greeting or f"220 {sink.hostname} ESMTP sink")
        while True:
            raw = self.line(MAX_COMMAND_LINE)
            text = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            sink._log(self.number, "C:", text)
            verb, _, argument = text.partition(" ")
            verb = verb.upper()
            handler: Optional[Callable[[str], None]] = getattr(self, "cmd_" + verb, None)
            if handler is None:
                self.reply(verb, "502 5.5.2 Error: command not recognized")
                continue
            handler(argument.strip())

    def cmd_EHLO(self, argument: str) -> None:
        if not argument:
            return self.reply("EHLO", "501 5.5.4 Syntax: EHLO hostname")
        self.helo = argument
        self.reset()
        lines = [self.sink.hostname, "PIPELINING", f"SIZE {self.sink.max_size}", "8BITMIME",
                 "ENHANCEDSTATUSCODES"] + (["STARTTLS"] if self.sink.broken_starttls else [])
        text = "\r\n".join(f"250-{line}" for line in lines[:-1]) + f"\r\n250 {lines[-1]}"
        self.reply("EHLO", text)

    def cmd_HELO(self, argument: str) -> None:
        if not argument:
            return self.reply("HELO", "501 5.5.4 Syntax: HELO hostname")
        self.helo = argument
        self.reset()
        self.reply("HELO", f"250 {self.sink.hostname}")

    def cmd_MAIL(self, argument: str) -> None:
        if self.mail_from is not None:
            return self.reply("MAIL", "503 5.5.1 Error: nested MAIL command")
        address, params = _address(argument, "FROM:")
        if address is None:
            return self.reply("MAIL", "501 5.5.4 Syntax: MAIL FROM:<address>")
        if self.sink.mail_reply and not self.sink.mail_reply.startswith("2"):
            return self.reply("MAIL", self.sink.mail_reply)
        self.mail_from = address
        self.mail_params = params
        self.rcpts = []
        self.reply("MAIL", self.sink.mail_reply or "250 2.1.0 Ok")

    def cmd_RCPT(self, argument: str) -> None:
        if self.mail_from is None:
            return self.reply("RCPT", "503 5.5.1 Error: need MAIL command")
        address, _ = _address(argument, "TO:")
        if address is None:
            return self.reply("RCPT", "501 5.5.4 Syntax: RCPT TO:<address>")
        refusal = self.sink.reject_rcpts.get(address.lower())
        if refusal:
            return self.reply("RCPT", refusal)
        reply = self.sink.rcpt_reply or "250 2.1.5 Ok"
        if reply.startswith("2"):
            self.rcpts.append(address)
        self.reply("RCPT", reply)

    def cmd_DATA(self, argument: str) -> None:
        if self.mail_from is None:
            return self.reply("DATA", "503 5.5.1 Error: need MAIL command")
        if not self.rcpts:
            return self.reply("DATA", "554 5.5.1 Error: no valid recipients")
        if self.sink.data_command_reply:
            return self.reply("DATA", self.sink.data_command_reply)
        self.reply("DATA", "354 End data with <CR><LF>.<CR><LF>")
        sink = self.sink
        if sink.drop_during_data:
            if self.pos == len(self.buf):
                self.fill()
            self.drop("drop_during_data")
        body = _Body(sink.store_dir, sink.store_threshold)
        try:
            self.read_message(body)
        except BaseException:
            body.discard()
            raise
        if sink.drop_after_dot:
            body.discard()
            self.drop("drop_after_dot")
        reply = sink.data_reply or f"250 2.0.0 Ok: queued as S{self.number}M{len(sink.messages) + 1}"
        if reply.startswith("2"):
            data, path = body.finish()
            sink._record(Delivery(
                mail_from=self.mail_from, rcpts=list(self.rcpts), data=data, peer=self.peer,
                size=body.size, sha256=body.hash.hexdigest(), path=path, helo=self.helo,
                mail_params=self.mail_params, connection=self.number))
        else:
            body.discard()
        sink._log(self.number, "--", f"message of {body.size} bytes")
        self.reset()
        self.reply(".", reply)

    def read_message(self, body: _Body) -> None:
        """Reads up to the end of data, unstuffing dots, writing the content into `body`."""
        parts: list[bytes] = []
        pending = 0
        while True:
            nl = self.buf.find(b"\n", self.pos)
            if nl < 0:
                if parts:
                    body.write(b"".join(parts))
                    parts, pending = [], 0
                self.fill()
                continue
            start = self.pos
            self.pos = nl + 1
            first = self.buf[start]
            if first == 0x2E:  # "."
                line = bytes(self.buf[start:nl + 1])
                if line in (b".\r\n", b".\n"):
                    body.write(b"".join(parts))
                    return
                parts.append(line[1:])  # RFC 5321 §4.5.2
            else:
                parts.append(bytes(self.buf[start:nl + 1]))
            pending += nl + 1 - start
            if pending > (1 << 20):
                body.write(b"".join(parts))
                parts, pending = [], 0

    def cmd_STARTTLS(self, argument: str) -> None:
        if not self.sink.broken_starttls:
            return self.reply("STARTTLS", "502 5.5.2 Error: command not recognized")
        self.reply("STARTTLS", "220 2.0.0 Ready to start TLS")
        # After the client's hello, so that the line is read as the handshake's answer and not
        # as a reply pipelined behind the 220.
        self.fill()
        self.conn.sendall(b"this is no TLS server hello\r\n")
        self.drop("broken STARTTLS")

    def cmd_RSET(self, argument: str) -> None:
        self.reset()
        self.reply("RSET", self.sink.rset_reply or "250 2.0.0 Ok")

    def cmd_NOOP(self, argument: str) -> None:
        self.reply("NOOP", "250 2.0.0 Ok")

    def cmd_QUIT(self, argument: str) -> None:
        self.reply("QUIT", "221 2.0.0 Bye")
        raise _Closed()


def start_sink(**knobs) -> Sink:
    """A started Sink on 127.0.0.1 and a free port; stop() it (or use it as a context manager)."""
    return Sink(**knobs).start()
