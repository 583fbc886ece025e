"""Real files of every kind the documents API accepts or refuses, made the way their tools make them: PDF with
fpdf2, PNG/JPEG/GIF with Pillow, DOCX/XLSX/DOCM as Office writes their package (``[Content_Types].xml`` with the
main part's override), and text, CSV, HTML and binary bytes."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime

from fpdf import FPDF
from PIL import Image

_RELS = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
         '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
         '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
         'officeDocument" Target="{target}"/></Relationships>')
_TYPES = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
          '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
          '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
          '<Default Extension="xml" ContentType="application/xml"/>'
          '<Override PartName="/{part}" ContentType="{main}"/></Types>')
WORD_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
EXCEL_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
WORD_MACRO_MAIN = "application/vnd.ms-word.document.macroEnabled.main+xml"
FIXED_TIME = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def pdf(text: str = "Employment contract") -> bytes:
    document = FPDF()
    document.set_creation_date(FIXED_TIME)  # the same text gives the same bytes
    document.add_page()
    document.set_font("helvetica", size=12)
    document.cell(text=text)
    return bytes(document.output())


def image(kind: str = "PNG", size: tuple[int, int] = (4, 3)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format=kind)
    return buffer.getvalue()


def _package(part: str, main: str, body: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in (("[Content_Types].xml", _TYPES.format(part=part, main=main)),
                              ("_rels/.rels", _RELS.format(target=part)), (part, body)):
            # A fixed date: the same content gives the same bytes.
            archive.writestr(zipfile.ZipInfo(name, FIXED_TIME.timetuple()[:6]), content, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def docx(text: str = "Contract") -> bytes:
    return _package("word/document.xml", WORD_MAIN,
                    '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
                    f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>")


def xlsx() -> bytes:
    return _package("xl/workbook.xml", EXCEL_MAIN,
                    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheets/></workbook>')


def docm() -> bytes:
    return _package("word/document.xml", WORD_MACRO_MAIN, "<w:document/>")


def plain_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "hello")
    return buffer.getvalue()


TEXT = "Onboarding checklist\n- laptop\n- badge ✓\n".encode()
CSV = b"employee_id,name,start_date\n42,Ada Lovelace,2026-12-01\n"
HTML = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"
BINARY = bytes(range(256)) * 4
