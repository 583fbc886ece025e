"""The Kafka side of the events relay: the Airflow Kafka provider's producer hook on connection ``kafka_default``
(``OFFICEFLOW_EVENTS_KAFKA_CONN_ID``; its extra is the librdkafka config), made idempotent, and the creation of
the ``officeflow.events.<area>`` topics with partitions and replication from the settings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from airflow.providers.apache.kafka.hooks.base import KafkaBaseHook
from airflow.providers.apache.kafka.hooks.produce import KafkaProducerHook
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from include.officeflow.settings import get_settings

TOPIC_PREFIX = "officeflow.events."

#: Set on every producer whatever the connection says: no duplicates from the producer's own retries, and an
#: acknowledgement only once every in-sync replica has the message.
PRODUCER_OVERRIDES: dict[str, Any] = {"enable.idempotence": True, "acks": "all"}


def topic_for(area: str) -> str:
    return f"{TOPIC_PREFIX}{area}"


class EventsProducerHook(KafkaProducerHook):
    """:class:`KafkaProducerHook` for domain events: the connection's config (callbacks, managed-Kafka OAuth and
    all, as the provider builds it) with :data:`PRODUCER_OVERRIDES` and the relay's delivery timeout."""

    def __init__(self, kafka_config_id: str | None = None) -> None:
        super().__init__(kafka_config_id=kafka_config_id or get_settings().events_kafka_conn_id)

    def _build_config(self) -> dict[str, Any]:
        config = super()._build_config()
        config.setdefault("message.timeout.ms", int(get_settings().events_relay_delivery_timeout_seconds * 1000))
        config.update(PRODUCER_OVERRIDES)
        return config

    def admin_client(self) -> AdminClient:
        """An admin client on the connection's own config (without the producer-only settings)."""
        return AdminClient(KafkaBaseHook._build_config(self))

    def ensure_topics(self, areas: Iterable[str], timeout: float = 30) -> list[str]:
        """Create the topics of ``areas`` that do not exist yet (``OFFICEFLOW_EVENTS_TOPIC_PARTITIONS`` /
        ``_REPLICATION``); returns the topic names. An existing topic is left as it is."""
        settings = get_settings()
        topics = sorted({topic_for(area) for area in areas})
        admin = self.admin_client()  # referenced until the results arrive: destroying it cancels them
        existing = set(admin.list_topics(timeout=timeout).topics)
        missing = [NewTopic(t, num_partitions=settings.events_topic_partitions,
                            replication_factor=settings.events_topic_replication) for t in topics if t not in existing]
        if missing:
            for topic, future in admin.create_topics(missing, request_timeout=timeout).items():
                try:
                    future.result(timeout=timeout)
                    self.log.info("Created topic %s", topic)
                except KafkaException as exc:
                    if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":  # another relay was faster
                        raise
        return topics
