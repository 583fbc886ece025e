"""``/officeflow/api/v1/webhook-endpoints``: create, list, get, update, disable, delete, rotate secret.

Tenant isolation: an endpoint belongs to its ``organization_id``. The list shows the caller's organizations
only; an endpoint of another organization answers 404 to every route (its existence stays hidden); creating
one in an organization the caller is not a member of is 403 ``forbidden_organization``. The organization of
an endpoint never changes (``EndpointUpdate`` has no such field).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field, field_validator, model_validator
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from include.officeflow.audit import audit
from include.officeflow.mapping import MappingError, compile_mapping
from include.officeflow.settings import get_settings
from include.officeflow.store import WebhookEndpoint, session_scope
from plugins.officeflow_gateway import endpoints, secret_box
from plugins.officeflow_gateway.adapters import ADAPTER_NAMES
from plugins.officeflow_gateway.api.types import JsonBool
from plugins.officeflow_gateway.auth import Caller, CreateEndpoints, DeleteEndpoints, EditEndpoints, ReadEndpoints
from plugins.officeflow_gateway.errors import ApiError, correlation_id

router = APIRouter(prefix="/api/v1/webhook-endpoints", tags=["webhook endpoints"])

Adapter = Literal["bamboohr", "workday", "generic"]
assert set(ADAPTER_NAMES) == {"bamboohr", "workday", "generic"}


_DAG_ID = re.compile(r"^[A-Za-z0-9_.-]{1,250}$")


def _check_routes(routes: dict[str, str] | None) -> dict[str, str] | None:
    for event_type, dag_id in (routes or {}).items():
        if not event_type or len(event_type) > 128:
            raise ValueError("route event types must be 1-128 characters")
        if not isinstance(dag_id, str) or not _DAG_ID.match(dag_id):
            raise ValueError(f"route {event_type!r}: {dag_id!r} is not a DAG id")
    return routes


def _check_mapping(mapping: dict[str, str] | None) -> dict[str, str] | None:
    if mapping:
        try:
            compile_mapping(mapping)
        except MappingError as exc:
            raise ValueError(str(exc)) from None
    return mapping


class Verification(BaseModel):
    """Adapter-specific verification settings (Workday: Basic username and source CIDRs)."""

    username: str | None = Field(default=None, max_length=200)
    allowed_cidrs: list[str] = Field(default_factory=list, max_length=100)

    @field_validator("allowed_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        import ipaddress

        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not a CIDR") from None
        return value


class EndpointCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    organization_id: str = Field(default="default", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    adapter: Adapter
    target_dag_id: str = Field(min_length=1, max_length=250, pattern=r"^[A-Za-z0-9_.-]+$")
    event_types: list[str] = Field(default_factory=list, description="Event types that start the workflow; "
                                   "empty = all. Others are stored and acknowledged as ignored.")
    routes: dict[str, str] = Field(default_factory=dict, description="event type -> DAG id for types that start "
                                   "another workflow than target_dag_id (e.g. employee.terminated -> "
                                   "employee_offboarding); routes are checked before event_types.")
    mapping: dict[str, str] = Field(default_factory=dict, description="param -> JMESPath over the event "
                                    "document; empty = the adapter's default mapping.")
    verification: Verification = Field(default_factory=Verification)
    rate_limit_per_minute: int = Field(default=600, ge=1, le=1_000_000)
    enabled: JsonBool = True
    secret: str | None = Field(default=None, min_length=16, max_length=512, description="A secret the sender "
                               "made, for adapters whose senders do: bamboohr (the private key BambooHR showed "
                               "when the webhook was created) and generic (the whsec_ secret a Standard Webhooks "
                               "sender such as Svix shows). Omitted: one is generated and shown once.")

    @field_validator("mapping")
    @classmethod
    def _mapping(cls, value: dict[str, str]) -> dict[str, str] | None:
        return _check_mapping(value)

    @field_validator("routes")
    @classmethod
    def _routes(cls, value: dict[str, str]) -> dict[str, str] | None:
        return _check_routes(value)

    @model_validator(mode="after")
    def _adapter_rules(self) -> EndpointCreate:
        if self.secret is not None:
            endpoints.check_supplied_secret(self.adapter, self.secret)
        if self.adapter == "workday" and not self.verification.username:
            raise ValueError("workday endpoints need verification.username (Basic auth user)")
        return self


class EndpointUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    target_dag_id: str | None = Field(default=None, min_length=1, max_length=250, pattern=r"^[A-Za-z0-9_.-]+$")
    event_types: list[str] | None = None
    routes: dict[str, str] | None = None
    mapping: dict[str, str] | None = None
    verification: Verification | None = None
    rate_limit_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    enabled: JsonBool | None = None

    @field_validator("mapping")
    @classmethod
    def _mapping(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return _check_mapping(value)

    @field_validator("routes")
    @classmethod
    def _routes(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return _check_routes(value)

    @model_validator(mode="after")
    def _no_nulls(self) -> EndpointUpdate:
        # Omit a field to leave it unchanged; an explicit null would erase a required value.
        nulls = sorted(name for name in self.model_fields_set if getattr(self, name) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} may not be null (omit a field to keep its value)")
        return self


class EndpointOut(BaseModel):
    id: str
    name: str
    organization_id: str
    adapter: str
    target_dag_id: str
    event_types: list[str]
    routes: dict[str, str]
    mapping: dict[str, str]
    verification: dict[str, Any]
    rate_limit_per_minute: int
    enabled: bool
    delivery_path: str
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: WebhookEndpoint) -> EndpointOut:
        return cls(id=row.id, name=row.name, organization_id=row.organization_id, adapter=row.adapter,
                   target_dag_id=row.target_dag_id, event_types=row.event_types, routes=row.routes or {},
                   mapping=row.mapping,
                   verification=row.verification, rate_limit_per_minute=row.rate_limit_per_minute,
                   enabled=row.enabled, delivery_path=f"/officeflow/webhooks/{row.id}",
                   previous_secret_expires_at=row.previous_secret_expires_at, created_at=row.created_at,
                   updated_at=row.updated_at)


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="Shown once: store it in the HR system now.")


class EndpointList(BaseModel):
    endpoints: list[EndpointOut]
    total_entries: int


class RotateRequest(BaseModel):
    overlap_seconds: int | None = Field(default=None, ge=0, le=30 * 86_400, description="How long the old "
                                        "secret keeps verifying (default OFFICEFLOW_WEBHOOK_SECRET_OVERLAP_SECONDS).")
    secret: str | None = Field(default=None, min_length=16, max_length=512, description="The new secret the "
                               "sender made (bamboohr, generic endpoints: see create); omitted: one is generated.")


def _get_row(session: Any, endpoint_id: str, caller: Caller, *, lock: bool = False) -> WebhookEndpoint:
    """The endpoint, or 404 when it does not exist or belongs to an organization the caller does not see."""
    row = session.get(WebhookEndpoint, endpoint_id, with_for_update=True if lock else None)
    if row is None:
        raise ApiError(404, "not_found", f"webhook endpoint {endpoint_id!r} not found")
    caller.visible(row.organization_id, "webhook endpoint", endpoint_id)
    return row


@router.post("", status_code=201, response_model=EndpointWithSecret)
async def create_endpoint(body: EndpointCreate, request: Request,
                          caller: CreateEndpoints) -> EndpointWithSecret:
    cid = correlation_id(request)
    caller.check_organization(body.organization_id)

    def work() -> EndpointWithSecret:
        secret = body.secret or endpoints.new_secret_for(body.adapter)
        with session_scope() as session:
            row = WebhookEndpoint(
                id=endpoints.new_endpoint_id(), organization_id=body.organization_id, name=body.name,
                adapter=body.adapter, target_dag_id=body.target_dag_id, event_types=body.event_types,
                routes=body.routes,
                mapping=body.mapping, verification=body.verification.model_dump(),
                rate_limit_per_minute=body.rate_limit_per_minute, enabled=body.enabled,
                secret_encrypted=secret_box.encrypt(secret),
            )
            session.add(row)
        audit("webhook_endpoint.created", actor=caller.actor, resource_type="webhook_endpoint",
              resource_id=row.id, outcome="success", correlation_id=cid, organization_id=row.organization_id,
              source_ip=caller.source_ip, adapter=body.adapter)
        return EndpointWithSecret(**EndpointOut.of(row).model_dump(), secret=secret)

    return await run_in_threadpool(work)


@router.get("", response_model=EndpointList)
async def list_endpoints(caller: ReadEndpoints, organization_id: str | None = None) -> EndpointList:
    """The endpoints of the caller's organizations (``organization_id`` narrows to one of them)."""

    def work() -> list[WebhookEndpoint]:
        query = select(WebhookEndpoint).where(caller.scope(WebhookEndpoint.organization_id))
        if organization_id:
            query = query.where(WebhookEndpoint.organization_id == organization_id)
        with session_scope() as session:
            return list(session.scalars(query.order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)))

    rows = await run_in_threadpool(work)
    return EndpointList(endpoints=[EndpointOut.of(r) for r in rows], total_entries=len(rows))


