"""# HR events from Kafka

Starts the HR workflows from HR events published on the Kafka topic `OFFICEFLOW_HR_EVENTS_TOPIC` (docs/events.md,
"Events in"). Airflow's event-driven scheduling: the asset `officeflow_hr_events` has an `AssetWatcher` whose
trigger, the Kafka provider's `AwaitMessageTrigger`, runs in the triggerer and passes each good message on as an
asset event (`include.officeflow.inbound_events.apply_function`; malformed and filtered messages are logged,
counted in the inbox and skipped). Each asset event schedules a run of this DAG:

```text
record_events   the asset's events from the run's first triggering one on: checked, mapped as the webhooks
                are, stored in the inbox (unique per event id: a redelivered message starts nothing)
start_workflow  one per new event: the workflow's run, its id derived from the event (Airflow validates the conf;
                a refused conf makes the inbox event rejected, other failures leave it to the gateway's dispatcher)
```

Without `OFFICEFLOW_HR_EVENTS_TOPIC` the asset has no watcher (no Kafka needed); an asset event posted through
the REST API (`POST /api/v2/assets/events`) still starts this DAG (inbox endpoint `asset:officeflow_hr_events`).
"""

# Airflow parses only the files of dags/ that mention both "airflow" and "dag" (core.dag_discovery_safe_mode)
# and skips the others without a word: this line makes sure this file is one (tests/unit/dags checks each is).

from __future__ import annotations

from typing import Any

from airflow.sdk import Asset, AssetWatcher, task

from include.officeflow import inbound_events as inbound
from include.officeflow.settings import get_settings
from operators.inbox_runs import start_recorded_runs
from operators.workflow_dag import workflow_dag

settings = get_settings()
watchers = []
if settings.hr_events_topic:
    # The Kafka provider's trigger itself, which is what common-messaging's MessageQueueTrigger(scheme="kafka")
    # creates and serialises: importing MessageQueueTrigger loads every installed message-queue provider (Google
    # Pub/Sub, SQS, ...), seconds of DAG parsing for nothing.
    from airflow.providers.apache.kafka.triggers.await_message import AwaitMessageTrigger

    watchers.append(AssetWatcher(name="hr_events_kafka", trigger=AwaitMessageTrigger(
        topics=[settings.hr_events_topic], kafka_config_id=settings.hr_events_kafka_conn_id,
        apply_function="include.officeflow.inbound_events.apply_function",
        poll_interval=settings.hr_events_poll_interval_seconds)))
hr_events = Asset(name="officeflow_hr_events", watchers=watchers)


with workflow_dag(
    "hr_events_from_kafka",
    display_name="HR events from Kafka",
    description="Start the HR workflows from the HR events of the Kafka topic OFFICEFLOW_HR_EVENTS_TOPIC.",
    owner="it-team",
    doc_md=__doc__,
    tags=["events", "it"],
    params={},
    schedule=[hr_events],
    with_run_params=False,
):

    @task(task_display_name="Record the HR events", inlets=[hr_events])
    def record_events(**context: Any) -> list[dict[str, Any]]:
        """The runs to start: one per new, routed event of the asset's events from this run's first triggering one.

        Airflow gives a run the events up to the one that queued it; an event that comes while the scheduler creates
        the run is given to no run until another event queues the next one (apache/airflow#56050), so the last
        event of a burst would wait, maybe for ever. Reading the asset's events from the first triggering one on
        takes those too; the inbox keeps each event once when the next run reads it again."""
        from include.officeflow.store.db import task_store_url

        triggering = context["triggering_asset_events"][hr_events]
        since = min((event.timestamp for event in triggering), default=context["dag_run"].run_after)
        return inbound.record_asset_events(context["inlet_events"][hr_events].after(since),
                                           store_url=task_store_url())

    start_recorded_runs(record_events())
