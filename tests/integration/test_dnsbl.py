"""The dnsbl stage (issue 17) through the real gateway, a real DNS server on loopback
(dns_server.DnsServer: Debian's unbound serving the test lists below) and the real downstream.

Every session starts with a PROXY v1 header, so the test chooses the client address the lists are
asked about, and each has its own PROXY source port, which finds its record in the decision log.
Cases: weights and filters, the threshold met and not met, an allow list's negative weight, an IPv6
client (reversed nibbles), a list that times out (fail open, logged), a list answering 8.8.8.8
(ignored), `decide = "connect"` (554 greeting) and `"rcpt"` (the record has the envelope), the
list's TXT text in the reply, `rhs_zones` for the sender's domain and `uri_zones` for a link in an
HTML part; `--check-config` naming a malformed zone entry; `mailgate check --ip`.
"""

from __future__ import annotations

import ipaddress
import itertools
import subprocess
from typing import Optional

import pytest

from harness import Raw, delivered_once, make_message, never_delivered

pytestmark = pytest.mark.time_limit(90)

RCPT = "user@example.org"
SENDER = "someone@sender.example"
DNS_TIMEOUT = "1s"


def rev(ip: str) -> str:
    address = ipaddress.ip_address(ip)
    if address.version == 4:
        return ".".join(reversed(ip.split(".")))
    return ".".join(reversed(address.exploded.replace(":", "")))


LISTED = "192.0.2.10"          # bl1 (weight 3, filter 127.0.0.[2..11]) with TXT text
FILTERED = "192.0.2.11"        # bl1 answers 127.0.0.20: outside the filter
BL2_ONLY = "192.0.2.12"        # bl2 (weight 2): under the threshold 3
ALLOWED = "192.0.2.13"         # bl1 and wl (weight -5)
TWO_LISTS = "192.0.2.14"       # bl2 (2) + bl3 (1) = 3: the heavier one, bl2, is named
SLOW = "192.0.2.20"            # bl1 does not answer at all
BROKEN = "192.0.2.21"          # bl1 answers 8.8.8.8
CLEAN = "192.0.2.99"           # on no list
LISTED6 = "2001:db8::25"       # bl1, by nibbles
TXT_TEXT = "Listed by bl1, see http://bl1.example/q?192.0.2.10"

ZONES = {
    f"{rev(LISTED)}.bl1.example": [{"A": "127.0.0.2"}, {"TXT": TXT_TEXT}],
    f"{rev(FILTERED)}.bl1.example": [{"A": "127.0.0.20"}],
    f"{rev(BL2_ONLY)}.bl2.example": [{"A": "127.0.0.2"}],
    f"{rev(ALLOWED)}.bl1.example": [{"A": "127.0.0.3"}],
    f"{rev(ALLOWED)}.wl.example": [{"A": "127.0.5.2"}],
    f"{rev(TWO_LISTS)}.bl2.example": [{"A": "127.0.0.2"}],
    f"{rev(TWO_LISTS)}.bl3.example": [{"A": "127.0.0.4"}],
    f"{rev(SLOW)}.bl1.example": ["TIMEOUT"],
    f"{rev(SLOW)}.bl2.example": [{"A": "127.0.0.2"}],
    f"{rev(BROKEN)}.bl1.example": [{"A": "8.8.8.8"}],
    f"{rev(LISTED6)}.bl1.example": [{"A": "127.0.0.2"}],
    # domain lists
    "spam-sender.example.dbl.example": [{"A": "127.0.1.2"}],
    "spam-helo.example.dbl.example": [{"A": "127.0.1.3"}],
    "listed-link.example.uribl.example": [{"A": "127.0.0.2"}, {"TXT": "link domain listed"}],
}

ZONE_ENTRIES = ["bl1.example=127.0.0.[2..11]*3", "bl2.example*2", "bl3.example", "wl.example=127.0.[0..255].[2..255]*-5"]


def dns_table(dns) -> str:
    return f'[dns]\nservers = ["{dns.address}"]\ntimeout = "{DNS_TIMEOUT}"\nretries = 0\n'


@pytest.fixture
def dnsbl_gateway(start_gateway, sink, dns):
    def start(**keys):
        stage = {"type": "dnsbl", "zones": ZONE_ENTRIES, "threshold": 3, **keys}
        return start_gateway(sink=sink, server={"proxy_protocol": True}, stages=[stage], extra=dns_table(dns))
    return start


_source_ports = itertools.count(31000)


