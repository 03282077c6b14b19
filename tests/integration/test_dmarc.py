"""The dmarc stage (issue 4) through the real gateway, a real DNS server (dns_server.DnsServer:
Debian's unbound on loopback) and the real downstream (sink.Sink).

The pipeline is the one RFC 7489 needs: spf (fail and softfail only tagged, so the message reaches
the end of data), dkim (an unsigned message is not tagged, so that a "tag" in the log is
DMARC's own), dmarc. Every session starts with a PROXY v1 header, so the test chooses the client
address SPF sees, and each has its own PROXY source port, which finds its decision log record.
Signed messages are signed by an independent signer, Debian's python3-dkim (dkimpy), with an RSA
key made here by `openssl genrsa` and published in the DNS server's zones.

A case asserts
  (a) the reply to the end of data: 250, 550 5.7.26 (the domain's p=reject honoured), 451 4.7.26
      (temperror under on_temperror = "tempfail") or 550 5.7.1 (RFC 7489 §6.6.1: not exactly one
      From: field), and then that nothing reached the downstream;
  (b) what the downstream got: exactly one Authentication-Results whose authserv-id is
      server.hostname, with the spf and dkim entries and the exact dmarc entry
      "dmarc=<result> (p= [sp=] [pct=] dis=) header.from=<domain>";
  (c) the decision log: the dmarc stage at phase "data" with its verdict, result, From: domain,
      policy, disposition, record domain and both alignments.
"""

from __future__ import annotations

import base64
import itertools
import re
import subprocess
import time
from typing import NamedTuple, Optional, Sequence

import dkim
import pytest

from harness import (
    HOSTNAME, Raw, Reply, build_config, delivered_once, never_delivered, new_message_id,
    parse_header_block, run)

pytestmark = pytest.mark.time_limit(60)

CLIENT_IN = "192.0.2.7"  # inside every domain's SPF record below
CLIENT_OUT = "203.0.113.9"  # inside none of them: SPF fail
HELO = "mail.sender.example"
RCPT = "user@example.org"
DNS_TIMEOUT = "1s"  # dns.timeout of every gateway here; retries = 0
SPF_RECORD = "v=spf1 ip4:192.0.2.0/24 -all"
SELECTOR = "s1"

REFUSAL_5_7_26 = "5.7.26 Unauthenticated email from {} is not accepted due to domain's DMARC policy"
REFUSAL_5_7_1 = "5.7.1 Message must have exactly one From: field with an address (RFC 5322 3.6)"


# ------------------------------------------------------------------------------- key and zones
class Key(NamedTuple):
    pem: bytes  # PKCS#1 ("BEGIN RSA PRIVATE KEY"), as dkimpy's signer takes it
    public: str  # base64 SubjectPublicKeyInfo: the key record's p=

    @property
    def record(self) -> str:
        return f"v=DKIM1; k=rsa; p={self.public}"


def openssl_rsa_key(bits: int = 2048) -> Key:
    pem = subprocess.run(["openssl", "genrsa", "-traditional", str(bits)], capture_output=True, check=True,
                         timeout=60).stdout
    der = subprocess.run(["openssl", "rsa", "-pubout", "-outform", "DER"], input=pem, capture_output=True,
                         check=True, timeout=30).stdout
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----"), pem[:40]
    return Key(pem, base64.b64encode(der).decode())


def key_name(domain: str) -> str:
    return f"{SELECTOR}._domainkey.{domain}"


def zones(key: Key) -> dict:
    spf = {"TXT": SPF_RECORD}
    dkim_key = {"TXT": key.record}
    return {
        # p=reject, relaxed alignment; SPF and a DKIM key of its own and of a subdomain
        "brand.example": [spf],
        "_dmarc.brand.example": [{"TXT": "v=DMARC1; p=reject"}],
        key_name("brand.example"): [dkim_key],
        "bounce.brand.example": [spf],
        key_name("mail.brand.example"): [dkim_key],
        # strict alignment for both identifiers
        "strict.example": [spf],
        "_dmarc.strict.example": [{"TXT": "v=DMARC1; p=reject; aspf=s; adkim=s"}],
        "bounce.strict.example": [spf],
        key_name("mail.strict.example"): [dkim_key],
        # a third party: SPF passes for it and it signs, but it publishes no DMARC record
        "other.example": [spf],
        key_name("other.example"): [dkim_key],
        # the three policies, and pct=0
        "monitor.example": [spf],
        "_dmarc.monitor.example": [{"TXT": "v=DMARC1; p=none"}],
        "quarantine.example": [spf],
        "_dmarc.quarantine.example": [{"TXT": "v=DMARC1; p=quarantine"}],
        "sampled.example": [spf],
        "_dmarc.sampled.example": [{"TXT": "v=DMARC1; p=reject; pct=0"}],
        # the subdomain policy: only the organizational domain publishes, sp= is stricter than p=
        "org.example": [spf],
        "_dmarc.org.example": [{"TXT": "v=DMARC1; p=none; sp=reject"}],
        # no DMARC record; a DMARC lookup that times out; two DMARC records
        "norecord.example": [spf],
        "slow.example": [spf],
        "_dmarc.slow.example": ["TIMEOUT"],
        "twice.example": [spf],
        "_dmarc.twice.example": [{"TXT": "v=DMARC1; p=none"}, {"TXT": "v=DMARC1; p=reject"}],
        # the second author of a two-address From:
        "partner.example": [spf],
        "_dmarc.partner.example": [{"TXT": "v=DMARC1; p=reject"}],
        # a record libopendmarc cannot parse (p= is none of none, quarantine, reject)
        "broken.example": [spf],
        "_dmarc.broken.example": [{"TXT": "v=DMARC1; p=bogus"}],
    }