@router.get("/{endpoint_id}", response_model=EndpointOut)
async def get_endpoint(endpoint_id: str, caller: ReadEndpoints) -> EndpointOut:
    def work() -> EndpointOut:
        with session_scope() as session:
            return EndpointOut.of(_get_row(session, endpoint_id, caller))

    return await run_in_threadpool(work)


@router.patch("/{endpoint_id}", response_model=EndpointOut)
async def update_endpoint(endpoint_id: str, body: EndpointUpdate, request: Request,
                          caller: EditEndpoints) -> EndpointOut:
    cid = correlation_id(request)
    changes = body.model_dump(exclude_unset=True)

    def work() -> EndpointOut:
        with session_scope() as session:
            row = _get_row(session, endpoint_id, caller, lock=True)
            if "verification" in changes:
                changes["verification"] = body.verification.model_dump() if body.verification else {}
            verification = changes.get("verification", row.verification)
            if row.adapter == "workday" and not verification.get("username"):
                raise ApiError(422, "validation_error", "workday endpoints need verification.username")
            for key, value in changes.items():
                setattr(row, key, value)
            session.flush()
            out = EndpointOut.of(row)
        endpoints.cache.invalidate(endpoint_id)
        audit("webhook_endpoint.updated", actor=caller.actor, resource_type="webhook_endpoint",
              resource_id=endpoint_id, outcome="success", correlation_id=cid, organization_id=out.organization_id,
              source_ip=caller.source_ip, fields=sorted(changes))
        return out

    return await run_in_threadpool(work)


