"""A real clamd (Debian's clamav-daemon) for the clamav stage's tests: started on a unix socket
under the test's folder with a clamd.conf and a signature database the test writes (no freshclam:
there is no network here), stopped at the end. `Hanging` is a unix socket that accepts and never
answers, for the stage's timeout."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

CLAMD = "/usr/sbin/clamd"

# The EICAR test file (https://www.eicar.org/download-anti-malware-testfile/): every scanner
# detects it, none is harmed by it.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
# The name the test database gives it; clamd adds ".UNOFFICIAL" to names from unsigned databases.
SIGNATURE = "Mailgate.Test.EICAR"
REPORTED = SIGNATURE + ".UNOFFICIAL"


def available() -> bool:
    return os.access(CLAMD, os.X_OK)


class Clamd:
    """clamd in the foreground on `socket_path`, with one .ndb signature (EICAR's bytes, anywhere
    in any file: clamd unpacks MIME parts, base64 and archives before it matches)."""

    def __init__(self, folder: Path, *, stream_max: str = "10M", start_timeout: float = 60.0):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.socket_path = str(folder / "clamd.sock")
        database = folder / "db"
        database.mkdir(exist_ok=True)
        (database / "mailgate-test.ndb").write_text(f"{SIGNATURE}:0:*:{EICAR.hex()}\n")
        self.log = folder / "clamd.log"
        self.conf = folder / "clamd.conf"
        self.conf.write_text(
            "Foreground yes\n"
            f"LocalSocket {self.socket_path}\n"
            f"DatabaseDirectory {database}\n"
            f"TemporaryDirectory {folder}\n"
            f"LogFile {self.log}\n"
            f"StreamMaxLength {stream_max}\n"
            "SelfCheck 0\n")
        self.start_timeout = start_timeout
        self.process: subprocess.Popen | None = None

    def start(self) -> "Clamd":
        self.process = subprocess.Popen([CLAMD, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"clamd exited at start:\n{self.log_text()}"
            if self.answers():
                return self
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"clamd did not answer PING within {self.start_timeout}s:\n{self.log_text()}")

    def answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(self.socket_path)
                s.sendall(b"zPING\0")
                return s.recv(16).startswith(b"PONG")
        except OSError:
            return False

    def scan(self, data: bytes) -> bytes:
        """clamd's own reply to an INSTREAM of `data` (to check the test database works)."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(self.socket_path)
            s.sendall(b"zINSTREAM\0" + struct.pack(">I", len(data)) + data + struct.pack(">I", 0))
            reply = b""
            while not reply.endswith(b"\0"):
                chunk = s.recv(256)
                if not chunk:
                    break
                reply += chunk
            return reply.rstrip(b"\0")

    def cpu_ticks(self) -> int:
        """clamd's user + system CPU time so far, in clock ticks (/proc/<pid>/stat fields 14, 15)."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no log)"


class Hanging:
    """A unix socket that accepts every connection, reads what comes, and never answers."""

    def __init__(self, path: str):
        self.path = path
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(path)
        self.server.listen(16)
        self.accepted: list[socket.socket] = []
        self.received = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.server.settimeout(0.1)
        while not self._stop:
            try:
                conn, _ = self.server.accept()
            except (socket.timeout, OSError):
                for conn in list(self.accepted):
                    try:
                        conn.setblocking(False)
                        while True:
                            data = conn.recv(65536)
                            if not data:
                                break
                            self.received += len(data)
                    except (BlockingIOError, OSError):
                        pass
                continue
            self.accepted.append(conn)

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=5)
        for conn in self.accepted:
            conn.close()
        self.server.close()

