#!/usr/bin/python3
"""Writes seed inputs for one fuzz target from the repository's own data (tests/fuzz/README.md):
seeds.py TARGET OUTDIR. Nothing here is committed as a binary corpus: the seeds are made at run
time. Targets that read their input with FuzzedDataProvider get it encoded the way
FuzzedDataProvider reads it (strings from the front, numbers from the back)."""
import glob
import os
import re
import sys

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))


def read(path):
    with open(path, "rb") as source:
        return source.read()


def crlf(data):
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def emails():
    paths = sorted(glob.glob(os.path.join(ROOT, "tests/data/**/*.eml"), recursive=True))
    return [crlf(read(path)) for path in paths]


class Provider:
    """Builds an input that LLVM's FuzzedDataProvider reads back as the values added, in order."""

    def __init__(self):
        self.front = bytearray()
        self.back = bytearray()  # in the order consumed: the input's last byte first

    def string(self, text):
        data = text if isinstance(text, bytes) else text.encode()
        self.front += data.replace(b"\\", b"\\\\") + b"\\x"  # a backslash and another byte end it
        return self

    def integer(self, value, size=1):
        self.back += value.to_bytes(size, "big")  # the first byte consumed is the most significant
        return self

    def build(self, remaining=b""):
        return bytes(self.front) + remaining + bytes(reversed(self.back))


def smtp_session():
    """Each golden transcript's client side (tests/transcripts), its settings, host policy 0 (the
    golden runner's answers) and no split; then again split in three, and with another policy."""
    seeds = []
    for path in sorted(glob.glob(os.path.join(ROOT, "tests/transcripts/*.smtp"))):
        client = bytearray()
        settings = 0
        for line in read(path).decode("utf-8").splitlines():
            if not line or line.startswith("#"):
                continue
            if line.startswith("@"):
                key, value = line[1:].split()
                if key == "max_recipients":
                    settings |= {100: 0, 1: 1, 2: 2, 3: 3}[int(value)]
                elif key == "max_message_bytes":
                    settings |= {10000: 0, 0: 1, 10: 2, 200: 3}[int(value)] << 2
                elif key == "max_protocol_errors":
                    settings |= {20: 0, 3: 1, 1: 2, 6: 3}[int(value)] << 4
                continue
            text = re.sub(r"\{pad:(\d+)\}", lambda m: "a" * int(m.group(1)), line[3:])
            if line.startswith("C:"):
                client += text.encode() + b"\r\n"
            elif line.startswith("R:"):
                client += text.encode().decode("unicode_escape").encode("latin-1")
        client = bytes(client)
        # FuzzedDataProvider reads settings, policy, split count, splits from the end.
        seeds.append(Provider().integer(settings).integer(0).integer(0).build(client))
        third = len(client) // 3
        seeds.append(Provider().integer(settings).integer(0).integer(2).integer(third, 2).integer(2 * third, 2).build(client))
        seeds.append(Provider().integer(settings).integer(7).integer(1).integer(third, 2).build(client))
    return seeds


