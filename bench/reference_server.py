"""The gateway benchmark's yardstick: the smallest honest implementation of the BambooHR accept path.

    python bench/reference_server.py --port 8095 --workers 2     # REFERENCE_DSN, OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY

``POST /officeflow/webhooks/{endpoint_id}`` (only ``bamboohr`` exists) does what a delivery must do before it
may be answered, and nothing else:

1. read the body (413 above 1 MiB);
2. verify the sender: ``X-BambooHR-Timestamp`` within the 300 s replay window, ``X-BambooHR-Signature`` the hex
   HMAC-SHA256 of the raw body followed by the timestamp, keyed with ``OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY``,
   compared in constant time (401 otherwise);
3. parse the JSON body and take the event id the gateway takes (``employee.<action>:<id>:<digest of the
   entry>`` for a field-based payload, ``<type>:<employeeId>:<timestamp>`` for an event-based one; for an
   ``Updated`` the gateway also classifies terminations and job changes, which this server does not: the
   benchmark sends hires);
4. one ``INSERT … ON CONFLICT DO NOTHING`` into ``reference_events`` (unique on endpoint and event id, the
   payload as ``json``), committed with ``synchronous_commit = on``: a redelivery stores nothing;
5. answer 202 with a small JSON body.

Starlette, asyncpg (a pool of 20 connections per worker, as the store's), uvicorn with ``--workers``
processes. It imports nothing from the product: the product is what it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ENDPOINT_ID = "bamboohr"
REPLAY_WINDOW_SECONDS = 300
MAX_BODY_BYTES = 1_048_576
POOL_SIZE = 20  # OFFICEFLOW_DB_POOL_SIZE's default: the gateway keeps as many store connections per process

SCHEMA = """
CREATE TABLE IF NOT EXISTS reference_events (
    id bigserial PRIMARY KEY,
    endpoint_id varchar(64) NOT NULL,
    provider_event_id varchar(255) NOT NULL,
    payload json NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uq_reference_events_endpoint_event UNIQUE (endpoint_id, provider_event_id)
)
"""
INSERT = (
    "INSERT INTO reference_events (endpoint_id, provider_event_id, payload) VALUES ($1, $2, $3) "
    "ON CONFLICT (endpoint_id, provider_event_id) DO NOTHING RETURNING id"
)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _verified(body: bytes, headers: Any, key: bytes) -> bool:
    signature = headers.get("x-bamboohr-signature")
    stamp = (headers.get("x-bamboohr-timestamp") or "").strip()
    if not signature or not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:
        return False
    if abs(time.time() - int(stamp)) > REPLAY_WINDOW_SECONDS:
        return False
    expected = hmac.new(key, body + stamp.encode(), hashlib.sha256).hexdigest().encode()
    return hmac.compare_digest(expected, signature.strip().lower().encode())


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def event_ids(document: Any) -> list[str]:
    """The provider event id of each event in a BambooHR payload, as the gateway derives it."""
    if not isinstance(document, dict):
        raise ValueError("body must be a JSON object")
    if "employees" in document:
        entries = document["employees"]
        if not isinstance(entries, list) or not entries:
            raise ValueError("'employees' must be a non-empty list")
        return [f"employee.{str(entry['action']).lower()}:{entry['id']}:{_digest(entry)[:32]}" for entry in entries]
    data = document.get("data")
    if "type" in document and isinstance(data, dict) and "employeeId" in data:
        kind = str(document["type"])
        kind = kind if kind.startswith("employee.") else f"employee.{kind.lower()}"
        return [f"{kind}:{data['employeeId']}:{document.get('timestamp') or _digest(document)[:32]}"]
    raise ValueError("expected a field-based or event-based BambooHR payload")


async def receive(request: Request) -> JSONResponse:
    if request.path_params["endpoint_id"] != ENDPOINT_ID:
        return _error(404, "unknown webhook endpoint")
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return _error(413, "body too large")
    if not _verified(body, request.headers, request.app.state.key):
        return _error(401, "delivery not verified")
    try:
        ids = event_ids(json.loads(body))
    except (ValueError, KeyError, TypeError) as exc:
        return _error(400, f"invalid payload: {exc}")
    payload = body.decode()
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as conn:
        if len(ids) == 1:
            stored = [await conn.fetchval(INSERT, ENDPOINT_ID, ids[0], payload)]
        else:
            async with conn.transaction():
                stored = [await conn.fetchval(INSERT, ENDPOINT_ID, event_id, payload) for event_id in ids]
    return JSONResponse({"event_id": ids[0], "status": "accepted", "duplicate": stored[0] is None},
                        status_code=202)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.key = os.environ["OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY"].encode()
    app.state.pool = await asyncpg.create_pool(os.environ["REFERENCE_DSN"], min_size=POOL_SIZE, max_size=POOL_SIZE,
                                               server_settings={"synchronous_commit": "on"})
    try:
        yield
    finally:
        await app.state.pool.close()


app = Starlette(routes=[Route("/officeflow/webhooks/{endpoint_id}", receive, methods=["POST"])], lifespan=lifespan)


async def create_table() -> None:
    conn = await asyncpg.connect(os.environ["REFERENCE_DSN"])
    try:
        await conn.execute(SCHEMA)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8095)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(create_table())  # once, before the workers start
    uvicorn.run("reference_server:app", app_dir=os.path.dirname(os.path.abspath(__file__)), host=args.host,
                port=args.port, workers=args.workers, access_log=False, log_level="warning",
                timeout_graceful_shutdown=20)


if __name__ == "__main__":
    main()
