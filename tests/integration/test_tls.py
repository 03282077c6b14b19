"""TLS on both legs (issue 14): STARTTLS (RFC 3207) and implicit TLS (RFC 8314) from clients,
server.require_tls, the certificate chosen by SNI and reloaded on SIGHUP, --check-config on
certificates and keys, TLS in the Received: header (RFC 3848 ESMTPS) and in the decision record,
and STARTTLS to the downstream (downstream.tls).

Certificates are made in each test with python3-cryptography (short-lived, in the test's folder).
Clients: openssl s_client, smtplib, swaks, and raw sockets wrapped in TLS by hand for what the
others cannot do (pipelining behind STARTTLS).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Optional

import pytest

from harness import (CLIENT_HELO, HOSTNAME, Raw, build_config, delivered_once, free_port, make_message,
                     message_id_of, never_delivered, prepended_headers)

cryptography = pytest.importorskip("cryptography")
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, rsa  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
SWAKS = shutil.which("swaks") or "/usr/bin/swaks"
RCPT = "b@example.org"
SENDER = "a@example.com"


# ------------------------------------------------------------------------------ certificates
class Pair:
    """A certificate file (PEM, leaf first) and its key file."""

    def __init__(self, certificate: Path, key: Path, cert: x509.Certificate, private_key):
        self.certificate = certificate
        self.key = key
        self.cert = cert
        self.private_key = private_key


def make_pair(directory: Path, name: str, *, key_type: str = "ec", days: int = 2, expired: bool = False,
              issuer: Optional[Pair] = None, is_ca: bool = False, file_stem: Optional[str] = None) -> Pair:
    """A certificate for `name` (CN and DNS SAN): self-signed, or signed by `issuer`."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1()) if key_type == "ec" else rsa.generate_private_key(65537, 2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    not_before, not_after = (now - datetime.timedelta(days=10), now - datetime.timedelta(days=1)) if expired \
        else (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days))
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(issuer.cert.subject if issuer else subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before)
               .not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True))
    if not is_ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
    cert = builder.sign(issuer.private_key if issuer else key, hashes.SHA256())
    stem = file_stem or name
    certificate_path = directory / f"{stem}.pem"
    key_path = directory / f"{stem}.key"
    certificate_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Pair(certificate_path, key_path, cert, key)


