"""OfficeFlow's random ids are version 4 UUIDs in their usual text form, all different."""

from __future__ import annotations

import uuid

from include.officeflow.ids import random_uuid


def test_random_ids_are_version_4_uuids_as_text():
    ids = [random_uuid() for _ in range(10_000)]
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == text and len(text) == 36
    assert len(set(ids)) == len(ids)
    assert {text[14] for text in ids} == {"4"} and {text[19] for text in ids} == set("89ab")
