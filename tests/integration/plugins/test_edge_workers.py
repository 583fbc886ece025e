"""The edge gateway's worker supervisor (plugins/officeflow_gateway/edge_workers.py) with real processes and
sockets: each worker on its own SO_REUSEPORT socket gets a share of the connections opened at once, a worker that
dies is replaced, a port another program holds stops the gateway with uvicorn's start-up failure code, and SIGTERM
stops every worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness.ports import free_port
from tests.harness.processes import stop_process
from tests.harness.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[3]


def start_supervisor(port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    code = ("from plugins.officeflow_gateway.edge_workers import serve\n"
            f"raise SystemExit(serve({{'app': 'tests.harness.pid_app:app', 'host': '127.0.0.1', 'port': {port}, "
            f"'log_level': 'warning'}}, {workers}))")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)


def worker_pids(supervisor: int) -> set[int]:
    """The supervisor's worker processes (not multiprocessing's resource tracker, its other child)."""
    pids = set()
    for pid in Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in command and b"resource_tracker" not in command:
            pids.add(int(pid))
    return pids


@pytest.fixture
def supervisor(tmp_path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    process = start_supervisor(port, 2, tmp_path / "supervisor.log")
    url = f"http://127.0.0.1:{port}/"

    def both_up() -> bool:
        assert process.poll() is None, (tmp_path / "supervisor.log").read_text()
        if len(worker_pids(process.pid)) < 2:
            return False
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(both_up, timeout=60, what="the supervisor's workers started")
    # Both listening: 16 new connections reach both (each lands on either socket by its hash).
    wait_until(lambda: len(set(pids_answering(url, 16))) == 2, timeout=60, what="both workers answering")
    try:
        yield process, url
    finally:
        stop_process(process, timeout=30)


def pids_answering(url: str, connections: int) -> list[int]:
    """Open ``connections`` connections at once (the kernel completes them before any worker accepts one), then send
    a request on each: the pid of the worker that answered each."""
    address = httpx.URL(url)
    opened = [socket.create_connection((address.host, address.port), timeout=10) for _ in range(connections)]
    pids = []
    try:
        for sock in opened:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n")
        for sock in opened:
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
            pids.append(int(answer.partition(b"\r\n\r\n")[2]))
    finally:
        for sock in opened:
            sock.close()
    return pids


def test_connections_opened_at_once_are_spread_over_the_workers(supervisor):
    process, url = supervisor
    answered = pids_answering(url, 64)
    workers = worker_pids(process.pid)
    assert set(answered) == workers and len(workers) == 2
    # By the hash of each connection's addresses, ~32 each (a shared socket gave 55/9, 57/7, 37/27 here).
    assert min(answered.count(pid) for pid in workers) >= 16


def test_a_worker_that_dies_is_replaced(supervisor):
    process, url = supervisor
    first = min(worker_pids(process.pid))
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: len(worker_pids(process.pid) - {first}) == 2, timeout=60, what="a new worker")
    wait_until(lambda: len(set(pids_answering(url, 32))) == 2, timeout=30, what="both workers answering")
    assert first not in set(pids_answering(url, 32)) and process.poll() is None


def test_sigterm_stops_every_worker(supervisor):
    process, _ = supervisor
    workers = worker_pids(process.pid)
    process.terminate()
    assert process.wait(timeout=40) == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_a_port_held_by_another_program_stops_the_gateway_with_the_start_up_failure_code(tmp_path):
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    try:
        process = start_supervisor(held.getsockname()[1], 2, tmp_path / "supervisor.log")
        try:
            assert process.wait(timeout=60) == 3
        finally:
            stop_process(process)
    finally:
        held.close()
    assert "cannot listen on 127.0.0.1" in (tmp_path / "supervisor.log").read_text()
