"""Gateway throughput benchmark: signed BambooHR deliveries, each gateway mode against a reference server.

    ./run.sh bench-gateway                                  # the full run (~4-6 min on 2 cores), or e.g.:
    ./run.sh bench-gateway --seconds 3                      # a smoke run
    ./run.sh bench-gateway --baseline-ref main~5 --profile  # plus an older api-server, and py-spy profiles

In one run, all on 127.0.0.1, with the same ``wrk`` command and the same PostgreSQL (its durable defaults:
``fsync``, ``synchronous_commit`` and ``full_page_writes`` on), each server with ``--workers`` worker processes:

- **reference** (``bench/reference_server.py``): Starlette + asyncpg doing only what accepting a delivery takes
  (verify the signature, take the event id, one ``INSERT … ON CONFLICT DO NOTHING``, 202): the ceiling;
- **edge**: ``python -m plugins.officeflow_gateway.edge``, the standalone gateway;
- **api-server**: ``airflow api-server`` with the OfficeFlow plugin;
- with ``--baseline-ref REF``, **api-server (baseline REF)**: the api-server of an older commit (a temporary
  ``git worktree`` of REF, this .venv), so before and after are measured on the same machine in the same run.

The gateways run with ``OFFICEFLOW_DISPATCHER_MODE=external`` and no dispatcher: they only accept (store the event
and answer), which is what is measured; no run is created.

Each server is started, then loaded in turn: a warm-up and a probe run (``--probe-seconds``, at the most
connections; not reported), then one run of ``--seconds`` per ``--connections`` count. Before each run the server's
table is emptied and the run's distinct events are signed (so signatures stay inside the 300 s replay window):
three times what the best rate reached so far needs, so that new events do not run out (the report says if they
did). ``bench/signed_deliveries.lua`` sends a new event 80 % of the time and repeats an earlier one 20 % of the
time (``--redelivery``). Reported per server and connection count: accepted/s, p50, p95, p99, non-2xx answers and
socket errors, CPU in cores (CPU seconds per wall second) of the server and of each worker process (with the
connections it held halfway through), of PostgreSQL and of wrk; then the store check of every run (each distinct
event sent stored exactly once, nothing else, no error answer) and the ratios against the reference.
``--profile`` samples one edge and one api-server worker with py-spy during their run at the most connections and
prints where their Python CPU went.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import math
import os
import platform as host
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from sandbox.bamboohr.samples import sample_hire  # noqa: E402
from sandbox.bamboohr.sender import signed_headers  # noqa: E402
from tests.harness.environment import BAMBOOHR_TEST_KEY, base_environment  # noqa: E402
from tests.harness.ports import free_port  # noqa: E402
from tests.harness.postgres import PostgresCluster  # noqa: E402

LUA_SCRIPT = Path(__file__).with_name("signed_deliveries.lua")
REFERENCE_SERVER = Path(__file__).with_name("reference_server.py")
DELIVERY_PATH = "/officeflow/webhooks/bamboohr"
FIRST_EVENTS = 20_000  # for a server's warm-up; running out only repeats events (the store line says so)
MIN_EVENTS = 5000
MAX_EVENTS = 400_000  # ~400 MB of requests in wrk's Lua state, ~10 s of signing: past it, the store line says so
EVENTS_HEADROOM = 3.0  # distinct events signed for a run: this many times what the best rate so far needs
ONE_WORKER_SHARE = 0.8  # a worker with more of the server's CPU than this took (nearly) all connections
TICKS = os.sysconf("SC_CLK_TCK")
BEGAN = time.monotonic()


def say(message: str) -> None:
    """Progress, on stderr (the results go to stdout)."""
    print(f"[bench +{time.monotonic() - BEGAN:.0f}s] {message}", file=sys.stderr, flush=True)


# --- the servers ---------------------------------------------------------------------------------------------

@dataclass
class Server:
    """One server under test: how to start it, where it listens, and the table its accepted events land in."""

    name: str
    command: list[str]
    env: dict[str, str]
    cwd: Path
    port: int
    database: str  # the store database the events land in, and its table
    table: str
    log: Path
    profiled: bool = False  # sampled with py-spy under --profile
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start(server: Server, workers: int, timeout: float = 240) -> None:
    """Start the server in its own session, wait until it answers and every worker has finished starting."""
    with server.log.open("wb") as log:
        server.process = subprocess.Popen(server.command, env=server.env, cwd=server.cwd, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    seen: set[int] = set()
    while not _answers(server.url + DELIVERY_PATH.rsplit("/", 1)[0]):
        if server.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} did not start (exit {server.process.poll()}):\n{log_tail(server)}")
        seen |= set(worker_cpu(server))
        time.sleep(0.3)
    while len(worker_cpu(server)) < workers or not workers_idle(server):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name}: its {workers} workers did not all start:\n{log_tail(server)}")
        seen |= set(worker_cpu(server))
    if len(seen) > workers:
        say(f"{server.name}: uvicorn replaced {len(seen) - workers} worker(s) that started too slowly for its "
            "health check")


def _answers(url: str) -> bool:
    """Whether an HTTP server answers at ``url`` (any status below 500: a 404 or 405 is an answer)."""
    import httpx

    try:
        return httpx.get(url, timeout=5).status_code < 500
    except httpx.HTTPError:
        return False


def worker_cpu(server: Server) -> dict[int, float]:
    """CPU seconds used so far by each of the server's worker processes."""
    assert server.process is not None
    return {pid: proc.cpu for pid, proc in processes().items() if proc.session == server.process.pid and proc.is_worker}