@router.post("/{endpoint_id}/disable", response_model=EndpointOut)
async def disable_endpoint(endpoint_id: str, request: Request,
                           caller: EditEndpoints) -> EndpointOut:
    return await update_endpoint(endpoint_id, EndpointUpdate(enabled=False), request, caller)


@router.post("/{endpoint_id}/rotate-secret", response_model=EndpointWithSecret)
async def rotate_secret(endpoint_id: str, request: Request, caller: EditEndpoints,
                        body: RotateRequest | None = None) -> EndpointWithSecret:
    cid = correlation_id(request)
    overlap = (body.overlap_seconds if body and body.overlap_seconds is not None
               else get_settings().webhook_secret_overlap_seconds)
    supplied = body.secret if body else None

    def work() -> EndpointWithSecret:
        with session_scope() as session:
            row = _get_row(session, endpoint_id, caller, lock=True)
            if supplied is not None:
                try:
                    endpoints.check_supplied_secret(row.adapter, supplied)
                except ValueError as exc:
                    raise ApiError(422, "invalid_secret", str(exc)) from None
            fresh = endpoints.rotate(row, overlap, supplied)
            session.flush()
            out = EndpointWithSecret(**EndpointOut.of(row).model_dump(), secret=fresh)
        endpoints.cache.invalidate(endpoint_id)
        audit("webhook_endpoint.secret_rotated", actor=caller.actor, resource_type="webhook_endpoint",
              resource_id=endpoint_id, outcome="success", correlation_id=cid, organization_id=out.organization_id,
              source_ip=caller.source_ip, overlap_seconds=overlap)
        return out

    return await run_in_threadpool(work)


@router.delete("/{endpoint_id}", status_code=204)
async def delete_endpoint(endpoint_id: str, request: Request,
                          caller: DeleteEndpoints) -> Response:
    cid = correlation_id(request)

    def work() -> None:
        with session_scope() as session:
            row = _get_row(session, endpoint_id, caller, lock=True)
            organization_id = row.organization_id
            session.delete(row)
        endpoints.cache.invalidate(endpoint_id)
        audit("webhook_endpoint.deleted", actor=caller.actor, resource_type="webhook_endpoint",
              resource_id=endpoint_id, outcome="success", correlation_id=cid, organization_id=organization_id,
              source_ip=caller.source_ip)

    await run_in_threadpool(work)
    return Response(status_code=204)
