"""What an uploaded file is, from its bytes (include/officeflow/documents/content_type.py), and the streaming
multipart receiver (include/officeflow/documents/upload.py): real files made by their tools, bodies built by
httpx as a client sends them, fed in chunks of every size."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from include.officeflow.documents import content_type as ct
from include.officeflow.documents.upload import MalformedUpload, MultipartReceiver, UploadTooLarge, key_for
from tests.harness import document_samples as samples


def detect(tmp_path: Path, data: bytes) -> ct.Detection:
    path = tmp_path / "upload"
    path.write_bytes(data)
    return ct.detect(path)


@pytest.mark.parametrize(("data", "expected"), [
    (samples.pdf(), ct.PDF), (samples.image("PNG"), ct.PNG), (samples.image("JPEG"), ct.JPEG),
    (samples.docx(), ct.DOCX), (samples.xlsx(), ct.XLSX), (samples.TEXT, ct.TEXT), (samples.CSV, ct.TEXT),
    ("\ufeffname;city\nZoë;Kraków\n".encode(), ct.TEXT),
], ids=["pdf", "png", "jpeg", "docx", "xlsx", "text", "csv", "utf8-bom"])
def test_accepted_types_are_detected_from_their_bytes(tmp_path, data, expected):
    assert detect(tmp_path, data) == ct.Detection(expected, True)


@pytest.mark.parametrize(("data", "named"), [
    (samples.image("GIF"), "image/gif"), (samples.docm(), "macro-enabled"), (samples.plain_zip(), "application/zip"),
    (samples.HTML, "text/html"), (b"  <svg onload=alert(1)>", "text/html"), (samples.BINARY, ct.OCTET_STREAM),
    ("Müller".encode("latin-1"), ct.OCTET_STREAM), ("hi".encode("utf-16"), "utf-16"), (b"MZ\x90\x00", "msdownload"),
    (b"PK\x03\x04 truncated zip", "unreadable"), (b"text with a NUL\x00", ct.OCTET_STREAM),
], ids=["gif", "docm", "zip", "html", "svg", "binary", "latin1", "utf16", "exe", "broken-zip", "nul"])
def test_other_files_are_named_and_not_supported(tmp_path, data, named):
    detection = detect(tmp_path, data)
    assert not detection.supported and named in detection.content_type


def test_text_is_checked_to_the_end_across_chunk_boundaries(tmp_path):
    # A multi-byte character split over the 64 KiB read boundary is fine; a bad byte far into the file is not.
    good = b"a" * 65_535 + "é".encode() + b"tail\n"
    assert detect(tmp_path, good) == ct.Detection(ct.TEXT, True)
    assert not detect(tmp_path, b"a" * 200_000 + b"\xff").supported
    assert not detect(tmp_path, b"a" * 65_535 + "é".encode()[:1]).supported  # ends inside a character


def test_the_zip_manifest_is_read_without_inflating_the_rest(tmp_path):
    # A DOCX with a 50 MB part of zeros (a few kB compressed) is detected from its manifest only.
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with zipfile.ZipFile(io.BytesIO(samples.docx())) as source:
            for name in source.namelist():
                archive.writestr(name, source.read(name))
        archive.writestr("word/media/bomb.bin", b"\0" * 50_000_000)
    assert len(buffer.getvalue()) < 200_000
    assert detect(tmp_path, buffer.getvalue()) == ct.Detection(ct.DOCX, True)


@pytest.mark.parametrize(("detected", "declared", "filename", "recorded"), [
    (ct.PDF, "application/pdf", "c.pdf", ct.PDF), (ct.PDF, None, "c", ct.PDF),
    (ct.PDF, "application/octet-stream", "c.bin", ct.PDF), (ct.JPEG, "image/jpg", "p.jpg", ct.JPEG),
    (ct.DOCX, "Application/VND.openxmlformats-officedocument.wordprocessingml.document", "c.docx", ct.DOCX),
    (ct.TEXT, "text/plain; charset=utf-8", "n.txt", ct.TEXT), (ct.TEXT, "text/csv", "people", ct.CSV),
    (ct.TEXT, "application/vnd.ms-excel", "people.csv", ct.CSV), (ct.TEXT, None, "people.CSV", ct.CSV),
    (ct.TEXT, None, "notes", ct.TEXT),
])
def test_the_recorded_type_follows_the_bytes_and_a_compatible_declaration(detected, declared, filename, recorded):
    assert ct.resolve(ct.Detection(detected, True), declared, filename) == recorded


@pytest.mark.parametrize(("detected", "declared"), [
    (ct.PNG, "application/pdf"), (ct.TEXT, "application/pdf"), (ct.PDF, "text/plain"), (ct.XLSX, ct.DOCX),
    (ct.JPEG, "image/png"),
])
def test_a_declaration_the_bytes_contradict_is_a_mismatch_naming_what_was_detected(detected, declared):
    with pytest.raises(ct.ContentTypeError) as caught:
        ct.resolve(ct.Detection(detected, True), declared, "file")
    assert caught.value.code == "content_type_mismatch" and caught.value.detected == detected
    assert detected in str(caught.value) and declared in str(caught.value)


def test_an_unsupported_file_is_refused_whatever_is_declared():
    with pytest.raises(ct.ContentTypeError) as caught:
        ct.resolve(ct.Detection("text/html", False), "text/plain", "page.txt")
    assert caught.value.code == "unsupported_content_type" and "text/html" in str(caught.value)
    assert "application/pdf" in str(caught.value)  # the message lists what is accepted


# --- the multipart receiver --------------------------------------------------------------------------------


def body(files, data=None) -> tuple[str, bytes]:
    """A multipart body exactly as httpx (a real client) encodes it."""
    request = httpx.Request("POST", "http://x/", files=files, data=data)
    return request.headers["Content-Type"], request.read()


def receive(content_type: str, raw: bytes, chunk: int, limit: int = 10_000_000):
    receiver = MultipartReceiver(content_type, limit)
    try:
        for start in range(0, len(raw), chunk):
            receiver.feed(raw[start:start + chunk])
        return receiver.finish()
    except BaseException:
        receiver.discard()
        raise


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1_000_000])
def test_the_file_is_spooled_and_hashed_and_fields_collected_in_any_chunking(chunk):
    data = samples.pdf() * 3
    content_type, raw = body({"file": ("Vertrag Zoë.pdf", data, "application/pdf")},
                             {"title": "Contract", "tag": ["kind:contract", "employee_id:42"]})
    received = receive(content_type, raw, chunk)
    try:
        spooled = received.file
        assert spooled is not None and spooled.path.read_bytes() == data
        assert (spooled.size, spooled.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        assert (spooled.filename, spooled.declared_type) == ("Vertrag Zoë.pdf", "application/pdf")
        assert received.one("title") == "Contract" and received.many("tag") == ["kind:contract", "employee_id:42"]
    finally:
        received.discard()
    assert not spooled.path.exists()


def test_the_limit_stops_the_upload_at_the_first_byte_over_it_and_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    content_type, raw = body({"file": ("big.txt", b"x" * 1001, "text/plain")})
    with pytest.raises(UploadTooLarge, match="1000 bytes"):
        receive(content_type, raw, 100, limit=1000)
    assert list(tmp_path.iterdir()) == []
    exact = receive(*body({"file": ("ok.txt", b"x" * 1000, "text/plain")}), 100, limit=1000)
    assert exact.file is not None and exact.file.size == 1000
    exact.discard()


@pytest.mark.parametrize(("content_type", "raw", "message"), [
    ("application/json", b"{}", "multipart/form-data"),
    ("multipart/form-data", b"", "boundary"),
])
def test_a_body_that_is_not_a_multipart_form_is_refused(content_type, raw, message):
    with pytest.raises(MalformedUpload, match=message):
        MultipartReceiver(content_type, 1000)


def test_two_files_a_truncated_body_and_repeated_single_fields_are_refused():
    two = body([("file", ("a.txt", b"a", "text/plain")), ("file", ("b.txt", b"b", "text/plain"))])
    with pytest.raises(MalformedUpload, match="more than one"):
        receive(*two, 1000)
    content_type, raw = body({"file": ("a.txt", b"a" * 5000, "text/plain")})
    with pytest.raises(MalformedUpload, match="ends before"):
        receive(content_type, raw[:3000], 1000)
    repeated = receive(*body({"file": ("a.txt", b"a", "text/plain")}, {"title": ["one", "two"]}), 1000)
    with pytest.raises(MalformedUpload, match="given 2 times"):
        repeated.one("title")
    repeated.discard()


def test_file_names_are_reduced_to_their_base_name_and_keys_made_safe():
    received = receive(*body({"file": ("C:\\Users\\ada\\Contract (final).pdf", samples.pdf(), None)}), 1000)
    assert received.file is not None and received.file.filename == "Contract (final).pdf"
    received.discard()
    key = key_for("Contract (final).pdf")
    assert key.startswith("uploads/") and key.endswith("/Contract_final_.pdf")
    assert key_for(None).endswith("/document") and key_for("../../etc/passwd").endswith("/etc_passwd")