def proxy_header(ip: str, port: int) -> bytes:
    family, destination = ("TCP6", "::1") if ":" in ip else ("TCP4", "127.0.0.1")
    return f"PROXY {family} {ip} {destination} {port} 25\r\n".encode()


class Session:
    def __init__(self, greeting, mail=None, rcpt=None, end=None, content=b"", record=None):
        self.greeting, self.mail, self.rcpt, self.end, self.content, self.record = \
            greeting, mail, rcpt, end, content, record


def smtp(gw, ip: str, *, sender: str = SENDER, content: Optional[bytes] = None, helo="client.example") -> Session:
    port = next(_source_ports)
    content = content if content is not None else make_message(sender=sender)
    with Raw(gw.port, timeout=20.0) as raw:
        raw.send(proxy_header(ip, port))
        greeting = raw.read_reply()
        if greeting.code != 220:
            raw.cmd("QUIT")
            kind = "session"
            records = gw.wait_for_records(lambda r: r.get("type") == kind and r["client"]["port"] == port)
            return Session(greeting, record=records[0])
        raw.ehlo(helo)
        mail = raw.cmd(f"MAIL FROM:<{sender}>")
        rcpt = raw.cmd(f"RCPT TO:<{RCPT}>")
        end = None
        if rcpt.code == 250:
            raw.cmd("DATA").check(354)
            end = raw.send_data(content)
        raw.cmd("QUIT").check(221)
    records = gw.wait_for_records(lambda r: r.get("type") == "transaction" and r["client"]["port"] == port)
    assert len(records) == 1, records
    return Session(greeting, mail, rcpt, end, content, records[0])


def dnsbl_outcomes(record: dict) -> list[dict]:
    return [s for s in record["stages"] if s["stage"] == "dnsbl"]


def zone_answers(record: dict) -> dict:
    """zone name → its answer entry, from the dnsbl outcome that lists them."""
    for outcome in dnsbl_outcomes(record):
        if "zones" in outcome:
            return {entry["zone"]: entry for entry in outcome["zones"]}
    raise AssertionError(f"no zone answers in {record}")


def refused_with(session: Session, ip: str, zone: str) -> None:
    assert session.rcpt.code == 554, session.rcpt
    assert session.rcpt.lines[0].startswith(f"5.7.1 Service unavailable; client [{ip}] blocked using {zone}"), \
        session.rcpt


# ------------------------------------------------------------------------------- the cases
def test_weights_filters_and_the_threshold(dnsbl_gateway, sink):
    gw = dnsbl_gateway()
    # Met by one list of weight 3; the record has the envelope, each zone's answer and the score.
    listed = smtp(gw, LISTED)
    assert listed.mail.code == 250, listed.mail
    refused_with(listed, LISTED, "bl1.example")
    assert listed.record["sender"] == SENDER
    assert listed.record["recipients"][0]["address"] == RCPT
    assert listed.record["action"] == "reject"
    outcome = [o for o in dnsbl_outcomes(listed.record) if o["phase"] == "rcpt"][0]
    assert outcome["verdict"] == "reject" and outcome["score"] == 3 and outcome["threshold"] == 3, outcome
    answers = zone_answers(listed.record)
    assert answers["bl1.example"]["result"] == "listed" and answers["bl1.example"]["answer"] == "127.0.0.2"
    assert answers["bl2.example"]["result"] == "not listed"
    assert set(answers) == {"bl1.example", "bl2.example", "bl3.example", "wl.example"}
    never_delivered(sink, listed.content)

    # 127.0.0.20 is outside bl1's filter: not counted.
    filtered = smtp(gw, FILTERED)
    assert filtered.rcpt.code == 250 and filtered.end.code == 250, filtered.rcpt
    assert zone_answers(filtered.record)["bl1.example"]["result"] == "not listed"
    # bl2 alone (2) is under 3.
    under = smtp(gw, BL2_ONLY)
    assert under.rcpt.code == 250, under.rcpt
    assert [o for o in dnsbl_outcomes(under.record) if o["phase"] == "rcpt"][0]["score"] == 2
    delivered_once(sink, under.content)
    # bl2 + bl3 = 3: met, and the heavier listing is named.
    refused_with(smtp(gw, TWO_LISTS), TWO_LISTS, "bl2.example")
    # bl1 (3) and the allow list (-5): -2.
    allowed = smtp(gw, ALLOWED)
    assert allowed.rcpt.code == 250, allowed.rcpt
    assert [o for o in dnsbl_outcomes(allowed.record) if o["phase"] == "rcpt"][0]["score"] == -2
    clean = smtp(gw, CLEAN)
    assert clean.rcpt.code == 250 and clean.end.code == 250