@pytest.fixture(scope="module")
def key() -> Key:
    return openssl_rsa_key(2048)


@pytest.fixture(scope="module")
def dns(tmp_path_factory, key):
    from dns_server import DnsServer

    server = DnsServer(zones(key), directory=tmp_path_factory.mktemp("dmarc-dns"))
    server.start()
    yield server
    server.stop()


def dns_table(dns) -> str:
    return f'[dns]\nservers = ["{dns.address}"]\ntimeout = "{DNS_TIMEOUT}"\nretries = 0\n'


def stages(**dmarc_keys) -> list[dict]:
    return [{"type": "spf", "on_fail": "tag", "on_softfail": "tag"},
            {"type": "dkim", "on_none": "accept"},
            {"type": "dmarc", **dmarc_keys}]


@pytest.fixture
def dmarc_gateway(start_gateway, sink, dns):
    """dmarc_gateway(**dmarc_keys): spf, dkim and a dmarc stage with those keys (e.g.
    on_policy_reject="tag", mode="shadow"), relaying to `sink`, resolving through `dns`."""

    def start(**keys):
        return start_gateway(sink=sink, server={"proxy_protocol": True}, stages=stages(**keys),
                             extra=dns_table(dns))

    return start


# ------------------------------------------------------------------------------- messages
def message(author: str | Sequence[str], *, subject: str = "dmarc test",
            from_fields: Optional[Sequence[str]] = None) -> bytes:
    """A message whose From: field names `author` (one address, or several in one field);
    `from_fields` gives the From: values outright (none, or several fields)."""
    if from_fields is None:
        authors = [author] if isinstance(author, str) else list(author)
        from_fields = [", ".join(f"<{a}>" for a in authors)]
    headers = [*(f"From: {value}" for value in from_fields),
               f"To: <{RCPT}>",
               f"Subject: {subject}",
               f"Message-ID: {new_message_id()}",
               "Date: Mon, 01 Jan 2024 12:00:00 +0000",
               "MIME-Version: 1.0",
               "Content-Type: text/plain; charset=us-ascii"]
    return ("\r\n".join(headers) + "\r\n\r\nHello.\r\n\r\nA DMARC test message.\r\n").encode()


def sign(content: bytes, key: Key, domain: str) -> bytes:
    """`content` with a relaxed/relaxed rsa-sha256 DKIM-Signature by dkimpy, d=`domain`."""
    signature = dkim.sign(content, SELECTOR.encode(), domain.encode(), key.pem,
                          canonicalize=(b"relaxed", b"relaxed"))
    assert signature.startswith(b"DKIM-Signature: ") and signature.endswith(b"\r\n"), signature
    # the signature verifies with the published key before the gateway sees it
    published = {f"{key_name(domain)}.": key.record.encode()}
    assert dkim.verify(signature + content, dnsfunc=lambda name, timeout=5: published.get(name.decode())), domain
    return signature + content


# ------------------------------------------------------------------------------- a session
_source_ports = itertools.count(21000)


class Session(NamedTuple):
    port: int  # the PROXY source port: the client port in the decision log
    end: Reply  # the reply to the end of data
    content: bytes
    record: dict  # the transaction's decision log record
    seconds: float  # from the end of data to its reply


def smtp(gw, *, sender: str, content: bytes, ip: str = CLIENT_IN) -> Session:
    port = next(_source_ports)
    with Raw(gw.port, timeout=20.0) as raw:
        raw.send(f"PROXY TCP4 {ip} 127.0.0.1 {port} 25\r\n".encode())
        raw.greet()
        raw.ehlo(HELO)
        raw.cmd(f"MAIL FROM:<{sender}>").check(250)
        rcpt = raw.cmd(f"RCPT TO:<{RCPT}>")
        assert rcpt.code == 250, f"RCPT refused (SPF runs with on_fail = tag): {rcpt}"
        raw.cmd("DATA").check(354)
        started = time.monotonic()
        end = raw.send_data(content)
        seconds = time.monotonic() - started
        raw.cmd("QUIT").check(221)
    records = gw.wait_for_records(lambda r: r.get("type") == "transaction" and r["client"]["port"] == port)
    assert len(records) == 1, f"expected one transaction record for client port {port}, got {records}"
    return Session(port, end, content, records[0], seconds)


