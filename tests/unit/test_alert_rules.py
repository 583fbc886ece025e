"""config/prometheus/officeflow-rules.yaml by its structure (Prometheus' rule file format): the alerts the issue
asks for, each complete and well formed, and the chart's copy the same file. promtool checks and unit-tests
the rules too (tests/deploy/test_alert_rules.py); the series they read are served (tests/integration/plugins/
test_metrics.py)."""

from __future__ import annotations

import re

import yaml

from tests.harness.environment import REPO_ROOT

RULES = REPO_ROOT / "config" / "prometheus" / "officeflow-rules.yaml"
CHART_COPY = REPO_ROOT / "helm" / "officeflow" / "files" / "officeflow-rules.yaml"
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
EXPECTED = {"OfficeFlowDeadLetteredEvents", "OfficeFlowInboxLag", "OfficeFlowOutboxLag", "OfficeFlowWorkflowsFailing",
            "OfficeFlowApprovalWaitingOverADay", "OfficeFlowHighErrorRate", "OfficeFlowMetricsUnavailable"}


def rules() -> list[dict]:
    document = yaml.safe_load(RULES.read_text())
    assert set(document) == {"groups"}
    found = []
    for group in document["groups"]:
        assert set(group) <= {"name", "interval", "rules"} and group["name"] and group["rules"]
        found.extend(group["rules"])
    return found


def test_the_chart_ships_the_same_rules():
    assert CHART_COPY.read_text() == RULES.read_text()


def test_the_alerts_the_issue_asks_for():
    assert {rule["alert"] for rule in rules()} == EXPECTED


def test_each_rule_is_complete_and_well_formed():
    names = [rule["alert"] for rule in rules()]
    assert len(names) == len(set(names))
    for rule in rules():
        assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}, rule["alert"]
        assert LABEL_NAME.match(rule["alert"]), rule["alert"]
        assert isinstance(rule["expr"], str) and "officeflow_" in rule["expr"], rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
        assert "for" not in rule or DURATION.match(rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, rule["alert"]
        assert all(LABEL_NAME.match(name) for name in rule["labels"]), rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
        for text in rule["annotations"].values():
            assert text.count("{{") == text.count("}}"), rule["alert"]


def test_series_reported_by_every_worker_are_not_summed():
    """The database-backed series are the same from every worker and replica: sum() would count them N times."""
    for rule in rules():
        for name in re.findall(r"officeflow_(?:inbox|outbox|approvals|workflow)\w*", rule["expr"]):
            assert not re.search(rf"sum\s*(by\s*\([^)]*\)\s*)?\(\s*{name}", rule["expr"]), (rule["alert"], name)