def smtp_client():
    """A relay's conversation: greeting, EHLO, MAIL, RCPT, DATA, content, end, QUIT, with the
    server's replies, pipelined and not, and a few broken downstreams."""
    def conversation(replies, content=b"Subject: hi\r\n\r\n.dotted line\r\nbye\r\n", ehlo=b"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250 8BITMIME\r\n"):
        p = Provider()
        p.integer(0)                                   # expectGreeting
        p.integer(10).string(b"220 mx.test ESMTP\r\n")  # receive
        p.integer(1).integer(0).integer(1)             # EHLO mx.test
        p.integer(10).string(ehlo)
        p.integer(3).string(b"<alice@example.com> BODY=8BITMIME").integer(1).integer(1234, 8)
        p.integer(4).string(b"<bob@example.org>")
        p.integer(5)                                   # DATA
        p.integer(10).string(replies[0])
        p.integer(6).string(content)
        p.integer(8)                                   # end of data
        p.integer(10).string(replies[1])
        p.integer(9).integer(0)                        # QUIT
        p.integer(10).string(b"221 2.0.0 Bye\r\n")
        return p.build()
    return [
        conversation([b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n", b"250 2.0.0 queued\r\n"]),
        conversation([b"250 Ok\n250 Ok\n354 go\n", b"250 queued\n"], content=b"no newline at the end"),
        conversation([b"250 Ok\r\n550-5.1.1 no\r\n550 5.1.1 such user\r\n554 no valid recipients\r\n", b"250 x\r\n"],
                     content=b".\r\n..\r\n.\n.\r.\r\n"),
        conversation([b"250 Ok\r\n250 Ok\r\n354 go\r\n250 extra\r\n", b"250 x\r\n"]),
        conversation([b"250-first\r\n251 other code\r\n", b"2"], ehlo=b"250 mx.test\r\n"),
        conversation([b"250 \x01control\r\n", b""], ehlo=b"500 no EHLO\r\n"),
    ]


def proxy_protocol():
    signature = b"\r\n\r\n\x00\r\nQUIT\n"
    ipv4 = bytes([192, 0, 2, 1, 198, 51, 100, 1, 0xdc, 0x04, 0, 25])
    ipv6 = bytes(range(16)) + bytes(range(16, 32)) + b"\x12\x34\x00\x19"
    tlv = b"\x04\x00\x03abc"
    return [
        b"PROXY TCP4 192.0.2.1 198.51.100.1 56324 25\r\nEHLO client.example\r\n",
        b"PROXY TCP6 2001:db8::1 2001:db8::2 56324 25\r\n",
        b"PROXY UNKNOWN\r\n",
        b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.1 056324 25\r\n",
        signature + b"\x21\x11\x00\x0c" + ipv4 + b"EHLO x\r\n",
        signature + b"\x21\x21\x00\x24" + ipv6,
        signature + b"\x21\x11" + (12 + len(tlv)).to_bytes(2, "big") + ipv4 + tlv,
        signature + b"\x20\x00\x00\x00",
        signature + b"\x21\x31\x00\xd8" + bytes(216),
        signature + b"\x21\x11\x02\x10" + bytes(528),
    ]


def config():
    seeds = [read(path) for path in sorted(glob.glob(os.path.join(ROOT, "deploy/examples/*.toml")))]
    source = read(os.path.join(ROOT, "gateway/config/config.cpp")).decode("utf-8")
    embedded = re.search(r'R"\((.*?)\)"', source, re.S).group(1)
    seeds.append(embedded.encode())
    # The embedded default's commented keys, uncommented (as its unit test does).
    seeds.append(re.sub(r"^# ([a-z_\[])", r"\1", embedded, flags=re.M).encode())
    seeds.append(embedded.replace('type = "size_limit"', 'type = "size_limit"\nmode = "shadow"\ntimeout = "5s"').encode())
    return seeds


def rule_file():
    seeds = [read(path) for path in sorted(glob.glob(os.path.join(ROOT, "rules/sets/*.cf")))]
    seeds.append(b"include other.cf\nifplugin Mail::SpamAssassin::Plugin::ReplaceTags\nreplace_start <\n"
                 b"replace_end >\nreplace_tag A [a@]\nbody MG_X /<A>ward/\nreplace_rules MG_X\nendif\n"
                 b"if (version >= 3.004000) && can(Mail::SpamAssassin::Conf::feature_bug6558_free)\n"
                 b"meta MG_Y MG_X && !MG_OTHER\nelse\nlang fr describe MG_Y Oui\nendif\nscore MG_Y 1 2 3 4\n"
                 b"tflags MG_X multiple maxhits=3\nmimeheader MG_M Content-Type =~ /pdf/i\n")
    return seeds


def mime():
    return emails()


def dkim():
    message = crlf(read(os.path.join(ROOT, "tests/data/dkim/rfc8463-A3.eml")))
    brisbane = b"brisbane v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    test = (b"test v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/"
            b"J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kry"
            b"OTIKT+l/K4w3QIDAQAB")
    seeds = [
        brisbane + b"\n" + test + b"\n\n" + message,
        brisbane + b"\ntest v=DKIM1; k=rsa; p=\n\n" + message,
        b"brisbane !servfail\ntest !nxdomain\n\n" + message,
        b"brisbane v=DKIM1; k=ed25519; p=%%%\ntest v=DKIM1; h=sha1; t=y:s; k=rsa; n=note; p=MIGf\n\n" + message,
        brisbane + b"\n\n" + message.replace(b"a=ed25519-sha256", b"a=rsa-sha1").replace(b"c=relaxed/relaxed", b"c=simple/simple; l=3"),
    ]
    for other in emails()[:6]:
        seeds.append(brisbane + b"\n\n" + message.split(b"\r\n\r\n")[0].split(b"From:")[0] + other)
    return seeds


def auth_results():
    seeds = []
    forged = [
        b"Authentication-Results: mx.test; spf=pass smtp.mailfrom=example.com\r\n",
        b"Authentication-Results: (comment) MX.TEST 1; dkim=pass header.d=example.com\r\n",
        b"Authentication-Results: other.example;\r\n\tdkim=pass header.d=example.com\r\n",
        b"X-Spam-Status: No\r\nSubject: replaced\r\n",
    ]
    for index, message in enumerate(emails()[:8]):
        p = Provider()
        p.string(b'text "with" (parens) \\ and \x01 control').integer(40, 2)
        p.string(b"client.example").string(b"<alice@example.com>").string(b"<bob@example.org>")
        p.integer(index % 3)                     # client IP
        p.integer(index % 7).integer(index % 2)  # SPF result, identity
        p.string(b"mechanism -all matched").string(b"-all")
        if index % 7 == 3:
            p.string(b"see http://example.com/why")
        p.integer(2)                             # two DKIM signatures
        for k in range(2):
            p.integer((index + k) % 6).integer((index + k) % 4)
            p.string(b"example.com").string(b"sel" + bytes([0x30 + k])).string(b"abc+/=").string(b"body hash did not verify")
        p.integer(0).integer(index % 2)          # no error; require_author_domain
        p.integer(0)                             # authserv-id mx.test
        p.integer(0).integer(index % 2).integer(1).integer(0).integer(index % 2)  # authserv-id, replaced names
        p.integer(index % 2).integer(7 * index + 1, 4)  # in memory or on disk, read sizes
        seeds.append(p.build(forged[index % len(forged)] + message))
    return seeds


def main():
    target, directory = sys.argv[1], sys.argv[2]
    makers = {"smtp_session_fuzz": smtp_session, "smtp_client_fuzz": smtp_client,
              "proxy_protocol_fuzz": proxy_protocol, "config_fuzz": config, "rule_file_fuzz": rule_file,
              "mime_fuzz": mime, "dkim_fuzz": dkim, "auth_results_fuzz": auth_results}
    os.makedirs(directory, exist_ok=True)
    seeds = makers[target]()
    for index, seed in enumerate(seeds):
        with open(os.path.join(directory, "seed-%03d" % index), "wb") as out:
            out.write(seed)
    print("%s: %d seeds in %s" % (target, len(seeds), directory))


main()
