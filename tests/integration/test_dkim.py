"""The dkim stage (issue 4) through the real gateway, a real DNS server (dns_server.DnsServer:
Debian's unbound on loopback) and the real downstream (sink.Sink).

Every message is signed by an independent signer, Debian's python3-dkim (dkimpy), with keys made
here (python3-cryptography) and published in the DNS server's zones; the ed25519 case is RFC 8463
appendix A.3 verbatim, with the keys of A.2. A case asserts
  (a) the reply to the end of data: 250, or the RFC 7372 refusal the policy asks for (550 5.7.20,
      550 5.7.21, 550 5.7.22, 451 4.7.20), and then that nothing reached the downstream;
  (b) what the downstream got: exactly one Authentication-Results whose authserv-id is
      server.hostname, with one "dkim=<result> [reason=...] header.d= header.s= header.a= header.b="
      entry per signature, in header order, header.b= a prefix of that signature's b= (RFC 6008);
      and, for the passing signatures, that they still verify at the downstream (dkimpy again);
  (c) the decision log: the dkim stage at phase "data" with its verdict, the overall result and
      each signature's domain, selector, result, algorithm, key_bits and reason.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from pathlib import Path
from typing import NamedTuple, Optional, Sequence

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from dns_server import DnsServer
from harness import (
    HOSTNAME, Raw, Reply, delivered_once, dot_stuff, make_message, never_delivered, parse_header_block)

pytestmark = pytest.mark.time_limit(60)

RCPT = "user@example.org"
DNS_TIMEOUT = "1s"  # dns.timeout of every gateway here; retries = 0

DOMAIN = "good.dkim.example"  # the author's domain (From:) and the main signer
OTHER = "other.dkim.example"  # a second signer, not the author's domain
AUTHOR = f"alice@{DOMAIN}"
RFC8463_MESSAGE = Path(__file__).resolve().parents[1] / "data" / "dkim" / "rfc8463-A3.eml"
FOOTBALL = "football.example.com"
# Issue 12: a d= that a reader taking "(" for a comment would read as "legitimate.com".
INJECTED_D = "legitimate.com(.attacker.com"
# RFC 8463 appendix A.2: the ed25519 public key and the RSA key (the one of RFC 6376 appendix C).
RFC8463_ED25519 = "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
RFC8463_RSA = ("v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08"
               "a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKr"
               "M3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB")


# ------------------------------------------------------------------------------- keys and zones
class Key(NamedTuple):
    pem: bytes  # PKCS#1 private key, as dkim.sign takes it
    public: str  # base64 SubjectPublicKeyInfo: the key record's p=
    bits: int

    @property
    def record(self) -> str:
        return f"v=DKIM1; k=rsa; p={self.public}"


def rsa_key(bits: int) -> Key:
    private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return Key(pem, base64.b64encode(der).decode(), bits)


class Keys(NamedTuple):
    main: Key  # sel2048._domainkey.good.dkim.example
    other: Key  # sel1024._domainkey.other.dkim.example
    small: Key  # small._domainkey.good.dkim.example: 512 bits


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(rsa_key(2048), rsa_key(1024), rsa_key(512))


def key_name(selector: str, domain: str) -> str:
    return f"{selector}._domainkey.{domain}"


def zones(keys: Keys) -> dict:
    return {
        DOMAIN: [{"A": "192.0.2.1"}],
        key_name("sel2048", DOMAIN): [{"TXT": keys.main.record}],
        key_name("small", DOMAIN): [{"TXT": keys.small.record}],
        # RFC 6376 §3.6.1: an empty p= is a revoked key
        key_name("revoked", DOMAIN): [{"TXT": "v=DKIM1; k=rsa; p="}],
        # no key record: missing._domainkey.good.dkim.example is NXDOMAIN
        key_name("slow", DOMAIN): ["TIMEOUT"],
        key_name("sel1024", OTHER): [{"TXT": keys.other.record}],
        key_name("brisbane", FOOTBALL): [{"TXT": RFC8463_ED25519}],
        key_name("test", FOOTBALL): [{"TXT": RFC8463_RSA}],
        key_name("sel2048", INJECTED_D): [{"TXT": keys.main.record}],
    }


@pytest.fixture(scope="module")
def dns(tmp_path_factory, keys):
    server = DnsServer(zones(keys), directory=tmp_path_factory.mktemp("dkim-dns"))
    server.start()
    yield server
    server.stop()


def dns_table(dns: DnsServer) -> str:
    return f'[dns]\nservers = ["{dns.address}"]\ntimeout = "{DNS_TIMEOUT}"\nretries = 0\n'


@pytest.fixture
def dkim_gateway(start_gateway, sink, dns):
    """dkim_gateway(**stage_keys): a gateway with one dkim stage (keys as in its [[stage]] table,
    e.g. on_fail="reject", mode="shadow"), relaying to `sink`, resolving through `dns`."""

    def start(**keys):
        return start_gateway(sink=sink, stages=[{"type": "dkim", **keys}], extra=dns_table(dns))

    return start


# ------------------------------------------------------------------------------- signing
def message(subject: str = "dkim test", body: str = "Hello.\r\n\r\nThis is a test message.\r\n",
            sender: str = AUTHOR, extra_headers: Sequence[str] = ()) -> bytes:
    return make_message(subject=subject, body=body, sender=sender, to=RCPT, extra_headers=extra_headers)


def sign(content: bytes, key: Key, selector: str, domain: str = DOMAIN, *, canon: str = "relaxed/relaxed",
         algorithm: str = "rsa-sha256", length: bool = False) -> bytes:
    """`content` with one more DKIM-Signature on top, made by dkimpy."""
    header, body = canon.split("/")
    signature = dkim.sign(content, selector.encode(), domain.encode(), key.pem,
                          canonicalize=(header.encode(), body.encode()),
                          signature_algorithm=algorithm.encode(), length=length)
    assert signature.startswith(b"DKIM-Signature: ") and signature.endswith(b"\r\n"), signature
    return signature + content


def sign_with_expiry(content: bytes, key: Key, selector: str, domain: str, *, t: int, x: int) -> bytes:
    """A relaxed/relaxed rsa-sha256 signature with t= and x= (dkim.sign writes no x=): dkimpy's own
    signing primitive, DKIM.gen_header, with the tag list of dkim.sign plus x=."""
    signer = dkim.DKIM(content, signature_algorithm=b"rsa-sha256")
    signer.hasher = hashlib.sha256
    policy = dkim.CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
    include = tuple(h.lower() for h in signer.default_sign_headers())
    body_hash = base64.b64encode(hashlib.sha256(policy.canonicalize_body(signer.body)).digest())
    fields = [(b"v", b"1"), (b"a", b"rsa-sha256"), (b"c", b"relaxed/relaxed"), (b"d", domain.encode()),
              (b"i", b"@" + domain.encode()), (b"q", b"dns/txt"), (b"s", selector.encode()),
              (b"t", str(t).encode()), (b"x", str(x).encode()), (b"h", b" : ".join(include)),
              (b"bh", body_hash), (b"b", b"0" * 60)]
    value = signer.gen_header(fields, include, policy, b"DKIM-Signature",
                              dkim.crypto.parse_pem_private_key(key.pem))
    return b"DKIM-Signature: " + value + content


def replace_once(content: bytes, old: bytes, new: bytes) -> bytes:
    assert content.count(old) == 1, f"{old!r} occurs {content.count(old)} times in {content!r}"
    return content.replace(old, new)


def header_fields(content: bytes) -> list[tuple[str, str]]:
    """(name, unfolded value) of each header field; a message may be all header (no empty line)."""
    head, separator, _ = content.partition(b"\r\n\r\n")
    return parse_header_block(head + b"\r\n" if separator else content)


def signature_values(content: bytes) -> list[dict]:
    """The tags of each DKIM-Signature of `content`, in header order (b= without FWS)."""
    found = []
    for name, value in header_fields(content):
        if name.lower() == "dkim-signature":
            tags = {}
            for part in value.split(";"):
                key, equals, val = part.partition("=")
                if equals:
                    tags[key.strip()] = re.sub(r"\s+", "", val)
            found.append(tags)
    return found


def break_signature(content: bytes) -> bytes:
    """Corrupts the b= of the topmost DKIM-Signature (the base64 stays valid)."""
    b = signature_values(content)[0]["b"]
    middle = len(b) // 2
    chunk = b[middle:middle + 4]
    assert content.count(chunk.encode()) == 1, chunk
    swapped = chunk[::-1] if chunk[::-1] != chunk else "AAAA"
    return replace_once(content, chunk.encode(), swapped.encode())


def rfc8463_message() -> bytes:
    text = RFC8463_MESSAGE.read_bytes()
    assert b"\r" not in text, "the RFC 8463 A.3 file is expected with LF line ends"
    return text.replace(b"\n", b"\r\n")


def published_key(name: bytes, timeout: int = 5) -> Optional[bytes]:
    """dkimpy's dnsfunc for re-verifying at the downstream: the test zones' key records."""
    return _PUBLISHED.get(name.decode().rstrip(".").lower())


_PUBLISHED: dict[str, bytes] = {}


@pytest.fixture(autouse=True)
def _published(keys):
    for name, entries in zones(keys).items():
        for entry in entries:
            if isinstance(entry, dict) and "TXT" in entry:
                _PUBLISHED[name.lower()] = entry["TXT"].encode()


# ------------------------------------------------------------------------------- a transaction
class Sent(NamedTuple):
    port: int  # the client's port: finds the transaction's log record
    content: bytes
    end: Reply  # the reply to the end of data
    record: dict
    seconds: float  # from the end of data to its reply


def send(gw, content: bytes, sender: str = AUTHOR) -> Sent:
    with Raw.session(gw.port, timeout=20.0) as raw:
        port = raw.local_port
        raw.cmd(f"MAIL FROM:<{sender}>").check(250)
        raw.cmd(f"RCPT TO:<{RCPT}>").check(250)
        raw.cmd("DATA").check(354)
        stuffed = dot_stuff(content)
        raw.send(stuffed[:-3])
        started = time.monotonic()
        raw.send(stuffed[-3:])  # ".\r\n"
        end = raw.read_reply()
        seconds = time.monotonic() - started
        raw.cmd("QUIT").check(221)
    records = gw.wait_for_records(lambda r: r.get("type") == "transaction" and r["client"]["port"] == port)
    assert len(records) == 1, f"expected one transaction record for client port {port}, got {records}"
    return Sent(port, content, end, records[0], seconds)


def delivered(sink, sent: Sent) -> bytes:
    """The message as the downstream got it (asserts it arrived once)."""
    return delivered_once(sink, sent.content)


def not_delivered(sink, sent: Sent) -> None:
    never_delivered(sink, sent.content)


# ------------------------------------------------------------------------------- Authentication-Results
class DkimEntry(NamedTuple):
    result: str
    reason: Optional[str]
    d: str
    s: str
    a: str
    b: str


def _split_outside_quotes(text: str, separator: str) -> list[str]:
    parts, current, quoted, escaped = [], [], False, False
    for c in text:
        if escaped:
            current.append(c)
            escaped = False
        elif quoted and c == "\\":
            current.append(c)
            escaped = True
        elif c == '"':
            quoted = not quoted
            current.append(c)
        elif c == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
    assert not quoted, f"unbalanced quotes in {text!r}"
    parts.append("".join(current))
    return parts


def _unquote(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value[1:-1]) if value.startswith('"') else value


_VALUE = r'(?:"(?:[^"\\]|\\.)*"|[^\s";]+)'
_DKIM_ENTRY = re.compile(rf'dkim=(?P<result>[a-z]+)(?: reason=(?P<reason>"(?:[^"\\]|\\.)*"))?'
                         rf' header\.d=(?P<d>{_VALUE}) header\.s=(?P<s>{_VALUE})'
                         rf'(?: header\.a=(?P<a>{_VALUE}))? header\.b=(?P<b>{_VALUE})')


def auth_results(message: bytes) -> list[str]:
    """The values of the message's Authentication-Results fields."""
    return [v for n, v in header_fields(message) if n.lower() == "authentication-results"]


