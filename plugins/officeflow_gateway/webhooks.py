"""``POST /officeflow/webhooks/{endpoint_id}``: the delivery pipeline.

find endpoint (404, same answer for unknown and disabled) -> rate limit (429) -> size (413) ->
content type (415) -> verify (401, nothing stored) -> parse (400) -> per event: route by type,
map to conf (plus correlation_id, source and the endpoint's organization_id), validate against the
DAG's params (422, stored as ``rejected``) -> store (commit) -> answer 202 -> the dispatcher starts the run.
An event the adapter marks ``lookup`` (no field values: BambooHR's Deleted entries and event-based payloads) is
stored ``pending`` unvalidated; the dispatcher reads its record first (employee_records.py), so no call to the HR
system ever delays or fails a delivery.

The event loop waits on I/O and never on a worker thread for a delivery's usual path: the endpoint and the DAG's
params come from in-process caches, the rate limiter is in-process or on redis.asyncio, and the store's statement
runs on asyncpg (include/officeflow/store/async_pg.py). Threads are used for what is rare or not async: cache
misses (the endpoint, a workflow's params read the first time), the audit of a denied delivery and a SQLite
store (dev).
"""

from __future__ import annotations

import logging
import math
import time
from functools import lru_cache
from typing import Any

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from include.officeflow import tracing
from include.officeflow.audit import audit
from include.officeflow.inbox import NewEvent, Outcome, run_id_for, store, store_many_async
from include.officeflow.mapping import MappingError, ParamsValidator, apply_mapping
from include.officeflow.metrics import WEBHOOK_EVENTS
from include.officeflow.settings import get_settings
from include.officeflow.store import EventStatus, async_pg
from include.officeflow.store.group_commit import GroupCommit
from include.officeflow.structured_logs import bind
from plugins.officeflow_gateway import endpoints
from plugins.officeflow_gateway.adapters import Delivery, PayloadError, VerificationError, get_adapter
from plugins.officeflow_gateway.adapters.base import check_storable
from plugins.officeflow_gateway.direct_route import DirectRoute
from plugins.officeflow_gateway.dispatcher import dispatcher
from plugins.officeflow_gateway.errors import CORRELATION_HEADER, ApiError, correlation_id
from plugins.officeflow_gateway.ratelimit import get_rate_limiter
from plugins.officeflow_gateway.request_context import note

# The delivery route's request handler skips FastAPI's dependency solving and response validation (direct_route.py).
router = APIRouter(prefix="/webhooks", tags=["webhooks"], route_class=DirectRoute)
# officeflow_webhook_events_total's outcome: of each stored event, and of a delivery refused before any was stored.
ACCEPTED = {EventStatus.PENDING.value: "accepted", EventStatus.IGNORED.value: "ignored",
            EventStatus.REJECTED.value: "rejected"}
REFUSED = {400: "invalid_payload", 401: "denied", 413: "too_large", 415: "unsupported_media_type",
           429: "rate_limited"}
log = logging.getLogger(__name__)
_encode_json = msgspec.json.Encoder().encode
params_validator = ParamsValidator()


class AcceptedResponse(JSONResponse):
    """The 202's body encoded by msgspec: the same JSON as Starlette's ``json.dumps`` (UTF-8, compact, keys in
    order) at a fraction of its CPU, which was ~3% of an edge worker's (docs/BENCHMARKS.md, fifth round)."""

    def render(self, content: Any) -> bytes:
        return _encode_json(content)


class EventOutcome(BaseModel):
    event_id: str
    status: str
    dag_run_id: str | None
    duplicate: bool
    reason: str | None = None


class WebhookAccepted(BaseModel):
    """The first accepted event's ids at the top level; every event of the delivery in ``events``."""

    event_id: str
    dag_run_id: str | None
    status: str
    events: list[EventOutcome]
    correlationId: str


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "payload_too_large", f"body exceeds {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _deny(endpoint: endpoints.EndpointConfig, cid: str, client: str | None, reason: str) -> ApiError:
    try:
        audit("webhook.rejected", actor=f"webhook:{endpoint.adapter}", resource_type="webhook_endpoint",
              outcome="denied", correlation_id=cid, resource_id=endpoint.id, reason=reason, client=client,
              organization_id=endpoint.organization_id, source_ip=client)
    except SQLAlchemyError:
        # The audit trail is best effort here: an unverified sender gets its 401 regardless.
        log.exception("Could not audit a rejected delivery (correlationId=%s)", cid)
    return ApiError(401, "invalid_signature", f"delivery not verified: {reason}")