def workers_idle(server: Server, seconds: float = 1.0) -> bool:
    """Whether no worker used more than 3 % of a core during the next ``seconds`` (nothing left to do: the first
    worker answering does not mean the others have finished starting, nor wrk's end that the server has)."""
    before = worker_cpu(server)
    time.sleep(seconds)
    after = worker_cpu(server)
    return all(after[pid] - before.get(pid, 0.0) <= 0.03 * seconds for pid in after)


def stop(server: Server) -> None:
    """SIGTERM to the server's session, SIGKILL after 20 s."""
    process = server.process
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def log_tail(server: Server, lines: int = 30) -> str:
    text = server.log.read_text(errors="replace") if server.log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


# --- the platform: PostgreSQL, the databases, the servers' environments ----------------------------------------

@dataclass
class Platform:
    cluster: PostgresCluster
    tmp: Path
    workers: int
    key: str = BAMBOOHR_TEST_KEY  # base_environment's OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY: every server verifies with it

    def run(self, command: list[str], env: dict[str, str], cwd: Path = REPO_ROOT) -> None:
        result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:4])} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")

    def product_env(self, name: str, code: Path, airflow_db: str, store_db: str) -> dict[str, str]:
        """The environment of a gateway (edge or api-server) running the code in ``code``, as the chart and the
        compose file run it: its workers share their metrics through ``PROMETHEUS_MULTIPROC_DIR``."""
        home = self.tmp / name
        (home / "prometheus").mkdir(parents=True)
        env = {**os.environ, **base_environment(home, self.cluster.url(airflow_db), self.cluster.url(store_db))}
        # Start as a deployed image does, with bytecode: without it every worker compiles Airflow on each start.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update({
            "PYTHONPATH": str(code),
            "AIRFLOW__CORE__DAGS_FOLDER": str(code / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(code / "plugins"),
            "AIRFLOW__FAB__CONFIG_FILE": str(code / "config" / "webserver_config.py"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            "OFFICEFLOW_DISPATCHER_MODE": "external",  # accept only: no run is created while the load runs
            "OFFICEFLOW_WEBHOOK_DEFAULT_RATE_LIMIT_PER_MINUTE": str(10**8),
            "PROMETHEUS_MULTIPROC_DIR": str(home / "prometheus"),
        })
        return env

    def prepare_airflow(self, database: str, code: Path, template: str | None = None) -> None:
        """Airflow's metadata DB with ``code``'s DAGs serialised (the gateway validates a run's conf against the
        DAG's params); from ``template`` (a copy of one already migrated) when given."""
        self.cluster.create_database(database, template=template)
        env = self.product_env(f"airflow-{database}", code, database, database)
        airflow = str(Path(sys.executable).with_name("airflow"))
        if template is None:
            self.run([airflow, "db", "migrate"], env, code)
        self.run([airflow, "dags", "reserialize"], env, code)

    def prepare_store(self, database: str, code: Path) -> None:
        self.cluster.create_database(database)
        env = {**os.environ, "PYTHONPATH": str(code), "OFFICEFLOW_ENV_FILE": os.devnull}
        self.run([sys.executable, "-m", "include.officeflow.store", "migrate", "--url", self.cluster.url(database)],
                 env, code)

    def reference(self) -> Server:
        self.cluster.create_database("reference")
        port = free_port()
        env = {**os.environ, "REFERENCE_DSN": self.cluster.url("reference", driver="postgresql"),
               "OFFICEFLOW_BAMBOOHR_WEBHOOK_KEY": self.key}
        return Server("reference", [sys.executable, str(REFERENCE_SERVER), "--port", str(port),
                                    "--workers", str(self.workers)],
                      env, REPO_ROOT, port, "reference", "reference_events", self.tmp / "reference.log")

    def edge(self, airflow_db: str) -> Server:
        self.prepare_store("store_edge", REPO_ROOT)
        port = free_port()
        env = self.product_env("edge", REPO_ROOT, airflow_db, "store_edge")
        env.update({"OFFICEFLOW_GATEWAY_HOST": "127.0.0.1", "OFFICEFLOW_GATEWAY_PORT": str(port),
                    "OFFICEFLOW_GATEWAY_WORKERS": str(self.workers)})
        return Server("edge", [sys.executable, "-m", "plugins.officeflow_gateway.edge"], env, REPO_ROOT, port,
                      "store_edge", "webhook_events", self.tmp / "edge.log", profiled=True)

    def api_server(self, name: str, code: Path, airflow_db: str, store_db: str, profiled: bool) -> Server:
        self.prepare_store(store_db, code)
        port = free_port()
        env = self.product_env(store_db, code, airflow_db, store_db)
        env["AIRFLOW__API__BASE_URL"] = f"http://127.0.0.1:{port}"
        airflow = str(Path(sys.executable).with_name("airflow"))
        command = [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", str(self.workers)]
        return Server(name, command, env, code, port, store_db, "webhook_events", self.tmp / f"{store_db}.log",
                      profiled=profiled)

    def sql(self, server: Server, statement: str) -> str:
        return self.cluster.psql(statement.format(table=server.table), database=server.database)

    def empty(self, server: Server) -> None:
        """Empty the server's table before a run: its rows afterwards are that run's."""
        self.sql(server, "TRUNCATE {table}")

    def settle(self, server: Server, sent: int, timeout: float = 120) -> None:
        """Wait for the requests still in flight when wrk stopped: until all ``sent`` events are stored, or the
        workers are idle (a request whose connection wrk closed may end without storing its event)."""
        deadline = time.monotonic() + timeout
        while int(self.sql(server, "SELECT count(*) FROM {table}")) < sent and time.monotonic() < deadline:
            if workers_idle(server, 0.5):
                return

    def stored_employees(self, server: Server) -> list[str]:
        """The employee id in each stored event's id (``employee.created:<employee id>:<digest>``)."""
        rows = self.sql(server, "SELECT provider_event_id FROM {table}").splitlines()
        return [row.split(":")[1] for row in rows if row]

    def postmaster(self) -> int:
        return int((self.cluster.data / "postmaster.pid").read_text().split()[0])

    def settings(self) -> str:
        version = self.cluster.psql("SHOW server_version").split()[0]
        shown = ", ".join(f"{name} {self.cluster.psql(f'SHOW {name}')}"
                          for name in ("fsync", "synchronous_commit", "full_page_writes", "wal_sync_method"))
        return f"PostgreSQL {version} ({shown})"


@contextlib.contextmanager
def baseline_worktree(ref: str, tmp: Path) -> Iterator[Path]:
    """A temporary ``git worktree`` of ``ref`` (detached), removed afterwards."""
    path = tmp / "baseline"
    subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "add", "--detach", "--quiet", str(path), ref],
                   check=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "remove", "--force", str(path)],
                       capture_output=True)
        subprocess.run(["git", "-C", str(REPO_ROOT), "worktree", "prune"], capture_output=True)