def delivered(sink, session: Session) -> bytes:
    """The message as the downstream got it (asserts it arrived once, the client's bytes after
    the gateway's prepended header fields)."""
    data = delivered_once(sink, session.content)
    assert data.endswith(session.content), "the downstream did not get the client's bytes after the new headers"
    return data


def not_delivered(sink, session: Session) -> None:
    never_delivered(sink, session.content)


# ------------------------------------------------------------------------------- Authentication-Results
def _split_resinfo(value: str) -> list[str]:
    """The value split at ";" outside quoted strings and comments, each part's whitespace collapsed."""
    parts, current, depth, quoted, at = [], [], 0, False, 0
    while at < len(value):
        c = value[at]
        if c == "\\" and (quoted or depth):
            current.append(value[at:at + 2])
            at += 2
            continue
        if quoted:
            quoted = c != '"'
        elif c == '"' and not depth:
            quoted = True
        elif c == "(":
            depth += 1
        elif c == ")" and depth:
            depth -= 1
        elif c == ";" and not depth:
            parts.append("".join(current))
            current = []
            at += 1
            continue
        current.append(c)
        at += 1
    parts.append("".join(current))
    return [re.sub(r"\s+", " ", p).strip() for p in parts]


def auth_results(data: bytes) -> list[str]:
    """The entries (resinfo) of the one Authentication-Results field the message has, which must be
    the gateway's: the test messages bring none of their own (RFC 8601: one per message here)."""
    head, separator, _ = data.partition(b"\r\n\r\n")
    assert separator, f"no end of the header section: {data[:300]!r}"
    fields = [v for n, v in parse_header_block(head + b"\r\n") if n.lower() == "authentication-results"]
    assert len(fields) == 1, f"expected exactly one Authentication-Results field, got {fields}"
    parts = _split_resinfo(fields[0])
    assert parts[0] == HOSTNAME, f"authserv-id {parts[0]!r}, expected {HOSTNAME}: {fields[0]!r}"
    return parts[1:]


def method(entries: Sequence[str], name: str) -> list[str]:
    return [e for e in entries if e.split("=", 1)[0].strip().lower() == name]


def check_auth_results(data: bytes, *, spf: str, sender: str, dkim_results: Sequence[tuple[str, str]] = (),
                       dmarc: Sequence[str]) -> list[str]:
    """spf=<spf> for smtp.mailfrom=<sender>; one "dkim=<result> ... header.d=<d>" per signature (or
    none when unsigned: dkim=none); and exactly the `dmarc` entries, in order."""
    entries = auth_results(data)
    spf_entries = method(entries, "spf")
    assert len(spf_entries) == 1, entries
    assert re.fullmatch(rf"spf={spf}( \(.*\))? smtp\.mailfrom={re.escape(sender)}", spf_entries[0]), spf_entries
    dkim_entries = method(entries, "dkim")
    if not dkim_results:
        assert dkim_entries == ["dkim=none"], entries
    else:
        assert len(dkim_entries) == len(dkim_results), entries
        for entry, (result, d) in zip(dkim_entries, dkim_results):
            assert entry.startswith(f"dkim={result} "), entry
            assert f" header.d={d} " in entry + " " and f" header.s={SELECTOR} " in entry + " ", entry
    assert method(entries, "dmarc") == list(dmarc), entries
    # spf, then dkim, then dmarc: the stages' order
    assert [e.split("=", 1)[0] for e in entries] == (["spf"] + ["dkim"] * len(dkim_entries)
                                                       + ["dmarc"] * len(dmarc)), entries
    return entries


# ------------------------------------------------------------------------------- the decision log
def dmarc_outcome(record: dict) -> dict:
    found = [s for s in record["stages"] if s["stage"] == "dmarc"]
    assert len(found) == 1, f"expected one dmarc outcome, got {record['stages']}"
    assert found[0]["phase"] == "data", found[0]
    return found[0]


