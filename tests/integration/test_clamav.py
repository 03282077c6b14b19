"""The clamav stage with a real clamd (tests/integration/clamd.py: Debian's clamav-daemon on a
unix socket in tmp_path, with a signature database the test writes for the EICAR test file).

A case asserts the reply to the end of data (554 5.7.0 with clamd's signature name for a virus,
451 4.7.0 for clamd trouble with on_error = "tempfail"), what the downstream got (X-Virus-Scanned
on clean mail, X-Virus-Status on tagged mail, incoming fields of these names gone; nothing when
refused) and the decision record's clamav entry (result, signature, scanned_bytes, clamd_ms).
"""

from __future__ import annotations

import base64
import io
import time
import zipfile

import pytest

import clamd as clamd_module
from clamd import EICAR, REPORTED, Clamd, Hanging
from harness import Raw, delivered_once, make_message, never_delivered, parse_header_block

pytestmark = [pytest.mark.time_limit(90),
              pytest.mark.skipif(not clamd_module.available(), reason="clamav-daemon is not installed")]

SENDER = "alice@sender.example"
RCPT = "user@example.org"
VIRUS_TEXT = f"Message refused: virus found ({REPORTED})"
FORGED = ["X-Virus-Scanned: forged-scanner", "X-Virus-Status: Clean (forged)"]


@pytest.fixture(scope="module")
def clamd(tmp_path_factory):
    daemon = Clamd(tmp_path_factory.mktemp("clamd")).start()
    # The database works: clamd itself finds the test file.
    assert daemon.scan(EICAR) == f"stream: {REPORTED} FOUND".encode()
    yield daemon
    daemon.stop()


def clamav_stage(socket_path: str, **keys) -> dict:
    return {"type": "clamav", "clamd": socket_path, **keys}


def send(gw, content: bytes, *, timeout: float = 30.0):
    with Raw.session(gw.port) as raw:
        port = raw.local_port
        reply = raw.transaction(SENDER, [RCPT], content, timeout=timeout)
        raw.cmd("QUIT").check(221)
    records = gw.wait_for_records(
        lambda r: r.get("type") == "transaction" and r.get("client", {}).get("port") == port)
    assert len(records) == 1, records
    return reply, records[0]


def entry(record: dict, *, clamd_asked: bool = True) -> dict:
    found = [s for s in record.get("stages", []) if s.get("stage") == "clamav"]
    assert len(found) == 1, record.get("stages")
    assert found[0]["phase"] == "data", found[0]
    # clamd's time is recorded when clamd was asked, and only then.
    assert (found[0]["clamd_ms"] >= 0) if clamd_asked else "clamd_ms" not in found[0], found[0]
    return found[0]


def headers_of(data: bytes) -> list[tuple[str, str]]:
    return parse_header_block(data.partition(b"\r\n\r\n")[0] + b"\r\n")


def values(data: bytes, name: str) -> list[str]:
    return [v for n, v in headers_of(data) if n.lower() == name.lower()]