# --- processes: CPU and connections, from /proc ---------------------------------------------------------------

@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    session: int
    cpu: float  # seconds of CPU (user + system) so far
    reaped_cpu: float  # of its children that exited and it waited for
    cmdline: str

    @property
    def is_worker(self) -> bool:
        """A uvicorn worker: a process uvicorn's supervisor spawned (multiprocessing), not its resource tracker."""
        return "multiprocessing.spawn" in self.cmdline


def processes() -> dict[int, Proc]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state, ppid, pgrp, session, ..., utime (11) ... cstime (14)
        found[int(entry.name)] = Proc(int(entry.name), int(fields[1]), int(fields[3]),
                                      (int(fields[11]) + int(fields[12])) / TICKS,
                                      (int(fields[13]) + int(fields[14])) / TICKS, cmdline)
    return found


@dataclass
class CpuSample:
    server: dict[int, Proc]
    postgres: float


def sample_cpu(server: Server, postmaster: int) -> CpuSample:
    """The server's processes, and PostgreSQL's CPU so far: its live processes' and that of the backends that
    exited (the postmaster reaps them: a pool that closes connections under load does not hide their work)."""
    assert server.process is not None
    procs = processes()
    postgres = sum(p.cpu for p in procs.values() if postmaster in (p.pid, p.ppid))
    return CpuSample(server={pid: p for pid, p in procs.items() if p.session == server.process.pid},
                     postgres=postgres + (procs[postmaster].reaped_cpu if postmaster in procs else 0.0))