def check_log(session: Session, *, verdict: str, result: str, from_domain: str, action: str,
              policy: Optional[str] = None, disposition: Optional[str] = None,
              record_domain: Optional[str] = None, spf_aligned: bool = False, dkim_aligned: bool = False,
              reply: Optional[str] = None) -> dict:
    """The dmarc stage's outcome and the transaction's action. `policy` None: no record was used
    (none, temperror, permerror), so no policy keys are logged."""
    outcome = dmarc_outcome(session.record)
    assert outcome["verdict"] == verdict, f"verdict {outcome['verdict']!r}, expected {verdict!r}: {outcome}"
    assert outcome["result"] == result, f"result {outcome['result']!r}, expected {result!r}: {outcome}"
    assert outcome["from_domain"] == from_domain, outcome
    assert outcome["reason"].startswith(f"{result}: {from_domain}: "), outcome
    if policy is None:
        assert not {"policy", "disposition", "record_domain"} & set(outcome), outcome
    else:
        assert outcome["policy"] == policy, outcome
        assert outcome["disposition"] == disposition, outcome
        assert outcome["record_domain"] == record_domain, outcome
        assert outcome["spf_aligned"] is spf_aligned, outcome  # JSON booleans
        assert outcome["dkim_aligned"] is dkim_aligned, outcome
    if reply is None:
        assert "reply" not in outcome, outcome
    else:
        assert outcome["reply"] == reply, outcome
    assert session.record["action"] == action, f"action {session.record['action']!r}, expected {action!r}"
    return outcome


def check_refused(sink, session: Session, code: int, text: str) -> None:
    assert (session.end.code, session.end.text) == (code, text), f"expected {code} {text}, got {session.end}"
    assert session.record["reply"] == f"{code} {text}", session.record
    not_delivered(sink, session)


# ------------------------------------------------------------------------------- aligned passes
def test_pass_aligned_via_spf_only(dmarc_gateway, sink, dns):
    """Unsigned; MAIL FROM's domain is the From: domain and the client is in its SPF record."""
    session = smtp(dmarc_gateway(), sender="alice@brand.example", content=message("alice@brand.example"))
    session.end.check(250)
    check_auth_results(delivered(sink, session), spf="pass", sender="alice@brand.example",
                       dmarc=["dmarc=pass (p=reject dis=none) header.from=brand.example"])
    check_log(session, verdict="continue", result="pass", from_domain="brand.example", action="accept",
              policy="reject", disposition="none", record_domain="brand.example", spf_aligned=True)


def test_pass_aligned_via_dkim_only(dmarc_gateway, sink, dns, key):
    """SPF fails (the client is not in the record), the signature of the From: domain passes."""
    content = sign(message("alice@brand.example"), key, "brand.example")
    session = smtp(dmarc_gateway(), ip=CLIENT_OUT, sender="alice@brand.example", content=content)
    session.end.check(250)
    check_auth_results(delivered(sink, session), spf="fail", sender="alice@brand.example",
                       dkim_results=[("pass", "brand.example")],
                       dmarc=["dmarc=pass (p=reject dis=none) header.from=brand.example"])
    # the transaction is tagged by spf (on_fail = tag), not by dmarc
    check_log(session, verdict="continue", result="pass", from_domain="brand.example", action="tag",
              policy="reject", disposition="none", record_domain="brand.example", dkim_aligned=True)


def test_relaxed_alignment_via_a_subdomain(dmarc_gateway, sink, dns, key):
    """MAIL FROM bounce.brand.example and d=mail.brand.example both align with From: brand.example
    (the same organizational domain: under the unlisted TLD .example, the last two labels)."""
    gw = dmarc_gateway()
    session = smtp(gw, sender="bounces@bounce.brand.example", content=message("alice@brand.example"))
    session.end.check(250)
    check_auth_results(delivered(sink, session), spf="pass", sender="bounces@bounce.brand.example",
                       dmarc=["dmarc=pass (p=reject dis=none) header.from=brand.example"])
    check_log(session, verdict="continue", result="pass", from_domain="brand.example", action="accept",
              policy="reject", disposition="none", record_domain="brand.example", spf_aligned=True)

    content = sign(message("alice@brand.example"), key, "mail.brand.example")
    session = smtp(gw, ip=CLIENT_OUT, sender="alice@brand.example", content=content)
    session.end.check(250)
    check_auth_results(delivered(sink, session), spf="fail", sender="alice@brand.example",
                       dkim_results=[("pass", "mail.brand.example")],
                       dmarc=["dmarc=pass (p=reject dis=none) header.from=brand.example"])
    check_log(session, verdict="continue", result="pass", from_domain="brand.example", action="tag",
              policy="reject", disposition="none", record_domain="brand.example", dkim_aligned=True)


