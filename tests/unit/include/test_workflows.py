"""Declarative workflow definitions: every problem kind (all listed at once), the DAG they become, and
run conf checks. The DAG factory (bundled YAML + store, broken definitions skipped, store down) is tested in
tests/integration/include/test_workflow_factory.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from include.officeflow import workflows
from include.officeflow.workflows import WorkflowInvalid, check_conf
from operators import declarative
from operators.declarative import build_dag, validate
from tests.harness.environment import REPO_ROOT
from tests.harness.workflows import good


def problems_of(definition: Any, **kwargs: Any) -> list[dict[str, str]]:
    with pytest.raises(WorkflowInvalid) as caught:
        validate(definition, **kwargs)
    return caught.value.problems


def test_a_valid_definition_is_normalised():
    checked = validate(good())
    assert checked["organization_id"] == "default" and checked["tags"] == [] and checked["default_args"] == {}
    assert checked["nodes"][0]["depends_on"] == []


def test_every_problem_is_listed_at_once():
    bad = good(name="Contractor Welcome", colour="blue", trigger={"type": "schedule", "cron": "every monday"},
               tags=["ok", "not ok!"], default_args={"retries": 0, "pool": "x"})
    bad["params"]["age"] = {"type": "integr"}
    bad["params"]["team"] = {"type": "string", "default": 3}
    bad["params"]["bad-name"] = {"type": "string"}
    bad["nodes"] = [
        {"id": "render", "type": "render_document", "config": {"template": "welcome_pack", "colour": "red"}},
        {"id": "render", "type": "email", "config": {"template": "welcome", "to": "x@example.com"}},
        {"id": "fax", "type": "fax_machine", "config": {}},
        {"id": "a", "type": "slack_message", "config": {"text": "x", "channel": "#x"}, "depends_on": ["b", "ghost"]},
        {"id": "b", "type": "slack_message", "config": {"text": "x", "channel": "#x", "retries": 99},
         "depends_on": ["a"]},
        {"id": "c", "type": "slack_message", "config": {"text": "x", "channel": "#x", "trigger_rule": "sometimes"},
         "depends_on": ["c"]},
    ]
    problems = problems_of(bad)
    by_path = {p["path"]: p["message"] for p in problems}
    assert set(by_path) == {
        "colour", "name", "trigger.cron", "tags[1]", "default_args.retries", "default_args.pool",
        "params.age.type", "params.team.default", "params.bad-name",
        "nodes[0].config.colour", "nodes[0].config.logical_key", "nodes[0].config.title",
        "nodes[1].id", "nodes[2].type", "nodes[3].depends_on[1]", "nodes[4].config.retries",
        "nodes[5].config.trigger_rule", "nodes[5].depends_on[0]", "nodes",
        "params.email", "params.age",  # a scheduled workflow's params need defaults
    }, problems
    assert "unknown config key 'colour'" in by_path["nodes[0].config.colour"]
    assert by_path["nodes[0].config.colour"].startswith("node 'render'")
    assert "missing required config key 'title'" in by_path["nodes[0].config.title"]
    assert "duplicate node id 'render'" in by_path["nodes[1].id"]
    assert "unknown node type 'fax_machine'" in by_path["nodes[2].type"]
    assert "'ghost', which is not a node" in by_path["nodes[3].depends_on[1]"]
    assert by_path["nodes"] == "dependency cycle: a -> b -> a" or by_path["nodes"] == "dependency cycle: b -> a -> b"
    assert "depends on itself" in by_path["nodes[5].depends_on[0]"]
    assert "3 is not of type 'string'" in by_path["params.team.default"]


@pytest.mark.parametrize(("trigger", "path"), [
    ({"type": "cron"}, "trigger.type"),
    ({"type": "schedule"}, "trigger.cron"),
    ({"type": "schedule", "cron": "@fortnightly"}, "trigger.cron"),
    ({"type": "webhook"}, "trigger.endpoint_id"),
    ({"type": "manual", "cron": "@daily"}, "trigger.cron"),
    ("manual", "trigger"),
])
def test_bad_triggers(trigger, path):
    definition = good(trigger=trigger)
    definition["params"]["email"]["default"] = "it@example.com"
    assert [p["path"] for p in problems_of(definition)] == [path]


def test_scheduled_workflows_need_defaults_for_every_param():
    problems = problems_of(good(trigger={"type": "schedule", "cron": "@daily"}))
    assert problems == [{"path": "params.email", "message": "a scheduled workflow's params all need a default"}]


def test_durations_are_seconds_in_a_definition():
    definition = good(nodes=[{"id": "ask", "type": "slack_approval",
                              "config": {"subject": "Go?", "approvers": ["boss@example.com"], "channel": "#x",
                                         "response_timeout": 600}}])
    dag = build_dag(definition)
    assert dag.task_dict["ask"].response_timeout == timedelta(minutes=10)


def test_local_files_are_out_of_reach():
    definition = good(nodes=[
        {"id": "store", "type": "store_document", "config": {"path": "/etc/passwd", "logical_key": "k", "title": "t"}},
        {"id": "user", "type": "provision_user", "config": {"person": {}, "provider": "okta", "groups_file": "/x"}},
        {"id": "mail", "type": "email", "config": {"template": "welcome", "to": "a@example.com",
                                                   "attachments": [{"filename": "x", "path": "/etc/hosts"}]}}])
    assert {p["path"] for p in problems_of(definition)} == {
        "nodes[0].config.path", "nodes[1].config.groups_file", "nodes[2].config.attachments[0].path"}


def test_other_shapes_are_refused_with_a_path():
    assert problems_of(["not", "an", "object"]) == [{"path": "", "message": "a workflow definition must be an object"}]
    assert [p["path"] for p in problems_of(good(nodes=[]))] == ["nodes"]
    assert [p["path"] for p in problems_of(good(params={"x": "string"}))] == ["params.x"]
    node_problems = problems_of(good(nodes=[{"id": "a", "type": "email", "config": [], "depends_on": "b",
                                              "when": "now"}]))
    assert {p["path"] for p in node_problems} >= {"nodes[0].config", "nodes[0].depends_on", "nodes[0].when"}


def test_names_of_bundled_python_workflows_are_reserved():
    ids = workflows.python_dag_ids()
    assert {"employee_onboarding", "identity_provisioning", "officeflow_approval_smoke"} <= ids
    assert "new_contractor_welcome" not in ids  # the factory's YAML workflows are not Python DAGs
    problems = problems_of(good(name="employee_onboarding"))
    assert problems == [{"path": "name", "message": "'employee_onboarding' is the dag_id of a bundled Python "
                                                    "workflow; choose another name"}]
    assert validate(good(name="employee_onboarding"), reserved=[])["name"] == "employee_onboarding"


def test_an_operator_refusing_its_config_is_reported_for_its_node():
    bad = good()
    bad["nodes"][3]["config"] = {"text": "x", "channel": "#x", "user_email": "a@example.com"}
    assert problems_of(bad) == [{"path": "nodes[3].config", "message": "node 'announce': the slack_message operator "
                                 "refused its config: give exactly one of channel or user_email"}]


def test_build_dag_shape_params_and_defaults():
    dag = build_dag(good(tags=["contractors"], default_args={"retries": 2, "retry_delay_seconds": 10}))
    assert dag.dag_id == "contractor_welcome" and dag.description == "Welcome a contractor"
    assert dag.tags == {"officeflow", "declarative", "contractors"} and dag.catchup is False
    assert dag.is_paused_upon_creation is False and dag.schedule is None
    assert {t.task_id: t.upstream_task_ids for t in dag.tasks} == {
        "render": set(), "share": {"render"}, "welcome": {"render"}, "announce": {"share", "welcome"}}
    assert type(dag.task_dict["render"]).__name__ == "RenderDocumentOperator"
    welcome = dag.task_dict["welcome"]
    assert welcome.to == "{{ params.email }}" and welcome.retries == 5
    assert welcome.execution_timeout == timedelta(seconds=120) and welcome.trigger_rule == "all_done"
    assert dag.task_dict["render"].retries == 2 and dag.task_dict["render"].retry_delay == timedelta(seconds=10)
    assert dag.task_dict["share"].expires_in == 3600
    email, first_name = dag.params.get_param("email"), dag.params.get_param("first_name")
    assert email.schema == {"type": "string", "format": "idn-email", "title": "Email"}
    assert first_name.value == "there" and first_name.description == "Shown in the greeting"


@pytest.mark.parametrize(("trigger", "schedule"), [
    ({"type": "schedule", "cron": "0 9 * * 1-5"}, "0 9 * * 1-5"),
    ({"type": "schedule", "cron": "@daily"}, "@daily"),
    ({"type": "webhook", "endpoint_id": "bamboohr-main"}, None),
])
def test_schedule_follows_the_trigger(trigger, schedule):
    definition = good(trigger=trigger)
    definition["params"]["email"]["default"] = "it@example.com"  # nobody supplies params to a scheduled run
    dag = build_dag(definition)
    if schedule is None:
        assert dag.schedule is None
    else:
        assert dag.schedule == schedule and type(dag.timetable).__name__ == "CronTriggerTimetable"


def test_check_conf_lists_every_problem():
    params = validate(good())["params"]
    assert check_conf(params, {"email": "ada@example.com"}) == []
    assert check_conf(params, {"email": "ada@example.com", "unknown": 1}) == []  # as in Airflow
    problems = check_conf({**params, "count": {"type": "integer", "minimum": 1}},
                          {"email": "nope", "first_name": 5, "count": 0})
    assert [p["path"] for p in problems] == ["conf.email", "conf.first_name", "conf.count"]
    assert check_conf(params, {}) == [{"path": "conf.email", "message": "required (the param has no default)"}]
    assert check_conf(params, ["x"]) == [{"path": "conf", "message": "must be an object"}]


def test_bundled_definitions_are_valid():
    names = set()
    for path in workflows.definition_files():
        names.add(validate(workflows.load_definition_file(path))["name"])
    assert {"new_contractor_welcome", "manager_heads_up"} <= names


def test_node_type_reference_comes_from_the_operators():
    reference = {row["type"]: row for row in declarative.node_type_reference()}
    assert set(reference) == set(declarative.NODE_TYPES)
    assert reference["deprovision_user"]["config"]["login"] == "required"
    assert reference["slack_message"]["config"]["conn_id"] == "optional"  # from the _SlackOperator base
    assert "options" not in reference["slack_approval"]["config"]


def test_the_docs_table_lists_every_node_type_and_its_config_keys():
    docs = (REPO_ROOT / "docs" / "workflows.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(" `"): line for line in docs.splitlines() if line.startswith("| `")}
    for reference in declarative.node_type_reference():
        row = rows.get(reference["type"])
        assert row is not None, f"docs/workflows.md has no row for {reference['type']}"
        for key in reference["config"]:
            assert f"`{key}`" in row, f"docs/workflows.md: {reference['type']} lacks config key {key}"


def test_the_documented_definition_is_valid_and_its_form_opens_ready():
    import yaml

    from include.officeflow.workflow_params import form_problems

    docs = (REPO_ROOT / "docs" / "workflows.md").read_text(encoding="utf-8")
    example = yaml.safe_load(docs.split("```yaml", 1)[1].split("```", 1)[0])
    dag = declarative.build_dag(example, reserved=set())
    assert dag.owner == "people-team" and dag.dag_display_name == "New contractor welcome"
    params = {name: param.dump() for name, param in dag.params.items()}
    assert form_problems(params, {"first_name", "email"}) == []


def test_an_empty_default_on_a_non_nullable_field_is_refused():
    definition = {"name": "blocked_form", "nodes": [{"id": "hi", "type": "slack_message",
                                                     "config": {"channel": "#general", "text": "hi"}}],
                  "params": {"department": {"type": "string", "default": "", "title": "Department"},
                             "team": {"type": ["string", "null"], "default": None, "title": "Team"}}}
    with pytest.raises(workflows.WorkflowInvalid) as raised:
        declarative.validate(definition, reserved=set())
    assert [p["path"] for p in raised.value.problems] == ["params.department.default"]
    assert "blocks the Airflow trigger form" in raised.value.problems[0]["message"]


def test_an_empty_optional_param_renders_as_an_empty_string():
    from include.officeflow.templating import blank_for_none

    dag = declarative.build_dag({"name": "blank_param", "params": {"team": {"type": ["string", "null"],
                                                                        "default": None}},
                               "nodes": [{"id": "hi", "type": "slack_message",
                                          "config": {"channel": "#general", "text": "team={{ params.team }}"}}]},
                              reserved=set())
    assert dag.jinja_environment_kwargs == {"finalize": blank_for_none}
    env = dag.get_template_env()
    assert env.from_string("team={{ params.team }}").render(params={"team": None}) == "team="
