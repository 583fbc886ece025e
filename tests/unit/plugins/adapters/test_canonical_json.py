"""The BambooHR event id's digest reads the entry's canonical JSON: exactly json.dumps's bytes, whatever encodes it."""

from __future__ import annotations

import json
import random

import pytest

from plugins.officeflow_gateway.adapters.bamboohr import _canonical_json

TEXTS = ["Ada", "ada.lovelace@officeflow.test", "2026-12-07", "", "x,1.5", "a:2e5", "[3.0]", "tab\there",
         "new\nline", 'quote"d', "back\\slash", "del\x7f", "nul\x00", "é", "名前", "\u2028",
         "emoji \U0001F600", "/path/", "1e5", "3e4f5a"]
NUMBERS = [0, -1, 7, 10**18, 10**30, -(10**25), 0.0, -0.0, 1.5, 1e-05, 2.5e-7, 1e16, 1e22, 123456.789, -3.25e100, 0.1]


def value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(7 if depth < 3 else 4)
    if kind == 0:
        return rng.choice(TEXTS) + rng.choice(["", str(rng.randrange(1000))])
    if kind == 1:
        return rng.choice(NUMBERS)
    if kind == 2:
        return rng.choice([True, False, None])
    if kind == 3:
        return rng.choice(TEXTS)
    if kind in (4, 5):
        keys = [*TEXTS, "id", "action", "B", "_z", "Z9"]
        return {rng.choice(keys): value(rng, depth + 1) for _ in range(rng.randrange(5))}
    return [value(rng, depth + 1) for _ in range(rng.randrange(4))]


def expected(document: object) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def test_random_documents_give_json_dumps_bytes():
    rng = random.Random(20261205)
    for _ in range(20_000):
        document = value(rng)
        assert _canonical_json(document) == expected(document), document


@pytest.mark.parametrize("document", [
    {"id": "123", "action": "Created", "fields": {"firstName": "Ada", "hireDate": "2026-12-07"}},
    {"score": 1e-05}, {"score": 1e16}, [2.5e-7], 1.5, {"list": [1, 2.0]}, {"name": "Zoë"}, {"x": "a\x7fb"},
    {"b": 1, "a": {"d": None, "c": [True, False]}}, {"B": 1, "a": 2, "_": 3}, {"big": 10**40},
    {"lone": "\ud800"},
])
def test_documents_that_need_json_dumps_get_its_bytes(document):
    assert _canonical_json(document) == expected(document)


def test_a_plain_entry_takes_the_fast_encoder(monkeypatch):
    from plugins.officeflow_gateway.adapters import bamboohr

    entry = {"id": "3e4f5a6b7c8d", "action": "Created", "changedFields": ["firstName", "hireDate"],
             "fields": {"firstName": "Ada", "workEmail": "ada.lovelace.3e4f@officeflow.test", "hireDate": "2026-12-07",
                        "supervisor": None, "level": 3}}
    want = expected(entry)
    monkeypatch.setattr(bamboohr.json, "dumps", lambda *args, **kwargs: pytest.fail("json.dumps was used"))
    assert _canonical_json(entry) == want
