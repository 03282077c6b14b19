"""The attachments stage through the real gateway and a real downstream (sink.Sink): file names
(decoded, normalised) against `block` globs, declared and detected (libmagic) types against
`block_types`, and the same inside archives (libarchive), with the evasions senders use.

A refused message gets `554 5.7.1 Message refused: attachment "<name>" is not allowed` and never
reaches the downstream; the decision record's attachments entry names what was found."""

from __future__ import annotations

import base64
import io
import shutil
import struct
import subprocess
import tarfile
import zipfile

import pytest

from harness import Raw, delivered_once, make_message, never_delivered, parse_header_block

pytestmark = pytest.mark.time_limit(60)

SENDER = "alice@sender.example"
RCPT = "user@example.org"
BLOCK = ["*.exe", "*.scr", "*.js", "*.vbs", "*.iso"]
BLOCK_TYPES = ["application/x-dosexec", "application/vnd.microsoft.portable-executable",
               "application/x-executable", "application/x-pie-executable", "application/x-sharedlib"]


def elf_executable() -> bytes:
    """A minimal 64-bit ELF executable header (libmagic: application/x-executable)."""
    return (b"\x7fELF\x02\x01\x01" + b"\0" * 9 +
            struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, 0x401000, 64, 0, 0, 64, 56, 0, 64, 0, 0) + b"\0" * 64)


def pe_executable() -> bytes:
    """A minimal PE file: MZ header pointing at a PE header (libmagic: a Windows executable)."""
    mz = b"MZ" + b"\0" * 58 + struct.pack("<I", 64)
    pe = b"PE\0\0" + struct.pack("<HHIIIHH", 0x14C, 0, 0, 0, 0, 0xE0, 0x102)
    return mz + pe + b"\0" * 0xE0


PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"


