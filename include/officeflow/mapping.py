"""Declarative payload mapping: provider event document -> DAG run conf, validated against the DAG.

An endpoint's mapping is ``{param_name: JMESPath expression}`` evaluated over the adapter's event
document; expressions that yield ``null`` or an empty string (an HR system's empty field) leave the
param out, so the DAG's default applies.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import lru_cache
from typing import Any, NamedTuple

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.visitor import TreeInterpreter

from include.officeflow.param_schema import Check, compile_check

#: The mapping of OfficeFlow's HR document (``{"employee_id", "action", "fields": {...}}``, what the BambooHR
#: adapter normalises its payloads to, and the ``data`` of an HR event on Kafka) to the HR workflows' params.
HR_DOCUMENT_MAPPING: dict[str, str] = {
    "employee_id": "employee_id",
    "first_name": "fields.firstName",
    "last_name": "fields.lastName",
    "email": "fields.workEmail",
    "personal_email": "fields.homeEmail",
    "department": "fields.department",
    "job_title": "fields.jobTitle",
    "start_date": "fields.hireDate",
    "location": "fields.location",
    "manager": "fields.supervisor",
    "manager_email": "fields.supervisorEmail",
    "termination_date": "fields.terminationDate",
    "event_type": "action",
}


def hr_routes() -> dict[str, str]:
    """The HR lifecycle event types and the workflow each starts (the settings' DAG ids): hires to onboarding,
    terminations and deletions to offboarding, job changes to the role change. Other types start nothing."""
    from include.officeflow.settings import get_settings

    settings = get_settings()
    return {
        "employee.created": settings.onboarding_dag_id,
        "employee.terminated": settings.offboarding_dag_id,
        "employee.deleted": settings.offboarding_dag_id,
        "employee.job_changed": settings.role_change_dag_id,
    }


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


_local = threading.local()


def _interpreter() -> TreeInterpreter:
    """One JMESPath interpreter per thread (``ParsedResult.search`` builds a new one per call)."""
    interpreter = getattr(_local, "interpreter", None)
    if interpreter is None:
        interpreter = _local.interpreter = TreeInterpreter()
    return interpreter


@lru_cache(maxsize=256)
def _parsed_mapping(items: tuple[tuple[str, str], ...]) -> tuple[tuple[str, tuple[str, ...] | None, Any], ...]:
    """A mapping's expressions, parsed once per process rather than on every delivery (13 for the HR mapping: ~5% of
    a delivery's CPU, docs/BENCHMARKS.md): ``(param, field path, parsed)``. A plain field path (``a``, ``a.b.c``,
    what nearly every mapping is) is evaluated as the keys it names (:func:`_walk`), the rest by JMESPath's
    interpreter."""
    return tuple((param, _field_path(expression.parsed), expression.parsed)
                 for param, expression in compile_mapping(dict(items)).items())


def _field_path(parsed: dict[str, Any]) -> tuple[str, ...] | None:
    """The keys of a JMESPath field or chain of fields (``fields.firstName`` → ``("fields", "firstName")``), or None."""
    nodes = parsed["children"] if parsed["type"] == "subexpression" else [parsed]
    if all(node["type"] == "field" for node in nodes):
        return tuple(node["value"] for node in nodes)
    return None


def _walk(keys: tuple[str, ...], document: Any) -> Any:
    """A field path's value, as JMESPath's interpreter gives it: ``null`` past anything that is not an object."""
    value = document
    for key in keys:
        try:
            value = value.get(key)
        except AttributeError:
            return None
    return value


def apply_mapping(mapping: dict[str, str], document: dict[str, Any]) -> dict[str, Any]:
    """Evaluate the mapping; values that are not JSON scalars, lists or objects are refused."""
    conf: dict[str, Any] = {}
    interpreter = _interpreter()
    try:
        parsed_items = _parsed_mapping(tuple(mapping.items()))
    except TypeError:  # an expression that is not a string (unhashable): refused by name, as when not cached
        compile_mapping(mapping)
        raise
    for param, keys, parsed in parsed_items:
        try:
            value = _walk(keys, document) if keys is not None else interpreter.visit(parsed, document)
        except JMESPathError as exc:
            raise MappingError(param, f"evaluation failed: {exc}") from None
        if value is None or value == "":
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value) if param.endswith("_id") else value
        conf[param] = value
    return conf


class CachedParams(NamedTuple):
    read_at: float  # time.monotonic() of the read
    dag_hash: str | None  # the serialised version they were read from (None: the DAG is not serialised)
    params: dict[str, tuple[Any, Check]] | None  # name -> (default, compiled schema check)


def latest_dag_hash(dag_id: str, session: Any) -> str | None:
    """The hash of the DAG's latest serialised version (Airflow's pick of the latest: the highest version number),
    ``None`` when it is not serialised: a query of one indexed row and one short column, not the DAG's JSON."""
    from airflow.models.dag_version import DagVersion
    from airflow.models.serialized_dag import SerializedDagModel
    from sqlalchemy import select

    return session.scalar(select(SerializedDagModel.dag_hash)
                          .join(DagVersion, SerializedDagModel.dag_version_id == DagVersion.id)
                          .where(SerializedDagModel.dag_id == dag_id)
                          .order_by(DagVersion.version_number.desc()).limit(1))


