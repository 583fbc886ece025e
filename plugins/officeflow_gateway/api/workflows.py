"""``/officeflow/api/v1/workflows``: declarative workflows (create, edit as new versions, delete, execute),
listed together with the bundled YAML workflows and the bundled Python DAGs (those two read-only).

A workflow's id in the URL is its name, which is also its DAG id. Stored definitions become DAGs when
the dag-processor next parses ``dags/declarative_workflows.py`` (see docs/workflows.md). The routes
translate HTTP to the service (``plugins/officeflow_gateway/workflows/service.py``) and its reasons to
status codes.

Tenant isolation (the service's rules, given the caller's organizations): a workflow of another organization
is 404 to every route; creating or moving one into an organization the caller is not a member of is 403
``forbidden_organization``; a run started here carries its organization in its conf (``organization_id``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Header, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from plugins.officeflow_gateway.auth import CreateWorkflows, DeleteWorkflows, EditWorkflows, ReadWorkflows
from plugins.officeflow_gateway.errors import CORRELATION_HEADER, ApiError, correlation_id
from plugins.officeflow_gateway.workflows import service
from plugins.officeflow_gateway.workflows.schemas import (
    ExecuteOut,
    ExecuteRequest,
    Source,
    VersionList,
    WorkflowList,
    WorkflowOut,
)
from plugins.officeflow_gateway.workflows.service import WorkflowError

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"])

RETRY_AFTER_SECONDS = "30"
STATUS = {"not_found": 404, "read_only": 409, "conflict": 409, "precondition_failed": 412, "invalid_workflow": 400,
          "invalid_conf": 400, "forbidden": 403, "forbidden_organization": 403, "not_available": 409,
          "run_refused": 400, "trigger_failed": 503}
T = TypeVar("T")


def _answer(request: Request, exc: WorkflowError) -> JSONResponse:
    """The shared error shape (plus ``problems``, every problem at once, when the input was invalid)."""
    cid = correlation_id(request)
    error: dict[str, Any] = {"message": exc.message, "code": exc.reason, "correlationId": cid}
    if exc.problems is not None:
        error["problems"] = exc.problems
    headers = {CORRELATION_HEADER: cid}
    if exc.reason in ("not_available", "trigger_failed"):
        headers["Retry-After"] = RETRY_AFTER_SECONDS
    return JSONResponse(status_code=STATUS[exc.reason], headers=headers, content={"error": error})


async def _run(request: Request, work: Callable[[], T]) -> T | JSONResponse:
    try:
        return await run_in_threadpool(work)
    except WorkflowError as exc:
        return _answer(request, exc)


def _parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    cleaned = value.strip().removeprefix("W/").strip('"')
    if not cleaned.isdigit():
        raise ApiError(400, "invalid_if_match", "If-Match must be the workflow version you edited, e.g. If-Match: 3")
    return int(cleaned)


def _with_etag(out: WorkflowOut | JSONResponse, status_code: int = 200) -> JSONResponse:
    if isinstance(out, JSONResponse):
        return out
    return JSONResponse(status_code=status_code, content=out.model_dump(mode="json"),
                        headers={"ETag": f'"{out.version}"'})


@router.get("", response_model=WorkflowList)
async def list_workflows(request: Request, caller: ReadWorkflows, organization_id: str | None = None,
                         source: Source | None = None) -> Any:
    """The workflows of the caller's organizations, and the bundled Python DAGs (they serve every organization)."""
    found = await _run(request, lambda: service.list_workflows(organization_id=organization_id, source=source,
                                                               organizations=caller.organizations))
    return found if isinstance(found, JSONResponse) else WorkflowList(workflows=found, total_entries=len(found))


@router.get("/node-types")
async def node_types(_: ReadWorkflows) -> dict[str, Any]:
    """Every node type, its operator and the config keys it accepts (``required`` / ``optional``)."""
    return await run_in_threadpool(service.node_types)


@router.post("", status_code=201, response_model=WorkflowOut,
             responses={400: {"description": "Invalid definition; error.problems lists every problem"},
                        409: {"description": "A workflow with this name exists"}})
