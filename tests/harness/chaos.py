"""The fault-injection suite's machinery (tests/chaos/): a mixed delivery load, the fault schedule, the checks.

A :class:`Profile` says how many deliveries, over how long, and how long Airflow's run creation fails. The load
(:func:`make_deliveries`) mixes the three adapters (the built-in BambooHR endpoint, a Workday and a Standard
Webhooks endpoint made through the API) with redeliveries of earlier events, bad signatures, stale timestamps,
malformed, oversized and wrongly typed bodies and unknown endpoints, half of it to the api-server and half to the
edge gateway. Each delivery is sent as its sender would: on a dropped connection, a 5xx or a 429 it is sent again
(signed anew) with a growing pause, until it gets another answer. :class:`Faults` injects the schedule and keeps
the window of each fault; :func:`verdict` checks what the stores hold against what the senders were told.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sandbox.bamboohr.samples import sample_hire
from sandbox.bamboohr.sender import signed_headers
from tests.harness.endpoints import generic_headers, workday_headers

#: What each kind of delivery must finally be answered (a valid one: 2xx once its sender's retries are through).
EXPECTED = {"new": 202, "redelivery": 202, "bad_signature": 401, "stale": 401, "malformed": 400,
            "oversized": 413, "wrong_type": 415, "unknown_endpoint": 404}
RETRYABLE = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Profile:
    name: str
    deliveries: int
    seconds: float  # how long the load lasts (deliveries are spread evenly over it)
    run_creation_outage: float  # seconds Airflow's run creation fails
    hires: int  # onboardings run end to end while the services fail
    senders: int = 64  # connections the senders share (each delivery waits for its own retries)

    @classmethod
    def named(cls, name: str) -> Profile:
        profiles = {"short": cls("short", deliveries=1200, seconds=75, run_creation_outage=15, hires=2),
                    "full": cls("full", deliveries=10_000, seconds=300, run_creation_outage=60, hires=4)}
        if name not in profiles:
            raise ValueError(f"unknown chaos profile {name!r}: {', '.join(profiles)}")
        return profiles[name]


@dataclass
class Delivery:
    """One delivery as its sender knows it: where, what kind, the event it carries (``key``), how to sign it."""

    index: int
    kind: str
    adapter: str
    target: str  # "api-server" or "edge"
    path: str
    body: bytes
    key: str  # the employee id it carries: one per event, so it names the event in the inbox and its run's conf
    sign: Callable[[bytes], dict[str, str]]
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def final(self) -> int | None:
        return self.attempts[-1].status if self.attempts else None


@dataclass(frozen=True)
class Attempt:
    at: float  # time.monotonic() when the answer (or the error) came
    status: int | None  # None: no answer (connection refused or dropped)
    error: str = ""


@dataclass
class Endpoints:
    """What the senders were given: the built-in BambooHR key, a Workday and a Standard Webhooks endpoint."""

    bamboohr_key: str
    workday: dict[str, Any]
    generic: dict[str, Any]

    def secrets(self) -> list[str]:
        return [self.bamboohr_key, str(self.workday["secret"]), str(self.generic["secret"])]


def _bamboohr(index: int, employee_id: str, key: str, stale: bool = False, bad: bool = False) -> tuple[
        bytes, Callable[[bytes], dict[str, str]]]:
    payload = sample_hire(employee_id=employee_id, email=f"chaos.{employee_id}@example.com")
    payload["employees"][0]["timestamp"] = "2026-11-01T09:00:00+0000"  # the same event on every redelivery
    body = json.dumps(payload).encode()
    used = "not-the-key-" + key[:8] if bad else key
    return body, lambda b: signed_headers(b, used, int(time.time()) - (3600 if stale else 0))


def make_deliveries(profile: Profile, endpoints: Endpoints, seed: int = 2026) -> list[Delivery]:
    """The load, in sending order: 80 % of the valid share new events, 20 % redeliveries of earlier ones."""
    rng = random.Random(seed)
    deliveries: list[Delivery] = []
    valid: list[Delivery] = []
    bamboohr_path = "/officeflow/webhooks/bamboohr"
    workday_path = endpoints.workday["delivery_path"]
    generic_path = endpoints.generic["delivery_path"]
    for index in range(profile.deliveries):
        target = "api-server" if index % 2 == 0 else "edge"
        roll = rng.random()
        employee = f"7{index:08d}"
        adapter = rng.choice(["bamboohr", "bamboohr", "workday", "generic"])
        if roll < 0.20 and valid:
            kind = "redelivery"
            earlier = rng.choice(valid)
            deliveries.append(Delivery(index, kind, earlier.adapter, target, earlier.path, earlier.body, earlier.key,
                                       earlier.sign))
            continue
        if roll < 0.30:
            kind, adapter = "bad_signature", rng.choice(["bamboohr", "workday", "generic"])
        elif roll < 0.35:
            kind, adapter = "stale", rng.choice(["bamboohr", "generic"])  # Workday's deliveries carry no time
        elif roll < 0.37:
            kind = "malformed"
        elif roll < 0.38:
            kind = "oversized"
        elif roll < 0.39:
            kind = "wrong_type"
        elif roll < 0.40:
            kind = "unknown_endpoint"
        else:
            kind = "new"
        bad, stale = kind == "bad_signature", kind == "stale"
        if adapter == "bamboohr":
            path = bamboohr_path
            body, sign = _bamboohr(index, employee, endpoints.bamboohr_key, stale=stale, bad=bad)
        elif adapter == "workday":
            path, event_id = workday_path, f"WD-{employee}"
            body = json.dumps({"eventId": event_id, "eventType": "Hire", "worker": {
                "id": employee, "firstName": "Grace", "lastName": "Hopper",
                "workEmail": f"chaos.{employee}@example.com",
                "department": "Engineering", "jobTitle": "Engineer", "hireDate": "2026-12-07"}}).encode()
            password = "wrong-password-0000" if bad else str(endpoints.workday["secret"])
            sign = (lambda p: lambda b: workday_headers(p))(password)
        else:
            path, msg_id = generic_path, f"msg_chaos_{employee}"
            body = json.dumps({"type": "employee.created", "data": {
                "id": employee, "first_name": "Ada", "last_name": "Lovelace",
                "email": f"chaos.{employee}@example.com"}}).encode()
            secret = "whsec_" + "A" * 32 if bad else str(endpoints.generic["secret"])
            sign = (lambda s, m, old: lambda b: generic_headers(
                s, b, msg_id=m, timestamp=int(time.time()) - (3600 if old else 0)))(secret, msg_id, stale)
        if kind == "malformed":
            body = b'{"employees": [{"action": "Created", "id": '  # cut off
        elif kind == "oversized":
            body = b'{"pad": "' + b"x" * 1_100_000 + b'"}'
        elif kind == "unknown_endpoint":
            path = f"/officeflow/webhooks/ep_{uuid.UUID(int=rng.getrandbits(128)).hex[:20]}"
        delivery = Delivery(index, kind, adapter, target, path, body, employee, sign)
        if kind == "wrong_type":
            delivery.sign = (lambda s: lambda b: {**s(b), "Content-Type": "text/plain"})(sign)
        deliveries.append(delivery)
        if kind == "new":
            valid.append(delivery)
    return deliveries


class Sender:
    """Sends every delivery at its time, as HR systems do: each sender on its own (one waiting to retry holds up no
    other), again on no answer, a 5xx or a 429 with a growing pause, signed anew, until it gets another answer."""

    def __init__(self, urls: dict[str, str], profile: Profile, give_up_after: float = 300) -> None:
        self.urls = urls
        self.profile = profile
        self.give_up_after = give_up_after

    async def _send(self, client: httpx.AsyncClient, slots: asyncio.Semaphore, delivery: Delivery, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        started = time.monotonic()
        pause = 1.0
        while True:
            # A slot per request in flight: thousands of deliveries waiting in httpx's own pool would cost the
            # pool a scan of every waiter per answer (the load generator, not the servers, would be measured).
            async with slots:
                try:
                    response = await client.post(self.urls[delivery.target] + delivery.path, content=delivery.body,
                                                 headers=delivery.sign(delivery.body))
                    attempt = Attempt(time.monotonic(), response.status_code)
                except httpx.HTTPError as exc:
                    attempt = Attempt(time.monotonic(), None, type(exc).__name__)
            delivery.attempts.append(attempt)
            if attempt.status is not None and attempt.status not in RETRYABLE:
                return
            if time.monotonic() - started > self.give_up_after:
                return
            await asyncio.sleep(random.uniform(0, pause))  # exponential back-off with full jitter
            pause = min(pause * 2, 30)

    async def _all(self, deliveries: list[Delivery], began: float) -> None:
        spacing = self.profile.seconds / max(1, len(deliveries))
        limits = httpx.Limits(max_connections=self.profile.senders, max_keepalive_connections=self.profile.senders)
        async with httpx.AsyncClient(timeout=httpx.Timeout(30, connect=5, pool=None), limits=limits) as client:
            slots = asyncio.Semaphore(self.profile.senders)
            await asyncio.gather(*(self._send(client, slots, d, began + d.index * spacing) for d in deliveries))

    def run(self, deliveries: list[Delivery], during: Callable[[float], None]) -> float:
        """Send everything over the profile's time while ``during(elapsed)`` injects faults; the seconds taken."""
        for url in self.urls.values():  # each server's first answers (imports, caches) before the clock runs
            httpx.get(f"{url}/officeflow/health/ready", timeout=60)
            httpx.post(f"{url}/officeflow/webhooks/bamboohr", content=b"{}", timeout=60)
        began = time.monotonic()
        stop = threading.Event()

        def faults() -> None:
            while not stop.is_set():
                during(time.monotonic() - began)
                stop.wait(0.25)

        injector = threading.Thread(target=faults, name="chaos-faults", daemon=True)
        injector.start()
        try:
            asyncio.run(self._all(deliveries, began))
        finally:
            stop.set()
            injector.join(timeout=120)
        return time.monotonic() - began