def our_auth_results(message: bytes) -> list[str]:
    """The resinfo parts of the message's one Authentication-Results, which must be ours."""
    fields = auth_results(message)
    assert len(fields) == 1, f"expected exactly one Authentication-Results header, got {fields}"
    parts = [p.strip() for p in _split_outside_quotes(fields[0], ";")]
    assert parts[0] == HOSTNAME, f"authserv-id {parts[0]!r}, expected {HOSTNAME}: {fields[0]!r}"
    return parts[1:]


def dkim_entries(message: bytes) -> list[DkimEntry]:
    """Each dkim= entry of our Authentication-Results, checked against the form of the stage:
    dkim=<result> [reason="..."] header.d= header.s= header.a= header.b=."""
    entries = []
    for part in our_auth_results(message):
        m = _DKIM_ENTRY.fullmatch(part)
        assert m, f"not a dkim= entry of the form the stage writes: {part!r}"
        entries.append(DkimEntry(m["result"], _unquote(m["reason"]) if m["reason"] else None,
                                 _unquote(m["d"]), _unquote(m["s"]), _unquote(m["a"] or ""), _unquote(m["b"])))
    return entries


# ------------------------------------------------------------------------------- expectations
class Expect(NamedTuple):
    """What one signature should come out as."""
    result: str
    domain: str
    selector: str
    algorithm: str = "rsa-sha256"  # "": none named (no header.a=, no "algorithm" in the log)
    reason: Optional[str] = None  # exact; None: no reason (pass) ...
    reason_like: Optional[str] = None  # ... or a regular expression it must match (library text)
    key_bits: Optional[int] = None  # None: not checked