def tls_table(pair: Pair, **extra) -> str:
    lines = ["[tls]", f'certificate = "{pair.certificate}"', f'key = "{pair.key}"']
    lines += [f"{key} = {value}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def client_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def peer_common_name(sock: ssl.SSLSocket) -> str:
    cert = x509.load_der_x509_certificate(sock.getpeercert(binary_form=True))
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def received_of(data: bytes, original: bytes) -> str:
    headers = prepended_headers(data, original)
    assert headers[0][0].lower() == "received", headers
    return headers[0][1]


def starttls_raw(raw: Raw, server_hostname: Optional[str] = None) -> ssl.SSLSocket:
    """STARTTLS on a Raw session that has said EHLO; returns the TLS socket (also in raw.sock)."""
    raw.cmd("STARTTLS").check(220, "2.0.0")
    assert raw.buffer == b"", f"bytes after the 220 in the clear: {raw.buffer!r}"
    raw.sock = client_context().wrap_socket(raw.sock, server_hostname=server_hostname)
    return raw.sock


@pytest.fixture
def certs(tmp_path) -> Path:
    return tmp_path / "certs"


@pytest.fixture
def tls_gateway(start_gateway, sink, certs):
    pair = make_pair(certs, HOSTNAME)
    gw = start_gateway(sink=sink, extra=tls_table(pair))
    gw.pair = pair
    return gw


# ------------------------------------------------------------------------------ inbound STARTTLS
def test_starttls_offered_then_not_again_and_second_starttls_is_503(tls_gateway):
    with Raw(tls_gateway.port) as raw:
        raw.greet().check(220)
        assert "STARTTLS" in raw.ehlo().check(250).lines
        starttls_raw(raw)
        keywords = raw.ehlo().check(250).lines
        assert "STARTTLS" not in keywords, keywords  # RFC 3207 §4.2
        raw.cmd("STARTTLS").check(503, "5.5.1")
        raw.cmd("QUIT").check(221)


def test_smtplib_starttls_delivers_with_esmtps_and_the_record_says_tls(tls_gateway, sink):
    content = make_message(subject="over STARTTLS")
    with smtplib.SMTP("127.0.0.1", tls_gateway.port, local_hostname=CLIENT_HELO, timeout=20) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        client.starttls(context=client_context())
        client.ehlo()
        assert not client.has_extn("starttls")
        assert client.sendmail(SENDER, [RCPT], content) == {}
        client.quit()
    received = received_of(delivered_once(sink, content), content)
    assert re.search(r"\(using TLSv1\.3 with cipher TLS_[A-Z0-9_]+\)", received), received
    assert " with ESMTPS id " in received, received
    records = tls_gateway.wait_for_records(lambda r: r.get("type") == "transaction")
    assert len(records) == 1, records
    tls = records[0]["tls"]
    assert tls["version"] == "TLSv1.3" and tls["cipher"].startswith("TLS_"), tls
    assert tls["downstream"] is False, tls  # the test sink offers no STARTTLS
    assert tls["cipher"] in received


def test_plaintext_session_record_and_received_say_no_tls(tls_gateway, sink):
    content = make_message(subject="in the clear")
    with smtplib.SMTP("127.0.0.1", tls_gateway.port, local_hostname=CLIENT_HELO, timeout=20) as client:
        client.sendmail(SENDER, [RCPT], content)
    received = received_of(delivered_once(sink, content), content)
    assert " with ESMTP id " in received and "using" not in received, received
    record = tls_gateway.wait_for_records(lambda r: r.get("type") == "transaction")[0]
    assert record["tls"] == {"version": None, "cipher": None, "sni": None, "downstream": False}


def test_openssl_s_client_starttls(tls_gateway, sink):
    content = make_message(subject="via s_client")
    # s_client says EHLO before STARTTLS only; after it the session starts over (RFC 3207 §4.2).
    dialogue = (f"EHLO {CLIENT_HELO}\r\nMAIL FROM:<{SENDER}>\r\nRCPT TO:<{RCPT}>\r\nDATA\r\n").encode() \
        + content + b".\r\nQUIT\r\n"
    result = subprocess.run([OPENSSL, "s_client", "-starttls", "smtp", "-connect", f"127.0.0.1:{tls_gateway.port}",
                             "-servername", HOSTNAME, "-brief", "-ign_eof"],
                            input=dialogue, capture_output=True, timeout=30)
    output = (result.stdout + result.stderr).decode("utf-8", "replace")
    assert "Protocol version: TLSv1.3" in output, output
    assert "221 2.0.0 Bye" in output, output
    data = delivered_once(sink, content)
    assert " with ESMTPS id " in received_of(data, content)
    record = tls_gateway.wait_for_records(lambda r: r.get("type") == "transaction")[0]
    assert record["tls"]["sni"] == HOSTNAME, record["tls"]


def test_swaks_tls(tls_gateway, sink):
    if not os.path.exists(SWAKS):
        pytest.skip("swaks is not installed (Debian package swaks)")
    result = subprocess.run([SWAKS, "--server", f"127.0.0.1:{tls_gateway.port}", "--tls", "--to", RCPT,
                             "--from", SENDER, "--helo", CLIENT_HELO, "--header", "Subject: via swaks"],
                            capture_output=True, timeout=60)
    output = result.stdout.decode("utf-8", "replace")
    assert result.returncode == 0, output + result.stderr.decode("utf-8", "replace")
    assert "<-  220 2.0.0 Ready to start TLS" in output, output
    messages = sink.wait_for_messages(1)
    assert b"with ESMTPS" in messages[0].data


@pytest.mark.parametrize("after_handshake", [False, True], ids=["plaintext", "after-handshake"])
def test_bytes_pipelined_behind_starttls_are_dropped(tls_gateway, after_handshake):
    """CVE-2011-0411: `STARTTLS\\r\\nRSET\\r\\n` in one write gets one 220 and nothing else: not
    in the clear, and not after the handshake (where a vulnerable server answers the RSET)."""
    with Raw(tls_gateway.port) as raw:
        raw.greet()
        raw.ehlo()
        raw.send("STARTTLS\r\nRSET\r\nMAIL FROM:<injected@example.com>\r\n")
        raw.read_reply().check(220, "2.0.0")
        if not after_handshake:
            raw.expect_silence(1.0)
            return
        raw.sock = client_context().wrap_socket(raw.sock)
        raw.expect_silence(1.0)
        # The session starts over: the first reply over TLS is to this EHLO, and MAIL works.
        assert raw.ehlo().check(250).lines[0] == HOSTNAME
        raw.cmd(f"MAIL FROM:<{SENDER}>").check(250, "2.1.0")
        raw.cmd("QUIT").check(221)


def test_require_tls_refuses_mail_before_starttls(start_gateway, sink, certs):
    pair = make_pair(certs, HOSTNAME)
    gw = start_gateway(sink=sink, server={"require_tls": True}, extra=tls_table(pair))
    with Raw(gw.port) as raw:
        raw.greet()
        raw.ehlo()
        raw.cmd(f"MAIL FROM:<{SENDER}>").check(530, "5.7.0")
        assert raw.cmd("NOOP").code == 250
        starttls_raw(raw)
        raw.ehlo()
        raw.cmd(f"MAIL FROM:<{SENDER}>").check(250)
        raw.cmd(f"RCPT TO:<{RCPT}>").check(250)


def test_implicit_tls_listener(start_gateway, sink, certs):
    pair = make_pair(certs, HOSTNAME)
    tls_port = free_port()
    gw = start_gateway(sink=sink, server={"listen_tls": [f"127.0.0.1:{tls_port}"]}, extra=tls_table(pair))
    content = make_message(subject="implicit TLS")
    with smtplib.SMTP_SSL("127.0.0.1", tls_port, local_hostname=CLIENT_HELO, timeout=20,
                          context=client_context()) as client:
        code, _ = client.ehlo()
        assert code == 250
        assert not client.has_extn("starttls")  # already TLS (RFC 8314 §3.3)
        assert client.sendmail(SENDER, [RCPT], content) == {}
        client.quit()
    assert " with ESMTPS id " in received_of(delivered_once(sink, content), content)
    # The plain listener is still plain, with STARTTLS.
    with Raw(gw.port) as raw:
        raw.greet().check(220)
        assert "STARTTLS" in raw.ehlo().lines


def test_failed_handshake_closes_that_connection_only_and_is_logged(tls_gateway, sink):
    with Raw(tls_gateway.port) as other:
        other.greet()
        other.ehlo()
        with Raw(tls_gateway.port) as raw:
            raw.greet()
            raw.ehlo()
            raw.cmd("STARTTLS").check(220)
            raw.send(b"\x16\x03\x01\x00\x05hello, not a ClientHello\r\n")
            # A TLS alert (content type 21) says why, then the connection closes.
            received = b""
            while True:
                try:
                    chunk = raw.sock.recv(4096)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                received += chunk
            assert received == b"" or received[:1] == b"\x15", received
        records = tls_gateway.wait_for_records(lambda r: "TLS handshake failed" in str(r.get("reason", "")))
        assert records, tls_gateway.log_records()
        other.cmd(f"MAIL FROM:<{SENDER}>").check(250)  # the other session goes on


def test_sni_chooses_the_certificate_and_rsa_and_ecdsa_are_served_side_by_side(start_gateway, sink, certs):
    main = make_pair(certs, HOSTNAME, key_type="ec")
    rsa_pair = make_pair(certs, HOSTNAME, key_type="rsa", file_stem="main-rsa")
    other = make_pair(certs, "other.test")
    extra = tls_table(main) + (f'[[tls.certificates]]\ncertificate = "{rsa_pair.certificate}"\nkey = "{rsa_pair.key}"\n'
                               f'[[tls.certificates]]\ncertificate = "{other.certificate}"\nkey = "{other.key}"\n'
                               'names = ["other.test"]\n')
    gw = start_gateway(sink=sink, extra=extra)

    def served(name: Optional[str], ciphers: Optional[str] = None) -> tuple[str, str]:
        with Raw(gw.port) as raw:
            raw.greet()
            raw.ehlo()
            raw.cmd("STARTTLS").check(220)
            context = client_context()
            if ciphers:
                context.maximum_version = ssl.TLSVersion.TLSv1_2
                context.set_ciphers(ciphers)
            raw.sock = context.wrap_socket(raw.sock, server_hostname=name)
            cert = x509.load_der_x509_certificate(raw.sock.getpeercert(binary_form=True))
            raw.cmd("QUIT")
            return peer_common_name(raw.sock), type(cert.public_key()).__name__

    assert served("other.test")[0] == "other.test"
    assert served(HOSTNAME)[0] == HOSTNAME
    assert served("unknown.test")[0] == HOSTNAME  # an unknown name gets the default
    assert "RSA" in served(HOSTNAME, "ECDHE-RSA-AES128-GCM-SHA256")[1]
    assert "EllipticCurve" in served(HOSTNAME, "ECDHE-ECDSA-AES128-GCM-SHA256")[1]
    records = gw.wait_for_records(lambda r: (r.get("tls") or {}).get("sni") == "other.test")
    assert records, gw.log_records()


def test_sighup_reload_serves_a_renewed_certificate_to_new_connections(start_gateway, sink, certs):
    first = make_pair(certs, HOSTNAME, file_stem="live")
    gw = start_gateway(sink=sink, extra=tls_table(first))
    with Raw(gw.port) as old:
        old.greet()
        old.ehlo()
        starttls_raw(old)
        assert old.sock.getpeercert(binary_form=True) == first.cert.public_bytes(serialization.Encoding.DER)
        renewed = make_pair(certs, HOSTNAME, file_stem="live")  # same files, new certificate
        gw.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "configuration reloaded" not in gw.stderr_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        with Raw(gw.port) as new:
            new.greet()
            new.ehlo()
            starttls_raw(new)
            assert new.sock.getpeercert(binary_form=True) == renewed.cert.public_bytes(serialization.Encoding.DER)
        # The connection from before the reload finishes its transaction on its own certificate.
        old.ehlo()
        content = make_message(subject="old connection")
        assert old.transaction(SENDER, [RCPT], content).code == 250
        delivered_once(sink, content)

    # A renewal that does not load leaves the renewed certificate in force, with the error said.
    renewed_der = renewed.cert.public_bytes(serialization.Encoding.DER)
    first.certificate.write_text("not a certificate\n")
    gw.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "reload refused" not in gw.stderr_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert f"reload refused: {first.certificate}" in gw.stderr_text(), gw.stderr_text()
    with Raw(gw.port) as new:
        new.greet()
        new.ehlo()
        starttls_raw(new)
        assert new.sock.getpeercert(binary_form=True) == renewed_der


@pytest.mark.parametrize("problem", ["missing", "mismatch", "expired", "garbage"])
def test_check_config_names_the_certificate_or_key_file(mailgate_bin, tmp_path, certs, problem):
    pair = make_pair(certs, HOSTNAME)
    other = make_pair(certs, "other.test")
    certificate, key = pair.certificate, pair.key
    named = certificate
    if problem == "missing":
        certificate = named = certs / "absent.pem"
    elif problem == "mismatch":
        key = named = other.key
    elif problem == "expired":
        certificate = named = make_pair(certs, "old.test", expired=True).certificate
    else:
        key = named = certs / "garbage.key"
        key.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    config = tmp_path / "mailgate.toml"
    config.write_text(build_config(downstream=None).replace("{tmp}", str(tmp_path)).replace("{port}", "2525") +
                      f'[tls]\ncertificate = "{certificate}"\nkey = "{key}"\n')
    result = subprocess.run([mailgate_bin, "--check-config", str(config)], capture_output=True, timeout=30)
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert str(named) in stderr, stderr
    # The same configuration with good files is valid.
    config.write_text(config.read_text().replace(str(certificate), str(pair.certificate)).replace(str(key), str(pair.key)))
    result = subprocess.run([mailgate_bin, "--check-config", str(config)], capture_output=True, timeout=30)
    assert result.returncode == 0, result.stderr.decode()


def test_require_tls_without_a_certificate_is_a_config_error(mailgate_bin, tmp_path):
    config = tmp_path / "mailgate.toml"
    config.write_text(build_config(downstream=None, server={"require_tls": True})
                      .replace("{tmp}", str(tmp_path)).replace("{port}", "2525"))
    result = subprocess.run([mailgate_bin, "--check-config", str(config)], capture_output=True, timeout=30)
    assert result.returncode == 1
    assert "server.require_tls" in result.stderr.decode()


# ------------------------------------------------------------------------------ downstream TLS
def test_opportunistic_to_a_server_without_starttls_delivers_in_the_clear(tls_gateway, sink):
    content = make_message(subject="plain downstream")
    with smtplib.SMTP("127.0.0.1", tls_gateway.port, local_hostname=CLIENT_HELO, timeout=20) as client:
        client.starttls(context=client_context())
        assert client.sendmail(SENDER, [RCPT], content) == {}
    delivered_once(sink, content)
    record = tls_gateway.wait_for_records(lambda r: r.get("type") == "transaction")[0]
    assert record["tls"]["version"] == "TLSv1.3"
    assert record["tls"]["downstream"] is False, record["tls"]


def test_opportunistic_after_a_failed_handshake_goes_in_the_clear_from_the_next_try(start_gateway, sink):
    # RFC 7435 §3: opportunistic TLS falls back to cleartext rather than fail for every message.
    # The transaction whose handshake failed is lost with its connection: the client hears 451
    # and nothing lands; its next try (and every connection for an hour) goes in the clear.
    sink.broken_starttls = True
    gw = start_gateway(sink=sink)
    first, second = make_message(subject="first try"), make_message(subject="second try")
    code, text = send_through(gw, first)
    assert code == 451 and text.startswith("4.4.1"), (code, text)
    never_delivered(sink, first)
    record = gw.wait_for_records(lambda r: r.get("type") == "transaction")[0]
    assert "go in the clear" in json.dumps(record), record
    code, text = send_through(gw, second)
    assert code == 250, (code, text)
    delivered_once(sink, second)
    assert [m for m in sink.messages if b"first try" in m.data] == []
    records = gw.wait_for_records(lambda r: r.get("type") == "transaction", count=2)
    assert records[1]["action"] == "accept", records[1]
    assert records[1].get("tls", {}).get("downstream") in (None, False), records[1]


def test_required_to_a_server_without_starttls_is_451_and_nothing_is_delivered(start_gateway, sink):
    gw = start_gateway(sink=sink, downstream={"tls": "required"})
    content = make_message(subject="must not pass in the clear")
    with Raw(gw.port) as raw:
        raw.greet()
        raw.ehlo()
        raw.cmd(f"MAIL FROM:<{SENDER}>").check(250)
        raw.cmd(f"RCPT TO:<{RCPT}>").check(451, "4.7.5")
    never_delivered(sink, content)
    assert not sink.messages


# ------------------------------------------------------------------------------ Postfix on either side
# A private Postfix (test_postfix_client.PostfixInstance) as the mailbox server behind the gateway:
# an smtpd with smtpd_tls_cert_file on a free port, relaying what it accepts for example.org on to
# the test sink, so "the message lands" means the sink got it from Postfix. Postfix's TLS needs its
# tlsmgr service (session cache and entropy), which test_postfix_client's master.cf leaves out.
from test_postfix_client import MASTER_CF, POSTFIX, PostfixInstance, postfix_message  # noqa: E402

TLS_MASTER_CF = MASTER_CF + "tlsmgr    unix  -       -       n       1000?   1       tlsmgr\n"


class SendingPostfix(PostfixInstance):
    def write_config(self) -> None:
        (self.config_dir / "main.cf").write_text(self.main_cf())
        (self.config_dir / "master.cf").write_text(TLS_MASTER_CF)


class MailboxPostfix(PostfixInstance):
    def __init__(self, record_dir: Path, relay_port: int, smtpd_port: int, pair: Pair):
        super().__init__(record_dir, relay_port, {
            "smtpd_tls_cert_file": str(pair.certificate),
            "smtpd_tls_key_file": str(pair.key),
            "smtpd_tls_security_level": "may",
            "smtpd_tls_loglevel": "1",
            "mynetworks": "127.0.0.0/8",
            "relay_domains": "example.org",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
        })
        self.smtpd_port = smtpd_port

    def write_config(self) -> None:
        (self.config_dir / "main.cf").write_text(self.main_cf())
        (self.config_dir / "master.cf").write_text(
            TLS_MASTER_CF + f"127.0.0.1:{self.smtpd_port} inet n - n - - smtpd\n")


@pytest.fixture
def mailbox_postfix(tmp_path, sink, start_gateway):
    """Factory: mailbox_postfix(pair) -> a started Postfix smtpd serving `pair` over STARTTLS."""
    if not os.path.exists(POSTFIX):
        pytest.skip(f"{POSTFIX} is not installed (Debian package postfix)")
    instances: list[MailboxPostfix] = []

    def make(pair: Pair) -> MailboxPostfix:
        # Postfix's daemons run as `postfix`: the key must be readable by them.
        for path in (pair.certificate.parent, pair.certificate, pair.key):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        instance = MailboxPostfix(tmp_path / f"mailbox-postfix-{len(instances) + 1}", sink.port, free_port(), pair)
        instances.append(instance)
        instance.prepare()
        instance.start()
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", instance.smtpd_port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "Postfix's smtpd does not listen"
                time.sleep(0.1)
        return instance

    yield make
    for instance in reversed(instances):
        instance.stop()


def send_through(gw, content: bytes) -> tuple[int, str]:
    """One message through the gateway; the reply (code, text) at the first refusal or the end."""
    with Raw(gw.port) as raw:
        raw.greet()
        raw.ehlo()
        raw.cmd(f"MAIL FROM:<{SENDER}>").check(250)
        reply = raw.cmd(f"RCPT TO:<{RCPT}>")
        if reply.code != 250:
            return reply.code, reply.text
        raw.cmd("DATA").check(354)
        reply = raw.send_data(content)
        raw.cmd("QUIT")
        return reply.code, reply.text


def test_downstream_required_with_an_unverifiable_certificate_is_4xx_and_nothing_lands(
        start_gateway, sink, mailbox_postfix, certs):
    pf = mailbox_postfix(make_pair(certs, "mailbox.test"))  # self-signed: no CA vouches for it
    gw = start_gateway(downstream_port=pf.smtpd_port,
                       downstream={"tls": "required", "tls_name": "mailbox.test", "tls_ca_file": None})
    content = make_message(subject="must not land")
    code, text = send_through(gw, content)
    assert code == 451 and text.startswith("4.7.5"), (code, text)
    time.sleep(1.0)
    assert not sink.messages, "a message reached the mailbox over an unverified connection"
    record = gw.wait_for_records(lambda r: r.get("type") == "transaction")
    assert record and "certificate verify failed" in str(record[0].get("reason", "")) + str(record[0]), record


def test_downstream_required_with_its_ca_configured_lands_encrypted(start_gateway, sink, mailbox_postfix, certs):
    ca = make_pair(certs, "Test CA", is_ca=True, file_stem="ca")
    pf = mailbox_postfix(make_pair(certs, "mailbox.test", issuer=ca))
    gw = start_gateway(downstream_port=pf.smtpd_port,
                       downstream={"tls": "required", "tls_name": "mailbox.test", "tls_ca_file": str(ca.certificate)})
    contents = [make_message(subject=f"lands encrypted {i}") for i in range(2)]
    for content in contents:
        code, text = send_through(gw, content)
        assert code == 250, (code, text)
    messages = sink.wait_for_messages(2, timeout=20)
    assert len(messages) == 2
    # Postfix's own Received: (the first line) says the gateway's leg to it was TLS (RFC 3848).
    assert all(b"(Postfix) with ESMTPS id" in m.data.split(b"\r\n\tfor")[0] for m in messages), messages[0].data[:600]
    records = gw.wait_for_records(lambda r: r.get("type") == "transaction", count=2)
    assert [r["tls"]["downstream"] for r in records] == [True, True], records
    log = "\n".join(pf.log_lines())
    assert "Anonymous TLS connection established from" in log or "TLS connection established from" in log, log[-3000:]


@pytest.fixture
def sending_postfix(tmp_path, start_gateway):
    if not os.path.exists(POSTFIX):
        pytest.skip(f"{POSTFIX} is not installed (Debian package postfix)")
    instances: list[SendingPostfix] = []

    def make(relay_port: int, settings: dict) -> SendingPostfix:
        instance = SendingPostfix(tmp_path / f"postfix-{len(instances) + 1}", relay_port, settings)
        instances.append(instance)
        instance.prepare()
        instance.start()
        return instance

    yield make
    for instance in reversed(instances):
        instance.stop()


def test_postfix_relaying_with_smtp_tls_security_level_encrypt(start_gateway, sink, sending_postfix, certs):
    pair = make_pair(certs, HOSTNAME)
    gw = start_gateway(sink=sink, extra=tls_table(pair))
    pf = sending_postfix(gw.port, {"smtp_tls_security_level": "encrypt", "smtp_tls_loglevel": "1"})
    content = postfix_message(0, subject="encrypted end to end")
    pf.submit(SENDER, [RCPT], content)
    statuses = pf.wait_for_statuses(lambda s: s.to == RCPT)
    assert statuses and statuses[0].status == "sent", pf.explain(f"not sent: {statuses}")
    delivered = sink.wait_for_messages(1, timeout=20)[0].data
    first = delivered.split(b"\r\n\r\n")[0].decode("utf-8", "replace")
    assert "with ESMTPS" in first and "(using TLSv1.3 with cipher" in first, first
    assert "TLS connection established to" in "\n".join(pf.log_lines())