class Supervisor:
    """Restarts a component that exited, as Kubernetes restarts a container: ``components`` maps a name to
    (is it running, start it). Counts the restarts it made, by component."""

    def __init__(self, components: dict[str, tuple[Callable[[], bool], Callable[[], None]]]) -> None:
        self.components = components
        self.restarts: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="chaos-supervisor", daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            for name, (running, start) in self.components.items():
                if not running():
                    self.restarts[name] += 1
                    start()

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@dataclass
class Window:
    """When a fault made a dependency unavailable (``until`` once it was back), and to which senders."""

    name: str
    began: float
    until: float | None = None
    targets: tuple[str, ...] = ("api-server", "edge")  # whose answers it may explain
    unavailable: bool = True  # False: a fault no sender should notice (the dispatcher, run creation)

    def covers(self, at: float, target: str, grace: float) -> bool:
        end = (self.until if self.until is not None else float("inf")) + grace
        return self.unavailable and target in self.targets and self.began - grace <= at <= end


class Faults:
    """The schedule: each step runs once, in a thread of its own, when the load's clock passes its time."""

    def __init__(self) -> None:
        self.windows: list[Window] = []
        self._steps: list[tuple[float, str, Callable[[Window], None], dict[str, Any]]] = []
        self._started: set[str] = set()
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []

    def at(self, seconds: float, name: str, step: Callable[[Window], None], **window: Any) -> None:
        self._steps.append((seconds, name, step, window))

    def __call__(self, elapsed: float) -> None:
        for seconds, name, step, window in self._steps:
            if elapsed >= seconds and name not in self._started:
                self._started.add(name)
                opened = Window(name, time.monotonic(), **window)
                self.windows.append(opened)

                def run(step: Callable[[Window], None] = step, opened: Window = opened) -> None:
                    try:
                        step(opened)
                    except Exception as exc:  # the suite fails on it: a fault not injected as scheduled
                        self.errors.append(f"{opened.name}: {type(exc).__name__}: {exc}")
                    opened.until = time.monotonic()

                thread = threading.Thread(target=run, name=f"fault-{name}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def wait(self, timeout: float = 300) -> None:
        for thread in self._threads:
            thread.join(timeout=timeout)

    def schedule_lines(self, began: float, deliveries: list[Delivery]) -> list[str]:
        """Each fault: when (on the load's clock), how long until it was over, and what the senders met meanwhile."""
        lines = []
        for w in self.windows:
            until = w.until or w.began
            met = Counter(str(a.status or a.error) for d in deliveries for a in d.attempts if d.target in w.targets
                          and w.began <= a.at <= until and (a.status is None or a.status >= 500))
            seen = ", ".join(f"{n} x {what}" for what, n in met.most_common()) or "no 5xx, no dropped request"
            lines.append(f"  {w.name:<34} at {w.began - began:6.1f}s for {until - w.began:5.1f}s: {seen}")
        return lines


@contextlib.contextmanager
def run_creation_refused(psql: Callable[[str], str]) -> Iterator[None]:
    """Every INSERT into Airflow's ``dag_run`` fails (as a metadata DB refusing writes would) until the block ends.

    A paused DAG would not do: Airflow 3 creates runs of a paused DAG (they wait, queued)."""
    psql("CREATE OR REPLACE FUNCTION chaos_refuse_run() RETURNS trigger LANGUAGE plpgsql AS "
         "$$ BEGIN RAISE EXCEPTION 'chaos: run creation refused'; END $$; "
         "CREATE TRIGGER chaos_refuse_run BEFORE INSERT ON dag_run FOR EACH ROW EXECUTE FUNCTION chaos_refuse_run()")
    try:
        yield
    finally:
        psql("DROP TRIGGER IF EXISTS chaos_refuse_run ON dag_run; DROP FUNCTION IF EXISTS chaos_refuse_run()")


@dataclass
class Verdict:
    """The figures the suite prints and checks (every count that must be 0 is named as such)."""

    figures: dict[str, int | float | str]
    failures: list[str]

    def lines(self) -> list[str]:
        return [f"  {name:<58} {value}" for name, value in self.figures.items()]


def verdict(deliveries: list[Delivery], windows: list[Window], inbox: list[tuple[str, str, str | None]],
            runs: dict[str, str], logs: dict[str, str], secrets: list[str], grace: float = 5) -> Verdict:
    """``inbox``: (employee id, status, dag run id) per stored event; ``runs``: run id -> the employee id of its
    conf; ``logs``: name -> text of every process's log."""
    figures: dict[str, int | float | str] = {}
    failures: list[str] = []
    kinds = Counter(d.kind for d in deliveries)
    figures["deliveries sent"] = len(deliveries)
    figures["requests (with the senders' retries)"] = sum(len(d.attempts) for d in deliveries)
    for kind in EXPECTED:
        figures[f"  of them {kind}"] = kinds[kind]
    wrong = [d for d in deliveries if d.final != EXPECTED[d.kind]]
    figures["final answer not the expected one (must be 0)"] = len(wrong)
    failures += [f"delivery {d.index} ({d.kind}, {d.adapter}, {d.target}): answered {d.final}, expected "
                 f"{EXPECTED[d.kind]}; attempts {[(a.status, a.error) for a in d.attempts]}" for d in wrong[:10]]
    accepted = {d.key for d in deliveries if d.kind in ("new", "redelivery") and d.final is not None
                and 200 <= d.final < 300}
    stored = Counter(key for key, _, _ in inbox)
    figures["events accepted (2xx, distinct)"] = len(accepted)
    figures["events in the inbox"] = len(stored)
    lost = sorted(accepted - set(stored))
    figures["accepted but not in the inbox: lost (must be 0)"] = len(lost)
    failures += [f"lost: {key}" for key in lost[:10]]
    twice = [key for key, count in stored.items() if count > 1]
    figures["stored more than once (must be 0)"] = len(twice)
    refused_keys = {d.key for d in deliveries if d.kind not in ("new", "redelivery")}
    unverified = sorted(refused_keys & set(stored))
    figures["stored from an unverified or refused request (must be 0)"] = len(unverified)
    failures += [f"stored without a valid delivery: {key}" for key in unverified[:10]]
    by_event = {key: (status, run_id) for key, status, run_id in inbox}
    not_triggered = sorted(key for key in accepted if by_event.get(key, ("", None))[0] != "triggered")
    figures["accepted events without a run: lost (must be 0)"] = len(not_triggered)
    failures += [f"no run for {key}: {by_event.get(key)}" for key in not_triggered[:10]]
    missing_runs = sorted(key for key in accepted if by_event.get(key, ("", None))[1] not in runs)
    figures["runs the inbox names that Airflow does not have (must be 0)"] = len(missing_runs)
    failures += [f"run missing in Airflow for {key}: {by_event.get(key)}" for key in missing_runs[:10]]
    per_event = Counter(runs.values())
    figures["DAG runs created"] = len(runs)
    duplicates = [key for key, count in per_event.items() if count > 1]
    figures["events with more than one run: duplicates (must be 0)"] = len(duplicates)
    failures += [f"duplicate runs for {key}" for key in duplicates[:10]]
    strays = sorted(set(per_event) - accepted)
    figures["runs of no accepted event (must be 0)"] = len(strays)
    failures += [f"run of no accepted event: {key}" for key in strays[:10]]
    unavailable = [(d, a) for d in deliveries for a in d.attempts if a.status is None or a.status >= 500]
    figures["5xx answers or dropped connections"] = len(unavailable)
    figures["  of them 503"] = sum(1 for _, a in unavailable if a.status == 503)
    outside = [(d, a) for d, a in unavailable if not any(w.covers(a.at, d.target, grace) for w in windows)]
    answered = [(d, a) for d, a in outside if a.status is not None]
    figures["  5xx answered outside a dependency's outage (must be 0)"] = len(answered)
    failures += [f"{a.status} to delivery {d.index} ({d.target}) outside every outage" for d, a in answered[:10]]
    dropped = Counter(a.error for _, a in outside if a.status is None)
    figures["  connections dropped or timed out outside an outage"] = (
        ", ".join(f"{n} x {error}" for error, n in dropped.most_common()) or 0)
    figures["429 answers (retried after Retry-After)"] = sum(1 for d in deliveries for a in d.attempts
                                                             if a.status == 429)
    leaks = sorted({name for name, text in logs.items() for secret in secrets if secret and secret in text})
    figures["logs holding a secret (must be 0)"] = len(leaks)
    failures += [f"a secret in the log of {name}" for name in leaks]
    figures["log bytes searched"] = sum(len(text) for text in logs.values())
    return Verdict(figures, failures)


def read_logs(paths: list[Path]) -> dict[str, str]:
    return {str(path): path.read_text(errors="replace") for path in paths if path.is_file()}