def zipped(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return out.getvalue()


def with_attachment(name: str, data: bytes, content_type: str = "application/octet-stream",
                    extra_headers=()) -> bytes:
    encoded = base64.encodebytes(data).replace(b"\n", b"\r\n").decode()
    body = ("--BOUNDARY\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nSee the attachment.\r\n"
            f"--BOUNDARY\r\nContent-Type: {content_type}; name=\"{name}\"\r\n"
            "Content-Transfer-Encoding: base64\r\n"
            f"Content-Disposition: attachment; filename=\"{name}\"\r\n\r\n{encoded}\r\n--BOUNDARY--\r\n")
    return make_message(subject="attachment", body=body, extra_headers=[
        "MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="BOUNDARY"', *extra_headers])


VIRUS_CARRIERS = {
    "plain_body": lambda: make_message(subject="plain", body=EICAR.decode() + "\r\n"),
    "base64_attachment": lambda: with_attachment("eicar.com", EICAR),
    "zip": lambda: with_attachment("eicar.zip", zipped("eicar.com", EICAR), "application/zip"),
    "nested_zip": lambda: with_attachment("outer.zip", zipped("inner.zip", zipped("eicar.com", EICAR)),
                                          "application/zip"),
}


@pytest.mark.parametrize("carrier", list(VIRUS_CARRIERS))
def test_virus_is_refused_with_the_signature_name(start_gateway, sink, clamd, carrier):
    gw = start_gateway(sink=sink, stages=[clamav_stage(clamd.socket_path)])
    content = VIRUS_CARRIERS[carrier]()
    reply, record = send(gw, content)
    assert (reply.code, reply.text) == (554, "5.7.0 " + VIRUS_TEXT), reply
    never_delivered(sink, content)
    found = entry(record)
    assert found["verdict"] == "reject", found
    assert found["signature"] == REPORTED and found["result"] == "virus", found
    assert found["scanned_bytes"] == len(content), found
    assert record["action"] == "reject"


def test_clean_message_passes_with_x_virus_scanned_and_forged_fields_removed(start_gateway, sink, clamd):
    gw = start_gateway(sink=sink, stages=[clamav_stage(clamd.socket_path)])
    content = with_attachment("report.zip", zipped("report.txt", b"quarterly figures\r\n" * 100), "application/zip",
                              extra_headers=FORGED)
    reply, record = send(gw, content)
    assert reply.code == 250, reply
    data = delivered_once(sink, content)
    assert values(data, "X-Virus-Scanned") == ["clamav"]
    assert values(data, "X-Virus-Status") == []
    assert b"forged" not in data
    found = entry(record)
    assert found["verdict"] == "continue" and found["result"] == "clean", found
    assert found["scanned_bytes"] == len(content)


def test_on_virus_tag_delivers_with_x_virus_status(start_gateway, sink, clamd):
    gw = start_gateway(sink=sink, stages=[clamav_stage(clamd.socket_path, on_virus="tag")])
    content = with_attachment("eicar.com", EICAR, extra_headers=FORGED)
    reply, record = send(gw, content)
    assert reply.code == 250, reply
    data = delivered_once(sink, content)
    assert values(data, "X-Virus-Status") == [f"Infected ({REPORTED})"]
    assert values(data, "X-Virus-Scanned") == ["clamav"]
    assert b"forged" not in data
    assert entry(record)["verdict"] == "tag"


def test_on_virus_tempfail_answers_451(start_gateway, sink, clamd):
    gw = start_gateway(sink=sink, stages=[clamav_stage(clamd.socket_path, on_virus="tempfail")])
    content = with_attachment("eicar.com", EICAR)
    reply, _ = send(gw, content)
    assert reply.code == 451 and reply.text.startswith("4.7.0 "), reply
    never_delivered(sink, content)


def test_clamd_stopped_is_a_tempfail_or_accepted_as_configured(start_gateway, sink, tmp_path):
    daemon = Clamd(tmp_path / "stopped").start()
    daemon.stop()  # its socket file stays, with nobody listening
    tempfail = start_gateway(sink=sink, stages=[clamav_stage(daemon.socket_path)])
    content = make_message(subject="while clamd is down")
    reply, record = send(tempfail, content)
    assert (reply.code, reply.text) == (451, "4.7.0 Virus scanner unavailable, try again later"), reply
    never_delivered(sink, content)
    found = entry(record)
    assert found["verdict"] == "tempfail" and found["result"] == "error", found
    assert "connect" in found["reason"], found

    accept = start_gateway(sink=sink, stages=[clamav_stage(daemon.socket_path, on_error="accept")])
    content = make_message(subject="accepted unscanned", extra_headers=FORGED)
    reply, record = send(accept, content)
    assert reply.code == 250, reply
    data = delivered_once(sink, content)
    # Not scanned: no X-Virus-Scanned, and the forged ones are gone all the same.
    assert values(data, "X-Virus-Scanned") == [] and values(data, "X-Virus-Status") == []
    found = entry(record)
    assert found["verdict"] == "continue" and found["result"] == "error", found
    assert found["reason"].startswith("not scanned: "), found


def test_hanging_clamd_is_a_tempfail_within_the_timeout(start_gateway, sink, tmp_path):
    hanging = Hanging(str(tmp_path / "hang.sock"))
    try:
        gw = start_gateway(sink=sink, stages=[clamav_stage(hanging.path, timeout="2s")])
        content = make_message(subject="nobody answers")
        started = time.monotonic()
        reply, record = send(gw, content)
        took = time.monotonic() - started
        assert reply.code == 451 and reply.text.startswith("4.7.0 "), reply
        assert 1.5 <= took < 10, took
        never_delivered(sink, content)
        found = entry(record)
        assert found["result"] == "error" and "did not answer" in found["reason"], found
        assert found["scanned_bytes"] == len(content), found

        # on_error = "accept" holds for a timeout too.
        gw = start_gateway(sink=sink, stages=[clamav_stage(hanging.path, timeout="1s", on_error="accept")])
        content = make_message(subject="nobody answers, accepted")
        reply, record = send(gw, content)
        assert reply.code == 250, reply
        delivered_once(sink, content)
        assert entry(record)["result"] == "error"
    finally:
        hanging.close()


def big_message_with_virus_at_the_end(size: int) -> bytes:
    filler = ("x" * 76 + "\r\n") * (size // 78)
    return make_message(subject="large", body=filler + EICAR.decode() + "\r\n")


def test_oversize_scan_prefix_scans_only_the_first_part(start_gateway, sink, clamd):
    gw = start_gateway(sink=sink, stages=[clamav_stage(clamd.socket_path, max_scan_bytes="64KiB")])
    content = big_message_with_virus_at_the_end(200 * 1024)
    reply, record = send(gw, content)
    # The virus lies past the part scanned: passed, and the record says what was scanned.
    assert reply.code == 250, reply
    data = delivered_once(sink, content)
    assert values(data, "X-Virus-Scanned") == ["clamav"]
    found = entry(record)
    assert found["scanned_bytes"] == 64 * 1024, found
    assert found["oversize"] == "scan_prefix", found
    assert "only the first 65536" in found["reason"], found

    # Within the bound, the same virus is found.
    gw = start_gateway(sink=sink, stages=[clamav_stage(clamd.socket_path, max_scan_bytes="1MiB")])
    reply, _ = send(gw, big_message_with_virus_at_the_end(200 * 1024))
    assert reply.code == 554 and reply.text.startswith("5.7.0 "), reply


def test_oversize_error_is_handled_by_on_error(start_gateway, sink, clamd):
    gw = start_gateway(sink=sink, stages=[clamav_stage(clamd.socket_path, max_scan_bytes="64KiB",
                                                       on_oversize="error")])
    content = big_message_with_virus_at_the_end(100 * 1024)
    reply, record = send(gw, content)
    assert reply.code == 451 and reply.text.startswith("4.7.0 "), reply
    never_delivered(sink, content)
    found = entry(record, clamd_asked=False)
    assert found["oversize"] == "error" and found["scanned_bytes"] == 0, found


def test_clamd_stream_limit_error_is_clamd_trouble(start_gateway, sink, tmp_path):
    # max_scan_bytes above clamd's StreamMaxLength: clamd answers "INSTREAM size limit exceeded".
    daemon = Clamd(tmp_path / "small", stream_max="32K").start()
    try:
        gw = start_gateway(sink=sink, stages=[clamav_stage(daemon.socket_path, max_scan_bytes="1MiB")])
        reply, record = send(gw, big_message_with_virus_at_the_end(100 * 1024))
        assert reply.code == 451 and reply.text.startswith("4.7.0 "), reply
        found = entry(record)
        assert found["result"] == "error" and "size limit" in found["reason"], found
    finally:
        daemon.stop()


def test_shadow_mode_logs_the_virus_and_delivers(start_gateway, sink, clamd):
    gw = start_gateway(sink=sink, stages=[clamav_stage(clamd.socket_path, mode="shadow")])
    content = with_attachment("eicar.com", EICAR, extra_headers=FORGED)
    reply, record = send(gw, content)
    assert reply.code == 250, reply
    data = delivered_once(sink, content)
    # Shadow: nothing added, but forged fields still do not pass.
    assert values(data, "X-Virus-Scanned") == [] and b"forged" not in data
    found = entry(record)
    assert found["verdict"] == "reject" and found["shadow"] is True and found["signature"] == REPORTED, found


def test_check_config_refuses_bad_keys(mailgate_bin, tmp_path):
    from harness import build_config, run
    bad = [({"clamd": "nohost"}, "clamd"), ({"clamd": "/x", "on_virus": "accept"}, "on_virus"),
           ({"clamd": "/x", "on_error": "reject"}, "on_error"), ({"clamd": "/x", "on_oversize": "drop"}, "on_oversize"),
           ({"clamd": "/x", "max_connections": 0}, "max_connections"), ({"clamd": "/x", "scan": 1}, "scan")]
    for keys, key in bad:
        path = tmp_path / "bad.toml"
        path.write_text(build_config(stages=[{"type": "clamav", **keys}]).replace("{port}", "2525")
                        .replace("{sink_port}", "2526").replace("{tmp}", str(tmp_path)))
        result = run([mailgate_bin, "--check-config", str(path)])
        assert result.returncode != 0, (keys, result.stdout, result.stderr)
        assert f"stage[0].{key}" in (result.stdout + result.stderr), (keys, result.stdout, result.stderr)
