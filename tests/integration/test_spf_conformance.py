"""The whole openspf RFC 7208 conformance suite (rfc7208-tests.yml, BSD-3) through the real gateway:
for each scenario (YAML document) one DnsServer (unbound on loopback) serving its zonedata and one
gateway resolving through it; every test case is one SMTP session — a PROXY header giving `host`,
EHLO `helo`, MAIL FROM `mailfrom` (empty: the null sender), RCPT to a served domain — and the SPF
result is read from the decision log (the spf stage's "result" at phase rcpt).

The gateway's policy: every on_* = "tag" so that nothing is refused and every result can be read,
except on_fail = "reject", so that a fail's explanation (exp=, RFC 7208 §6.2) shows in the 550
reply, where it is compared with the case's `explanation` ("DEFAULT": no text from the domain).

Zone data as the suite's own driver reads it (pyspf test/testspf.py, and our unit test
tests/unit/filters/spf/spf_conformance_test.cpp): an "SPF" record stands for a TXT one too unless
the name has a TXT entry of its own ("TXT: NONE" says "no TXT here"). The suite's "\\xEF"-style
escapes mean octets, hence encoding="latin-1" (dns_server.py).

Cases that cannot reach the SPF check through SMTP at all — the sender or HELO is refused by RFC
5321's syntax before any check (SMTP_REFUSED below) — assert that refusal instead; their RFC 7208
answer is checked on checkSpf directly by the unit test. Cases listed in
filters/spf/KNOWN_LIMITATIONS.md as beyond libspf2 are xfail(strict=True) by name (KNOWN_LIMITATIONS).
"""

from __future__ import annotations

import itertools
import os
import re
from pathlib import Path
from typing import NamedTuple, Optional

import pytest
import yaml

from dns_server import DnsServer
from harness import Gateway, Raw, Reply, build_config

pytestmark = pytest.mark.time_limit(60)

_HERE = Path(__file__).resolve().parent
_SOURCE = Path(os.environ.get("MAILGATE_SOURCE_DIR") or _HERE.parents[1])
SUITE_PATHS = [Path("/work/shared/testdata/spf/rfc7208-tests.yml"),
               _SOURCE / "tests/unit/filters/spf/data/rfc7208-tests.yml"]
SUITE_PATH = next((p for p in SUITE_PATHS if p.exists()), SUITE_PATHS[-1])
SUITE_SIZE = 203

RCPT = "postmaster@example.org"
DNS_TIMEOUT = "1s"  # the suite's TIMEOUT names cost this much each (retries = 0)

# filters/spf/KNOWN_LIMITATIONS.md: what libspf2 cannot be made to do from outside. It says "no
# suite case covers any of them" (its other case names are ones the layer *closed*), so no case is
# expected to fail; a name put here must fail (strict), so that a fix shows too.
KNOWN_LIMITATIONS: dict[str, str] = {}


class Refusal(NamedTuple):
    command: str  # "MAIL" or "EHLO"
    code: int
    enhanced: str
    why: str


# Inputs that RFC 5321 itself forbids, so no SMTP client can make the gateway check them: the
# gateway refuses the command (design.md §4) and no SPF check runs.
SMTP_REFUSED = {
    "toolonglabel": Refusal("MAIL", 501, "5.1.7", "a 64-octet label: not an RFC 5321 Domain (RFC 1035 §2.3.4)"),
    "emptylabel": Refusal("MAIL", 501, "5.1.7", "empty labels ('A...example.com'): not an RFC 5321 Domain"),
    "nolocalpart": Refusal("MAIL", 501, "5.1.7", "'<@example.net>': RFC 5321 Mailbox needs a Local-part"),
    "invalid-hello-macro": Refusal("EHLO", 501, "5.5.4", "\"JUMPIN' JUPITER\": EHLO takes one Domain (RFC 5321 §4.1.1.1)"),
}