def test_strict_alignment_refuses_the_subdomain(dmarc_gateway, sink, dns, key):
    """aspf=s / adkim=s: bounce.strict.example's SPF pass and mail.strict.example's signature pass,
    but neither is strict.example itself: fail, and p=reject."""
    gw = dmarc_gateway()
    session = smtp(gw, sender="bounces@bounce.strict.example", content=message("alice@strict.example"))
    check_refused(sink, session, 550, REFUSAL_5_7_26.format("strict.example"))
    check_log(session, verdict="reject", result="fail", from_domain="strict.example", action="reject",
              policy="reject", disposition="reject", record_domain="strict.example",
              reply="550 " + REFUSAL_5_7_26.format("strict.example"))

    content = sign(message("alice@strict.example"), key, "mail.strict.example")
    session = smtp(gw, sender="bounces@bounce.strict.example", content=content)
    check_refused(sink, session, 550, REFUSAL_5_7_26.format("strict.example"))
    check_log(session, verdict="reject", result="fail", from_domain="strict.example", action="reject",
              policy="reject", disposition="reject", record_domain="strict.example",
              reply="550 " + REFUSAL_5_7_26.format("strict.example"))

    # tagged instead, the headers show both passes and the strict fail
    session = smtp(dmarc_gateway(on_policy_reject="tag"), sender="bounces@bounce.strict.example", content=content)
    session.end.check(250)
    check_auth_results(delivered(sink, session), spf="pass", sender="bounces@bounce.strict.example",
                       dkim_results=[("pass", "mail.strict.example")],
                       dmarc=["dmarc=fail (p=reject dis=reject) header.from=strict.example"])


def test_unaligned_passes_are_a_fail(dmarc_gateway, sink, dns, key):
    """SPF passes for other.example and the signature of other.example passes, but the author is
    brand.example (p=reject)."""
    content = sign(message("alice@brand.example"), key, "other.example")
    session = smtp(dmarc_gateway(), sender="alice@other.example", content=content)
    refusal = REFUSAL_5_7_26.format("brand.example")
    check_refused(sink, session, 550, refusal)
    check_log(session, verdict="reject", result="fail", from_domain="brand.example", action="reject",
              policy="reject", disposition="reject", record_domain="brand.example", reply="550 " + refusal)
    # the dkim stage saw a passing signature: only the alignment failed
    dkim_stage = [s for s in session.record["stages"] if s["stage"] == "dkim"]
    assert dkim_stage and dkim_stage[0]["result"] == "pass", dkim_stage


# ------------------------------------------------------------------------------- policies
def test_policy_none_fail_is_delivered(dmarc_gateway, sink, dns):
    """p=none: the domain asks for nothing; on_policy_none = tag (default), then accept."""
    session = smtp(dmarc_gateway(), sender="alice@other.example", content=message("alice@monitor.example"))
    session.end.check(250)
    check_auth_results(delivered(sink, session), spf="pass", sender="alice@other.example",
                       dmarc=["dmarc=fail (p=none dis=none) header.from=monitor.example"])
    check_log(session, verdict="tag", result="fail", from_domain="monitor.example", action="tag",
              policy="none", disposition="none", record_domain="monitor.example")

    session = smtp(dmarc_gateway(on_policy_none="accept"), sender="alice@other.example",
                   content=message("alice@monitor.example"))
    session.end.check(250)
    delivered(sink, session)
    check_log(session, verdict="continue", result="fail", from_domain="monitor.example", action="accept",
              policy="none", disposition="none", record_domain="monitor.example")


def test_policy_quarantine_fail_is_delivered_and_tagged(dmarc_gateway, sink, dns):
    """SPF passes (unaligned) and the message is unsigned (dkim: accept): only dmarc tags."""
    session = smtp(dmarc_gateway(), sender="alice@other.example", content=message("alice@quarantine.example"))
    session.end.check(250)
    check_auth_results(delivered(sink, session), spf="pass", sender="alice@other.example",
                       dmarc=["dmarc=fail (p=quarantine dis=quarantine) header.from=quarantine.example"])
    check_log(session, verdict="tag", result="fail", from_domain="quarantine.example", action="tag",
              policy="quarantine", disposition="quarantine", record_domain="quarantine.example")
    assert [s["verdict"] for s in session.record["stages"] if s["stage"] != "dmarc"] == ["continue"] * 3, (
        session.record["stages"])


def test_policy_reject_fail_is_refused(dmarc_gateway, sink, dns):
    session = smtp(dmarc_gateway(), sender="alice@other.example", content=message("alice@brand.example"))
    refusal = REFUSAL_5_7_26.format("brand.example")
    check_refused(sink, session, 550, refusal)
    check_log(session, verdict="reject", result="fail", from_domain="brand.example", action="reject",
              policy="reject", disposition="reject", record_domain="brand.example", reply="550 " + refusal)


def test_policy_reject_tagged_by_the_site(dmarc_gateway, sink, dns):
    """on_policy_reject = "tag": delivered, and the header says what the domain asked for."""
    session = smtp(dmarc_gateway(on_policy_reject="tag"), sender="alice@other.example",
                   content=message("alice@brand.example"))
    session.end.check(250)
    check_auth_results(delivered(sink, session), spf="pass", sender="alice@other.example",
                       dmarc=["dmarc=fail (p=reject dis=reject) header.from=brand.example"])
    check_log(session, verdict="tag", result="fail", from_domain="brand.example", action="tag",
              policy="reject", disposition="reject", record_domain="brand.example")


