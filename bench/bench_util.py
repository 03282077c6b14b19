"""Helpers the bench scripts share: free ports, waiting for a listener, a process's CPU time, and
Postfix's smtp-sink and smtp-source driven the same way everywhere; and the points, messages, key,
DNS and gateway configurations that bench/pipeline and bench/peers measure alike."""
import base64
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


RULE_WORDS = ["viagra", "lottery", "inheritance", "bitcoin wallet", "wire transfer", "casino", "replica watch",
              "weight loss", "act now", "risk free", "click below", "urgent reply", "dear beneficiary",
              "unclaimed funds", "crypto giveaway", "password expired", "verify your account", "miracle cure",
              "cheap meds", "no prescription"]
COUNTS = {1: 600, 20: 3000, 100: 3000}  # messages per run at each session count (--quick: a quarter)


def messages(work):
    """The unsigned 10 KiB message, the same message signed, and the key record to publish."""
    import dkim  # Debian's python3-dkim: the independent signer
    line = "The quarterly figures are attached below, as discussed in the meeting on Tuesday.\r\n"
    message = ("From: Bench <bench@bench.example>\r\nTo: <user@example.org>\r\nSubject: quarterly figures\r\n"
               "Message-ID: <bench@bench.example>\r\nDate: Mon, 07 Dec 2026 10:00:00 +0000\r\n\r\n"
               + line * (10240 // len(line))).encode()
    key_path = os.path.join(work, "rsa.pem")
    subprocess.run(["openssl", "genrsa", "-out", key_path, "2048"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", key_path, "-pubout", "-outform", "DER"], check=True,
                         capture_output=True).stdout
    signature = dkim.sign(message, b"bench", b"bench.example", open(key_path, "rb").read(),
                          include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    paths = {}
    for name, data in (("unsigned", message), ("signed", signature + message)):
        paths[name] = os.path.join(work, f"{name}.eml")
        with open(paths[name], "wb") as f:  # smtp-source -F sends each line with CRLF itself
            f.write(data.replace(b"\r\n", b"\n"))
    return paths, "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def rules_file(work):
    path = os.path.join(work, "bench.cf")
    with open(path, "w") as f:
        for n, word in enumerate(RULE_WORDS):
            f.write(f"body BENCH_{n} /\\b{word.replace(' ', '[ _-]?')}\\b/i\ndescribe BENCH_{n} {word}\n"
                    f"score BENCH_{n} 1.0\n")
    return path


WHOLE_STAGES = """
[[stage]]
type = "spf"
[[stage]]
type = "dkim"
[[stage]]
type = "dmarc"
[[stage]]
type = "rules"
paths = ["{rules}"]
"""


def start_gateway(binary, work, name, sink_port, dns, rules, whole):
    port = free_port()
    config = os.path.join(work, f"{name}.toml")
    with open(config, "w") as f:
        f.write(f"""
[server]
listen = ["127.0.0.1:{port}"]
hostname = "mx.bench.example"
domains = ["example.org"]
max_connections_per_client = 1000
[downstream]
address = "127.0.0.1:{sink_port}"
[spool]
path = "{work}"
[log]
path = "{work}/{name}.jsonl"
[dns]
servers = ["{dns.address}"]
{WHOLE_STAGES.format(rules=rules) if whole else ""}
[[stage]]
type = "size_limit"
max_bytes = "25MiB"
""")
    process = subprocess.Popen([binary, "--config", config], stderr=subprocess.DEVNULL)
    wait_port(port)
    return process, port


def start_dns(work, key_record):
    """A real DNS server on loopback (tests/integration/dns_server.py: unbound) with the SPF, DMARC
    and DKIM key records of bench.example."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
    from dns_server import DnsServer
    dns = DnsServer({"bench.example": [{"TXT": "v=spf1 ip4:127.0.0.0/8 -all"}],
                     "_dmarc.bench.example": [{"TXT": "v=DMARC1; p=reject"}],
                     "bench._domainkey.bench.example": [{"TXT": key_record}]},
                    directory=os.path.join(work, "dns"))
    dns.start()
    return dns
