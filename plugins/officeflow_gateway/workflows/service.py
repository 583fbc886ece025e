"""The workflows service: list, describe, create, version, delete and execute declarative workflows.

Callable without HTTP (the routes in ``api/workflows.py`` only translate). Declarative workflows come
from the store (defined through the API, versioned) and from ``include/workflows/*.yaml``; the bundled
Python DAGs are listed too. Those two are read-only. A failure raises :class:`WorkflowError` with a
``reason`` code (never to be told apart by its message).

Tenant isolation: a declarative workflow (store or file) belongs to its definition's ``organization_id``. The
functions take ``organizations``, the caller's (None = every organization): a workflow of another organization
is ``not_found`` to every operation, and creating one in (or moving one to) another organization is
``forbidden_organization``. The bundled Python DAGs belong to no organization: they serve every organization,
which each run names in its conf (``organization_id``); executing one for an organization the caller is not a
member of is ``forbidden_organization``. A run started by :func:`execute` always carries its organization in
its conf: the workflow's for a declarative workflow (a different one in the conf is ``invalid_conf``).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from include.officeflow import correlation, run_notes, workflows
from include.officeflow.audit import audit
from include.officeflow.store import WebhookEndpoint, Workflow, WorkflowVersion, session_scope
from operators import declarative
from plugins.officeflow_gateway import endpoints
from plugins.officeflow_gateway.triggering import TriggerError, trigger_run
from plugins.officeflow_gateway.workflows.schemas import ExecuteOut, Node, Source, VersionList, VersionOut, WorkflowOut

Reason = Literal["not_found", "read_only", "conflict", "precondition_failed", "invalid_workflow", "invalid_conf",
                 "forbidden", "forbidden_organization", "not_available", "run_refused", "trigger_failed"]
Organizations = Collection[str] | None  # the caller's organizations; None: every organization
DEFAULT_ORGANIZATION = "default"  # the organization_id run param's default (include/officeflow/workflow_params.py)


def _sees(organizations: Organizations, organization_id: str | None) -> bool:
    return organizations is None or organization_id in organizations


def _check_member(organizations: Organizations, organization_id: str) -> None:
    if not _sees(organizations, organization_id):
        raise WorkflowError("forbidden_organization", f"you are not a member of organization {organization_id!r}")


class WorkflowError(Exception):
    """A workflow operation refused or failed; ``problems`` lists every problem of an invalid input."""

    def __init__(self, reason: Reason, message: str, problems: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.problems = problems


def _invalid(exc: workflows.WorkflowInvalid) -> WorkflowError:
    count = len(exc.problems)
    return WorkflowError("invalid_workflow", f"the workflow definition has {count} problem{'s' if count != 1 else ''}",
                         exc.problems)


def validate(definition: Any) -> dict[str, Any]:
    """The definition normalised, or :class:`WorkflowError` (``invalid_workflow``) with every problem."""
    try:
        return declarative.validate(definition)
    except workflows.WorkflowInvalid as exc:
        raise _invalid(exc) from None


def node_types() -> dict[str, Any]:
    """Every node type, its operator and the config keys it accepts (``required`` / ``optional``)."""
    return {"node_types": declarative.node_type_reference(), "operator_config_keys": sorted(workflows.OPERATOR_ARGS)}


# --- where workflows come from ------------------------------------------------------------------------


def _file_workflows() -> dict[str, tuple[Path, dict[str, Any]]]:
    """Valid bundled definitions by name (invalid files are the factory's to report: they have no DAG)."""
    found = {}
    reserved = workflows.python_dag_ids()
    for path in workflows.definition_files():
        try:
            definition = declarative.validate(workflows.load_definition_file(path), reserved=reserved)
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


def _read_only_error(name: str, organizations: Organizations = None) -> WorkflowError | None:
    files = _file_workflows()
    if name in files:
        if not _sees(organizations, files[name][1]["organization_id"]):
            return WorkflowError("not_found", f"workflow {name!r} not found")
        return WorkflowError("read_only", f"workflow {name!r} is defined in include/workflows/{files[name][0].name}; "
                                          "change that file (and deploy) instead of using the API")
    if name in workflows.python_dag_ids():
        return WorkflowError("read_only", f"workflow {name!r} is a bundled Python DAG (dags/); it cannot be "
                                          "changed through the API")
    return None


# --- reading ---------------------------------------------------------------------------------------------


def list_workflows(*, organization_id: str | None = None, source: Source | None = None,
                   organizations: Organizations = None) -> list[WorkflowOut]:
    """The workflows of ``organizations`` and the bundled Python DAGs (which serve every organization); an
    ``organization_id`` filter keeps that organization's only."""
    listed: list[WorkflowOut] = []
    with session_scope() as session:
        query = select(Workflow).where(Workflow.deleted_at.is_(None)).order_by(Workflow.name)
        if organizations is not None:
            query = query.where(Workflow.organization_id.in_(list(organizations)))
        rows = session.scalars(query)
        listed += [_from_row(row, _version(session, row)) for row in rows]
    listed += [_from_definition(d, "file", version=None, file=f"include/workflows/{p.name}")
               for p, d in _file_workflows().values()]
    listed += [_from_python_dag(dag_id) for dag_id in sorted(workflows.python_dag_ids())]
    return [w for w in listed if (source is None or w.source == source)
            and (organization_id is None or w.organization_id == organization_id)
            and (w.organization_id is None or _sees(organizations, w.organization_id))]


def describe(name: str, *, organizations: Organizations = None) -> WorkflowOut:
    not_found = WorkflowError("not_found", f"workflow {name!r} not found")
    with session_scope() as session:
        row = _stored(session, name)
        if row is not None:
            if not _sees(organizations, row.organization_id):
                raise not_found
            return _from_row(row, _version(session, row))
    files = _file_workflows()
    if name in files:
        path, definition = files[name]
        if not _sees(organizations, definition["organization_id"]):
            raise not_found
        return _from_definition(definition, "file", version=None, file=f"include/workflows/{path.name}")
    if name in workflows.python_dag_ids():
        return _from_python_dag(name)
    raise not_found


def versions(name: str, *, organizations: Organizations = None) -> VersionList:
    """Every stored version, newest first (a deleted workflow's too)."""
    with session_scope() as session:
        row = _stored(session, name, deleted_ok=True)
        if row is not None and not _sees(organizations, row.organization_id):
            raise WorkflowError("not_found", f"workflow {name!r} not found")
        if row is None:
            error = _read_only_error(name, organizations)
            raise WorkflowError("not_found", error.message.replace("cannot be changed", "has no versions")
                                if error else f"workflow {name!r} not found")
        rows = session.scalars(select(WorkflowVersion).where(WorkflowVersion.workflow_id == row.id)
                               .order_by(WorkflowVersion.version.desc())).all()
        out = [VersionOut(version=v.version, created_at=v.created_at, created_by=v.created_by,
                          definition=v.definition) for v in rows]
    return VersionList(workflow=name, versions=out, total_entries=len(out))


# --- changing ------------------------------------------------------------------------------------------


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


def _connect_endpoint(session: Any, definition: dict[str, Any]) -> str | None:
    """A webhook trigger routes its endpoint to the workflow: ``routes[event_type]`` when the trigger
    names an event type, else the endpoint's default ``target_dag_id``. Returns the endpoint id."""
    trigger = definition.get("trigger") or {}
    if trigger.get("type") != "webhook":
        return None
    endpoint = session.get(WebhookEndpoint, trigger["endpoint_id"], with_for_update=True)
    if endpoint is None or endpoint.organization_id != definition["organization_id"]:
        message = f"no webhook endpoint {trigger['endpoint_id']!r} in organization {definition['organization_id']!r}"
        raise WorkflowError("invalid_workflow", message, [{"path": "trigger.endpoint_id", "message": message}])
    if trigger.get("event_type"):
        endpoint.routes = {**(endpoint.routes or {}), trigger["event_type"]: definition["name"]}
    else:
        endpoint.target_dag_id = definition["name"]
    return str(endpoint.id)


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


def create(checked: dict[str, Any], *, actor: str, correlation_id: str, organizations: Organizations = None,
           source_ip: str | None = None) -> WorkflowOut:
    """Store a validated definition as a new workflow (or version 1+n of one deleted before).

    Workflow names are DAG ids, unique across organizations: a name taken in another organization is a
    ``conflict`` that names no organization, and a deleted workflow is revived only by a caller who sees
    its organization (its versions come back with it)."""
    name = checked["name"]
    _check_member(organizations, checked["organization_id"])
    if (error := _read_only_error(name)) is not None:
        raise WorkflowError("conflict", f"a bundled workflow is named {name!r}: {error.message}")
    revived = False
    try:
        with session_scope() as session:
            row = _stored(session, name, lock=True, deleted_ok=True)
            now = datetime.now(UTC)
            if row is not None and not _sees(organizations, row.organization_id):
                raise WorkflowError("conflict", f"the name {name!r} is taken; choose another one")
            if row is not None and row.deleted_at is None:
                raise WorkflowError("conflict", f"workflow {name!r} exists (version {row.latest_version}); "
                                                "PUT a new version instead")
            if row is None:
                row = Workflow(name=name, latest_version=1, created_by=actor)
                session.add(row)
            else:  # re-created after a delete: same DAG id, history and versions continue
                revived, row.deleted_at, row.latest_version = True, None, row.latest_version + 1
            out, connected = _add_version(session, row, checked, actor, now)
    except IntegrityError:  # a concurrent create of the same name won
        raise WorkflowError("conflict", f"workflow {name!r} exists; PUT a new version instead") from None
    if connected:
        endpoints.cache.invalidate(connected)
    if revived:
        _set_paused(name, False)
    audit("workflow.created", actor=actor, resource_type="workflow", resource_id=name, outcome="success",
          correlation_id=correlation_id, organization_id=checked["organization_id"], source_ip=source_ip,
          version=out.version, revived=revived)
    return out


def _locked_for_change(session: Any, name: str, expected: int | None, organizations: Organizations) -> Workflow:
    """The stored workflow, row-locked, after the read-only, 404 (also for another organization's) and
    ``expected`` version checks."""
    if (error := _read_only_error(name, organizations)) is not None:
        raise error
    row = _stored(session, name, lock=True)
    if row is None or not _sees(organizations, row.organization_id):
        raise WorkflowError("not_found", f"workflow {name!r} not found")
    if expected is not None and expected != row.latest_version:
        raise WorkflowError("precondition_failed", f"workflow {name!r} is at version {row.latest_version}, "
                                                   f"not {expected}; fetch it again and re-apply your edit")
    return row


def update(name: str, checked: dict[str, Any], *, expected: int | None, actor: str, correlation_id: str,
           organizations: Organizations = None, source_ip: str | None = None) -> WorkflowOut:
    """Store a validated definition as the workflow's next version (``expected``: the version edited). Moving
    it to another organization needs membership of both."""
    with session_scope() as session:
        row = _locked_for_change(session, name, expected, organizations)
        _check_member(organizations, checked["organization_id"])
        previous_organization = row.organization_id
        row.latest_version += 1
        out, connected = _add_version(session, row, checked, actor, datetime.now(UTC))
    if connected:
        endpoints.cache.invalidate(connected)
    details: dict[str, Any] = {"version": out.version}
    if previous_organization != checked["organization_id"]:
        details["moved_from"] = previous_organization
    audit("workflow.updated", actor=actor, resource_type="workflow", resource_id=name, outcome="success",
          correlation_id=correlation_id, organization_id=checked["organization_id"], source_ip=source_ip, **details)
    return out


def delete(name: str, *, expected: int | None, actor: str, correlation_id: str, organizations: Organizations = None,
           source_ip: str | None = None) -> bool:
    """Soft delete: the DAG is paused and no longer generated; versions and run history stay. Returns
    whether Airflow knew the DAG (and paused it)."""
    with session_scope() as session:
        row = _locked_for_change(session, name, expected, organizations)
        row.deleted_at = row.updated_at = datetime.now(UTC)
        row.updated_by = actor
        organization_id = row.organization_id
    paused = _set_paused(name, True)
    audit("workflow.deleted", actor=actor, resource_type="workflow", resource_id=name, outcome="success",
          correlation_id=correlation_id, organization_id=organization_id, source_ip=source_ip, dag_paused=paused)
    return paused


# --- running -----------------------------------------------------------------------------------------------


def _can_run(user: Any, dag_id: str) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

    return get_auth_manager().is_authorized_dag(method="POST", access_entity=DagAccessEntity.RUN,
                                                details=DagDetails(id=dag_id), user=user)


def _run_organization(workflow: WorkflowOut, conf: dict[str, Any], organizations: Organizations) -> str | None:
    """The organization a run of ``workflow`` belongs to: a declarative workflow's own, or (bundled Python DAGs,
    which serve every organization) the conf's ``organization_id``, else its param default ``default``.
    None when the conf's value is not a string (the params check reports it)."""
    given = conf.get("organization_id")
    if workflow.organization_id is not None:
        if given is not None and given != workflow.organization_id:
            message = f"must be the workflow's organization {workflow.organization_id!r} (or left out)"
            raise WorkflowError("invalid_conf", f"conf does not match the params of {workflow.name!r}",
                                [{"path": "conf.organization_id", "message": message}])
        return workflow.organization_id
    organization = DEFAULT_ORGANIZATION if given is None else given
    if not isinstance(organization, str):
        return None
    _check_member(organizations, organization)
    return organization


def execute(name: str, conf: dict[str, Any], *, dag_run_id: str | None, user: Any, correlation_id: str,
            organizations: Organizations = None, source_ip: str | None = None) -> ExecuteOut:
    """Check ``conf`` against the workflow's params, then create a DAG run (the user needs the DAG-run
    permission too); the run's note names who started it through this API. The run's conf carries its
    organization (``organization_id``, see the module docstring) and the request's ``correlation_id``."""
    workflow = describe(name, organizations=organizations)
    organization = _run_organization(workflow, conf, organizations)
    if organization is not None:
        conf = {**conf, "organization_id": organization}
    # The request's X-Correlation-ID, unless the conf names a valid one: every task logs it (log_context.py).
    given = conf.get("correlation_id")
    valid = isinstance(given, str) and correlation.is_valid(given)
    conf = {**conf, "correlation_id": given if valid else correlation_id}
    if not _can_run(user, workflow.dag_id):
        raise WorkflowError("forbidden", f"this user may not create runs of DAG {workflow.dag_id!r}")
    if workflow.source == "python" and not workflow.nodes:
        raise WorkflowError("not_available", f"DAG {name!r} is not available yet (not parsed); retry shortly")
    problems = workflows.check_conf(workflow.params, conf)
    if problems:
        raise WorkflowError("invalid_conf", f"conf does not match the params of {name!r} ({len(problems)} problems)"
                            if len(problems) != 1 else f"conf does not match the params of {name!r}", problems)
    actor = f"user:{user.get_name()}"
    try:
        created = trigger_run(workflow.dag_id, dag_run_id or f"officeflow_api__{uuid.uuid4().hex}", conf,
                              triggered_by_name=user.get_name(),
                              note=run_notes.start_note(conf, correlation_id=correlation_id,
                                                        started_by=f"{user.get_name()} through the workflows API"))
    except TriggerError as exc:
        audit("workflow.executed", actor=actor, resource_type="workflow", resource_id=name, outcome="failure",
              correlation_id=correlation_id, organization_id=organization, source_ip=source_ip, error=str(exc))
        if exc.reason == "refused":
            raise WorkflowError("run_refused", str(exc)) from None
        if exc.reason == "dag_not_available":
            raise WorkflowError("not_available", f"DAG {name!r} is not available yet (the dag-processor has not "
                                                 "parsed it); retry shortly") from None
        raise WorkflowError("trigger_failed", str(exc)) from None
    audit("workflow.executed", actor=actor, resource_type="workflow", resource_id=name, outcome="success",
          correlation_id=correlation_id, organization_id=organization, source_ip=source_ip, dag_run_id=created,
          version=workflow.version)
    return ExecuteOut(dag_id=workflow.dag_id, dag_run_id=created, version=workflow.version)