class ParamsValidator:
    """Validates a conf against the latest serialised version of a DAG's params.

    Airflow's own ``params.validate()`` re-checks every JSON schema on each call (~10 ms for a dozen
    params); on the delivery path the schemas are compiled once (include/officeflow/param_schema.py) and
    a DAG's params cached for ``ttl`` seconds, then re-read only when the DAG's latest serialised version changed
    (its hash: one small query, where deserialising the DAG to read its params took 0.1-1.3 s of CPU in a
    background thread of the gateway's worker, every ``ttl``, and held the event loop's thread from the GIL for as
    long, docs/BENCHMARKS.md fourth round). The rules are Airflow's: the conf value (or the param's
    default) must exist and match the param's schema, with format checks. Airflow validates once more
    when the dispatcher creates the run, so a drift between the two can only turn into a ``rejected``
    event, never a bad run.
    """

    def __init__(self, ttl_seconds: float = 10.0) -> None:
        self.ttl = ttl_seconds
        self._cache: dict[str, CachedParams] = {}
        self._lock = threading.Lock()
        self._refreshing: set[str] = set()
        self._loading: dict[str, threading.Lock] = {}

    def missing(self, dag_id: str) -> bool:
        """Whether nothing is cached for the DAG yet: :meth:`validate` would read Airflow's metadata DB first."""
        with self._lock:
            return dag_id not in self._cache

    def refresh(self, dag_id: str) -> None:
        """Read the DAG's params unless cached (blocking I/O: an async caller runs it in a worker thread). One read
        per DAG at a time: the first burst of deliveries after a start waits for one read instead of each
        deserialising the DAG (16 at once took ~6 s each on 2 cores, docs/BENCHMARKS.md)."""
        with self._lock:
            loading = self._loading.setdefault(dag_id, threading.Lock())
        with loading:
            if self.missing(dag_id):
                self._cache_params(dag_id)

    def _compiled(self, dag_id: str) -> dict[str, tuple[Any, Check]] | None:
        """The cached params; read now when none are cached. Stale ones are still used while one background
        thread reads them again: under load, every delivery seeing them stale used to start its own read and
        deserialisation of the DAG (bench/gateway_bench.py's profile: 64% of a worker's CPU)."""
        with self._lock:
            cached = self._cache.get(dag_id)
            stale = cached is not None and time.monotonic() - cached.read_at >= self.ttl
            start_refresh = stale and dag_id not in self._refreshing
            if start_refresh:
                self._refreshing.add(dag_id)
        if cached is None:
            return self._cache_params(dag_id)
        if start_refresh:
            threading.Thread(target=self._refresh_in_background, args=(dag_id,), daemon=True,
                             name="officeflow-params-refresh").start()
        return cached.params

    def _refresh_in_background(self, dag_id: str) -> None:
        try:
            self._cache_params(dag_id)
        except Exception:  # the stale params stay in use; the next stale read tries again
            logging.getLogger(__name__).warning("Could not re-read the params of DAG %r", dag_id, exc_info=True)
        finally:
            with self._lock:
                self._refreshing.discard(dag_id)

    def _cache_params(self, dag_id: str) -> dict[str, tuple[Any, Check]] | None:
        """Cache the params of the DAG's latest serialised version: the cached ones while its hash is the one they
        were read from, else read from the DAG (``None`` for a DAG not serialised)."""
        now = time.monotonic()
        from airflow.utils.session import create_session

        with create_session() as session:
            dag_hash = latest_dag_hash(dag_id, session)
            with self._lock:
                cached = self._cache.get(dag_id)
            if cached is not None and dag_hash is not None and cached.dag_hash == dag_hash:
                compiled = cached.params
            else:
                compiled = self._read_params(dag_id, session) if dag_hash is not None else None
        with self._lock:
            self._cache[dag_id] = CachedParams(now, dag_hash, compiled)
        return compiled

    def _read_params(self, dag_id: str, session: Any) -> dict[str, tuple[Any, Check]] | None:
        """Deserialise the DAG's latest version and compile its params' schemas (the costly read)."""
        from airflow.models.dagbag import DBDagBag

        dag = DBDagBag().get_latest_version_of_dag(dag_id, session=session)
        if dag is None:
            return None
        return {name: (param.value, compile_check(param.schema)) for name, param in dag.params.items()}

    def validate(self, dag_id: str, conf: dict[str, Any]) -> bool:
        """Raise :class:`MappingError` for an invalid conf; return False when the DAG is unknown yet.

        An unknown DAG is not the event's fault: the event is kept pending and the dispatcher
        validates again when it triggers.
        """
        from airflow.serialization.definitions.notset import is_arg_set

        compiled = self._compiled(dag_id)
        if compiled is None:
            return False
        for name, (default, check) in compiled.items():
            value = conf.get(name, default)
            if not is_arg_set(value):
                raise MappingError(name, "no value passed and the param has no default")
            error = check(value)
            if error is not None:
                raise MappingError(name, error)
        return True
