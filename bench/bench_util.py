"""Helpers the bench scripts share: free ports, waiting for a listener, a process's CPU time, and
Postfix's smtp-sink and smtp-source driven the same way everywhere."""
import os
import socket
import subprocess
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def cpu_seconds(pid):
    """User + system CPU time of a process so far (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_sink(port):
    """Postfix's smtp-sink on 127.0.0.1:port, answering every message with 250 and keeping none."""
    user = ["-u", "postfix"] if os.geteuid() == 0 else []
    sink = subprocess.Popen(["/usr/sbin/smtp-sink", *user, "-c", f"127.0.0.1:{port}", "1024"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return sink


def send(port, sessions, messages, path, reuse=False):
    """Postfix's smtp-source sends `messages` copies of the file `path` (-F) from `sessions`
    sessions, a new connection per message unless `reuse`; returns messages/second."""
    command = ["/usr/sbin/smtp-source", "-s", str(sessions), "-m", str(messages), "-F", path,
               "-f", "bench@bench.example", "-t", "user@example.org", "-M", "bench.example"]
    if reuse:
        command.append("-d")  # smtp-source's -d: do not disconnect, send the next message on the same connection
    command.append(f"127.0.0.1:{port}")
    started = time.perf_counter()
    subprocess.run(command, check=True, timeout=900, stdout=subprocess.DEVNULL)
    return messages / (time.perf_counter() - started)