def _parse(endpoint: endpoints.EndpointConfig, delivery: Delivery) -> list[Any]:
    try:
        events = get_adapter(endpoint.adapter).parse(delivery)
        for event in events:
            check_storable(event)
    except PayloadError as exc:
        raise ApiError(400, "invalid_payload", str(exc)) from None
    return events


def _to_store(endpoint: endpoints.EndpointConfig, event: Any, cid: str) -> NewEvent:
    """Route the event by type, map it to the workflow's conf and validate that against the DAG's params: what the
    inbox stores for it (pending, ignored, or rejected with the field at fault). CPU only: the DAG's params are in
    ``params_validator``'s cache (:func:`_load_params` first)."""
    conf: dict[str, Any] | None = None
    error: str | None = None
    dag_id = run_id = None
    target = endpoint.target_for(event.event_type)
    # No field values (``lookup``): accepted unvalidated, the record is read and the run validated at dispatch
    # (employee_records.py). An update's workflow may only be known from the record (``reclassify``).
    lookup = event.document.get("lookup") or {}
    if target is None and not lookup.get("reclassify"):
        status = EventStatus.IGNORED
    else:
        try:
            conf = apply_mapping(endpoint.mapping, event.document)
            conf.setdefault("correlation_id", cid)
            conf.setdefault("source", endpoint.adapter)
            # The tenant is the endpoint's, never the payload's: a mapped value must not move a run
            # into another organization.
            conf["organization_id"] = endpoint.organization_id
            known = bool(lookup) or params_validator.validate(target, conf)  # type: ignore[arg-type]
        except MappingError as exc:
            status, error = EventStatus.REJECTED, f"{exc.field}: {exc.message}"
        else:
            status = EventStatus.PENDING
            dag_id, run_id = target, run_id_for(endpoint.id, event.provider_event_id)
            if not known:
                error = f"DAG {dag_id!r} not parsed yet; the dispatcher will retry"
    return NewEvent(endpoint_id=endpoint.id, provider_event_id=event.provider_event_id, event_type=event.event_type,
                    document=event.document, conf=conf, status=status, dag_id=dag_id, dag_run_id=run_id,
                    correlation_id=cid, error=error, organization_id=endpoint.organization_id,
                    traceparent=tracing.current_traceparent())


async def _load_params(endpoint: endpoints.EndpointConfig, events: list[Any]) -> None:
    """Read the params of the events' workflows from Airflow's metadata DB (in a worker thread) when the cache
    holds none yet; stale ones are re-read by one background thread per workflow (``ParamsValidator``)."""
    targets = {endpoint.target_for(event.event_type) for event in events}
    for target in (target for target in targets if target is not None):
        if params_validator.missing(target):
            await run_in_threadpool(params_validator.refresh, target)


async def _store(new_events: list[NewEvent]) -> list[Outcome]:
    """Commit the events before the answer: on asyncpg when the store is PostgreSQL (no thread hop), together with
    the events of the deliveries that arrive while the store is busy (:data:`inbox_writer`); else (SQLite) each in
    its own transaction with the synchronous engine in a worker thread."""
    if await async_pg.pool() is None:
        return await run_in_threadpool(lambda: [store(**vars(new)) for new in new_events])
    return await inbox_writer.submit(new_events)


async def _store_batch(new_events: list[NewEvent]) -> list[Outcome]:
    return await async_pg.with_connection(lambda conn: store_many_async(conn, new_events))


# One writer per worker: the deliveries that come while it writes go together in its next batch. Two writers made
# the batches smaller: edge/reference 0.78 @16 and 0.94 @64 connections, against 0.82-0.85 and 0.89-1.04 with one
# (docs/BENCHMARKS.md, fifth round).
inbox_writer: GroupCommit[NewEvent, Outcome] = GroupCommit(
    _store_batch, max_in_flight=1, retry_alone_unless=(async_pg.StoreUnavailable,))