def test_pct_0_applies_the_next_milder_policy(dmarc_gateway, sink, dns):
    """p=reject; pct=0: no message is in the sample, so quarantine applies (§6.6.4): tagged."""
    gw = dmarc_gateway()
    for _ in range(3):  # deterministic: never refused
        session = smtp(gw, sender="alice@other.example", content=message("alice@sampled.example"))
        session.end.check(250)
        check_auth_results(delivered(sink, session), spf="pass", sender="alice@other.example",
                           dmarc=["dmarc=fail (p=reject pct=0 dis=quarantine) header.from=sampled.example"])
        check_log(session, verdict="tag", result="fail", from_domain="sampled.example", action="tag",
                  policy="reject", disposition="quarantine", record_domain="sampled.example")
    # apply_pct = false: pct= is not applied, every message gets p=reject
    session = smtp(dmarc_gateway(apply_pct=False), sender="alice@other.example", content=message("alice@sampled.example"))
    refusal = REFUSAL_5_7_26.format("sampled.example")
    check_refused(sink, session, 550, refusal)
    check_log(session, verdict="reject", result="fail", from_domain="sampled.example", action="reject",
              policy="reject", disposition="reject", record_domain="sampled.example", reply="550 " + refusal)


def test_subdomain_policy_applies_below_the_organizational_domain(dmarc_gateway, sink, dns):
    """Only _dmarc.org.example exists: "p=none; sp=reject". From: sub.org.example finds it at the
    organizational domain, where sp= applies: refused."""
    gw = dmarc_gateway()
    before = dns.query_count("_dmarc.sub.org.example", "TXT")
    session = smtp(gw, sender="alice@other.example", content=message("x@sub.org.example"))
    refusal = REFUSAL_5_7_26.format("sub.org.example")
    check_refused(sink, session, 550, refusal)
    check_log(session, verdict="reject", result="fail", from_domain="sub.org.example", action="reject",
              policy="reject", disposition="reject", record_domain="org.example", reply="550 " + refusal)
    # the author domain's own record was asked for first (§6.6.3)
    time.sleep(0.2)
    assert dns.query_count("_dmarc.sub.org.example", "TXT") > before, dns.queries()[-10:]

    session = smtp(dmarc_gateway(on_policy_reject="tag"), sender="alice@other.example",
                   content=message("x@sub.org.example"))
    session.end.check(250)
    check_auth_results(delivered(sink, session), spf="pass", sender="alice@other.example",
                       dmarc=["dmarc=fail (p=none sp=reject dis=reject) header.from=sub.org.example"])


def test_without_sp_p_applies_below_the_organizational_domain(dmarc_gateway, sink, dns):
    """_dmarc.brand.example has no sp=: From: news.brand.example finds it and p=reject applies."""
    session = smtp(dmarc_gateway(), sender="alice@other.example", content=message("x@news.brand.example"))
    refusal = REFUSAL_5_7_26.format("news.brand.example")
    check_refused(sink, session, 550, refusal)
    check_log(session, verdict="reject", result="fail", from_domain="news.brand.example", action="reject",
              policy="reject", disposition="reject", record_domain="brand.example", reply="550 " + refusal)
    # and a subdomain aligns with it relaxed: SPF passes for brand.example itself
    session = smtp(dmarc_gateway(), sender="alice@brand.example", content=message("x@news.brand.example"))
    session.end.check(250)
    check_auth_results(delivered(sink, session), spf="pass", sender="alice@brand.example",
                       dmarc=["dmarc=pass (p=reject dis=none) header.from=news.brand.example"])
    check_log(session, verdict="continue", result="pass", from_domain="news.brand.example", action="accept",
              policy="reject", disposition="none", record_domain="brand.example", spf_aligned=True)


def test_organizational_domain_itself_gets_p(dmarc_gateway, sink, dns):
    """From: org.example: the record is its own, p=none applies (not sp=reject)."""
    session = smtp(dmarc_gateway(), sender="alice@other.example", content=message("x@org.example"))
    session.end.check(250)
    check_auth_results(delivered(sink, session), spf="pass", sender="alice@other.example",
                       dmarc=["dmarc=fail (p=none sp=reject dis=none) header.from=org.example"])
    check_log(session, verdict="tag", result="fail", from_domain="org.example", action="tag",
              policy="none", disposition="none", record_domain="org.example")


