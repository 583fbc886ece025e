"""The declarative workflows' DAG factory (dags/declarative_workflows.py): bundled YAML + stored workflows on
the real PostgreSQL store, broken definitions skipped, a store that is down, goes away or hangs. The definitions'
validation and the DAGs they become are tested in tests/unit/include/test_workflows.py."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.harness.environment import REPO_ROOT
from tests.harness.store import truncate
from tests.harness.workflows import good

FACTORY = REPO_ROOT / "dags" / "declarative_workflows.py"


def factory_dags() -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(FACTORY))
    assert bag.import_errors == {}
    return bag.dags


def store_workflow(name: str, definition: dict[str, Any]) -> None:
    """Write a workflow row straight into the store (as an older, laxer release might have)."""
    from include.officeflow.store import Workflow, WorkflowVersion, session_scope

    with session_scope() as session:
        row = Workflow(name=name, latest_version=1, created_by="test", updated_by="test")
        session.add(row)
        session.flush()
        session.add(WorkflowVersion(workflow_id=row.id, version=1, definition=definition, created_by="test"))


@pytest.fixture
def workflow_store(store_url):
    truncate(store_url, "workflow_versions", "workflows", cascade=True)
    yield store_url
    truncate(store_url, "workflow_versions", "workflows", cascade=True)


def test_factory_builds_yaml_and_stored_workflows_and_skips_broken_ones(workflow_store, caplog):
    broken = copy.deepcopy(good(name="broken_one"))
    broken["nodes"][0]["type"] = "fax_machine"
    store_workflow("stored_one", good(name="stored_one"))
    store_workflow("broken_one", broken)
    store_workflow("new_contractor_welcome", good(name="new_contractor_welcome"))  # clashes with a file
    dags = factory_dags()
    assert {"new_contractor_welcome", "manager_heads_up", "stored_one"} <= set(dags)
    assert "broken_one" not in dags
    assert [t.task_id for t in dags["new_contractor_welcome"].tasks] == ["send_welcome", "announce_in_slack"]
    assert "version 1" in (dags["stored_one"].doc_md or "")
    logged = caplog.text
    assert "broken_one" in logged and "new_contractor_welcome" in logged


def test_factory_still_builds_the_yaml_workflows_when_the_store_is_down(settings_env, caplog):
    settings_env.setenv("OFFICEFLOW_DB_URL", "postgresql+psycopg2://nobody@127.0.0.1:9/none")
    dags = factory_dags()
    assert {"new_contractor_welcome", "manager_heads_up"} <= set(dags)
    assert "OfficeFlow store unavailable" in caplog.text


def test_a_store_that_goes_away_leaves_the_stored_workflows_in_airflow(workflow_store, settings_env, tmp_path,
                                                                       caplog):
    """The factory keeps a snapshot of what it read; with the store down it builds from it, so Airflow
    does not mark the stored workflows' DAGs stale for the time the store is away."""
    snapshot = tmp_path / "snapshot.json"
    settings_env.setenv("OFFICEFLOW_WORKFLOWS_SNAPSHOT_FILE", str(snapshot))
    store_workflow("stored_one", good(name="stored_one"))
    assert "stored_one" in factory_dags()
    assert [row["name"] for row in json.loads(snapshot.read_text())] == ["stored_one"]

    settings_env.setenv("OFFICEFLOW_DB_URL", "postgresql+psycopg2://nobody@127.0.0.1:9/none")
    dags = factory_dags()
    assert {"stored_one", "new_contractor_welcome"} <= set(dags)
    assert "version 1" in (dags["stored_one"].doc_md or "")
    assert f"stored workflows built from the snapshot {snapshot}" in caplog.text


def test_a_hung_store_costs_the_dag_processor_a_bounded_wait(settings_env, tmp_path):
    """A store that accepts the connection and never answers: the factory gives up after the timeout."""
    import socket
    import time

    from include.officeflow.workflow_store import definitions_for_factory

    settings_env.setenv("OFFICEFLOW_WORKFLOWS_SNAPSHOT_FILE", str(tmp_path / "none-yet.json"))
    settings_env.setenv("OFFICEFLOW_WORKFLOW_STORE_TIMEOUT_SECONDS", "2")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        started = time.monotonic()
        assert definitions_for_factory(f"postgresql+psycopg2://nobody@127.0.0.1:{port}/none") == []
        assert time.monotonic() - started < 10
