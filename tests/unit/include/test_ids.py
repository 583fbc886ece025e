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


def test_ids_made_in_threads_are_all_different():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        batches = list(pool.map(lambda _: [random_uuid() for _ in range(2_000)], range(8)))
    ids = [text for batch in batches for text in batch]
    assert len(set(ids)) == len(ids) == 16_000


def test_a_forked_child_never_repeats_its_parents_next_ids():
    import os

    random_uuid()  # the parent holds unread random bytes at the fork
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child's side)
        os.close(read)
        os.write(write, "\n".join(random_uuid() for _ in range(300)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child_ids = set(pipe.read().split("\n"))
    os.waitpid(child, 0)
    parent_ids = {random_uuid() for _ in range(300)}
    assert len(child_ids) == 300 and not child_ids & parent_ids