# ------------------------------------------------------------------------------- none and errors
def test_no_record_is_none(dmarc_gateway, sink, dns):
    session = smtp(dmarc_gateway(), sender="alice@norecord.example", content=message("alice@norecord.example"))
    session.end.check(250)
    check_auth_results(delivered(sink, session), spf="pass", sender="alice@norecord.example",
                       dmarc=['dmarc=none reason="no DMARC record" header.from=norecord.example'])
    check_log(session, verdict="continue", result="none", from_domain="norecord.example", action="accept")


def test_policy_lookup_timeout_is_temperror(dmarc_gateway, sink, dns):
    """_dmarc.slow.example never answers: after dns.timeout (1 s, no retry), temperror; tagged by
    default, 451 4.7.26 under on_temperror = "tempfail"."""
    session = smtp(dmarc_gateway(), sender="alice@slow.example", content=message("alice@slow.example"))
    session.end.check(250)
    assert 0.9 <= session.seconds < 6, f"temperror after {session.seconds:.1f} s"
    data = delivered(sink, session)
    [entry] = method(auth_results(data), "dmarc")
    check_auth_results(data, spf="pass", sender="alice@slow.example", dmarc=[entry])
    assert re.fullmatch(r'dmarc=temperror reason="[^"]*_dmarc\.slow\.example[^"]*" header\.from=slow\.example',
                        entry), entry
    outcome = check_log(session, verdict="tag", result="temperror", from_domain="slow.example", action="tag")
    assert "timeout" in outcome["reason"] and "_dmarc.slow.example" in outcome["reason"], outcome

    session = smtp(dmarc_gateway(on_temperror="tempfail"), sender="alice@slow.example",
                   content=message("alice@slow.example"))
    check_refused(sink, session, 451, "4.7.26 DMARC policy lookup failed, try again later")
    check_log(session, verdict="tempfail", result="temperror", from_domain="slow.example", action="tempfail",
              reply="451 4.7.26 DMARC policy lookup failed, try again later")


def test_two_dmarc_records_are_permerror(dmarc_gateway, sink, dns):
    session = smtp(dmarc_gateway(), sender="alice@twice.example", content=message("alice@twice.example"))
    session.end.check(250)
    check_auth_results(delivered(sink, session), spf="pass", sender="alice@twice.example",
                       dmarc=['dmarc=permerror reason="more than one DMARC record at _dmarc.twice.example" '
                              'header.from=twice.example'])
    check_log(session, verdict="tag", result="permerror", from_domain="twice.example", action="tag")


def test_unparsable_record_is_permerror(dmarc_gateway, sink, dns):
    session = smtp(dmarc_gateway(on_permerror="reject"), sender="alice@broken.example",
                   content=message("alice@broken.example"))
    # permerror is no DMARC refusal: on_permerror = reject uses the same 550 5.7.26 text
    assert session.end.code == 550 and session.end.enhanced == "5.7.26", session.end
    not_delivered(sink, session)
    session = smtp(dmarc_gateway(), sender="alice@broken.example", content=message("alice@broken.example"))
    session.end.check(250)
    check_auth_results(delivered(sink, session), spf="pass", sender="alice@broken.example",
                       dmarc=['dmarc=permerror reason="DMARC record does not parse: v=DMARC1; p=bogus" '
                              'header.from=broken.example'])
    check_log(session, verdict="tag", result="permerror", from_domain="broken.example", action="tag")


# ------------------------------------------------------------------------------- From: fields
def test_two_addresses_in_one_from_the_strictest_fail_decides(dmarc_gateway, sink, dns):
    """From: <alice@brand.example>, <bob@partner.example>: brand.example passes (SPF aligned),
    partner.example fails and says p=reject: refused naming partner.example (§6.6.1)."""
    content = message(["alice@brand.example", "bob@partner.example"])
    session = smtp(dmarc_gateway(), sender="alice@brand.example", content=content)
    refusal = REFUSAL_5_7_26.format("partner.example")
    check_refused(sink, session, 550, refusal)
    outcome = check_log(session, verdict="reject", result="fail", from_domain="partner.example", action="reject",
                        policy="reject", disposition="reject", record_domain="partner.example",
                        reply="550 " + refusal)
    assert outcome["from_domains"] == [
        {"from_domain": "brand.example", "result": "pass", "policy": "reject", "disposition": "none"},
        {"from_domain": "partner.example", "result": "fail", "policy": "reject", "disposition": "reject"},
    ], outcome

    # the order of the addresses does not matter
    content = message(["bob@partner.example", "alice@brand.example"])
    session = smtp(dmarc_gateway(), sender="alice@brand.example", content=content)
    check_refused(sink, session, 550, refusal)

    # tagged: one dmarc entry per author domain, in the From: field's order
    content = message(["alice@brand.example", "bob@partner.example"])
    session = smtp(dmarc_gateway(on_policy_reject="tag"), sender="alice@brand.example", content=content)
    session.end.check(250)
    check_auth_results(delivered(sink, session), spf="pass", sender="alice@brand.example",
                       dmarc=["dmarc=pass (p=reject dis=none) header.from=brand.example",
                              "dmarc=fail (p=reject dis=reject) header.from=partner.example"])