def connections_by_worker(port: int, workers: list[int]) -> dict[int, int]:
    """Established connections to ``port`` each worker process holds (its sockets' inodes in /proc/net/tcp)."""
    inodes = set()
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 01: ESTABLISHED
            inodes.add(f"socket:[{fields[9]}]")
    counts = {}
    for pid in workers:
        held = 0
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    held += os.readlink(fd) in inodes
        counts[pid] = held
    return counts


# --- the load: signed deliveries and wrk ----------------------------------------------------------------------

def write_deliveries(path: Path, count: int, key: str) -> list[str]:
    """``count`` distinct BambooHR hires, signed now: one line each, timestamp TAB signature TAB body. Returns
    their employee ids in order (the Lua script sends new events in file order; each event id holds one)."""
    stamp = int(time.time())
    employees = [uuid.uuid4().hex[:12] for _ in range(count)]
    with path.open("w") as out:
        for employee in employees:
            body = json.dumps(sample_hire(employee_id=employee)).encode()
            headers = signed_headers(body, key, stamp)
            out.write(f"{headers['X-BambooHR-Timestamp']}\t{headers['X-BambooHR-Signature']}\t{body.decode()}\n")
    return employees


@dataclass
class Load:
    """What wrk and the Lua script counted in one run (latencies in ms)."""

    seconds: float
    requests: int
    non_2xx: int
    socket_errors: dict[str, int]
    latency: dict[int, float]
    new: int  # distinct events sent
    redelivered: int
    ran_out: int
    wrk_cpu: float

    @property
    def accepted_per_second(self) -> float:
        return (self.requests - self.non_2xx) / self.seconds

    @property
    def errors(self) -> int:
        return self.non_2xx + sum(self.socket_errors.values())


def wrk_command(url: str, connections: int, seconds: float, deliveries: Path, redelivery: float) -> list[str]:
    return ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s",
            "-s", str(LUA_SCRIPT), url, "--", str(deliveries), str(redelivery)]


