"""Declarative workflows at the operators level: which OfficeFlow operator each node type builds, the
full validation of a definition (the format, then the operators' own checks) and the DAG builder.

The definition format and its structural checks are in the core (``include/officeflow/workflows.py``);
the registry lives here because it names operators, and the DAG is built with the same
:func:`~operators.workflow_dag.workflow_dag` as the Python workflows. Used by the DAG factory
(``dags/declarative_workflows.py``) and the workflows API.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Any

from airflow.sdk import DAG, BaseOperator

from include.officeflow import workflows
from include.officeflow.workflows import LOCAL_FILES, NEVER_CONFIGURABLE, WorkflowInvalid
from operators.calendar import CancelMeetingOperator, ScheduleMeetingOperator, UpdateMeetingOperator
from operators.documents import RenderDocumentOperator, ShareDocumentOperator, StoreDocumentOperator
from operators.email import SendTemplatedEmailOperator
from operators.identity import DeprovisionUserOperator, ProvisionUserOperator, UpdateUserOperator
from operators.slack import ArchiveChannelOperator, CreateChannelOperator, SlackApprovalOperator, SlackMessageOperator
from operators.workflow_dag import workflow_dag


@dataclass(frozen=True)
class NodeType:
    """A node type: the OfficeFlow operator it instantiates and which of its arguments a node may set."""

    name: str
    operator: type[BaseOperator]
    summary: str
    excluded: frozenset[str] = field(default_factory=frozenset)

    def arguments(self) -> dict[str, inspect.Parameter]:
        """The operator's own keyword parameters, up its MRO to (not including) ``BaseOperator``."""
        return _operator_arguments(self.operator, self.excluded)

    def required(self) -> set[str]:
        return {name for name, p in self.arguments().items() if p.default is inspect.Parameter.empty}


@cache
def _operator_arguments(cls: type, excluded: frozenset[str]) -> dict[str, inspect.Parameter]:
    arguments: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        if klass is BaseOperator or not issubclass(klass, BaseOperator):
            break
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        for name, parameter in inspect.signature(init).parameters.items():
            if parameter.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL) or name == "self":
                continue
            if name not in excluded and name not in NEVER_CONFIGURABLE:
                arguments.setdefault(name, parameter)
    return arguments


NODE_TYPES: dict[str, NodeType] = {t.name: t for t in (
    NodeType("email", SendTemplatedEmailOperator,
             "Render an email template (include/templates/email) and send it to each recipient."),
    NodeType("slack_message", SlackMessageOperator, "Post a Slack message (template or text) to a channel or as a DM."),
    NodeType("slack_channel", CreateChannelOperator,
             "Create (or reuse) a Slack channel, invite people, set its topic."),
    NodeType("archive_slack_channel", ArchiveChannelOperator, "Archive a Slack channel."),
    NodeType("slack_approval", SlackApprovalOperator,
             "Ask approvers in Slack (and the Airflow UI); a Reject skips the downstream nodes.",
             excluded=frozenset({"options", "multiple", "defaults", "assigned_users"})),
    NodeType("provision_user", ProvisionUserOperator,
             "Create (or adopt) a user and their groups in Google Workspace, Entra or Okta.", excluded=LOCAL_FILES),
    NodeType("update_user", UpdateUserOperator, "Update a user's profile and groups.", excluded=LOCAL_FILES),
    NodeType("deprovision_user", DeprovisionUserOperator,
             "Suspend a user, remove their groups, optionally delete later.", excluded=LOCAL_FILES),
    NodeType("render_document", RenderDocumentOperator,
             "Render a PDF from a document template and store it as a new version."),
    NodeType("store_document", StoreDocumentOperator,
             "Store content (data, e.g. from an upstream node) as a new document version.", excluded=LOCAL_FILES),
    NodeType("share_document", ShareDocumentOperator, "Create a time-limited share link of a stored document."),
    NodeType("schedule_meeting", ScheduleMeetingOperator, "Find a free slot for all attendees and book the meeting."),
    NodeType("update_meeting", UpdateMeetingOperator, "Move or change a booked meeting."),
    NodeType("cancel_meeting", CancelMeetingOperator, "Cancel a booked meeting."),
)}


