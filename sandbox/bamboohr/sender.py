"""Send a signed BambooHR webhook, as BambooHR does, to an OfficeFlow gateway.

    python -m sandbox.bamboohr.sender --url http://127.0.0.1:8080/officeflow/webhooks/bamboohr

The key comes from ``OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY`` (environment, else the ``.env`` file named by
``OFFICEFLOW_ENV_FILE`` or the repository's ``.env``); the payload is a field-based sample (``--kind hire``,
the default; ``termination`` or ``job_change``) unless ``--payload FILE`` is given.

The signature is computed here from BambooHR's documentation, not with the gateway's code, so a signing
bug on either side shows up as a refused delivery: BambooHR sends ``X-BambooHR-Timestamp`` (Unix seconds)
and ``X-BambooHR-Signature``, the lowercase hex HMAC-SHA256, keyed with the webhook's private key, of the
raw request body followed by that timestamp string.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from sandbox.bamboohr.samples import SAMPLES

SIGNATURE_HEADER = "X-BambooHR-Signature"
TIMESTAMP_HEADER = "X-BambooHR-Timestamp"
KEY_VARIABLE = "OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY"
REPO_ROOT = Path(__file__).resolve().parents[2]
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def signature(body: bytes, timestamp: str, key: str) -> str:
    """BambooHR's ``X-BambooHR-Signature``: hex HMAC-SHA256 of ``body`` + ``timestamp`` with ``key``."""
    return hmac.new(key.encode("utf-8"), body + timestamp.encode("ascii"), hashlib.sha256).hexdigest()


def signed_headers(body: bytes, key: str, timestamp: int | None = None) -> dict[str, str]:
    """The headers BambooHR sends with ``body``: content type, timestamp (now unless given), signature."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: signature(body, stamp, key),
    }


def webhook_key(environ: dict[str, str] | None = None) -> str | None:
    """``OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY`` from the environment, else from the ``.env`` file (the lines
    ``KEY=value`` that ``./run.sh`` reads, optionally quoted or with ``export``)."""
    environ = dict(os.environ) if environ is None else environ
    if environ.get(KEY_VARIABLE):
        return environ[KEY_VARIABLE]
    env_file = Path(environ.get("OFFICEFLOW_ENV_FILE") or REPO_ROOT / ".env")
    try:
        lines = env_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        match = _ENV_LINE.match(line)
        if match is None or match.group(1) != KEY_VARIABLE:
            continue
        value = match.group(2).strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        return value or None
    return None


def _sample(kind: str, employee_id: str | None, email: str | None) -> dict[str, Any]:
    payload = SAMPLES[kind](employee_id=employee_id, email=email)
    print(f"employee_id {payload['employees'][0]['id']} (pass --employee-id to send another kind for them)")
    return payload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.bamboohr.sender", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--payload", type=Path, help="JSON file to send instead of a sample")
    parser.add_argument("--kind", choices=sorted(SAMPLES), default="hire", help="which sample to send")
    parser.add_argument("--email", help="work email of the sample employee")
    parser.add_argument("--employee-id", help="the sample employee's id (to offboard the hire an earlier call made)")
    args = parser.parse_args(argv)
    key = webhook_key()
    if key is None:
        print(f"{KEY_VARIABLE} is not set (run ./run.sh dev once to create .env)", file=sys.stderr)
        return 2
    if args.payload:
        body = args.payload.read_bytes()
    else:
        body = json.dumps(_sample(args.kind, args.employee_id, args.email)).encode()
    response = httpx.post(args.url, content=body, headers=signed_headers(body, key), timeout=30)
    print(f"HTTP {response.status_code}")
    print(json.dumps(response.json(), indent=2))
    return 0 if response.status_code < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