def dkim_outcome(record: dict) -> dict:
    found = [s for s in record["stages"] if s["stage"] == "dkim"]
    assert len(found) == 1, f"expected one dkim outcome in the log record: {record['stages']}"
    assert found[0]["phase"] == "data", found[0]
    return found[0]


def check_reason(expect: Expect, reason: Optional[str], where) -> None:
    if expect.reason_like is not None:
        assert reason and re.search(expect.reason_like, reason), f"reason {reason!r} !~ {expect.reason_like!r}: {where}"
    else:
        assert reason == expect.reason, f"reason {reason!r}, expected {expect.reason!r}: {where}"


def check_log(sent: Sent, *, result: str, verdict: str, action: str, expects: Sequence[Expect],
              reply: Optional[str] = None, shadow: bool = False) -> dict:
    outcome = dkim_outcome(sent.record)
    assert outcome.get("shadow", False) is shadow, outcome
    assert outcome["result"] == result, f"log result {outcome['result']!r}, expected {result!r}: {outcome}"
    assert outcome["verdict"] == verdict, f"verdict {outcome['verdict']!r}, expected {verdict!r}: {outcome}"
    count = len(expects)
    assert outcome["reason"] == (f"{result}: {count} signature{'' if count == 1 else 's'}" if count
                                 else f"{result}: no signature"), outcome
    signatures = outcome["signatures"]
    assert len(signatures) == count, f"expected {count} signatures in the log, got {signatures}"
    for logged, expect in zip(signatures, expects):
        assert logged["domain"] == expect.domain and logged["selector"] == expect.selector, (logged, expect)
        assert logged["result"] == expect.result, f"log: {logged}, expected {expect}"
        assert logged.get("algorithm", "") == expect.algorithm, (logged, expect)
        check_reason(expect, logged.get("reason"), logged)
        if expect.key_bits is not None:
            assert logged.get("key_bits") == expect.key_bits, (logged, expect)  # a JSON number
    if reply is not None:
        assert outcome.get("reply", "").startswith(reply), f"logged reply {outcome.get('reply')!r}, expected {reply!r}"
    else:
        assert "reply" not in outcome, outcome
    assert sent.record["action"] == action, f"action {sent.record['action']!r}, expected {action!r}: {sent.record}"
    return outcome


def check_delivered(sink, sent: Sent, expects: Sequence[Expect]) -> bytes:
    """The downstream got the message once, with our one A-R: an entry per expected signature,
    in header order, each naming its signature by header.b; passing ones still verify there."""
    message = delivered(sink, sent)
    signatures = signature_values(sent.content)
    if not expects:
        assert our_auth_results(message) == ["dkim=none"], auth_results(message)
        return message
    entries = dkim_entries(message)
    assert len(entries) == len(expects), f"expected {len(expects)} dkim= entries, got {entries}"
    for entry, expect in zip(entries, expects):
        assert (entry.result, entry.d, entry.s, entry.a) == (expect.result, expect.domain, expect.selector,
                                                             expect.algorithm), f"{entry} != {expect}"
        check_reason(expect, entry.reason, entry)
        # RFC 6008: header.b is a leading part of the b= of the signature the entry is about
        matching = [s for s in signatures if s["b"].startswith(entry.b)]
        assert len(entry.b) >= 8 and len(matching) == 1, f"header.b={entry.b!r} names {len(matching)} signatures"
        assert (matching[0]["d"], matching[0]["s"]) == (expect.domain, expect.selector), (entry, matching)
    # The gateway's own headers sit on top; the passing signatures were not broken on the way.
    for index, signature in enumerate(signatures):
        if any(e.result == "pass" and signature["b"].startswith(e.b) for e in entries):
            verifier = dkim.DKIM(message)
            header_index = [i for i, s in enumerate(signature_values(message)) if s["b"] == signature["b"]][0]
            assert verifier.verify(idx=header_index, dnsfunc=published_key), (
                f"signature {index} ({signature['d']}/{signature['s']}) no longer verifies at the downstream")
    return message


