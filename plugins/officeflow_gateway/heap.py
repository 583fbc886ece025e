"""The gateway worker's heap and Python's cyclic garbage collector.

A worker holds ~1 M long-lived objects (Airflow's modules and settings, the app, and, once deliveries have come,
what they import and cache: a workflow's DAG deserialised for its params, the store's drivers). A full (oldest
generation) collection walks all of them: 0.25-0.32 s with the worker stopped, several times in a 15 s benchmark
run, and every delivery waiting meanwhile was the p99 (docs/BENCHMARKS.md). ``gc.freeze()`` moves the objects alive
at that moment out of the collector's sight; they live as long as the process anyway, and what is created later
is collected as before. It is called twice per process: when the worker starts (the edge's lifespan, the
api-server's plugin app built) and once warm (:data:`WARM_REQUESTS` requests served, the lazily imported modules
and caches in place).
"""

from __future__ import annotations

import gc

WARM_REQUESTS = 1_000  # a few seconds under load; a quiet worker rarely collects its oldest generation anyway

_frozen: set[str] = set()
_served = 0


def freeze(moment: str, *, collect_first: bool = False) -> None:
    """Freeze the heap at ``moment`` (``"start"``, ``"warm"``), once per process whoever asks (tests build many
    apps in one process); ``collect_first``: a full collection before, so that the garbage of the start-up goes
    instead of being frozen with the rest (where a start can afford it: the edge worker's lifespan)."""
    if moment not in _frozen:
        _frozen.add(moment)
        if collect_first:
            gc.collect()
        gc.freeze()


def count_request() -> None:
    """One more request served by this process; the :data:`WARM_REQUESTS`-th freezes the warm heap."""
    global _served
    _served += 1
    if _served == WARM_REQUESTS:
        freeze("warm")
