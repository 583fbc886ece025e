"""The HR events topic (``OFFICEFLOW_HR_EVENTS_TOPIC``): created with the configured partitions and replication
through the Apache Kafka provider's admin hook, and the watcher's skip counts, from the command line:

    python -m operators.hooks.hr_events create-topic   # last line: {"topic": ..., "partitions": 3, "replication": 1}
    python -m operators.hooks.hr_events skipped        # {"topic": ..., "rejected": 0, "ignored": 0}
"""

from __future__ import annotations

import json
import sys

from airflow.providers.apache.kafka.hooks.client import KafkaAdminClientHook

from include.officeflow import inbound_events as inbound
from include.officeflow.settings import get_settings


def create_topic() -> dict[str, object]:
    """Create the HR events topic unless it exists (an existing topic is left as it is)."""
    settings = get_settings()
    if not settings.hr_events_topic:
        raise SystemExit("OFFICEFLOW_HR_EVENTS_TOPIC is not set")
    spec = (settings.hr_events_topic, settings.hr_events_topic_partitions, settings.hr_events_topic_replication)
    KafkaAdminClientHook(kafka_config_id=settings.hr_events_kafka_conn_id).create_topic([spec])
    return {"topic": spec[0], "partitions": spec[1], "replication": spec[2]}


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command == "create-topic":
        print(json.dumps(create_topic()))
    elif command == "skipped":
        print(json.dumps({"topic": get_settings().hr_events_topic, **inbound.skipped()}))
    else:
        print("usage: python -m operators.hooks.hr_events create-topic|skipped", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
