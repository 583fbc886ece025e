"""config/grafana/officeflow-dashboard.json: valid JSON in the shape Grafana imports (panels on the 24-column grid,
targets with refIds, a Prometheus datasource variable every query uses), and every PromQL expression names only
OfficeFlow's metrics (docs/observability.md), each of the issue's metrics on some panel."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.harness.environment import REPO_ROOT

DASHBOARD = REPO_ROOT / "config" / "grafana" / "officeflow-dashboard.json"
#: The metrics the dashboard may chart (the gateway's /officeflow/metrics).
METRICS = {
    "officeflow_http_requests_total", "officeflow_http_request_duration_seconds",
    "officeflow_workflow_executions_total", "officeflow_webhook_events_total",
    "officeflow_inbox_pending_events", "officeflow_inbox_oldest_pending_age_seconds", "officeflow_inbox_dead_events",
    "officeflow_outbox_unsent_events", "officeflow_outbox_oldest_unsent_age_seconds",
    "officeflow_approvals_waiting", "officeflow_approvals_oldest_waiting_age_seconds", "officeflow_email_deliveries",
}
#: Each of these has a panel (the issue's list: requests, latency, executions, webhooks, lag, approvals).
REQUIRED = {
    "officeflow_http_requests_total", "officeflow_http_request_duration_seconds",
    "officeflow_workflow_executions_total", "officeflow_webhook_events_total",
    "officeflow_inbox_oldest_pending_age_seconds", "officeflow_outbox_oldest_unsent_age_seconds",
    "officeflow_approvals_waiting",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
PANEL_TYPES = {"row", "timeseries", "stat", "gauge", "bargauge", "table"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
                "offset", "inf", "nan"}
VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)[^}]*\}")


def load() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # a collapsed row holds its panels
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are not functions, keywords, label names
    (in ``{...}``, ``by (...)`` and the like), strings, durations or numbers."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])[A-Za-z_:][\w:]*", text):
        name = match.group(0)
        rest = text[match.end():].lstrip()
        if rest.startswith("(") or name.lower() in PROMQL_WORDS:
            continue  # a function call (sum, rate, histogram_quantile ...) or a keyword
        names.add(name)
    return names


def base_metric(name: str) -> str:
    if name not in METRICS:
        for suffix in HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and name[: -len(suffix)] in METRICS:
                return name[: -len(suffix)]
    return name


def test_the_metric_name_parser():
    assert metric_names('sum by (le, route) (rate(officeflow_http_request_duration_seconds_bucket'
                        '{route=~"$route"}[$__rate_interval])) / clamp_min(sum(x_total), 1e-9)') == {
        "officeflow_http_request_duration_seconds_bucket", "x_total"}
    assert metric_names('max(a) or on(workflow_id) b offset 5m') == {"a", "b"}


def test_the_dashboard_has_grafanas_shape():
    dashboard = load()
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    assert dashboard["time"] == {"from": "now-24h", "to": "now"}
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, variable["name"]
            assert {base_metric(n) for n in metric_names(variable["definition"].replace("label_values", ""))
                    if n.startswith("officeflow_")} <= METRICS

    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    charted = [panel for panel in panels(dashboard) if panel["type"] != "row"]
    assert len(charted) >= 10
    for panel in panels(dashboard):
        assert panel["type"] in PANEL_TYPES, panel["title"]
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in ("x", "y", "w", "h")), panel["title"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
    for panel in charted:
        assert panel["title"] and panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        targets = panel["targets"]
        assert targets, panel["title"]
        assert len({t["refId"] for t in targets}) == len(targets), panel["title"]
        for target in targets:
            assert target["expr"].strip() and target["datasource"] == panel["datasource"], panel["title"]
            for used in VARIABLE.findall(target["expr"]):
                name = used[0] or used[1]
                assert name.startswith("__") or name in variables, (panel["title"], name)


@pytest.mark.parametrize("panel", [p for p in panels(load()) if p["type"] != "row"], ids=lambda p: p["title"])
def test_every_query_names_only_officeflow_metrics(panel):
    for target in panel["targets"]:
        names = metric_names(target["expr"])
        assert names, target["expr"]
        assert {base_metric(name) for name in names} <= METRICS, target["expr"]


def test_each_metric_of_the_issue_has_a_panel():
    used = {base_metric(name) for panel in panels(load()) for target in panel.get("targets", [])
            for name in metric_names(target["expr"])}
    assert used >= REQUIRED, REQUIRED - used
    histogram = {name for panel in panels(load()) for target in panel.get("targets", [])
                 for name in metric_names(target["expr"]) if name.endswith("_bucket")}
    assert histogram == {"officeflow_http_request_duration_seconds_bucket"}