def test_txt_text_is_in_the_reply(dnsbl_gateway):
    gw = dnsbl_gateway()
    session = smtp(gw, LISTED)
    assert session.rcpt.lines[0] == f"5.7.1 Service unavailable; client [{LISTED}] blocked using bl1.example; {TXT_TEXT}"
    assert zone_answers(session.record)["bl1.example"]["text"] == TXT_TEXT


def test_ipv6_client_is_asked_by_nibbles(dnsbl_gateway, dns):
    gw = dnsbl_gateway()
    session = smtp(gw, LISTED6)
    refused_with(session, LISTED6, "bl1.example")
    assert dns.query_count(f"{rev(LISTED6)}.bl1.example", "A") >= 1


def test_a_list_that_times_out_counts_as_not_listed_and_is_logged(dnsbl_gateway, sink):
    gw = dnsbl_gateway()
    session = smtp(gw, SLOW)
    assert session.rcpt.code == 250, session.rcpt
    assert session.end.code == 250
    answers = zone_answers(session.record)
    assert answers["bl1.example"]["result"] == "failed"
    assert answers["bl1.example"]["problem"].startswith("timeout"), answers["bl1.example"]
    assert answers["bl2.example"]["result"] == "listed"
    assert f"dnsbl: bl1.example for {SLOW}: timeout" in gw.stderr_text()
    delivered_once(sink, session.content)


def test_an_answer_outside_loopback_is_ignored(dnsbl_gateway):
    gw = dnsbl_gateway(threshold=1)
    session = smtp(gw, BROKEN)
    assert session.rcpt.code == 250, session.rcpt
    entry = zone_answers(session.record)["bl1.example"]
    assert entry["result"] == "ignored" and entry["answer"] == "8.8.8.8", entry


def test_decide_connect_refuses_the_greeting(dnsbl_gateway):
    gw = dnsbl_gateway(decide="connect")
    session = smtp(gw, LISTED)
    assert session.greeting.code == 554, session.greeting
    assert session.greeting.lines[0].startswith(f"5.7.1 Service unavailable; client [{LISTED}] blocked using bl1.example")
    outcome = dnsbl_outcomes(session.record)[0]
    assert outcome["phase"] == "connect" and outcome["verdict"] == "reject" and outcome["score"] == 3
    # A clean client is greeted and its mail passes.
    clean = smtp(gw, CLEAN)
    assert clean.greeting.code == 220 and clean.rcpt.code == 250


def test_rhs_zones_refuse_a_listed_sender_domain_or_helo_name(dnsbl_gateway):
    gw = dnsbl_gateway(rhs_zones=["dbl.example=127.0.1.[2..99]*3"])
    session = smtp(gw, CLEAN, sender="bob@spam-sender.example")
    assert session.rcpt.code == 554, session.rcpt
    assert session.rcpt.lines[0] == "5.7.1 Service unavailable; sender domain spam-sender.example blocked using dbl.example"
    answers = zone_answers(session.record)
    assert answers["dbl.example"]["for"] in ("sender", "helo")
    ok = smtp(gw, CLEAN, sender="bob@sender.example")
    assert ok.rcpt.code == 250
    helo = smtp(gw, CLEAN, sender="bob@sender.example", helo="Spam-Helo.example")
    assert helo.rcpt.code == 554, helo.rcpt
    assert helo.rcpt.lines[0] == "5.7.1 Service unavailable; helo name spam-helo.example blocked using dbl.example"


def html_message(link: str) -> bytes:
    boundary = "b-1"
    body = (f"--{boundary}\r\nContent-Type: text/plain\r\n\r\nSee the page.\r\n"
            f"--{boundary}\r\nContent-Type: text/html\r\n\r\n"
            f'<html><body><p>See <a href="{link}">the page</a></p></body></html>\r\n'
            f"--{boundary}--\r\n")
    return make_message(body=body, extra_headers=["MIME-Version: 1.0",
                                                  f'Content-Type: multipart/alternative; boundary="{boundary}"'])


