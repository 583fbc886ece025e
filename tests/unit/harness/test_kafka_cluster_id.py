"""The Kafka harness's cluster ids: never one the storage tool reads as an option."""

from __future__ import annotations

import uuid

from tests.harness import kafka


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch):
    dash_first = uuid.UUID(bytes=bytes([0xF8]) + bytes(15))  # 0b111110.. is "-" in URL-safe base64
    plain = uuid.UUID(bytes=bytes([0x10]) + bytes(15))
    drawn = iter([dash_first, dash_first, plain])
    monkeypatch.setattr(kafka.uuid, "uuid4", lambda: next(drawn))
    cluster_id = kafka._cluster_id()
    assert cluster_id == "EAAAAAAAAAAAAAAAAAAAAA" and len(cluster_id) == 22
