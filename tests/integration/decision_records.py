"""Generated decision-log records of every kind, as the gateway writes them (README "The decision
log"; gateway/log/transaction_record.cpp): for the `mailgate log` tests and bench/log.

Each record comes with what `mailgate log` must say decided it (the deciding stage and its
reason), which the generator knows because it chose it; the tests compare the command's answers
with these and with plain Python over the same records, never with numbers written down.
"""

from __future__ import annotations

import datetime
import json
import random
from typing import NamedTuple, Optional

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

CLIENTS = ["192.0.2.7", "192.0.2.200", "198.51.100.20", "198.51.100.21", "203.0.113.5",
           "2001:db8:1::7", "2001:db8:1:ff::9", "2001:db8:2:5::1", "10.20.30.40"]
SENDERS = ["alice@example.com", "Bob@Mail.Example.com", "news@lists.example.net", "spam@bad.example",
           "billing@badexample.com", "", "postmaster@example.org", "x@deep.sub.bad.example"]
RECIPIENTS = ["user1@example.org", "user2@example.org", "Boss@Example.org", "team@sales.example.org",
              "info@example.net"]
RULES = [("MG_PHARMA_DRUGS", 2.5, "Names a drug sold by spam pharmacies"),
         ("MG_DATE_MISSING", 1.2, "Message has no Date header"),
         ("MG_TO_MISSING", 0.8, "Message has no To header"),
         ("MG_URI_SHORTENER", 1.5, "Links through a URL shortener"),
         ("MG_SUBJ_ALL_CAPS", 1.0, "Subject is all capitals")]
SUBJECTS = ["Invoice 4411 for November", "Größe zählt: Angebot", "Meeting moved to Friday",
            "CHEAP PILLS TODAY", "Your invoice is overdue", "Lunch?"]

# Kinds of record and how often each comes (out of the sum).
KINDS = [("accept", 30), ("tag", 12), ("reject_spam", 8), ("reject_spf", 5), ("reject_size", 3),
         ("tempfail_downstream", 4), ("tempfail_rules", 3), ("relay_denied", 6), ("abandoned", 3),
         ("command", 5), ("connection", 3), ("session_reject", 3), ("session_tempfail", 1),
         ("session_none", 3),
         ("log_overflow", 1)]

SPAM_REPLY = "550 5.7.1 Message rejected as spam"
SPF_REPLY = "550 5.7.23 SPF validation failed"
SIZE_REPLY = "552 5.3.4 Error: message size exceeds fixed maximum message size"
DOWNSTREAM_REPLY = "451 4.4.1 Downstream timed out, try again later"
DEFER_REPLY = "451 4.7.1 Message deferred as possible spam, try again later"
DNSBL_REPLY = "554 5.7.1 Service unavailable; client host blocked"
DNSBL_TEMPFAIL_REPLY = "421 4.4.3 Blocklist lookup timed out, try again later"
# Why a session without a transaction ended (the transaction driver's "reason").
SESSION_ENDS = ["quit", "client disconnected", "idle timeout"]


class Generated(NamedTuple):
    record: dict
    line: str
    stage: str   # the deciding stage `mailgate log` must name
    reason: str  # ... and its reason


