"""OfficeFlow's alert rules with Prometheus' own promtool: the rules file is valid, each alert fires on the series
it is meant for (and not on the others: config/prometheus/officeflow-rules.test.yaml), a broken rule is refused,
and the chart's PrometheusRule carries the same rules."""

from __future__ import annotations

import yaml

from tests.harness.chart import find, render
from tests.harness.tools import ROOT, promtool, run

RULES = ROOT / "config" / "prometheus" / "officeflow-rules.yaml"
RULE_TESTS = ROOT / "config" / "prometheus" / "officeflow-rules.test.yaml"


def groups() -> list[dict]:
    return yaml.safe_load(RULES.read_text())["groups"]


def test_promtool_checks_the_rules_file():
    result = run(promtool(), "check", "rules", RULES)
    assert "SUCCESS: 7 rules found" in result.stdout, result.stdout


def test_each_alert_fires_on_its_series_and_only_then():
    result = run(promtool(), "test", "rules", RULE_TESTS)
    assert "SUCCESS" in result.stdout, result.stdout


def test_promtool_refuses_a_broken_rule(tmp_path):
    broken = groups()
    broken[0]["rules"][0]["expr"] = "max by (endpoint (officeflow_inbox_dead_events) > 0"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump({"groups": broken}))
    result = run(promtool(), "check", "rules", path, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "parse error" in result.stdout + result.stderr, result.stdout + result.stderr


def test_the_chart_makes_no_prometheus_rule_unless_asked():
    assert not [d for d in render() if d["kind"] == "PrometheusRule"]


def test_the_charts_prometheus_rule_has_the_rules_file(tmp_path):
    docs = render("--set", "metrics.prometheusRule.enabled=true,events.relay.enabled=true",
                  "--set", "metrics.prometheusRule.labels.release=kube-prometheus-stack")
    rule = find(docs, "PrometheusRule", "officeflow")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"]["groups"] == groups()
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    assert "SUCCESS: 7 rules found" in run(promtool(), "check", "rules", path).stdout


def test_without_a_relay_the_outbox_lag_is_not_an_alert():
    """Without the events relay the outbox keeps every event by design: its age is no incident."""
    rule = find(render("--set", "metrics.prometheusRule.enabled=true"), "PrometheusRule", "officeflow")
    alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert "OfficeFlowOutboxLag" not in alerts
    assert alerts == [r["alert"] for g in groups() for r in g["rules"] if r["alert"] != "OfficeFlowOutboxLag"]