def zipped(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def tar_gz(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def encrypted_zip(tmp_path, files: dict[str, bytes]) -> bytes:
    folder = tmp_path / "to-encrypt"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    target = tmp_path / "encrypted.zip"
    subprocess.run(["zip", "-q", "-e", "-P", "secret", str(target), *files], cwd=folder, check=True, timeout=30)
    return target.read_bytes()


def seven_zip(tmp_path, files: dict[str, bytes], *extra: str) -> bytes:
    folder = tmp_path / "to-7z"
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    target = tmp_path / "archive.7z"
    subprocess.run(["7z", "a", "-bd", "-y", *extra, str(target), *files], cwd=folder, check=True, timeout=30,
                   stdout=subprocess.DEVNULL)
    return target.read_bytes()


def message(parts: list[tuple[str, str, bytes]], *, extra_headers=()) -> bytes:
    """A multipart/mixed message: a text part, then each (content-type header params, disposition
    params, content) base64-encoded."""
    body = "--BOUNDARY\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nPlease see the attachment.\r\n"
    for type_params, disposition_params, data in parts:
        encoded = base64.encodebytes(data).replace(b"\n", b"\r\n").decode()
        body += (f"--BOUNDARY\r\nContent-Type: {type_params}\r\nContent-Transfer-Encoding: base64\r\n"
                 f"Content-Disposition: attachment{disposition_params}\r\n\r\n{encoded}\r\n")
    body += "--BOUNDARY--\r\n"
    return make_message(subject="documents", body=body, extra_headers=[
        "MIME-Version: 1.0", 'Content-Type: multipart/mixed; boundary="BOUNDARY"', *extra_headers])


def attachment(name: str, data: bytes, content_type: str = "application/octet-stream") -> bytes:
    return message([(f'{content_type}; name="{name}"', f'; filename="{name}"', data)])


def send(gw, content: bytes):
    with Raw.session(gw.port) as raw:
        port = raw.local_port
        reply = raw.transaction(SENDER, [RCPT], content, timeout=20.0)
        raw.cmd("QUIT").check(221)
    records = gw.wait_for_records(
        lambda r: r.get("type") == "transaction" and r.get("client", {}).get("port") == port)
    assert len(records) == 1, records
    return reply, records[0]


def entry(record: dict) -> dict:
    found = [s for s in record.get("stages", []) if s.get("stage") == "attachments"]
    assert len(found) == 1, record.get("stages")
    return found[0]


@pytest.fixture
def attachments_gateway(start_gateway, sink):
    def start(**keys):
        stage = {"type": "attachments", "block": BLOCK, "block_types": BLOCK_TYPES, **keys}
        return start_gateway(sink=sink, stages=[stage])
    return start


def refused(gw, sink, content: bytes, name: str):
    reply, record = send(gw, content)
    assert (reply.code, reply.text) == (554, f'5.7.1 Message refused: attachment "{name}" is not allowed'), reply
    never_delivered(sink, content)
    found = entry(record)
    assert found["verdict"] == "reject", found
    assert record["action"] == "reject"
    return found


EVASIONS = {
    # name in the reply, message
    "plain": ("setup.exe", lambda tmp: attachment("setup.exe", b"MZ not really")),
    "double_extension": ("invoice.pdf.exe", lambda tmp: attachment("invoice.pdf.exe", PDF)),
    "upper_case": ("INVOICE.EXE", lambda tmp: attachment("INVOICE.EXE", b"data")),
    "trailing_dots_and_spaces": ("invoice.exe", lambda tmp: attachment("invoice.exe . .", b"data")),
    "rfc2231_name": ("invoice.pdf.exe", lambda tmp: message([
        ("application/octet-stream", "; filename*=UTF-8''invoice%2Epdf%2Eexe", b"data")])),
    "rfc2231_continuation": ("report.scr", lambda tmp: message([
        ("application/octet-stream", "; filename*0*=UTF-8''rep; filename*1=ort.scr", b"data")])),
    "rfc2047_name": ("facture.js", lambda tmp: message([
        ('application/octet-stream; name="=?UTF-8?B?ZmFjdHVyZS5qcw==?="', "", b"data")])),
    "name_only_in_content_type": ("run.vbs", lambda tmp: message([
        ('application/octet-stream; name="run.vbs"', "", b"data")])),
    # U+202E RIGHT-TO-LEFT OVERRIDE: shown as "invoiceexe.pdf"; the reply shows "?" for it.
    "rlo": ("invoicefdp.exe", lambda tmp: message([
        ("application/octet-stream", "; filename*=UTF-8''invoice%E2%80%AEfdp.exe", b"data")])),
    "renamed_elf": ("report.pdf", lambda tmp: attachment("report.pdf", elf_executable(), "application/pdf")),
    "renamed_pe": ("photo.jpg", lambda tmp: attachment("photo.jpg", pe_executable(), "image/jpeg")),
    "exe_in_zip": ("docs.zip/setup.exe", lambda tmp: attachment("docs.zip", zipped({"setup.exe": b"x"}), "application/zip")),
    "exe_in_zip_in_zip": ("outer.zip/inner.zip/tool.exe", lambda tmp: attachment(
        "outer.zip", zipped({"inner.zip": zipped({"readme.txt": b"hi", "tool.exe": b"x"})}), "application/zip")),
    "renamed_elf_in_zip_in_zip": ("outer.zip/inner.zip/notes.txt", lambda tmp: attachment(
        "outer.zip", zipped({"inner.zip": zipped({"notes.txt": elf_executable()})}), "application/zip")),
    "exe_in_tar_gz": ("bundle.tar.gz/bin/app.exe", lambda tmp: attachment(
        "bundle.tar.gz", tar_gz({"bin/app.exe": b"x"}), "application/gzip")),
    "exe_gzipped": ("update.exe.gz/update.exe", lambda tmp: attachment(
        "update.exe.gz", __import__("gzip").compress(b"payload"), "application/gzip")),
}


@pytest.mark.parametrize("case", list(EVASIONS))
def test_blocked_attachment_is_refused(attachments_gateway, sink, tmp_path, case):
    name, build = EVASIONS[case]
    gw = attachments_gateway()
    found = refused(gw, sink, build(tmp_path), name)
    assert any(f["kind"] == "blocked" for f in found["findings"]), found


def test_rlo_name_reply_is_printable_ascii(attachments_gateway, sink):
    gw = attachments_gateway()
    content = message([("application/octet-stream", "; filename*=UTF-8''%E2%80%AEexe.pdf%22%0D%0A250", b"x")],)
    reply, record = send(gw, content)
    # Nothing is blocked here ("exe.pdf\"\r\n250" matches no glob): the name never reaches a reply.
    assert reply.code == 250, reply


def test_encrypted_zip_is_tagged_by_default_and_refused_when_configured(attachments_gateway, sink, tmp_path):
    if shutil.which("zip") is None:
        pytest.skip("zip is not installed")
    data = encrypted_zip(tmp_path, {"contract.txt": b"secret terms\n" * 50})
    content = attachment("contract.zip", data, "application/zip")
    gw = attachments_gateway()
    reply, record = send(gw, content)
    assert reply.code == 250, reply
    delivered = delivered_once(sink, content)
    headers = parse_header_block(delivered.partition(b"\r\n\r\n")[0] + b"\r\n")
    assert [v for n, v in headers if n == "X-Attachment-Warning"] == ['encrypted "contract.zip"']
    assert entry(record)["verdict"] == "tag"

    gw = attachments_gateway(on_encrypted_archive="reject")
    content = attachment("contract.zip", data, "application/zip")
    reply, record = send(gw, content)
    assert (reply.code, reply.text) == (554, '5.7.1 Message refused: attachment "contract.zip" is an encrypted archive')
    never_delivered(sink, content)


def test_encrypted_zip_with_blocked_name_inside_is_refused(attachments_gateway, sink, tmp_path):
    # The names in an encrypted zip are not encrypted: a blocked one is caught all the same.
    data = encrypted_zip(tmp_path, {"payload.exe": b"x" * 100})
    refused(attachments_gateway(), sink, attachment("parcel.zip", data, "application/zip"), "parcel.zip/payload.exe")


@pytest.mark.skipif(shutil.which("7z") is None, reason="7z (p7zip-full) is not installed")
def test_seven_zip_contents_and_encrypted_headers(attachments_gateway, sink, tmp_path):
    gw = attachments_gateway(on_encrypted_archive="reject")
    refused(gw, sink, attachment("tools.7z", seven_zip(tmp_path / "a", {"tool.exe": b"x"}), "application/x-7z-compressed"),
            "tools.7z/tool.exe")
    # -mhe=on encrypts the names too: nothing inside can be seen, the archive is "encrypted".
    data = seven_zip(tmp_path / "b", {"tool.exe": b"x"}, "-psecret", "-mhe=on")
    content = attachment("tools.7z", data, "application/x-7z-compressed")
    reply, record = send(gw, content)
    assert (reply.code, reply.text) == (554, '5.7.1 Message refused: attachment "tools.7z" is an encrypted archive'), reply


def test_pdf_and_zip_of_text_pass(attachments_gateway, sink):
    gw = attachments_gateway()
    content = message([
        ('application/pdf; name="report.pdf"', '; filename="report.pdf"', PDF),
        ('application/zip; name="notes.zip"', '; filename="notes.zip"',
         zipped({"a.txt": b"first\n", "dir/b.txt": b"second\n"})),
    ], extra_headers=["X-Attachment-Warning: forged"])
    reply, record = send(gw, content)
    assert reply.code == 250, reply
    data = delivered_once(sink, content)
    assert b"forged" not in data
    found = entry(record)
    assert found["verdict"] == "continue" and found["findings"] == [], found
    # report.pdf, notes.zip, and the two files inside it.
    assert found["files"] == 4, found


def test_tag_action_delivers_with_a_warning(attachments_gateway, sink):
    gw = attachments_gateway(action="tag")
    content = attachment("setup.exe", b"x")
    reply, record = send(gw, content)
    assert reply.code == 250, reply
    data = delivered_once(sink, content)
    headers = parse_header_block(data.partition(b"\r\n\r\n")[0] + b"\r\n")
    assert [v for n, v in headers if n == "X-Attachment-Warning"] == ['blocked "setup.exe"']
    assert entry(record)["verdict"] == "tag"


def test_archives_nested_past_the_bound_are_unchecked(attachments_gateway, sink):
    data = b"hello\n"
    for level in range(7):
        data = zipped({f"level{level}.zip" if level else "hello.txt": data})
    gw = attachments_gateway(on_unchecked_archive="reject")
    content = attachment("deep.zip", data, "application/zip")
    reply, record = send(gw, content)
    assert reply.code == 554 and "cannot be inspected" in reply.text, reply
    assert "nested deeper" in entry(record)["reason"]


def test_shadow_mode_logs_and_delivers(attachments_gateway, sink):
    gw = attachments_gateway(mode="shadow")
    content = attachment("setup.exe", b"x")
    reply, record = send(gw, content)
    assert reply.code == 250, reply
    delivered_once(sink, content)
    found = entry(record)
    assert found["verdict"] == "reject" and found["shadow"] is True, found