def run_case(gw, sink, content: bytes, *, result: str, expects: Sequence[Expect], verdict: str,
             action: str) -> Sent:
    """A case the policy lets through: 250, the entries at the downstream, the log."""
    sent = send(gw, content)
    sent.end.check(250)
    check_log(sent, result=result, verdict=verdict, action=action, expects=expects)
    check_delivered(sink, sent, expects)
    return sent


def run_refused(gw, sink, content: bytes, *, code: int, enhanced: str, text: Optional[str], result: str,
                expects: Sequence[Expect], verdict: str) -> Sent:
    """A case the policy refuses: the reply (its text too, unless None), the log, nothing delivered."""
    sent = send(gw, content)
    sent.end.check(code, enhanced)
    if text is not None:
        assert sent.end.text == f"{enhanced} {text}", sent.end
    action = "tempfail" if code // 100 == 4 else "reject"
    check_log(sent, result=result, verdict=verdict, action=action, expects=expects,
              reply=f"{code} {enhanced} {text or ''}".rstrip())
    assert sent.record["reply"].startswith(f"{code} {enhanced}"), sent.record
    not_delivered(sink, sent)
    return sent


# ------------------------------------------------------------------------------- the cases
def good(selector: str = "sel2048", domain: str = DOMAIN, algorithm: str = "rsa-sha256",
         bits: Optional[int] = 2048) -> Expect:
    return Expect("pass", domain, selector, algorithm, key_bits=bits)


OTHER_PASS = good("sel1024", OTHER, bits=1024)
BODY_HASH = "body hash did not verify"
BAD_SIGNATURE = "signature did not verify"
SHA1_POLICY = "rsa-sha1 is not accepted (RFC 8301)"
SMALL_KEY_POLICY = "key shorter than 1024 bits (RFC 8301)"

# Bodies with what a verifier fed from the wire can get wrong: dot-stuffed lines (RFC 5321 §4.5.2
# transparency is undone before hashing), trailing whitespace and blank lines (which the two body
# canonicalisations treat differently), a long line, and non-ASCII octets.
TRICKY_BODY = ("Hello.\r\n.a line that starts with a dot\r\n..two dots\r\n.\r\n"
               "trailing spaces   \r\n\ttab  indented\r\n" + "x" * 900 + "\r\n"
               "caf\u00e9 \u00fcber\r\n\r\n\r\n")


@pytest.mark.parametrize("canon", ["relaxed/relaxed", "simple/simple", "relaxed/simple", "simple/relaxed"])
def test_canonicalisation_pass(dkim_gateway, sink, keys, canon):
    """RFC 6376 §3.4: each header/body canonicalisation pair verifies, over a folded, oddly spaced
    header field and a body with dot-stuffed lines, trailing blanks and 8-bit octets."""
    content = sign(message(subject="a  subject   with\r\n\t spaces  ", body=TRICKY_BODY,
                           extra_headers=["X-Mixed-Case:  Value\t with  tabs "]),
                   keys.main, "sel2048", canon=canon)
    assert f"c={canon};".encode() in content
    run_case(dkim_gateway(), sink, content, result="pass", expects=[good()], verdict="continue", action="accept")


def test_simple_header_canonicalisation_sees_a_respaced_header(dkim_gateway, sink, keys):
    """The counterpart: a change only in a signed header's spacing passes relaxed (above) but
    breaks simple header canonicalisation."""
    relaxed = sign(message(subject="spaced"), keys.main, "sel2048", canon="relaxed/simple")
    simple = sign(message(subject="spaced"), keys.main, "sel2048", canon="simple/simple")
    gw = dkim_gateway()
    run_case(gw, sink, replace_once(relaxed, b"Subject: spaced", b"Subject:   spaced"), result="pass",
             expects=[good()], verdict="continue", action="accept")
    run_case(gw, sink, replace_once(simple, b"Subject: spaced", b"Subject:   spaced"), result="fail",
             expects=[Expect("fail", DOMAIN, "sel2048", reason=BAD_SIGNATURE, key_bits=2048)],
             verdict="tag", action="tag")


def test_a_large_message_is_verified_as_it_arrives(dkim_gateway, sink, keys):
    """About 1.5 MiB of body: many pieces hashed one after another on the thread pool; the end of
    data is answered with the verdict, and a change near the end is still seen."""
    body = "".join(f"line {i:07d} " + "abcdefghij" * 10 + "\r\n" for i in range(14000))
    gw = dkim_gateway()
    for canon in ("relaxed/relaxed", "simple/simple"):
        content = sign(message(body=body), keys.main, "sel2048", canon=canon)
        assert len(content) > 1_500_000
        run_case(gw, sink, content, result="pass", expects=[good()], verdict="continue", action="accept")
    tampered = replace_once(sign(message(body=body), keys.main, "sel2048"), b"line 0013990 ", b"line 0013990!")
    run_case(gw, sink, tampered, result="fail",
             expects=[Expect("fail", DOMAIN, "sel2048", reason=BODY_HASH, key_bits=2048)], verdict="tag", action="tag")


class Case(NamedTuple):
    build: object  # (keys) -> the message as sent
    result: str  # the overall outcome
    expects: list  # per signature, in header order
    verdict: str = "tag"  # under the default policy: pass and none accept, everything else tag


def _two_signatures_one_broken(keys: Keys) -> bytes:
    return break_signature(sign(sign(message(), keys.main, "sel2048"), keys.other, "sel1024", OTHER))


def _expiring(keys: Keys, expires_in: int) -> bytes:
    now = int(time.time())
    return sign_with_expiry(message(), keys.main, "sel2048", DOMAIN, t=now - 7200, x=now + expires_in)