# ------------------------------------------------------------------------------- the suite
def load_suite(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def zones_of(zonedata: dict) -> dict:
    """The scenario's zones as DnsServer takes them, SPF records copied to TXT (see above)."""
    zones = {}
    for name, entries in zonedata.items():
        entries = list(entries or [])
        has_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
        copies = [] if has_txt else [{"TXT": e["SPF"]} for e in entries
                                     if isinstance(e, dict) and "SPF" in e and e["SPF"] != "NONE"]
        zones[name] = entries + copies
    return zones


SUITE = load_suite(SUITE_PATH) if SUITE_PATH.exists() else []
CASES = [(index, name) for index, scenario in enumerate(SUITE) for name in scenario["tests"]]


def _param(index: int, name: str):
    marks = []
    if name in KNOWN_LIMITATIONS:
        marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_LIMITATIONS[name]))
    return pytest.param(index, name, id=name, marks=marks)


def test_the_suite_is_whole():
    assert SUITE_PATH.exists(), f"no RFC 7208 suite at any of {SUITE_PATHS}"
    assert len(CASES) == SUITE_SIZE, f"{SUITE_PATH}: {len(CASES)} cases, expected {SUITE_SIZE}"
    names = {name for _, name in CASES}
    assert len(names) == len(CASES), "case names are not unique"
    assert set(KNOWN_LIMITATIONS) <= names and set(SMTP_REFUSED) <= names


# ------------------------------------------------------------------------------- one scenario at a time
class Running(NamedTuple):
    index: int
    dns: DnsServer
    gateway: Gateway


class Scenarios:
    """Starts a scenario's DNS server and gateway when its first case runs, and stops them when
    the next scenario starts (cases run in file order), so each scenario is set up once."""

    def __init__(self, binary: str, tmp_factory):
        self.binary = binary
        self.tmp_factory = tmp_factory
        self.current: Optional[Running] = None

    def get(self, index: int) -> Running:
        if self.current is not None and self.current.index == index:
            return self.current
        self.close()
        directory = self.tmp_factory.mktemp(f"scenario-{index:02d}")
        dns = DnsServer(zones_of(SUITE[index]["zonedata"]), directory=directory / "dns", encoding="latin-1")
        dns.start()
        stage = {"type": "spf", **{f"on_{r}": "tag" for r in ("pass", "softfail", "neutral", "none", "temperror",
                                                             "permerror")}, "on_fail": "reject"}
        config = build_config(server={"proxy_protocol": True, "workers": 2}, downstream=None, stages=[stage],
                              extra=f'[dns]\nservers = ["{dns.address}"]\ntimeout = "{DNS_TIMEOUT}"\nretries = 0\n')
        gateway = Gateway(self.binary, directory / "mailgate", config, name=f"mailgate-scenario-{index:02d}")
        try:
            gateway.start()
        except BaseException:
            dns.stop()
            raise
        self.current = Running(index, dns, gateway)
        return self.current

    def close(self) -> None:
        running, self.current = self.current, None
        if running is None:
            return
        try:
            running.gateway.stop()
        finally:
            running.dns.stop()


@pytest.fixture(scope="module")
def scenarios(mailgate_bin, tmp_path_factory):
    keeper = Scenarios(mailgate_bin, tmp_path_factory)
    yield keeper
    keeper.close()


# ------------------------------------------------------------------------------- one case
_source_ports = itertools.count(30000)
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def reverse_path(mailfrom: str) -> bytes:
    """MAIL FROM's path: <> for the empty sender; a local-part that is no dot-atom goes as an RFC
    5321 Quoted-string ("Macro Error"@e8.example.com)."""
    if not mailfrom:
        return b"<>"
    local, at, domain = mailfrom.rpartition("@")
    if at and local and not _DOT_ATOM.fullmatch(local):
        local = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return b"<" + (local + at + domain).encode("latin-1") + b">"