def test_uri_zones_refuse_a_listed_link_domain_in_an_html_part(dnsbl_gateway, sink, dns):
    gw = dnsbl_gateway(uri_zones=["uribl.example*3"])
    session = smtp(gw, CLEAN, content=html_message("http://www.Listed-Link.example/offer?id=1"))
    assert session.rcpt.code == 250
    assert session.end.code == 554, session.end
    assert session.end.lines[0] == ("5.7.1 Service unavailable; URI domain listed-link.example blocked using uribl.example; "
                                    "link domain listed")
    data = [o for o in dnsbl_outcomes(session.record) if o["phase"] == "data"][0]
    assert data["verdict"] == "reject"
    assert any(z["zone"] == "uribl.example" and z["item"] == "listed-link.example" for z in data["zones"])
    never_delivered(sink, session.content)
    clean = smtp(gw, CLEAN, content=html_message("http://clean-link.example/"))
    assert clean.end.code == 250
    assert dns.query_count("clean-link.example.uribl.example", "A") == 1


def test_check_config_names_a_malformed_zone(start_gateway, tmp_path, mailgate_bin, dns):
    config = tmp_path / "bad.toml"
    config.write_text('[server]\nlisten = ["127.0.0.1:2525"]\n[[stage]]\ntype = "dnsbl"\n'
                      'zones = ["bl1.example=127.0.0.[2..]*3"]\n' + dns_table(dns))
    result = subprocess.run([mailgate_bin, "--check-config", str(config)], capture_output=True, text=True, timeout=20)
    assert result.returncode != 0
    assert 'zone "bl1.example=127.0.0.[2..]*3"' in result.stderr, result.stderr
    assert "stage[0].zones" in result.stderr, result.stderr


def test_mailgate_check_with_ip_and_helo(tmp_path, mailgate_bin, dns):
    config = tmp_path / "check.toml"
    config.write_text('[server]\nlisten = ["127.0.0.1:2525"]\ndomains = ["example.org"]\n[[stage]]\ntype = "dnsbl"\n'
                      f'zones = {ZONE_ENTRIES!r}\nthreshold = 3\n'.replace("'", '"') + dns_table(dns))
    message = tmp_path / "m.eml"
    message.write_bytes(make_message())
    listed = subprocess.run([mailgate_bin, "check", "--config", str(config), "--ip", LISTED, "--from", SENDER,
                             "--rcpt", RCPT, str(message)], capture_output=True, text=True, timeout=30)
    assert "554 5.7.1 Service unavailable; client [192.0.2.10] blocked using bl1.example" in listed.stdout, \
        listed.stdout + listed.stderr
    clean = subprocess.run([mailgate_bin, "check", "--config", str(config), "--ip", CLEAN, "--from", SENDER,
                            "--rcpt", RCPT, str(message)], capture_output=True, text=True, timeout=30)
    assert "554 5.7.1" not in clean.stdout, clean.stdout
    # --helo: the HELO name through rhs_zones.
    config.write_text(config.read_text().replace("threshold = 3", 'threshold = 3\nrhs_zones = ["dbl.example*3"]'))
    helo = subprocess.run([mailgate_bin, "check", "--config", str(config), "--ip", CLEAN, "--helo", "spam-helo.example",
                           "--from", SENDER, "--rcpt", RCPT, str(message)], capture_output=True, text=True, timeout=30)
    assert "554 5.7.1 Service unavailable; helo name spam-helo.example blocked using dbl.example" in helo.stdout, \
        helo.stdout + helo.stderr


def test_shadow_mode_logs_the_refusal_and_lets_mail_through(dnsbl_gateway, sink):
    gw = dnsbl_gateway(mode="shadow")
    session = smtp(gw, LISTED)
    assert session.rcpt.code == 250 and session.end.code == 250, session.rcpt
    outcome = [o for o in dnsbl_outcomes(session.record) if o["phase"] == "rcpt"][0]
    assert outcome["shadow"] is True and outcome["verdict"] == "reject", outcome
    assert outcome["reply"].startswith("554 5.7.1 Service unavailable; client [192.0.2.10]")
    delivered_once(sink, session.content)


def test_sighup_reloads_the_zones(start_gateway, sink, dns):
    from harness import build_config
    import signal
    import time

    def config(threshold: int) -> str:
        stage = {"type": "dnsbl", "zones": ZONE_ENTRIES, "threshold": threshold}
        return build_config(server={"proxy_protocol": True}, stages=[stage], extra=dns_table(dns))

    gw = start_gateway(config(3), sink=sink)
    assert smtp(gw, BL2_ONLY).rcpt.code == 250
    gw.write_config(config(2))
    gw.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "configuration reloaded" not in gw.stderr_text():
        assert time.monotonic() < deadline, gw.stderr_text()
        time.sleep(0.05)
    refused_with(smtp(gw, BL2_ONLY), BL2_ONLY, "bl2.example")
