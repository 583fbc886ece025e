"""Declarative payload mapping: provider event document -> DAG run conf, validated against the DAG.

An endpoint's mapping is ``{param_name: JMESPath expression}`` evaluated over the adapter's event
document; expressions that yield ``null`` leave the param out (the DAG's default applies).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError


class MappingError(Exception):
    """The event cannot become a valid run conf; ``field`` names the param that failed."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def compile_mapping(mapping: dict[str, str]) -> dict[str, Any]:
    """Compile every expression; raise :class:`MappingError` naming the first bad one."""
    compiled = {}
    for param, expression in mapping.items():
        if not isinstance(expression, str) or not expression.strip():
            raise MappingError(param, "expression must be a non-empty JMESPath string")
        try:
            compiled[param] = jmespath.compile(expression)
        except JMESPathError as exc:
            raise MappingError(param, f"invalid JMESPath {expression!r}: {exc}") from None
    return compiled


def apply_mapping(mapping: dict[str, str], document: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the mapping; values that are not JSON scalars, lists or objects are refused."""
    conf: dict[str, Any] = {}
    for param, expression in compile_mapping(mapping).items():
        try:
            value = expression.search(document)
        except JMESPathError as exc:
            raise MappingError(param, f"evaluation failed: {exc}") from None
        if value is None:
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value) if param.endswith("_id") else value
        conf[param] = value
    return conf


class ParamsValidator:
    """Validates a conf against the latest serialised version of a DAG's params (cached briefly)."""

    def __init__(self, ttl_seconds: float = 10.0) -> None:
        self.ttl = ttl_seconds
        self._cache: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def _params(self, dag_id: str) -> Any:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(dag_id)
        if cached and now - cached[0] < self.ttl:
            return cached[1]
        from airflow.models.dagbag import DBDagBag
        from airflow.utils.session import create_session

        with create_session() as session:
            dag = DBDagBag().get_latest_version_of_dag(dag_id, session=session)
        params = dag.params if dag is not None else None
        with self._lock:
            self._cache[dag_id] = (now, params)
        return params

    def validate(self, dag_id: str, conf: dict[str, Any]) -> bool:
        """Raise :class:`MappingError` for an invalid conf; return False when the DAG is unknown yet.

        An unknown DAG is not the event's fault: the event is kept pending and the dispatcher
        validates again when it triggers.
        """
        from airflow.exceptions import ParamValidationError

        params = self._params(dag_id)
        if params is None:
            return False
        try:
            params.deep_merge(conf).validate()
        except ParamValidationError as exc:
            raise MappingError(_failed_param(str(exc)), str(exc)) from None
        return True


def _failed_param(message: str) -> str:
    # Airflow words it "Invalid input for param <name>: <reason>".
    prefix = "Invalid input for param "
    if message.startswith(prefix):
        return message[len(prefix):].split(":", 1)[0]
    return "conf"