def run_wrk(command: list[str], output: Path, during: Callable[[], None]) -> Load:
    """Run wrk, call ``during`` while it runs, and parse the script's ``bench`` line; wrk's CPU from its rusage."""
    with output.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        during()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if process.returncode is None:
            process.kill()
            process.wait()
    report = output.read_text()
    match = re.search(r"^bench (.*)$", report, re.MULTILINE)
    if process.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{report[-2000:]}")
    values = {key: int(value) for key, value in (pair.split("=") for pair in match.group(1).split())}
    return Load(
        seconds=values["duration_us"] / 1e6, requests=values["requests"], non_2xx=values["non_2xx"],
        socket_errors={name: values[name] for name in ("connect", "read", "write", "timeout") if values[name]},
        latency={p: values[f"p{p}_us"] / 1000 for p in (50, 75, 90, 95, 99)},
        new=values["new"], redelivered=values["redelivered"], ran_out=values["ran_out"],
        wrk_cpu=usage.ru_utime + usage.ru_stime)


# --- profiling: py-spy on one worker --------------------------------------------------------------------------

def start_profile(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    return subprocess.Popen([py_spy, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))),
                             "--rate", "100", "--gil", "--nonblocking", "--nolineno", "--format", "raw",
                             "--output", str(output)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def top_frames(raw: Path, top: int = 12) -> list[str]:
    """Where the worker's Python CPU went: the innermost frame of each sample holding the GIL (own time), by
    function and by package; from py-spy's raw format (``frame;frame;... count`` a line, outermost first)."""
    by_function: collections.Counter[str] = collections.Counter()
    by_package: collections.Counter[str] = collections.Counter()
    for row in raw.read_text().splitlines():
        stack, _, count = row.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaf = stack.rsplit(";", 1)[-1]
        by_function[leaf] += int(count)
        parts = leaf[leaf.rfind("(") + 1:].rstrip(")").split("/")
        by_package["/".join(parts[:2] if parts[0] in ("plugins", "include", "operators") else parts[:1])] += int(count)
    total = sum(by_function.values())
    if not total:
        return ["  (no samples)"]
    lines = [f"  {total} samples holding the GIL; own time by function:"]
    lines += [f"    {count / total:6.1%}  {frame}" for frame, count in by_function.most_common(top)]
    lines.append("  own time by package or module:")
    lines += [f"    {count / total:6.1%}  {package}" for package, count in by_package.most_common(top)]
    return lines


# --- one run: load a server and check its store ---------------------------------------------------------------

@dataclass
class StoreCheck:
    """The server's table after a run against the distinct events the run sent."""

    rows: int
    distinct: int  # distinct event ids among the rows
    missing: int  # sent, not stored
    unexpected: int  # stored, not sent in this run
    unanswered: int  # requests in flight when wrk stopped (sent, no answer): their events may be missing

    def ok(self, load: Load) -> bool:
        """Every distinct event stored exactly once, nothing else, no error answer; only events of requests still
        unanswered when wrk stopped (closing its connections) may be missing."""
        return (self.rows == self.distinct and self.unexpected == 0 and self.missing <= self.unanswered
                and load.errors == 0)


def check_store(platform: Platform, server: Server, employees: list[str], load: Load) -> StoreCheck:
    unanswered = max(0, load.new + load.redelivered - load.requests)
    platform.settle(server, load.new)
    stored = platform.stored_employees(server)
    sent = set(employees[:load.new])
    return StoreCheck(rows=len(stored), distinct=len(set(stored)), missing=len(sent - set(stored)),
                      unexpected=len(set(stored) - sent), unanswered=unanswered)


@dataclass
class Run:
    server: str
    connections: int
    load: Load
    store: StoreCheck
    server_cpu: float  # cores: CPU seconds per wall second
    postgres_cpu: float
    workers: dict[int, tuple[float, int]]  # pid -> (cores, connections held)
    kind: str = "measured"  # or "warm-up", "probe": not in the results table, but checked
    profile: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.store.ok(self.load)


