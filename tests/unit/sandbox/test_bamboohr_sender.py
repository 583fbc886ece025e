"""The BambooHR sender (sandbox/bamboohr/sender.py) signs as BambooHR documents it, with its own code.

The signature is checked twice, independently: against the spec recomputed here (lowercase hex
HMAC-SHA256 of the raw body followed by the timestamp string, keyed with the webhook's private key), and
by the gateway's BambooHR adapter, which must accept it and refuse a tampered body, timestamp or key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import httpx
import pytest

from plugins.officeflow_gateway.adapters.bamboohr import BambooHRAdapter
from plugins.officeflow_gateway.adapters.base import Delivery, VerificationError
from sandbox.bamboohr.samples import sample_hire
from sandbox.bamboohr.sender import signature, signed_headers, webhook_key

KEY = "bamboohr-private-key-0123456789"


def test_signature_follows_bamboohr_spec() -> None:
    body = b'{"employees": [{"action": "Created", "id": "42"}]}'
    headers = signed_headers(body, KEY, timestamp=1_760_000_000)
    assert headers["X-BambooHR-Timestamp"] == "1760000000"
    expected = hmac.new(KEY.encode(), body + b"1760000000", hashlib.sha256).hexdigest()
    assert headers["X-BambooHR-Signature"] == expected
    assert expected == expected.lower() and len(expected) == 64
    assert headers["Content-Type"] == "application/json"
    # A known answer, so a change of algorithm or concatenation order cannot go unnoticed.
    assert signature(b"body", "1", "key") == hmac.new(b"key", b"body1", hashlib.sha256).hexdigest()
    assert signature(b"body", "1", "key") != hmac.new(b"key", b"1body", hashlib.sha256).hexdigest()


def _delivery(body: bytes, headers: dict[str, str], received_at: float) -> Delivery:
    return Delivery(body=body, headers=httpx.Headers(headers), content_type="application/json", client_ip=None,
                    received_at=received_at)


def test_gateway_accepts_what_the_sender_signs() -> None:
    body = json.dumps(sample_hire(employee_id="7")).encode()
    now = int(time.time())
    headers = signed_headers(body, KEY, timestamp=now)
    adapter = BambooHRAdapter()
    adapter.verify(_delivery(body, headers, now), [KEY], {}, window_seconds=300)
    adapter.verify(_delivery(body, headers, now), ["an-older-key", KEY], {}, window_seconds=300)  # rotation
    with pytest.raises(VerificationError):
        adapter.verify(_delivery(body + b" ", headers, now), [KEY], {}, window_seconds=300)
    with pytest.raises(VerificationError):
        adapter.verify(_delivery(body, {**headers, "X-BambooHR-Timestamp": str(now + 1)}, now), [KEY], {},
                       window_seconds=300)
    with pytest.raises(VerificationError):
        adapter.verify(_delivery(body, headers, now), ["another-key"], {}, window_seconds=300)


def test_webhook_key_from_environment_then_env_file(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("# comment\nOTHER=1\nexport OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY='from-file'\n")
    assert webhook_key({"OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY": "from-env", "OFFICEFLOW_ENV_FILE": str(env_file)}) \
        == "from-env"
    assert webhook_key({"OFFICEFLOW_ENV_FILE": str(env_file)}) == "from-file"
    assert webhook_key({"OFFICEFLOW_ENV_FILE": str(tmp_path / "missing.env")}) is None
