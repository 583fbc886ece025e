"""``/officeflow/api/v1/workflows``: declarative workflows (create, edit as new versions, delete, execute),
listed together with the bundled YAML workflows and the bundled Python DAGs (those two read-only).

A workflow's id in the URL is its name, which is also its DAG id. Stored definitions become DAGs when
the dag-processor next parses ``dags/declarative_workflows.py`` (see docs/workflows.md).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from include.officeflow import run_notes, workflows
from include.officeflow.store import WebhookEndpoint, Workflow, WorkflowVersion, session_scope
from plugins.officeflow_gateway import endpoints
from plugins.officeflow_gateway.auth import CreateWorkflows, DeleteWorkflows, EditWorkflows, ReadWorkflows
from plugins.officeflow_gateway.errors import CORRELATION_HEADER, ApiError, correlation_id
from plugins.officeflow_gateway.inbox import audit
from plugins.officeflow_gateway.triggering import TriggerError, trigger_run

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"])

Source = Literal["store", "file", "python"]
RETRY_AFTER_SECONDS = "30"


class Node(BaseModel):
    id: str
    type: str
    config: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)


class WorkflowOut(BaseModel):
    id: str = Field(description="The workflow's name (also its DAG id); use it in the URLs.")
    name: str
    dag_id: str
    source: Source = Field(description="store: defined through this API; file: include/workflows/*.yaml; "
                                       "python: a bundled Python DAG. Only store workflows can be changed here.")
    read_only: bool
    description: str
    organization_id: str | None
    version: int | None = Field(description="Latest version (store workflows); PUT adds one.")
    trigger: dict[str, Any] | None
    params: dict[str, dict[str, Any]] = Field(description="Run params as JSON Schema (with their defaults).")
    nodes: list[Node] = Field(description="Nodes (tasks of Python DAGs, with their operator class as type).")
    tags: list[str]
    file: str | None = None
    created_at: datetime | None = None
    created_by: str | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None


class WorkflowList(BaseModel):
    workflows: list[WorkflowOut]
    total_entries: int


class VersionOut(BaseModel):
    version: int
    created_at: datetime
    created_by: str
    definition: dict[str, Any]


class VersionList(BaseModel):
    workflow: str
    versions: list[VersionOut]
    total_entries: int


class ExecuteRequest(BaseModel):
    conf: dict[str, Any] = Field(default_factory=dict, description="Run params, checked against the workflow's "
                                 "params schema before the run is created.")
    dag_run_id: str | None = Field(default=None, min_length=1, max_length=250, pattern=r"^[A-Za-z0-9_.:+-]+$",
                                   description="Optional run id; executing again with the same id creates no "
                                   "second run.")


class ExecuteOut(BaseModel):
    dag_id: str
    dag_run_id: str
    version: int | None


# --- where workflows come from ------------------------------------------------------------------------


def _actor(user: Any) -> str:
    return f"user:{user.get_name()}"


def _file_workflows() -> dict[str, tuple[Path, dict[str, Any]]]:
    """Valid bundled definitions by name (invalid files are the factory's to report: they have no DAG)."""
    found = {}
    reserved = workflows.python_dag_ids()
    for path in workflows.definition_files():
        try:
            definition = workflows.validate(workflows.load_definition_file(path), reserved=reserved)
        except Exception:  # noqa: S112 - not a workflow the platform runs; nothing to list
            continue
        found[definition["name"]] = (path, definition)
    return found


def _from_definition(definition: dict[str, Any], source: Source, **extra: Any) -> WorkflowOut:
    return WorkflowOut(
        id=definition["name"], name=definition["name"], dag_id=definition["name"], source=source,
        read_only=source != "store", description=definition["description"],
        organization_id=definition["organization_id"], trigger=definition["trigger"], params=definition["params"],
        nodes=[Node(**n) for n in definition["nodes"]], tags=definition["tags"], **extra,
    )


def _from_row(row: Workflow, version: WorkflowVersion) -> WorkflowOut:
    return _from_definition(version.definition, "store", version=row.latest_version, created_at=row.created_at,
                            created_by=row.created_by, updated_at=row.updated_at, updated_by=row.updated_by)


def _from_python_dag(dag_id: str) -> WorkflowOut:
    """A bundled Python DAG, described from its serialised form in Airflow (empty until parsed)."""
    from airflow.models.serialized_dag import SerializedDagModel

    dag = SerializedDagModel.get_dag(dag_id)
    params: dict[str, dict[str, Any]] = {}
    nodes: list[Node] = []
    if dag is not None:
        for name in dag.params:
            param = dag.params.get_param(name)
            schema = dict(param.schema)
            if param.value is not None and type(param.value).__name__ != "ArgNotSet":
                schema["default"] = param.value
            if param.description:
                schema["description"] = param.description
            params[name] = schema
        nodes = [Node(id=t.task_id, type=t.task_type, depends_on=sorted(t.upstream_task_ids)) for t in dag.tasks]
    return WorkflowOut(id=dag_id, name=dag_id, dag_id=dag_id, source="python", read_only=True,
                       description=(dag.description or "") if dag else "", organization_id=None, version=None,
                       trigger=None, params=params, nodes=nodes, tags=sorted(dag.tags) if dag else [],
                       file=f"dags/ (Python DAG {dag_id})")


def _stored(session: Any, name: str, *, lock: bool = False, deleted_ok: bool = False) -> Workflow | None:
    query = select(Workflow).where(Workflow.name == name)
    row = session.scalar(query.with_for_update() if lock else query)
    return row if row is not None and (deleted_ok or row.deleted_at is None) else None


def _version(session: Any, row: Workflow) -> WorkflowVersion:
    version = session.get(WorkflowVersion, (row.id, row.latest_version))
    assert version is not None  # written in the same transaction as latest_version
    return version


def _read_only_error(name: str) -> ApiError | None:
    files = _file_workflows()
    if name in files:
        return ApiError(409, "read_only", f"workflow {name!r} is defined in include/workflows/{files[name][0].name}; "
                                          "change that file (and deploy) instead of using the API")
    if name in workflows.python_dag_ids():
        return ApiError(409, "read_only", f"workflow {name!r} is a bundled Python DAG (dags/); it cannot be "
                                          "changed through the API")
    return None


def _describe(name: str) -> WorkflowOut:
    with session_scope() as session:
        row = _stored(session, name)
        if row is not None:
            return _from_row(row, _version(session, row))
    files = _file_workflows()
    if name in files:
        path, definition = files[name]
        return _from_definition(definition, "file", version=None, file=f"include/workflows/{path.name}")
    if name in workflows.python_dag_ids():
        return _from_python_dag(name)
    raise ApiError(404, "not_found", f"workflow {name!r} not found")


# --- helpers for answers the shared error shape cannot carry -------------------------------------------


def _problems_response(request: Request, status_code: int, code: str, message: str,
                       problems: list[dict[str, str]]) -> JSONResponse:
    """The shared error shape plus ``problems``: every problem at once, each ``{"path", "message"}``."""
    cid = correlation_id(request)
    return JSONResponse(status_code=status_code, headers={CORRELATION_HEADER: cid},
                        content={"error": {"message": message, "code": code, "correlationId": cid,
                                           "problems": problems}})


def _invalid(request: Request, exc: workflows.WorkflowInvalid) -> JSONResponse:
    count = len(exc.problems)
    return _problems_response(request, 400, "invalid_workflow",
                              f"the workflow definition has {count} problem{'s' if count != 1 else ''}", exc.problems)


def _parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    cleaned = value.strip().removeprefix("W/").strip('"')
    if not cleaned.isdigit():
        raise ApiError(400, "invalid_if_match", "If-Match must be the workflow version you edited, e.g. If-Match: 3")
    return int(cleaned)


def _set_paused(dag_id: str, paused: bool) -> bool:
    """Pause/unpause the DAG in Airflow (runs and history stay); False when Airflow does not know it yet."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        model = session.get(DagModel, dag_id)
        if model is None:
            return False
        model.is_paused = paused
    return True


# --- routes ---------------------------------------------------------------------------------------------


@router.get("", response_model=WorkflowList)
async def list_workflows(_: ReadWorkflows, organization_id: str | None = None,
                         source: Source | None = None) -> WorkflowList:
    def work() -> list[WorkflowOut]:
        listed: list[WorkflowOut] = []
        with session_scope() as session:
            rows = session.scalars(select(Workflow).where(Workflow.deleted_at.is_(None)).order_by(Workflow.name))
            listed += [_from_row(row, _version(session, row)) for row in rows]
        listed += [_from_definition(d, "file", version=None, file=f"include/workflows/{p.name}")
                   for p, d in _file_workflows().values()]
        listed += [_from_python_dag(dag_id) for dag_id in sorted(workflows.python_dag_ids())]
        return [w for w in listed if (source is None or w.source == source)
                and (organization_id is None or w.organization_id == organization_id)]

    found = await run_in_threadpool(work)
    return WorkflowList(workflows=found, total_entries=len(found))


@router.get("/node-types")
async def node_types(_: ReadWorkflows) -> dict[str, Any]:
    """Every node type, its operator and the config keys it accepts (``required`` / ``optional``)."""
    return {"node_types": await run_in_threadpool(workflows.node_type_reference),
            "operator_config_keys": sorted(workflows.OPERATOR_ARGS)}


def _add_version(session: Any, row: Workflow, checked: dict[str, Any], actor: str,
                 now: datetime) -> tuple[WorkflowOut, str | None]:
    """Store ``checked`` as version ``row.latest_version`` and route a webhook trigger's endpoint to it;
    returns the workflow as answered and the endpoint whose cached config must be dropped."""
    row.organization_id, row.updated_at, row.updated_by = checked["organization_id"], now, actor
    session.flush()  # a new workflow gets its id
    version = WorkflowVersion(workflow_id=row.id, version=row.latest_version, definition=checked, created_by=actor)
    session.add(version)
    connected = _connect_endpoint(session, checked)
    session.flush()
    return _from_row(row, version), connected


class _EndpointProblem(Exception):
    """A webhook trigger names an endpoint that cannot start this workflow."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.problems = [{"path": "trigger.endpoint_id", "message": message}]


def _connect_endpoint(session: Any, definition: dict[str, Any]) -> str | None:
    """A webhook trigger routes its endpoint to the workflow: ``routes[event_type]`` when the trigger
    names an event type, else the endpoint's default ``target_dag_id``. Returns the endpoint id."""
    trigger = definition.get("trigger") or {}
    if trigger.get("type") != "webhook":
        return None
    endpoint = session.get(WebhookEndpoint, trigger["endpoint_id"], with_for_update=True)
    if endpoint is None or endpoint.organization_id != definition["organization_id"]:
        raise _EndpointProblem(f"no webhook endpoint {trigger['endpoint_id']!r} in organization "
                               f"{definition['organization_id']!r}")
    if trigger.get("event_type"):
        endpoint.routes = {**(endpoint.routes or {}), trigger["event_type"]: definition["name"]}
    else:
        endpoint.target_dag_id = definition["name"]
    return str(endpoint.id)


@router.post("", status_code=201, response_model=WorkflowOut,
             responses={400: {"description": "Invalid definition; error.problems lists every problem"},
                        409: {"description": "A workflow with this name exists"}})
async def create_workflow(request: Request, user: CreateWorkflows,
                          definition: Annotated[dict[str, Any], Body()]) -> Any:
    cid = correlation_id(request)
    try:
        checked = await run_in_threadpool(workflows.validate, definition)
    except workflows.WorkflowInvalid as exc:
        return _invalid(request, exc)

    def work() -> WorkflowOut:
        name = checked["name"]
        if (error := _read_only_error(name)) is not None:
            raise ApiError(409, "conflict", f"a bundled workflow is named {name!r}: {error.message}")
        revived = False
        try:
            with session_scope() as session:
                row = _stored(session, name, lock=True, deleted_ok=True)
                now = datetime.now(UTC)
                if row is not None and row.deleted_at is None:
                    raise ApiError(409, "conflict", f"workflow {name!r} exists (version {row.latest_version}); "
                                                    "PUT a new version instead")
                if row is None:
                    row = Workflow(name=name, latest_version=1, created_by=_actor(user))
                    session.add(row)
                else:  # re-created after a delete: same DAG id, history and versions continue
                    revived, row.deleted_at, row.latest_version = True, None, row.latest_version + 1
                out, connected = _add_version(session, row, checked, _actor(user), now)
        except IntegrityError:  # a concurrent create of the same name won
            raise ApiError(409, "conflict", f"workflow {name!r} exists; PUT a new version instead") from None
        if connected:
            endpoints.cache.invalidate(connected)
        if revived:
            _set_paused(name, False)
        audit("workflow.created", actor=_actor(user), resource_type="workflow", resource_id=name,
              outcome="success", correlation_id=cid, version=out.version, revived=revived)
        return out

    try:
        out = await run_in_threadpool(work)
    except _EndpointProblem as exc:
        return _problems_response(request, 400, "invalid_workflow", str(exc), exc.problems)
    return JSONResponse(status_code=201, content=out.model_dump(mode="json"), headers={"ETag": f'"{out.version}"'})


@router.get("/{name}", response_model=WorkflowOut)
async def get_workflow(name: str, _: ReadWorkflows, response: Response) -> WorkflowOut:
    out = await run_in_threadpool(_describe, name)
    if out.version is not None:
        response.headers["ETag"] = f'"{out.version}"'
    return out


def _locked_for_change(session: Any, name: str, expected: int | None) -> Workflow:
    """The stored workflow, row-locked, after the read-only, 404 and ``If-Match`` (412) checks."""
    if (error := _read_only_error(name)) is not None:
        raise error
    row = _stored(session, name, lock=True)
    if row is None:
        raise ApiError(404, "not_found", f"workflow {name!r} not found")
    if expected is not None and expected != row.latest_version:
        raise ApiError(412, "precondition_failed", f"workflow {name!r} is at version {row.latest_version}, "
                                                   f"not {expected}; fetch it again and re-apply your edit")
    return row


@router.put("/{name}", response_model=WorkflowOut,
            responses={400: {"description": "Invalid definition; error.problems lists every problem"},
                       409: {"description": "Read-only (file or Python) workflow"},
                       412: {"description": "If-Match names another version than the latest"}})
async def update_workflow(name: str, request: Request, user: EditWorkflows,
                          definition: Annotated[dict[str, Any], Body()],
                          if_match: Annotated[str | None, Header()] = None) -> Any:
    """Store the definition as the workflow's next version (``If-Match: <version>`` guards lost updates)."""
    cid = correlation_id(request)
    expected = _parse_if_match(if_match)
    if definition.get("name", name) != name:
        return _problems_response(request, 400, "invalid_workflow", "the definition has 1 problem", [
            {"path": "name", "message": f"a workflow cannot be renamed ({name!r}); create a new one instead"}])
    try:
        checked = await run_in_threadpool(workflows.validate, {**definition, "name": name})
    except workflows.WorkflowInvalid as exc:
        return _invalid(request, exc)

    def work() -> WorkflowOut:
        with session_scope() as session:
            row = _locked_for_change(session, name, expected)
            row.latest_version += 1
            out, connected = _add_version(session, row, checked, _actor(user), datetime.now(UTC))
        if connected:
            endpoints.cache.invalidate(connected)
        audit("workflow.updated", actor=_actor(user), resource_type="workflow", resource_id=name,
              outcome="success", correlation_id=cid, version=out.version)
        return out

    try:
        out = await run_in_threadpool(work)
    except _EndpointProblem as exc:
        return _problems_response(request, 400, "invalid_workflow", str(exc), exc.problems)
    return JSONResponse(content=out.model_dump(mode="json"), headers={"ETag": f'"{out.version}"'})


@router.delete("/{name}", status_code=204,
               responses={409: {"description": "Read-only (file or Python) workflow"},
                          412: {"description": "If-Match names another version than the latest"}})
async def delete_workflow(name: str, request: Request, user: DeleteWorkflows,
                          if_match: Annotated[str | None, Header()] = None) -> Response:
    """Soft delete: the DAG is paused and no longer generated; versions and run history stay."""
    cid = correlation_id(request)
    expected = _parse_if_match(if_match)

    def work() -> bool:
        with session_scope() as session:
            row = _locked_for_change(session, name, expected)
            row.deleted_at = row.updated_at = datetime.now(UTC)
            row.updated_by = _actor(user)
        paused = _set_paused(name, True)
        audit("workflow.deleted", actor=_actor(user), resource_type="workflow", resource_id=name,
              outcome="success", correlation_id=cid, dag_paused=paused)
        return paused

    await run_in_threadpool(work)
    return Response(status_code=204)


@router.get("/{name}/versions", response_model=VersionList)
async def list_versions(name: str, _: ReadWorkflows) -> VersionList:
    """Every stored version, newest first (a deleted workflow's too)."""
    def work() -> VersionList:
        with session_scope() as session:
            row = _stored(session, name, deleted_ok=True)
            if row is None:
                error = _read_only_error(name)
                raise ApiError(404, "not_found", error.message.replace("cannot be changed", "has no versions")
                               if error else f"workflow {name!r} not found")
            versions = session.scalars(select(WorkflowVersion).where(WorkflowVersion.workflow_id == row.id)
                                       .order_by(WorkflowVersion.version.desc())).all()
            out = [VersionOut(version=v.version, created_at=v.created_at, created_by=v.created_by,
                              definition=v.definition) for v in versions]
        return VersionList(workflow=name, versions=out, total_entries=len(out))

    return await run_in_threadpool(work)


def _can_run(user: Any, dag_id: str) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return get_auth_manager().is_authorized_dag(method="POST", access_entity=DagAccessEntity.RUN,
                                                details=DagDetails(id=dag_id), user=user)


@router.post("/{name}/execute", status_code=201, response_model=ExecuteOut,
             responses={400: {"description": "conf does not match the params; error.problems lists every problem"},
                        409: {"description": "The DAG is not parsed yet; retry (Retry-After)"}})
async def execute_workflow(name: str, request: Request, user: CreateWorkflows,
                           body: ExecuteRequest | None = None) -> Any:
    """Check ``conf`` against the workflow's params, then create a DAG run (needs the DAG-run permission too)."""
    cid = correlation_id(request)
    body = body or ExecuteRequest()
    workflow = await run_in_threadpool(_describe, name)
    if not await run_in_threadpool(_can_run, user, workflow.dag_id):
        raise ApiError(403, "forbidden", f"this user may not create runs of DAG {workflow.dag_id!r}")
    if workflow.source == "python" and not workflow.nodes:
        raise ApiError(409, "not_available", f"DAG {name!r} is not available yet (not parsed); retry shortly",
                       headers={"Retry-After": RETRY_AFTER_SECONDS})
    problems = workflows.check_conf(workflow.params, body.conf)
    if problems:
        return _problems_response(request, 400, "invalid_conf",
                                  f"conf does not match the params of {name!r} ({len(problems)} problems)"
                                  if len(problems) != 1 else f"conf does not match the params of {name!r}", problems)
    run_id = body.dag_run_id or f"officeflow_api__{uuid.uuid4().hex}"

    def work() -> str:
        try:
            created = trigger_run(workflow.dag_id, run_id, body.conf, triggered_by_name=user.get_name(),
                                  note=run_notes.start_note(body.conf, correlation_id=cid, started_by=(
                                      f"{user.get_name()} through the workflows API")))
        except TriggerError as exc:
            audit("workflow.executed", actor=_actor(user), resource_type="workflow", resource_id=name,
                  outcome="failure", correlation_id=cid, error=str(exc))
            if exc.permanent:
                raise ApiError(400, "run_refused", str(exc)) from None
            if "not available yet" in str(exc):
                raise ApiError(409, "not_available", f"DAG {name!r} is not available yet (the dag-processor has not "
                                                     "parsed it); retry shortly",
                               headers={"Retry-After": RETRY_AFTER_SECONDS}) from None
            raise ApiError(503, "trigger_failed", str(exc), headers={"Retry-After": RETRY_AFTER_SECONDS}) from None
        audit("workflow.executed", actor=_actor(user), resource_type="workflow", resource_id=name,
              outcome="success", correlation_id=cid, dag_run_id=created, version=workflow.version)
        return created

    created = await run_in_threadpool(work)
    return ExecuteOut(dag_id=workflow.dag_id, dag_run_id=created, version=workflow.version)
