"""include/officeflow/metrics.py in multiprocess mode: the counters of a process and of its forked child both count,
with the process id read once (and again after a fork), and the default class kept when values came first."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]

SCRIPT = """
import os
from prometheus_client import values
default = values.ValueClass  # the class prometheus_client chose at its import
{before}
from include.officeflow import metrics
print("default" if values.ValueClass is default else "cached", flush=True)
series = metrics.WEBHOOK_EVENTS.labels("bamboohr", "bamboohr", "accepted")
series.inc()
child = os.fork()
if child == 0:
    if metrics._process_id() != os.getpid():
        os._exit(3)
    for _ in range(3):
        series.inc()
    metrics.HTTP_REQUEST_DURATION.labels("POST", "/webhooks/{{endpoint_id}}").observe(0.01)
    os._exit(0)
assert os.waitpid(child, 0)[1] == 0
series.inc()
text = metrics.exposition().decode()
print([line for line in text.splitlines() if line.startswith(("officeflow_webhook_events_total",
                                                               "officeflow_http_request_duration_seconds_count"))])
print(sorted(name.split("_")[0] for name in os.listdir(os.environ["PROMETHEUS_MULTIPROC_DIR"])))
"""


def run(tmp_path: Path, before: str = "") -> list[str]:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    script = textwrap.dedent(SCRIPT).format(before=before)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT),
                                 "PROMETHEUS_MULTIPROC_DIR": str(shared)})
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.parametrize(("before", "expected_class"), [
    ("", "cached"),
    # A value written before the module was imported: its class keeps the process's file, ours must not open it too.
    ("from prometheus_client import Counter\nCounter('early', 'x').inc()", "default"),
])
def test_parent_and_forked_child_counters_add_up(tmp_path, before, expected_class):
    chosen, lines, files = run(tmp_path, before)
    assert chosen == expected_class
    assert 'officeflow_webhook_events_total{adapter="bamboohr",endpoint="bamboohr",outcome="accepted"} 5.0' in lines
    assert 'officeflow_http_request_duration_seconds_count{method="POST",route="/webhooks/{endpoint_id}"} 1.0' in lines
    assert files.count("'counter") == 2 and files.count("'histogram") == 1
