"""Whether `./run.sh dev` starts the events relay: `python -m plugins.officeflow_events.relay configured` (exit 0
and the brokers when the Kafka connection exists and names brokers, else exit 1 and why), through
:func:`kafka_configured`, which looks the connection up as the relay does (the Task SDK, no database)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from plugins.officeflow_events.relay import kafka_configured
from tests.harness.environment import REPO_ROOT

KAFKA = json.dumps({"conn_type": "kafka", "extra": {"bootstrap.servers": "kafka-1:9092,kafka-2:9092"}})


@pytest.fixture
def no_kafka(monkeypatch):
    for name in list(os.environ):
        if name.startswith("AIRFLOW_CONN_KAFKA"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_a_kafka_connection_with_brokers_starts_the_relay(no_kafka):
    no_kafka.setenv("AIRFLOW_CONN_KAFKA_DEFAULT", KAFKA)
    assert kafka_configured() == (True, "connection 'kafka_default': kafka-1:9092,kafka-2:9092")


def test_without_the_connection_the_relay_stays_off(no_kafka):
    configured, reason = kafka_configured()
    assert not configured
    assert reason == "no Airflow connection 'kafka_default' (AirflowNotFoundException)"


def test_a_connection_without_brokers_does_not_start_it(no_kafka):
    no_kafka.setenv("AIRFLOW_CONN_KAFKA_DEFAULT", json.dumps({"conn_type": "kafka", "extra": {"acks": "all"}}))
    assert kafka_configured() == (False, "connection 'kafka_default' has no bootstrap.servers in its extra")


def test_the_connection_id_setting_is_the_one_checked(no_kafka, settings_env):
    settings_env.setenv("OFFICEFLOW_EVENTS_KAFKA_CONN_ID", "kafka_events")
    no_kafka.setenv("AIRFLOW_CONN_KAFKA_DEFAULT", KAFKA)  # another id: not the relay's
    assert kafka_configured()[0] is False
    no_kafka.setenv("AIRFLOW_CONN_KAFKA_EVENTS", KAFKA)
    assert kafka_configured() == (True, "connection 'kafka_events': kafka-1:9092,kafka-2:9092")


@pytest.mark.parametrize(("kafka", "code", "says"), [(KAFKA, 0, "kafka-1:9092"), (None, 1, "no Airflow connection")],
                         ids=["configured", "absent"])
def test_the_command_run_sh_dev_calls_answers_by_exit_code(kafka, code, says, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_KAFKA")}
    env.update(PYTHONPATH=str(REPO_ROOT), AIRFLOW_HOME=str(tmp_path))
    if kafka:
        env["AIRFLOW_CONN_KAFKA_DEFAULT"] = kafka
    result = subprocess.run([sys.executable, "-m", "plugins.officeflow_events.relay", "configured"], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == code, result.stderr
    assert says in result.stdout


def test_run_sh_dev_starts_the_relay_through_that_command_and_says_when_it_is_off():
    script = (REPO_ROOT / "run.sh").read_text()
    function = script[script.index("start_relay_if_kafka() {"):]
    function = function[:function.index("\n}\n")]
    assert 'if reason="$(python -m plugins.officeflow_events.relay configured' in function
    assert "start relay python -m plugins.officeflow_events.relay" in function  # start: in PIDS, stopped on Ctrl-C
    assert "the outbox keeps every event" in function
    dev = script[script.index("cmd_dev() {"):]
    dev = dev[:dev.index("\n}\n")]
    # called directly (a $(...) subshell would lose the relay's pid), after the trap that stops everything
    assert "\n  start_relay_if_kafka\n" in dev and dev.index("trap stop_all") < dev.index("start_relay_if_kafka")
    assert "$RELAY_STATUS" in dev