class Outcome(NamedTuple):
    ehlo: Reply
    mail: Optional[Reply]
    rcpt: Optional[Reply]
    record: Optional[dict]


def run_case(gateway: Gateway, case: dict) -> Outcome:
    port = next(_source_ports)
    host = case["host"]
    family, destination = ("TCP6", "::1") if ":" in host else ("TCP4", "127.0.0.1")
    with Raw(gateway.port, timeout=20.0) as raw:
        raw.send(f"PROXY {family} {host} {destination} {port} 25\r\n".encode())
        raw.greet()
        ehlo = raw.cmd(b"EHLO " + case["helo"].encode("latin-1"))
        mail = rcpt = None
        if ehlo.code == 250:
            mail = raw.cmd(b"MAIL FROM:" + reverse_path(case["mailfrom"]))
            if mail.code == 250:
                rcpt = raw.cmd(f"RCPT TO:<{RCPT}>")
        raw.cmd("QUIT").check(221)
    record = None
    if mail is not None and mail.code == 250:
        found = gateway.wait_for_records(lambda r: r.get("type") == "transaction" and r["client"]["port"] == port)
        assert len(found) == 1, f"expected one transaction record for client port {port}, got {found}"
        record = found[0]
    return Outcome(ehlo, mail, rcpt, record)


def explanation_of(rcpt: Reply) -> str:
    """The domain's explanation: the 550's second line (after the enhanced code), else DEFAULT."""
    lines = rcpt.lines
    if len(lines) < 2:
        return "DEFAULT"
    assert len(lines) == 2, f"a fail reply of more than two lines: {rcpt}"
    enhanced, _, text = lines[1].partition(" ")
    assert enhanced == "5.7.23", rcpt
    return text


@pytest.mark.parametrize("index, name", [_param(i, n) for i, n in CASES])
def test_rfc7208(scenarios, request, index, name):
    running = scenarios.get(index)
    request.node.__dict__.setdefault("_mailgate_gateways", []).append(running.gateway)  # conftest's report
    case = SUITE[index]["tests"][name]
    outcome = run_case(running.gateway, case)
    where = f"{name}: host {case['host']}, helo {case['helo']!r}, mailfrom {case['mailfrom']!r}"

    if name in SMTP_REFUSED:
        refusal = SMTP_REFUSED[name]
        reply = outcome.ehlo if refusal.command == "EHLO" else outcome.mail
        assert reply is not None and reply.code == refusal.code and reply.enhanced == refusal.enhanced, (
            f"{where}: expected {refusal.command} to be refused with {refusal.code} {refusal.enhanced} "
            f"({refusal.why}), got EHLO {outcome.ehlo} / MAIL {outcome.mail}")
        return

    outcome.ehlo.check(250)
    assert outcome.mail is not None and outcome.mail.code == 250, f"{where}: MAIL refused: {outcome.mail}"
    stages = [s for s in outcome.record["stages"] if s["stage"] == "spf" and s["phase"] == "rcpt"]
    assert stages and "result" in stages[0], f"{where}: no SPF result in the log: {outcome.record['stages']}"
    got = stages[0]["result"]
    expected = case["result"] if isinstance(case["result"], list) else [case["result"]]
    assert got in expected, f"{where}: expected {' or '.join(expected)}, got {got} ({stages[0]['reason']})"

    if got == "fail":
        outcome.rcpt.check(550, "5.7.23")
    else:
        outcome.rcpt.check(250)
    if "explanation" in case:
        assert got == "fail", f"{where}: an explanation is expected only with fail"
        # Compared without case: the suite writes %{i} nibbles of IPv6 in upper case (v-macro-ip6),
        # RFC 7208 §7.4's example in lower case; both name the same DNS labels.
        want, have = case["explanation"], explanation_of(outcome.rcpt)
        assert have.lower() == want.lower(), f"{where}: explanation {have!r}, expected {want!r}"
