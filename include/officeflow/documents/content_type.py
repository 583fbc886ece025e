"""What an uploaded file is, from its bytes (never its name), and whether that is what the client declared.

Accepted: PDF, PNG, JPEG, Word (DOCX) and Excel (XLSX) documents, UTF-8 plain text and CSV. DOCX and XLSX
are zip files whose ``[Content_Types].xml`` names the main part (only the zip's directory and that small
entry are read, so a zip bomb is never inflated); macro-enabled variants (DOCM, XLSM) are refused. Text
is UTF-8 without NUL or other control characters (tab, newline, carriage return and form feed allowed);
a text file that starts like HTML is refused (served back, it would be a page, not a document).
"""

from __future__ import annotations

import codecs
import zipfile
from dataclasses import dataclass
from pathlib import Path

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TEXT = "text/plain"
CSV = "text/csv"
OCTET_STREAM = "application/octet-stream"
SUPPORTED = (PDF, PNG, JPEG, DOCX, XLSX, TEXT, CSV)

# Declared types that name the same thing (what browsers and tools send).
_ALIASES = {"image/jpg": JPEG, "image/pjpeg": JPEG, "application/x-pdf": PDF, "application/csv": CSV,
            "text/comma-separated-values": CSV, "text/x-csv": CSV,
            # Browsers on Windows declare .csv files as Excel's.
            "application/vnd.ms-excel": CSV}
# Declared types that say nothing: the detected type is taken.
_UNSPECIFIED = {"", OCTET_STREAM, "binary/octet-stream", "application/unknown"}

# Recognised (to name them in the refusal) but not accepted.
_OTHER_SIGNATURES = (
    (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"), (b"\x1f\x8b", "application/gzip"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage (legacy .doc/.xls)"),
    (b"MZ", "application/x-msdownload"), (b"\x7fELF", "application/x-executable"),
    (b"Rar!", "application/vnd.rar"), (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (b"\xff\xfe", "text/plain; charset=utf-16"), (b"\xfe\xff", "text/plain; charset=utf-16"),
)
_OOXML_MAIN = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": DOCX,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": XLSX,
}
_CONTENT_TYPES_LIMIT = 1_048_576  # [Content_Types].xml is a few kB; never inflate more than this
_HTML_STARTS = (b"<!doctype html", b"<html", b"<script", b"<head", b"<body", b"<svg", b"<?xml")
_CONTROLS = bytes([*(b for b in range(32) if b not in (9, 10, 12, 13)), 127])
_CHUNK = 65_536


class ContentTypeError(ValueError):
    """The file is of a type not accepted, or not of the declared type; ``detected`` names what it is."""

    def __init__(self, code: str, message: str, detected: str, declared: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.detected = detected
        self.declared = declared


@dataclass(frozen=True)
class Detection:
    content_type: str  # one of SUPPORTED, or a description of what the file is
    supported: bool


def detect(path: Path) -> Detection:
    """The file's type from its bytes: magic numbers, then the zip's main part, then UTF-8 text."""
    with path.open("rb") as handle:
        head = handle.read(8)
    if head.startswith(b"%PDF-"):
        return Detection(PDF, True)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Detection(PNG, True)
    if head.startswith(b"\xff\xd8\xff"):
        return Detection(JPEG, True)
    if head.startswith(b"PK\x03\x04"):
        return _zip(path)
    for signature, name in _OTHER_SIGNATURES:
        if head.startswith(signature):
            return Detection(name, False)
    return _text(path)


def _zip(path: Path) -> Detection:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "[Content_Types].xml" not in names:
                return Detection("application/zip", False)
            with archive.open("[Content_Types].xml") as entry:
                manifest = entry.read(_CONTENT_TYPES_LIMIT).decode("utf-8", "replace")
    except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError):
        return Detection("application/zip (unreadable)", False)
    for main, kind in _OOXML_MAIN.items():
        if f'ContentType="{main}"' in manifest:
            return Detection(kind, True)
    if "macroEnabled" in manifest:
        return Detection("application/vnd.ms-office (macro-enabled)", False)
    return Detection("application/zip (Office Open XML of another kind)", False)


def _text(path: Path) -> Detection:
    decoder = codecs.getincrementaldecoder("utf-8")()
    first = True
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            if first:
                start = chunk.removeprefix(codecs.BOM_UTF8).lstrip().lower()
                if start.startswith(_HTML_STARTS):
                    return Detection("text/html", False)
                first = False
            if len(chunk.translate(None, _CONTROLS)) != len(chunk):  # a control character (C speed)
                return Detection(OCTET_STREAM, False)
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                return Detection(OCTET_STREAM, False)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return Detection(OCTET_STREAM, False)
    return Detection(TEXT, True)


def normalise(declared: str | None) -> str:
    """``"Text/CSV; charset=utf-8"`` → ``"text/csv"``; aliases to their canonical name."""
    base = (declared or "").split(";", 1)[0].strip().lower()
    return _ALIASES.get(base, base)


def resolve(detection: Detection, declared: str | None, filename: str | None = None) -> str:
    """The content type to record: the detected one, if supported and compatible with the declared one.

    Text is recorded as ``text/csv`` when declared so (or, undeclared, when the file is named ``*.csv``),
    else ``text/plain``. Raises :class:`ContentTypeError` (``unsupported_content_type`` or
    ``content_type_mismatch``).
    """
    wanted = normalise(declared)
    if not detection.supported:
        raise ContentTypeError(
            "unsupported_content_type",
            f"the file's bytes are {detection.content_type}, which is not accepted; accepted: "
            f"{', '.join(SUPPORTED)}", detection.content_type, declared)
    if detection.content_type == TEXT:
        if wanted in (TEXT, CSV):
            return wanted
        if wanted in _UNSPECIFIED:
            return CSV if (filename or "").lower().endswith(".csv") else TEXT
    elif wanted in _UNSPECIFIED or wanted == detection.content_type:
        return detection.content_type
    raise ContentTypeError(
        "content_type_mismatch",
        f"declared content type {declared!r} does not match the file's bytes, which are {detection.content_type}",
        detection.content_type, declared)