def iso(ms: int) -> str:
    """DecisionLog::timestamp(): "2026-11-25T08:18:32.123Z"."""
    moment = EPOCH + datetime.timedelta(milliseconds=ms)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def dump(record: dict) -> str:
    """As nlohmann-json's dump(-1) writes it: keys sorted, no spaces, UTF-8 as is."""
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class RecordMaker:
    def __init__(self, seed: int = 16):
        self.rng = random.Random(seed)
        self.sessions = 0
        self.dropped_total = 0
        weights = [w for _, w in KINDS]
        self.kinds = [k for k, _ in KINDS]
        self.weights = weights

    def _stage(self, name: str, phase: str, verdict: str, reason: str, reply: str = "", **extra) -> dict:
        stage = {"stage": name, "phase": phase, "verdict": verdict, "reason": reason,
                 "ms": round(self.rng.random() * 5, 3)}
        if reply:
            stage["reply"] = reply
        stage.update(extra)
        return stage

    def _score(self, value: float):
        # Older logs wrote scores as strings: both must read.
        return f"{value:.1f}" if self.rng.random() < 0.5 else round(value, 1)

    def _hits(self, count: int) -> tuple[list[dict], float]:
        chosen = self.rng.sample(RULES, count)
        hits = [{"rule": r, "score": self._score(s), "description": d} for r, s, d in chosen]
        return hits, sum(s for _, s, _ in chosen)

    def _base(self, kind: str, ms: int) -> dict:
        self.sessions += 1
        return {"time": iso(ms), "type": kind, "session": f"{0x6B16DA9D0000 + self.sessions:X}",
                "client": {"ip": self.rng.choice(CLIENTS), "port": self.rng.randrange(1024, 65536)},
                "helo": self.rng.choice(["mail.example.com", "[192.0.2.7]", "localhost", "mx.bad.example"]),
                "tls": self.rng.random() < 0.3}

    def _transaction(self, ms: int, with_headers: bool) -> dict:
        record = self._base("transaction", ms)
        record.update({"transaction": record["session"] + ".1", "started": iso(ms - 40),
                       "sender": self.rng.choice(SENDERS), "size": self.rng.randrange(300, 90000),
                       "durations": {"total_ms": 31.2, "downstream_ms": 12.5}})
        record["declared_size"] = record["size"]
        if with_headers:
            record["subject"] = self.rng.choice(SUBJECTS)
            record["message_id"] = f"<{self.rng.getrandbits(48):x}.{self.sessions}@{record['sender'].rpartition('@')[2] or 'null.example'}>"
            record["queue_id"] = f"{self.rng.getrandbits(40):X}"
        return record

    def _recipients(self, reply: str) -> list[dict]:
        count = self.rng.choice([1, 1, 1, 2, 3])
        action = "accept" if reply[0] == "2" else "tempfail" if reply[0] == "4" else "reject"
        return [{"address": a, "reply": reply, "action": action} for a in self.rng.sample(RECIPIENTS, count)]

    def make(self, ms: int) -> Generated:
        kind = self.rng.choices(self.kinds, self.weights)[0]
        rng = self.rng
        with_headers = rng.random() < 0.6
        early = [self._stage("size_limit", "mail", "continue", "")]
        if kind == "log_overflow":
            dropped = rng.randrange(1, 50)
            self.dropped_total += dropped
            record = {"type": "log_overflow", "time": iso(ms), "dropped": dropped, "dropped_total": self.dropped_total}
            return self._done(record, "log", f"{dropped} records dropped ({self.dropped_total} since start)")
        if kind == "command":
            record = self._base("command", ms)
            command = rng.choice(["FOO", "VRFY", "(line too long)"])
            record.update({"command": command, "action": "reject",
                           "reply": "500 5.5.2 Line too long" if command.startswith("(") else "502 5.5.1 Command not implemented"})
            return self._done(record, "smtp", f"command {command}")
        if kind == "connection":
            record = self._base("connection", ms)
            record.update({"action": "tempfail", "reply": "421 4.7.0 Too many connections, try again later",
                           "reason": "too many connections from this client"})
            return self._done(record, "smtp", record["reason"])
        if kind.startswith("session_"):
            # A session that ended without a transaction: refused at the greeting, or a client that
            # left (a load balancer's health check says EHLO and QUIT).
            record = self._base("session", ms)
            ended = rng.choice(SESSION_ENDS)
            if kind == "session_reject":
                record["stages"] = [self._stage("dnsbl", "connect", "reject", "listed in bl.example.net", DNSBL_REPLY)]
                record.update({"action": "reject", "reply": DNSBL_REPLY, "reason": ended})
                return self._done(record, "dnsbl", "listed in bl.example.net")
            if kind == "session_tempfail":
                record["stages"] = [self._stage("dnsbl", "connect", "tempfail", "dns timeout", DNSBL_TEMPFAIL_REPLY)]
                record.update({"action": "tempfail", "reply": DNSBL_TEMPFAIL_REPLY, "reason": ended})
                return self._done(record, "dnsbl", "dns timeout")
            record["stages"] = [self._stage("dnsbl", "connect", "continue", "not listed")]
            record.update({"action": "none", "reason": ended})
            return self._done(record, "smtp", f"no transaction: {ended}")

        record = self._transaction(ms, with_headers)
        queued = f"250 2.0.0 Ok: queued as {rng.getrandbits(40):X}"
        spf_pass = self._stage("spf", "rcpt", "continue", "pass", identity="mailfrom")
        if kind == "accept":
            hits, score = self._hits(rng.choice([0, 1]))
            record["stages"] = early + [spf_pass, self._stage("rules", "data", "continue", f"score {score:.1f}",
                                                              score=self._score(score), hits=hits)]
            record["score"] = self._score(score)
            record.update({"recipients": self._recipients("250 2.1.5 Ok"), "action": "accept", "reply": queued,
                           "downstream_reply": queued})
            return self._done(record, "downstream", "")
        if kind == "tag":
            hits, score = self._hits(rng.choice([2, 3]))
            reason = f"score {score:.1f} ({','.join(h['rule'] for h in hits)})"
            record["stages"] = early + [spf_pass, self._stage("rules", "data", "tag", reason, score=self._score(score),
                                                              hits=hits, tag_score=5.0)]
            record["score"] = self._score(score)
            record.update({"recipients": self._recipients("250 2.1.5 Ok"), "action": "tag", "reply": queued,
                           "downstream_reply": queued})
            return self._done(record, "rules", reason)
        if kind in ("reject_spam", "tempfail_rules"):
            hits, score = self._hits(rng.choice([3, 4, 5]))
            reply = SPAM_REPLY if kind == "reject_spam" else DEFER_REPLY
            verdict = "reject" if kind == "reject_spam" else "tempfail"
            reason = f"score {score:.1f}"
            # Sometimes after an spf stage in shadow mode that would have refused: it decides nothing.
            shadow = [self._stage("spf", "rcpt", "reject", "fail", SPF_REPLY, shadow=True)] if rng.random() < 0.3 else [spf_pass]
            record["stages"] = early + shadow + [self._stage("rules", "data", verdict, reason, reply,
                                                             score=self._score(score), hits=hits)]
            record.update({"recipients": self._recipients("250 2.1.5 Ok"), "action": verdict, "reply": reply,
                           "downstream_reply": "", "score": self._score(score)})
            return self._done(record, "rules", reason)
        if kind == "reject_spf":
            record["stages"] = early + [self._stage("spf", "rcpt", "reject", "fail", SPF_REPLY)]
            record.update({"recipients": self._recipients(SPF_REPLY), "action": "reject", "reply": SPF_REPLY,
                           "downstream_reply": "", "reason": "reset"})
            return self._done(record, "spf", "fail")
        if kind == "reject_size":
            reason = f"declared SIZE {record['size']} exceeds 25000"
            record["stages"] = [self._stage("size_limit", "mail", "reject", reason, SIZE_REPLY)]
            record.update({"recipients": [], "action": "reject", "reply": SIZE_REPLY, "downstream_reply": ""})
            return self._done(record, "size_limit", reason)
        if kind == "tempfail_downstream":
            record["stages"] = early + [spf_pass]
            record.update({"recipients": self._recipients("250 2.1.5 Ok"), "action": "tempfail",
                           "reply": DOWNSTREAM_REPLY, "downstream_reply": DOWNSTREAM_REPLY,
                           "reason": "downstream: timed out"})
            return self._done(record, "downstream", "downstream: timed out")
        if kind == "relay_denied":
            address = f"someone{rng.randrange(100)}@elsewhere.example"
            reply = f"554 5.7.1 <{address}>: Relay access denied"
            # Sometimes an spf stage in shadow mode would have refused: it still decides nothing.
            record["stages"] = early + ([self._stage("spf", "rcpt", "reject", "fail", SPF_REPLY, shadow=True)]
                                        if rng.random() < 0.3 else [])
            record.update({"recipients": [{"address": address, "reply": reply, "action": "reject"}],
                           "action": "reject", "reply": reply, "downstream_reply": "", "reason": "reset"})
            return self._done(record, "smtp", "reset")
        assert kind == "abandoned"
        record["stages"] = early + [spf_pass]
        record.update({"recipients": self._recipients("250 2.1.5 Ok"), "action": "abandoned", "reply": "",
                       "downstream_reply": "", "reason": "client disconnected"})
        return self._done(record, "smtp", "client disconnected")

    def _done(self, record: dict, stage: str, reason: str) -> Generated:
        return Generated(record, dump(record), stage, reason)


def generate(count: int, start_ms: int, seed: int = 16, mean_gap_ms: int = 10_000) -> list[Generated]:
    """`count` records from `start_ms` on, in time order, every kind among them."""
    maker = RecordMaker(seed)
    ms = start_ms
    out = []
    for _ in range(count):
        ms += maker.rng.randrange(1, 2 * mean_gap_ms)
        out.append(maker.make(ms))
    return out


# Lines a decision log may hold that are not records: each must be counted as malformed.
MALFORMED_LINES = [
    '{"time":"2026-12-07T10:00:00.000Z","type":"transaction","sender":"cut@short.exa',  # a crash mid-write
    "mailgate: this is not JSON",
    '["an","array"]',
    '{"no_type":true}',
    '{"type":"transaction","sender":"bad\udcff"}',  # not UTF-8 once encoded with surrogateescape
]


def encode_line(line: str) -> bytes:
    return line.encode("utf-8", "surrogateescape")