def measure(platform: Platform, server: Server, connections: int, seconds: float, events: int,
            redelivery: float, profile: bool = False, kind: str = "measured") -> Run:
    """One wrk run against ``server``: sign ``events`` deliveries, load, sample CPU and connections, check the store."""
    assert server.process is not None
    deliveries = platform.tmp / f"deliveries-{server.port}-{connections}.tsv"
    employees = write_deliveries(deliveries, events, platform.key)
    postmaster = platform.postmaster()
    platform.empty(server)
    held: dict[int, int] = {}
    spy: subprocess.Popen[bytes] | None = None
    spy_output = platform.tmp / f"py-spy-{server.port}.txt"

    def during() -> None:
        """A second in, py-spy the worker holding the most connections; halfway, count each worker's."""
        nonlocal spy
        workers = [p.pid for p in processes().values() if p.session == server.process.pid and p.is_worker]
        time.sleep(min(1.0, seconds / 4))
        if profile and workers:
            early = connections_by_worker(server.port, workers)
            spy = start_profile(max(early, key=lambda pid: early[pid]), seconds - 2, spy_output)
        time.sleep(max(0.0, seconds / 2 - min(1.0, seconds / 4)))
        held.update(connections_by_worker(server.port, workers))

    before = sample_cpu(server, postmaster)
    command = wrk_command(server.url, connections, seconds, deliveries, redelivery)
    load = run_wrk(command, platform.tmp / "wrk.out", during)
    after = sample_cpu(server, postmaster)
    deliveries.unlink()
    profile_lines = []
    if spy is not None:
        _, error = spy.communicate(timeout=60)
        profile_lines = top_frames(spy_output) if spy_output.exists() else [f"  py-spy failed: {error.decode()}"]
    store = check_store(platform, server, employees, load)

    def cores(pid: int) -> float:
        return (after.server[pid].cpu - (before.server[pid].cpu if pid in before.server else 0.0)) / load.seconds

    return Run(server.name, connections, load, store,
               server_cpu=sum(cores(pid) for pid in after.server),
               postgres_cpu=(after.postgres - before.postgres) / load.seconds,
               workers={pid: (cores(pid), held.get(pid, 0)) for pid, p in sorted(after.server.items()) if p.is_worker},
               kind=kind, profile=profile_lines)


def distinct_events(runs: list[Run], seconds: float, redelivery: float) -> int:
    """How many distinct events to sign for a run: :data:`EVENTS_HEADROOM` times what the best rate the server
    reached so far needs (:data:`FIRST_EVENTS` for its first run), within :data:`MIN_EVENTS`..:data:`MAX_EVENTS`."""
    if not runs:
        return FIRST_EVENTS
    rate = max(run.load.accepted_per_second for run in runs)
    return min(MAX_EVENTS, max(MIN_EVENTS, math.ceil(rate * seconds * (1 - redelivery) * EVENTS_HEADROOM)))


def measure_server(platform: Platform, server: Server, args: argparse.Namespace) -> list[Run]:
    """Start ``server``; warm it up (a worker's first deliveries load what it caches: the endpoint, the DAG's
    params, lazy imports); probe its rate and size the distinct events to it; run each connection count; stop it."""
    say(f"{server.name}: starting")
    started = time.monotonic()
    most = max(args.connections)
    plan = [("warm-up", most, args.probe_seconds), ("probe", most, args.probe_seconds)]
    plan += [("measured", connections, args.seconds) for connections in args.connections]
    runs: list[Run] = []
    try:
        start(server, args.workers)
        say(f"{server.name}: up after {time.monotonic() - started:.0f} s")
        for kind, connections, seconds in plan:
            events = distinct_events(runs, seconds, args.redelivery)
            profile = args.profile and server.profiled and kind == "measured" and connections == most
            say(f"{server.name}: {kind}, {connections} connections, {seconds} s, {events} distinct events")
            runs.append(measure(platform, server, connections, seconds, events, args.redelivery, profile, kind))
        return runs
    except Exception:
        say(f"{server.name} failed; its log ends with:\n{log_tail(server)}")
        raise
    finally:
        stop(server)