CASES = {
    "two-signatures-both-pass": Case(
        lambda k: sign(sign(message(), k.main, "sel2048"), k.other, "sel1024", OTHER),
        "pass", [OTHER_PASS, good()], "continue"),
    "two-signatures-one-broken": Case(
        _two_signatures_one_broken, "pass",
        [Expect("fail", OTHER, "sel1024", reason=BAD_SIGNATURE, key_bits=1024), good()], "continue"),
    "body-changed-after-signing": Case(
        lambda k: sign(message(), k.main, "sel2048") + b"An extra line.\r\n", "fail",
        [Expect("fail", DOMAIN, "sel2048", reason=BODY_HASH, key_bits=2048)]),
    "signed-header-changed": Case(
        lambda k: replace_once(sign(message(subject="the original"), k.main, "sel2048"),
                               b"Subject: the original", b"Subject: a forgery"), "fail",
        [Expect("fail", DOMAIN, "sel2048", reason=BAD_SIGNATURE, key_bits=2048)]),
    "unsigned-header-added": Case(  # a field not in h= may be added (RFC 6376 §5.4)
        lambda k: b"X-Added-Later: yes\r\n" + sign(message(), k.main, "sel2048"), "pass", [good()], "continue"),
    "l=-text-appended": Case(
        lambda k: sign(message(), k.main, "sel2048", length=True) + b"\r\nAppended after signing.\r\n", "pass",
        [good()], "continue"),
    "l=-signed-part-changed": Case(
        lambda k: replace_once(sign(message(), k.main, "sel2048", length=True), b"Hello.", b"Howdy."), "fail",
        [Expect("fail", DOMAIN, "sel2048", reason=BODY_HASH, key_bits=2048)]),
    "x=-expired": Case(  # an hour ago: well past the clock drift a verifier may allow (RFC 6376 §3.5)
        lambda k: _expiring(k, -3600), "permerror",
        [Expect("permerror", DOMAIN, "sel2048", reason_like=r"expired")]),
    "x=-not-yet-expired": Case(lambda k: _expiring(k, 3600), "pass", [good()], "continue"),
    # malformed signatures: libopendkim's own words for what is wrong
    "malformed-version": Case(
        lambda k: replace_once(sign(message(), k.main, "sel2048"), b"DKIM-Signature: v=1;", b"DKIM-Signature: v=2;"),
        "permerror", [Expect("permerror", DOMAIN, "sel2048", reason_like=r"version")]),
    "malformed-no-body-hash": Case(
        lambda k: re.sub(rb"bh=[^;]*;", b"", sign(message(), k.main, "sel2048"), count=1),
        "permerror", [Expect("permerror", DOMAIN, "sel2048", reason_like=r"body hash")]),
    "unknown-algorithm": Case(
        lambda k: replace_once(sign(message(), k.main, "sel2048"), b"a=rsa-sha256;", b"a=rsa-sha512;"),
        "permerror", [Expect("permerror", DOMAIN, "sel2048", "", reason_like=r"algorithm")]),
    "revoked-key": Case(
        lambda k: sign(message(), k.main, "revoked"), "permerror",
        [Expect("permerror", DOMAIN, "revoked", reason="key revoked")]),
    "missing-key": Case(
        lambda k: sign(message(), k.main, "missing"), "permerror",
        [Expect("permerror", DOMAIN, "missing", reason="no key for this signature")]),
    "key-lookup-timeout": Case(
        lambda k: sign(message(), k.main, "slow"), "temperror",
        [Expect("temperror", DOMAIN, "slow", reason="key lookup failed")]),
    "rsa-sha1": Case(
        lambda k: sign(message(), k.main, "sel2048", algorithm="rsa-sha1"), "fail",
        [Expect("policy", DOMAIN, "sel2048", "rsa-sha1", reason=SHA1_POLICY, key_bits=2048)]),
    "512-bit-key": Case(
        lambda k: sign(message(), k.small, "small"), "fail",
        [Expect("policy", DOMAIN, "small", reason=SMALL_KEY_POLICY, key_bits=512)]),
    "good-signature-beside-a-missing-key": Case(  # pass wins over permerror
        lambda k: sign(sign(message(), k.main, "sel2048"), k.main, "missing"), "pass",
        [Expect("permerror", DOMAIN, "missing", reason="no key for this signature"), good()], "continue"),
    "timeout-beside-a-fail": Case(  # temperror wins over fail: a retry may find the key
        lambda k: sign(sign(message(), k.main, "sel2048"), k.main, "slow") + b"changed\r\n", "temperror",
        [Expect("temperror", DOMAIN, "slow", reason="key lookup failed"),
         Expect("fail", DOMAIN, "sel2048", reason=BODY_HASH, key_bits=2048)]),
    "empty-body": Case(lambda k: sign(message(body=""), k.main, "sel2048", canon="simple/simple"), "pass",
                       [good()], "continue"),
    "header-section-only": Case(  # no empty line, no body (RFC 5322 allows it)
        lambda k: sign(message(body="")[:-2], k.main, "sel2048"), "pass", [good()], "continue"),
    "unsigned": Case(lambda k: message(), "none", [], "continue"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_signature_results(dkim_gateway, sink, keys, name):
    """Each case under the default policy (pass and none accept, everything else tag): 250, one A-R entry
    per signature at the downstream, the results in the log."""
    case = CASES[name]
    sent = run_case(dkim_gateway(), sink, case.build(keys), result=case.result, expects=case.expects,
                    verdict=case.verdict, action="accept" if case.verdict == "continue" else "tag")
    if "timeout" in name:
        # the key lookup waited for dns.timeout (1 s, no retry), not for the 30 s stage timeout
        assert 0.9 <= sent.seconds < 8, f"temperror after {sent.seconds:.1f} s"
    else:
        assert sent.seconds < 5, f"the end of data was answered after {sent.seconds:.1f} s"


@pytest.mark.parametrize("tampered", [False, True])
def test_rfc8463_ed25519_and_rsa_signatures(dkim_gateway, sink, tampered):
    """RFC 8463 appendix A.3: one ed25519-sha256 and one rsa-sha256 signature over the same message,
    keys from A.2 in DNS: both pass. With the body changed, both fail (the ed25519 one is really
    verified, not skipped)."""
    content = rfc8463_message()
    if tampered:
        content = replace_once(content, b"We lost the game.", b"We won the game.")
        result = "fail"
        expects = [Expect("fail", FOOTBALL, "brisbane", "ed25519-sha256", reason=BODY_HASH),
                   Expect("fail", FOOTBALL, "test", reason=BODY_HASH, key_bits=1024)]
    else:
        result = "pass"
        expects = [good("brisbane", FOOTBALL, "ed25519-sha256", bits=None), good("test", FOOTBALL, bits=1024)]
    sent = run_case(dkim_gateway(), sink, content, result=result, expects=expects,
                    verdict="continue" if result == "pass" else "tag", action="accept" if result == "pass" else "tag")
    entries = dkim_entries(delivered(sink, sent))
    assert [e.b[:8] for e in entries] == ["/gCrinpc", "F45dVWDf"], entries


# ------------------------------------------------------------------------------- policy
class Refusal(NamedTuple):
    stage: dict  # the stage's keys
    build: object
    code: int
    enhanced: str
    text: Optional[str]
    result: str
    expects: list
    verdict: str = "reject"


REFUSALS = {
    "fail-on_fail-reject": Refusal(
        {"on_fail": "reject"}, CASES["body-changed-after-signing"].build, 550, "5.7.20",
        "No passing DKIM signature found", "fail", CASES["body-changed-after-signing"].expects),
    "rsa-sha1-only-on_fail-reject": Refusal(
        {"on_fail": "reject"}, CASES["rsa-sha1"].build, 550, "5.7.21", "No acceptable DKIM signature found",
        "fail", CASES["rsa-sha1"].expects),
    "512-bit-only-on_fail-reject": Refusal(
        {"on_fail": "reject"}, CASES["512-bit-key"].build, 550, "5.7.21", "No acceptable DKIM signature found",
        "fail", CASES["512-bit-key"].expects),
    "policy-and-fail-on_fail-reject": Refusal(  # not every signature is "policy": 5.7.20
        {"on_fail": "reject"},
        lambda k: sign(sign(message(), k.main, "sel2048", algorithm="rsa-sha1") + b"changed\r\n", k.small, "small"),
        550, "5.7.20", "No passing DKIM signature found", "fail",
        [Expect("policy", DOMAIN, "small", reason=SMALL_KEY_POLICY, key_bits=512),
         Expect("fail", DOMAIN, "sel2048", "rsa-sha1", reason=BODY_HASH, key_bits=2048)]),
    "unsigned-on_none-reject": Refusal(
        {"on_none": "reject"}, CASES["unsigned"].build, 550, "5.7.20", "No DKIM signature found", "none", []),
    "missing-key-on_permerror-reject": Refusal(
        {"on_permerror": "reject"}, CASES["missing-key"].build, 550, "5.7.20", "No valid DKIM signature found",
        "permerror", CASES["missing-key"].expects),
    "revoked-key-on_permerror-reject": Refusal(
        {"on_permerror": "reject"}, CASES["revoked-key"].build, 550, "5.7.20", "No valid DKIM signature found",
        "permerror", CASES["revoked-key"].expects),
    "expired-on_permerror-reject": Refusal(  # RFC 6376 §3.5: "MUST be considered invalid"
        {"on_permerror": "reject"}, CASES["x=-expired"].build, 550, "5.7.20", "No valid DKIM signature found",
        "permerror", CASES["x=-expired"].expects),
    "timeout-on_temperror-tempfail": Refusal(
        {"on_temperror": "tempfail"}, CASES["key-lookup-timeout"].build, 451, "4.7.20",
        "DKIM key lookup failed, try again later", "temperror", CASES["key-lookup-timeout"].expects, "tempfail"),
    "unaligned-pass-require_author_domain": Refusal(
        {"on_fail": "reject", "require_author_domain": True},
        lambda k: sign(message(), k.other, "sel1024", OTHER), 550, "5.7.22",
        "No valid author-matched DKIM signature found", "fail",
        [Expect("policy", OTHER, "sel1024", reason="signer is not the author's domain", key_bits=1024)]),
    # The reply's class is the action's, as in the spf and dmarc stages: tempfail is 451 4.x.x
    # (whatever the outcome), reject is 550 5.x.x.
    "fail-on_fail-tempfail": Refusal(
        {"on_fail": "tempfail"}, CASES["body-changed-after-signing"].build, 451, "4.7.20",
        "No passing DKIM signature found", "fail", CASES["body-changed-after-signing"].expects, "tempfail"),
    "timeout-on_temperror-reject": Refusal(
        {"on_temperror": "reject"}, CASES["key-lookup-timeout"].build, 550, "5.7.20", None,
        "temperror", CASES["key-lookup-timeout"].expects),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_policy_refuses(dkim_gateway, sink, keys, name):
    """The RFC 7372 reply at the end of data, the refusal in the log, nothing at the downstream."""
    case = REFUSALS[name]
    run_refused(dkim_gateway(**case.stage), sink, case.build(keys), code=case.code, enhanced=case.enhanced,
                text=case.text, result=case.result, expects=case.expects, verdict=case.verdict)


def test_strict_policy_still_accepts_a_pass(dkim_gateway, sink, keys):
    """Every on_* but on_pass refusing: a message with one good signature (beside a broken one and
    one whose key is missing) is accepted, and so is an author-aligned one under
    require_author_domain (the author is a subdomain of the signer)."""
    gw = dkim_gateway(on_fail="reject", on_none="reject", on_permerror="reject", on_temperror="tempfail",
                      require_author_domain=True)
    content = sign(_two_signatures_one_broken(keys), keys.main, "missing")
    run_case(gw, sink, content, result="pass", verdict="continue", action="accept", expects=[
        Expect("permerror", DOMAIN, "missing", reason="no key for this signature"),
        # under require_author_domain the unaligned signer's "fail" stays fail
        Expect("fail", OTHER, "sel1024", reason=BAD_SIGNATURE, key_bits=1024), good()])
    content = sign(message(sender=f"bob@mail.{DOMAIN}"), keys.main, "sel2048")
    sent = send(gw, content, sender=f"bob@mail.{DOMAIN}")
    sent.end.check(250)
    check_log(sent, result="pass", verdict="continue", action="accept", expects=[good()])
    check_delivered(sink, sent, [good()])


def test_require_author_domain_marks_the_other_signer(dkim_gateway, sink, keys):
    """require_author_domain, tag-only: the author's own pass passes, the other domain's good
    signature is "policy" with its reason, in the A-R and in the log."""
    content = sign(sign(message(), keys.main, "sel2048"), keys.other, "sel1024", OTHER)
    run_case(dkim_gateway(require_author_domain=True), sink, content, result="pass", verdict="continue",
             action="accept", expects=[Expect("policy", OTHER, "sel1024", reason="signer is not the author's domain",
                                              key_bits=1024), good()])


def _from(field: str) -> bytes:
    return message().replace(f"From: <{AUTHOR}>".encode(), f"From: {field}".encode())


@pytest.mark.parametrize("field, selector, domain, aligned", [
    # the author's own signature, a display comment with an "@" in it
    (f"{AUTHOR} (Alice @ home)", "sel2048", DOMAIN, True),
    # the author is victim.example; a comment names the signer's domain
    (f"<ceo@victim.example> (via x@{OTHER})", "sel1024", OTHER, False),
])
def test_require_author_domain_reads_the_address_not_a_comment(dkim_gateway, sink, keys, field, selector,
                                                               domain, aligned):
    """RFC 5322 §3.4: comments are not part of the address; the author's domain is that of the
    mailbox, whatever a comment says."""
    key = keys.main if domain == DOMAIN else keys.other
    sent = send(dkim_gateway(require_author_domain=True, on_fail="reject"), sign(_from(field), key, selector, domain))
    if aligned:
        sent.end.check(250)
    else:
        sent.end.check(550, "5.7.22")


def test_shadow_mode_logs_the_refusal_and_delivers(dkim_gateway, sink, keys):
    """mode = "shadow": the log says what the stage would have done (550 5.7.20), the client gets
    250 and the message is delivered, the stage adding nothing to it (no A-R: "log what it would
    have done, then continue")."""
    content = CASES["body-changed-after-signing"].build(keys)
    sent = send(dkim_gateway(on_fail="reject", mode="shadow"), content)
    sent.end.check(250)
    check_log(sent, result="fail", verdict="reject", action="accept", shadow=True,
              expects=CASES["body-changed-after-signing"].expects, reply="550 5.7.20 No passing DKIM signature found")
    message = delivered(sink, sent)
    assert auth_results(message) == [], auth_results(message)
    assert message.endswith(content)


def test_max_signatures_limits_the_evaluated_signatures(dkim_gateway, sink, dns, keys):
    """max_signatures = 1: of two signatures only the first (topmost) is evaluated: the broken one,
    so the outcome is fail where with both it is pass (CASES "two-signatures-one-broken"), and the
    second signature's key is never looked up."""
    content = _two_signatures_one_broken(keys)
    gw = dkim_gateway(max_signatures=1)
    dns.reset_query_count()
    run_case(gw, sink, content, result="fail", verdict="tag", action="tag",
             expects=[Expect("fail", OTHER, "sel1024", reason=BAD_SIGNATURE, key_bits=1024)])
    deadline = time.monotonic() + 2
    while dns.query_count(key_name("sel1024", OTHER)) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert dns.query_count(key_name("sel1024", OTHER), "TXT") == 1, dns.queries()
    assert dns.query_count(key_name("sel2048", DOMAIN)) == 0, dns.queries()


def test_clean_unsigned_mail_is_accepted_not_tagged(dkim_gateway, sink):
    """Most mail is unsigned: recording dkim=none in Authentication-Results marks nothing as
    suspicious, so under the default policy the transaction's action is accept, not tag."""
    sent = send(dkim_gateway(), message(subject="an ordinary unsigned message"))
    sent.end.check(250)
    outcome = check_log(sent, result="none", verdict="continue", action="accept", expects=[])
    assert "score" not in outcome and "score" not in sent.record, sent.record
    assert our_auth_results(delivered(sink, sent)) == ["dkim=none"]


# ------------------------------------------------------------------------------- forged results
def test_forged_auth_results_is_removed_from_an_unsigned_message(dkim_gateway, sink):
    """RFC 8601 §5: an A-R claiming our authserv-id (any case, after a comment, folded) came from
    outside and goes; another receiver's stays; ours says dkim=none."""
    forged = f"Authentication-Results: {HOSTNAME}; dkim=pass header.d=forged.example header.s=x"
    forged_folded = f"Authentication-Results: (comment) {HOSTNAME.upper()};\r\n\tdkim=pass header.d=forged2.example"
    foreign = "Authentication-Results: other.example; dkim=fail header.d=good.dkim.example"
    content = message(extra_headers=[forged, foreign, forged_folded])
    sent = send(dkim_gateway(), content)
    sent.end.check(250)
    check_log(sent, result="none", verdict="continue", action="accept", expects=[])
    message_ = delivered(sink, sent)
    fields = auth_results(message_)
    assert len(fields) == 2 and fields[1] == foreign.split(": ", 1)[1], fields
    assert re.fullmatch(rf"{re.escape(HOSTNAME)};\s*dkim=none", fields[0]), fields
    assert b"forged" not in message_


def test_forged_auth_results_is_removed_from_a_signed_message(dkim_gateway, sink, keys):
    """A forged dkim=pass on top of a message whose signature fails: the downstream sees only our
    fail (and the forged field was not signed, so removing it breaks nothing)."""
    forged = f"Authentication-Results: {HOSTNAME};\r\n dkim=pass header.d={DOMAIN} header.s=sel2048\r\n".encode()
    content = forged + CASES["signed-header-changed"].build(keys)
    sent = send(dkim_gateway(), content)
    sent.end.check(250)
    check_log(sent, result="fail", verdict="tag", action="tag", expects=CASES["signed-header-changed"].expects)
    message_ = check_delivered(sink, sent, CASES["signed-header-changed"].expects)
    assert forged not in message_
    content = forged + sign(message(), keys.main, "sel2048")
    sent = send(dkim_gateway(), content)
    message_ = check_delivered(sink, sent, [good()])  # and the good signature still verifies there
    assert forged not in message_


def test_forged_auth_results_in_every_spelling_is_removed(dkim_gateway, sink):
    """Issue 12: RFC 5322 reads a field name in any case and with blanks before the colon
    (obs-optional, §4.5.3), RFC 8601 §2.2 an authserv-id as a token or a quoted-string, after
    comments, before a version. Each "forged" field claims our authserv-id in one of those ways
    and does not reach the downstream; fields of another authserv-id, spelt the same ways, do, as
    sent."""
    forged = [
        f"Authentication-Results : {HOSTNAME}; dmarc=pass header.from=forged1.example",
        f'Authentication-Results: "{HOSTNAME}"; dmarc=pass header.from=forged2.example',
        f"authentication-results:{HOSTNAME}; dkim=pass header.d=forged3.example",
        f"AUTHENTICATION-RESULTS\t: {HOSTNAME.upper()}; spf=pass smtp.mailfrom=forged4.example",
        f"Authentication-Results: {HOSTNAME} 1; dmarc=pass header.from=forged5.example",
        f"Authentication-Results: (trusted) {HOSTNAME};\r\n\tdkim=pass header.d=forged6.example",
        f'Authentication-Results:\r\n (c)\r\n "{HOSTNAME}" 1;\r\n dmarc=pass header.from=forged7.example',
    ]
    foreign = [
        "Authentication-Results : other.example; dmarc=fail header.from=bank.example",
        'Authentication-Results: "other.example"; dkim=fail header.d=bank.example',
        f"Authentication-Results: ({HOSTNAME}) other.example 1; spf=fail smtp.mailfrom=bank.example",
    ]
    content = message(extra_headers=[forged[0], foreign[0], *forged[1:4], foreign[1], *forged[4:], foreign[2]])
    sent = send(dkim_gateway(), content)
    sent.end.check(250)
    check_log(sent, result="none", verdict="continue", action="accept", expects=[])
    message_ = delivered(sink, sent)
    head = message_.partition(b"\r\n\r\n")[0] + b"\r\n"
    assert b"forged" not in message_, head
    for field in foreign:
        assert head.count(field.encode() + b"\r\n") == 1, (field, head)
    # ours, on top, and the foreign ones: nothing else named Authentication-Results in any spelling
    named = re.findall(rb"(?im)^authentication-results[ \t]*:.*$", head)
    assert len(named) == 1 + len(foreign), named
    assert re.match(rb"Received: [^\r]*\r\n(?:[ \t][^\r]*\r\n)*Authentication-Results: " + re.escape(HOSTNAME.encode()) +
                    rb";\r\n\tdkim=none\r\n", message_), head


# ------------------------------------------------------------------------------- identifiers
def test_an_invalid_d_is_a_permerror_and_never_a_header_d(dkim_gateway, sink, dns, keys, monkeypatch):
    """Issue 12, RFC 6376 §3.5: d= is a domain-name of LDH labels. A message signed by an
    independent signer (dkimpy) with d=legitimate.com(.attacker.com, the key published under that
    very name so that its cryptography holds, is a permerror; and Authentication-Results names no
    header.d, nor anything of that d=, for a reader taking "(" for a comment to see
    header.d=legitimate.com."""
    sender = "alice@legitimate.com"
    content = sign(message(sender=sender), keys.main, "sel2048", INJECTED_D)
    assert f"d={INJECTED_D};".encode() in content
    # dkimpy's verifier refuses that d= too (RFC 6376 §3.5); with its check of the tags set aside,
    # its cryptography verifies: only d= is wrong.
    with pytest.raises(dkim.ValidationError, match="d= value is not valid"):
        dkim.DKIM(content).verify(dnsfunc=published_key)
    monkeypatch.setattr(dkim, "validate_signature_fields", lambda *args, **kwargs: None)
    assert dkim.DKIM(content).verify(dnsfunc=published_key), "the signature's cryptography must hold"
    dns.reset_query_count()
    sent = send(dkim_gateway(), content, sender=sender)
    sent.end.check(250)
    # the key was fetched: the permerror comes from d=, not from a missing key
    assert dns.query_count(key_name("sel2048", INJECTED_D), "TXT") == 1, dns.queries()
    check_log(sent, result="permerror", verdict="tag", action="tag",
              expects=[Expect("permerror", INJECTED_D, "sel2048", reason="d= is not a valid domain name")])

    message_ = delivered(sink, sent)
    fields = auth_results(message_)
    assert len(fields) == 1, fields
    entries = our_auth_results(message_)
    assert len(entries) == 1, entries
    b = signature_values(content)[0]["b"]
    m = re.fullmatch(r'dkim=permerror reason="d= is not a valid domain name" header\.s=sel2048 header\.a=rsa-sha256'
                     r' header\.b=(?P<b>"[A-Za-z0-9+/=]+"|[A-Za-z0-9+]+)', entries[0])
    assert m, entries[0]
    assert len(_unquote(m["b"])) >= 8 and b.startswith(_unquote(m["b"])), (m["b"], b)
    assert "header.d" not in fields[0] and "legitimate" not in fields[0] and "attacker" not in fields[0], fields[0]
