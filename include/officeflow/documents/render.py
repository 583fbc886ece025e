"""Rendering: ``include/templates/documents/<template>.html.j2`` to an A4 PDF with fpdf2.

The template (Jinja, StrictUndefined, HTML auto-escaped) is rendered to the HTML subset fpdf2
understands and laid out as an A4 PDF with a header (company, title) and numbered footer. Output is
byte-for-byte deterministic for the same inputs and ``created_at``, so a retried task produces the
same checksum.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from include.officeflow.documents.errors import DocumentError
from include.officeflow.settings import get_settings

PDF = "application/pdf"
_TEMPLATE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))


def render_html(template: str, variables: Mapping[str, Any]) -> str:
    """Render ``include/templates/documents/<template>.html.j2``.

    Raises ``jinja2.UndefinedError`` for a missing variable, ``jinja2.TemplateNotFound`` for an unknown
    template and :class:`DocumentError` for a malformed template name.
    """
    from include.officeflow.templating import environment

    if not _TEMPLATE_NAME.match(template or ""):
        raise DocumentError(f"template name must match {_TEMPLATE_NAME.pattern}, got {template!r}")
    return environment("documents").get_template(f"{template}.html.j2").render(**variables)


@lru_cache(maxsize=1)
def _unicode_font_dir() -> Path | None:
    configured = get_settings().documents_font_dir
    for folder in ((configured,) if configured else _FONT_DIRS):
        if (folder / "DejaVuSans.ttf").is_file() and (folder / "DejaVuSans-Bold.ttf").is_file():
            return folder
    if configured:
        raise DocumentError(f"OFFICEFLOW_DOCUMENTS_FONT_DIR={configured} has no DejaVuSans.ttf / DejaVuSans-Bold.ttf")
    return None


def render_pdf(html: str, *, title: str, company: str = "", author: str = "OfficeFlow",
               created_at: datetime | None = None) -> bytes:
    """Lay out rendered template HTML as an A4 PDF; deterministic for fixed ``created_at``.

    Uses DejaVu Sans (Unicode) when available, else the PDF core font Helvetica, which only covers
    Latin-1: text outside it is then a :class:`DocumentError` rather than silently dropped glyphs.
    """
    from fpdf import FPDF
    from fpdf.errors import FPDFUnicodeEncodingException

    font_dir = _unicode_font_dir()
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # font subsetting logs every glyph table at INFO

    class _Pdf(FPDF):
        def header(self) -> None:
            self.set_font(family, "B", 9)
            self.set_text_color(90, 90, 90)
            self.cell(0, 6, company or "", align="L")
            self.cell(0, 6, title, align="R", new_x="LMARGIN", new_y="NEXT")
            self.set_draw_color(200, 200, 200)
            self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
            self.ln(6)
            self.set_text_color(0, 0, 0)
            self.set_font(family, "", 11)

        def footer(self) -> None:
            self.set_y(-15)
            self.set_font(family, "", 8)
            self.set_text_color(120, 120, 120)
            self.cell(0, 10, f"Page {self.page_no()} of {{nb}}", align="C")

    pdf = _Pdf(format="A4")
    if font_dir is not None:
        family = "DejaVu"
        pdf.add_font(family, "", str(font_dir / "DejaVuSans.ttf"))
        pdf.add_font(family, "B", str(font_dir / "DejaVuSans-Bold.ttf"))
        for style, name in (("I", "DejaVuSans-Oblique.ttf"), ("BI", "DejaVuSans-BoldOblique.ttf")):
            pdf.add_font(family, style, str(font_dir / (name if (font_dir / name).is_file() else "DejaVuSans.ttf")))
    else:
        family = "Helvetica"
    pdf.set_creation_date(created_at or datetime(2000, 1, 1, tzinfo=UTC))
    pdf.set_title(title)
    pdf.set_author(author)
    pdf.set_creator("OfficeFlow")
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_page()
    pdf.set_font(family, "", 11)
    try:
        pdf.write_html(html, font_family=family)
        return bytes(pdf.output())
    except FPDFUnicodeEncodingException as exc:
        raise DocumentError(f"text outside Latin-1 needs a Unicode font (install fonts-dejavu-core or set "
                            f"OFFICEFLOW_DOCUMENTS_FONT_DIR): {exc}") from None


def render_document(template: str, variables: Mapping[str, Any], *, title: str,
                    created_at: datetime | None = None) -> bytes:
    """Render a document template straight to PDF bytes (``company_name`` feeds the page header)."""
    html = render_html(template, variables)
    return render_pdf(html, title=title, company=str(variables.get("company_name", "")), created_at=created_at)


def utc(value: datetime) -> datetime:
    """``value`` as an aware datetime (a naive one is taken as UTC), e.g. a run's date for ``created_at``."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