# --- the report -----------------------------------------------------------------------------------------------

HEADER = (f"{'server':<30} {'conns':>5} {'accepted/s':>10} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
          f"{'non-2xx':>7} {'sock.err':>8}  CPU cores: server (per worker: cores/connections)  pg  wrk")


def run_line(run: Run) -> str:
    load = run.load
    per_worker = " ".join(f"{cores:.2f}/{held}c" for cores, held in run.workers.values())
    return (f"{run.server:<30} {run.connections:>5} {load.accepted_per_second:>10,.0f} {load.latency[50]:>7.1f} "
            f"{load.latency[95]:>7.1f} {load.latency[99]:>7.1f} {load.non_2xx:>7} "
            f"{sum(load.socket_errors.values()):>8}  {run.server_cpu:.2f} ({per_worker})  {run.postgres_cpu:.2f}  "
            f"{load.wrk_cpu / load.seconds:.2f}")


def worker_warning(run: Run) -> str | None:
    """A line when one worker did nearly all the server's work (the kernel gave it nearly all connections)."""
    if len(run.workers) < 2 or run.server_cpu <= 0:
        return None
    pid, (cores, held) = max(run.workers.items(), key=lambda item: item[1][0])
    if cores / run.server_cpu <= ONE_WORKER_SHARE:
        return None
    total = sum(h for _, h in run.workers.values())
    return (f"  ! {run.server} @{run.connections}: worker {pid} used {cores / run.server_cpu:.0%} of the server's CPU "
            f"and held {held} of {total} connections: the others were mostly idle")


def store_line(run: Run) -> str:
    load, store = run.load, run.store
    sent = load.new + load.redelivered
    kind = "" if run.kind == "measured" else f" ({run.kind})"
    line = (f"store {run.server} @{run.connections}{kind}: {store.rows:,} rows, {store.distinct:,} distinct, for "
            f"{load.new:,} distinct events sent in {sent:,} requests ({load.redelivered / max(sent, 1):.0%} "
            f"redeliveries); {store.missing} not stored ({store.unanswered} requests unanswered when wrk stopped), "
            f"{store.unexpected} unexpected; non-2xx {load.non_2xx}, socket errors {load.socket_errors or 'none'}: "
            f"{'OK' if run.ok else 'MISMATCH'}")
    if load.ran_out:
        line += f" (new events ran out: {load.ran_out:,} extra redeliveries)"
    return line


def ratio_lines(runs: list[Run], workers: int) -> list[str]:
    """Each gateway against the reference (and the api-server against its baseline) at each connection count:
    accepted/s (1.00 = the reference's rate) and p99 (1.00 = the reference's tail; higher is slower)."""
    by_key = {(run.server, run.connections): run for run in runs if run.kind == "measured"}
    baselines = [name for name, _ in by_key if name.startswith("api-server (baseline")]
    pairs = [(name, "reference") for name, _ in by_key if name != "reference"]
    pairs += [("api-server", baseline) for baseline in baselines]
    lines = []
    for name, yardstick in dict.fromkeys(pairs):
        for connections in sorted({c for n, c in by_key if n == name}):
            if (yardstick, connections) not in by_key:
                continue
            run, ref = by_key[(name, connections)].load, by_key[(yardstick, connections)].load
            rate, p99 = run.accepted_per_second / ref.accepted_per_second, run.latency[99] / ref.latency[99]
            line = f"{name} / {yardstick}".ljust(50) + f" @{connections:<3} accepted/s {rate:5.2f}   p99 {p99:5.2f}"
            if name.startswith("api-server") and yardstick == "reference":
                line += f"   accepted/s per worker {run.accepted_per_second / workers:,.0f}"
            lines.append(line)
    return lines


