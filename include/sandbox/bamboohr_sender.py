"""Send a signed BambooHR webhook, as BambooHR does, to an OfficeFlow gateway.

    python -m include.sandbox.bamboohr_sender --url http://127.0.0.1:8080/officeflow/webhooks/bamboohr

The key comes from ``OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY`` (environment or ``.env``); the payload is a
field-based ``Created`` event for a sample hire unless ``--payload FILE`` is given.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from include.officeflow.settings import get_settings
from plugins.officeflow_gateway.adapters.bamboohr import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign


def sample_hire(employee_id: str | None = None, email: str | None = None) -> dict[str, Any]:
    """A field-based BambooHR ``Created`` payload for one new hire."""
    employee_id = employee_id or str(uuid.uuid4().int % 10**6)
    return {
        "employees": [
            {
                "action": "Created",
                "id": employee_id,
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime()),
                "changedFields": ["firstName", "lastName", "workEmail", "department", "jobTitle", "hireDate"],
                "fields": {
                    "firstName": "Ada",
                    "lastName": "Lovelace",
                    "workEmail": email or f"ada.lovelace.{employee_id}@example.com",
                    "department": "Engineering",
                    "jobTitle": "Software Engineer",
                    "hireDate": "2026-12-07",
                },
            }
        ]
    }


def signed_headers(body: bytes, key: str, timestamp: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: sign(body, stamp, key),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--payload", type=Path, help="JSON file to send instead of the sample hire")
    parser.add_argument("--email", help="work email of the sample hire")
    args = parser.parse_args()
    key = get_settings().bamboohr_webhook_key
    if key is None:
        print("OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY is not set (run ./run.sh dev once to create .env)", file=sys.stderr)
        return 2
    body = args.payload.read_bytes() if args.payload else json.dumps(sample_hire(email=args.email)).encode()
    response = httpx.post(args.url, content=body, headers=signed_headers(body, key.get_secret_value()), timeout=30)
    print(f"HTTP {response.status_code}")
    print(json.dumps(response.json(), indent=2))
    return 0 if response.status_code < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
