#!/usr/bin/python3
"""Writes seed inputs for spf_fuzz (format: ip, MAIL FROM, HELO, then records, one a line) from
the RFC 7208 conformance suite and a few hand-made shapes: spf_seeds.py OUTDIR"""
import os
import sys

import yaml

SUITE = os.path.join(os.path.dirname(__file__), "../unit/filters/spf/data/rfc7208-tests.yml")
HAND_MADE = [
    ("192.0.2.1", "u@example.com", "mail.example.com", ["v=spf1 exists:" + "%{d}" * 127 + "A" * 300 + ".com"]),
    ("192.0.2.1", "u@example.com", "mail.example.com", ["v=spf1 include:a.example include:b.example -all"]),
    ("2001:db8::1", "", "mail.example.com", ["v=spf1 a//0 mx/0//0 ptr:%{p} -all exp=e.%{d}",
                                             "%{c} %{r} %{t} %{S} %{L}"]),
    ("::ffff:192.0.2.1", "a-b+c@x.example", "h", ["v=spf1 exists:%{l2r+-}.%{ir}.%{v}.%{d2} redirect=%{o}."]),
    ("127.0.0.1", "@x.example", "[192.0.2.1]", ["v=spf1 ip4:0.0.0.0/0 ip6:::/0 foo.bar=%{h} -all"]),
]


def write(directory, index, ip, sender, helo, records):
    with open(os.path.join(directory, "seed-%03d" % index), "wb") as out:
        out.write("\n".join([ip, sender, helo] + records).encode("utf-8", "surrogateescape"))


def main():
    directory = sys.argv[1]
    os.makedirs(directory, exist_ok=True)
    index = 0
    for ip, sender, helo, records in HAND_MADE:
        write(directory, index, ip, sender, helo, records)
        index += 1
    with open(SUITE, encoding="utf-8") as source:
        for scenario in yaml.safe_load_all(source):
            if not scenario:
                continue
            zone = {name.lower(): entries for name, entries in scenario["zonedata"].items()}
            for test in scenario["tests"].values():
                domain = (test["mailfrom"].rpartition("@")[2] or test["helo"]).lower()
                records = []
                for entry in zone.get(domain, []):
                    if isinstance(entry, dict):
                        for kind, value in entry.items():
                            if kind in ("SPF", "TXT") and value != "NONE":
                                records.append("".join(value) if isinstance(value, list) else str(value))
                write(directory, index, str(test["host"]), test["mailfrom"], test["helo"], records)
                index += 1


main()
