"""Shared pieces of the document tests: an offer letter's variables, a PDF's text, and where one test's
documents go on the session's S3 server (the fixtures are in tests/integration/conftest.py)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from pypdf import PdfReader

from tests.harness.s3 import S3Server

OFFER_VARS = {"company_name": "Acme GmbH", "first_name": "Zoë", "last_name": "Łukasiewicz", "job_title": "Engineer",
              "department": "Platform", "start_date": "2026-12-01", "salary": "EUR 72,000 per year",
              "manager_name": "Grace Hopper", "respond_by": "2026-11-15", "signer_name": "Ada Lovelace",
              "signer_title": "Head of People"}


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


@dataclass
class S3Target:
    """Where one test's documents go: a bucket of the session's S3 server and a prefix of its own."""

    server: S3Server
    bucket: str
    prefix: str

    def client(self) -> Any:
        return self.server.client()

    def key(self, rest: str) -> str:
        return f"{self.prefix}/{rest}"
