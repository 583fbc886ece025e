"""Declarative workflows: a YAML/JSON definition that becomes a real Airflow DAG.

Non-engineers describe a workflow as data (a trigger, run params as JSON Schema, and nodes that each
name an OfficeFlow operator with its keyword arguments). :func:`check` checks a definition's format and
lists *every* problem at once, so an editor can fix them in one go. The node types (which operator
each builds), the operators' own checks and the DAG builder are at the operators level
(``operators/declarative.py``), used by the DAG factory ``dags/declarative_workflows.py`` for the
bundled YAML files and the workflows stored through the API.

Config values are passed to the operators as they are; in the operators' templated fields Airflow
renders them with Jinja at run time, so ``"{{ params.email }}"`` reads a run param and
``"{{ ti.xcom_pull(task_ids='render')['document_id'] }}"`` reads a field of an upstream node's result.
"""

from __future__ import annotations

import graphlib
import inspect
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from include.officeflow.settings import REPO_ROOT
from include.officeflow.workflow_params import is_required

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{2,62}$")
NODE_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
PARAM_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
TAG_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,50}$")
ORGANIZATION_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
ENDPOINT_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
PYTHON_DAGS_DIR = REPO_ROOT / "dags"
WORKFLOWS_DIR = REPO_ROOT / "include" / "workflows"
FACTORY_FILE = "declarative_workflows.py"
MAX_NODES = 100
MAX_RETRIES = 10
SCHEDULE_PRESETS = frozenset({"@once", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly"})
TOP_LEVEL_KEYS = frozenset({"name", "description", "organization_id", "owner", "trigger", "params", "nodes",
                            "tags", "default_args", "access"})
ROLE_RE = re.compile(r"^[A-Za-z0-9 _.-]{1,64}$")
OWNER_RE = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
DEFAULT_OWNER = "people-team"
NODE_KEYS = frozenset({"id", "type", "config", "depends_on"})
DEFAULT_ARG_KEYS = frozenset({"retries", "retry_delay_seconds"})
# BaseOperator arguments a node may set; durations are whole seconds in a definition.
OPERATOR_ARGS = frozenset({"retries", "trigger_rule", "execution_timeout_seconds", "retry_delay_seconds"})
# Arguments no definition may pass: they are the DAG's (params) or Python objects (callbacks, notifiers).
NEVER_CONFIGURABLE = frozenset({"task_id", "dag", "params", "default_args", "notifiers"})
# Paths on the worker's disk: whoever edits a workflow must not make a task read local files.
LOCAL_FILES = frozenset({"path", "groups_file"})
TRIGGER_RULES = frozenset({
    "all_success", "all_failed", "all_done", "all_done_min_one_success", "all_done_setup_success", "one_success",
    "one_failed", "one_done", "none_failed", "none_skipped", "always", "none_failed_min_one_success",
    "all_skipped",
})

Problem = dict[str, str]


class WorkflowInvalid(ValueError):
    """A definition is invalid; ``problems`` lists every problem as ``{"path", "message"}``."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("invalid workflow: " + "; ".join(f"{p['path']}: {p['message']}" for p in problems))


class NodeSpec(Protocol):
    """What validation needs to know of a node type (the registry lives with the operators:
    ``operators/declarative.py``): the operator's keyword arguments a node may set."""

    @property
    def name(self) -> str: ...

    def arguments(self) -> dict[str, inspect.Parameter]: ...

    def required(self) -> set[str]: ...


def python_dag_ids(dags_dir: Path = PYTHON_DAGS_DIR) -> set[str]:
    """Dag ids of the bundled Python workflows, read from the DAG files' source (never imported here)."""
    found: set[str] = set()
    pattern = re.compile(r"""(?:dag_id\s*=\s*|\b(?:DAG|workflow_dag)\(\s*)["']([A-Za-z0-9_.-]+)["']""")
    for path in sorted(dags_dir.glob("*.py")):
        if path.name not in ("__init__.py", FACTORY_FILE):
            found.update(pattern.findall(path.read_text(encoding="utf-8")))
    return found


# --- validation ---------------------------------------------------------------------------------


class _Problems(list[Problem]):
    def add(self, path: str, message: str) -> None:
        self.append({"path": path, "message": message})


def check(definition: Any, node_types: Mapping[str, NodeSpec], *, reserved: Iterable[str] | None = None
          ) -> dict[str, Any]:
    """Check a definition against the format and ``node_types``; return it normalised (defaults filled
    in) or raise :class:`WorkflowInvalid` listing every problem.

    ``reserved``: names no declarative workflow may take (the bundled Python DAG ids by default). The
    operators' own checks run when the DAG is built (``operators.declarative.validate`` does both).
    """
    return _check(definition, python_dag_ids() if reserved is None else set(reserved), node_types)


def _check(definition: Any, reserved: set[str], node_types: Mapping[str, NodeSpec]) -> dict[str, Any]:
    problems = _Problems()
    if not isinstance(definition, Mapping):
        raise WorkflowInvalid([{"path": "", "message": "a workflow definition must be an object"}])
    for key in sorted(set(definition) - TOP_LEVEL_KEYS):
        problems.add(key, f"unknown field (allowed: {', '.join(sorted(TOP_LEVEL_KEYS))})")
    name = definition.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        problems.add("name", "must match ^[a-z][a-z0-9_]{2,62}$ (lowercase letters, digits, underscores; "
                             "it becomes the DAG id)")
    elif name in reserved:
        problems.add("name", f"{name!r} is the dag_id of a bundled Python workflow; choose another name")
    if not isinstance(definition.get("description", ""), str):
        problems.add("description", "must be a string")
    organization = definition.get("organization_id", "default")
    if not isinstance(organization, str) or not ORGANIZATION_RE.match(organization):
        problems.add("organization_id", "must be 1-64 letters, digits, '_', '.' or '-'")
    owner = definition.get("owner", DEFAULT_OWNER)
    if not isinstance(owner, str) or not OWNER_RE.match(owner):
        problems.add("owner", "must be a team name: lowercase letters, digits and '-' (e.g. people-team)")
    _check_tags(definition.get("tags", []), problems)
    _check_access(definition.get("access", []), problems)
    _check_default_args(definition.get("default_args", {}), problems)
    _check_trigger(definition.get("trigger", {"type": "manual"}), problems)
    _check_params(definition.get("params", {}), problems)
    _check_scheduled_params(definition.get("trigger"), definition.get("params"), problems)
    _check_nodes(definition.get("nodes"), node_types, problems)
    if problems:
        raise WorkflowInvalid(list(problems))
    return {
        "name": name,
        "description": definition.get("description", ""),
        "organization_id": definition.get("organization_id", "default"),
        "owner": definition.get("owner", DEFAULT_OWNER),
        "trigger": dict(definition.get("trigger", {"type": "manual"})),
        "params": {k: dict(v) for k, v in definition.get("params", {}).items()},
        "nodes": [{"id": n["id"], "type": n["type"], "config": dict(n.get("config", {})),
                   "depends_on": list(n.get("depends_on", []))} for n in definition["nodes"]],
        "tags": list(definition.get("tags", [])),
        "access": list(definition.get("access", [])),
        "default_args": dict(definition.get("default_args", {})),
    }


def _check_tags(tags: Any, problems: _Problems) -> None:
    if not isinstance(tags, list):
        problems.add("tags", "must be a list of strings")
        return
    for i, tag in enumerate(tags):
        if not isinstance(tag, str) or not TAG_RE.match(tag):
            problems.add(f"tags[{i}]", "must be 1-50 letters, digits or '_.:-'")


def _check_access(access: Any, problems: _Problems) -> None:
    """``access``: roles that may see and trigger the workflow, besides those its tags grant."""
    if not isinstance(access, list):
        problems.add("access", "must be a list of role names")
        return
    for i, role in enumerate(access):
        if not isinstance(role, str) or not ROLE_RE.match(role):
            problems.add(f"access[{i}]", "must be a role name: 1-64 letters, digits, spaces or '_.-'")


def _check_retries(value: Any, path: str, problems: _Problems) -> None:
    # OfficeFlow's rule for every DAG: external steps retry (tests/unit/dags/test_dag_integrity.py).
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_RETRIES:
        problems.add(path, f"must be a whole number from 1 to {MAX_RETRIES}")


def _check_seconds(value: Any, path: str, problems: _Problems) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        problems.add(path, "must be a positive number of seconds")


def _check_default_args(default_args: Any, problems: _Problems) -> None:
    if not isinstance(default_args, Mapping):
        problems.add("default_args", "must be an object")
        return
    for key in sorted(set(default_args) - DEFAULT_ARG_KEYS):
        problems.add(f"default_args.{key}", f"not supported (allowed: {', '.join(sorted(DEFAULT_ARG_KEYS))})")
    if "retries" in default_args:
        _check_retries(default_args["retries"], "default_args.retries", problems)
    if "retry_delay_seconds" in default_args:
        _check_seconds(default_args["retry_delay_seconds"], "default_args.retry_delay_seconds", problems)


def _check_trigger(trigger: Any, problems: _Problems) -> None:
    if not isinstance(trigger, Mapping):
        problems.add("trigger", "must be an object with a type (manual, schedule or webhook)")
        return
    kind = trigger.get("type")
    allowed = {"manual": {"type"}, "schedule": {"type", "cron"}, "webhook": {"type", "endpoint_id", "event_type"}}
    if kind not in allowed:
        problems.add("trigger.type", "must be manual, schedule or webhook")
        return
    for key in sorted(set(trigger) - allowed[kind]):
        problems.add(f"trigger.{key}", f"not allowed for a {kind} trigger")
    if kind == "schedule":
        cron = trigger.get("cron")
        if not isinstance(cron, str) or not _valid_cron(cron):
            problems.add("trigger.cron", f"must be a cron expression (e.g. '0 9 * * 1-5') or one of "
                                         f"{', '.join(sorted(SCHEDULE_PRESETS))}")
    if kind == "webhook" and not (isinstance(trigger.get("endpoint_id"), str)
                                  and ENDPOINT_ID_RE.match(trigger["endpoint_id"])):
        problems.add("trigger.endpoint_id", "must be the id of an OfficeFlow webhook endpoint")
    event_type = trigger.get("event_type")
    if kind == "webhook" and event_type is not None and not (isinstance(event_type, str)
                                                             and 0 < len(event_type) <= 128):
        problems.add("trigger.event_type", "must be the event type (1-128 characters) the endpoint routes here")


def _valid_cron(cron: str) -> bool:
    from croniter import croniter

    return cron in SCHEDULE_PRESETS or (not cron.startswith("@") and croniter.is_valid(cron))


def _check_params(params: Any, problems: _Problems) -> None:
    from jsonschema import FormatChecker
    from jsonschema.validators import validator_for

    if not isinstance(params, Mapping):
        problems.add("params", "must be an object: param name -> JSON Schema")
        return
    for name, schema in params.items():
        path = f"params.{name}"
        if not isinstance(name, str) or not PARAM_NAME_RE.match(name):
            problems.add(path, "a param name must be a Python-style identifier (letters, digits, '_')")
        if not isinstance(schema, Mapping):
            problems.add(path, "must be a JSON Schema object (e.g. {type: string, default: ''})")
            continue
        for key in ("title", "description"):
            if key in schema and not isinstance(schema[key], str):
                problems.add(f"{path}.{key}", "must be a string")
        body = {k: v for k, v in schema.items() if k != "default"}
        validator = validator_for(body)
        schema_errors = list(validator(validator.META_SCHEMA).iter_errors(body))
        for error in schema_errors:
            where = ".".join(str(p) for p in error.absolute_path)
            problems.add(f"{path}.{where}" if where else path, f"invalid JSON Schema: {error.message}")
        if "default" in schema and not schema_errors:
            if schema["default"] in (None, "") and is_required(schema):
                # Airflow's trigger form would keep Trigger disabled while such a field is empty.
                problems.add(f"{path}.default", "an empty default on a field whose type does not allow null "
                                                "blocks the Airflow trigger form: make it optional with "
                                                "type: [string, \"null\"] and default: null")
                continue
            for error in validator(body, format_checker=FormatChecker()).iter_errors(schema["default"]):
                problems.add(f"{path}.default", f"does not match the param's schema: {error.message}")


def _check_scheduled_params(trigger: Any, params: Any, problems: _Problems) -> None:
    # A scheduled run has no one to supply values: Airflow refuses such a DAG.
    if isinstance(trigger, Mapping) and trigger.get("type") == "schedule" and isinstance(params, Mapping):
        for name, schema in params.items():
            if isinstance(schema, Mapping) and "default" not in schema:
                problems.add(f"params.{name}", "a scheduled workflow's params all need a default")


def _check_nodes(nodes: Any, node_types: Mapping[str, NodeSpec], problems: _Problems) -> None:
    if not isinstance(nodes, list) or not nodes:
        problems.add("nodes", "must be a non-empty list of nodes")
        return
    if len(nodes) > MAX_NODES:
        problems.add("nodes", f"at most {MAX_NODES} nodes")
    seen: dict[str, int] = {}
    for i, node in enumerate(nodes):
        if not isinstance(node, Mapping):
            problems.add(f"nodes[{i}]", "must be an object with id, type, config and depends_on")
            continue
        node_id = node.get("id")
        if not isinstance(node_id, str) or not NODE_ID_RE.match(node_id):
            problems.add(f"nodes[{i}].id", "must match ^[a-z][a-z0-9_]{0,62}$ (it becomes the task id)")
        elif node_id in seen:
            problems.add(f"nodes[{i}].id", f"duplicate node id {node_id!r} (also nodes[{seen[node_id]}])")
        else:
            seen[node_id] = i
        for key in sorted(set(node) - NODE_KEYS):
            problems.add(f"nodes[{i}].{key}", f"unknown field (allowed: {', '.join(sorted(NODE_KEYS))})")
        _check_node_config(i, node, node_types, problems)
    graph = _check_depends_on(nodes, set(seen), problems)
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        cycle = list(dict.fromkeys(exc.args[1]))
        problems.add("nodes", f"dependency cycle: {' -> '.join([*cycle, cycle[0]])}")


def _check_node_config(i: int, node: Mapping[str, Any], node_types: Mapping[str, NodeSpec],
                       problems: _Problems) -> None:
    kind, config = node.get("type"), node.get("config", {})
    label = f"node {node.get('id')!r}"
    if not isinstance(config, Mapping):
        problems.add(f"nodes[{i}].config", "must be an object of operator arguments")
        config = {}
    if not isinstance(kind, str) or kind not in node_types:
        problems.add(f"nodes[{i}].type", f"{label}: unknown node type {kind!r} (known: {', '.join(node_types)})")
        return
    arguments = node_types[kind].arguments()
    for key in config:
        if key not in arguments and key not in OPERATOR_ARGS:
            problems.add(f"nodes[{i}].config.{key}", f"{label}: unknown config key {key!r} for {kind} nodes "
                                                     f"(allowed: {', '.join(sorted({*arguments, *OPERATOR_ARGS}))})")
    for key in sorted(node_types[kind].required() - set(config)):
        problems.add(f"nodes[{i}].config.{key}", f"{label}: missing required config key {key!r} for {kind} nodes")
    if "retries" in config:
        _check_retries(config["retries"], f"nodes[{i}].config.retries", problems)
    for key in ("execution_timeout_seconds", "retry_delay_seconds"):
        if key in config:
            _check_seconds(config[key], f"nodes[{i}].config.{key}", problems)
    if kind == "email" and isinstance(config.get("attachments"), list):
        for j, attachment in enumerate(config["attachments"]):
            if isinstance(attachment, Mapping) and "path" in attachment:
                problems.add(f"nodes[{i}].config.attachments[{j}].path", f"{label}: attachments come from 'uri' "
                                                                         "(s3://) or 'content_base64', not local files")
    if "trigger_rule" in config and config["trigger_rule"] not in TRIGGER_RULES:
        problems.add(f"nodes[{i}].config.trigger_rule", f"must be one of {', '.join(sorted(TRIGGER_RULES))}")


def _check_depends_on(nodes: list[Any], ids: set[str], problems: _Problems) -> dict[str, list[str]]:
    graph: dict[str, list[str]] = {}
    for i, node in enumerate(nodes):
        if not isinstance(node, Mapping) or not isinstance(node.get("id"), str):
            continue
        upstream = node.get("depends_on", [])
        if not isinstance(upstream, list):
            problems.add(f"nodes[{i}].depends_on", "must be a list of node ids")
            continue
        graph.setdefault(node["id"], [])
        for j, other in enumerate(upstream):
            if other not in ids:
                problems.add(f"nodes[{i}].depends_on[{j}]", f"node {node['id']!r} depends on {other!r}, "
                                                            "which is not a node of this workflow")
            elif other == node["id"]:
                problems.add(f"nodes[{i}].depends_on[{j}]", f"node {other!r} depends on itself")
            else:
                graph[node["id"]].append(other)
    return graph


# --- building ----------------------------------------------------------------------------------------


def schedule_of(trigger: Mapping[str, Any]) -> str | None:
    """The DAG's schedule: the cron of a schedule trigger; manual and webhook workflows are triggered."""
    return str(trigger["cron"]) if trigger.get("type") == "schedule" else None


def make_params(params: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """``airflow.sdk.Param`` per declared param: a ``default`` becomes the Param's value, the rest its schema."""
    from airflow.sdk import Param

    made = {}
    for name, schema in params.items():
        rest = {k: v for k, v in schema.items() if k not in ("default", "description")}
        if "default" in schema:
            made[name] = Param(schema["default"], description=schema.get("description"), **rest)
        else:
            made[name] = Param(description=schema.get("description"), **rest)
    return made


# --- run conf ---------------------------------------------------------------------------------------


def check_conf(params: Mapping[str, Mapping[str, Any]], conf: Any) -> list[Problem]:
    """Every problem of a run's ``conf`` against the workflow's params (missing, wrong type, format).

    Keys that are not params are allowed, as Airflow allows them.
    """
    from jsonschema import FormatChecker
    from jsonschema.validators import validator_for

    if not isinstance(conf, Mapping):
        return [{"path": "conf", "message": "must be an object"}]
    problems = _Problems()
    for name, schema in params.items():
        if name not in conf and "default" not in schema:
            problems.add(f"conf.{name}", "required (the param has no default)")
            continue
        value = conf.get(name, schema.get("default"))
        body = {k: v for k, v in schema.items() if k != "default"}
        for error in validator_for(body)(body, format_checker=FormatChecker()).iter_errors(value):
            problems.add(f"conf.{name}", error.message)
    return list(problems)


# --- bundled files ---------------------------------------------------------------------------------


def load_definition_file(path: Path) -> Any:
    """A definition from a ``.yaml``/``.yml`` or ``.json`` file (parsed, not validated)."""
    import json

    import yaml

    text = path.read_text(encoding="utf-8")
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


def definition_files(directory: Path = WORKFLOWS_DIR) -> list[Path]:
    """The bundled definition files (``include/workflows/*.yaml``), sorted."""
    return sorted(p for p in directory.glob("*") if p.suffix in (".yaml", ".yml", ".json"))