def node_type_reference() -> list[dict[str, Any]]:
    """Every node type with its operator and config keys (required ones flagged), for docs and the API."""
    rows = []
    for node_type in NODE_TYPES.values():
        required = node_type.required()
        rows.append({
            "type": node_type.name,
            "operator": f"{node_type.operator.__module__}.{node_type.operator.__name__}",
            "summary": node_type.summary,
            "config": {name: ("required" if name in required else "optional") for name in node_type.arguments()},
        })
    return rows


def validate(definition: Any, *, reserved: Iterable[str] | None = None) -> dict[str, Any]:
    """Check a definition (every format problem at once); if there are none, build the DAG once so an
    operator refusing its arguments is reported too (with the node's path). Returns it normalised."""
    normalised = workflows.check(definition, NODE_TYPES, reserved=reserved)
    _build(normalised)
    return normalised


def build_dag(definition: Any, *, reserved: Iterable[str] | None = None, doc_md: str | None = None) -> DAG:
    """The Airflow DAG of a definition (checked first; raises :class:`WorkflowInvalid`)."""
    return _build(workflows.check(definition, NODE_TYPES, reserved=reserved), doc_md)


def _build(definition: dict[str, Any], doc_md: str | None = None) -> DAG:
    try:
        dag = _new_dag(definition, doc_md)
    except Exception as exc:  # Airflow's own DAG checks
        raise WorkflowInvalid([{"path": "", "message": f"Airflow refused the workflow: {exc}"}]) from exc
    problems = []
    tasks = {}
    for i, node in enumerate(definition["nodes"]):
        try:
            tasks[node["id"]] = NODE_TYPES[node["type"]].operator(
                task_id=node["id"], dag=dag, **_operator_kwargs(node["type"], node["config"]))
        except Exception as exc:  # the operator's own checks (e.g. "give exactly one of template or text")
            problems.append({"path": f"nodes[{i}].config", "message": f"node {node['id']!r}: the {node['type']} "
                                                                      f"operator refused its config: {exc}"})
    if problems:
        raise WorkflowInvalid(problems)
    for node in definition["nodes"]:
        for upstream in node["depends_on"]:
            tasks[upstream] >> tasks[node["id"]]
    return dag


def _new_dag(definition: dict[str, Any], doc_md: str | None) -> DAG:
    overrides: dict[str, Any] = {}
    if "retries" in definition["default_args"]:
        overrides["retries"] = definition["default_args"]["retries"]
    if "retry_delay_seconds" in definition["default_args"]:
        overrides["retry_delay"] = timedelta(seconds=definition["default_args"]["retry_delay_seconds"])
    return workflow_dag(
        definition["name"], display_name=definition["name"].replace("_", " ").capitalize(),
        description=definition["description"] or None, owner=definition["owner"],
        tags=["declarative", *definition["tags"]], params=workflows.make_params(definition["params"]),
        doc_md=doc_md, schedule=workflows.schedule_of(definition["trigger"]), with_run_params=False,
        default_args_overrides=overrides, access=definition.get("access", []))


def _operator_kwargs(kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
    arguments = NODE_TYPES[kind].arguments()
    kwargs: dict[str, Any] = {}
    for key, value in config.items():
        if key in ("execution_timeout_seconds", "retry_delay_seconds"):
            kwargs[key.removesuffix("_seconds")] = timedelta(seconds=value)
        elif key in arguments and _takes_timedelta(arguments[key]) and isinstance(value, int | float):
            kwargs[key] = timedelta(seconds=value)  # durations are seconds in a definition
        else:
            kwargs[key] = value
    return kwargs


def _takes_timedelta(parameter: inspect.Parameter) -> bool:
    return "timedelta" in str(parameter.annotation) and "int" not in str(parameter.annotation)