async def create_workflow(request: Request, caller: CreateWorkflows,
                          definition: Annotated[dict[str, Any], Body()]) -> Any:
    cid = correlation_id(request)
    out = await _run(request, lambda: service.create(service.validate(definition), actor=caller.actor,
                                                     correlation_id=cid, organizations=caller.organizations,
                                                     source_ip=caller.source_ip))
    return _with_etag(out, 201)


@router.get("/{name}", response_model=WorkflowOut)
async def get_workflow(name: str, request: Request, caller: ReadWorkflows, response: Response) -> Any:
    out = await _run(request, lambda: service.describe(name, organizations=caller.organizations))
    if isinstance(out, WorkflowOut) and out.version is not None:
        response.headers["ETag"] = f'"{out.version}"'
    return out


@router.put("/{name}", response_model=WorkflowOut,
            responses={400: {"description": "Invalid definition; error.problems lists every problem"},
                       409: {"description": "Read-only (file or Python) workflow"},
                       412: {"description": "If-Match names another version than the latest"}})
async def update_workflow(name: str, request: Request, caller: EditWorkflows,
                          definition: Annotated[dict[str, Any], Body()],
                          if_match: Annotated[str | None, Header()] = None) -> Any:
    """Store the definition as the workflow's next version (``If-Match: <version>`` guards lost updates)."""
    cid = correlation_id(request)
    expected = _parse_if_match(if_match)
    if definition.get("name", name) != name:
        return _answer(request, WorkflowError("invalid_workflow", "the definition has 1 problem", [
            {"path": "name", "message": f"a workflow cannot be renamed ({name!r}); create a new one instead"}]))
    out = await _run(request, lambda: service.update(name, service.validate({**definition, "name": name}),
                                                     expected=expected, actor=caller.actor, correlation_id=cid,
                                                     organizations=caller.organizations,
                                                     source_ip=caller.source_ip))
    return _with_etag(out)


@router.delete("/{name}", status_code=204,
               responses={400: {"description": "If-Match is not a version number"},
                          409: {"description": "Read-only (file or Python) workflow"},
                          412: {"description": "If-Match names another version than the latest"}})
async def delete_workflow(name: str, request: Request, caller: DeleteWorkflows,
                          if_match: Annotated[str | None, Header()] = None) -> Response:
    """Soft delete: the DAG is paused and no longer generated; versions and run history stay."""
    cid = correlation_id(request)
    expected = _parse_if_match(if_match)
    done = await _run(request, lambda: service.delete(name, expected=expected, actor=caller.actor,
                                                      correlation_id=cid, organizations=caller.organizations,
                                                      source_ip=caller.source_ip))
    return done if isinstance(done, JSONResponse) else Response(status_code=204)


@router.get("/{name}/versions", response_model=VersionList)
async def list_versions(name: str, request: Request, caller: ReadWorkflows) -> Any:
    """Every stored version, newest first (a deleted workflow's too)."""
    return await _run(request, lambda: service.versions(name, organizations=caller.organizations))


@router.post("/{name}/execute", status_code=201, response_model=ExecuteOut,
             responses={400: {"description": "conf does not match the params; error.problems lists every problem"},
                        409: {"description": "The DAG is not parsed yet; retry (Retry-After)"}})
async def execute_workflow(name: str, request: Request, caller: CreateWorkflows,
                           body: ExecuteRequest | None = None) -> Any:
    """Check ``conf`` against the workflow's params, then create a DAG run (needs the DAG-run permission too).

    The run's conf gets the organization (``organization_id``): a declarative workflow's own; for a bundled
    Python DAG the conf's (default ``default``), which the caller must be a member of (403 otherwise)."""
    cid = correlation_id(request)
    body = body or ExecuteRequest()
    return await _run(request, lambda: service.execute(name, body.conf, dag_run_id=body.dag_run_id, user=caller.user,
                                                       correlation_id=cid, organizations=caller.organizations,
                                                       source_ip=caller.source_ip))