def report(runs: list[Run], args: argparse.Namespace, pg_settings: str, load_before: str) -> None:
    measured = [run for run in runs if run.kind == "measured"]
    print()
    print(f"machine: {host.machine()}, {os.cpu_count()} cores, load average {load_before} at the start, "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end; Python {host.python_version()}")
    connections = "{" + ",".join(map(str, args.connections)) + "}"
    command = wrk_command("URL", 0, args.seconds, Path("FILE"), args.redelivery)
    command[2] = f"-c{connections}"
    command[command.index(str(LUA_SCRIPT))] = LUA_SCRIPT.relative_to(REPO_ROOT).as_posix()
    print(f"{pg_settings}; {args.workers} worker processes per server")
    print(f"load: {' '.join(command)}  ({args.redelivery:.0%} redeliveries)")
    print()
    print(HEADER)
    for run in measured:
        print(run_line(run))
        if warning := worker_warning(run):
            print(warning)
    print()
    for run in runs:
        print(store_line(run))
    print()
    for line in ratio_lines(runs, args.workers):
        print(line)
    for run in measured:
        if run.profile:
            print(f"\npy-spy, one {run.server} worker (the one holding the most connections), "
                  f"@{run.connections} connections (this run's figures include py-spy's cost):")
            print("\n".join(run.profile))


# --- main -----------------------------------------------------------------------------------------------------

def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=15, help="duration of each measured wrk run")
    parser.add_argument("--probe-seconds", type=int, default=3,
                        help="duration of the warm-up and of the probe run of each server")
    parser.add_argument("--connections", type=lambda text: [int(c) for c in text.split(",")], default=[16, 64],
                        help="connection counts, comma-separated (default 16,64)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of every server")
    parser.add_argument("--redelivery", type=float, default=0.2, help="share of requests that repeat an event")
    parser.add_argument("--servers", type=lambda text: text.split(","), default=["reference", "edge", "api-server"],
                        help="which to measure, comma-separated (default reference,edge,api-server)")
    parser.add_argument("--baseline-ref", metavar="GIT_REF",
                        help="also measure the api-server of this commit (a temporary git worktree, this .venv)")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy one edge and one api-server worker during the run at the most connections")
    args = parser.parse_args()
    unknown = set(args.servers) - {"reference", "edge", "api-server"}
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    return args


def main() -> None:
    args = parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (apt-get install wrk; ./run.sh bench-gateway installs it)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the cleanup below runs on SIGTERM too
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    runs: list[Run] = []
    with contextlib.ExitStack() as cleanup:
        tmp = Path(tempfile.mkdtemp(prefix="officeflow-gateway-bench-"))
        cleanup.callback(shutil.rmtree, tmp, ignore_errors=True)
        cluster = PostgresCluster(durable=True)
        cleanup.callback(cluster.stop)
        cluster.start()
        platform = Platform(cluster, tmp, args.workers)
        say("migrating Airflow's metadata DB and serialising the DAGs")
        platform.prepare_airflow("airflow", REPO_ROOT)
        servers = []
        baseline = None
        if args.baseline_ref:
            code = cleanup.enter_context(baseline_worktree(args.baseline_ref, tmp))
            platform.prepare_airflow("airflow_baseline", code, template="airflow")
            baseline = platform.api_server(f"api-server (baseline {args.baseline_ref})", code, "airflow_baseline",
                                           "store_baseline", profiled=False)
        if "reference" in args.servers:
            servers.append(platform.reference())
        if "edge" in args.servers:
            servers.append(platform.edge("airflow"))
        if "api-server" in args.servers:
            servers.append(platform.api_server("api-server", REPO_ROOT, "airflow", "store_api", profiled=True))
        if baseline is not None:
            servers.append(baseline)
        for server in servers:
            cleanup.callback(stop, server)
        pg_settings = platform.settings()
        for server in servers:
            runs += measure_server(platform, server, args)
        report(runs, args, pg_settings, load_before)
    print(f"\n(the whole run took {time.monotonic() - BEGAN:.0f} s)")
    if not all(run.ok for run in runs):
        sys.exit(1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C: the servers, PostgreSQL and the temporary folders are gone already
        sys.exit(130)