@pytest.mark.parametrize("fields", [
    ["<alice@brand.example>", "<alice@brand.example>"],  # two From: fields
    [],  # none
], ids=["two-from-fields", "no-from-field"])
def test_not_exactly_one_from_field_is_refused(dmarc_gateway, sink, dns, fields):
    """§6.6.1: no From: field, or several, cannot be evaluated: on_invalid_from = reject."""
    content = message("", from_fields=fields)
    session = smtp(dmarc_gateway(), sender="alice@brand.example", content=content)
    check_refused(sink, session, 550, REFUSAL_5_7_1)
    outcome = dmarc_outcome(session.record)
    assert (outcome["verdict"], outcome["result"]) == ("reject", "permerror"), outcome
    assert outcome["reply"] == "550 " + REFUSAL_5_7_1, outcome
    assert outcome["reason"] == ("more than one From: field" if fields else "no From: field"), outcome
    assert session.record["action"] == "reject", session.record


# ------------------------------------------------------------------------------- shadow, config
def test_shadow_mode_logs_the_reject_and_delivers(dmarc_gateway, sink, dns):
    session = smtp(dmarc_gateway(mode="shadow"), sender="alice@other.example", content=message("alice@brand.example"))
    session.end.check(250)
    data = delivered(sink, session)
    outcome = check_log(session, verdict="reject", result="fail", from_domain="brand.example", action="accept",
                        policy="reject", disposition="reject", record_domain="brand.example",
                        reply="550 " + REFUSAL_5_7_26.format("brand.example"))
    assert outcome.get("shadow") is True, outcome
    # shadow: nothing but the log; spf and dkim still add their entries
    entries = auth_results(data)
    assert [e.split("=", 1)[0] for e in entries] == ["spf", "dkim"], entries


def check_config(mailgate_bin, tmp_path, stage_list: list[dict]):
    config = build_config(stages=stage_list, extra='[dns]\nservers = ["127.0.0.1:53"]\n')
    path = tmp_path / "mailgate.toml"
    path.write_text(config.replace("{port}", "2600").replace("{sink_port}", "2601").replace("{tmp}", str(tmp_path)))
    return path, run([mailgate_bin, "--check-config", str(path)], timeout=10, cwd=tmp_path)


def stage_line(path, index: int) -> int:
    """The line of the index-th [[stage]] table's type = key."""
    lines = path.read_text().splitlines()
    starts = [n for n, line in enumerate(lines, 1) if line == "[[stage]]"]
    return next(n for n in range(starts[index], len(lines) + 1) if lines[n - 1].startswith("type = "))


@pytest.mark.parametrize("order, missing", [
    (["dmarc"], "spf, dkim"),  # it would refuse mail that SPF passes
    (["spf", "dmarc"], "dkim"),
    (["dkim", "dmarc"], "spf"),
    (["dmarc", "spf", "dkim"], "spf, dkim"),
    (["spf", "dmarc", "dkim"], "dkim"),
])
def test_dmarc_without_spf_and_dkim_before_it_is_a_config_error(mailgate_bin, tmp_path, order, missing):
    path, result = check_config(mailgate_bin, tmp_path, [{"type": t} for t in order])
    assert result.returncode == 1, f"{order}: exit {result.returncode}\n{result.stderr}"
    where = f"{path}:{stage_line(path, order.index('dmarc'))}: stage[{order.index('dmarc')}].type: "
    assert (where + "the dmarc stage must come after the spf stage and the dkim stage") in result.stderr, result.stderr
    assert f"missing before it: {missing}\n" in result.stderr, result.stderr


def test_spf_then_dkim_then_dmarc_is_valid(mailgate_bin, tmp_path):
    path, result = check_config(mailgate_bin, tmp_path, stages())
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("psl, why", [("{tmp}/no-such-list.dat", "No such file or directory"),
                                      ("{tmp}", "Is a directory"),
                                      ("/dev/null", "is empty")])
def test_a_public_suffix_list_that_cannot_be_read_is_a_config_error(mailgate_bin, tmp_path, psl, why):
    """Not a list silently taken as empty, which would stop a parent domain's p=reject applying."""
    path, result = check_config(mailgate_bin, tmp_path, stages(public_suffix_list=psl))
    assert result.returncode == 1, result.stderr
    line = path.read_text().splitlines().index(f'public_suffix_list = "{psl.replace("{tmp}", str(tmp_path))}"') + 1
    assert f"{path}:{line}: stage[2].public_suffix_list: " in result.stderr, result.stderr
    assert why in result.stderr, result.stderr