@router.post(
    "/{endpoint_id}",
    status_code=202,
    response_model=WebhookAccepted,
    responses={400: {}, 401: {}, 404: {}, 413: {}, 415: {}, 422: {}, 429: {}, 503: {}},
    summary="Receive a delivery from an HR system",
)
async def receive(endpoint_id: str, request: Request) -> JSONResponse:
    cid = correlation_id(request)
    # A cache miss reads the store in a worker thread; the cached endpoint is read here directly.
    endpoint = endpoints.cache.peek(endpoint_id)
    if endpoint is endpoints.MISS:
        endpoint = await run_in_threadpool(endpoints.cache.get, endpoint_id)
    if endpoint is None or not endpoint.enabled:
        raise ApiError(404, "not_found", "unknown webhook endpoint")
    bind(organizationId=endpoint.organization_id, workflowId=endpoint.target_dag_id)
    try:
        return await _deliver(endpoint, request, cid)
    except ApiError as exc:
        if exc.status_code != 422:  # 422: every event stored as rejected, counted as such
            _count(endpoint, REFUSED.get(exc.status_code, "error"))
        raise
    except Exception:
        _count(endpoint, "error")
        raise


def _count(endpoint: endpoints.EndpointConfig, outcome: str) -> None:
    _events_series(endpoint.id, endpoint.adapter, outcome).inc()


@lru_cache(maxsize=4096)
def _events_series(endpoint_id: str, adapter: str, outcome: str) -> Any:
    """The endpoint's series, found once (metrics.py's ``_requests``)."""
    return WEBHOOK_EVENTS.labels(endpoint_id, adapter, outcome)


async def _deliver(endpoint: endpoints.EndpointConfig, request: Request, cid: str) -> JSONResponse:
    settings = get_settings()
    limiter = get_rate_limiter(settings.redis_url)
    bucket = (f"endpoint:{endpoint.id}", endpoint.rate_limit_per_minute / 60.0, max(1, endpoint.rate_limit_per_minute))
    decision = await limiter.acquire_async(*bucket)
    if not decision.allowed:
        raise ApiError(429, "rate_limited", "too many deliveries for this endpoint",
                       headers={"Retry-After": str(max(1, math.ceil(decision.retry_after)))})
    body = await _read_body(request, settings.webhook_max_body_bytes)
    adapter = get_adapter(endpoint.adapter)
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type not in adapter.content_types:
        raise ApiError(415, "unsupported_media_type",
                       f"{endpoint.adapter} deliveries must be one of: {', '.join(adapter.content_types)}")
    delivery = Delivery(body=body, headers=request.headers, content_type=content_type,
                        client_ip=request.client.host if request.client else None, received_at=time.time())
    try:
        adapter.verify(delivery, endpoint.secrets, endpoint.verification,
                       window_seconds=settings.webhook_replay_window_seconds)
    except VerificationError as exc:
        note(request.scope, "webhook.denied", endpoint=endpoint.id, reason=str(exc))
        raise await run_in_threadpool(_deny, endpoint, cid, delivery.client_ip, str(exc)) from None

    events = _parse(endpoint, delivery)
    await _load_params(endpoint, events)
    outcomes = await _store([_to_store(endpoint, event, cid) for event in events])
    for outcome in outcomes:
        _count(endpoint, "duplicate" if outcome.duplicate else ACCEPTED.get(outcome.status, outcome.status))
    if any(o.status == EventStatus.PENDING.value for o in outcomes):
        dispatcher.ensure_started()
        dispatcher.wake()
    note(request.scope, "webhook.accepted", endpoint=endpoint.id, statuses=[o.status for o in outcomes],
         duplicates=sum(o.duplicate for o in outcomes))
    if all(o.status == EventStatus.REJECTED.value for o in outcomes):
        reasons = "; ".join(f"{o.event_id}: {o.reason}" for o in outcomes)
        raise ApiError(422, "unmappable_event", f"event stored as rejected: {reasons}")
    first = next(o for o in outcomes if o.status != EventStatus.REJECTED.value)
    content = {"event_id": first.event_id, "dag_run_id": first.dag_run_id, "status": first.status,
               "events": [o.as_dict() for o in outcomes], "correlationId": cid}
    return AcceptedResponse(status_code=202, content=content, headers={CORRELATION_HEADER: cid})
