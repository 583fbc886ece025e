"""The harness's Kafka broker (tests/harness/kafka.py) is a real Kafka: a message produced is consumed back, and a
broker stopped and restarted keeps its port, topics and messages (what the relay's "broker down" tests rely on)."""

from __future__ import annotations

import uuid

from confluent_kafka import KafkaError, Producer

from tests.harness.kafka import KafkaBroker


def _produce(broker: KafkaBroker, topic: str, key: bytes, value: bytes, timeout: float = 10) -> KafkaError | None:
    """Produce one message and wait for its delivery report; returns its error (None: delivered)."""
    producer = Producer({**broker.client_config(), "message.timeout.ms": int(timeout * 1000), "log_level": 0})
    reports: list[KafkaError | None] = []

    def delivered(err: KafkaError | None, _message: object) -> None:
        reports.append(err)

    producer.produce(topic, value=value, key=key, on_delivery=delivered)
    producer.flush(timeout + 5)
    assert len(reports) == 1, "no delivery report"
    return reports[0]


def test_a_message_goes_round_trip_with_its_key(kafka_broker: KafkaBroker) -> None:
    topic = f"harness-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topic(topic)
    assert _produce(kafka_broker, topic, b"key-1", b'{"n": 1}') is None
    [message] = kafka_broker.consume(topic, expected=1)
    assert (message.key(), message.value()) == (b"key-1", b'{"n": 1}')


def test_a_stopped_broker_refuses_and_a_restarted_one_keeps_port_and_messages(kafka_broker: KafkaBroker) -> None:
    topic = f"harness-{uuid.uuid4().hex[:8]}"
    kafka_broker.create_topic(topic)
    assert _produce(kafka_broker, topic, b"k", b"before") is None
    port = kafka_broker.port

    kafka_broker.stop_broker()
    assert not kafka_broker.running and not kafka_broker.is_up()
    error = _produce(kafka_broker, topic, b"k", b"while-down", timeout=2)
    assert error is not None and error.code() == KafkaError._MSG_TIMED_OUT

    kafka_broker.restart()
    assert kafka_broker.port == port and kafka_broker.is_up()
    assert _produce(kafka_broker, topic, b"k", b"after") is None
    assert [m.value() for m in kafka_broker.consume(topic, expected=2)] == [b"before", b"after"]
